//! The command-line options `dia-infer` and `dia-server` share (feature `cli`): where the
//! weights come from and what runs them, as clap arguments that become [`LoadOptions`]. The
//! defaults are the library's.

use std::path::PathBuf;

use burn::tensor::DType;
use clap::Args;
use dia_model::{BackendKind, WeightStorage};

use crate::options::{DEFAULT_CODEC, DEFAULT_MODEL, LoadOptions, Source};

/// Where the weights come from and what runs them.
#[derive(Debug, Args, Clone)]
pub struct RuntimeArgs {
    /// Compute backend: auto, flex, ndarray, wgpu, wgpu-nofusion or cuda; `auto` picks the
    /// best one compiled in (cuda, then wgpu, then flex).
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,
    /// Model compute dtype: f32, f16 or bf16 [default: bf16 on CUDA, f32 elsewhere].
    #[arg(long, value_parser = dia_model::config::parse_dtype)]
    pub dtype: Option<DType>,
    /// Codec repository on the Hugging Face hub.
    #[arg(long, default_value = DEFAULT_CODEC, conflicts_with = "dac_path")]
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

/// The Dia checkpoint and how its weights are stored.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model repository on the Hugging Face hub.
    #[arg(long, default_value = DEFAULT_MODEL, conflicts_with = "model_dir")]
    pub model: String,
    /// Local checkpoint directory (config.json + safetensors, any supported layout).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// How the model's projection weights are stored: f32, f16, bf16, int8 (one scale per
    /// output column) or w8a8 (int8, and each input row quantized to int8 for integer dot
    /// products) [default: the --dtype]. Activations stay in --dtype otherwise; narrower
    /// weights mean less memory and faster CPU decoding, slightly less precise.
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
        match self.int8 {
            true => Some(WeightStorage::Int8),
            false => self.weights,
        }
    }
}

/// The load options both argument groups describe.
pub fn load_options(model: &ModelArgs, runtime: &RuntimeArgs) -> LoadOptions {
    LoadOptions {
        model: match &model.model_dir {
            Some(dir) => Source::Local(dir.clone()),
            None => Source::Hub(model.model.clone()),
        },
        codec: match &runtime.dac_path {
            Some(path) => Source::Local(path.clone()),
            None => Source::Hub(runtime.dac.clone()),
        },
        backend: runtime.backend,
        dtype: runtime.dtype,
        weights: model.weight_storage(),
        progress: !runtime.quiet,
    }
}
