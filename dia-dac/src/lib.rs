//! The Descript Audio Codec (DAC 1.0.0) in Burn, generic over the backend: the codec Dia speaks
//! through (44.1 kHz, 9 codebooks × 1024, hop 512), and any other configuration DAC's metadata can
//! describe.
//!
//! ```no_run
//! # fn demo<B: dia_dac::DacBackend>(device: &B::Device) -> Result<(), dia_dac::DacError> {
//! let dac = dia_dac::Dac::<B>::load("weights.pth", device)?;
//! let codes = dac.encode_samples(&vec![0.0; 44_100])?; // [frames][9]
//! let audio = dac.decode_frames(&codes)?; // frames · 512 samples
//! // The same audio, frame by frame as a generator makes the frames:
//! let mut stream = dac.streaming_decoder(dia_dac::StreamWindows::default())?;
//! let mut streamed = Vec::new();
//! for frame in &codes {
//!     streamed.extend(stream.push(&[frame])?);
//! }
//! streamed.extend(stream.finish()?);
//! # Ok(()) }
//! ```

pub mod backend;
mod checkpoint;
mod chunked;
mod config;
mod dac;
mod decoder;
mod encoder;
mod error;
mod incremental;
mod layers;
mod quantizer;
mod residual;
mod streaming;
mod torch_records;
mod weights;

pub use backend::{ConvInput, DacBackend};
pub use checkpoint::Checkpoint;
pub use chunked::DecodeChunks;
pub use config::DacConfig;
pub use dac::{Dac, audio_to_vec};
pub use decoder::{Decoder, DecoderBlock};
pub use encoder::{Encoder, EncoderBlock};
pub use error::DacError;
pub use layers::{Conv1d, ConvTranspose1d, Snake};
pub use quantizer::{ResidualVectorQuantizer, VectorQuantizer};
pub use residual::ResidualUnit;
pub use streaming::{StreamWindows, StreamingDecoder};
