//! Bad requests get a 4xx with an OpenAI error body naming the problem; the service
//! endpoints; voices from a directory.

use serde_json::{Value, json};

use crate::common::*;

/// Sends `body` (raw bytes) and checks the status, the error type and the field named.
async fn refused(server: &Server, body: Vec<u8>, status: u16, param: Option<&str>, says: &str) {
    let response = server
        .client
        .post(server.at("/v1/audio/speech"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "for a request that {says}");
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.to_lowercase().contains(says),
        "{message:?} should say {says:?}"
    );
    assert!(error["type"].is_string());
    assert_eq!(error["param"].as_str(), param, "param of {message:?}");
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut request = case0("wav");
    request[field] = value;
    serde_json::to_vec(&request).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_openai_errors() {
    let server = Server::start(&[]).await;
    let s = &server;
    refused(s, b"{\"model\": ".to_vec(), 400, None, "not valid json").await;
    refused(s, b"[1, 2]".to_vec(), 400, None, "json object").await;
    refused(
        s,
        with("temperature", json!("hot")),
        400,
        Some("temperature"),
        "temperature",
    )
    .await;
    refused(s, with("input", json!(5)), 400, Some("input"), "input").await;
    refused(
        s,
        with("input", Value::Null),
        400,
        Some("input"),
        "required",
    )
    .await;
    refused(
        s,
        with("model", Value::Null),
        400,
        Some("model"),
        "required",
    )
    .await;
    refused(s, with("input", json!("  ")), 400, Some("input"), "empty").await;
    let long = "a".repeat(4097);
    refused(
        s,
        with("input", json!(long)),
        400,
        Some("input"),
        "4097 characters",
    )
    .await;
    refused(
        s,
        with("voice", json!("nobody")),
        400,
        Some("voice"),
        "default",
    )
    .await;
    refused(s, with("voice", json!(3)), 400, Some("voice"), "voice").await;
    refused(
        s,
        with("response_format", json!("aac")),
        400,
        Some("response_format"),
        "mp3, opus, flac, wav, pcm",
    )
    .await;
    refused(
        s,
        with("stream_format", json!("ws")),
        400,
        Some("stream_format"),
        "sse",
    )
    .await;
    refused(s, with("speed", json!(10)), 400, Some("speed"), "0.25").await;
    refused(s, with("speed", json!(1.5)), 400, Some("speed"), "own pace").await;
    refused(s, with("top_p", json!(0)), 400, Some("top_p"), "top_p").await;
    refused(
        s,
        with("max_tokens", json!(100000)),
        400,
        Some("max_tokens"),
        "limit",
    )
    .await;
    refused(s, with("seed", json!(-1)), 400, Some("seed"), "seed").await;
    let huge = vec![b' '; 100 * 1024];
    refused(s, huge, 413, None, "length limit").await;

    let missing = s.client.get(s.at("/v1/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/nothing")
    );
    let wrong = s.client.get(s.at("/v1/audio/speech")).send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    let body: Value = wrong.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    let headers = s
        .client
        .post(s.at("/v1/audio/speech"))
        .header("x-big", "b".repeat(20 * 1024))
        .json(&case0("wav"))
        .send()
        .await
        .unwrap();
    assert_eq!(headers.status(), 431);

    // Unknown fields are ignored, `instructions` accepted, plain text gets a speaker tag.
    let mut newer = case0("wav");
    newer["future_field"] = json!({"x": 1});
    newer["instructions"] = json!("Speak cheerfully.");
    let samples = wav_samples(&s.speech_bytes(&newer).await, 44_100);
    assert_samples_match(&samples, &golden_samples(0));
    let mut plain = case0("wav");
    plain["input"] = json!("Hello there.");
    plain["voice"] = json!({"id": "default"});
    assert!(!wav_samples(&s.speech_bytes(&plain).await, 44_100).is_empty());
    assert!(s.metric("dia_requests_total{status=\"400\"}").await >= 17.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_models_and_metrics() {
    let server = Server::start(&["--served-model-name", "dia-test"]).await;
    let get = |path: &str| server.client.get(server.at(path)).send();
    let health: Value = get("/health").await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let models: Value = get("/v1/models").await.unwrap().json().await.unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "dia-test");
    assert_eq!(get("/v1/models/dia-test").await.unwrap().status(), 200);
    assert_eq!(get("/v1/models/other").await.unwrap().status(), 404);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for name in [
        "dia_queue_depth",
        "dia_steps_per_second",
        "dia_batch_size_bucket",
        "dia_time_to_first_audio_seconds_count",
    ] {
        assert!(metrics.contains(name), "no {name} in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn voices_from_a_directory_condition_the_speech() {
    let dir = tempfile::tempdir().unwrap();
    write_prompt_codes("case1_prompt0", &dir.path().join("narrator.codes.json"));
    std::fs::write(dir.path().join("narrator.txt"), "[S1] A voice to continue.").unwrap();
    write_voice_wav(&dir.path().join("alloy.wav"));
    std::fs::write(dir.path().join("alloy.txt"), "[S2] A tone.").unwrap();
    let voices = dir.path().to_str().unwrap();
    let server = Server::start(&["--voices", voices]).await;

    assert_eq!(server.voices().await, ["alloy", "narrator", "default"]);

    let speak = |voice: Value| {
        let mut request = case0("wav");
        request["voice"] = voice;
        request
    };
    let plain = server.speech_bytes(&speak(json!("default"))).await;
    let narrator = server.speech_bytes(&speak(json!("narrator"))).await;
    assert_ne!(narrator, plain, "the voice prompt changes the speech");
    assert_eq!(
        server.speech_bytes(&speak(json!({"id": "narrator"}))).await,
        narrator
    );
    // The directory's `alloy` overrides OpenAI's name.
    assert_ne!(server.speech_bytes(&speak(json!("alloy"))).await, plain);
    // Other OpenAI names mean no prompt.
    assert_eq!(server.speech_bytes(&speak(json!("nova"))).await, plain);
}

#[test]
fn a_voice_without_a_transcript_stops_the_start_up() {
    let dir = tempfile::tempdir().unwrap();
    write_prompt_codes("case1_prompt0", &dir.path().join("mute.codes.json"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dia-server"))
        .args(["--port", "0", "--backend", "flex", "--model-dir"])
        .arg(fixture("dia-tiny"))
        .arg("--dac-path")
        .arg(fixture("dac-tiny/weights.safetensors"))
        .arg("--voices")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("voice \"mute\"") && stderr.contains("transcript"),
        "{stderr}"
    );
}
