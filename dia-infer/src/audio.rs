//! Audio files: decoding any common format to mono at the codec's rate.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rubato::{FftFixedIn, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Reads an audio file (wav, mp3, flac, ogg), averages its channels and resamples it to
/// `sample_rate`. Empty or silent audio is an error: it cannot carry a voice; so is audio
/// longer than `max_seconds`, known from the header (when it says) before anything is decoded.
pub fn read_mono(path: &Path, sample_rate: u32, max_seconds: Option<f64>) -> Result<Vec<f32>> {
    let (samples, rate) = decode_mono(path, max_seconds)
        .with_context(|| format!("cannot read audio {}", path.display()))?;
    if samples.is_empty() {
        bail!("audio {} holds no samples", path.display());
    }
    if samples.iter().all(|s| s.abs() < 1e-4) {
        bail!("audio {} is silent", path.display());
    }
    if rate == sample_rate {
        return Ok(samples);
    }
    resample(&samples, rate, sample_rate)
        .with_context(|| format!("cannot resample {}", path.display()))
}

fn decode_mono(path: &Path, max_seconds: Option<f64>) -> Result<(Vec<f32>, u32)> {
    let file = std::fs::File::open(path)?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .context("unrecognised audio format")?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .context("no audio track")?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .context("unknown sample rate")?;
    if let (Some(max), Some(frames)) = (max_seconds, track.codec_params.n_frames) {
        let seconds = frames as f64 / f64::from(rate);
        if seconds > max {
            bail!(
                "it is {seconds:.1} s long; the model can continue at most {max:.1} s \
                 (raise --max-tokens or cut the prompt)"
            );
        }
    }
    let mut decoder =
        symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default())?;
    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(e.into()),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet)?;
        let channels = decoded.spec().channels.count().max(1);
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buffer.copy_interleaved_ref(decoded);
        mono.extend(
            buffer
                .samples()
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    }
    Ok((mono, rate))
}

fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    let chunk = 1024;
    let mut resampler = FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 2, 1)?;
    let delay = resampler.output_delay();
    let expected = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let mut out = Vec::with_capacity(expected + delay + chunk);
    let mut chunks = samples.chunks(chunk);
    for piece in chunks.by_ref() {
        let produced = if piece.len() == chunk {
            resampler.process(&[piece], None)?
        } else {
            resampler.process_partial(Some(&[piece]), None)?
        };
        out.extend_from_slice(&produced[0]);
    }
    // Flush the resampler's delay line.
    while out.len() < expected + delay {
        let produced = resampler.process_partial::<&[f32]>(None, None)?;
        if produced[0].is_empty() {
            break;
        }
        out.extend_from_slice(&produced[0]);
    }
    Ok(out.into_iter().skip(delay).take(expected).collect())
}
