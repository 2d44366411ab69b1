//! Speech as it is generated: each item's audio is handed over in pieces as soon as the codec's
//! output for them can no longer change, while the model is still decoding. The pieces of an
//! item, joined, equal the codec's decode of the item's whole code sequence (up to float
//! rounding), so streaming changes when audio arrives, never what it is.

use std::ops::ControlFlow;

use crate::error::Error;
use dia_dac::{Dac, DacError, StreamWindows, StreamingDecoder};
use dia_model::generation::DecodeStep;
use dia_model::{
    Decoding, DiaBackend, DiaModel, GeneratedCodes, GenerationConfig, GenerationRequest,
};

/// What a streaming run reports, in order.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    /// The batch decoded one more frame (for progress).
    Step(&'a DecodeStep),
    /// Final samples of `item`, following the ones handed over before.
    Audio { item: usize, samples: &'a [f32] },
}

/// Generates `requests` as one batch and hands each item's audio to `on_event` as it becomes
/// final; `on_event` returning `Break` stops the run (the samples handed over so far stand, and
/// the codes returned are those of [`Decoding::stop`]). The codec decodes with `windows`.
pub fn generate_streaming<B: DiaBackend>(
    model: &DiaModel<B>,
    dac: &Dac<B>,
    requests: &[GenerationRequest],
    config: &GenerationConfig,
    windows: StreamWindows,
    mut on_event: impl FnMut(StreamEvent<'_>) -> ControlFlow<()>,
) -> Result<Vec<GeneratedCodes>, Error> {
    let mut decoding = Decoding::new(model, requests, config)?;
    let mut decoders = (0..decoding.items())
        .map(|_| dac.streaming_decoder(windows).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    while let Some(step) = decoding.step()? {
        if on_event(StreamEvent::Step(&step)).is_break() {
            return Ok(decoding.stop());
        }
        for (item, decoder) in decoders.iter_mut().enumerate() {
            let samples = push_final(&decoding, &step, item, decoder)?;
            let audio = StreamEvent::Audio {
                item,
                samples: &samples,
            };
            if !samples.is_empty() && on_event(audio).is_break() {
                return Ok(decoding.stop());
            }
        }
    }
    for (item, decoder) in decoders.iter_mut().enumerate() {
        let samples = match decoder.take() {
            Some(decoder) => decoder.finish()?,
            None => continue,
        };
        let audio = StreamEvent::Audio {
            item,
            samples: &samples,
        };
        if !samples.is_empty() && on_event(audio).is_break() {
            return Ok(decoding.stop());
        }
    }
    Ok(decoding.finish())
}

/// Feeds `item`'s frames that became final at `step` to its decoder, and finishes the decoder
/// once the item has ended; returns the samples that became final.
fn push_final<B: DiaBackend>(
    decoding: &Decoding<'_, B>,
    step: &DecodeStep,
    item: usize,
    decoder: &mut Option<StreamingDecoder<'_, B>>,
) -> Result<Vec<f32>, DacError> {
    let frames = decoding.frames(item, step.new_frames[item].clone());
    push_frames(decoder, &frames, decoding.is_item_finished(item))
}

/// Pushes final `frames` to an item's decoder (none left once finished), finishing it when
/// `last`; returns the samples that became final.
pub(crate) fn push_frames<B: DiaBackend>(
    decoder: &mut Option<StreamingDecoder<'_, B>>,
    frames: &[Vec<u32>],
    last: bool,
) -> Result<Vec<f32>, DacError> {
    let Some(stream) = decoder.as_mut() else {
        return Ok(Vec::new());
    };
    let mut samples = stream.push(frames)?;
    if last && let Some(stream) = decoder.take() {
        samples.extend(stream.finish()?);
    }
    Ok(samples)
}
