//! The decode loop: one thread owns the model and codec and serves every request on one
//! continuous batch ([`SpeechScheduler`]): a request joins at the next step and leaves when it
//! ends, is cut when its client goes away, its time is up or the server stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::{DiaBackend, DiaModel, LongFormOptions};
use dia_burn::{JobId, SpeechEvent, SpeechScheduler};
use tokio::sync::mpsc::UnboundedSender;

use crate::metrics::Outcome;
use crate::shared::{Backlog, JobEvent, Phase, Shared, Slot, Submission};

/// How long an idle loop waits for a request before looking at the shutdown phase again.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// What the loop allows a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// From arrival to the last sample.
    pub timeout: Duration,
    /// Seconds of audio sent and not yet taken by the response before it is cut.
    pub client_lag: f64,
}

/// A request in the batch or its queue.
struct Client {
    events: UnboundedSender<JobEvent>,
    backlog: Backlog,
    arrived: Instant,
    deadline: Instant,
    heard: bool,
    _slot: Slot,
}

impl Client {
    /// Frees the request's slot, then sends its last event: a client that has heard the end
    /// may send its next request at once and find the slot free.
    fn end(self, event: JobEvent) {
        let Client { events, _slot, .. } = self;
        drop(_slot);
        let _ = events.send(event);
    }
}

/// The decode loop's state.
pub struct Engine<'a, B: DiaBackend> {
    scheduler: SpeechScheduler<'a, B>,
    clients: HashMap<JobId, Client>,
    shared: Arc<Shared>,
    limits: RequestLimits,
    /// `limits.client_lag` in samples.
    max_backlog: usize,
}

impl<'a, B: DiaBackend> Engine<'a, B> {
    /// A loop over `model` and `dac` with `max_batch` slots, holding requests to `limits`.
    pub fn new(
        model: &'a DiaModel<B>,
        dac: &'a Dac<B>,
        max_batch: usize,
        limits: RequestLimits,
        shared: Arc<Shared>,
    ) -> anyhow::Result<Self> {
        let scheduler = SpeechScheduler::new(model, dac, max_batch, LongFormOptions::default())?;
        let max_backlog = (limits.client_lag * f64::from(dac.config().sample_rate)) as usize;
        Ok(Self {
            scheduler,
            clients: HashMap::new(),
            shared,
            limits,
            max_backlog,
        })
    }

    /// Serves `submissions` until the server stops and nothing is left to decode.
    pub fn run(mut self, submissions: &Receiver<Submission>) {
        while self.receive(submissions) {
            self.drop_gone();
            if !self.scheduler.is_idle() {
                self.step();
            }
        }
    }

    /// Takes the requests that arrived (waiting a little when idle); false once the loop is
    /// to end.
    fn receive(&mut self, submissions: &Receiver<Submission>) -> bool {
        if self.scheduler.is_idle() {
            if self.shared.phase() != Phase::Serving {
                return false;
            }
            match submissions.recv_timeout(IDLE_POLL) {
                Ok(submission) => self.submit(submission),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        while let Ok(submission) = submissions.try_recv() {
            self.submit(submission);
        }
        true
    }

    /// Queues a request, or tells its handler why it cannot be spoken.
    fn submit(&mut self, submission: Submission) {
        let Submission {
            job,
            events,
            backlog,
            reply,
            arrived,
            slot,
        } = submission;
        match self.scheduler.submit(job) {
            Ok(id) => {
                let client = Client {
                    events,
                    backlog,
                    arrived,
                    deadline: arrived + self.limits.timeout,
                    heard: false,
                    _slot: slot,
                };
                self.clients.insert(id, client);
                // A handler gone already is found by `drop_gone`.
                let _ = reply.send(Ok(()));
            }
            Err(e) => {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }

    /// Cuts the requests whose client went away or fell too far behind, whose time is up, or
    /// all when the server is cutting; their slots go to the next requests.
    fn drop_gone(&mut self) {
        let cutting = self.shared.phase() == Phase::Cutting;
        let now = Instant::now();
        let gone: Vec<(JobId, Outcome)> = self
            .clients
            .iter()
            .filter_map(|(&id, c)| {
                let outcome = if c.events.is_closed() {
                    Outcome::Disconnected
                } else if c.backlog.samples() > self.max_backlog {
                    Outcome::SlowClient
                } else if cutting {
                    Outcome::Shutdown
                } else if now >= c.deadline {
                    Outcome::TimedOut
                } else {
                    return None;
                };
                Some((id, outcome))
            })
            .collect();
        if gone.is_empty() {
            return;
        }
        for (id, outcome) in gone {
            self.scheduler.cancel(id);
            let client = self.clients.remove(&id).expect("a listed client");
            let message = match outcome {
                Outcome::TimedOut => format!(
                    "the request took longer than the server's limit of {:.0} s",
                    self.limits.timeout.as_secs_f64()
                ),
                Outcome::SlowClient => format!(
                    "the client fell more than {} s of audio behind",
                    self.limits.client_lag
                ),
                _ => "the server is shutting down".to_string(),
            };
            self.shared.metrics.job(outcome);
            client.end(JobEvent::Failed(message));
            tracing::info!(?outcome, "request cut");
        }
        // The gauges say so now, even if no step follows (the batch may be empty).
        let (queued, running) = (self.scheduler.queued(), self.scheduler.running());
        self.shared.metrics.step(0, queued, running);
    }

    /// One decoder step for every request in the batch; its events go to their handlers. A
    /// backend failure fails the requests in flight and the loop goes on.
    fn step(&mut self) {
        let (clients, metrics) = (&mut self.clients, &self.shared.metrics);
        let result = self.scheduler.step(|event| route(event, clients, metrics));
        match result {
            Ok(decoded) => {
                let (queued, running) = (self.scheduler.queued(), self.scheduler.running());
                metrics.step(decoded, queued, running);
            }
            Err(e) => {
                tracing::error!("decoder step failed: {e}");
                for (id, client) in self.clients.drain() {
                    self.scheduler.cancel(id);
                    metrics.job(Outcome::Failed);
                    client.end(JobEvent::Failed(format!("the decoder failed: {e}")));
                }
            }
        }
    }
}

/// Sends a scheduler event to its request's handler.
fn route(
    event: SpeechEvent<'_>,
    clients: &mut HashMap<JobId, Client>,
    metrics: &crate::metrics::Metrics,
) {
    match event {
        SpeechEvent::Started { .. } => {}
        SpeechEvent::Audio { job, samples } => {
            if let Some(client) = clients.get_mut(&job) {
                if !client.heard {
                    client.heard = true;
                    metrics.first_audio(client.arrived.elapsed());
                }
                client.backlog.sent(samples.len());
                let _ = client.events.send(JobEvent::Audio(samples.to_vec()));
            }
        }
        SpeechEvent::Done { job, output } => {
            if let Some(client) = clients.remove(&job) {
                // Counted before the client hears: its next request sees the count.
                metrics.job(Outcome::Done);
                let frames = output.passes.iter().map(|p| p.codes.len()).sum();
                client.end(JobEvent::Done { frames });
            }
        }
        SpeechEvent::Failed { job, error } => {
            if let Some(client) = clients.remove(&job) {
                tracing::warn!("request failed: {error}");
                metrics.job(Outcome::Failed);
                client.end(JobEvent::Failed(error.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use dia_burn::SpeechJob;
    use dia_burn::dia_model::{GenerationConfig, LongFormRequest, ModelOptions};
    use dia_test_support::fixture;
    use tokio::sync::{mpsc, oneshot};

    use super::*;

    type B = burn_flex::Flex;

    /// A streamed request for `text` with its backlog, and the receiver its response reads.
    fn submission(
        shared: &Arc<Shared>,
        text: &str,
    ) -> (Submission, mpsc::UnboundedReceiver<JobEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let job = SpeechJob {
            script: LongFormRequest {
                script: text.into(),
                voice: None,
            },
            config: GenerationConfig {
                max_tokens: Some(120),
                seed: 5,
                ..GenerationConfig::default()
            },
            stream: true,
        };
        let submission = Submission {
            job,
            events,
            backlog: Backlog::default(),
            reply: oneshot::channel().0,
            arrived: Instant::now(),
            slot: shared.reserve().expect("a free slot"),
        };
        (submission, receiver)
    }

    /// The decode loop's cuts and steps until its batch is empty (`after_step` after each step).
    fn run_until_idle<B: DiaBackend>(engine: &mut Engine<'_, B>, mut after_step: impl FnMut()) {
        for _ in 0..10_000 {
            engine.drop_gone();
            if engine.scheduler.is_idle() {
                return;
            }
            engine.step();
            after_step();
        }
        panic!("the loop never went idle");
    }

    /// A response that takes nothing is cut once more than `client_lag` of audio waits for it,
    /// and its slot freed, while one that reads beside it runs to its end.
    #[test]
    fn a_response_that_stops_taking_audio_is_cut_and_the_other_finishes() {
        let device = Default::default();
        let model = DiaModel::<B>::load(&fixture("dia-tiny"), ModelOptions::default(), &device)
            .expect("tiny model");
        let dac = Dac::<B>::load(fixture("dac-tiny/weights.safetensors"), &device).expect("codec");
        let shared = Arc::new(Shared::new("tiny".into(), 2, 0));
        let rate = f64::from(dac.config().sample_rate);
        let limits = RequestLimits {
            timeout: Duration::from_secs(600),
            client_lag: 64.0 / rate,
        };
        let mut engine = Engine::new(&model, &dac, 2, limits, shared.clone()).expect("engine");
        let text = "[S1] A script of several lines. [S2] It runs for a while. ".repeat(2);
        let (stalled, mut stalled_events) = submission(&shared, &text);
        let (reading, mut reading_events) = submission(&shared, &text);
        let reading_backlog = reading.backlog.clone();
        engine.submit(stalled);
        engine.submit(reading);
        let mut read = Vec::new();
        run_until_idle(&mut engine, || {
            // The reading response takes everything at once, as a body that keeps up.
            while let Ok(event) = reading_events.try_recv() {
                if let JobEvent::Audio(samples) = &event {
                    reading_backlog.taken(samples.len());
                }
                read.push(event);
            }
        });
        assert!(engine.scheduler.is_idle(), "both requests ended");
        let mut last = None;
        while let Ok(event) = stalled_events.try_recv() {
            last = Some(event);
        }
        match last {
            Some(JobEvent::Failed(message)) => assert!(message.contains("behind"), "{message}"),
            other => panic!("the stalled request was not cut: {other:?}"),
        }
        assert!(
            matches!(read.last(), Some(JobEvent::Done { frames }) if *frames > 0),
            "the reading request ran to its end: {:?}",
            read.last()
        );
        let metrics = shared.metrics.render();
        assert!(
            metrics.contains("dia_jobs_total{outcome=\"slow_client\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("dia_jobs_total{outcome=\"done\"} 1"),
            "{metrics}"
        );
        // Nothing left running or queued, as the gauges say once the loop is idle.
        assert!(metrics.contains("\ndia_running_requests 0\n"), "{metrics}");
        assert!(metrics.contains("\ndia_queue_depth 0\n"), "{metrics}");
        let (first, second) = (shared.reserve(), shared.reserve());
        assert!(first.is_some() && second.is_some(), "both slots are free");
        drop((first, second));

        // A stalled request alone is cut with no step after it: the gauges still drop to 0.
        let (alone, _events) = submission(&shared, &text);
        engine.submit(alone);
        run_until_idle(&mut engine, || {});
        let metrics = shared.metrics.render();
        assert!(
            metrics.contains("dia_jobs_total{outcome=\"slow_client\"} 2"),
            "{metrics}"
        );
        assert!(metrics.contains("\ndia_running_requests 0\n"), "{metrics}");
    }
}
