//! Voices over the API: a clip uploaded (`POST /v1/audio/voices`) is encoded once, stored in
//! `--voices` as a transcript and codes, listed, usable as `voice`, still there after a
//! restart, and gone after `DELETE`; bad uploads get clear 4xx errors naming the problem.

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::common::*;

/// A clip of 10 ms of a tone, as a WAV file's bytes.
fn clip() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.wav");
    write_voice_wav(&path);
    std::fs::read(path).unwrap()
}

/// A form with `name`, `transcript` and `file` (bytes named `file_name`), each when given.
fn form(name: Option<&str>, transcript: Option<&str>, file: Option<(Vec<u8>, &str)>) -> Form {
    let mut form = Form::new();
    if let Some(name) = name {
        form = form.text("name", name.to_string());
    }
    if let Some(transcript) = transcript {
        form = form.text("transcript", transcript.to_string());
    }
    if let Some((bytes, file_name)) = file {
        form = form.part("file", Part::bytes(bytes).file_name(file_name.to_string()));
    }
    form
}

/// Posts `form`: the status and the JSON body.
async fn upload(server: &Server, form: Form) -> (u16, Value) {
    let response = server
        .client
        .post(server.at("/v1/audio/voices"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn delete(server: &Server, name: &str) -> (u16, Value) {
    let response = server
        .client
        .delete(server.at(&format!("/v1/audio/voices/{name}")))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The server's greedy WAV of case 0 in `voice`, or its status when not a 200.
async fn speak(server: &Server, voice: &str) -> Result<Vec<u8>, u16> {
    let mut request = case0("wav");
    request["voice"] = voice.into();
    let response = server.speech(&request).await;
    match response.status().as_u16() {
        200 => Ok(response.bytes().await.unwrap().to_vec()),
        status => Err(status),
    }
}

/// The files in `dir`, sorted.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_voice_is_stored_listed_used_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let voices = dir.path().to_str().unwrap();
    let server = Server::start(&["--voices", voices]).await;
    assert_eq!(server.voices().await, ["default"]);
    let plain = speak(&server, "default").await.unwrap();

    let transcript = Some("[S1] A guest voice.");
    let (status, body) = upload(
        &server,
        form(Some("guest"), transcript, Some((clip(), "Me.WAV"))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "guest");
    assert!(body["frames"].as_u64().is_some_and(|f| f > 0), "{body}");
    assert_eq!(server.voices().await, ["guest", "default"]);
    assert_eq!(
        files(dir.path()),
        ["guest.codes.json", "guest.txt"],
        "stored whole, no temporaries"
    );
    let spoken = speak(&server, "guest").await.unwrap();
    assert_ne!(spoken, plain, "the voice conditions the speech");

    let (status, body) = upload(
        &server,
        form(Some("guest"), transcript, Some((clip(), "a.wav"))),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["param"], "name");

    // A restart finds the stored voice and speaks the same with it.
    drop(server);
    let server = Server::start(&["--voices", voices]).await;
    assert_eq!(server.voices().await, ["guest", "default"]);
    assert_eq!(speak(&server, "guest").await.unwrap(), spoken);

    let (status, body) = delete(&server, "guest").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.voices().await, ["default"]);
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    assert_eq!(speak(&server, "guest").await, Err(400));
    let (status, body) = delete(&server, "guest").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "voice_not_found");
}

/// The response to an upload whose head announces 17 MiB: sent before any of the body, as a
/// client sees it before it has sent what the server would refuse. (Status line, body.)
fn oversized_upload(server: &Server) -> (String, String) {
    use std::io::{Read, Write};
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /v1/audio/voices HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; \
         boundary=b\r\nContent-Length: {}\r\n\r\n",
        17 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("}}") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (status, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
    (status.to_string(), rest.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&["--voices", dir.path().to_str().unwrap()]).await;
    let t = Some("[S1] Words.");
    let wav = || Some((clip(), "clip.wav"));
    let cases: Vec<(Form, u16, &str, &str)> = vec![
        (form(Some("../evil"), t, wav()), 400, "name", "letters"),
        (form(Some("a b"), t, wav()), 400, "name", "letters"),
        (form(Some("default"), t, wav()), 400, "name", "no voice"),
        (form(None, t, wav()), 400, "name", "no name"),
        (
            form(Some("v"), None, wav()),
            400,
            "transcript",
            "no transcript",
        ),
        (
            form(Some("v"), Some("  "), wav()),
            400,
            "transcript",
            "no transcript",
        ),
        (form(Some("v"), t, None), 400, "file", "no file"),
        (
            form(Some("v"), t, Some((b"not audio".to_vec(), "x.wav"))),
            400,
            "file",
            "cannot read audio",
        ),
        (
            form(Some("v"), t, Some((clip(), "x.txt"))),
            400,
            "file",
            ".wav",
        ),
        (
            form(Some("v"), t, wav()).text("extra", "x"),
            400,
            "file",
            "unknown form field",
        ),
        (
            form(Some("v"), t, Some((vec![0; 17 << 20], "big.wav"))),
            413,
            "",
            "limit",
        ),
    ];
    for (form, status, param, says) in cases {
        let (got, body) = upload(&server, form).await;
        let error = &body["error"];
        assert_eq!(got, status, "{says}: {body}");
        if !param.is_empty() {
            assert_eq!(error["param"], param, "{body}");
        }
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(says)),
            "{says}: {body}"
        );
    }
    assert!(
        files(dir.path()).is_empty(),
        "nothing stored: {:?}",
        files(dir.path())
    );
    assert_eq!(server.voices().await, ["default"]);
    let (status, body) = oversized_upload(&server);
    assert!(status.contains(" 413 "), "{status}");
    assert!(body.contains("limit of 16 MiB"), "{body}");

    let without = Server::start(&[]).await;
    let (status, body) = upload(&without, form(Some("v"), t, wav())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("voices_disabled")),
        "{body}"
    );
    let (status, body) = delete(&without, "v").await;
    assert_eq!(status, 400, "{body}");
}
