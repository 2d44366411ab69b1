//! The backend hooks the codec computes through (Burn's backend-extension pattern, as in
//! dia-model): each hook defaults to Burn's generic ops ([`generic`]) and a backend overrides one
//! where it has a faster kernel. Every Snake activation in DAC feeds a convolution, so the
//! convolution hooks take the Snake's α and may apply it while they read their input.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

#[cfg(feature = "cubecl")]
mod cubecl;
#[cfg(feature = "flex")]
mod flex;
pub mod generic;
#[cfg(feature = "ndarray")]
mod ndarray;

/// A Burn backend the codec runs on, with the operations a backend may accelerate.
pub trait DacBackend: Backend {
    /// Snake, `x + sin²(αx) / (α + 1e-9)`: `x` `[batch, channels, time]`, `alpha`
    /// `[1, channels, 1]`.
    fn snake(x: Tensor<Self, 3>, alpha: Tensor<Self, 3>) -> Tensor<Self, 3> {
        generic::snake(x, alpha)
    }

    /// `conv1d(snake(x))` (or `conv1d(x)` without `alpha`): `x` `[batch, in, time]`, `weight`
    /// `[out, in, kernel]`, `bias` `[out]` → `[batch, out, time']`. Most of a decode's
    /// arithmetic.
    fn snake_conv1d(
        x: Tensor<Self, 3>,
        alpha: Option<Tensor<Self, 3>>,
        weight: Tensor<Self, 3>,
        bias: Tensor<Self, 1>,
        options: ConvOptions<1>,
    ) -> Tensor<Self, 3> {
        generic::snake_conv1d(x, alpha, weight, bias, options)
    }

    /// `conv_transpose1d(snake(x))` (or without `alpha`): `weight` `[in, out, kernel]`, the
    /// decoder's upsampling.
    fn snake_conv_transpose1d(
        x: Tensor<Self, 3>,
        alpha: Option<Tensor<Self, 3>>,
        weight: Tensor<Self, 3>,
        bias: Tensor<Self, 1>,
        options: ConvTransposeOptions<1>,
    ) -> Tensor<Self, 3> {
        generic::snake_conv_transpose1d(x, alpha, weight, bias, options)
    }
}

/// Whether backends use their own kernels (the default) rather than Burn's generic ops.
static CUSTOM_KERNELS: AtomicBool = AtomicBool::new(true);

/// Turns the backends' own kernels (the codec's and, through dia-model, the model's) on or off
/// for the whole process: off, every hook takes its generic default. For comparing the two
/// paths (benchmarks, tests of the fallback); results agree within float rounding.
pub fn set_custom_kernels(on: bool) {
    CUSTOM_KERNELS.store(on, Ordering::Relaxed);
}

/// Whether the backends' own kernels are on (see [`set_custom_kernels`]).
pub fn custom_kernels() -> bool {
    CUSTOM_KERNELS.load(Ordering::Relaxed)
}
