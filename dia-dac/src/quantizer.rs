//! The residual vector quantiser: per stage a 1×1 `in_proj` to the codebook space, a nearest
//! neighbour search between L2-normalised vectors, and a 1×1 `out_proj` of the raw codebook row.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::module::embedding;

use crate::backend::DacBackend;
use crate::layers::{Conv1d, ConvSpec};
use crate::weights::Weights;
use crate::{DacConfig, DacError};

/// One quantiser stage (`quantizer.quantizers.{i}`).
#[derive(Module, Debug)]
pub struct VectorQuantizer<B: Backend> {
    in_proj: Conv1d<B>,
    out_proj: Conv1d<B>,
    /// `[codebook_size, codebook_dim]`.
    codebook: Param<Tensor<B, 2>>,
}

impl<B: DacBackend> VectorQuantizer<B> {
    fn load(w: &mut Weights<B>, prefix: &str, config: &DacConfig) -> Result<Self, DacError> {
        let (latent, dim) = (config.resolved_latent_dim(), config.codebook_dim);
        Ok(Self {
            in_proj: Conv1d::load(
                w,
                &format!("{prefix}.in_proj"),
                ConvSpec::same(latent, dim, 1, 1),
            )?,
            out_proj: Conv1d::load(
                w,
                &format!("{prefix}.out_proj"),
                ConvSpec::same(dim, latent, 1, 1),
            )?,
            codebook: Param::from_tensor(w.tensor(
                &format!("{prefix}.codebook.weight"),
                [config.codebook_size, dim],
            )?),
        })
    }

    /// Codes `[batch, frames]` → this stage's contribution `[batch, latent_dim, frames]`.
    fn lookup(&self, codes: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        // [batch, frames, dim] → [batch, dim, frames]
        let rows = embedding(self.codebook.val(), codes).swap_dims(1, 2);
        self.out_proj.forward(rows)
    }

    /// Residual `[batch, latent_dim, frames]` → nearest codes `[batch, frames]`.
    fn nearest(&self, residual: Tensor<B, 3>) -> Tensor<B, 2, Int> {
        let projected = self.in_proj.forward(residual);
        let [batch, dim, frames] = projected.dims();
        // [batch, dim, frames] → [batch·frames, dim]
        let e = l2_normalize(projected.swap_dims(1, 2).reshape([batch * frames, dim]));
        let c = l2_normalize(self.codebook.val());
        // Squared distance ‖e‖² − 2e·c + ‖c‖² as DAC computes it: [batch·frames, codebook_size].
        let e_sq = e.clone().square().sum_dim(1);
        let c_sq = c.clone().square().sum_dim(1).transpose();
        let dist = e_sq - e.matmul(c.transpose()).mul_scalar(2.0) + c_sq;
        dist.neg().argmax(1).reshape([batch, frames])
    }
}

/// Rows divided by `max(‖row‖₂, 1e-12)`, as `F.normalize`.
fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// All quantiser stages (`quantizer.quantizers.*`).
#[derive(Module, Debug)]
pub struct ResidualVectorQuantizer<B: Backend> {
    stages: Vec<VectorQuantizer<B>>,
    latent_dim: usize,
}

impl<B: DacBackend> ResidualVectorQuantizer<B> {
    pub(crate) fn load(w: &mut Weights<B>, config: &DacConfig) -> Result<Self, DacError> {
        let stages = (0..config.n_codebooks)
            .map(|i| VectorQuantizer::load(w, &format!("quantizer.quantizers.{i}"), config))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            stages,
            latent_dim: config.resolved_latent_dim(),
        })
    }

    /// Codes `[batch, n, frames]` (n ≤ stages, already range-checked) → the decoder input
    /// `[batch, latent_dim, frames]`, the sum of the first n stages' projected codebook rows.
    pub(crate) fn latent_from_codes(&self, codes: Tensor<B, 3, Int>) -> Tensor<B, 3> {
        let [batch, n, frames] = codes.dims();
        let zero = Tensor::zeros([batch, self.latent_dim, frames], &codes.device());
        self.stages
            .iter()
            .take(n)
            .enumerate()
            .fold(zero, |sum, (i, stage)| {
                // [batch, 1, frames] → [batch, frames]
                let stage_codes = codes.clone().narrow(1, i, 1).reshape([batch, frames]);
                sum + stage.lookup(stage_codes)
            })
    }

    /// Latent `[batch, latent_dim, frames]` → codes `[batch, stages, frames]` and the quantised
    /// latent `[batch, latent_dim, frames]`.
    pub(crate) fn encode(&self, latent: Tensor<B, 3>) -> (Tensor<B, 3, Int>, Tensor<B, 3>) {
        let mut residual = latent.clone();
        let mut quantized = latent.zeros_like();
        let mut codes = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let stage_codes = stage.nearest(residual.clone());
            let part = stage.lookup(stage_codes.clone());
            quantized = quantized + part.clone();
            residual = residual - part;
            codes.push(stage_codes);
        }
        (Tensor::stack(codes, 1), quantized)
    }
}
