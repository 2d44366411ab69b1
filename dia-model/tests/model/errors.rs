//! Bad checkpoints give errors naming the file and tensor, never panics.

use std::path::Path;

use dia_model::{DiaError, DiaModel, ModelOptions};
use dia_test_support::{Tensors, read_tensors, write_tensors};
use safetensors::Dtype;

use crate::common::{Flex, fixture};

/// A copy of `dia-tiny` in a temp dir whose tensors `edit` may change.
fn bad_checkpoint(edit: impl FnOnce(&mut Tensors)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("dia-tiny");
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let mut tensors = read_tensors(&src.join("model.safetensors"));
    edit(&mut tensors);
    write_tensors(&dir.path().join("model.safetensors"), &tensors);
    dir
}

/// A copy of `dia-tiny` whose `config.json` `edit` changes.
fn with_config_value(edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = bad_checkpoint(|_| {});
    let path = dir.path().join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
    dir
}

fn load_err(dir: &Path) -> DiaError {
    DiaModel::<Flex>::load(dir, ModelOptions::default(), &Default::default()).unwrap_err()
}

#[test]
fn missing_tensor_names_file_and_key() {
    let dir = bad_checkpoint(|t| {
        t.remove("decoder.layers.1.mlp.wo.weight");
    });
    let e = load_err(dir.path());
    assert!(matches!(e, DiaError::MissingTensor { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("decoder.layers.1.mlp.wo.weight"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_names_the_tensor_and_both_shapes() {
    let dir = bad_checkpoint(|t| {
        let entry = t.get_mut("encoder.norm.weight").unwrap();
        entry.shape = vec![24];
        entry.bytes.truncate(24 * 4);
    });
    let msg = load_err(dir.path()).to_string();
    assert!(
        msg.contains("encoder.norm.weight") && msg.contains("[24]") && msg.contains("[48]"),
        "{msg}"
    );
}

#[test]
fn wrong_dtype_is_rejected() {
    let dir = bad_checkpoint(|t| {
        let entry = t.get_mut("encoder.norm.weight").unwrap();
        entry.dtype = Dtype::I32;
    });
    let msg = load_err(dir.path()).to_string();
    assert!(
        msg.contains("encoder.norm.weight") && msg.contains("I32"),
        "{msg}"
    );
}

#[test]
fn truncated_file_is_corrupt_not_a_panic() {
    let dir = bad_checkpoint(|_| {});
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(dir.path());
    assert!(matches!(e, DiaError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("model.safetensors"));
}

#[test]
fn garbage_file_is_corrupt() {
    let dir = bad_checkpoint(|_| {});
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file at all",
    )
    .unwrap();
    assert!(matches!(load_err(dir.path()), DiaError::Corrupt { .. }));
}

#[test]
fn config_with_more_layers_than_the_weights_reports_the_missing_layer() {
    let dir = with_config_value(|v| v["decoder_config"]["num_hidden_layers"] = 3.into());
    let msg = load_err(dir.path()).to_string();
    assert!(msg.contains("missing tensor `decoder.layers.2."), "{msg}");
}

#[test]
fn config_with_fewer_layers_than_the_weights_reports_the_extra_tensor() {
    let dir = with_config_value(|v| v["encoder_config"]["num_hidden_layers"] = 1.into());
    let e = load_err(dir.path());
    assert!(matches!(e, DiaError::UnexpectedTensor { .. }), "{e}");
    assert!(e.to_string().contains("encoder.layers.1."), "{e}");
}

#[test]
fn config_width_contradicting_weights_is_a_shape_error() {
    let dir = with_config_value(|v| v["decoder_config"]["intermediate_size"] = 64.into());
    assert!(matches!(
        load_err(dir.path()),
        DiaError::ShapeMismatch { .. }
    ));
}

#[test]
fn missing_config_and_bad_json_are_clear() {
    let dir = bad_checkpoint(|_| {});
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let e = load_err(dir.path());
    assert!(
        matches!(e, DiaError::Config { .. }) && e.to_string().contains("config.json"),
        "{e}"
    );
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(load_err(dir.path()).to_string().contains("no config.json"));
    assert!(
        load_err(&dir.path().join("nope"))
            .to_string()
            .contains("not a directory")
    );
}

#[test]
fn shard_listed_in_index_but_absent_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("dia-tiny-hf");
    for f in [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let msg = load_err(dir.path()).to_string();
    assert!(msg.contains("model-00002-of-00002.safetensors"), "{msg}");
}
