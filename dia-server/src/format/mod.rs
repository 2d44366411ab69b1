//! Response audio formats: each an encoder that takes the codec's float samples (mono, at its
//! rate) as they become final and returns the bytes that are ready, so every format streams.

mod flac;
mod mp3;
mod opus;
mod pcm;
mod wav;

use std::str::FromStr;

/// An audio format a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    Mp3,
    Opus,
    Flac,
    Wav,
    Pcm,
}

/// The names accepted, in OpenAI's order.
pub const FORMAT_NAMES: &str = "mp3, opus, flac, wav, pcm";

impl FromStr for AudioFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "mp3" => Self::Mp3,
            "opus" => Self::Opus,
            "flac" => Self::Flac,
            "wav" => Self::Wav,
            "pcm" => Self::Pcm,
            other => {
                return Err(format!(
                    "response_format {other:?} is not supported; use one of {FORMAT_NAMES}"
                ));
            }
        })
    }
}

impl AudioFormat {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Opus => "audio/ogg; codecs=opus",
            Self::Flac => "audio/flac",
            Self::Wav => "audio/wav",
            Self::Pcm => "audio/pcm",
        }
    }

    /// An encoder of mono audio at `rate` Hz into this format.
    pub fn encoder(self, rate: u32) -> Result<Box<dyn AudioEncoder>, EncodeError> {
        Ok(match self {
            Self::Mp3 => Box::new(mp3::Mp3Encoder::new(rate)?),
            Self::Opus => Box::new(opus::OggOpusEncoder::new(rate)?),
            Self::Flac => Box::new(flac::FlacEncoder::new(rate)?),
            Self::Wav => Box::new(wav::WavEncoder::new(rate)),
            Self::Pcm => Box::new(pcm::PcmEncoder::new(rate)?),
        })
    }
}

/// An encoder failed (a bug or an unsupported rate: never the client's input).
#[derive(Debug, thiserror::Error)]
#[error("{format} encoder: {message}")]
pub struct EncodeError {
    pub format: &'static str,
    pub message: String,
}

impl EncodeError {
    fn new(format: &'static str, message: impl ToString) -> Self {
        Self {
            format,
            message: message.to_string(),
        }
    }
}

/// Streaming encoder: samples in (float, mono, in [-1, 1]), bytes out.
pub trait AudioEncoder: Send {
    /// Encodes `samples`, following those pushed before; returns the bytes ready (the
    /// format's header comes with the first).
    fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, EncodeError>;
    /// Ends the stream; returns the remaining bytes.
    fn finish(self: Box<Self>) -> Result<Vec<u8>, EncodeError>;
}

/// Samples as 16-bit PCM, as `dia-infer` writes them.
fn to_i16(samples: &[f32]) -> impl Iterator<Item = i16> + '_ {
    samples.iter().map(|&s| dia_burn::audio::to_i16(s))
}
