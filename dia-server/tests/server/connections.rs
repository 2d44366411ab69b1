//! Clients that hold connections without finishing a request, and too many connections: each
//! is bounded, and the server goes on serving. (Clients that stop reading: the decode loop's
//! own test, in `engine.rs`.)

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// The server's `host:port`.
fn address(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Whether the server closes `stream` within `within` (reads end, or the connection resets).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!("expected a close, got {n} bytes"),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1"]).await;
    let mut streams = Vec::new();
    for i in 0..20 {
        let mut stream = TcpStream::connect(address(&server)).await.unwrap();
        if i % 2 == 0 {
            // Half a request head, never finished.
            let head = "POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: app";
            stream.write_all(head.as_bytes()).await.unwrap();
        }
        streams.push(stream);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        assert!(
            closed_within(stream, Duration::from_secs(20)).await,
            "connection {i} still open"
        );
    }
    // A kept-alive connection is closed once idle as long.
    let mut kept = TcpStream::connect(address(&server)).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(20)).await);
    // And the server still serves.
    let health = server
        .client
        .get(server.at("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_limit_wait_until_one_closes() {
    let server = Server::start(&["--max-connections", "2", "--header-timeout", "60"]).await;
    let held: Vec<TcpStream> = vec![
        TcpStream::connect(address(&server)).await.unwrap(),
        TcpStream::connect(address(&server)).await.unwrap(),
    ];
    // A third connection waits in the listen queue: no answer while both are held.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let waiting = client
        .get(server.at("/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(waiting.is_err(), "answered past the limit: {waiting:?}");
    drop(held);
    let health = client.get(server.at("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Requests dropped at any point (before the response head, after its first bytes, during SSE)
/// leave nothing behind: every batch slot and queue place is free again.
#[tokio::test(flavor = "multi_thread")]
async fn requests_dropped_at_any_point_leave_no_slot_taken() {
    use futures_util::StreamExt;
    let server = Server::start(&["--max-batch", "4", "--max-queue", "4"]).await;
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let (client, url) = (server.client.clone(), server.at("/v1/audio/speech"));
        let mut body = long_request("wav");
        if i % 3 == 2 {
            body["stream_format"] = "sse".into();
        }
        tasks.push(tokio::spawn(async move {
            let send = client.post(&url).json(&body).send();
            if i % 3 == 0 {
                // Gone before (or just as) the head arrives.
                let _ = tokio::time::timeout(Duration::from_millis(3 * (i % 7)), send).await;
            } else if let Ok(response) = send.await {
                let _ = response.bytes_stream().next().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Every slot frees at the loop's next step: then eight requests at once are all served.
    let start = std::time::Instant::now();
    loop {
        let mut replies = Vec::new();
        for task in (0..8).map(|_| tokio::spawn(whole_or_status(&server))) {
            replies.push(task.await.unwrap());
        }
        if replies.iter().all(Result::is_ok) {
            for bytes in replies.into_iter().map(Result::unwrap) {
                assert_samples_match(&wav_samples(&bytes, 44_100), &golden_samples(0));
            }
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "slots still taken: {:?}",
            replies
                .iter()
                .filter_map(|r| r.as_ref().err())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A greedy request's whole response if it is a 200, else its status.
fn whole_or_status(server: &Server) -> impl Future<Output = Result<Vec<u8>, u16>> + use<> {
    let request = server
        .client
        .post(server.at("/v1/audio/speech"))
        .json(&case0("wav"));
    async move {
        let response = request.send().await.unwrap();
        match response.status().as_u16() {
            200 => Ok(response.bytes().await.unwrap().to_vec()),
            status => Err(status),
        }
    }
}
