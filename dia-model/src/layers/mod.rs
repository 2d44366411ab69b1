//! The model's layers, each generic over the backend and computing through its hooks
//! ([`crate::backend::DiaBackend`]): attention (self, with fused q/k/v, and cross), the gated
//! MLP, RMSNorm, rotary embeddings, the KV caches, and the encoder and decoder stacks.

mod attention;
mod cache;
mod decoder;
mod encoder;
mod mlp;
mod norm;
mod rope;

pub use self::attention::{
    AttnMask, CrossAttention, CrossGroup, HeadShape, QkvProjection, SelfAttention, SelfGroup,
};
pub use self::cache::{CrossKv, DecoderState, KvCache};
pub use self::decoder::{DecodeGroup, Decoder, DecoderLayer};
pub use self::encoder::{Encoder, EncoderLayer};
pub use self::mlp::Mlp;
pub use self::norm::RmsNorm;
pub use self::rope::{RopeAngles, RotaryEmbedding};
