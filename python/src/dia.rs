//! The `Dia` Python class: the model and its codec on the backend named at load, speaking into
//! NumPy arrays with the GIL released.

use std::sync::Arc;

use dia_burn::{AnyDia, SamplingOverrides};
use numpy::{PyArray1, PyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::arrays::{audio_from_py, audio_to_py, codes_from_py, codes_to_py, resample};
use crate::engine::{Channels, load_options, on_dia};
use crate::errors::to_py;
use crate::request::RequestData;
use crate::speak::{Spoken, speak_all};
use crate::stream::Stream;

/// Dia, Nari Labs' text-to-dialogue model, and the Descript Audio Codec it speaks through, on
/// Burn: text in, 44.1 kHz mono float32 NumPy audio out.
///
/// Load with `Dia.from_pretrained`. Every method releases the GIL while Rust works, so other
/// Python threads keep running; Ctrl-C stops a generation (`speak`, `speak_many`, `stream`)
/// within a decoding step. The same text, voice, parameters, seed and backend give the same
/// audio, and the codes `dia-infer` writes for them.
///
/// Example:
///     >>> dia = Dia.from_pretrained()
///     >>> audio = dia.speak("[S1] Dia runs on Burn now. [S2] From Python too?", seed=3)
///     >>> dia.sample_rate
///     44100
#[pyclass(frozen, name = "Dia", module = "dia_burn")]
pub struct PyDia {
    engine: Arc<AnyDia>,
    /// Channels (codebooks) of the codes.
    channels: usize,
}

#[pymethods]
impl PyDia {
    /// Loads the model and its codec, as `dia-infer` does.
    ///
    /// Args:
    ///     model: a Hugging Face hub repository (downloaded into the standard cache; HF_HOME
    ///         and HF_HUB_OFFLINE=1 are honoured) or a local checkpoint directory (nari or
    ///         transformers layout, sharded or not, Dia-1.6B-0626 or the original). A string
    ///         is a local path when one exists by that name or it does not read as
    ///         `owner/name`; an `os.PathLike` always is. None: nari-labs/Dia-1.6B-0626.
    ///     codec: the codec: a hub repository, or a local `.pth`, safetensors file or
    ///         transformers directory. None: descript/dac_44khz.
    ///     backend: where the model runs: "auto" (the best one built in), "flex" (CPU), or
    ///         "ndarray", "wgpu", "cuda" when the module was built with them.
    ///     dtype: the model's compute dtype, "f32", "f16" or "bf16" (default: bf16 on CUDA,
    ///         f32 elsewhere); the codec always computes in f32.
    ///     weights: how the projection weights are stored, as dia-infer's `--weights`: "f32",
    ///         "f16", "bf16", "int8", ... (default: as the dtype).
    ///     progress: show download progress bars.
    ///
    /// Raises:
    ///     FileNotFoundError: for a local path that does not exist.
    ///     ValueError: for an unknown backend, dtype or weight storage.
    ///     RuntimeError: when the weights cannot be found, downloaded or loaded.
    #[staticmethod]
    #[pyo3(
        signature = (model = None, codec = None, *, backend = "auto", dtype = None, weights = None, progress = false),
        text_signature = "(model='nari-labs/Dia-1.6B-0626', codec='descript/dac_44khz', *, backend='auto', dtype=None, weights=None, progress=False)"
    )]
    fn from_pretrained(
        py: Python<'_>,
        model: Option<&Bound<'_, PyAny>>,
        codec: Option<&Bound<'_, PyAny>>,
        backend: &str,
        dtype: Option<&str>,
        weights: Option<&str>,
        progress: bool,
    ) -> PyResult<Self> {
        let options = load_options(model, codec, backend, dtype, weights, progress)?;
        let engine = py.detach(|| AnyDia::load(&options)).map_err(to_py)?;
        let channels = on_dia(&engine, Channels).map_err(to_py)?;
        Ok(Self {
            engine: Arc::new(engine),
            channels,
        })
    }

    /// Samples per second of the audio (44100 for the released codec).
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.engine.sample_rate()
    }

    /// The backend the model runs on ("flex", "ndarray", "wgpu" or "cuda").
    #[getter]
    fn backend(&self) -> &'static str {
        self.engine.backend().name()
    }

    fn __repr__(&self) -> String {
        format!(
            "Dia(backend={:?}, sample_rate={})",
            self.backend(),
            self.sample_rate()
        )
    }

    /// Speaks `text`: mono float32 samples at `sample_rate`.
    ///
    /// Args:
    ///     text: the script, with `[S1]`/`[S2]` speaker tags; any length (long scripts are
    ///         spoken in passes, in one voice).
    ///     voice_audio: a voice to continue: an audio file (wav, mp3, flac, ogg; any rate and
    ///         channels), a codes JSON file (`*.json`), or a `(samples, sample_rate)` tuple of
    ///         a NumPy array (1-D, or 2-D `[samples, channels]`) and its rate.
    ///     transcript: what the voice says, with its speaker tags (the model reads it before
    ///         the text, as Dia requires for cloning).
    ///     audio_prompt_codes: a voice as codes `[frames, 9]` (from `encode`), instead of
    ///         `voice_audio`.
    ///     seed: the sampling seed (default 0).
    ///     temperature: sampling temperature (default 1.2); 0 decodes greedily.
    ///     top_p: nucleus sampling mass (default 0.95).
    ///     cfg_scale: classifier-free guidance scale (default 3.0).
    ///     cfg_filter_top_k: candidates kept for guidance (default 45).
    ///     max_tokens: decoder frames per pass, prompt included (default: the model's limit).
    ///     codes: also return the generated codes.
    ///
    /// Returns:
    ///     The samples, a float32 array; with `codes=True` a tuple `(samples, codes)`, the
    ///     codes a uint32 array `[frames, 9]` (every pass's).
    ///
    /// Raises:
    ///     ValueError: for input the model refuses (an empty text, a parameter out of range,
    ///         a voice too long or of the wrong shape), with its message.
    ///     FileNotFoundError: when `voice_audio` names no file.
    ///     KeyboardInterrupt: on Ctrl-C; the generation stops.
    #[pyo3(signature = (
        text, *, voice_audio = None, transcript = None, audio_prompt_codes = None, seed = None,
        temperature = None, top_p = None, cfg_scale = None, cfg_filter_top_k = None,
        max_tokens = None, codes = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn speak<'py>(
        &self,
        py: Python<'py>,
        text: String,
        voice_audio: Option<&Bound<'_, PyAny>>,
        transcript: Option<String>,
        audio_prompt_codes: Option<&Bound<'_, PyAny>>,
        seed: Option<u64>,
        temperature: Option<f32>,
        top_p: Option<f32>,
        cfg_scale: Option<f32>,
        cfg_filter_top_k: Option<usize>,
        max_tokens: Option<usize>,
        codes: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = SamplingOverrides {
            seed,
            temperature,
            top_p,
            cfg_scale,
            cfg_filter_top_k,
            max_tokens,
        };
        let request = RequestData::new(text, voice_audio, transcript, audio_prompt_codes, params)?;
        let spoken = speak_all(py, &self.engine, vec![request], 1, false)?;
        let spoken = spoken.into_iter().next().unwrap_or_default();
        self.result(py, spoken, codes)
    }

    /// Speaks `text` as it is generated: a `Stream`, an iterator of float32 arrays, each a
    /// piece of audio as soon as it is final; joined, they are what `speak` returns for the
    /// same arguments (see `speak` for them, and for the errors, raised here).
    ///
    /// Example:
    ///     >>> for piece in dia.stream("[S1] Hello there.", seed=1):
    ///     ...     player.write(piece)
    #[pyo3(signature = (
        text, *, voice_audio = None, transcript = None, audio_prompt_codes = None, seed = None,
        temperature = None, top_p = None, cfg_scale = None, cfg_filter_top_k = None,
        max_tokens = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        text: String,
        voice_audio: Option<&Bound<'_, PyAny>>,
        transcript: Option<String>,
        audio_prompt_codes: Option<&Bound<'_, PyAny>>,
        seed: Option<u64>,
        temperature: Option<f32>,
        top_p: Option<f32>,
        cfg_scale: Option<f32>,
        cfg_filter_top_k: Option<usize>,
        max_tokens: Option<usize>,
    ) -> PyResult<Stream> {
        let params = SamplingOverrides {
            seed,
            temperature,
            top_p,
            cfg_scale,
            cfg_filter_top_k,
            max_tokens,
        };
        let request = RequestData::new(text, voice_audio, transcript, audio_prompt_codes, params)?;
        Stream::start(py, Arc::clone(&self.engine), request)
    }

    /// Speaks several requests at once on one continuous batch: a request starts as soon as a
    /// slot is free, and each result is exactly what `speak` returns for it alone.
    ///
    /// Args:
    ///     requests: an iterable of texts, `Request`s, or dicts of `Request`'s arguments
    ///         (`{"text": ..., "seed": 2, "voice_audio": ...}`), each with its own voice,
    ///         seed and parameters.
    ///     batch_size: requests decoded at once.
    ///     codes: also return each request's codes.
    ///
    /// Returns:
    ///     A list, in the requests' order, of what `speak` returns.
    ///
    /// Raises:
    ///     ValueError, FileNotFoundError: as `speak`, naming the request ("request 2: ...").
    ///     KeyboardInterrupt: on Ctrl-C; every request stops.
    #[pyo3(signature = (requests, *, batch_size = 8, codes = false))]
    fn speak_many<'py>(
        &self,
        py: Python<'py>,
        requests: &Bound<'py, PyAny>,
        batch_size: usize,
        codes: bool,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        if requests.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "speak_many takes a list of requests (speak takes one text)",
            ));
        }
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let requests = requests
            .try_iter()?
            .map(|item| RequestData::from_item(&item?))
            .collect::<PyResult<Vec<_>>>()?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let spoken = speak_all(py, &self.engine, requests, batch_size, true)?;
        spoken
            .into_iter()
            .map(|spoken| self.result(py, spoken, codes))
            .collect()
    }

    /// The codec's codes of `audio`.
    ///
    /// Args:
    ///     audio: samples, 1-D, or 2-D `[samples, channels]` (averaged to mono).
    ///     sample_rate: their rate; they are resampled to `sample_rate` when it differs.
    ///
    /// Returns:
    ///     A uint32 array `[frames, 9]`, usable as `audio_prompt_codes` or by `decode`.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        audio: &Bound<'py, PyAny>,
        sample_rate: u32,
    ) -> PyResult<Bound<'py, PyArray2<u32>>> {
        let samples = audio_from_py(audio)?;
        let engine = &self.engine;
        let codes = py
            .detach(|| engine.encode(&resample(&samples, sample_rate, engine.sample_rate())?))
            .map_err(to_py)?;
        codes_to_py(py, codes, self.channels)
    }

    /// The audio of `codes`: float32 samples at `sample_rate`.
    ///
    /// Args:
    ///     codes: integers `[frames, 9]`, each below the codebook size (1024).
    ///
    /// Raises:
    ///     ValueError: for codes of another shape or out of range.
    fn decode<'py>(
        &self,
        py: Python<'py>,
        codes: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let codes = codes_from_py(codes, "codes")?;
        let samples = py.detach(|| self.engine.decode(&codes)).map_err(to_py)?;
        Ok(audio_to_py(py, samples))
    }
}

impl PyDia {
    /// A request's samples, with its codes when asked.
    fn result<'py>(
        &self,
        py: Python<'py>,
        spoken: Spoken,
        codes: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let audio = audio_to_py(py, spoken.samples);
        if !codes {
            return Ok(audio.into_any());
        }
        let codes = codes_to_py(py, spoken.codes, self.channels)?;
        Ok((audio, codes).into_pyobject(py)?.into_any())
    }
}
