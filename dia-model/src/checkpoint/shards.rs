//! The safetensors files of a checkpoint, single-file or sharded, memory-mapped and read tensor
//! by tensor.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{DiaError, Result};

/// One memory-mapped safetensors file with its parsed header.
struct Shard {
    path: PathBuf,
    /// The file, for reads that copy a tensor out whole ([`RawTensor::data`]).
    file: File,
    mmap: Mmap,
    /// Byte offset of the data section.
    data_start: usize,
    tensors: HashMap<String, safetensors::tensor::TensorInfo>,
    /// The header's `__metadata__` (a converted checkpoint's storage and layout).
    metadata: HashMap<String, String>,
}

impl Shard {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| DiaError::io(path, e))?;
        // SAFETY: the file is opened read-only and only read through this map; a checkpoint
        // changed by another process while we read it is outside what we can guard against.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| DiaError::io(path, e))?;
        let corrupt = |message: String| DiaError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        let (header_len, metadata) =
            SafeTensors::read_metadata(&mmap).map_err(|e| corrupt(e.to_string()))?;
        let data_start = 8 + header_len;
        let tensors: HashMap<_, _> = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, info.clone()))
            .collect();
        let extra = metadata.metadata().clone().unwrap_or_default();
        let data_len = mmap.len().saturating_sub(data_start);
        if let Some((name, info)) = tensors.iter().find(|(_, i)| i.data_offsets.1 > data_len) {
            return Err(corrupt(format!(
                "tensor `{name}` ends at byte {} but the file holds {data_len} data bytes \
                 (truncated?)",
                info.data_offsets.1
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            mmap,
            data_start,
            tensors,
            metadata: extra,
        })
    }
}

/// A raw tensor borrowed from a checkpoint: its file, shape, dtype and bytes.
pub(crate) struct RawTensor<'a> {
    pub path: &'a Path,
    pub key: &'a str,
    pub shape: Vec<usize>,
    dtype: Dtype,
    bytes: &'a [u8],
    shard: &'a Shard,
}

impl RawTensor<'_> {
    /// Rows `start..start + len` along the first axis (bounds are checked by the caller
    /// against the expected shape).
    pub fn rows(mut self, start: usize, len: usize) -> Self {
        let row_elems: usize = self.shape[1..].iter().product();
        let elem = self.dtype.bitsize() / 8;
        self.bytes = &self.bytes[start * row_elems * elem..(start + len) * row_elems * elem];
        self.shape[0] = len;
        self
    }

    /// The stored elements as they are (a copy out of the file), for a converted checkpoint
    /// whose tensors are already in the model's dtype and layout (on a little-endian CPU, as
    /// safetensors stores them).
    pub fn data(&self) -> Result<TensorData> {
        if cfg!(target_endian = "big") {
            return Err(DiaError::UnknownLayout {
                path: self.path.to_path_buf(),
                message: "converted checkpoints are read on little-endian CPUs only".into(),
            });
        }
        let shape = self.shape.clone();
        Ok(match self.dtype {
            Dtype::F32 => TensorData::new(self.read::<f32>()?, shape),
            Dtype::F16 => TensorData::new(self.read::<half::f16>()?, shape),
            Dtype::BF16 => TensorData::new(self.read::<half::bf16>()?, shape),
            Dtype::I8 => TensorData::new(self.read::<i8>()?, shape),
            other => {
                return Err(DiaError::UnsupportedDtype {
                    path: self.path.to_path_buf(),
                    key: self.key.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        })
    }

    /// The tensor's elements read from its file into a vector of their type (aligned for it,
    /// so the tensor takes it without another copy): read calls rather than copies out of the
    /// map (which would fault each page in twice), a large tensor in parts on parallel threads.
    fn read<T: Plain>(&self) -> Result<Vec<T>> {
        let mut values = vec![T::default(); self.bytes.len() / std::mem::size_of::<T>()];
        // SAFETY: `Plain` types have no padding and every bit pattern is a value of them.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                values.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(values.as_slice()),
            )
        };
        let offset = self.bytes.as_ptr() as usize - self.shard.mmap.as_ptr() as usize;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let part = bytes.len().div_ceil(threads).max(16 << 20);
        let results: Vec<std::io::Result<()>> = std::thread::scope(|scope| {
            let reads: Vec<_> = bytes
                .chunks_mut(part)
                .enumerate()
                .map(|(i, chunk)| {
                    let at = offset + i * part;
                    scope.spawn(move || read_at(&self.shard.file, &self.shard.mmap, chunk, at))
                })
                .collect();
            reads
                .into_iter()
                .map(|r| r.join().expect("a read thread does not panic"))
                .collect()
        });
        for result in results {
            result.map_err(|e| DiaError::io(self.path, e))?;
        }
        Ok(values)
    }

    /// Converts the stored elements to `f32`, whatever float type the file uses.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let b = self.bytes;
        Ok(match self.dtype {
            // Safetensors stores little-endian values: read in place on a little-endian CPU.
            Dtype::F32 if cfg!(target_endian = "little") => self.read::<f32>()?,
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(DiaError::UnsupportedDtype {
                    path: self.path.to_path_buf(),
                    key: self.key.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        })
    }
}

/// Element types a tensor is read into as raw bytes: no padding, every bit pattern a value.
trait Plain: Copy + Default + burn::tensor::Element {}
impl Plain for f32 {}
impl Plain for half::f16 {}
impl Plain for half::bf16 {}
impl Plain for i8 {}

/// Fills `buf` with the file's bytes from `offset`: a positioned read where the OS has one,
/// else a copy out of the map.
#[cfg(unix)]
fn read_at(file: &File, _map: &Mmap, buf: &mut [u8], offset: usize) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset as u64)
}

#[cfg(not(unix))]
fn read_at(_file: &File, map: &Mmap, buf: &mut [u8], offset: usize) -> std::io::Result<()> {
    buf.copy_from_slice(&map[offset..offset + buf.len()]);
    Ok(())
}

/// All shards of one checkpoint and which shard holds each tensor.
pub(crate) struct Shards {
    shards: Vec<Shard>,
    index: BTreeMap<String, usize>,
}

/// The `weight_map` of a `model.safetensors.index.json`: tensor name → shard file name.
pub fn weight_map(index_path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(index_path).map_err(|e| DiaError::io(index_path, e))?;
    let corrupt = |message: String| DiaError::Corrupt {
        path: index_path.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    match value {
        serde_json::Value::Object(mut top) => match top.remove("weight_map") {
            Some(serde_json::Value::Object(map)) => Ok(map),
            _ => Err(corrupt("no `weight_map` object".into())),
        },
        _ => Err(corrupt("not a JSON object".into())),
    }
}

/// The shard files a weight map names, sorted, each once.
pub fn shard_names(weight_map: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let mut files: Vec<String> = weight_map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    files.sort_unstable();
    files.dedup();
    files
}

impl Shards {
    /// Opens a single safetensors file.
    pub fn open_file(path: &Path) -> Result<Self> {
        Self::from_shards(vec![Shard::open(path)?])
    }

    /// Opens the shards listed by a `model.safetensors.index.json`.
    pub fn open_index(index_path: &Path) -> Result<Self> {
        let weight_map = weight_map(index_path)?;
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let shards = shard_names(&weight_map)
            .iter()
            .map(|f| Shard::open(&dir.join(f)))
            .collect::<Result<Vec<_>>>()?;
        let opened = Self::from_shards(shards)?;
        if let Some(key) = weight_map.keys().find(|k| !opened.index.contains_key(*k)) {
            return Err(DiaError::Corrupt {
                path: index_path.to_path_buf(),
                message: format!("`{key}` is listed in the index but is in none of its shards"),
            });
        }
        Ok(opened)
    }

    fn from_shards(shards: Vec<Shard>) -> Result<Self> {
        let mut index = BTreeMap::new();
        for (i, shard) in shards.iter().enumerate() {
            for key in shard.tensors.keys() {
                index.insert(key.clone(), i);
            }
        }
        Ok(Self { shards, index })
    }

    /// Opens a checkpoint's weights: a single file or a sharded index.
    pub fn open_files(files: &super::CheckpointFiles) -> Result<Self> {
        match files.is_index() {
            true => Self::open_index(&files.weights),
            false => Self::open_file(&files.weights),
        }
    }

    /// Whether the checkpoint holds tensor `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Every tensor name in the checkpoint, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Entry `key` of the first shard's header metadata (`__metadata__`).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.shards.first()?.metadata.get(key).map(String::as_str)
    }

    /// The path of the shard that holds `key`, or of the first shard if none does.
    pub fn path_of(&self, key: &str) -> &Path {
        let shard = self.index.get(key).copied().unwrap_or(0);
        self.shards
            .get(shard)
            .map_or(Path::new("<checkpoint>"), |s| s.path.as_path())
    }

    /// Borrows tensor `key` of shape `shape`, failing with an error that names the file if it
    /// is absent or has another shape.
    pub fn get_shaped<'a>(&'a self, key: &'a str, shape: &[usize]) -> Result<RawTensor<'a>> {
        let raw = self.get(key)?;
        if raw.shape != shape {
            return Err(DiaError::ShapeMismatch {
                path: raw.path.to_path_buf(),
                key: key.to_string(),
                expected: shape.to_vec(),
                found: raw.shape,
            });
        }
        Ok(raw)
    }

    /// Borrows tensor `key`, failing with an error that names the file if it is absent.
    pub fn get<'a>(&'a self, key: &'a str) -> Result<RawTensor<'a>> {
        let shard = self
            .index
            .get(key)
            .and_then(|&i| self.shards.get(i))
            .ok_or_else(|| DiaError::MissingTensor {
                path: self.path_of(key).to_path_buf(),
                key: key.to_string(),
            })?;
        let info = &shard.tensors[key];
        let (start, end) = info.data_offsets;
        let bytes = &shard.mmap[shard.data_start + start..shard.data_start + end];
        Ok(RawTensor {
            path: &shard.path,
            key,
            shape: info.shape.clone(),
            dtype: info.dtype,
            bytes,
            shard,
        })
    }
}
