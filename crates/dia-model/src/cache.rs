//! Decoder caches: the self-attention KV cache written in place, and the cross-attention K/V
//! computed once from the encoder output.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Tensor};

use crate::backend::DiaBackend;

/// Self-attention keys and values `[rows, kv_heads, max_len, head_dim]`, preallocated to the
/// generation length; step `t` writes slot `t` in place.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
}

impl<B: DiaBackend> KvCache<B> {
    /// Zeroed cache of `[rows, kv_heads, max_len, head_dim]`.
    pub fn new(shape: [usize; 4], dtype: DType, device: &B::Device) -> Self {
        // Two buffers: a shared one would be copied on the first write.
        let zeros = || Tensor::<B, 4>::zeros(shape, (device, dtype));
        Self {
            k: zeros(),
            v: zeros(),
        }
    }

    /// Capacity in positions.
    pub fn max_len(&self) -> usize {
        self.k.dims()[2]
    }

    /// Writes `k`, `v` `[rows, kv_heads, len, head_dim]` at positions `start..start + len` and
    /// returns the filled prefix `0..start + len` of both.
    pub fn append(
        &mut self,
        start: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let end = start + k.dims()[2];
        self.k.inplace(|c| B::cache_write(c, start, k));
        self.v.inplace(|c| B::cache_write(c, start, v));
        (
            self.k.clone().narrow(2, 0, end),
            self.v.clone().narrow(2, 0, end),
        )
    }
}

/// Cross-attention keys and values `[rows, kv_heads, text_len, head_dim]` for one layer.
#[derive(Debug, Clone)]
pub struct CrossKv<B: Backend> {
    pub k: Tensor<B, 4>,
    pub v: Tensor<B, 4>,
}

/// Everything a decoder pass needs besides its input: per-layer caches and the text mask.
#[derive(Debug, Clone)]
pub struct DecoderState<B: Backend> {
    pub self_attn: Vec<KvCache<B>>,
    pub cross_attn: Vec<CrossKv<B>>,
    /// `[rows, 1, 1, text_len]`, true where a text position is padding; `None` when no row
    /// has padding.
    pub cross_mask: Option<Tensor<B, 4, Bool>>,
}

impl<B: DiaBackend> DecoderState<B> {
    /// Decoder positions the self-attention caches can hold.
    pub fn max_len(&self) -> usize {
        self.self_attn.first().map_or(0, KvCache::max_len)
    }
}
