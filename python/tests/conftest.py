"""Shared fixtures: the tiny random-weight models of assets/fixtures, loaded once, and the
`dia-infer` binary the module's results are compared with."""

from __future__ import annotations

import json
import os
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from dia_burn import Dia

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "assets" / "fixtures"
MODEL = FIXTURES / "dia-tiny"
CODEC = FIXTURES / "dac-tiny" / "weights.safetensors"

#: A two-speaker line the tiny model speaks in one pass.
TEXT = "[S1] Hello from Python. [S2] And hello from Rust."


@pytest.fixture(scope="session")
def dia() -> Dia:
    return Dia.from_pretrained(MODEL, codec=CODEC, backend="flex")


def sine(seconds: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    """A float32 sine at amplitude 0.3 (loud enough to be a voice, not silence)."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write_wav16(path: Path, samples: np.ndarray, rate: int) -> np.ndarray:
    """Writes mono 16-bit PCM; returns the samples as a reader gets them back (float32)."""
    pcm = np.round(samples * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768


def read_wav_f32(path: Path) -> np.ndarray:
    """The samples of a 32-bit float WAV (as `dia-infer --wav-format f32` writes)."""
    data = path.read_bytes()
    at = 12
    while at < len(data):
        chunk, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if chunk == b"data":
            return np.frombuffer(data[at + 8 : at + 8 + size], dtype="<f4").astype(np.float32)
        at += 8 + size + (size & 1)
    raise AssertionError(f"{path} has no data chunk")


def assert_audio(audio: np.ndarray) -> None:
    """Mono float32 samples, some, none NaN or infinite."""
    assert isinstance(audio, np.ndarray) and audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size > 0
    assert np.isfinite(audio).all()


@pytest.fixture(scope="session")
def dia_infer() -> Path:
    """The `dia-infer` binary: $DIA_INFER (check.sh sets it), else the shared target dir's."""
    given = os.environ.get("DIA_INFER")
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/dia-burn/target"))
    path = Path(given) if given else Path(target) / "debug" / "dia-infer"
    if not path.is_file():
        if given:
            pytest.fail(f"DIA_INFER={given} is not a file")
        pytest.skip(f"no dia-infer at {path}: run `cargo build -p dia-infer` (check.sh does)")
    return path


class DiaInfer:
    """Runs `dia-infer` on the fixtures, offline, on the flex backend."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir

    def run(self, *args: str) -> None:
        common = ["--dac-path", str(CODEC), "--backend", "flex", "--quiet"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(
            [str(self.binary), *args, *common], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, f"dia-infer {' '.join(args)} failed:\n{done.stderr}"

    def speak(self, text: str, *options: str) -> tuple[np.ndarray, np.ndarray]:
        """`dia-infer TEXT OPTIONS`: the audio (streamed, as float32) and the codes."""
        wav, codes = self.workdir / "out.wav", self.workdir / "codes.json"
        self.run(
            text, "--model-dir", str(MODEL), "--stream", "--wav-format", "f32",
            "-o", str(wav), "--codes-out", str(codes), *options,
        )  # fmt: skip
        return read_wav_f32(wav), read_codes(codes)


def read_codes(path: Path) -> np.ndarray:
    return np.array(json.loads(path.read_text()), dtype=np.uint32).reshape(-1, 9)


def write_codes(path: Path, codes: np.ndarray) -> Path:
    path.write_text(json.dumps(codes.tolist()))
    return path


@pytest.fixture
def cli(dia_infer: Path, tmp_path: Path) -> DiaInfer:
    return DiaInfer(dia_infer, tmp_path)


@pytest.fixture(scope="session")
def long_text(dia: Dia) -> tuple[str, float]:
    """A script that takes the tiny model at least 2 s to speak (many passes), and that time."""
    turns = [
        "[S1] This line is one of many in a long script.",
        "[S2] Each pass of the model speaks a few of them.",
    ]
    for _ in range(12):
        text = " ".join(turns)
        start = time.perf_counter()
        dia.speak(text)
        seconds = time.perf_counter() - start
        if seconds >= 2.0:
            return text, seconds
        turns = turns * 2
    raise AssertionError(f"even {len(turns)} turns take only {seconds:.2f} s")
