//! The progress line of a generation: the pass of a long script, frames decoded, speed, and
//! (when streaming) how long the first audio took.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over one batch's decoder frames (hidden with `--quiet`).
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Steps decoded over every pass.
    steps: usize,
    frame_rate: f64,
    first_audio_s: Option<f64>,
}

impl Progress {
    /// A bar over `frames` decoder frames; `frame_rate` converts steps/s to realtime.
    pub fn new(quiet: bool, frames: usize, frame_rate: f64) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(frames as u64)
        };
        if let Ok(style) =
            ProgressStyle::with_template("{prefix}{bar:40} {pos}/{len} frames, {msg}")
        {
            bar.set_style(style);
        }
        Self {
            bar,
            started: Instant::now(),
            steps: 0,
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

    /// Decoder frame `frame` was written.
    pub fn step(&mut self, frame: usize) {
        self.bar.set_position(frame as u64);
        self.steps += 1;
        let steps_per_s = self.steps as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let mut message = format!(
            "{steps_per_s:.1} steps/s, {:.2}× realtime",
            steps_per_s / self.frame_rate
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
