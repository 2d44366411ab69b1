//! The HTTP surface: the speech endpoint and the service endpoints (models, voices, health,
//! metrics), with OpenAI-shaped errors for everything else and size limits on requests.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::auth::{ApiKeys, require_key};
use crate::error::ApiError;
use crate::shared::Shared;
use crate::speech::{ready, speech};
use crate::upload::{MAX_UPLOAD_BYTES, add_voice, delete_voice};
use crate::voices::DEFAULT_VOICE;

/// The largest request body (a 4096-character input fits many times over).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest total size of a request's headers.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Every route of the server: the `/v1/` API behind `keys` (when any); the web page at `/`,
/// `/health` and `/metrics` open; CORS for `cors`'s origins.
pub fn router(shared: Arc<Shared>, keys: ApiKeys, cors: Option<CorsLayer>) -> Router {
    let speech = post(speech).layer(middleware::from_fn_with_state(shared.clone(), count_status));
    let api = Router::new()
        .route("/v1/audio/speech", speech)
        .route(
            "/v1/audio/voices",
            get(voices)
                .post(add_voice)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
                .layer(middleware::from_fn(crate::upload::refuse_oversized)),
        )
        .route("/v1/audio/voices/{name}", delete(delete_voice))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route_layer(middleware::from_fn_with_state(Arc::new(keys), require_key));
    let router = api
        .route("/", get(page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(limit_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }))
        // Failures are logged where they happen (the decode loop); a 503 while loading is not one.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .with_state(shared);
    // Outermost: a browser's preflight is answered before any key is asked for.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Counts speech responses by status.
async fn count_status(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    shared.metrics.request(response.status().as_u16());
    response
}

/// Refuses requests whose headers are too large (431).
async fn limit_headers(request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request's headers are {size} bytes; the limit is {MAX_HEADER_BYTES}"),
        )
        .into_response();
    }
    next.run(request).await
}

/// The web page: a script box, the voices and sampling controls, audio that plays while it is
/// generated, this page's results and new voices from a clip (HTML, CSS and JS in the binary).
const PAGE: &str = include_str!("page/index.html");

/// `GET /`: the web page.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /health`: 200 once the model is loaded, 503 before and while shutting down.
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let status = match (shared.ready.get(), shared.phase()) {
        (Some(_), crate::shared::Phase::Serving) => "ok",
        (Some(_), _) => "shutting_down",
        (None, _) => "loading",
    };
    let code = match status {
        "ok" => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(json!({ "status": status }))).into_response()
}

fn model_entry(shared: &Shared) -> serde_json::Value {
    json!({ "id": shared.model_name, "object": "model", "created": 0, "owned_by": "nari-labs" })
}

/// `GET /v1/models`: the one model served.
async fn models(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({ "object": "list", "data": [model_entry(&shared)] })).into_response()
}

/// `GET /v1/models/{id}`.
async fn model(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if id == shared.model_name {
        return Json(model_entry(&shared)).into_response();
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("the model {id:?} does not exist"),
    )
    .code("model_not_found")
    .into_response()
}

/// `GET /v1/audio/voices`: the voices directory's names, then `default` (no prompt).
async fn voices(State(shared): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let ready = ready(&shared)?;
    let voices: Vec<_> = ready
        .voices()
        .names()
        .chain([DEFAULT_VOICE])
        .map(|name| json!({ "id": name, "name": name }))
        .collect();
    Ok(Json(json!({ "voices": voices })).into_response())
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        shared.metrics.render(),
    )
        .into_response()
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route {} {}", request.method(), request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
