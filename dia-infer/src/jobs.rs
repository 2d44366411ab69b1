//! Generation jobs: one from the command line, or many from a `--batch` JSONL file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cli::GenerateArgs;

/// One text to speak and where its results go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub text: String,
    pub output: PathBuf,
    #[serde(default)]
    pub codes_out: Option<PathBuf>,
    #[serde(default)]
    pub audio_prompt: Option<PathBuf>,
    #[serde(default)]
    pub audio_prompt_codes: Option<PathBuf>,
    #[serde(default)]
    pub prompt_transcript: Option<String>,
    /// The job's sampling seed (default: the run's `--seed`).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Where the job was given, for messages: "the text" or "FILE line N".
    #[serde(skip)]
    pub origin: String,
}

impl Job {
    /// The text the model reads: the prompt's transcript (if any), a newline, the text.
    pub fn model_text(&self) -> String {
        match &self.prompt_transcript {
            Some(t) => format!("{t}\n{}", self.text),
            None => self.text.clone(),
        }
    }

    /// Files this job reads.
    pub fn inputs(&self) -> Vec<&Path> {
        [&self.audio_prompt, &self.audio_prompt_codes]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect()
    }
}

/// The jobs the command line describes.
pub fn from_args(args: &GenerateArgs) -> Result<Vec<Job>> {
    if let Some(batch) = &args.batch {
        return read_batch(batch);
    }
    let text = match (&args.text, &args.text_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => read_text(path)?,
        (None, None) => bail!("no text: pass TEXT, --text-file or --batch"),
    };
    let job = Job {
        text,
        output: args.output.clone(),
        codes_out: args.codes_out.clone(),
        audio_prompt: args.audio_prompt.clone(),
        audio_prompt_codes: args.audio_prompt_codes.clone(),
        prompt_transcript: args.prompt_transcript.clone(),
        seed: None,
        origin: "the text".into(),
    };
    check(&job)?;
    Ok(vec![job])
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("cannot read stdin")?;
        buf
    } else {
        std::fs::read(path).with_context(|| format!("cannot read text file {}", path.display()))?
    };
    String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("text file {} is not UTF-8 ({e})", path.display()))
}

fn read_batch(path: &Path) -> Result<Vec<Job>> {
    let text = read_text(path)?;
    let mut jobs = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let origin = format!("{} line {}", path.display(), n + 1);
        let mut job: Job =
            serde_json::from_str(line).with_context(|| format!("{origin}: not a valid job"))?;
        job.origin = origin;
        check(&job)?;
        jobs.push(job);
    }
    if jobs.is_empty() {
        bail!("{}: no jobs", path.display());
    }
    Ok(jobs)
}

fn check(job: &Job) -> Result<()> {
    let what = &job.origin;
    if job.text.trim().is_empty() {
        bail!("{what} is empty");
    }
    if job.audio_prompt.is_some() && job.audio_prompt_codes.is_some() {
        bail!("{what}: give audio_prompt or audio_prompt_codes, not both");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transcript_comes_first_on_its_own_line_as_the_reference_app_joins_it() {
        let job = Job {
            text: "[S2] New words.".into(),
            output: "o.wav".into(),
            codes_out: None,
            audio_prompt: None,
            audio_prompt_codes: None,
            prompt_transcript: Some("[S1] Prompt words.".into()),
            seed: None,
            origin: "the text".into(),
        };
        assert_eq!(job.model_text(), "[S1] Prompt words.\n[S2] New words.");
        let plain = Job {
            prompt_transcript: None,
            ..job
        };
        assert_eq!(plain.model_text(), "[S2] New words.");
    }
}
