//! Model and codec files: a local path, or a download from the Hugging Face hub into its
//! standard cache (`$HF_HOME/hub`, by default `~/.cache/huggingface/hub`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dia_model::CheckpointFiles;
use hf_hub::api::sync::ApiBuilder;

/// The Dia checkpoint: `--model-dir`, or the hub repository's config and weights.
pub fn model_files(repo: &str, local: Option<&Path>, quiet: bool) -> Result<CheckpointFiles> {
    if let Some(dir) = local {
        return Ok(CheckpointFiles::in_dir(dir)?);
    }
    let api = ApiBuilder::new().with_progress(!quiet).build()?;
    let repo_api = api.model(repo.to_string());
    let fetch = |file: &str| {
        repo_api
            .get(file)
            .with_context(|| format!("cannot download {file} from the hub repository {repo}"))
    };
    let config = fetch("config.json")?;
    // 0626 ships transformers shards with an index; the original ships one model.safetensors.
    let weights = match repo_api.get("model.safetensors.index.json") {
        Ok(index) => {
            let text = std::fs::read_to_string(&index)?;
            let value: serde_json::Value = serde_json::from_str(&text)?;
            let mut shards: Vec<String> = value["weight_map"]
                .as_object()
                .context("model.safetensors.index.json has no weight_map")?
                .values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            for shard in &shards {
                fetch(shard)?;
            }
            index
        }
        Err(_) => fetch("model.safetensors")?,
    };
    Ok(CheckpointFiles { config, weights })
}

/// The codec weights: `--dac-path`, or the hub repository's transformers directory.
pub fn dac_path(repo: &str, local: Option<&Path>, quiet: bool) -> Result<PathBuf> {
    if let Some(path) = local {
        return Ok(path.to_path_buf());
    }
    let api = ApiBuilder::new().with_progress(!quiet).build()?;
    let repo_api = api.model(repo.to_string());
    let mut dir = None;
    for file in ["config.json", "model.safetensors"] {
        let path = repo_api
            .get(file)
            .with_context(|| format!("cannot download {file} from the hub repository {repo}"))?;
        dir = path.parent().map(Path::to_path_buf);
    }
    dir.context("empty download path")
}
