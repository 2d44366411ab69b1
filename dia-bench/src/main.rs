//! `dia-bench report`: every configuration of the matrix in its own process, then the report.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use clap::{Args, Parser, Subcommand};
use dia_bench::codec::{self, CodecPlan};
use dia_bench::counters;
use dia_bench::kernels::{self, KernelPlan};
use dia_bench::loading;
use dia_bench::machine::Machine;
use dia_bench::measure::{Plan, Row, measure};
use dia_bench::report::Report;
use dia_bench::seams::{self, SeamPlan};
use dia_bench::setting::{Knob, Precision, Setting, Size};
use dia_bench::soak::{self, SoakPlan};
use dia_model::checkpoint::names::CheckpointFormat;
use dia_model::{BackendKind, SamplingSite};

#[derive(Parser)]
#[command(
    version,
    about = "Benchmarks Dia decoding and the DAC codec across backends, dtypes and model knobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the matrix and writes report.json, report.md and report.svg.
    Report(ReportArgs),
    /// Decodes long-form passes as one code sequence and pass by pass, and writes how the
    /// audio differs at each join (seams.md, seams.json).
    Seams(SeamArgs),
    /// Decodes to the full length and samples resident memory beside the KV cache's size
    /// (soak.md, soak.json).
    Soak(SoakArgs),
    /// Times each layer type of a DAC decode and the whole decode, with the backend's own
    /// kernels and with Burn's generic ops (codec.md, codec.json).
    Codec(CodecArgs),
    /// Times each decode-step hook (attention, residual + norm, RoPE) at a model size's
    /// shapes, with the backend's own kernels and with Burn's generic ops, and counts their
    /// launches (kernels.md, kernels.json).
    Kernels(KernelArgs),
    /// Measures the read bandwidth every probe pattern reaches (the bound reports compare
    /// against is the fastest) and prints one line per pattern.
    Bandwidth {
        /// Worker threads (default: every logical core).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Writes a checkpoint of random values in a real layout (to time loads at full size
    /// without the real weights).
    Checkpoint {
        /// New checkpoint directory.
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long, default_value = "full")]
        size: Size,
        /// Tensor names and layout: `transformers` (the 0626 release) or `nari`.
        #[arg(long, default_value = "transformers")]
        format: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Loads a checkpoint directory on Flex several times and prints each load's seconds and
    /// the peak memory (the first run warms the page cache).
    Load {
        #[arg(long)]
        model_dir: PathBuf,
        /// Weight storage (f32, f16, bf16, int8, w8a8) [default: f32, or a converted checkpoint's].
        #[arg(long)]
        weights: Option<dia_model::WeightStorage>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Measures one configuration and prints its row as JSON (used by `report`).
    #[command(hide = true)]
    RunOne {
        /// The setting, as JSON.
        #[arg(long)]
        setting: String,
        #[command(flatten)]
        plan: PlanArgs,
    },
}

#[derive(Args)]
struct ReportArgs {
    /// Model sizes.
    #[arg(long, value_delimiter = ',', default_value = "small")]
    size: Vec<Size>,
    /// Backends (default: every one compiled in).
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Precisions: a compute dtype (f32, f16, bf16) with weights stored in it, `DTYPE:WEIGHTS`
    /// for other weight storage (f32:bf16, bf16:int8, ...), or int8 for f32:int8. A backend
    /// without the dtype reports the row as failed.
    #[arg(long, value_delimiter = ',', default_value = "f32,f16,bf16,int8")]
    dtypes: Vec<Precision>,
    /// RoPE sin/cos from a table, recomputed, or both.
    #[arg(long, value_enum, default_value = "both")]
    rope_table: Knob,
    /// Fused or separate q/k/v projections, or both.
    #[arg(long, value_enum, default_value = "both")]
    fused_qkv: Knob,
    /// Concurrent requests on one continuous batch (rows report the frames per second summed
    /// over them).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    requests: Vec<usize>,
    /// Where the decode chooses its tokens: auto (the backend's choice), host, device
    /// (read back every 12 steps) or device:N.
    #[arg(long, value_delimiter = ',', default_value = "auto")]
    sampling: Vec<SamplingSite>,
    /// The backend's own kernels (Flex's SIMD passes, the CubeCL decode kernels), Burn's
    /// generic ops instead, or both.
    #[arg(long, value_enum, default_value = "on")]
    custom_kernels: Knob,
    /// Worker threads per configuration (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// A JSON line printed by the PyTorch reference (`torch_bench.py`) in the same sitting.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Directory for the report files.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    plan: PlanArgs,
}

#[derive(Args)]
struct SeamArgs {
    /// Passes to join.
    #[arg(long, default_value_t = 4)]
    passes: usize,
    /// Frames per pass (86 frames are a second at 44.1 kHz).
    #[arg(long, default_value_t = 172)]
    pass_frames: usize,
    /// Seed of the random codec weights and codes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory for seams.md and seams.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct SoakArgs {
    /// Model size.
    #[arg(long, default_value = "small")]
    size: Size,
    /// Backend (default: the best compiled in).
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Precision, as `report --dtypes` takes it (f32, bf16, int8, f32:bf16, ...).
    #[arg(long, default_value = "f32")]
    dtype: Precision,
    /// Decode steps (the reference's full length is 3072).
    #[arg(long, default_value_t = 3072)]
    steps: usize,
    /// Steps between memory samples.
    #[arg(long, default_value_t = 100)]
    every: usize,
    /// Decoder positions instead of the size's own (e.g. 3072 for `--size tiny`, whose
    /// fixture config allows 256): a full-length run of a narrow model.
    #[arg(long)]
    decoder_positions: Option<usize>,
    /// Directory for soak.md and soak.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct CodecArgs {
    /// Backend (default: the best compiled in).
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Seconds of audio decoded per run.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Runs per path (ours and Burn's generic ops alternate).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Directory for codec.md and codec.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct KernelArgs {
    /// Backend (default: the best compiled in).
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Model size whose decoder shapes are used.
    #[arg(long, default_value = "full")]
    size: Size,
    /// Compute dtype (f32, f16, bf16).
    #[arg(long, default_value = "f32", value_parser = dia_model::config::parse_dtype)]
    dtype: DType,
    /// Decoder rows (two per item with classifier-free guidance).
    #[arg(long, default_value_t = 2)]
    rows: usize,
    /// Keys in the self-attention cache.
    #[arg(long, default_value_t = 1024)]
    cache: usize,
    /// Text positions the cross-attention reads.
    #[arg(long, default_value_t = 1024)]
    text: usize,
    /// Calls per timed run.
    #[arg(long, default_value_t = 50)]
    calls: usize,
    /// Runs per path (ours and Burn's generic ops alternate).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Directory for kernels.md and kernels.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Clone)]
struct PlanArgs {
    /// Decode steps timed per configuration.
    #[arg(long, default_value_t = 24)]
    steps: usize,
    /// Decode steps run before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Seconds of audio for the DAC timing (once per size, backend and dtype); 0 skips it.
    #[arg(long, default_value_t = 1.0)]
    dac_seconds: f64,
    /// Real weights (a checkpoint directory) instead of random ones.
    #[arg(long)]
    model_dir: Option<PathBuf>,
}

impl PlanArgs {
    fn plan(&self) -> Plan {
        Plan {
            steps: self.steps,
            warmup: self.warmup,
            dac_seconds: self.dac_seconds,
            model_dir: self.model_dir.clone(),
        }
    }

    fn to_args(&self, dac: bool) -> Vec<String> {
        let mut args = vec![
            "--steps".into(),
            self.steps.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--dac-seconds".into(),
            if dac {
                self.dac_seconds.to_string()
            } else {
                "0".into()
            },
        ];
        if let Some(dir) = &self.model_dir {
            args.extend(["--model-dir".into(), dir.display().to_string()]);
        }
        args
    }
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::RunOne { setting, plan } => {
            let setting: Setting = serde_json::from_str(&setting).context("--setting")?;
            counters::install();
            // The measuring thread joins the pool: no third thread competes for the cores.
            let pool = rayon::ThreadPoolBuilder::new().build()?;
            let row = pool.install(|| measure(&setting, &plan.plan()))?;
            println!("{}", serde_json::to_string(&row)?);
            Ok(())
        }
        Cmd::Report(args) => report(args),
        Cmd::Seams(args) => seams(&args),
        Cmd::Soak(args) => soak(&args),
        Cmd::Codec(args) => codec(&args),
        Cmd::Kernels(args) => kernels(&args),
        Cmd::Checkpoint {
            output,
            size,
            format,
            seed,
        } => {
            let format = match format.as_str() {
                "nari" => CheckpointFormat::Nari,
                "transformers" => CheckpointFormat::Transformers,
                other => bail!("unknown --format {other:?} (expected nari or transformers)"),
            };
            let bytes =
                loading::write_random_checkpoint(&size.dia_config(), format, seed, &output)?;
            println!("wrote {} ({:.2} GB)", output.display(), bytes as f64 / 1e9);
            Ok(())
        }
        Cmd::Load {
            model_dir,
            weights,
            runs,
        } => {
            let options = dia_model::ModelOptions {
                weights,
                ..Default::default()
            };
            for (run, t) in loading::time_loads(&model_dir, options, runs)?
                .iter()
                .enumerate()
            {
                let peak = t.peak_rss_bytes.map_or(0.0, |b| b as f64 / 1e9);
                println!("load {run}: {:.2} s, peak memory {peak:.2} GB", t.seconds);
            }
            Ok(())
        }
        Cmd::Bandwidth { threads } => {
            let threads = threads.unwrap_or_else(rayon::current_num_threads);
            for (pattern, gb_s) in dia_bench::bandwidth::measure(threads) {
                println!("{gb_s:6.1} GB/s  {pattern}  ({threads} threads)");
            }
            Ok(())
        }
    }
}

fn kernels(args: &KernelArgs) -> Result<()> {
    if [args.rows, args.cache, args.text, args.calls, args.runs].contains(&0) {
        bail!("--rows, --cache, --text, --calls and --runs must be at least 1");
    }
    let plan = KernelPlan {
        backend: backends(std::slice::from_ref(&args.backend))?[0],
        size: args.size,
        dtype: args.dtype,
        rows: args.rows,
        cache: args.cache,
        text: args.text,
        calls: args.calls,
        runs: args.runs,
    };
    let threads = rayon::current_num_threads();
    let profile = kernels::profile(&plan, Machine::detect(threads))?;
    write_report(
        &args.out,
        "kernels",
        &serde_json::to_string_pretty(&profile)?,
        &kernels::markdown(&profile),
    )
}

fn codec(args: &CodecArgs) -> Result<()> {
    if args.runs == 0 || !(args.seconds > 0.0 && args.seconds <= 600.0) {
        bail!("--runs must be at least 1 and --seconds within (0, 600]");
    }
    let plan = CodecPlan {
        backend: backends(std::slice::from_ref(&args.backend))?[0],
        seconds: args.seconds,
        runs: args.runs,
    };
    let threads = rayon::current_num_threads();
    let profile = codec::profile(&plan, Machine::detect(threads))?;
    write_report(
        &args.out,
        "codec",
        &serde_json::to_string_pretty(&profile)?,
        &codec::markdown(&profile),
    )
}

fn soak(args: &SoakArgs) -> Result<()> {
    if args.steps == 0 || args.every == 0 {
        bail!("--steps and --every must be at least 1");
    }
    let backend = backends(std::slice::from_ref(&args.backend))?[0];
    let setting = Setting {
        size: args.size,
        backend,
        dtype: args.dtype.dtype,
        weights: args.dtype.weights,
        rope_table: true,
        fused_qkv: true,
        requests: 1,
        sampling: SamplingSite::Auto,
        custom_kernels: true,
    };
    let plan = SoakPlan {
        steps: args.steps,
        every: args.every,
        decoder_positions: args.decoder_positions,
    };
    counters::install();
    let report = soak::soak(&setting, &plan)?;
    write_report(
        &args.out,
        "soak",
        &serde_json::to_string_pretty(&report)?,
        &soak::markdown(&report),
    )
}

/// Writes `NAME.json` and `NAME.md` into `out` and prints the Markdown.
fn write_report(out: &Path, name: &str, json: &str, markdown: &str) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join(format!("{name}.json")), json)?;
    std::fs::write(out.join(format!("{name}.md")), markdown)?;
    print!("{markdown}");
    Ok(())
}

fn seams(args: &SeamArgs) -> Result<()> {
    if args.passes < 2 || args.pass_frames == 0 {
        bail!("--passes must be at least 2 and --pass-frames at least 1");
    }
    let plan = SeamPlan {
        passes: args.passes,
        pass_frames: args.pass_frames,
        seed: args.seed,
    };
    let report = seams::measure_seams(&plan)?;
    let json = serde_json::to_string_pretty(&report)?;
    write_report(&args.out, "seams", &json, &seams::markdown(&report))
}

fn report(args: ReportArgs) -> Result<()> {
    let backends = backends(&args.backends)?;
    if args.requests.contains(&0) {
        bail!("--requests: every count must be at least 1");
    }
    let reference = args.reference.as_deref().map(read_reference).transpose()?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!("measuring read bandwidth with {threads} threads");
    let machine = Machine::detect(threads);

    let mut settings = Vec::new();
    for &size in &args.size {
        for &backend in &backends {
            for &precision in &args.dtypes {
                for &rope_table in args.rope_table.values() {
                    for &fused_qkv in args.fused_qkv.values() {
                        for &requests in &args.requests {
                            for &sampling in &args.sampling {
                                for &custom_kernels in args.custom_kernels.values() {
                                    settings.push(Setting {
                                        size,
                                        backend,
                                        dtype: precision.dtype,
                                        weights: precision.weights,
                                        rope_table,
                                        fused_qkv,
                                        requests,
                                        sampling,
                                        custom_kernels,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let total = settings.len();
    let mut rows = Vec::with_capacity(total);
    for (i, setting) in settings.into_iter().enumerate() {
        // The codec does not depend on the model's knobs: time it once per size, backend, dtype.
        let dac = setting.rope_table == args.rope_table.values()[0]
            && setting.fused_qkv == args.fused_qkv.values()[0]
            && setting.requests == args.requests[0]
            && setting.sampling == args.sampling[0]
            && setting.custom_kernels == args.custom_kernels.values()[0];
        eprint!("[{}/{total}] {setting} ... ", i + 1);
        let _ = std::io::stderr().flush();
        let row = run_child(&setting, &args.plan, dac, threads);
        match (&row.error, row.decode_steps_per_s) {
            (Some(e), _) => eprintln!("failed: {e}"),
            (None, Some(v)) => eprintln!("{v:.2} steps/s"),
            (None, None) => eprintln!("no steps timed"),
        }
        rows.push(row);
    }
    let report = Report {
        machine,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        reference,
        rows,
    };
    report.write(&args.out)?;
    eprintln!("wrote {}/report.{{json,md,svg}}", args.out.display());
    Ok(())
}

/// The backends named (every one compiled in when none is), each checked to be compiled in.
fn backends(names: &[String]) -> Result<Vec<BackendKind>> {
    let compiled = BackendKind::compiled();
    if names.is_empty() {
        return Ok(compiled);
    }
    let list = || {
        let names: Vec<_> = compiled.iter().map(|k| k.name()).collect();
        names.join(", ")
    };
    names
        .iter()
        .map(|name| match name.parse::<BackendKind>() {
            Ok(kind) if kind.is_compiled() => Ok(kind),
            _ => bail!("backend {name:?} is not compiled in (compiled: {})", list()),
        })
        .collect()
}

/// The JSON line `torch_bench.py` printed (the last line that starts with `{`).
fn read_reference(path: &std::path::Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line)
        .with_context(|| format!("{}: no JSON line from torch_bench.py", path.display()))
}

/// What a failed child said: its first panic (where and why; a backtrace note follows it),
/// else its last line.
fn child_error(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    if let Some(at) = lines.clone().position(|l| l.contains("panicked at")) {
        let mut panic = lines.clone().skip(at);
        let place = panic.next().unwrap_or("");
        let place = &place[place.find("panicked at").unwrap_or(0)..];
        return format!("{} {}", place, panic.next().unwrap_or(""));
    }
    let last = lines.next_back().unwrap_or("");
    last.trim_start_matches("error: ").to_string()
}

/// Measures `setting` in a child process; any failure becomes the row's `error`.
fn run_child(setting: &Setting, plan: &PlanArgs, dac: bool, threads: usize) -> Row {
    let result = (|| -> Result<Row> {
        let output = Command::new(std::env::current_exe()?)
            .arg("run-one")
            .arg("--setting")
            .arg(serde_json::to_string(setting)?)
            .args(plan.to_args(dac))
            .env("RAYON_NUM_THREADS", threads.to_string())
            .output()
            .context("starting the measuring process")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!("{} ({})", child_error(&stderr), output.status);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or("");
        serde_json::from_str(line).with_context(|| format!("unreadable row {line:?}"))
    })();
    result.unwrap_or_else(|e| Row::failed(setting.clone(), format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::child_error;

    #[test]
    fn a_child_error_is_its_panic_or_its_last_line() {
        let panic = "\nthread 'DSU-4-0' (25330) panicked at src/ir.rs:500:63:\nindex out of bounds\nstack backtrace:\nnote: Some details are omitted\n";
        assert_eq!(
            child_error(panic),
            "panicked at src/ir.rs:500:63: index out of bounds"
        );
        assert_eq!(
            child_error("measuring\nerror: wgpu cannot compute bf16\n\n"),
            "wgpu cannot compute bf16"
        );
    }
}
