//! The main command: texts (and optional voice prompts) to WAV files.

use std::ops::ControlFlow;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use dia_dac::Dac;
use dia_model::DiaBackend;
use dia_model::{DiaModel, GenerationConfig, GenerationRequest, ModelOptions, generate};
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{OnBackend, dispatch};
use crate::cli::GenerateArgs;
use crate::jobs::Job;
use crate::{audio, codes, files, hub, jobs};

/// Frames the codec decodes at a time: bounds memory on long outputs.
const DECODE_WINDOW_FRAMES: usize = 256;

/// Checks every job's inputs and outputs, then generates on the chosen backend.
pub fn run(args: &GenerateArgs) -> Result<()> {
    let jobs = jobs::from_args(args)?;
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut inputs: Vec<&std::path::Path> = jobs.iter().flat_map(Job::inputs).collect();
    inputs.extend(args.batch.as_deref());
    inputs.extend(args.text_file.as_deref());
    for job in &jobs {
        for out in std::iter::once(&job.output).chain(job.codes_out.as_ref()) {
            files::ensure_not_input(out, &inputs)?;
            files::ensure_writable(out)?;
        }
        for input in job.inputs() {
            if !input.is_file() {
                bail!("cannot read {}: no such file", input.display());
            }
        }
    }
    dispatch(
        args.runtime.backend,
        args.runtime.dtype,
        Speak { args, jobs },
    )
}

struct Speak<'a> {
    args: &'a GenerateArgs,
    jobs: Vec<Job>,
}

impl OnBackend for Speak<'_> {
    type Output = ();

    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Result<()> {
        let args = self.args;
        let quiet = args.runtime.quiet;
        let started = Instant::now();
        let files = hub::model_files(&args.model, args.model_dir.as_deref(), quiet)?;
        let options = ModelOptions {
            dtype,
            int8_weights: args.int8,
            ..ModelOptions::default()
        };
        let model = DiaModel::<B>::load_files(&files, options, &device)
            .with_context(|| format!("cannot load the model from {}", files.weights.display()))?;
        let dac_path = hub::dac_path(&args.runtime.dac, args.runtime.dac_path.as_deref(), quiet)?;
        let dac = Dac::<B>::load(&dac_path, &device)
            .with_context(|| format!("cannot load the codec from {}", dac_path.display()))?;
        let channels = model.config.decoder.num_channels;
        if dac.config().n_codebooks != channels {
            bail!(
                "the codec has {} codebooks but the model speaks {channels} channels",
                dac.config().n_codebooks
            );
        }
        let config = GenerationConfig {
            max_tokens: args
                .max_tokens
                .unwrap_or(model.config.decoder.max_position_embeddings),
            cfg_scale: args.cfg_scale,
            temperature: args.temperature,
            top_p: args.top_p,
            cfg_filter_top_k: args.cfg_filter_top_k,
            seed: args.seed,
        };
        let sample_rate = dac.config().sample_rate;
        let frame_rate = dac.config().frame_rate();
        let mut audio_seconds = 0.0;
        for chunk in self.jobs.chunks(args.batch_size) {
            let requests = chunk
                .iter()
                .map(|job| {
                    Ok(GenerationRequest {
                        text: job.model_text(),
                        audio_prompt: prompt_codes(job, &dac, channels)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let bar = progress_bar(quiet, config.max_tokens as u64);
            let step_start = Instant::now();
            let out = generate(&model, &requests, &config, |event| {
                bar.set_position(event.frame as u64);
                let steps_per_s = event.frame as f64 / step_start.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "{steps_per_s:.1} steps/s, {:.2}× realtime",
                    steps_per_s / frame_rate
                ));
                ControlFlow::Continue(())
            })?;
            bar.finish_and_clear();
            for (job, generated) in chunk.iter().zip(out) {
                if generated.codes.is_empty() {
                    tracing::warn!(output = %job.output.display(), "nothing was generated: writing an empty WAV");
                }
                let samples = if generated.codes.is_empty() {
                    Vec::new()
                } else {
                    let codes = dac.frames_to_codes(&generated.codes)?;
                    dia_dac::audio_to_vec(dac.decode_chunked(codes, DECODE_WINDOW_FRAMES)?)?
                };
                audio_seconds += samples.len() as f64 / f64::from(sample_rate);
                audio::write_wav(&job.output, &samples, sample_rate, args.wav_format)?;
                if let Some(path) = &job.codes_out {
                    codes::write_codes(path, &generated.codes)?;
                }
            }
        }
        if !quiet {
            let wall = started.elapsed().as_secs_f64();
            eprintln!(
                "generated {audio_seconds:.2} s of audio in {wall:.2} s ({:.3}× realtime)",
                audio_seconds / wall
            );
        }
        Ok(())
    }
}

/// The job's voice prompt as codes: encoded from audio, or read from codes JSON.
fn prompt_codes<B: DiaBackend>(
    job: &Job,
    dac: &Dac<B>,
    channels: usize,
) -> Result<Option<Vec<Vec<u32>>>> {
    if let Some(path) = &job.audio_prompt_codes {
        return Ok(Some(codes::read_codes(
            path,
            channels,
            dac.config().codebook_size,
        )?));
    }
    let Some(path) = &job.audio_prompt else {
        return Ok(None);
    };
    let samples = audio::read_mono(path, dac.config().sample_rate)?;
    let codes = dac
        .encode_samples(&samples)
        .with_context(|| format!("cannot encode the audio prompt {}", path.display()))?;
    Ok(Some(codes))
}

fn progress_bar(quiet: bool, frames: u64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(frames);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} frames, {msg}") {
        bar.set_style(style);
    }
    bar
}
