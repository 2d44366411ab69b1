//! The residual unit shared by encoder and decoder blocks: Snake, dilated conv, Snake, 1×1 conv,
//! plus a skip connection.

use burn::prelude::*;

use crate::DacError;
use crate::backend::DacBackend;
use crate::layers::{Conv1d, ConvSpec, Snake, Span};
use crate::weights::Weights;

/// Dilations of the three residual units in every encoder and decoder block.
pub(crate) const DILATIONS: [usize; 3] = [1, 3, 9];

/// `x + conv2(snake2(conv1(snake1(x))))`, the skip path centre-cropped if the convs shortened it.
#[derive(Module, Debug)]
pub struct ResidualUnit<B: Backend> {
    snake1: Snake<B>,
    conv1: Conv1d<B>,
    snake2: Snake<B>,
    conv2: Conv1d<B>,
}

impl<B: Backend> ResidualUnit<B> {
    /// Reads `{prefix}.block.{0,1,2,3}` (snake, k7 conv, snake, k1 conv) at width `dim`.
    pub(crate) fn load(
        w: &mut Weights<B>,
        prefix: &str,
        dim: usize,
        dilation: usize,
    ) -> Result<Self, DacError> {
        Ok(Self {
            snake1: Snake::load(w, &format!("{prefix}.block.0"), dim)?,
            conv1: Conv1d::load(
                w,
                &format!("{prefix}.block.1"),
                ConvSpec::same(dim, dim, 7, dilation),
            )?,
            snake2: Snake::load(w, &format!("{prefix}.block.2"), dim)?,
            conv2: Conv1d::load(
                w,
                &format!("{prefix}.block.3"),
                ConvSpec::same(dim, dim, 1, 1),
            )?,
        })
    }

    /// The input positions that output positions `out` read (skip path included).
    pub(crate) fn input_span(&self, out: Span) -> Span {
        self.conv1.input_span(self.conv2.input_span(out)).union(out)
    }
}

impl<B: DacBackend> ResidualUnit<B> {
    /// `[batch, dim, time]` → same shape.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = self.conv1.forward_after(&self.snake1, x.clone());
        let y = self.conv2.forward_after(&self.snake2, y);
        let (x_len, y_len) = (x.dims()[2], y.dims()[2]);
        let skip = if x_len > y_len {
            x.narrow(2, (x_len - y_len) / 2, y_len)
        } else {
            x
        };
        skip + y
    }
}
