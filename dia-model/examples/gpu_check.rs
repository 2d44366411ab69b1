//! The GPU compile check's Rust half (`scripts/gpu-compile-check.sh` runs it):
//!
//! - `gpu_check cuda OUT_DIR`: writes the CUDA C++ of every kernel of ours a decode step, a
//!   prefill and the device sampler can launch, per architecture, with `OUT_DIR/kernels.json`
//!   for `scripts/nvrtc_check.py`;
//! - `gpu_check wgsl REPORT LOG...`: translates every WGSL module in CubeCL compilation logs to
//!   MSL and HLSL, writes REPORT (JSON), prints `M shaders -> MSL, HLSL: G failed` and exits 1
//!   if G > 0.
//!
//! `cargo run -p dia-model --features gpu-check --example gpu_check -- cuda OUT_DIR`

use std::path::Path;
use std::process::ExitCode;

use dia_model::backend::gpu_check::{
    ARCHS, F64_CANARY, LoggedModule, cuda_kernels, logged_modules, translate,
};
use serde_json::{Value, json};

fn main() -> std::io::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, out] if mode == "cuda" => write_cuda(Path::new(out)),
        [mode, report, logs @ ..] if mode == "wgsl" && !logs.is_empty() => {
            translate_logs(Path::new(report), logs)
        }
        _ => {
            eprintln!("usage: gpu_check cuda OUT_DIR | gpu_check wgsl REPORT LOG...");
            Ok(ExitCode::from(2))
        }
    }
}

/// Every kernel's source under `out/sm_XX/`, and the manifest.
fn write_cuda(out: &Path) -> std::io::Result<ExitCode> {
    let mut manifest = Vec::new();
    for arch in ARCHS {
        let dir = out.join(format!("sm_{arch}"));
        std::fs::create_dir_all(&dir)?;
        for (i, kernel) in cuda_kernels(arch).into_iter().enumerate() {
            let file = dir.join(format!("{i:04}.cu"));
            std::fs::write(&file, &kernel.source)?;
            manifest.push(json!({
                "arch": arch,
                "file": file,
                "name": kernel.name,
                "id": kernel.id,
                "entrypoint": kernel.entrypoint,
                "shared_bytes": kernel.shared_bytes,
                "error": kernel.error,
            }));
        }
    }
    write_json(&out.join("kernels.json"), &Value::Array(manifest.clone()))?;
    println!(
        "{} CUDA kernels written to {}",
        manifest.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The capability behind a refusal that is not a failure: wgpu offers f32 atomics only where
/// the adapter has them, and Burn asks before launching a kernel that needs them (its one-shot
/// sum; without them it takes a chained reduce), so such a shader never reaches a DX12 adapter.
const ADAPTER_GATED: &str = "SHADER_FLOAT32_ATOMIC";

/// Every logged WGSL module through naga, reported.
fn translate_logs(report: &Path, logs: &[String]) -> std::io::Result<ExitCode> {
    let canary = translate(F64_CANARY);
    if canary.msl.is_ok() || canary.hlsl.is_err() {
        eprintln!("the f64 canary was not judged as expected: {canary:?}");
        return Ok(ExitCode::FAILURE);
    }
    let mut text = String::new();
    for log in logs {
        text += &std::fs::read_to_string(log)?;
    }
    let modules = logged_modules(&text);
    let mut entries = Vec::new();
    let (mut failed, mut gated) = (0, 0);
    for LoggedModule { name, source } in &modules {
        let t = translate(source);
        let (msl, hlsl) = (t.msl.err(), t.hlsl.err());
        let errors: Vec<&String> = msl.iter().chain(hlsl.iter()).collect();
        let adapter_gated = !errors.is_empty() && errors.iter().all(|e| e.contains(ADAPTER_GATED));
        if adapter_gated {
            gated += 1;
        } else if !errors.is_empty() {
            failed += 1;
            eprintln!("FAILED {name}:\n  MSL: {msl:?}\n  HLSL: {hlsl:?}\n{source}");
        }
        entries.push(json!({
            "name": name,
            "msl_error": msl,
            "hlsl_error": hlsl,
            "adapter_gated": adapter_gated,
        }));
    }
    if gated > 0 {
        println!(
            "{gated} shaders need f32 atomics (lavapipe and Metal have them, DX12 does not): \
             Burn launches them only where the adapter offers them (its sum falls back to a \
             chained reduce)"
        );
    }
    write_json(report, &json!({ "modules": entries }))?;
    println!("{} shaders -> MSL, HLSL: {failed} failed", modules.len());
    Ok(if failed == 0 && !modules.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON");
    std::fs::write(path, text)
}
