//! A real `dia-server` process on a free local port with the tiny fixture model and codec,
//! and what the tests read back from it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use dia_test_support::{fixture, golden_json, write_prompt_codes};
use serde_json::{Value, json};

/// A running server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts the server on the tiny fixtures with `extra` options and waits until it is ready.
    pub async fn start(extra: &[&str]) -> Self {
        let mut server = Self::spawn(extra);
        server.wait_ready().await;
        server
    }

    /// Starts the server without waiting for the model.
    pub fn spawn(extra: &[&str]) -> Self {
        Self::spawn_with_keys(extra, None)
    }

    /// [`Server::start`] with `DIA_API_KEYS` set to `keys`.
    pub async fn start_with_keys(extra: &[&str], keys: &str) -> Self {
        let mut server = Self::spawn_with_keys(extra, Some(keys));
        server.wait_ready().await;
        server
    }

    /// [`Server::spawn`] with `DIA_API_KEYS` set to `keys`, or unset (whatever the test's
    /// environment says).
    fn spawn_with_keys(extra: &[&str], keys: Option<&str>) -> Self {
        let model = fixture("dia-tiny");
        let dac = fixture("dac-tiny/weights.safetensors");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dia-server"));
        command
            .args(["--port", "0", "--backend", "flex", "--model-dir"])
            .arg(&model)
            .arg("--dac-path")
            .arg(&dac)
            .args(extra)
            .env("HF_HUB_OFFLINE", "1")
            .env("RUST_LOG", "warn")
            .env_remove("DIA_API_KEYS")
            .stdout(Stdio::piped());
        if let Some(keys) = keys {
            command.env("DIA_API_KEYS", keys);
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("dia-server listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self {
            child,
            url: address,
            client: reqwest::Client::new(),
        }
    }

    /// Polls `/health` until it says ok.
    pub async fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(r) = self.client.get(self.at("/health")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "server never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Posts `body` to the speech endpoint.
    pub async fn speech(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.at("/v1/audio/speech"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Posts `body` and reads the whole response, which must be a 200.
    pub async fn speech_bytes(&self, body: &Value) -> Vec<u8> {
        let response = self.speech(body).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.bytes().await.unwrap().to_vec()
    }

    /// The value of the Prometheus sample `name` (with its labels), 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.client.get(self.at("/metrics")).send().await.unwrap();
        let text = text.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The voices `GET /v1/audio/voices` lists, in its order.
    pub async fn voices(&self) -> Vec<String> {
        let voices: Value = self
            .client
            .get(self.at("/v1/audio/voices"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let voices = voices["voices"].as_array().unwrap();
        voices
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Decoder steps that ran exactly `size` requests together.
    pub async fn steps_with_batch(&self, size: usize) -> f64 {
        let at = |s: usize| format!("dia_batch_size_bucket{{le=\"{s}\"}}");
        let below = if size > 1 {
            self.metric(&at(size - 1)).await
        } else {
            0.0
        };
        self.metric(&at(size)).await - below
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Golden case 0 as a greedy request in `format`.
pub fn case0(format: &str) -> Value {
    let case = &golden_json("dia-tiny")["cases"][0];
    json!({
        "model": "tts-1",
        "input": case["text"],
        "voice": "alloy",
        "response_format": format,
        "temperature": 0,
        "max_tokens": case["max_tokens"],
    })
}

/// A script of several passes, sampled: a request that runs for a while.
pub fn long_request(format: &str) -> Value {
    let script =
        "[S1] This line keeps the model busy for a while. [S2] So does this one. ".repeat(2);
    json!({
        "model": "tts-1",
        "input": script,
        "response_format": format,
        "seed": 7,
        "max_tokens": 120,
    })
}

/// A streamed WAV's samples, its header checked (16-bit mono at `rate`, sizes unknown).
pub fn wav_samples(bytes: &[u8], rate: u32) -> Vec<i16> {
    assert!(bytes.len() >= 44, "a WAV of {} bytes", bytes.len());
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 1, "mono");
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), rate);
    assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 16, "16-bit");
    assert_eq!(&bytes[36..40], b"data");
    assert_eq!((bytes.len() - 44) % 2, 0, "whole samples");
    bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// The golden codes of case `case` decoded whole by the codec, as 16-bit samples.
pub fn golden_samples(case: usize) -> Vec<i16> {
    use dia_burn::dia_dac::Dac;
    type B = burn_flex::Flex;
    let codes: Vec<Vec<u32>> =
        serde_json::from_value(golden_json("dia-tiny")["cases"][case]["codes"][0].clone()).unwrap();
    let dac = Dac::<B>::load(fixture("dac-tiny/weights.safetensors"), &Default::default()).unwrap();
    let audio = dac.decode(dac.frames_to_codes(&codes).unwrap()).unwrap();
    dia_burn::dia_dac::audio_to_vec(audio)
        .unwrap()
        .into_iter()
        .map(|s| (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)
        .collect()
}

/// Asserts `got` equals `want` within one step of 16-bit rounding (the streamed decode equals
/// the whole one within 1e-5).
pub fn assert_samples_match(got: &[i16], want: &[i16]) {
    assert_eq!(got.len(), want.len(), "sample count");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
        .max()
        .unwrap_or(0);
    assert!(worst <= 1, "samples differ by up to {worst}");
    assert!(want.iter().any(|&s| s != 0), "the reference is silent");
}

impl Server {
    /// [`Server::speech_bytes`] for a request built by value (for concurrent requests).
    pub async fn speech_bytes_owned(&self, body: Value) -> Vec<u8> {
        self.speech_bytes(&body).await
    }
}

/// A voice `NAME.wav`: 10 ms of a tone at 22.05 kHz (resampled at start-up; the tiny
/// model continues at most a few dozen frames).
pub fn write_voice_wav(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 22_050,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..220 {
        let t = i as f32 / 22_050.0;
        let s = (t * 440.0 * std::f32::consts::TAU).sin() * 0.5;
        writer.write_sample((s * 32767.0) as i16).unwrap();
    }
    writer.finalize().unwrap();
}
