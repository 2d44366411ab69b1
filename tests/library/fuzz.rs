//! Mutation fuzzing of the checkpoint readers: byte flips, truncations, splices and forged
//! length fields of the fixture files must load or fail with an error, never panic.
//!
//! `cargo test` runs a short fixed set per reader. A long run, with fresh seeds for as long as
//! asked per reader: `DIA_FUZZ_SECONDS=600 cargo test --release --test library fuzz:: -- --ignored`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::asset;
use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::{DiaModel, ModelOptions};
use dia_test_support::mutate::{Rng, long_run, mutate};

type B = burn_flex::Flex;

/// One reader under test: copies `fixture` into a fresh directory with `file` mutated, then
/// `load`s the directory.
struct Target {
    name: &'static str,
    fixture: &'static str,
    file: &'static str,
    load: fn(&Path) -> Result<(), String>,
}

fn load_model(dir: &Path) -> Result<(), String> {
    let device = Default::default();
    DiaModel::<B>::load(dir, ModelOptions::default(), &device)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn load_codec_file(file: &Path) -> Result<(), String> {
    Dac::<B>::load(file, &Default::default())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn load_dac_pth(dir: &Path) -> Result<(), String> {
    load_codec_file(&dir.join("weights.pth"))
}

fn load_dac_safetensors(dir: &Path) -> Result<(), String> {
    load_codec_file(&dir.join("weights.safetensors"))
}

fn load_dac_dir(dir: &Path) -> Result<(), String> {
    load_codec_file(dir)
}

const TARGETS: [Target; 7] = [
    Target {
        name: "model safetensors",
        fixture: "dia-tiny",
        file: "model.safetensors",
        load: load_model,
    },
    Target {
        name: "model config",
        fixture: "dia-tiny",
        file: "config.json",
        load: load_model,
    },
    Target {
        name: "shard index",
        fixture: "dia-tiny-hf",
        file: "model.safetensors.index.json",
        load: load_model,
    },
    Target {
        name: "shard",
        fixture: "dia-tiny-hf",
        file: "model-00001-of-00002.safetensors",
        load: load_model,
    },
    Target {
        name: "codec .pth",
        fixture: "dac-tiny",
        file: "weights.pth",
        load: load_dac_pth,
    },
    Target {
        name: "codec safetensors",
        fixture: "dac-tiny",
        file: "weights.safetensors",
        load: load_dac_safetensors,
    },
    Target {
        name: "codec config",
        fixture: "dac-tiny-hf",
        file: "config.json",
        load: load_dac_dir,
    },
];

/// Mutates `target`'s file with seeds from `seed` until `done` says stop; panics (the test
/// failure) naming the first mutation that made a reader panic. Returns (loads, errors).
fn fuzz(target: &Target, seed: u64, mut done: impl FnMut(usize) -> bool) -> (usize, usize) {
    let original = std::fs::read(asset(target.fixture).join(target.file)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(asset(target.fixture)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != target.file
            && !entry.file_name().to_string_lossy().starts_with("golden")
        {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let mut rng = Rng(seed);
    let (mut runs, mut errors) = (0, 0);
    while !done(runs) {
        let (bytes, what) = mutate(&original, &mut rng);
        std::fs::write(dir.path().join(target.file), &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| (target.load)(dir.path()))) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                assert!(
                    !message.is_empty(),
                    "{}: empty error for {what}",
                    target.name
                );
                errors += 1;
            }
            Err(_) => panic!(
                "{}: the reader panicked on {what} (seed {seed}, run {runs})",
                target.name
            ),
        }
        runs += 1;
    }
    (runs, errors)
}

#[test]
fn mutated_checkpoints_load_or_fail_cleanly() {
    for (i, target) in TARGETS.iter().enumerate() {
        let (runs, errors) = fuzz(target, 1000 + i as u64, |runs| runs == 40);
        assert!(
            errors > 0,
            "{}: no mutation was rejected in {runs} runs",
            target.name
        );
    }
}

#[test]
#[ignore = "long run: set DIA_FUZZ_SECONDS"]
fn mutated_checkpoints_long_run() {
    let (seconds, seed) = long_run();
    for target in &TARGETS {
        let start = Instant::now();
        let (runs, errors) = fuzz(target, seed, |_| {
            start.elapsed() >= Duration::from_secs(seconds)
        });
        println!(
            "{}: {runs} mutations, {errors} rejected, 0 panics (seed {seed})",
            target.name
        );
    }
}
