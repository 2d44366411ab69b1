//! FLAC (pure Rust, `flacenc`), 16-bit at the codec's rate, streamed frame by frame: the
//! header's total-samples and MD5 fields say "unknown" (zero), as the format allows for streams.

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, Stream, StreamInfo};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Fill, FrameBuf};

use super::{AudioEncoder, EncodeError, to_i16};

/// Samples per FLAC frame (the reference encoder's default block size).
const BLOCK: usize = 4096;

/// Streaming FLAC.
pub struct FlacEncoder {
    config: Verified<config::Encoder>,
    info: StreamInfo,
    /// The stream header, sent with the first bytes.
    header: Option<Vec<u8>>,
    pending: Vec<i32>,
    frames: usize,
    buffer: FrameBuf,
}

fn error(e: impl std::fmt::Debug) -> EncodeError {
    EncodeError::new("flac", format!("{e:?}"))
}

impl FlacEncoder {
    pub fn new(rate: u32) -> Result<Self, EncodeError> {
        let mut stream = Stream::new(rate as usize, 1, 16).map_err(error)?;
        stream
            .stream_info_mut()
            .set_block_sizes(BLOCK, BLOCK)
            .map_err(error)?;
        let info = stream.stream_info().clone();
        let header = stream_bytes(&stream)?;
        Ok(Self {
            config: config::Encoder::default().into_verified().map_err(error)?,
            info,
            header: Some(header),
            pending: Vec::with_capacity(BLOCK),
            frames: 0,
            buffer: FrameBuf::with_size(1, BLOCK).map_err(error)?,
        })
    }

    /// Encodes the pending samples as one frame.
    fn frame(&mut self) -> Result<Vec<u8>, EncodeError> {
        if self.buffer.size() != self.pending.len() {
            self.buffer.resize(self.pending.len());
        }
        self.buffer.fill_interleaved(&self.pending).map_err(error)?;
        let frame =
            flacenc::encode_fixed_size_frame(&self.config, &self.buffer, self.frames, &self.info)
                .map_err(error)?;
        self.frames += 1;
        self.pending.clear();
        let mut sink = ByteSink::new();
        frame.write(&mut sink).map_err(error)?;
        Ok(sink.into_inner())
    }
}

/// The bytes of `stream` (its header and whatever frames it has).
fn stream_bytes(stream: &Stream) -> Result<Vec<u8>, EncodeError> {
    let mut sink = ByteSink::new();
    stream.write(&mut sink).map_err(error)?;
    Ok(sink.into_inner())
}

impl AudioEncoder for FlacEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        let mut out = self.header.take().unwrap_or_default();
        for s in to_i16(samples) {
            self.pending.push(i32::from(s));
            if self.pending.len() == BLOCK {
                out.extend(self.frame()?);
            }
        }
        Ok(out)
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        let mut out = self.header.take().unwrap_or_default();
        if !self.pending.is_empty() {
            out.extend(self.frame()?);
        }
        Ok(out)
    }
}
