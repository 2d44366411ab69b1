//! Where the weights come from and what runs them: the options `dia-infer` and `dia-server`
//! share, and loading the model and codec they name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use clap::Args;
use dia_dac::Dac;
use dia_model::{BackendKind, CheckpointFiles, DiaBackend, DiaModel, ModelOptions, WeightStorage};

use crate::hub;

/// Where the weights come from and what runs them.
#[derive(Debug, Args, Clone)]
pub struct RuntimeArgs {
    /// Compute backend: auto, flex, ndarray, wgpu, wgpu-nofusion or cuda; `auto` picks the
    /// best one compiled in (cuda, then wgpu, then flex).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,
    /// Model compute dtype: f32, f16 or bf16 [default: bf16 on CUDA, f32 elsewhere].
    #[arg(long, value_parser = parse_dtype)]
    pub dtype: Option<DType>,
    /// Codec repository on the Hugging Face hub.
    #[arg(
        long,
        default_value = "descript/dac_44khz",
        conflicts_with = "dac_path"
    )]
    pub dac: String,
    /// Local codec weights: a `.pth`, a safetensors file or a transformers directory.
    #[arg(long)]
    pub dac_path: Option<PathBuf>,
    /// Print no progress bar and no summary.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse().map_err(|e: dia_model::DiaError| e.to_string())
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    dia_model::parse_dtype(s)
}

/// The Dia checkpoint and how its weights are stored.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model repository on the Hugging Face hub.
    #[arg(
        long,
        default_value = "nari-labs/Dia-1.6B-0626",
        conflicts_with = "model_dir"
    )]
    pub model: String,
    /// Local checkpoint directory (config.json + safetensors, any supported layout).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// How the model's projection weights are stored: f32, f16, bf16 or int8 (one scale per
    /// output column) [default: the --dtype]. Activations stay in --dtype; narrower weights
    /// mean less memory and faster CPU decoding, slightly less precise.
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<WeightStorage>,
    /// Same as `--weights int8`.
    #[arg(long, conflicts_with = "weights")]
    pub int8: bool,
}

fn parse_weights(s: &str) -> Result<WeightStorage, String> {
    s.parse()
}

impl ModelArgs {
    /// The weight storage asked for (`--int8` is `--weights int8`); `None`: the compute dtype.
    pub fn weight_storage(&self) -> Option<WeightStorage> {
        if self.int8 {
            Some(WeightStorage::Int8)
        } else {
            self.weights
        }
    }

    /// The checkpoint's files: `--model-dir`, or the hub repository's (downloaded if needed).
    pub fn files(&self, quiet: bool) -> Result<CheckpointFiles> {
        hub::model_files(&self.model, self.model_dir.as_deref(), quiet)
    }
}

impl RuntimeArgs {
    /// The codec's weights: `--dac-path`, or the hub repository's (downloaded if needed).
    pub fn dac_path(&self) -> Result<PathBuf> {
        hub::dac_path(&self.dac, self.dac_path.as_deref(), self.quiet)
    }
}

/// The model (computing in `dtype`, weights stored as `args` says) and the codec from their
/// files, checked to speak the same channels.
pub fn load<B: DiaBackend>(
    args: &ModelArgs,
    files: &CheckpointFiles,
    dac_path: &Path,
    device: &B::Device,
    dtype: DType,
) -> Result<(DiaModel<B>, Dac<B>)> {
    let options = ModelOptions {
        dtype,
        weights: args.weight_storage(),
        ..ModelOptions::default()
    };
    let model = DiaModel::<B>::load_files(files, options, device)
        .with_context(|| format!("cannot load the model from {}", files.weights.display()))?;
    let dac = Dac::<B>::load(dac_path, device)
        .with_context(|| format!("cannot load the codec from {}", dac_path.display()))?;
    let channels = model.config.decoder.num_channels;
    if dac.config().n_codebooks != channels {
        bail!(
            "the codec has {} codebooks but the model speaks {channels} channels",
            dac.config().n_codebooks
        );
    }
    Ok((model, dac))
}
