//! Command-line arguments: generation by default, `encode` and `decode` for the codec.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Text in, 44.1 kHz speech out: Nari Labs' Dia and the Descript Audio Codec on Burn.
#[derive(Debug, Parser)]
#[command(name = "dia-infer", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub generate: GenerateArgs,
}

/// Codec subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode an audio file to DAC codes (JSON `[frames][channels]`).
    Encode(EncodeArgs),
    /// Decode DAC codes (JSON) to a WAV file.
    Decode(DecodeArgs),
}

/// Where the weights come from and what runs them.
#[derive(Debug, Args, Clone)]
pub struct RuntimeArgs {
    /// Compute backend; `auto` picks the best one compiled in.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// Model compute dtype [default: bf16 on CUDA, f32 elsewhere].
    #[arg(long, value_enum)]
    pub dtype: Option<DtypeArg>,
    /// Codec repository on the Hugging Face hub.
    #[arg(
        long,
        default_value = "descript/dac_44khz",
        conflicts_with = "dac_path"
    )]
    pub dac: String,
    /// Local codec weights: a `.pth`, a safetensors file or a transformers directory.
    #[arg(long)]
    pub dac_path: Option<PathBuf>,
    /// Print no progress bar and no summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Backends selectable at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Auto,
    Ndarray,
    Flex,
    Wgpu,
    Cuda,
}

/// Model compute dtypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
    Bf16,
}

/// WAV sample formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum WavFormat {
    #[default]
    I16,
    F32,
}

/// Speech generation (the default command).
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Text to speak, with `[S1]`/`[S2]` speaker tags.
    pub text: Option<String>,
    /// Read the text from a UTF-8 file (`-` for stdin).
    #[arg(long, conflicts_with = "text")]
    pub text_file: Option<PathBuf>,
    /// Output WAV path.
    #[arg(long, short, default_value = "dia.wav")]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value_t = WavFormat::I16)]
    pub wav_format: WavFormat,
    /// Model repository on the Hugging Face hub.
    #[arg(
        long,
        default_value = "nari-labs/Dia-1.6B-0626",
        conflicts_with = "model_dir"
    )]
    pub model: String,
    /// Local checkpoint directory (config.json + safetensors, any supported layout).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Store the model's projections as int8, one scale per output column (activations stay
    /// in --dtype): a quarter of f32's weight memory and faster CPU decoding, slightly less
    /// precise.
    #[arg(long)]
    pub int8: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Absolute decoder frames, audio prompt included [default: the model's limit].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    #[arg(long, default_value_t = 3.0)]
    pub cfg_scale: f32,
    /// Sampling temperature; 0 decodes greedily.
    #[arg(long, default_value_t = 1.2)]
    pub temperature: f32,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    #[arg(long, default_value_t = 45)]
    pub cfg_filter_top_k: usize,
    /// Random seed: the same seed, inputs and backend give the same audio.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Voice to continue: an audio file (wav, mp3, flac, ogg; any rate, any channels).
    #[arg(long, conflicts_with = "audio_prompt_codes")]
    pub audio_prompt: Option<PathBuf>,
    /// Voice to continue, as codes JSON (from `--codes-out` or `dia-infer encode`).
    #[arg(long)]
    pub audio_prompt_codes: Option<PathBuf>,
    /// Transcript of the audio prompt, prepended to the text as the model requires.
    #[arg(long)]
    pub prompt_transcript: Option<String>,
    /// Also write the generated codes as JSON `[frames][channels]`.
    #[arg(long)]
    pub codes_out: Option<PathBuf>,
    /// JSONL file of jobs (`text`, `output`, optional `codes_out`, `audio_prompt`,
    /// `audio_prompt_codes`, `prompt_transcript`), generated together.
    #[arg(long, conflicts_with_all = ["text", "text_file"])]
    pub batch: Option<PathBuf>,
    /// Jobs per batch when `--batch` holds many.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
}

/// `dia-infer encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Audio file to encode.
    #[arg(long)]
    pub audio: PathBuf,
    /// Where to write the codes JSON.
    #[arg(long)]
    pub codes_out: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `dia-infer decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Codes JSON `[frames][channels]`.
    #[arg(long)]
    pub codes: PathBuf,
    /// Output WAV path.
    #[arg(long, short)]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value_t = WavFormat::I16)]
    pub wav_format: WavFormat,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}
