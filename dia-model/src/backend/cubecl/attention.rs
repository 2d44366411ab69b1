//! Single-query attention (a decode step) in one kernel: one cube per query head streams its
//! KV head's keys and values in chunks of the cube's width with an online softmax, in f32
//! (eight threads per key's dot product, one per output element for the values),
//! reading q, k, v and the mask through their strides (cache views, head views: no copies).

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

/// `out[b, h, g, :] = softmax(q[b, h, g, :]·k[b, h, j, :]ᵀ over unmasked j) · v[b, h, j, :]`.
#[cube(launch)]
fn attend_one_kernel<F: Float, M: Int>(
    q: &Tensor<F>,       // [b, kv_heads, group, d]
    k: &Tensor<F>,       // [b, kv_heads, len, d]
    v: &Tensor<F>,       // [b, kv_heads, len, d]
    hidden: &Tensor<M>,  // [b, 1, 1, len], nonzero at masked keys (unread without a mask)
    out: &mut Tensor<F>, // [b, kv_heads, group, d], contiguous
    #[comptime] masked: bool,
    #[comptime] max_dim: usize,
    #[define(F, M)] _dtypes: [StorageType; 2],
) {
    let group = q.shape(2);
    let heads = q.shape(1);
    let dim = q.shape(3);
    let len = k.shape(2);
    let row = CUBE_POS_X as usize;
    let g = row % group;
    let h = (row / group) % heads;
    let b = row / (group * heads);
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;

    let mut qs = SharedMemory::<f32>::new(max_dim);
    let mut probs = SharedMemory::<f32>::new(THREADS as usize);
    let mut red = SharedMemory::<f32>::new(THREADS as usize);
    let q_at = b * q.stride(0) + h * q.stride(1) + g * q.stride(2);
    let mut i = t;
    while i < dim {
        qs[i] = f32::cast_from(q[q_at + i * q.stride(3)]);
        i += threads;
    }
    sync_cube();

    let k_at = b * k.stride(0) + h * k.stride(1);
    let v_at = b * v.stride(0) + h * v.stride(1);
    let mut best = f32::new(FLOOR);
    let mut total = f32::new(0.0);
    // Thread `t` accumulates output element `t` (the launch keeps `dim` within the cube).
    let mut acc = f32::new(0.0);
    let mut start = 0;
    while start < len {
        let j = start + t;
        let mut valid = j < len;
        if masked && valid {
            valid = !bool::cast_from(hidden[b * hidden.stride(0) + j * hidden.stride(3)]);
        }
        chunk_scores::<F>(k, k_at, start, &qs, &mut probs, &mut red);
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
            let mut sum = f32::new(0.0);
            let end = select(len - start < threads, len - start, threads);
            for jj in 0..end {
                sum += probs[jj]
                    * f32::cast_from(v[v_at + (start + jj) * v.stride(2) + t * v.stride(3)]);
            }
            acc = acc * rescale + sum;
        }
        sync_cube();
        start += threads;
    }
    if t < dim {
        out[row * dim + t] = F::cast_from(acc / total);
    }
}

/// `scores[jj] = q · k[start + jj]` for the chunk's keys (those past the cache left as they
/// are): [`LANES`] threads per key, each summing a strided share of the dimensions, so
/// neighbouring threads read neighbouring elements of a key row.
#[cube]
fn chunk_scores<F: Float>(
    k: &Tensor<F>,
    k_at: usize,
    start: usize,
    qs: &SharedMemory<f32>,
    scores: &mut SharedMemory<f32>,
    red: &mut SharedMemory<f32>,
) {
    let (dim, len) = (k.shape(3), k.shape(2));
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

/// Launches [`attend_one_kernel`] (`bool_dtype`: the backend's boolean element); `None` where a head is wider than the cube (the caller
/// falls back to the generic path).
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
    let out = empty_device_dtype(
        client.clone(),
        q.device.clone(),
        Shape::new([batch, heads, group, dim]),
        dtype,
    );
    let masked = hidden.is_some();
    // Without a mask the kernel reads no mask: the keys stand in for the argument.
    let hidden = hidden.unwrap_or_else(|| k.clone());
    attend_one_kernel::launch::<R>(
        &client,
        CubeCount::Static((batch * heads * group) as u32, 1, 1),
        CubeDim::new_1d(THREADS),
        q.into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        hidden.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        masked,
        dim,
        [dtype.into(), bool_dtype.into()],
    );
    Some(out)
}
