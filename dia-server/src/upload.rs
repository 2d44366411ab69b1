//! Voices managed over the API: `POST /v1/audio/voices` (multipart: `name`, `file`,
//! `transcript`) makes a voice of a clip, encoded once by the decode loop and stored in
//! `--voices`; `DELETE /v1/audio/voices/{name}` removes one. Both show at once in
//! `GET /v1/audio/voices` and as a speech request's `voice`.

use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::shared::{Ready, Shared, VoiceClip};
use crate::speech::ready;
use crate::voices::{self, check_name};

/// The largest upload (a minute of 16-bit stereo WAV at 48 kHz is 11 MB).
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// The longest clip a voice is made of, in seconds.
const MAX_CLIP_SECONDS: f64 = 60.0;

/// A new voice's parts as uploaded.
#[derive(Default)]
struct Upload {
    name: Option<String>,
    transcript: Option<String>,
    /// The clip's bytes and the extension its file name gives (`wav`, `mp3`, `flac`, `ogg`).
    file: Option<(Vec<u8>, String)>,
}

/// `POST /v1/audio/voices`.
pub async fn add_voice(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    // An upload that says it is too large is refused before any of it is read.
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    if length.is_some_and(|n: usize| n > MAX_UPLOAD_BYTES) {
        return Err(too_large());
    }
    // The body is read first: a client sees an answer only once its upload is taken.
    let multipart = multipart.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let upload = read_upload(multipart).await?;
    let ready = ready(&shared)?;
    let dir = ready.voices_dir.clone().ok_or_else(uploads_off)?;
    let name = upload.name.ok_or_else(|| missing("name"))?;
    check_name(&name)?;
    let transcript = upload.transcript.filter(|t| !t.trim().is_empty());
    let transcript = transcript.ok_or_else(|| missing("transcript"))?;
    let (bytes, extension) = upload.file.ok_or_else(|| missing("file"))?;
    taken(ready, &name)?;
    let samples = decode_clip(bytes, extension, ready.sample_rate).await?;
    let (reply, voice) = oneshot::channel();
    let clip = VoiceClip {
        samples,
        transcript,
        reply,
    };
    if !shared.encode(clip) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ));
    }
    let voice = voice
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            )
        })?
        .map_err(|e| ApiError::invalid("file", e))?;
    let frames = voice.codes.len();
    let mut voices = ready.voices_mut();
    if voices.contains(&name) {
        return Err(conflict(&name));
    }
    voices::save(&dir, &name, &voice).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store voice {name:?}: {e:#}"),
        )
    })?;
    voices.insert(&name, voice);
    tracing::info!(voice = %name, frames, "voice added");
    let body = json!({ "id": name, "name": name, "frames": frames });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /v1/audio/voices/{name}`.
pub async fn delete_voice(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let ready = ready(&shared)?;
    let dir = ready.voices_dir.clone().ok_or_else(uploads_off)?;
    let mut voices = ready.voices_mut();
    if !voices.contains(&name) {
        return Err(
            ApiError::new(StatusCode::NOT_FOUND, format!("there is no voice {name:?}"))
                .code("voice_not_found"),
        );
    }
    voices::delete(&dir, &name).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot delete voice {name:?}: {e:#}"),
        )
    })?;
    voices.remove(&name);
    tracing::info!(voice = %name, "voice deleted");
    Ok(Json(json!({ "id": name, "deleted": true })).into_response())
}

/// The form's fields, read to the end (a client sees its answer only once its body is taken);
/// an unknown one is a 400, an oversized body a 413.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, ApiError> {
    let mut upload = Upload::default();
    let mut unknown = None;
    while let Some(field) = multipart.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "name" => upload.name = Some(field.text().await.map_err(form_error)?.trim().into()),
            "transcript" => upload.transcript = Some(field.text().await.map_err(form_error)?),
            "file" => {
                let file_name = field.file_name().unwrap_or_default().to_ascii_lowercase();
                let extension = file_name.rsplit_once('.').map(|(_, e)| e.to_string());
                let bytes = field.bytes().await.map_err(form_error)?.to_vec();
                upload.file = Some((bytes, extension.unwrap_or_default()));
            }
            _ => {
                field.bytes().await.map_err(form_error)?;
                unknown.get_or_insert(name);
            }
        }
    }
    match unknown {
        Some(other) => Err(ApiError::invalid(
            "file",
            format!("unknown form field {other:?}: send name, file and transcript"),
        )),
        None => Ok(upload),
    }
}

/// The clip's samples at the codec's rate: any of wav, mp3, flac or ogg, at most
/// [`MAX_CLIP_SECONDS`]; anything else is a 400 naming the problem.
async fn decode_clip(bytes: Vec<u8>, extension: String, rate: u32) -> Result<Vec<f32>, ApiError> {
    if !["wav", "mp3", "flac", "ogg"].contains(&extension.as_str()) {
        return Err(ApiError::invalid(
            "file",
            format!(
                "the clip's file name must end in .wav, .mp3, .flac or .ogg, not {extension:?}"
            ),
        ));
    }
    let decoded = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join(format!("clip.{extension}"));
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        dia_burn::audio::read_mono(&path, rate, Some(MAX_CLIP_SECONDS)).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    decoded.map_err(|e| ApiError::invalid("file", e.replace("clip.", "the clip.")))
}

/// A 409 when `name` is a voice already.
fn taken(ready: &Ready, name: &str) -> Result<(), ApiError> {
    match ready.voices().contains(name) {
        true => Err(conflict(name)),
        false => Ok(()),
    }
}

fn conflict(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        format!("voice {name:?} exists; delete it first to replace it"),
    )
    .param("name")
}

fn uploads_off() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "voices cannot be added or deleted: the server was started without --voices DIR",
    )
    .code("voices_disabled")
}

fn missing(field: &'static str) -> ApiError {
    ApiError::invalid(field, format!("the form has no {field}"))
}

/// A malformed form (400) or one over [`MAX_UPLOAD_BYTES`] (413).
fn form_error(e: MultipartError) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        status => ApiError::new(status, format!("cannot read the form: {}", e.body_text())),
    }
}

/// How much of an upload declared over [`MAX_UPLOAD_BYTES`] is still read, and for how long,
/// after its 413 has gone out.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Refuses an upload whose `Content-Length` is over [`MAX_UPLOAD_BYTES`] at once, with a 413,
/// and reads the body the client goes on sending (up to [`DRAIN_BYTES`], for at most
/// [`DRAIN_TIME`]) in the background. The client then reads the 413 rather than a connection
/// reset in the middle of its upload, which is what closing on unread data gives.
pub async fn refuse_oversized(request: axum::extract::Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_none_or(|n| n <= MAX_UPLOAD_BYTES as u64) {
        return next.run(request).await;
    }
    let mut body = request.into_body().into_data_stream();
    tokio::spawn(tokio::time::timeout(DRAIN_TIME, async move {
        let mut read = 0;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > DRAIN_BYTES {
                break;
            }
        }
    }));
    too_large().into_response()
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the upload is over the limit of {} MiB",
            MAX_UPLOAD_BYTES >> 20
        ),
    )
}
