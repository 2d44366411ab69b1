//! The codec's leaf layers: Snake activation and (weight-norm folded) convolutions, plus the
//! index arithmetic that says which input positions an output position depends on.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use crate::DacError;
use crate::backend::{ConvInput, DacBackend};
use crate::weights::Weights;

/// Snake activation `x + sin²(αx) / (α + 1e-9)`, with one learned α per channel.
#[derive(Module, Debug)]
pub struct Snake<B: Backend> {
    /// `[1, channels, 1]`, broadcast over batch and time.
    alpha: Param<Tensor<B, 3>>,
}

impl<B: Backend> Snake<B> {
    /// Reads `{prefix}.alpha`, shaped `[1, channels, 1]`.
    pub(crate) fn load(
        w: &mut Weights<B>,
        prefix: &str,
        channels: usize,
    ) -> Result<Self, DacError> {
        let alpha = w.tensor(&format!("{prefix}.alpha"), [1, channels, 1])?;
        Ok(Self {
            alpha: Param::from_tensor(alpha),
        })
    }

    /// The learned α, `[1, channels, 1]`.
    pub fn alpha(&self) -> Tensor<B, 3> {
        self.alpha.val()
    }
}

impl<B: DacBackend> Snake<B> {
    /// `[batch, channels, time]` → same shape. In the codec every Snake feeds a convolution,
    /// which applies it itself ([`Conv1d::forward_after`]).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        B::snake(x, self.alpha.val())
    }
}

/// The geometry of one convolution; DAC uses only two shapes of it (see the constructors).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl ConvSpec {
    /// Stride 1 with centred zero padding, so the length is unchanged.
    pub fn same(in_channels: usize, out_channels: usize, kernel: usize, dilation: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: dilation * (kernel - 1) / 2,
            dilation,
        }
    }

    /// The down/up-sampling conv of an encoder/decoder block: kernel `2s`, padding `ceil(s/2)`.
    pub fn resample(in_channels: usize, out_channels: usize, stride: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: 2 * stride,
            stride,
            padding: stride.div_ceil(2),
            dilation: 1,
        }
    }
}

/// An inclusive range `lo..=hi` of positions along the time axis (may extend past either end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub lo: i64,
    pub hi: i64,
}

impl Span {
    /// The smallest span covering both.
    pub fn union(self, other: Span) -> Span {
        Span {
            lo: self.lo.min(other.lo),
            hi: self.hi.max(other.hi),
        }
    }
}

/// A Conv1d with a plain (already folded) weight `[out, in, kernel]` and a bias.
#[derive(Module, Debug)]
pub struct Conv1d<B: Backend> {
    weight: Param<Tensor<B, 3>>,
    bias: Param<Tensor<B, 1>>,
    stride: usize,
    padding: usize,
    dilation: usize,
}

impl<B: DacBackend> Conv1d<B> {
    /// Zero columns the whole-sequence conv pads each side with.
    pub(crate) fn padding(&self) -> usize {
        self.padding
    }

    /// How many input columns past its first one an output column reads:
    /// `(kernel − 1)·dilation` (the conv is stride 1 wherever it is decoded piece by piece).
    pub(crate) fn reach(&self) -> usize {
        debug_assert_eq!(self.stride, 1, "streamed convs are stride 1");
        (self.weight.dims()[2] - 1) * self.dilation
    }

    /// Reads `{prefix}.bias` and `{prefix}.weight` (or folds `weight_g`/`weight_v`).
    pub(crate) fn load(w: &mut Weights<B>, prefix: &str, spec: ConvSpec) -> Result<Self, DacError> {
        let shape = [spec.out_channels, spec.in_channels, spec.kernel];
        Ok(Self {
            weight: Param::from_tensor(B::conv_weight(w.conv_weight(prefix, shape)?)),
            bias: Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [spec.out_channels])?),
            stride: spec.stride,
            padding: spec.padding,
            dilation: spec.dilation,
        })
    }

    /// The input positions that output positions `out` read.
    pub(crate) fn input_span(&self, out: Span) -> Span {
        let [_, _, kernel] = self.weight.dims();
        let (stride, padding, dilation) = (
            self.stride as i64,
            self.padding as i64,
            self.dilation as i64,
        );
        Span {
            lo: out.lo * stride - padding,
            hi: out.hi * stride - padding + (kernel as i64 - 1) * dilation,
        }
    }

    /// `[batch, in, time]` → `[batch, out, time']`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.conv(ConvInput::new(x, None, self.padding), None)
    }

    /// `forward(snake.forward(x))`, in one pass where the backend fuses the two.
    pub fn forward_after(&self, snake: &Snake<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.conv(ConvInput::new(x, Some(snake.alpha()), self.padding), None)
    }

    /// `forward_after(snake, x) + skip`: a residual unit's last conv and its skip connection,
    /// added as the output is written where the backend fuses them.
    pub fn forward_after_plus(
        &self,
        snake: &Snake<B>,
        x: Tensor<B, 3>,
        skip: Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        self.conv(
            ConvInput::new(x, Some(snake.alpha()), self.padding),
            Some(skip),
        )
    }

    /// The conv of `input` (which carries its own padding), plus `skip` when given.
    pub(crate) fn conv(&self, input: ConvInput<B>, skip: Option<Tensor<B, 3>>) -> Tensor<B, 3> {
        let options = ConvOptions::new([self.stride], [0], [self.dilation], 1);
        B::snake_conv1d(input, self.weight.val(), self.bias.val(), options, skip)
    }
}

/// A ConvTranspose1d with a plain weight `[in, out, kernel]` and a bias (no output padding).
#[derive(Module, Debug)]
pub struct ConvTranspose1d<B: Backend> {
    weight: Param<Tensor<B, 3>>,
    bias: Param<Tensor<B, 1>>,
    stride: usize,
    padding: usize,
}

impl<B: DacBackend> ConvTranspose1d<B> {
    /// `(stride, kernel, padding)`.
    pub(crate) fn geometry(&self) -> (usize, usize, usize) {
        (self.stride, self.weight.dims()[2], self.padding)
    }

    /// Reads `{prefix}.bias` and `{prefix}.weight` (or folds `weight_g`/`weight_v`, per input channel).
    pub(crate) fn load(w: &mut Weights<B>, prefix: &str, spec: ConvSpec) -> Result<Self, DacError> {
        let shape = [spec.in_channels, spec.out_channels, spec.kernel];
        Ok(Self {
            weight: Param::from_tensor(B::conv_weight(w.conv_weight(prefix, shape)?)),
            bias: Param::from_tensor(w.tensor(&format!("{prefix}.bias"), [spec.out_channels])?),
            stride: spec.stride,
            padding: spec.padding,
        })
    }

    /// The input positions that output positions `out` read: output `o` gets input `i` through
    /// kernel tap `o + padding − i·stride`, which must lie in `0..kernel`.
    pub(crate) fn input_span(&self, out: Span) -> Span {
        let [_, _, kernel] = self.weight.dims();
        let (stride, padding, kernel) = (self.stride as i64, self.padding as i64, kernel as i64);
        Span {
            // ceil((lo + padding − kernel + 1) / stride), written as −floor(−x / stride).
            lo: -(kernel - 1 - out.lo - padding).div_euclid(stride),
            hi: (out.hi + padding).div_euclid(stride),
        }
    }

    /// `snake(x)` `[batch, in, time]` → `[batch, out, (time - 1)·stride − 2·padding + kernel]`:
    /// the decoder's upsampling always follows a Snake.
    pub fn forward_after(&self, snake: &Snake<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.conv(ConvInput::new(x, Some(snake.alpha()), 0), self.padding)
    }

    /// The transposed conv of `input`, cropping `crop` outputs at each end (its padding; 0
    /// keeps every output any input column adds into, `(len − 1)·stride + kernel`).
    pub(crate) fn conv(&self, input: ConvInput<B>, crop: usize) -> Tensor<B, 3> {
        let options = ConvTransposeOptions::new([self.stride], [crop], [0], [1], 1);
        B::snake_conv_transpose1d(input, self.weight.val(), self.bias.val(), options)
    }
}
