//! Dia (Nari Labs' text-to-dialogue model) in Burn, generic over the backend.
//!
//! Load a checkpoint with [`DiaModel::load`], then generate DAC codes with
//! [`generate`](crate::generate::generate).

pub mod attention;
pub mod backend;
pub mod cache;
mod checkpoint;
pub mod config;
pub mod decoder;
pub mod delay;
pub mod dense;
pub mod encoder;
pub mod error;
pub mod generate;
pub mod layout;
pub mod mlp;
pub mod model;
pub mod norm;
pub mod pretrained;
pub mod rope;
pub mod sampling;
pub mod tokenizer;

pub use backend::DiaBackend;
pub use config::{DecoderConfig, DiaConfig, EncoderConfig, ModelGeneration};
pub use error::{DiaError, Result};
pub use generate::{
    EndReason, GeneratedCodes, GenerationConfig, GenerationRequest, StepEvent, generate,
};
pub use layout::WeightLayout;
pub use model::{DiaModel, ModelOptions, TextBatch};
pub use pretrained::CheckpointFiles;
