//! The loader built for the default 44.1 kHz configuration expects exactly the tensors of the
//! released weights (`manifests/dac-44khz-keys.json`): names, shapes, nothing more or less.

use std::collections::BTreeMap;
use std::rc::Rc;

use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::DType;
use burn_store::TensorSnapshot;
use dia_dac::{Checkpoint, Dac, DacConfig, DacError};

use crate::common::Flex;

/// Names and shapes of the released weights, each backed by lazily made ones.
fn manifest_snapshots() -> BTreeMap<String, TensorSnapshot> {
    let manifest = dia_test_support::fixture_json("manifests/dac-44khz-keys.json");
    let shapes: BTreeMap<String, Vec<usize>> =
        serde_json::from_value(manifest["tensors"].clone()).expect("tensors: name → shape");
    let parameters: usize = shapes
        .values()
        .map(|shape| shape.iter().product::<usize>())
        .sum();
    assert_eq!(manifest["parameters"].as_u64(), Some(parameters as u64));
    shapes
        .into_iter()
        .map(|(key, shape)| {
            let numel = shape.iter().product();
            let make = shape.clone();
            let data = Rc::new(move || Ok(TensorData::new(vec![1.0f32; numel], make.clone())));
            let snapshot = TensorSnapshot::from_closure(
                data,
                DType::F32,
                shape.into(),
                vec![],
                vec![],
                ParamId::new(),
            );
            (key, snapshot)
        })
        .collect()
}

#[test]
fn default_loader_consumes_exactly_the_released_tensors() {
    let snapshots = manifest_snapshots();
    assert_eq!(snapshots.len(), 301);
    let checkpoint =
        Checkpoint::from_snapshots("dac-44khz-keys.json", snapshots, None).expect("opens");
    assert_eq!(
        checkpoint.config(),
        &DacConfig::default(),
        "config read off the shapes"
    );
    let dac = Dac::<Flex>::from_checkpoint(checkpoint, &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dac.config().hop_length(), 512);
    assert_eq!(
        dac.decoder_context_frames(),
        10,
        "the receptive field measured on the reference"
    );
}

#[test]
fn an_extra_tensor_is_rejected() {
    let mut snapshots = manifest_snapshots();
    let extra = snapshots["quantizer.quantizers.8.codebook.weight"].clone();
    snapshots.insert("quantizer.quantizers.8.codebook.extra".to_string(), extra);
    let checkpoint =
        Checkpoint::from_snapshots("dac-44khz-keys.json", snapshots, Some(DacConfig::default()))
            .expect("opens");
    match Dac::<Flex>::from_checkpoint(checkpoint, &Default::default()) {
        Err(DacError::UnexpectedTensor { key, .. }) => {
            assert_eq!(key, "quantizer.quantizers.8.codebook.extra")
        }
        other => panic!("expected UnexpectedTensor, got {:?}", other.err()),
    }
}
