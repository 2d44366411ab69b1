//! Single-query attention (a decode step), split along the keys (flash-decoding): one cube per
//! query head and split streams the split's keys and values in chunks of the cube's width with
//! an online softmax, in f32 (eight threads per key's dot product, one per output element for
//! the values), reading q, k, v and the mask through their strides (cache views, head views: no
//! copies). With several splits a second pass joins their partial softmaxes; a short cache is
//! one split and one pass.

use burn::tensor::{DType, Shape};
use burn_cubecl::CubeRuntime;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::reduce::{cube_max, cube_sum};

/// Threads per cube: the chunk of keys scored at once.
const THREADS: u32 = 128;
/// Threads that share one key's dot product.
const LANES: u32 = 8;
/// Stand-in for −∞ (WGSL has no infinite literal); scores are far above it.
const FLOOR: f32 = -3.0e38;
/// Cubes a launch aims at, so a long cache spreads over a GPU's multiprocessors (two per SM of
/// an H100; to be tuned in a GPU sitting): the keys are split until there are this many.
const TARGET_CUBES: usize = 264;

/// `out[b, h, g, :] = softmax(q[b, h, g, :]·k[b, h, j, :]ᵀ over unmasked j) · v[b, h, j, :]`
/// over split `CUBE_POS_Y`'s keys `j`: with `finish` (one split) into `out`, else the split's
/// unnormalised sums, its largest score and its softmax total into `partial`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn attend_one_kernel<F: Float, M: Int>(
    q: &Tensor<F>,             // [b, kv_heads, group, d]
    k: &Tensor<F>,             // [b, kv_heads, len, d]
    v: &Tensor<F>,             // [b, kv_heads, len, d]
    hidden: &Tensor<M>,        // [b, 1, 1, len], nonzero at masked keys (unread without a mask)
    out: &mut Tensor<F>,       // [b, kv_heads, group, d], contiguous
    partial: &mut Tensor<f32>, // [b · kv_heads · group, splits, d + 2] (unwritten with `finish`)
    split_len: usize,
    #[comptime] masked: bool,
    #[comptime] finish: bool,
    #[comptime] max_dim: usize,
    #[define(F, M)] _dtypes: [StorageType; 2],
) {
    let group = q.shape(2);
    let heads = q.shape(1);
    let dim = q.shape(3);
    let begin = CUBE_POS_Y as usize * split_len;
    let mut len = begin + split_len;
    if len > k.shape(2) {
        len = k.shape(2);
    }
    let row = CUBE_POS_X as usize;
    let g = row % group;
    let h = (row / group) % heads;
    let b = row / (group * heads);
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;

    let mut qs = SharedMemory::<f32>::new(max_dim);
    let mut probs = SharedMemory::<f32>::new(THREADS as usize);
    let mut red = SharedMemory::<f32>::new(THREADS as usize);
    load_query::<F>(
        q,
        b * q.stride(0) + h * q.stride(1) + g * q.stride(2),
        &mut qs,
    );

    let k_at = b * k.stride(0) + h * k.stride(1);
    let v_at = b * v.stride(0) + h * v.stride(1);
    let mut best = f32::new(FLOOR);
    let mut total = f32::new(0.0);
    // Thread `t` accumulates output element `t` (the launch keeps `dim` within the cube).
    let mut acc = f32::new(0.0);
    let mut start = begin;
    while start < len {
        let j = start + t;
        let mut valid = j < len;
        if masked && valid {
            valid = !bool::cast_from(hidden[b * hidden.stride(0) + j * hidden.stride(3)]);
        }
        chunk_scores::<F>(k, k_at, start, len, &qs, &mut probs, &mut red);
        let score = select(valid, probs[t], f32::new(FLOOR));
        let chunk_best = cube_max(&mut red, score);
        let new_best = select(chunk_best > best, chunk_best, best);
        let p = select(valid, (score - new_best).exp(), f32::new(0.0));
        probs[t] = p;
        let rescale = (best - new_best).exp();
        let chunk_total = cube_sum(&mut red, p);
        total = total * rescale + chunk_total;
        best = new_best;
        if t < dim {
            acc = acc * rescale + chunk_values::<F>(v, v_at, start, len, &probs);
        }
        sync_cube();
        start += threads;
    }
    write_row::<F>(out, partial, row, acc, best, total, finish);
}

/// `q`'s head at `q_at` (through its strides) into `qs` in f32, for every thread.
#[cube]
fn load_query<F: Float>(q: &Tensor<F>, q_at: usize, qs: &mut SharedMemory<f32>) {
    let mut i = UNIT_POS_X as usize;
    while i < q.shape(3) {
        qs[i] = f32::cast_from(q[q_at + i * q.stride(3)]);
        i += CUBE_DIM_X as usize;
    }
    sync_cube();
}

/// `Σ_jj probs[jj] · v[start + jj, t]` over the chunk's keys before `len`: this thread's output
/// element `t` of the chunk.
#[cube]
fn chunk_values<F: Float>(
    v: &Tensor<F>,
    v_at: usize,
    start: usize,
    len: usize,
    probs: &SharedMemory<f32>,
) -> f32 {
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    let end = select(len - start < threads, len - start, threads);
    let mut sum = f32::new(0.0);
    for jj in 0..end {
        sum += probs[jj] * f32::cast_from(v[v_at + (start + jj) * v.stride(2) + t * v.stride(3)]);
    }
    sum
}

/// Query head `row`'s result: with `finish` its normalised output into `out`, else the split's
/// unnormalised sums, largest score and total into `partial`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn write_row<F: Float>(
    out: &mut Tensor<F>,
    partial: &mut Tensor<f32>,
    row: usize,
    acc: f32,
    best: f32,
    total: f32,
    #[comptime] finish: bool,
) {
    let dim = out.shape(3);
    let t = UNIT_POS_X as usize;
    if finish {
        if t < dim {
            out[row * dim + t] = F::cast_from(acc / total);
        }
    } else {
        let at = (row * partial.shape(1) + CUBE_POS_Y as usize) * (dim + 2);
        if t < dim {
            partial[at + t] = acc;
        }
        if t == 0 {
            partial[at + dim] = best;
            partial[at + dim + 1] = total;
        }
    }
}

/// `out[row, :]` from the splits' `partial` sums of [`attend_one_kernel`]: each split's sums
/// and total rescaled to the largest score of all, summed, and divided. One cube per query
/// head, one thread per output element.
#[cube(launch)]
fn join_splits_kernel<F: Float>(
    partial: &Tensor<f32>, // [rows, splits, d + 2]
    out: &mut Tensor<F>,   // [b, kv_heads, group, d], contiguous
    #[define(F)] _dtype: StorageType,
) {
    let (splits, width) = (partial.shape(1), partial.shape(2));
    let dim = width - 2;
    let (row, t) = (CUBE_POS_X as usize, UNIT_POS_X as usize);
    if t >= dim {
        terminate!();
    }
    let at = row * splits * width;
    let mut best = f32::new(FLOOR);
    for s in 0..splits {
        let split_best = partial[at + s * width + dim];
        best = select(split_best > best, split_best, best);
    }
    let mut total = f32::new(0.0);
    let mut acc = f32::new(0.0);
    for s in 0..splits {
        let split_at = at + s * width;
        let weight = (partial[split_at + dim] - best).exp();
        total += partial[split_at + dim + 1] * weight;
        acc += partial[split_at + t] * weight;
    }
    out[row * dim + t] = F::cast_from(acc / total);
}

/// `scores[jj] = q · k[start + jj]` for the chunk's keys (those from `len` on left as they
/// are): [`LANES`] threads per key, each summing a strided share of the dimensions, so
/// neighbouring threads read neighbouring elements of a key row.
#[cube]
#[allow(clippy::too_many_arguments)]
fn chunk_scores<F: Float>(
    k: &Tensor<F>,
    k_at: usize,
    start: usize,
    len: usize,
    qs: &SharedMemory<f32>,
    scores: &mut SharedMemory<f32>,
    red: &mut SharedMemory<f32>,
) {
    let dim = k.shape(3);
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    let lanes = LANES as usize;
    let (lane, group) = (t % lanes, t / lanes);
    let mut pass = 0;
    while pass < threads {
        let key = pass + group;
        let j = start + key;
        let mut partial = f32::new(0.0);
        if j < len {
            let row_at = k_at + j * k.stride(2);
            let mut i = lane;
            while i < dim {
                partial += qs[i] * f32::cast_from(k[row_at + i * k.stride(3)]);
                i += lanes;
            }
        }
        red[t] = partial;
        sync_cube();
        if lane == 0 {
            let mut sum = f32::new(0.0);
            for l in 0..lanes {
                sum += red[t + l];
            }
            scores[key] = sum;
        }
        sync_cube();
        pass += threads / lanes;
    }
}

/// Launches [`attend_one_kernel`] (`bool_dtype`: the backend's boolean element), and
/// [`join_splits_kernel`] where the keys are split; `None` where a head is wider than the cube
/// (the caller falls back to the generic path).
pub fn attend_one<R: CubeRuntime>(
    q: CubeTensor<R>,
    k: CubeTensor<R>,
    v: CubeTensor<R>,
    hidden: Option<CubeTensor<R>>,
    bool_dtype: DType,
) -> Option<CubeTensor<R>> {
    let [batch, heads, group, dim] = q.meta.shape().dims::<4>();
    if dim > THREADS as usize {
        return None;
    }
    let client = q.client.clone();
    let dtype = q.dtype;
    let empty = |shape, dtype| empty_device_dtype(client.clone(), q.device.clone(), shape, dtype);
    let out = empty(Shape::new([batch, heads, group, dim]), dtype);
    let rows = batch * heads * group;
    let (splits, split_len) = split_keys(heads * group, k.meta.shape()[2]);
    let finish = splits == 1;
    // With one split nothing is written there: the output stands in for the argument.
    let partial = if finish {
        out.clone()
    } else {
        empty(Shape::new([rows, splits, dim + 2]), DType::F32)
    };
    let masked = hidden.is_some();
    // Without a mask the kernel reads no mask: the keys stand in for the argument.
    let hidden = hidden.unwrap_or_else(|| k.clone());
    attend_one_kernel::launch::<R>(
        &client,
        CubeCount::Static(rows as u32, splits as u32, 1),
        CubeDim::new_1d(THREADS),
        q.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        hidden.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        partial.clone().into_tensor_arg(),
        split_len,
        masked,
        finish,
        dim,
        [dtype.into(), bool_dtype.into()],
    );
    if !finish {
        join_splits_kernel::launch::<R>(
            &client,
            CubeCount::Static(rows as u32, 1, 1),
            CubeDim::new_1d(dim as u32),
            partial.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            dtype.into(),
        );
    }
    Some(out)
}

/// How `keys` keys are split for an item's `heads` query heads: `(splits, keys per split)`,
/// whole chunks per split, as many splits as bring one item's launch to [`TARGET_CUBES`]. The
/// split does not depend on the batch, so an item's output does not either.
fn split_keys(heads: usize, keys: usize) -> (usize, usize) {
    let chunks = keys.div_ceil(THREADS as usize).max(1);
    let splits = TARGET_CUBES.div_ceil(heads.max(1)).clamp(1, chunks);
    let split_len = chunks.div_ceil(splits) * THREADS as usize;
    (keys.div_ceil(split_len).max(1), split_len)
}
