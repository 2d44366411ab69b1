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

    /// Steps the next read-back interval may run: the interval, no further than the buffer,
    /// and, while an item has no final frame yet, no further than the step that makes its
    /// first one final (a stream's first audio comes when the host path's would); 0 on the
    /// host path.
    pub(in crate::generation) fn device_steps(&self) -> usize {
        let Some((_, every)) = &self.device else {
            return 0;
        };
        let max_delay = self.model.config.max_delay();
        let first_final = self
            .items
            .iter()
            // An item that ended at its first frame has none to report.
            .filter(|item| {
                item.reported == 0 && item.ended.is_none_or(|(end, _)| end > item.prefill)
            })
            .map(|item| (item.prefill + max_delay).saturating_sub(self.step).max(1))
            .min()
            .unwrap_or(usize::MAX);
        let left = self.tokens.len().saturating_sub(self.step);
        left.min(*every).min(first_final)
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

#[cfg(all(test, feature = "flex"))]
mod tests {
    use std::path::Path;

    use crate::generation::{GenerationConfig, GenerationRequest, SamplingSite};
    use crate::{Decoding, DiaModel, ModelOptions};

    /// Each item's first final frame is replayed from the last step read back: nothing runs
    /// ahead of it, so a stream's first audio is not held back by the read-back interval.
    #[test]
    fn the_first_final_frame_ends_a_read_back() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/fixtures/dia-tiny");
        let device = Default::default();
        let model = DiaModel::<burn_flex::Flex>::load(&dir, ModelOptions::default(), &device)
            .expect("the fixture loads");
        let requests = [
            GenerationRequest {
                text: "[S1] First.".into(),
                audio_prompt: None,
            },
            GenerationRequest {
                text: "[S2] Prompted.".into(),
                audio_prompt: Some(vec![vec![7; 9]; 4]),
            },
        ];
        let config = GenerationConfig {
            max_tokens: Some(60),
            temperature: 0.0,
            sampling: SamplingSite::Device { read_back: 12 },
            ..GenerationConfig::default()
        };
        let mut decoding = Decoding::new(&model, &requests, &config).expect("valid requests");
        let mut first = [None, None];
        while let Some(step) = decoding.step().expect("finite logits") {
            for (item, frames) in step.new_frames.iter().enumerate() {
                if first[item].is_none() && !frames.is_empty() {
                    first[item] = Some(step.frame);
                    assert!(
                        !decoding.has_pending(),
                        "item {item}: steps ran ahead of frame {}",
                        step.frame
                    );
                }
            }
        }
        // BOS + 15 steps of delay; the prompted item's 4 frames more.
        assert_eq!(first, [Some(16), Some(20)]);
    }
}
