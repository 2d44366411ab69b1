"""The module speaks what `dia-infer` speaks: the same codes (token for token) and audio for the
same text, voice, parameters and seed, on the same fixtures and backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import (
    TEXT,
    DiaInfer,
    assert_audio,
    read_codes,
    read_wav_f32,
    sine,
    write_codes,
    write_wav16,
)

from dia_burn import Dia


def assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    (audio, codes), (cli_audio, cli_codes) = got, want
    assert_audio(audio)
    assert codes.dtype == np.uint32 and codes.ndim == 2 and codes.shape[1] == 9
    assert codes.shape[0] > 0 and (codes < 1024).all()
    np.testing.assert_array_equal(codes, cli_codes)
    np.testing.assert_allclose(audio, cli_audio, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 7])
def test_codes_and_audio_equal_dia_infers(dia: Dia, cli: DiaInfer, seed: int) -> None:
    got = dia.speak(TEXT, seed=seed, codes=True)
    assert_same(got, cli.speak(TEXT, "--seed", str(seed)))


def test_parameters_reach_the_model_as_dia_infers_do(dia: Dia, cli: DiaInfer) -> None:
    params: dict[str, Any] = dict(temperature=0.8, top_p=0.9, cfg_scale=2.5, cfg_filter_top_k=30, max_tokens=200)
    got = dia.speak(TEXT, seed=3, codes=True, **params)
    options = [f"--{key.replace('_', '-')}={value}" for key, value in params.items()]
    assert_same(got, cli.speak(TEXT, "--seed", "3", *options))
    # The parameters change the result: a binding that dropped them would match the default.
    assert not np.array_equal(got[1], dia.speak(TEXT, seed=3, codes=True)[1])


def test_a_voice_file_and_its_samples_speak_as_dia_infers_voice(
    dia: Dia, cli: DiaInfer, tmp_path: Path
) -> None:
    rate, transcript = 22050, "[S1] A voice to continue."
    wav = tmp_path / "voice.wav"
    samples = write_wav16(wav, sine(0.02, rate, 330.0), rate)
    want = cli.speak(TEXT, "--seed", "5", "--audio-prompt", str(wav), "--prompt-transcript", transcript)
    from_file = dia.speak(TEXT, seed=5, voice_audio=wav, transcript=transcript, codes=True)
    assert_same(from_file, want)
    from_samples = dia.speak(
        TEXT, seed=5, voice_audio=(samples, rate), transcript=transcript, codes=True
    )
    assert_same(from_samples, want)
    # The voice conditions the speech.
    assert not np.array_equal(from_file[1], dia.speak(TEXT, seed=5, codes=True)[1])


def test_voice_codes_speak_as_dia_infers(dia: Dia, cli: DiaInfer, tmp_path: Path) -> None:
    codes = dia.encode(sine(0.01, dia.sample_rate), dia.sample_rate)
    json = write_codes(tmp_path / "voice.json", codes)
    transcript = "[S2] Codes for a voice."
    want = cli.speak(
        TEXT, "--seed", "9", "--audio-prompt-codes", str(json), "--prompt-transcript", transcript
    )
    got = dia.speak(TEXT, seed=9, audio_prompt_codes=codes, transcript=transcript, codes=True)
    assert_same(got, want)
    # A codes JSON file as voice_audio is the same voice.
    by_file = dia.speak(TEXT, seed=9, voice_audio=json, transcript=transcript, codes=True)
    assert_same(by_file, want)


def test_encode_and_decode_equal_dia_infers(dia: Dia, cli: DiaInfer, tmp_path: Path) -> None:
    rate = 16000
    wav = tmp_path / "in.wav"
    samples = write_wav16(wav, sine(0.02, rate, 500.0), rate)
    cli.run("encode", "--audio", str(wav), "--codes-out", str(tmp_path / "codes.json"))
    codes = dia.encode(samples, rate)
    assert codes.dtype == np.uint32 and codes.shape[1] == 9 and codes.shape[0] > 0
    np.testing.assert_array_equal(codes, read_codes(tmp_path / "codes.json"))

    out = tmp_path / "decoded.wav"
    cli.run("decode", "--codes", str(tmp_path / "codes.json"), "-o", str(out), "--wav-format", "f32")
    audio = dia.decode(codes)
    assert_audio(audio)
    np.testing.assert_allclose(audio, read_wav_f32(out), rtol=0, atol=1e-5)

