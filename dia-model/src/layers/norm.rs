//! RMSNorm with an f32 scale and f32 math, as the reference keeps it in every dtype.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use crate::backend::DiaBackend;

/// Root-mean-square normalisation over the last axis, in f32, returned in the input's dtype.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// Scale `[dim]`, always f32.
    pub weight: Param<Tensor<B, 1>>,
    #[module(skip)]
    eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// Wraps a loaded scale vector (cast to f32 here).
    pub fn new(weight: Tensor<B, 1>, eps: f64) -> Self {
        Self {
            weight: Param::from_tensor(weight.cast(DType::F32)),
            eps,
        }
    }
}

impl<B: DiaBackend> RmsNorm<B> {
    /// `x / sqrt(mean(x²) + eps) · w` on `[batch, seq, dim]`, computed in f32 and returned in
    /// `x`'s dtype.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        B::add_rms_norm(x, None, self.weight.val(), self.eps).1
    }

    /// `x + delta` (or `x` without `delta`) and its norm: a residual add and the norm after
    /// it, one kernel on the GPU backends.
    pub fn add_forward(
        &self,
        x: Tensor<B, 3>,
        delta: Option<Tensor<B, 3>>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        B::add_rms_norm(x, delta, self.weight.val(), self.eps)
    }
}
