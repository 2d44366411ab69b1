//! Generation on a thread of its own: requests go onto one continuous batch (dia-burn's
//! scheduler) and each step's events come back as [`Report`]s over a channel. The Python side
//! waits for them with the GIL released and takes it back every [`SLICE`] to run signal
//! handlers; Ctrl-C (or a dropped stream) sets the cancel flag, which the thread reads before
//! every step.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dia_burn::dia_model::DiaBackend;
use dia_burn::{AnyDia, Dia, Error, JobId, SpeechEvent};
use pyo3::PyErr;
use pyo3::exceptions::PyRuntimeError;

use crate::engine::{OnDia, on_dia};
use crate::errors::with_context;
use crate::request::RequestData;

/// The longest the Python side waits without the GIL before it runs signal handlers.
pub const SLICE: Duration = Duration::from_millis(100);

/// What the generation thread reports about the requests (each by its index in the batch).
pub enum Report {
    /// A request's first pass joined the batch: its input was accepted.
    Started,
    /// Final samples, following the ones reported before.
    Audio { index: usize, samples: Vec<f32> },
    /// The request is spoken: its codes `[frames][channels]`, every pass's.
    Done { index: usize, codes: Vec<Vec<u32>> },
    /// The run stopped here.
    Failed(Failure),
}

/// Why a run stopped: a request's input or run failed, or (no index) the whole batch did.
pub struct Failure {
    pub index: Option<usize>,
    pub error: Error,
}

impl Failure {
    /// As a Python exception; `indexed` names the failed request (for batches).
    pub fn into_py(self, indexed: bool) -> PyErr {
        let context = match (indexed, self.index) {
            (true, Some(index)) => Some(format!("request {index}")),
            _ => None,
        };
        with_context(self.error, context.as_deref())
    }
}

/// A generation thread started: its reports, its cancel flag and the thread.
pub struct Running {
    pub reports: Reports,
    pub cancel: Arc<AtomicBool>,
    pub thread: JoinHandle<()>,
}

/// Starts speaking `requests` on a batch of `max_batch` slots on a new thread.
pub fn start(
    engine: Arc<AnyDia>,
    requests: Vec<RequestData>,
    max_batch: usize,
) -> Result<Running, PyErr> {
    let (sender, receiver) = mpsc::channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let generate = Generate {
        requests,
        max_batch,
        reports: sender,
        cancel: Arc::clone(&cancel),
    };
    let thread = std::thread::Builder::new()
        .name("dia-burn generation".into())
        .spawn(move || generate.run_on(&engine))
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a generation thread: {e}")))?;
    Ok(Running {
        reports: Reports::new(receiver),
        cancel,
        thread,
    })
}

/// The generation thread's work.
struct Generate {
    requests: Vec<RequestData>,
    max_batch: usize,
    reports: Sender<Report>,
    cancel: Arc<AtomicBool>,
}

impl Generate {
    fn run_on(self, engine: &AnyDia) {
        let reports = self.reports.clone();
        if let Err(error) = on_dia(engine, self) {
            let _ = reports.send(Report::Failed(Failure { index: None, error }));
        }
    }

    /// Submits every request (each checked, its voice encoded), then steps the batch until
    /// every request is done, one fails, the run is cancelled or nobody listens any more.
    fn drive<B: DiaBackend>(&self, dia: &Dia<B>) -> Result<(), Failure> {
        let whole = |error| Failure { index: None, error };
        let mut scheduler = dia.scheduler(self.max_batch).map_err(whole)?;
        let mut indices = HashMap::new();
        for (index, request) in self.requests.iter().enumerate() {
            let at = |error| Failure {
                index: Some(index),
                error,
            };
            let job = request.job(dia).map_err(at)?;
            indices.insert(scheduler.submit(job).map_err(at)?, index);
        }
        let mut listening = true;
        while listening && !scheduler.is_idle() && !self.cancel.load(Ordering::Relaxed) {
            scheduler
                .step(|event| {
                    if let Some(message) = report(event, &indices) {
                        listening &= self.reports.send(message).is_ok();
                    }
                })
                .map_err(whole)?;
        }
        Ok(())
    }
}

impl OnDia for Generate {
    type Output = ();

    fn run<B: DiaBackend>(self, dia: &Dia<B>) {
        if let Err(failure) = self.drive(dia) {
            let _ = self.reports.send(Report::Failed(failure));
        }
    }
}

/// A scheduler event as a report of request `indices[job]` (none for a later pass starting).
fn report(event: SpeechEvent<'_>, indices: &HashMap<JobId, usize>) -> Option<Report> {
    let index = |job: &JobId| indices[job];
    match event {
        SpeechEvent::Started { pass: 0, .. } => Some(Report::Started),
        SpeechEvent::Started { .. } => None,
        SpeechEvent::Audio { job, samples } => Some(Report::Audio {
            index: index(&job),
            samples: samples.to_vec(),
        }),
        SpeechEvent::Done { job, output } => Some(Report::Done {
            index: index(&job),
            codes: output.codes(),
        }),
        SpeechEvent::Failed { job, error } => Some(Report::Failed(Failure {
            index: Some(index(&job)),
            error,
        })),
    }
}

/// The receiving end, shareable between Python threads (one waits at a time).
pub struct Reports {
    receiver: Mutex<Option<Receiver<Report>>>,
}

/// What a wait for reports ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The time slice passed, or the taker had enough: more may come.
    Open,
    /// The generation thread ended (after its last report, or in a panic).
    HungUp,
    /// The reports were closed on this side ([`Reports::close`]).
    Closed,
}

impl Reports {
    fn new(receiver: Receiver<Report>) -> Self {
        Self {
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// Hands `take` each report that arrives within `slice`, until it breaks. Call it with the
    /// GIL released: it blocks.
    pub fn take_for(
        &self,
        slice: Duration,
        mut take: impl FnMut(Report) -> ControlFlow<()>,
    ) -> Waited {
        let guard = self.receiver.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(receiver) = guard.as_ref() else {
            return Waited::Closed;
        };
        let deadline = Instant::now() + slice;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(report) => {
                    if take(report).is_break() {
                        return Waited::Open;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Waited::Open,
                Err(RecvTimeoutError::Disconnected) => return Waited::HungUp,
            }
        }
    }

    /// Stops listening: the generation thread stops at its next report.
    pub fn close(&self) {
        let mut guard = self.receiver.lock().unwrap_or_else(PoisonError::into_inner);
        *guard = None;
    }
}
