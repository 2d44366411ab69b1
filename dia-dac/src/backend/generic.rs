//! The hooks' defaults: Burn's own ops, on any backend.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::DacBackend;

/// Snake from Burn's element-wise ops.
pub fn snake<B: Backend>(x: Tensor<B, 3>, alpha: Tensor<B, 3>) -> Tensor<B, 3> {
    let sine = (x.clone() * alpha.clone()).sin();
    // Divide rather than use `recip()`: burn-ndarray's reciprocal is an approximation
    // with errors near 1e-3; division is exact on every backend.
    x + (sine.clone() * sine) / (alpha + 1e-9)
}

/// The backend's Snake (if any), then Burn's conv1d.
pub fn snake_conv1d<B: DacBackend>(
    x: Tensor<B, 3>,
    alpha: Option<Tensor<B, 3>>,
    weight: Tensor<B, 3>,
    bias: Tensor<B, 1>,
    options: ConvOptions<1>,
) -> Tensor<B, 3> {
    module::conv1d(activate(x, alpha), weight, Some(bias), options)
}

/// The backend's Snake (if any), then Burn's conv_transpose1d.
pub fn snake_conv_transpose1d<B: DacBackend>(
    x: Tensor<B, 3>,
    alpha: Option<Tensor<B, 3>>,
    weight: Tensor<B, 3>,
    bias: Tensor<B, 1>,
    options: ConvTransposeOptions<1>,
) -> Tensor<B, 3> {
    module::conv_transpose1d(activate(x, alpha), weight, Some(bias), options)
}

/// `x` through the backend's Snake when `alpha` is given.
pub fn activate<B: DacBackend>(x: Tensor<B, 3>, alpha: Option<Tensor<B, 3>>) -> Tensor<B, 3> {
    match alpha {
        Some(alpha) => B::snake(x, alpha),
        None => x,
    }
}
