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
    use dia_burn::dia_model::GenerationConfig;
    pub use dia_test_support::{fixture as asset, max_abs_diff};

    /// The default parameters with `max_tokens`, `temperature` and `seed` set.
    pub fn sampled(max_tokens: usize, temperature: f32, seed: u64) -> GenerationConfig {
        GenerationConfig {
            max_tokens: Some(max_tokens),
            temperature,
            seed,
            ..GenerationConfig::default()
        }
    }
}
