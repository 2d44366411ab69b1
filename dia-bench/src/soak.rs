//! `dia-bench soak`: resident memory over a generation to the full decoder length, sampled every
//! few steps beside the KV cache's own size, to show that a long run stays flat (nothing grows
//! per step but the cache, and the cache only as its doubling schedule says).

use std::time::Instant;

use anyhow::Result;
use burn::tensor::{Int, Tensor, TensorData};
use dia_model::model::TextBatch;
use dia_model::runtime::ensure_dtype;
use dia_model::tokenizer::encode_text;
use dia_model::{DiaBackend, DiaModel, OnBackend};
use serde::Serialize;

use crate::counters;
use crate::machine::current_rss_bytes;
use crate::measure::TEXT;
use crate::setting::Setting;

/// How long to run and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct SoakPlan {
    pub steps: usize,
    pub every: usize,
    /// Positions the decoder allows instead of the size's own (the tiny model's 256), so a
    /// narrow model runs to the full length where a wide one is too slow (software Vulkan).
    pub decoder_positions: Option<usize>,
}

/// Memory after `step` decode steps.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSample {
    pub step: usize,
    pub rss_bytes: u64,
    /// Bytes of every layer's self-attention keys and values.
    pub kv_cache_bytes: u64,
    /// Kernels compiled since the model was built (the CubeCL backends, with [`counters`]
    /// on): a per-shape cache that grows with the KV cache's length shows here.
    ///
    /// [`counters`]: crate::counters
    #[serde(default)]
    pub kernels_compiled: Option<u64>,
    pub seconds: f64,
}

/// The run.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub setting: Setting,
    pub steps: usize,
    pub samples: Vec<SoakSample>,
}

impl SoakReport {
    /// Growth of resident memory and of the KV cache from the first sample at or after `step`
    /// to the last one: `(rss, cache)` in bytes.
    pub fn growth_after(&self, step: usize) -> Option<(i64, i64)> {
        let from = self.samples.iter().find(|s| s.step >= step)?;
        let to = self.samples.last()?;
        Some((
            to.rss_bytes as i64 - from.rss_bytes as i64,
            to.kv_cache_bytes as i64 - from.kv_cache_bytes as i64,
        ))
    }
}

/// Runs `plan.steps` decode steps of the bench text with `setting`'s random-weight model,
/// feeding each step's greedy codes back (no end of sequence: the run always goes the length).
pub fn soak(setting: &Setting, plan: &SoakPlan) -> Result<SoakReport> {
    setting.backend.run(Job { setting, plan })?
}

struct Job<'a> {
    setting: &'a Setting,
    plan: &'a SoakPlan,
}

impl OnBackend for Job<'_> {
    type Output = Result<SoakReport>;

    fn run<B: DiaBackend>(self, device: B::Device) -> Result<SoakReport> {
        let (setting, plan) = (self.setting, self.plan);
        let options = setting.options();
        ensure_dtype::<B>(setting.backend, &device, options.dtype)?;
        let mut config = setting.size.dia_config();
        if let Some(positions) = plan.decoder_positions {
            config.decoder.max_position_embeddings = positions;
        }
        let positions = config.decoder.max_position_embeddings;
        if plan.steps > positions {
            anyhow::bail!(
                "{} steps exceed the decoder's {positions} positions (--decoder-positions \
                 raises them)",
                plan.steps
            );
        }
        let model = DiaModel::<B>::random(&config, options, 0, &device);
        let text_len = model.config.encoder.max_position_embeddings;
        let text = encode_text(TEXT, text_len).tokens;
        let batch = TextBatch::<B>::new(&[text], &device);
        let enc = model.encode(&batch);
        let mut state = model.decoder_state(enc, &batch, plan.steps + 1);
        let channels = model.config.decoder.num_channels;
        let mut codes = vec![i64::from(model.config.bos_token_id); channels];
        let start = Instant::now();
        let counted = counters::now();
        let gpu = setting.backend.fusion().is_some() && counters::counting();
        let compiled = || gpu.then(|| counters::now().since(counted).compilations);
        let mut samples = Vec::new();
        for step in 0..plan.steps {
            // Both CFG rows read the same codes: `[2, 1, channels]`.
            let rows = [codes.as_slice(), codes.as_slice()].concat();
            let input =
                Tensor::<B, 3, Int>::from_data(TensorData::new(rows, [2, 1, channels]), &device);
            let logits = model.decode(input, step, &mut state);
            // `[2, 1, channels, vocab]` → the conditional row's best code per channel.
            let best = logits.argmax(3).into_data().convert::<i64>();
            codes = best
                .into_vec::<i64>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?[..channels]
                .to_vec();
            if (step + 1) % plan.every == 0 || step + 1 == plan.steps {
                samples.push(SoakSample {
                    step: step + 1,
                    rss_bytes: current_rss_bytes().unwrap_or(0),
                    kv_cache_bytes: state.self_attn.iter().map(|c| c.bytes() as u64).sum(),
                    kernels_compiled: compiled(),
                    seconds: start.elapsed().as_secs_f64(),
                });
            }
        }
        Ok(SoakReport {
            setting: setting.clone(),
            steps: plan.steps,
            samples,
        })
    }
}

/// The report as Markdown: a table of samples and the growth after step 500.
pub fn markdown(r: &SoakReport) -> String {
    let mib = |b: i64| b as f64 / (1u64 << 20) as f64;
    let mut s = format!(
        "{} steps, size {:?}, backend {}, dtype {:?}, weights {}.\n\n",
        r.steps, r.setting.size, r.setting.backend, r.setting.dtype, r.setting.weights
    );
    if let Some((rss, cache)) = r.growth_after(500) {
        s.push_str(&format!(
            "From step 500 to the end: resident memory grew {:.1} MiB, the KV cache {:.1} MiB.\n\n",
            mib(rss),
            mib(cache)
        ));
    }
    s.push_str("| step | RSS MiB | KV cache MiB | kernels compiled | seconds |\n");
    s.push_str("|---:|---:|---:|---:|---:|\n");
    for x in &r.samples {
        let compiled = x.kernels_compiled.map_or("–".into(), |n| n.to_string());
        s.push_str(&format!(
            "| {} | {:.1} | {:.1} | {compiled} | {:.1} |\n",
            x.step,
            mib(x.rss_bytes as i64),
            mib(x.kv_cache_bytes as i64),
            x.seconds
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use burn::tensor::DType;
    use dia_model::{BackendKind, WeightStorage};

    use super::*;
    use crate::setting::Size;

    #[test]
    fn a_tiny_soak_samples_memory_and_the_cache() {
        let setting = Setting {
            size: Size::Tiny,
            backend: BackendKind::Flex,
            dtype: DType::F32,
            weights: WeightStorage::F32,
            rope_table: true,
            fused_qkv: true,
            requests: 1,
            sampling: Default::default(),
            custom_kernels: true,
        };
        let mut plan = SoakPlan {
            steps: 300,
            every: 100,
            decoder_positions: None,
        };
        let err = soak(&setting, &plan).unwrap_err().to_string();
        assert!(
            err.contains("256 positions") && err.contains("--decoder-positions"),
            "{err}"
        );

        plan.decoder_positions = Some(400);
        let report = soak(&setting, &plan).unwrap();
        let steps: Vec<usize> = report.samples.iter().map(|s| s.step).collect();
        assert_eq!(steps, [100, 200, 300]);
        assert!(report.samples.iter().all(|s| s.rss_bytes > 1 << 20));
        assert!(report.samples.iter().all(|s| s.kernels_compiled.is_none()));
        // The tiny decoder's cache: 2 layers, K and V, 2 rows, 2 heads, 16 dims, f32, holding
        // the initial 256 positions, then grown to the run's 301-position limit.
        let cache = |positions: i64| 2 * 2 * 2 * 2 * 16 * positions * 4;
        let bytes: Vec<i64> = report
            .samples
            .iter()
            .map(|s| s.kv_cache_bytes as i64)
            .collect();
        assert_eq!(bytes, [cache(256), cache(256), cache(301)]);
        let (_, cache_growth) = report.growth_after(100).unwrap();
        assert_eq!(cache_growth, cache(45));
        assert!(markdown(&report).contains("| 300 |"));
    }
}
