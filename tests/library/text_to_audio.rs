//! Library end to end: text → Dia codes → DAC waveform, as an embedding application does it.

use crate::common::{asset, sampled};
use std::ops::ControlFlow;

use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::{DiaModel, EndReason, GenerationRequest, ModelOptions, generate};

#[test]
fn text_becomes_a_waveform_of_frames_times_hop() {
    type B = burn_flex::Flex;
    let device = Default::default();
    let model = DiaModel::<B>::load(&asset("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let dac = Dac::<B>::load(asset("dac-tiny-hf"), &device).unwrap();
    let request = GenerationRequest {
        text: "[S1] Hello world. [S2] How are you today? (laughs)".into(),
        audio_prompt: None,
    };
    let config = sampled(120, 0.0, 0);
    let mut steps = 0;
    let out = generate(&model, &[request], &config, |_| {
        steps += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    // The golden run of this text stops on EOS after 50 frames (dia-tiny golden case 0).
    assert_eq!(out[0].codes.len(), 50);
    assert_eq!(out[0].end, EndReason::Eos);
    assert!(steps >= 50 + 15, "the EOS tail runs 15 more steps");
    let samples = dac.decode_frames(&out[0].codes).unwrap();
    assert_eq!(samples.len(), 50 * dac.config().hop_length());
    assert!(
        samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0),
        "tanh output in [-1, 1]"
    );
}
