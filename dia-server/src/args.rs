//! Command-line options of `dia-server`.

use std::path::PathBuf;

use clap::Parser;
use dia_burn::cli::{ModelArgs, RuntimeArgs};

/// An OpenAI-compatible speech server (`POST /v1/audio/speech`) for Dia: every request joins
/// one continuous batch, audio streams as it is generated.
#[derive(Debug, Parser)]
#[command(name = "dia-server", version)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed at start-up).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Requests decoded together (continuous batching slots).
    #[arg(long, default_value_t = 8)]
    pub max_batch: usize,
    /// Requests waiting for a slot beyond those decoding; past that, 429 with `Retry-After`.
    #[arg(long, default_value_t = 32)]
    pub max_queue: usize,
    /// Seconds a request may take from arrival to its last sample; past that it is cut.
    #[arg(long, default_value_t = 600.0)]
    pub request_timeout: f64,
    /// Seconds a connection may take to send a request's head, counted from when the server
    /// waits for it: a new connection's first request or a kept-alive one's next (so it is also
    /// the keep-alive idle timeout). Past it the connection is closed.
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Connections open at once; past it, new ones wait in the listen queue until one closes.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a streamed response may fall behind before the request is cut: audio generated
    /// and not yet taken by the client, plus the time its request has been held (a request
    /// stops decoding while more than 2 s of audio wait for its client, and goes on when the
    /// client takes some). A client that stops reading costs no decoding and bounded memory
    /// (about 2 s of audio, 350 KB at 44.1 kHz, past what the socket holds), and the decode
    /// loop never waits on it.
    #[arg(long, default_value_t = 30.0)]
    pub client_lag: f64,
    /// Seconds in-flight requests get to finish after Ctrl-C or SIGTERM before they are cut.
    #[arg(long, default_value_t = 30.0)]
    pub shutdown_grace: f64,
    /// Directory of voices: `NAME.wav|mp3|flac` (or `NAME.codes.json` from `dia-infer encode`)
    /// with `NAME.txt`, its transcript; encoded once at start-up. Voices uploaded with
    /// `POST /v1/audio/voices` are stored here; without it uploads are off.
    #[arg(long)]
    pub voices: Option<PathBuf>,
    /// A key every `/v1/` request must present as `Authorization: Bearer KEY` (repeatable; also
    /// `DIA_API_KEYS`, comma-separated, and `--api-key-file`). Without any the API is open.
    /// `/health` and `/metrics` stay open.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,
    /// A file of API keys, one per line (blank lines and `#` comments skipped).
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// An origin whose pages may call the API from a browser (CORS), e.g.
    /// `https://app.example.com` (repeatable; `*`: any).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Name `GET /v1/models` lists for the served model [default: the hub repository or the
    /// model directory's name].
    #[arg(long)]
    pub served_model_name: Option<String>,
}

impl ServeArgs {
    /// The served model's name.
    pub fn model_name(&self) -> String {
        if let Some(name) = &self.served_model_name {
            return name.clone();
        }
        match &self.model.model_dir {
            Some(dir) => dir
                .file_name()
                .map_or_else(|| "dia".into(), |n| n.to_string_lossy().into_owned()),
            None => self.model.model.clone(),
        }
    }

    /// Checks the options that clap cannot.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.max_batch == 0 || self.max_connections == 0 {
            anyhow::bail!("--max-batch and --max-connections must be at least 1");
        }
        if !(self.header_timeout.is_finite() && self.header_timeout > 0.0) {
            anyhow::bail!(
                "--header-timeout must be a positive number of seconds, not {}",
                self.header_timeout
            );
        }
        for (name, v) in [
            ("--request-timeout", self.request_timeout),
            ("--client-lag", self.client_lag),
            ("--shutdown-grace", self.shutdown_grace),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                anyhow::bail!("{name} must be a number of seconds, not {v}");
            }
        }
        Ok(())
    }
}
