//! The whole codec: loading, decoding codes to audio and encoding audio to codes, with the input
//! checks that turn bad caller data into errors.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::Element;

use crate::backend::DacBackend;
use crate::checkpoint::Checkpoint;
use crate::decoder::Decoder;
use crate::encoder::Encoder;
use crate::quantizer::ResidualVectorQuantizer;
use crate::weights::Weights;
use crate::{DacConfig, DacError};

/// The Descript Audio Codec: encoder, residual vector quantiser and decoder, in f32 unless the
/// backend says otherwise.
#[derive(Module, Debug)]
pub struct Dac<B: Backend> {
    encoder: Encoder<B>,
    quantizer: ResidualVectorQuantizer<B>,
    decoder: Decoder<B>,
    #[module(skip)]
    config: DacConfig,
}

impl<B: DacBackend> Dac<B> {
    /// Loads a released `weights.pth`, a safetensors file or a transformers directory (see
    /// [`Checkpoint::open`]), folding weight norm once.
    pub fn load(path: impl AsRef<Path>, device: &B::Device) -> Result<Self, DacError> {
        Self::from_checkpoint(Checkpoint::open(path)?, device)
    }

    /// Builds the codec from an opened checkpoint, which must hold exactly the tensors its
    /// configuration needs, at exactly their shapes.
    pub fn from_checkpoint(checkpoint: Checkpoint, device: &B::Device) -> Result<Self, DacError> {
        let (file, config, tensors) = checkpoint.into_parts();
        let mut weights = Weights::new(file, tensors, device);
        let dac = Self::build(&mut weights, config)?;
        weights.finish()?;
        Ok(dac)
    }

    /// A codec of `config`'s shapes with random weights drawn from `seed`: for benchmarks,
    /// where speed does not depend on the values.
    pub fn random(config: DacConfig, seed: u64, device: &B::Device) -> Result<Self, DacError> {
        config.validate()?;
        Self::build(&mut Weights::random(seed, device), config)
    }

    fn build(weights: &mut Weights<'_, B>, config: DacConfig) -> Result<Self, DacError> {
        Ok(Self {
            encoder: Encoder::load(weights, &config)?,
            quantizer: ResidualVectorQuantizer::load(weights, &config)?,
            decoder: Decoder::load(weights, &config)?,
            config,
        })
    }

    /// The configuration the codec was built with (sample rate, hop, codebooks).
    pub fn config(&self) -> &DacConfig {
        &self.config
    }

    /// Codes `[batch, n ≤ n_codebooks, frames]` → the decoder input `[batch, latent_dim, frames]`
    /// (the sum of each codebook's projected rows).
    pub fn decode_latent(&self, codes: Tensor<B, 3, Int>) -> Result<Tensor<B, 3>, DacError> {
        self.check_codes(&codes)?;
        Ok(self.quantizer.latent_from_codes(codes))
    }

    /// Codes `[batch, n ≤ n_codebooks, frames]` → waveform `[batch, 1, frames · hop]` in one
    /// pass: the reference's forward, whose activations grow with the length. For audio of any
    /// length, [`Self::decode_frames`].
    pub fn decode(&self, codes: Tensor<B, 3, Int>) -> Result<Tensor<B, 3>, DacError> {
        self.check_codes(&codes)?;
        Ok(self
            .decoder
            .forward(self.quantizer.latent_from_codes(codes)))
    }

    /// Waveform `[batch, 1, samples]` → codes `[batch, n_codebooks, ceil(samples / hop)]` and the
    /// quantised latent `[batch, latent_dim, frames]`. The audio is right-padded with zeros to a
    /// multiple of the hop, as DAC's `preprocess` does.
    pub fn encode(
        &self,
        audio: Tensor<B, 3>,
    ) -> Result<(Tensor<B, 3, Int>, Tensor<B, 3>), DacError> {
        check_audio_shape(audio.dims())?;
        let [batch, _, samples] = audio.dims();
        let padding = samples.next_multiple_of(self.config.hop_length()) - samples;
        let audio = if padding > 0 {
            let zeros = Tensor::zeros([batch, 1, padding], &audio.device());
            Tensor::cat(vec![audio, zeros], 2)
        } else {
            audio
        };
        Ok(self.quantizer.encode(self.encoder.forward(audio)))
    }

    /// Mono samples → time-major codes, one `Vec` of `n_codebooks` codes per frame (Dia's
    /// `[frames, codebooks]` prompt layout).
    pub fn encode_samples(&self, samples: &[f32]) -> Result<Vec<Vec<u32>>, DacError> {
        // Checked before any tensor exists: Burn panics on an empty reshape.
        check_audio_shape([1, 1, samples.len()])?;
        let audio =
            Tensor::<B, 1>::from_floats(samples, &self.device()).reshape([1, 1, samples.len()]);
        let (codes, _) = self.encode(audio)?;
        let [_, n, frames] = codes.dims();
        // [1, n, frames] → [frames, n]
        let flat = read_back::<i64>(codes.reshape([n, frames]).transpose().into_data())?;
        // Argmax indices lie in 0..codebook_size, so they fit u32.
        Ok(flat
            .chunks(n)
            .map(|frame| frame.iter().map(|&c| c as u32).collect())
            .collect())
    }

    /// Time-major frames (each `n_codebooks` long, as Dia produces them) → codes `[1, n, frames]`.
    pub fn frames_to_codes(
        &self,
        frames: &[impl AsRef<[u32]>],
    ) -> Result<Tensor<B, 3, Int>, DacError> {
        Ok(self.flat_to_codes(&self.check_frames(frames)?))
    }

    /// Checked time-major codes, flattened ([`Self::check_frames`]) → codes `[1, n, frames]`.
    pub(crate) fn flat_to_codes(&self, flat: &[i64]) -> Tensor<B, 3, Int> {
        let n = self.config.n_codebooks;
        Tensor::<B, 1, Int>::from_ints(flat, &self.device())
            // [frames, n] → [1, n, frames]
            .reshape([flat.len() / n, n])
            .transpose()
            .unsqueeze_dim(0)
    }

    /// Checks time-major frames (at least one, each `n_codebooks` codes in range) on the host,
    /// before a u32 can wrap in a narrower backend integer; returns them flattened.
    pub(crate) fn check_frames(&self, frames: &[impl AsRef<[u32]>]) -> Result<Vec<i64>, DacError> {
        let n = self.config.n_codebooks;
        if frames.is_empty() || frames.iter().any(|frame| frame.as_ref().len() != n) {
            return Err(DacError::InputShape {
                what: "frames",
                expected: format!("at least one frame of {n} codes"),
                found: frames.iter().map(|frame| frame.as_ref().len()).collect(),
            });
        }
        let flat: Vec<i64> = frames
            .iter()
            .flat_map(|frame| frame.as_ref().iter().map(|&c| i64::from(c)))
            .collect();
        if let Some(at) = flat.iter().position(|&c| !self.is_valid_code(c)) {
            return Err(self.out_of_range(flat[at], 0, at % n, at / n));
        }
        Ok(flat)
    }

    pub(crate) fn decoder(&self) -> &Decoder<B> {
        &self.decoder
    }

    pub(crate) fn quantizer(&self) -> &ResidualVectorQuantizer<B> {
        &self.quantizer
    }

    /// Shape `[batch ≥ 1, 1..=n_codebooks, frames ≥ 1]` and every code in `0..codebook_size`;
    /// the range check reads the (small) code tensor back to the host.
    pub(crate) fn check_codes(&self, codes: &Tensor<B, 3, Int>) -> Result<(), DacError> {
        let [batch, n, frames] = codes.dims();
        if batch == 0 || n == 0 || n > self.config.n_codebooks || frames == 0 {
            return Err(DacError::InputShape {
                what: "codes",
                expected: format!(
                    "[batch ≥ 1, 1..={} codebooks, frames ≥ 1]",
                    self.config.n_codebooks
                ),
                found: codes.dims().to_vec(),
            });
        }
        let values = read_back::<i64>(codes.to_data())?;
        match values.iter().position(|&c| !self.is_valid_code(c)) {
            None => Ok(()),
            Some(at) => {
                Err(self.out_of_range(values[at], at / (n * frames), at / frames % n, at % frames))
            }
        }
    }

    fn is_valid_code(&self, code: i64) -> bool {
        usize::try_from(code).is_ok_and(|code| code < self.config.codebook_size)
    }

    fn out_of_range(&self, value: i64, batch: usize, codebook: usize, frame: usize) -> DacError {
        DacError::CodeOutOfRange {
            value,
            batch,
            codebook,
            frame,
            codebook_size: self.config.codebook_size,
        }
    }

    fn device(&self) -> B::Device {
        self.devices().into_iter().next().unwrap_or_default()
    }
}

/// Audio must be `[batch ≥ 1, 1, samples ≥ 1]`.
fn check_audio_shape(dims: [usize; 3]) -> Result<(), DacError> {
    let [batch, channels, samples] = dims;
    if batch == 0 || channels != 1 || samples == 0 {
        return Err(DacError::InputShape {
            what: "audio",
            expected: "[batch ≥ 1, 1, samples ≥ 1]".to_string(),
            found: dims.to_vec(),
        });
    }
    Ok(())
}

/// Waveform `[batch, 1, samples]` → the samples of every batch item, concatenated.
pub fn audio_to_vec<B: Backend>(audio: Tensor<B, 3>) -> Result<Vec<f32>, DacError> {
    read_back::<f32>(audio.into_data())
}

/// Host copy of tensor data as elements of type `E`.
fn read_back<E: Element>(data: TensorData) -> Result<Vec<E>, DacError> {
    data.convert::<E>()
        .into_vec::<E>()
        .map_err(|e| DacError::ReadBack(format!("{e:?}")))
}
