//! `POST /v1/audio/speech`: a checked request joins the decode loop and its audio streams
//! back as it becomes final: the encoded audio as a chunked body, or server-sent events.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use dia_burn::dia_model::{GenerationConfig, LongFormRequest};
use dia_burn::{SamplingOverrides, SpeechJob};
use futures_util::stream::{self, Stream};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::format::AudioEncoder;
use crate::request::SpeechRequest;
use crate::shared::{Backlog, JobEvent, Phase, Ready, Shared, Submission};

/// Seconds a client told "busy" (429) is asked to wait.
const RETRY_AFTER_SECONDS: u64 = 2;

/// The handler.
pub async fn speech(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let ready = ready(&shared)?;
    if shared.phase() != Phase::Serving {
        return Err(unavailable());
    }
    let request = SpeechRequest::parse(&body)?;
    let voice = ready.voices().resolve(request.voice.as_deref())?;
    let config = generation_config(request.sampling);
    let encoder = request
        .format
        .encoder(ready.sample_rate)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let slot = shared.reserve().ok_or_else(|| ApiError {
        retry_after: Some(RETRY_AFTER_SECONDS),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "the server is at capacity (every batch slot and queue place is taken); retry later",
        )
        .code("queue_full")
    })?;
    let (events, receiver) = mpsc::unbounded_channel();
    let backlog = Backlog::default();
    let (reply, accepted) = oneshot::channel();
    let job = SpeechJob {
        script: LongFormRequest {
            script: request.input.clone(),
            voice,
        },
        config,
        stream: true,
    };
    let submission = Submission {
        job,
        events,
        backlog: backlog.clone(),
        reply,
        arrived,
        slot,
    };
    shared.submit(submission).map_err(|_| unavailable())?;
    match accepted.await {
        Ok(Ok(())) => {}
        Ok(Err(message)) => return Err(refused(message)),
        Err(_) => return Err(unavailable()),
    }
    let usage_in = request.input.len();
    let events = Events { receiver, backlog };
    let response = if request.sse {
        sse_response(events, encoder, usage_in)
    } else {
        audio_response(events, encoder, request.format.content_type())
    };
    Ok(with_seed(response, config.seed))
}

/// The loaded model's facts, or 503 while it loads.
pub fn ready(shared: &Shared) -> Result<&Ready, ApiError> {
    shared.ready.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is still loading; retry when GET /health says ok",
        )
        .code("loading")
    })
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is shutting down",
    )
}

/// A job the model refused (its checks): a 400 naming the field when the message does.
fn refused(message: String) -> ApiError {
    let fields = [
        "max_tokens",
        "temperature",
        "top_p",
        "cfg_filter_top_k",
        "cfg_scale",
    ];
    let param = fields
        .into_iter()
        .find(|f| message.contains(f))
        .unwrap_or("input");
    ApiError::invalid(param, message)
}

/// The request's generation parameters over Dia's defaults; a random seed when none is
/// given (sent back in `x-dia-seed`, so any response can be reproduced).
fn generation_config(sampling: SamplingOverrides) -> GenerationConfig {
    sampling.over(GenerationConfig {
        seed: rand::random(),
        ..GenerationConfig::default()
    })
}

fn with_seed(mut response: Response, seed: u64) -> Response {
    response
        .headers_mut()
        .insert("x-dia-seed", HeaderValue::from(seed));
    response
}

/// What a response body is made of: encoded bytes as the events come.
enum Piece {
    Audio(Vec<u8>),
    /// The last bytes, and the frames decoded.
    End(Vec<u8>, usize),
    Failed(String),
}

/// What a response hears from the decode loop, and how far behind it is.
struct Events {
    receiver: mpsc::UnboundedReceiver<JobEvent>,
    backlog: Backlog,
}

/// The request's events as encoded pieces, ending after `End` or `Failed`. The body asks for
/// the next piece once the last is written, so a client that stops reading leaves its audio
/// in the backlog, where the decode loop sees it.
fn pieces(events: Events, encoder: Box<dyn AudioEncoder>) -> impl Stream<Item = Piece> {
    stream::unfold(Some((events, encoder)), |state| async move {
        let (mut events, mut encoder) = state?;
        loop {
            let piece = match events.receiver.recv().await {
                Some(JobEvent::Audio(samples)) => {
                    events.backlog.taken(samples.len());
                    match encoder.push(&samples) {
                        Ok(bytes) if bytes.is_empty() => continue,
                        Ok(bytes) => Piece::Audio(bytes),
                        Err(e) => Piece::Failed(e.to_string()),
                    }
                }
                Some(JobEvent::Done { frames }) => {
                    let piece = match encoder.finish() {
                        Ok(bytes) => Piece::End(bytes, frames),
                        Err(e) => Piece::Failed(e.to_string()),
                    };
                    return Some((piece, None));
                }
                Some(JobEvent::Failed(message)) => Piece::Failed(message),
                None => Piece::Failed("the decode loop ended".into()),
            };
            let next = matches!(piece, Piece::Audio(_)).then_some((events, encoder));
            return Some((piece, next));
        }
    })
}

/// The encoded audio as a chunked body; a request cut midway ends the body with an error,
/// so the client sees a truncated transfer, never a short file that looks whole.
fn audio_response(
    events: Events,
    encoder: Box<dyn AudioEncoder>,
    content_type: &'static str,
) -> Response {
    use futures_util::StreamExt;
    let body = pieces(events, encoder).map(|piece| match piece {
        Piece::Audio(bytes) | Piece::End(bytes, _) => Ok(Bytes::from(bytes)),
        Piece::Failed(message) => Err(std::io::Error::other(message)),
    });
    let mut response = Response::new(Body::from_stream(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Server-sent events: `speech.audio.delta` with base64 audio, then `speech.audio.done` with
/// the usage (input: UTF-8 bytes, Dia's text tokens; output: audio frames); a failure is an
/// `error` event.
fn sse_response(events: Events, encoder: Box<dyn AudioEncoder>, input_tokens: usize) -> Response {
    use futures_util::StreamExt;
    let body = pieces(events, encoder).map(move |piece| {
        let events = match piece {
            Piece::Audio(bytes) => delta(&bytes),
            Piece::End(bytes, frames) => {
                let usage = serde_json::json!({
                    "input_tokens": input_tokens,
                    "output_tokens": frames,
                    "total_tokens": input_tokens + frames,
                });
                let done = serde_json::json!({ "type": "speech.audio.done", "usage": usage });
                let last = if bytes.is_empty() {
                    String::new()
                } else {
                    delta(&bytes)
                };
                format!("{last}{}", event(&done))
            }
            Piece::Failed(message) => {
                let error = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message).body();
                event(&serde_json::json!({ "type": "error", "error": error["error"] }))
            }
        };
        Ok::<_, std::convert::Infallible>(Bytes::from(events))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One `speech.audio.delta` event.
fn delta(bytes: &[u8]) -> String {
    let audio = base64::engine::general_purpose::STANDARD.encode(bytes);
    event(&serde_json::json!({ "type": "speech.audio.delta", "audio": audio }))
}

fn event(value: &serde_json::Value) -> String {
    format!("data: {value}\n\n")
}
