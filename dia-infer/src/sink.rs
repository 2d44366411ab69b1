//! Where a job's audio goes as it is produced: a WAV file, written through a temporary file
//! beside it and renamed into place at the end (memory stays bounded however long the audio),
//! or raw 16-bit little-endian PCM on stdout (`--output -`), flushed after every piece.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::WavFormat;
use dia_burn::audio::to_i16;
use dia_burn::files;

/// The output path that means stdout.
pub fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

/// An output being written.
pub enum AudioSink {
    /// A WAV file under construction.
    Wav {
        writer: hound::WavWriter<BufWriter<File>>,
        tmp: tempfile::NamedTempFile,
        path: PathBuf,
        format: WavFormat,
    },
    /// Raw PCM on stdout.
    Stdout(std::io::Stdout),
}

impl AudioSink {
    /// Starts `path` (`-` for stdout) as mono audio at `sample_rate`.
    pub fn open(path: &Path, sample_rate: u32, format: WavFormat) -> Result<Self> {
        if is_stdout(path) {
            return Ok(Self::Stdout(std::io::stdout()));
        }
        let tmp = files::temp_beside(path)?;
        let file = tmp.as_file().try_clone()?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: match format {
                WavFormat::I16 => 16,
                WavFormat::F32 => 32,
            },
            sample_format: match format {
                WavFormat::I16 => hound::SampleFormat::Int,
                WavFormat::F32 => hound::SampleFormat::Float,
            },
        };
        let writer = hound::WavWriter::new(BufWriter::new(file), spec)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self::Wav {
            writer,
            tmp,
            path: path.to_path_buf(),
            format,
        })
    }

    /// Appends samples (in −1..1; 16-bit output clamps).
    pub fn write(&mut self, samples: &[f32]) -> Result<()> {
        match self {
            Self::Wav {
                writer,
                path,
                format,
                ..
            } => {
                let written = samples.iter().try_for_each(|&s| match format {
                    WavFormat::I16 => writer.write_sample(to_i16(s)),
                    WavFormat::F32 => writer.write_sample(s),
                });
                written.with_context(|| format!("cannot write {}", path.display()))
            }
            Self::Stdout(out) => {
                let bytes: Vec<u8> = samples
                    .iter()
                    .flat_map(|&s| to_i16(s).to_le_bytes())
                    .collect();
                let mut out = out.lock();
                out.write_all(&bytes)
                    .and_then(|()| out.flush())
                    .map_err(stdout_error)
            }
        }
    }

    /// Completes the output: the WAV header, fsync and the rename into place.
    pub fn finish(self) -> Result<()> {
        match self {
            Self::Wav {
                writer, tmp, path, ..
            } => {
                writer
                    .finalize()
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(files::persist(tmp, &path)?)
            }
            Self::Stdout(out) => out.lock().flush().map_err(stdout_error),
        }
    }
}

fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::anyhow!("stdout was closed before the audio was complete (broken pipe)")
    } else {
        anyhow::Error::new(e).context("cannot write to stdout")
    }
}

/// Writes all of `samples` to `path` at once.
pub fn write_all(path: &Path, samples: &[f32], sample_rate: u32, format: WavFormat) -> Result<()> {
    let mut sink = AudioSink::open(path, sample_rate, format)?;
    sink.write(samples)?;
    sink.finish()
}

/// Rejects a batch in which more than one job writes to stdout.
pub fn check_one_stdout<'a>(outputs: impl Iterator<Item = &'a Path>) -> Result<()> {
    if outputs.filter(|p| is_stdout(p)).count() > 1 {
        bail!("only one output can be stdout (`-`)");
    }
    Ok(())
}
