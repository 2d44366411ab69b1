//! The decoder: latent `[batch, latent_dim, frames]` → waveform `[batch, 1, frames · hop]` in
//! (−1, 1). The final tanh is part of DAC; ports that drop it are wrong.

use burn::prelude::*;
use burn::tensor::activation::tanh;

use crate::backend::DacBackend;
use crate::incremental::{ConvStream, TransposeStream};
use crate::layers::{Conv1d, ConvSpec, ConvTranspose1d, Snake, Span};
use crate::residual::{DILATIONS, ResidualUnit, UnitStream};
use crate::weights::Weights;
use crate::{DacConfig, DacError};

/// Snake, a transposed conv that halves the width and multiplies the length by the stride,
/// then three residual units.
#[derive(Module, Debug)]
pub struct DecoderBlock<B: Backend> {
    snake: Snake<B>,
    up: ConvTranspose1d<B>,
    res_units: Vec<ResidualUnit<B>>,
}

impl<B: DacBackend> DecoderBlock<B> {
    /// Reads `{prefix}.block.0` (snake), `.block.1` (transposed conv), `.block.{2,3,4}` (units).
    fn load(
        w: &mut Weights<B>,
        prefix: &str,
        width: usize,
        stride: usize,
    ) -> Result<Self, DacError> {
        let out = width / 2;
        let snake = Snake::load(w, &format!("{prefix}.block.0"), width)?;
        let up = ConvTranspose1d::load(
            w,
            &format!("{prefix}.block.1"),
            ConvSpec::resample(width, out, stride),
        )?;
        let res_units = DILATIONS
            .iter()
            .enumerate()
            .map(|(r, &dilation)| {
                ResidualUnit::load(w, &format!("{prefix}.block.{}", r + 2), out, dilation)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            snake,
            up,
            res_units,
        })
    }

    /// `[batch, width, time]` → `[batch, width / 2, time · stride]`.
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.up.forward_after(&self.snake, x);
        self.res_units.iter().fold(x, |x, unit| unit.forward(x))
    }

    fn input_span(&self, out: Span) -> Span {
        let span = self
            .res_units
            .iter()
            .rev()
            .fold(out, |span, unit| unit.input_span(span));
        self.up.input_span(span)
    }
}

/// Conv, the decoder blocks, Snake, conv to one channel, tanh (`decoder.model.*`).
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    conv_in: Conv1d<B>,
    blocks: Vec<DecoderBlock<B>>,
    snake: Snake<B>,
    conv_out: Conv1d<B>,
}

impl<B: DacBackend> Decoder<B> {
    /// Reads every `decoder.*` tensor of `config`.
    pub(crate) fn load(w: &mut Weights<B>, config: &DacConfig) -> Result<Self, DacError> {
        let latent = config.resolved_latent_dim();
        let conv_in = Conv1d::load(
            w,
            "decoder.model.0",
            ConvSpec::same(latent, config.decoder_dim, 7, 1),
        )?;
        let mut width = config.decoder_dim;
        let mut blocks = Vec::with_capacity(config.decoder_rates.len());
        for (n, &stride) in config.decoder_rates.iter().enumerate() {
            blocks.push(DecoderBlock::load(
                w,
                &format!("decoder.model.{}", n + 1),
                width,
                stride,
            )?);
            width /= 2;
        }
        let tail = blocks.len() + 1;
        Ok(Self {
            conv_in,
            blocks,
            snake: Snake::load(w, &format!("decoder.model.{tail}"), width)?,
            conv_out: Conv1d::load(
                w,
                &format!("decoder.model.{}", tail + 1),
                ConvSpec::same(width, 1, 7, 1),
            )?,
        })
    }

    /// `[batch, latent_dim, frames]` → `[batch, 1, frames · hop]`.
    pub fn forward(&self, latent: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.conv_in.forward(latent);
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        tanh(self.conv_out.forward_after(&self.snake, x))
    }

    /// The latent frames that output samples `out` depend on (zero padding counted as reads).
    pub(crate) fn input_span(&self, out: Span) -> Span {
        let span = self.conv_out.input_span(out);
        let span = self
            .blocks
            .iter()
            .rev()
            .fold(span, |span, block| block.input_span(span));
        self.conv_in.input_span(span)
    }
}

/// A decoder block's stream: its upsampling conv's and residual units' held columns.
pub(crate) struct BlockStream<B: Backend> {
    up: TransposeStream<B>,
    units: Vec<UnitStream<B>>,
}

impl<B: DacBackend> DecoderBlock<B> {
    fn step(
        &self,
        stream: &mut BlockStream<B>,
        x: Option<Tensor<B, 3>>,
        last: bool,
    ) -> Option<Tensor<B, 3>> {
        let x = stream.up.step(&self.up, &self.snake, x, last);
        self.res_units
            .iter()
            .zip(&mut stream.units)
            .fold(x, |x, (unit, unit_stream)| unit.step(unit_stream, x, last))
    }
}

/// The decoder's state on a stream (see [`Decoder::step`]).
pub(crate) struct DecoderStream<B: Backend> {
    conv_in: ConvStream<B>,
    blocks: Vec<BlockStream<B>>,
    conv_out: ConvStream<B>,
}

impl<B: DacBackend> Decoder<B> {
    /// A stream with nothing fed yet.
    pub(crate) fn stream(&self) -> DecoderStream<B> {
        DecoderStream {
            conv_in: ConvStream::default(),
            blocks: self
                .blocks
                .iter()
                .map(|block| BlockStream {
                    up: TransposeStream::default(),
                    units: block
                        .res_units
                        .iter()
                        .map(|_| UnitStream::default())
                        .collect(),
                })
                .collect(),
            conv_out: ConvStream::default(),
        }
    }

    /// [`Self::forward`] on a stream: feeds latent frames `[batch, latent_dim, n]` (none: nothing
    /// new) and returns the samples `[batch, 1, m]` that no later frame can change; `last` ends
    /// the stream and returns the rest. The pieces concatenated equal `forward` of all frames.
    pub(crate) fn step(
        &self,
        stream: &mut DecoderStream<B>,
        latent: Option<Tensor<B, 3>>,
        last: bool,
    ) -> Option<Tensor<B, 3>> {
        let x = stream.conv_in.step(&self.conv_in, None, latent, last);
        let x = self
            .blocks
            .iter()
            .zip(&mut stream.blocks)
            .fold(x, |x, (block, block_stream)| {
                block.step(block_stream, x, last)
            });
        let y = stream
            .conv_out
            .step(&self.conv_out, Some(&self.snake), x, last);
        y.map(tanh)
    }
}
