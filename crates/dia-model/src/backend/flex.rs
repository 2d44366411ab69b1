//! Flex: few-row projections go to the streaming kernel in [`super::skinny`], which reads each
//! weight once for all rows at close to memory bandwidth; everything else is Burn's gemm.

use burn::tensor::{Bool, DType, Tensor, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};
use half::{bf16, f16};

use super::elementwise;
use super::single_query::{self, View};
use super::skinny::{self, MAX_ROWS, WeightElem};
use super::{DiaBackend, Weight, burn_attend_one, matmul, narrow_columns};

impl DiaBackend for Flex {
    fn project(x: Tensor<Self, 2>, weight: Weight<Self>) -> Tensor<Self, 2> {
        match skinny_product(&x, &weight) {
            Some(y) => {
                let rows = y.y.len() / y.n.max(1);
                flex_tensor(y.y, [rows, y.n], y.dtype)
            }
            None => matmul(x, weight),
        }
    }

    fn project_split(
        x: Tensor<Self, 2>,
        weight: Weight<Self>,
        widths: &[usize],
    ) -> Vec<Tensor<Self, 2>> {
        if let Some(y) = skinny_product(&x, &weight) {
            return split_columns(&y.y, y.n, widths, y.dtype);
        }
        // Gemm's output split by row segments: Flex walks a narrowed view element by
        // element, several times slower than these copies.
        let y = matmul(x, weight);
        let n = y.dims()[1];
        let dtype = y.dtype();
        let primitive = y.clone().into_primitive().tensor();
        let parts = match dtype {
            DType::F32 => primitive
                .as_slice::<f32>()
                .map(|y| split_columns(y, n, widths, dtype)),
            DType::F16 => primitive
                .as_slice::<f16>()
                .map(|y| split_columns(y, n, widths, dtype)),
            DType::BF16 => primitive
                .as_slice::<bf16>()
                .map(|y| split_columns(y, n, widths, dtype)),
            _ => None,
        };
        parts.unwrap_or_else(|| narrow_columns(y, widths))
    }

    fn attend_one(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        hidden: Option<Tensor<Self, 4, Bool>>,
    ) -> Tensor<Self, 4> {
        let dtype = q.dtype();
        let shape = q.dims();
        // The query is a few hundred values: widened once, contiguous.
        let q32 = q
            .clone()
            .cast(DType::F32)
            .into_primitive()
            .tensor()
            .to_contiguous();
        let (kp, vp) = (
            k.clone().into_primitive().tensor(),
            v.clone().into_primitive().tensor(),
        );
        let mask = hidden.clone().map(|m| {
            m.into_data()
                .into_vec::<bool>()
                .expect("a bool tensor reads as bools")
        });
        let out = match kp.dtype() {
            _ if kp.dtype() != vp.dtype() => None,
            DType::F32 => attend_views::<f32>(&q32, &kp, &vp, mask.as_deref()),
            DType::F16 => attend_views::<f16>(&q32, &kp, &vp, mask.as_deref()),
            DType::BF16 => attend_views::<bf16>(&q32, &kp, &vp, mask.as_deref()),
            _ => None,
        };
        match out {
            Some(out) => flex_tensor(out, shape, dtype),
            None => burn_attend_one(q, k, v, hidden),
        }
    }

    /// One pass in f32 with a vectorized `exp`, instead of Flex's sigmoid (libm per element),
    /// product and second product.
    fn silu_mul<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        let (dtype, shape) = (gate.dtype(), gate.dims());
        if up.dims() != shape {
            return burn::tensor::activation::silu(gate).mul(up);
        }
        let (gate, up) = (f32_values(gate), f32_values(up));
        let mut out = vec![0.0; gate.len()];
        elementwise::silu_mul(&gate, &up, &mut out);
        flex_tensor(out, shape, dtype)
    }

    fn cache_write(
        cache: Tensor<Self, 4>,
        start: usize,
        value: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        let mut dst = cache.into_primitive().tensor();
        let src = value.into_primitive().tensor().to_contiguous();
        let written = dst.dtype() == src.dtype()
            && match dst.dtype() {
                DType::F32 => write_rows::<f32>(&mut dst, &src, start),
                DType::F16 => write_rows::<f16>(&mut dst, &src, start),
                DType::BF16 => write_rows::<bf16>(&mut dst, &src, start),
                _ => false,
            };
        let tensor = |t| Tensor::from_primitive(TensorPrimitive::Float(t));
        if written {
            tensor(dst)
        } else {
            // Shared or strided cache: Burn's copy-on-write slice_assign.
            let [rows, heads, len, dim] = src.layout().shape().dims::<4>();
            tensor(dst).slice_assign([0..rows, 0..heads, start..start + len, 0..dim], tensor(src))
        }
    }
}

/// A skinny product's f32 output `[rows, n]` and the dtype it is returned in.
struct Product {
    y: Vec<f32>,
    n: usize,
    dtype: DType,
}

/// `y` `[rows, n]` (row-major) as one contiguous `[rows, width]` tensor per entry of
/// `widths`, in `dtype`.
fn split_columns<E: burn::tensor::Element>(
    y: &[E],
    n: usize,
    widths: &[usize],
    dtype: DType,
) -> Vec<Tensor<Flex, 2>> {
    let rows = y.len() / n.max(1);
    let mut start = 0;
    widths
        .iter()
        .map(|&width| {
            let mut values = Vec::with_capacity(rows * width);
            for row in y.chunks_exact(n) {
                values.extend_from_slice(&row[start..start + width]);
            }
            start += width;
            flex_tensor(values, [rows, width], dtype)
        })
        .collect()
}

/// A float tensor's values in f32, row-major.
fn f32_values<const D: usize>(x: Tensor<Flex, D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32")
}

/// `values` of `shape` as a Flex tensor in `dtype`.
fn flex_tensor<E: burn::tensor::Element, const D: usize>(
    values: Vec<E>,
    shape: [usize; D],
    dtype: DType,
) -> Tensor<Flex, D> {
    let data = TensorData::new(values, shape).convert_dtype(dtype);
    Tensor::from_primitive(TensorPrimitive::Float(FlexTensor::from_data(data)))
}

/// `x` · `weight` through the streaming kernel when `x` has few rows, `x` is f32, f16 or bf16
/// and the weight is f32, f16, bf16 or int8, stored contiguously; `None` where Burn's gemm is
/// the right tool.
fn skinny_product(x: &Tensor<Flex, 2>, weight: &Weight<Flex>) -> Option<Product> {
    let [rows, _] = x.dims();
    let dtype = x.dtype();
    let float = |d: DType| matches!(d, DType::F32 | DType::F16 | DType::BF16);
    if rows > MAX_ROWS || !float(dtype) {
        return None;
    }
    let x_rows = || f32_values(x.clone());
    // A weight stored as a strided view has no slice: gemm reads it in place, no copy per call.
    let y = match weight {
        Weight::Float(w) => {
            let w = w.clone().into_primitive().tensor();
            let [k, n] = w.layout().shape().dims::<2>();
            let y = match w.dtype() {
                DType::F32 => skinny::matmul(&x_rows(), rows, w.as_slice::<f32>()?, k, n),
                DType::F16 => skinny::matmul(&x_rows(), rows, w.as_slice::<f16>()?, k, n),
                DType::BF16 => skinny::matmul(&x_rows(), rows, w.as_slice::<bf16>()?, k, n),
                _ => return None,
            };
            (y, n)
        }
        Weight::Int8 { values, scale } => {
            let q = values.clone().into_primitive();
            let [k, n] = q.layout().shape().dims::<2>();
            if q.dtype() != DType::I8 {
                return None;
            }
            let scale = scale.clone().into_primitive().tensor();
            let scale = scale.as_slice::<f32>()?;
            let mut y = skinny::matmul(&x_rows(), rows, q.as_slice::<i8>()?, k, n);
            for row in y.chunks_exact_mut(n) {
                row.iter_mut().zip(scale).for_each(|(v, s)| *v *= s);
            }
            (y, n)
        }
    };
    Some(Product {
        y: y.0,
        n: y.1,
        dtype,
    })
}

/// [`single_query::attend`] over Flex tensors with keys and values in `E`; `None` when a
/// last axis is not contiguous.
fn attend_views<E: burn::tensor::Element + bytemuck::Pod + WeightElem>(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    hidden: Option<&[bool]>,
) -> Option<Vec<f32>> {
    fn view<T: burn::tensor::Element + bytemuck::Pod>(t: &FlexTensor) -> Option<View<'_, T>> {
        let layout = t.layout();
        let strides = layout.strides();
        if strides[3] != 1 {
            return None;
        }
        Some(View {
            data: t.storage::<T>(),
            offset: layout.start_offset(),
            strides: [strides[0], strides[1], strides[2]],
            shape: layout.shape().dims::<4>(),
        })
    }
    Some(single_query::attend(
        &view::<f32>(q)?,
        &view::<E>(k)?,
        &view::<E>(v)?,
        hidden,
    ))
}

/// Copies `src` `[rows, heads, len, d]` into `dst` `[rows, heads, max_len, d]` at `start..`
/// in place. Flex's own slice_assign copies the whole cache first (it keeps a second handle
/// on the buffer), which costs more per step than the attention itself. False if `dst` is
/// shared, strided or too short.
fn write_rows<E: burn::tensor::Element + bytemuck::Pod>(
    dst: &mut FlexTensor,
    src: &FlexTensor,
    start: usize,
) -> bool {
    let [rows, heads, max_len, dim] = dst.layout().shape().dims::<4>();
    let [src_rows, src_heads, len, src_dim] = src.layout().shape().dims::<4>();
    let full = dst.layout().num_elements() * std::mem::size_of::<E>();
    if [src_rows, src_heads, src_dim] != [rows, heads, dim]
        || start + len > max_len
        || !dst.is_contiguous()
        || dst.layout().start_offset() != 0
        || dst.bytes().len() != full
    {
        return false;
    }
    let Some(src) = src.as_slice::<E>() else {
        return false;
    };
    let Some(out) = dst.try_storage_mut::<E>() else {
        return false;
    };
    let run = len * dim;
    for (rh, chunk) in src.chunks_exact(run).enumerate() {
        out[(rh * max_len + start) * dim..][..run].copy_from_slice(chunk);
    }
    true
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Bool, DType, Distribution, Tensor, TensorData};
    use burn_flex::Flex;

    use crate::backend::{DiaBackend, burn_attend_one};

    /// The single-query kernel equals Burn's attention on a narrowed cache view (grouped heads,
    /// padding mask) for f32, f16 and bf16 keys and values.
    #[test]
    fn attend_one_equals_burn_attention_on_cache_views() {
        let device = Default::default();
        let q = Tensor::<Flex, 4>::random([2, 4, 3, 16], Distribution::Default, &device);
        let cache = |_| Tensor::<Flex, 4>::random([2, 4, 40, 16], Distribution::Default, &device);
        let (k, v) = (cache(0).narrow(2, 0, 23), cache(1).narrow(2, 0, 23));
        let mut hidden = vec![false; 2 * 23];
        hidden[23 + 20..].fill(true);
        let mask =
            Tensor::<Flex, 4, Bool>::from_data(TensorData::new(hidden, [2, 1, 1, 23]), &device);
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let (q, k, v) = (
                q.clone().cast(dtype),
                k.clone().cast(dtype),
                v.clone().cast(dtype),
            );
            for mask in [None, Some(mask.clone())] {
                let got = Flex::attend_one(q.clone(), k.clone(), v.clone(), mask.clone());
                let want = burn_attend_one(q.clone(), k.clone(), v.clone(), mask);
                let tol = if dtype == DType::F32 { 1e-5 } else { 1e-2 };
                got.cast(DType::F32).into_data().assert_approx_eq::<f32>(
                    &want.cast(DType::F32).into_data(),
                    burn::tensor::Tolerance::absolute(tol),
                );
            }
        }
    }

    /// In place when the cache is unique, copy-on-write when another handle shares it: both
    /// equal Burn's slice_assign, and the other handle never sees the write.
    #[test]
    fn cache_write_equals_slice_assign_and_respects_sharing() {
        let device = Default::default();
        let cache = Tensor::<Flex, 4>::random([2, 3, 8, 4], Distribution::Default, &device);
        let value = Tensor::<Flex, 4>::random([2, 3, 2, 4], Distribution::Default, &device);
        let want = cache
            .clone()
            .slice_assign([0..2, 0..3, 5..7, 0..4], value.clone())
            .into_data();
        let before = cache.clone().into_data();
        let shared = cache.clone();
        let written = Flex::cache_write(cache, 5, value.clone());
        written.into_data().assert_eq(&want, true);
        shared.clone().into_data().assert_eq(&before, true);
        let unique = Tensor::<Flex, 4>::from_data(before, &device);
        Flex::cache_write(unique, 5, value)
            .into_data()
            .assert_eq(&want, true);
    }
}
