//! Rust errors as Python exceptions: the exception type from what went wrong (`ValueError` for
//! input the model or codec refuses, `FileNotFoundError` for a missing file, `RuntimeError` for
//! the rest), the message the Rust error's own.

use std::io::ErrorKind;
use std::path::Path;

use dia_burn::Error;
use dia_burn::dia_dac::DacError;
use dia_burn::dia_model::DiaError;
use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyRuntimeError, PyValueError};

/// The Python exception types a Rust error becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    NotFound,
    Runtime,
}

/// `error` as a Python exception carrying its message.
pub fn to_py(error: Error) -> PyErr {
    with_context(error, None)
}

/// `error` as a Python exception, its message after `context` when there is one (say, which
/// request of a batch failed).
pub fn with_context(error: Error, context: Option<&str>) -> PyErr {
    let message = match context {
        Some(context) => format!("{context}: {error}"),
        None => error.to_string(),
    };
    match kind(&error) {
        Kind::Value => PyValueError::new_err(message),
        Kind::NotFound => PyFileNotFoundError::new_err(message),
        Kind::Runtime => PyRuntimeError::new_err(message),
    }
}

/// A `FileNotFoundError` for `path` (`errno` ENOENT, `filename` set) naming what it should be.
pub fn not_found(what: &str, path: &Path) -> PyErr {
    const ENOENT: i32 = 2;
    let path = path.display().to_string();
    PyFileNotFoundError::new_err((ENOENT, format!("{what} not found"), path))
}

fn kind(error: &Error) -> Kind {
    match error {
        Error::Model(e) => model_kind(e),
        Error::Codec(e) => codec_kind(e),
        Error::Load { cause, .. } => kind(cause),
        Error::Audio(_) | Error::Codes(_) | Error::Invalid(_) => Kind::Value,
        Error::Hub(_) | Error::Write(_) => Kind::Runtime,
    }
}

fn model_kind(error: &DiaError) -> Kind {
    match error {
        DiaError::InvalidInput(_) => Kind::Value,
        DiaError::Io { source, .. } if source.kind() == ErrorKind::NotFound => Kind::NotFound,
        _ => Kind::Runtime,
    }
}

fn codec_kind(error: &DacError) -> Kind {
    match error {
        DacError::CodeOutOfRange { .. } | DacError::InputShape { .. } => Kind::Value,
        _ => Kind::Runtime,
    }
}
