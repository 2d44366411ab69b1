//! Integration tests of dia-dac against the reference fixtures in `assets/fixtures/` (one test
//! binary, so the Burn backends are linked once).

mod chunked;
mod common;
mod errors;
mod helpers;
mod manifest;
mod parity;
