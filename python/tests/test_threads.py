"""The GIL is released while Rust works, and Ctrl-C stops a generation cleanly."""

from __future__ import annotations

import _thread
import signal
import threading
import time

import numpy as np
import pytest
from conftest import TEXT, assert_audio

from dia_burn import Dia


@pytest.fixture(autouse=True)
def ctrl_c() -> object:
    """Python's own Ctrl-C handler, as in a terminal: a shell that starts the tests in the
    background has SIGINT ignored, and `interrupt_main` then does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class Counter:
    """A Python thread counting as fast as it can get the GIL."""

    def __init__(self) -> None:
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.count += 1

    def __enter__(self) -> Counter:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_another_thread_runs_while_speaking(dia: Dia, long_text: tuple[str, float]) -> None:
    text, _ = long_text
    with Counter() as counter:
        time.sleep(0.05)
        start, idle = counter.count, time.perf_counter()
        time.sleep(0.3)  # the counter's rate with the GIL all its own
        rate = (counter.count - start) / (time.perf_counter() - idle)
        before, started = counter.count, time.perf_counter()
        audio = dia.speak(text)
        elapsed = time.perf_counter() - started
        during = counter.count - before
    assert_audio(audio)
    # Holding the GIL, the call would leave the counter at most one switch interval (5 ms)
    # before it; released, the counter shares the whole call's time with the collecting thread.
    assert during > 0.1 * rate * elapsed, (during, rate, elapsed)


def test_ctrl_c_stops_speak_and_the_next_call_is_unaffected(
    dia: Dia, long_text: tuple[str, float]
) -> None:
    text, alone = long_text
    before = dia.speak(TEXT, seed=8)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        dia.speak(text)
    elapsed = time.perf_counter() - started
    timer.join()
    assert elapsed < alone / 2, f"stopped after {elapsed:.2f} s of {alone:.2f} s"
    np.testing.assert_array_equal(dia.speak(TEXT, seed=8), before)


def test_ctrl_c_stops_a_batch(dia: Dia, long_text: tuple[str, float]) -> None:
    text, alone = long_text
    timer = threading.Timer(0.2, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        dia.speak_many([text, text], batch_size=1)
    elapsed = time.perf_counter() - started
    timer.join()
    assert elapsed < alone / 2, f"stopped after {elapsed:.2f} s of {alone:.2f} s (and as much again)"


def test_ctrl_c_stops_a_stream(dia: Dia, long_text: tuple[str, float]) -> None:
    text, alone = long_text
    stream = dia.stream(text)
    assert next(stream).dtype == np.float32
    timer = threading.Timer(0.2, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for piece in stream:
            assert piece.dtype == np.float32
    elapsed = time.perf_counter() - started
    timer.join()
    assert elapsed < alone / 2, f"stopped after {elapsed:.2f} s of {alone:.2f} s"
    stream.close()
    assert list(stream) == []


def test_threads_speak_at_once_as_alone(dia: Dia) -> None:
    alone = [dia.speak(TEXT, seed=seed) for seed in (1, 2)]
    results: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda s=seed: results.__setitem__(s, dia.speak(TEXT, seed=s)))
        for seed in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed, want in zip((1, 2), alone):
        np.testing.assert_array_equal(results[seed], want)
