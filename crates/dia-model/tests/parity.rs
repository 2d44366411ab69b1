//! Layer-level parity with the reference: encoder output, prefill logits, one cached step
//! and (original generation) cross-attention keys, for every fixture, backend and switch.

mod common;

use burn::tensor::backend::Backend;
use common::*;
use dia_model::{DiaModel, ModelOptions, TextBatch};

const TOL: f32 = 1e-4;

/// (model dir, golden dir): `dia-tiny-hf` holds the same weights as `dia-tiny`.
const FIXTURES: [(&str, &str); 3] = [
    ("dia-tiny", "dia-tiny"),
    ("dia-tiny-hf", "dia-tiny"),
    ("dia-tiny-orig", "dia-tiny-orig"),
];

fn check_fixture<B: Backend>(
    model_dir: &str,
    golden_dir: &str,
    options: ModelOptions,
    device: &B::Device,
) {
    let label = format!("{model_dir} {options:?}");
    let model = DiaModel::<B>::load(&fixture(model_dir), options, device).unwrap();
    let json = golden_json(golden_dir);
    let golden = Golden::open(golden_dir);
    let text: Vec<u32> = json["text_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let len = text.len();
    let batch = TextBatch::<B>::new(&[text], device);
    let enc = model.encode(&batch);

    let (want, shape) = golden.get("encoder_out");
    let [rows, width] = [shape[0], shape[2]];
    let got = values(enc.clone());
    let want_valid: Vec<f32> = (0..rows)
        .flat_map(|r| want[r * shape[1] * width..(r * shape[1] + len) * width].to_vec())
        .collect();
    let diff = max_abs_diff(&got, &want_valid);
    assert!(diff < TOL, "{label}: encoder_out differs by {diff}");

    let mut state = model.decoder_state(enc, &batch, 16);
    if golden_dir == "dia-tiny-orig" {
        let (want, shape) = golden.get("cross_k_layer0");
        let [r, h, s, d] = [shape[0], shape[1], shape[2], shape[3]];
        let got = values(state.cross_attn[0].k.clone());
        let want_valid: Vec<f32> = (0..r * h)
            .flat_map(|rh| want[rh * s * d..(rh * s + len) * d].to_vec())
            .collect();
        let diff = max_abs_diff(&got, &want_valid);
        assert!(diff < TOL, "{label}: cross_k_layer0 differs by {diff}");
    }

    for (tokens_key, logits_key, start) in [
        ("prefill_tokens", "prefill_logits", 0),
        ("step_tokens", "step_logits", 12),
    ] {
        let (tokens, tshape) = golden.get_int(tokens_key);
        let frames = tshape[1];
        let both_rows = [tokens.clone(), tokens].concat();
        let input = int_tensor::<B, 3>(both_rows, [2, frames, tshape[2]], device);
        let logits = model.decode(input, start, &mut state);
        let (want, wshape) = golden.get(logits_key);
        assert_eq!(
            logits.dims().to_vec(),
            wshape,
            "{label}: {logits_key} shape"
        );
        let diff = max_abs_diff(&values(logits), &want);
        assert!(diff < TOL, "{label}: {logits_key} differs by {diff}");
    }
}

fn all_fixtures<B: Backend>(device: &B::Device) {
    for (model_dir, golden_dir) in FIXTURES {
        for (rope_table, fused_qkv) in [(true, true), (false, false), (true, false)] {
            let options = ModelOptions {
                rope_table,
                fused_qkv,
                ..ModelOptions::default()
            };
            check_fixture::<B>(model_dir, golden_dir, options, device);
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
