//! Audio decoder: nine summed channel embeddings, self-attention over the KV cache,
//! cross-attention over the text, MLP, and the per-channel logits head.

use crate::backend::Dense;
use crate::backend::DiaBackend;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::embedding;
use burn::tensor::{Bool, DType, Int, Tensor};

use crate::layers::Mlp;
use crate::layers::RmsNorm;
use crate::layers::{AttnMask, CrossAttention, CrossGroup, SelfAttention, SelfGroup};
use crate::layers::{DecoderState, KvCache};
use crate::layers::{RopeAngles, RotaryEmbedding};

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
    /// The channels' `[vocab, dim]` tables stacked, `[channels · vocab, dim]` (channel `c`'s
    /// token `v` is row `c · vocab + v`, transformers' layout); a frame's input is the sum of
    /// its nine rows, gathered in one lookup.
    pub embeddings: Param<Tensor<B, 2>>,
    #[module(skip)]
    pub vocab: usize,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `[dim, channels · vocab]`; output column `c · vocab + v` is channel `c`, token `v`.
    pub logits_dense: Dense<B>,
    pub rope: RotaryEmbedding<B>,
    /// Original Dia-1.6B only: RoPE for cross-attention (queries at decoder positions, keys at
    /// encoder positions).
    pub cross_rope: Option<RotaryEmbedding<B>>,
}

/// One group of a decoder pass's rows: the rows of `state` (all of them), its frames written at
/// positions `start..`. A batch that started together is one group; a continuous batch has a
/// group per item, each at its own position with its own caches.
pub struct DecodeGroup<'a, B: Backend> {
    pub state: &'a mut DecoderState<B>,
    pub start: usize,
}

/// What a group's rows need in every layer, computed once per pass.
struct GroupInputs<B: Backend> {
    rows: usize,
    angles: RopeAngles<B>,
    cross_angles: Option<RopeAngles<B>>,
    self_mask: AttnMask<B>,
    cross_mask: AttnMask<B>,
}

impl<B: DiaBackend> Decoder<B> {
    /// Cross K/V for every layer from `enc` `[rows, text_len, enc_dim]` and self-attention
    /// caches for `max_len` positions: `recycled` ones (from an item that left a continuous
    /// batch, same rows) when given, else new. `padding` `[rows, text_len]` marks padded text.
    pub fn init_state(
        &self,
        enc: Tensor<B, 3>,
        padding: Option<Tensor<B, 2, Bool>>,
        max_len: usize,
        recycled: Option<Vec<KvCache<B>>>,
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
        let (device, dtype) = (enc.device(), enc.dtype());
        let self_attn = match recycled {
            Some(caches) => caches.into_iter().map(|c| c.reset(max_len)).collect(),
            None => self
                .layers
                .iter()
                .map(|l| {
                    let s = l.self_attention.shape;
                    KvCache::new([rows, s.kv_heads, max_len, s.head_dim], dtype, &device)
                })
                .collect(),
        };
        DecoderState {
            self_attn,
            cross_attn,
            cross_mask: padding.map(|p| p.unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(1)),
        }
    }

    /// Runs frames `tokens` `[Σ rows, len, channels]`, rows in `groups` order, each group at
    /// its own positions, writing its self-attention caches; returns f32 logits
    /// `[Σ rows, len, channels, vocab]`.
    pub fn forward(
        &self,
        tokens: Tensor<B, 3, Int>,
        groups: &mut [DecodeGroup<'_, B>],
    ) -> Tensor<B, 4> {
        let [rows, len, channels] = tokens.dims();
        let mut x = self.embed(tokens);
        let inputs: Vec<GroupInputs<B>> =
            groups.iter().map(|g| self.group_inputs(g, len)).collect();
        // Each sublayer's output is added to `x` by the norm after it (one kernel on GPUs).
        let mut delta = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let h;
            (x, h) = layer.pre_sa_norm.add_forward(x, delta.take());
            let mut self_groups: Vec<SelfGroup<'_, B>> = groups
                .iter_mut()
                .zip(&inputs)
                .map(|(g, p)| SelfGroup {
                    rows: p.rows,
                    rope: &p.angles,
                    mask: &p.self_mask,
                    cache: Some((&mut g.state.self_attn[i], g.start)),
                })
                .collect();
            let attended = layer.self_attention.forward_groups(h, &mut self_groups);
            let cross_groups: Vec<CrossGroup<'_, B>> = groups
                .iter()
                .zip(&inputs)
                .map(|(g, p)| CrossGroup {
                    rows: p.rows,
                    kv: &g.state.cross_attn[i],
                    rope: p.cross_angles.as_ref(),
                    mask: &p.cross_mask,
                })
                .collect();
            let (sum, h) = layer.pre_ca_norm.add_forward(x, Some(attended));
            let crossed = layer.cross_attention.forward(h, &cross_groups);
            let (sum, h) = layer.pre_mlp_norm.add_forward(sum, Some(crossed));
            x = sum;
            delta = Some(layer.mlp.forward(h));
        }
        let (_, h) = self.norm.add_forward(x, delta);
        let vocab = self.vocab;
        self.logits_dense
            .forward(h)
            .cast(DType::F32)
            .reshape([rows, len, channels, vocab])
    }

    /// The sum of each frame's channel embeddings, `tokens` `[rows, len, channels]` →
    /// `[rows, len, dim]`: one gather from the stacked table (channel `c`'s tokens offset by
    /// `c · vocab`) and one sum, where a lookup and an add per channel took 2 × 9 kernels.
    fn embed(&self, tokens: Tensor<B, 3, Int>) -> Tensor<B, 3> {
        let [rows, len, channels] = tokens.dims();
        let offsets: Vec<i64> = (0..channels).map(|c| (c * self.vocab) as i64).collect();
        let offsets = Tensor::<B, 1, Int>::from_data(offsets.as_slice(), &tokens.device());
        let ids = (tokens + offsets.reshape([1, 1, channels])).reshape([rows, len * channels]);
        let dim = self.embeddings.dims()[1];
        // [rows, len · channels, dim] → [rows, len, channels, dim] → summed over channels.
        embedding(self.embeddings.val(), ids)
            .reshape([rows, len, channels, dim])
            .sum_dim(2)
            .reshape([rows, len, dim])
    }

    /// A group's rotations, masks and row count for a pass of `len` frames.
    fn group_inputs(&self, group: &DecodeGroup<'_, B>, len: usize) -> GroupInputs<B> {
        let start = group.start;
        GroupInputs {
            rows: group.state.rows(),
            angles: self.rope.angles(start, len),
            cross_angles: self.cross_rope.as_ref().map(|r| r.angles(start, len)),
            self_mask: if len > 1 {
                AttnMask::Causal { start }
            } else {
                AttnMask::None
            },
            cross_mask: match &group.state.cross_mask {
                Some(m) => AttnMask::Padding(m.clone()),
                None => AttnMask::None,
            },
        }
    }
}
