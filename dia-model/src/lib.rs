//! Dia (Nari Labs' text-to-dialogue model) in Burn, generic over the backend.
//!
//! Load a checkpoint with [`DiaModel::load`], then generate DAC codes with [`generate`] (or
//! step by step with [`Decoding`], requests joining and leaving a running batch with
//! [`ContinuousBatch`], or a script of any length in passes with
//! [`generate_long`]); `dia-dac` turns the codes into audio. Backends plug in through
//! [`DiaBackend`]; [`BackendKind`] picks one at run time by name.
//!
//! Cargo features: `flex` (default, the fast CPU backend), `ndarray`, `wgpu`, `cuda`. A
//! GPU-only application can turn the default off (`default-features = false, features =
//! ["cuda"]`) and compile no CPU backend.

mod attention;
pub mod backend;
mod cache;
mod checkpoint;
mod config;
mod decoder;
mod dense;
mod encoder;
mod error;
mod generation;
mod longform;
mod mlp;
mod model;
mod norm;
mod options;
mod rope;
mod runtime;
mod tokenizer;

pub use attention::{
    AttnMask, CrossAttention, CrossGroup, HeadShape, QkvProjection, SelfAttention, SelfGroup,
};
pub use backend::DiaBackend;
pub use cache::{CrossKv, DecoderState, KvCache};
pub use checkpoint::CheckpointFiles;
pub use checkpoint::names::{
    Attn, CheckpointFormat, ModelParam, NormAt, ParamSpec, Proj, Stack, StoredTensor, Transform,
};
pub use config::{DecoderConfig, DiaConfig, EncoderConfig, ModelVersion};
pub use decoder::{DecodeGroup, Decoder, DecoderLayer};
pub use dense::{Dense, Int8Weight, TILE, TILE_SPAN, TILE_STREAMS, Tiles, tile_offset};
pub use encoder::{Encoder, EncoderLayer};
pub use error::{DiaError, Result};
pub use generation::{
    ContinuousBatch, DEFAULT_READ_BACK, DecodeStep, Decoding, DelayedTokens, EndReason,
    GeneratedCodes, GenerationConfig, GenerationRequest, HOST_READ_SPAN, ItemId, ItemStep, Sampler,
    SamplerParams, SamplingSite, SpecialIds, StepEvent, TokenChooser, check_request, generate,
};
pub use longform::{
    CJK_CHARS_PER_SECOND, LETTERS_PER_SECOND, LongFormEvent, LongFormOptions, LongFormOutput,
    LongFormRequest, NON_VERBAL_SECONDS, Pass, PassOutput, PassRequest, PlanOptions, ScriptRun,
    Segment, VoiceMemory, VoicePrompt, estimate_seconds, generate_long, pass_seed, plan, render,
    text_tokens, turns,
};
pub use mlp::Mlp;
pub use model::{DiaModel, TextBatch};
pub use norm::RmsNorm;
pub use options::{ModelOptions, WeightStorage, parse_dtype};
pub use rope::{RopeAngles, RotaryEmbedding};
pub use runtime::{BackendKind, OnBackend, dtype_name, ensure_dtype};
pub use tokenizer::{EncodedText, TEXT_PAD_ID, encode_text};
