//! Sampling settings an API caller may leave out: the server's JSON fields and the Python
//! package's keyword arguments, read into one type and applied over a base configuration.

use dia_model::GenerationConfig;

/// Sampling settings each given or left out (`None`: the base configuration's).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplingOverrides {
    pub seed: Option<u64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub cfg_scale: Option<f32>,
    pub cfg_filter_top_k: Option<usize>,
    /// Decoder frames per pass, prompt included.
    pub max_tokens: Option<usize>,
}

impl SamplingOverrides {
    /// `base` with every setting given here in place of its own.
    pub fn over(self, base: GenerationConfig) -> GenerationConfig {
        GenerationConfig {
            seed: self.seed.unwrap_or(base.seed),
            temperature: self.temperature.unwrap_or(base.temperature),
            top_p: self.top_p.unwrap_or(base.top_p),
            cfg_scale: self.cfg_scale.unwrap_or(base.cfg_scale),
            cfg_filter_top_k: self.cfg_filter_top_k.unwrap_or(base.cfg_filter_top_k),
            max_tokens: self.max_tokens.or(base.max_tokens),
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings given replace the base's; the rest are the base's.
    #[test]
    fn given_settings_replace_the_base_ones() {
        let base = GenerationConfig {
            seed: 9,
            max_tokens: Some(50),
            ..GenerationConfig::default()
        };
        assert_eq!(SamplingOverrides::default().over(base), base);
        let given = SamplingOverrides {
            temperature: Some(0.0),
            max_tokens: Some(7),
            ..SamplingOverrides::default()
        };
        let config = given.over(base);
        assert_eq!((config.temperature, config.max_tokens), (0.0, Some(7)));
        assert_eq!((config.seed, config.top_p), (base.seed, base.top_p));
    }
}
