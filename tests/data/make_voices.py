"""Writes the compressed voice-prompt fixtures the CLI tests read (`voice-RATE-CHANNELS.EXT`).

The signal is the chirp with a little noise that `write_voice_wav` in `tests/cli.rs` writes, at
16, 22.05 and 48 kHz, mono and stereo, as MP3, FLAC and Ogg Vorbis: Rust has no encoder for all
three, so the files are committed. Made with python-soundfile 0.13 (libsndfile 1.2.2):

    python make_voices.py
"""

import math

import numpy as np
import soundfile as sf

SECONDS = 0.03
FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}

for rate in (16000, 22050, 48000):
    n = int(SECONDS * rate)
    i = np.arange(n)
    t = i / rate
    v = np.sin(2 * math.pi * (200 + 2000 * t) * t) * 0.5 + ((i * 7919 % 101) / 101 - 0.5) * 0.05
    for channels in (1, 2):
        data = np.stack([v * (1 - 0.3 * c) for c in range(channels)], axis=1)
        for ext, (fmt, subtype) in FORMATS.items():
            sf.write(f"voice-{rate}-{channels}.{ext}", data, rate, format=fmt, subtype=subtype)
