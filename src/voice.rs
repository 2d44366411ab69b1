//! Voice prompts: the codes a generation continues and their transcript, from an audio file
//! (read in any common format and encoded by the codec) or a codes JSON file, checked to leave
//! the model room to speak. `dia-infer`'s `--audio-prompt` and `dia-server`'s voices both load
//! them here.

use std::path::Path;

use dia_dac::Dac;
use dia_model::generation::check_request;
use dia_model::{DiaBackend, DiaModel, GenerationConfig, GenerationRequest, VoicePrompt};

use crate::error::{Error, Result};
use crate::{audio, codes};

/// Where a voice's codes come from.
#[derive(Debug, Clone, Copy)]
pub enum VoiceSource<'a> {
    /// An audio file (wav, mp3, flac, ogg; any rate, any channels), encoded by the codec.
    Audio(&'a Path),
    /// A codes JSON file `[frames][channels]` (from `dia-infer encode` or `--codes-out`).
    Codes(&'a Path),
}

impl<'a> VoiceSource<'a> {
    /// A file by its name: `*.json` holds codes, anything else audio.
    pub fn of_file(path: &'a Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Self::Codes(path),
            _ => Self::Audio(path),
        }
    }
}

/// The voice `source` holds with its `transcript`, for a generation of at most `max_tokens`
/// frames: audio longer than the model can continue is refused from its header, before it is
/// decoded; the codes are checked to leave room for the delay pattern and a frame to speak.
pub fn load_voice<B: DiaBackend>(
    model: &DiaModel<B>,
    codec: &Dac<B>,
    source: VoiceSource<'_>,
    transcript: &str,
    max_tokens: usize,
) -> Result<VoicePrompt> {
    let codes = voice_codes(model, codec, source, max_tokens)?;
    voice_from_codes(model, codes, transcript, max_tokens)
}

/// The codes `source` holds, read or encoded but not yet checked against a request: for a
/// caller that checks them with its own text ([`load_voice`] checks them alone).
pub fn voice_codes<B: DiaBackend>(
    model: &DiaModel<B>,
    codec: &Dac<B>,
    source: VoiceSource<'_>,
    max_tokens: usize,
) -> Result<Vec<Vec<u32>>> {
    Ok(match source {
        VoiceSource::Codes(path) => {
            let channels = model.config.decoder.num_channels;
            codes::read_codes(path, channels, codec.config().codebook_size)?
        }
        VoiceSource::Audio(path) => {
            // The prompt and the delay after it must leave a frame to generate.
            let frames = max_tokens.saturating_sub(model.config.max_delay() + 2);
            let max_seconds = frames as f64 / codec.config().frame_rate();
            let samples = audio::read_mono(path, codec.config().sample_rate, Some(max_seconds))?;
            codec.encode_samples(&samples).map_err(|e| {
                Error::Audio(format!(
                    "cannot encode the audio prompt {}: {e}",
                    path.display()
                ))
            })?
        }
    })
}

/// A voice from codes already in hand, checked as [`load_voice`] checks them.
pub fn voice_from_codes<B: DiaBackend>(
    model: &DiaModel<B>,
    codes: Vec<Vec<u32>>,
    transcript: &str,
    max_tokens: usize,
) -> Result<VoicePrompt> {
    let transcript = transcript.trim().to_string();
    let request = GenerationRequest {
        text: format!("{transcript}\n[S1] ."),
        audio_prompt: Some(codes),
    };
    let config = GenerationConfig {
        max_tokens: Some(max_tokens),
        ..GenerationConfig::default()
    };
    check_request(model, &request, &config)?;
    let codes = request.audio_prompt.unwrap_or_default();
    Ok(VoicePrompt { transcript, codes })
}
