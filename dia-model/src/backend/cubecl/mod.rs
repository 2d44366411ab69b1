//! The CubeCL GPU backends (wgpu, CUDA): the decode step's own kernels, written once in CubeCL
//! so they run on every runtime (Vulkan, Metal, DX12, CUDA): single-query attention, RMSNorm
//! after the residual add, and RoPE, each one launch where Burn's ops take three to six. The
//! other hooks keep Burn's generic ops (fused, autotuned where the application enables it).
//! Tokens are chosen on the device, which spares a host round trip per step. With
//! [`crate::backend::set_custom_kernels`]`(false)` every hook takes Burn's ops.
//!
//! One impl per wrapper covers every runtime and element type: `CubeBackend` launches the
//! kernels, `Fusion` runs them as custom operations of its fused stream ([`fusion`]).

mod attention;
mod fusion;
mod norm;
mod reduce;
mod rope;

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use crate::backend::{DiaBackend, custom_kernels, generic};

/// `CubeBackend<WgpuRuntime | CudaRuntime, ..>`: the unfused backends (`Wgpu`, `Cuda` without
/// Burn's `fusion`) and what `Fusion` wraps.
impl<R, F, I, BT> DiaBackend for CubeBackend<R, F, I, BT>
where
    Self: Backend<FloatTensorPrimitive = CubeTensor<R>, BoolTensorPrimitive = CubeTensor<R>>,
    R: CubeRuntime,
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn attend_one(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        hidden: Option<Tensor<Self, 4, Bool>>,
    ) -> Tensor<Self, 4> {
        if custom_kernels() {
            let out = attention::attend_one(
                float(&q),
                float(&k),
                float(&v),
                hidden.as_ref().map(|m| m.clone().into_primitive()),
                BT::dtype(),
            );
            if let Some(out) = out {
                return from_float(out);
            }
        }
        generic::attend_one(q, k, v, hidden)
    }

    fn rope(x: Tensor<Self, 4>, sin: Tensor<Self, 4>, cos: Tensor<Self, 4>) -> Tensor<Self, 4> {
        if !custom_kernels() {
            return generic::rope(x, sin, cos);
        }
        from_float(rope::rope(float(&x), float(&sin), float(&cos)))
    }

    fn add_rms_norm(
        x: Tensor<Self, 3>,
        delta: Option<Tensor<Self, 3>>,
        weight: Tensor<Self, 1>,
        eps: f64,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        let [batch, seq, dim] = x.dims();
        let rows =
            |t: &Tensor<Self, 3>| into_contiguous(float(&t.clone().reshape([batch * seq, dim])));
        let launched = custom_kernels()
            .then(|| norm::rms_norm(rows(&x), delta.as_ref().map(rows), float(&weight), eps))
            .flatten();
        match launched {
            Some((sum, out)) => {
                let back = |t| from_float::<R, Self, 2>(t).reshape([batch, seq, dim]);
                (back(sum), back(out))
            }
            None => generic::add_rms_norm(x, delta, weight, eps),
        }
    }

    fn samples_on_device() -> bool {
        true
    }
}

/// A float tensor's CubeCL primitive (cloned: Burn's tensors share their buffers).
fn float<B, const D: usize>(x: &Tensor<B, D>) -> B::FloatTensorPrimitive
where
    B: Backend,
{
    x.clone().into_primitive().tensor()
}

/// A kernel's output as a float tensor of the backend.
fn from_float<R, B, const D: usize>(x: CubeTensor<R>) -> Tensor<B, D>
where
    R: CubeRuntime,
    B: Backend<FloatTensorPrimitive = CubeTensor<R>>,
{
    Tensor::from_primitive(TensorPrimitive::Float(x))
}
