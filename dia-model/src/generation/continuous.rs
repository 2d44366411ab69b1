//! Continuous batching: a running decode that items join and leave at any step. Each item is a
//! one-item [`Decoding`] (its own text encoding, prompt prefill, positions, KV cache, sampling
//! parameters and seeded RNG); a step runs one decoder pass over every running item's rows,
//! each attending only its own cache. The projections read each weight once for all rows, so
//! several items cost little more than one, and an item's codes are those of its solo run
//! wherever the backend's per-row arithmetic does not depend on the row count (flex and
//! ndarray: tested).

use std::fmt;
use std::ops::Range;

use burn::tensor::{Tensor, TensorData};

use super::decoding::{Decoding, check_finite, host_logits};
use super::{DecodeStep, GeneratedCodes, GenerationConfig, GenerationRequest};
use crate::backend::DiaBackend;
use crate::cache::KvCache;
use crate::decoder::DecodeGroup;
use crate::error::{DiaError, Result};
use crate::model::DiaModel;

/// An item of a [`ContinuousBatch`], unique for the batch's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(u64);

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {}", self.0)
    }
}

/// What one item did in a [`ContinuousBatch::step`].
#[derive(Debug)]
pub struct ItemStep {
    pub id: ItemId,
    /// The item's step (one item: `codes[0]`, `new_frames[0]`), or why it failed (non-finite
    /// logits); a failed item decodes no further and should leave.
    pub outcome: Result<DecodeStep>,
}

/// One occupied slot.
struct Slot<'m, B: DiaBackend> {
    id: ItemId,
    decoding: Decoding<'m, B>,
    failed: bool,
}

impl<B: DiaBackend> Slot<'_, B> {
    fn is_running(&self) -> bool {
        !self.failed && self.decoding.is_running()
    }
}

/// A decode that items join ([`ContinuousBatch::join`]) and leave
/// ([`ContinuousBatch::leave`]) between steps, at most `max_batch` at a time.
pub struct ContinuousBatch<'m, B: DiaBackend> {
    model: &'m DiaModel<B>,
    slots: Vec<Slot<'m, B>>,
    max_batch: usize,
    /// Self-attention caches of items that left, taken by the next to join.
    spare: Vec<Vec<KvCache<B>>>,
    next_id: u64,
}

impl<'m, B: DiaBackend> ContinuousBatch<'m, B> {
    /// An empty batch of at most `max_batch` items (at least 1).
    pub fn new(model: &'m DiaModel<B>, max_batch: usize) -> Result<Self> {
        if max_batch == 0 {
            return Err(DiaError::InvalidInput(
                "a continuous batch needs at least one slot (max_batch 0)".into(),
            ));
        }
        Ok(Self {
            model,
            slots: Vec::with_capacity(max_batch),
            max_batch,
            spare: Vec::new(),
            next_id: 0,
        })
    }

    /// Items in the batch (running or ended but not yet left).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no item is in the batch.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The most items the batch holds at once.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Whether another item can join now.
    pub fn has_room(&self) -> bool {
        self.slots.len() < self.max_batch
    }

    /// Items that will decode at the next step.
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.is_running()).count()
    }

    /// The items in the batch, in the order they joined.
    pub fn ids(&self) -> Vec<ItemId> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// Checks `request`, encodes its text and prefills its prompt (a pass of its own), and puts
    /// it in a free slot: it decodes from the next step on, with `config`'s parameters and seed.
    /// A full batch is [`DiaError::BatchFull`].
    pub fn join(
        &mut self,
        request: &GenerationRequest,
        config: &GenerationConfig,
    ) -> Result<ItemId> {
        if !self.has_room() {
            return Err(DiaError::BatchFull {
                max_batch: self.max_batch,
            });
        }
        let recycled = self.spare.pop();
        let requests = std::slice::from_ref(request);
        let decoding = Decoding::start(self.model, requests, config, recycled)?;
        let id = ItemId(self.next_id);
        self.next_id += 1;
        self.slots.push(Slot {
            id,
            decoding,
            failed: false,
        });
        Ok(id)
    }

    /// Decodes one frame for every running item in one decoder pass; empty when none runs.
    /// An error here (reading the logits back) concerns the whole pass.
    pub fn step(&mut self) -> Result<Vec<ItemStep>> {
        let running: Vec<usize> = (0..self.slots.len())
            .filter(|&s| self.slots[s].is_running())
            .collect();
        if running.is_empty() {
            return Ok(Vec::new());
        }
        let cfg = &self.model.config;
        let (channels, vocab) = (cfg.decoder.num_channels, cfg.decoder.vocab_size);
        let ids: Vec<i64> = running
            .iter()
            .flat_map(|&s| {
                let d = &self.slots[s].decoding;
                d.input_ids(d.position(), 1)
            })
            .collect();
        let rows = 2 * running.len();
        let input = Tensor::from_data(
            TensorData::new(ids, [rows, 1, channels]),
            &self.model.device(),
        );
        let mut groups: Vec<DecodeGroup<'_, B>> = self
            .slots
            .iter_mut()
            .filter(|s| s.is_running())
            .map(|s| s.decoding.next_pass())
            .collect();
        let logits = host_logits(self.model.decode_groups(input, &mut groups))?;
        drop(groups);
        let per_item = 2 * channels * vocab;
        let steps = running
            .iter()
            .zip(logits.chunks_exact(per_item))
            .map(|(&s, logits)| {
                let slot = &mut self.slots[s];
                let outcome = check_finite(logits, slot.decoding.position() + 1)
                    .map(|()| slot.decoding.advance(logits));
                slot.failed = outcome.is_err();
                ItemStep {
                    id: slot.id,
                    outcome,
                }
            })
            .collect();
        Ok(steps)
    }

    /// Delay-free output frames `frames` of item `id`, `[frames][channels]`; `None` for an id
    /// not in the batch.
    pub fn frames(&self, id: ItemId, frames: Range<usize>) -> Option<Vec<Vec<u32>>> {
        self.slot(id).map(|s| s.decoding.frames(0, frames))
    }

    /// Whether item `id` has ended (EOS or length cap, tail written) or failed; `None` for an
    /// id not in the batch.
    pub fn is_finished(&self, id: ItemId) -> Option<bool> {
        self.slot(id)
            .map(|s| s.failed || s.decoding.is_item_finished(0))
    }

    /// Takes item `id` out of the batch and frees its slot (its caches go to the next item to
    /// join). An item that has not ended is cancelled: it keeps its final frames and ends as
    /// [`super::EndReason::Stopped`]. `None` for an id not in the batch.
    pub fn leave(&mut self, id: ItemId) -> Option<GeneratedCodes> {
        let at = self.slots.iter().position(|s| s.id == id)?;
        let slot = self.slots.remove(at);
        let stopped = slot.failed || !slot.decoding.is_item_finished(0);
        let (mut codes, caches) = slot.decoding.into_results(stopped);
        self.spare.push(caches);
        codes.pop()
    }

    fn slot(&self, id: ItemId) -> Option<&Slot<'m, B>> {
        self.slots.iter().find(|s| s.id == id)
    }
}
