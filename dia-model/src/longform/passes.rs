//! Running the passes: pass `k` of every item that has one decodes as one batch, then each
//! item's memory takes in what it said and conditions its next pass.

use std::ops::ControlFlow;

use super::run::ScriptRun;
use super::{LongFormEvent, LongFormOptions, LongFormOutput, LongFormRequest};
use crate::backend::DiaBackend;
use crate::error::Result;
use crate::generation::{Decoding, GeneratedCodes, GenerationConfig, GenerationRequest, StepEvent};
use crate::model::DiaModel;

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
    let mut runs: Vec<ScriptRun> = requests
        .iter()
        .map(|r| ScriptRun::new(r, options, text_len))
        .collect();
    let total = runs.iter().map(ScriptRun::passes).max().unwrap_or(0);
    for pass in 0..total {
        let items: Vec<usize> = (0..runs.len())
            .filter(|&i| runs[i].passes() > pass)
            .collect();
        let start = LongFormEvent::Pass {
            pass,
            passes: total,
            items: &items,
        };
        if on_event(start).is_break() {
            break;
        }
        let pass_requests: Vec<_> = items
            .iter()
            .map(|&i| {
                runs[i]
                    .next_request(config, options, text_len)
                    .expect("the item has this pass")
            })
            .collect();
        let batch: Vec<GenerationRequest> =
            pass_requests.iter().map(|p| p.request.clone()).collect();
        let pass_config = pass_requests[0].config;
        let (generated, mut stopped) =
            run_pass(model, &batch, &items, &pass_config, &mut on_event)?;
        for ((&i, got), pass_request) in items.iter().zip(generated).zip(pass_requests) {
            let last = pass + 1 == runs[i].passes();
            let output = runs[i].record(pass_request, got);
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
    Ok(runs.into_iter().map(ScriptRun::into_output).collect())
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
