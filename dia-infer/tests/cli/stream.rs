//! `dia-infer --stream`: the same audio as a whole-clip run, to WAV files and to stdout as raw
//! PCM, and a clean error when the reader of stdout goes away.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use dia_test_support::{fixture, max_abs_diff};

use crate::{assert_ok, dia_infer};

/// The tiny model and codec on flex, sampled with a fixed seed.
fn args(extra: &[&str]) -> Vec<String> {
    let model = fixture("dia-tiny");
    let dac = fixture("dac-tiny/weights.safetensors");
    let mut args: Vec<String> = [
        "--model-dir",
        model.to_str().unwrap(),
        "--dac-path",
        dac.to_str().unwrap(),
        "--backend",
        "flex",
        "--temperature",
        "1.0",
        "--seed",
        "5",
        "--max-tokens",
        "150",
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn dia(extra: &[&str]) -> Output {
    dia_infer(args(extra))
}

fn wav_f32(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).unwrap();
    assert_eq!(reader.spec().sample_rate, 44100);
    reader.samples::<f32>().map(Result::unwrap).collect()
}

#[test]
fn streamed_batch_equals_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = |tag: &str| {
        let job = |i: usize, text: &str| {
            serde_json::json!({
                "text": text,
                "output": dir.path().join(format!("{tag}{i}.wav")),
                "codes_out": dir.path().join(format!("{tag}{i}.json")),
            })
            .to_string()
        };
        let path = dir.path().join(format!("{tag}.jsonl"));
        let lines = [
            job(0, "[S1] First job."),
            job(1, "[S2] A second, longer job."),
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        path
    };
    let (whole, streamed) = (jobs("whole"), jobs("stream"));
    let f32_wav = ["--wav-format", "f32"];
    assert_ok(&dia(
        &[&["--batch", whole.to_str().unwrap()][..], &f32_wav].concat()
    ));
    let stream_args = ["--batch", streamed.to_str().unwrap(), "--stream"];
    assert_ok(&dia(&[&stream_args[..], &f32_wav].concat()));
    for i in 0..2 {
        let read = |tag: &str| std::fs::read_to_string(dir.path().join(format!("{tag}{i}.json")));
        assert_eq!(
            read("whole").unwrap(),
            read("stream").unwrap(),
            "job {i} codes"
        );
        let a = wav_f32(&dir.path().join(format!("whole{i}.wav")));
        let b = wav_f32(&dir.path().join(format!("stream{i}.wav")));
        assert!(!a.is_empty());
        let diff = max_abs_diff(&a, &b);
        assert!(diff <= 1e-4, "job {i}: streamed audio off by {diff}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("stream0.wav"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o044,
            0o044,
            "readable like any file, not 0600: {mode:o}"
        );
    }
}

#[test]
fn stdout_gets_raw_pcm_of_the_same_audio() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("a.wav");
    assert_ok(&dia(&["[S1] To stdout.", "-o", wav.to_str().unwrap()]));
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let want: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    for stream in [true, false] {
        let mut extra = vec!["[S1] To stdout.", "-o", "-"];
        if stream {
            extra.push("--stream");
        }
        let o = dia(&extra);
        assert_ok(&o);
        assert_eq!(o.stdout.len(), want.len() * 2, "two bytes per sample");
        let got: Vec<i16> = o
            .stdout
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let off = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).max();
        assert!(off <= Some(1), "stream {stream}: PCM off by {off:?}");
    }
}

#[test]
fn closed_stdout_ends_with_a_clear_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dia-infer"))
        .args(args(&["[S1] Nobody listens.", "-o", "-", "--stream"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("broken pipe"), "{err}");
    assert!(
        !err.contains("panic") && !err.contains("internal error"),
        "{err}"
    );
}

#[test]
fn two_jobs_cannot_share_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("jobs.jsonl");
    std::fs::write(
        &batch,
        "{\"text\": \"[S1] a\", \"output\": \"-\"}\n{\"text\": \"[S1] b\", \"output\": \"-\"}\n",
    )
    .unwrap();
    let o = dia(&["--batch", batch.to_str().unwrap(), "--stream"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("only one output can be stdout"));
}
