//! The decode step's KV-cache update in one kernel: each thread rotates one pair of a key
//! (half-split RoPE in f32, as [`super::rope`]) and writes it, and the value pair beside it,
//! into the caches in place.

use burn_cubecl::CubeRuntime;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

use super::rope::{pairs, rotate_pair};

/// `k_cache[b, h, start + s, :] = rope(k[b, h, s, :])`, `v_cache[b, h, start + s, :] =
/// v[b, h, s, :]` (any strides), `sin`/`cos` `[1, 1, s, d/2]` f32.
#[cube(launch)]
fn rope_cache_write_kernel<F: Float>(
    k_cache: &mut Tensor<F>,
    v_cache: &mut Tensor<F>,
    k: &Tensor<F>,
    v: &Tensor<F>,
    sin: &Tensor<f32>,
    cos: &Tensor<f32>,
    start: u32,
    #[define(F)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= pairs::<F>(k) {
        terminate!();
    }
    let pair = rotate_pair::<F>(k, sin, cos, ABSOLUTE_POS);
    let (b, h, s) = pair.row;
    let (i, half) = (pair.i, k.shape(3) / 2);
    let position = start as usize + s;
    let to = b * k_cache.stride(0) + h * k_cache.stride(1) + position * k_cache.stride(2);
    k_cache[to + i * k_cache.stride(3)] = F::cast_from(pair.first);
    k_cache[to + (i + half) * k_cache.stride(3)] = F::cast_from(pair.second);
    let from = b * v.stride(0) + h * v.stride(1) + s * v.stride(2);
    let to = b * v_cache.stride(0) + h * v_cache.stride(1) + position * v_cache.stride(2);
    v_cache[to + i * v_cache.stride(3)] = v[from + i * v.stride(3)];
    v_cache[to + (i + half) * v_cache.stride(3)] = v[from + (i + half) * v.stride(3)];
}

/// Launches [`rope_cache_write_kernel`] on caches the caller owns alone (they are written in
/// place and returned).
pub fn rope_cache_write<R: CubeRuntime>(
    (k_cache, v_cache): (CubeTensor<R>, CubeTensor<R>),
    start: usize,
    k: CubeTensor<R>,
    v: CubeTensor<R>,
    (sin, cos): (CubeTensor<R>, CubeTensor<R>),
) -> (CubeTensor<R>, CubeTensor<R>) {
    let pairs = k.meta.shape().num_elements() / 2;
    let client = k.client.clone();
    let dtype = k.dtype;
    let cube_dim = CubeDim::new(&client, pairs);
    rope_cache_write_kernel::launch::<R>(
        &client,
        calculate_cube_count_elemwise(&client, pairs, cube_dim),
        cube_dim,
        k_cache.clone().into_tensor_arg(),
        v_cache.clone().into_tensor_arg(),
        k.into_tensor_arg(),
        v.into_tensor_arg(),
        sin.into_tensor_arg(),
        cos.into_tensor_arg(),
        start as u32,
        dtype.into(),
    );
    (k_cache, v_cache)
}
