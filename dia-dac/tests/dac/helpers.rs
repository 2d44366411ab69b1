//! The host-side helpers (time-major frames, sample slices) agree with the tensor API and the
//! reference.

use dia_dac::{Dac, DacBackend};

use crate::common::{Golden, fixture, max_sample_diff, on_cpu_backends};

/// `[1, n, frames]` codes → time-major `[frames][n]`.
fn time_major(values: &[i64], n: usize) -> Vec<Vec<u32>> {
    let frames = values.len() / n;
    (0..frames)
        .map(|t| (0..n).map(|c| values[c * frames + t] as u32).collect())
        .collect()
}

fn helpers_match_reference<B: DacBackend>(device: &B::Device) {
    let dac = Dac::<B>::load(fixture("dac-tiny-hf"), device).expect("tiny codec");
    let golden = Golden::load();
    let n = dac.config().n_codebooks;

    let samples: Vec<f32> = golden
        .float::<B>("encode_audio", device)
        .into_data()
        .to_vec()
        .expect("f32 samples");
    let frames = dac.encode_samples(&samples).expect("encode_samples");
    assert_eq!(frames, time_major(&golden.code_values("encode_codes"), n));

    let frames = time_major(&golden.code_values("decode_codes"), n);
    let audio = dac.decode_frames(&frames).expect("decode_frames");
    let reference: Vec<f32> = golden
        .float::<B>("decode_audio", device)
        .into_data()
        .to_vec()
        .expect("f32 audio");
    assert_eq!(audio.len(), frames.len() * dac.config().hop_length());
    let diff = max_sample_diff(&audio, &reference);
    assert!(diff <= 1e-4, "decode_frames off by {diff}");
}

on_cpu_backends!(frames_and_samples, helpers_match_reference);
