//! The tiny codec from each checkpoint layout reproduces the reference outputs.

use dia_dac::{Dac, DacBackend, DacConfig};

use crate::common::{
    Flex, Golden, fixture, int_values, max_abs_diff, on_cpu_backends, scratch_dir, tiny_tensors,
    write_tensors,
};

/// `golden.json`'s kwargs, with the latent width resolved as the loaders report it.
fn tiny_config() -> DacConfig {
    let golden = dia_test_support::golden_json("dac-tiny");
    let kwargs: DacConfig = serde_json::from_value(golden["kwargs"].clone()).expect("kwargs");
    DacConfig {
        latent_dim: Some(kwargs.resolved_latent_dim()),
        ..kwargs
    }
}

fn check_parity<B: DacBackend>(source: &str, device: &B::Device) {
    check_parity_at::<B>(&fixture(source), device);
}

fn check_parity_at<B: DacBackend>(path: &std::path::Path, device: &B::Device) {
    let source = path.display();
    let dac = Dac::<B>::load(path, device).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dac.config(), &tiny_config(), "{source}: configuration");
    let golden = Golden::load();

    let latent = dac
        .decode_latent(golden.codes("decode_codes", device))
        .expect("decode_latent");
    let latent_diff = max_abs_diff(latent, golden.float("decode_latent", device));
    let audio = dac
        .decode(golden.codes("decode_codes", device))
        .expect("decode");
    let audio_diff = max_abs_diff(audio, golden.float("decode_audio", device));
    let (codes, quantized) = dac
        .encode(golden.float("encode_audio", device))
        .expect("encode");
    let encode_diff = max_abs_diff(quantized, golden.float("encode_latent", device));

    eprintln!(
        "{source} on {}: decode_latent {latent_diff:e}, decode_audio {audio_diff:e}, encode_latent {encode_diff:e}",
        std::any::type_name::<B>()
    );
    assert!(
        latent_diff <= 1e-4,
        "{source}: decode_latent off by {latent_diff}"
    );
    assert!(
        audio_diff <= 1e-4,
        "{source}: decode_audio off by {audio_diff}"
    );
    assert_eq!(
        int_values(codes),
        golden.code_values("encode_codes"),
        "{source}: encode_codes"
    );
    assert!(
        encode_diff <= 1e-4,
        "{source}: encode_latent off by {encode_diff}"
    );
}

fn from_pth<B: DacBackend>(device: &B::Device) {
    check_parity::<B>("dac-tiny/weights.pth", device);
}

fn from_safetensors<B: DacBackend>(device: &B::Device) {
    check_parity::<B>("dac-tiny/weights.safetensors", device);
}

fn from_transformers_dir<B: DacBackend>(device: &B::Device) {
    check_parity::<B>("dac-tiny-hf", device);
}

on_cpu_backends!(pth, from_pth);
on_cpu_backends!(safetensors, from_safetensors);
on_cpu_backends!(transformers, from_transformers_dir);

/// Newer torch weight norm (`parametrizations.weight.original0/1`) under a wrapper prefix, as
/// third-party copies store it, loads the same codec.
#[test]
fn parametrized_names_under_a_prefix() {
    let tensors = tiny_tensors()
        .into_iter()
        .map(|(name, tensor)| {
            let name = name
                .replace(".weight_g", ".parametrizations.weight.original0")
                .replace(".weight_v", ".parametrizations.weight.original1");
            (format!("audio_encoder.model.{name}"), tensor)
        })
        .collect();
    let path = scratch_dir("parametrized").join("model.safetensors");
    write_tensors(&path, &tensors);
    check_parity_at::<Flex>(&path, &Default::default());
}
