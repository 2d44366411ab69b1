//! Streaming decode (frames pushed in uneven pieces) equals the whole decode, for several window
//! plans, on both fixture codecs (flex and ndarray) and the 44.1 kHz configuration with random
//! weights (flex).

use dia_dac::{Dac, DacBackend, DacConfig, StreamWindows};

use crate::common::{fixture, on_cpu_backends};

/// Deterministic pseudo-random time-major frames.
fn random_frames(n: usize, size: u32, frames: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..frames)
        .map(|_| {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 33) % u64::from(size)) as u32
                })
                .collect()
        })
        .collect()
}

/// Pushes `frames` in pieces of 1, 2, 3, ... frames and checks every sample against `whole`.
fn stream_equals_whole<B: DacBackend>(dac: &Dac<B>, frames: &[Vec<u32>], windows: StreamWindows) {
    let whole = dac.decode_frames(frames).expect("whole decode");
    let mut stream = dac.streaming_decoder(windows).expect("decoder");
    let mut streamed = Vec::new();
    let (mut at, mut piece) = (0, 1);
    while at < frames.len() {
        let end = (at + piece).min(frames.len());
        let samples = stream.push(&frames[at..end]).expect("push");
        let hop = dac.config().hop_length();
        assert_eq!(samples.len() % hop, 0, "whole frames of samples");
        let returned = !samples.is_empty();
        streamed.extend(samples);
        assert_eq!(streamed.len(), stream.decoded() * hop);
        // Nothing is returned before its right context arrived, and a step returns every
        // frame that has it.
        let (decoded, context) = (stream.decoded(), dac.decoder_context_frames());
        assert!(decoded == 0 || decoded + context <= end);
        assert!(!returned || decoded + context >= end, "{windows:?}");
        (at, piece) = (end, piece % 4 + 1);
    }
    streamed.extend(stream.finish().expect("finish"));
    assert_eq!(streamed.len(), whole.len(), "{windows:?}");
    let diff = streamed
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        );
    assert!(diff <= 1e-5, "{windows:?}: streamed off by {diff}");
}

fn fixture_codecs<B: DacBackend>(device: &B::Device) {
    for path in ["dac-tiny/weights.pth", "dac-tiny-hf"] {
        let dac = Dac::<B>::load(fixture(path), device).expect("tiny codec");
        let frames = random_frames(9, 1024, 30, 3);
        for (first, max) in [(1, 4), (3, 3), (2, 16), (64, 64)] {
            stream_equals_whole(&dac, &frames, StreamWindows { first, max });
        }
        // A boundary at every frame, on a prefix.
        stream_equals_whole(&dac, &frames[..14], StreamWindows { first: 1, max: 1 });
    }
}

/// The 44.1 kHz codec (random weights): `frames` frames, windows of 1 then 2 frames.
fn codec_44khz<B: DacBackend>(frames: usize) {
    let dac = Dac::<B>::random(DacConfig::default(), 5, &Default::default()).expect("codec");
    assert_eq!(dac.decoder_context_frames(), 10);
    let frames = random_frames(9, 1024, frames, 4);
    stream_equals_whole(&dac, &frames, StreamWindows { first: 1, max: 2 });
}

/// Odd strides crop an uneven padding and make the audio shorter than frames · hop.
#[test]
fn odd_strides_flex() {
    let config = DacConfig {
        encoder_dim: 4,
        encoder_rates: vec![3, 5],
        latent_dim: Some(16),
        decoder_dim: 24,
        decoder_rates: vec![5, 3],
        n_codebooks: 3,
        codebook_size: 64,
        codebook_dim: 4,
        sample_rate: 16_000,
    };
    let dac = Dac::<crate::common::Flex>::random(config, 9, &Default::default()).expect("codec");
    let frames = random_frames(3, 64, 25, 6);
    for (first, max) in [(1, 1), (1, 4), (5, 8)] {
        stream_equals_whole(&dac, &frames, StreamWindows { first, max });
    }
}

/// Flex only: ndarray's convolutions take minutes per frame at this width (the fixture codecs
/// cover ndarray).
#[test]
fn random_44khz_flex() {
    codec_44khz::<crate::common::Flex>(24);
}

#[test]
fn bad_windows_and_frames_are_errors() {
    let dac = Dac::<burn_flex::Flex>::load(fixture("dac-tiny-hf"), &Default::default()).unwrap();
    assert!(
        dac.streaming_decoder(StreamWindows { first: 0, max: 4 })
            .is_err()
    );
    assert!(
        dac.streaming_decoder(StreamWindows { first: 8, max: 4 })
            .is_err()
    );
    let mut stream = dac.streaming_decoder(StreamWindows::default()).unwrap();
    assert!(stream.push(&[vec![1u32; 8]]).is_err(), "8 codes, not 9");
    assert!(
        stream.push(&[vec![1024u32; 9]]).is_err(),
        "code out of range"
    );
    assert_eq!(stream.received(), 0, "a rejected push adds nothing");
    assert!(stream.finish().unwrap().is_empty());
}

on_cpu_backends!(fixtures, fixture_codecs);
