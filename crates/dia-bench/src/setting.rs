//! What one benchmark row measures: model size, backend, dtype and the model's knobs.

use std::fmt;

use burn::tensor::DType;
use dia_dac::DacConfig;
use dia_model::{DiaConfig, ModelOptions};
use serde::{Deserialize, Serialize};

/// Model size; all use random weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// The test fixtures' shapes (2 + 2 layers, width 64) with the fixtures' tiny codec.
    Tiny,
    /// A quarter-width Dia (the reference bench's `small`) with the real 44.1 kHz codec.
    Small,
    /// Dia-1.6B with the real 44.1 kHz codec.
    Full,
}

impl Size {
    /// The Dia configuration of this size.
    pub fn dia_config(self) -> DiaConfig {
        match self {
            Size::Tiny => DiaConfig::from_json_str(include_str!(
                "../../../assets/fixtures/dia-tiny/config.json"
            ))
            .expect("the fixture config parses"),
            Size::Small => {
                let mut c = DiaConfig::dia_1_6b();
                let e = &mut c.encoder;
                (e.hidden_size, e.intermediate_size, e.num_hidden_layers) = (512, 2048, 6);
                (e.num_attention_heads, e.num_key_value_heads, e.head_dim) = (8, 8, 64);
                let d = &mut c.decoder;
                (d.hidden_size, d.intermediate_size, d.num_hidden_layers) = (1024, 4096, 9);
                (d.num_attention_heads, d.num_key_value_heads, d.head_dim) = (8, 2, 64);
                (d.cross_num_attention_heads, d.cross_num_key_value_heads) = (8, 8);
                (d.cross_head_dim, d.cross_hidden_size) = (64, 512);
                c
            }
            Size::Full => DiaConfig::dia_1_6b(),
        }
    }

    /// The codec benchmarked with this size.
    pub fn dac_config(self) -> DacConfig {
        match self {
            // assets/fixtures/dac-tiny-hf/config.json
            Size::Tiny => DacConfig {
                encoder_dim: 8,
                encoder_rates: vec![2, 4],
                latent_dim: Some(32),
                decoder_dim: 32,
                decoder_rates: vec![4, 2],
                ..DacConfig::default()
            },
            Size::Small | Size::Full => DacConfig::default(),
        }
    }
}

/// Compute dtype of the weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F32,
    F16,
    Bf16,
    /// Int8 projection weights (one scale per output column) with f32 activations.
    Int8,
}

impl Dtype {
    /// Burn's dtype for the activations (and the weights, unless int8).
    pub fn burn(self) -> DType {
        match self {
            Dtype::F32 | Dtype::Int8 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::Bf16 => DType::BF16,
        }
    }
}

/// A switch the report varies: both values, or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Knob {
    Both,
    On,
    Off,
}

impl Knob {
    /// The values to run.
    pub fn values(self) -> &'static [bool] {
        match self {
            Knob::Both => &[true, false],
            Knob::On => &[true],
            Knob::Off => &[false],
        }
    }
}

/// One configuration: a row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub size: Size,
    /// A name from [`crate::backends::NAMES`].
    pub backend: String,
    pub dtype: Dtype,
    pub rope_table: bool,
    pub fused_qkv: bool,
}

impl Setting {
    /// The model options this setting runs with.
    pub fn options(&self) -> ModelOptions {
        ModelOptions {
            dtype: self.dtype.burn(),
            rope_table: self.rope_table,
            fused_qkv: self.fused_qkv,
            int8_weights: self.dtype == Dtype::Int8,
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "{:?} {} {:?} rope-table {} fused-qkv {}",
            self.size,
            self.backend,
            self.dtype,
            on(self.rope_table),
            on(self.fused_qkv)
        )
    }
}
