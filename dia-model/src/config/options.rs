//! How a model is built: compute dtype, weight storage and the implementation switches the
//! benchmark compares.

use std::fmt;
use std::str::FromStr;

use burn::tensor::DType;

/// How the projection weights are stored (embeddings and norms are not projections: they stay
/// in the compute dtype and f32). Separate from the compute dtype: bf16 weights with f32
/// compute halve the memory a step reads and keep f32 activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightStorage {
    F32,
    F16,
    BF16,
    /// Symmetric int8, one f32 scale per output column: a quarter of f32's bytes, products
    /// accumulate in f32.
    Int8,
    /// Int8 weights as [`WeightStorage::Int8`], times int8 activations: each input row of a
    /// projection quantized with one scale (its largest magnitude over 127), the products
    /// summed exactly in i32 (VNNI or AVX2 integer dot products on the CPU), then scaled.
    W8A8,
}

impl WeightStorage {
    /// The float storage matching a compute dtype (f32 for dtypes that are not f16 or bf16).
    pub fn of_dtype(dtype: DType) -> Self {
        match dtype {
            DType::F16 => Self::F16,
            DType::BF16 => Self::BF16,
            _ => Self::F32,
        }
    }

    /// The dtype a float storage holds; `None` for int8.
    pub fn float_dtype(self) -> Option<DType> {
        match self {
            Self::F32 => Some(DType::F32),
            Self::F16 => Some(DType::F16),
            Self::BF16 => Some(DType::BF16),
            Self::Int8 | Self::W8A8 => None,
        }
    }

    /// The lower-case name used on command lines and in reports (`f32`, `f16`, `bf16`, `int8`,
    /// `w8a8`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::BF16 => "bf16",
            Self::Int8 => "int8",
            Self::W8A8 => "w8a8",
        }
    }
}

impl fmt::Display for WeightStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightStorage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [Self::F32, Self::F16, Self::BF16, Self::Int8, Self::W8A8]
            .into_iter()
            .find(|w| w.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown weight storage {s:?} (expected f32, f16, bf16, int8 or w8a8)")
            })
    }
}

/// The float compute dtypes by name (`f32`, `f16`, `bf16`), for command lines and reports.
pub fn parse_dtype(s: &str) -> Result<DType, String> {
    match s.to_ascii_lowercase().as_str() {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => Err(format!("unknown dtype {s:?} (expected f32, f16 or bf16)")),
    }
}

/// How a [`crate::DiaModel`] is built. The dtype and weight storage change the arithmetic
/// (results stay within each precision's measured bounds of f32); the switches change only how
/// the same arithmetic is organised, which the benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelOptions {
    /// Compute dtype of activations, embeddings and the KV cache (norms, RoPE and logits stay f32).
    pub dtype: DType,
    /// How projection weights are stored; `None` stores them in `dtype`.
    pub weights: Option<WeightStorage>,
    /// RoPE sin/cos from a table built once instead of recomputed at every call.
    pub rope_table: bool,
    /// One `[dim, q + k + v]` projection instead of three in self-attention.
    pub fused_qkv: bool,
}

impl ModelOptions {
    /// The projection weights' storage, `dtype`'s when none is set.
    pub fn weight_storage(&self) -> WeightStorage {
        self.weights
            .unwrap_or_else(|| WeightStorage::of_dtype(self.dtype))
    }
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            weights: None,
            rope_table: true,
            fused_qkv: true,
        }
    }
}

impl serde::Serialize for WeightStorage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for WeightStorage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
