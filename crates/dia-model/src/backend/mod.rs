//! The backend hooks the model computes through (Burn's backend-extension pattern): each hook
//! defaults to Burn's generic ops, and a backend overrides one where it has a faster kernel.
//! Any Burn backend runs the model once it implements [`DiaBackend`], usually with an empty
//! `impl` block.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cubecl;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod skinny;

/// A Burn backend the Dia model runs on, with the operations a backend may accelerate.
pub trait DiaBackend: Backend {
    /// `x` `[rows, in]` · `weight` `[in, out]` → `[rows, out]` in `x`'s dtype: every projection
    /// of the model. A decode step has only two rows per item, so this is where its time goes.
    fn project(x: Tensor<Self, 2>, weight: Tensor<Self, 2>) -> Tensor<Self, 2> {
        x.matmul(weight)
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
