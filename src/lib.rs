//! dia-burn: the Dia text-to-dialogue model and the DAC codec on Burn. This facade re-exports
//! both crates, adds what needs the two together (streaming speech, [`stream`]; long scripts
//! as audio, [`long`]; many jobs on a continuous batch, [`schedule`]), and hosts the
//! workspace-level integration tests in `tests/` and the library example in `examples/`.

pub mod long;
pub mod schedule;
pub mod stream;

pub use dia_dac;
pub use dia_model;
pub use long::{LongStreamEvent, generate_long_streaming};
pub use schedule::{JobId, SpeechEvent, SpeechJob, SpeechScheduler};
pub use stream::{StreamError, StreamEvent, generate_streaming};
