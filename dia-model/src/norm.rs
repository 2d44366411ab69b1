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
        let squares = x.clone().powi_scalar(2);
        let mean = match dtype {
            DType::F32 => squares.mean_dim(2),
            _ => mean_over_rows(squares),
        };
        let rms = mean.add_scalar(self.eps).sqrt();
        // Divide rather than multiply by `recip()`: burn-ndarray's reciprocal is a fast
        // approximation (errors near 1e-3), division is exact on every backend.
        x.div(rms)
            .mul(self.weight.val().unsqueeze::<3>())
            .cast(dtype)
    }
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
