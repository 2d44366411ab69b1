//! Window-by-window decoding equals the whole-sequence decode.

use burn::prelude::*;
use dia_dac::{Dac, DacBackend};

use crate::common::{fixture, max_abs_diff, on_cpu_backends};

/// Deterministic pseudo-random codes `[batch, n_codebooks, frames]` in `0..codebook_size`.
fn random_codes<B: DacBackend>(
    dac: &Dac<B>,
    batch: usize,
    frames: usize,
    device: &B::Device,
) -> Tensor<B, 3, Int> {
    let (n, size) = (dac.config().n_codebooks, dac.config().codebook_size as u64);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let values: Vec<i64> = (0..batch * n * frames)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % size) as i64
        })
        .collect();
    Tensor::<B, 1, Int>::from_ints(values.as_slice(), device).reshape([batch, n, frames])
}

fn chunked_equals_whole<B: DacBackend>(device: &B::Device) {
    let dac = Dac::<B>::load(fixture("dac-tiny/weights.pth"), device).expect("tiny codec");
    let context = dac.decoder_context_frames();
    assert!(context > 0, "the decoder sees neighbouring frames");
    // Windows shorter than the context, so each chunk leans on two neighbours per side.
    let (window, windows) = (context / 2 + 1, 12);
    let frames = window * (windows - 1) + 3;
    let codes = random_codes(&dac, 2, frames, device);
    let whole = dac.decode(codes.clone()).expect("whole decode");
    let hop = dac.config().hop_length();
    assert_eq!(whole.dims(), [2, 1, frames * hop]);

    let chunks: Vec<_> = dac
        .decode_chunks(codes.clone(), window)
        .expect("chunks")
        .collect();
    assert_eq!(chunks.len(), windows, "one chunk per window");
    for chunk in &chunks[..windows - 1] {
        assert_eq!(chunk.dims(), [2, 1, window * hop]);
    }
    let diff = max_abs_diff(Tensor::cat(chunks, 2), whole.clone());
    eprintln!("chunked ({window}-frame windows, context {context}) vs whole: {diff:e}");
    assert!(diff <= 1e-5, "chunked decode off by {diff}");

    // Single-frame windows put a boundary at every frame (on a prefix, to keep it quick).
    let prefix = context + 2;
    let codes = codes.narrow(2, 0, prefix);
    let single = dac
        .decode_chunked(codes.clone(), 1)
        .expect("1-frame windows");
    let diff = max_abs_diff(single, dac.decode(codes).expect("whole prefix"));
    assert!(diff <= 1e-5, "1-frame windows off by {diff}");
}

on_cpu_backends!(windows, chunked_equals_whole);
