//! Continuous batching is batch-invariant: an item that joins a running batch at any step,
//! beside items of other lengths, prompts and sampling parameters, gets exactly the codes of
//! its solo run; a cancelled item frees its slot without touching the others.

use dia_model::SamplingSite::{self, Device, Host};
use dia_model::{
    ContinuousBatch, DiaBackend, DiaError, DiaModel, EndReason, ModelOptions, WeightStorage,
};

use crate::common::batching::{
    Interventions, Planned, config, group_logits_diff, request, run, schedule, solo,
};
use crate::common::*;

/// The schedule with every item choosing its tokens at `sampling`.
fn schedule_at(sampling: SamplingSite) -> Vec<Planned> {
    let mut items = schedule();
    for item in &mut items {
        item.config.sampling = sampling;
    }
    items
}

fn check_invariance<B: DiaBackend>(fixture_name: &str, sampling: SamplingSite, device: &B::Device) {
    check_invariance_with::<B>(fixture_name, ModelOptions::default(), sampling, device);
}

fn check_invariance_with<B: DiaBackend>(
    fixture_name: &str,
    options: ModelOptions,
    sampling: SamplingSite,
    device: &B::Device,
) {
    let model = DiaModel::<B>::load(&fixture(fixture_name), options, device).unwrap();
    let items = schedule_at(sampling);
    let (got, joined_at) = run(&model, &items, 3, Interventions::default());
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

/// One decoder pass over three items at different positions, text lengths and prompts gives
/// each item exactly the logits of its pass alone.
#[test]
fn a_grouped_pass_equals_each_group_alone() {
    for name in ["dia-tiny", "dia-tiny-orig"] {
        assert_eq!(
            group_logits_diff::<Flex>(name, &Default::default()),
            0.0,
            "flex {name}"
        );
        assert_eq!(
            group_logits_diff::<NdArray>(name, &Default::default()),
            0.0,
            "ndarray {name}"
        );
    }
}

#[test]
fn joining_items_decode_as_alone_flex() {
    check_invariance::<Flex>("dia-tiny", Host, &Default::default());
    check_invariance::<Flex>("dia-tiny-orig", Host, &Default::default());
}

/// With int8 weights and activations (each row quantized on its own, exact integer sums), an
/// item's codes are still those of its solo run.
#[test]
fn joining_items_decode_as_alone_w8a8() {
    let options = ModelOptions {
        weights: Some(WeightStorage::W8A8),
        ..ModelOptions::default()
    };
    check_invariance_with::<Flex>("dia-tiny", options, Host, &Default::default());
}

#[test]
fn joining_items_decode_as_alone_ndarray() {
    check_invariance::<NdArray>("dia-tiny", Host, &Default::default());
    check_invariance::<NdArray>("dia-tiny-orig", Host, &Default::default());
}

/// With the device choosing every item's tokens (read back together every 5 steps, items
/// joining at the next interval), each item still gets its solo run's codes, and a cancel in
/// mid-interval keeps the others whole.
#[test]
fn joining_items_decode_as_alone_sampling_on_the_device() {
    let sampling = Device { read_back: 5 };
    check_invariance::<Flex>("dia-tiny", sampling, &Default::default());
    check_invariance::<Flex>("dia-tiny-orig", sampling, &Default::default());
    check_cancel::<Flex>(sampling, &Default::default());
}

/// A cancelled item keeps a prefix of its solo codes and ends as stopped; the others, and an
/// item joining into its freed slot (reusing its caches), are unchanged.
fn check_cancel<B: DiaBackend>(sampling: SamplingSite, device: &B::Device) {
    let model = DiaModel::<B>::load(&fixture("dia-tiny"), ModelOptions::default(), device).unwrap();
    let items = schedule_at(sampling);
    let cancel = Interventions {
        cancel: Some((1, 40)),
        ..Interventions::default()
    };
    let (got, joined_at) = run(&model, &items, 3, cancel);
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

/// An item held out of 25 steps in mid-decode (a server holding a client that stopped reading)
/// keeps its slot and then gets exactly its solo codes, as do the items beside it.
fn check_hold<B: DiaBackend>(sampling: SamplingSite, device: &B::Device) {
    let model = DiaModel::<B>::load(&fixture("dia-tiny"), ModelOptions::default(), device).unwrap();
    let items = schedule_at(sampling);
    let hold = Interventions {
        hold: Some((0, 12..37)),
        ..Interventions::default()
    };
    let (got, joined_at) = run(&model, &items, 3, hold);
    assert!(joined_at[3] > 33, "the held item kept its slot");
    for (i, (item, got)) in items.iter().zip(&got).enumerate() {
        assert_eq!(got, &solo(&model, item), "item {i} as if never held");
    }
}

#[test]
fn a_held_item_decodes_as_if_never_held() {
    check_hold::<Flex>(Host, &Default::default());
    check_hold::<Flex>(Device { read_back: 5 }, &Default::default());
}

#[test]
fn a_cancelled_item_frees_its_slot_flex() {
    check_cancel::<Flex>(Host, &Default::default());
}

#[test]
fn a_cancelled_item_frees_its_slot_ndarray() {
    check_cancel::<NdArray>(Host, &Default::default());
}

#[test]
fn a_full_batch_and_bad_requests_are_errors() {
    let model = tiny_flex();
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
