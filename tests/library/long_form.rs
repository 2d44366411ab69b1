//! Long-form speech on the fixture models: a script of many turns runs in several passes, each
//! conditioned on the end of the one before; the item's codes are the passes' new frames in
//! order, its audio the codec's decode of all of them, and the same seed gives the same result.
//! Scripts run through `Dia`'s scheduler, the one long-form driver.

use crate::common::{asset, max_abs_diff, sampled};
use std::ops::ControlFlow;

use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::{
    DiaModel, GenerationConfig, GenerationRequest, LongFormOptions, LongFormOutput,
    LongFormRequest, ModelOptions, VoicePrompt, generate,
};
use dia_burn::{Dia, JobId, SpeechEvent, SpeechJob};

type B = burn_flex::Flex;

/// The tiny model and codec, cutting scripts as [`OPTIONS`] says.
fn dia() -> Dia<B> {
    let device = Default::default();
    let model = DiaModel::<B>::load(&asset("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let dac = Dac::<B>::load(asset("dac-tiny-hf"), &device).unwrap();
    Dia::new(model, dac)
        .unwrap()
        .with_long_form(OPTIONS)
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
    sampled(90, temperature, seed)
}

/// What a run reported: each job's output, and the jobs whose pass `k` started, by pass.
struct Ran {
    outputs: Vec<LongFormOutput>,
    started: Vec<Vec<usize>>,
}

/// Runs `requests` side by side on `dia`'s scheduler and checks that each job ends once.
fn run(dia: &Dia<B>, requests: &[LongFormRequest], config: &GenerationConfig) -> Ran {
    let mut scheduler = dia.scheduler(requests.len()).unwrap();
    let ids: Vec<JobId> = requests
        .iter()
        .map(|script| {
            let job = SpeechJob {
                script: script.clone(),
                config: *config,
                stream: false,
            };
            scheduler.submit(job).unwrap()
        })
        .collect();
    let index = |job: JobId| ids.iter().position(|&id| id == job).unwrap();
    let mut outputs: Vec<Option<LongFormOutput>> = vec![None; requests.len()];
    let mut started: Vec<Vec<usize>> = Vec::new();
    while !scheduler.is_idle() {
        scheduler
            .step(|event| match event {
                SpeechEvent::Started { job, pass, .. } => {
                    started.resize(started.len().max(pass + 1), Vec::new());
                    started[pass].push(index(job));
                }
                SpeechEvent::Done { job, output } => {
                    let slot = &mut outputs[index(job)];
                    assert!(slot.is_none(), "{job:?} ended twice");
                    *slot = Some(output);
                }
                SpeechEvent::Failed { job, error } => panic!("{job:?} failed: {error}"),
                SpeechEvent::Audio { .. } => panic!("not streamed"),
            })
            .unwrap();
    }
    let outputs = outputs.into_iter().map(|o| o.expect("ended")).collect();
    Ran { outputs, started }
}

fn request(script: String) -> LongFormRequest {
    LongFormRequest {
        script,
        voice: None,
    }
}

#[test]
fn passes_carry_the_end_of_the_pass_before() {
    let dia = dia();
    let out = run(&dia, &[request(script())], &config(1.0, 3)).outputs;
    let passes = &out[0].passes;
    assert!(passes.len() >= 4, "{} passes", passes.len());
    assert!(passes[0].prompt.is_none());
    // Half of the frames max_tokens leaves after the delay pattern.
    let budget = (90 - dia.model().config.max_delay() - 1) / 2;
    for k in 1..passes.len() {
        let prev = &passes[k - 1].codes;
        let prompt = passes[k].prompt.as_ref().expect("a carried prompt");
        assert!(
            !prompt.is_empty() && prompt.len() <= budget,
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

/// A frame budget a little above the delay pattern still speaks every pass: the carried
/// context takes at most half of the frames the delay leaves (it once took half of max_tokens
/// and left a pass no room, failing the script).
#[test]
fn a_small_frame_budget_leaves_every_pass_room() {
    let dia = dia();
    let delay = dia.model().config.max_delay();
    let max_tokens = delay + 15;
    let config = sampled(max_tokens, 1.0, 4);
    let out = run(&dia, &[request(script())], &config).outputs;
    let passes = &out[0].passes;
    assert!(passes.len() >= 4, "{} passes", passes.len());
    let budget = (max_tokens - delay - 1) / 2;
    for (k, pass) in passes.iter().enumerate() {
        let prompt = pass.prompt.as_ref().map_or(0, Vec::len);
        assert!(prompt <= budget, "pass {k}: {prompt} frames of context");
        assert!(!pass.codes.is_empty(), "pass {k} spoke");
    }
    assert!(
        passes[1..].iter().any(|p| p.prompt.is_some()),
        "context is still carried"
    );
}

#[test]
fn the_same_seed_gives_the_same_passes() {
    let dia = dia();
    let a = run(&dia, &[request(script())], &config(1.0, 42)).outputs;
    let b = run(&dia, &[request(script())], &config(1.0, 42)).outputs;
    assert_eq!(a, b);
    let c = run(&dia, &[request(script())], &config(1.0, 43)).outputs;
    assert_ne!(a[0].codes(), c[0].codes(), "another seed, other codes");
    let seeds: Vec<u64> = a[0].passes.iter().map(|p| p.seed).collect();
    assert_eq!(seeds[0], 42);
    assert!(seeds[1..].iter().all(|&s| s != 42), "{seeds:?}");
}

#[test]
fn greedy_first_pass_equals_a_plain_generation_of_its_text() {
    let dia = dia();
    let config = config(0.0, 0);
    let out = run(&dia, &[request(script())], &config).outputs;
    let first = &out[0].passes[0];
    let plain = generate(
        dia.model(),
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
    let dia = dia();
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
    let ran = run(&dia, &requests, &config(1.0, 9));
    let (out, pass_items) = (ran.outputs, ran.started);
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
    // Each job as if alone: the short one is what it says on its own.
    let alone = run(&dia, &requests[1..], &config(1.0, 9)).outputs;
    assert_eq!(out[1], alone[0]);
}

#[test]
fn long_audio_is_the_decode_of_all_frames_and_stops_cleanly() {
    let dia = dia();
    let speech = dia_burn::Speech {
        config: config(1.0, 5),
        ..dia.speech(script())
    };
    let mut audio = Vec::new();
    let out = dia
        .stream(&speech, |samples| {
            audio.extend_from_slice(samples);
            ControlFlow::Continue(())
        })
        .unwrap();
    let codes = out.codes();
    assert!(out.passes.len() >= 3, "{} passes", out.passes.len());
    assert_eq!(audio.len(), codes.len() * dia.codec().config().hop_length());
    let whole = dia.codec().decode_frames(&codes).unwrap();
    let diff = max_abs_diff(&audio, &whole);
    assert!(diff <= 1e-5, "off by {diff}");
    assert_eq!(
        dia.generate(&speech).unwrap().samples,
        audio,
        "generate = stream"
    );

    // Stopping when the third pass starts keeps the first two and runs nothing after.
    let mut scheduler = dia.scheduler(1).unwrap();
    let job = scheduler.submit(dia.job(&speech, false)).unwrap();
    let mut third = false;
    while !third {
        scheduler
            .step(|event| third |= matches!(event, SpeechEvent::Started { pass: 2, .. }))
            .unwrap();
    }
    let cut = scheduler.cancel(job).unwrap();
    assert!(scheduler.is_idle(), "the slot is free");
    assert!(cut.passes.len() <= 3, "nothing after the third pass");
    assert_eq!(cut.passes[..2], out.passes[..2]);
    if let Some(third) = cut.passes.get(2) {
        assert!(
            out.passes[2].codes.starts_with(&third.codes),
            "a prefix of pass 3"
        );
    }
}

#[test]
fn bad_options_are_refused() {
    let dia = dia();
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
        let Err(err) = dia_burn::SpeechScheduler::new(dia.model(), dia.codec(), 1, options) else {
            panic!("{options:?} accepted");
        };
        assert!(err.to_string().contains("seconds"), "{err}");
        let Err(err) = self::dia().with_long_form(options) else {
            panic!("{options:?} accepted by Dia");
        };
        assert!(err.to_string().contains("seconds"), "{err}");
    }
}
