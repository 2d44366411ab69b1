//! Checkpoints on disk: finding a checkpoint's files, reading its safetensors shards, naming
//! each parameter in either format, and building the model from them.

pub mod converted;
mod loader;
pub mod names;
mod shards;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use self::converted::Converted;
use self::loader::{Loader, Source};
use self::shards::Shards;
use crate::backend::DiaBackend;
use crate::config::DiaConfig;
use crate::config::ModelOptions;
use crate::error::{DiaError, Result};
use crate::model::DiaModel;

/// The files of a local checkpoint: its `config.json` and its weights (one safetensors file
/// or a sharded `model.safetensors.index.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
}

impl CheckpointFiles {
    /// Finds the config and weights in a checkpoint directory.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let unknown = |message: &str| DiaError::UnknownLayout {
            path: dir.to_path_buf(),
            message: message.into(),
        };
        if !dir.is_dir() {
            return Err(unknown(
                "not a directory (expected a checkpoint directory with config.json)",
            ));
        }
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(unknown("no config.json in the checkpoint directory"));
        }
        let weights = ["model.safetensors.index.json", "model.safetensors"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| unknown("no model.safetensors or model.safetensors.index.json"))?;
        Ok(Self { config, weights })
    }

    /// The shard file names a sharded checkpoint's index lists (relative to its directory),
    /// sorted, each once: what a downloader fetches after the index.
    pub fn shard_names(index: &Path) -> Result<Vec<String>> {
        Ok(shards::shard_names(&shards::weight_map(index)?))
    }

    /// Every file loading reads: the config, the weights and, for an index, its shards.
    pub fn paths(&self) -> Result<Vec<PathBuf>> {
        let mut paths = vec![self.config.clone(), self.weights.clone()];
        if self.is_index() {
            let dir = self.weights.parent().unwrap_or(Path::new("."));
            paths.extend(
                Self::shard_names(&self.weights)?
                    .iter()
                    .map(|f| dir.join(f)),
            );
        }
        Ok(paths)
    }

    /// Whether the weights are a sharded checkpoint's index.
    pub(crate) fn is_index(&self) -> bool {
        self.weights
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".index.json"))
    }
}

impl<B: DiaBackend> DiaModel<B> {
    /// Loads a checkpoint directory (nari or transformers format, single or sharded), reading
    /// weights tensor by tensor into the dtype and storage `options` ask for.
    pub fn load(dir: &Path, options: ModelOptions, device: &B::Device) -> Result<Self> {
        Self::load_files(&CheckpointFiles::in_dir(dir)?, options, device)
    }

    /// Loads from explicit config and weights paths.
    pub fn load_files(
        files: &CheckpointFiles,
        options: ModelOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let config = DiaConfig::from_file(&files.config)?;
        let shards = Shards::open_files(files)?;
        let (source, options) = match Converted::detect(&shards, &files.weights)? {
            Some(converted) => {
                tracing::info!(storage = %converted.storage, source = %converted.source, "loading converted Dia weights");
                let source = Source::Converted {
                    shards: &shards,
                    used: HashSet::new(),
                };
                (source, converted.options(options, &files.weights)?)
            }
            None => (Source::checkpoint(&shards, &files.weights)?, options),
        };
        tracing::info!(version = ?config.version, "loading Dia weights");
        let mut loader = Loader {
            source,
            config: &config,
            options,
            device,
            record: None,
        };
        let model = loader.build()?;
        loader.check_all_used()?;
        Ok(model)
    }

    /// A model of `config`'s shapes with random weights (uniform, standard deviation 0.02;
    /// norms 1.0) drawn from `seed`: for benchmarks and tests, where speed and memory do not
    /// depend on the values.
    pub fn random(
        config: &DiaConfig,
        options: ModelOptions,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        let mut loader = Loader {
            source: Source::random(seed),
            config,
            options,
            device,
            record: None,
        };
        loader
            .build()
            .expect("random weights always have the config's shapes")
    }
}
