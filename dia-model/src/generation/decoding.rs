//! The reference's decoding loop as a step-level state machine: [`Decoding::new`] encodes the
//! texts and prefills the prompts, each [`Decoding::step`] decodes one frame for the whole
//! batch and reports which delay-free frames became final, and [`Decoding::finish`] (or
//! [`Decoding::stop`]) returns every item's codes.

use std::collections::VecDeque;
use std::ops::Range;

use burn::tensor::{Int, Tensor, TensorData};

mod on_device;

use super::delay::DelayedTokens;
use super::device::{DeviceLoop, StepRow};
use super::sampling::{Sampler, SamplerParams, SpecialIds};
use super::{EndReason, GeneratedCodes, GenerationConfig, GenerationRequest, validate};
use crate::backend::DiaBackend;
use crate::error::{DiaError, Result};
use crate::layers::DecodeGroup;
use crate::layers::{DecoderState, KvCache};
use crate::model::{DiaModel, TextBatch};
use crate::tokenizer::encode_text;

/// One decode step's result.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeStep {
    /// Absolute decoder frame just written (1 for the first generated frame without a prompt).
    pub frame: usize,
    /// Per item, the (still delayed) codes of this frame, EOS/PAD forcing applied.
    pub codes: Vec<Vec<u32>>,
    /// Per item, the delay-free output frames that became final at this step (indices into
    /// the item's [`GeneratedCodes::codes`]; read them with [`Decoding::frames`]).
    pub new_frames: Vec<Range<usize>>,
}

/// Per-item progress: where its output starts and its end-of-sequence countdown.
#[derive(Debug, Clone, Copy)]
struct ItemProgress {
    /// Decoder frames before the item's first output frame: BOS and the audio prompt.
    prefill: usize,
    /// Steps left of the forced EOS/PAD tail once EOS was sampled or the length cap reached.
    countdown: Option<usize>,
    /// The frame at which the tail started, and why.
    ended: Option<(usize, EndReason)>,
    /// Output frames already reported final.
    reported: usize,
    /// Text tokens dropped by truncation.
    truncated: usize,
}

impl ItemProgress {
    fn is_done(&self) -> bool {
        self.countdown == Some(0)
    }

    /// Output frames whose every channel is written once decoder frame `written` is: frame `t`
    /// needs decoder frame `prefill + t + max_delay`; an ended item has no frame past its end.
    fn final_frames(&self, written: usize, max_delay: usize) -> usize {
        let complete = (written + 1).saturating_sub(self.prefill + max_delay);
        match self.ended {
            Some((end, _)) if self.is_done() => end.saturating_sub(self.prefill),
            Some((end, _)) => complete.min(end.saturating_sub(self.prefill)),
            None => complete,
        }
    }
}

/// A batch being decoded, one frame per [`Decoding::step`].
pub struct Decoding<'m, B: DiaBackend> {
    model: &'m DiaModel<B>,
    state: DecoderState<B>,
    tokens: DelayedTokens,
    items: Vec<ItemProgress>,
    sampler: Sampler,
    /// Decoder frames in the cache; the next step writes frame `step + 1`.
    step: usize,
    /// Whether every item is past its prompt and the delay after it: from then on, sampled
    /// codes replace what the buffer holds.
    bos_over: bool,
    /// Device-side sampling and the steps per read-back, when the device chooses the tokens.
    device: Option<(DeviceLoop<B>, usize)>,
    /// Steps the device ran whose codes were read back but not yet replayed.
    pending: VecDeque<StepRow>,
}

impl<'m, B: DiaBackend> Decoding<'m, B> {
    /// Checks the requests, encodes the texts and prefills the decoder with each item's BOS
    /// and audio prompt (two CFG rows per item).
    pub fn new(
        model: &'m DiaModel<B>,
        requests: &[GenerationRequest],
        config: &GenerationConfig,
    ) -> Result<Self> {
        Self::start(model, requests, config, None)
    }

    /// [`Decoding::new`] with the self-attention caches of an earlier decoding of as many
    /// items (see [`Decoding::into_results`]) instead of new ones.
    pub(super) fn start(
        model: &'m DiaModel<B>,
        requests: &[GenerationRequest],
        config: &GenerationConfig,
        recycled: Option<Vec<KvCache<B>>>,
    ) -> Result<Self> {
        validate::check(model, requests, config)?;
        let cfg = &model.config;
        let text_len = cfg.encoder.max_position_embeddings;
        let encoded: Vec<_> = requests
            .iter()
            .map(|r| encode_text(&r.text, text_len))
            .collect();
        validate::check_encoded(&encoded, text_len)?;
        let texts: Vec<Vec<u32>> = encoded.iter().map(|e| e.tokens.clone()).collect();
        let batch = TextBatch::<B>::new(&texts, &model.device());
        let enc = model.encode(&batch);
        let max_tokens = config.max_tokens_for(cfg);
        let state = model
            .decoder
            .init_state(enc, batch.padding.clone(), max_tokens, recycled);
        let prompts: Vec<_> = requests.iter().map(|r| r.audio_prompt.as_deref()).collect();
        let (tokens, prefill) =
            DelayedTokens::with_prompts(&prompts, &cfg.delay_pattern, cfg.bos_token_id, max_tokens);
        let items = prefill
            .iter()
            .zip(&encoded)
            .map(|(&prefill, e)| ItemProgress {
                prefill,
                countdown: None,
                ended: None,
                reported: 0,
                truncated: e.truncated,
            })
            .collect();
        let params = SamplerParams {
            cfg_scale: config.cfg_scale,
            temperature: config.temperature,
            top_p: config.top_p,
            top_k: config.cfg_filter_top_k,
        };
        let special = SpecialIds {
            eos: cfg.eos_token_id as usize,
        };
        let mut decoding = Self {
            model,
            state,
            tokens,
            items,
            sampler: Sampler::new(params, cfg.version, special, config.seed),
            step: prefill.iter().copied().min().unwrap_or(1) - 1,
            bos_over: false,
            device: None,
            pending: VecDeque::new(),
        };
        if decoding.step > 0 {
            let input = decoding.input(0, decoding.step);
            model.decode(input, 0, &mut decoding.state);
        }
        if let Some(read_back) = config.sampling.read_back::<B>() {
            let input = decoding.input(decoding.step, 1);
            decoding.device = Some((DeviceLoop::new(cfg, params, input), read_back));
        }
        Ok(decoding)
    }

    /// Whether every item has ended (EOS or length cap, and its forced tail written).
    pub fn is_finished(&self) -> bool {
        self.items.iter().all(ItemProgress::is_done)
    }

    /// Whether `item` has ended and every one of its frames has been reported final.
    pub fn is_item_finished(&self, item: usize) -> bool {
        self.items[item].is_done()
    }

    /// Items in the batch.
    pub fn items(&self) -> usize {
        self.items.len()
    }

    /// Decodes one frame for every item; `None` once all have ended or the buffer is full.
    pub fn step(&mut self) -> Result<Option<DecodeStep>> {
        if !self.is_running() {
            return Ok(None);
        }
        if self.device.is_some() {
            if self.pending.is_empty() {
                self.run_on_device()?;
            }
            return self.replay_device_step().map(Some);
        }
        let input = self.input(self.step, 1);
        let logits = self.model.decode(input, self.step, &mut self.state);
        let logits = host_logits(logits)?;
        check_finite(&logits, self.step + 1)?;
        Ok(Some(self.advance(&logits)))
    }

    /// Decoder frames in the cache: the position the next step's frame is written at.
    pub(super) fn position(&self) -> usize {
        self.step
    }

    /// Whether another step has a frame to decode.
    pub(super) fn is_running(&self) -> bool {
        self.step < self.tokens.len() && !self.is_finished()
    }

    /// The decoder state and the position of the frame `ahead` steps after the next one.
    pub(super) fn next_pass(&mut self, ahead: usize) -> DecodeGroup<'_, B> {
        let start = self.step + ahead;
        DecodeGroup {
            state: &mut self.state,
            start,
        }
    }

    /// Takes the step's f32 logits `[2 · items, channels, vocab]`: samples, forces the tails,
    /// writes the codes and reports which frames became final.
    pub(super) fn advance(&mut self, logits: &[f32]) -> DecodeStep {
        let codes = self.sample(logits);
        self.advance_codes(codes)
    }

    /// Takes a step's codes `[items][channels]` as sampled (here or on the device): forces the
    /// tails, writes them and reports which frames became final.
    fn advance_codes(&mut self, mut codes: Vec<Vec<u32>>) -> DecodeStep {
        let cur = self.step + 1;
        self.force_tails(cur, &mut codes);
        let max_delay = self.model.config.max_delay();
        if !self.bos_over {
            let step = self.step;
            self.bos_over = self.items.iter().all(|it| step > it.prefill + max_delay);
        }
        if cur < self.tokens.len() {
            self.write(cur, &codes);
        }
        self.step = cur;
        let new_frames = self
            .items
            .iter_mut()
            .map(|item| {
                let from = item.reported;
                item.reported = item.reported.max(item.final_frames(cur, max_delay));
                from..item.reported
            })
            .collect();
        DecodeStep {
            frame: cur,
            codes,
            new_frames,
        }
    }

    /// Delay-free output frames `frames` of `item`, `[frames][channels]`.
    pub fn frames(&self, item: usize, frames: Range<usize>) -> Vec<Vec<u32>> {
        let cfg = &self.model.config;
        self.tokens.reverted(
            item,
            &cfg.delay_pattern,
            self.items[item].prefill + frames.start,
            frames.len(),
            cfg.eos_token_id - 1,
        )
    }

    /// Every item's codes after the loop ran to its end.
    pub fn finish(self) -> Vec<GeneratedCodes> {
        self.results(false)
    }

    /// Every item's codes when the caller stops early: items that have not ended keep the
    /// frames whose every channel has been generated and end as [`EndReason::Stopped`].
    pub fn stop(self) -> Vec<GeneratedCodes> {
        self.results(true)
    }

    /// Every item's codes ([`Decoding::finish`], or [`Decoding::stop`] when `stopped`) and the
    /// self-attention caches, for the next decoding to reuse.
    pub(super) fn into_results(self, stopped: bool) -> (Vec<GeneratedCodes>, Vec<KvCache<B>>) {
        (self.results(stopped), self.state.self_attn)
    }

    fn results(&self, stopped: bool) -> Vec<GeneratedCodes> {
        let max_delay = self.model.config.max_delay();
        self.items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let complete = item.final_frames(self.step, max_delay);
                let (frames, end) = match item.ended {
                    Some((at, end)) if !stopped || item.is_done() => {
                        (at.saturating_sub(item.prefill), end)
                    }
                    _ if stopped => (complete, EndReason::Stopped),
                    _ => (complete, EndReason::LengthCap),
                };
                GeneratedCodes {
                    codes: self.frames(i, 0..frames),
                    end,
                    truncated_text_tokens: item.truncated,
                }
            })
            .collect()
    }

    /// Decoder input for frames `from..from + len`: `[2 · items, len, channels]`, each item's
    /// frames once per CFG row, empty slots as 0.
    fn input(&self, from: usize, len: usize) -> Tensor<B, 3, Int> {
        let channels = self.model.config.decoder.num_channels;
        let rows = 2 * self.items.len();
        let data = TensorData::new(self.input_ids(from, len), [rows, len, channels]);
        Tensor::from_data(data, &self.model.device())
    }

    /// The ids of [`Decoding::input`], row-major.
    pub(super) fn input_ids(&self, from: usize, len: usize) -> Vec<i64> {
        let channels = self.model.config.decoder.num_channels;
        let items = self.items.len();
        let mut rows = Vec::with_capacity(2 * items * len * channels);
        for i in 0..items {
            for _ in 0..2 {
                for f in from..from + len {
                    let frame = self.tokens.frame(i, f);
                    rows.extend(frame.iter().map(|&t| i64::from(t.unwrap_or(0))));
                }
            }
        }
        rows
    }

    /// Each item's next codes from its CFG rows of `logits` `[2 · items, channels, vocab]`.
    fn sample(&mut self, logits: &[f32]) -> Vec<Vec<u32>> {
        let channels = self.model.config.decoder.num_channels;
        let vocab = self.model.config.decoder.vocab_size;
        let row = |r: usize, c: usize| &logits[(r * channels + c) * vocab..][..vocab];
        (0..self.items.len())
            .map(|i| {
                (0..channels)
                    .map(|c| {
                        let candidates =
                            self.sampler
                                .candidate_logits(row(2 * i + 1, c), row(2 * i, c), c);
                        self.sampler.pick(candidates) as u32
                    })
                    .collect()
            })
            .collect()
    }

    /// Starts an item's EOS countdown when channel 0 samples EOS or frame `cur` reaches the
    /// length cap, and forces its tail: channel `c` gets EOS `delay[c]` steps after the start
    /// and PAD after that.
    fn force_tails(&mut self, cur: usize, codes: &mut [Vec<u32>]) {
        let cfg = &self.model.config;
        let (eos, pad, delays) = (cfg.eos_token_id, cfg.pad_token_id, &cfg.delay_pattern);
        let max_delay = cfg.max_delay();
        let at_cap = cur + max_delay >= self.tokens.len();
        for (item, pred) in self.items.iter_mut().zip(codes) {
            if item.countdown.is_none() && (pred[0] == eos || at_cap) {
                item.countdown = Some(max_delay);
                let why = if pred[0] == eos {
                    EndReason::Eos
                } else {
                    EndReason::LengthCap
                };
                item.ended = Some((cur, why));
            }
            let Some(left) = item.countdown.filter(|&n| n > 0) else {
                continue;
            };
            let after = max_delay - left;
            for (code, &d) in pred.iter_mut().zip(delays) {
                if after == d {
                    *code = eos;
                } else if after > d {
                    *code = pad;
                }
            }
            item.countdown = Some(left - 1);
        }
    }

    /// Writes `codes` into decoder frame `frame`; until every prompt is over, only where the
    /// buffer is still empty (prompt frames are teacher-forced).
    fn write(&mut self, frame: usize, codes: &[Vec<u32>]) {
        for (i, pred) in codes.iter().enumerate() {
            let slots = self.tokens.frame_mut(i, frame);
            for (dst, &code) in slots.iter_mut().zip(pred) {
                if self.bos_over || dst.is_none() {
                    *dst = Some(code);
                }
            }
        }
    }
}

/// A step's logits `[rows, 1, channels, vocab]` as f32 on the host. The read is the step's
/// host wait; it runs inside a [`HOST_READ_SPAN`](super::HOST_READ_SPAN) trace span so profilers can count them.
pub(super) fn host_logits<B: DiaBackend>(logits: Tensor<B, 4>) -> Result<Vec<f32>> {
    let _read = tracing::trace_span!(super::HOST_READ_SPAN).entered();
    logits
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| DiaError::InvalidInput(format!("reading logits: {e:?}")))
}

/// Non-finite logits are an error naming the frame (a broken checkpoint or input must not
/// become silent garbage).
pub(super) fn check_finite(logits: &[f32], frame: usize) -> Result<()> {
    match logits.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DiaError::NonFinite { frame, index }),
        None => Ok(()),
    }
}
