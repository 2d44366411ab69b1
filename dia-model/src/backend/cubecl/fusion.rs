//! `Fusion<CubeBackend<..>>` (`burn::backend::{Wgpu, Cuda}` with Burn's `fusion` feature): each
//! kernel hook is one custom operation of the fused stream, which runs the wrapped backend's
//! hook when the stream executes (burn-vision's pattern). Fusion schedules it in order with the
//! fused kernels around it.

use std::marker::PhantomData;

use burn::module::{Param, ParamId};
use burn::tensor::{Bool, DType, Element, Int, Shape, Tensor, TensorPrimitive};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

use super::{chooses_on_kernel, project};
use crate::backend::{Dense, Int8Weight};
use crate::backend::{DiaBackend, TokenRule, custom_kernels, generic};

impl<B: FusionBackend + DiaBackend> DiaBackend for Fusion<B> {
    fn project(x: Tensor<Self, 2>, weight: &Dense<Self>) -> Tensor<Self, 2> {
        // Int8 weights always take the hook: Burn's int8 cast needs an 8-bit type WGSL lacks.
        let [rows, _] = x.dims();
        let kernel = custom_kernels() && rows <= project::MAX_ROWS;
        let out = (Shape::new([rows, weight.dims()[1]]), x.dtype());
        let (inputs, int8) = match weight {
            Dense::Float(w) if kernel => (vec![float(x), float(w.val())], false),
            // Int8 inputs: the rows quantized here, then the int8 product on them.
            Dense::Int8(q) if q.int8_activations => {
                let (x, x_scale) = generic::quantize_rows(x);
                let y = Self::project(x, &Dense::Int8(q.with_float_inputs()));
                return generic::scale_rows(y, x_scale);
            }
            Dense::Int8(q) => {
                let values = q.values.val().into_primitive();
                (vec![float(x), values, float(q.scale.val())], true)
            }
            _ => return generic::project(x, weight),
        };
        let [out] = register::<B, 1>(Hook::Project { int8 }, inputs, [out]);
        from_float(out)
    }

    fn attend_one(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        hidden: Option<Tensor<Self, 4, Bool>>,
    ) -> Tensor<Self, 4> {
        if !custom_kernels() {
            return generic::attend_one(q, k, v, hidden);
        }
        let out = (q.shape(), q.dtype());
        let mut inputs = vec![float(q), float(k), float(v)];
        let masked = hidden.is_some();
        inputs.extend(hidden.map(|m| m.into_primitive()));
        let [out] = register::<B, 1>(Hook::Attend { masked }, inputs, [out]);
        from_float(out)
    }

    fn rope(x: Tensor<Self, 4>, sin: Tensor<Self, 4>, cos: Tensor<Self, 4>) -> Tensor<Self, 4> {
        if !custom_kernels() {
            return generic::rope(x, sin, cos);
        }
        let out = (x.shape(), x.dtype());
        let [out] = register::<B, 1>(Hook::Rope, vec![float(x), float(sin), float(cos)], [out]);
        from_float(out)
    }

    fn rope_cache_write(
        (k_cache, v_cache): (Tensor<Self, 4>, Tensor<Self, 4>),
        start: usize,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        (sin, cos): (Tensor<Self, 4>, Tensor<Self, 4>),
    ) -> (Tensor<Self, 4>, Tensor<Self, 4>) {
        if !custom_kernels() {
            return generic::rope_cache_write((k_cache, v_cache), start, k, v, (sin, cos));
        }
        let outputs = [
            (k_cache.shape(), k_cache.dtype()),
            (v_cache.shape(), v_cache.dtype()),
        ];
        let inputs = [k_cache, v_cache, k, v, sin, cos].map(float).to_vec();
        let [k_cache, v_cache] = register::<B, 2>(Hook::RopeCacheWrite { start }, inputs, outputs);
        (from_float(k_cache), from_float(v_cache))
    }

    fn add_rms_norm(
        x: Tensor<Self, 3>,
        delta: Option<Tensor<Self, 3>>,
        weight: Tensor<Self, 1>,
        eps: f64,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        if !custom_kernels() {
            return generic::add_rms_norm(x, delta, weight, eps);
        }
        let out = (x.shape(), x.dtype());
        match delta {
            Some(delta) => {
                let inputs = vec![float(x), float(delta), float(weight)];
                let [sum, normed] =
                    register::<B, 2>(Hook::AddNorm { eps }, inputs, [out.clone(), out]);
                (from_float(sum), from_float(normed))
            }
            None => {
                let inputs = vec![float(x.clone()), float(weight)];
                let [normed] = register::<B, 1>(Hook::Norm { eps }, inputs, [out]);
                (x, from_float(normed))
            }
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
        let [rows, _, channels, _] = logits.dims();
        let out = (Shape::new([rows / 2, 1, channels, 1]), B::IntElem::dtype());
        let sampled = draws.is_some();
        let mut inputs = vec![float(logits)];
        inputs.extend(draws.map(float));
        let hook = Hook::Choose {
            rule: *rule,
            sampled,
        };
        let [codes] = register::<B, 1>(hook, inputs, [out]);
        Some(Tensor::from_primitive(codes))
    }

    fn samples_on_device() -> bool {
        true
    }
}

/// Which hook a custom operation runs, with its settings.
#[derive(Debug, Clone, Copy)]
enum Hook {
    /// [`DiaBackend::project`]: inputs x and the weight (int8 values and scales with `int8`).
    Project { int8: bool },
    /// [`DiaBackend::attend_one`]: inputs q, k, v (and the mask when `masked`).
    Attend { masked: bool },
    /// [`DiaBackend::rope`]: inputs x, sin, cos.
    Rope,
    /// [`DiaBackend::rope_cache_write`]: inputs the two caches, k, v, sin, cos; outputs the
    /// caches.
    RopeCacheWrite { start: usize },
    /// [`DiaBackend::add_rms_norm`] without a residual: inputs x, weight; output the norm.
    Norm { eps: f64 },
    /// [`DiaBackend::add_rms_norm`]: inputs x, delta, weight; outputs the sum and its norm.
    AddNorm { eps: f64 },
    /// [`DiaBackend::choose_tokens`]: inputs logits (and draws when `sampled`); output the
    /// codes (ints).
    Choose { rule: TokenRule, sampled: bool },
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::Project { .. } => "dia_project",
            Hook::Attend { .. } => "dia_attend_one",
            Hook::Rope => "dia_rope",
            Hook::RopeCacheWrite { .. } => "dia_rope_cache_write",
            Hook::Norm { .. } | Hook::AddNorm { .. } => "dia_rms_norm",
            Hook::Choose { .. } => "dia_choose_tokens",
        }
    }
}

/// A registered hook: the wrapped backend `B` runs it on the stream's handles.
#[derive(Debug)]
struct HookOp<B> {
    desc: CustomOpIr,
    hook: Hook,
    backend: PhantomData<fn() -> B>,
}

impl<B: FusionBackend + DiaBackend> Operation<B::FusionRuntime> for HookOp<B> {
    fn execute(
        &self,
        handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
    ) {
        let inputs = &self.desc.inputs;
        let outputs = &self.desc.outputs;
        let results: Vec<TensorPrimitive<B>> = match self.hook {
            Hook::Project { int8 } => {
                let x = input(handles, &inputs[0]);
                let weight = if int8 {
                    let values = handles.get_int_tensor::<B>(&inputs[1]);
                    Dense::Int8(Int8Weight {
                        values: Param::initialized(ParamId::new(), Tensor::from_primitive(values)),
                        scale: Param::initialized(ParamId::new(), input(handles, &inputs[2])),
                        int8_activations: false,
                    })
                } else {
                    Dense::Float(Param::initialized(
                        ParamId::new(),
                        input(handles, &inputs[1]),
                    ))
                };
                vec![B::project(x, &weight).into_primitive()]
            }
            Hook::Attend { masked } => {
                let (q, k, v) = (
                    input(handles, &inputs[0]),
                    input(handles, &inputs[1]),
                    input(handles, &inputs[2]),
                );
                let hidden = masked.then(|| {
                    Tensor::<B, 4, Bool>::from_primitive(handles.get_bool_tensor::<B>(&inputs[3]))
                });
                let out = B::attend_one(q, k, v, hidden);
                vec![out.into_primitive()]
            }
            Hook::Rope => {
                let (x, sin, cos) = (
                    input(handles, &inputs[0]),
                    input(handles, &inputs[1]),
                    input(handles, &inputs[2]),
                );
                let out = B::rope(x, sin, cos);
                vec![out.into_primitive()]
            }
            Hook::RopeCacheWrite { start } => {
                let caches = (input(handles, &inputs[0]), input(handles, &inputs[1]));
                let (k, v) = (input(handles, &inputs[2]), input(handles, &inputs[3]));
                let tables = (input(handles, &inputs[4]), input(handles, &inputs[5]));
                let (k_cache, v_cache) = B::rope_cache_write(caches, start, k, v, tables);
                vec![k_cache.into_primitive(), v_cache.into_primitive()]
            }
            Hook::Norm { eps } => {
                let (x, weight) = (input(handles, &inputs[0]), input(handles, &inputs[1]));
                let (_, out) = B::add_rms_norm(x, None, weight, eps);
                vec![out.into_primitive()]
            }
            Hook::AddNorm { eps } => {
                let (x, delta, weight) = (
                    input(handles, &inputs[0]),
                    input(handles, &inputs[1]),
                    input(handles, &inputs[2]),
                );
                let (sum, out) = B::add_rms_norm(x, Some(delta), weight, eps);
                vec![sum.into_primitive(), out.into_primitive()]
            }
            Hook::Choose { rule, sampled } => {
                let logits = input(handles, &inputs[0]);
                let draws = sampled.then(|| input(handles, &inputs[1]));
                let codes = B::choose_tokens(logits, draws, &rule)
                    .unwrap_or_else(|| unreachable!("Fusion registers what its backend takes"));
                handles.register_int_tensor::<B>(&outputs[0].id, codes.into_primitive());
                Vec::new()
            }
        };
        for (output, result) in outputs.iter().zip(results) {
            handles.register_float_tensor::<B>(&output.id, result.tensor());
        }
    }
}

/// Input `ir` as a float tensor of the wrapped backend.
fn input<B: FusionBackend, const D: usize>(
    handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
    ir: &TensorIr,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(handles.get_float_tensor::<B>(ir)))
}

/// Registers `hook` on the stream with `inputs` (consumed) and `N` outputs of the given shapes
/// and dtypes; returns the outputs.
fn register<B: FusionBackend + DiaBackend, const N: usize>(
    hook: Hook,
    inputs: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: [(Shape, DType); N],
) -> [FusionTensor<B::FusionRuntime>; N] {
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(&inputs);
    let outputs =
        outputs.map(|(shape, dtype)| TensorIr::uninit(client.create_empty_handle(), shape, dtype));
    let inputs: Vec<TensorIr> = inputs.into_iter().map(FusionTensor::into_ir).collect();
    let desc = CustomOpIr::new(hook.name(), &inputs, &outputs);
    let op = HookOp::<B> {
        desc: desc.clone(),
        hook,
        backend: PhantomData,
    };
    client
        .register(streams, OperationIr::Custom(desc), op)
        .try_into()
        .unwrap_or_else(|_| unreachable!("the operation declares {N} outputs"))
}

/// A float tensor's fusion primitive.
fn float<B: FusionBackend, const D: usize>(
    x: Tensor<Fusion<B>, D>,
) -> FusionTensor<B::FusionRuntime> {
    x.into_primitive().tensor()
}

/// A custom operation's output as a float tensor.
fn from_float<B: FusionBackend, const D: usize>(
    x: FusionTensor<B::FusionRuntime>,
) -> Tensor<Fusion<B>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(x))
}
