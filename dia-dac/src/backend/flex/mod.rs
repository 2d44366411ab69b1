//! Flex: Snake in one vectorized pass ([`snake`]) and convolutions as one large matrix product
//! per kernel tap with Snake applied to the input as it is padded ([`conv`]), in f32. Other
//! dtypes, grouped convolutions and the transposed convolutions (after our Snake) are Burn's
//! own ops.

mod conv;
mod snake;

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use self::conv::ConvShape;
use super::{DacBackend, custom_kernels, generic};

impl DacBackend for Flex {
    fn snake(x: Tensor<Self, 3>, alpha: Tensor<Self, 3>) -> Tensor<Self, 3> {
        let [batch, channels, time] = x.dims();
        let (xs, alphas) = (contiguous(&x), contiguous(&alpha));
        let (Some(values), Some(alphas)) = (f32_slice(&xs), f32_slice(&alphas)) else {
            return generic::snake(x, alpha);
        };
        if alphas.len() != channels {
            return generic::snake(x, alpha);
        }
        let mut out = vec![0.0f32; values.len()];
        out.par_chunks_mut(time.max(1))
            .zip(values.par_chunks(time.max(1)))
            .enumerate()
            .for_each(|(row, (dst, src))| snake::snake_row(src, alphas[row % channels], dst));
        float_tensor(out, [batch, channels, time])
    }

    fn snake_conv1d(
        x: Tensor<Self, 3>,
        alpha: Option<Tensor<Self, 3>>,
        weight: Tensor<Self, 3>,
        bias: Tensor<Self, 1>,
        options: ConvOptions<1>,
    ) -> Tensor<Self, 3> {
        let [batch, in_channels, time] = x.dims();
        let [out_channels, weight_in, kernel] = weight.dims();
        let shape = ConvShape {
            in_channels,
            out_channels,
            kernel,
            stride: options.stride[0],
            padding: options.padding[0],
            dilation: options.dilation[0],
            time,
        };
        let (xs, ws, bs) = (contiguous(&x), contiguous(&weight), contiguous(&bias));
        let alphas = alpha.as_ref().map(contiguous);
        let y = match (f32_slice(&xs), f32_slice(&ws), f32_slice(&bs)) {
            (Some(x), Some(w), Some(b)) if options.groups == 1 && weight_in == in_channels => {
                let alpha = alphas.as_ref().map(f32_slice);
                conv_items(x, alpha, w, b, batch, &shape)
            }
            _ => None,
        };
        match y {
            Some((y, out_time)) => float_tensor(y, [batch, out_channels, out_time]),
            None => generic::snake_conv1d(x, alpha, weight, bias, options),
        }
    }
}

/// [`conv::conv1d`] of each of `batch` items, with the output length; `None` where the slices do
/// not fit `shape` or the output would be empty (Burn's op then says what is wrong).
fn conv_items(
    x: &[f32],
    alpha: Option<Option<&[f32]>>,
    weight: &[f32],
    bias: &[f32],
    batch: usize,
    shape: &ConvShape,
) -> Option<(Vec<f32>, usize)> {
    let out_time = shape.out_time()?;
    let item = shape.in_channels * shape.time;
    let fits = item > 0
        && shape.out_channels > 0
        && batch > 0
        && out_time > 0
        && x.len() == batch * item
        && weight.len() == shape.out_channels * shape.in_channels * shape.kernel
        && bias.len() == shape.out_channels
        && alpha.is_none_or(|a| a.is_some_and(|a| a.len() == shape.in_channels));
    if !fits {
        return None;
    }
    let alpha = alpha.flatten();
    let mut y = vec![0.0f32; batch * shape.out_channels * out_time];
    for (x, y) in x
        .chunks_exact(item)
        .zip(y.chunks_exact_mut(shape.out_channels * out_time))
    {
        conv::conv1d(x, alpha, weight, bias, shape, y);
    }
    Some((y, out_time))
}

/// The widest vector instructions the CPU has, of those the loops are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimdLevel {
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 F, VL and DQ, with FMA.
    Avx512,
}

/// [`SimdLevel`] of this CPU, detected once.
fn simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            let has = |avx512: bool| {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && (!avx512
                        || is_x86_feature_detected!("avx512f")
                            && is_x86_feature_detected!("avx512vl")
                            && is_x86_feature_detected!("avx512dq"))
            };
            match (has(true), has(false)) {
                (true, _) => SimdLevel::Avx512,
                (false, true) => SimdLevel::Avx2,
                _ => SimdLevel::Baseline,
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    SimdLevel::Baseline
}

/// The contiguous Flex tensor behind a float tensor: shared, not copied, when it already is.
fn contiguous<const D: usize>(x: &Tensor<Flex, D>) -> FlexTensor {
    x.clone().into_primitive().tensor().to_contiguous()
}

/// The f32 values of a contiguous tensor; `None` for other dtypes or with the custom kernels off.
fn f32_slice(x: &FlexTensor) -> Option<&[f32]> {
    custom_kernels().then(|| x.as_slice::<f32>()).flatten()
}

/// `values` of `shape` as an f32 Flex tensor.
fn float_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<Flex, D> {
    let tensor = FlexTensor::from_data(TensorData::new(values, shape));
    Tensor::from_primitive(TensorPrimitive::Float(tensor))
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv1d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Distribution, Tensor};
    use burn_flex::Flex;

    use crate::backend::{DacBackend, generic};

    /// Largest `|got − want| / scale`, NaN counted as infinitely wrong.
    fn worst_error(got: &[f32], want: &[f64], scale: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        got.iter()
            .zip(want)
            .zip(scale)
            .map(|((&g, &w), &s)| {
                let e = (f64::from(g) - w).abs() / s;
                if e.is_nan() { f64::INFINITY } else { e }
            })
            .fold(0.0, f64::max)
    }

    fn values<const D: usize>(t: &Tensor<Flex, D>) -> Vec<f32> {
        t.clone().into_data().to_vec::<f32>().unwrap()
    }

    /// conv1d(snake(x)) in f64, straight from the definition, with `1 + Σ|terms|` per output
    /// (what rounding errors scale with).
    fn naive_conv(
        x: &Tensor<Flex, 3>,
        alpha: Option<&Tensor<Flex, 3>>,
        weight: &Tensor<Flex, 3>,
        bias: &Tensor<Flex, 1>,
        [stride, padding, dilation]: [usize; 3],
    ) -> (Vec<f64>, Vec<f64>) {
        let ([batch, c_in, time], [c_out, _, kernel]) = (x.dims(), weight.dims());
        let (xv, wv, bv) = (values(x), values(weight), values(bias));
        let av = alpha.map(values);
        let input = |b: usize, i: usize, t: usize| {
            let v = f64::from(xv[(b * c_in + i) * time + t]);
            av.as_ref().map_or(v, |a| {
                let a = f64::from(a[i]);
                v + (a * v).sin().powi(2) / (a + 1e-9)
            })
        };
        let out_time = (time + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
        let (mut want, mut scale) = (Vec::new(), Vec::new());
        for b in 0..batch {
            for o in 0..c_out {
                for t in 0..out_time {
                    let (mut sum, mut size) = (f64::from(bv[o]), 1.0 + f64::from(bv[o]).abs());
                    for i in 0..c_in {
                        for k in 0..kernel {
                            let Some(p) = (t * stride + k * dilation).checked_sub(padding) else {
                                continue;
                            };
                            if p < time {
                                let term =
                                    f64::from(wv[(o * c_in + i) * kernel + k]) * input(b, i, p);
                                sum += term;
                                size += term.abs();
                            }
                        }
                    }
                    want.push(sum);
                    scale.push(size);
                }
            }
        }
        (want, scale)
    }

    /// The tap-by-tap product equals the definition (in f64) as closely as Burn's conv1d after
    /// Burn's Snake does, for every geometry DAC uses (same-padded dilated, 1×1, strided
    /// resampling), padding wider than the input, a batch of two, and a size that spans several
    /// column blocks per thread.
    #[test]
    fn conv1d_equals_the_definition() {
        let device = Default::default();
        let normal = Distribution::Normal(0.0, 1.0);
        // (in, out, kernel, stride, padding, dilation, time, batch)
        let cases = [
            (5, 7, 7, 1, 3, 1, 40, 2),
            (6, 4, 7, 1, 9, 3, 33, 1),
            (4, 4, 7, 1, 27, 9, 10, 1),
            (8, 8, 1, 1, 0, 1, 17, 2),
            (3, 6, 4, 2, 1, 1, 21, 2),
            (2, 5, 16, 8, 4, 1, 64, 1),
            (96, 64, 7, 1, 3, 1, 300, 1),
            (8, 1024, 7, 1, 9, 3, 600, 1),
        ];
        for (c_in, c_out, kernel, stride, padding, dilation, time, batch) in cases {
            let x = Tensor::<Flex, 3>::random([batch, c_in, time], normal, &device);
            let weight = Tensor::<Flex, 3>::random([c_out, c_in, kernel], normal, &device);
            let bias = Tensor::<Flex, 1>::random([c_out], normal, &device);
            let alpha = Distribution::Uniform(0.05, 3.0);
            let alpha = Tensor::<Flex, 3>::random([1, c_in, 1], alpha, &device);
            let options = ConvOptions::new([stride], [padding], [dilation], 1);
            for alpha in [None, Some(alpha)] {
                let geometry = [stride, padding, dilation];
                let (want, scale) = naive_conv(&x, alpha.as_ref(), &weight, &bias, geometry);
                let burn = match &alpha {
                    Some(a) => generic::snake(x.clone(), a.clone()),
                    None => x.clone(),
                };
                let burn = conv1d(burn, weight.clone(), Some(bias.clone()), options.clone());
                let (w, b) = (weight.clone(), bias.clone());
                let ours = Flex::snake_conv1d(x.clone(), alpha, w, b, options.clone());
                assert_eq!(ours.dims(), burn.dims());
                let ours = worst_error(&values(&ours), &want, &scale);
                let burn = worst_error(&values(&burn), &want, &scale);
                let case = format!("{c_in}/{c_out}/{kernel}/{stride}/{dilation}");
                assert!(ours < 1e-6, "case {case}: error {ours:e} (Burn's {burn:e})");
                assert!(burn < 1e-6, "case {case}: Burn's error {burn:e}");
            }
        }
    }

    /// The one-pass Snake equals Burn's five ops, α small and large.
    #[test]
    fn snake_equals_burns_ops() {
        let device = Default::default();
        let x = Tensor::<Flex, 3>::random([2, 6, 300], Distribution::Normal(0.0, 4.0), &device);
        let alpha =
            Tensor::<Flex, 3>::random([1, 6, 1], Distribution::Uniform(0.01, 20.0), &device);
        let got = values(&Flex::snake(x.clone(), alpha.clone()));
        let want = values(&generic::snake(x, alpha));
        let want: Vec<f64> = want.into_iter().map(f64::from).collect();
        let scale: Vec<f64> = want.iter().map(|w| 1.0 + w.abs()).collect();
        let error = worst_error(&got, &want, &scale);
        assert!(error < 1e-6, "error {error:e}");
    }
}
