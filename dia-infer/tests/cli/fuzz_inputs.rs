//! Mutation fuzzing of what `dia-infer` reads from the user: audio prompts (WAV), codes JSON and
//! batch JSONL. Every mutated file gives a result or a one-line `error: ...` with exit code 1:
//! never a panic (the hook's "internal error"), a crash or a hang.
//!
//! `cargo test` runs a short fixed set per input kind. A long run, with fresh seeds for as long as
//! asked per kind:
//! `DIA_FUZZ_SECONDS=600 cargo test -p dia-infer --test cli fuzz_inputs -- --ignored`.

use std::path::Path;
use std::process::Command;

use dia_test_support::fixture;
use dia_test_support::mutate::{Rng, long_run, mutate};

/// Mutations per input kind in `cargo test`.
const RUNS: usize = 24;

/// Runs `dia-infer` with `args` in `dir`; panics naming `what` unless it succeeded or failed
/// cleanly. Returns whether it failed.
fn run_clean(dir: &Path, args: &[&str], what: &str) -> bool {
    let o = Command::new(env!("CARGO_BIN_EXE_dia-infer"))
        .args(args)
        .current_dir(dir)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let code = o.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{what}: exit {code:?} (killed or panicked): {stderr}"
    );
    assert!(
        !stderr.contains("internal error") && !stderr.contains("panicked"),
        "{what}: {stderr}"
    );
    if code == Some(1) {
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        assert!(
            last.is_some_and(|l| l.starts_with("error: ")),
            "{what}: no error line in {stderr}"
        );
    }
    code == Some(1)
}

/// One input kind: the file it mutates and the command that reads it.
struct Target {
    name: &'static str,
    original: Vec<u8>,
    args: Vec<String>,
}

/// Writes mutations of the target's file (seeded by `seed`) and runs its command on each until
/// `done` says stop; returns (runs, clean failures).
fn fuzz(target: &Target, seed: u64, mut done: impl FnMut(usize) -> bool) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = target.args.iter().map(String::as_str).collect();
    let mut rng = Rng(seed);
    let (mut runs, mut errors) = (0, 0);
    while !done(runs) {
        let (bytes, what) = mutate(&target.original, &mut rng);
        std::fs::write(dir.path().join(target.name), &bytes).unwrap();
        let what = format!("{} (seed {seed}, run {runs}): {what}", target.name);
        errors += usize::from(run_clean(dir.path(), &args, &what));
        runs += 1;
    }
    (runs, errors)
}

/// A short stereo 16-bit WAV at 22.05 kHz.
fn wav_bytes() -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for i in 0..4000 {
        let v = ((i as f32 * 0.05).sin() * 8000.0) as i16;
        writer.write_sample(v).unwrap();
        writer.write_sample(v / 2).unwrap();
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The three input kinds. The batch file is read and every job checked before the model is
/// looked for: a missing model directory ends each run right after, so no mutated output path
/// is ever written.
fn targets() -> Vec<Target> {
    let dac = fixture("dac-tiny/weights.safetensors");
    let dac = dac.to_str().unwrap();
    let codes: Vec<Vec<u32>> = (0..12)
        .map(|t| (0..9).map(|c| (t * 83 + c * 29) % 1024).collect())
        .collect();
    let jobs = [
        r#"{"text": "[S1] One.", "output": "a.wav", "seed": 3}"#,
        r#"{"text": "[S2] Two.", "output": "b.wav", "codes_out": "b.json", "prompt_transcript": "[S1] Hi."}"#,
    ]
    .join("\n");
    vec![
        Target {
            name: "in.wav",
            original: wav_bytes(),
            args: strings(&[
                "encode",
                "--audio",
                "in.wav",
                "--codes-out",
                "out.json",
                "--dac-path",
                dac,
            ]),
        },
        Target {
            name: "in.json",
            original: serde_json::to_vec(&codes).unwrap(),
            args: strings(&[
                "decode",
                "--codes",
                "in.json",
                "--output",
                "out.wav",
                "--dac-path",
                dac,
            ]),
        },
        Target {
            name: "jobs.jsonl",
            original: jobs.into_bytes(),
            args: strings(&[
                "--batch",
                "jobs.jsonl",
                "--model-dir",
                "no-such-model",
                "--dac-path",
                "no-such-codec.safetensors",
            ]),
        },
    ]
}

#[test]
fn mutated_inputs_are_read_or_refused_cleanly() {
    for (i, target) in targets().iter().enumerate() {
        let (runs, errors) = fuzz(target, 1 + i as u64, |runs| runs == RUNS);
        assert!(
            errors > 0,
            "{}: no mutation was refused in {runs} runs",
            target.name
        );
    }
}

#[test]
#[ignore = "long run: set DIA_FUZZ_SECONDS"]
fn mutated_inputs_long_run() {
    let (seconds, seed) = long_run();
    for target in &targets() {
        let start = std::time::Instant::now();
        let (runs, errors) = fuzz(target, seed, |_| start.elapsed().as_secs() >= seconds);
        println!(
            "{}: {runs} mutations, {errors} refused, 0 panics (seed {seed})",
            target.name
        );
    }
}
