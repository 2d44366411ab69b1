//! Converted checkpoints (`dia_model::checkpoint::converted`): a checkpoint converted for each
//! weight storage computes exactly what its source loaded with that storage computes, on Flex
//! (which takes its tiles as they are) and on NdArray (which puts them back in `[in, out]`;
//! f32, int8 and w8a8, the storages it has); a
//! checkpoint of another layout version, a storage other than its own, an occupied output
//! directory and a converted source are refused with errors that say so.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;

use burn::tensor::DType;
use dia_model::checkpoint::converted::{self, LAYOUT_VERSION};
use dia_model::{
    CheckpointFiles, DiaBackend, DiaModel, GenerationConfig, GenerationRequest, ModelOptions,
    WeightStorage, generate,
};

use crate::common::layers::model_layer_diffs;
use crate::common::*;

const STORAGES: [WeightStorage; 5] = [
    WeightStorage::F32,
    WeightStorage::F16,
    WeightStorage::BF16,
    WeightStorage::Int8,
    WeightStorage::W8A8,
];

fn options(storage: WeightStorage) -> ModelOptions {
    ModelOptions {
        weights: Some(storage),
        ..ModelOptions::default()
    }
}

/// `fixture_name` converted with `storage` on Flex into `dir`.
fn convert_into(
    fixture_name: &str,
    storage: WeightStorage,
    dir: &Path,
) -> converted::ConvertSummary {
    let files = CheckpointFiles::in_dir(&fixture(fixture_name)).unwrap();
    converted::convert::<Flex>(
        &files,
        options(storage),
        fixture_name,
        dir,
        &Default::default(),
    )
    .unwrap()
}

/// Sampled codes (temperature 1, so every logit matters) of two requests.
fn sampled_codes<B: DiaBackend>(model: &DiaModel<B>) -> Vec<Vec<Vec<u32>>> {
    let requests =
        ["[S1] Converted weights.", "[S2] Load in seconds."].map(|text| GenerationRequest {
            text: text.into(),
            audio_prompt: None,
        });
    let config = GenerationConfig {
        max_tokens: Some(40),
        temperature: 1.0,
        seed: 7,
        ..GenerationConfig::default()
    };
    generate(model, &requests, &config, |_| ControlFlow::Continue(()))
        .unwrap()
        .into_iter()
        .map(|out| out.codes)
        .collect()
}

/// Layer outputs (bitwise) and sampled codes of the converted checkpoint equal its source's.
fn assert_same_model<B: DiaBackend>(
    fixture_name: &str,
    dir: &Path,
    storage: WeightStorage,
    device: &B::Device,
) {
    let label = format!("{fixture_name} {storage} on {}", std::any::type_name::<B>());
    let source = DiaModel::<B>::load(&fixture(fixture_name), options(storage), device).unwrap();
    // No weight storage asked: the converted checkpoint's own.
    let converted = DiaModel::<B>::load(dir, ModelOptions::default(), device).unwrap();
    let source_diffs = model_layer_diffs(&source, fixture_name, &label, device);
    let converted_diffs = model_layer_diffs(&converted, fixture_name, &label, device);
    for ((name, want), (_, got)) in source_diffs.iter().zip(&converted_diffs) {
        assert!(want.is_finite(), "{label}: {name} is {want}");
        assert_eq!(got.to_bits(), want.to_bits(), "{label}: {name}");
    }
    let codes = sampled_codes(&converted);
    assert!(codes.iter().all(|c| !c.is_empty()), "{label}: no codes");
    assert_eq!(codes, sampled_codes(&source), "{label}: sampled codes");
}

#[test]
fn converted_checkpoints_compute_what_their_source_computes() {
    for fixture_name in ["dia-tiny", "dia-tiny-orig"] {
        for storage in STORAGES {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("converted");
            let summary = convert_into(fixture_name, storage, &out);
            assert_eq!(summary.converted.storage, storage);
            assert_eq!(
                summary.bytes,
                std::fs::metadata(&summary.weights).unwrap().len()
            );
            assert!(out.join("config.json").is_file());
            assert_same_model::<Flex>(fixture_name, &out, storage, &Default::default());
            // NdArray stores floats in f32 only.
            if matches!(storage.float_dtype(), None | Some(DType::F32)) {
                assert_same_model::<NdArray>(fixture_name, &out, storage, &Default::default());
            }
        }
    }
}

/// Int8 weights take about a quarter of f32's bytes, bf16 half.
#[test]
fn converted_files_shrink_with_the_storage() {
    let dir = tempfile::tempdir().unwrap();
    let size = |storage: WeightStorage| {
        convert_into("dia-tiny", storage, &dir.path().join(storage.name())).bytes as f64
    };
    let f32_bytes = size(WeightStorage::F32);
    assert!(size(WeightStorage::BF16) < 0.75 * f32_bytes);
    assert!(size(WeightStorage::Int8) < 0.6 * f32_bytes);
}

#[test]
fn a_converted_checkpoint_refuses_another_storage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("int8");
    convert_into("dia-tiny", WeightStorage::Int8, &out);
    let err = DiaModel::<Flex>::load(&out, options(WeightStorage::F32), &Default::default())
        .expect_err("f32 asked of an int8 checkpoint")
        .to_string();
    assert!(err.contains("`int8`") && err.contains("`f32`"), "{err}");
    // The same storage asked explicitly loads.
    DiaModel::<Flex>::load(&out, options(WeightStorage::Int8), &Default::default()).unwrap();
}

/// A file of another layout version (or none) is refused, never misread.
#[test]
fn another_layout_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w8a8");
    let summary = convert_into("dia-tiny", WeightStorage::W8A8, &out);
    let bytes = std::fs::read(&summary.weights).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap();
    assert_eq!(metadata["layout"], LAYOUT_VERSION);
    metadata.insert("layout".into(), "0".into());
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<_> = tensors.tensors();
    safetensors::serialize_to_file(views, Some(metadata), &summary.weights).unwrap();
    let err = DiaModel::<Flex>::load(&out, ModelOptions::default(), &Default::default())
        .expect_err("layout 0 refused")
        .to_string();
    assert!(
        err.contains("layout version 0") && err.contains("convert"),
        "{err}"
    );
}

/// A tensor of another shape than the model makes (here a weight's tiles, reshaped) is refused
/// with an error that names it, never read into the wrong places.
#[test]
fn a_tensor_of_another_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w8a8");
    let summary = convert_into("dia-tiny", WeightStorage::W8A8, &out);
    let bytes = std::fs::read(&summary.weights).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<_> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| match name.ends_with(".tiles.int8") {
            true => {
                let [rows, cols] = [view.shape()[0], view.shape()[1]];
                let shape = vec![rows * 2, cols / 2];
                let reshaped =
                    safetensors::tensor::TensorView::new(view.dtype(), shape, view.data());
                (name, reshaped.unwrap())
            }
            false => (name, view),
        })
        .collect();
    safetensors::serialize_to_file(views, metadata, &summary.weights).unwrap();
    let err = DiaModel::<Flex>::load(&out, ModelOptions::default(), &Default::default())
        .expect_err("a reshaped tile tensor")
        .to_string();
    assert!(
        err.contains(".tiles.int8") && err.contains("has shape"),
        "{err}"
    );
}

/// Converting never overwrites: an occupied directory and a converted source are refused, and
/// the files there are left as they were.
#[test]
fn convert_refuses_to_overwrite_or_reconvert() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f32");
    let summary = convert_into("dia-tiny", WeightStorage::F32, &out);
    let before = std::fs::read(&summary.weights).unwrap();
    let files = CheckpointFiles::in_dir(&fixture("dia-tiny")).unwrap();
    let opts = options(WeightStorage::Int8);
    let err = converted::convert::<Flex>(&files, opts, "dia-tiny", &out, &Default::default())
        .expect_err("an occupied directory")
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&summary.weights).unwrap(), before);
    let source = CheckpointFiles::in_dir(&out).unwrap();
    let again = dir.path().join("again");
    let err = converted::convert::<Flex>(&source, opts, "f32", &again, &Default::default())
        .expect_err("a converted source")
        .to_string();
    assert!(err.contains("already a converted checkpoint"), "{err}");
    assert!(!again.join("model.safetensors").exists());
}

/// Embeddings are stored in the compute dtype of the conversion and cast at load to the one
/// asked for: a bf16 conversion loads and runs in f32.
#[test]
fn converted_embeddings_follow_the_compute_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bf16");
    let files = CheckpointFiles::in_dir(&fixture("dia-tiny")).unwrap();
    let opts = ModelOptions {
        dtype: DType::BF16,
        ..ModelOptions::default()
    };
    converted::convert::<Flex>(&files, opts, "dia-tiny", &out, &Default::default()).unwrap();
    let model = DiaModel::<Flex>::load(&out, ModelOptions::default(), &Default::default()).unwrap();
    let codes = sampled_codes(&model);
    assert!(codes.iter().all(|c| !c.is_empty()));
}
