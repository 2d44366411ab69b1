//! Half-split rotary embedding in one element-wise kernel: each thread rotates one pair
//! `(x[i], x[i + d/2])` in f32 and writes both halves of a contiguous output.

use burn_cubecl::CubeRuntime;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

/// One pair of a half-split rotation of `x` `[b, h, s, d]`: its position and its two rotated
/// values in f32.
#[derive(CubeType)]
pub struct RotatedPair {
    /// `b`, `h`, `s` of the pair's row.
    pub row: (usize, usize, usize),
    /// Its first index (`i`; the second is `i + d/2`).
    pub i: usize,
    pub first: f32,
    pub second: f32,
}

/// Pair `pair` (in `[b, h, s, d/2]` order) of `x` (any strides) rotated by `sin`/`cos`
/// `[1, 1, s, d/2]`: `[x1·cos − x2·sin, x2·cos + x1·sin]`.
#[cube]
pub fn rotate_pair<F: Float>(
    x: &Tensor<F>,
    sin: &Tensor<f32>,
    cos: &Tensor<f32>,
    pair: usize,
) -> RotatedPair {
    let heads = x.shape(1);
    let seq = x.shape(2);
    let half = x.shape(3) / 2;
    let i = pair % half;
    let s = (pair / half) % seq;
    let h = (pair / (half * seq)) % heads;
    let b = pair / (half * seq * heads);
    let at = b * x.stride(0) + h * x.stride(1) + s * x.stride(2);
    let x1 = f32::cast_from(x[at + i * x.stride(3)]);
    let x2 = f32::cast_from(x[at + (i + half) * x.stride(3)]);
    let sn = sin[s * sin.stride(2) + i * sin.stride(3)];
    let cs = cos[s * cos.stride(2) + i * cos.stride(3)];
    RotatedPair {
        row: (b, h, s),
        i,
        first: x1 * cs - x2 * sn,
        second: x2 * cs + x1 * sn,
    }
}

/// The pairs a rotation of `x` `[b, h, s, d]` takes: one thread each.
#[cube]
pub fn pairs<F: Float>(x: &Tensor<F>) -> usize {
    x.shape(0) * x.shape(1) * x.shape(2) * x.shape(3) / 2
}

/// `out = rope(x)` for `x` `[b, h, s, d]` (any strides), `out` contiguous.
#[cube(launch)]
fn rope_kernel<F: Float>(
    x: &Tensor<F>,
    sin: &Tensor<f32>,
    cos: &Tensor<f32>,
    out: &mut Tensor<F>,
    #[define(F)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= pairs::<F>(x) {
        terminate!();
    }
    let pair = rotate_pair::<F>(x, sin, cos, ABSOLUTE_POS);
    let (b, h, s) = pair.row;
    let dim = x.shape(3);
    let row = ((b * x.shape(1) + h) * x.shape(2) + s) * dim;
    out[row + pair.i] = F::cast_from(pair.first);
    out[row + pair.i + dim / 2] = F::cast_from(pair.second);
}

/// Launches [`rope_kernel`]: `x` rotated, contiguous, in its own dtype.
pub fn rope<R: CubeRuntime>(
    x: CubeTensor<R>,
    sin: CubeTensor<R>,
    cos: CubeTensor<R>,
) -> CubeTensor<R> {
    let shape = x.meta.shape().clone();
    let pairs = shape.num_elements() / 2;
    let client = x.client.clone();
    let dtype = x.dtype;
    let out = empty_device_dtype(client.clone(), x.device.clone(), shape, dtype);
    let cube_dim = CubeDim::new(&client, pairs);
    rope_kernel::launch::<R>(
        &client,
        calculate_cube_count_elemwise(&client, pairs, cube_dim),
        cube_dim,
        x.into_tensor_arg(),
        sin.into_tensor_arg(),
        cos.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        dtype.into(),
    );
    out
}
