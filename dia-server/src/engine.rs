//! The decode loop: one thread owns the model and codec and serves every request on one
//! continuous batch ([`SpeechScheduler`]): a request joins at the next step and leaves when it
//! ends, is cut when its client goes away, its time is up or the server stops. A streamed
//! request whose client has a few seconds of audio waiting is held out of the steps (it costs
//! nothing) until the client takes some, and cut once it is `--client-lag` seconds behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::{DiaBackend, DiaModel, GenerationConfig, LongFormOptions};
use dia_burn::voice::voice_from_codes;
use dia_burn::{JobId, SpeechEvent, SpeechScheduler};
use tokio::sync::mpsc::UnboundedSender;

use crate::metrics::{Gauges, Outcome};
use crate::shared::{Backlog, JobEvent, Phase, Shared, Slot, Submission, VoiceClip, Work};

/// How long an idle loop waits for a request before looking at the shutdown phase again.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// What the loop allows a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// From arrival to the last sample.
    pub timeout: Duration,
    /// Seconds a response may fall behind before it is cut: audio sent and not yet taken, plus
    /// the time it has been held.
    pub client_lag: f64,
    /// Seconds of audio sent and not yet taken past which the request is held out of the steps.
    pub hold_after: f64,
}

impl RequestLimits {
    /// What the server holds a request to: `timeout` and `client_lag` seconds, audio held past
    /// [`HOLD_AFTER`] seconds waiting.
    pub fn new(timeout: f64, client_lag: f64) -> Self {
        Self {
            timeout: Duration::from_secs_f64(timeout),
            client_lag,
            hold_after: HOLD_AFTER,
        }
    }
}

/// Seconds of audio waiting for a client past which its request stops decoding: enough that a
/// client reading in real time never waits on the decoder, little enough to cost little memory.
pub const HOLD_AFTER: f64 = 2.0;

/// A request in the batch or its queue.
struct Client {
    events: UnboundedSender<JobEvent>,
    backlog: Backlog,
    arrived: Instant,
    deadline: Instant,
    heard: bool,
    /// When the request was last held out of the steps, while it is.
    held_since: Option<Instant>,
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
    model: &'a DiaModel<B>,
    dac: &'a Dac<B>,
    scheduler: SpeechScheduler<'a, B>,
    clients: HashMap<JobId, Client>,
    shared: Arc<Shared>,
    limits: RequestLimits,
    /// The codec's samples per second.
    rate: f64,
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
        Ok(Self {
            model,
            dac,
            scheduler,
            clients: HashMap::new(),
            shared,
            limits,
            rate: f64::from(dac.config().sample_rate),
        })
    }

    /// Serves `submissions` until the server stops and nothing is left to decode.
    pub fn run(mut self, submissions: &Receiver<Work>) {
        let mut decoding = false;
        while self.receive(submissions, decoding) {
            self.drop_gone();
            self.pace();
            decoding = !self.scheduler.is_idle() && self.step() > 0;
        }
    }

    /// Takes the requests that arrived, waiting a little when nothing decodes (idle, or every
    /// request held); false once the loop is to end.
    fn receive(&mut self, submissions: &Receiver<Work>, decoding: bool) -> bool {
        let idle = self.scheduler.is_idle();
        if idle && self.shared.phase() != Phase::Serving {
            return false;
        }
        if !decoding {
            match submissions.recv_timeout(IDLE_POLL) {
                Ok(work) => self.take(work),
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) if idle => return false,
                // Held requests still wait on their clients.
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(IDLE_POLL);
                    return true;
                }
            }
        }
        while let Ok(work) = submissions.try_recv() {
            self.take(work);
        }
        true
    }

    fn take(&mut self, work: Work) {
        match work {
            Work::Speak(submission) => self.submit(*submission),
            Work::Encode(clip) => self.encode(clip),
        }
    }

    /// Makes a voice of `clip` (between steps: the requests in the batch wait for it), checked
    /// to leave the model room to speak.
    fn encode(&mut self, clip: VoiceClip) {
        let max_tokens = GenerationConfig::default().max_tokens_for(&self.model.config);
        let voice = self
            .dac
            .encode_samples(&clip.samples)
            .map_err(|e| format!("cannot encode the clip: {e}"))
            .and_then(|codes| {
                voice_from_codes(self.model, codes, &clip.transcript, max_tokens)
                    .map_err(|e| e.to_string())
            });
        let _ = clip.reply.send(voice);
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
                    held_since: None,
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
                } else if self.lag(c, now) > self.limits.client_lag {
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
        self.shared.metrics.step(0, self.gauges());
    }

    /// How far `client` is behind, in seconds: audio sent and not yet taken, plus the time its
    /// request has been held waiting for it.
    fn lag(&self, client: &Client, now: Instant) -> f64 {
        let held = client
            .held_since
            .map_or(0.0, |since| (now - since).as_secs_f64());
        client.backlog.samples() as f64 / self.rate + held
    }

    /// Holds the requests whose clients have more than `hold_after` seconds of audio waiting,
    /// and lets those that took some go on.
    fn pace(&mut self) {
        let hold_at = (self.limits.hold_after * self.rate) as usize;
        for (&id, client) in &mut self.clients {
            let behind = client.backlog.samples() > hold_at;
            if behind == client.held_since.is_some() {
                continue;
            }
            client.held_since = behind.then(Instant::now);
            self.scheduler.hold(id, behind);
            tracing::debug!(held = behind, "request paced to its client");
        }
    }

    fn gauges(&self) -> Gauges {
        Gauges {
            queued: self.scheduler.queued(),
            running: self.scheduler.running(),
            held: self.scheduler.held(),
        }
    }

    /// One decoder step for every request in the batch that is not held; its events go to
    /// their handlers. Returns how many requests decoded. A backend failure fails the requests
    /// in flight and the loop goes on.
    fn step(&mut self) -> usize {
        let (clients, metrics) = (&mut self.clients, &self.shared.metrics);
        let result = self.scheduler.step(|event| route(event, clients, metrics));
        match result {
            Ok(decoded) => {
                self.shared.metrics.step(decoded, self.gauges());
                decoded
            }
            Err(e) => {
                tracing::error!("decoder step failed: {e}");
                for (id, client) in self.clients.drain() {
                    self.scheduler.cancel(id);
                    metrics.job(Outcome::Failed);
                    client.end(JobEvent::Failed(format!("the decoder failed: {e}")));
                }
                0
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

    /// The decode loop's cuts, pacing and steps until its batch is empty (`after_step(engine)`
    /// after each step; a short sleep when nothing decoded, as the loop waits).
    fn run_until_idle<'a, B: DiaBackend>(
        engine: &mut Engine<'a, B>,
        mut after_step: impl FnMut(&mut Engine<'a, B>),
    ) {
        for _ in 0..10_000 {
            engine.drop_gone();
            engine.pace();
            if engine.scheduler.is_idle() {
                return;
            }
            if engine.step() == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            after_step(engine);
        }
        panic!("the loop never went idle");
    }

    /// The tiny model and codec.
    fn tiny() -> (DiaModel<B>, Dac<B>) {
        let device = Default::default();
        let model = DiaModel::<B>::load(&fixture("dia-tiny"), ModelOptions::default(), &device)
            .expect("tiny model");
        let dac = Dac::<B>::load(fixture("dac-tiny/weights.safetensors"), &device).expect("codec");
        (model, dac)
    }

    const SCRIPT: &str = "[S1] A script of several lines. [S2] It runs for a while. ";

    /// What a streamed request's client saw when it took its audio every `read_every` loop
    /// turns: the samples, its last event, and the turns its request spent held.
    fn listen(
        (model, dac): &(DiaModel<B>, Dac<B>),
        limits: RequestLimits,
        read_every: usize,
    ) -> (Vec<f32>, Option<JobEvent>, usize) {
        let shared = Arc::new(Shared::new("tiny".into(), 1, 0));
        let mut engine = Engine::new(model, dac, 1, limits, shared.clone()).expect("engine");
        let (request, mut events) = submission(&shared, &SCRIPT.repeat(2));
        let backlog = request.backlog.clone();
        engine.submit(request);
        let (mut samples, mut last, mut held, mut turn) = (Vec::new(), None, 0, 0);
        run_until_idle(&mut engine, |engine| {
            turn += 1;
            if engine.scheduler.held() > 0 {
                held += 1;
                let metrics = shared.metrics.render();
                assert!(metrics.contains("\ndia_held_requests 1\n"), "{metrics}");
            }
            if turn % read_every != 0 {
                return;
            }
            while let Ok(event) = events.try_recv() {
                if let JobEvent::Audio(s) = &event {
                    backlog.taken(s.len());
                    samples.extend_from_slice(s);
                }
                last = Some(event);
            }
        });
        while let Ok(event) = events.try_recv() {
            if let JobEvent::Audio(s) = &event {
                samples.extend_from_slice(s);
            }
            last = Some(event);
        }
        (samples, last, held)
    }

    /// A request whose client takes its audio only now and then is held whenever audio waits
    /// for it and goes on when the client takes it: its audio is bit for bit that of a request
    /// never held.
    #[test]
    fn a_held_request_goes_on_where_it_stopped() {
        let tiny = tiny();
        let never_held = RequestLimits {
            hold_after: f64::INFINITY,
            ..RequestLimits::new(600.0, 600.0)
        };
        let (want, last, held) = listen(&tiny, never_held, 1);
        assert!(matches!(last, Some(JobEvent::Done { .. })), "{last:?}");
        assert!(
            !want.is_empty() && held == 0,
            "{} samples, {held}",
            want.len()
        );
        let eager = RequestLimits {
            hold_after: 0.0,
            ..never_held
        };
        let (got, last, held) = listen(&tiny, eager, 7);
        assert!(matches!(last, Some(JobEvent::Done { .. })), "{last:?}");
        assert!(held > 20, "held for {held} turns");
        assert!(got == want, "the held request's audio differs");
    }

    /// A client that takes nothing is held as soon as audio waits for it (no more steps) and
    /// cut once it has been held for `client_lag` seconds (less the audio waiting).
    #[test]
    fn a_held_request_is_cut_after_the_client_lag() {
        let (model, dac) = tiny();
        let shared = Arc::new(Shared::new("tiny".into(), 1, 0));
        let limits = RequestLimits {
            hold_after: 0.0,
            ..RequestLimits::new(600.0, 0.3)
        };
        let mut engine = Engine::new(&model, &dac, 1, limits, shared.clone()).expect("engine");
        let (request, mut events) = submission(&shared, &SCRIPT.repeat(2));
        engine.submit(request);
        let steps = || {
            shared
                .metrics
                .render()
                .lines()
                .find(|l| l.starts_with("dia_steps_total "))
                .map(str::to_owned)
        };
        let mut held_at = None;
        run_until_idle(&mut engine, |engine| {
            if engine.scheduler.held() > 0 && held_at.is_none() {
                held_at = Some((Instant::now(), steps()));
            }
        });
        let (held_at, steps_then) = held_at.expect("the request was held");
        let waited = held_at.elapsed().as_secs_f64();
        assert!(waited >= 0.25, "cut {waited:.3} s after it was held");
        assert_eq!(steps(), steps_then, "no step while held");
        let mut last = None;
        while let Ok(event) = events.try_recv() {
            last = Some(event);
        }
        match last {
            Some(JobEvent::Failed(message)) => assert!(message.contains("behind"), "{message}"),
            other => panic!("the held request was not cut: {other:?}"),
        }
        let metrics = shared.metrics.render();
        assert!(
            metrics.contains("dia_jobs_total{outcome=\"slow_client\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("\ndia_held_requests 0\n"), "{metrics}");
    }

    /// A response that takes nothing is cut once more than `client_lag` of audio waits for it,
    /// and its slot freed, while one that reads beside it runs to its end.
    #[test]
    fn a_response_that_stops_taking_audio_is_cut_and_the_other_finishes() {
        let (model, dac) = tiny();
        let shared = Arc::new(Shared::new("tiny".into(), 2, 0));
        let rate = f64::from(dac.config().sample_rate);
        let limits = RequestLimits::new(600.0, 64.0 / rate);
        let mut engine = Engine::new(&model, &dac, 2, limits, shared.clone()).expect("engine");
        let text = SCRIPT.repeat(2);
        let (stalled, mut stalled_events) = submission(&shared, &text);
        let (reading, mut reading_events) = submission(&shared, &text);
        let reading_backlog = reading.backlog.clone();
        engine.submit(stalled);
        engine.submit(reading);
        let mut read = Vec::new();
        run_until_idle(&mut engine, |_| {
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
        run_until_idle(&mut engine, |_| {});
        let metrics = shared.metrics.render();
        assert!(
            metrics.contains("dia_jobs_total{outcome=\"slow_client\"} 2"),
            "{metrics}"
        );
        assert!(metrics.contains("\ndia_running_requests 0\n"), "{metrics}");
    }
}
