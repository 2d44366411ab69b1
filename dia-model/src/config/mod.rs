//! Model configuration: parses the hub's flat 0626 schema and the original nested schema.

mod options;

pub use self::options::{ModelOptions, WeightStorage, parse_dtype};

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DiaError, Result};

/// Which release of Dia the config describes; it selects RoPE in cross-attention and
/// the sampler flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelVersion {
    /// Original Dia-1.6B (nested config schema): cross-attention RoPE, guided-logit sampler.
    Original,
    /// Dia-1.6B-0626 (flat schema): no cross-attention RoPE, conditional logits inside the
    /// guided top-k set.
    V0626,
}

/// Text encoder hyper-parameters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EncoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    /// Text length: tokens past it are truncated.
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
}

/// Audio decoder hyper-parameters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DecoderConfig {
    pub vocab_size: usize,
    pub num_channels: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub cross_num_attention_heads: usize,
    pub cross_num_key_value_heads: usize,
    pub cross_head_dim: usize,
    pub cross_hidden_size: usize,
    /// Decoder position limit: `max_tokens` may not exceed it.
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
}

fn default_eps() -> f64 {
    1e-5
}

fn default_theta() -> f64 {
    10_000.0
}

/// The whole Dia configuration, whichever schema it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct DiaConfig {
    pub encoder: EncoderConfig,
    pub decoder: DecoderConfig,
    pub bos_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
    /// Per-channel delay in frames.
    pub delay_pattern: Vec<usize>,
    pub version: ModelVersion,
}

#[derive(Deserialize, Serialize)]
struct FlatConfig {
    encoder_config: EncoderConfig,
    decoder_config: DecoderConfig,
    bos_token_id: u32,
    eos_token_id: u32,
    pad_token_id: u32,
    delay_pattern: Vec<usize>,
}

#[derive(Deserialize)]
struct NestedConfig {
    data: NestedData,
    model: NestedModel,
}

#[derive(Deserialize)]
struct NestedData {
    text_length: usize,
    audio_length: usize,
    channels: usize,
    audio_eos_value: u32,
    audio_pad_value: u32,
    audio_bos_value: u32,
    delay_pattern: Vec<usize>,
}

#[derive(Deserialize)]
struct NestedModel {
    encoder: NestedEncoder,
    decoder: NestedDecoder,
    src_vocab_size: usize,
    tgt_vocab_size: usize,
    #[serde(default = "default_eps")]
    normalization_layer_epsilon: f64,
    #[serde(default = "default_theta")]
    rope_max_timescale: f64,
}

#[derive(Deserialize)]
struct NestedEncoder {
    n_layer: usize,
    n_embd: usize,
    n_hidden: usize,
    n_head: usize,
    head_dim: usize,
}

#[derive(Deserialize)]
struct NestedDecoder {
    n_layer: usize,
    n_embd: usize,
    n_hidden: usize,
    gqa_query_heads: usize,
    kv_heads: usize,
    gqa_head_dim: usize,
    cross_query_heads: usize,
    cross_head_dim: usize,
}

impl From<NestedConfig> for DiaConfig {
    fn from(c: NestedConfig) -> Self {
        let (m, d) = (c.model, c.data);
        let encoder = EncoderConfig {
            vocab_size: m.src_vocab_size,
            hidden_size: m.encoder.n_embd,
            intermediate_size: m.encoder.n_hidden,
            num_hidden_layers: m.encoder.n_layer,
            num_attention_heads: m.encoder.n_head,
            num_key_value_heads: m.encoder.n_head,
            head_dim: m.encoder.head_dim,
            max_position_embeddings: d.text_length,
            norm_eps: m.normalization_layer_epsilon,
            rope_theta: m.rope_max_timescale,
        };
        let decoder = DecoderConfig {
            vocab_size: m.tgt_vocab_size,
            num_channels: d.channels,
            hidden_size: m.decoder.n_embd,
            intermediate_size: m.decoder.n_hidden,
            num_hidden_layers: m.decoder.n_layer,
            num_attention_heads: m.decoder.gqa_query_heads,
            num_key_value_heads: m.decoder.kv_heads,
            head_dim: m.decoder.gqa_head_dim,
            cross_num_attention_heads: m.decoder.cross_query_heads,
            cross_num_key_value_heads: m.decoder.cross_query_heads,
            cross_head_dim: m.decoder.cross_head_dim,
            cross_hidden_size: m.encoder.n_embd,
            max_position_embeddings: d.audio_length,
            norm_eps: m.normalization_layer_epsilon,
            rope_theta: m.rope_max_timescale,
        };
        Self {
            encoder,
            decoder,
            bos_token_id: d.audio_bos_value,
            eos_token_id: d.audio_eos_value,
            pad_token_id: d.audio_pad_value,
            delay_pattern: d.delay_pattern,
            version: ModelVersion::Original,
        }
    }
}

impl DiaConfig {
    /// Parses a `config.json` text in either schema; the schema decides the version.
    pub fn from_json_str(text: &str) -> std::result::Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let config = if value.get("encoder_config").is_some() {
            let flat: FlatConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
            Self {
                encoder: flat.encoder_config,
                decoder: flat.decoder_config,
                bos_token_id: flat.bos_token_id,
                eos_token_id: flat.eos_token_id,
                pad_token_id: flat.pad_token_id,
                delay_pattern: flat.delay_pattern,
                version: ModelVersion::V0626,
            }
        } else if value.get("model").is_some() && value.get("data").is_some() {
            let nested: NestedConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
            nested.into()
        } else {
            return Err(
                "neither the flat schema (encoder_config/decoder_config) nor the \
                        original nested schema (data/model)"
                    .into(),
            );
        };
        config.validate()?;
        Ok(config)
    }

    /// The config as a `config.json` text in the flat 0626 schema (what
    /// [`DiaConfig::from_json_str`] reads back); `None` for the original version, whose nested
    /// schema is only read.
    pub fn to_flat_json(&self) -> Option<String> {
        (self.version == ModelVersion::V0626).then(|| {
            let flat = FlatConfig {
                encoder_config: self.encoder.clone(),
                decoder_config: self.decoder.clone(),
                bos_token_id: self.bos_token_id,
                eos_token_id: self.eos_token_id,
                pad_token_id: self.pad_token_id,
                delay_pattern: self.delay_pattern.clone(),
            };
            serde_json::to_string_pretty(&flat).expect("a config serializes")
        })
    }

    /// Reads and parses a `config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DiaError::io(path, e))?;
        Self::from_json_str(&text).map_err(|message| DiaError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// The full-size Dia-1.6B-0626 configuration (the hub's values).
    pub fn dia_1_6b() -> Self {
        Self {
            encoder: EncoderConfig {
                vocab_size: 256,
                hidden_size: 1024,
                intermediate_size: 4096,
                num_hidden_layers: 12,
                num_attention_heads: 16,
                num_key_value_heads: 16,
                head_dim: 128,
                max_position_embeddings: 1024,
                norm_eps: 1e-5,
                rope_theta: 10_000.0,
            },
            decoder: DecoderConfig {
                vocab_size: 1028,
                num_channels: 9,
                hidden_size: 2048,
                intermediate_size: 8192,
                num_hidden_layers: 18,
                num_attention_heads: 16,
                num_key_value_heads: 4,
                head_dim: 128,
                cross_num_attention_heads: 16,
                cross_num_key_value_heads: 16,
                cross_head_dim: 128,
                cross_hidden_size: 1024,
                max_position_embeddings: 3072,
                norm_eps: 1e-5,
                rope_theta: 10_000.0,
            },
            bos_token_id: 1026,
            eos_token_id: 1024,
            pad_token_id: 1025,
            delay_pattern: vec![0, 8, 9, 10, 11, 12, 13, 14, 15],
            version: ModelVersion::V0626,
        }
    }

    /// The largest channel delay (15 for Dia).
    pub fn max_delay(&self) -> usize {
        self.delay_pattern.iter().copied().max().unwrap_or(0)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let (e, d) = (&self.encoder, &self.decoder);
        let checks = [
            (
                d.num_channels > 0,
                "decoder num_channels must be at least 1",
            ),
            (
                self.delay_pattern.len() == d.num_channels,
                "delay_pattern length must equal decoder num_channels",
            ),
            (
                e.num_attention_heads % e.num_key_value_heads.max(1) == 0,
                "encoder heads must be a multiple of its KV heads",
            ),
            (
                d.num_attention_heads % d.num_key_value_heads.max(1) == 0,
                "decoder heads must be a multiple of its KV heads",
            ),
            (
                d.cross_num_attention_heads % d.cross_num_key_value_heads.max(1) == 0,
                "cross-attention heads must be a multiple of its KV heads",
            ),
            (
                e.head_dim % 2 == 0 && d.head_dim % 2 == 0 && d.cross_head_dim % 2 == 0,
                "head dims must be even for RoPE",
            ),
            (
                (self.eos_token_id as usize) < d.vocab_size
                    && (self.pad_token_id as usize) < d.vocab_size
                    && (self.bos_token_id as usize) < d.vocab_size,
                "special token ids must be inside the decoder vocabulary",
            ),
            (
                d.cross_hidden_size == e.hidden_size,
                "decoder cross_hidden_size must equal the encoder hidden_size",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err((*message).to_string()),
            None => Ok(()),
        }
    }
}
