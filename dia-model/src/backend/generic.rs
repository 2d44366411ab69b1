//! The hooks' default implementations with Burn's own ops: what every backend runs unless it
//! overrides a hook, and what an override falls back to for shapes or dtypes it does not take.

use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Tensor};

use crate::backend::Dense;
use crate::backend::DiaBackend;
use crate::shape::split_heads;

/// `x` · `weight` with Burn's matmul: a float weight cast to `x`'s dtype if stored in another,
/// an int8 weight dequantized and the product's columns scaled (after the rows of `x` are
/// quantized, for int8 inputs: [`quantize_rows`]).
pub fn project<B: Backend>(x: Tensor<B, 2>, weight: &Dense<B>) -> Tensor<B, 2> {
    let dtype = x.dtype();
    match weight {
        Dense::Int8(q) if q.int8_activations => {
            let (x, x_scale) = quantize_rows(x);
            scale_rows(project(x, &Dense::Int8(q.with_float_inputs())), x_scale)
        }
        Dense::Float(w) => {
            let w = w.val();
            let w = if w.dtype() == dtype { w } else { w.cast(dtype) };
            x.matmul(w)
        }
        Dense::Int8(q) => {
            let y = x.matmul(q.values.val().float().cast(dtype));
            scale_columns(y, q.scale.val())
        }
        // Only Flex tiles weights, and its hooks read its tiles themselves.
        #[cfg(feature = "flex")]
        Dense::Tiled(_) => panic!("generic::project takes weights in [in, out], not Flex's tiles"),
    }
}

/// `y` `[rows, out]` with each column times its f32 `scale` `[out]`, in `y`'s dtype: an int8
/// product's last step.
pub fn scale_columns<B: Backend>(y: Tensor<B, 2>, scale: Tensor<B, 1>) -> Tensor<B, 2> {
    let dtype = y.dtype();
    (y.cast(DType::F32) * scale.unsqueeze::<2>()).cast(dtype)
}

/// Each row of `x` `[rows, in]` quantized to int8 values (held in `x`'s dtype, half to even)
/// with one f32 scale `[rows, 1]`: its largest magnitude over 127 (1 for a zero row). A row the
/// hooks get this way quantizes to itself again, with scale 1.
pub fn quantize_rows<B: Backend>(x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let dtype = x.dtype();
    let x = x.cast(DType::F32);
    let amax = x.clone().abs().max_dim(1);
    let scale = amax.clone().div_scalar(127.0);
    let scale = scale.mask_fill(amax.equal_elem(0.0), 1.0);
    let q = x.div(scale.clone()).round().clamp(-127.0, 127.0);
    (q.cast(dtype), scale)
}

/// `y` `[rows, out]` with each row times its f32 `scale` `[rows, 1]`, in `y`'s dtype: the last
/// step of a product with int8 inputs.
pub fn scale_rows<B: Backend>(y: Tensor<B, 2>, scale: Tensor<B, 2>) -> Tensor<B, 2> {
    let dtype = y.dtype();
    (y.cast(DType::F32) * scale).cast(dtype)
}

/// `x` `[batch, seq, in]` · `weight`, split into `[batch, heads, seq, head_dim]` per entry of
/// `heads`: views of one product (`[batch, seq, Σ heads, head_dim]`, narrowed by head), which
/// Burn's strided ops read without a copy.
pub fn project_heads<B: DiaBackend>(
    x: Tensor<B, 3>,
    weight: &Dense<B>,
    heads: &[usize],
    head_dim: usize,
) -> Vec<Tensor<B, 4>> {
    let [batch, seq, _] = x.dims();
    let total = heads.iter().sum();
    let y = weight.forward(x).reshape([batch, seq, total, head_dim]);
    let mut start = 0;
    heads
        .iter()
        .map(|&n| {
            start += n;
            y.clone().narrow(2, start - n, n).swap_dims(1, 2)
        })
        .collect()
}

/// [`project_heads`] from [`crate::DiaBackend::project_split`]'s parts: each contiguous where
/// the backend makes it so.
pub fn project_heads_split<B: DiaBackend>(
    x: Tensor<B, 3>,
    weight: &Dense<B>,
    heads: &[usize],
    head_dim: usize,
) -> Vec<Tensor<B, 4>> {
    let widths: Vec<usize> = heads.iter().map(|n| n * head_dim).collect();
    weight
        .forward_split(x, &widths)
        .into_iter()
        .zip(heads)
        .map(|(part, &n)| split_heads(part, n))
        .collect()
}

/// Single-query attention from Burn's tensor ops (see [`crate::DiaBackend::attend_one`]):
/// q·kᵀ, masked, softmax, ·v. Burn's attention op computes the same values, but on the CubeCL
/// backends it falls back, for a scale other than 1/√d, to a dozen kernels that fusion never
/// sees; these ops fuse. No row is fully masked (every text has a token), so the plain softmax
/// needs none of that fallback's guards.
pub fn attend_one<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    hidden: Option<Tensor<B, 4, Bool>>,
) -> Tensor<B, 4> {
    // [b, kv_heads, group, d] · [b, kv_heads, d, len] -> [b, kv_heads, group, len].
    let scores = q.matmul(k.swap_dims(2, 3));
    let scores = match hidden {
        Some(mask) => {
            let shape = scores.shape();
            scores.mask_fill(mask.expand(shape), f32::NEG_INFINITY)
        }
        None => scores,
    };
    softmax(scores, 3).matmul(v)
}

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

/// `silu(gate) · up` with Burn's ops.
pub fn silu_mul<B: Backend, const D: usize>(gate: Tensor<B, D>, up: Tensor<B, D>) -> Tensor<B, D> {
    silu(gate).mul(up)
}

/// `x + delta` and its RMSNorm from Burn's ops, the norm in f32 (see [`rms_norm`]).
pub fn add_rms_norm<B: Backend>(
    x: Tensor<B, 3>,
    delta: Option<Tensor<B, 3>>,
    weight: Tensor<B, 1>,
    eps: f64,
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let sum = match delta {
        Some(delta) => x + delta,
        None => x,
    };
    let normed = rms_norm(sum.clone(), weight, eps);
    (sum, normed)
}

/// `x / sqrt(mean(x²) + eps) · weight` over the last axis, computed in f32 and returned in
/// `x`'s dtype (the reference keeps RMSNorm in f32 in every dtype).
pub fn rms_norm<B: Backend>(x: Tensor<B, 3>, weight: Tensor<B, 1>, eps: f64) -> Tensor<B, 3> {
    let dtype = x.dtype();
    let x = x.cast(DType::F32);
    let squares = x.clone().powi_scalar(2);
    let mean = match dtype {
        DType::F32 => squares.mean_dim(2),
        _ => mean_over_rows(squares),
    };
    let rms = mean.add_scalar(eps).sqrt();
    // Divide rather than multiply by `recip()`: burn-ndarray's reciprocal is a fast
    // approximation (errors near 1e-3), division is exact on every backend.
    x.div(rms).mul(weight.unsqueeze::<3>()).cast(dtype)
}

/// `x.mean_dim(2)` for `x` `[batch, seq, dim]`, taken over a `[batch·seq, dim]` view: the
/// same means, but the view keeps Burn 0.21's kernel fusion from folding an f16/bf16 → f32
/// cast into the reduction, whose cached kernel plan panics when it runs a second time
/// (burn-cubecl-fusion's `resolve_arg` out of bounds; `tests/wgpu.rs` runs the case).
fn mean_over_rows<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, seq, dim] = x.dims();
    x.reshape([batch * seq, dim])
        .mean_dim(1)
        .reshape([batch, seq, 1])
}

/// [`crate::DiaBackend::rope_cache_write`] from the backend's RoPE and cache-write hooks.
pub fn rope_cache_write<B: DiaBackend>(
    (k_cache, v_cache): (Tensor<B, 4>, Tensor<B, 4>),
    start: usize,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    (sin, cos): (Tensor<B, 4>, Tensor<B, 4>),
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let k = B::rope(k, sin, cos);
    (
        B::cache_write(k_cache, start, k),
        B::cache_write(v_cache, start, v),
    )
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
