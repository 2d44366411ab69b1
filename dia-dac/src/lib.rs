//! The Descript Audio Codec (DAC 1.0.0) in Burn, generic over the backend: the codec Dia speaks
//! through (44.1 kHz, 9 codebooks × 1024, hop 512), and any other configuration DAC's metadata can
//! describe.
//!
//! ```no_run
//! # fn demo<B: dia_dac::DacBackend>(device: &B::Device) -> Result<(), dia_dac::DacError> {
//! let dac = dia_dac::Dac::<B>::load("weights.pth", device)?;
//! let codes = dac.encode_samples(&vec![0.0; 44_100])?; // [frames][9]
//! let audio = dac.decode_frames(&codes)?; // frames · 512 samples, in bounded memory
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
mod config;
mod dac;
pub mod decoder;
pub mod encoder;
mod error;
mod incremental;
pub mod layers;
pub mod quantizer;
pub mod residual;
mod streaming;
mod torch_records;
mod weights;

pub use backend::DacBackend;
pub use checkpoint::Checkpoint;
pub use config::DacConfig;
pub use dac::{Dac, audio_to_vec};
pub use error::DacError;
pub use streaming::{StreamWindows, StreamingDecoder};
