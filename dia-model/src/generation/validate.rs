//! Rejecting what the reference would crash on or silently mishandle, before any compute.

use super::{GenerationConfig, GenerationRequest};
use crate::backend::DiaBackend;
use crate::config::DiaConfig;
use crate::error::{DiaError, Result};
use crate::model::DiaModel;
use crate::tokenizer::{EncodedText, TEXT_PAD_ID};

fn invalid(message: String) -> Result<()> {
    Err(DiaError::InvalidInput(message))
}

/// Checks the generation parameters and every request's text and audio prompt.
pub fn check<B: DiaBackend>(
    model: &DiaModel<B>,
    requests: &[GenerationRequest],
    config: &GenerationConfig,
) -> Result<()> {
    if requests.is_empty() {
        return invalid("no text to generate".into());
    }
    check_config(&model.config, config)?;
    for (i, r) in requests.iter().enumerate() {
        if r.text.trim().is_empty() {
            return invalid(format!("text {i} is empty"));
        }
        if let Some(prompt) = &r.audio_prompt {
            check_prompt(&model.config, config, i, prompt)?;
        }
    }
    Ok(())
}

/// Tokenized texts: warns about truncation, and rejects a text that is nothing but padding
/// (NUL bytes): every attention over it would be fully masked.
pub fn check_encoded(encoded: &[EncodedText], text_len: usize) -> Result<()> {
    for (i, e) in encoded.iter().enumerate() {
        if e.truncated > 0 {
            tracing::warn!(
                "text {i} is longer than the model's text length of {text_len}: {} tokens dropped",
                e.truncated
            );
        }
        if e.tokens.iter().all(|&t| t == TEXT_PAD_ID) {
            return invalid(format!(
                "text {i} holds only NUL bytes, which the model reads as padding"
            ));
        }
    }
    Ok(())
}

/// A device sampling site reads back at least every step.
pub fn check_sampling(sampling: super::SamplingSite) -> Result<()> {
    if sampling == (super::SamplingSite::Device { read_back: 0 }) {
        return invalid(
            "sampling on the device needs a read-back interval of at least 1 step".into(),
        );
    }
    Ok(())
}

fn check_config(cfg: &DiaConfig, config: &GenerationConfig) -> Result<()> {
    let limit = cfg.decoder.max_position_embeddings;
    let max_tokens = config.max_tokens_for(cfg);
    if max_tokens > limit {
        return invalid(format!(
            "max_tokens {max_tokens} is over the model's limit of {limit} decoder positions"
        ));
    }
    if max_tokens <= cfg.max_delay() + 1 {
        return invalid(format!(
            "max_tokens {max_tokens} leaves no frame to generate (it must exceed {})",
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
    check_sampling(config.sampling)?;
    if config.cfg_filter_top_k == 0 || !config.cfg_scale.is_finite() {
        return invalid("cfg_filter_top_k must be at least 1 and cfg_scale finite".into());
    }
    Ok(())
}

/// Prompt `i`: frames of the model's channel count, codes below EOS, room left to generate.
fn check_prompt(
    cfg: &DiaConfig,
    config: &GenerationConfig,
    i: usize,
    prompt: &[Vec<u32>],
) -> Result<()> {
    let channels = cfg.decoder.num_channels;
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
    let codes = prompt
        .iter()
        .enumerate()
        .flat_map(|(f, fr)| fr.iter().enumerate().map(move |(c, &v)| (f, c, v)));
    if let Some((f, c, v)) = codes.into_iter().find(|&(_, _, v)| v >= max_code) {
        return invalid(format!(
            "audio prompt {i}: frame {f} channel {c} has code {v}, expected 0..={}",
            max_code - 1
        ));
    }
    let max_tokens = config.max_tokens_for(cfg);
    if prompt.len() + cfg.max_delay() + 1 >= max_tokens {
        return invalid(format!(
            "audio prompt {i} has {} frames: with the delay of {} it leaves no room under \
             max_tokens {max_tokens}",
            prompt.len(),
            cfg.max_delay(),
        ));
    }
    Ok(())
}
