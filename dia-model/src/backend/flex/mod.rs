//! Flex: weights are laid out in column tiles at load ([`Tiles`]) and few-row
//! projections go to the streaming kernel (`gemv.rs`), which reads each weight once for all rows
//! at close to memory bandwidth, up to 16 rows; int8 weights with int8 inputs (`w8a8`) go to
//! the integer kernel (`int8_dot.rs`, exact sums) at every row count; single-query attention reads the KV cache in
//! place (`attend_one.rs`); the cache is written in place. Everything else, and every hook on a
//! CPU without AVX2 or with the custom kernels off, is Burn's own op ([`crate::backend::generic`]);
//! only the tiles are always read by Flex's own code, as Burn's matmul takes `[in, out]`.

mod attend_one;
mod elementwise;
mod gemv;
mod int8_dot;
mod layout;
mod many_rows;
mod rope;
mod simd;
mod stored;
mod tensors;

use burn::tensor::{Bool, DType, Tensor};
use burn_flex::Flex;
use half::{bf16, f16};

pub use self::int8_dot::{QUAD, kernel_name as int8_kernel, padded_rows};
pub use self::layout::{TILE, TILE_SPAN, TILE_STREAMS, Tiles, tile_offset};

/// The kernels Flex's hooks run on this CPU, for reports: `avx512` or `avx2` (dia-model's own),
/// or `generic` (Burn's own ops: another CPU architecture, or the custom kernels off).
pub fn kernel_path() -> &'static str {
    if !simd::available() {
        return "generic";
    }
    #[cfg(target_arch = "x86_64")]
    if simd::detected_avx512() {
        return "avx512";
    }
    "avx2"
}
use self::stored::{Stored, Values};
use self::tensors::{f32_values, flex_tensor, primitive, split_columns, write_rows};
use super::{DiaBackend, generic};
use crate::backend::Dense;

impl DiaBackend for Flex {
    /// Column tiles ([`Tiles`]) when the AVX2 kernels run: the few-row kernel then reads each
    /// tile as contiguous streams into sums held in registers.
    fn arrange(weight: Dense<Self>) -> Dense<Self> {
        match simd::available() {
            true => Tiles::tile(weight),
            false => weight,
        }
    }

    fn reads_tiles() -> bool {
        simd::available()
    }

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
        parts.unwrap_or_else(|| crate::shape::narrow_columns(y, widths))
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

/// `x` · `weight` for many rows (the encoder, a prefill): [`many_rows`] for float activations
/// with any stored weight; Burn's own matmul with the custom kernels off, except on column
/// tiles, which only [`many_rows`] reads (weights tiled at load stay tiled when the kernels
/// are switched off later: no copy back to `[in, out]` per call).
fn many_row_product(x: Tensor<Flex, 2>, weight: &Dense<Flex>) -> Tensor<Flex, 2> {
    let [rows, _] = x.dims();
    let dtype = x.dtype();
    let float = matches!(dtype, DType::F32 | DType::F16 | DType::BF16);
    let tiled = matches!(weight, Dense::Tiled(_));
    let product = ((super::custom_kernels() || tiled) && float)
        .then(|| product(&f32_values(x.clone()), rows, weight, Rows::Many))
        .flatten();
    match product {
        Some((y, n)) => flex_tensor(y, [rows, n], dtype),
        None => generic::project(x, weight),
    }
}

/// Which kernel [`product`] runs: [`gemv`] (a tiled weight only) or [`many_rows`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    Few,
    Many,
}

/// `x` `[rows, in]` (f32) · `weight` → `[rows, out]` f32 and `out`, by `rows`' kernel; `None`
/// where it does not take this weight.
fn product(
    x: &[f32],
    rows: usize,
    weight: &Dense<Flex>,
    kernel: Rows,
) -> Option<(Vec<f32>, usize)> {
    let stored = Stored::of(weight);
    let y = match stored.values()? {
        Values::F32(w) => run(kernel, x, rows, w, &stored, None)?,
        Values::F16(w) => run(kernel, x, rows, w, &stored, None)?,
        Values::Bf16(w) => run(kernel, x, rows, w, &stored, None)?,
        Values::Int8 { values, scale } => run(kernel, x, rows, values, &stored, Some(scale))?,
        // Exact integer sums at any row count: a row's outputs never depend on its batch.
        Values::W8a8 { values, scale } => {
            let [k, n] = stored.dims;
            int8_dot::matmul(x, rows, values, scale, k, n)
        }
    };
    Some((y, stored.dims[1]))
}

/// [`product`] on the weight's values of type `W`, with an int8 weight's column `scale`.
fn run<W: simd::Widen>(
    kernel: Rows,
    x: &[f32],
    rows: usize,
    w: &[W],
    stored: &Stored,
    scale: Option<&[f32]>,
) -> Option<Vec<f32>> {
    let [k, n] = stored.dims;
    if kernel == Rows::Many {
        let tiled = stored.tiled;
        let weight = many_rows::Weight {
            values: w,
            scale,
            tiled,
        };
        return many_rows::matmul(x, rows, weight, k, n);
    }
    let mut y = stored.tiled.then(|| gemv::matmul(x, rows, w, k, n))?;
    if let Some(scale) = scale {
        for row in y.chunks_exact_mut(n) {
            row.iter_mut().zip(scale).for_each(|(v, s)| *v *= s);
        }
    }
    Some(y)
}

/// A few-row product's f32 output `[rows, n]` and the dtype it is returned in.
struct Product {
    y: Vec<f32>,
    n: usize,
    dtype: DType,
}

/// `x` · `weight` through the streaming kernel when the AVX2 kernels are available, `x` has at
/// most [`gemv::MAX_ROWS`] rows in f32, f16 or bf16 and the weight is in column tiles
/// ([`Flex::arrange`]); `None` where Burn's gemm is the right tool.
fn few_row_product(x: &Tensor<Flex, 2>, weight: &Dense<Flex>) -> Option<Product> {
    let [rows, _] = x.dims();
    let dtype = x.dtype();
    let float = matches!(dtype, DType::F32 | DType::F16 | DType::BF16);
    if rows > gemv::MAX_ROWS || !float || !simd::available() || !matches!(weight, Dense::Tiled(_)) {
        return None;
    }
    let (y, n) = product(&f32_values(x.clone()), rows, weight, Rows::Few)?;
    Some(Product { y, n, dtype })
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Bool, DType, Distribution, Tensor, TensorData};
    use burn_flex::Flex;

    use crate::backend::{Dense, DiaBackend, generic};
    use crate::config::WeightStorage;

    /// Few rows (the decode kernel) and many (the encoder's case) times a weight in every
    /// storage, tiled at load where the AVX2 kernels run, give what the generic path gives on
    /// the plain weight, up to the order of the sums; untiling gives the plain weight back.
    #[test]
    fn arranged_weights_give_the_plain_weights_product() {
        let device = Default::default();
        let weight = Tensor::<Flex, 2>::random([48, 40], Distribution::Default, &device);
        let storages = [
            WeightStorage::Int8,
            WeightStorage::W8A8,
            WeightStorage::F32,
            WeightStorage::BF16,
        ];
        for (rows, storage) in [3, super::gemv::MAX_ROWS + 9]
            .into_iter()
            .flat_map(|rows| storages.map(|s| (rows, s)))
        {
            let x = Tensor::<Flex, 2>::random([rows, 48], Distribution::Default, &device);
            let plain = Dense::plain(weight.clone(), storage);
            let arranged = Dense::new(weight.clone(), storage);
            let tiled = matches!(arranged, Dense::Tiled(_));
            assert_eq!(
                tiled,
                super::simd::available(),
                "{storage:?}: tiled at load"
            );
            assert_eq!(arranged.dims(), [48, 40]);
            let values = |d: Dense<Flex>| match d.untiled() {
                Dense::Float(w) => w.val().cast(DType::F32).into_data(),
                Dense::Int8(q) => q.values.val().float().into_data(),
                Dense::Tiled(_) => unreachable!("untiled"),
            };
            values(arranged.clone()).assert_eq(&values(plain.clone()), true);
            let got = Flex::project(x.clone(), &arranged).cast(DType::F32);
            let want = generic::project(x.clone(), &plain).cast(DType::F32);
            assert_eq!(got.dims(), [rows, 40]);
            let got = got.into_data().to_vec::<f32>().unwrap();
            let want = want.into_data().to_vec::<f32>().unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{storage:?}, {rows} rows: {g} vs {w}"
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
