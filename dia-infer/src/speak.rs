//! The main command: texts (and optional voice prompts) to WAV files or raw PCM on stdout,
//! written after each batch or, with `--stream`, while the model is still speaking; scripts
//! too long for one pass are spoken in passes and always written as they go.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use dia_burn::{LongStreamEvent, generate_long_streaming};
use dia_dac::{Dac, StreamWindows};
use dia_model::{
    CheckpointFiles, DiaBackend, DiaModel, GeneratedCodes, GenerationConfig, GenerationRequest,
    LongFormEvent, LongFormRequest, ModelOptions, VoicePrompt, generate, plan,
};

use crate::backend::{Command, dispatch};
use crate::cli::GenerateArgs;
use crate::jobs::Job;
use crate::progress::Progress;
use crate::sink::{self, AudioSink};
use crate::{audio, codes, files, hub, jobs};

/// Frames the codec decodes at a time: bounds memory on long outputs.
pub const DECODE_WINDOW_FRAMES: usize = 256;

/// Checks every job's inputs and outputs, finds the model and codec files (on the hub, through
/// its cache), checks the outputs against them too, then generates on the chosen backend.
pub fn run(args: &GenerateArgs) -> Result<()> {
    let jobs = jobs::from_args(args)?;
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    args.long_form()
        .check()
        .context("invalid --chunk-seconds or --context-seconds")?;
    let mut inputs: Vec<&Path> = jobs.iter().flat_map(Job::inputs).collect();
    inputs.extend(args.batch.as_deref());
    inputs.extend(args.text_file.as_deref());
    for input in jobs.iter().flat_map(Job::inputs) {
        if !input.is_file() {
            bail!("cannot read {}: no such file", input.display());
        }
    }
    let outputs: Vec<&Path> = jobs
        .iter()
        .flat_map(|j| std::iter::once(&j.output).chain(j.codes_out.as_ref()))
        .map(PathBuf::as_path)
        .collect();
    sink::check_one_stdout(outputs.iter().copied())?;
    let files: Vec<&Path> = outputs
        .into_iter()
        .filter(|o| !sink::is_stdout(o))
        .collect();
    files::check_outputs(&files, &inputs)?;
    let quiet = args.runtime.quiet;
    let model = hub::model_files(&args.model, args.model_dir.as_deref(), quiet)?;
    let dac = hub::dac_path(&args.runtime.dac, args.runtime.dac_path.as_deref(), quiet)?;
    let mut read = model.paths()?;
    read.extend(files::files_at(&dac));
    let read: Vec<&Path> = read.iter().map(PathBuf::as_path).collect();
    for out in &files {
        files::ensure_not_input(out, &read)?;
    }
    let speak = Speak {
        args,
        jobs,
        model,
        dac,
    };
    dispatch(args.runtime.backend, args.runtime.dtype, speak)
}

struct Speak<'a> {
    args: &'a GenerateArgs,
    jobs: Vec<Job>,
    model: CheckpointFiles,
    dac: PathBuf,
}

impl Command for Speak<'_> {
    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Result<()> {
        let args = self.args;
        let started = Instant::now();
        let (model, dac) = load::<B>(args, &self.model, &self.dac, &device, dtype)?;
        let config = generation_config(args, &model);
        let mut audio_seconds = 0.0;
        let text_len = model.config.encoder.max_position_embeddings;
        let plan_options = args.long_form().plan_options(text_len);
        // Every job's prompt is read and checked before the first job runs.
        let mut prompts = self
            .jobs
            .iter()
            .map(|job| {
                prompt_codes(job, &model, &dac, &config)
                    .with_context(|| format!("{}: unusable audio prompt", job.origin))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        for chunk in self.jobs.chunks(args.batch_size) {
            let prompts: Vec<_> = prompts.by_ref().take(chunk.len()).collect();
            let batch = Batch {
                model: &model,
                dac: &dac,
                config: &config,
                args,
            };
            let long = chunk.iter().any(|j| plan(&j.text, &plan_options).len() > 1);
            audio_seconds += if args.stream || long {
                let requests: Vec<_> = chunk.iter().zip(prompts).map(long_request).collect();
                batch.long(chunk, &requests)?
            } else {
                let requests: Vec<_> = chunk.iter().zip(prompts).map(plain_request).collect();
                batch.whole(chunk, &requests)?
            };
        }
        if !args.runtime.quiet {
            let wall = started.elapsed().as_secs_f64();
            eprintln!(
                "generated {audio_seconds:.2} s of audio in {wall:.2} s ({:.3}× realtime)",
                audio_seconds / wall
            );
        }
        Ok(())
    }
}

/// The model and the codec from their files, checked to speak the same channels.
fn load<B: DiaBackend>(
    args: &GenerateArgs,
    files: &CheckpointFiles,
    dac_path: &Path,
    device: &B::Device,
    dtype: DType,
) -> Result<(DiaModel<B>, Dac<B>)> {
    let options = ModelOptions {
        dtype,
        weights: args.weight_storage(),
        ..ModelOptions::default()
    };
    let model = DiaModel::<B>::load_files(files, options, device)
        .with_context(|| format!("cannot load the model from {}", files.weights.display()))?;
    let dac = Dac::<B>::load(dac_path, device)
        .with_context(|| format!("cannot load the codec from {}", dac_path.display()))?;
    let channels = model.config.decoder.num_channels;
    if dac.config().n_codebooks != channels {
        bail!(
            "the codec has {} codebooks but the model speaks {channels} channels",
            dac.config().n_codebooks
        );
    }
    Ok((model, dac))
}

/// The generation parameters of the command line (`--max-tokens` defaults to the model's limit).
fn generation_config<B: DiaBackend>(args: &GenerateArgs, model: &DiaModel<B>) -> GenerationConfig {
    GenerationConfig {
        max_tokens: args
            .max_tokens
            .unwrap_or(model.config.decoder.max_position_embeddings),
        cfg_scale: args.cfg_scale,
        temperature: args.temperature,
        top_p: args.top_p,
        cfg_filter_top_k: args.cfg_filter_top_k,
        seed: args.seed,
    }
}

/// One batch of jobs and what generates it.
struct Batch<'a, B: DiaBackend> {
    model: &'a DiaModel<B>,
    dac: &'a Dac<B>,
    config: &'a GenerationConfig,
    args: &'a GenerateArgs,
}

impl<B: DiaBackend> Batch<'_, B> {
    /// Generates the whole batch, then decodes and writes each job; returns seconds of audio.
    fn whole(&self, jobs: &[Job], requests: &[GenerationRequest]) -> Result<f64> {
        let frame_rate = self.dac.config().frame_rate();
        let mut progress =
            Progress::new(self.args.runtime.quiet, self.config.max_tokens, frame_rate);
        let out = generate(self.model, requests, self.config, |event| {
            progress.step(event.frame);
            ControlFlow::Continue(())
        })?;
        progress.finish();
        let mut seconds = 0.0;
        for (job, generated) in jobs.iter().zip(&out) {
            let samples = self.decode(job, generated)?;
            let rate = self.dac.config().sample_rate;
            sink::write_all(&job.output, &samples, rate, self.args.wav_format)?;
            seconds += samples.len() as f64 / f64::from(rate);
            write_codes(job, &generated.codes)?;
        }
        Ok(seconds)
    }

    /// Speaks the batch in passes ([`generate_long_streaming`]; one pass when a script fits)
    /// while each job's audio goes to its output as it becomes final; returns seconds of audio.
    fn long(&self, jobs: &[Job], requests: &[LongFormRequest]) -> Result<f64> {
        let rate = self.dac.config().sample_rate;
        let mut sinks = jobs
            .iter()
            .map(|job| AudioSink::open(&job.output, rate, self.args.wav_format))
            .collect::<Result<Vec<_>>>()?;
        let frame_rate = self.dac.config().frame_rate();
        let mut progress =
            Progress::new(self.args.runtime.quiet, self.config.max_tokens, frame_rate);
        let (mut samples, mut failure) = (0usize, None);
        let options = self.args.long_form();
        let windows = StreamWindows::default();
        let (model, dac, config) = (self.model, self.dac, self.config);
        let out = generate_long_streaming(model, dac, requests, config, &options, windows, |e| {
            match e {
                LongStreamEvent::Progress(LongFormEvent::Pass { pass, passes, .. }) => {
                    progress.pass(pass, passes)
                }
                LongStreamEvent::Progress(LongFormEvent::Step(step)) => progress.step(step.frame),
                LongStreamEvent::Progress(_) => {}
                LongStreamEvent::Audio { item, samples: s } => {
                    progress.audio();
                    samples += s.len();
                    if let Err(e) = sinks[item].write(s) {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        progress.finish();
        if let Some(e) = failure {
            return Err(e);
        }
        for ((job, generated), sink) in jobs.iter().zip(&out).zip(sinks) {
            let codes = generated.codes();
            warn_if_empty(job, &codes);
            sink.finish()?;
            write_codes(job, &codes)?;
        }
        Ok(samples as f64 / f64::from(rate))
    }

    /// A job's samples, decoded window by window.
    fn decode(&self, job: &Job, generated: &GeneratedCodes) -> Result<Vec<f32>> {
        if warn_if_empty(job, &generated.codes) {
            return Ok(Vec::new());
        }
        let codes = self.dac.frames_to_codes(&generated.codes)?;
        let audio = self.dac.decode_chunked(codes, DECODE_WINDOW_FRAMES)?;
        Ok(dia_dac::audio_to_vec(audio)?)
    }
}

/// A job as one generation: its prompt's transcript and text, and its prompt.
fn plain_request((job, prompt): (&Job, Option<Vec<Vec<u32>>>)) -> GenerationRequest {
    GenerationRequest {
        text: job.model_text(),
        audio_prompt: prompt,
    }
}

/// A job as a script spoken in passes, its prompt (with transcript) conditioning the first.
fn long_request((job, prompt): (&Job, Option<Vec<Vec<u32>>>)) -> LongFormRequest {
    LongFormRequest {
        script: job.text.clone(),
        voice: prompt.map(|codes| VoicePrompt {
            transcript: job.prompt_transcript.clone().unwrap_or_default(),
            codes,
        }),
    }
}

/// Warns when a job produced no frame (its output is then empty); returns whether it did.
fn warn_if_empty(job: &Job, codes: &[Vec<u32>]) -> bool {
    let empty = codes.is_empty();
    if empty {
        tracing::warn!(output = %job.output.display(), "nothing was generated: writing empty audio");
    }
    empty
}

/// Writes the job's codes JSON if it asked for one.
fn write_codes(job: &Job, codes: &[Vec<u32>]) -> Result<()> {
    match &job.codes_out {
        Some(path) => codes::write_codes(path, codes),
        None => Ok(()),
    }
}

/// The job's voice prompt as codes: encoded from audio, or read from codes JSON; checked
/// against the model (an audio file too long to continue is refused from its header).
fn prompt_codes<B: DiaBackend>(
    job: &Job,
    model: &DiaModel<B>,
    dac: &Dac<B>,
    config: &GenerationConfig,
) -> Result<Option<Vec<Vec<u32>>>> {
    let codes = if let Some(path) = &job.audio_prompt_codes {
        let channels = model.config.decoder.num_channels;
        codes::read_codes(path, channels, dac.config().codebook_size)?
    } else if let Some(path) = &job.audio_prompt {
        // The prompt and the delay after it must leave a frame to generate.
        let frames = config
            .max_tokens
            .saturating_sub(model.config.max_delay() + 2);
        let max_seconds = frames as f64 / dac.config().frame_rate();
        let samples = audio::read_mono(path, dac.config().sample_rate, Some(max_seconds))?;
        dac.encode_samples(&samples)
            .with_context(|| format!("cannot encode the audio prompt {}", path.display()))?
    } else {
        return Ok(None);
    };
    let request = GenerationRequest {
        text: job.model_text(),
        audio_prompt: Some(codes),
    };
    dia_model::check_request(model, &request, config)?;
    Ok(request.audio_prompt)
}
