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

    /// Whether `name` is one of the directory's voices.
    pub fn contains(&self, name: &str) -> bool {
        self.prompts.contains_key(name)
    }

    /// Offers `prompt` as `name` (stored first: [`save`]).
    pub fn insert(&mut self, name: &str, prompt: VoicePrompt) {
        self.prompts.insert(name.to_string(), prompt);
    }

    /// Stops offering `name` (its files removed first: [`delete`]); false if it was not offered.
    pub fn remove(&mut self, name: &str) -> bool {
        self.prompts.remove(name).is_some()
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

/// A name a new voice may take: 1 to 64 letters, digits, `-` or `_` (no path, no dot), and
/// not `default`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let fine = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !fine {
        return Err(ApiError::invalid(
            "name",
            format!("voice name {name:?}: use 1 to 64 letters, digits, '-' or '_'"),
        ));
    }
    if name == DEFAULT_VOICE {
        return Err(ApiError::invalid(
            "name",
            "\"default\" means no voice; choose another name",
        ));
    }
    Ok(())
}

/// Stores voice `name` in `dir`: its transcript, then its codes, each written whole through a
/// temporary file, so that a crash leaves the voice whole or absent (a transcript alone is
/// not a voice).
pub fn save(dir: &Path, name: &str, prompt: &VoicePrompt) -> Result<()> {
    let transcript = dir.join(format!("{name}.txt"));
    dia_burn::files::write_atomic(&transcript, |file| {
        std::io::Write::write_all(file, prompt.transcript.as_bytes())
    })?;
    dia_burn::codes::write_codes(&dir.join(format!("{name}.{CODES}")), &prompt.codes)?;
    Ok(())
}

/// Removes voice `name`'s files from `dir`: its audio or codes first, then its transcript.
pub fn delete(dir: &Path, name: &str) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if voice_name(&path).as_deref() == Some(name) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    let transcript = dir.join(format!("{name}.txt"));
    match std::fs::remove_file(&transcript) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", transcript.display()))
        }
        _ => Ok(()),
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
