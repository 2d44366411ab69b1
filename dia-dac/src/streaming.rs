//! Incremental decoding for streams: frames are pushed as a generator makes them, and the
//! samples that no later frame can change come back at once. A frame's samples depend only on
//! the frames within the decoder's receptive field ([`Dac::decoder_context_frames`] on each
//! side), so each window is decoded with that much context and nothing else: the concatenated
//! output equals [`Dac::decode`] of all frames up to float rounding, and the work per frame is
//! bounded whatever the stream's length.

use burn::prelude::*;

use crate::backend::DacBackend;
use crate::{Dac, DacError, audio_to_vec};

/// Window sizes, in frames: the first window is small so the first samples come early, and each
/// next one doubles up to `max`, so the context decoded twice costs little on long streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamWindows {
    pub first: usize,
    pub max: usize,
}

impl Default for StreamWindows {
    /// First samples after one frame (plus the context), then windows of up to 128 frames
    /// (1.5 s at 44.1 kHz): with the 44.1 kHz codec's 10 frames of context per side, long
    /// streams decode about 1.16 frames per frame of output.
    fn default() -> Self {
        Self { first: 1, max: 128 }
    }
}

/// A stream being decoded; see the module docs.
pub struct StreamingDecoder<'a, B: Backend> {
    dac: &'a Dac<B>,
    /// Frames from absolute index `base` on: the left context of the next window and every
    /// frame not decoded yet, time-major.
    frames: Vec<Vec<u32>>,
    base: usize,
    /// Frames whose samples have been returned.
    done: usize,
    context: usize,
    window: usize,
    max_window: usize,
}

impl<B: DacBackend> Dac<B> {
    /// An incremental decoder over this codec, with `windows` deciding how many frames each
    /// decode covers.
    pub fn streaming_decoder(
        &self,
        windows: StreamWindows,
    ) -> Result<StreamingDecoder<'_, B>, DacError> {
        if windows.first == 0 || windows.max < windows.first {
            return Err(DacError::InputShape {
                what: "stream windows",
                expected: "1 ≤ first ≤ max frames".to_string(),
                found: vec![windows.first, windows.max],
            });
        }
        Ok(StreamingDecoder {
            dac: self,
            frames: Vec::new(),
            base: 0,
            done: 0,
            context: self.decoder_context_frames(),
            window: windows.first,
            max_window: windows.max,
        })
    }
}

impl<B: DacBackend> StreamingDecoder<'_, B> {
    /// Adds time-major frames (each `n_codebooks` codes) and returns the samples that became
    /// final: those of every window with its full right context available.
    pub fn push(&mut self, frames: &[impl AsRef<[u32]>]) -> Result<Vec<f32>, DacError> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        // Checked here so a bad frame fails at its push, not at a later decode.
        self.dac.check_frames(frames)?;
        self.frames
            .extend(frames.iter().map(|f| f.as_ref().to_vec()));
        let mut samples = Vec::new();
        while self.received() >= self.done + self.window + self.context {
            let end = self.done + self.window;
            samples.extend(self.decode_window(end, end + self.context)?);
            self.window = (2 * self.window).min(self.max_window);
        }
        Ok(samples)
    }

    /// Ends the stream: the samples of every frame not returned yet (the stream's end is the
    /// sequence's end, as in a whole decode).
    pub fn finish(mut self) -> Result<Vec<f32>, DacError> {
        let end = self.received();
        if end == self.done {
            return Ok(Vec::new());
        }
        self.decode_window(end, end)
    }

    /// Frames pushed so far.
    pub fn received(&self) -> usize {
        self.base + self.frames.len()
    }

    /// Frames whose samples have been returned.
    pub fn decoded(&self) -> usize {
        self.done
    }

    /// Decodes frames `done - context .. hi` and returns the samples of `done..end`, then drops
    /// the frames no later window reads.
    fn decode_window(&mut self, end: usize, hi: usize) -> Result<Vec<f32>, DacError> {
        let lo = self.done.saturating_sub(self.context);
        let window = &self.frames[lo - self.base..hi - self.base];
        let audio = self.dac.decode_unchecked(self.dac.frames_to_codes(window)?);
        let hop = self.dac.config().hop_length();
        let skip = (self.done - lo) * hop;
        // Only odd strides make a decode shorter than frames · hop; the shortfall is at the end.
        let keep = ((end - self.done) * hop).min(audio.dims()[2].saturating_sub(skip));
        let samples = audio_to_vec(audio.narrow(2, skip, keep))?;
        self.done = end;
        let keep_from = self.done.saturating_sub(self.context).max(self.base);
        self.frames.drain(..keep_from - self.base);
        self.base = keep_from;
        Ok(samples)
    }
}
