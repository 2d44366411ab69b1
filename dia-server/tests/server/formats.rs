//! Every response format decodes; greedy speech equals the golden codes decoded; SSE events.

use std::io::Cursor;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::*;

const RATE: u32 = 44_100;

/// Decodes a whole file of `extension` (through a file, as `dia-infer` reads prompts): its
/// samples at 44.1 kHz (a file at another rate would come back resampled: another length).
fn decode(bytes: Vec<u8>, extension: &str) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("speech.{extension}"));
    std::fs::write(&path, bytes).unwrap();
    dia_burn::audio::read_mono(&path, RATE, None).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn greedy_speech_equals_the_golden_codes_decoded() {
    let server = Server::start(&[]).await;
    let response = server.speech(&case0("wav")).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "audio/wav");
    assert!(headers.contains_key("x-dia-seed"));
    let samples = wav_samples(&response.bytes().await.unwrap(), RATE);
    assert_samples_match(&samples, &golden_samples(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_decodes_to_the_same_speech() {
    let server = Server::start(&[]).await;
    let wav = wav_samples(&server.speech_bytes(&case0("wav")).await, RATE);
    let n = wav.len();

    // FLAC is lossless: the WAV's samples exactly, in a complete file.
    let flac_bytes = server.speech_bytes(&case0("flac")).await;
    check_flac_header(&flac_bytes, n);
    check_libsndfile(&flac_bytes, n);
    let flac = decode(flac_bytes, "flac");
    let flac: Vec<i16> = flac.iter().map(|&s| (s * 32768.0).round() as i16).collect();
    assert_eq!(flac, wav);

    // MP3: 44.1 kHz mono, at least the clip's length (the codec pads its frames).
    let mp3 = decode(server.speech_bytes(&case0("mp3")).await, "mp3");
    assert!(mp3.len() >= n, "{} MP3 samples for {n}", mp3.len());
    assert!(mp3.iter().all(|s| s.is_finite()) && mp3.iter().any(|&s| s != 0.0));

    // PCM: 16-bit at 24 kHz, the clip's length resampled.
    let pcm = server.speech_bytes(&case0("pcm")).await;
    assert_eq!(pcm.len(), 2 * (n * 24_000 / RATE as usize));
    assert!(pcm.iter().any(|&b| b != 0));

    let opus = server.speech_bytes(&case0("opus")).await;
    check_ogg_opus(opus, n);
}

/// A FLAC file whose STREAMINFO knows the audio: `samples` in all, frame sizes, an MD5.
fn check_flac_header(bytes: &[u8], samples: usize) {
    assert_eq!(&bytes[..4], b"fLaC");
    assert_eq!(bytes[4] & 0x7f, 0, "STREAMINFO first");
    let info = &bytes[8..8 + 34];
    let min_frame = u32::from_be_bytes([0, info[4], info[5], info[6]]);
    let max_frame = u32::from_be_bytes([0, info[7], info[8], info[9]]);
    assert!(
        min_frame > 0 && min_frame <= max_frame,
        "frame sizes {min_frame}..{max_frame}"
    );
    assert!(max_frame < 0xFF_FFFF, "known frame sizes");
    let total = u64::from_be_bytes([
        0,
        0,
        0,
        info[13] & 0x0f,
        info[14],
        info[15],
        info[16],
        info[17],
    ]);
    assert_eq!(total, samples as u64, "total samples");
    assert!(info[18..34].iter().any(|&b| b != 0), "an MD5 of the audio");
}

/// libsndfile (what python-soundfile and librosa read with) opens the file and reads every
/// sample, through python3's ctypes; said and skipped where python3 or libsndfile is missing.
fn check_libsndfile(bytes: &[u8], samples: usize) {
    const SCRIPT: &str = r#"
import ctypes, sys
try:
    lib = ctypes.CDLL("libsndfile.so.1")
except OSError:
    print("missing"); sys.exit(0)
class Info(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]
info = Info()
lib.sf_open.restype = ctypes.c_void_p
lib.sf_strerror.restype = ctypes.c_char_p
handle = lib.sf_open(sys.argv[1].encode(), 0x10, ctypes.byref(info))
if not handle:
    print("error", lib.sf_strerror(None).decode()); sys.exit(0)
buf = (ctypes.c_short * max(info.frames, 1))()
lib.sf_readf_short.restype = ctypes.c_int64
read = lib.sf_readf_short(ctypes.c_void_p(handle), buf, ctypes.c_int64(info.frames))
print("frames", info.frames, read)
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speech.flac");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&path)
        .output();
    let said = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "missing".to_string(),
    };
    if said == "missing" {
        eprintln!("libsndfile check skipped: python3 or libsndfile.so.1 is not installed here");
        return;
    }
    assert_eq!(
        said,
        format!("frames {samples} {samples}"),
        "libsndfile's reading"
    );
}

/// An Ogg Opus stream: the two headers, then packets that an Opus decoder (`opus-pure`'s) decodes
/// to the clip's length at 48 kHz (the last granule position, less pre-skip).
fn check_ogg_opus(bytes: Vec<u8>, samples: usize) {
    let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
    let head = reader.read_packet_expected().unwrap();
    assert_eq!(&head.data[..8], b"OpusHead");
    assert_eq!(head.data[9], 1, "mono");
    let pre_skip = u64::from(u16::from_le_bytes([head.data[10], head.data[11]]));
    let tags = reader.read_packet_expected().unwrap();
    assert_eq!(&tags.data[..8], b"OpusTags");
    let mut decoder = opus_pure::OpusDecoder::new(48_000, 1).unwrap();
    let (mut decoded, mut last) = (Vec::new(), None);
    while let Some(packet) = reader.read_packet().unwrap() {
        let mut out = vec![0f32; opus_pure::MAX_PACKET_SAMPLES];
        let got = decoder.decode(&packet.data, out.len(), &mut out).unwrap();
        decoded.extend_from_slice(&out[..got]);
        last = Some((packet.absgp_page(), packet.last_in_stream()));
    }
    let (granule, end) = last.expect("audio packets");
    assert!(end, "the stream is ended");
    let at_48k = (samples * 48_000 / RATE as usize) as u64;
    assert_eq!(granule - pre_skip, at_48k);
    assert!(decoded.len() as u64 >= granule);
    assert!(decoded.iter().any(|&s| s.abs() > 1e-4), "silent");
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_sends_deltas_then_done_with_usage() {
    let server = Server::start(&[]).await;
    let pcm = server.speech_bytes(&case0("pcm")).await;
    let mut request = case0("pcm");
    request["stream_format"] = json!("sse");
    let response = server.speech(&request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let (done, deltas) = events.split_last().unwrap();
    assert!(!deltas.is_empty());
    let mut audio = Vec::new();
    for delta in deltas {
        assert_eq!(delta["type"], "speech.audio.delta");
        let chunk = delta["audio"].as_str().unwrap();
        audio.extend(
            base64::engine::general_purpose::STANDARD
                .decode(chunk)
                .unwrap(),
        );
    }
    assert_eq!(audio, pcm, "the events carry the same audio");
    assert_eq!(done["type"], "speech.audio.done");
    let usage = &done["usage"];
    let input = golden_json("dia-tiny")["cases"][0]["text"]
        .as_str()
        .unwrap()
        .len() as u64;
    assert_eq!(usage["input_tokens"], input);
    assert!(usage["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(input + usage["output_tokens"].as_u64().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seed_reproduces_sampled_speech() {
    let server = Server::start(&[]).await;
    let mut request = case0("wav");
    request["temperature"] = json!(1.2);
    request["seed"] = json!(42);
    let response = server.speech(&request).await;
    assert_eq!(response.headers()["x-dia-seed"], "42");
    let first = response.bytes().await.unwrap();
    assert_eq!(server.speech_bytes(&request).await, first);
    request["seed"] = json!(43);
    assert_ne!(server.speech_bytes(&request).await, first);
}
