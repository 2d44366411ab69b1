//! The progress line of a generation: jobs done, the pass of a long script, decode speed
//! (summed over the jobs decoded together), and (when streaming) how long the first audio took.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over the run's jobs (hidden with `--quiet`).
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Batch steps decoded.
    steps: usize,
    /// Frames decoded, summed over the jobs of each step.
    frames: usize,
    frame_rate: f64,
    first_audio_s: Option<f64>,
}

impl Progress {
    /// A bar over `jobs` jobs; `frame_rate` converts frames/s to realtime.
    pub fn new(quiet: bool, jobs: usize, frame_rate: f64) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(jobs as u64)
        };
        if let Ok(style) = ProgressStyle::with_template("{prefix}{bar:40} {pos}/{len} jobs, {msg}")
        {
            bar.set_style(style);
        }
        Self {
            bar,
            started: Instant::now(),
            steps: 0,
            frames: 0,
            frame_rate,
            first_audio_s: None,
        }
    }

    /// Pass `pass` of `passes` of a long script starts.
    pub fn pass(&mut self, pass: usize, passes: usize) {
        if passes > 1 {
            self.bar.set_prefix(format!("pass {}/{passes} ", pass + 1));
            tracing::info!(pass = pass + 1, passes, "pass");
        }
    }

    /// A batch step decoded a frame for `decoded` jobs; `done` jobs are finished.
    pub fn step(&mut self, decoded: usize, done: usize) {
        self.bar.set_position(done as u64);
        self.steps += 1;
        self.frames += decoded;
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        let steps_per_s = self.steps as f64 / seconds;
        let mut message = format!(
            "{steps_per_s:.1} steps/s, {:.2}× realtime",
            self.frames as f64 / seconds / self.frame_rate
        );
        if let Some(first) = self.first_audio_s {
            message.push_str(&format!(", first audio after {first:.2} s"));
        }
        self.bar.set_message(message);
    }

    /// Audio was handed to an output (the first time sets the time to first audio).
    pub fn audio(&mut self) {
        if self.first_audio_s.is_none() {
            let first = self.started.elapsed().as_secs_f64();
            self.first_audio_s = Some(first);
            tracing::info!(seconds = first, "first audio");
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
