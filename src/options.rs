//! What to load and how: model and codec from hub repositories or local paths, the backend by
//! name, the compute dtype and the weight storage. The defaults are the reference's.

use std::path::{Path, PathBuf};

use burn::tensor::DType;
use dia_model::{BackendKind, CheckpointFiles, ModelOptions, WeightStorage};

use crate::error::Result;
use crate::hub;

/// The Dia checkpoint on the Hugging Face hub that [`LoadOptions::default`] loads.
pub const DEFAULT_MODEL: &str = "nari-labs/Dia-1.6B-0626";

/// The codec on the Hugging Face hub that [`LoadOptions::default`] loads.
pub const DEFAULT_CODEC: &str = "descript/dac_44khz";

/// Where weights come from: a hub repository (through the standard cache, `HF_HOME`,
/// `HF_HUB_OFFLINE`) or a local path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Hub(String),
    Local(PathBuf),
}

impl From<&str> for Source {
    /// A local path when one exists by that name, else a hub repository (as
    /// `from_pretrained` reads its argument).
    fn from(name: &str) -> Self {
        match Path::new(name).exists() {
            true => Self::Local(name.into()),
            false => Self::Hub(name.into()),
        }
    }
}

impl From<&Path> for Source {
    fn from(path: &Path) -> Self {
        Self::Local(path.into())
    }
}

/// How [`crate::Dia`] loads: sources, backend, dtype, weight storage.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The Dia checkpoint (nari or transformers layout, sharded or not, 0626 or original).
    pub model: Source,
    /// The codec: a `.pth`, a safetensors file or a transformers directory.
    pub codec: Source,
    /// The backend [`crate::backends::run`] picks by name (`auto`: the best compiled in).
    pub backend: BackendKind,
    /// Compute dtype [default: the backend's: bf16 on CUDA, f32 elsewhere].
    pub dtype: Option<DType>,
    /// How projection weights are stored [default: as the dtype].
    pub weights: Option<WeightStorage>,
    /// Show download progress bars.
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            model: Source::Hub(DEFAULT_MODEL.into()),
            codec: Source::Hub(DEFAULT_CODEC.into()),
            backend: BackendKind::auto().unwrap_or(BackendKind::Flex),
            dtype: None,
            weights: None,
            progress: false,
        }
    }
}

/// The files a [`LoadOptions`] names, downloaded or found.
#[derive(Debug, Clone)]
pub struct DiaFiles {
    pub model: CheckpointFiles,
    /// The codec's weights file or directory.
    pub codec: PathBuf,
}

impl LoadOptions {
    /// These options with the model from `source` (a hub repository or a local directory).
    pub fn model(mut self, source: impl Into<Source>) -> Self {
        self.model = source.into();
        self
    }

    /// These options with the codec from `source`.
    pub fn codec(mut self, source: impl Into<Source>) -> Self {
        self.codec = source.into();
        self
    }

    /// These options computing in `dtype`.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }

    /// These options storing projection weights as `weights`.
    pub fn weights(mut self, weights: WeightStorage) -> Self {
        self.weights = Some(weights);
        self
    }

    /// These options on `backend`.
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }

    /// The model's and codec's files: local ones as they are, hub ones from the cache or
    /// downloaded into it.
    pub fn files(&self) -> Result<DiaFiles> {
        let quiet = !self.progress;
        let model = match &self.model {
            Source::Local(dir) => CheckpointFiles::in_dir(dir)?,
            Source::Hub(repo) => hub::model_files(repo, quiet)?,
        };
        let codec = match &self.codec {
            Source::Local(path) => path.clone(),
            Source::Hub(repo) => hub::dac_path(repo, quiet)?,
        };
        Ok(DiaFiles { model, codec })
    }

    /// The compute dtype: the one asked for, else the backend's default.
    pub fn compute_dtype(&self) -> DType {
        self.dtype.unwrap_or_else(|| self.backend.default_dtype())
    }

    /// The model's build options in `dtype`.
    pub fn model_options(&self, dtype: DType) -> ModelOptions {
        ModelOptions {
            dtype,
            weights: self.weights,
            ..ModelOptions::default()
        }
    }
}
