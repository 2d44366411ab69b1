//! The reference decoding loop: CFG rows, audio-prompt prefill, delay pattern, the EOS
//! countdown, teacher forcing while prompts last, and per-item outputs.

use std::ops::ControlFlow;

use burn::tensor::{Int, Tensor, TensorData};

use crate::backend::DiaBackend;
use crate::delay::{EMPTY, delayed_prompt_buffer, revert_delay};
use crate::error::{DiaError, Result};
use crate::model::{DiaModel, TextBatch};
use crate::sampling::{Sampler, SamplerParams, SpecialIds};
use crate::tokenizer::encode_text;

/// Generation parameters; the defaults are the reference's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationConfig {
    /// Absolute decoder frames, BOS and audio prompt included.
    pub max_tokens: usize,
    pub cfg_scale: f32,
    /// 0 decodes greedily.
    pub temperature: f32,
    pub top_p: f32,
    pub cfg_filter_top_k: usize,
    pub seed: u64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_tokens: 3072,
            cfg_scale: 3.0,
            temperature: 1.2,
            top_p: 0.95,
            cfg_filter_top_k: 45,
            seed: 0,
        }
    }
}

/// One text to speak, optionally continuing an audio prompt given as DAC codes `[frames][9]`
/// (whose transcript must begin the text, as the reference requires).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationRequest {
    pub text: String,
    pub audio_prompt: Option<Vec<Vec<u32>>>,
}

/// Why an item stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Channel 0 produced EOS.
    Eos,
    /// The length cap at `max_tokens − max_delay` was reached.
    LengthCap,
    /// The step callback asked to stop.
    Stopped,
}

/// One item's result.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedCodes {
    /// Delay-free codes `[frames][channels]`, each in `0..=1023`.
    pub codes: Vec<Vec<u32>>,
    pub end: EndReason,
    /// Text tokens dropped because the text was longer than the model's text length.
    pub truncated_text_tokens: usize,
}

/// What the step callback sees: the decoder frame index written and each item's codes.
#[derive(Debug)]
pub struct StepEvent<'a> {
    /// Absolute decoder frame just written (1 for the first generated frame without a prompt).
    pub frame: usize,
    /// Frames the loop can run at most (`max_tokens`).
    pub max_frames: usize,
    /// Per item, the (still delayed) codes of this frame.
    pub codes: &'a [Vec<u32>],
}

/// Per-item end-of-sequence bookkeeping (the reference's countdown).
#[derive(Debug, Clone, Copy)]
struct ItemState {
    /// −1 before the trigger, then steps left of the forced EOS/PAD tail.
    countdown: i64,
    finished_step: Option<usize>,
    eos_detected: bool,
    end: Option<EndReason>,
}

/// Generates codes for every request in one batch (two CFG rows per item).
pub fn generate<B: DiaBackend>(
    model: &DiaModel<B>,
    requests: &[GenerationRequest],
    config: &GenerationConfig,
    mut on_step: impl FnMut(&StepEvent) -> ControlFlow<()>,
) -> Result<Vec<GeneratedCodes>> {
    let cfg = &model.config;
    let channels = cfg.decoder.num_channels;
    let vocab = cfg.decoder.vocab_size;
    let delays = &cfg.delay_pattern;
    let max_delay = cfg.max_delay();
    let (bos, eos, pad) = (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id);
    validate(model, requests, config)?;
    let max_tokens = config.max_tokens;
    let device = model.encoder.embedding.val().device();

    let encoded: Vec<_> = requests
        .iter()
        .map(|r| encode_text(&r.text, cfg.encoder.max_position_embeddings))
        .collect();
    for (i, e) in encoded.iter().enumerate() {
        if e.truncated > 0 {
            tracing::warn!(
                "text {i} is longer than the model's text length of {}: {} tokens dropped",
                cfg.encoder.max_position_embeddings,
                e.truncated
            );
        }
    }
    let texts: Vec<Vec<u32>> = encoded.iter().map(|e| e.tokens.clone()).collect();
    let batch = TextBatch::<B>::new(&texts, &device);
    let enc = model.encode(&batch);
    let mut state = model.decoder_state(enc, &batch, max_tokens);

    let items = requests.len();
    let prompts: Vec<Option<&[Vec<u32>]>> =
        requests.iter().map(|r| r.audio_prompt.as_deref()).collect();
    let (mut buffer, prefill_steps) = delayed_prompt_buffer(&prompts, delays, bos, max_tokens);
    let frame_input = |buffer: &[i64], from: usize, len: usize| -> Tensor<B, 3, Int> {
        // [items, len, channels] duplicated per CFG row → [2·items, len, channels].
        let mut rows = Vec::with_capacity(2 * items * len * channels);
        for i in 0..items {
            let frames = &buffer
                [(i * max_tokens + from) * channels..(i * max_tokens + from + len) * channels];
            for _ in 0..2 {
                rows.extend(frames.iter().map(|&t| t.max(0)));
            }
        }
        Tensor::from_data(TensorData::new(rows, [2 * items, len, channels]), &device)
    };

    let mut step = prefill_steps.iter().copied().min().unwrap_or(1) - 1;
    if step > 0 {
        model.decode(frame_input(&buffer, 0, step), 0, &mut state);
    }
    let params = SamplerParams {
        cfg_scale: config.cfg_scale,
        temperature: config.temperature,
        top_p: config.top_p,
        top_k: config.cfg_filter_top_k,
    };
    let special = SpecialIds { eos: eos as usize };
    let mut sampler = Sampler::new(params, cfg.generation, special, config.seed);
    let mut item_states = vec![
        ItemState {
            countdown: -1,
            finished_step: None,
            eos_detected: false,
            end: None,
        };
        items
    ];
    let mut bos_over = false;
    let mut stopped = false;
    while step < max_tokens {
        if item_states.iter().all(|s| s.countdown == 0) {
            break;
        }
        let cur = step + 1;
        let logits = model.decode(frame_input(&buffer, step, 1), step, &mut state);
        // [2·items, 1, channels, vocab] f32 on the host.
        let logits = logits
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| DiaError::InvalidInput(format!("reading logits: {e:?}")))?;
        let mut preds: Vec<Vec<u32>> = Vec::with_capacity(items);
        for i in 0..items {
            let row = |r: usize, c: usize| {
                &logits[((r * channels) + c) * vocab..((r * channels) + c + 1) * vocab]
            };
            let pred = (0..channels)
                .map(|c| {
                    let candidates = sampler.candidate_logits(row(2 * i + 1, c), row(2 * i, c), c);
                    sampler.pick(candidates) as u32
                })
                .collect();
            preds.push(pred);
        }

        for (item, pred) in item_states.iter_mut().zip(&mut preds) {
            if item.countdown != 0 {
                let is_eos = !item.eos_detected && pred[0] == eos;
                let at_cap = cur + max_delay >= max_tokens;
                if is_eos || at_cap {
                    item.eos_detected = true;
                    if item.countdown < 0 {
                        item.countdown = max_delay as i64;
                        item.finished_step = Some(cur);
                        item.end = Some(if is_eos {
                            EndReason::Eos
                        } else {
                            EndReason::LengthCap
                        });
                    }
                }
            }
            if item.countdown > 0 {
                let after = (max_delay as i64 - item.countdown) as usize;
                for (code, &d) in pred.iter_mut().zip(delays) {
                    if after == d {
                        *code = eos;
                    } else if after > d {
                        *code = pad;
                    }
                }
                item.countdown -= 1;
            }
        }
        if !bos_over {
            bos_over = prefill_steps
                .iter()
                .all(|&p| step as i64 - p as i64 > max_delay as i64);
        }
        if cur < max_tokens {
            for (i, pred) in preds.iter().enumerate() {
                let slot = &mut buffer
                    [(i * max_tokens + cur) * channels..(i * max_tokens + cur + 1) * channels];
                for (dst, &code) in slot.iter_mut().zip(pred) {
                    if bos_over || *dst == EMPTY {
                        *dst = i64::from(code);
                    }
                }
            }
        }
        step += 1;
        let event = StepEvent {
            frame: cur,
            max_frames: max_tokens,
            codes: &preds,
        };
        if on_step(&event).is_break() {
            stopped = true;
            break;
        }
    }

    let final_step = step + 1;
    Ok(item_states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (finished, end) = match (s.finished_step, s.end) {
                (Some(f), Some(end)) if !stopped || s.countdown == 0 => (f, end),
                // Stopped early: keep the frames whose every channel has been generated.
                _ if stopped => (step.saturating_sub(max_delay) + 1, EndReason::Stopped),
                _ => (final_step.saturating_sub(max_delay), EndReason::LengthCap),
            };
            let frames = finished.saturating_sub(prefill_steps[i]);
            let start = i * max_tokens + prefill_steps[i];
            let item_buffer = &buffer[..(i + 1) * max_tokens * channels];
            GeneratedCodes {
                codes: revert_delay(
                    item_buffer,
                    channels,
                    delays,
                    start,
                    frames,
                    i64::from(eos) - 1,
                ),
                end,
                truncated_text_tokens: encoded[i].truncated,
            }
        })
        .collect())
}

/// Rejects what the reference would crash on or silently mishandle.
fn validate<B: DiaBackend>(
    model: &DiaModel<B>,
    requests: &[GenerationRequest],
    config: &GenerationConfig,
) -> Result<()> {
    let cfg = &model.config;
    let invalid = |m: String| Err(DiaError::InvalidInput(m));
    let limit = cfg.decoder.max_position_embeddings;
    if requests.is_empty() {
        return invalid("no text to generate".into());
    }
    if config.max_tokens > limit {
        return invalid(format!(
            "max_tokens {} is over the model's limit of {limit} decoder positions",
            config.max_tokens
        ));
    }
    if config.max_tokens <= cfg.max_delay() + 1 {
        return invalid(format!(
            "max_tokens {} leaves no frame to generate (it must exceed {})",
            config.max_tokens,
            cfg.max_delay() + 1
        ));
    }
    if !(config.temperature >= 0.0 && config.temperature.is_finite()) {
        return invalid(format!(
            "temperature {} must be a finite number ≥ 0",
            config.temperature
        ));
    }
    if !(config.top_p > 0.0 && config.top_p <= 1.0) {
        return invalid(format!("top_p {} must be in (0, 1]", config.top_p));
    }
    if config.cfg_filter_top_k == 0 || !config.cfg_scale.is_finite() {
        return invalid("cfg_filter_top_k must be at least 1 and cfg_scale finite".into());
    }
    let channels = cfg.decoder.num_channels;
    for (i, r) in requests.iter().enumerate() {
        if r.text.trim().is_empty() {
            return invalid(format!("text {i} is empty"));
        }
        let Some(prompt) = &r.audio_prompt else {
            continue;
        };
        if let Some((f, frame)) = prompt
            .iter()
            .enumerate()
            .find(|(_, fr)| fr.len() != channels)
        {
            return invalid(format!(
                "audio prompt {i}: frame {f} has {} channels, expected {channels}",
                frame.len()
            ));
        }
        let max_code = cfg.eos_token_id;
        if let Some((f, c, v)) = prompt
            .iter()
            .enumerate()
            .flat_map(|(f, fr)| fr.iter().enumerate().map(move |(c, &v)| (f, c, v)))
            .find(|&(_, _, v)| v >= max_code)
        {
            return invalid(format!(
                "audio prompt {i}: frame {f} channel {c} has code {v}, expected 0..={}",
                max_code - 1
            ));
        }
        if prompt.len() + cfg.max_delay() + 1 >= config.max_tokens {
            return invalid(format!(
                "audio prompt {i} has {} frames: with the delay of {} it leaves no room under \
                 max_tokens {}",
                prompt.len(),
                cfg.max_delay(),
                config.max_tokens
            ));
        }
    }
    Ok(())
}
