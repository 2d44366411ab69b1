//! The tiny codec on burn's wgpu backend (fused, not autotuned), as CI runs it on lavapipe,
//! Mesa's software Vulkan driver, reproduces the reference's decode and encode.

use burn::backend::wgpu::WgpuDevice;
use dia_dac::Dac;

use crate::common::{Golden, fixture, int_values, max_abs_diff};

type Wgpu = burn::backend::Wgpu<f32>;

/// f32 on the GPU path (other kernels, other summation orders) against the reference.
const TOL: f32 = 1e-3;

#[test]
fn decode_and_encode_match_reference() {
    let device = WgpuDevice::default();
    let dac = Dac::<Wgpu>::load(fixture("dac-tiny/weights.safetensors"), &device).expect("codec");
    let golden = Golden::load();

    let latent = dac
        .decode_latent(golden.codes("decode_codes", &device))
        .expect("decode_latent");
    let latent_diff = max_abs_diff(latent, golden.float("decode_latent", &device));
    let audio = dac
        .decode(golden.codes("decode_codes", &device))
        .expect("decode");
    let audio_diff = max_abs_diff(audio, golden.float("decode_audio", &device));
    let (codes, quantized) = dac
        .encode(golden.float("encode_audio", &device))
        .expect("encode");
    let encode_diff = max_abs_diff(quantized, golden.float("encode_latent", &device));
    eprintln!(
        "wgpu: decode_latent {latent_diff:e}, decode_audio {audio_diff:e}, encode_latent {encode_diff:e}"
    );
    assert!(latent_diff <= TOL, "decode_latent off by {latent_diff}");
    assert!(audio_diff <= TOL, "decode_audio off by {audio_diff}");
    assert_eq!(
        int_values(codes),
        golden.code_values("encode_codes"),
        "encode_codes"
    );
    assert!(encode_diff <= TOL, "encode_latent off by {encode_diff}");
}
