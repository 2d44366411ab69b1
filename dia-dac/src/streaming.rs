//! Incremental decoding for streams: frames are pushed as a generator makes them, and the
//! samples that no later frame can change come back at once. Each layer of the decoder keeps the
//! few columns its next outputs read (see `incremental`), so every frame is decoded once: the
//! work per second of audio is that of [`Dac::decode`], and the concatenated output equals it up
//! to float rounding. A frame's samples are final once [`Dac::decoder_context_frames`] more
//! frames have arrived; its first samples need one frame fewer, and every step hands over all
//! the samples that are final, whole frames or not.

use burn::prelude::*;

use crate::backend::DacBackend;
use crate::decoder::DecoderStream;
use crate::layers::Span;
use crate::{Dac, DacError, audio_to_vec};

/// How many frames each decode step waits for: the first step runs once `first` frames plus the
/// frames their first samples reach ahead to have arrived, so the first samples come early, and
/// each next one waits for twice as many new frames, up to `max`. Every step reads all of the
/// decoder's weights, so fewer, wider steps cost less per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamWindows {
    pub first: usize,
    pub max: usize,
}

impl Default for StreamWindows {
    /// First samples after one frame (plus the context), then steps of up to 128 frames
    /// (1.5 s at 44.1 kHz).
    fn default() -> Self {
        Self { first: 1, max: 128 }
    }
}

impl StreamWindows {
    /// For frames already in hand ([`Dac::decode_frames`]): 128-frame steps from the first, so
    /// the decoder's activations span at most about two steps.
    pub const WHOLE: Self = Self {
        first: 128,
        max: 128,
    };
}

/// A stream being decoded; see the module docs.
pub struct StreamingDecoder<'a, B: Backend> {
    dac: &'a Dac<B>,
    stream: DecoderStream<B>,
    /// Codes of the frames received but not fed to the decoder yet, checked, time-major and
    /// flattened.
    pending: Vec<i64>,
    received: usize,
    /// Samples returned so far.
    returned: usize,
    /// Frames received at which the next decode step runs.
    next_step: usize,
    window: usize,
    max_window: usize,
}

impl<B: DacBackend> Dac<B> {
    /// Frames of context the decoder needs on each side of a frame for that frame's samples to
    /// be exact (10 for the 44.1 kHz codec), from the layers' kernels, strides and dilations.
    pub fn decoder_context_frames(&self) -> usize {
        let hop = self.config().hop_length() as i64;
        // The samples of frame 0 are 0..hop; its inputs reach from frame `lo` to frame `hi`.
        let span = self.decoder().input_span(Span { lo: 0, hi: hop - 1 });
        usize::try_from((-span.lo).max(span.hi)).unwrap_or(0)
    }

    /// An incremental decoder over this codec, with `windows` deciding how many frames each
    /// decode step waits for.
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
            stream: self.decoder().stream(),
            pending: Vec::new(),
            received: 0,
            returned: 0,
            next_step: windows.first + self.decoder_reach_frames(),
            window: windows.first,
            max_window: windows.max,
        })
    }

    /// Time-major frames → mono samples: the decode for applications. Its memory is bounded
    /// whatever the length: the frames go through the decoder [`StreamWindows::WHOLE`]'s steps
    /// (as a [`StreamingDecoder`] takes them), each once, and the samples equal
    /// [`Self::decode`]'s up to float rounding.
    pub fn decode_frames(&self, frames: &[impl AsRef<[u32]>]) -> Result<Vec<f32>, DacError> {
        // Checked once, whole, so an error names the frame's index in `frames`.
        let flat = self.check_frames(frames)?;
        let step = StreamWindows::WHOLE.max * self.config().n_codebooks;
        let mut stream = self.streaming_decoder(StreamWindows::WHOLE)?;
        let mut samples = Vec::with_capacity(frames.len() * self.config().hop_length());
        for chunk in flat.chunks(step) {
            samples.extend(stream.push_checked(chunk)?);
        }
        samples.extend(stream.finish()?);
        Ok(samples)
    }

    /// Frames past a frame that its first sample depends on (9 for the 44.1 kHz codec, one
    /// less than [`Dac::decoder_context_frames`]): a stream's first samples are final once
    /// this many frames follow the first.
    fn decoder_reach_frames(&self) -> usize {
        let span = self.decoder().input_span(Span { lo: 0, hi: 0 });
        usize::try_from(span.hi).unwrap_or(0)
    }
}

impl<B: DacBackend> StreamingDecoder<'_, B> {
    /// Adds time-major frames (each `n_codebooks` codes) and returns the samples that became
    /// final (not always whole frames), once a step's worth of frames arrived.
    pub fn push(&mut self, frames: &[impl AsRef<[u32]>]) -> Result<Vec<f32>, DacError> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        // Checked here so a bad frame fails at its push, not at a later decode.
        let flat = self.dac.check_frames(frames)?;
        self.push_checked(&flat)
    }

    /// [`Self::push`] of frames already checked, time-major and flattened.
    fn push_checked(&mut self, flat: &[i64]) -> Result<Vec<f32>, DacError> {
        self.pending.extend_from_slice(flat);
        self.received += flat.len() / self.dac.config().n_codebooks;
        if self.received < self.next_step {
            return Ok(Vec::new());
        }
        self.window = (2 * self.window).min(self.max_window);
        self.next_step = self.received + self.window;
        self.step(false)
    }

    /// Ends the stream: the samples of every frame not returned yet (the stream's end is the
    /// sequence's end, as in a whole decode).
    pub fn finish(mut self) -> Result<Vec<f32>, DacError> {
        self.step(true)
    }

    /// Frames pushed so far.
    pub fn received(&self) -> usize {
        self.received
    }

    /// Samples returned so far.
    pub fn returned(&self) -> usize {
        self.returned
    }

    /// Feeds the pending frames to the decoder and returns the samples that became final
    /// (every remaining one when `last`).
    fn step(&mut self, last: bool) -> Result<Vec<f32>, DacError> {
        let latent = match self.pending.is_empty() {
            true => None,
            false => {
                let codes = self.dac.flat_to_codes(&self.pending);
                Some(self.dac.quantizer().latent_from_codes(codes))
            }
        };
        self.pending.clear();
        let samples = match self.dac.decoder().step(&mut self.stream, latent, last) {
            Some(audio) => audio_to_vec(audio)?,
            None => Vec::new(),
        };
        self.returned += samples.len();
        Ok(samples)
    }
}
