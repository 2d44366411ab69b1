//! Our GPU kernels checked for the GPUs this machine lacks, before a user's GPU sees them:
//! [`cuda_kernels`] generates the CUDA C++ of every kernel of ours a decode step, a prefill and
//! the device sampler can launch (CubeCL's CUDA compiler on [`CudaSource`], a runtime with
//! CUDA's properties that runs nothing; NVRTC then compiles them, `scripts/nvrtc_check.py`), and
//! [`translate`] takes each WGSL module a wgpu run compiled (ours and Burn's, captured from
//! CubeCL's compilation log) through naga's MSL (Metal) and HLSL (DX12) writers, as wgpu does
//! on macOS and Windows. `scripts/gpu-compile-check.sh` runs both. Burn's own CUDA kernels
//! (matmul, reductions, fusion) choose their variants from a real device's properties, so the
//! CUDA side covers ours only.

mod cuda;
mod runtime;
mod wgsl;

pub use cuda::{ARCHS, CudaKernel, cuda_kernels};
pub use runtime::{CudaSource, CudaSourceDevice};
pub use wgsl::{F64_CANARY, LoggedModule, Translation, logged_modules, translate};
