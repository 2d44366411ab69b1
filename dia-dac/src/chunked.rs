//! Chunked decoding with bounded memory: the frames go through the decoder's stream (see
//! `incremental`) a window at a time, so activations never span much more than a window, each
//! frame is decoded once, and the concatenation equals a whole-sequence decode up to float
//! rounding.

use burn::prelude::*;

use crate::backend::DacBackend;
use crate::decoder::DecoderStream;
use crate::incremental::Columns;
use crate::{Dac, DacError};

/// Iterator over the audio of consecutive windows of a code sequence, each
/// `[batch, 1, window_frames · hop]` (the last one shorter). Streaming output plays them in order.
pub struct DecodeChunks<'a, B: Backend> {
    dac: &'a Dac<B>,
    /// `[batch, n, frames]`, already checked.
    codes: Tensor<B, 3, Int>,
    window: usize,
    stream: DecoderStream<B>,
    /// Frames fed to the stream.
    fed: usize,
    /// Final samples `[batch, 1, len]` not returned yet.
    audio: Columns<B>,
}

impl<B: DacBackend> Dac<B> {
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
            stream: self.decoder().stream(),
            fed: 0,
            audio: Columns::default(),
        })
    }

    /// Same result as [`Dac::decode`], computed window by window so that the decoder's
    /// activations never span much more than `window_frames`.
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
        let chunk = self.window * self.dac.config().hop_length();
        // Feed windows until a chunk's samples are final (or every frame is in).
        while self.audio.len() < chunk && self.fed < frames {
            let end = (self.fed + self.window).min(frames);
            let codes = self.codes.clone().slice([0..batch, 0..n, self.fed..end]);
            let latent = self.dac.quantizer().latent_from_codes(codes);
            self.fed = end;
            let last = end == frames;
            if let Some(audio) = self
                .dac
                .decoder()
                .step(&mut self.stream, Some(latent), last)
            {
                self.audio.push(audio);
            }
        }
        self.audio.take_front(chunk)
    }
}
