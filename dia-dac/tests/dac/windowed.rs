//! The bounded-memory decode (`decode_frames`, window by window) equals the whole-sequence
//! decode.

use dia_dac::{Dac, DacBackend, StreamWindows};

use crate::common::{fixture, max_sample_diff, on_cpu_backends};

/// Deterministic pseudo-random time-major frames `[frames][n_codebooks]` in `0..codebook_size`.
fn random_frames<B: DacBackend>(dac: &Dac<B>, frames: usize) -> Vec<Vec<u32>> {
    let (n, size) = (dac.config().n_codebooks, dac.config().codebook_size as u64);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % size) as u32
    };
    (0..frames)
        .map(|_| (0..n).map(|_| next()).collect())
        .collect()
}

fn windowed_equals_whole<B: DacBackend>(device: &B::Device) {
    let dac = Dac::<B>::load(fixture("dac-tiny/weights.pth"), device).expect("tiny codec");
    let window = StreamWindows::WHOLE.max;
    // Three windows and a part: boundaries inside the sequence and a short last step.
    let frames = random_frames(&dac, 3 * window + 5);
    let codes = dac.frames_to_codes(&frames).expect("valid frames");
    let whole = dac.decode(codes).expect("whole decode");
    let hop = dac.config().hop_length();
    assert_eq!(whole.dims(), [1, 1, frames.len() * hop]);

    let windowed = dac.decode_frames(&frames).expect("windowed decode");
    assert_eq!(windowed.len(), frames.len() * hop, "every frame's samples");
    assert!(windowed.iter().all(|s| s.is_finite()), "finite samples");
    let whole = dia_dac::audio_to_vec(whole).expect("whole samples");
    let diff = max_sample_diff(&windowed, &whole);
    eprintln!("decode_frames ({window}-frame steps) vs whole: {diff:e}");
    assert!(diff <= 1e-5, "windowed decode off by {diff}");
}

on_cpu_backends!(windows, windowed_equals_whole);
