"""The Python API on the fixtures: streaming is speaking piece by piece, a batch is its items'
solo runs, the codec round trip, loading through the hub cache, and what editors read."""

from __future__ import annotations

import importlib.resources
import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CODEC, FIXTURES, MODEL, TEXT, assert_audio, sine

import dia_burn
from dia_burn import Dia, Request


def test_loads_local_fixtures(dia: Dia) -> None:
    assert dia.backend == "flex"
    assert dia.sample_rate == 44100
    assert repr(dia) == 'Dia(backend="flex", sample_rate=44100)'


def test_stream_joined_equals_speak(dia: Dia) -> None:
    pieces = list(dia.stream(TEXT, seed=2))
    assert len(pieces) > 1, "the audio should arrive in pieces"
    for piece in pieces:
        assert_audio(piece)
    np.testing.assert_array_equal(np.concatenate(pieces), dia.speak(TEXT, seed=2))


def test_stream_of_a_long_script_with_a_voice_equals_speak(
    dia: Dia, long_text: tuple[str, float]
) -> None:
    text = long_text[0][:400]
    voice = (sine(0.01, 22050), 22050)
    options: dict[str, Any] = dict(voice_audio=voice, transcript="[S1] Hi.", seed=4)
    joined = np.concatenate(list(dia.stream(text, **options)))
    assert_audio(joined)
    np.testing.assert_array_equal(joined, dia.speak(text, **options))


def test_closed_stream_ends(dia: Dia) -> None:
    stream = dia.stream(TEXT)
    assert_audio(next(stream))
    stream.close()
    assert list(stream) == []


def test_speak_many_items_equal_their_solo_runs(dia: Dia) -> None:
    voice = dia.encode(sine(0.01, 44100, 300.0), 44100)
    solo_args: list[tuple[str, dict[str, Any]]] = [
        (TEXT, {}),
        ("[S2] The second request, with its own seed.", dict(seed=11, temperature=0.9)),
        ("[S1] The third continues a voice.", dict(audio_prompt_codes=voice, transcript="[S1] Hi.", seed=5)),
        ("[S1] The fourth decodes greedily.", dict(temperature=0.0, cfg_scale=2.0, top_p=0.8)),
    ]  # fmt: skip
    requests: list[str | Request | dict[str, Any]] = [
        TEXT,
        {"text": solo_args[1][0], **solo_args[1][1]},
        Request(solo_args[2][0], **solo_args[2][1]),
        {"text": solo_args[3][0], **solo_args[3][1]},
    ]
    many = dia.speak_many(requests, batch_size=2, codes=True)
    assert len(many) == len(requests)
    for (audio, codes), (text, options) in zip(many, solo_args):
        solo_audio, solo_codes = dia.speak(text, codes=True, **options)
        assert_audio(audio)
        np.testing.assert_array_equal(codes, solo_codes)
        np.testing.assert_array_equal(audio, solo_audio)
    # Items differ: a batch that mixed up its slots would not match the solo runs above.
    assert len({codes.tobytes() for _, codes in many}) == len(many)
    assert [a.shape for a in dia.speak_many([TEXT, TEXT])] == [many[0][0].shape] * 2
    assert dia.speak_many([]) == []


def test_encode_takes_any_rate_and_channels_and_decode_inverts_shape(dia: Dia) -> None:
    mono = sine(0.02, 22050)
    codes = dia.encode(mono, 22050)
    assert codes.dtype == np.uint32 and codes.ndim == 2 and codes.shape[1] == 9
    assert codes.shape[0] > 0 and (codes < 1024).all()
    stereo = np.stack([mono, mono], axis=1).astype(np.float64)
    np.testing.assert_array_equal(dia.encode(stereo, 22050), codes)
    np.testing.assert_array_equal(dia.encode(list(map(float, mono)), 22050), codes)
    resampled = dia.encode(sine(0.02, 44100), 44100)
    assert abs(resampled.shape[0] - codes.shape[0]) <= 1
    audio = dia.decode(codes)
    assert_audio(audio)
    assert audio.size % codes.shape[0] == 0
    np.testing.assert_array_equal(dia.decode(codes.astype(np.int64)), audio)


def make_hub_repo(hub: Path, repo: str, files: dict[str, Path]) -> None:
    """A repository as the Hugging Face cache lays it out: refs/main naming a snapshot."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, target in files.items():
        os.symlink(target, snapshot / name)


def test_hub_repositories_load_from_the_cache_offline(
    dia: Dia, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub"
    weights = {"config.json": MODEL / "config.json", "model.safetensors": MODEL / "model.safetensors"}
    make_hub_repo(hub, "test-org/dia-tiny", weights)
    codec = FIXTURES / "dac-tiny-hf"
    make_hub_repo(hub, "test-org/dac-tiny", {name: codec / name for name in weights})
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hubbed = Dia.from_pretrained("test-org/dia-tiny", codec="test-org/dac-tiny")
    got = hubbed.speak(TEXT, seed=4, codes=True)
    assert_audio(got[0])
    np.testing.assert_array_equal(got[1], dia.speak(TEXT, seed=4, codes=True)[1])
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE") as missing:
        Dia.from_pretrained("test-org/absent", codec="test-org/dac-tiny")
    assert str(hub) in str(missing.value)


def test_paths_as_strings_or_pathlike(dia: Dia) -> None:
    relative = os.path.relpath(MODEL)
    by_string = Dia.from_pretrained(str(MODEL), codec=os.fspath(CODEC))
    by_relative = Dia.from_pretrained(relative, codec=CODEC)
    want = dia.speak(TEXT, seed=1, codes=True)[1]
    for loaded in (by_string, by_relative):
        np.testing.assert_array_equal(loaded.speak(TEXT, seed=1, codes=True)[1], want)


def test_editors_and_help_see_the_api() -> None:
    package = importlib.resources.files("dia_burn")
    assert package.joinpath("py.typed").is_file()
    stub = package.joinpath("_native.pyi").read_text()
    for name in dia_burn.__all__:
        assert getattr(dia_burn, name) is not None
    for cls in (Dia, Request, dia_burn.Stream):
        assert f"class {cls.__name__}" in stub and cls.__doc__ and cls.__module__ == "dia_burn"
    for name in ("from_pretrained", "speak", "stream", "speak_many", "encode", "decode"):
        assert f"def {name}(" in stub
        method = getattr(Dia, name)
        assert method.__doc__ and len(method.__doc__) > 40, name
    for name in ("sample_rate", "backend"):
        assert getattr(Dia, name).__doc__ and f"def {name}(self)" in stub
    speak = inspect.signature(Dia.speak)
    assert list(speak.parameters)[:3] == ["self", "text", "voice_audio"]
    assert speak.parameters["seed"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "nari-labs/Dia-1.6B-0626" in str(inspect.signature(Dia.from_pretrained))
    assert dia_burn.__version__ and dia_burn.__doc__
