//! WAV at the codec's rate, 16-bit: the header goes first, before the length is known, so its
//! sizes say "unknown" (0xFFFFFFFF, as streaming servers write them); readers take the data to
//! the end of the stream.

use super::{AudioEncoder, EncodeError, to_i16};

/// Streaming 16-bit mono WAV.
pub struct WavEncoder {
    header: Option<Vec<u8>>,
}

impl WavEncoder {
    pub fn new(rate: u32) -> Self {
        Self {
            header: Some(header(rate)),
        }
    }
}

/// A canonical 44-byte header of 16-bit mono PCM at `rate` with unknown sizes.
fn header(rate: u32) -> Vec<u8> {
    let unknown = u32::MAX.to_le_bytes();
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&unknown);
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    h.extend_from_slice(&2u16.to_le_bytes()); // block align
    h.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    h.extend_from_slice(b"data");
    h.extend_from_slice(&unknown);
    h
}

impl AudioEncoder for WavEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        let mut out = self.header.take().unwrap_or_default();
        out.extend(to_i16(samples).flat_map(i16::to_le_bytes));
        Ok(out)
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        // A clip with no sample is still a valid (empty) WAV.
        Ok(self.header.take().unwrap_or_default())
    }
}
