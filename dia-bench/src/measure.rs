//! Measuring one configuration: weight set-up, encoder + cross-attention cache, decode steps,
//! DAC decode, peak memory.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use dia_burn::stream::{StreamEvent, generate_streaming};
use dia_dac::{Dac, StreamWindows};
use dia_model::model::TextBatch;
use dia_model::runtime::ensure_dtype;
use dia_model::tokenizer::encode_text;
use dia_model::{
    ContinuousBatch, DiaBackend, DiaModel, GenerationConfig, GenerationRequest, OnBackend,
};
use serde::{Deserialize, Serialize};

use crate::counters::{self, Counts};
use crate::machine::peak_rss_bytes;
use crate::setting::Setting;

/// The text every configuration speaks (the reference bench's).
pub const TEXT: &str = "[S1] Dia is an open weights text to dialogue model. [S2] You get full control over scripts and voices. [S1] Wow. Amazing. (laughs)";

/// How long to measure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Decode steps timed after the warm-up.
    pub steps: usize,
    /// Decode steps run first and not timed.
    pub warmup: usize,
    /// Seconds of audio the DAC decodes; 0 skips the codec.
    pub dac_seconds: f64,
    /// Real weights instead of random ones (its config replaces the size's).
    pub model_dir: Option<PathBuf>,
}

/// One report row: the setting and what was measured (`None` where it failed or was skipped).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub setting: Setting,
    pub fusion: Option<bool>,
    pub decode_steps_per_s: Option<f64>,
    /// Frames per second summed over the requests decoded together.
    #[serde(default)]
    pub aggregate_frames_per_s: Option<f64>,
    /// Steps per second ÷ the codec's frames per second of audio (86.13 for 44.1 kHz).
    pub realtime_factor: Option<f64>,
    pub step_ms_median: Option<f64>,
    pub step_ms_min: Option<f64>,
    pub step_ms_max: Option<f64>,
    pub steps_timed: usize,
    /// Encoder over the text plus every layer's cross-attention K/V and the empty KV cache.
    pub encoder_ms: Option<f64>,
    /// From the request to the first generated frame (tokenize, encoder, caches, first step).
    pub first_step_ms: Option<f64>,
    pub dac_ms_per_audio_s: Option<f64>,
    /// The streaming decoder's cost per second of audio (default windows, frames pushed one
    /// at a time, as generation hands them over), over the same audio as `dac_ms_per_audio_s`.
    pub stream_dac_ms_per_audio_s: Option<f64>,
    /// From the start of a streaming generation (no prompt) to its first samples: set-up, the
    /// decode steps until the first frames are final, and the codec's first window. The median
    /// of [`FIRST_AUDIO_RUNS`] runs, as the step time is a median.
    pub first_audio_ms: Option<f64>,
    /// Building the model: random weights, or loading `--model-dir`.
    pub load_ms: Option<f64>,
    pub weights_bytes: Option<u64>,
    /// Weight bytes a decode step reads: every decoder weight but the embedding tables.
    pub decoder_bytes_per_step: Option<u64>,
    /// Peak resident memory of the process after decoding, before the codec is loaded.
    pub peak_rss_bytes: Option<u64>,
    /// Kernel launches per timed step (the CubeCL backends; their tracing spans).
    #[serde(default)]
    pub kernels_per_step: Option<f64>,
    /// Device-to-host reads (host waits) per timed step.
    #[serde(default)]
    pub syncs_per_step: Option<f64>,
    /// The launches of one decode step after the timed ones, by kernel name (the CubeCL
    /// backends): where [`Row::kernels_per_step`] goes. With the device sampling, a read-back
    /// interval's launches per step, rounded.
    #[serde(default)]
    pub kernels_by_name: Option<BTreeMap<String, u64>>,
    /// Steps per read-back when the device chose the tokens; `None` when the host did.
    #[serde(default)]
    pub read_back: Option<usize>,
    pub error: Option<String>,
}

impl Row {
    /// A row with nothing measured.
    pub fn empty(setting: Setting) -> Self {
        Self {
            fusion: setting.backend.fusion(),
            setting,
            decode_steps_per_s: None,
            aggregate_frames_per_s: None,
            realtime_factor: None,
            step_ms_median: None,
            step_ms_min: None,
            step_ms_max: None,
            steps_timed: 0,
            encoder_ms: None,
            first_step_ms: None,
            dac_ms_per_audio_s: None,
            stream_dac_ms_per_audio_s: None,
            first_audio_ms: None,
            load_ms: None,
            weights_bytes: None,
            decoder_bytes_per_step: None,
            peak_rss_bytes: None,
            kernels_per_step: None,
            syncs_per_step: None,
            kernels_by_name: None,
            read_back: None,
            error: None,
        }
    }

    /// A row that failed with `error`.
    pub fn failed(setting: Setting, error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::empty(setting)
        }
    }
}

/// Measures `setting` on its backend.
pub fn measure(setting: &Setting, plan: &Plan) -> Result<Row> {
    dia_model::backend::set_custom_kernels(setting.custom_kernels);
    setting.backend.run(Job { setting, plan })?
}

struct Job<'a> {
    setting: &'a Setting,
    plan: &'a Plan,
}

impl OnBackend for Job<'_> {
    type Output = Result<Row>;

    fn run<B: DiaBackend>(self, device: B::Device) -> Result<Row> {
        let (setting, plan) = (self.setting, self.plan);
        let options = setting.options();
        ensure_dtype::<B>(setting.backend, &device, options.dtype)?;
        let mut row = Row::empty(setting.clone());

        let start = Instant::now();
        let model = match &plan.model_dir {
            Some(dir) => DiaModel::<B>::load(dir, options, &device)?,
            None => DiaModel::random(&setting.size.dia_config(), options, 0, &device),
        };
        sync::<B>(&device)?;
        row.load_ms = Some(ms(start));
        row.weights_bytes = Some(weight_bytes(&model));
        // A step reads every decoder weight but nine embedding rows and the cross-attention
        // K/V projections (used once, at set-up).
        let tables = tensor_bytes(&model.decoder.embeddings.val());
        let cross_kv: u64 = model
            .decoder
            .layers
            .iter()
            .map(|l| {
                weight_bytes(&l.cross_attention.k_proj) + weight_bytes(&l.cross_attention.v_proj)
            })
            .sum();
        row.decoder_bytes_per_step = Some(weight_bytes(&model.decoder) - tables - cross_kv);

        row.encoder_ms = Some(encoder_ms(&model, &device)?);
        let (config, request) = bench_generation(&model);
        let config = GenerationConfig {
            sampling: setting.sampling,
            ..config
        };
        row.read_back = config.sampling.read_back::<B>();
        let requests = vec![request; setting.requests];
        let steps = decode_steps(&model, plan, &requests, &config, row.read_back.unwrap_or(1))?;
        row.first_step_ms = Some(steps.first_ms);
        row.aggregate_frames_per_s = Some(steps.aggregate_frames_per_s);
        if counters::counting() && !steps.step_ms.is_empty() {
            let per_step = |n: u64| n as f64 / steps.step_ms.len() as f64;
            row.syncs_per_step = Some(per_step(steps.counts.host_reads));
            if setting.backend.fusion().is_some() {
                row.kernels_per_step = Some(per_step(steps.counts.launches));
                row.kernels_by_name = steps.named_step;
            }
        }
        let mut timed = steps.step_ms;
        timed.sort_by(f64::total_cmp);
        row.steps_timed = timed.len();
        if let (Some(&min), Some(&max)) = (timed.first(), timed.last()) {
            let median = timed[timed.len() / 2];
            row.step_ms_median = Some(median);
            row.step_ms_min = Some(min);
            row.step_ms_max = Some(max);
            row.decode_steps_per_s = Some(1000.0 / median);
            let frame_rate = setting.size.dac_config().frame_rate();
            row.realtime_factor = Some(1000.0 / median / frame_rate);
        }
        row.peak_rss_bytes = peak_rss_bytes();

        if plan.dac_seconds > 0.0 {
            let dac = Dac::<B>::random(setting.size.dac_config(), 0, &device)?;
            let mut runs = (0..FIRST_AUDIO_RUNS)
                .map(|_| first_audio_ms(&model, &dac))
                .collect::<Result<Vec<_>>>()?;
            runs.sort_by(f64::total_cmp);
            row.first_audio_ms = Some(runs[FIRST_AUDIO_RUNS / 2]);
            drop(model);
            let codec = codec_ms_per_audio_s(&dac, plan.dac_seconds)?;
            row.dac_ms_per_audio_s = Some(codec.whole);
            row.stream_dac_ms_per_audio_s = Some(codec.streamed);
        }
        Ok(row)
    }
}

pub(crate) fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

pub(crate) fn sync<B: Backend>(device: &B::Device) -> Result<()> {
    B::sync(device).map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))
}

fn tensor_bytes<B: Backend, const D: usize>(t: &Tensor<B, D>) -> u64 {
    (t.shape().num_elements() * t.dtype().size()) as u64
}

/// Bytes of every parameter at its stored dtype.
fn weight_bytes<B: Backend, M: Module<B>>(model: &M) -> u64 {
    struct Bytes(u64);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Bytes {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            self.0 += tensor_bytes(&param.val());
        }
        fn visit_int<const D: usize>(
            &mut self,
            param: &burn::module::Param<Tensor<B, D, burn::tensor::Int>>,
        ) {
            let t = param.val();
            self.0 += (t.shape().num_elements() * t.dtype().size()) as u64;
        }
    }
    let mut bytes = Bytes(0);
    model.visit(&mut bytes);
    bytes.0
}

/// Median of three runs of the encoder and decoder-state set-up, after one warm-up.
fn encoder_ms<B: DiaBackend>(model: &DiaModel<B>, device: &B::Device) -> Result<f64> {
    let text = encode_text(TEXT, model.config.encoder.max_position_embeddings);
    let batch = TextBatch::new(&[text.tokens], device);
    let max_len = max_tokens(model);
    let mut times = Vec::new();
    for run in 0..4 {
        let start = Instant::now();
        let enc = model.encode(&batch);
        let state = model.decoder_state(enc, &batch, max_len);
        sync::<B>(device)?;
        drop(state);
        if run > 0 {
            times.push(ms(start));
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The reference's decoder length, or the model's limit if smaller.
fn max_tokens<B: Backend>(model: &DiaModel<B>) -> usize {
    model.config.decoder.max_position_embeddings.min(3072)
}

/// What every timed generation speaks: [`TEXT`] with the reference's sampling settings.
fn bench_generation<B: DiaBackend>(model: &DiaModel<B>) -> (GenerationConfig, GenerationRequest) {
    let config = GenerationConfig {
        max_tokens: Some(max_tokens(model)),
        ..GenerationConfig::default()
    };
    let request = GenerationRequest {
        text: TEXT.into(),
        audio_prompt: None,
    };
    (config, request)
}

#[derive(Default)]
struct StepTimes {
    first_ms: f64,
    step_ms: Vec<f64>,
    /// Frames decoded over the timed steps (summed over requests) per second.
    aggregate_frames_per_s: f64,
    /// Launches and host reads of the timed steps.
    counts: Counts,
    /// The launches of the step after them, by kernel name.
    named_step: Option<BTreeMap<String, u64>>,
}

/// Decodes `requests` (a seed each) on one continuous batch choosing tokens at
/// `config.sampling`, timing every step after the warm-up. The host waits once per `read_back`
/// steps (1 when it samples), so each such interval is timed whole and its steps count its
/// mean; the interval after the timed ones is not timed but names its kernels (per step,
/// rounded). `first_ms` runs from the start to the first step's end (joins included).
fn decode_steps<B: DiaBackend>(
    model: &DiaModel<B>,
    plan: &Plan,
    requests: &[GenerationRequest],
    config: &GenerationConfig,
    read_back: usize,
) -> Result<StepTimes> {
    let start = Instant::now();
    let mut batch = ContinuousBatch::with_sampling(model, requests.len(), config.sampling)?;
    for (seed, request) in (0..).zip(requests) {
        batch.join(request, &GenerationConfig { seed, ..*config })?;
    }
    let mut times = StepTimes {
        first_ms: f64::NAN,
        ..StepTimes::default()
    };
    let (mut timed_frames, mut timed_ms, mut done) = (0, 0.0, 0);
    loop {
        let naming = times.step_ms.len() >= plan.steps;
        counters::name_launches(naming);
        let interval_start = Instant::now();
        let counted = counters::now();
        let (mut steps, mut frames) = (0, 0);
        while steps < read_back {
            let decoded = batch.step()?.len();
            if decoded == 0 {
                break;
            }
            if done + steps == 0 {
                times.first_ms = ms(start);
            }
            steps += 1;
            frames += decoded;
        }
        let elapsed = ms(interval_start);
        if naming {
            counters::name_launches(false);
            let per_step = |n: u64| (n as f64 / steps.max(1) as f64).round() as u64;
            let names = counters::launches_by_name().into_iter();
            times.named_step = (steps > 0).then(|| names.map(|(k, n)| (k, per_step(n))).collect());
        }
        if steps == 0 || naming {
            break;
        }
        if done > plan.warmup {
            times
                .step_ms
                .extend(std::iter::repeat_n(elapsed / steps as f64, steps));
            timed_ms += elapsed;
            timed_frames += frames;
            times.counts = times.counts.plus(counters::now().since(counted));
        }
        done += steps;
    }
    times.aggregate_frames_per_s = timed_frames as f64 / (timed_ms / 1000.0);
    Ok(times)
}

/// Streaming generations timed for [`Row::first_audio_ms`]: one alone swings by a fifth on a
/// shared machine.
pub const FIRST_AUDIO_RUNS: usize = 3;

/// Milliseconds from the start of a streaming generation of [`TEXT`] to its first samples.
fn first_audio_ms<B: DiaBackend>(model: &DiaModel<B>, dac: &Dac<B>) -> Result<f64> {
    let (config, request) = bench_generation(model);
    let start = Instant::now();
    let mut first = None;
    generate_streaming(
        model,
        dac,
        &[request],
        &config,
        StreamWindows::default(),
        |event| match event {
            StreamEvent::Audio { .. } => {
                first = Some(ms(start));
                ControlFlow::Break(())
            }
            StreamEvent::Step(_) => ControlFlow::Continue(()),
        },
    )?;
    first.ok_or_else(|| anyhow::anyhow!("the generation ended before any audio"))
}

/// The codec's cost per second of audio, whole and streamed.
pub(crate) struct CodecCost {
    pub whole: f64,
    pub streamed: f64,
}

/// Milliseconds of DAC decoding per second of audio for `seconds` of random codes: in one
/// pass, and through the streaming decoder fed one frame at a time; after a short warm-up.
pub(crate) fn codec_ms_per_audio_s<B: DiaBackend>(dac: &Dac<B>, seconds: f64) -> Result<CodecCost> {
    let channels = dac.config().n_codebooks;
    let codes = |frames: usize| -> Vec<Vec<u32>> {
        (0..frames)
            .map(|f| {
                (0..channels)
                    .map(|c| ((f * channels + c) * 7919 % 1024) as u32)
                    .collect()
            })
            .collect()
    };
    dac.decode_frames(&codes(8))?;
    let frames = codes(((seconds * dac.config().frame_rate()).round() as usize).max(1));
    let start = Instant::now();
    let audio = dac.decode_frames(&frames)?;
    let whole = ms(start);
    let start = Instant::now();
    let mut stream = dac.streaming_decoder(StreamWindows::default())?;
    let mut streamed = 0;
    for frame in &frames {
        streamed += stream.push(&[frame])?.len();
    }
    streamed += stream.finish()?.len();
    let streamed_ms = ms(start);
    if streamed != audio.len() {
        anyhow::bail!("streamed {streamed} samples, decoded {}", audio.len());
    }
    let audio_s = audio.len() as f64 / f64::from(dac.config().sample_rate);
    Ok(CodecCost {
        whole: whole / audio_s,
        streamed: streamed_ms / audio_s,
    })
}
