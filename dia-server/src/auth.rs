//! Who may use the API: bearer keys (`--api-key`, `DIA_API_KEYS`, `--api-key-file`) required on
//! every `/v1/` route once any is set, and the origins a page served elsewhere may call it from
//! (`--cors-origin`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;

/// The keys a request may present; none: the API is open.
#[derive(Debug, Default)]
pub struct ApiKeys(Vec<Vec<u8>>);

impl ApiKeys {
    /// The keys of `--api-key` (`flags`), `DIA_API_KEYS` (`env`, comma-separated) and
    /// `--api-key-file` (one per line; blank lines and `#` comments skipped).
    pub fn load(flags: &[String], env: Option<&str>, file: Option<&Path>) -> Result<Self> {
        let mut keys: Vec<String> = flags.to_vec();
        keys.extend(
            env.into_iter()
                .flat_map(|e| e.split(','))
                .map(str::to_owned),
        );
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --api-key-file {}", path.display()))?;
            let lines = text.lines().map(str::trim);
            let listed: Vec<_> = lines
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            if listed.is_empty() {
                bail!("--api-key-file {} holds no key", path.display());
            }
            keys.extend(listed.into_iter().map(str::to_owned));
        }
        let keys: Vec<String> = keys
            .iter()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .collect();
        if let Some(bad) = keys
            .iter()
            .find(|k| !k.bytes().all(|b| b.is_ascii_graphic()))
        {
            bail!(
                "an API key must be printable ASCII without spaces ({} characters given)",
                bad.len()
            );
        }
        Ok(Self(keys.into_iter().map(String::into_bytes).collect()))
    }

    /// Whether the API needs a key.
    pub fn required(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is one of the keys, in time that does not depend on where a key
    /// and `presented` first differ (every key is compared in full).
    fn allows(&self, presented: &[u8]) -> bool {
        self.0
            .iter()
            .fold(false, |found, key| found | same(key, presented))
    }
}

/// `a == b`, looking at every byte of the longer.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Lets a request through when the API is open or it carries `Authorization: Bearer KEY` with
/// a valid key; otherwise 401 in OpenAI's error shape.
pub async fn require_key(
    State(keys): State<Arc<ApiKeys>>,
    request: Request,
    next: Next,
) -> Response {
    if !keys.required() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().as_bytes().to_vec());
    let message = match presented {
        Some(key) if keys.allows(&key) => return next.run(request).await,
        Some(_) => "incorrect API key provided",
        None => "this server needs an API key: send `Authorization: Bearer KEY`",
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message)
        .code("invalid_api_key")
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// CORS for pages served from `origins` (`*`: any), or `None` without any: the API's methods,
/// the key and JSON headers, and the seed header exposed.
pub fn cors(origins: &[String]) -> Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = match origins.iter().any(|o| o == "*") {
        true => AllowOrigin::any(),
        false => {
            let parsed: Result<Vec<HeaderValue>, _> =
                origins.iter().map(|o| HeaderValue::from_str(o)).collect();
            AllowOrigin::list(parsed.context("a --cors-origin is not a valid header value")?)
        }
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::HeaderName::from_static("x-dia-seed")]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_flags_the_environment_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, "# ours\nfrom-file\n\n").unwrap();
        let keys = ApiKeys::load(&["flag".into()], Some(" a, b ,"), Some(&file)).unwrap();
        for key in ["flag", "a", "b", "from-file"] {
            assert!(keys.allows(key.as_bytes()), "{key}");
        }
        for not in ["", "fla", "flagg", "c", "# ours"] {
            assert!(!keys.allows(not.as_bytes()), "{not:?}");
        }
        assert!(!ApiKeys::load(&[], None, None).unwrap().required());
        std::fs::write(&file, "\n# nothing\n").unwrap();
        let empty = ApiKeys::load(&[], None, Some(&file)).unwrap_err();
        assert!(empty.to_string().contains("holds no key"), "{empty}");
        let missing = ApiKeys::load(&[], None, Some(&dir.path().join("no"))).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
        assert!(ApiKeys::load(&["two words".into()], None, None).is_err());
    }
}
