//! Model and codec files: a local path, or a repository of the Hugging Face hub through its
//! standard cache (`$HF_HOME/hub`, by default `~/.cache/huggingface/hub`). Files already in the
//! cache are used without a request; with `HF_HUB_OFFLINE=1` nothing is ever downloaded and a
//! file missing from the cache is an error naming it and the cache.

use std::path::{Path, PathBuf};

use dia_model::CheckpointFiles;
use hf_hub::Cache;
use hf_hub::api::sync::{ApiBuilder, ApiRepo};

use crate::error::{Error, Result};

/// One hub repository, read through the cache.
struct HubRepo {
    name: String,
    cache: Cache,
    /// `None` when offline.
    api: Option<ApiRepo>,
}

impl HubRepo {
    /// The repository `name` under the cache `HF_HOME` names, online unless `HF_HUB_OFFLINE`.
    fn open(name: &str, quiet: bool) -> Result<Self> {
        let cache = Cache::from_env();
        let api = if offline() {
            None
        } else {
            let api = ApiBuilder::from_cache(cache.clone())
                .with_progress(!quiet)
                .build()
                .map_err(|e| Error::Hub(format!("cannot reach the hub: {e}")))?;
            Some(api.model(name.to_string()))
        };
        Ok(Self {
            name: name.to_string(),
            cache,
            api,
        })
    }

    /// The path of `file`: from the cache, else downloaded into it.
    fn get(&self, file: &str) -> Result<PathBuf> {
        if let Some(path) = self.cache.model(self.name.clone()).get(file) {
            return Ok(path);
        }
        match &self.api {
            Some(api) => api.get(file).map_err(|e| {
                Error::Hub(format!(
                    "cannot download {file} from the hub repository {}: {e}",
                    self.name
                ))
            }),
            None => Err(Error::Hub(format!(
                "{file} of {} is not in the hub cache {} and HF_HUB_OFFLINE is set",
                self.name,
                self.cache.path().display()
            ))),
        }
    }

    /// The path of `file` if the repository has it (a missing optional file is not an error).
    fn get_optional(&self, file: &str) -> Option<PathBuf> {
        self.get(file).ok()
    }
}

/// Whether `HF_HUB_OFFLINE` asks for no network, as huggingface_hub reads it (1, true, yes, on).
fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// Hub repository `repo`'s Dia config and weights (downloaded into the cache if needed, with
/// a progress bar unless `quiet`).
pub fn model_files(repo: &str, quiet: bool) -> Result<CheckpointFiles> {
    let hub = HubRepo::open(repo, quiet)?;
    let config = hub.get("config.json")?;
    // 0626 ships transformers shards with an index; the original ships one model.safetensors.
    let weights = match hub.get_optional("model.safetensors.index.json") {
        Some(index) => {
            for shard in CheckpointFiles::shard_names(&index)? {
                hub.get(&shard)?;
            }
            index
        }
        None => hub.get("model.safetensors")?,
    };
    Ok(CheckpointFiles { config, weights })
}

/// Hub repository `repo`'s codec, as its transformers directory (downloaded into the cache
/// if needed).
pub fn dac_path(repo: &str, quiet: bool) -> Result<PathBuf> {
    let hub = HubRepo::open(repo, quiet)?;
    hub.get("config.json")?;
    let weights = hub.get("model.safetensors")?;
    weights
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Hub(format!("{repo}: empty download path")))
}
