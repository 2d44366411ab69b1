//! Opening DAC checkpoints: the released torch `weights.pth`, safetensors with the original key
//! names, and the transformers directory. Whatever the source, keys come out in the original
//! DAC 1.0.0 naming (`encoder.block.N...`, `weight_g`/`weight_v` or folded `weight`), with the
//! codec's configuration beside them.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn_store::pytorch::reader::PickleValue;
use burn_store::pytorch::{PytorchError, PytorchReader};
use burn_store::{ModuleStore, SafetensorsStore, TensorSnapshot};
use serde::Deserialize;

use crate::config::TransformersConfig;
use crate::{DacConfig, DacError};

/// Prefixes under which DAC weights appear inside larger checkpoints (Parler-TTS, rlx-dac).
const PREFIXES: [&str; 4] = ["audio_encoder.model.", "audio_encoder.", "model.", "dac."];

/// A checkpoint's tensors (lazily read, original DAC names) and the configuration they belong to.
pub struct Checkpoint {
    file: PathBuf,
    config: DacConfig,
    tensors: HashMap<String, TensorSnapshot>,
}

impl Checkpoint {
    /// Opens `path`, detecting the format: a directory is a transformers checkpoint
    /// (`config.json` + `model.safetensors`); a file starting with a zip or pickle header is a
    /// torch checkpoint (`{"state_dict", "metadata": {"kwargs"}}`); any other file is safetensors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DacError> {
        let path = path.as_ref();
        if path.is_dir() {
            return Self::open_transformers_dir(path);
        }
        match torch_format(path)? {
            Some(format) => Self::open_torch(path, format),
            None => Self::from_snapshots(path, read_safetensors(path)?, None),
        }
    }

    /// Builds a checkpoint from named tensors in any supported naming. Without a `config`, it is
    /// inferred from the tensor shapes (sample rate assumed 44.1 kHz).
    pub fn from_snapshots(
        file: impl Into<PathBuf>,
        tensors: impl IntoIterator<Item = (String, TensorSnapshot)>,
        config: Option<DacConfig>,
    ) -> Result<Self, DacError> {
        let file = file.into();
        let tensors = to_original_names(&file, tensors)?;
        let config = match config {
            Some(config) => config,
            None => infer_config(&file, &tensors)?,
        };
        config.validate().map_err(|e| DacError::Checkpoint {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        tracing::info!(file = %file.display(), tensors = tensors.len(), ?config, "opened DAC checkpoint");
        Ok(Self {
            file,
            config,
            tensors,
        })
    }

    /// The codec configuration the tensors belong to.
    pub fn config(&self) -> &DacConfig {
        &self.config
    }

    pub(crate) fn into_parts(self) -> (PathBuf, DacConfig, HashMap<String, TensorSnapshot>) {
        (self.file, self.config, self.tensors)
    }

    fn open_torch(path: &Path, format: TorchFormat) -> Result<Self, DacError> {
        let fail = |e: PytorchError| DacError::Checkpoint {
            file: path.to_path_buf(),
            reason: e.to_string(),
        };
        if format == TorchFormat::Zip {
            crate::torch_records::check(path).map_err(|reason| DacError::Checkpoint {
                file: path.to_path_buf(),
                reason,
            })?;
        }
        let reader = PytorchReader::with_top_level_key(path, "state_dict").map_err(fail)?;
        let config = match PytorchReader::read_pickle_data(path, Some("metadata")) {
            Ok(metadata) => {
                let metadata: TorchMetadata = serde_json::from_value(pickle_to_json(metadata))
                    .map_err(|e| DacError::Checkpoint {
                        file: path.to_path_buf(),
                        reason: format!("metadata.kwargs: {e}"),
                    })?;
                Some(metadata.kwargs)
            }
            Err(PytorchError::KeyNotFound(_)) => None,
            Err(e) => return Err(fail(e)),
        };
        Self::from_snapshots(path, reader.into_tensors(), config)
    }

    fn open_transformers_dir(dir: &Path) -> Result<Self, DacError> {
        let config_path = dir.join("config.json");
        let config: TransformersConfig = std::fs::read_to_string(&config_path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
            .map_err(|reason| DacError::Checkpoint {
                file: config_path,
                reason,
            })?;
        let weights = dir.join("model.safetensors");
        Self::from_snapshots(&weights, read_safetensors(&weights)?, Some(config.into()))
    }
}

/// `metadata` of a torch checkpoint written by audiotools' `BaseModel.save`.
#[derive(Deserialize)]
struct TorchMetadata {
    kwargs: DacConfig,
}

/// Plain pickle data as JSON, so serde can read it (bytes become an array of numbers).
fn pickle_to_json(value: PickleValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        PickleValue::None => Value::Null,
        PickleValue::Bool(b) => Value::Bool(b),
        PickleValue::Int(i) => Value::from(i),
        PickleValue::Float(f) => Value::from(f),
        PickleValue::String(s) => Value::String(s),
        PickleValue::List(items) => Value::Array(items.into_iter().map(pickle_to_json).collect()),
        PickleValue::Dict(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, pickle_to_json(v)))
                .collect(),
        ),
        PickleValue::Bytes(bytes) => Value::from(bytes),
    }
}

/// How a torch checkpoint is stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TorchFormat {
    /// A zip archive (torch ≥ 1.6): its records are checked before burn-store reads them.
    Zip,
    /// A bare pickle stream (legacy torch).
    Pickle,
}

/// The torch format the file's first bytes announce; `None` for anything else.
fn torch_format(path: &Path) -> Result<Option<TorchFormat>, DacError> {
    let mut magic = [0u8; 4];
    let read = File::open(path)
        .and_then(|mut file| file.read(&mut magic))
        .map_err(|e| DacError::Checkpoint {
            file: path.to_path_buf(),
            reason: format!("cannot read: {e}"),
        })?;
    Ok(match (read, magic) {
        (4, [b'P', b'K', 3, 4]) => Some(TorchFormat::Zip),
        (1.., [0x80, ..]) => Some(TorchFormat::Pickle),
        _ => None,
    })
}

fn read_safetensors(path: &Path) -> Result<Vec<(String, TensorSnapshot)>, DacError> {
    let mut store = SafetensorsStore::from_file(path);
    let snapshots = store
        .get_all_snapshots()
        .map_err(|e| DacError::Checkpoint {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(snapshots
        .iter()
        .map(|(key, snapshot)| (key.clone(), snapshot.clone()))
        .collect())
}

/// Strips known prefixes and rewrites transformers and parametrised-weight-norm names to the
/// original ones; two tensors landing on one name is an error.
fn to_original_names(
    file: &Path,
    tensors: impl IntoIterator<Item = (String, TensorSnapshot)>,
) -> Result<HashMap<String, TensorSnapshot>, DacError> {
    let stripped: Vec<(String, TensorSnapshot)> = tensors
        .into_iter()
        .map(|(key, snapshot)| (strip_prefix(&key).to_string(), snapshot))
        .collect();
    let transformers = TransformersLayout::detect(stripped.iter().map(|(key, _)| key.as_str()));
    let mut renamed = HashMap::with_capacity(stripped.len());
    for (key, snapshot) in stripped {
        let key = transformers
            .as_ref()
            .and_then(|layout| layout.original_name(&key))
            .unwrap_or(key);
        let key = unparametrize(key);
        if renamed.contains_key(&key) {
            return Err(DacError::Checkpoint {
                file: file.to_path_buf(),
                reason: format!("two tensors map to `{key}`"),
            });
        }
        renamed.insert(key, snapshot);
    }
    Ok(renamed)
}

fn strip_prefix(key: &str) -> &str {
    let is_dac = |k: &str| {
        ["encoder.", "decoder.", "quantizer."]
            .iter()
            .any(|p| k.starts_with(p))
    };
    if is_dac(key) {
        return key;
    }
    PREFIXES
        .iter()
        .filter_map(|prefix| key.strip_prefix(prefix))
        .find(|rest| is_dac(rest))
        .unwrap_or(key)
}

/// `P.parametrizations.weight.original0/1` (newer torch weight norm) → `P.weight_g/weight_v`.
fn unparametrize(key: String) -> String {
    if let Some(base) = key.strip_suffix(".parametrizations.weight.original0") {
        format!("{base}.weight_g")
    } else if let Some(base) = key.strip_suffix(".parametrizations.weight.original1") {
        format!("{base}.weight_v")
    } else {
        key
    }
}

/// The transformers naming (`encoder.conv1`, `res_unit1`, `conv_t1`, ...). Its top-level tail
/// layers (`encoder.snake1`, `encoder.conv2`, ...) are numbered after the blocks in the
/// original naming, so the block counts are needed to rename them.
struct TransformersLayout {
    encoder_blocks: usize,
    decoder_blocks: usize,
}

impl TransformersLayout {
    fn detect<'a>(keys: impl Iterator<Item = &'a str> + Clone) -> Option<Self> {
        let is_transformers = keys
            .clone()
            .any(|key| key.starts_with("encoder.conv1.") || key.starts_with("decoder.conv1."));
        let blocks = |prefix: &str| {
            keys.clone()
                .filter_map(|key| {
                    key.strip_prefix(prefix)?
                        .split('.')
                        .next()?
                        .parse::<usize>()
                        .ok()
                })
                .max()
                .map_or(0, |n| n + 1)
        };
        is_transformers.then(|| Self {
            encoder_blocks: blocks("encoder.block."),
            decoder_blocks: blocks("decoder.block."),
        })
    }

    /// The original name of a transformers key, or `None` if it is not one.
    fn original_name(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        let index = |n: &str| n.parse::<usize>().ok();
        // res_unitR.{snake1,conv1,snake2,conv2} → block.(R−1).block.{0,1,2,3}
        let unit = |unit: &str, layer: &str| -> Option<(usize, usize)> {
            let r = unit
                .strip_prefix("res_unit")?
                .parse::<usize>()
                .ok()?
                .checked_sub(1)?;
            let l = ["snake1", "conv1", "snake2", "conv2"]
                .iter()
                .position(|&name| name == layer)?;
            Some((r, l))
        };
        let (head, rest) = match parts.as_slice() {
            ["encoder", "conv1", rest @ ..] => ("encoder.block.0".to_string(), rest),
            ["encoder", "snake1", rest @ ..] => {
                (format!("encoder.block.{}", self.encoder_blocks + 1), rest)
            }
            ["encoder", "conv2", rest @ ..] => {
                (format!("encoder.block.{}", self.encoder_blocks + 2), rest)
            }
            ["encoder", "block", n, "snake1", rest @ ..] => {
                (format!("encoder.block.{}.block.3", index(n)? + 1), rest)
            }
            ["encoder", "block", n, "conv1", rest @ ..] => {
                (format!("encoder.block.{}.block.4", index(n)? + 1), rest)
            }
            ["encoder", "block", n, u, layer, rest @ ..] => {
                let (r, l) = unit(u, layer)?;
                (
                    format!("encoder.block.{}.block.{r}.block.{l}", index(n)? + 1),
                    rest,
                )
            }
            ["decoder", "conv1", rest @ ..] => ("decoder.model.0".to_string(), rest),
            ["decoder", "snake1", rest @ ..] => {
                (format!("decoder.model.{}", self.decoder_blocks + 1), rest)
            }
            ["decoder", "conv2", rest @ ..] => {
                (format!("decoder.model.{}", self.decoder_blocks + 2), rest)
            }
            ["decoder", "block", n, "snake1", rest @ ..] => {
                (format!("decoder.model.{}.block.0", index(n)? + 1), rest)
            }
            ["decoder", "block", n, "conv_t1", rest @ ..] => {
                (format!("decoder.model.{}.block.1", index(n)? + 1), rest)
            }
            ["decoder", "block", n, u, layer, rest @ ..] => {
                let (r, l) = unit(u, layer)?;
                (
                    format!("decoder.model.{}.block.{}.block.{l}", index(n)? + 1, r + 2),
                    rest,
                )
            }
            _ => return None,
        };
        Some(
            std::iter::once(head.as_str())
                .chain(rest.iter().copied())
                .collect::<Vec<_>>()
                .join("."),
        )
    }
}

/// Reads the configuration off the tensor shapes, for files that carry none (bare safetensors).
fn infer_config(
    file: &Path,
    tensors: &HashMap<String, TensorSnapshot>,
) -> Result<DacConfig, DacError> {
    let dims = |key: &str| tensors.get(key).map(|t| t.shape.as_slice());
    // A conv's weight shape, folded or not; `axis` 0 is out (in for transposed), 2 the kernel.
    let conv_dim = |prefix: &str, axis: usize| -> Result<usize, DacError> {
        let key = format!("{prefix}.weight");
        let shape = dims(&key)
            .or_else(|| dims(&format!("{prefix}.weight_v")))
            .ok_or_else(|| DacError::MissingTensor {
                file: file.to_path_buf(),
                key: key.clone(),
            })?;
        shape
            .get(axis)
            .copied()
            .ok_or_else(|| DacError::Checkpoint {
                file: file.to_path_buf(),
                reason: format!("conv `{prefix}` has shape {shape:?}, expected 3 dims"),
            })
    };
    // Block strides from the resampling kernels (kernel = 2·stride), as long as blocks exist.
    let rates = |block: &dyn Fn(usize) -> String| {
        (1..)
            .map_while(|n| conv_dim(&block(n), 2).ok())
            .map(|kernel| kernel / 2)
            .collect::<Vec<_>>()
    };
    let encoder_rates = rates(&|n| format!("encoder.block.{n}.block.4"));
    let decoder_rates = rates(&|n| format!("decoder.model.{n}.block.1"));
    let codebook = |i: usize| dims(&format!("quantizer.quantizers.{i}.codebook.weight"));
    let [codebook_size, codebook_dim] = codebook(0)
        .and_then(|shape| <[usize; 2]>::try_from(shape).ok())
        .ok_or_else(|| DacError::MissingTensor {
            file: file.to_path_buf(),
            key: "quantizer.quantizers.0.codebook.weight".to_string(),
        })?;
    let config = DacConfig {
        encoder_dim: conv_dim("encoder.block.0", 0)?,
        latent_dim: Some(conv_dim(
            &format!("encoder.block.{}", encoder_rates.len() + 2),
            0,
        )?),
        encoder_rates,
        decoder_dim: conv_dim("decoder.model.0", 0)?,
        decoder_rates,
        n_codebooks: (0..).take_while(|&i| codebook(i).is_some()).count(),
        codebook_size,
        codebook_dim,
        sample_rate: DacConfig::default().sample_rate,
    };
    tracing::warn!(file = %file.display(), "no configuration stored; inferred from tensor shapes, sample rate assumed");
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformers_names_map_to_the_original_ones() {
        let layout = TransformersLayout {
            encoder_blocks: 4,
            decoder_blocks: 4,
        };
        let cases = [
            ("encoder.conv1.weight", "encoder.block.0.weight"),
            (
                "encoder.block.0.res_unit1.snake1.alpha",
                "encoder.block.1.block.0.block.0.alpha",
            ),
            (
                "encoder.block.3.res_unit3.conv2.bias",
                "encoder.block.4.block.2.block.3.bias",
            ),
            (
                "encoder.block.1.snake1.alpha",
                "encoder.block.2.block.3.alpha",
            ),
            (
                "encoder.block.1.conv1.weight",
                "encoder.block.2.block.4.weight",
            ),
            ("encoder.snake1.alpha", "encoder.block.5.alpha"),
            ("encoder.conv2.bias", "encoder.block.6.bias"),
            ("decoder.conv1.weight", "decoder.model.0.weight"),
            (
                "decoder.block.0.snake1.alpha",
                "decoder.model.1.block.0.alpha",
            ),
            (
                "decoder.block.2.conv_t1.weight",
                "decoder.model.3.block.1.weight",
            ),
            (
                "decoder.block.3.res_unit2.conv1.weight",
                "decoder.model.4.block.3.block.1.weight",
            ),
            ("decoder.snake1.alpha", "decoder.model.5.alpha"),
            ("decoder.conv2.weight", "decoder.model.6.weight"),
        ];
        for (hf, original) in cases {
            assert_eq!(layout.original_name(hf).as_deref(), Some(original), "{hf}");
        }
        assert_eq!(
            layout.original_name("quantizer.quantizers.0.codebook.weight"),
            None
        );
    }

    #[test]
    fn prefixes_and_parametrizations_are_normalised() {
        assert_eq!(
            strip_prefix("audio_encoder.model.decoder.model.0.bias"),
            "decoder.model.0.bias"
        );
        assert_eq!(
            strip_prefix("dac.quantizer.quantizers.1.codebook.weight"),
            "quantizer.quantizers.1.codebook.weight"
        );
        assert_eq!(strip_prefix("decoder.model.0.bias"), "decoder.model.0.bias");
        assert_eq!(strip_prefix("text_encoder.x"), "text_encoder.x");
        assert_eq!(
            unparametrize("encoder.block.0.parametrizations.weight.original1".into()),
            "encoder.block.0.weight_v"
        );
    }
}
