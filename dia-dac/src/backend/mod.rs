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

    /// `conv1d` of what `input` describes, plus `skip` (`[batch, out, time']`, a residual
    /// connection) when given: `weight` `[out, in, kernel]`, `bias` `[out]` → `[batch, out,
    /// time']`. `options.padding` is 0 (the padding is `input.pad`). Most of a decode's
    /// arithmetic.
    fn snake_conv1d(
        input: ConvInput<Self>,
        weight: Tensor<Self, 3>,
        bias: Tensor<Self, 1>,
        options: ConvOptions<1>,
        skip: Option<Tensor<Self, 3>>,
    ) -> Tensor<Self, 3> {
        generic::snake_conv1d(input, weight, bias, options, skip)
    }

    /// A conv weight (`[out, in, kernel]`, or `[in, out, kernel]` for a transposed conv) laid
    /// out as this backend's convolution hooks read it fastest: same shape and values, maybe
    /// another memory order. Called once per weight, when the codec loads.
    fn conv_weight(weight: Tensor<Self, 3>) -> Tensor<Self, 3> {
        weight
    }

    /// `conv_transpose1d` of what `input` describes: `weight` `[in, out, kernel]`, the
    /// decoder's upsampling.
    fn snake_conv_transpose1d(
        input: ConvInput<Self>,
        weight: Tensor<Self, 3>,
        bias: Tensor<Self, 1>,
        options: ConvTransposeOptions<1>,
    ) -> Tensor<Self, 3> {
        generic::snake_conv_transpose1d(input, weight, bias, options)
    }
}

/// What a convolution reads: `x` `[batch, in, time]` after `held` (`[batch, in, h]`, columns a
/// stream kept from its previous piece), with `pad` zero columns before and after both, all
/// through Snake when `alpha` (`[1, in, 1]`) is given. Snake(0) = 0, so padding before or after
/// the activation is the same; a backend may assemble the whole in the one pass it copies in.
#[derive(Debug, Clone)]
pub struct ConvInput<B: Backend> {
    pub x: Tensor<B, 3>,
    pub held: Option<Tensor<B, 3>>,
    pub alpha: Option<Tensor<B, 3>>,
    pub pad: [usize; 2],
}

impl<B: Backend> ConvInput<B> {
    /// A whole sequence `x`, `padding` zeros on each side.
    pub fn new(x: Tensor<B, 3>, alpha: Option<Tensor<B, 3>>, padding: usize) -> Self {
        Self {
            x,
            held: None,
            alpha,
            pad: [padding, padding],
        }
    }

    /// Columns read, padding included.
    pub fn len(&self) -> usize {
        let held = self.held.as_ref().map_or(0, |h| h.dims()[2]);
        self.pad[0] + held + self.x.dims()[2] + self.pad[1]
    }

    /// Whether no column is read at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
