//! DAC codes as JSON: an array of frames, each an array of the channels' codes.

use std::path::Path;

use crate::error::{Error, Result};
use crate::files::write_atomic;

/// Reads and validates codes `[frames][channels]` with every code below `codebook_size`.
pub fn read_codes(path: &Path, channels: usize, codebook_size: usize) -> Result<Vec<Vec<u32>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Codes(format!("cannot read codes {}: {e}", path.display())))?;
    let frames: Vec<Vec<i64>> = serde_json::from_str(&text).map_err(|e| {
        Error::Codes(format!(
            "{}: codes JSON must be an array of frames, each an array of integers: {e}",
            path.display()
        ))
    })?;
    if frames.is_empty() {
        return Err(Error::Codes(format!("{}: no frames", path.display())));
    }
    let mut out = Vec::with_capacity(frames.len());
    for (f, frame) in frames.iter().enumerate() {
        if frame.len() != channels {
            return Err(Error::Codes(format!(
                "{}: frame {f} has {} codes, expected {channels}",
                path.display(),
                frame.len()
            )));
        }
        if let Some((c, v)) = frame
            .iter()
            .enumerate()
            .find(|(_, v)| !(0..codebook_size as i64).contains(*v))
        {
            return Err(Error::Codes(format!(
                "{}: frame {f} channel {c} has code {v}, expected 0..={}",
                path.display(),
                codebook_size - 1
            )));
        }
        out.push(frame.iter().map(|&v| v as u32).collect());
    }
    Ok(out)
}

/// Writes codes `[frames][channels]` as JSON, one frame per line.
pub fn write_codes(path: &Path, codes: &[Vec<u32>]) -> Result<()> {
    let lines: Vec<String> = codes
        .iter()
        .map(|frame| {
            let codes: Vec<String> = frame.iter().map(u32::to_string).collect();
            format!("[{}]", codes.join(","))
        })
        .collect();
    let text = format!("[\n{}\n]\n", lines.join(",\n"));
    write_atomic(path, |file| {
        use std::io::Write;
        file.write_all(text.as_bytes())
    })
}
