//! The fallback a CPU without AVX2 (or an aarch64 Mac) takes: with the custom kernels forced
//! off, every Flex hook runs Burn's own op, and the model still reproduces the reference. Its
//! own test binary, since the switch is process-wide.

mod common;

use common::greedy::check_greedy_cases;
use common::layers::{assert_within, layer_diffs};
use common::*;
use dia_model::SamplingSite::Host;
use dia_model::{ModelOptions, backend};

#[test]
fn flex_without_custom_kernels_matches_reference() {
    backend::set_custom_kernels(false);
    assert!(!backend::custom_kernels());
    let device = Default::default();
    let diffs = layer_diffs::<Flex>("dia-tiny", "dia-tiny", ModelOptions::default(), &device);
    assert_within(&diffs, 1e-4, "flex, kernels off");
    check_greedy_cases::<Flex>("dia-tiny", "dia-tiny", usize::MAX, Host, &device);
    check_greedy_cases::<Flex>("dia-tiny-orig", "dia-tiny-orig", usize::MAX, Host, &device);
}
