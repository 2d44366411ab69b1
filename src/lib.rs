//! dia-burn: the Dia text-to-dialogue model and the DAC codec on Burn. This facade re-exports
//! both crates; the workspace-level integration tests in `tests/` run against it.

pub use dia_dac;
pub use dia_model;
