//! What the HTTP handlers and the decode loop share: readiness, the way to the loop, the
//! admission count behind 429, shutdown, metrics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use dia_burn::SpeechJob;
use dia_burn::dia_model::VoicePrompt;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::metrics::Metrics;
use crate::voices::Voices;

/// What a request hears from the decode loop.
#[derive(Debug)]
pub enum JobEvent {
    /// Final samples, following those sent before.
    Audio(Vec<f32>),
    /// The script is spoken: `frames` decoded in all.
    Done { frames: usize },
    /// The request was cut (timeout, shutdown) or failed.
    Failed(String),
}

/// Samples the decode loop has sent a request and its response has not taken yet: the loop
/// never waits on a client, so a client that stops reading shows here, and is cut past
/// `--client-lag` seconds of audio.
#[derive(Debug, Clone, Default)]
pub struct Backlog(Arc<AtomicUsize>);

impl Backlog {
    /// The loop sent `samples` more.
    pub fn sent(&self, samples: usize) {
        self.0.fetch_add(samples, Ordering::AcqRel);
    }

    /// The response took `samples` on (to encode and write).
    pub fn taken(&self, samples: usize) {
        self.0.fetch_sub(samples, Ordering::AcqRel);
    }

    pub fn samples(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// A request handed to the decode loop.
pub struct Submission {
    pub job: SpeechJob,
    pub events: mpsc::UnboundedSender<JobEvent>,
    pub backlog: Backlog,
    /// Whether the loop took the job (`Err`: why the job cannot be spoken).
    pub reply: oneshot::Sender<Result<(), String>>,
    pub arrived: Instant,
    pub slot: Slot,
}

/// Set once the model, codec and voices are loaded.
#[derive(Debug)]
pub struct Ready {
    /// The voices offered; uploads and deletions change them while the server runs.
    pub voices: RwLock<Voices>,
    /// Where voices are stored (`--voices`); `None`: uploads are off.
    pub voices_dir: Option<PathBuf>,
    /// The codec's sample rate.
    pub sample_rate: u32,
}

impl Ready {
    /// The voices, for reading.
    pub fn voices(&self) -> RwLockReadGuard<'_, Voices> {
        self.voices.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The voices, for changing.
    pub fn voices_mut(&self) -> RwLockWriteGuard<'_, Voices> {
        self.voices.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A clip to make a voice of, for the decode loop (which owns the codec).
pub struct VoiceClip {
    /// Mono samples at the codec's rate.
    pub samples: Vec<f32>,
    pub transcript: String,
    /// The voice, or why the clip cannot be one.
    pub reply: oneshot::Sender<Result<VoicePrompt, String>>,
}

/// What the decode loop is asked to do.
pub enum Work {
    Speak(Box<Submission>),
    Encode(VoiceClip),
}

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Serving = 0,
    /// Stopping: no new connection; in-flight requests finish.
    Draining = 1,
    /// In-flight requests are cut now.
    Cutting = 2,
}

/// State shared by every handler and the decode loop.
pub struct Shared {
    pub metrics: Metrics,
    pub ready: OnceLock<Ready>,
    pub model_name: String,
    engine: Mutex<Option<Sender<Work>>>,
    /// Requests accepted and not yet ended, at most `capacity` (batch slots + queue).
    active: AtomicUsize,
    capacity: usize,
    phase: AtomicU8,
    /// Woken when the server must stop (a signal, or the model failed to load).
    pub stop: Notify,
    /// Woken when the decode loop has ended (every request in flight answered).
    pub decoded: Notify,
}

impl Shared {
    pub fn new(model_name: String, max_batch: usize, max_queue: usize) -> Self {
        Self {
            metrics: Metrics::new(max_batch),
            ready: OnceLock::new(),
            model_name,
            engine: Mutex::new(None),
            active: AtomicUsize::new(0),
            capacity: max_batch + max_queue,
            phase: AtomicU8::new(Phase::Serving as u8),
            stop: Notify::new(),
            decoded: Notify::new(),
        }
    }

    /// Connects the decode loop.
    pub fn connect(&self, engine: Sender<Work>) {
        *self.engine.lock().unwrap_or_else(|e| e.into_inner()) = Some(engine);
    }

    /// Hands `submission` to the decode loop; gives it back if the loop has ended.
    pub fn submit(&self, submission: Submission) -> Result<(), Box<Submission>> {
        match self.send(Work::Speak(Box::new(submission))) {
            Ok(()) => Ok(()),
            Err(Work::Speak(submission)) => Err(submission),
            Err(Work::Encode(_)) => unreachable!("a submission was sent"),
        }
    }

    /// Hands `clip` to the decode loop to encode; false if the loop has ended.
    pub fn encode(&self, clip: VoiceClip) -> bool {
        self.send(Work::Encode(clip)).is_ok()
    }

    fn send(&self, work: Work) -> Result<(), Work> {
        let engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        match engine.as_ref() {
            Some(engine) => engine.send(work).map_err(|e| e.0),
            None => Err(work),
        }
    }

    /// A place for one more request, if the batch and queue have room.
    pub fn reserve(self: &Arc<Self>) -> Option<Slot> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Serving,
            1 => Phase::Draining,
            _ => Phase::Cutting,
        }
    }

    /// Moves on to `phase` (never back).
    pub fn enter(&self, phase: Phase) {
        self.phase.fetch_max(phase as u8, Ordering::AcqRel);
        self.stop.notify_one();
    }
}

/// One accepted request's place in the batch or queue, given back when dropped.
pub struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}
