//! RMSNorm with an f32 scale and f32 math, as the reference keeps it in every dtype.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

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

    /// `x / sqrt(mean(x²) + eps) · w` on `[batch, seq, dim]`, computed in f32 and returned in
    /// `x`'s dtype.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let dtype = x.dtype();
        let x = x.cast(DType::F32);
        // Divide rather than multiply by `recip()`: burn-ndarray's reciprocal is a fast
        // approximation (errors near 1e-3), division is exact on every backend.
        let rms = x
            .clone()
            .powi_scalar(2)
            .mean_dim(2)
            .add_scalar(self.eps)
            .sqrt();
        x.div(rms)
            .mul(self.weight.val().unsqueeze::<3>())
            .cast(dtype)
    }
}
