//! Flex: few-row projections go to the streaming kernel in [`gemv`], which reads each weight
//! once for all rows at close to memory bandwidth; single-query attention reads the KV cache in
//! place ([`attend_one`]); the cache is written in place. Everything else, and every hook on a
//! CPU without AVX2 or with the custom kernels off, is Burn's own op ([`crate::backend::generic`]).

mod attend_one;
mod elementwise;
mod gemv;
mod many_rows;
mod rope;
mod simd;
mod tensors;

use burn::tensor::{Bool, DType, Tensor};
use burn_flex::Flex;
use half::{bf16, f16};

use self::tensors::{f32_values, flex_tensor, primitive, split_columns, write_rows};
use super::{DiaBackend, generic};
use crate::dense::Dense;

impl DiaBackend for Flex {
    fn project(x: Tensor<Self, 2>, weight: &Dense<Self>) -> Tensor<Self, 2> {
        match few_row_product(&x, weight) {
            Some(y) => {
                let rows = y.y.len() / y.n.max(1);
                flex_tensor(y.y, [rows, y.n], y.dtype)
            }
            None => many_row_product(x, weight),
        }
    }

    fn project_split(
        x: Tensor<Self, 2>,
        weight: &Dense<Self>,
        widths: &[usize],
    ) -> Vec<Tensor<Self, 2>> {
        if let Some(y) = few_row_product(&x, weight) {
            return split_columns(&y.y, y.n, widths, y.dtype);
        }
        // Gemm's output split by row segments: Flex walks a narrowed view element by
        // element, several times slower than these copies.
        let y = many_row_product(x, weight);
        let n = y.dims()[1];
        let dtype = y.dtype();
        let p = primitive(y.clone());
        let parts = match dtype {
            DType::F32 => p
                .as_slice::<f32>()
                .map(|y| split_columns(y, n, widths, dtype)),
            DType::F16 => p
                .as_slice::<f16>()
                .map(|y| split_columns(y, n, widths, dtype)),
            DType::BF16 => p
                .as_slice::<bf16>()
                .map(|y| split_columns(y, n, widths, dtype)),
            _ => None,
        };
        parts.unwrap_or_else(|| generic::narrow_columns(y, widths))
    }

    fn project_heads(
        x: Tensor<Self, 3>,
        weight: &Dense<Self>,
        heads: &[usize],
        head_dim: usize,
    ) -> Vec<Tensor<Self, 4>> {
        generic::project_heads_split(x, weight, heads, head_dim)
    }

    fn attend_one(
        q: Tensor<Self, 4>,
        k: Tensor<Self, 4>,
        v: Tensor<Self, 4>,
        hidden: Option<Tensor<Self, 4, Bool>>,
    ) -> Tensor<Self, 4> {
        let out = simd::available()
            .then(|| attend_one::attend_tensors(&q, &k, &v, hidden.as_ref()))
            .flatten();
        match out {
            Some(out) => flex_tensor(out, q.dims(), q.dtype()),
            None => generic::attend_one(q, k, v, hidden),
        }
    }

    /// One pass in f32 with a vectorized `exp`, instead of Flex's sigmoid (libm per element),
    /// product and second product.
    fn silu_mul<const D: usize>(gate: Tensor<Self, D>, up: Tensor<Self, D>) -> Tensor<Self, D> {
        let (dtype, shape) = (gate.dtype(), gate.dims());
        if up.dims() != shape || !super::custom_kernels() {
            return generic::silu_mul(gate, up);
        }
        let (gate, up) = (f32_values(gate), f32_values(up));
        let mut out = vec![0.0; gate.len()];
        elementwise::silu_mul(&gate, &up, &mut out);
        flex_tensor(out, shape, dtype)
    }

    fn rope(x: Tensor<Self, 4>, sin: Tensor<Self, 4>, cos: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let dims = x.dims();
        let rotated = super::custom_kernels()
            .then(|| {
                let (sin, cos) = (primitive(sin.clone()), primitive(cos.clone()));
                rope::rotate(
                    &primitive(x.clone()),
                    &sin.to_contiguous(),
                    &cos.to_contiguous(),
                )
            })
            .flatten();
        match rotated {
            Some(values) => flex_tensor(values, dims, DType::F32),
            None => generic::rope(x, sin, cos),
        }
    }

    fn cache_write(
        cache: Tensor<Self, 4>,
        start: usize,
        value: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        let mut dst = primitive(cache);
        let src = primitive(value).to_contiguous();
        let written = dst.dtype() == src.dtype()
            && match dst.dtype() {
                DType::F32 => write_rows::<f32>(&mut dst, &src, start),
                DType::F16 => write_rows::<f16>(&mut dst, &src, start),
                DType::BF16 => write_rows::<bf16>(&mut dst, &src, start),
                _ => false,
            };
        let (cache, value) = (tensors::float(dst), tensors::float(src));
        if written {
            cache
        } else {
            // Shared or strided cache: Burn's copy-on-write slice_assign.
            generic::cache_write(cache, start, value)
        }
    }
}

/// `x` · `weight` for many rows (the encoder, a prefill): [`many_rows`] for f32 activations with
/// f32 or int8 weights, Burn's own matmul otherwise.
fn many_row_product(x: Tensor<Flex, 2>, weight: &Dense<Flex>) -> Tensor<Flex, 2> {
    let rows = x.dims()[0];
    match super::custom_kernels()
        .then(|| many_rows_f32(&x, weight))
        .flatten()
    {
        Some((y, n)) => flex_tensor(y, [rows, n], DType::F32),
        None => generic::project(x, weight),
    }
}

/// [`many_rows::matmul`] of contiguous f32 `x` and an f32 or int8 weight, with the output
/// width; `None` for other dtypes and layouts.
fn many_rows_f32(x: &Tensor<Flex, 2>, weight: &Dense<Flex>) -> Option<(Vec<f32>, usize)> {
    let [rows, k] = x.dims();
    let xs = primitive(x.clone());
    let xs = xs.as_slice::<f32>()?;
    match weight {
        Dense::Float(w) => {
            let w = primitive(w.val());
            let n = w.layout().shape().dims::<2>()[1];
            let w = many_rows::Weight::F32(w.as_slice::<f32>()?);
            Some((many_rows::matmul(xs, rows, w, k, n)?, n))
        }
        Dense::Int8(q) => {
            let (values, scale) = (q.values.val().into_primitive(), primitive(q.scale.val()));
            let n = values.layout().shape().dims::<2>()[1];
            let w = many_rows::Weight::Int8 {
                values: values.as_slice::<i8>()?,
                scale: scale.as_slice::<f32>()?,
            };
            Some((many_rows::matmul(xs, rows, w, k, n)?, n))
        }
    }
}

/// A few-row product's f32 output `[rows, n]` and the dtype it is returned in.
struct Product {
    y: Vec<f32>,
    n: usize,
    dtype: DType,
}

/// `x` · `weight` through the streaming kernel when the AVX2 kernels are available, `x` has at
/// most [`gemv::MAX_ROWS`] rows in f32, f16 or bf16 and the weight (f32, f16, bf16 or int8) is
/// stored contiguously; `None` where Burn's gemm is the right tool.
fn few_row_product(x: &Tensor<Flex, 2>, weight: &Dense<Flex>) -> Option<Product> {
    let [rows, _] = x.dims();
    let dtype = x.dtype();
    let float = matches!(dtype, DType::F32 | DType::F16 | DType::BF16);
    if rows > gemv::MAX_ROWS || !float || !simd::available() {
        return None;
    }
    let x_rows = || f32_values(x.clone());
    // A weight stored as a strided view has no slice: gemm reads it in place, no copy per call.
    let (y, n) = match weight {
        Dense::Float(w) => {
            let w = primitive(w.val());
            let [k, n] = w.layout().shape().dims::<2>();
            let y = match w.dtype() {
                DType::F32 => gemv::matmul(&x_rows(), rows, w.as_slice::<f32>()?, k, n),
                DType::F16 => gemv::matmul(&x_rows(), rows, w.as_slice::<f16>()?, k, n),
                DType::BF16 => gemv::matmul(&x_rows(), rows, w.as_slice::<bf16>()?, k, n),
                _ => return None,
            };
            (y, n)
        }
        Dense::Int8(q) => {
            let values = q.values.val().into_primitive();
            let [k, n] = values.layout().shape().dims::<2>();
            if values.dtype() != DType::I8 {
                return None;
            }
            let scale = primitive(q.scale.val());
            let scale = scale.as_slice::<f32>()?;
            let mut y = gemv::matmul(&x_rows(), rows, values.as_slice::<i8>()?, k, n);
            for row in y.chunks_exact_mut(n) {
                row.iter_mut().zip(scale).for_each(|(v, s)| *v *= s);
            }
            (y, n)
        }
    };
    Some(Product { y, n, dtype })
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Bool, DType, Distribution, Tensor, TensorData};
    use burn_flex::Flex;

    use crate::WeightStorage;
    use crate::backend::{DiaBackend, generic};
    use crate::dense::Dense;

    /// Many rows (the encoder's case, past the few-row kernel) times an f32 or int8 weight
    /// give what the generic path gives, up to the order of the sums.
    #[test]
    fn many_rows_equal_the_generic_path() {
        let device = Default::default();
        let weight = Tensor::<Flex, 2>::random([48, 40], Distribution::Default, &device);
        let rows = super::gemv::MAX_ROWS + 9;
        let x = Tensor::<Flex, 2>::random([rows, 48], Distribution::Default, &device);
        for storage in [WeightStorage::Int8, WeightStorage::F32] {
            let weight = Dense::new(weight.clone(), storage);
            let got = Flex::project(x.clone(), &weight);
            let want = generic::project(x.clone(), &weight);
            assert_eq!(got.dims(), [rows, 40]);
            let got = got.into_data().to_vec::<f32>().unwrap();
            let want = want.into_data().to_vec::<f32>().unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{storage:?}: {g} vs {w}"
                );
            }
        }
    }

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
                let want = generic::attend_one(q.clone(), k.clone(), v.clone(), mask);
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
