"""Type stubs of dia_burn's native module (the Rust extension); see the package docstring."""

import os
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Mapping, TypeAlias, final, overload

import numpy as np
import numpy.typing as npt

__all__ = ["Dia", "Request", "Stream", "__version__"]
__version__: str

#: A path to an audio file (wav, mp3, flac, ogg) or codes JSON file, or samples with their rate.
_VoiceAudio: TypeAlias = str | os.PathLike[str] | tuple[npt.ArrayLike, int]
_Audio: TypeAlias = npt.NDArray[np.float32]
_Codes: TypeAlias = npt.NDArray[np.uint32]

@final
class Dia:
    """Dia, Nari Labs' text-to-dialogue model, and the Descript Audio Codec it speaks through,
    on Burn: text in, 44.1 kHz mono float32 NumPy audio out.

    Load with ``Dia.from_pretrained``. Every method releases the GIL while Rust works, so other
    Python threads keep running; Ctrl-C stops a generation (``speak``, ``speak_many``,
    ``stream``) within a decoding step. The same text, voice, parameters, seed and backend give
    the same audio, and the codes ``dia-infer`` writes for them.
    """

    @staticmethod
    def from_pretrained(
        model: str | os.PathLike[str] | None = "nari-labs/Dia-1.6B-0626",
        codec: str | os.PathLike[str] | None = "descript/dac_44khz",
        *,
        backend: str = "auto",
        dtype: Literal["f32", "f16", "bf16"] | None = None,
        weights: str | None = None,
        progress: bool = False,
    ) -> Dia:
        """Loads the model and its codec, as ``dia-infer`` does.

        Args:
            model: a Hugging Face hub repository (downloaded into the standard cache; HF_HOME
                and HF_HUB_OFFLINE=1 are honoured) or a local checkpoint directory. A string is
                a local path when one exists by that name or it does not read as
                ``owner/name``; an ``os.PathLike`` always is. None: the default.
            codec: a hub repository, or a local ``.pth``, safetensors file or transformers
                directory. None: the default.
            backend: "auto" (the best one built in), "flex" (CPU), or "ndarray", "wgpu",
                "cuda" when the module was built with them.
            dtype: the model's compute dtype (default: bf16 on CUDA, f32 elsewhere).
            weights: how the projection weights are stored, as dia-infer's ``--weights``
                ("f32", "f16", "bf16", "int8", ...; default: as the dtype).
            progress: show download progress bars.

        Raises:
            FileNotFoundError: for a local path that does not exist.
            ValueError: for an unknown backend, dtype or weight storage.
            RuntimeError: when the weights cannot be found, downloaded or loaded.
        """

    @property
    def sample_rate(self) -> int:
        """Samples per second of the audio (44100 for the released codec)."""

    @property
    def backend(self) -> str:
        """The backend the model runs on ("flex", "ndarray", "wgpu" or "cuda")."""

    @overload
    def speak(
        self,
        text: str,
        *,
        voice_audio: _VoiceAudio | None = None,
        transcript: str | None = None,
        audio_prompt_codes: npt.ArrayLike | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        cfg_scale: float | None = None,
        cfg_filter_top_k: int | None = None,
        max_tokens: int | None = None,
        codes: Literal[False] = False,
    ) -> _Audio: ...
    @overload
    def speak(
        self,
        text: str,
        *,
        voice_audio: _VoiceAudio | None = None,
        transcript: str | None = None,
        audio_prompt_codes: npt.ArrayLike | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        cfg_scale: float | None = None,
        cfg_filter_top_k: int | None = None,
        max_tokens: int | None = None,
        codes: Literal[True],
    ) -> tuple[_Audio, _Codes]:
        """Speaks ``text``: mono float32 samples at ``sample_rate``.

        Args:
            text: the script, with ``[S1]``/``[S2]`` speaker tags; any length (long scripts
                are spoken in passes, in one voice).
            voice_audio: a voice to continue: an audio file (wav, mp3, flac, ogg; any rate and
                channels), a codes JSON file (``*.json``), or a ``(samples, sample_rate)``
                tuple of a NumPy array (1-D, or 2-D ``[samples, channels]``) and its rate.
            transcript: what the voice says, with its speaker tags.
            audio_prompt_codes: a voice as codes ``[frames, 9]`` (from ``encode``).
            seed: the sampling seed (default 0).
            temperature: sampling temperature (default 1.2); 0 decodes greedily.
            top_p: nucleus sampling mass (default 0.95).
            cfg_scale: classifier-free guidance scale (default 3.0).
            cfg_filter_top_k: candidates kept for guidance (default 45).
            max_tokens: decoder frames per pass, prompt included (default: the model's limit).
            codes: also return the generated codes.

        Returns:
            The samples; with ``codes=True`` a tuple ``(samples, codes)``, the codes a uint32
            array ``[frames, 9]`` (every pass's).

        Raises:
            ValueError: for input the model refuses, with its message.
            FileNotFoundError: when ``voice_audio`` names no file.
            KeyboardInterrupt: on Ctrl-C; the generation stops.
        """

    def stream(
        self,
        text: str,
        *,
        voice_audio: _VoiceAudio | None = None,
        transcript: str | None = None,
        audio_prompt_codes: npt.ArrayLike | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        cfg_scale: float | None = None,
        cfg_filter_top_k: int | None = None,
        max_tokens: int | None = None,
    ) -> Stream:
        """Speaks ``text`` as it is generated: an iterator of float32 arrays, each a piece of
        audio as soon as it is final; joined, they are what ``speak`` returns for the same
        arguments. Errors in the input raise here, as ``speak``'s do."""

    @overload
    def speak_many(
        self,
        requests: Iterable[str | Request | Mapping[str, Any]],
        *,
        batch_size: int = 8,
        codes: Literal[False] = False,
    ) -> list[_Audio]: ...
    @overload
    def speak_many(
        self,
        requests: Iterable[str | Request | Mapping[str, Any]],
        *,
        batch_size: int = 8,
        codes: Literal[True],
    ) -> list[tuple[_Audio, _Codes]]:
        """Speaks several requests at once on one continuous batch; each result is exactly
        what ``speak`` returns for it alone.

        Args:
            requests: texts, ``Request``s, or dicts of ``Request``'s arguments, each with its
                own voice, seed and parameters.
            batch_size: requests decoded at once.
            codes: also return each request's codes.

        Returns:
            A list, in the requests' order, of what ``speak`` returns.
        """

    def encode(self, audio: npt.ArrayLike, sample_rate: int) -> _Codes:
        """The codec's codes ``[frames, 9]`` of ``audio`` (1-D, or 2-D ``[samples, channels]``)
        at ``sample_rate`` (resampled to ``Dia.sample_rate`` when it differs)."""

    def decode(self, codes: npt.ArrayLike) -> _Audio:
        """The audio of ``codes`` ``[frames, 9]``: float32 samples at ``sample_rate``."""

@final
class Request:
    """One text to speak with its own voice and parameters, for ``Dia.speak_many``; the
    arguments are ``Dia.speak``'s."""

    def __new__(
        cls,
        text: str,
        *,
        voice_audio: _VoiceAudio | None = None,
        transcript: str | None = None,
        audio_prompt_codes: npt.ArrayLike | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        cfg_scale: float | None = None,
        cfg_filter_top_k: int | None = None,
        max_tokens: int | None = None,
    ) -> Request: ...
    @property
    def text(self) -> str:
        """The script to speak."""

    @property
    def seed(self) -> int:
        """The sampling seed."""

@final
class Stream(Iterator[_Audio]):
    """Speech as it is generated (``Dia.stream``): float32 pieces of audio as soon as each is
    final. ``next()`` waits with the GIL released; Ctrl-C while waiting, ``close()`` or dropping
    the iterator stops the generation."""

    def __iter__(self) -> Stream: ...
    def __next__(self) -> _Audio: ...
    def close(self) -> None:
        """Stops the generation; the iterator ends."""
