//! What to say: a text, an optional voice to continue (an audio file, samples with their rate,
//! or codes) with its transcript, and the generation parameters, as Python hands them over
//! (`Dia.speak`'s keywords, a `Request`, or a dict of those keywords in `Dia.speak_many`).

use std::path::PathBuf;

use dia_burn::dia_model::{DiaBackend, GenerationConfig, LongFormRequest, VoicePrompt};
use dia_burn::{Dia, Error, SamplingOverrides, SpeechJob};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::arrays::{audio_from_py, codes_from_py, resample};
use crate::errors::not_found;

/// A voice to continue, as given.
#[derive(Debug, Clone)]
enum VoiceInput {
    /// An audio file (wav, mp3, flac, ogg) or a codes JSON file (`*.json`).
    File(PathBuf),
    /// Mono samples at `rate` Hz.
    Samples { samples: Vec<f32>, rate: u32 },
    /// Codes `[frames][channels]`.
    Codes(Vec<Vec<u32>>),
}

impl VoiceInput {
    /// `voice_audio` as given: a path (`str` or `os.PathLike`, which must exist) or a
    /// `(samples, sample_rate)` tuple.
    fn from_audio(audio: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(pair) = audio.cast::<PyTuple>() {
            let (samples, rate): (Bound<'_, PyAny>, u32) = pair.extract()?;
            let samples = audio_from_py(&samples)?;
            return Ok(Self::Samples { samples, rate });
        }
        if audio.cast::<PyString>().is_err() && audio.hasattr("__array__")? {
            return Err(PyTypeError::new_err(
                "voice_audio takes a path or a (samples, sample_rate) tuple: pass the array \
                 with its rate",
            ));
        }
        let path: PathBuf = audio.extract()?;
        match path.is_file() {
            true => Ok(Self::File(path)),
            false => Err(not_found("voice audio", &path)),
        }
    }

    /// The voice prompt `dia` makes of this input with `transcript`, checked to leave the model
    /// room to speak.
    fn prompt<B: DiaBackend>(&self, dia: &Dia<B>, transcript: &str) -> Result<VoicePrompt, Error> {
        match self {
            Self::File(path) => dia.voice_from_file(path, transcript),
            Self::Samples { samples, rate } => {
                let samples = resample(samples, *rate, dia.sample_rate())?;
                dia.voice_from_codes(dia.encode(&samples)?, transcript)
            }
            Self::Codes(codes) => dia.voice_from_codes(codes.clone(), transcript),
        }
    }
}

/// A request, read and checked as far as Python input goes (the model checks the rest when it
/// is submitted).
#[derive(Debug, Clone)]
pub struct RequestData {
    text: String,
    voice: Option<VoiceInput>,
    transcript: String,
    config: GenerationConfig,
}

impl RequestData {
    /// The scheduler job of this request (its voice encoded by `dia`), streamed so that its
    /// audio arrives piece by piece and is the same however it is read.
    pub fn job<B: DiaBackend>(&self, dia: &Dia<B>) -> Result<SpeechJob, Error> {
        let voice = match &self.voice {
            Some(voice) => Some(voice.prompt(dia, &self.transcript)?),
            None => None,
        };
        Ok(SpeechJob {
            script: LongFormRequest {
                script: self.text.clone(),
                voice,
            },
            config: self.config,
            stream: true,
        })
    }

    /// An item of `Dia.speak_many`: a text, a `Request`, or a dict of `Request`'s arguments.
    pub fn from_item(item: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(text) = item.cast::<PyString>() {
            return Self::new(
                text.to_str()?.to_string(),
                None,
                None,
                None,
                SamplingOverrides::default(),
            );
        }
        if let Ok(request) = item.cast::<PyRequest>() {
            return Ok(request.get().data.clone());
        }
        let Ok(keywords) = item.cast::<PyDict>() else {
            return Err(PyTypeError::new_err(format!(
                "a request is a str, a dia_burn.Request or a dict of Request's arguments, not {}",
                item.get_type().name()?
            )));
        };
        let request = item.py().get_type::<PyRequest>().call((), Some(keywords))?;
        Ok(request.cast::<PyRequest>()?.get().data.clone())
    }

    /// A request from `Request`'s (and `Dia.speak`'s) arguments.
    pub fn new(
        text: String,
        voice_audio: Option<&Bound<'_, PyAny>>,
        transcript: Option<String>,
        audio_prompt_codes: Option<&Bound<'_, PyAny>>,
        params: SamplingOverrides,
    ) -> PyResult<Self> {
        let voice = match (voice_audio, audio_prompt_codes) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give voice_audio or audio_prompt_codes, not both",
                ));
            }
            (Some(audio), None) => Some(VoiceInput::from_audio(audio)?),
            (None, Some(codes)) => Some(VoiceInput::Codes(codes_from_py(
                codes,
                "audio_prompt_codes",
            )?)),
            (None, None) => None,
        };
        if voice.is_none() && transcript.is_some() {
            return Err(PyValueError::new_err(
                "a transcript needs a voice (voice_audio or audio_prompt_codes) to describe",
            ));
        }
        Ok(Self {
            text,
            voice,
            transcript: transcript.unwrap_or_default(),
            config: params.over(GenerationConfig::default()),
        })
    }
}

/// One text to speak with its own voice and parameters, for `Dia.speak_many` (which also takes
/// plain strings, and dicts of these arguments).
///
/// Args:
///     text: the script, with `[S1]`/`[S2]` speaker tags; any length (long scripts are spoken
///         in passes, in one voice).
///     voice_audio: a voice to continue: an audio file (wav, mp3, flac, ogg; any rate and
///         channels), a codes JSON file (`*.json`), or a `(samples, sample_rate)` tuple of a
///         NumPy array (1-D, or 2-D `[samples, channels]`) and its rate.
///     transcript: what the voice says, with its speaker tags (the model reads it before the
///         text, as Dia requires for cloning).
///     audio_prompt_codes: a voice as codes `[frames, 9]` (from `Dia.encode`), instead of
///         `voice_audio`.
///     seed: the sampling seed (default 0): the same seed, inputs and backend give the same
///         audio.
///     temperature: sampling temperature (default 1.2); 0 decodes greedily.
///     top_p: nucleus sampling mass (default 0.95).
///     cfg_scale: classifier-free guidance scale (default 3.0).
///     cfg_filter_top_k: candidates kept for guidance (default 45).
///     max_tokens: decoder frames per pass, prompt included (default: the model's limit).
///
/// Raises:
///     ValueError: for inconsistent arguments or unusable arrays.
///     FileNotFoundError: when `voice_audio` names no file.
#[pyclass(frozen, name = "Request", module = "dia_burn")]
pub struct PyRequest {
    data: RequestData,
}

#[pymethods]
impl PyRequest {
    #[new]
    #[pyo3(signature = (
        text, *, voice_audio = None, transcript = None, audio_prompt_codes = None, seed = None,
        temperature = None, top_p = None, cfg_scale = None, cfg_filter_top_k = None,
        max_tokens = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
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
    ) -> PyResult<Self> {
        let params = SamplingOverrides {
            seed,
            temperature,
            top_p,
            cfg_scale,
            cfg_filter_top_k,
            max_tokens,
        };
        let data = RequestData::new(text, voice_audio, transcript, audio_prompt_codes, params)?;
        Ok(Self { data })
    }

    /// The script to speak.
    #[getter]
    fn text(&self) -> &str {
        &self.data.text
    }

    /// The sampling seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.data.config.seed
    }

    fn __repr__(&self) -> String {
        let voice = match &self.data.voice {
            Some(VoiceInput::File(path)) => format!(", voice_audio={:?}", path.display()),
            Some(VoiceInput::Samples { samples, rate }) => {
                format!(", voice_audio=<{} samples at {rate} Hz>", samples.len())
            }
            Some(VoiceInput::Codes(codes)) => {
                format!(", audio_prompt_codes=<{} frames>", codes.len())
            }
            None => String::new(),
        };
        let seed = self.data.config.seed;
        format!("Request({:?}{voice}, seed={seed})", self.data.text)
    }
}
