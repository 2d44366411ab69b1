//! The CubeCL GPU backends (wgpu, CUDA): the decode step's own kernels, written once in CubeCL
//! so they run on every runtime (Vulkan, Metal, DX12, CUDA): single-query attention, RMSNorm
//! after the residual add, RoPE, RoPE with the KV-cache write, and the token choice, each one
//! launch where Burn's ops take two to thirty, and the few-row projections (split-K, every
//! weight format; larger products keep Burn's matmul). Tokens are chosen on the device, which
//! spares a host round trip per step. With
//! [`crate::backend::set_custom_kernels`]`(false)` every hook takes Burn's ops.
//!
//! One impl per wrapper covers every runtime and element type: `CubeBackend` launches the
//! kernels, `Fusion` runs them as custom operations of its fused stream ([`fusion`]).

mod attention;
mod cache;
mod fusion;
#[cfg(feature = "gpu-check")]
pub mod gpu_check;
mod norm;
mod project;
mod reduce;
mod rope;
mod sampling;

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use crate::backend::Dense;
use crate::backend::{DiaBackend, TokenRule, custom_kernels, generic};

/// `CubeBackend<WgpuRuntime | CudaRuntime, ..>`: the unfused backends (`Wgpu`, `Cuda` without
/// Burn's `fusion`) and what `Fusion` wraps.
impl<R, F, I, BT> DiaBackend for CubeBackend<R, F, I, BT>
where
    Self: Backend<
            FloatTensorPrimitive = CubeTensor<R>,
            IntTensorPrimitive = CubeTensor<R>,
            BoolTensorPrimitive = CubeTensor<R>,
        >,
    R: CubeRuntime,
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn project(x: Tensor<Self, 2>, weight: &Dense<Self>) -> Tensor<Self, 2> {
        match weight {
            Dense::Float(w) if custom_kernels() => {
                if let Some(out) = project::project(float(&x), float(&w.val()), None) {
                    return from_float(out);
                }
            }
            // Int8 inputs: the rows quantized here, then the int8 product below on them.
            Dense::Int8(q) if q.int8_activations => {
                let (x, x_scale) = generic::quantize_rows(x);
                let y = Self::project(x, &Dense::Int8(q.with_float_inputs()));
                return generic::scale_rows(y, x_scale);
            }
            Dense::Int8(q) => {
                let (values, scale) = (q.values.val().into_primitive(), q.scale.val());
                if custom_kernels() {
                    let out = project::project(float(&x), values.clone(), Some(float(&scale)));
                    if let Some(out) = out {
                        return from_float(out);
                    }
                }
                // Burn's matmul on the weight unpacked by a kernel: Burn's own int8 cast
                // needs an 8-bit type, which WGSL lacks.
                if let Some(w) = project::dequantize(values, x.dtype()) {
                    return generic::scale_columns(x.matmul(from_float(w)), scale);
                }
            }
            _ => {}
        }
        generic::project(x, weight)
    }

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

    fn rope_cache_write(
        (k_cache, v_cache): (Tensor<Self, 4>, Tensor<Self, 4>),
        start: usize,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        (sin, cos): (Tensor<Self, 4>, Tensor<Self, 4>),
    ) -> (Tensor<Self, 4>, Tensor<Self, 4>) {
        let caches = (
            k_cache.into_primitive().tensor(),
            v_cache.into_primitive().tensor(),
        );
        // In place only where nothing else reads the caches' buffers.
        let writable = caches.0.can_mut() && caches.1.can_mut();
        let same_dtype = caches.0.dtype == k.dtype() && caches.1.dtype == v.dtype();
        let caches = (from_float(caches.0), from_float(caches.1));
        if !(custom_kernels() && writable && same_dtype) {
            return generic::rope_cache_write(caches, start, k, v, (sin, cos));
        }
        let (k_cache, v_cache) = cache::rope_cache_write(
            (float(&caches.0), float(&caches.1)),
            start,
            float(&k),
            float(&v),
            (float(&sin), float(&cos)),
        );
        (from_float(k_cache), from_float(v_cache))
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

    fn choose_tokens(
        logits: Tensor<Self, 4>,
        draws: Option<Tensor<Self, 4>>,
        rule: &TokenRule,
    ) -> Option<Tensor<Self, 4, Int>> {
        if !chooses_on_kernel(&logits) {
            return None;
        }
        let logits = into_contiguous(float(&logits));
        let draws = draws.map(|d| into_contiguous(float(&d.cast(DType::F32))));
        let codes = sampling::choose(logits, draws, rule, I::dtype());
        Some(Tensor::from_primitive(codes))
    }

    fn samples_on_device() -> bool {
        true
    }
}

/// Whether [`DiaBackend::choose_tokens`] takes `logits` to its kernel: custom kernels on, f32
/// logits and a vocabulary that fits the kernel's shared memory.
fn chooses_on_kernel<B: Backend>(logits: &Tensor<B, 4>) -> bool {
    custom_kernels() && logits.dtype() == DType::F32 && logits.dims()[3] <= sampling::MAX_VOCAB
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
