//! The main command: texts (and optional voice prompts) to WAV files or raw PCM on stdout.
//! Jobs run side by side on a continuous batch; each is written when it ends or, with
//! `--stream`, while the model is still speaking; scripts too long for one pass are spoken in
//! passes and always written as they go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use dia_burn::backends::{self, OnDevice};
use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::generation::check_request;
use dia_burn::dia_model::longform::{PlanOptions, plan};
use dia_burn::dia_model::{
    DiaBackend, DiaModel, GenerationConfig, GenerationRequest, LongFormRequest, VoicePrompt,
};
use dia_burn::voice::{VoiceSource, voice_codes};
use dia_burn::{Dia, DiaFiles, JobId, LoadOptions, SpeechEvent, SpeechJob, SpeechScheduler, codes};

use crate::cli::GenerateArgs;
use crate::files;
use crate::jobs;
use crate::jobs::Job;
use crate::progress::Progress;
use crate::sink::{self, AudioSink};

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
    let options = dia_burn::cli::load_options(&args.model, &args.runtime);
    let found = options.files()?;
    let mut read = found.model.paths()?;
    read.extend(files::files_at(&found.codec));
    let read: Vec<&Path> = read.iter().map(PathBuf::as_path).collect();
    for out in &files {
        files::ensure_not_input(out, &read)?;
    }
    let speak = Speak {
        args,
        jobs,
        options,
        files: found,
    };
    backends::run(args.runtime.backend, args.runtime.dtype, speak)?
}

struct Speak<'a> {
    args: &'a GenerateArgs,
    jobs: Vec<Job>,
    options: LoadOptions,
    files: DiaFiles,
}

impl OnDevice for Speak<'_> {
    type Output = Result<()>;

    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Result<()> {
        let args = self.args;
        let started = Instant::now();
        let options = self.options.model_options(dtype);
        let dia = Dia::<B>::load_files(&self.files, options, &device)?;
        let (model, dac) = (dia.model(), dia.codec());
        let config = generation_config(args);
        // Every job's prompt is read and checked before the first job runs.
        let prompts = self
            .jobs
            .iter()
            .map(|job| {
                prompt_codes(job, model, dac, &config)
                    .with_context(|| format!("{}: unusable audio prompt", job.origin))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut run = Run::new(model, dac, args)?;
        for (job, prompt) in self.jobs.iter().zip(prompts) {
            run.submit(job, prompt, &config)?;
        }
        let audio_seconds = run.finish()?;
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

/// The generation parameters of the command line (`--max-tokens` defaults to the model's limit).
fn generation_config(args: &GenerateArgs) -> GenerationConfig {
    GenerationConfig {
        max_tokens: args.max_tokens,
        cfg_scale: args.cfg_scale,
        temperature: args.temperature,
        top_p: args.top_p,
        cfg_filter_top_k: args.cfg_filter_top_k,
        seed: args.seed,
        sampling: args.sampling,
    }
}

/// A submitted job's outputs: its audio sink while it streams.
struct Outputs<'j> {
    job: &'j Job,
    sink: Option<AudioSink>,
}

/// Every job on one continuous batch of `--batch-size` slots: a job starts as soon as a slot is
/// free; a job streams (written as it goes) with `--stream` or when its script takes several
/// passes, else it is decoded whole at its end, exactly as when it runs alone.
struct Run<'a, 'j, B: DiaBackend> {
    scheduler: SpeechScheduler<'a, B>,
    dac: &'a Dac<B>,
    args: &'a GenerateArgs,
    plan_options: PlanOptions,
    outputs: HashMap<JobId, Outputs<'j>>,
}

impl<'a, 'j, B: DiaBackend> Run<'a, 'j, B> {
    fn new(model: &'a DiaModel<B>, dac: &'a Dac<B>, args: &'a GenerateArgs) -> Result<Self> {
        let options = args.long_form();
        let text_len = model.config.encoder.max_position_embeddings;
        let scheduler =
            SpeechScheduler::with_sampling(model, dac, args.batch_size, options, args.sampling)?;
        Ok(Self {
            scheduler,
            dac,
            args,
            plan_options: options.plan_options(text_len),
            outputs: HashMap::new(),
        })
    }

    /// Queues `job` with its seed (the run's unless it has its own); a streamed job's output
    /// is opened now.
    fn submit(
        &mut self,
        job: &'j Job,
        prompt: Option<Vec<Vec<u32>>>,
        config: &GenerationConfig,
    ) -> Result<()> {
        let stream = self.args.stream || plan(&job.text, &self.plan_options).len() > 1;
        let speech = SpeechJob {
            script: long_request((job, prompt)),
            config: GenerationConfig {
                seed: job.seed.unwrap_or(config.seed),
                ..*config
            },
            stream,
        };
        let id = self
            .scheduler
            .submit(speech)
            .with_context(|| format!("{}: cannot be spoken", job.origin))?;
        let rate = self.dac.config().sample_rate;
        let sink = stream
            .then(|| AudioSink::open(&job.output, rate, self.args.wav_format))
            .transpose()?;
        self.outputs.insert(id, Outputs { job, sink });
        Ok(())
    }

    /// Runs the batch until every job is written; returns seconds of audio.
    fn finish(mut self) -> Result<f64> {
        let frame_rate = self.dac.config().frame_rate();
        let jobs = self.outputs.len();
        let mut progress = Progress::new(self.args.runtime.quiet, jobs, frame_rate);
        let mut writer = Writer {
            outputs: &mut self.outputs,
            dac: self.dac,
            args: self.args,
            samples: 0,
            failure: None,
        };
        while !self.scheduler.is_idle() && writer.failure.is_none() {
            let decoded = self
                .scheduler
                .step(|event| writer.take(event, &mut progress))?;
            progress.step(decoded, jobs - self.scheduler.jobs());
        }
        progress.finish();
        if let Some(e) = writer.failure {
            return Err(e);
        }
        Ok(writer.samples as f64 / f64::from(self.dac.config().sample_rate))
    }
}

/// Where the scheduler's events go: streamed samples to their sinks, finished jobs decoded
/// (when not streamed) and written with their codes.
struct Writer<'r, 'j, B: DiaBackend> {
    outputs: &'r mut HashMap<JobId, Outputs<'j>>,
    dac: &'r Dac<B>,
    args: &'r GenerateArgs,
    samples: usize,
    failure: Option<anyhow::Error>,
}

impl<B: DiaBackend> Writer<'_, '_, B> {
    /// Handles `event`; the first failure is kept and stops the run.
    fn take(&mut self, event: SpeechEvent<'_>, progress: &mut Progress) {
        if self.failure.is_none()
            && let Err(e) = self.write(event, progress)
        {
            self.failure = Some(e);
        }
    }

    fn write(&mut self, event: SpeechEvent<'_>, progress: &mut Progress) -> Result<()> {
        match event {
            SpeechEvent::Started { pass, passes, .. } => progress.pass(pass, passes),
            SpeechEvent::Audio { job, samples } => {
                progress.audio();
                self.samples += samples.len();
                if let Some(sink) = self.outputs.get_mut(&job).and_then(|o| o.sink.as_mut()) {
                    sink.write(samples)?;
                }
            }
            SpeechEvent::Done { job, output } => {
                let out = self.outputs.remove(&job).expect("a submitted job");
                let codes = output.codes();
                warn_if_empty(out.job, &codes);
                match out.sink {
                    Some(sink) => sink.finish()?,
                    None => self.write_whole(out.job, &codes)?,
                }
                write_codes(out.job, &codes)?;
            }
            SpeechEvent::Failed { job, error } => {
                let origin = self
                    .outputs
                    .get(&job)
                    .map_or("a job", |o| o.job.origin.as_str());
                return Err(anyhow::Error::new(error).context(format!("{origin} failed")));
            }
        }
        Ok(())
    }

    /// Decodes a job's codes whole (window by window) and writes its output.
    fn write_whole(&mut self, job: &Job, codes: &[Vec<u32>]) -> Result<()> {
        let samples = if codes.is_empty() {
            Vec::new()
        } else {
            self.dac.decode_frames(codes)?
        };
        let rate = self.dac.config().sample_rate;
        sink::write_all(&job.output, &samples, rate, self.args.wav_format)?;
        self.samples += samples.len();
        Ok(())
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
        Some(path) => Ok(codes::write_codes(path, codes)?),
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
    let source = match (&job.audio_prompt_codes, &job.audio_prompt) {
        (Some(path), _) => VoiceSource::Codes(path),
        (None, Some(path)) => VoiceSource::Audio(path),
        (None, None) => return Ok(None),
    };
    let codes = voice_codes(model, dac, source, config.max_tokens_for(&model.config))?;
    let request = GenerationRequest {
        text: job.model_text(),
        audio_prompt: Some(codes),
    };
    check_request(model, &request, config)?;
    Ok(request.audio_prompt)
}
