//! Layer-level parity with the reference: encoder output, prefill logits, one cached step
//! and (original version) cross-attention keys, for every fixture, backend and switch.

use dia_model::{DiaBackend, ModelOptions};

use crate::common::layers::{assert_within, layer_diffs};
use crate::common::*;

const TOL: f32 = 1e-4;

/// (model dir, golden dir): `dia-tiny-hf` holds the same weights as `dia-tiny`.
const FIXTURES: [(&str, &str); 3] = [
    ("dia-tiny", "dia-tiny"),
    ("dia-tiny-hf", "dia-tiny"),
    ("dia-tiny-orig", "dia-tiny-orig"),
];

fn all_fixtures<B: DiaBackend>(device: &B::Device) {
    for (model_dir, golden_dir) in FIXTURES {
        for (rope_table, fused_qkv) in [(true, true), (false, false), (true, false)] {
            let options = ModelOptions {
                rope_table,
                fused_qkv,
                ..ModelOptions::default()
            };
            let diffs = layer_diffs::<B>(model_dir, golden_dir, options, device);
            assert_within(&diffs, TOL, &format!("{model_dir} {options:?}"));
        }
    }
}

#[test]
fn parity_flex() {
    all_fixtures::<Flex>(&Default::default());
}

#[test]
fn parity_ndarray() {
    all_fixtures::<NdArray>(&Default::default());
}
