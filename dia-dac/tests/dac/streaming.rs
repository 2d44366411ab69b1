//! Streaming decode (frames pushed in uneven pieces) equals the whole decode, for several window
//! plans, on both fixture codecs (flex and ndarray) and the 44.1 kHz configuration with random
//! weights (flex).

use dia_dac::{Dac, DacBackend, DacConfig, StreamWindows};

use crate::common::{fixture, max_sample_diff, on_cpu_backends};

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
        let stepped = !samples.is_empty();
        streamed.extend(samples);
        assert_eq!(streamed.len(), stream.returned());
        // A step returns every sample whose right context arrived: all of each frame with
        // `context` frames after it, and at most the start of the next (its first samples
        // reach one frame less far).
        let (hop, context) = (dac.config().hop_length(), dac.decoder_context_frames());
        let whole_frames = end.saturating_sub(context);
        assert!(streamed.len() <= (whole_frames + 1) * hop, "{windows:?}");
        assert!(
            !stepped || streamed.len() >= whole_frames * hop,
            "{windows:?}"
        );
        (at, piece) = (end, piece % 4 + 1);
    }
    streamed.extend(stream.finish().expect("finish"));
    assert_eq!(streamed.len(), whole.len(), "{windows:?}");
    let diff = max_sample_diff(&streamed, &whole);
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
    first_samples_after_ten_frames(&dac, &frames);
}

/// Pushed one at a time, the first samples come with the tenth frame, not the eleventh: the
/// start of frame 0 reaches only nine frames ahead.
fn first_samples_after_ten_frames<B: DacBackend>(dac: &Dac<B>, frames: &[Vec<u32>]) {
    let hop = dac.config().hop_length();
    let whole = dac.decode_frames(&frames[..11]).expect("whole decode");
    let mut stream = dac
        .streaming_decoder(StreamWindows::default())
        .expect("decoder");
    for (i, frame) in frames[..9].iter().enumerate() {
        assert!(stream.push(&[frame]).expect("push").is_empty(), "frame {i}");
    }
    let first = stream.push(&[&frames[9]]).expect("push");
    assert!(
        !first.is_empty() && first.len() < hop,
        "{} samples",
        first.len()
    );
    let diff = max_sample_diff(&first, &whole[..first.len()]);
    assert!(diff <= 1e-5, "first samples off by {diff}");
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
