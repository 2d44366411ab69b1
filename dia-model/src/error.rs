//! Errors of the Dia model crate: every variant names the file, tensor or value at fault.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running Dia.
#[derive(Debug, thiserror::Error)]
pub enum DiaError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or matches neither known schema.
    #[error("invalid config {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// A directory or file that holds no checkpoint layout this crate knows.
    #[error("{path}: {message}")]
    UnknownLayout { path: PathBuf, message: String },
    /// A safetensors file whose header or data is damaged or cut short.
    #[error("corrupt checkpoint {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// A tensor the model needs is not in the checkpoint.
    #[error("{path}: missing tensor `{key}`")]
    MissingTensor { path: PathBuf, key: String },
    /// A tensor has another shape than the config implies.
    #[error("{path}: tensor `{key}` has shape {found:?}, expected {expected:?} from the config")]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A tensor is stored in a dtype that is not a float type we can convert.
    #[error("{path}: tensor `{key}` has dtype {dtype}, expected F32, F16 or BF16")]
    UnsupportedDtype {
        path: PathBuf,
        key: String,
        dtype: String,
    },
    /// The checkpoint holds tensors the config does not account for (for example more layers).
    #[error("{path}: tensor `{key}` is not part of the model the config describes")]
    UnexpectedTensor { path: PathBuf, key: String },
    /// The model produced NaN or infinite logits (a damaged checkpoint, or an overflow in a
    /// narrow dtype): the run stops rather than sample garbage.
    #[error(
        "decoder frame {frame}: non-finite logit at index {index} (damaged weights, or an overflow in this dtype)"
    )]
    NonFinite { frame: usize, index: usize },
    /// A backend or dtype that this build or device cannot run.
    #[error("{0}")]
    Unavailable(String),
    /// A continuous batch has no free slot: the caller queues the request until one leaves.
    #[error("the batch is full ({max_batch} items): wait for an item to leave")]
    BatchFull { max_batch: usize },
    /// Invalid generation input or parameter.
    #[error("{0}")]
    InvalidInput(String),
}

impl DiaError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, DiaError>;
