//! The one error type of the crate: every failure names the file, tensor key or input shape.

use std::path::PathBuf;

/// Everything that can go wrong while loading a DAC checkpoint or running it on caller data.
#[derive(Debug, thiserror::Error)]
pub enum DacError {
    /// The file or directory could not be read, or is not a checkpoint we understand
    /// (truncated, corrupt container, unreadable config).
    #[error("{file}: {reason}")]
    Checkpoint {
        /// The offending file or directory.
        file: PathBuf,
        /// What was wrong with it.
        reason: String,
    },

    /// A tensor the configuration needs is absent from the checkpoint.
    #[error("{file}: missing tensor `{key}`")]
    MissingTensor {
        /// The checkpoint file.
        file: PathBuf,
        /// The key, in the original DAC naming.
        key: String,
    },

    /// A tensor exists but its shape does not fit the configuration.
    #[error("{file}: tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The checkpoint file.
        file: PathBuf,
        /// The key, in the original DAC naming.
        key: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape stored in the file.
        found: Vec<usize>,
    },

    /// A tensor could not be read or is not a float tensor.
    #[error("{file}: tensor `{key}`: {reason}")]
    BadTensor {
        /// The checkpoint file.
        file: PathBuf,
        /// The key, in the original DAC naming.
        key: String,
        /// What was wrong with it.
        reason: String,
    },

    /// The checkpoint holds a tensor that no layer of this configuration uses.
    #[error("{file}: unexpected tensor `{key}` (not part of a DAC with this configuration)")]
    UnexpectedTensor {
        /// The checkpoint file.
        file: PathBuf,
        /// The key, after prefix stripping and renaming to the original DAC naming.
        key: String,
    },

    /// The configuration describes no valid codec.
    #[error("invalid DAC configuration: {0}")]
    InvalidConfig(String),

    /// A code lies outside `0..codebook_size`.
    #[error(
        "code {value} at [batch {batch}, codebook {codebook}, frame {frame}] is outside 0..{codebook_size}"
    )]
    CodeOutOfRange {
        /// The offending value.
        value: i64,
        /// Batch index.
        batch: usize,
        /// Codebook index.
        codebook: usize,
        /// Frame index.
        frame: usize,
        /// Number of entries per codebook.
        codebook_size: usize,
    },

    /// The backend could not hand a tensor's data back to the host.
    #[error("reading a tensor back from the device failed: {0}")]
    ReadBack(String),

    /// Codes or audio handed to the codec have an unusable shape.
    #[error("{what}: expected {expected}, got shape {found:?}")]
    InputShape {
        /// Which input (`codes`, `audio`, `frames`, ...).
        what: &'static str,
        /// The accepted shape, in words.
        expected: String,
        /// The shape received.
        found: Vec<usize>,
    },
}
