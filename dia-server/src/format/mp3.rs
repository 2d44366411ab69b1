//! MP3 through LAME (built from source by `mp3lame-sys`): 128 kbit/s mono at the codec's rate.

use mp3lame_encoder::{Bitrate, Builder, Encoder, FlushGap, MonoPcm, Quality};

use super::{AudioEncoder, EncodeError};

/// Streaming MP3.
pub struct Mp3Encoder {
    lame: Encoder,
}

fn error(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::new("mp3", e)
}

impl Mp3Encoder {
    pub fn new(rate: u32) -> Result<Self, EncodeError> {
        let mut builder = Builder::new().ok_or_else(|| error("LAME failed to start"))?;
        builder.set_num_channels(1).map_err(error)?;
        builder.set_sample_rate(rate).map_err(error)?;
        builder.set_brate(Bitrate::Kbps128).map_err(error)?;
        builder.set_quality(Quality::Good).map_err(error)?;
        Ok(Self {
            lame: builder.build().map_err(error)?,
        })
    }
}

/// LAME's worst-case output for `samples` input samples (with room for a flush).
fn capacity(samples: usize) -> usize {
    samples * 5 / 4 + 16 * 1024
}

impl AudioEncoder for Mp3Encoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(capacity(samples.len()));
        // LAME takes floats in [-1, 1]; the codec's rare overshoots are clipped as for WAV.
        let clipped: Vec<f32> = samples.iter().map(|s| s.clamp(-1.0, 1.0)).collect();
        self.lame
            .encode_to_vec(MonoPcm(clipped.as_slice()), &mut out)
            .map_err(error)?;
        Ok(out)
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(capacity(0));
        self.lame
            .flush_to_vec::<FlushGap>(&mut out)
            .map_err(error)?;
        Ok(out)
    }
}
