//! Long-form speech: a script of any length spoken in passes, one voice per speaker throughout.
//!
//! [`plan`] cuts the script into passes of about [`LongFormOptions::chunk_seconds`] (see
//! [`estimate_seconds`] for the estimate). Pass `k + 1` is conditioned on the end of pass `k`
//! as an audio prompt, given as the codes already generated with their transcript in front of the new text
//! ([`VoiceMemory`]); a user's voice prompt conditions pass 1. The passes' new frames, end to
//! end, are the item's codes: decoded as one sequence, every join is as smooth as any frame.

mod context;
mod plan;
mod run;
mod script;

pub use self::context::{VoiceMemory, VoicePrompt};
pub use self::plan::{Pass, PlanOptions, plan, render, text_tokens};
pub use self::run::{PassRequest, ScriptRun};
pub use self::script::{
    CJK_CHARS_PER_SECOND, LETTERS_PER_SECOND, NON_VERBAL_SECONDS, Segment, estimate_seconds, turns,
};

use crate::error::{DiaError, Result};
use crate::generation::EndReason;

/// How a long script is cut and carried from pass to pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongFormOptions {
    /// Estimated seconds of new speech a pass holds at most.
    pub chunk_seconds: f32,
    /// Estimated seconds of the previous pass's end carried into the next as its prompt.
    pub context_seconds: f32,
}

impl Default for LongFormOptions {
    fn default() -> Self {
        Self {
            chunk_seconds: 15.0,
            context_seconds: 5.0,
        }
    }
}

impl LongFormOptions {
    /// Rejects durations that are not positive (chunk) or not finite.
    pub fn check(&self) -> Result<()> {
        if !(self.chunk_seconds > 0.0 && self.chunk_seconds.is_finite()) {
            return Err(DiaError::InvalidInput(format!(
                "chunk seconds {} must be a positive number",
                self.chunk_seconds
            )));
        }
        if !(self.context_seconds >= 0.0 && self.context_seconds.is_finite()) {
            return Err(DiaError::InvalidInput(format!(
                "context seconds {} must be a finite number ≥ 0",
                self.context_seconds
            )));
        }
        Ok(())
    }

    /// The planner's limits for a model reading `text_len` text tokens.
    pub fn plan_options(&self, text_len: usize) -> PlanOptions {
        PlanOptions {
            chunk_seconds: self.chunk_seconds,
            text_len,
        }
    }
}

/// A script to speak, optionally continuing a voice (the prompt conditions the first pass).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LongFormRequest {
    pub script: String,
    pub voice: Option<VoicePrompt>,
}

/// One pass of one item, as generated.
#[derive(Debug, Clone, PartialEq)]
pub struct PassOutput {
    /// The pass's index in the item's plan.
    pub pass: usize,
    /// What the model read: the prompt's transcript, a newline and the pass's text.
    pub text: String,
    /// The audio prompt that conditioned it: the user's voice, or audio of earlier passes.
    pub prompt: Option<Vec<Vec<u32>>>,
    /// The new frames `[frames][channels]`.
    pub codes: Vec<Vec<u32>>,
    pub end: EndReason,
    /// The sampling seed of this pass ([`pass_seed`]).
    pub seed: u64,
}

/// An item's whole result: its passes in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LongFormOutput {
    pub passes: Vec<PassOutput>,
}

impl LongFormOutput {
    /// Every pass's new frames, end to end: the item's codes `[frames][channels]`.
    pub fn codes(&self) -> Vec<Vec<u32>> {
        self.passes.iter().flat_map(|p| p.codes.clone()).collect()
    }
}

/// The sampling seed of pass `pass`: the run's seed for the first pass (a script that fits in
/// one pass speaks exactly as a plain generation with that seed), a SplitMix64 mix after it.
pub fn pass_seed(seed: u64, pass: usize) -> u64 {
    if pass == 0 {
        return seed;
    }
    let mut z = seed ^ (pass as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
