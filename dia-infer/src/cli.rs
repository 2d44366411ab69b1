//! Command-line arguments: generation by default, `encode` and `decode` for the codec.

use std::path::PathBuf;

use burn::tensor::DType;
use clap::{Args, Parser, Subcommand, ValueEnum};
use dia_burn::cli::{ModelArgs, RuntimeArgs};
use dia_burn::dia_model::{GenerationConfig, LongFormOptions, SamplingSite};

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
    /// Write a checkpoint whose weights are already stored as `--weights` says and laid out as
    /// the CPU kernels read them: it then loads in seconds, with no quantizing or re-tiling.
    Convert(ConvertArgs),
}

/// WAV sample formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum WavFormat {
    #[default]
    I16,
    F32,
}

impl GenerateArgs {
    /// How long scripts are cut into passes and carried.
    pub fn long_form(&self) -> LongFormOptions {
        LongFormOptions {
            chunk_seconds: self.chunk_seconds,
            context_seconds: self.context_seconds,
        }
    }
}

/// Speech generation (the default command).
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Text to speak, with `[S1]`/`[S2]` speaker tags.
    pub text: Option<String>,
    /// Read the text from a UTF-8 file (`-` for stdin).
    #[arg(long, conflicts_with = "text")]
    pub text_file: Option<PathBuf>,
    /// Output WAV path; `-` writes raw 16-bit little-endian PCM, 44.1 kHz mono, to stdout.
    #[arg(long, short, default_value = "dia.wav")]
    pub output: PathBuf,
    /// Write audio while it is generated: each piece as soon as it is final (the same audio as
    /// without, sooner). To a WAV through a temporary file renamed at the end; to stdout
    /// (`--output -`) flushed piece by piece, for a player: `| aplay -f S16_LE -r 44100 -c 1`.
    #[arg(long)]
    pub stream: bool,
    #[arg(long, value_enum, default_value_t = WavFormat::I16)]
    pub wav_format: WavFormat,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Absolute decoder frames, audio prompt included [default: the model's limit].
    #[arg(long)]
    pub max_tokens: Option<usize>,
    #[arg(long, default_value_t = GenerationConfig::default().cfg_scale)]
    pub cfg_scale: f32,
    /// Sampling temperature; 0 decodes greedily.
    #[arg(long, default_value_t = GenerationConfig::default().temperature)]
    pub temperature: f32,
    #[arg(long, default_value_t = GenerationConfig::default().top_p)]
    pub top_p: f32,
    #[arg(long, default_value_t = GenerationConfig::default().cfg_filter_top_k)]
    pub cfg_filter_top_k: usize,
    /// Random seed: the same seed, inputs and backend give the same audio.
    #[arg(long, default_value_t = GenerationConfig::default().seed)]
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
    /// Also write the generated codes as JSON `[frames][channels]` (every pass's frames).
    #[arg(long)]
    pub codes_out: Option<PathBuf>,
    /// Estimated seconds of speech per pass: a script longer than that (or than the model's
    /// text length) is spoken in passes, cut at speaker turns, each conditioned on the end of
    /// the one before so every speaker keeps one voice.
    #[arg(long, default_value_t = LongFormOptions::default().chunk_seconds)]
    pub chunk_seconds: f32,
    /// Estimated seconds of the previous pass's end that condition the next pass.
    #[arg(long, default_value_t = LongFormOptions::default().context_seconds)]
    pub context_seconds: f32,
    /// JSONL file of jobs (`text`, `output`, optional `codes_out`, `audio_prompt`,
    /// `audio_prompt_codes`, `prompt_transcript`, `seed`), decoded side by side: a job starts as
    /// soon as a slot is free, and its audio is that of its solo run.
    #[arg(long, conflicts_with_all = ["text", "text_file"])]
    pub batch: Option<PathBuf>,
    /// Jobs decoded at once (continuous batching slots) when `--batch` holds many.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Where tokens are chosen: `auto` (the device on wgpu and cuda, the host on CPUs), `host`
    /// (logits read back every step), `device` or `device:N` (codes read back every N steps).
    #[arg(long, default_value_t = GenerationConfig::default().sampling)]
    pub sampling: SamplingSite,
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

/// `dia-infer convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// New directory for the converted checkpoint (`config.json` and `model.safetensors`);
    /// an existing checkpoint there is never overwritten.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Compute dtype the embeddings are stored in [default: f32].
    #[arg(long, value_parser = dia_burn::dia_model::config::parse_dtype)]
    pub dtype: Option<DType>,
    /// Hide download progress.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// `dia-infer decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Codes JSON `[frames][channels]`.
    #[arg(long)]
    pub codes: PathBuf,
    /// Output WAV path (`-`: raw 16-bit PCM on stdout).
    #[arg(long, short)]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value_t = WavFormat::I16)]
    pub wav_format: WavFormat,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}
