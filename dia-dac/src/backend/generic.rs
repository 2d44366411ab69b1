//! The hooks' defaults: Burn's own ops, on any backend.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::{ConvInput, DacBackend};

/// Snake from Burn's element-wise ops.
pub fn snake<B: Backend>(x: Tensor<B, 3>, alpha: Tensor<B, 3>) -> Tensor<B, 3> {
    let sine = (x.clone() * alpha.clone()).sin();
    // Divide rather than use `recip()`: burn-ndarray's reciprocal is an approximation
    // with errors near 1e-3; division is exact on every backend.
    x + (sine.clone() * sine) / (alpha + 1e-9)
}

/// The backend's Snake (if any), then Burn's conv1d (padding the input itself where the padding
/// is symmetric), then the skip connection.
pub fn snake_conv1d<B: DacBackend>(
    input: ConvInput<B>,
    weight: Tensor<B, 3>,
    bias: Tensor<B, 1>,
    options: ConvOptions<1>,
    skip: Option<Tensor<B, 3>>,
) -> Tensor<B, 3> {
    let (x, padding) = match input {
        ConvInput {
            x,
            held: None,
            alpha,
            pad: [before, after],
        } if before == after => (activate(x, alpha), before),
        input => (assemble(input), 0),
    };
    let options = ConvOptions {
        padding: [padding],
        ..options
    };
    let y = module::conv1d(x, weight, Some(bias), options);
    match skip {
        Some(skip) => y + skip,
        None => y,
    }
}

/// The backend's Snake (if any), then Burn's conv_transpose1d.
pub fn snake_conv_transpose1d<B: DacBackend>(
    input: ConvInput<B>,
    weight: Tensor<B, 3>,
    bias: Tensor<B, 1>,
    options: ConvTransposeOptions<1>,
) -> Tensor<B, 3> {
    module::conv_transpose1d(assemble(input), weight, Some(bias), options)
}

/// The columns `input` describes, `[batch, in, input.len()]`, through the backend's Snake.
pub fn assemble<B: DacBackend>(input: ConvInput<B>) -> Tensor<B, 3> {
    let ConvInput {
        x,
        held,
        alpha,
        pad,
    } = input;
    let [batch, channels, _] = x.dims();
    let device = x.device();
    let zeros = |n: usize| (n > 0).then(|| Tensor::zeros([batch, channels, n], &device));
    let mut pieces: Vec<_> = [zeros(pad[0]), held, Some(x), zeros(pad[1])]
        .into_iter()
        .flatten()
        .collect();
    let x = match pieces.len() {
        1 => pieces.remove(0),
        _ => Tensor::cat(pieces, 2),
    };
    activate(x, alpha)
}

/// `x` through the backend's Snake when `alpha` is given.
pub fn activate<B: DacBackend>(x: Tensor<B, 3>, alpha: Option<Tensor<B, 3>>) -> Tensor<B, 3> {
    match alpha {
        Some(alpha) => B::snake(x, alpha),
        None => x,
    }
}
