//! Speaking whole: the requests run on the generation thread while the calling Python thread
//! collects their audio and codes with the GIL released, taking it back every [`SLICE`] to run
//! signal handlers. Ctrl-C there cancels the run; the thread stops after its current step.

use std::any::Any;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use dia_burn::AnyDia;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::request::RequestData;
use crate::worker::{Failure, Report, Reports, Running, SLICE, Waited, start};

/// A request's audio and codes.
#[derive(Debug, Default)]
pub struct Spoken {
    pub samples: Vec<f32>,
    pub codes: Vec<Vec<u32>>,
}

/// Speaks `requests` on a batch of `max_batch` slots, each exactly as it would run alone, and
/// returns their results in order; `indexed` names the failed request in an error.
pub fn speak_all(
    py: Python<'_>,
    engine: &Arc<AnyDia>,
    requests: Vec<RequestData>,
    max_batch: usize,
    indexed: bool,
) -> PyResult<Vec<Spoken>> {
    let mut collect = Collect::new(requests.len());
    let Running {
        reports,
        cancel,
        thread,
    } = start(Arc::clone(engine), requests, max_batch)?;
    let outcome = collect.run(py, &reports);
    cancel.store(true, Ordering::Relaxed);
    reports.close();
    let joined = py.detach(|| thread.join());
    match (outcome, joined) {
        (Ok(()), _) => Ok(collect.spoken),
        (Err(Stop::Failed(failure)), _) => Err(failure.into_py(indexed)),
        (Err(Stop::Interrupted(interrupt)), _) => Err(interrupt),
        (Err(Stop::Lost), Err(panic)) => Err(PyRuntimeError::new_err(format!(
            "generation failed: {}",
            panic_message(panic.as_ref())
        ))),
        (Err(Stop::Lost), Ok(())) => Err(PyRuntimeError::new_err(
            "generation ended before every request was spoken",
        )),
    }
}

/// Why collecting stopped early.
enum Stop {
    Failed(Failure),
    /// A signal handler raised (Ctrl-C's `KeyboardInterrupt`).
    Interrupted(PyErr),
    /// The generation thread ended without reporting every request.
    Lost,
}

/// The results so far.
struct Collect {
    spoken: Vec<Spoken>,
    /// Requests not yet done.
    left: usize,
    failure: Option<Failure>,
}

impl Collect {
    fn new(requests: usize) -> Self {
        Self {
            spoken: (0..requests).map(|_| Spoken::default()).collect(),
            left: requests,
            failure: None,
        }
    }

    /// Takes reports until every request is done, one fails, a signal handler raises or the
    /// thread is gone.
    fn run(&mut self, py: Python<'_>, reports: &Reports) -> Result<(), Stop> {
        while self.left > 0 {
            let waited = py.detach(|| reports.take_for(SLICE, |report| self.take(report)));
            if let Some(failure) = self.failure.take() {
                return Err(Stop::Failed(failure));
            }
            if self.left == 0 {
                break;
            }
            if waited != Waited::Open {
                return Err(Stop::Lost);
            }
            py.check_signals().map_err(Stop::Interrupted)?;
        }
        Ok(())
    }

    /// Keeps `report`; breaks once every request is done or one failed.
    fn take(&mut self, report: Report) -> ControlFlow<()> {
        match report {
            Report::Started => {}
            Report::Audio { index, samples } => self.spoken[index].samples.extend(samples),
            Report::Done { index, codes } => {
                self.spoken[index].codes = codes;
                self.left -= 1;
            }
            Report::Failed(failure) => self.failure = Some(failure),
        }
        match self.left == 0 || self.failure.is_some() {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }
}

/// A panic's message, when it has one.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("the generation thread panicked")
}
