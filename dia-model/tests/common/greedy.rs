//! Greedy generation against the reference's golden codes (`golden.json` `cases`).

use std::ops::ControlFlow;

use dia_model::{
    DiaBackend, DiaModel, EndReason, GenerationConfig, GenerationRequest, ModelOptions,
    SamplingSite, generate,
};
use serde_json::Value;

use super::{Golden, fixture, golden_json};

/// A decode step whose recorded top-1/top-2 logit margin is below this is a near-tie: another
/// implementation may pick the other code there, and everything after it may differ.
pub const NEAR_TIE: f64 = 1e-4;

/// The requests and greedy config of golden case `index`.
pub fn case_inputs(
    golden_dir: &str,
    case: &Value,
    index: usize,
) -> (Vec<GenerationRequest>, GenerationConfig) {
    let golden = Golden::open(golden_dir);
    let texts: Vec<String> = match &case["text"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|t| t.as_str().unwrap().to_string()).collect(),
        other => panic!("text {other}"),
    };
    let prompt_frames: Vec<u64> = case["prompt_frames"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect())
        .unwrap_or_else(|| vec![0; texts.len()]);
    let requests = texts
        .into_iter()
        .zip(prompt_frames)
        .enumerate()
        .map(|(j, (text, frames))| {
            let audio_prompt = (frames > 0).then(|| {
                let (v, shape) = golden.get_int(&format!("case{index}_prompt{j}"));
                v.chunks(shape[1])
                    .map(|f| f.iter().map(|&x| x as u32).collect())
                    .collect()
            });
            GenerationRequest { text, audio_prompt }
        })
        .collect();
    let config = GenerationConfig {
        max_tokens: Some(case["max_tokens"].as_u64().unwrap() as usize),
        cfg_scale: case["cfg_scale"].as_f64().unwrap_or(3.0) as f32,
        temperature: 0.0,
        top_p: case["top_p"].as_f64().unwrap_or(0.95) as f32,
        cfg_filter_top_k: case["top_k"].as_u64().unwrap_or(45) as usize,
        seed: 0,
        sampling: SamplingSite::Auto,
    };
    (requests, config)
}

/// The golden cases of `golden_dir`, at most `max_cases` of them.
pub fn golden_cases(golden_dir: &str, max_cases: usize) -> Vec<Value> {
    let json = golden_json(golden_dir);
    let cases = json["cases"].as_array().unwrap();
    cases.iter().take(max_cases).cloned().collect()
}

/// Greedy codes of the first `max_cases` golden cases, tokens chosen at `sampling`, equal the
/// reference's up to the first near-tie step, with the same frame count and end reason when
/// there is none.
pub fn check_greedy_cases<B: DiaBackend>(
    model_dir: &str,
    golden_dir: &str,
    max_cases: usize,
    sampling: SamplingSite,
    device: &B::Device,
) {
    let model = DiaModel::<B>::load(&fixture(model_dir), ModelOptions::default(), device).unwrap();
    for (index, case) in golden_cases(golden_dir, max_cases).iter().enumerate() {
        let (requests, mut config) = case_inputs(golden_dir, case, index);
        config.sampling = sampling;
        let prefill: Vec<usize> = requests
            .iter()
            .map(|r| r.audio_prompt.as_ref().map_or(0, Vec::len) + 1)
            .collect();
        let first_step = prefill.iter().min().unwrap() - 1;
        let margins: Vec<f64> = case["step_margins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_f64().unwrap())
            .collect();
        // Decode steps before the first near-tie are compared; everything after may differ.
        let trusted_steps = margins
            .iter()
            .position(|&m| m < NEAR_TIE)
            .unwrap_or(usize::MAX);
        let out = generate(&model, &requests, &config, |_| ControlFlow::Continue(())).unwrap();
        let want_codes = case["codes"].as_array().unwrap();
        assert_eq!(out.len(), want_codes.len(), "case {index}: item count");
        assert!(!want_codes.is_empty(), "case {index}: golden codes");
        let delays = &model.config.delay_pattern;
        for (item, (got, want)) in out.iter().zip(want_codes).enumerate() {
            let want = want.as_array().unwrap();
            let label = format!("{model_dir} case {index} item {item} ({sampling:?})");
            if trusted_steps == usize::MAX {
                assert_eq!(got.codes.len(), want.len(), "{label}: frame count");
            }
            for (t, want_frame) in want.iter().enumerate() {
                for (c, w) in want_frame.as_array().unwrap().iter().enumerate() {
                    // Output frame t, channel c was sampled at decode step k.
                    let k = prefill[item] + t + delays[c] - 1 - first_step;
                    if k >= trusted_steps {
                        continue;
                    }
                    let g = got.codes.get(t).map(|f| f[c]);
                    assert_eq!(
                        g,
                        Some(w.as_u64().unwrap() as u32),
                        "{label}: frame {t} channel {c}"
                    );
                }
            }
            if let Some(ended) = case.get("ended_by") {
                let want_end = match ended[item].as_str().unwrap() {
                    "eos" => EndReason::Eos,
                    _ => EndReason::LengthCap,
                };
                assert_eq!(got.end, want_end, "{label}: end reason");
            }
        }
    }
}
