//! End-to-end runs of the `dia-infer` binary on the tiny fixtures (offline, ndarray/flex),
//! and one test per bad input: exit code and message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{assert_ok, dia_infer, stderr};

use dia_test_support::{Golden, fixture, golden_json, max_abs_diff, write_prompt_codes};
use serde_json::Value;

const TINY_HOP: usize = 8;

fn dia(args: &[&str]) -> Output {
    dia_infer(args)
}

/// Runs with the tiny model and codec on `backend`, greedy.
fn dia_tiny(backend: &str, extra: &[&str]) -> Output {
    dia_tiny_sampled(backend, &[&["--temperature", "0"], extra].concat())
}

/// Runs with the tiny model and codec on `backend`, sampling as `extra` says.
fn dia_tiny_sampled(backend: &str, extra: &[&str]) -> Output {
    let model = fixture("dia-tiny");
    let dac = fixture("dac-tiny/weights.safetensors");
    let mut args = vec![
        "--model-dir",
        model.to_str().unwrap(),
        "--dac-path",
        dac.to_str().unwrap(),
        "--backend",
        backend,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    dia(&args)
}

fn read_codes(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn wav_len(path: &Path) -> usize {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (44100, 1));
    reader.len() as usize
}

/// Golden case 0 spoken on `backend` with `extra` flags: the WAV's length in samples and the
/// codes written with `--codes-out`.
fn speak_case0(backend: &str, extra: &[&str]) -> (usize, Value) {
    let dir = tempfile::tempdir().unwrap();
    let (wav, codes) = (dir.path().join("out.wav"), dir.path().join("codes.json"));
    let case = &golden_json("dia-tiny")["cases"][0];
    let max_tokens = case["max_tokens"].to_string();
    let mut args = vec![
        case["text"].as_str().unwrap(),
        "--max-tokens",
        &max_tokens,
        "--output",
        wav.to_str().unwrap(),
        "--codes-out",
        codes.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    assert_ok(&dia_tiny(backend, &args));
    (wav_len(&wav), read_codes(&codes))
}

#[test]
fn greedy_text_to_wav_matches_golden_codes() {
    let case = &golden_json("dia-tiny")["cases"][0];
    let (samples, codes) = speak_case0("ndarray", &[]);
    assert_eq!(codes, case["codes"][0]);
    let frames = case["frames"][0].as_u64().unwrap() as usize;
    assert_eq!(samples, frames * TINY_HOP);
}

/// `--int8` runs end to end: a WAV of as many samples as frames decoded, codes in range, and
/// codes that differ from the f32 golden ones (the random fixture's margins are below int8's
/// error, see dia-model's half_precision test), so the flag reached the model.
#[test]
fn int8_weights_make_audio() {
    let (samples, codes) = speak_case0("flex", &["--int8"]);
    assert_ne!(codes, golden_json("dia-tiny")["cases"][0]["codes"][0]);
    let frames = codes.as_array().unwrap();
    assert!(!frames.is_empty());
    assert_eq!(samples, frames.len() * TINY_HOP);
    for code in frames.iter().flat_map(|f| f.as_array().unwrap()) {
        assert!(code.as_u64().unwrap() < 1024, "{code}");
    }
}

/// `dia-infer convert` writes a checkpoint that speaks as its source with the same weights
/// (int8: the same codes as `--int8`), refuses to write over it, and refuses another storage
/// at load.
#[test]
fn converted_checkpoints_speak_as_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("int8");
    let model = fixture("dia-tiny");
    let convert = |out: &Path| {
        dia(&[
            "convert",
            "--model-dir",
            model.to_str().unwrap(),
            "--weights",
            "int8",
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ])
    };
    assert_ok(&convert(&out));
    let weights = out.join("model.safetensors");
    let written = std::fs::read(&weights).unwrap();
    let case = &golden_json("dia-tiny")["cases"][0];
    let speak = |model_dir: &Path, extra: &[&str]| {
        let codes = dir.path().join("codes.json");
        let [model_dir, dac, wav, codes_out] = [
            model_dir.to_path_buf(),
            fixture("dac-tiny/weights.safetensors"),
            dir.path().join("out.wav"),
            codes.clone(),
        ]
        .map(|p| p.to_str().unwrap().to_string());
        let mut args = vec![case["text"].as_str().unwrap(), "--model-dir", &model_dir];
        args.extend([
            "--dac-path",
            &dac,
            "--backend",
            "flex",
            "--temperature",
            "0",
        ]);
        args.extend(["--quiet", "-o", &wav, "--codes-out", &codes_out]);
        args.extend_from_slice(extra);
        assert_ok(&dia(&args));
        read_codes(&codes)
    };
    assert_eq!(speak(&out, &[]), speak(&model, &["--int8"]));
    fails_with(convert(&out), "already exists");
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        written,
        "the converted file was kept"
    );
    let dac = fixture("dac-tiny/weights.safetensors");
    let other = dia(&[
        "x",
        "--model-dir",
        out.to_str().unwrap(),
        "--dac-path",
        dac.to_str().unwrap(),
        "--weights",
        "f32",
        "--quiet",
    ]);
    fails_with(other, "converted with `int8` weights");
}

#[test]
fn audio_prompt_codes_case_matches_golden() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, codes, prompt) = (
        dir.path().join("o.wav"),
        dir.path().join("c.json"),
        dir.path().join("p.json"),
    );
    write_prompt_codes("case1_prompt0", &prompt);
    let case = &golden_json("dia-tiny")["cases"][1];
    let o = dia_tiny(
        "flex",
        &[
            case["text"].as_str().unwrap(),
            "--max-tokens",
            &case["max_tokens"].to_string(),
            "--audio-prompt-codes",
            prompt.to_str().unwrap(),
            "--output",
            wav.to_str().unwrap(),
            "--codes-out",
            codes.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    assert_eq!(read_codes(&codes), case["codes"][0]);
}

/// A batch job speaks as it would alone: the prompted job of the reference's batch case (whose
/// layout is its solo one) matches the golden codes; the unprompted one equals its solo run.
/// (The reference's static batch teacher-forces one more BOS for an item whose prompt is
/// shorter than another's, so its batch output depends on its neighbours; the library's
/// `generate` keeps that for parity, `--batch` does not.)
#[test]
fn batch_jobs_speak_as_alone_and_match_golden() {
    let dir = tempfile::tempdir().unwrap();
    let case = &golden_json("dia-tiny")["cases"][2];
    let prompt = dir.path().join("p.json");
    write_prompt_codes("case2_prompt1", &prompt);
    let texts = case["text"].as_array().unwrap();
    let job = |i: usize, extra: Value| {
        let mut j = serde_json::json!({
            "text": texts[i],
            "output": dir.path().join(format!("{i}.wav")),
            "codes_out": dir.path().join(format!("{i}.json")),
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut j, extra) {
            m.extend(e);
        }
        j.to_string()
    };
    let jobs = [
        job(0, Value::Null),
        job(1, serde_json::json!({"audio_prompt_codes": prompt})),
    ]
    .join("\n");
    let batch = dir.path().join("jobs.jsonl");
    std::fs::write(&batch, jobs).unwrap();
    let max_tokens = case["max_tokens"].to_string();
    let o = dia_tiny(
        "ndarray",
        &[
            "--batch",
            batch.to_str().unwrap(),
            "--max-tokens",
            &max_tokens,
        ],
    );
    assert_ok(&o);
    let read = |name: &str| read_codes(&dir.path().join(name));
    assert_eq!(read("1.json"), case["codes"][1], "prompted job");
    let frames = case["frames"][1].as_u64().unwrap() as usize;
    assert_eq!(wav_len(&dir.path().join("1.wav")), frames * TINY_HOP);
    let solo = dir.path().join("solo.json");
    let o = dia_tiny(
        "ndarray",
        &[
            texts[0].as_str().unwrap(),
            "--output",
            dir.path().join("solo.wav").to_str().unwrap(),
            "--codes-out",
            solo.to_str().unwrap(),
            "--max-tokens",
            &max_tokens,
        ],
    );
    assert_ok(&o);
    assert_eq!(read("0.json"), read_codes(&solo), "unprompted job");
}

/// `--batch` decodes jobs side by side in `--batch-size` slots: each job (its own seed or the
/// run's, with or without a prompt, short or long) writes exactly the codes and WAV of its solo
/// run, however many jobs share the batch and whenever it joined.
#[test]
fn continuous_batch_jobs_equal_their_solo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let prompt = p("prompt.json");
    write_prompt_codes("case2_prompt1", &prompt);
    let texts = [
        "[S1] A first job, long enough to outlast the second.",
        "[S2] Short.",
        "[S1] The third joins when a slot frees. [S2] And speaks to the end.",
    ];
    let seeds = [Some(7), None, Some(123)];
    let jobs: Vec<String> = (0..3)
        .map(|i| {
            let mut job = serde_json::json!({
                "text": texts[i],
                "output": p(&format!("{i}.wav")),
                "codes_out": p(&format!("{i}.json")),
            });
            if let Some(seed) = seeds[i] {
                job["seed"] = seed.into();
            }
            if i == 1 {
                job["audio_prompt_codes"] = prompt.to_str().unwrap().into();
            }
            job.to_string()
        })
        .collect();
    std::fs::write(p("jobs.jsonl"), jobs.join("\n")).unwrap();
    let sampled = ["--temperature", "1.0", "--max-tokens", "90"];
    let jobs_path = p("jobs.jsonl");
    let batch = ["--batch", jobs_path.to_str().unwrap(), "--batch-size", "2"];
    let run_seed = ["--seed", "5"];
    assert_ok(&dia_tiny_sampled(
        "flex",
        &[&batch[..], &sampled, &run_seed].concat(),
    ));
    for i in 0..3 {
        let seed = seeds[i].unwrap_or(5).to_string();
        let (wav, json) = (p(&format!("solo{i}.wav")), p(&format!("solo{i}.json")));
        let mut args = vec![
            texts[i],
            "--output",
            wav.to_str().unwrap(),
            "--codes-out",
            json.to_str().unwrap(),
        ];
        if i == 1 {
            args.extend(["--audio-prompt-codes", prompt.to_str().unwrap()]);
        }
        args.extend(sampled);
        args.extend(["--seed", &seed]);
        assert_ok(&dia_tiny_sampled("flex", &args));
        let solo = read_codes(&json);
        assert!(!solo.as_array().unwrap().is_empty(), "job {i}: solo codes");
        assert_eq!(read_codes(&p(&format!("{i}.json"))), solo, "job {i}: codes");
        let read = |path: PathBuf| std::fs::read(path).unwrap();
        assert_eq!(read(p(&format!("{i}.wav"))), read(wav), "job {i}: audio");
    }
}

#[test]
fn encode_decode_round_trip_and_decode_matches_golden_audio() {
    let dir = tempfile::tempdir().unwrap();
    let dac = fixture("dac-tiny/weights.safetensors");
    let dac = dac.to_str().unwrap();
    // Golden codes → WAV (f32) equals the reference decode_audio.
    let golden = Golden::open("dac-tiny");
    let (flat, shape) = golden.get_int("decode_codes");
    let n = shape[2];
    let frames: Vec<Vec<i64>> = (0..n)
        .map(|t| (0..9).map(|c| flat[c * n + t]).collect())
        .collect();
    let codes_path = dir.path().join("codes.json");
    std::fs::write(&codes_path, serde_json::to_string(&frames).unwrap()).unwrap();
    let wav = dir.path().join("decoded.wav");
    let o = dia(&[
        "decode",
        "--codes",
        codes_path.to_str().unwrap(),
        "--dac-path",
        dac,
        "--output",
        wav.to_str().unwrap(),
        "--wav-format",
        "f32",
        "--backend",
        "ndarray",
    ]);
    assert_ok(&o);
    let got: Vec<f32> = hound::WavReader::open(&wav)
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .collect();
    let (want, _) = golden.get("decode_audio");
    assert_eq!(got.len(), want.len());
    let diff = max_abs_diff(&got, &want);
    assert!(diff < 1e-4, "decode differs by {diff}");
    // WAV → codes → WAV: the re-encoded codes decode to a same-length signal.
    let recoded = dir.path().join("recoded.json");
    let o = dia(&[
        "encode",
        "--audio",
        wav.to_str().unwrap(),
        "--dac-path",
        dac,
        "--codes-out",
        recoded.to_str().unwrap(),
        "--backend",
        "flex",
    ]);
    assert_ok(&o);
    let recoded_frames = read_codes(&recoded);
    assert_eq!(recoded_frames.as_array().unwrap().len(), n);
    let wav2 = dir.path().join("again.wav");
    assert_ok(&dia(&[
        "decode",
        "--codes",
        recoded.to_str().unwrap(),
        "--dac-path",
        dac,
        "--output",
        wav2.to_str().unwrap(),
    ]));
    assert_eq!(wav_len(&wav2), n * TINY_HOP);
}

/// Runs a failing command and checks exit code 1, one `error:` line containing `needle`, no panic.
fn fails_with(o: Output, needle: &str) {
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    // The panic hook prints a panic as "internal error": a bug, never a clear message.
    assert!(
        !err.contains("internal error") && !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let errors = err.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "one error line: {err}");
}

#[test]
fn bad_inputs_fail_with_clear_messages() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let out = p("out.wav");
    let out_s = out.to_str().unwrap();

    fails_with(
        dia_tiny("ndarray", &["   ", "-o", out_s]),
        "the text is empty",
    );

    std::fs::write(p("latin1.txt"), [0x48, 0xe9, 0xff]).unwrap();
    fails_with(
        dia_tiny(
            "ndarray",
            &[
                "--text-file",
                p("latin1.txt").to_str().unwrap(),
                "-o",
                out_s,
            ],
        ),
        "is not UTF-8",
    );

    fails_with(
        dia(&[
            "hi",
            "--model-dir",
            p("nope").to_str().unwrap(),
            "-o",
            out_s,
        ]),
        "not a directory",
    );

    std::fs::create_dir(p("badmodel")).unwrap();
    std::fs::write(p("badmodel/config.json"), "{}").unwrap();
    std::fs::write(p("badmodel/model.safetensors"), "junk").unwrap();
    fails_with(
        dia(&[
            "hi",
            "--model-dir",
            p("badmodel").to_str().unwrap(),
            "-o",
            out_s,
        ]),
        "config.json",
    );

    fails_with(
        dia(&[
            "hi",
            "--model-dir",
            fixture("dia-tiny").to_str().unwrap(),
            "--dac-path",
            p("missing.pth").to_str().unwrap(),
            "-o",
            out_s,
        ]),
        "missing.pth",
    );

    std::fs::write(p("noise.wav"), b"RIFF....definitely not audio").unwrap();
    fails_with(
        dia_tiny(
            "ndarray",
            &[
                "hi",
                "--audio-prompt",
                p("noise.wav").to_str().unwrap(),
                "-o",
                out_s,
            ],
        ),
        "cannot read audio",
    );

    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(p("silent.wav"), spec).unwrap();
    // 9 ms: under the tiny codec's prompt limit (its 5.5 kHz frame rate fills 256 frames fast).
    for _ in 0..200 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    fails_with(
        dia_tiny(
            "ndarray",
            &[
                "hi",
                "--audio-prompt",
                p("silent.wav").to_str().unwrap(),
                "-o",
                out_s,
            ],
        ),
        "is silent",
    );

    std::fs::write(p("short.json"), "[[1,2,3]]").unwrap();
    fails_with(
        dia_tiny(
            "ndarray",
            &[
                "hi",
                "--audio-prompt-codes",
                p("short.json").to_str().unwrap(),
                "-o",
                out_s,
            ],
        ),
        "has 3 codes, expected 9",
    );
    std::fs::write(p("big.json"), "[[1,2,3,4,5,6,7,8,1024]]").unwrap();
    fails_with(
        dia_tiny(
            "ndarray",
            &[
                "hi",
                "--audio-prompt-codes",
                p("big.json").to_str().unwrap(),
                "-o",
                out_s,
            ],
        ),
        "code 1024",
    );
    std::fs::write(p("notjson.json"), "{\"a\": 1}").unwrap();
    fails_with(
        dia_tiny(
            "ndarray",
            &[
                "hi",
                "--audio-prompt-codes",
                p("notjson.json").to_str().unwrap(),
                "-o",
                out_s,
            ],
        ),
        "array of frames",
    );

    fails_with(
        dia_tiny("ndarray", &["hi", "--max-tokens", "5000", "-o", out_s]),
        "over the model's limit of 256",
    );

    fails_with(
        dia_tiny("ndarray", &["hi", "-o", "/nonexistent-dir/x.wav"]),
        "not writable",
    );

    fails_with(dia_tiny("wgpu", &["hi", "-o", out_s]), "--features wgpu");
    fails_with(
        dia_tiny("ndarray", &["hi", "--dtype", "f16", "-o", out_s]),
        "the ndarray backend does not support dtype f16",
    );

    // The output may never replace an input.
    std::fs::write(p("prompt.json"), "[[1,2,3,4,5,6,7,8,9]]").unwrap();
    fails_with(
        dia_tiny(
            "ndarray",
            &[
                "hi",
                "--audio-prompt-codes",
                p("prompt.json").to_str().unwrap(),
                "--codes-out",
                p("prompt.json").to_str().unwrap(),
                "-o",
                out_s,
            ],
        ),
        "also an input",
    );
    assert_eq!(
        std::fs::read_to_string(p("prompt.json")).unwrap(),
        "[[1,2,3,4,5,6,7,8,9]]"
    );
    assert!(!out.exists(), "no output is left behind by a failed run");
}

#[test]
fn over_long_prompt_transcript_warns_how_much_was_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (out, prompt) = (dir.path().join("o.wav"), dir.path().join("p.json"));
    write_prompt_codes("case1_prompt0", &prompt);
    let transcript = format!("[S1] {}", "a".repeat(150));
    let o = dia_tiny(
        "flex",
        &[
            "[S2] hi.",
            "--audio-prompt-codes",
            prompt.to_str().unwrap(),
            "--prompt-transcript",
            &transcript,
            "--max-tokens",
            "60",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    // 152 transcript tokens, a newline and 5 text tokens over a text length of 96: 62 dropped.
    assert!(
        stderr(&o).contains("text length of 96: 62 tokens dropped"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_script_longer_than_a_pass_is_spoken_in_passes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let script: String = (0..10)
        .map(|i| format!("[S{}] Line number {i} of the script. ", 1 + i % 2))
        .collect();
    let run = |wav: &str, codes: &str| {
        dia_tiny(
            "flex",
            &[
                &script,
                "--seed",
                "3",
                "--max-tokens",
                "60",
                "--chunk-seconds",
                "4",
                "--codes-out",
                p(codes).to_str().unwrap(),
                "-o",
                p(wav).to_str().unwrap(),
            ],
        )
    };
    let o = run("a.wav", "a.json");
    assert_ok(&o);
    assert!(!stderr(&o).contains("dropped"), "{}", stderr(&o));
    let codes = read_codes(&p("a.json"));
    let frames = codes.as_array().unwrap().len();
    // One pass of 60 decoder positions holds at most 60 − 1 − 15 new frames.
    assert!(frames > 44, "{frames} frames: several passes");
    let samples = hound::WavReader::open(p("a.wav")).unwrap().len() as usize;
    assert_eq!(samples, frames * TINY_HOP);
    assert_ok(&run("b.wav", "b.json"));
    assert_eq!(read_codes(&p("b.json")), codes, "same script, same codes");
    assert_eq!(
        std::fs::read(p("b.wav")).unwrap(),
        std::fs::read(p("a.wav")).unwrap()
    );
}

/// A frame budget just above the delay pattern (`--max-tokens 30`, delay 15) still speaks a
/// long script: each pass carries what context fits, or starts unprompted with a warning, never
/// failing on a prompt the user did not give.
#[test]
fn a_small_max_tokens_still_speaks_a_long_script() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, codes) = (dir.path().join("out.wav"), dir.path().join("out.json"));
    let script: String = (0..10)
        .map(|i| format!("[S{}] Line number {i} of the script. ", 1 + i % 2))
        .collect();
    let o = dia_tiny(
        "flex",
        &[
            &script,
            "--seed",
            "3",
            "--max-tokens",
            "30",
            "--chunk-seconds",
            "4",
            "--codes-out",
            codes.to_str().unwrap(),
            "-o",
            wav.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    assert!(!stderr(&o).contains("audio prompt"), "{}", stderr(&o));
    let frames = read_codes(&codes).as_array().unwrap().len();
    // One pass of 30 decoder positions holds at most 30 − 1 − 15 new frames.
    assert!(frames > 14, "{frames} frames: several passes");
    let samples = hound::WavReader::open(&wav).unwrap().len() as usize;
    assert_eq!(samples, frames * TINY_HOP);
}

#[test]
fn bad_long_form_options_are_refused() {
    for flag in [
        "--chunk-seconds=0",
        "--chunk-seconds=nan",
        "--context-seconds=-1",
    ] {
        let o = dia_tiny("flex", &["[S1] Hi.", flag, "-o", "x.wav"]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("seconds"), "{}", stderr(&o));
    }
}

/// `fixture`'s files laid out as the hub cache under `home` holds repository `repo`.
fn lay_out_hub_cache(home: &Path, repo: &str, fixture: &Path) {
    let dir = home
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let revision = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(dir.join("refs")).unwrap();
    std::fs::write(dir.join("refs/main"), revision).unwrap();
    let snapshot = dir.join("snapshots").join(revision);
    std::fs::create_dir_all(&snapshot).unwrap();
    for entry in std::fs::read_dir(fixture).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), snapshot.join(entry.file_name())).unwrap();
    }
}

#[test]
fn default_repositories_resolve_offline_from_the_hub_cache() {
    let home = tempfile::tempdir().unwrap();
    lay_out_hub_cache(
        home.path(),
        "nari-labs/Dia-1.6B-0626",
        &fixture("dia-tiny-hf"),
    );
    lay_out_hub_cache(home.path(), "descript/dac_44khz", &fixture("dac-tiny-hf"));
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    let common = ["[S1] Offline.", "--backend", "flex", "--temperature", "0"];
    let from_cache = |wav: &Path| {
        let mut args = common.to_vec();
        args.extend(["--max-tokens", "40", "--quiet", "-o", wav.to_str().unwrap()]);
        Command::new(env!("CARGO_BIN_EXE_dia-infer"))
            .args(args)
            .env("HF_HOME", home.path())
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    };
    assert_ok(&from_cache(&out("hub.wav")));
    let (model, dac) = (fixture("dia-tiny-hf"), fixture("dac-tiny-hf"));
    let local_wav = out("local.wav");
    let mut local = common.to_vec();
    local.extend(["--model-dir", model.to_str().unwrap()]);
    local.extend(["--dac-path", dac.to_str().unwrap()]);
    local.extend(["--max-tokens", "40", "--quiet", "-o"]);
    local.push(local_wav.to_str().unwrap());
    assert_ok(&dia(&local));
    let hub_wav = std::fs::read(out("hub.wav")).unwrap();
    assert!(hub_wav.len() > 44, "audio was written");
    assert_eq!(hub_wav, std::fs::read(out("local.wav")).unwrap());

    // A file missing from the cache is named, with the cache, and nothing is downloaded.
    let shard = home
        .path()
        .join("hub/models--descript--dac_44khz/snapshots")
        .join("0123456789abcdef0123456789abcdef01234567/model.safetensors");
    std::fs::remove_file(shard).unwrap();
    let o = from_cache(&out("missing.wav"));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("model.safetensors of descript/dac_44khz is not in the hub cache")
            && err.contains(&home.path().join("hub").display().to_string()),
        "{err}"
    );
    assert!(!out("missing.wav").exists());
}

#[test]
fn outputs_never_replace_the_model_or_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    // A copy of the sharded checkpoint: `-o` naming one of its files must leave it whole.
    let model = p("model");
    std::fs::create_dir(&model).unwrap();
    for entry in std::fs::read_dir(fixture("dia-tiny-hf")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let dac = fixture("dac-tiny-hf");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "[S1] Hi.",
            "--model-dir",
            model.to_str().unwrap(),
            "--dac-path",
            dac.to_str().unwrap(),
            "--backend",
            "flex",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        dia(&args)
    };
    for file in [
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "config.json",
    ] {
        let target = model.join(file);
        let before = std::fs::read(&target).unwrap();
        fails_with(run(&["-o", target.to_str().unwrap()]), "is also an input");
        assert_eq!(std::fs::read(&target).unwrap(), before, "{file} untouched");
    }
    let codec_config = dac.join("config.json");
    fails_with(
        run(&["--codes-out", codec_config.to_str().unwrap(), "-o", "x.wav"]),
        "is also an input",
    );
    let out = p("out.wav");
    let out_s = out.to_str().unwrap();
    fails_with(
        run(&["-o", out_s, "--codes-out", out_s]),
        "named as two outputs",
    );
    fails_with(run(&["-o", dir.path().to_str().unwrap()]), "is a directory");
    let jobs = p("jobs.jsonl");
    std::fs::write(&jobs, "{\"text\": \"[S1] a\", \"output\": \"\"}\n").unwrap();
    fails_with(
        dia_tiny("flex", &["--batch", jobs.to_str().unwrap()]),
        "output path is empty",
    );
    let job = serde_json::json!({"text": "[S1] a", "output": out_s}).to_string();
    std::fs::write(&jobs, format!("{job}\n{job}\n")).unwrap();
    fails_with(
        dia_tiny("flex", &["--batch", jobs.to_str().unwrap()]),
        "named as two outputs",
    );
    assert!(!out.exists(), "nothing was generated");
}

#[test]
fn prompts_are_checked_before_any_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    // Job 2's prompt codes have the wrong channel count: nothing runs, line 2 is named.
    std::fs::write(p("bad.json"), "[[1,2,3]]").unwrap();
    let first = serde_json::json!({"text": "[S1] first", "output": p("1.wav")});
    let second = serde_json::json!({
        "text": "[S1] second",
        "output": p("2.wav"),
        "audio_prompt_codes": p("bad.json"),
    });
    std::fs::write(p("jobs.jsonl"), format!("{first}\n{second}\n")).unwrap();
    fails_with(
        dia_tiny("flex", &["--batch", p("jobs.jsonl").to_str().unwrap()]),
        "jobs.jsonl line 2: unusable audio prompt",
    );
    assert!(!p("1.wav").exists(), "job 1 did not run");

    // An audio prompt longer than --max-tokens allows is refused from its header: 2 s of
    // audio against 60 frames of the tiny codec (hop 8 at 44.1 kHz: 11 ms).
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(p("long.wav"), spec).unwrap();
    for i in 0..2 * 2 * 16000 {
        w.write_sample(((i % 100) * 50) as i16).unwrap();
    }
    w.finalize().unwrap();
    let long = p("long.wav");
    let out = p("o.wav");
    fails_with(
        dia_tiny(
            "flex",
            &[
                "[S1] hi",
                "--audio-prompt",
                long.to_str().unwrap(),
                "--max-tokens",
                "60",
                "-o",
                out.to_str().unwrap(),
            ],
        ),
        "it is 2.00 s long; the model can continue at most 0.01 s",
    );
}

/// A WAV of `seconds` of a chirp with a little noise, at `rate` with `channels` channels.
fn write_voice_wav(path: &Path, rate: u32, channels: u16, seconds: f64) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (seconds * f64::from(rate)) as usize;
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let v = (2.0 * std::f64::consts::PI * (200.0 + 2000.0 * t) * t).sin() * 0.5
            + ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 0.05;
        for c in 0..channels {
            w.write_sample((v * (1.0 - 0.3 * f64::from(c)) * 32767.0) as i16)
                .unwrap();
        }
    }
    w.finalize().unwrap();
}

#[test]
fn wav_prompts_at_any_rate_and_channel_count_equal_their_encoded_codes() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, channels) in [(16000, 1), (22050, 2), (48000, 1), (48000, 2)] {
        let wav = dir.path().join(format!("voice-{rate}-{channels}.wav"));
        write_voice_wav(&wav, rate, channels, 0.02);
        check_audio_prompt(&wav);
    }
}

#[test]
fn compressed_prompts_at_any_rate_and_channel_count_equal_their_encoded_codes() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    for ext in ["mp3", "flac", "ogg"] {
        for rate in [16000, 22050, 48000] {
            for channels in [1, 2] {
                check_audio_prompt(&data.join(format!("voice-{rate}-{channels}.{ext}")));
            }
        }
    }
}

/// `audio` as a voice prompt: `dia-infer encode` of it gives a usable prompt, and generating
/// with `--audio-prompt audio` equals generating with `--audio-prompt-codes` of those codes
/// (same codes, same WAV bytes).
fn check_audio_prompt(audio: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let label = audio.file_name().unwrap().to_string_lossy().into_owned();
    let dac = fixture("dac-tiny/weights.safetensors");
    let codes = p("encoded.json");
    assert_ok(&dia(&[
        "encode",
        "--audio",
        audio.to_str().unwrap(),
        "--codes-out",
        codes.to_str().unwrap(),
        "--dac-path",
        dac.to_str().unwrap(),
        "--quiet",
    ]));
    let prompt_frames = read_codes(&codes).as_array().unwrap().len();
    assert!(prompt_frames > 50, "{label}: {prompt_frames} prompt frames");
    let speak = |prompt_flag: &str, prompt: &Path, name: &str| {
        let (out, generated) = (p(&format!("{name}.wav")), p(&format!("{name}.json")));
        let o = dia_tiny(
            "flex",
            &[
                "[S2] And now this.",
                prompt_flag,
                prompt.to_str().unwrap(),
                "--prompt-transcript",
                "[S1] A voice.",
                "--max-tokens",
                "256",
                "--codes-out",
                generated.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert_ok(&o);
        (std::fs::read(out).unwrap(), read_codes(&generated))
    };
    let (from_audio, audio_codes) = speak("--audio-prompt", audio, "a");
    let (from_codes, codes_codes) = speak("--audio-prompt-codes", &codes, "c");
    assert_eq!(
        audio_codes, codes_codes,
        "{label}: same prompt codes, same generation"
    );
    assert_eq!(from_audio, from_codes, "{label}: same audio");
    let frames = audio_codes.as_array().unwrap().len();
    assert!(frames > 0, "{label}: something was generated");
    let samples = hound::WavReader::open(p("a.wav")).unwrap().len() as usize;
    assert_eq!(samples, frames * TINY_HOP, "{label}");
}
