//! Converted checkpoints (`dia-infer convert`): every weight stored as the model keeps it,
//! already quantized and in the backend's layout (Flex's column tiles), so that loading one
//! copies bytes and neither converts, quantizes nor re-tiles. One `model.safetensors` beside the
//! source's `config.json`; its header metadata names the weight storage, the compute dtype, the
//! layout version and the source. A file of another layout version is refused, never misread.
//!
//! Tensor names: each parameter's nari-format name, with `.int8` and `.scale` for an int8
//! projection, and `.tiles` (float) or `.tiles.int8` for one in column tiles.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use burn::module::{Param, ParamId};
use burn::tensor::{DType, Int, Tensor, TensorData};

use super::CheckpointFiles;
use super::loader::{Loader, Source};
use super::shards::Shards;
use crate::backend::{Dense, DiaBackend, Int8Weight};
use crate::config::{DiaConfig, ModelOptions, WeightStorage};
use crate::error::{DiaError, Result};

/// What the `format` metadata entry of a converted checkpoint says.
pub const FORMAT: &str = "dia-burn-converted";

/// The layout version this build writes and reads: raised whenever Flex's tiles
/// ([`crate::backend::flex::TILE`], `TILE_SPAN`, `TILE_STREAMS`, the int8 quad tiles), the
/// tensor names or the metadata change (a test pins the tile constants to it).
pub const LAYOUT_VERSION: &str = "1";

/// A converted checkpoint's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// How its projections are stored.
    pub storage: WeightStorage,
    /// The compute dtype its embeddings are stored in.
    pub dtype: DType,
    /// The checkpoint it was converted from (a hub id or a directory).
    pub source: String,
}

impl Converted {
    /// The metadata of the checkpoint `shards` (read from `path`): `None` when it is not a
    /// converted checkpoint, an error when it is one this build cannot read.
    pub(crate) fn detect(shards: &Shards, path: &Path) -> Result<Option<Self>> {
        if shards.metadata("format") != Some(FORMAT) {
            return Ok(None);
        }
        let refuse = |message: String| DiaError::UnknownLayout {
            path: path.to_path_buf(),
            message,
        };
        let layout = shards.metadata("layout").unwrap_or("none");
        if layout != LAYOUT_VERSION {
            return Err(refuse(format!(
                "a checkpoint converted with layout version {layout}, which this build \
                 (layout version {LAYOUT_VERSION}) does not read: convert the source \
                 checkpoint again with this build's `dia-infer convert`"
            )));
        }
        let entry = |key: &str| {
            shards
                .metadata(key)
                .ok_or_else(|| refuse(format!("converted checkpoint without `{key}` metadata")))
        };
        let storage = entry("storage")?.parse().map_err(refuse)?;
        let dtype = crate::config::parse_dtype(entry("dtype")?).map_err(refuse)?;
        Ok(Some(Self {
            storage,
            dtype,
            source: entry("source")?.to_string(),
        }))
    }

    /// The header metadata that says all this.
    fn metadata(&self) -> HashMap<String, String> {
        let dtype = match self.dtype {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            _ => "f32",
        };
        [
            ("format", FORMAT),
            ("layout", LAYOUT_VERSION),
            ("storage", self.storage.name()),
            ("dtype", dtype),
            ("source", &self.source),
            ("dia_burn_version", env!("CARGO_PKG_VERSION")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The options a converted checkpoint loads with: its own storage, unless `options` ask
    /// for another, which is an error (the weights were quantized for this one).
    pub(crate) fn options(&self, options: ModelOptions, path: &Path) -> Result<ModelOptions> {
        match options.weights {
            Some(asked) if asked != self.storage => Err(DiaError::UnknownLayout {
                path: path.to_path_buf(),
                message: format!(
                    "converted with `{}` weights, asked for `{asked}`: load it without a \
                     weight storage, or convert the source ({}) with `--weights {asked}`",
                    self.storage, self.source
                ),
            }),
            _ => Ok(ModelOptions {
                weights: Some(self.storage),
                ..options
            }),
        }
    }
}

/// What [`convert`] wrote.
#[derive(Debug, Clone)]
pub struct ConvertSummary {
    /// The converted weights file.
    pub weights: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its metadata.
    pub converted: Converted,
}

/// Loads the checkpoint `files` as `options` say (quantizing, laying out for backend `B`) and
/// writes it to `out_dir` as a converted checkpoint: `model.safetensors` (written to a
/// temporary name, then renamed) and a copy of `config.json`. Refuses a directory that already
/// holds a checkpoint, so nothing is overwritten, and a source that is itself converted.
pub fn convert<B: DiaBackend>(
    files: &CheckpointFiles,
    options: ModelOptions,
    source: &str,
    out_dir: &Path,
    device: &B::Device,
) -> Result<ConvertSummary> {
    let weights = out_dir.join("model.safetensors");
    for existing in [weights.clone(), out_dir.join("config.json")] {
        if existing.exists() {
            return Err(DiaError::UnknownLayout {
                path: existing,
                message: "already exists: convert into a new or empty directory".into(),
            });
        }
    }
    let config = DiaConfig::from_file(&files.config)?;
    let shards = Shards::open_files(files)?;
    if Converted::detect(&shards, &files.weights)?.is_some() {
        return Err(DiaError::UnknownLayout {
            path: files.weights.clone(),
            message: "already a converted checkpoint: convert its source instead".into(),
        });
    }
    let mut loader = Loader::<B> {
        source: Source::checkpoint(&shards, &files.weights)?,
        config: &config,
        options,
        device,
        record: Some(Recorder::default()),
    };
    // Only the recorded tensors are written: the model itself goes at once.
    drop(loader.build()?);
    loader.check_all_used()?;
    let converted = Converted {
        storage: options.weight_storage(),
        dtype: options.dtype,
        source: source.to_string(),
    };
    std::fs::create_dir_all(out_dir).map_err(|e| DiaError::io(out_dir, e))?;
    let tensors = loader.record.take().unwrap_or_default().into_tensors();
    let bytes = write(&tensors, converted.metadata(), &weights)?;
    std::fs::copy(&files.config, out_dir.join("config.json"))
        .map_err(|e| DiaError::io(&files.config, e))?;
    Ok(ConvertSummary {
        weights,
        bytes,
        converted,
    })
}

/// Writes `tensors` with `metadata` as one safetensors file at `path` (through a temporary
/// file renamed at the end); returns its size.
fn write(
    tensors: &[(String, TensorData)],
    metadata: HashMap<String, String>,
    path: &Path,
) -> Result<u64> {
    use safetensors::{Dtype, tensor::TensorView};
    let corrupt = |message: String| DiaError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let views = tensors
        .iter()
        .map(|(key, data)| {
            let dtype = match data.dtype {
                DType::F32 => Dtype::F32,
                DType::F16 => Dtype::F16,
                DType::BF16 => Dtype::BF16,
                DType::I8 => Dtype::I8,
                other => {
                    return Err(corrupt(format!(
                        "`{key}`: no safetensors type for {other:?}"
                    )));
                }
            };
            let view = TensorView::new(dtype, data.shape.to_vec(), data.as_bytes())
                .map_err(|e| corrupt(format!("`{key}`: {e}")))?;
            Ok((key.as_str(), view))
        })
        .collect::<Result<Vec<_>>>()?;
    let partial = path.with_extension("safetensors.partial");
    safetensors::serialize_to_file(views, Some(metadata), &partial)
        .map_err(|e| corrupt(e.to_string()))?;
    std::fs::rename(&partial, path).map_err(|e| DiaError::io(path, e))?;
    Ok(std::fs::metadata(path)
        .map_err(|e| DiaError::io(path, e))?
        .len())
}

/// The tensors a [`Loader`] built, by name, for [`convert`] to write.
#[derive(Default)]
pub(crate) struct Recorder {
    tensors: Vec<(String, TensorData)>,
}

impl Recorder {
    /// Records a parameter that is not a projection.
    pub fn tensor<B: DiaBackend, const D: usize>(&mut self, key: String, tensor: &Tensor<B, D>) {
        self.tensors.push((key, tensor.to_data()));
    }

    /// Records a projection in whatever form the model keeps it.
    pub fn dense<B: DiaBackend>(&mut self, key: &str, weight: &Dense<B>) {
        let (float, int8, suffix) = match weight {
            Dense::Float(w) => (Some(w), None, ""),
            Dense::Int8(q) => (None, Some(q), ""),
            #[cfg(feature = "flex")]
            Dense::Tiled(t) => (t.float.as_ref(), t.int8.as_ref(), ".tiles"),
        };
        if let Some(w) = float {
            self.tensors
                .push((format!("{key}{suffix}"), w.val().to_data()));
        }
        if let Some(q) = int8 {
            let values = q.values.val().to_data();
            self.tensors.push((format!("{key}{suffix}.int8"), values));
            self.tensors
                .push((format!("{key}.scale"), q.scale.val().to_data()));
        }
    }

    pub fn into_tensors(self) -> Vec<(String, TensorData)> {
        self.tensors
    }
}

/// Projection `key` of shape `[in, out]` from a converted checkpoint, in the form it was
/// written: in `[in, out]`, or in column tiles (untiled when backend `B` does not read tiles).
pub(crate) fn read_dense<B: DiaBackend>(
    shards: &Shards,
    key: &str,
    shape: [usize; 2],
    storage: WeightStorage,
    device: &B::Device,
    used: &mut HashSet<String>,
) -> Result<Dense<B>> {
    let tiled =
        shards.contains(&format!("{key}.tiles")) || shards.contains(&format!("{key}.tiles.int8"));
    let suffix = if tiled { ".tiles" } else { "" };
    let values_shape = match tiled {
        true => tiled_shape(shape, storage == WeightStorage::W8A8, shards.path_of(key))?,
        false => shape.to_vec(),
    };
    let mut read = |name: String, shape: &[usize]| -> Result<TensorData> {
        let data = shards.get_shaped(&name, shape)?.data()?;
        used.insert(name);
        Ok(data)
    };
    let weight = match storage.float_dtype() {
        Some(dtype) => {
            let data = read(format!("{key}{suffix}"), &values_shape)?;
            Dense::Float(Param::from_tensor(Tensor::from_data(data, (device, dtype))))
        }
        None => {
            let values = read(format!("{key}{suffix}.int8"), &values_shape)?;
            let scale = read(format!("{key}.scale"), &shape[1..])?;
            Dense::Int8(Int8Weight {
                values: Param::initialized(
                    ParamId::new(),
                    Tensor::<B, 2, Int>::from_data(values, (device, DType::I8)),
                ),
                scale: Param::from_tensor(Tensor::from_data(scale, (device, DType::F32))),
                int8_activations: storage == WeightStorage::W8A8,
            })
        }
    };
    if !tiled {
        return Ok(weight);
    }
    tiles::<B>(weight, shape, shards.path_of(key))
}

/// A weight read from a converted checkpoint's tiles, as backend `B` reads it: in tiles, or
/// back in `[in, out]` when `B` does not read them.
#[cfg(feature = "flex")]
fn tiles<B: DiaBackend>(
    weight: Dense<B>,
    [rows, out]: [usize; 2],
    _path: &Path,
) -> Result<Dense<B>> {
    let (float, int8) = match weight {
        Dense::Float(w) => (Some(w), None),
        Dense::Int8(q) => (None, Some(q)),
        Dense::Tiled(_) => unreachable!("read as plain tensors"),
    };
    let tiles = crate::backend::flex::Tiles {
        float,
        int8,
        rows,
        out,
    };
    Ok(match B::reads_tiles() {
        true => Dense::Tiled(tiles),
        false => tiles.untiled(),
    })
}

/// The `[rows, TILE]` shape of an `[in, out]` weight's column tiles (quad tiles for int8
/// inputs), as [`crate::backend::flex::Tiles`] makes them.
#[cfg(feature = "flex")]
fn tiled_shape([rows, out]: [usize; 2], quads: bool, _path: &Path) -> Result<Vec<usize>> {
    use crate::backend::flex::TILE;
    let rows = match quads {
        true => crate::backend::flex::padded_rows(rows),
        false => rows,
    };
    Ok(vec![out.div_ceil(TILE) * rows, TILE])
}

/// Without Flex this build has no tiles to read.
#[cfg(not(feature = "flex"))]
fn tiled_shape(_shape: [usize; 2], _quads: bool, path: &Path) -> Result<Vec<usize>> {
    Err(no_flex(path))
}

/// Without Flex this build cannot untile.
#[cfg(not(feature = "flex"))]
fn tiles<B: DiaBackend>(_weight: Dense<B>, _shape: [usize; 2], path: &Path) -> Result<Dense<B>> {
    Err(no_flex(path))
}

/// The error for a converted checkpoint in tiles, read by a build without Flex.
#[cfg(not(feature = "flex"))]
fn no_flex(path: &Path) -> DiaError {
    DiaError::UnknownLayout {
        path: path.to_path_buf(),
        message: "a checkpoint converted in Flex's tiles, and this build has no Flex backend \
                  (feature `flex`) to read them"
            .into(),
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::LAYOUT_VERSION;
    use crate::backend::flex::{TILE, TILE_SPAN, TILE_STREAMS};

    /// Layout version 1 is these tiles: a change to any of them must raise the version, so
    /// that files written before are refused rather than misread.
    #[test]
    fn the_layout_version_pins_the_tiles() {
        let quad = crate::backend::flex::QUAD;
        assert_eq!(
            (LAYOUT_VERSION, TILE, TILE_SPAN, TILE_STREAMS, quad),
            ("1", 32, 512, 4, 4)
        );
    }
}
