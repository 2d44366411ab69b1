//! Start-up and shutdown: the listener opens first (`/health` says "loading"), the model,
//! codec and voices load on the decode thread, which then serves until a signal; in-flight
//! requests get `--shutdown-grace` seconds to finish before they are cut.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use dia_burn::backends::{OnDevice, run as run_on};
use dia_burn::dia_model::DiaBackend;
use dia_burn::{Dia, DiaFiles, LoadOptions};

use crate::args::ServeArgs;
use crate::auth::{self, ApiKeys};
use crate::engine::{Engine, RequestLimits};
use crate::listen::{self, Limits};
use crate::routes::router;
use crate::shared::{Phase, Ready, Shared, Work};
use crate::voices::Voices;

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    args.check()?;
    if let Some(dir) = &args.voices
        && !dir.is_dir()
    {
        bail!("--voices {} is not a directory", dir.display());
    }
    let keys = ApiKeys::load(
        &args.api_keys,
        std::env::var("DIA_API_KEYS").ok().as_deref(),
        args.api_key_file.as_deref(),
    )?;
    let cors = auth::cors(&args.cors_origins)?;
    let options = dia_burn::cli::load_options(&args.model, &args.runtime);
    let files = options.files()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(listen::bind(&args.host, args.port))
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let address = listener.local_addr()?;
    let shared = Arc::new(Shared::new(
        args.model_name(),
        args.max_batch,
        args.max_queue,
    ));
    let (submissions, receiver) = channel();
    shared.connect(submissions);
    let limits = Limits {
        header_timeout: Duration::from_secs_f64(args.header_timeout),
        max_connections: args.max_connections,
    };
    if keys.required() {
        tracing::info!("the /v1/ API needs a key");
    }
    let app = router(shared.clone(), keys, cors);
    let http = runtime.spawn(serve_http(
        listener,
        app,
        shared.clone(),
        args.shutdown_grace,
        limits,
    ));
    // Tests and scripts read the address from this line.
    println!("dia-server listening on http://{address}");
    let decode = Decode {
        args: &args,
        options,
        files,
        receiver,
        shared: shared.clone(),
    };
    // The decode thread joins the CPU backends' pool, as in dia-infer.
    let result = match rayon::ThreadPoolBuilder::new().build() {
        Ok(pool) => pool.install(|| decode.run_on_backend()),
        Err(_) => decode.run_on_backend(),
    };
    shared.decoded.notify_one();
    if result.is_err() {
        shared.enter(Phase::Cutting);
    }
    runtime.block_on(http)??;
    result
}

/// Serves `app` on `listener` until a signal, then answers new requests 503 while the in-flight
/// ones finish (cut after `grace` seconds), then lets connections close; stops at once if the
/// decode thread fails.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shared: Arc<Shared>,
    grace: f64,
    limits: Limits,
) -> Result<()> {
    let stopping = shared.clone();
    let stop = async move {
        tokio::select! {
            _ = signal() => {
                tracing::info!("stopping: in-flight requests get {grace} s to finish");
                stopping.enter(Phase::Draining);
                let cut = stopping.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs_f64(grace)).await;
                    cut.enter(Phase::Cutting);
                });
                // Connections are still taken, new requests answered 503, until the decode
                // loop has finished those in flight.
                stopping.decoded.notified().await;
            }
            _ = stopping.stop.notified() => {}
        }
    };
    listen::serve(listener, app, limits, stop).await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The decode thread's work: load, then serve.
struct Decode<'a> {
    args: &'a ServeArgs,
    options: LoadOptions,
    files: DiaFiles,
    receiver: Receiver<Work>,
    shared: Arc<Shared>,
}

impl Decode<'_> {
    fn run_on_backend(self) -> Result<()> {
        let runtime = &self.args.runtime;
        run_on(runtime.backend, runtime.dtype, self)?
    }
}

impl OnDevice for Decode<'_> {
    type Output = Result<()>;

    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Result<()> {
        let args = self.args;
        let options = self.options.model_options(dtype);
        let dia = Dia::<B>::load_files(&self.files, options, &device)?;
        let (model, dac) = (dia.model(), dia.codec());
        let voices = match &args.voices {
            Some(dir) => Voices::load(dir, &dia)?,
            None => Voices::default(),
        };
        let limits = RequestLimits::new(args.request_timeout, args.client_lag);
        let engine = Engine::new(model, dac, args.max_batch, limits, self.shared.clone())?;
        let ready = Ready {
            voices: voices.into(),
            voices_dir: args.voices.clone(),
            sample_rate: dac.config().sample_rate,
        };
        let _ = self.shared.ready.set(ready);
        tracing::info!("model loaded: serving");
        engine.run(&self.receiver);
        Ok(())
    }
}
