//! What can go wrong between text and audio: in the model, in the codec, or in the files and
//! downloads around them. Every message names the file or value at fault.

use std::path::PathBuf;

use dia_dac::DacError;
use dia_model::DiaError;

/// The error of everything in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model refused the input or failed (bad text or prompt, unavailable backend, ...).
    #[error(transparent)]
    Model(#[from] DiaError),
    /// The codec refused its input or weights.
    #[error(transparent)]
    Codec(#[from] DacError),
    /// Weights that cannot be loaded: the model's or the codec's, from where, and why.
    #[error("cannot load the {what} from {}: {cause}", path.display())]
    Load {
        what: &'static str,
        path: PathBuf,
        cause: Box<Error>,
    },
    /// An audio file that cannot serve as a voice: unreadable, empty, silent or too long.
    #[error("{0}")]
    Audio(String),
    /// A codes JSON file that cannot be read or does not fit the codec.
    #[error("{0}")]
    Codes(String),
    /// A hub repository's file that cannot be found in the cache or downloaded.
    #[error("{0}")]
    Hub(String),
    /// A file that cannot be written.
    #[error("{0}")]
    Write(String),
    /// Options or input that do not fit together (say which).
    #[error("{0}")]
    Invalid(String),
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
