//! FLAC (pure Rust, `flacenc`), 16-bit at the codec's rate, sent whole once the audio is done:
//! FLAC is an archiving format, and readers such as libsndfile (hence python-soundfile and
//! librosa) refuse a file whose header leaves the length, MD5 and frame sizes unknown, which a
//! header sent before the audio must.

use flacenc::bitsink::ByteSink;
use flacenc::component::BitRepr;
use flacenc::config;
use flacenc::error::Verify;
use flacenc::source::MemSource;

use super::{AudioEncoder, EncodeError, to_i16};

/// Samples per FLAC frame (the reference encoder's default block size).
const BLOCK: usize = 4096;

/// FLAC of the whole response, encoded at its end.
pub struct FlacEncoder {
    rate: u32,
    /// Every sample so far, as the file will hold it.
    samples: Vec<i16>,
}

fn error(e: impl std::fmt::Debug) -> EncodeError {
    EncodeError::new("flac", format!("{e:?}"))
}

impl FlacEncoder {
    pub fn new(rate: u32) -> Result<Self, EncodeError> {
        // FLAC's header holds rates below 2^20 Hz; say so now rather than at the end.
        if rate == 0 || rate >= 1 << 20 {
            return Err(error(format!("sample rate {rate} Hz")));
        }
        Ok(Self {
            rate,
            samples: Vec::new(),
        })
    }
}

impl AudioEncoder for FlacEncoder {
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError> {
        self.samples.extend(to_i16(samples));
        Ok(Vec::new())
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, EncodeError> {
        let samples: Vec<i32> = self.samples.iter().map(|&s| i32::from(s)).collect();
        let source = MemSource::from_samples(&samples, 1, 16, self.rate as usize);
        // One thread: a response is small, and worker threads per response would compete with
        // the decode loop.
        let mut config = config::Encoder::default();
        config.multithread = false;
        let config = config.into_verified().map_err(error)?;
        let mut stream =
            flacenc::encode_with_fixed_block_size(&config, source, BLOCK).map_err(error)?;
        // A fixed-size stream's block sizes leave out its last block (FLAC's definition, which
        // the encoder's count does not follow); symphonia cannot read the file otherwise.
        stream
            .stream_info_mut()
            .set_block_sizes(BLOCK, BLOCK)
            .map_err(error)?;
        let mut sink = ByteSink::new();
        stream.write(&mut sink).map_err(error)?;
        Ok(sink.into_inner())
    }
}
