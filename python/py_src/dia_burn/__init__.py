"""Dia text-to-dialogue and the Descript Audio Codec on Burn (Rust), speaking into NumPy.

>>> from dia_burn import Dia
>>> dia = Dia.from_pretrained()                  # nari-labs/Dia-1.6B-0626 + descript/dac_44khz
>>> audio = dia.speak("[S1] Dia runs on Burn now. [S2] From Python too?", seed=3)
>>> audio.dtype, dia.sample_rate
(dtype('float32'), 44100)

``Dia.stream`` yields the audio as it becomes final, ``Dia.speak_many`` runs several requests
at once on one continuous batch (each exactly as it would run alone), ``Dia.encode`` and
``Dia.decode`` run the codec. The GIL is released while Rust works; Ctrl-C stops a generation.
"""

from ._native import Dia, Request, Stream, __version__

__all__ = ["Dia", "Request", "Stream", "__version__"]
