//! Codec hyper-parameters: the constructor arguments of DAC 1.0.0 (`metadata.kwargs` of a
//! released `weights.pth`), and the transformers `config.json` that describes the same codec.

use serde::{Deserialize, Serialize};

use crate::DacError;

/// The hyper-parameters of one DAC codec, named as in the released `metadata.kwargs`.
///
/// `Default` is the 44.1 kHz, 9-codebook release that Dia speaks through. Fields missing from a
/// deserialised config take the DAC 1.0.0 constructor defaults, as Python would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DacConfig {
    /// Channels after the first encoder conv; each encoder block doubles them.
    pub encoder_dim: usize,
    /// Strides of the encoder blocks; their product is the hop length.
    pub encoder_rates: Vec<usize>,
    /// Latent width; `None` means `encoder_dim * 2^len(encoder_rates)`, as in DAC.
    #[serde(default)]
    pub latent_dim: Option<usize>,
    /// Channels after the first decoder conv; each decoder block halves them.
    pub decoder_dim: usize,
    /// Strides of the decoder blocks (transposed convs).
    pub decoder_rates: Vec<usize>,
    /// Number of residual quantiser stages (codes per frame).
    pub n_codebooks: usize,
    /// Entries per codebook.
    pub codebook_size: usize,
    /// Width of the factorised codebook lookup space.
    pub codebook_dim: usize,
    /// Audio sample rate in Hz.
    pub sample_rate: u32,
}

impl Default for DacConfig {
    fn default() -> Self {
        Self {
            encoder_dim: 64,
            encoder_rates: vec![2, 4, 8, 8],
            latent_dim: Some(1024),
            decoder_dim: 1536,
            decoder_rates: vec![8, 8, 4, 2],
            n_codebooks: 9,
            codebook_size: 1024,
            codebook_dim: 8,
            sample_rate: 44100,
        }
    }
}

impl DacConfig {
    /// Audio samples per code frame (the product of the encoder strides; 512 for 44.1 kHz).
    pub fn hop_length(&self) -> usize {
        self.encoder_rates
            .iter()
            .fold(1usize, |acc, &r| acc.saturating_mul(r))
    }

    /// The latent width, resolving `latent_dim: None` the way DAC does.
    pub fn resolved_latent_dim(&self) -> usize {
        self.latent_dim.unwrap_or_else(|| {
            let doublings = u32::try_from(self.encoder_rates.len()).unwrap_or(u32::MAX);
            self.encoder_dim
                .saturating_mul(2usize.saturating_pow(doublings))
        })
    }

    /// Code frames per second of audio (86.13 Hz for 44.1 kHz).
    pub fn frame_rate(&self) -> f64 {
        f64::from(self.sample_rate) / self.hop_length() as f64
    }

    /// Checks that the numbers describe a buildable codec whose decoder undoes the encoder's hop.
    pub fn validate(&self) -> Result<(), DacError> {
        let fail = |reason: String| Err(DacError::InvalidConfig(reason));
        if self.encoder_rates.is_empty() || self.encoder_rates.contains(&0) {
            return fail(format!(
                "encoder_rates {:?} must be non-empty and positive",
                self.encoder_rates
            ));
        }
        if self.decoder_rates.is_empty() || self.decoder_rates.contains(&0) {
            return fail(format!(
                "decoder_rates {:?} must be non-empty and positive",
                self.decoder_rates
            ));
        }
        let product = |rates: &[usize]| {
            rates
                .iter()
                .try_fold(1usize, |acc, &r| acc.checked_mul(r))
                .unwrap_or(0)
        };
        let (down, up) = (product(&self.encoder_rates), product(&self.decoder_rates));
        if down == 0 || down != up {
            return fail(format!(
                "encoder_rates {:?} and decoder_rates {:?} must multiply to the same hop length",
                self.encoder_rates, self.decoder_rates
            ));
        }
        let halvings = u32::try_from(self.decoder_rates.len()).unwrap_or(u32::MAX);
        if self.decoder_dim.checked_shr(halvings).unwrap_or(0) == 0 {
            return fail(format!(
                "decoder_dim {} cannot be halved {} times",
                self.decoder_dim, halvings
            ));
        }
        for (name, value) in [
            ("encoder_dim", self.encoder_dim),
            ("latent_dim", self.resolved_latent_dim()),
            ("n_codebooks", self.n_codebooks),
            ("codebook_size", self.codebook_size),
            ("codebook_dim", self.codebook_dim),
            ("sample_rate", self.sample_rate as usize),
        ] {
            if value == 0 {
                return fail(format!("{name} must be positive"));
            }
        }
        Ok(())
    }
}

/// The transformers `DacConfig` (`config.json` of `descript/dac_44khz`), read only to convert.
#[derive(Debug, Deserialize)]
pub(crate) struct TransformersConfig {
    encoder_hidden_size: usize,
    downsampling_ratios: Vec<usize>,
    hidden_size: usize,
    decoder_hidden_size: usize,
    upsampling_ratios: Vec<usize>,
    n_codebooks: usize,
    codebook_size: usize,
    codebook_dim: usize,
    sampling_rate: u32,
}

impl From<TransformersConfig> for DacConfig {
    fn from(hf: TransformersConfig) -> Self {
        Self {
            encoder_dim: hf.encoder_hidden_size,
            encoder_rates: hf.downsampling_ratios,
            latent_dim: Some(hf.hidden_size),
            decoder_dim: hf.decoder_hidden_size,
            decoder_rates: hf.upsampling_ratios,
            n_codebooks: hf.n_codebooks,
            codebook_size: hf.codebook_size,
            codebook_dim: hf.codebook_dim,
            sample_rate: hf.sampling_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_44khz_release() {
        let config = DacConfig::default();
        assert_eq!(config.hop_length(), 512);
        assert_eq!(config.resolved_latent_dim(), 1024);
        assert!((config.frame_rate() - 86.1328125).abs() < 1e-9);
        config.validate().expect("the release config is valid");
    }

    #[test]
    fn missing_latent_dim_is_derived_from_the_encoder() {
        let config: DacConfig =
            serde_json::from_str(r#"{"encoder_dim": 8, "encoder_rates": [2, 4]}"#).unwrap();
        assert_eq!(config.latent_dim, None);
        assert_eq!(config.resolved_latent_dim(), 32);
        assert_eq!(
            config.decoder_dim, 1536,
            "absent fields take DAC's defaults"
        );
    }

    #[test]
    fn mismatched_hops_are_rejected() {
        let config = DacConfig {
            decoder_rates: vec![8, 8, 4],
            ..DacConfig::default()
        };
        assert!(matches!(config.validate(), Err(DacError::InvalidConfig(_))));
    }
}
