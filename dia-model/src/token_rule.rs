//! What chooses a decode step's tokens: the sampler's parameters and the model version's rule.
//! A leaf of the module graph, so the backend hooks (which may choose tokens on the device) and
//! the host's sampler share it.

use crate::config::ModelVersion;

/// Sampling parameters of one generation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerParams {
    pub cfg_scale: f32,
    /// 0 is greedy (argmax), as in the reference.
    pub temperature: f32,
    pub top_p: f32,
    /// Size of the candidate set picked from the guided logits (`cfg_filter_top_k`).
    pub top_k: usize,
}

/// What [`crate::backend::DiaBackend::choose_tokens`] applies: the sampler's parameters, the model version's
/// candidate rule (V0626: conditional logits inside the guided top-k; original: guided logits
/// with EOS × 0.8) and the EOS id (ids above it are never chosen, EOS only on channel 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenRule {
    pub params: SamplerParams,
    pub version: ModelVersion,
    pub eos: usize,
}
