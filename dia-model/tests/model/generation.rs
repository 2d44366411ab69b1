//! Greedy generation reproduces the reference's codes for every golden case, and seeded
//! sampling is reproducible, in range and validated.

use std::ops::ControlFlow;

use burn::module::Param;
use dia_model::DiaBackend;
use dia_model::{
    Decoding, DiaModel, EndReason, GenerationConfig, GenerationRequest, ModelOptions, SamplingSite,
    generate,
};

use crate::common::greedy::check_greedy_cases;
use crate::common::sites::{check_device_sampling_is_seeded, check_device_stops_like_host, run_at};
use crate::common::*;

fn all_fixtures<B: DiaBackend>(sampling: SamplingSite, device: &B::Device) {
    check_greedy_cases::<B>("dia-tiny", "dia-tiny", usize::MAX, sampling, device);
    check_greedy_cases::<B>("dia-tiny-hf", "dia-tiny", usize::MAX, sampling, device);
    check_greedy_cases::<B>(
        "dia-tiny-orig",
        "dia-tiny-orig",
        usize::MAX,
        sampling,
        device,
    );
}

#[test]
fn greedy_codes_match_reference_flex() {
    all_fixtures::<Flex>(SamplingSite::Host, &Default::default());
}

#[test]
fn greedy_codes_match_reference_ndarray() {
    all_fixtures::<NdArray>(SamplingSite::Host, &Default::default());
}

/// The device's token choice and bookkeeping, run as tensor ops on a CPU backend: every golden
/// case (EOS in mid-interval, a batch with a prompt, both versions) at two read-back intervals.
#[test]
fn greedy_codes_match_reference_sampling_on_the_device() {
    for read_back in [1, 7] {
        let sampling = SamplingSite::Device { read_back };
        all_fixtures::<Flex>(sampling, &Default::default());
    }
}

/// On flex the device's seeded draws give the host's codes (the same uniforms; the float
/// rounding of this fixture's probabilities tips no draw), and stops mid-interval match.
#[test]
fn sampling_on_the_device_matches_the_host_flex() {
    let model = tiny_flex();
    check_device_stops_like_host(&model, 12);
    let device = check_device_sampling_is_seeded(&model, 5);
    let host: Vec<_> = sampled(&model, 42);
    let device: Vec<_> = device.into_iter().map(|g| g.codes).collect();
    assert_eq!(device, host, "device draws = host draws");
}

fn sampled<B: DiaBackend>(model: &DiaModel<B>, seed: u64) -> Vec<Vec<Vec<u32>>> {
    let config = GenerationConfig {
        max_tokens: Some(60),
        seed,
        ..GenerationConfig::default()
    };
    run_at(model, &config, SamplingSite::Host, None)
        .0
        .into_iter()
        .map(|g| g.codes)
        .collect()
}

fn check_seeded_sampling<B: DiaBackend>(device: &B::Device) {
    let model = DiaModel::<B>::load(&fixture("dia-tiny"), ModelOptions::default(), device).unwrap();
    let a = sampled(&model, 42);
    assert_eq!(a, sampled(&model, 42), "same seed, same codes");
    assert_ne!(a, sampled(&model, 43), "another seed, other codes");
    assert!(
        a.iter().flatten().flatten().all(|&c| c <= 1023),
        "codes in 0..=1023"
    );
    assert!(
        a.iter().all(|item| !item.is_empty()),
        "every item produced frames"
    );
}

#[test]
fn seeded_sampling_is_reproducible_flex() {
    check_seeded_sampling::<Flex>(&Default::default());
}

#[test]
fn seeded_sampling_is_reproducible_ndarray() {
    check_seeded_sampling::<NdArray>(&Default::default());
}

/// Sampled codes are the same on 1, 2 and 3 threads: no sum depends on the thread count.
#[test]
fn sampled_codes_do_not_depend_on_the_thread_count() {
    let model = tiny_flex();
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| sampled(&model, 7))
    };
    let one = on(1);
    assert!(one.iter().all(|item| !item.is_empty()));
    assert_eq!(one, on(2), "2 threads");
    assert_eq!(one, on(3), "3 threads");
}

#[test]
fn callback_can_stop_generation() {
    let device = Default::default();
    let model =
        DiaModel::<Flex>::load(&fixture("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let request = GenerationRequest {
        text: "[S1] Stop early.".into(),
        audio_prompt: None,
    };
    let config = GenerationConfig {
        max_tokens: Some(200),
        temperature: 0.0,
        ..GenerationConfig::default()
    };
    let mut frames = Vec::new();
    let out = generate(&model, &[request], &config, |e| {
        frames.push(e.frame);
        if e.frame == 30 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(frames, (1..=30).collect::<Vec<_>>());
    assert_eq!(out[0].end, EndReason::Stopped);
    // Frames 1..=30 written; output frame t needs frame t + 1 + 15 for the last channel.
    assert_eq!(out[0].codes.len(), 30 - 15);
}

#[test]
fn invalid_inputs_are_errors() {
    let device = Default::default();
    let model =
        DiaModel::<Flex>::load(&fixture("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let run = |requests: Vec<GenerationRequest>, max_tokens: usize| {
        let config = GenerationConfig {
            max_tokens: Some(max_tokens),
            ..GenerationConfig::default()
        };
        generate(&model, &requests, &config, |_| ControlFlow::Continue(()))
            .unwrap_err()
            .to_string()
    };
    let text = |t: &str, prompt: Option<Vec<Vec<u32>>>| GenerationRequest {
        text: t.into(),
        audio_prompt: prompt,
    };
    assert!(run(vec![text("", None)], 50).contains("text 0 is empty"));
    assert!(run(vec![text("hi", None)], 257).contains("over the model's limit of 256"));
    let e = run(vec![text("hi", Some(vec![vec![1; 8]]))], 50);
    assert!(e.contains("8 channels, expected 9"), "{e}");
    let e = run(vec![text("hi", Some(vec![vec![1024; 9]]))], 50);
    assert!(e.contains("code 1024"), "{e}");
    let e = run(vec![text("\0\0\0", None)], 50);
    assert!(e.contains("only NUL bytes"), "{e}");
}

/// Two items of different lengths, one with a prompt, sampled: the frames each step reports
/// final, read as they come, are exactly the final codes, in order; stopping early keeps
/// exactly the frames reported so far.
#[test]
fn decoding_reports_each_final_frame_once_in_order() {
    let device = Default::default();
    let model =
        DiaModel::<Flex>::load(&fixture("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let requests = vec![
        GenerationRequest {
            text: "[S1] Streaming test.".into(),
            audio_prompt: None,
        },
        GenerationRequest {
            text: "[S2] A second item with a prompt.".into(),
            audio_prompt: Some(vec![vec![3, 1, 4, 1, 5, 9, 2, 6, 5]; 6]),
        },
    ];
    let config = GenerationConfig {
        max_tokens: Some(90),
        seed: 7,
        ..GenerationConfig::default()
    };
    for stop_at in [None, Some(40)] {
        let mut decoding = Decoding::new(&model, &requests, &config).unwrap();
        let mut streamed = vec![Vec::new(); 2];
        while let Some(step) = decoding.step().unwrap() {
            for (item, range) in step.new_frames.iter().enumerate() {
                assert_eq!(range.start, streamed[item].len(), "frames arrive in order");
                streamed[item].extend(decoding.frames(item, range.clone()));
            }
            if Some(step.frame) == stop_at {
                break;
            }
        }
        let out = if stop_at.is_some() {
            decoding.stop()
        } else {
            decoding.finish()
        };
        let whole = generate(&model, &requests, &config, |e| {
            if Some(e.frame) == stop_at {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(out, whole, "the state machine is what generate runs");
        for (item, got) in out.iter().enumerate() {
            assert!(!got.codes.is_empty(), "item {item} produced frames");
            assert_eq!(
                streamed[item], got.codes,
                "item {item}, stop at {stop_at:?}"
            );
        }
    }
}

/// Damaged weights (a NaN in the decoder's final norm) stop the run with the same error, frame
/// and logit index whether the host or the device chooses the tokens.
#[test]
fn non_finite_logits_are_the_same_error_on_both_sites() {
    let device = Default::default();
    let mut model =
        DiaModel::<Flex>::load(&fixture("dia-tiny"), ModelOptions::default(), &device).unwrap();
    let weight = model.decoder.norm.weight.val();
    let damaged = weight.clone().slice_fill(3..4, f32::NAN);
    model.decoder.norm.weight = Param::from_tensor(damaged);
    let errors: Vec<String> = [SamplingSite::Host, SamplingSite::Device { read_back: 4 }]
        .into_iter()
        .map(|sampling| {
            let config = GenerationConfig {
                max_tokens: Some(40),
                sampling,
                ..GenerationConfig::default()
            };
            let requests = crate::common::sites::two_items();
            generate(&model, &requests, &config, |_| ControlFlow::Continue(()))
                .unwrap_err()
                .to_string()
        })
        .collect();
    assert!(
        errors[0].contains("non-finite logit at index 0"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1], errors[0]);
}
