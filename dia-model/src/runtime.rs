//! Choosing a backend at run time: code written once, generic over [`DiaBackend`]
//! ([`OnBackend`]), runs on the backend a user names (`flex`, `ndarray`, `wgpu`, `cuda`, or
//! `auto` for the best one compiled in). The binaries and any application use this one dispatch.

use std::fmt;
use std::str::FromStr;

use burn::tensor::DType;
use burn::tensor::backend::Backend;

use crate::backend::DiaBackend;
use crate::error::{DiaError, Result};

/// A backend this crate can run on (each behind its cargo feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Burn's Flex CPU backend with dia-model's decode kernels (feature `flex`).
    Flex,
    /// Burn's ndarray CPU backend (feature `ndarray`).
    NdArray,
    /// Burn's wgpu backend (Vulkan, Metal, DX12) with kernel fusion (feature `wgpu`).
    Wgpu,
    /// wgpu without kernel fusion, to measure what fusion brings (feature `wgpu`).
    WgpuNoFusion,
    /// Burn's CUDA backend with kernel fusion (feature `cuda`).
    Cuda,
}

/// Code that runs on any backend: the generic body of a command.
pub trait OnBackend {
    type Output;
    /// Runs with backend `B` on `device`.
    fn run<B: DiaBackend>(self, device: B::Device) -> Self::Output;
}

impl BackendKind {
    /// Every backend, GPU first (the order `auto` prefers).
    pub const ALL: [Self; 5] = [
        Self::Cuda,
        Self::Wgpu,
        Self::WgpuNoFusion,
        Self::Flex,
        Self::NdArray,
    ];

    /// The name used on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::WgpuNoFusion => "wgpu-nofusion",
            Self::Cuda => "cuda",
        }
    }

    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu | Self::WgpuNoFusion => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// Whether this build has the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::NdArray => cfg!(feature = "ndarray"),
            Self::Wgpu | Self::WgpuNoFusion => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled in, CPU first.
    pub fn compiled() -> Vec<Self> {
        [
            Self::Flex,
            Self::NdArray,
            Self::Wgpu,
            Self::WgpuNoFusion,
            Self::Cuda,
        ]
        .into_iter()
        .filter(|k| k.is_compiled())
        .collect()
    }

    /// The `auto` rule: CUDA, then wgpu (fused), then Flex, then ndarray, whichever is
    /// compiled in first.
    pub fn auto() -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.is_compiled() && *k != Self::WgpuNoFusion)
            .ok_or_else(|| {
                DiaError::Unavailable(
                    "no backend is compiled in: enable a feature of dia-model (flex, ndarray, \
                     wgpu or cuda)"
                        .into(),
                )
            })
    }

    /// Whether the backend runs with Burn's kernel fusion (`None`: it has none).
    pub fn fusion(self) -> Option<bool> {
        match self {
            Self::Flex | Self::NdArray => None,
            Self::WgpuNoFusion => Some(false),
            Self::Wgpu | Self::Cuda => Some(true),
        }
    }

    /// The compute dtype to use when none is asked for: bf16 on CUDA, f32 elsewhere (wgpu's
    /// f16 runs, but its logits are ~4e-2 off the reference's where f32's are ~1e-5).
    pub fn default_dtype(self) -> DType {
        match self {
            Self::Cuda => DType::BF16,
            _ => DType::F32,
        }
    }

    /// Runs `job` on this backend's default device.
    pub fn run<J: OnBackend>(self, job: J) -> Result<J::Output> {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex => Ok(job.run::<burn_flex::Flex>(Default::default())),
            #[cfg(feature = "ndarray")]
            Self::NdArray => Ok(job.run::<burn_ndarray::NdArray<f32>>(Default::default())),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(job.run::<burn::backend::Wgpu>(Default::default())),
            #[cfg(feature = "wgpu")]
            Self::WgpuNoFusion => {
                use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
                Ok(job.run::<CubeBackend<WgpuRuntime, f32, i32, u32>>(Default::default()))
            }
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(job.run::<burn::backend::Cuda>(Default::default())),
            #[allow(unreachable_patterns)]
            other => Err(DiaError::Unavailable(format!(
                "the {other} backend is not compiled in: rebuild with `--features {}`",
                other.feature()
            ))),
        }
    }
}

/// Fails when `B` (the backend `kind`) cannot compute in `dtype` on `device` (bf16 on wgpu,
/// for one).
pub fn ensure_dtype<B: Backend>(kind: BackendKind, device: &B::Device, dtype: DType) -> Result<()> {
    if B::supports_dtype(device, dtype) {
        return Ok(());
    }
    Err(DiaError::Unavailable(format!(
        "the {kind} backend does not support dtype {}; use f32",
        dtype_name(dtype)
    )))
}

/// `f32`, `f16`, `bf16` (Burn's debug name for other dtypes).
pub fn dtype_name(dtype: DType) -> String {
    match dtype {
        DType::F32 => "f32".into(),
        DType::F16 => "f16".into(),
        DType::BF16 => "bf16".into(),
        other => format!("{other:?}"),
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = DiaError;

    /// A backend by name, `auto` resolving to [`BackendKind::auto`].
    fn from_str(s: &str) -> Result<Self> {
        if s.eq_ignore_ascii_case("auto") {
            return Self::auto();
        }
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
                DiaError::Unavailable(format!(
                    "unknown backend {s:?} (expected auto, {})",
                    names.join(", ")
                ))
            })
    }
}

impl serde::Serialize for BackendKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for BackendKind {
    /// By name; `auto` is not a backend of its own and is rejected here.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown backend {name:?}")))
    }
}
