//! Dia (Nari Labs' text-to-dialogue model) in Burn, generic over the backend.
//!
//! Load a checkpoint with [`DiaModel::load`] and generate DAC codes: [`generate`] is the
//! reference's static batch, code for code (its items share prompt padding, as the reference's
//! do); [`ContinuousBatch`] runs requests that join and leave a running batch, each decoding
//! exactly as it would alone; [`Decoding`] is one static batch step by step. Scripts longer
//! than one pass live in [`longform`]. Most applications want the `dia-burn` crate's `Dia`
//! instead: model and codec together, text in, audio out.
//!
//! Backends plug in through [`DiaBackend`] ([`backend`]); [`BackendKind`] picks one at run
//! time by name. The layers, checkpoint tables and tokenizer are public in their modules.
//!
//! Cargo features: `flex` (default, the fast CPU backend), `ndarray`, `wgpu`, `cuda`. A
//! GPU-only application can turn the default off (`default-features = false, features =
//! ["cuda"]`) and compile no CPU backend.

pub mod backend;
pub mod checkpoint;
pub mod config;
mod error;
pub mod generation;
pub mod layers;
pub mod longform;
pub mod model;
pub mod runtime;
mod shape;
mod token_rule;
pub mod tokenizer;

pub use backend::DiaBackend;
pub use checkpoint::CheckpointFiles;
pub use config::{DiaConfig, ModelOptions, WeightStorage};
pub use error::{DiaError, Result};
pub use generation::{
    ContinuousBatch, Decoding, EndReason, GeneratedCodes, GenerationConfig, GenerationRequest,
    SamplingSite, generate,
};
pub use longform::{LongFormOptions, LongFormOutput, LongFormRequest, VoicePrompt};
pub use model::DiaModel;
pub use runtime::{BackendKind, OnBackend};
