//! Long scripts as audio: every item's frames, pass after pass, go through one streaming
//! decoder, so the codec hears the passes as one sequence (no seam differs from any other
//! frame) and memory stays bounded however long the script.

use std::ops::ControlFlow;

use dia_dac::{Dac, StreamWindows};
use dia_model::longform::{LongFormEvent, generate_long};
use dia_model::{
    DiaBackend, DiaModel, GenerationConfig, LongFormOptions, LongFormOutput, LongFormRequest,
};

use crate::error::Error;
use crate::stream::push_frames;

/// What a long-form streaming run reports, in order.
#[derive(Debug)]
pub enum LongStreamEvent<'a> {
    /// Progress of the passes (see [`LongFormEvent`]).
    Progress(LongFormEvent<'a>),
    /// Final samples of `item`, following the ones handed over before.
    Audio { item: usize, samples: &'a [f32] },
}

/// Speaks every request's script in passes ([`generate_long`]) and hands each item's audio to
/// `on_event` as it becomes final; `Break` stops the run (what was handed over stands). A
/// script that fits one pass gives exactly the audio of [`crate::stream::generate_streaming`].
pub fn generate_long_streaming<B: DiaBackend>(
    model: &DiaModel<B>,
    dac: &Dac<B>,
    requests: &[LongFormRequest],
    config: &GenerationConfig,
    options: &LongFormOptions,
    windows: StreamWindows,
    mut on_event: impl FnMut(LongStreamEvent<'_>) -> ControlFlow<()>,
) -> Result<Vec<LongFormOutput>, Error> {
    let mut decoders = (0..requests.len())
        .map(|_| dac.streaming_decoder(windows).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let mut failure = None;
    let out = generate_long(model, requests, config, options, |event| {
        let audio = match &event {
            LongFormEvent::Frames { item, frames } => Some((*item, *frames, false)),
            LongFormEvent::PassDone { item, last, .. } => Some((*item, &[][..], *last)),
            _ => None,
        };
        on_event(LongStreamEvent::Progress(event))?;
        let Some((item, frames, last)) = audio else {
            return ControlFlow::Continue(());
        };
        match push_frames(&mut decoders[item], frames, last) {
            Ok(samples) if samples.is_empty() => ControlFlow::Continue(()),
            Ok(samples) => on_event(LongStreamEvent::Audio {
                item,
                samples: &samples,
            }),
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(out),
    }
}
