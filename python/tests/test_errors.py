"""Bad input raises the Python exception its kind calls for, carrying the Rust error's message;
the model is unharmed and speaks on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CODEC, MODEL, TEXT, assert_audio, sine, write_wav16

from dia_burn import Dia, Request


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text(dia: Dia, text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)empty|nothing to say"):
        dia.speak(text)
    with pytest.raises(ValueError, match=r"(?i)empty|nothing to say"):
        dia.stream(text)
    with pytest.raises(ValueError, match=r"^request 1: .*(empty|nothing to say)"):
        dia.speak_many([TEXT, text])
    assert_audio(dia.speak(TEXT))


def test_missing_voice_file(dia: Dia, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-voice.wav"
    with pytest.raises(FileNotFoundError, match="voice audio not found") as error:
        dia.speak(TEXT, voice_audio=missing, transcript="[S1] Hi.")
    assert error.value.filename == str(missing)
    with pytest.raises(FileNotFoundError):
        dia.speak_many([{"text": TEXT, "voice_audio": str(missing)}])


def test_unusable_voice_audio(dia: Dia, tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    write_wav16(silent, np.zeros(800, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="silent"):
        dia.speak(TEXT, voice_audio=silent)
    not_audio = tmp_path / "voice.wav"
    not_audio.write_text("not audio")
    with pytest.raises(ValueError, match="voice.wav"):
        dia.speak(TEXT, voice_audio=not_audio)
    with pytest.raises(ValueError, match="NaN"):
        dia.speak(TEXT, voice_audio=(np.full(100, np.nan), 16000))
    with pytest.raises(ValueError, match="no samples"):
        dia.speak(TEXT, voice_audio=(np.zeros(0), 16000))
    with pytest.raises(ValueError, match="(?i)leaves no room|long"):
        dia.speak(TEXT, voice_audio=(sine(1.0, 44100), 44100))
    with pytest.raises(TypeError, match="sample_rate"):
        dia.speak(TEXT, voice_audio=sine(0.01, 44100))  # type: ignore[call-overload]


def test_bad_codes(dia: Dia) -> None:
    good = dia.encode(sine(0.01, 44100), 44100)
    too_big = good.copy()
    too_big[2, 3] = 5000
    negative = good.astype(np.int64)
    negative[1, 0] = -1
    cases = [
        (good[:, :8], "channels"),
        (too_big, "5000"),
        (negative, "code -1, expected 0 or more"),
        (good.astype(np.float32), "integers"),
        (good[0], "2-D"),
    ]
    for codes, message in cases:
        with pytest.raises(ValueError, match=message):
            dia.speak(TEXT, audio_prompt_codes=codes)
        with pytest.raises(ValueError):
            dia.decode(codes)
    assert_audio(dia.decode(good))


def test_bad_parameters(dia: Dia) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(temperature=-1.0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(cfg_filter_top_k=0), "cfg_filter_top_k"),
        (dict(max_tokens=1_000_000), "max_tokens"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            dia.speak(TEXT, **options)
    with pytest.raises(ValueError, match="not both"):
        dia.speak(TEXT, voice_audio=(sine(0.01, 44100), 44100), audio_prompt_codes=[[0] * 9])
    with pytest.raises(ValueError, match="transcript"):
        Request(TEXT, transcript="[S1] No voice.")
    with pytest.raises(ValueError, match="batch_size"):
        dia.speak_many([TEXT], batch_size=0)
    with pytest.raises(TypeError, match="sed"):
        dia.speak_many([{"text": TEXT, "sed": 1}])
    with pytest.raises(TypeError, match="list of requests"):
        dia.speak_many(TEXT)


def test_bad_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        Dia.from_pretrained(MODEL, codec=CODEC, backend="abacus")
    with pytest.raises(ValueError, match="dtype"):
        Dia.from_pretrained(MODEL, codec=CODEC, dtype="f8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weight storage"):
        Dia.from_pretrained(MODEL, codec=CODEC, weights="int3")
    with pytest.raises(FileNotFoundError, match="model not found") as error:
        Dia.from_pretrained(tmp_path / "absent", codec=CODEC)
    assert error.value.filename == str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="codec not found"):
        Dia.from_pretrained(MODEL, codec="./absent.safetensors")
    with pytest.raises(RuntimeError, match=re.escape(str(tmp_path))):
        Dia.from_pretrained(tmp_path, codec=CODEC)
