//! Voices: a directory of `NAME.wav|mp3|flac|ogg` (or `NAME.codes.json`, codes from
//! `dia-infer encode`) each with `NAME.txt`, its transcript; encoded to codes once at start-up.
//! OpenAI's voice names and `default` mean "no voice prompt" unless the directory has them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use dia_burn::Dia;
use dia_burn::dia_model::{DiaBackend, VoicePrompt};

use crate::error::ApiError;

/// OpenAI's built-in voice names, accepted so clients that hard-code one work.
pub const OPENAI_VOICES: [&str; 13] = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
    "marin", "cedar",
];

/// The name that always means "no voice prompt".
pub const DEFAULT_VOICE: &str = "default";

/// Audio extensions a voice may have.
const AUDIO: [&str; 4] = ["wav", "mp3", "flac", "ogg"];
const CODES: &str = "codes.json";

/// The voices a server offers, by name.
#[derive(Debug, Default)]
pub struct Voices {
    prompts: BTreeMap<String, VoicePrompt>,
}

impl Voices {
    /// Every voice in `dir`, encoded by `dia`'s codec and checked to leave its model room to
    /// speak.
    pub fn load<B: DiaBackend>(dir: &Path, dia: &Dia<B>) -> Result<Self> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read voices {}", dir.display()))?;
        let mut prompts = BTreeMap::new();
        for entry in entries {
            let path = entry?.path();
            let Some(name) = voice_name(&path) else {
                continue;
            };
            if prompts.contains_key(&name) {
                bail!("voice {name:?} is given twice in {}", dir.display());
            }
            let prompt = load_voice(&path, &name, dia)
                .with_context(|| format!("voice {name:?} ({})", path.display()))?;
            tracing::info!(voice = %name, frames = prompt.codes.len(), "voice loaded");
            prompts.insert(name, prompt);
        }
        Ok(Self { prompts })
    }

    /// The names of the directory's voices.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prompts.keys().map(String::as_str)
    }

    /// The prompt `name` asks for: a directory voice, or none for `default`, OpenAI's names
    /// or no name; any other name is a 400 listing what there is.
    pub fn resolve(&self, name: Option<&str>) -> Result<Option<VoicePrompt>, ApiError> {
        let Some(name) = name else {
            return Ok(None);
        };
        if let Some(prompt) = self.prompts.get(name) {
            return Ok(Some(prompt.clone()));
        }
        if name == DEFAULT_VOICE || OPENAI_VOICES.contains(&name) {
            return Ok(None);
        }
        let mut available: Vec<&str> = self.names().collect();
        available.push(DEFAULT_VOICE);
        Err(ApiError::invalid(
            "voice",
            format!(
                "voice {name:?} is not available; use one of: {} (or an OpenAI voice name, \
                 which means no voice prompt)",
                available.join(", ")
            ),
        )
        .code("unsupported_value"))
    }
}

/// The voice a file of the directory holds, if it is a voice's audio or codes.
fn voice_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    if let Some(name) = file.strip_suffix(&format!(".{CODES}")) {
        return Some(name.to_string());
    }
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    AUDIO
        .contains(&ext.as_str())
        .then(|| path.file_stem()?.to_str().map(str::to_string))
        .flatten()
}

/// A voice's prompt: its codes (encoded, or read) and the transcript beside them.
fn load_voice<B: DiaBackend>(path: &Path, name: &str, dia: &Dia<B>) -> Result<VoicePrompt> {
    let transcript_path = path.with_file_name(format!("{name}.txt"));
    let transcript = std::fs::read_to_string(&transcript_path)
        .with_context(|| format!("cannot read its transcript {}", transcript_path.display()))?;
    if transcript.trim().is_empty() {
        bail!("its transcript {} is empty", transcript_path.display());
    }
    Ok(dia.voice_from_file(path, &transcript)?)
}
