//! Streaming speech through the library: audio handed over while decoding equals the codec's
//! decode of the finished codes, arrives at the structural minimum, and stops cleanly.

use crate::common::{asset, max_abs_diff, sampled};
use std::ops::ControlFlow;

use dia_burn::dia_dac::{Dac, StreamWindows};
use dia_burn::dia_model::{DiaModel, EndReason, GenerationRequest, ModelOptions, generate};
use dia_burn::stream::{StreamEvent, generate_streaming};

type B = burn_flex::Flex;

fn requests() -> Vec<GenerationRequest> {
    vec![
        GenerationRequest {
            text: "[S1] Hello world. [S2] How are you today? (laughs)".into(),
            audio_prompt: None,
        },
        GenerationRequest {
            text: "[S2] A voice prompt first, then this.".into(),
            audio_prompt: Some(vec![vec![7, 1, 4, 1, 5, 9, 2, 6, 5]; 5]),
        },
    ]
}

#[test]
fn streamed_audio_equals_the_whole_decode() {
    let device = Default::default();
    let model = DiaModel::<B>::load(&asset("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let dac = Dac::<B>::load(asset("dac-tiny-hf"), &device).unwrap();
    let context = dac.decoder_context_frames();
    for temperature in [0.0, 1.0] {
        let config = sampled(120, temperature, 11);
        let mut audio = vec![Vec::new(); 2];
        let mut first_audio_frame = None;
        let mut frame = 0;
        let codes = generate_streaming(
            &model,
            &dac,
            &requests(),
            &config,
            StreamWindows::default(),
            |event| {
                match event {
                    StreamEvent::Step(step) => frame = step.frame,
                    StreamEvent::Audio { item, samples } => {
                        first_audio_frame.get_or_insert(frame);
                        audio[item].extend_from_slice(samples);
                    }
                }
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        let plain = generate(&model, &requests(), &config, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(codes, plain, "streaming generates the same codes");
        for (item, got) in codes.iter().enumerate() {
            assert!(!got.codes.is_empty());
            let whole = dac.decode_frames(&got.codes).unwrap();
            let diff = max_abs_diff(&audio[item], &whole);
            assert!(
                diff <= 1e-5,
                "item {item}, temperature {temperature}: off by {diff}"
            );
        }
        // Item 0 has no prompt: its frame 0 is final at decoder frame 1 + 15, and its first
        // samples need `context - 1` more frames (a whole frame needs `context`).
        assert_eq!(
            first_audio_frame,
            Some(1 + 15 + context - 1),
            "first audio at the minimum"
        );
    }
}

#[test]
fn stopping_mid_stream_keeps_what_was_handed_over() {
    let device = Default::default();
    let model = DiaModel::<B>::load(&asset("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let dac = Dac::<B>::load(asset("dac-tiny-hf"), &device).unwrap();
    let config = sampled(200, 0.0, 0);
    let mut audio = Vec::new();
    let mut chunks = 0;
    let codes = generate_streaming(
        &model,
        &dac,
        &requests()[..1],
        &config,
        StreamWindows { first: 1, max: 2 },
        |event| {
            if let StreamEvent::Audio { samples, .. } = event {
                audio.extend_from_slice(samples);
                chunks += 1;
                if chunks == 3 {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(chunks, 3, "no event after the stop");
    assert_eq!(codes[0].end, EndReason::Stopped);
    // Steps after 1, 2 and 2 frames (past the first samples' context): 4 whole frames of
    // samples and the start of a fifth; the stopped codes reach past them (right context).
    let hop = dac.config().hop_length();
    assert!(
        audio.len() > 4 * hop && audio.len() < 5 * hop,
        "{}",
        audio.len()
    );
    let whole = dac.decode_frames(&codes[0].codes).unwrap();
    assert!(max_abs_diff(&audio, &whole[..audio.len()]) <= 1e-5);
}
