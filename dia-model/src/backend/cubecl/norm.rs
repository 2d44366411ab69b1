//! RMSNorm in one kernel, optionally after a residual add: one cube per row sums the squares
//! in f32 and writes the normalised row (and the sum it normalised).

use burn::tensor::Shape;
use burn_cubecl::CubeRuntime;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::reduce::cube_sum;

/// Threads per cube (a row of the model's width is a few strides of it).
const THREADS: u32 = 256;
/// Most rows one launch takes (a cube count's first axis).
const MAX_ROWS: usize = 65535;

/// `sum = x + delta` (with `residual`; else `sum = x`), `out = sum / sqrt(mean(sum²) + eps) · w`,
/// per row of `[rows, dim]` (contiguous); `sum` is written only with `residual`.
#[cube(launch)]
fn rms_norm_kernel<F: Float>(
    x: &Tensor<F>,
    delta: &Tensor<F>,
    weight: &Tensor<f32>,
    sum_out: &mut Tensor<F>,
    out: &mut Tensor<F>,
    eps: f32,
    #[comptime] residual: bool,
    #[define(F)] _dtype: StorageType,
) {
    let dim = x.shape(1);
    let at = CUBE_POS_X as usize * dim;
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    let mut red = SharedMemory::<f32>::new(THREADS as usize);
    let mut squares = f32::new(0.0);
    let mut i = t;
    while i < dim {
        let value = load::<F>(x, delta, at + i, residual);
        squares += value * value;
        i += threads;
    }
    let mean = cube_sum(&mut red, squares) / f32::cast_from(dim);
    let rms = (mean + eps).sqrt();
    let mut i = t;
    while i < dim {
        let value = load::<F>(x, delta, at + i, residual);
        if residual {
            sum_out[at + i] = F::cast_from(value);
        }
        out[at + i] = F::cast_from(value / rms * weight[i]);
        i += threads;
    }
}

/// `x[i]` (plus `delta[i]` with `residual`, added in `F` as the generic path does) in f32.
#[cube]
fn load<F: Float>(x: &Tensor<F>, delta: &Tensor<F>, i: usize, #[comptime] residual: bool) -> f32 {
    if residual {
        f32::cast_from(x[i] + delta[i])
    } else {
        f32::cast_from(x[i])
    }
}

/// Launches [`rms_norm_kernel`] on contiguous `[rows, dim]` inputs; returns `(sum, normed)`
/// (`sum` is `x` itself without `delta`). `None` past one launch's rows.
pub fn rms_norm<R: CubeRuntime>(
    x: CubeTensor<R>,
    delta: Option<CubeTensor<R>>,
    weight: CubeTensor<R>,
    eps: f64,
) -> Option<(CubeTensor<R>, CubeTensor<R>)> {
    let [rows, dim] = x.meta.shape().dims::<2>();
    if rows > MAX_ROWS {
        return None;
    }
    let client = x.client.clone();
    let dtype = x.dtype;
    let empty = || {
        empty_device_dtype(
            client.clone(),
            x.device.clone(),
            Shape::new([rows, dim]),
            dtype,
        )
    };
    let out = empty();
    let residual = delta.is_some();
    let sum = if residual { empty() } else { x.clone() };
    rms_norm_kernel::launch::<R>(
        &client,
        CubeCount::Static(rows as u32, 1, 1),
        CubeDim::new_1d(THREADS),
        x.clone().into_tensor_arg(),
        delta.unwrap_or_else(|| x.clone()).into_tensor_arg(),
        weight.into_tensor_arg(),
        // Without a residual nothing is written there; `out` stands in for the argument.
        if residual { sum.clone() } else { out.clone() }.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        eps as f32,
        residual,
        dtype.into(),
    );
    Some((sum, out))
}
