//! The backends compiled in, by type (`Flex`, `NdArray`, `Wgpu`, `Cuda`, each behind
//! its cargo feature) for `Dia::<Flex>::load`, and by name for code written once, generic over
//! the backend ([`OnDevice`], [`run`]), run on the one a user names.

use burn::tensor::DType;
use dia_model::runtime::ensure_dtype;
use dia_model::{BackendKind, DiaBackend, OnBackend};

use crate::error::Result;

/// Burn's Flex CPU backend with this project's decode kernels (feature `flex`).
#[cfg(feature = "flex")]
pub type Flex = burn_flex::Flex;
/// Burn's ndarray CPU backend, the portable reference (feature `ndarray`).
#[cfg(feature = "ndarray")]
pub type NdArray = burn_ndarray::NdArray<f32>;
/// Burn's wgpu backend (Vulkan, Metal, DX12) with kernel fusion (feature `wgpu`).
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu;
/// Burn's CUDA backend with kernel fusion (feature `cuda`).
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;

/// A body generic over the backend, run with the device and compute dtype a user chose.
pub trait OnDevice {
    type Output;
    /// Runs with backend `B` on `device`, computing the model in `dtype`.
    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Self::Output;
}

/// Runs `job` on `backend` in `dtype` (default: the backend's own), after checking that the
/// backend computes in that dtype.
pub fn run<J: OnDevice>(backend: BackendKind, dtype: Option<DType>, job: J) -> Result<J::Output> {
    let dtype = dtype.unwrap_or_else(|| backend.default_dtype());
    tracing::info!(%backend, ?dtype, "backend");
    let checked = Checked {
        job,
        backend,
        dtype,
    };
    backend.run(checked)?
}

/// A job behind a check that the backend computes in its dtype.
struct Checked<J> {
    job: J,
    backend: BackendKind,
    dtype: DType,
}

impl<J: OnDevice> OnBackend for Checked<J> {
    type Output = Result<J::Output>;

    fn run<B: DiaBackend>(self, device: B::Device) -> Self::Output {
        ensure_dtype::<B>(self.backend, &device, self.dtype)?;
        Ok(self.job.run::<B>(device, self.dtype))
    }
}
