//! The model on burn's wgpu backend (not autotuned), as CI runs it on lavapipe, Mesa's software
//! Vulkan driver: f32 reproduces the reference's layers and greedy codes; f16 stays within a
//! measured tolerance of them and runs through.
#![cfg(feature = "wgpu")]

mod common;
#[cfg(feature = "gpu-check")]
mod gpu_check;
mod kernels;

use std::ops::ControlFlow;

use burn::backend::wgpu::WgpuDevice;
use burn::tensor::DType;
use common::batching::{Interventions, group_logits_diff, run, schedule, solo};
use common::greedy::{case_inputs, check_greedy_cases, golden_cases};
use common::layers::{Diffs, INT8_BOUND, assert_within, layer_diffs};
use common::sites::{check_device_sampling_is_seeded, check_device_stops_like_host};
use dia_model::SamplingSite::{Auto, Host};
use dia_model::generation::DEFAULT_READ_BACK;
use dia_model::model::TextBatch;
use dia_model::tokenizer::encode_text;
use dia_model::{DiaModel, ModelOptions, WeightStorage, generate};

/// `burn::backend::Wgpu`: the CubeCL wgpu runtime behind Burn's kernel fusion, as dia-infer runs.
type Wgpu = burn::backend::Wgpu<f32>;

/// f32 on the GPU path (other kernels, other summation orders) against the reference; measured
/// on lavapipe with the CubeCL kernels: encoder output 4.3e-6, prefill logits 1.2e-5, step
/// logits 8.6e-6 (Burn's ops alone: 3.0e-6, 1.1e-5, 6.7e-6).
const F32_TOL: f32 = 1e-3;

/// f16 weights and activations (norms, RoPE and logits in f32): measured on lavapipe with the
/// CubeCL kernels, prefill logits 3.66e-2 and step logits 1.81e-2 off the reference (encoder
/// output 1.17e-2; Burn's ops alone: 4.27e-2, 2.14e-2, 1.17e-2), for logits of magnitude ~1;
/// f16 keeps about three significant digits per layer.
const F16_LOGITS_TOL: f32 = 0.1;

/// A grouped decoder pass (continuous batching) against each item's pass alone: the CubeCL
/// decode kernels are batch-invariant (`kernels::kernels_are_batch_invariant`), but the
/// prefill's projections are Burn's matmul, whose tiles differ with the row count, so the last
/// bits may differ; measured on lavapipe: 0.
const GROUPED_LOGITS_TOL: f32 = 1e-5;

/// Golden cases whose greedy codes are compared (the "first two").
const GREEDY_CASES: usize = 2;

/// Golden cases compared with the device choosing the tokens: the first two and the batch.
const DEVICE_GREEDY_CASES: usize = 3;

fn diff(diffs: &Diffs, name: &str) -> f32 {
    diffs.iter().find(|(n, _)| *n == name).expect(name).1
}

fn f16_options() -> ModelOptions {
    ModelOptions {
        dtype: DType::F16,
        ..ModelOptions::default()
    }
}

#[test]
fn f32_layers_match_reference() {
    let diffs = layer_diffs::<Wgpu>(
        "dia-tiny",
        "dia-tiny",
        ModelOptions::default(),
        &WgpuDevice::default(),
    );
    eprintln!("wgpu f32 dia-tiny: {diffs:?}");
    assert_within(&diffs, F32_TOL, "wgpu f32 dia-tiny");
}

#[test]
fn f32_greedy_codes_match_reference() {
    let device = WgpuDevice::default();
    check_greedy_cases::<Wgpu>("dia-tiny", "dia-tiny", GREEDY_CASES, Host, &device);
}

/// The device path (wgpu's default): greedy codes, EOS in mid-interval and a batch with a
/// prompt as the reference's; a stop in mid-interval as the host's; seeded draws that repeat.
#[test]
fn f32_greedy_codes_match_reference_sampling_on_the_device() {
    let device = WgpuDevice::default();
    check_greedy_cases::<Wgpu>("dia-tiny", "dia-tiny", DEVICE_GREEDY_CASES, Auto, &device);
    let model = DiaModel::<Wgpu>::load(
        &common::fixture("dia-tiny"),
        ModelOptions::default(),
        &device,
    )
    .unwrap();
    check_device_stops_like_host(&model, DEFAULT_READ_BACK);
    check_device_sampling_is_seeded(&model, DEFAULT_READ_BACK);
}

#[test]
fn f16_logits_close_to_reference() {
    let diffs = layer_diffs::<Wgpu>(
        "dia-tiny",
        "dia-tiny",
        f16_options(),
        &WgpuDevice::default(),
    );
    eprintln!("wgpu f16 dia-tiny: {diffs:?}");
    for logits in ["prefill_logits", "step_logits"] {
        let d = diff(&diffs, logits);
        assert!(d < F16_LOGITS_TOL, "wgpu f16: {logits} differ by {d}");
    }
}

/// Int8 weights (f32 activations): the projection kernel reads the int8 values as packed words
/// (WGSL has no 8-bit type, so Burn's own int8 cast does not compile there), within the bound
/// measured on the CPU backends.
#[test]
fn int8_weights_within_measured_bound() {
    let options = ModelOptions {
        weights: Some(WeightStorage::Int8),
        ..ModelOptions::default()
    };
    let diffs = layer_diffs::<Wgpu>("dia-tiny", "dia-tiny", options, &WgpuDevice::default());
    eprintln!("wgpu int8 dia-tiny: {diffs:?}");
    assert_within(&diffs, INT8_BOUND, "wgpu int8");
}

/// The greedy runs of the first golden cases complete in f16 with well-formed codes (f16 may
/// pick other codes than f32), fused, one encoder pass after another in one process.
#[test]
fn f16_greedy_runs_complete() {
    let device = WgpuDevice::default();
    let model =
        DiaModel::<Wgpu>::load(&common::fixture("dia-tiny"), f16_options(), &device).unwrap();
    for (index, case) in golden_cases("dia-tiny", GREEDY_CASES).iter().enumerate() {
        let (requests, config) = case_inputs("dia-tiny", case, index);
        let out = generate(&model, &requests, &config, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(
            out.len(),
            requests.len(),
            "case {index}: one output per request"
        );
        for (item, got) in out.iter().enumerate() {
            assert!(!got.codes.is_empty(), "case {index} item {item}: no frames");
            let well_formed = got
                .codes
                .iter()
                .all(|f| f.len() == 9 && f.iter().all(|&c| c <= 1023));
            assert!(well_formed, "case {index} item {item}: malformed frame");
        }
    }
}

/// Continuous batching on the GPU path: a grouped pass stays within [`GROUPED_LOGITS_TOL`] of
/// each item alone, and greedy items joining a running batch get their solo codes.
#[test]
fn continuous_batching_matches_solo_runs() {
    let device = WgpuDevice::default();
    let diff = group_logits_diff::<Wgpu>("dia-tiny", &device);
    eprintln!("wgpu f32 grouped pass vs alone: {diff:e}");
    assert!(
        diff <= GROUPED_LOGITS_TOL,
        "grouped logits differ by {diff}"
    );
    let model = DiaModel::<Wgpu>::load(
        &common::fixture("dia-tiny"),
        ModelOptions::default(),
        &device,
    )
    .unwrap();
    let greedy: Vec<_> = schedule()
        .into_iter()
        .filter(|item| item.config.temperature == 0.0)
        .collect();
    let (got, _) = run(&model, &greedy, 2, Interventions::default());
    for (i, (item, got)) in greedy.iter().zip(&got).enumerate() {
        assert_eq!(got, &solo(&model, item), "item {i}");
    }
}

/// Two f16 encoder passes in one process under fusion give the same output. Burn 0.21's fusion
/// used to panic on the second (a cached fused-reduce plan for the RMSNorm's f16 → f32 cast);
/// the norm now routes around it.
#[test]
fn f16_fused_encoder_runs_twice() {
    let device = WgpuDevice::default();
    let model =
        DiaModel::<Wgpu>::load(&common::fixture("dia-tiny"), f16_options(), &device).unwrap();
    let limit = model.config.encoder.max_position_embeddings;
    let text = encode_text("[S1] Hello there. [S2] Hi.", limit);
    let batch = TextBatch::<Wgpu>::new(&[text.tokens], &device);
    let first = model.encode(&batch).into_data();
    let second = model.encode(&batch).into_data();
    let values = first.clone().convert::<f32>().to_vec::<f32>().unwrap();
    assert!(
        values.iter().all(|v| v.is_finite()),
        "non-finite encoder output"
    );
    first.assert_eq(&second, true);
}
