//! Checkpoints stored in f16 and bf16, and f16, bf16 and int8 weights on Flex (f32 accumulation in the decode kernel; norms, RoPE and
//! logits in f32) against the f32 reference: layer outputs within measured bounds. Greedy codes are
//! not compared: the tiny random-weight fixtures' top-1/top-2 margins fall below these errors
//! (×14 through CFG) from the first step, so any implementation at this precision may differ.

use burn::tensor::DType;
use dia_model::{ModelOptions, WeightStorage};
use dia_test_support::{read_tensors, write_tensors};
use half::{bf16, f16};
use safetensors::Dtype;

use crate::common::layers::{INT8_BOUND, W8A8_BOUND, assert_within, layer_diffs};
use crate::common::*;

/// Largest layer-output difference from the f32 golden tensors, measured on dia-tiny
/// (2026-11-22): f16 0.0073 encoder, 0.037 prefill logits, 0.021 step logits; bf16 0.064,
/// 0.24, 0.14. The bounds leave 1.5× room for other summation orders.
const F16_BOUND: f32 = 0.055;
const BF16_BOUND: f32 = 0.36;

fn options(dtype: DType) -> ModelOptions {
    ModelOptions {
        dtype,
        ..ModelOptions::default()
    }
}

#[test]
fn layer_outputs_within_measured_bounds() {
    for (dtype, bound) in [(DType::F16, F16_BOUND), (DType::BF16, BF16_BOUND)] {
        let diffs =
            layer_diffs::<Flex>("dia-tiny", "dia-tiny", options(dtype), &Default::default());
        assert_within(&diffs, bound, &format!("{dtype:?}"));
    }
}

/// Int8 weights (f32 activations), every projection quantized per output column: Flex's
/// kernel and the default dequantizing path (NdArray) both stay within the measured bound.
#[test]
fn int8_weights_within_measured_bound() {
    let options = ModelOptions {
        weights: Some(WeightStorage::Int8),
        ..ModelOptions::default()
    };
    let flex = layer_diffs::<Flex>("dia-tiny", "dia-tiny", options, &Default::default());
    assert_within(&flex, INT8_BOUND, "int8 flex");
    let ndarray = layer_diffs::<NdArray>("dia-tiny", "dia-tiny", options, &Default::default());
    assert_within(&ndarray, INT8_BOUND, "int8 ndarray");
}

/// Int8 weights times int8 activations (each projection's input rows quantized): Flex's exact
/// integer kernel and the default path (NdArray: the quantized rows times the dequantized
/// weight in f32) stay within the measured bound of the f32 goldens, and within float rounding
/// of each other (the same quantization, summed exactly or in f32).
#[test]
fn w8a8_within_measured_bound() {
    let options = ModelOptions {
        weights: Some(WeightStorage::W8A8),
        ..ModelOptions::default()
    };
    let flex = layer_diffs::<Flex>("dia-tiny", "dia-tiny", options, &Default::default());
    assert_within(&flex, W8A8_BOUND, "w8a8 flex");
    let ndarray = layer_diffs::<NdArray>("dia-tiny", "dia-tiny", options, &Default::default());
    assert_within(&ndarray, W8A8_BOUND, "w8a8 ndarray");
    for ((name, a), (_, b)) in flex.iter().zip(&ndarray) {
        assert!((a - b).abs() < 1e-4, "{name}: flex {a}, ndarray {b}");
    }
    let int8 = ModelOptions {
        weights: Some(WeightStorage::Int8),
        ..options
    };
    let weights_only = layer_diffs::<Flex>("dia-tiny", "dia-tiny", int8, &Default::default());
    assert!(
        flex.iter()
            .zip(&weights_only)
            .any(|((_, a), (_, b))| a != b),
        "the activations were quantized: {flex:?} vs {weights_only:?}"
    );
}

/// A copy of fixture `name` whose safetensors files store every f32 tensor as `dtype`.
fn stored_as(name: &str, dtype: Dtype) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        let out = dir.path().join(path.file_name().unwrap());
        if path.extension().is_none_or(|e| e != "safetensors") {
            std::fs::copy(&path, &out).unwrap();
            continue;
        }
        let mut tensors = read_tensors(&path);
        for tensor in tensors.values_mut().filter(|t| t.dtype == Dtype::F32) {
            tensor.bytes = tensor
                .bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .flat_map(|x| match dtype {
                    Dtype::F16 => f16::from_f32(x).to_le_bytes(),
                    _ => bf16::from_f32(x).to_le_bytes(),
                })
                .collect();
            tensor.dtype = dtype;
        }
        write_tensors(&out, &tensors);
    }
    dir
}

/// f16 and bf16 checkpoints, in the nari layout and the sharded transformers one, load into
/// f32 and stay within the bounds of computing in that dtype.
#[test]
fn half_precision_checkpoints_load_in_both_layouts() {
    for name in ["dia-tiny", "dia-tiny-hf"] {
        for (dtype, bound) in [(Dtype::F16, F16_BOUND), (Dtype::BF16, BF16_BOUND)] {
            let dir = stored_as(name, dtype);
            let path = dir.path().to_str().unwrap();
            let options = ModelOptions::default();
            let diffs = layer_diffs::<Flex>(path, "dia-tiny", options, &Default::default());
            let label = format!("{name} stored as {dtype:?}");
            assert_within(&diffs, bound, &label);
            assert!(
                diffs.iter().any(|(_, d)| *d > 1e-4),
                "{label}: the narrower weights were read: {diffs:?}"
            );
        }
    }
}
