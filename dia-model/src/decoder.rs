//! Audio decoder: nine summed channel embeddings, self-attention over the KV cache,
//! cross-attention over the text, MLP, and the per-channel logits head.

use crate::backend::DiaBackend;
use crate::dense::Dense;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::embedding;
use burn::tensor::{Bool, DType, Int, Tensor};

use crate::attention::{AttnMask, CrossAttention, SelfAttention};
use crate::cache::{DecoderState, KvCache};
use crate::mlp::Mlp;
use crate::norm::RmsNorm;
use crate::rope::RotaryEmbedding;

/// One decoder layer: self-attention, cross-attention, MLP, each pre-normed and residual.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub pre_sa_norm: RmsNorm<B>,
    pub self_attention: SelfAttention<B>,
    pub pre_ca_norm: RmsNorm<B>,
    pub cross_attention: CrossAttention<B>,
    pub pre_mlp_norm: RmsNorm<B>,
    pub mlp: Mlp<B>,
}

/// The audio decoder.
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    /// One `[vocab, dim]` table per channel; a frame's input is the sum of its nine rows.
    pub embeddings: Vec<Param<Tensor<B, 2>>>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `[dim, channels · vocab]`; output column `c · vocab + v` is channel `c`, token `v`.
    pub logits_dense: Dense<B>,
    pub rope: RotaryEmbedding<B>,
    /// Original Dia-1.6B only: RoPE for cross-attention (queries at decoder positions, keys at
    /// encoder positions).
    pub cross_rope: Option<RotaryEmbedding<B>>,
}

impl<B: DiaBackend> Decoder<B> {
    /// Cross K/V for every layer from `enc` `[rows, text_len, enc_dim]` and self-attention
    /// caches for `max_len` positions. `padding` `[rows, text_len]` marks padded text.
    pub fn init_state(
        &self,
        enc: Tensor<B, 3>,
        padding: Option<Tensor<B, 2, Bool>>,
        max_len: usize,
    ) -> DecoderState<B> {
        let [rows, text_len, _] = enc.dims();
        let key_angles = self.cross_rope.as_ref().map(|r| r.angles(0, text_len));
        let cross_attn = self
            .layers
            .iter()
            .map(|l| {
                l.cross_attention
                    .precompute(enc.clone(), key_angles.as_ref())
            })
            .collect();
        let device = enc.device();
        let dtype = enc.dtype();
        let self_attn = self
            .layers
            .iter()
            .map(|l| {
                let s = l.self_attention.shape;
                KvCache::new([rows, s.kv_heads, max_len, s.head_dim], dtype, &device)
            })
            .collect();
        DecoderState {
            self_attn,
            cross_attn,
            cross_mask: padding.map(|p| p.unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(1)),
        }
    }

    /// Runs frames `tokens` `[rows, len, channels]` at positions `start..start + len`,
    /// writing the self-attention caches; returns f32 logits `[rows, len, channels, vocab]`.
    pub fn forward(
        &self,
        tokens: Tensor<B, 3, Int>,
        start: usize,
        state: &mut DecoderState<B>,
    ) -> Tensor<B, 4> {
        let [rows, len, channels] = tokens.dims();
        let mut x = self
            .embeddings
            .iter()
            .enumerate()
            .map(|(c, table)| {
                let ids = tokens.clone().narrow(2, c, 1).reshape([rows, len]);
                embedding(table.val(), ids)
            })
            .reduce(|a, b| a + b)
            .expect("the config guarantees at least one channel");
        let angles = self.rope.angles(start, len);
        let cross_angles = self.cross_rope.as_ref().map(|r| r.angles(start, len));
        let self_mask = if len > 1 {
            AttnMask::Causal { start }
        } else {
            AttnMask::None
        };
        let cross_mask = match &state.cross_mask {
            Some(m) => AttnMask::Padding(m.clone()),
            None => AttnMask::None,
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.pre_sa_norm.forward(x.clone());
            let cache = (&mut state.self_attn[i], start);
            x = x + layer
                .self_attention
                .forward(h, &angles, &self_mask, Some(cache));
            let h = layer.pre_ca_norm.forward(x.clone());
            x = x + layer.cross_attention.forward(
                h,
                &state.cross_attn[i],
                cross_angles.as_ref(),
                &cross_mask,
            );
            let h = layer.pre_mlp_norm.forward(x.clone());
            x = x + layer.mlp.forward(h);
        }
        let h = self.norm.forward(x);
        let vocab = self.embeddings.first().map_or(0, |t| t.dims()[0]);
        self.logits_dense
            .forward(h)
            .cast(DType::F32)
            .reshape([rows, len, channels, vocab])
    }
}
