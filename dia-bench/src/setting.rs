//! What one benchmark row measures: model size, backend, dtype and the model's knobs.

use std::fmt;
use std::str::FromStr;

use burn::tensor::DType;
use dia_dac::DacConfig;
use dia_model::config::parse_dtype;
use dia_model::runtime::dtype_name;
use dia_model::{BackendKind, DiaConfig, ModelOptions, SamplingSite, WeightStorage};
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
            Size::Tiny => {
                DiaConfig::from_json_str(include_str!("../../assets/fixtures/dia-tiny/config.json"))
                    .expect("the fixture config parses")
            }
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

/// A row's precision: the compute dtype and how projection weights are stored. Written
/// `DTYPE` (weights stored in it), `DTYPE:WEIGHTS` (for example `f32:bf16`), or `int8` for
/// `f32:int8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    pub dtype: DType,
    pub weights: WeightStorage,
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("int8") {
            return Ok(Self {
                dtype: DType::F32,
                weights: WeightStorage::Int8,
            });
        }
        let (dtype, weights) = match s.split_once(':') {
            Some((d, w)) => (parse_dtype(d)?, Some(w.parse()?)),
            None => (parse_dtype(s)?, None),
        };
        Ok(Self {
            dtype,
            weights: weights.unwrap_or_else(|| WeightStorage::of_dtype(dtype)),
        })
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dtype = dtype_name(self.dtype);
        if self.weights == WeightStorage::of_dtype(self.dtype) {
            write!(f, "{dtype}")
        } else {
            write!(f, "{dtype}:{}", self.weights)
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
    pub backend: BackendKind,
    /// Compute dtype (`f32`, `f16`, `bf16`).
    #[serde(with = "dtype_serde")]
    pub dtype: DType,
    /// Projection weight storage (`f32`, `f16`, `bf16`, `int8`, `w8a8`).
    pub weights: WeightStorage,
    pub rope_table: bool,
    pub fused_qkv: bool,
    /// Requests decoded together on one continuous batch (each its own item and seed).
    #[serde(default = "one")]
    pub requests: usize,
    /// Where the decode chooses its tokens.
    #[serde(default)]
    pub sampling: SamplingSite,
    /// The backend's own kernels (Flex's SIMD passes, the CubeCL decode kernels) or Burn's
    /// generic ops throughout ([`dia_model::backend::set_custom_kernels`]).
    #[serde(default = "yes")]
    pub custom_kernels: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

impl Setting {
    /// The model options this setting runs with.
    pub fn options(&self) -> ModelOptions {
        ModelOptions {
            dtype: self.dtype,
            weights: Some(self.weights),
            rope_table: self.rope_table,
            fused_qkv: self.fused_qkv,
        }
    }

    /// The setting's precision.
    pub fn precision(&self) -> Precision {
        Precision {
            dtype: self.dtype,
            weights: self.weights,
        }
    }
}

/// A compute dtype as its lower-case name.
mod dtype_serde {
    use burn::tensor::DType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(dtype: &DType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&dia_model::runtime::dtype_name(*dtype))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DType, D::Error> {
        dia_model::config::parse_dtype(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "{:?} {} {} rope-table {} fused-qkv {} requests {} sampling {} custom-kernels {}",
            self.size,
            self.backend,
            self.precision(),
            on(self.rope_table),
            on(self.fused_qkv),
            self.requests,
            self.sampling,
            on(self.custom_kernels)
        )
    }
}
