//! The backend hooks the model computes through (Burn's backend-extension pattern): each hook
//! defaults to Burn's generic ops, and a backend overrides one where it has a faster kernel.
//! Any Burn backend runs the model once it implements [`DiaBackend`], usually with an empty
//! `impl` block.

use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Int, Tensor};

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cubecl;
#[cfg(feature = "flex")]
mod elementwise;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod single_query;
#[cfg(feature = "flex")]
mod skinny;

/// A projection weight `[in, out]` as the hooks receive it.
#[derive(Debug, Clone)]
pub enum Weight<B: Backend> {
    /// In the compute dtype.
    Float(Tensor<B, 2>),
    /// Int8 `values` with one f32 `scale` `[out]` per column: `w[i, o] = values[i, o] · scale[o]`.
    Int8 {
        values: Tensor<B, 2, Int>,
        scale: Tensor<B, 1>,
    },
}

/// A Burn backend the Dia model runs on, with the operations a backend may accelerate.
pub trait DiaBackend: Backend {
    /// `x` `[rows, in]` · `weight` `[in, out]` → `[rows, out]` in `x`'s dtype: every projection
    /// of the model. A decode step has only two rows per item, so this is where its time goes.
    /// The default dequantizes an int8 weight and scales the product's columns.
    fn project(x: Tensor<Self, 2>, weight: Weight<Self>) -> Tensor<Self, 2> {
        matmul(x, weight)
    }

    /// `x` `[rows, in]` · `weight` `[in, Σ widths]`, split by columns into `[rows, width]`
    /// parts: the fused projections (q/k/v, gate/up). A backend whose strided views are slow
    /// returns each part contiguous, so the element-wise work that follows stays fast.
    fn project_split(
        x: Tensor<Self, 2>,
        weight: Weight<Self>,
        widths: &[usize],
    ) -> Vec<Tensor<Self, 2>> {
        narrow_columns(Self::project(x, weight), widths)
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
        burn_attend_one(q, k, v, hidden)
    }

    /// `silu(gate) · up`, the gated feed-forward's activation (`[rows, hidden]` per decode
    /// step, every layer), in `gate`'s dtype.
    fn silu_mul<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        silu(gate).mul(up)
    }

    /// Writes `value` `[rows, heads, len, d]` into the KV cache `[rows, heads, max_len, d]` at
    /// positions `start..start + len`: every decode step, so backends write in place.
    fn cache_write(
        cache: Tensor<Self, 4>,
        start: usize,
        value: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        let [rows, heads, len, dim] = value.dims();
        cache.slice_assign([0..rows, 0..heads, start..start + len, 0..dim], value)
    }
}

/// `x` · `weight` with Burn's matmul, an int8 weight dequantized first.
pub(crate) fn matmul<B: Backend>(x: Tensor<B, 2>, weight: Weight<B>) -> Tensor<B, 2> {
    match weight {
        Weight::Float(w) => x.matmul(w),
        Weight::Int8 { values, scale } => {
            let dtype = x.dtype();
            let y = x.matmul(values.float().cast(dtype));
            (y.cast(DType::F32) * scale.unsqueeze::<2>()).cast(dtype)
        }
    }
}

/// [`DiaBackend::attend_one`] with Burn's attention.
pub(crate) fn burn_attend_one<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    hidden: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    let [batch, kv_heads, group, _] = q.dims();
    let len = k.dims()[2];
    let mask = hidden.map(|m| m.expand([batch, kv_heads, group, len]));
    attention(q, k, v, mask, None, unit_scale())
}

/// Burn's attention options for Dia: scale 1.0, no softcap, masks given explicitly.
pub(crate) fn unit_scale() -> AttentionModuleOptions {
    AttentionModuleOptions {
        scale: Some(1.0),
        softcap: None,
        is_causal: false,
    }
}

/// `y` `[rows, Σ widths]` as views of consecutive column blocks.
pub(crate) fn narrow_columns<B: Backend>(y: Tensor<B, 2>, widths: &[usize]) -> Vec<Tensor<B, 2>> {
    let mut start = 0;
    widths
        .iter()
        .map(|&width| {
            start += width;
            y.clone().narrow(1, start - width, width)
        })
        .collect()
}

#[cfg(feature = "ndarray")]
impl<E, I, Q> DiaBackend for burn_ndarray::NdArray<E, I, Q>
where
    E: burn_ndarray::FloatNdArrayElement,
    I: burn_ndarray::IntNdArrayElement,
    Q: burn_ndarray::QuantElement,
    burn_ndarray::NdArrayTensor:
        From<burn_ndarray::SharedArray<E>> + From<burn_ndarray::SharedArray<I>>,
{
}
