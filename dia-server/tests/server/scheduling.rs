//! Requests on one continuous batch: concurrent ones decode together, a late one joins, a
//! full queue says 429 and keeps serving, a client that leaves frees its slot, a request past
//! its time is cut, and SIGTERM lets in-flight requests finish before exiting 0.

use std::time::Duration;

use futures_util::StreamExt;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn eight_concurrent_requests_are_batched_and_each_is_right() {
    let server = Server::start(&["--max-batch", "8"]).await;
    let golden = golden_samples(0);
    let requests = (0..8).map(|_| server.speech_bytes_owned(case0("wav")));
    let responses = futures_util::future::join_all(requests).await;
    for bytes in responses {
        assert_samples_match(&wav_samples(&bytes, 44_100), &golden);
    }
    assert!(
        server.steps_with_batch(8).await > 0.0,
        "no step decoded the eight requests together"
    );
    assert_eq!(server.metric("dia_jobs_total{outcome=\"done\"}").await, 8.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_request_joins_the_running_batch() {
    let server = Server::start(&[]).await;
    let long = server.speech(&long_request("pcm")).await;
    assert_eq!(long.status(), 200);
    let mut long = long.bytes_stream();
    // The long request is decoding once its first audio arrives.
    long.next().await.unwrap().unwrap();
    let late = wav_samples(&server.speech_bytes(&case0("wav")).await, 44_100);
    assert_samples_match(&late, &golden_samples(0));
    assert!(
        server.steps_with_batch(2).await > 0.0,
        "the late request ran alone"
    );
    while let Some(chunk) = long.next().await {
        chunk.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_server_says_429_and_keeps_serving() {
    let server = Server::start(&["--max-batch", "1", "--max-queue", "0"]).await;
    let busy = server.speech(&long_request("pcm")).await;
    let mut busy = busy.bytes_stream();
    busy.next().await.unwrap().unwrap();
    let refused = server.speech(&case0("wav")).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "queue_full");
    while let Some(chunk) = busy.next().await {
        chunk.unwrap();
    }
    let served = wav_samples(&server.speech_bytes(&case0("wav")).await, 44_100);
    assert_samples_match(&served, &golden_samples(0));
    assert_eq!(
        server.metric("dia_requests_total{status=\"429\"}").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_frees_its_slot() {
    let server = Server::start(&["--max-batch", "1", "--max-queue", "0"]).await;
    let leaving = server.speech(&long_request("pcm")).await;
    let mut leaving = leaving.bytes_stream();
    leaving.next().await.unwrap().unwrap();
    drop(leaving);
    // The slot is free at the loop's next step: a new request is served, not refused.
    let mut status = 429;
    for _ in 0..200 {
        let response = server.speech(&case0("wav")).await;
        status = response.status().as_u16();
        if status != 429 {
            let samples = wav_samples(&response.bytes().await.unwrap(), 44_100);
            assert_samples_match(&samples, &golden_samples(0));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    let disconnected = server
        .metric("dia_jobs_total{outcome=\"disconnected\"}")
        .await;
    assert_eq!(disconnected, 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_past_its_time_is_cut_as_a_truncated_transfer() {
    let server = Server::start(&["--request-timeout", "1"]).await;
    let response = server.speech(&long_request("pcm")).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut failed = false;
    while let Some(chunk) = body.next().await {
        if chunk.is_err() {
            failed = true;
            break;
        }
    }
    assert!(failed, "a cut request must not look complete");
    assert_eq!(
        server.metric("dia_jobs_total{outcome=\"timed_out\"}").await,
        1.0
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_refuses_new_ones_then_exits_zero() {
    let mut server = Server::start(&["--shutdown-grace", "120"]).await;
    let whole = server.speech_bytes(&long_request("pcm")).await;
    let response = server.speech(&long_request("pcm")).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut bytes = body.next().await.unwrap().unwrap().to_vec();
    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // While it finishes, a new request is told the server is stopping.
    let start = std::time::Instant::now();
    let refused = loop {
        let response = server.speech(&case0("wav")).await;
        if response.status() != 200 {
            break response;
        }
        // Sent before the signal was handled: served in full, as any in-flight request.
        response.bytes().await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(30), "never refused");
    };
    assert_eq!(refused.status(), 503);
    let error: serde_json::Value = refused.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{error}"
    );
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.expect("the in-flight request finishes"));
    }
    assert_eq!(
        bytes, whole,
        "the request finished as it would have without the signal"
    );
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}
