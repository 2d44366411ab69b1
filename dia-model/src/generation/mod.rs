//! Generating codes from text: the reference's decoding loop (CFG rows, audio-prompt prefill,
//! delay pattern, EOS countdown, teacher forcing while prompts last) as a step-level state
//! machine ([`Decoding`]), and [`generate`], the loop over it.

mod continuous;
mod decoding;
mod delay;
mod device;
mod sampling;
mod tokens;
mod validate;

use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

pub use self::continuous::{ContinuousBatch, ItemId, ItemStep};
pub use self::decoding::{DecodeStep, Decoding};
pub use self::delay::DelayedTokens;
pub use self::sampling::{Sampler, SamplerParams, SpecialIds};
pub use self::tokens::TokenChooser;
use crate::backend::DiaBackend;
use crate::config::DiaConfig;
use crate::error::Result;
use crate::model::DiaModel;

/// Name of the trace span (target `dia_model`) every device-to-host read of a decode step runs
/// in: one per read, so a profiler or `dia-bench` counts the host waits a step costs.
pub const HOST_READ_SPAN: &str = "host_read";

/// Generation parameters; the defaults are the reference's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationConfig {
    /// Absolute decoder frames, BOS and audio prompt included; `None` is the model's limit
    /// (`decoder.max_position_embeddings`, 3072 for Dia-1.6B).
    pub max_tokens: Option<usize>,
    pub cfg_scale: f32,
    /// 0 decodes greedily.
    pub temperature: f32,
    pub top_p: f32,
    pub cfg_filter_top_k: usize,
    pub seed: u64,
    /// Where each step's tokens are chosen.
    pub sampling: SamplingSite,
}

/// Steps between read-backs when [`SamplingSite::Auto`] samples on the device: within the EOS
/// countdown's 15 steps, so an ended run wastes less than its forced tail, and few enough host
/// waits (1 in 12 steps) that the GPU's queue stays full.
pub const DEFAULT_READ_BACK: usize = 12;

/// Where a decoding chooses each step's tokens. Both sites give the same greedy codes; seeded
/// sampling repeats on each, and the device's draws are the host's seeded uniforms, but its
/// float rounding can tip a draw to a neighbouring token. A [`ContinuousBatch`] samples on the
/// host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SamplingSite {
    /// The backend's choice ([`DiaBackend::samples_on_device`]): the device on wgpu and cuda,
    /// reading back every [`DEFAULT_READ_BACK`] steps; the host elsewhere.
    #[default]
    Auto,
    /// The host reads every step's logits back and samples them: one wait per step.
    Host,
    /// The device samples and keeps the EOS countdown and the next input; the host reads the
    /// codes back every `read_back` steps (at least 1) and replays them step by step, so what
    /// the caller sees and stops on is what checking every step gives. Steps queued past the
    /// end are discarded.
    Device { read_back: usize },
}

impl fmt::Display for SamplingSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Host => f.write_str("host"),
            Self::Device { read_back } => write!(f, "device:{read_back}"),
        }
    }
}

impl FromStr for SamplingSite {
    type Err = String;

    /// `auto`, `host`, `device` (read back every [`DEFAULT_READ_BACK`] steps) or `device:N`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let site = match lower.split_once(':') {
            None if lower == "auto" => Some(Self::Auto),
            None if lower == "host" => Some(Self::Host),
            None if lower == "device" => Some(Self::Device {
                read_back: DEFAULT_READ_BACK,
            }),
            Some(("device", n)) => n
                .parse()
                .ok()
                .filter(|&read_back| read_back > 0)
                .map(|read_back| Self::Device { read_back }),
            _ => None,
        };
        site.ok_or_else(|| {
            format!("unknown sampling site {s:?} (expected auto, host, device or device:N, N ≥ 1)")
        })
    }
}

/// As its name (`auto`, `host`, `device:N`), for reports and configs.
impl serde::Serialize for SamplingSite {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SamplingSite {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl SamplingSite {
    /// Steps between read-backs on backend `B`; `None` samples on the host.
    pub fn read_back<B: DiaBackend>(self) -> Option<usize> {
        match self {
            Self::Auto => B::samples_on_device().then_some(DEFAULT_READ_BACK),
            Self::Host => None,
            Self::Device { read_back } => Some(read_back),
        }
    }
}

impl GenerationConfig {
    /// The frame budget on a model of config `cfg`: `max_tokens`, else the model's limit.
    pub fn max_tokens_for(&self, cfg: &DiaConfig) -> usize {
        self.max_tokens
            .unwrap_or(cfg.decoder.max_position_embeddings)
    }
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_tokens: None,
            cfg_scale: 3.0,
            temperature: 1.2,
            top_p: 0.95,
            cfg_filter_top_k: 45,
            seed: 0,
            sampling: SamplingSite::Auto,
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

/// Checks one request as [`generate`] would, before any compute: for callers that gather many
/// inputs ahead of a long run and want every bad one named first.
pub fn check_request<B: DiaBackend>(
    model: &DiaModel<B>,
    request: &GenerationRequest,
    config: &GenerationConfig,
) -> Result<()> {
    validate::check(model, std::slice::from_ref(request), config)
}

/// Generates codes for every request in one batch (two CFG rows per item); `on_step` sees
/// every decoded frame and may stop the run, which keeps what is final so far.
pub fn generate<B: DiaBackend>(
    model: &DiaModel<B>,
    requests: &[GenerationRequest],
    config: &GenerationConfig,
    mut on_step: impl FnMut(&StepEvent) -> ControlFlow<()>,
) -> Result<Vec<GeneratedCodes>> {
    let mut decoding = Decoding::new(model, requests, config)?;
    while let Some(step) = decoding.step()? {
        let event = StepEvent {
            frame: step.frame,
            max_frames: config.max_tokens_for(&model.config),
            codes: &step.codes,
        };
        if on_step(&event).is_break() {
            return Ok(decoding.stop());
        }
    }
    Ok(decoding.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_sites_parse_and_print() {
        for text in ["auto", "host", "device:12", "device:1"] {
            assert_eq!(text.parse::<SamplingSite>().unwrap().to_string(), text);
        }
        let device = "DEVICE".parse::<SamplingSite>().unwrap();
        assert_eq!(
            device,
            SamplingSite::Device {
                read_back: DEFAULT_READ_BACK
            }
        );
        for bad in ["gpu", "device:0", "device:x", "host:3", ""] {
            let e = bad.parse::<SamplingSite>().unwrap_err();
            assert!(e.contains("unknown sampling site"), "{bad}: {e}");
        }
    }
}
