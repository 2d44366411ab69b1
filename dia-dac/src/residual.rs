//! The residual unit shared by encoder and decoder blocks: Snake, dilated conv, Snake, 1×1 conv,
//! plus a skip connection.

use burn::prelude::*;

use crate::DacError;
use crate::backend::DacBackend;
use crate::incremental::{Columns, ConvStream};
use crate::layers::{Conv1d, ConvSpec, Snake, Span};
use crate::weights::Weights;

/// Dilations of the three residual units in every encoder and decoder block.
pub(crate) const DILATIONS: [usize; 3] = [1, 3, 9];

/// `x + conv2(snake2(conv1(snake1(x))))`.
#[derive(Module, Debug)]
pub struct ResidualUnit<B: Backend> {
    snake1: Snake<B>,
    conv1: Conv1d<B>,
    snake2: Snake<B>,
    conv2: Conv1d<B>,
}

impl<B: DacBackend> ResidualUnit<B> {
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
    /// `[batch, dim, time]` → same shape (the convs keep the length, so no crop is needed).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = self.conv1.forward_after(&self.snake1, x.clone());
        self.conv2.forward_after_plus(&self.snake2, y, x)
    }
}

/// A residual unit's stream: its dilated conv's held columns and the skip path's.
#[derive(Default)]
pub(crate) struct UnitStream<B: Backend> {
    conv1: ConvStream<B>,
    /// Inputs whose outputs the dilated conv still holds back, for the skip connection.
    skip: Columns<B>,
}

impl<B: DacBackend> ResidualUnit<B> {
    /// [`Self::forward`] on a stream: feeds `x` `[batch, dim, n]`, returns the final outputs.
    pub(crate) fn step(
        &self,
        stream: &mut UnitStream<B>,
        x: Option<Tensor<B, 3>>,
        last: bool,
    ) -> Option<Tensor<B, 3>> {
        if let Some(x) = &x {
            stream.skip.push(x.clone());
        }
        let y = stream
            .conv1
            .step(&self.conv1, Some(&self.snake1), x, last)?;
        // The 1×1 conv needs no context, and output t pairs with input t.
        let skip = stream.skip.take_front(y.dims()[2])?;
        Some(self.conv2.forward_after_plus(&self.snake2, y, skip))
    }
}
