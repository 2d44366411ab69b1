//! Long-form speech on the fixture models: a script of many turns runs in several passes, each
//! conditioned on the end of the one before; the item's codes are the passes' new frames in
//! order, its audio the codec's decode of all of them, and the same seed gives the same result.

mod common;

use common::{asset, max_abs_diff};
use std::ops::ControlFlow;

use dia_burn::dia_dac::{Dac, StreamWindows};
use dia_burn::dia_model::longform::{LongFormEvent, generate_long};
use dia_burn::dia_model::{
    DiaModel, GenerationConfig, GenerationRequest, LongFormOptions, LongFormOutput,
    LongFormRequest, ModelOptions, VoicePrompt, generate,
};
use dia_burn::long::{LongStreamEvent, generate_long_streaming};

type B = burn_flex::Flex;

fn model() -> DiaModel<B> {
    DiaModel::<B>::load(
        &asset("dia-tiny"),
        ModelOptions::default(),
        &Default::default(),
    )
    .unwrap()
}

/// Twelve short alternating turns.
fn script() -> String {
    let lines = [
        "Morning, you ok?",
        "Fine, and you?",
        "Tired (sighs).",
        "Why so tired?",
        "Rain all night.",
        "It stopped now.",
        "Walk outside?",
        "Yes, at noon.",
        "I bring tea.",
        "I bring cake!",
        "Perfect, then.",
        "See you soon.",
    ];
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("[S{}] {l} ", 1 + i % 2))
        .collect()
}

const OPTIONS: LongFormOptions = LongFormOptions {
    chunk_seconds: 3.5,
    context_seconds: 2.5,
};

fn config(temperature: f32, seed: u64) -> GenerationConfig {
    GenerationConfig {
        max_tokens: 90,
        temperature,
        seed,
        ..GenerationConfig::default()
    }
}

/// Runs `requests` and checks that the frames reported for each item are its codes.
fn run(
    model: &DiaModel<B>,
    requests: &[LongFormRequest],
    config: &GenerationConfig,
) -> Vec<LongFormOutput> {
    let mut frames = vec![Vec::new(); requests.len()];
    let mut last_passes = vec![0; requests.len()];
    let out = generate_long(model, requests, config, &OPTIONS, |event| {
        match event {
            LongFormEvent::Frames { item, frames: f } => frames[item].extend_from_slice(f),
            LongFormEvent::PassDone { item, last, .. } => last_passes[item] += usize::from(last),
            _ => {}
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    for (item, got) in out.iter().enumerate() {
        assert_eq!(frames[item], got.codes(), "item {item}: reported frames");
        assert_eq!(last_passes[item], 1, "item {item}: one last pass");
    }
    out
}

fn request(script: String) -> LongFormRequest {
    LongFormRequest {
        script,
        voice: None,
    }
}

#[test]
fn passes_carry_the_end_of_the_pass_before() {
    let model = model();
    let out = run(&model, &[request(script())], &config(1.0, 3));
    let passes = &out[0].passes;
    assert!(passes.len() >= 4, "{} passes", passes.len());
    assert!(passes[0].prompt.is_none());
    for k in 1..passes.len() {
        let prev = &passes[k - 1].codes;
        let prompt = passes[k].prompt.as_ref().expect("a carried prompt");
        assert!(
            !prompt.is_empty() && prompt.len() <= 45,
            "pass {k}: {}",
            prompt.len()
        );
        assert!(
            prev.ends_with(prompt),
            "pass {k}: the prompt is the tail of pass {}",
            k - 1
        );
        let (transcript, text) = passes[k].text.split_once('\n').unwrap();
        assert!(transcript.starts_with("[S"), "{transcript}");
        assert!(text.starts_with("[S"), "{text}");
        let prev_text = passes[k - 1].text.rsplit('\n').next().unwrap();
        let last_turn = prev_text.rsplit("[S").next().unwrap();
        assert!(
            transcript.ends_with(last_turn),
            "{transcript} / {prev_text}"
        );
    }
    let all: usize = passes.iter().map(|p| p.codes.len()).sum();
    assert_eq!(out[0].codes().len(), all);
    assert!(passes.iter().all(|p| !p.codes.is_empty()));
}

#[test]
fn the_same_seed_gives_the_same_passes() {
    let model = model();
    let a = run(&model, &[request(script())], &config(1.0, 42));
    let b = run(&model, &[request(script())], &config(1.0, 42));
    assert_eq!(a, b);
    let c = run(&model, &[request(script())], &config(1.0, 43));
    assert_ne!(a[0].codes(), c[0].codes(), "another seed, other codes");
    let seeds: Vec<u64> = a[0].passes.iter().map(|p| p.seed).collect();
    assert_eq!(seeds[0], 42);
    assert!(seeds[1..].iter().all(|&s| s != 42), "{seeds:?}");
}

#[test]
fn greedy_first_pass_equals_a_plain_generation_of_its_text() {
    let model = model();
    let config = config(0.0, 0);
    let out = run(&model, &[request(script())], &config);
    let first = &out[0].passes[0];
    let plain = generate(
        &model,
        &[GenerationRequest {
            text: first.text.clone(),
            audio_prompt: None,
        }],
        &config,
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(first.codes, plain[0].codes);
    assert_eq!(first.end, plain[0].end);
}

#[test]
fn a_voice_prompt_conditions_the_first_pass_and_batches_mix_lengths() {
    let model = model();
    let voice = VoicePrompt {
        transcript: "[S1] My own voice.".into(),
        codes: vec![vec![7, 1, 4, 1, 5, 9, 2, 6, 5]; 12],
    };
    let requests = [
        LongFormRequest {
            script: script(),
            voice: Some(voice.clone()),
        },
        request("[S2] Just this.".into()),
    ];
    let mut pass_items = Vec::new();
    let out = generate_long(&model, &requests, &config(1.0, 9), &OPTIONS, |event| {
        if let LongFormEvent::Pass { items, .. } = event {
            pass_items.push(items.to_vec());
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(out[0].passes[0].prompt.as_ref(), Some(&voice.codes));
    assert!(
        out[0].passes[0]
            .text
            .starts_with("[S1] My own voice.\n[S1] Morning")
    );
    assert_eq!(out[1].passes.len(), 1);
    assert_eq!(out[1].passes[0].text, "[S2] Just this.");
    assert_eq!(pass_items[0], [0, 1]);
    assert!(pass_items[1..].iter().all(|items| items == &[0]));
}

#[test]
fn long_audio_is_the_decode_of_all_frames_and_stops_cleanly() {
    let model = model();
    let dac = Dac::<B>::load(asset("dac-tiny-hf"), &Default::default()).unwrap();
    let requests = [request(script())];
    let mut audio = Vec::new();
    let out = generate_long_streaming(
        &model,
        &dac,
        &requests,
        &config(1.0, 5),
        &OPTIONS,
        StreamWindows::default(),
        |event| {
            if let LongStreamEvent::Audio { samples, .. } = event {
                audio.extend_from_slice(samples);
            }
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    let codes = out[0].codes();
    assert_eq!(audio.len(), codes.len() * dac.config().hop_length());
    let whole = dac.decode_frames(&codes).unwrap();
    let diff = max_abs_diff(&audio, &whole);
    assert!(diff <= 1e-5, "off by {diff}");

    // Stopping at the start of the third pass keeps two passes and reports nothing after.
    let mut after_stop = 0;
    let mut stopped = false;
    let out = generate_long(&model, &requests, &config(1.0, 5), &OPTIONS, |event| {
        if stopped {
            after_stop += 1;
        }
        if let LongFormEvent::Pass { pass: 2, .. } = event {
            stopped = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(after_stop, 0);
    assert_eq!(out[0].passes.len(), 2);
}

#[test]
fn bad_options_are_refused() {
    let model = model();
    for (chunk, context) in [
        (0.0, 1.0),
        (f32::NAN, 1.0),
        (5.0, -1.0),
        (5.0, f32::INFINITY),
    ] {
        let options = LongFormOptions {
            chunk_seconds: chunk,
            context_seconds: context,
        };
        let err = generate_long(
            &model,
            &[request(script())],
            &config(0.0, 0),
            &options,
            |_| ControlFlow::Continue(()),
        )
        .unwrap_err();
        assert!(err.to_string().contains("seconds"), "{err}");
    }
}
