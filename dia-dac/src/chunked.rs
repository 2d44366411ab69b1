//! Chunked decoding with bounded memory: every window of frames is decoded together with as many
//! neighbouring frames as the decoder's receptive field reaches, and only the window's own
//! samples are kept, so the concatenation equals a whole-sequence decode up to float rounding.

use burn::prelude::*;

use crate::backend::DacBackend;
use crate::layers::Span;
use crate::{Dac, DacError};

/// Iterator over the audio of consecutive windows of a code sequence, each
/// `[batch, 1, window_frames · hop]` (the last one shorter). Streaming output plays them in order.
pub struct DecodeChunks<'a, B: Backend> {
    dac: &'a Dac<B>,
    /// `[batch, n, frames]`, already checked.
    codes: Tensor<B, 3, Int>,
    window: usize,
    context: usize,
    next: usize,
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

    /// Decodes `codes` (`[batch, n, frames]`) lazily, `window_frames` frames at a time.
    pub fn decode_chunks(
        &self,
        codes: Tensor<B, 3, Int>,
        window_frames: usize,
    ) -> Result<DecodeChunks<'_, B>, DacError> {
        if window_frames == 0 {
            return Err(DacError::InputShape {
                what: "window_frames",
                expected: "at least one frame".to_string(),
                found: vec![window_frames],
            });
        }
        self.check_codes(&codes)?;
        Ok(DecodeChunks {
            dac: self,
            codes,
            window: window_frames,
            context: self.decoder_context_frames(),
            next: 0,
        })
    }

    /// Same result as [`Dac::decode`], computed window by window so that the decoder's
    /// activations never span more than `window_frames` plus twice the context.
    pub fn decode_chunked(
        &self,
        codes: Tensor<B, 3, Int>,
        window_frames: usize,
    ) -> Result<Tensor<B, 3>, DacError> {
        let chunks: Vec<_> = self.decode_chunks(codes, window_frames)?.collect();
        Ok(Tensor::cat(chunks, 2))
    }
}

impl<B: DacBackend> Iterator for DecodeChunks<'_, B> {
    type Item = Tensor<B, 3>;

    fn next(&mut self) -> Option<Tensor<B, 3>> {
        let [batch, n, frames] = self.codes.dims();
        let start = self.next;
        if start >= frames {
            return None;
        }
        let end = (start + self.window).min(frames);
        self.next = end;
        // Decode lo..hi, keep the samples of start..end.
        let lo = start.saturating_sub(self.context);
        let hi = (end + self.context).min(frames);
        let audio = self
            .dac
            .decode_unchecked(self.codes.clone().slice([0..batch, 0..n, lo..hi]));
        let hop = self.dac.config().hop_length();
        let skip = (start - lo) * hop;
        // Only odd strides make a decode shorter than frames · hop; the shortfall is at the end.
        let keep = ((end - start) * hop).min(audio.dims()[2].saturating_sub(skip));
        Some(audio.narrow(2, skip, keep))
    }
}
