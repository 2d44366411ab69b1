//! dia-burn's integration tests on the fixture models, as one test binary: text to audio,
//! streaming, long-form scripts, the scheduler, and mutation fuzzing of the checkpoint readers.

mod fuzz;
mod long_form;
mod schedule;
mod streaming;
mod text_to_audio;

/// What the tests share, from `dia-test-support` under the names they use: fixture paths and
/// sample comparison.
mod common {
    pub use dia_test_support::{fixture as asset, max_abs_diff};
}
