//! [`Decoding`] with the device choosing the tokens: a read-back interval's steps are queued
//! (each decoded, sampled and turned into the next input on the device), their codes read back
//! at once, and replayed one [`Decoding::step`] at a time through the host bookkeeping, so what
//! a caller sees and stops on is what the host path gives.

use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::Decoding;
use crate::backend::DiaBackend;
use crate::error::{DiaError, Result};
use crate::generation::DecodeStep;
use crate::generation::device::{self, Queue, StepInputs, StepRow};

impl<B: DiaBackend> Decoding<'_, B> {
    /// Replays the next step read back from the device through the host bookkeeping.
    pub(in crate::generation) fn replay_device_step(&mut self) -> Result<DecodeStep> {
        let row = self
            .pending
            .pop_front()
            .ok_or_else(|| DiaError::InvalidInput("no device step is left to replay".into()))?;
        if let Some(index) = row.non_finite {
            let frame = self.step + 1;
            return Err(DiaError::NonFinite { frame, index });
        }
        Ok(self.advance_codes(row.codes))
    }

    /// Runs a read-back interval on the device alone: its steps queued (no further than the
    /// buffer), then read back in one transfer.
    pub(super) fn run_on_device(&mut self) -> Result<()> {
        let steps = self.device_steps();
        for ahead in 0..steps {
            let Some(input) = self.device_input() else {
                break;
            };
            let position = self.step + ahead;
            let logits = self.model.decode(input, position, &mut self.state);
            self.queue_device_step(logits, ahead);
        }
        let queue = self.take_device_queue().into_iter().collect();
        let rows = device::read_back(queue)?.pop().unwrap_or_default();
        self.set_pending(rows);
        Ok(())
    }

    /// Steps the next read-back interval may run: the interval, or what is left of the buffer;
    /// 0 on the host path.
    pub(in crate::generation) fn device_steps(&self) -> usize {
        let left = self.tokens.len().saturating_sub(self.step);
        self.device
            .as_ref()
            .map_or(0, |(_, every)| left.min(*every))
    }

    /// The decoder input of the next queued device step `[2 · items, 1, channels]`.
    pub(in crate::generation) fn device_input(&self) -> Option<Tensor<B, 3, Int>> {
        self.device.as_ref().map(|(device, _)| device.input())
    }

    /// Queues the choice of tokens from the logits of the step `ahead` steps after the next
    /// one (f32 `[2 · items, 1, channels, vocab]`).
    pub(in crate::generation) fn queue_device_step(&mut self, logits: Tensor<B, 4>, ahead: usize) {
        let frame = self.step + ahead + 1;
        let max_delay = self.model.config.max_delay();
        let inputs = StepInputs {
            draws: self.draws(),
            at_cap: frame + max_delay >= self.tokens.len(),
            prompt: self.prompt_frame(frame),
        };
        if let Some((device, _)) = self.device.as_mut() {
            device.step(logits, inputs);
        }
    }

    /// The device steps queued since the last read-back.
    pub(in crate::generation) fn take_device_queue(&mut self) -> Option<Queue<B>> {
        self.device.as_mut().map(|(device, _)| device.take_queue())
    }

    /// Rows read back, to replay.
    pub(in crate::generation) fn set_pending(&mut self, rows: Vec<StepRow>) {
        self.pending = rows.into();
    }

    /// Whether read-back steps wait to be replayed.
    pub(in crate::generation) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The sampler's uniforms for one device step `[items, 1, channels, 1]`; none when greedy.
    fn draws(&mut self) -> Option<Tensor<B, 4>> {
        let (items, channels) = (self.items.len(), self.model.config.decoder.num_channels);
        let draws = self.sampler.uniforms(items * channels)?;
        let data = TensorData::new(draws, [items, 1, channels, 1]);
        Some(Tensor::from_data(data, &self.model.device()))
    }

    /// The prompt codes teacher-forced into decoder frame `frame` `[items, channels]` and where
    /// they are set; none past the prompts.
    fn prompt_frame(&self, frame: usize) -> Option<(Tensor<B, 2, Int>, Tensor<B, 2, Bool>)> {
        if frame >= self.tokens.len() {
            return None;
        }
        let slots: Vec<Option<u32>> = (0..self.items.len())
            .flat_map(|i| self.tokens.frame(i, frame).to_vec())
            .collect();
        if slots.iter().all(Option::is_none) {
            return None;
        }
        let shape = [self.items.len(), self.model.config.decoder.num_channels];
        let values: Vec<i64> = slots.iter().map(|s| i64::from(s.unwrap_or(0))).collect();
        let set: Vec<bool> = slots.iter().map(Option::is_some).collect();
        let device = self.model.device();
        Some((
            Tensor::from_data(TensorData::new(values, shape), &device),
            Tensor::from_data(TensorData::new(set, shape), &device),
        ))
    }
}
