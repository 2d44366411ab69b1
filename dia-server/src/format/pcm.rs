//! Raw PCM as OpenAI defines it: 16-bit signed little-endian, mono, 24 kHz (resampled).

use dia_burn::audio::StreamResampler;

use super::{AudioEncoder, EncodeError, to_i16};

/// OpenAI's `pcm` sample rate.
pub const PCM_RATE: u32 = 24_000;

/// Streaming 24 kHz 16-bit PCM.
pub struct PcmEncoder {
    resampler: Option<StreamResampler>,
}

impl PcmEncoder {
    pub fn new(rate: u32) -> Result<Self, EncodeError> {
        let resampler = match rate {
            PCM_RATE => None,
            _ => {
                Some(StreamResampler::new(rate, PCM_RATE).map_err(|e| EncodeError::new("pcm", e))?)
            }
        };
        Ok(Self { resampler })
    }
}

fn bytes(samples: &[f32]) -> Vec<u8> {
    to_i16(samples).flat_map(i16::to_le_bytes).collect()
}

impl AudioEncoder for PcmEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        match &mut self.resampler {
            Some(r) => Ok(bytes(
                &r.push(samples).map_err(|e| EncodeError::new("pcm", e))?,
            )),
            None => Ok(bytes(samples)),
        }
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        match self.resampler {
            Some(r) => Ok(bytes(&r.finish().map_err(|e| EncodeError::new("pcm", e))?)),
            None => Ok(Vec::new()),
        }
    }
}
