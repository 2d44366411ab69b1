//! Decoding on the device: the step's tokens chosen there ([`super::TokenChooser`]) and the
//! decoding loop's bookkeeping (the EOS countdown and forced tail, prompt teacher-forcing, the
//! next step's input frame) as tensor ops, so a run of steps is queued without the host waiting
//! on any. Each step leaves one small row (its codes and a non-finite flag) that the host reads
//! back for many steps at once and replays through the same state machine as host-sampled
//! codes ([`super::Decoding`]).
//!
//! The draws are the host sampler's seeded uniforms, uploaded with the step, so seeded runs
//! repeat on every backend.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};

use super::TokenChooser;
use super::sampling::SamplerParams;
use crate::backend::DiaBackend;
use crate::config::DiaConfig;
use crate::error::{DiaError, Result};

/// A device step's row as read back: the items' codes `[items][channels]`, and the flat index
/// of the first non-finite logit of the step, if it had one.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StepRow {
    pub codes: Vec<Vec<u32>>,
    pub non_finite: Option<usize>,
}

/// What the host knows about a step before it runs: its uniforms, whether it reaches the
/// length cap, and the prompt codes that override the sampled ones in the next frame.
pub(super) struct StepInputs<B: Backend> {
    /// One uniform in `[0, 1)` per item and channel `[items, 1, channels, 1]` (sampled decoding).
    pub draws: Option<Tensor<B, 4>>,
    /// The frame written reaches `max_tokens − max_delay`: every item not yet ending starts
    /// its forced tail.
    pub at_cap: bool,
    /// Prompt codes `[items, channels]` and where they are set, for the frame written.
    pub prompt: Option<(Tensor<B, 2, Int>, Tensor<B, 2, Bool>)>,
}

/// Steps a [`DeviceLoop`] queued: each step's codes (−1 where a logit was not finite) and
/// logits.
pub(super) struct Queue<B: Backend> {
    steps: Vec<(Tensor<B, 1, Int>, Tensor<B, 4>)>,
    channels: usize,
}

/// Reads the codes of every step of `queues` back in one transfer (the host's one wait per
/// read-back interval, whatever the number of loops); rows per queue, in order.
pub(super) fn read_back<B: Backend>(queues: Vec<Queue<B>>) -> Result<Vec<Vec<StepRow>>> {
    let codes: Vec<_> = queues
        .iter()
        .flat_map(|q| q.steps.iter().map(|(codes, _)| codes.clone()))
        .collect();
    if codes.is_empty() {
        return Ok(queues.iter().map(|_| Vec::new()).collect());
    }
    let flat = {
        let _read = tracing::trace_span!(super::HOST_READ_SPAN).entered();
        Tensor::cat(codes, 0)
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .map_err(|e| DiaError::InvalidInput(format!("reading codes: {e:?}")))?
    };
    let mut at = 0;
    let mut rows = Vec::with_capacity(queues.len());
    for queue in queues {
        let mut queue_rows = Vec::with_capacity(queue.steps.len());
        for (codes, logits) in queue.steps {
            let row = &flat[at..at + codes.dims()[0]];
            at += row.len();
            let non_finite = match row.first() {
                Some(&code) if code < 0 => Some(first_non_finite(logits)?),
                _ => None,
            };
            let codes = row
                .chunks_exact(queue.channels)
                .map(|c| c.iter().map(|&v| v as u32).collect())
                .collect();
            queue_rows.push(StepRow { codes, non_finite });
        }
        rows.push(queue_rows);
    }
    Ok(rows)
}

/// The device side of a decoding: its next input, its items' countdowns and the steps not yet
/// read back.
pub(super) struct DeviceLoop<B: Backend> {
    chooser: TokenChooser<B>,
    /// Each channel's delay `[1, channels]`.
    delays: Tensor<B, 2, Int>,
    eos: i64,
    pad: i64,
    max_delay: i64,
    /// The next step's decoder input `[2 · items, 1, channels]`.
    input: Tensor<B, 3, Int>,
    /// Per item, steps left of the forced tail, −1 before it starts `[items, 1]`.
    countdown: Tensor<B, 2, Int>,
    /// The int dtype of every int tensor here (backends' ops differ in the one they return).
    int: DType,
    /// Per queued step: its sampled codes `[items · channels]`, all −1 when a logit was not
    /// finite, and its logits, read only then (to name the first bad one as the host would).
    queued: Vec<(Tensor<B, 1, Int>, Tensor<B, 4>)>,
    items: usize,
    channels: usize,
}

impl<B: DiaBackend> DeviceLoop<B> {
    /// A loop whose first step reads `input` `[2 · items, 1, channels]`.
    pub fn new(cfg: &DiaConfig, params: SamplerParams, input: Tensor<B, 3, Int>) -> Self {
        let device = input.device();
        let items = input.dims()[0] / 2;
        let countdown = Tensor::<B, 2, Int>::full([items, 1], -1, &device);
        let int = countdown.dtype();
        let delays: Vec<i64> = cfg.delay_pattern.iter().map(|&d| d as i64).collect();
        let channels = cfg.decoder.num_channels;
        Self {
            chooser: TokenChooser::new(cfg, params, &device),
            delays: Tensor::<B, 2, Int>::from_data(TensorData::new(delays, [1, channels]), &device)
                .cast(int),
            eos: i64::from(cfg.eos_token_id),
            pad: i64::from(cfg.pad_token_id),
            max_delay: cfg.max_delay() as i64,
            input: input.cast(int),
            countdown,
            int,
            queued: Vec::new(),
            items,
            channels,
        }
    }

    /// The decoder input of the next step `[2 · items, 1, channels]`.
    pub fn input(&self) -> Tensor<B, 3, Int> {
        self.input.clone()
    }

    /// Queues the choice of a step's codes from its f32 logits `[2 · items, 1, channels,
    /// vocab]`: sampling, the forced tails and the next input, all on the device.
    pub fn step(&mut self, logits: Tensor<B, 4>, inputs: StepInputs<B>) {
        let [items, channels] = [self.items, self.channels];
        let sampled = self
            .chooser
            .choose(logits.clone(), inputs.draws, self.int)
            .reshape([items, channels]);
        let forced = self.force_tails(sampled.clone(), inputs.at_cap);
        let next = match inputs.prompt {
            Some((values, set)) => forced.mask_where(set, values.cast(self.int)),
            None => forced,
        };
        // Both CFG rows of an item read its frame: [items, 1, C] -> [items, 2, C] -> [2·items, 1, C].
        self.input = next
            .reshape([items, 1, channels])
            .expand([items, 2, channels])
            .reshape([2 * items, 1, channels]);
        // A NaN or an infinity times 0 is NaN, a finite logit 0: the sum flags the step.
        let flag = (logits.clone() * 0.0).sum().is_nan().reshape([1, 1]);
        // The host reads the codes as sampled: its replay forces the tails again and tells an
        // EOS from the length cap by them.
        let codes = sampled.mask_fill(flag.expand([items, channels]), -1);
        self.queued
            .push((codes.reshape([items * channels]), logits));
    }

    /// The steps queued since the last [`DeviceLoop::take_queue`], to read back.
    pub fn take_queue(&mut self) -> Queue<B> {
        Queue {
            steps: std::mem::take(&mut self.queued),
            channels: self.channels,
        }
    }

    /// Starts each item's countdown when channel 0 produced EOS (or at the cap) and forces the
    /// tails, as [`super::Decoding`]'s host bookkeeping does; `codes` `[items, channels]`.
    fn force_tails(&mut self, codes: Tensor<B, 2, Int>, at_cap: bool) -> Tensor<B, 2, Int> {
        let shape = codes.shape();
        let countdown = self.countdown.clone();
        let mut start = countdown.clone().lower_elem(0);
        if !at_cap {
            start = start.bool_and(codes.clone().narrow(1, 0, 1).equal_elem(self.eos));
        }
        let countdown = countdown.mask_fill(start, self.max_delay);
        let active = countdown.clone().greater_elem(0);
        // Steps since the tail started `[items, 1]`; −1 where no tail runs.
        let after =
            (countdown.clone().neg() + self.max_delay).mask_fill(active.clone().bool_not(), -1);
        let after = after.expand(shape.clone());
        let delays = self.delays.clone().expand(shape);
        let eos_at = after.clone().equal(delays.clone());
        let pad_at = after.greater(delays);
        self.countdown = countdown - active.int().cast(self.int);
        codes
            .mask_fill(eos_at, self.eos)
            .mask_fill(pad_at, self.pad)
    }
}

/// The flat index of the first non-finite entry of a step's `logits`, read to the host (only
/// for a step the device flagged).
fn first_non_finite<B: Backend>(logits: Tensor<B, 4>) -> Result<usize> {
    let values = logits
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| DiaError::InvalidInput(format!("reading logits: {e:?}")))?;
    values
        .iter()
        .position(|v| !v.is_finite())
        .ok_or_else(|| DiaError::InvalidInput("a step flagged non-finite has finite logits".into()))
}
