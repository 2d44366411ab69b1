//! Continuous batching is batch-invariant: an item that joins a running batch at any step,
//! beside items of other lengths, prompts and sampling parameters, gets exactly the codes of
//! its solo run; a cancelled item frees its slot without touching the others.

mod common;

use std::collections::HashMap;
use std::ops::ControlFlow;

use common::*;
use dia_model::{
    ContinuousBatch, DiaBackend, DiaError, DiaModel, EndReason, GeneratedCodes, GenerationConfig,
    GenerationRequest, ItemId, ModelOptions, generate,
};

/// An item of a schedule: when it joins (batch step), what it says and how.
struct Planned {
    join_at: usize,
    request: GenerationRequest,
    config: GenerationConfig,
}

fn request(text: &str, prompt_frames: usize) -> GenerationRequest {
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

fn config(max_tokens: usize, temperature: f32, cfg_scale: f32, seed: u64) -> GenerationConfig {
    GenerationConfig {
        max_tokens,
        temperature,
        cfg_scale,
        seed,
        ..GenerationConfig::default()
    }
}

/// Items joining at steps 0, 7 and 31 (and a fourth once a slot is free), with and without
/// prompts, greedy and seeded sampling, different lengths and guidance.
fn schedule() -> Vec<Planned> {
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

fn solo<B: DiaBackend>(model: &DiaModel<B>, item: &Planned) -> GeneratedCodes {
    let requests = std::slice::from_ref(&item.request);
    let mut out = generate(model, requests, &item.config, |_| ControlFlow::Continue(())).unwrap();
    out.pop().unwrap()
}

/// Runs the schedule in a batch of `max_batch` slots; an item joins at its step or, when the
/// batch is full, at the first step after a slot frees. `cancel` = (item, step) stops one.
fn run<B: DiaBackend>(
    model: &DiaModel<B>,
    items: &[Planned],
    max_batch: usize,
    cancel: Option<(usize, usize)>,
) -> (Vec<GeneratedCodes>, Vec<usize>) {
    let mut batch = ContinuousBatch::new(model, max_batch).unwrap();
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
        for s in batch.step().unwrap() {
            let i = ids[&s.id];
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

fn check_invariance<B: DiaBackend>(fixture_name: &str, device: &B::Device) {
    let model =
        DiaModel::<B>::load(&fixture(fixture_name), ModelOptions::default(), device).unwrap();
    let items = schedule();
    let (got, joined_at) = run(&model, &items, 3, None);
    assert_eq!(&joined_at[..3], &[0, 7, 31], "joined at their steps");
    assert!(joined_at[3] > 33, "the fourth waited for a free slot");
    for (i, (item, got)) in items.iter().zip(&got).enumerate() {
        let want = solo(&model, item);
        assert!(
            !want.codes.is_empty(),
            "{fixture_name} item {i}: solo codes"
        );
        assert_eq!(
            got, &want,
            "{fixture_name} item {i}: batched codes equal solo"
        );
    }
}

#[test]
fn joining_items_decode_as_alone_flex() {
    check_invariance::<Flex>("dia-tiny", &Default::default());
    check_invariance::<Flex>("dia-tiny-orig", &Default::default());
}

#[test]
fn joining_items_decode_as_alone_ndarray() {
    check_invariance::<NdArray>("dia-tiny", &Default::default());
    check_invariance::<NdArray>("dia-tiny-orig", &Default::default());
}

/// A cancelled item keeps a prefix of its solo codes and ends as stopped; the others, and an
/// item joining into its freed slot (reusing its caches), are unchanged.
fn check_cancel<B: DiaBackend>(device: &B::Device) {
    let model = DiaModel::<B>::load(&fixture("dia-tiny"), ModelOptions::default(), device).unwrap();
    let items = schedule();
    let (got, joined_at) = run(&model, &items, 3, Some((1, 40)));
    assert_eq!(
        joined_at[3], 40,
        "the fourth takes the cancelled item's slot"
    );
    let cancelled = &got[1];
    assert_eq!(cancelled.end, EndReason::Stopped);
    let want = solo(&model, &items[1]);
    assert!(cancelled.codes.len() < want.codes.len(), "cut short");
    assert_eq!(cancelled.codes, want.codes[..cancelled.codes.len()]);
    for i in [0, 2, 3] {
        assert_eq!(
            got[i],
            solo(&model, &items[i]),
            "item {i} unchanged by the cancel"
        );
    }
}

#[test]
fn a_cancelled_item_frees_its_slot_flex() {
    check_cancel::<Flex>(&Default::default());
}

#[test]
fn a_cancelled_item_frees_its_slot_ndarray() {
    check_cancel::<NdArray>(&Default::default());
}

#[test]
fn a_full_batch_and_bad_requests_are_errors() {
    let model = DiaModel::<Flex>::load(
        &fixture("dia-tiny"),
        ModelOptions::default(),
        &Default::default(),
    )
    .unwrap();
    assert!(ContinuousBatch::new(&model, 0).is_err(), "zero slots");
    let mut batch = ContinuousBatch::new(&model, 1).unwrap();
    let cfg = config(40, 0.0, 3.0, 0);
    let empty = request("", 0);
    assert!(batch.join(&empty, &cfg).is_err(), "empty text");
    assert!(
        batch.is_empty() && batch.has_room(),
        "a refused item takes no slot"
    );
    let id = batch.join(&request("[S1] One.", 0), &cfg).unwrap();
    let full = batch.join(&request("[S1] Two.", 0), &cfg);
    assert!(
        matches!(full, Err(DiaError::BatchFull { max_batch: 1 })),
        "{full:?}"
    );
    assert!(batch.frames(id, 0..0).is_some());
    let gone = batch.leave(id).unwrap();
    assert_eq!(gone.end, EndReason::Stopped);
    assert!(
        batch.leave(id).is_none() && batch.is_finished(id).is_none(),
        "left"
    );
    assert!(batch.step().unwrap().is_empty(), "nothing runs");
}
