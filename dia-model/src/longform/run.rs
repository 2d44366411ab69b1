//! One script's passes in order: which request each pass makes (its text under the voice it
//! continues) and what the item's memory takes in from it. A continuous batch runs each pass
//! (`dia-burn`'s `SpeechScheduler` drives scripts this way), so a script speaks as it would
//! alone whatever runs beside it.

use super::context::{VoiceMemory, VoicePrompt};
use super::plan::{Pass, plan, text_tokens};
use super::script::turns;
use super::{LongFormOptions, LongFormOutput, LongFormRequest, PassOutput, pass_seed};
use crate::config::DiaConfig;
use crate::generation::{EndReason, GeneratedCodes, GenerationConfig, GenerationRequest};

/// A script's plan and progress: passes done so far and the voice memory they left.
#[derive(Debug, Clone)]
pub struct ScriptRun {
    passes: Vec<Pass>,
    voice: Option<VoicePrompt>,
    memory: VoiceMemory,
    output: LongFormOutput,
}

/// The next pass of a [`ScriptRun`] as a generation: what to generate, with which parameters
/// (its seed is [`pass_seed`]), and the prompt it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRequest {
    pub pass: usize,
    pub request: GenerationRequest,
    pub config: GenerationConfig,
    pub prompt: Option<VoicePrompt>,
}

impl ScriptRun {
    /// Plans `request`'s script for a model reading `text_len` text tokens; its voice, if any,
    /// seeds the memory.
    pub fn new(request: &LongFormRequest, options: &LongFormOptions, text_len: usize) -> Self {
        let mut memory = VoiceMemory::default();
        if let Some(voice) = &request.voice {
            memory.heard(&turns(&voice.transcript), &voice.codes);
        }
        Self {
            passes: plan(&request.script, &options.plan_options(text_len)),
            voice: request.voice.clone(),
            memory,
            output: LongFormOutput::default(),
        }
    }

    /// Passes in the plan.
    pub fn passes(&self) -> usize {
        self.passes.len()
    }

    /// Passes recorded so far (the index of the next one).
    pub fn done(&self) -> usize {
        self.output.passes.len()
    }

    /// Whether every pass has been recorded.
    pub fn is_done(&self) -> bool {
        self.done() >= self.passes.len()
    }

    /// The next pass's generation on a model of config `cfg`, `None` once done: its prompt is
    /// the user's voice for the first pass, the end of what was said for the others, within the
    /// frame budget (half the frames `max_tokens` leaves after the delay pattern, so as much is
    /// left to speak) and the text budget (the encoder's length with the pass's text).
    pub fn next_request(
        &self,
        config: &GenerationConfig,
        options: &LongFormOptions,
        cfg: &DiaConfig,
    ) -> Option<PassRequest> {
        let pass = self.done();
        let next = self.passes.get(pass)?;
        let text_len = cfg.encoder.max_position_embeddings;
        let context_frames = config
            .max_tokens_for(cfg)
            .saturating_sub(cfg.max_delay() + 1)
            / 2;
        let fits = |p: &VoicePrompt| {
            p.codes.len() <= context_frames
                && text_tokens(&p.transcript) + 1 + text_tokens(&next.text) <= text_len
        };
        let prompt = if pass == 0 {
            self.voice.clone()
        } else {
            self.memory
                .prompt(&next.segments, options.context_seconds, fits)
        };
        if pass > 0 && prompt.is_none() && self.output.passes.iter().any(|p| !p.codes.is_empty()) {
            tracing::warn!(
                pass,
                "no earlier audio fits the frame and text budget: this pass starts unprompted"
            );
        }
        Some(PassRequest {
            pass,
            request: request(next, prompt.as_ref()),
            config: GenerationConfig {
                seed: pass_seed(config.seed, pass),
                ..*config
            },
            prompt,
        })
    }

    /// Takes in what `pass` generated; returns its output.
    pub fn record(&mut self, pass: PassRequest, got: GeneratedCodes) -> &PassOutput {
        if got.end == EndReason::LengthCap {
            tracing::warn!(
                pass = pass.pass,
                frames = got.codes.len(),
                "a pass reached the length cap without ending: its speech may be cut"
            );
        }
        self.memory
            .heard(&self.passes[pass.pass].segments, &got.codes);
        self.output.passes.push(PassOutput {
            pass: pass.pass,
            text: pass.request.text,
            prompt: pass.prompt.map(|p| p.codes),
            codes: got.codes,
            end: got.end,
            seed: pass.config.seed,
        });
        self.output.passes.last().expect("just pushed")
    }

    /// The passes recorded so far.
    pub fn output(&self) -> &LongFormOutput {
        &self.output
    }

    /// The item's result.
    pub fn into_output(self) -> LongFormOutput {
        self.output
    }
}

/// The generation request of `pass` under `prompt`: its transcript, a newline, the pass.
fn request(pass: &Pass, prompt: Option<&VoicePrompt>) -> GenerationRequest {
    match prompt {
        Some(p) if p.transcript.trim().is_empty() => GenerationRequest {
            text: pass.text.clone(),
            audio_prompt: Some(p.codes.clone()),
        },
        Some(p) => GenerationRequest {
            text: format!("{}\n{}", p.transcript, pass.text),
            audio_prompt: Some(p.codes.clone()),
        },
        None => GenerationRequest {
            text: pass.text.clone(),
            audio_prompt: None,
        },
    }
}
