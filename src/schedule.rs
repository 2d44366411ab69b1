//! Speech for many jobs at once on a continuous batch ([`ContinuousBatch`]): a job's pass joins
//! the running batch as soon as a slot is free and leaves when it ends, the next pass of a long
//! script joining right after (its voice carried over from the end of the pass before, see
//! [`dia_model::longform`]); a streamed job's passes go through one streaming decoder, so the
//! codec hears them as one sequence (no seam differs from any other frame). This is the one
//! driver of long scripts; [`crate::Dia`] runs everything through it.
//! A job's codes do not depend on what else runs beside it, so its audio is that of its solo
//! run; a streamed job's audio is handed over as it becomes final.

use std::collections::{HashMap, VecDeque};

use dia_dac::{Dac, StreamWindows, StreamingDecoder};
use dia_model::generation::ItemId;
use dia_model::longform::{PassRequest, ScriptRun};
use dia_model::{
    ContinuousBatch, DiaBackend, DiaError, DiaModel, GenerationConfig, LongFormOptions,
    LongFormOutput, LongFormRequest, SamplingSite,
};

use crate::error::Error;
use crate::stream::push_frames;

/// A script to speak, with its own parameters and seed.
#[derive(Debug, Clone)]
pub struct SpeechJob {
    pub script: LongFormRequest,
    pub config: GenerationConfig,
    /// Hand the audio over as it becomes final ([`SpeechEvent::Audio`]); otherwise the caller
    /// decodes the codes of [`SpeechEvent::Done`].
    pub stream: bool,
}

/// A job of a [`SpeechScheduler`], unique for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(u64);

/// What a scheduler step reports.
#[derive(Debug)]
pub enum SpeechEvent<'a> {
    /// Pass `pass` of `passes` of `job` joined the batch (text encoded, prompt prefilled).
    Started {
        job: JobId,
        pass: usize,
        passes: usize,
    },
    /// Final samples of a streamed job, following those handed over before.
    Audio { job: JobId, samples: &'a [f32] },
    /// The job spoke its whole script (a streamed job's last samples came before).
    Done { job: JobId, output: LongFormOutput },
    /// The job failed (bad input found at its pass's start, non-finite logits, the codec) and
    /// left; the others go on.
    Failed { job: JobId, error: Error },
}

/// A job's script, parameters, decoder and the batch item of its running pass.
struct JobState<'a, B: DiaBackend> {
    run: ScriptRun,
    config: GenerationConfig,
    decoder: Option<StreamingDecoder<'a, B>>,
    item: Option<(ItemId, PassRequest)>,
    /// Kept out of the steps ([`SpeechScheduler::hold`]).
    held: bool,
}

/// Jobs waiting for a slot and jobs in the batch; [`SpeechScheduler::step`] admits, decodes
/// one frame for every running job and reports.
pub struct SpeechScheduler<'a, B: DiaBackend> {
    model: &'a DiaModel<B>,
    dac: &'a Dac<B>,
    batch: ContinuousBatch<'a, B>,
    options: LongFormOptions,
    jobs: HashMap<JobId, JobState<'a, B>>,
    /// Jobs whose next pass waits for a slot; a long script's next pass goes first.
    waiting: VecDeque<JobId>,
    items: HashMap<ItemId, JobId>,
    next_job: u64,
}

impl<'a, B: DiaBackend> SpeechScheduler<'a, B> {
    /// A scheduler running up to `max_batch` jobs at once, long scripts cut per `options`,
    /// tokens chosen where the backend prefers.
    pub fn new(
        model: &'a DiaModel<B>,
        dac: &'a Dac<B>,
        max_batch: usize,
        options: LongFormOptions,
    ) -> Result<Self, Error> {
        Self::with_sampling(model, dac, max_batch, options, SamplingSite::Auto)
    }

    /// [`SpeechScheduler::new`] choosing every job's tokens at `sampling` (see
    /// [`ContinuousBatch::with_sampling`]).
    pub fn with_sampling(
        model: &'a DiaModel<B>,
        dac: &'a Dac<B>,
        max_batch: usize,
        options: LongFormOptions,
        sampling: SamplingSite,
    ) -> Result<Self, Error> {
        options.check()?;
        Ok(Self {
            model,
            dac,
            batch: ContinuousBatch::with_sampling(model, max_batch, sampling)?,
            options,
            jobs: HashMap::new(),
            waiting: VecDeque::new(),
            items: HashMap::new(),
            next_job: 0,
        })
    }

    /// Queues `job`; its first pass is checked now (bad input is an error here, not later).
    pub fn submit(&mut self, job: SpeechJob) -> Result<JobId, Error> {
        let text_len = self.model.config.encoder.max_position_embeddings;
        let run = ScriptRun::new(&job.script, &self.options, text_len);
        let first = run
            .next_request(&job.config, &self.options, &self.model.config)
            .ok_or_else(|| DiaError::InvalidInput("the script has nothing to say".into()))?;
        dia_model::generation::check_request(self.model, &first.request, &first.config)?;
        let decoder = match job.stream {
            true => Some(self.dac.streaming_decoder(StreamWindows::default())?),
            false => None,
        };
        let id = JobId(self.next_job);
        self.next_job += 1;
        let state = JobState {
            run,
            config: job.config,
            decoder,
            item: None,
            held: false,
        };
        self.jobs.insert(id, state);
        self.waiting.push_back(id);
        Ok(id)
    }

    /// Jobs submitted and not yet done, failed or cancelled.
    pub fn jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Jobs waiting for a slot.
    pub fn queued(&self) -> usize {
        self.waiting.len()
    }

    /// Jobs in the batch.
    pub fn running(&self) -> usize {
        self.batch.len()
    }

    /// Whether no job is queued or running.
    pub fn is_idle(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Keeps `job` out of the steps (`held`: no frame decoded, no audio made, a waiting pass not
    /// started) or lets it go on; it keeps its slot and its place, and its audio is that of a
    /// run never held. For a streamed job whose listener stopped taking audio, so that it costs
    /// nothing until it reads again or is cancelled. False for an unknown job.
    pub fn hold(&mut self, job: JobId, held: bool) -> bool {
        let Some(state) = self.jobs.get_mut(&job) else {
            return false;
        };
        state.held = held;
        if let Some((item, _)) = &state.item {
            self.batch.hold(*item, held);
        }
        true
    }

    /// Jobs held out of the steps.
    pub fn held(&self) -> usize {
        self.jobs.values().filter(|s| s.held).count()
    }

    /// Stops `job` wherever it is and frees its slot; returns the passes it finished and the
    /// frames of the running one (ended as stopped). `None` for an unknown job.
    pub fn cancel(&mut self, job: JobId) -> Option<LongFormOutput> {
        let mut state = self.jobs.remove(&job)?;
        self.waiting.retain(|&j| j != job);
        if let Some((item, pass)) = state.item.take() {
            self.items.remove(&item);
            if let Some(got) = self.batch.leave(item) {
                state.run.record(pass, got);
            }
        }
        Some(state.run.into_output())
    }

    /// Admits waiting jobs into free slots, decodes one frame for every job in the batch and
    /// reports what happened through `on_event`. Returns how many jobs decoded a frame (0 once
    /// idle). An error here concerns the whole batch (the backend failed).
    pub fn step(&mut self, mut on_event: impl FnMut(SpeechEvent<'_>)) -> Result<usize, Error> {
        self.admit(&mut on_event);
        let steps = self.batch.step()?;
        let decoded = steps.len();
        for step in steps {
            let Some(&job) = self.items.get(&step.id) else {
                continue;
            };
            let result = match step.outcome {
                Ok(s) => self.advance(job, step.id, s.new_frames[0].clone(), &mut on_event),
                Err(e) => Err(e.into()),
            };
            if let Err(error) = result {
                self.cancel(job);
                on_event(SpeechEvent::Failed { job, error });
            }
        }
        Ok(decoded)
    }

    /// Joins the next pass of waiting jobs (held ones keep their place) while there is room; a
    /// pass refused at its start fails its job.
    fn admit(&mut self, on_event: &mut impl FnMut(SpeechEvent<'_>)) {
        while self.batch.has_room()
            && let Some(at) = self.waiting.iter().position(|job| !self.jobs[job].held)
        {
            let job = self.waiting.remove(at).expect("a listed job");
            let state = self.jobs.get_mut(&job).expect("a waiting job exists");
            let Some(pass) =
                state
                    .run
                    .next_request(&state.config, &self.options, &self.model.config)
            else {
                // Nothing left to say (not reached: a job leaves when its last pass ends).
                let state = self.jobs.remove(&job).expect("the job exists");
                let output = state.run.into_output();
                on_event(SpeechEvent::Done { job, output });
                continue;
            };
            match self.batch.join(&pass.request, &pass.config) {
                Ok(item) => {
                    let (index, passes) = (pass.pass, state.run.passes());
                    state.item = Some((item, pass));
                    self.items.insert(item, job);
                    on_event(SpeechEvent::Started {
                        job,
                        pass: index,
                        passes,
                    });
                }
                Err(e) => {
                    self.cancel(job);
                    on_event(SpeechEvent::Failed {
                        job,
                        error: e.into(),
                    });
                }
            }
        }
    }

    /// Hands `job`'s new final frames to its decoder and, when its pass has ended, records the
    /// pass and either queues the next or reports the job done.
    fn advance(
        &mut self,
        job: JobId,
        item: ItemId,
        new_frames: std::ops::Range<usize>,
        on_event: &mut impl FnMut(SpeechEvent<'_>),
    ) -> Result<(), Error> {
        let ended = self.batch.is_finished(item) == Some(true);
        let state = self.jobs.get_mut(&job).expect("a running job exists");
        // Only a streamed job's decoder needs the frames as they come (the codes are whole at
        // the end): no undelaying on every step for the others.
        let frames = match (&state.decoder, new_frames.is_empty()) {
            (Some(_), false) => self.batch.frames(item, new_frames).unwrap_or_default(),
            _ => Vec::new(),
        };
        let last = ended && state.run.done() + 1 == state.run.passes();
        let samples = push_frames(&mut state.decoder, &frames, last)?;
        if !samples.is_empty() {
            on_event(SpeechEvent::Audio {
                job,
                samples: &samples,
            });
        }
        if !ended {
            return Ok(());
        }
        let got = self.batch.leave(item).expect("the item is in the batch");
        self.items.remove(&item);
        let (_, pass) = state.item.take().expect("the job has a running pass");
        state.run.record(pass, got);
        if state.run.is_done() {
            let state = self.jobs.remove(&job).expect("the job exists");
            let output = state.run.into_output();
            on_event(SpeechEvent::Done { job, output });
        } else {
            self.waiting.push_front(job);
        }
        Ok(())
    }
}
