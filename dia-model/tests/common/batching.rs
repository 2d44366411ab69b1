//! Continuous batching helpers: a schedule of items joining a running batch, its run, solo
//! runs to compare with, and the logits of a grouped decoder pass against each group alone.

use std::collections::HashMap;
use std::ops::{ControlFlow, Range};

use burn::tensor::{Int, Tensor, TensorData};
use dia_model::generation::ItemId;
use dia_model::layers::DecodeGroup;
use dia_model::model::TextBatch;
use dia_model::tokenizer::encode_text;
use dia_model::{
    ContinuousBatch, DiaBackend, DiaModel, GeneratedCodes, GenerationConfig, GenerationRequest,
    ModelOptions, generate,
};

use super::{fixture, max_abs_diff, values};

/// An item of a schedule: when it joins (batch step), what it says and how.
pub struct Planned {
    pub join_at: usize,
    pub request: GenerationRequest,
    pub config: GenerationConfig,
}

/// A request for `text`, with a made-up prompt of `prompt_frames` frames.
pub fn request(text: &str, prompt_frames: usize) -> GenerationRequest {
    let prompt = (prompt_frames > 0).then(|| {
        (0..prompt_frames)
            .map(|t| (0..9).map(|c| ((t * 37 + c * 101) % 1024) as u32).collect())
            .collect()
    });
    GenerationRequest {
        text: text.into(),
        audio_prompt: prompt,
    }
}

/// Generation parameters (the rest the reference's).
pub fn config(max_tokens: usize, temperature: f32, cfg_scale: f32, seed: u64) -> GenerationConfig {
    GenerationConfig {
        max_tokens: Some(max_tokens),
        temperature,
        cfg_scale,
        seed,
        ..GenerationConfig::default()
    }
}

/// Items joining at steps 0, 7 and 31 (and a fourth once a slot is free), with and without
/// prompts, greedy and seeded sampling, different lengths and guidance.
pub fn schedule() -> Vec<Planned> {
    let planned = |join_at, request, config| Planned {
        join_at,
        request,
        config,
    };
    vec![
        planned(
            0,
            request("[S1] The first item starts the batch.", 0),
            config(90, 0.0, 3.0, 0),
        ),
        planned(
            7,
            request("[S2] Second, with a prompt.", 6),
            config(70, 1.2, 3.0, 11),
        ),
        planned(
            31,
            request("[S1] Third joins late.", 0),
            config(64, 1.0, 2.0, 5),
        ),
        planned(
            33,
            request("[S2] A fourth, prompted, waits for room.", 10),
            config(80, 0.0, 3.0, 0),
        ),
    ]
}

/// The item's codes from a solo run.
pub fn solo<B: DiaBackend>(model: &DiaModel<B>, item: &Planned) -> GeneratedCodes {
    let requests = std::slice::from_ref(&item.request);
    let mut out = generate(model, requests, &item.config, |_| ControlFlow::Continue(())).unwrap();
    out.pop().unwrap()
}

/// What happens to one item of a schedule besides joining.
#[derive(Clone, Default)]
pub struct Interventions {
    /// (item, step): the item is cancelled at that step.
    pub cancel: Option<(usize, usize)>,
    /// (item, steps): the item is held out of those steps (and must not decode in them).
    pub hold: Option<(usize, Range<usize>)>,
}

/// Runs the schedule in a batch of `max_batch` slots choosing tokens at the first item's
/// sampling site; an item joins at its step or, when the batch is full, at the first step
/// after a slot frees; `interventions` cancel or hold one.
pub fn run<B: DiaBackend>(
    model: &DiaModel<B>,
    items: &[Planned],
    max_batch: usize,
    interventions: Interventions,
) -> (Vec<GeneratedCodes>, Vec<usize>) {
    let Interventions { cancel, hold } = interventions;
    let sampling = items[0].config.sampling;
    let mut batch = ContinuousBatch::with_sampling(model, max_batch, sampling).unwrap();
    let mut ids: HashMap<ItemId, usize> = HashMap::new();
    let mut done: Vec<Option<GeneratedCodes>> = items.iter().map(|_| None).collect();
    let mut joined_at = vec![usize::MAX; items.len()];
    let mut reported = vec![0; items.len()];
    let mut step = 0;
    while done.iter().any(Option::is_none) {
        if let Some((i, at)) = cancel
            && at == step
        {
            let id = *ids.iter().find(|(_, v)| **v == i).unwrap().0;
            done[i] = Some(batch.leave(id).unwrap());
            assert!(batch.has_room(), "a cancelled item frees its slot");
        }
        for (i, item) in items.iter().enumerate() {
            if joined_at[i] == usize::MAX && item.join_at <= step && batch.has_room() {
                let id = batch.join(&item.request, &item.config).unwrap();
                ids.insert(id, i);
                joined_at[i] = step;
            }
        }
        let held = hold
            .clone()
            .filter(|(_, steps)| steps.contains(&step))
            .map(|(i, _)| i);
        if let Some((i, _)) = &hold
            && let Some((&id, _)) = ids.iter().find(|(_, v)| *v == i)
        {
            batch.hold(id, held == Some(*i));
        }
        for s in batch.step().unwrap() {
            let i = ids[&s.id];
            assert_ne!(held, Some(i), "a held item decodes nothing (step {step})");
            let st = s.outcome.unwrap();
            assert_eq!(
                st.new_frames[0].start, reported[i],
                "frames reported in order"
            );
            reported[i] = st.new_frames[0].end;
            if batch.is_finished(s.id) == Some(true) {
                let got = batch.leave(s.id).unwrap();
                assert_eq!(got.codes.len(), reported[i], "every frame reported once");
                done[i] = Some(got);
            }
        }
        step += 1;
        assert!(step < 1000, "the schedule ends");
    }
    (done.into_iter().map(Option::unwrap).collect(), joined_at)
}

/// The largest difference between the logits of one decoder pass over three items (different
/// texts, positions and caches) and each item's pass alone, over a few steps.
pub fn group_logits_diff<B: DiaBackend>(fixture_name: &str, device: &B::Device) -> f32 {
    let model =
        DiaModel::<B>::load(&fixture(fixture_name), ModelOptions::default(), device).unwrap();
    let channels = model.config.decoder.num_channels;
    let texts = [
        "[S1] One.",
        "[S2] A second, longer text here.",
        "[S1] Third (laughs).",
    ];
    let prefills = [1, 5, 9];
    let frames = |i: usize, at: usize, len: usize| -> Tensor<B, 3, Int> {
        let ids: Vec<i64> = (0..2 * len * channels)
            .map(|j| ((i * 131 + at * 17 + j * 7) % 1024) as i64)
            .collect();
        Tensor::from_data(TensorData::new(ids, [2, len, channels]), device)
    };
    // Each item twice: one state for the grouped passes, one for its passes alone.
    let mut states: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let tokens = encode_text(text, model.config.encoder.max_position_embeddings).tokens;
            let batch = TextBatch::<B>::new(&[tokens], device);
            let mut state = model.decoder_state(model.encode(&batch), &batch, 32);
            model.decode(frames(i, 0, prefills[i]), 0, &mut state);
            (state.clone(), state)
        })
        .collect();
    let mut worst = 0.0f32;
    for step in 0..4 {
        let input = Tensor::cat((0..3).map(|i| frames(i, step + 1, 1)).collect(), 0);
        let mut groups: Vec<DecodeGroup<'_, B>> = states
            .iter_mut()
            .zip(prefills)
            .map(|((grouped, _), p)| DecodeGroup {
                state: grouped,
                start: p + step,
            })
            .collect();
        let together = values(model.decode_groups(input, &mut groups));
        let per_item = together.len() / 3;
        for (i, (_, alone)) in states.iter_mut().enumerate() {
            let got = values(model.decode(frames(i, step + 1, 1), prefills[i] + step, alone));
            let diff = max_abs_diff(&together[i * per_item..][..per_item], &got);
            worst = worst.max(diff);
        }
    }
    worst
}
