//! Every response format decodes; greedy speech equals the golden codes decoded; SSE events.

use std::io::Cursor;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::*;

const RATE: u32 = 44_100;

/// Decodes a whole file of `extension` (through a file, as `dia-infer` reads prompts): its
/// samples at 44.1 kHz (a file at another rate would come back resampled: another length).
fn decode(bytes: Vec<u8>, extension: &str) -> Vec<f32> {
    let (_dir, path) = file(&bytes, extension);
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

/// Whether the decoders people open files with must be here (CI installs them).
fn decoders_required() -> bool {
    std::env::var_os("DIA_REQUIRE_DECODERS").is_some()
}

/// Says that `tool` is missing, or fails where it is required.
fn missing(tool: &str) {
    assert!(
        !decoders_required(),
        "{tool} is not installed here and DIA_REQUIRE_DECODERS is set"
    );
    eprintln!("{tool} check skipped: {tool} is not installed here");
}

/// `bytes` in a file named for `extension` in a fresh folder (kept alive by the guard).
fn file(bytes: &[u8], extension: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("speech.{extension}"));
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// libsndfile (what python-soundfile and librosa read with) opens the file and reads every
/// frame it announces, through python3's ctypes: (frames announced, frames read, rate).
fn libsndfile_reads(bytes: &[u8], extension: &str) -> Option<(usize, usize, u32)> {
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
print(info.frames, read, info.samplerate)
"#;
    let (_dir, path) = file(bytes, extension);
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&path)
        .output();
    let said = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "missing".to_string(),
    };
    if said == "missing" {
        missing("libsndfile");
        return None;
    }
    let parts: Vec<u64> = said
        .split(' ')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("libsndfile: {said}")))
        .collect();
    Some((parts[0] as usize, parts[1] as usize, parts[2] as u32))
}

/// ffmpeg decodes the file to 16-bit mono at `rate` (its own rate: no resampling): the
/// samples it gives, `None` where ffmpeg is missing. `input` names a raw format (`s16le`).
fn ffmpeg_samples(bytes: &[u8], extension: &str, raw: Option<u32>) -> Option<usize> {
    let (_dir, path) = file(bytes, extension);
    let mut command = std::process::Command::new("ffmpeg");
    command.args(["-v", "error", "-nostdin"]);
    if let Some(rate) = raw {
        command.args(["-f", "s16le", "-ac", "1", "-ar", &rate.to_string()]);
    }
    command
        .arg("-i")
        .arg(&path)
        .args(["-f", "s16le", "-ac", "1", "-"]);
    let Ok(out) = command.output() else {
        missing("ffmpeg");
        return None;
    };
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg on {extension}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout.len() / 2)
}

/// Every format opens in the decoders people use, at its length: ffmpeg (hence browsers'
/// and players' demuxers, and most audio tools) and libsndfile (python-soundfile, librosa).
/// WAV streams with unknown sizes (as OpenAI's), FLAC is a complete file, Opus knows its length
/// from its granule positions; MP3 streams with no gapless header, so decoders add the encoder's
/// delay and padding (at most two frames).
#[tokio::test(flavor = "multi_thread")]
async fn every_format_opens_in_ffmpeg_and_libsndfile() {
    let server = Server::start(&[]).await;
    let n = wav_samples(&server.speech_bytes(&case0("wav")).await, RATE).len();
    let at_48k = |n: usize| n * 48_000 / RATE as usize;
    let pcm_len = n * 24_000 / RATE as usize;
    for format in ["wav", "flac", "opus", "mp3", "pcm"] {
        let bytes = server.speech_bytes(&case0(format)).await;
        let raw = (format == "pcm").then_some(24_000);
        let (low, high) = match format {
            "wav" | "flac" => (n, n),
            "opus" => (at_48k(n), at_48k(n) + 1),
            "pcm" => (pcm_len, pcm_len),
            _ => (n, n + 2 * 1152 + 1105),
        };
        if let Some(got) = ffmpeg_samples(&bytes, format, raw) {
            assert!(
                (low..=high).contains(&got),
                "ffmpeg: {got} {format} samples for {low}..={high}"
            );
        }
        if format == "pcm" {
            continue;
        }
        if let Some((frames, read, rate)) = libsndfile_reads(&bytes, format) {
            let want_rate = if format == "opus" { 48_000 } else { RATE };
            assert_eq!(rate, want_rate, "libsndfile: {format}'s rate");
            // With no header to say the length, libsndfile estimates an MP3's from its size.
            let estimated = if format == "mp3" { 16 } else { 0 };
            assert!(
                read <= frames && frames - read <= estimated,
                "libsndfile: {read} of {frames} {format} frames read"
            );
            assert!(
                (low..=high).contains(&read),
                "libsndfile: {read} {format} frames for {low}..={high}"
            );
        }
    }
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
