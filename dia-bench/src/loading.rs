//! How long a checkpoint takes to load: a checkpoint of random values in a real layout, written
//! once ([`write_random_checkpoint`]), and loads of it timed ([`time_loads`]), so that load
//! times are measured at full size on a machine without the real weights.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn_flex::Flex;
use dia_model::checkpoint::names::{CheckpointFormat, ModelParam};
use dia_model::{DiaConfig, DiaModel, ModelOptions};
use safetensors::{Dtype, tensor::TensorView};
use serde::Serialize;

/// Writes `config` as a checkpoint directory in `format` (`config.json` in the flat schema and
/// one `model.safetensors` of f32 values, uniform on ±0.03, from `seed`); returns its size.
pub fn write_random_checkpoint(
    config: &DiaConfig,
    format: CheckpointFormat,
    seed: u64,
    dir: &Path,
) -> Result<u64> {
    let json = config
        .to_flat_json()
        .context("only the 0626 config schema is written")?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), json)?;
    let mut stored = BTreeMap::new();
    for param in ModelParam::all(config) {
        let spec = param.spec(config);
        let tensor = match format {
            CheckpointFormat::Nari => spec.nari,
            CheckpointFormat::Transformers => spec.transformers,
        };
        stored.entry(tensor.key).or_insert(tensor.shape);
    }
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = stored
        .into_iter()
        .map(|(key, shape)| {
            let len: usize = shape.iter().product();
            let bytes = (0..len)
                .flat_map(|_| random_value(&mut state).to_le_bytes())
                .collect();
            (key, shape, bytes)
        })
        .collect();
    let views = data
        .iter()
        .map(|(key, shape, bytes)| {
            Ok((
                key.as_str(),
                TensorView::new(Dtype::F32, shape.clone(), bytes)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let path = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, None::<HashMap<String, String>>, &path)?;
    Ok(std::fs::metadata(&path)?.len())
}

/// A xorshift value uniform on ±0.03 (standard deviation about 0.017): speed and memory do not
/// depend on the values, and a fast generator writes gigabytes in seconds.
fn random_value(state: &mut u64) -> f32 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    ((*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.06
}

/// One timed load.
#[derive(Debug, Clone, Serialize)]
pub struct LoadTime {
    pub seconds: f64,
    /// Peak resident memory of the process after the load.
    pub peak_rss_bytes: Option<u64>,
}

/// Loads the checkpoint in `dir` on Flex `runs` times with `options`, timing each load (the
/// first one warms the page cache).
pub fn time_loads(dir: &Path, options: ModelOptions, runs: usize) -> Result<Vec<LoadTime>> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let model = DiaModel::<Flex>::load(dir, options, &Default::default())?;
            let seconds = start.elapsed().as_secs_f64();
            drop(model);
            Ok(LoadTime {
                seconds,
                peak_rss_bytes: crate::machine::peak_rss_bytes(),
            })
        })
        .collect()
}
