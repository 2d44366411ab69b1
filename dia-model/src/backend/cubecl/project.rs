//! The decode step's projections: `x` `[rows, in]` (1 to 8 rows) · `weight` `[in, out]` in the
//! model's layout, stored as f32, f16, bf16 or int8 with per-column scales. A general GEMM tiles
//! both sides and leaves most of a GPU idle at two rows; here every weight is read once for all
//! rows, each thread a vector of adjacent columns (so a warp reads whole rows of the weight, and
//! the loads are vectorized), the input dimension split across cubes (split-K) so even a narrow
//! projection fills the GPU. Sums are f32; a second pass adds the splits' partial sums, scales
//! int8 columns and casts to `x`'s dtype (one pass when the input is not split).

use burn::tensor::{DType, Shape};
use burn_cubecl::CubeRuntime;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// Most rows one launch takes (four CFG pairs: batched serving's slots).
pub const MAX_ROWS: usize = 8;
/// Threads per cube of the product, each a vector of columns.
const THREADS: usize = 128;
/// Threads per cube of the partial sums' pass.
const SUM_THREADS: usize = 256;
/// Threads a launch aims at, so that enough loads are in flight to keep a GPU's memory busy
/// (about 500 per streaming multiprocessor of an H100; to be tuned in a GPU sitting).
const TARGET_THREADS: usize = 1 << 16;
/// Fewest input rows per split, so the partial sums' traffic stays small beside the weight's.
const MIN_SPLIT: usize = 64;
/// Most columns per vector (a 16-byte load of f32; WGSL's widest vector).
const MAX_VECTOR: usize = 4;

/// One split of the input dimension for `rows` rows: `out[split, r, c] = Σ_k x[r, k] · w[k, c]`
/// over the split's `k`, in f32 (`[splits, rows, out]`); with one split, `[rows, out]` in `x`'s
/// dtype, times the column's `scale` with `scaled`. `x` and `w` contiguous.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn project_kernel<X: Float, W: Numeric, O: Float, N: Size>(
    x: &Tensor<X>,
    w: &Tensor<Vector<W, N>>,
    scale: &Tensor<Vector<f32, N>>,
    out: &mut Tensor<Vector<O, N>>,
    split_len: usize,
    #[comptime] rows: usize,
    #[comptime] scaled: bool,
    #[define(X, W, O)] _dtypes: [StorageType; 3],
) {
    let width = w.shape(1) / w.vector_size();
    let col = column(width);
    let (begin, end) = split(x.shape(1), split_len);
    let mut sums = zeros::<N>(rows);
    for k in begin..end {
        let wk = Vector::<f32, N>::cast_from(w[k * width + col]);
        add_row::<X, N>(&mut sums, x, k, wk, rows);
    }
    write_sums::<O, N>(&sums, scale, out, col, width, rows, scaled);
}

/// [`project_kernel`] for int8 weights read as packed words (`w` `[in, out / 4]`, four
/// little-endian int8 per u32, which every runtime loads: WGSL has no 8-bit type); vectors of
/// four columns.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn project_int8_kernel<X: Float, O: Float, N: Size>(
    x: &Tensor<X>,
    w: &Tensor<u32>,
    scale: &Tensor<Vector<f32, N>>,
    out: &mut Tensor<Vector<O, N>>,
    split_len: usize,
    #[comptime] rows: usize,
    #[comptime] scaled: bool,
    #[define(X, O)] _dtypes: [StorageType; 2],
) {
    let width = w.shape(1);
    let col = column(width);
    let (begin, end) = split(x.shape(1), split_len);
    let mut sums = zeros::<N>(rows);
    for k in begin..end {
        let wk = unpack_int8::<N>(w[k * width + col]);
        add_row::<X, N>(&mut sums, x, k, wk, rows);
    }
    write_sums::<O, N>(&sums, scale, out, col, width, rows, scaled);
}

/// `w` `[in, out / 4]` packed int8 words → `out` `[in, out]` in `O`, unscaled: the weight for
/// Burn's matmul where a product has more rows than the kernels take.
#[cube(launch)]
fn dequantize_kernel<O: Float, N: Size>(
    w: &Tensor<u32>,
    out: &mut Tensor<Vector<O, N>>,
    #[define(O)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= w.len() {
        terminate!();
    }
    out[ABSOLUTE_POS] = Vector::cast_from(unpack_int8::<N>(w[ABSOLUTE_POS]));
}

/// This thread's vector of columns; threads past the last stop.
#[cube]
fn column(width: usize) -> usize {
    let col = CUBE_POS_X as usize * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    if col >= width {
        terminate!();
    }
    col
}

/// This cube's split `begin..end` of the input dimension `d_in`.
#[cube]
fn split(d_in: usize, split_len: usize) -> (usize, usize) {
    let begin = CUBE_POS_Y as usize * split_len;
    let mut end = begin + split_len;
    if end > d_in {
        end = d_in;
    }
    (begin, end)
}

/// One f32 vector of sums per row, zeroed.
#[cube]
fn zeros<N: Size>(#[comptime] rows: usize) -> Array<Vector<f32, N>> {
    let mut sums = Array::<Vector<f32, N>>::new(rows);
    #[unroll]
    for r in 0..rows {
        sums[r] = Vector::new(f32::new(0.0));
    }
    sums
}

/// `sums[r] += x[r, k] · wk` for every row.
#[cube]
fn add_row<X: Float, N: Size>(
    sums: &mut Array<Vector<f32, N>>,
    x: &Tensor<X>,
    k: usize,
    wk: Vector<f32, N>,
    #[comptime] rows: usize,
) {
    let d_in = x.shape(1);
    #[unroll]
    for r in 0..rows {
        sums[r] += wk * Vector::new(f32::cast_from(x[r * d_in + k]));
    }
}

/// Writes each row's sums at `col` of this split's rows of `out` (`[splits · rows, width]`
/// vectors), scaled by the column's `scale` with `scaled`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn write_sums<O: Float, N: Size>(
    sums: &Array<Vector<f32, N>>,
    scale: &Tensor<Vector<f32, N>>,
    out: &mut Tensor<Vector<O, N>>,
    col: usize,
    width: usize,
    #[comptime] rows: usize,
    #[comptime] scaled: bool,
) {
    let at = CUBE_POS_Y as usize * rows;
    #[unroll]
    for r in 0..rows {
        let mut sum = sums[r];
        if scaled {
            sum *= scale[col];
        }
        out[(at + r) * width + col] = Vector::cast_from(sum);
    }
}

/// Four little-endian int8 of `word` as f32 (a vector of four).
#[cube]
fn unpack_int8<N: Size>(word: u32) -> Vector<f32, N> {
    let mut values = Vector::<f32, N>::empty();
    #[unroll]
    for j in 0..4u32 {
        let byte = (word >> (8 * j)) & 255;
        let value = f32::cast_from(byte);
        values[j as usize] = select(byte >= 128, value - 256.0, value);
    }
    values
}

/// `out[r, c] = Σ_split partial[split, r, c]` (times the column's `scale` with `scaled`) in `O`.
#[cube(launch)]
fn sum_splits_kernel<O: Float, N: Size>(
    partial: &Tensor<Vector<f32, N>>,
    scale: &Tensor<Vector<f32, N>>,
    out: &mut Tensor<Vector<O, N>>,
    #[comptime] scaled: bool,
    #[define(O)] _dtype: StorageType,
) {
    let i = ABSOLUTE_POS;
    let count = out.len();
    if i >= count {
        terminate!();
    }
    let width = out.shape(1) / out.vector_size();
    let splits = partial.shape(0);
    let mut sum = Vector::<f32, N>::new(f32::new(0.0));
    for s in 0..splits {
        sum += partial[s * count + i];
    }
    if scaled {
        sum *= scale[i % width];
    }
    out[i] = Vector::cast_from(sum);
}

/// How a product is laid out on the GPU: columns per vector, cubes across the columns, and
/// the input dimension's splits.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    vector: usize,
    column_cubes: usize,
    split_len: usize,
    splits: usize,
}

impl Plan {
    /// The widest vector that divides `d_out` and the runtime loads (`vectors`), and as many
    /// splits of `d_in` as bring the launch to [`TARGET_THREADS`], each at least [`MIN_SPLIT`]
    /// long. The full model's output projection (2048 × 2048, f32): vectors of 4 in 4 cubes,
    /// 32 splits of 64; its gate/up (2048 × 16384): 32 cubes, 16 splits of 128.
    fn new(d_in: usize, d_out: usize, vectors: impl Iterator<Item = usize>) -> Self {
        let vector = vectors
            .filter(|&v| v <= MAX_VECTOR && d_out.is_multiple_of(v))
            .max()
            .unwrap_or(1);
        let column_cubes = (d_out / vector).div_ceil(THREADS);
        let wanted = TARGET_THREADS.div_ceil(column_cubes * THREADS);
        let most = (d_in / MIN_SPLIT).max(1);
        let split_len = d_in.div_ceil(wanted.clamp(1, most)).max(1);
        Self {
            vector,
            column_cubes,
            split_len,
            splits: d_in.div_ceil(split_len),
        }
    }
}

/// `x` `[rows, in]` · `weight` `[in, out]` (int8 with `scale` `[out]`, else a float dtype)
/// into `x`'s dtype; `None` past [`MAX_ROWS`] rows, or for int8 columns not in fours (the caller
/// takes Burn's matmul).
pub fn project<R: CubeRuntime>(
    x: CubeTensor<R>,
    weight: CubeTensor<R>,
    scale: Option<CubeTensor<R>>,
) -> Option<CubeTensor<R>> {
    let [rows, d_in] = x.meta.shape().dims::<2>();
    let [_, d_out] = weight.meta.shape().dims::<2>();
    let int8 = scale.is_some();
    if rows == 0 || rows > MAX_ROWS || (int8 && !takes_int8(&weight)) {
        return None;
    }
    let (x, weight) = (into_contiguous(x), into_contiguous(weight));
    let client = x.client.clone();
    let plan = if int8 {
        Plan::new(d_in, d_out, [4].into_iter())
    } else {
        let vectors = client
            .io_optimized_vector_sizes(weight.dtype.size())
            .filter(|&v| client.io_optimized_vector_sizes(4).any(|f| f == v));
        Plan::new(d_in, d_out, vectors)
    };
    let empty = |shape, dtype| empty_device_dtype(client.clone(), x.device.clone(), shape, dtype);
    let out = empty(Shape::new([rows, d_out]), x.dtype);
    let partial = if plan.splits == 1 {
        out.clone()
    } else {
        empty(Shape::new([plan.splits, rows, d_out]), DType::F32)
    };
    // Without int8 scales nothing reads them: the output stands in for the argument.
    let scale = scale.unwrap_or_else(|| partial.clone());
    launch_product(&plan, x, weight, scale.clone(), partial.clone(), int8);
    if plan.splits > 1 {
        sum_splits(partial, scale, out.clone(), plan.vector, int8);
    }
    Some(out)
}

/// Launches [`project_kernel`] (or [`project_int8_kernel`] with `int8`) by `plan` into
/// `partial` (the output itself with one split, which then applies the int8 scales).
fn launch_product<R: CubeRuntime>(
    plan: &Plan,
    x: CubeTensor<R>,
    weight: CubeTensor<R>,
    scale: CubeTensor<R>,
    partial: CubeTensor<R>,
    int8: bool,
) {
    let client = x.client.clone();
    let rows = x.meta.shape()[0];
    let count = CubeCount::Static(plan.column_cubes as u32, plan.splits as u32, 1);
    let dim = CubeDim::new_1d(THREADS as u32);
    let scaled_here = int8 && plan.splits == 1;
    let (x_dtype, partial_dtype) = (x.dtype.into(), partial.dtype.into());
    let (x, scale, partial) = (
        x.into_tensor_arg(),
        scale.into_tensor_arg(),
        partial.into_tensor_arg(),
    );
    if int8 {
        let words = words(&weight).into_tensor_arg();
        project_int8_kernel::launch::<R>(
            &client,
            count,
            dim,
            plan.vector,
            x,
            words,
            scale,
            partial,
            plan.split_len,
            rows,
            scaled_here,
            [x_dtype, partial_dtype],
        );
    } else {
        let w_dtype = weight.dtype.into();
        project_kernel::launch::<R>(
            &client,
            count,
            dim,
            plan.vector,
            x,
            weight.into_tensor_arg(),
            scale,
            partial,
            plan.split_len,
            rows,
            scaled_here,
            [x_dtype, w_dtype, partial_dtype],
        );
    }
}

/// Launches [`sum_splits_kernel`] from `partial` into `out` (`[rows, out]`).
fn sum_splits<R: CubeRuntime>(
    partial: CubeTensor<R>,
    scale: CubeTensor<R>,
    out: CubeTensor<R>,
    vector: usize,
    scaled: bool,
) {
    let cubes = (out.meta.num_elements() / vector).div_ceil(SUM_THREADS);
    sum_splits_kernel::launch::<R>(
        &out.client.clone(),
        CubeCount::Static(cubes as u32, 1, 1),
        CubeDim::new_1d(SUM_THREADS as u32),
        vector,
        partial.into_tensor_arg(),
        scale.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        scaled,
        out.dtype.into(),
    );
}

/// Int8 `values` `[in, out]` as `dtype` (unscaled); `None` for columns not in fours.
pub fn dequantize<R: CubeRuntime>(values: CubeTensor<R>, dtype: DType) -> Option<CubeTensor<R>> {
    if !takes_int8(&values) {
        return None;
    }
    let values = into_contiguous(values);
    let out = empty_device_dtype(
        values.client.clone(),
        values.device.clone(),
        values.meta.shape().clone(),
        dtype,
    );
    let words = words(&values);
    let cubes = words.meta.num_elements().div_ceil(SUM_THREADS);
    dequantize_kernel::launch::<R>(
        &values.client,
        CubeCount::Static(cubes as u32, 1, 1),
        CubeDim::new_1d(SUM_THREADS as u32),
        4,
        words.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        dtype.into(),
    );
    Some(out)
}

/// Whether the int8 kernels read `values`: columns in fours (whole words) and f32 vectors of
/// four on the runtime.
fn takes_int8<R: CubeRuntime>(values: &CubeTensor<R>) -> bool {
    let [_, d_out] = values.meta.shape().dims::<2>();
    d_out.is_multiple_of(4) && values.client.io_optimized_vector_sizes(4).any(|v| v == 4)
}

/// Contiguous int8 `values` `[in, out]` viewed as `[in, out / 4]` u32 words (the same buffer).
fn words<R: CubeRuntime>(values: &CubeTensor<R>) -> CubeTensor<R> {
    let [d_in, d_out] = values.meta.shape().dims::<2>();
    CubeTensor::new_contiguous(
        values.client.clone(),
        values.device.clone(),
        Shape::new([d_in, d_out / 4]),
        values.handle.clone(),
        DType::U32,
    )
}
