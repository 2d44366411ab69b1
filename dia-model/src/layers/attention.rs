//! Attention with scale 1.0 and grouped KV heads: encoder/decoder self-attention (optionally
//! with fused q/k/v) and decoder cross-attention.

use crate::backend::Dense;
use crate::backend::DiaBackend;
use crate::shape::split_heads;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

use crate::layers::RopeAngles;
use crate::layers::{CrossKv, KvCache};

/// Head counts and size of one attention block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// The q/k/v projections, as three matrices or one `[dim, (heads + 2·kv_heads)·head_dim]`.
// One per layer, built once at load: the variants' size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum QkvProjection<B: Backend> {
    /// `q_proj`, `k_proj`, `v_proj` as in the checkpoint.
    Separate(SeparateQkv<B>),
    /// One matrix whose columns are q, then k, then v: one read of x, one matmul.
    Fused(Dense<B>),
}

/// Three separate projections.
#[derive(Module, Debug)]
pub struct SeparateQkv<B: Backend> {
    pub q_proj: Dense<B>,
    pub k_proj: Dense<B>,
    pub v_proj: Dense<B>,
}

impl<B: DiaBackend> QkvProjection<B> {
    /// Builds the projection, joining the three weights' columns when `fused`, laid out for the
    /// backend's kernels ([`DiaBackend::arrange`]; weights given in `[in, out]` are joined
    /// without a round trip through that layout).
    pub fn new(q: Dense<B>, k: Dense<B>, v: Dense<B>, fused: bool) -> Self {
        if fused {
            Self::Fused(Dense::cat_columns(vec![q, k, v]))
        } else {
            Self::Separate(SeparateQkv {
                q_proj: B::arrange(q),
                k_proj: B::arrange(k),
                v_proj: B::arrange(v),
            })
        }
    }

    /// `[batch, seq, dim]` → q `[batch, heads, seq, d]`, k and v `[batch, kv_heads, seq, d]`.
    fn forward(&self, x: Tensor<B, 3>, shape: HeadShape) -> [Tensor<B, 4>; 3] {
        match self {
            Self::Separate(p) => [
                split_heads(p.q_proj.forward(x.clone()), shape.heads),
                split_heads(p.k_proj.forward(x.clone()), shape.kv_heads),
                split_heads(p.v_proj.forward(x), shape.kv_heads),
            ],
            Self::Fused(linear) => {
                let heads = [shape.heads, shape.kv_heads, shape.kv_heads];
                B::project_heads(x, linear, &heads, shape.head_dim)
                    .try_into()
                    .expect("three head counts, three parts")
            }
        }
    }
}

/// Which keys each query may see.
#[derive(Debug, Clone)]
pub enum AttnMask<B: Backend> {
    /// Every key.
    None,
    /// `[rows, 1, 1, keys]`, true where a key is padding.
    Padding(Tensor<B, 4, Bool>),
    /// Queries at positions `start..` see keys `0..=position` (decoder prefill).
    Causal { start: usize },
}

/// `x` `[batch, seq, in]` through `proj` straight into `[batch, heads, seq, d]`: the product
/// split by head, each part contiguous, stacked heads-first, so attention over the cached
/// cross K/V never copies them again.
fn project_heads<B: DiaBackend>(x: Tensor<B, 3>, proj: &Dense<B>, heads: usize) -> Tensor<B, 4> {
    let [batch, seq, _] = x.dims();
    let d = proj.dims()[1] / heads;
    let per_head = proj
        .forward_split(x, &vec![d; heads])
        .into_iter()
        .map(|h| h.reshape([batch, 1, seq, d]))
        .collect();
    Tensor::cat(per_head, 1)
}

/// `[batch, heads, seq, d]` → `[batch, seq, heads·d]`; a single position (a decode step)
/// is already in that order, so it is not copied.
fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [batch, heads, seq, dim] = x.dims();
    if seq == 1 {
        return x.reshape([batch, 1, heads * dim]);
    }
    x.swap_dims(1, 2).reshape([batch, seq, heads * dim])
}

/// softmax(q·kᵀ)·v with scale 1.0. q `[b, heads, tq, d]`, k/v `[b, kv_heads, tk, d]`; query
/// head `h` uses KV head `h / (heads / kv_heads)`.
pub fn attend<B: DiaBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: &AttnMask<B>,
) -> Tensor<B, 4> {
    let [batch, heads, tq, dim] = q.dims();
    let [_, kv_heads, tk, _] = k.dims();
    let group = heads / kv_heads;
    if tq == 1 {
        // One query per head (a decode step): the group of heads sharing a KV head plays the
        // query axis, [b, heads, 1, d] → [b, kv_heads, group, d], so no KV head is copied.
        let hidden = match mask {
            AttnMask::Padding(m) => Some(m.clone()),
            // The only query is the last position: causality hides none of the keys.
            AttnMask::None | AttnMask::Causal { .. } => None,
        };
        let q = q.reshape([batch, kv_heads, group, dim]);
        return B::attend_one(q, k, v, hidden).reshape([batch, heads, 1, dim]);
    }
    let (k, v) = if group > 1 {
        let repeat = |t: Tensor<B, 4>| {
            t.unsqueeze_dim::<5>(2)
                .expand([batch, kv_heads, group, tk, dim])
                .reshape([batch, heads, tk, dim])
        };
        (repeat(k), repeat(v))
    } else {
        (k, v)
    };
    let mask = match mask {
        AttnMask::None => None,
        AttnMask::Padding(m) => Some(m.clone().expand([batch, heads, tq, tk])),
        AttnMask::Causal { start } => {
            let device = q.device();
            let rows = Tensor::<B, 1, burn::tensor::Int>::arange(
                *start as i64..(*start + tq) as i64,
                &device,
            )
            .reshape([tq, 1]);
            let cols =
                Tensor::<B, 1, burn::tensor::Int>::arange(0..tk as i64, &device).reshape([1, tk]);
            let future = cols.greater(rows.expand([tq, tk]));
            Some(future.unsqueeze::<4>().expand([batch, heads, tq, tk]))
        }
    };
    attention(q, k, v, mask, None, unit_scale())
}

/// One run of consecutive batch rows that share positions, mask and KV cache in a
/// self-attention pass: one item's CFG rows in a continuous batch, or every row of a batch that
/// started together.
pub struct SelfGroup<'a, B: Backend> {
    pub rows: usize,
    pub rope: &'a RopeAngles<B>,
    pub mask: &'a AttnMask<B>,
    /// The group's cache and the position its first frame is written at.
    pub cache: Option<(&'a mut KvCache<B>, usize)>,
}

/// Runs `f` on each group's rows of `parts` (each `[rows, ..]`) and stacks the results by
/// row; a single group gets the tensors whole. Attention is computed per group so a row's
/// arithmetic never depends on the other groups' lengths or positions.
fn per_group<B: Backend, const D: usize, const N: usize>(
    parts: [Tensor<B, D>; N],
    rows: &[usize],
    mut f: impl FnMut(usize, [Tensor<B, D>; N]) -> Tensor<B, 3>,
) -> Tensor<B, 3> {
    if rows.len() == 1 {
        return f(0, parts);
    }
    let mut start = 0;
    let outs = rows
        .iter()
        .enumerate()
        .map(|(g, &n)| {
            let group = parts.clone().map(|t| t.narrow(0, start, n));
            start += n;
            f(g, group)
        })
        .collect();
    Tensor::cat(outs, 0)
}

/// Self-attention with RoPE on q and k; the decoder's passes a KV cache.
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    pub qkv: QkvProjection<B>,
    pub o_proj: Dense<B>,
    #[module(skip)]
    pub shape: HeadShape,
}

impl<B: DiaBackend> SelfAttention<B> {
    /// `x` `[batch, seq, dim]` at the positions of `rope`; with a cache, k/v are written at
    /// `start..` and attention runs over the filled prefix.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &RopeAngles<B>,
        mask: &AttnMask<B>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let rows = x.dims()[0];
        self.forward_groups(
            x,
            &mut [SelfGroup {
                rows,
                rope,
                mask,
                cache,
            }],
        )
    }

    /// `x` `[Σ rows, seq, dim]`, its rows in `groups` order: the projections run over every row
    /// at once (one read of the weights), RoPE, the cache and attention per group.
    pub fn forward_groups(&self, x: Tensor<B, 3>, groups: &mut [SelfGroup<'_, B>]) -> Tensor<B, 3> {
        let rows: Vec<usize> = groups.iter().map(|g| g.rows).collect();
        let shape = self.shape;
        let out = per_group(self.qkv.forward(x, shape), &rows, |g, [q, k, v]| {
            let group = &mut groups[g];
            let q = group.rope.apply(q);
            let (k, v) = match group.cache.as_mut() {
                Some((cache, start)) => cache.append_rotated(*start, k, v, group.rope),
                None => (group.rope.apply(k), v),
            };
            merge_heads(attend(q, k, v, group.mask))
        });
        self.o_proj.forward(out)
    }
}

/// One group's cross-attention inputs (see [`SelfGroup`]): its text's keys and values, the
/// query rotation (original checkpoint only) and the text padding mask.
pub struct CrossGroup<'a, B: Backend> {
    pub rows: usize,
    pub kv: &'a CrossKv<B>,
    pub rope: Option<&'a RopeAngles<B>>,
    pub mask: &'a AttnMask<B>,
}

/// Decoder cross-attention over the encoder output; RoPE only for the original checkpoint.
#[derive(Module, Debug)]
pub struct CrossAttention<B: Backend> {
    pub q_proj: Dense<B>,
    pub k_proj: Dense<B>,
    pub v_proj: Dense<B>,
    pub o_proj: Dense<B>,
    #[module(skip)]
    pub shape: HeadShape,
}

impl<B: DiaBackend> CrossAttention<B> {
    /// K/V `[rows, kv_heads, text_len, d]` from the encoder output, keys rotated with encoder
    /// positions when `key_rope` is given.
    pub fn precompute(&self, enc: Tensor<B, 3>, key_rope: Option<&RopeAngles<B>>) -> CrossKv<B> {
        let heads = self.shape.kv_heads;
        let k = project_heads(enc.clone(), &self.k_proj, heads);
        let v = project_heads(enc, &self.v_proj, heads);
        let k = match key_rope {
            Some(rope) => rope.apply(k),
            None => k,
        };
        CrossKv { k, v }
    }

    /// `x` `[Σ rows, seq, dim]`, its rows in `groups` order, each group attending its own
    /// cached encoder keys and values.
    pub fn forward(&self, x: Tensor<B, 3>, groups: &[CrossGroup<'_, B>]) -> Tensor<B, 3> {
        let rows: Vec<usize> = groups.iter().map(|g| g.rows).collect();
        let heads = self.shape.heads;
        let out = per_group([self.q_proj.forward(x)], &rows, |g, [q]| {
            let group = &groups[g];
            let q = split_heads(q, heads);
            let q = match group.rope {
                Some(rope) => rope.apply(q),
                None => q,
            };
            let kv = group.kv;
            merge_heads(attend(q, kv.k.clone(), kv.v.clone(), group.mask))
        });
        self.o_proj.forward(out)
    }
}

/// Burn's attention options for Dia: scale 1.0, no softcap, masks given explicitly.
fn unit_scale() -> AttentionModuleOptions {
    AttentionModuleOptions {
        scale: Some(1.0),
        softcap: None,
        is_causal: false,
    }
}
