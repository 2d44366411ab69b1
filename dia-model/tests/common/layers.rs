//! Layer-level outputs of a fixture model against the reference's golden tensors.

use dia_model::model::TextBatch;
use dia_model::{DiaBackend, DiaModel, ModelOptions};

use super::{Golden, fixture, golden_json, int_tensor, max_abs_diff, values};

/// Largest absolute difference from the golden tensor, by golden tensor name.
pub type Diffs = Vec<(&'static str, f32)>;

/// Int8 weights, f32 activations, against the f32 goldens (2026-11-22): 0.13 encoder, 0.47
/// prefill logits, 0.17 step logits, the same on Flex's kernel and NdArray's dequantizing path.
pub const INT8_BOUND: f32 = 0.71;

/// Int8 weights and int8 activations against the f32 goldens (2026-12-07): 0.14 encoder, 0.67
/// prefill logits, 0.35 step logits, the same on Flex's integer kernel and NdArray's f32 path.
pub const W8A8_BOUND: f32 = 1.0;

/// Encoder output, cross-attention keys (original version only), prefill logits and the
/// logits of one cached step of `model_dir` loaded with `options`, against `golden_dir`.
pub fn layer_diffs<B: DiaBackend>(
    model_dir: &str,
    golden_dir: &str,
    options: ModelOptions,
    device: &B::Device,
) -> Diffs {
    let label = format!("{model_dir} {options:?}");
    let model = DiaModel::<B>::load(&fixture(model_dir), options, device).unwrap();
    model_layer_diffs(&model, golden_dir, &label, device)
}

/// [`layer_diffs`] of a model already loaded (`label` names it in failures).
pub fn model_layer_diffs<B: DiaBackend>(
    model: &DiaModel<B>,
    golden_dir: &str,
    label: &str,
    device: &B::Device,
) -> Diffs {
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
    let mut diffs = Diffs::new();

    // Golden rows are padded to the reference's text length: compare the `len` valid ones.
    let (want, shape) = golden.get("encoder_out");
    let [rows, width] = [shape[0], shape[2]];
    let want_valid: Vec<f32> = (0..rows)
        .flat_map(|r| want[r * shape[1] * width..(r * shape[1] + len) * width].to_vec())
        .collect();
    diffs.push((
        "encoder_out",
        max_abs_diff(&values(enc.clone()), &want_valid),
    ));

    let mut state = model.decoder_state(enc, &batch, 16);
    if golden_dir == "dia-tiny-orig" {
        let (want, shape) = golden.get("cross_k_layer0");
        let [r, h, s, d] = [shape[0], shape[1], shape[2], shape[3]];
        let got = values(state.cross_attn[0].k.clone());
        let want_valid: Vec<f32> = (0..r * h)
            .flat_map(|rh| want[rh * s * d..(rh * s + len) * d].to_vec())
            .collect();
        diffs.push(("cross_k_layer0", max_abs_diff(&got, &want_valid)));
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
        diffs.push((logits_key, max_abs_diff(&values(logits), &want)));
    }
    diffs
}

/// Asserts that every difference is below `tol`.
pub fn assert_within(diffs: &Diffs, tol: f32, label: &str) {
    for (name, diff) in diffs {
        assert!(*diff < tol, "{label}: {name} differs by {diff}");
    }
}
