//! dia-burn: Nari Labs' Dia text-to-dialogue model and the Descript Audio Codec on Burn, on any
//! GPU or CPU. Load both with [`Dia`], then speak:
//!
//! ```no_run
//! use dia_burn::{Dia, LoadOptions, backends::Flex};
//!
//! # fn main() -> dia_burn::Result<()> {
//! let dia = Dia::<Flex>::load(&LoadOptions::default(), &Default::default())?;
//! let samples = dia.speak("[S1] Dia runs on Burn now. [S2] On any GPU or CPU?")?;
//! dia_burn::audio::write_wav("dia.wav".as_ref(), &samples, dia.sample_rate())?;
//! # Ok(()) }
//! ```
//!
//! [`Dia::stream`] hands the audio over as it becomes final, [`Dia::voice_from_file`] makes a
//! voice to continue from a clip, scripts of any length are spoken in passes in one voice, and
//! [`Dia::scheduler`] runs many requests at once, each exactly as it would run alone. The
//! backend is chosen by type ([`backends`]) or by name at run time: [`AnyDia`] (the same
//! methods, no generics) or [`backends::run`] (your own generic code).
//!
//! The modules around it are what applications share: [`hub`] (the Hugging Face cache),
//! [`audio`] (audio files, resampling, WAV), [`codes`] (codes JSON), [`voice`] (voice prompts),
//! [`files`] (atomic writes) and, with the `cli` feature, [`cli`] (the options `dia-infer` and
//! `dia-server` share). The model and codec crates are re-exported whole.

mod any;
pub mod audio;
pub mod backends;
#[cfg(feature = "cli")]
pub mod cli;
pub mod codes;
mod dia;
mod error;
pub mod files;
pub mod hub;
mod options;
mod sampling;
pub mod schedule;
pub mod stream;
pub mod voice;

pub use any::AnyDia;
pub use dia::{Dia, Speech, Spoken};
pub use dia_dac;
pub use dia_model;
pub use error::{Error, Result};
pub use options::{DEFAULT_CODEC, DEFAULT_MODEL, DiaFiles, LoadOptions, Source};
pub use sampling::SamplingOverrides;
pub use schedule::{JobId, SpeechEvent, SpeechJob, SpeechScheduler};
