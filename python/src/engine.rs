//! The engine behind the Python class: an [`AnyDia`] (the backend chosen by name at run time),
//! loaded as the command line loads it, and [`OnDia`] for the work that needs the backend's own
//! [`Dia`] (its scheduler).

use std::path::PathBuf;

use dia_burn::dia_model::config::parse_dtype;
use dia_burn::dia_model::{BackendKind, DiaBackend, DiaError, WeightStorage};
use dia_burn::{AnyDia, Dia, Error, LoadOptions, Source};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::errors::not_found;

/// Work generic over the backend, run on the engine's own [`Dia`].
pub trait OnDia {
    type Output;
    fn run<B: DiaBackend>(self, dia: &Dia<B>) -> Self::Output;
}

/// Runs `job` on `engine`'s [`Dia`]; an error for a backend this module was built without
/// (only when another crate of a workspace build turned it on in dia-burn).
pub fn on_dia<J: OnDia>(engine: &AnyDia, job: J) -> Result<J::Output, Error> {
    match engine {
        #[cfg(feature = "flex")]
        AnyDia::Flex(dia) => Ok(job.run(dia)),
        #[cfg(feature = "ndarray")]
        AnyDia::NdArray(dia) => Ok(job.run(dia)),
        #[cfg(feature = "wgpu")]
        AnyDia::Wgpu(dia) => Ok(job.run(dia)),
        #[cfg(feature = "cuda")]
        AnyDia::Cuda(dia) => Ok(job.run(dia)),
        #[allow(unreachable_patterns)]
        other => Err(DiaError::Unavailable(format!(
            "the dia_burn module was built without the {} backend",
            other.backend()
        ))
        .into()),
    }
}

/// The channels (codebooks) of the model's codes.
pub struct Channels;

impl OnDia for Channels {
    type Output = usize;

    fn run<B: DiaBackend>(self, dia: &Dia<B>) -> usize {
        dia.model().config.decoder.num_channels
    }
}

/// What `Dia.from_pretrained` was given, read into [`LoadOptions`].
pub fn load_options(
    model: Option<&Bound<'_, PyAny>>,
    codec: Option<&Bound<'_, PyAny>>,
    backend: &str,
    dtype: Option<&str>,
    weights: Option<&str>,
    progress: bool,
) -> PyResult<LoadOptions> {
    let defaults = LoadOptions::default();
    let value_error = |e: String| PyValueError::new_err(e);
    Ok(LoadOptions {
        model: source(model, defaults.model, "model")?,
        codec: source(codec, defaults.codec, "codec")?,
        backend: backend
            .parse::<BackendKind>()
            .map_err(|e| value_error(e.to_string()))?,
        dtype: dtype.map(parse_dtype).transpose().map_err(value_error)?,
        weights: weights
            .map(str::parse::<WeightStorage>)
            .transpose()
            .map_err(value_error)?,
        progress,
    })
}

/// A model or codec argument: `None` for the default, a hub repository id (`owner/name`) unless
/// a local path of that name exists, or a local path (any other string, or an `os.PathLike`),
/// which must exist.
fn source(given: Option<&Bound<'_, PyAny>>, default: Source, what: &str) -> PyResult<Source> {
    let Some(given) = given else {
        return Ok(default);
    };
    let path = match given.cast::<PyString>() {
        Ok(name) => {
            let name = name.to_str()?;
            if is_repo_id(name) {
                return Ok(Source::from(name));
            }
            PathBuf::from(name)
        }
        Err(_) => given.extract::<PathBuf>()?,
    };
    match path.exists() {
        true => Ok(Source::Local(path)),
        false => Err(not_found(what, &path)),
    }
}

/// Whether `name` reads as a hub repository id: `name` or `owner/name` of letters, digits and
/// `-_.`, not starting like a path (`.`, `/`, `~`).
fn is_repo_id(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
    !name.is_empty()
        && !name.starts_with(['.', '/', '~'])
        && name.split('/').count() <= 2
        && name.split('/').all(|part| !part.is_empty())
        && name.chars().all(allowed)
}
