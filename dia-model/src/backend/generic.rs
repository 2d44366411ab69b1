//! The hooks' default implementations with Burn's own ops: what every backend runs unless it
//! overrides a hook, and what an override falls back to for shapes or dtypes it does not take.

use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Tensor};

use crate::dense::Dense;

/// `x` · `weight` with Burn's matmul: a float weight cast to `x`'s dtype if stored in another,
/// an int8 weight dequantized and the product's columns scaled.
pub fn project<B: Backend>(x: Tensor<B, 2>, weight: &Dense<B>) -> Tensor<B, 2> {
    let dtype = x.dtype();
    match weight {
        Dense::Float(w) => {
            let w = w.val();
            let w = if w.dtype() == dtype { w } else { w.cast(dtype) };
            x.matmul(w)
        }
        Dense::Int8(q) => {
            let y = x.matmul(q.values.val().float().cast(dtype));
            (y.cast(DType::F32) * q.scale.val().unsqueeze::<2>()).cast(dtype)
        }
    }
}

/// `y` `[rows, Σ widths]` as views of consecutive column blocks.
pub fn narrow_columns<B: Backend>(y: Tensor<B, 2>, widths: &[usize]) -> Vec<Tensor<B, 2>> {
    let mut start = 0;
    widths
        .iter()
        .map(|&width| {
            start += width;
            y.clone().narrow(1, start - width, width)
        })
        .collect()
}

/// Single-query attention with Burn's attention op (see [`crate::DiaBackend::attend_one`]).
pub fn attend_one<B: Backend>(
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

/// `silu(gate) · up` with Burn's ops.
/// Rotary embedding from Burn's element-wise ops on the two halves.
pub fn rope<B: Backend>(x: Tensor<B, 4>, sin: Tensor<B, 4>, cos: Tensor<B, 4>) -> Tensor<B, 4> {
    let dtype = x.dtype();
    let [_, _, _, dim] = x.dims();
    let half = dim / 2;
    let x = x.cast(DType::F32);
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    let first = x1.clone().mul(cos.clone()) - x2.clone().mul(sin.clone());
    let second = x2.mul(cos) + x1.mul(sin);
    Tensor::cat(vec![first, second], 3).cast(dtype)
}

pub fn silu_mul<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    silu(gate).mul(up)
}

/// The KV-cache write as Burn's `slice_assign` (copy-on-write where the cache is shared).
pub fn cache_write<B: Backend>(
    cache: Tensor<B, 4>,
    start: usize,
    value: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [rows, heads, len, dim] = value.dims();
    cache.slice_assign([0..rows, 0..heads, start..start + len, 0..dim], value)
}

/// Burn's attention options for Dia: scale 1.0, no softcap, masks given explicitly.
pub fn unit_scale() -> AttentionModuleOptions {
    AttentionModuleOptions {
        scale: Some(1.0),
        softcap: None,
        is_causal: false,
    }
}
