//! The CubeCL GPU backends (wgpu, CUDA): Burn's generic ops are the fast path there (fused,
//! and autotuned when the application enables Burn's `autotune`), so every kernel hook keeps
//! its default; tokens are chosen on the device, which spares a host round trip per step. One impl per wrapper covers every runtime and element type, with or without fusion.

use burn::tensor::backend::Backend;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use burn_fusion::{Fusion, FusionBackend};

use crate::backend::DiaBackend;

/// `CubeBackend<WgpuRuntime | CudaRuntime, ..>`: the unfused backends (`Wgpu`, `Cuda` without
/// Burn's `fusion`) and what `Fusion` wraps.
impl<R, F, I, BT> DiaBackend for CubeBackend<R, F, I, BT>
where
    Self: Backend,
    R: CubeRuntime,
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn samples_on_device() -> bool {
        true
    }
}

/// `Fusion<CubeBackend<..>>`: `burn::backend::{Wgpu, Cuda}` with Burn's `fusion` feature.
impl<B: FusionBackend> DiaBackend for Fusion<B> {
    fn samples_on_device() -> bool {
        true
    }
}
