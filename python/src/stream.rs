//! `Dia.stream`'s iterator: the request runs on the generation thread; each `next()` waits for
//! its next piece of final audio with the GIL released.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dia_burn::AnyDia;
use numpy::PyArray1;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::arrays::audio_to_py;
use crate::request::RequestData;
use crate::worker::{Report, Reports, Running, SLICE, Waited, start};

/// Speech as it is generated: an iterator of float32 NumPy arrays, each a piece of audio (mono,
/// at `Dia.sample_rate`) as soon as no later frame can change it. The pieces joined are what
/// `Dia.speak` returns for the same arguments.
///
/// The model runs on a thread of its own, ahead of the reader; `next()` waits with the GIL
/// released. Ctrl-C while waiting raises `KeyboardInterrupt` and stops the generation, as do
/// `close()` and dropping the iterator.
#[pyclass(frozen, name = "Stream", module = "dia_burn")]
pub struct Stream {
    reports: Reports,
    cancel: Arc<AtomicBool>,
}

impl Stream {
    /// Starts speaking `request` on `engine`, once the model has accepted it: bad input
    /// raises here, not at the first `next()`.
    pub fn start(py: Python<'_>, engine: Arc<AnyDia>, request: RequestData) -> PyResult<Self> {
        let Running {
            reports, cancel, ..
        } = start(engine, vec![request], 1)?;
        let stream = Self { reports, cancel };
        match stream.next_report(py)? {
            Some(Report::Started) => Ok(stream),
            Some(Report::Failed(failure)) => Err(failure.into_py(false)),
            _ => Err(PyRuntimeError::new_err(
                "the generation ended before it started",
            )),
        }
    }

    fn stop(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.reports.close();
    }

    /// The next report, waiting a slice at a time and running signal handlers in between;
    /// `None` once the stream is closed.
    fn next_report(&self, py: Python<'_>) -> PyResult<Option<Report>> {
        loop {
            let mut next = None;
            let waited = py.detach(|| {
                self.reports.take_for(SLICE, |report| {
                    next = Some(report);
                    ControlFlow::Break(())
                })
            });
            match (next, waited) {
                (Some(report), _) => return Ok(Some(report)),
                (None, Waited::Closed) => return Ok(None),
                (None, Waited::HungUp) => {
                    return Err(PyRuntimeError::new_err(
                        "the generation thread ended before the end of the speech (a panic: \
                         see its message on stderr)",
                    ));
                }
                (None, Waited::Open) => py.check_signals()?,
            }
        }
    }
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<f32>>>> {
        let report = self.next_report(py).inspect_err(|_| self.stop())?;
        match report {
            Some(Report::Audio { samples, .. }) => Ok(Some(audio_to_py(py, samples))),
            Some(Report::Started) => self.__next__(py),
            Some(Report::Failed(failure)) => {
                self.stop();
                Err(failure.into_py(false))
            }
            Some(Report::Done { .. }) | None => {
                self.stop();
                Ok(None)
            }
        }
    }

    /// Stops the generation; the iterator ends. Audio already handed over stands.
    fn close(&self) {
        self.stop();
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop();
    }
}
