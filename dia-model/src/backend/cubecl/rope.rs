//! Half-split rotary embedding in one element-wise kernel: each thread rotates one pair
//! `(x[i], x[i + d/2])` in f32 and writes both halves of a contiguous output.

use burn_cubecl::CubeRuntime;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::calculate_cube_count_elemwise;
use cubecl::prelude::*;

/// `out = [x1·cos − x2·sin, x2·cos + x1·sin]` for `x` `[b, h, s, d]` (any strides), `sin`/`cos`
/// `[1, 1, s, d/2]` in f32, `out` contiguous.
#[cube(launch)]
fn rope_kernel<F: Float>(
    x: &Tensor<F>,
    sin: &Tensor<f32>,
    cos: &Tensor<f32>,
    out: &mut Tensor<F>,
    #[define(F)] _dtype: StorageType,
) {
    let heads = x.shape(1);
    let seq = x.shape(2);
    let half = x.shape(3) / 2;
    let pair = ABSOLUTE_POS;
    if pair >= x.shape(0) * heads * seq * half {
        terminate!();
    }
    let i = pair % half;
    let s = (pair / half) % seq;
    let h = (pair / (half * seq)) % heads;
    let b = pair / (half * seq * heads);
    let at = b * x.stride(0) + h * x.stride(1) + s * x.stride(2);
    let x1 = f32::cast_from(x[at + i * x.stride(3)]);
    let x2 = f32::cast_from(x[at + (i + half) * x.stride(3)]);
    let table = s * sin.stride(2) + i * sin.stride(3);
    let (sn, cs) = (sin[table], cos[s * cos.stride(2) + i * cos.stride(3)]);
    let row = ((b * heads + h) * seq + s) * 2 * half;
    out[row + i] = F::cast_from(x1 * cs - x2 * sn);
    out[row + i + half] = F::cast_from(x2 * cs + x1 * sn);
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
