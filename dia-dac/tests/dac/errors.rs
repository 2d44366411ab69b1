//! Bad checkpoints and bad inputs give errors that name the file, key, shape or code, never panics.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use dia_dac::{Dac, DacError};

use crate::common::{Flex, fixture, scratch_dir, tiny_tensors, write_tensors};

fn load(path: &Path) -> Result<Dac<Flex>, DacError> {
    Dac::<Flex>::load(path, &Default::default())
}

/// The error loading `path` gives; its message must name `named` (the file at fault).
fn load_error(path: &Path, named: &Path) -> DacError {
    let error = load(path).expect_err("loading must fail");
    let message = error.to_string();
    assert!(message.contains(&*named.to_string_lossy()), "{message}");
    error
}

/// The first half of a fixture file, written to a scratch directory.
fn truncated(test: &str, relative: &str) -> PathBuf {
    let bytes = std::fs::read(fixture(relative)).expect("fixture");
    let path = scratch_dir(test).join(Path::new(relative).file_name().expect("file name"));
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write truncated copy");
    path
}

#[test]
fn truncated_files_are_checkpoint_errors() {
    for (test, relative) in [
        ("truncated-pth", "dac-tiny/weights.pth"),
        ("truncated-safetensors", "dac-tiny/weights.safetensors"),
    ] {
        let path = truncated(test, relative);
        let error = load_error(&path, &path);
        assert!(
            matches!(&error, DacError::Checkpoint { file, .. } if *file == path),
            "{error:?}"
        );
    }
}

/// The tiny `.pth` fixture rewritten entry by entry: `edit` gets each entry's name and bytes
/// and returns what to write in its place, or `None` to leave the entry out.
fn rewritten_pth(test: &str, edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> PathBuf {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(
        std::fs::File::open(fixture("dac-tiny/weights.pth")).expect("fixture"),
    )
    .expect("fixture zip");
    let path = scratch_dir(test).join("weights.pth");
    let mut out = zip::ZipWriter::new(std::fs::File::create(&path).expect("create"));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read entry");
        if let Some(bytes) = edit(&name, bytes) {
            out.start_file(name, stored).expect("start entry");
            out.write_all(&bytes).expect("write entry");
        }
    }
    out.finish().expect("finish zip");
    path
}

/// Records that are short or missing, or a tensor reaching past its storage, are named before
/// anything is read (the pickle reader would fill the gap with zeros).
#[test]
fn damaged_pth_records_are_named() {
    let unchanged = rewritten_pth("pth-unchanged", |_, bytes| Some(bytes));
    load(&unchanged).expect("a faithful copy loads");
    let short = rewritten_pth("pth-short", |name, mut bytes| {
        if name.ends_with("/data/3") {
            bytes.truncate(bytes.len() - 4);
        }
        Some(bytes)
    });
    let missing = rewritten_pth("pth-missing", |name, bytes| {
        (!name.ends_with("/data/5")).then_some(bytes)
    });
    // The first tensor (`encoder.block.0.bias`, 8 elements of an 8-element storage) moved
    // one element along: its last element would come from past the storage.
    let shifted = rewritten_pth("pth-shifted", |name, bytes| {
        if !name.ends_with("data.pkl") {
            return Some(bytes);
        }
        let (from, to) = (b"QK\x00K\x08\x85", b"QK\x01K\x08\x85");
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("the first tensor's offset and size");
        let mut bytes = bytes;
        bytes[at..at + to.len()].copy_from_slice(to);
        Some(bytes)
    });
    for (path, wanted) in [
        (&short, "record data/3 holds"),
        (&missing, "record data/5 is missing"),
        (
            &shifted,
            "tensor `encoder.block.0.bias`: shape [8] at offset 1 needs 9 elements",
        ),
    ] {
        let error = load_error(path, path);
        assert!(error.to_string().contains(wanted), "{error}");
        assert!(matches!(&error, DacError::Checkpoint { .. }), "{error:?}");
    }
}

#[test]
fn missing_key_is_named() {
    let mut tensors = tiny_tensors();
    let key = "quantizer.quantizers.3.out_proj.weight_v";
    tensors.remove(key).expect("the key exists");
    let path = scratch_dir("missing-key").join("weights.safetensors");
    write_tensors(&path, &tensors);
    let error = load_error(&path, &path);
    assert!(error.to_string().contains(key), "{error}");
    assert!(
        matches!(&error, DacError::MissingTensor { file, key: k } if *file == path && k == key),
        "{error:?}"
    );
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let mut tensors = tiny_tensors();
    let key = "decoder.model.1.block.0.alpha";
    let entry = tensors.get_mut(key).expect("alpha exists");
    assert_eq!(entry.shape, vec![1, 32, 1]);
    entry.shape = vec![1, 31, 1];
    entry.bytes.truncate(31 * 4);
    let path = scratch_dir("wrong-shape").join("weights.safetensors");
    write_tensors(&path, &tensors);
    let error = load_error(&path, &path);
    assert!(error.to_string().contains(key), "{error}");
    assert!(
        matches!(&error, DacError::ShapeMismatch { file, key: k, expected, found }
            if *file == path && k == key && expected == &[1, 32, 1] && found == &[1, 31, 1]),
        "{error:?}"
    );
}

#[test]
fn unusable_paths_are_checkpoint_errors() {
    let dir = scratch_dir("unusable");
    let garbage = dir.join("weights.bin");
    std::fs::write(&garbage, b"definitely not a checkpoint").expect("write");
    let absent = dir.join("absent.pth");
    // A transformers directory without its config.json.
    let hf = dir.join("hf");
    std::fs::create_dir(&hf).expect("mkdir");
    std::fs::copy(
        fixture("dac-tiny-hf/model.safetensors"),
        hf.join("model.safetensors"),
    )
    .expect("copy");
    for (path, named) in [
        (&garbage, garbage.clone()),
        (&absent, absent.clone()),
        (&hf, hf.join("config.json")),
    ] {
        let error = load_error(path, &named);
        assert!(
            matches!(&error, DacError::Checkpoint { file, .. } if *file == named),
            "{error:?}"
        );
    }
}

#[test]
fn bad_codes_and_audio_are_rejected() {
    let device = Default::default();
    let dac = load(&fixture("dac-tiny/weights.pth")).expect("tiny codec");
    let codes = |value: i64, codebooks: usize| {
        let mut values = vec![7i64; codebooks * 6];
        values[2 * 6 + 5] = value; // codebook 2, frame 5
        Tensor::<Flex, 1, Int>::from_ints(values.as_slice(), &device).reshape([1, codebooks, 6])
    };
    for value in [1024, -1, 1026] {
        for result in [
            dac.decode(codes(value, 9)).map(drop),
            dac.decode_latent(codes(value, 9)).map(drop),
        ] {
            match result {
                Err(DacError::CodeOutOfRange {
                    value: v,
                    batch: 0,
                    codebook: 2,
                    frame: 5,
                    codebook_size: 1024,
                }) => assert_eq!(v, value),
                other => panic!("code {value}: expected CodeOutOfRange, got {other:?}"),
            }
        }
    }
    assert!(matches!(
        dac.decode(codes(0, 10)),
        Err(DacError::InputShape { what: "codes", .. })
    ));
    // Time-major frames: frame 1, codebook 3 (a u32 too large for an i32 backend integer too).
    for value in [1024u32, u32::MAX] {
        let mut frames = [[0u32; 9]; 2];
        frames[1][3] = value;
        assert!(matches!(
            dac.frames_to_codes(&frames),
            Err(DacError::CodeOutOfRange { value: v, batch: 0, codebook: 3, frame: 1, .. }) if v == i64::from(value)
        ));
    }
    // The windowed decode names a bad frame by its index in the whole input, past its first step.
    let mut frames = vec![[0u32; 9]; 300];
    frames[200][4] = 1024;
    assert!(matches!(
        dac.decode_frames(&frames),
        Err(DacError::CodeOutOfRange {
            value: 1024,
            codebook: 4,
            frame: 200,
            ..
        })
    ));
    assert!(matches!(
        dac.frames_to_codes(&[vec![0u32; 8]]),
        Err(DacError::InputShape { what: "frames", .. })
    ));
    let stereo = Tensor::<Flex, 3>::zeros([1, 2, 100], &device);
    assert!(matches!(
        dac.encode(stereo),
        Err(DacError::InputShape { what: "audio", .. })
    ));
    assert!(matches!(
        dac.encode_samples(&[]),
        Err(DacError::InputShape { what: "audio", .. })
    ));
}
