//! What `dia-infer` shares with `dia-server`: the model and codec options and their loading
//! ([`runtime`]), hub files ([`hub`]), the run-time backend choice ([`backend`]), audio files
//! ([`audio`]) and codes JSON ([`codes`]).

pub mod audio;
pub mod backend;
pub mod codes;
pub mod files;
pub mod hub;
pub mod runtime;
