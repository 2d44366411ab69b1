//! `dia-bench report` end to end at tiny size: one row per configuration with every field,
//! unsupported dtypes reported as failed rows, and the three report files.

use std::process::Command;

use serde_json::Value;

/// Runs `dia-bench report --size tiny` with `args` into `out`; its report.json.
fn tiny_report(args: &[&str], out: &std::path::Path) -> Value {
    let status = Command::new(env!("CARGO_BIN_EXE_dia-bench"))
        .args(["report", "--size", "tiny"])
        .args(args)
        .arg("--out")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn tiny_report_has_a_row_per_configuration() {
    let out = tempfile::tempdir().unwrap();
    let args = ["--steps", "4", "--warmup", "1", "--dac-seconds", "0.2"];
    let report = tiny_report(&args, out.path());
    assert!(report["machine"]["read_bandwidth_gb_s"].as_f64().unwrap() > 0.0);
    let rows = report["rows"].as_array().unwrap();
    // 2 CPU backends × 4 precisions (f32, f16, bf16, f32:int8) × RoPE table on/off × fused
    // q/k/v on/off.
    assert_eq!(rows.len(), 2 * 4 * 2 * 2);
    let fields = [
        "size",
        "backend",
        "dtype",
        "weights",
        "rope_table",
        "fused_qkv",
        "fusion",
        "decode_steps_per_s",
        "requests",
        "aggregate_frames_per_s",
        "realtime_factor",
        "encoder_ms",
        "first_step_ms",
        "dac_ms_per_audio_s",
        "stream_dac_ms_per_audio_s",
        "first_audio_ms",
        "peak_rss_bytes",
        "kernels_per_step",
        "syncs_per_step",
        "kernels_by_name",
        "error",
    ];
    for row in rows {
        for field in fields {
            assert!(row.get(field).is_some(), "row without {field}: {row}");
        }
        let unsupported = row["backend"] == "ndarray"
            && ["f16", "bf16"].contains(&row["dtype"].as_str().unwrap());
        if unsupported {
            assert!(
                row["error"].as_str().unwrap().contains("does not support"),
                "{row}"
            );
            continue;
        }
        assert!(row["error"].is_null(), "{row}");
        assert_eq!(row["steps_timed"], 4, "{row}");
        assert_eq!(row["requests"], 1, "{row}");
        assert!(
            row["aggregate_frames_per_s"].as_f64().unwrap() > 0.0,
            "{row}"
        );
        let steps = row["decode_steps_per_s"].as_f64().unwrap();
        let rtf = row["realtime_factor"].as_f64().unwrap();
        // Realtime against the tiny codec's frame rate (44.1 kHz, hop 8).
        assert!((rtf - steps / 5512.5).abs() < 1e-9, "{row}");
        assert!(row["peak_rss_bytes"].as_u64().unwrap() > row["weights_bytes"].as_u64().unwrap());
        // One host read of the logits per step; CPU backends launch no kernels.
        assert_eq!(row["syncs_per_step"].as_f64(), Some(1.0), "{row}");
        assert!(row["kernels_per_step"].is_null(), "{row}");
        assert!(row["kernels_by_name"].is_null(), "{row}");
        // The codec is timed once per backend and dtype (the first knob combination).
        let first_knobs = row["rope_table"] == true && row["fused_qkv"] == true;
        assert_eq!(row["dac_ms_per_audio_s"].is_number(), first_knobs, "{row}");
        assert_eq!(
            row["stream_dac_ms_per_audio_s"].is_number(),
            first_knobs,
            "{row}"
        );
        if first_knobs {
            assert!(row["first_audio_ms"].as_f64().unwrap() > 0.0, "{row}");
        }
    }

    // Int8 weights take fewer bytes than f32 ones on every backend.
    let bytes = |backend: &str, weights: &str| {
        rows.iter()
            .find(|r| r["backend"] == backend && r["dtype"] == "f32" && r["weights"] == weights)
            .and_then(|r| r["weights_bytes"].as_u64())
            .unwrap()
    };
    for backend in ["flex", "ndarray"] {
        assert!(bytes(backend, "int8") < bytes(backend, "f32"), "{backend}");
    }

    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| Tiny")).count(),
        rows.len()
    );
    assert!(md.contains("read bandwidth"));
    let svg = std::fs::read_to_string(out.path().join("report.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<rect"));
}

#[test]
fn unknown_backend_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_dia-bench"))
        .args(["report", "--size", "tiny", "--backends", "tpu", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"tpu\" is not compiled in"), "{stderr}");
}

/// `--requests` adds a row per count, each decoding that many requests on one batch.
#[test]
fn requests_rows_sum_frames_over_the_batch() {
    let out = tempfile::tempdir().unwrap();
    let args = [
        "--steps",
        "3",
        "--warmup",
        "1",
        "--backends",
        "flex",
        "--dtypes",
        "f32",
        "--rope-table",
        "on",
        "--fused-qkv",
        "on",
        "--requests",
        "1,3",
        "--dac-seconds",
        "0",
    ];
    let report = tiny_report(&args, out.path());
    let rows = report["rows"].as_array().unwrap();
    let requests: Vec<u64> = rows
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(requests, [1, 3]);
    for row in rows {
        assert!(row["error"].is_null(), "{row}");
        let aggregate = row["aggregate_frames_per_s"].as_f64().unwrap();
        let steps = row["decode_steps_per_s"].as_f64().unwrap();
        assert!(aggregate.is_finite() && steps.is_finite(), "{row}");
        // Every timed step decodes a frame of each request (none ends this soon).
        let per_step = aggregate / steps;
        let n = row["requests"].as_f64().unwrap();
        assert!((0.5 * n..2.0 * n).contains(&per_step), "{row}");
        // The batch's rows are read back together: one host wait per step, whatever the count.
        assert_eq!(row["syncs_per_step"].as_f64(), Some(1.0), "{row}");
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("aggregate frames/s"), "{md}");
}
