//! Run-time choice of backend and dtype: each command is written once, generic over the
//! backend, and instantiated here for the backends compiled in.

use anyhow::{Result, bail};
use burn::tensor::DType;
use burn::tensor::backend::Backend;
use dia_model::DiaBackend;

use crate::cli::{BackendArg, DtypeArg};

/// Code that runs on any backend (the generic body of a command).
pub trait OnBackend {
    type Output;
    /// Runs with backend `B` on `device`, computing the model in `dtype`.
    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Result<Self::Output>;
}

/// The best backend compiled into this binary.
fn auto() -> BackendArg {
    if cfg!(feature = "cuda") {
        BackendArg::Cuda
    } else if cfg!(feature = "wgpu") {
        BackendArg::Wgpu
    } else {
        BackendArg::Flex
    }
}

/// The per-device default dtype: bf16 on CUDA, f32 elsewhere (wgpu's f16 hits a Burn 0.21
/// fusion panic on a second encoder pass in one process; see the README).
fn default_dtype(backend: BackendArg) -> DType {
    match backend {
        BackendArg::Cuda => DType::BF16,
        _ => DType::F32,
    }
}

fn check_dtype<B: Backend>(device: &B::Device, dtype: DType, name: &str) -> Result<()> {
    if !B::supports_dtype(device, dtype) {
        bail!("the {name} backend does not support dtype {dtype:?}; use --dtype f32");
    }
    Ok(())
}

/// Runs `job` on the backend and dtype the user asked for.
pub fn dispatch<J: OnBackend>(
    backend: BackendArg,
    dtype: Option<DtypeArg>,
    job: J,
) -> Result<J::Output> {
    let backend = if backend == BackendArg::Auto {
        auto()
    } else {
        backend
    };
    let dtype = match dtype {
        Some(DtypeArg::F32) => DType::F32,
        Some(DtypeArg::F16) => DType::F16,
        Some(DtypeArg::Bf16) => DType::BF16,
        None => default_dtype(backend),
    };
    tracing::info!(?backend, ?dtype, "backend");
    match backend {
        BackendArg::Flex | BackendArg::Auto => {
            let device = Default::default();
            check_dtype::<burn_flex::Flex>(&device, dtype, "flex")?;
            job.run::<burn_flex::Flex>(device, dtype)
        }
        BackendArg::Ndarray => {
            let device = Default::default();
            check_dtype::<burn_ndarray::NdArray<f32>>(&device, dtype, "ndarray")?;
            job.run::<burn_ndarray::NdArray<f32>>(device, dtype)
        }
        #[cfg(feature = "wgpu")]
        BackendArg::Wgpu => {
            let device = burn::backend::wgpu::WgpuDevice::default();
            check_dtype::<burn::backend::Wgpu>(&device, dtype, "wgpu")?;
            job.run::<burn::backend::Wgpu>(device, dtype)
        }
        #[cfg(not(feature = "wgpu"))]
        BackendArg::Wgpu => {
            bail!("the wgpu backend is not compiled in: rebuild with `--features wgpu`")
        }
        #[cfg(feature = "cuda")]
        BackendArg::Cuda => {
            let device = burn::backend::cuda::CudaDevice::default();
            check_dtype::<burn::backend::Cuda>(&device, dtype, "cuda")?;
            job.run::<burn::backend::Cuda>(device, dtype)
        }
        #[cfg(not(feature = "cuda"))]
        BackendArg::Cuda => {
            bail!("the cuda backend is not compiled in: rebuild with `--features cuda`")
        }
    }
}
