//! API keys and CORS: with keys set, every `/v1/` route wants `Authorization: Bearer KEY` (any
//! of the flag's, `DIA_API_KEYS`' or the file's) and says 401 in OpenAI's shape otherwise, while
//! the web page, `/health` and `/metrics` stay open; a browser's preflight from an allowed origin is answered
//! without a key.

use serde_json::Value;

use crate::common::*;

/// The status and error body of `GET path` with `key` as a bearer token (none: no header).
async fn get(server: &Server, path: &str, key: Option<&str>) -> (u16, Option<Value>, bool) {
    let mut request = server.client.get(server.at(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenged = response
        .headers()
        .get("www-authenticate")
        .is_some_and(|v| v == "Bearer");
    (status, response.json().await.ok(), challenged)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_v1_route_wants_a_key_from_any_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, "# keys\nfrom-file\n").unwrap();
    let file = file.to_str().unwrap();
    let server = Server::start_with_keys(
        &["--api-key", "from-flag", "--api-key-file", file],
        "env-1,env-2",
    )
    .await;
    for key in [None, Some("wrong"), Some("from-fla"), Some("")] {
        for path in ["/v1/models", "/v1/audio/voices", "/v1/models/dia-tiny"] {
            let (status, body, challenged) = get(&server, path, key).await;
            assert_eq!(status, 401, "{path} with {key:?}");
            assert!(challenged, "{path}: WWW-Authenticate: Bearer");
            let error = &body.expect("a JSON body")["error"];
            assert_eq!(error["code"], "invalid_api_key", "{error}");
            assert!(
                error["message"].as_str().is_some_and(|m| m.contains("key")),
                "{error}"
            );
        }
    }
    let refused = server.speech(&case0("wav")).await;
    assert_eq!(refused.status(), 401, "speech without a key");
    for key in ["from-flag", "from-file", "env-1", "env-2"] {
        let (status, _, _) = get(&server, "/v1/models", Some(key)).await;
        assert_eq!(status, 200, "key {key}");
    }
    let spoken = server
        .client
        .post(server.at("/v1/audio/speech"))
        .bearer_auth("env-2")
        .json(&case0("wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(spoken.status(), 200);
    assert!(!spoken.bytes().await.unwrap().is_empty());
    for open in ["/health", "/metrics", "/"] {
        let response = server.client.get(server.at(open)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{open} needs no key");
    }
    let page = server.client.get(server.at("/")).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let page = page.text().await.unwrap();
    assert!(page.contains("<title>Dia</title>") && page.contains("/v1/audio/speech"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_origin_gets_cors_and_its_preflight_needs_no_key() {
    let server = Server::start_with_keys(&["--cors-origin", "https://app.example"], "k").await;
    let preflight = |origin: &'static str| {
        server
            .client
            .request(reqwest::Method::OPTIONS, server.at("/v1/audio/speech"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let other = preflight("https://elsewhere.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let response = server
        .client
        .get(server.at("/v1/models"))
        .header("origin", "https://app.example")
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

#[test]
fn a_bad_key_file_stops_the_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dia-server"))
        .args(["--port", "0", "--backend", "flex", "--model-dir"])
        .arg(fixture("dia-tiny"))
        .arg("--dac-path")
        .arg(fixture("dac-tiny/weights.safetensors"))
        .arg("--api-key-file")
        .arg(dir.path().join("missing"))
        .env_remove("DIA_API_KEYS")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--api-key-file"), "{stderr}");
}
