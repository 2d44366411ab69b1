//! Integration tests of dia-dac against the reference fixtures in `assets/fixtures/` (one test
//! binary, so the Burn backends are linked once; `--features wgpu` adds the wgpu tests).

mod common;
mod errors;
mod helpers;
mod manifest;
mod parity;
mod streaming;
#[cfg(feature = "wgpu")]
mod wgpu;
mod windowed;
