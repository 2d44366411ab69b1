//! Tokens chosen on the device against the host: the same greedy codes, ends and stops
//! whatever the read-back interval, and seeded draws that repeat.

use std::ops::ControlFlow;

use dia_model::{
    DiaBackend, DiaModel, GeneratedCodes, GenerationConfig, GenerationRequest, SamplingSite,
    generate,
};

/// Two items of different lengths, the second continuing an audio prompt.
pub fn two_items() -> Vec<GenerationRequest> {
    vec![
        GenerationRequest {
            text: "[S1] Sampling test.".into(),
            audio_prompt: None,
        },
        GenerationRequest {
            text: "[S2] A second, longer item.".into(),
            audio_prompt: Some(vec![vec![3, 1, 4, 1, 5, 9, 2, 6, 5]; 4]),
        },
    ]
}

/// [`two_items`] generated at `sampling`, stopped by the callback after frame `stop_at`; also
/// returns the frames the callback saw.
pub fn run_at<B: DiaBackend>(
    model: &DiaModel<B>,
    config: &GenerationConfig,
    sampling: SamplingSite,
    stop_at: Option<usize>,
) -> (Vec<GeneratedCodes>, Vec<usize>) {
    let config = GenerationConfig {
        sampling,
        ..*config
    };
    let mut seen = Vec::new();
    let out = generate(model, &two_items(), &config, |e| {
        seen.push(e.frame);
        if Some(e.frame) == stop_at {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    (out, seen)
}

/// A greedy batch run to its end and one stopped in the middle of a read-back interval give
/// the host's codes, end reasons and callback frames with the device choosing the tokens,
/// every `read_back` steps.
pub fn check_device_stops_like_host<B: DiaBackend>(model: &DiaModel<B>, read_back: usize) {
    let config = GenerationConfig {
        max_tokens: Some(70),
        temperature: 0.0,
        ..GenerationConfig::default()
    };
    let device = SamplingSite::Device { read_back };
    for stop_at in [None, Some(read_back * 2 + read_back / 2)] {
        let host = run_at(model, &config, SamplingSite::Host, stop_at);
        let got = run_at(model, &config, device, stop_at);
        assert!(host.0.iter().all(|item| !item.codes.is_empty()));
        assert_eq!(
            got, host,
            "read back every {read_back}, stop at {stop_at:?}"
        );
    }
}

/// Seeded sampling on the device: the same seed gives the same codes, another seed others,
/// every code in range; returns the codes of seed 42.
pub fn check_device_sampling_is_seeded<B: DiaBackend>(
    model: &DiaModel<B>,
    read_back: usize,
) -> Vec<GeneratedCodes> {
    let device = SamplingSite::Device { read_back };
    let sampled = |seed| {
        let config = GenerationConfig {
            max_tokens: Some(60),
            seed,
            ..GenerationConfig::default()
        };
        run_at(model, &config, device, None).0
    };
    let a = sampled(42);
    assert_eq!(a, sampled(42), "same seed, same codes");
    assert_ne!(a, sampled(43), "another seed, other codes");
    for item in &a {
        assert!(!item.codes.is_empty(), "every item produced frames");
        let in_range = item.codes.iter().flatten().all(|&c| c <= 1023);
        assert!(in_range, "codes in 0..=1023");
    }
    a
}
