//! The backend hooks the model computes through (Burn's backend-extension pattern): each hook
//! defaults to Burn's generic ops ([`generic`]), and a backend overrides one where it has a
//! faster kernel. Any Burn backend runs the model once it implements [`DiaBackend`] and the
//! codec's [`DacBackend`], usually with empty `impl` blocks (see `ndarray.rs` and `cubecl.rs`
//! here and in dia-dac); Flex's kernels live in `flex/`.

use burn::tensor::{Bool, Int, Tensor};
use dia_dac::DacBackend;

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cubecl;
mod dense;
#[cfg(feature = "flex")]
pub mod flex;
pub mod generic;
#[cfg(feature = "ndarray")]
mod ndarray;

#[cfg(feature = "gpu-check")]
pub use self::cubecl::gpu_check;
pub use self::dense::{Dense, Int8Weight};
use crate::shape::narrow_columns;
pub use crate::token_rule::TokenRule;
pub use dia_dac::backend::{custom_kernels, set_custom_kernels};

/// A Burn backend the Dia model runs on, with the operations a backend may accelerate; it runs
/// the codec Dia speaks through too ([`DacBackend`], the codec's hooks).
pub trait DiaBackend: DacBackend {
    /// A weight laid out as this backend's [`DiaBackend::project`] reads it best, once, at load
    /// (Flex: column tiles, `flex::Tiles`); as it is by default.
    fn arrange(weight: Dense<Self>) -> Dense<Self> {
        weight
    }

    /// Whether [`DiaBackend::arrange`] lays weights out in Flex's column tiles: a converted
    /// checkpoint's tiles are then taken as they are, else put back in `[in, out]` at load.
    fn reads_tiles() -> bool {
        false
    }

    /// `x` `[rows, in]` · `weight` `[in, out]` → `[rows, out]` in `x`'s dtype: every projection
    /// of the model. A decode step has only two rows per item, so this is where its time goes.
    fn project(x: Tensor<Self, 2>, weight: &Dense<Self>) -> Tensor<Self, 2> {
        generic::project(x, weight)
    }

    /// `x` `[rows, in]` · `weight` `[in, Σ widths]`, split by columns into `[rows, width]`
    /// parts: the fused projections (q/k/v, gate/up). A backend whose strided views are slow
    /// returns each part contiguous, so the element-wise work that follows stays fast.
    fn project_split(
        x: Tensor<Self, 2>,
        weight: &Dense<Self>,
        widths: &[usize],
    ) -> Vec<Tensor<Self, 2>> {
        narrow_columns(Self::project(x, weight), widths)
    }

    /// `x` `[b, s, in]` · `weight`, its columns split into parts of `heads[i]` heads of
    /// `head_dim`, each `[b, heads, s, head_dim]`: the fused q/k/v projection, ready for RoPE and
    /// attention. The default returns views of one product; a backend whose strided views are
    /// slow returns contiguous parts ([`generic::project_heads_split`]).
    fn project_heads(
        x: Tensor<Self, 3>,
        weight: &Dense<Self>,
        heads: &[usize],
        head_dim: usize,
    ) -> Vec<Tensor<Self, 4>> {
        generic::project_heads(x, weight, heads, head_dim)
    }

    /// Attention (scale 1) for one query position, as in a decode step: `q`
    /// `[b, kv_heads, group, d]` holds the query heads sharing each KV head, `k`/`v`
    /// `[b, kv_heads, len, d]` (often a view of the KV cache), `hidden` `[b, 1, 1, len]` is true
    /// at masked keys. Returns `[b, kv_heads, group, d]` in `q`'s dtype.
    fn attend_one(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        hidden: Option<Tensor<Self, 4, Bool>>,
    ) -> Tensor<Self, 4> {
        generic::attend_one(q, k, v, hidden)
    }

    /// `silu(gate) · up`, the gated feed-forward's activation (`[rows, hidden]` per decode
    /// step, every layer), in `gate`'s dtype.
    fn silu_mul<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        generic::silu_mul(gate, up)
    }

    /// Half-split rotary embedding of `x` `[b, heads, seq, d]` (usually a strided view of a
    /// projection) with `sin`/`cos` `[1, 1, seq, d / 2]` in f32: `[x1·cos − x2·sin,
    /// x2·cos + x1·sin]`, computed in f32 and returned contiguous in `x`'s dtype. Every
    /// attention layer applies it to q and k, over the whole text in the encoder.
    fn rope(x: Tensor<Self, 4>, sin: Tensor<Self, 4>, cos: Tensor<Self, 4>) -> Tensor<Self, 4> {
        generic::rope(x, sin, cos)
    }

    /// The decode step's cache update: `k` `[rows, heads, len, d]` rotated by `sin`/`cos`
    /// `[1, 1, len, d / 2]` (as [`DiaBackend::rope`]) and `v` written into `k_cache` and
    /// `v_cache` `[rows, heads, capacity, d]` at positions `start..start + len` (as
    /// [`DiaBackend::cache_write`], in place); returns the caches.
    fn rope_cache_write(
        (k_cache, v_cache): (Tensor<Self, 4>, Tensor<Self, 4>),
        start: usize,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        (sin, cos): (Tensor<Self, 4>, Tensor<Self, 4>),
    ) -> (Tensor<Self, 4>, Tensor<Self, 4>) {
        generic::rope_cache_write((k_cache, v_cache), start, k, v, (sin, cos))
    }

    /// `x + delta` (or `x` itself without `delta`) and its RMSNorm with the f32 scale `weight`
    /// `[dim]`, over the last axis of `[b, s, dim]`, in f32 and returned in `x`'s dtype: every
    /// norm of the model, each after the residual add that precedes it.
    fn add_rms_norm(
        x: Tensor<Self, 3>,
        delta: Option<Tensor<Self, 3>>,
        weight: Tensor<Self, 1>,
        eps: f64,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        generic::add_rms_norm(x, delta, weight, eps)
    }

    /// Writes `value` `[rows, heads, len, d]` into the KV cache `[rows, heads, max_len, d]` at
    /// positions `start..start + len`: every decode step, so backends write in place.
    fn cache_write(
        cache: Tensor<Self, 4>,
        start: usize,
        value: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        generic::cache_write(cache, start, value)
    }

    /// Each item's next codes `[items, 1, channels, 1]` from its f32 logits `[2 · items, 1,
    /// channels, vocab]` (row `2i` unconditional, `2i + 1` conditional) by `rule`, drawing with
    /// `draws` `[items, 1, channels, 1]` (uniforms in `[0, 1)`) when sampling: a device step's
    /// choice of tokens ([`crate::generation::SamplingSite::Device`]). `None` where the backend has no
    /// kernel for it: the decoding loop's tensor ops choose then.
    fn choose_tokens(
        logits: Tensor<Self, 4>,
        draws: Option<Tensor<Self, 4>>,
        rule: &TokenRule,
    ) -> Option<Tensor<Self, 4, Int>> {
        let _ = (logits, draws, rule);
        None
    }

    /// Whether [`crate::generation::SamplingSite::Auto`] chooses tokens on the device: where a host round
    /// trip per step costs more than the sampler's kernels (the GPU backends).
    fn samples_on_device() -> bool {
        false
    }
}
