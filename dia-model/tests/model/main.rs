//! Integration tests of dia-model against the reference fixtures in `assets/fixtures/`, as one
//! test binary so the Burn backends are linked once. Two stay binaries of their own:
//! `portable.rs` (it turns the custom kernels off for its whole process) and `wgpu.rs` (feature
//! `wgpu`, run by CI as `--test wgpu`).

#[path = "../common/mod.rs"]
mod common;
mod continuous;
mod converted;
mod errors;
mod generation;
mod half_precision;
mod manifest;
mod parity;
