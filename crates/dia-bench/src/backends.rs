//! The backends compiled into this binary, by name, and running generic code on one of them.

use anyhow::{Result, bail};
use dia_model::DiaBackend;

/// Code that runs on any backend.
pub trait OnBackend {
    type Output;
    /// Runs on backend `B` and its default device.
    fn run<B: DiaBackend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Names of the backends compiled in, CPU first.
pub fn compiled() -> Vec<&'static str> {
    let mut names = vec!["flex", "ndarray"];
    if cfg!(feature = "wgpu") {
        names.extend(["wgpu", "wgpu-nofusion"]);
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    names
}

/// Whether the backend runs with Burn's kernel fusion (`None`: the backend has none).
pub fn fusion(name: &str) -> Option<bool> {
    match name {
        "flex" | "ndarray" => None,
        "wgpu-nofusion" => Some(false),
        _ => Some(true),
    }
}

/// Runs `job` on the backend called `name`.
pub fn dispatch<J: OnBackend>(name: &str, job: J) -> Result<J::Output> {
    match name {
        "flex" => job.run::<burn_flex::Flex>(Default::default()),
        "ndarray" => job.run::<burn_ndarray::NdArray<f32>>(Default::default()),
        #[cfg(feature = "wgpu")]
        "wgpu" => job.run::<burn::backend::Wgpu>(Default::default()),
        #[cfg(feature = "wgpu")]
        "wgpu-nofusion" => {
            use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
            job.run::<CubeBackend<WgpuRuntime, f32, i32, u32>>(Default::default())
        }
        #[cfg(feature = "cuda")]
        "cuda" => job.run::<burn::backend::Cuda>(Default::default()),
        other => bail!(
            "backend {other:?} is not compiled into this binary (compiled: {})",
            compiled().join(", ")
        ),
    }
}
