//! `dia-infer encode` and `dia-infer decode`: the codec on its own.

use anyhow::{Context, Result};
use burn::tensor::DType;
use dia_burn::backends::{OnDevice, run};
use dia_burn::cli::RuntimeArgs;
use dia_burn::dia_dac::{Dac, StreamWindows};
use dia_burn::dia_model::DiaBackend;
use dia_burn::{audio, codes, hub};

use crate::cli::{DecodeArgs, EncodeArgs};
use crate::files;
use crate::sink;

/// Audio file → codes JSON.
pub fn encode(args: &EncodeArgs) -> Result<()> {
    files::ensure_not_input(&args.codes_out, &[&args.audio])?;
    files::ensure_writable(&args.codes_out)?;
    run(args.runtime.backend, args.runtime.dtype, Encode(args))?
}

/// Codes JSON → WAV file.
pub fn decode(args: &DecodeArgs) -> Result<()> {
    if !sink::is_stdout(&args.output) {
        files::ensure_not_input(&args.output, &[&args.codes])?;
        files::ensure_writable(&args.output)?;
    }
    run(args.runtime.backend, args.runtime.dtype, Decode(args))?
}

fn load_dac<B: DiaBackend>(runtime: &RuntimeArgs, device: &B::Device) -> Result<Dac<B>> {
    let path = match &runtime.dac_path {
        Some(path) => path.clone(),
        None => hub::dac_path(&runtime.dac, runtime.quiet)?,
    };
    Dac::<B>::load(&path, device)
        .with_context(|| format!("cannot load the codec from {}", path.display()))
}

struct Encode<'a>(&'a EncodeArgs);

impl OnDevice for Encode<'_> {
    type Output = Result<()>;

    /// The codec always runs in f32, as the reference keeps it.
    fn run<B: DiaBackend>(self, device: B::Device, _dtype: DType) -> Result<()> {
        let args = self.0;
        let dac = load_dac::<B>(&args.runtime, &device)?;
        let samples = audio::read_mono(&args.audio, dac.config().sample_rate, None)?;
        let codes = dac.encode_samples(&samples)?;
        Ok(codes::write_codes(&args.codes_out, &codes)?)
    }
}

struct Decode<'a>(&'a DecodeArgs);

impl OnDevice for Decode<'_> {
    type Output = Result<()>;

    fn run<B: DiaBackend>(self, device: B::Device, _dtype: DType) -> Result<()> {
        let args = self.0;
        let dac = load_dac::<B>(&args.runtime, &device)?;
        let config = dac.config();
        let frames = codes::read_codes(&args.codes, config.n_codebooks, config.codebook_size)?;
        // Window by window into the output: memory stays bounded however long the codes.
        let mut out = sink::AudioSink::open(&args.output, config.sample_rate, args.wav_format)?;
        let mut stream = dac.streaming_decoder(StreamWindows::WHOLE)?;
        for piece in frames.chunks(StreamWindows::WHOLE.max) {
            out.write(&stream.push(piece)?)?;
        }
        out.write(&stream.finish()?)?;
        out.finish()
    }
}
