//! The server's numbers in Prometheus' text format (`GET /metrics`): requests by status, jobs
//! by outcome, queue depth, batch size per decoder step, steps per second, time to first audio.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A histogram with fixed upper bounds.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: Vec<f64>,
    /// Observations at most each bound (not cumulative), and above the last.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: Vec<f64>) -> Self {
        Self {
            counts: vec![0; bounds.len() + 1],
            bounds,
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        let bucket = self.bounds.iter().position(|&b| value <= b);
        self.counts[bucket.unwrap_or(self.bounds.len())] += 1;
        self.sum += value;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total: u64 = self.counts.iter().sum();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {total}", self.sum);
    }
}

/// Everything counted, behind one lock (updated once per decoder step and per request).
#[derive(Debug)]
struct Counts {
    requests: BTreeMap<u16, u64>,
    jobs: BTreeMap<&'static str, u64>,
    batch_size: Histogram,
    first_audio: Histogram,
    steps: u64,
    /// Steps in the current one-second window and the rate of the last full one.
    window: (Instant, u64),
    steps_per_second: f64,
    gauges: Gauges,
}

/// Where the requests are now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Waiting for a batch slot.
    pub queued: usize,
    /// In the batch, held ones included.
    pub running: usize,
    /// In the batch but held out of the steps: their clients are behind.
    pub held: usize,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

/// How a job ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Done,
    Failed,
    /// The client went away.
    Disconnected,
    TimedOut,
    /// The client stopped reading: more than `--client-lag` seconds of audio waited for it.
    SlowClient,
    /// Cut by the server's shutdown.
    Shutdown,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Disconnected => "disconnected",
            Self::TimedOut => "timed_out",
            Self::SlowClient => "slow_client",
            Self::Shutdown => "shutdown",
        }
    }
}

impl Metrics {
    /// Metrics for a batch of up to `max_batch` requests.
    pub fn new(max_batch: usize) -> Self {
        let batch_bounds = (1..=max_batch).map(|b| b as f64).collect();
        let first_audio = vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
        Self {
            counts: Mutex::new(Counts {
                requests: BTreeMap::new(),
                jobs: BTreeMap::new(),
                batch_size: Histogram::new(batch_bounds),
                first_audio: Histogram::new(first_audio),
                steps: 0,
                window: (Instant::now(), 0),
                steps_per_second: 0.0,
                gauges: Gauges::default(),
            }),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic while holding the lock leaves plain numbers: still usable.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A response with `status` was sent.
    pub fn request(&self, status: u16) {
        *self.counts().requests.entry(status).or_default() += 1;
    }

    /// A job ended with `outcome`.
    pub fn job(&self, outcome: Outcome) {
        *self.counts().jobs.entry(outcome.label()).or_default() += 1;
    }

    /// A job's first samples came `after` its arrival.
    pub fn first_audio(&self, after: Duration) {
        self.counts().first_audio.observe(after.as_secs_f64());
    }

    /// A decoder step ran `batch` requests (0: none ran, the gauges changed); `gauges` say where
    /// the requests are now.
    pub fn step(&self, batch: usize, gauges: Gauges) {
        let mut c = self.counts();
        if batch > 0 {
            c.batch_size.observe(batch as f64);
            c.steps += 1;
            c.window.1 += 1;
        }
        let elapsed = c.window.0.elapsed();
        if elapsed >= Duration::from_secs(1) {
            c.steps_per_second = c.window.1 as f64 / elapsed.as_secs_f64();
            c.window = (Instant::now(), 0);
        }
        c.gauges = gauges;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let c = self.counts();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP dia_requests_total Speech requests answered, by HTTP status.\n\
             # TYPE dia_requests_total counter"
        );
        for (status, n) in &c.requests {
            let _ = writeln!(out, "dia_requests_total{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP dia_jobs_total Accepted requests that ended, by outcome.\n\
             # TYPE dia_jobs_total counter"
        );
        for (outcome, n) in &c.jobs {
            let _ = writeln!(out, "dia_jobs_total{{outcome=\"{outcome}\"}} {n}");
        }
        let gauges = [
            (
                "dia_queue_depth",
                "Requests waiting for a batch slot.",
                c.gauges.queued as f64,
            ),
            (
                "dia_running_requests",
                "Requests in the batch (held ones included).",
                c.gauges.running as f64,
            ),
            (
                "dia_held_requests",
                "Streamed requests held out of the decoder steps until their client takes audio.",
                c.gauges.held as f64,
            ),
            (
                "dia_steps_per_second",
                "Decoder steps per second over the last second.",
                c.steps_per_second,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP dia_steps_total Decoder steps run.\n# TYPE dia_steps_total counter\n\
             dia_steps_total {}",
            c.steps
        );
        c.batch_size.render(
            &mut out,
            "dia_batch_size",
            "Requests decoded together per decoder step.",
        );
        c.first_audio.render(
            &mut out,
            "dia_time_to_first_audio_seconds",
            "Seconds from a request's arrival to its first audio.",
        );
        out
    }
}
