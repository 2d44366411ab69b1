//! The encoder: waveform `[batch, 1, samples]` → latent `[batch, latent_dim, samples / hop]`.

use burn::prelude::*;

use crate::backend::DacBackend;
use crate::layers::{Conv1d, ConvSpec, Snake};
use crate::residual::{DILATIONS, ResidualUnit};
use crate::weights::Weights;
use crate::{DacConfig, DacError};

/// Three residual units at half the output width, Snake, then a strided conv that doubles the
/// width and divides the length by the stride.
#[derive(Module, Debug)]
pub struct EncoderBlock<B: Backend> {
    res_units: Vec<ResidualUnit<B>>,
    snake: Snake<B>,
    down: Conv1d<B>,
}

impl<B: DacBackend> EncoderBlock<B> {
    /// Reads `{prefix}.block.{0,1,2}` (residual units), `.block.3` (snake), `.block.4` (conv).
    fn load(
        w: &mut Weights<B>,
        prefix: &str,
        width: usize,
        stride: usize,
    ) -> Result<Self, DacError> {
        let res_units = DILATIONS
            .iter()
            .enumerate()
            .map(|(r, &dilation)| {
                ResidualUnit::load(w, &format!("{prefix}.block.{r}"), width, dilation)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            res_units,
            snake: Snake::load(w, &format!("{prefix}.block.3"), width)?,
            down: Conv1d::load(
                w,
                &format!("{prefix}.block.4"),
                ConvSpec::resample(width, 2 * width, stride),
            )?,
        })
    }

    /// `[batch, width, time]` → `[batch, 2·width, time / stride]`.
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.res_units.iter().fold(x, |x, unit| unit.forward(x));
        self.down.forward_after(&self.snake, x)
    }
}

/// Conv, the encoder blocks, Snake, conv to the latent width (`encoder.block.*`).
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    conv_in: Conv1d<B>,
    blocks: Vec<EncoderBlock<B>>,
    snake: Snake<B>,
    conv_out: Conv1d<B>,
}

impl<B: DacBackend> Encoder<B> {
    /// Reads every `encoder.*` tensor of `config`.
    pub(crate) fn load(w: &mut Weights<B>, config: &DacConfig) -> Result<Self, DacError> {
        let conv_in = Conv1d::load(
            w,
            "encoder.block.0",
            ConvSpec::same(1, config.encoder_dim, 7, 1),
        )?;
        let mut width = config.encoder_dim;
        let mut blocks = Vec::with_capacity(config.encoder_rates.len());
        for (n, &stride) in config.encoder_rates.iter().enumerate() {
            blocks.push(EncoderBlock::load(
                w,
                &format!("encoder.block.{}", n + 1),
                width,
                stride,
            )?);
            width *= 2;
        }
        let tail = blocks.len() + 1;
        Ok(Self {
            conv_in,
            blocks,
            snake: Snake::load(w, &format!("encoder.block.{tail}"), width)?,
            conv_out: Conv1d::load(
                w,
                &format!("encoder.block.{}", tail + 1),
                ConvSpec::same(width, config.resolved_latent_dim(), 3, 1),
            )?,
        })
    }

    /// `[batch, 1, samples]` (samples a multiple of the hop) → `[batch, latent_dim, frames]`.
    pub fn forward(&self, audio: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.conv_in.forward(audio);
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        self.conv_out.forward_after(&self.snake, x)
    }
}
