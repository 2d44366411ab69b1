//! Audio files and samples: decoding any common format to mono at the codec's rate, resampling
//! a stream as it arrives, 16-bit PCM, and WAV files.

use std::path::Path;

use rubato::{FftFixedIn, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::{Error, Result};

/// Reads an audio file (wav, mp3, flac, ogg), averages its channels and resamples it to
/// `sample_rate`. Empty or silent audio is an error: it cannot carry a voice; so is audio
/// longer than `max_seconds`, known from the header (when it says) before anything is decoded.
pub fn read_mono(path: &Path, sample_rate: u32, max_seconds: Option<f64>) -> Result<Vec<f32>> {
    let (samples, rate) = decode_mono(path, max_seconds)
        .map_err(|e| Error::Audio(format!("cannot read audio {}: {e}", path.display())))?;
    if samples.is_empty() {
        return Err(Error::Audio(format!(
            "audio {} holds no samples",
            path.display()
        )));
    }
    if samples.iter().all(|s| s.abs() < 1e-4) {
        return Err(Error::Audio(format!("audio {} is silent", path.display())));
    }
    if rate == sample_rate {
        return Ok(samples);
    }
    resample(&samples, rate, sample_rate)
        .map_err(|e| Error::Audio(format!("cannot resample {}: {e}", path.display())))
}

/// The file's samples, channels averaged, and its rate; the message says what failed.
fn decode_mono(path: &Path, max_seconds: Option<f64>) -> Result<(Vec<f32>, u32), String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let file = std::fs::File::open(path).map_err(|e| text(&e))?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    // Gapless: an MP3's encoder delay and padding (silence) are cut, from the header's length too.
    let options = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &options, &MetadataOptions::default())
        .map_err(|e| format!("unrecognised audio format: {e}"))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or("no audio track")?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or("unknown sample rate")?;
    if let (Some(max), Some(frames)) = (max_seconds, track.codec_params.n_frames) {
        let seconds = frames as f64 / f64::from(rate);
        if seconds > max {
            return Err(format!(
                "it is {seconds:.2} s long; the model can continue at most {max:.2} s \
                 (raise --max-tokens or cut the prompt)"
            ));
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| text(&e))?;
    let mut mono = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(e.to_string()),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(|e| text(&e))?;
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
    let mut resampler = StreamResampler::new(from, to)?;
    let mut out = resampler.push(samples)?;
    out.extend(resampler.finish()?);
    Ok(out)
}

/// Band-limited resampling of a signal that arrives in pieces: each push returns the output
/// samples that are ready, `finish` the rest. The pieces joined are the whole signal resampled
/// (`len * to / from` samples, the filter's delay removed), however the input was cut.
pub struct StreamResampler {
    resampler: FftFixedIn<f32>,
    /// Input not yet a whole chunk.
    pending: Vec<f32>,
    /// Output samples still to drop at the start (the filter's delay).
    skip: usize,
    /// Input samples pushed and output samples returned.
    consumed: u64,
    produced: u64,
    from: u32,
    to: u32,
}

/// Input samples the resampler takes at a time.
const RESAMPLE_CHUNK: usize = 1024;

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz (mono).
    pub fn new(from: u32, to: u32) -> Result<Self> {
        let resampler = FftFixedIn::<f32>::new(from as usize, to as usize, RESAMPLE_CHUNK, 2, 1)
            .map_err(|e| Error::Invalid(format!("cannot resample {from} Hz to {to} Hz: {e}")))?;
        Ok(Self {
            skip: resampler.output_delay(),
            resampler,
            pending: Vec::with_capacity(RESAMPLE_CHUNK),
            consumed: 0,
            produced: 0,
            from,
            to,
        })
    }

    /// Takes `samples` and returns the output that is ready.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        self.consumed += samples.len() as u64;
        let mut out = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (RESAMPLE_CHUNK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == RESAMPLE_CHUNK {
                let produced = self
                    .resampler
                    .process(&[&self.pending], None)
                    .map_err(resample_error)?;
                self.pending.clear();
                self.emit(&produced[0], &mut out);
            }
        }
        Ok(out)
    }

    /// The remaining output: the last partial chunk and the filter's tail, up to the length
    /// the whole input resampled has.
    pub fn finish(mut self) -> Result<Vec<f32>> {
        let expected = self.consumed * u64::from(self.to) / u64::from(self.from);
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let produced = self
                .resampler
                .process_partial(Some(&[&self.pending]), None)
                .map_err(resample_error)?;
            self.emit(&produced[0], &mut out);
        }
        while self.produced < expected {
            let produced = self
                .resampler
                .process_partial::<&[f32]>(None, None)
                .map_err(resample_error)?;
            if produced[0].is_empty() {
                break;
            }
            self.emit(&produced[0], &mut out);
        }
        let extra = (self.produced.saturating_sub(expected)) as usize;
        out.truncate(out.len().saturating_sub(extra));
        Ok(out)
    }

    /// Appends `produced` to `out`, less the delay still to skip.
    fn emit(&mut self, produced: &[f32], out: &mut Vec<f32>) {
        let skip = self.skip.min(produced.len());
        self.skip -= skip;
        out.extend_from_slice(&produced[skip..]);
        self.produced += (produced.len() - skip) as u64;
    }
}

/// Writes mono `samples` at `sample_rate` as a 32-bit float WAV, atomically.
pub fn write_wav(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    crate::files::write_atomic(path, |file| {
        let mut wav = hound::WavWriter::new(std::io::BufWriter::new(file), spec)
            .map_err(std::io::Error::other)?;
        samples
            .iter()
            .try_for_each(|&s| wav.write_sample(s))
            .and_then(|()| wav.finalize())
            .map_err(std::io::Error::other)
    })
}

fn resample_error(e: rubato::ResampleError) -> Error {
    Error::Invalid(format!("resampling failed: {e}"))
}

/// A float sample as 16-bit PCM: clamped to [-1, 1], scaled by `i16::MAX`, truncated.
pub fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::read_mono;

    fn voice(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    /// The fixtures hold 0.03 s (480 samples at 16 kHz): an MP3 comes back that long, its
    /// encoder delay and padding cut (symphonia leaves Vorbis a few samples of end padding),
    /// and the lossy formats start where the lossless one does.
    #[test]
    fn compressed_files_decode_to_their_written_length() {
        let flac = read_mono(&voice("voice-16000-2.flac"), 16000, None).unwrap();
        assert_eq!(flac.len(), 480);
        for (name, extra) in [("voice-16000-2.mp3", 0), ("voice-16000-2.ogg", 32)] {
            let lossy = read_mono(&voice(name), 16000, None).unwrap();
            assert_eq!(lossy.len(), 480 + extra, "{name}");
            let squares: f32 = flac
                .iter()
                .zip(&lossy)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            let rms = (squares / 480.0).sqrt();
            assert!(rms < 0.05, "{name}: {rms} RMS from the FLAC");
        }
        let limit = read_mono(&voice("voice-16000-1.mp3"), 16000, Some(0.02));
        let message = format!("{:#}", limit.unwrap_err());
        assert!(message.contains("0.03 s long"), "{message}");
    }
}
