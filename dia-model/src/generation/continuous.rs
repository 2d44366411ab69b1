//! Continuous batching: a running decode that items join and leave at any step. Each item is a
//! one-item [`Decoding`] (its own text encoding, prompt prefill, positions, KV cache, sampling
//! parameters and seeded RNG); a step runs one decoder pass over every running item's rows,
//! each attending only its own cache. The projections read each weight once for all rows, so
//! several items cost little more than one, and an item's codes are those of its solo run
//! wherever the backend's per-row arithmetic does not depend on the row count (flex and
//! ndarray: tested).

use std::fmt;
use std::ops::Range;

use burn::tensor::{Int, Tensor, TensorData};

use super::decoding::{Decoding, check_finite, host_logits};
use super::device::read_back;
use super::validate;
use super::{DecodeStep, GeneratedCodes, GenerationConfig, GenerationRequest, SamplingSite};
use crate::backend::DiaBackend;
use crate::error::{DiaError, Result};
use crate::layers::DecodeGroup;
use crate::layers::KvCache;
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
    /// Kept out of the steps until released ([`ContinuousBatch::hold`]).
    held: bool,
}

impl<B: DiaBackend> Slot<'_, B> {
    fn is_running(&self) -> bool {
        !self.failed && !self.held && self.decoding.is_running()
    }

    /// The slot's step, marking it failed on an error.
    fn record(&mut self, outcome: Result<DecodeStep>) -> ItemStep {
        self.failed = outcome.is_err();
        ItemStep {
            id: self.id,
            outcome,
        }
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
    /// Where every item's tokens are chosen: the host, or the device every so many steps.
    sampling: SamplingSite,
}

impl<'m, B: DiaBackend> ContinuousBatch<'m, B> {
    /// An empty batch of at most `max_batch` items (at least 1), choosing tokens where the
    /// backend prefers ([`SamplingSite::Auto`]).
    pub fn new(model: &'m DiaModel<B>, max_batch: usize) -> Result<Self> {
        Self::with_sampling(model, max_batch, SamplingSite::Auto)
    }

    /// [`ContinuousBatch::new`] choosing every item's tokens at `sampling` (whatever the items'
    /// configs say). On the device, the items' steps are read back together once per interval,
    /// and an item that joins starts decoding at the next interval.
    pub fn with_sampling(
        model: &'m DiaModel<B>,
        max_batch: usize,
        sampling: SamplingSite,
    ) -> Result<Self> {
        if max_batch == 0 {
            return Err(DiaError::InvalidInput(
                "a continuous batch needs at least one slot (max_batch 0)".into(),
            ));
        }
        validate::check_sampling(sampling)?;
        let sampling = match sampling.read_back::<B>() {
            Some(read_back) => SamplingSite::Device { read_back },
            None => SamplingSite::Host,
        };
        Ok(Self {
            model,
            slots: Vec::with_capacity(max_batch),
            max_batch,
            spare: Vec::new(),
            next_id: 0,
            sampling,
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

    /// Keeps item `id` out of the steps (`held`) or lets it decode again: a held item keeps its
    /// slot, cache and place in its sequence, so its codes are those of a run never held (an
    /// item's codes do not depend on what decodes beside it). `None` for an id not in the batch.
    pub fn hold(&mut self, id: ItemId, held: bool) -> Option<()> {
        let slot = self.slots.iter_mut().find(|s| s.id == id)?;
        slot.held = held;
        Some(())
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
        let config = GenerationConfig {
            sampling: self.sampling,
            ..*config
        };
        let decoding = Decoding::start(self.model, requests, &config, recycled)?;
        let id = ItemId(self.next_id);
        self.next_id += 1;
        self.slots.push(Slot {
            id,
            decoding,
            failed: false,
            held: false,
        });
        Ok(id)
    }

    /// Decodes one frame for every running item in one decoder pass; empty when none runs.
    /// An error here (reading the logits back) concerns the whole pass. With the device
    /// choosing the tokens, a step replays the items' next read-back steps, and runs a new
    /// interval for every running item once none is left.
    pub fn step(&mut self) -> Result<Vec<ItemStep>> {
        let running: Vec<usize> = (0..self.slots.len())
            .filter(|&s| self.slots[s].is_running())
            .collect();
        if running.is_empty() {
            return Ok(Vec::new());
        }
        if let SamplingSite::Device { .. } = self.sampling {
            return self.device_step(&running);
        }
        let ids: Vec<i64> = running
            .iter()
            .flat_map(|&s| {
                let d = &self.slots[s].decoding;
                d.input_ids(d.position(), 1)
            })
            .collect();
        let input = Tensor::from_data(
            TensorData::new(ids, [2 * running.len(), 1, self.channels()]),
            &self.model.device(),
        );
        let logits = host_logits(self.pass(&running, input, 0))?;
        let per_item = logits.len() / running.len();
        let steps = running
            .iter()
            .zip(logits.chunks_exact(per_item))
            .map(|(&s, logits)| {
                let slot = &mut self.slots[s];
                let outcome = check_finite(logits, slot.decoding.position() + 1)
                    .map(|()| slot.decoding.advance(logits));
                slot.record(outcome)
            })
            .collect();
        Ok(steps)
    }

    /// One decoder pass over the `running` slots' rows of `input` `[2 · running, 1, channels]`
    /// at `ahead` steps past each one's next frame; f32 logits `[2 · running, 1, channels,
    /// vocab]`.
    fn pass(&mut self, running: &[usize], input: Tensor<B, 3, Int>, ahead: usize) -> Tensor<B, 4> {
        let mut groups: Vec<DecodeGroup<'_, B>> = self
            .slots
            .iter_mut()
            .enumerate()
            .filter(|(s, _)| running.contains(s))
            .map(|(_, slot)| slot.decoding.next_pass(ahead))
            .collect();
        self.model.decode_groups(input, &mut groups)
    }

    /// [`ContinuousBatch::step`] with the device choosing the tokens.
    fn device_step(&mut self, running: &[usize]) -> Result<Vec<ItemStep>> {
        if running
            .iter()
            .all(|&s| !self.slots[s].decoding.has_pending())
        {
            self.run_interval(running)?;
        }
        let steps = self
            .slots
            .iter_mut()
            .enumerate()
            .filter(|(s, slot)| running.contains(s) && slot.decoding.has_pending())
            .map(|(_, slot)| {
                let outcome = slot.decoding.replay_device_step();
                slot.record(outcome)
            })
            .collect();
        Ok(steps)
    }

    /// Queues a read-back interval's passes (as many steps as every running item has left) on
    /// the device, each item sampling its own rows, then reads every item's codes back at once.
    fn run_interval(&mut self, running: &[usize]) -> Result<()> {
        let steps = running
            .iter()
            .map(|&s| self.slots[s].decoding.device_steps())
            .min()
            .unwrap_or(0);
        for ahead in 0..steps {
            let inputs: Vec<_> = running
                .iter()
                .filter_map(|&s| self.slots[s].decoding.device_input())
                .collect();
            let logits = self.pass(running, Tensor::cat(inputs, 0), ahead);
            for (i, &s) in running.iter().enumerate() {
                let rows = logits.clone().narrow(0, 2 * i, 2);
                self.slots[s].decoding.queue_device_step(rows, ahead);
            }
        }
        let queues = running
            .iter()
            .filter_map(|&s| self.slots[s].decoding.take_device_queue())
            .collect();
        for (rows, &s) in read_back(queues)?.into_iter().zip(running) {
            self.slots[s].decoding.set_pending(rows);
        }
        Ok(())
    }

    fn channels(&self) -> usize {
        self.model.config.decoder.num_channels
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
