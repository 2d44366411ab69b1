//! Running the passes: pass `k` of every item that has one decodes as one batch, then each
//! item's memory takes in what it said and conditions its next pass.

use std::ops::ControlFlow;

use super::context::{VoiceMemory, VoicePrompt};
use super::plan::{Pass, plan, text_tokens};
use super::script::turns;
use super::{LongFormEvent, LongFormOptions, LongFormOutput, LongFormRequest, PassOutput};
use crate::backend::DiaBackend;
use crate::error::Result;
use crate::generation::{
    Decoding, EndReason, GeneratedCodes, GenerationConfig, GenerationRequest, StepEvent,
};
use crate::model::DiaModel;

/// One item's plan and progress.
struct ItemRun {
    passes: Vec<Pass>,
    voice: Option<VoicePrompt>,
    memory: VoiceMemory,
    output: LongFormOutput,
}

/// Speaks every request's script in as many passes as it needs; `on_event` sees passes start
/// and end, every step, and each item's frames as they become final, and may stop the run
/// (what was reported so far is what is returned).
pub fn generate_long<B: DiaBackend>(
    model: &DiaModel<B>,
    requests: &[LongFormRequest],
    config: &GenerationConfig,
    options: &LongFormOptions,
    mut on_event: impl FnMut(LongFormEvent<'_>) -> ControlFlow<()>,
) -> Result<Vec<LongFormOutput>> {
    options.check()?;
    let text_len = model.config.encoder.max_position_embeddings;
    let plan_options = options.plan_options(text_len);
    let mut runs: Vec<ItemRun> = requests
        .iter()
        .map(|r| {
            let mut memory = VoiceMemory::default();
            if let Some(voice) = &r.voice {
                memory.heard(&turns(&voice.transcript), &voice.codes);
            }
            ItemRun {
                passes: plan(&r.script, &plan_options),
                voice: r.voice.clone(),
                memory,
                output: LongFormOutput::default(),
            }
        })
        .collect();
    let total = runs.iter().map(|r| r.passes.len()).max().unwrap_or(0);
    for pass in 0..total {
        let items: Vec<usize> = (0..runs.len())
            .filter(|&i| runs[i].passes.len() > pass)
            .collect();
        let start = LongFormEvent::Pass {
            pass,
            passes: total,
            items: &items,
        };
        if on_event(start).is_break() {
            break;
        }
        let fits = |p: &VoicePrompt, pass: &Pass| -> bool {
            p.codes.len() <= config.max_tokens / 2
                && text_tokens(&p.transcript) + 1 + text_tokens(&pass.text) <= text_len
        };
        let prompts: Vec<_> = items
            .iter()
            .map(|&i| runs[i].prompt(pass, options.context_seconds, &fits))
            .collect();
        let batch: Vec<GenerationRequest> = items
            .iter()
            .zip(&prompts)
            .map(|(&i, prompt)| request(&runs[i].passes[pass], prompt.as_ref()))
            .collect();
        let pass_config = GenerationConfig {
            seed: super::pass_seed(config.seed, pass),
            ..*config
        };
        let (generated, mut stopped) =
            run_pass(model, &batch, &items, &pass_config, &mut on_event)?;
        for (((&i, got), prompt), req) in items.iter().zip(generated).zip(prompts).zip(batch) {
            let last = pass + 1 == runs[i].passes.len();
            let output = runs[i].record(pass, got, prompt, req.text, pass_config.seed);
            if !stopped {
                let done = LongFormEvent::PassDone {
                    item: i,
                    output,
                    last,
                };
                stopped = on_event(done).is_break();
            }
        }
        if stopped {
            break;
        }
    }
    Ok(runs.into_iter().map(|r| r.output).collect())
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

impl ItemRun {
    /// The prompt of pass `pass`: the user's voice for the first, carried audio after.
    fn prompt(
        &self,
        pass: usize,
        context_seconds: f32,
        fits: &impl Fn(&VoicePrompt, &Pass) -> bool,
    ) -> Option<VoicePrompt> {
        let next = &self.passes[pass];
        if pass == 0 {
            return self.voice.clone();
        }
        let prompt = self
            .memory
            .prompt(&next.segments, context_seconds, |p| fits(p, next));
        if prompt.is_none() && self.output.passes.iter().any(|p| !p.codes.is_empty()) {
            tracing::warn!(
                pass,
                "no earlier audio fits the frame and text budget: this pass starts unprompted"
            );
        }
        prompt
    }

    /// Takes in what pass `pass` generated; returns its output.
    fn record(
        &mut self,
        pass: usize,
        got: GeneratedCodes,
        prompt: Option<VoicePrompt>,
        text: String,
        seed: u64,
    ) -> &PassOutput {
        if got.end == EndReason::LengthCap {
            tracing::warn!(
                pass,
                frames = got.codes.len(),
                "a pass reached the length cap without ending: its speech may be cut"
            );
        }
        self.memory.heard(&self.passes[pass].segments, &got.codes);
        self.output.passes.push(PassOutput {
            pass,
            text,
            prompt: prompt.map(|p| p.codes),
            codes: got.codes,
            end: got.end,
            seed,
        });
        self.output.passes.last().expect("just pushed")
    }
}

/// Decodes one pass for `items` (its batch rows), reporting steps and final frames; returns
/// the codes (cut to what was reported) and whether `on_event` stopped the run.
fn run_pass<B: DiaBackend>(
    model: &DiaModel<B>,
    batch: &[GenerationRequest],
    items: &[usize],
    config: &GenerationConfig,
    on_event: &mut impl FnMut(LongFormEvent<'_>) -> ControlFlow<()>,
) -> Result<(Vec<GeneratedCodes>, bool)> {
    let mut decoding = Decoding::new(model, batch, config)?;
    let mut reported = vec![0; items.len()];
    while let Some(step) = decoding.step()? {
        let event = StepEvent {
            frame: step.frame,
            max_frames: config.max_tokens,
            codes: &step.codes,
        };
        let mut flow = on_event(LongFormEvent::Step(&event));
        for (row, &item) in items.iter().enumerate() {
            let new = step.new_frames[row].clone();
            if flow.is_break() || new.is_empty() {
                continue;
            }
            reported[row] = new.end;
            let frames = decoding.frames(row, new);
            flow = on_event(LongFormEvent::Frames {
                item,
                frames: &frames,
            });
        }
        if flow.is_break() {
            let mut out = decoding.stop();
            for (got, &n) in out.iter_mut().zip(&reported) {
                got.codes.truncate(n);
            }
            return Ok((out, true));
        }
    }
    Ok((decoding.finish(), false))
}
