//! Flex: Snake in one vectorized pass ([`snake`]) and convolutions as one large matrix product
//! per kernel tap with Snake applied to the input as it is padded ([`conv`]), in f32. Other
//! dtypes, grouped convolutions and the transposed convolutions (after our Snake) are Burn's
//! own ops.

mod conv;
mod snake;
mod transpose;

use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use self::conv::ConvShape;
use self::transpose::TransposeShape;
use super::{ConvInput, DacBackend, custom_kernels, generic};

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
        input: ConvInput<Self>,
        weight: Tensor<Self, 3>,
        bias: Tensor<Self, 1>,
        options: ConvOptions<1>,
        skip: Option<Tensor<Self, 3>>,
    ) -> Tensor<Self, 3> {
        let [out_channels, weight_in, kernel] = weight.dims();
        let (ws, bs) = (weight.clone().into_primitive().tensor(), contiguous(&bias));
        let skips = skip.as_ref().map(contiguous);
        let y = match (assemble(&input), strided_f32(&ws), f32_slice(&bs)) {
            (Some((padded, [batch, in_channels, time])), Some(w), Some(b))
                if options.groups == 1 && weight_in == in_channels =>
            {
                let shape = ConvShape {
                    in_channels,
                    out_channels,
                    kernel,
                    stride: options.stride[0],
                    dilation: options.dilation[0],
                    time,
                };
                let skip = skips.as_ref().map(f32_slice);
                conv_items(&padded, w, b, skip, batch, &shape)
            }
            _ => None,
        };
        match y {
            Some((y, dims)) => float_tensor(y, dims),
            None => generic::snake_conv1d(input, weight, bias, options, skip),
        }
    }

    /// Stored tap-major (`[kernel, ·, ·]` in memory), so that each tap's matrix is read row by
    /// row rather than every `kernel`-th float.
    fn conv_weight(weight: Tensor<Self, 3>) -> Tensor<Self, 3> {
        let taps = contiguous(&weight.permute([2, 0, 1]));
        Tensor::<Self, 3>::from_primitive(TensorPrimitive::Float(taps)).permute([1, 2, 0])
    }

    fn snake_conv_transpose1d(
        input: ConvInput<Self>,
        weight: Tensor<Self, 3>,
        bias: Tensor<Self, 1>,
        options: ConvTransposeOptions<1>,
    ) -> Tensor<Self, 3> {
        let [weight_in, out_channels, kernel] = weight.dims();
        let (ws, bs) = (weight.clone().into_primitive().tensor(), contiguous(&bias));
        let plain = options.groups == 1 && options.dilation == [1] && options.padding_out == [0];
        match (assemble(&input), strided_f32(&ws), f32_slice(&bs)) {
            (Some((x, [batch, in_channels, time])), Some(w), Some(b))
                if plain && weight_in == in_channels =>
            {
                let shape = TransposeShape {
                    in_channels,
                    out_channels,
                    kernel,
                    stride: options.stride[0],
                    crop: options.padding[0],
                    time,
                };
                match transpose_items(&x, w, b, batch, &shape) {
                    Some((y, dims)) => float_tensor(y, dims),
                    None => generic::snake_conv_transpose1d(input, weight, bias, options),
                }
            }
            _ => generic::snake_conv_transpose1d(input, weight, bias, options),
        }
    }
}

/// The columns `input` describes, `[batch, in, len]`, in one pass (Snake applied as each row is
/// copied; zeros stay zeros); `None` for other dtypes or shapes that do not fit (Burn's ops then
/// take over).
fn assemble(input: &ConvInput<Flex>) -> Option<(Vec<f32>, [usize; 3])> {
    let [batch, channels, time] = input.x.dims();
    let (xs, helds) = (contiguous(&input.x), input.held.as_ref().map(contiguous));
    let alphas = input.alpha.as_ref().map(contiguous);
    let x = f32_slice(&xs)?;
    let held = match &helds {
        Some(h) => f32_slice(h)?,
        None => &[],
    };
    let alpha = match &alphas {
        Some(a) => Some(f32_slice(a).filter(|a| a.len() == channels)?),
        None => None,
    };
    let h = held.len() / (batch * channels).max(1);
    let fits = x.len() == batch * channels * time && held.len() == batch * channels * h;
    let len = input.len();
    if !fits || len == 0 {
        return None;
    }
    let mut out = vec![0.0f32; batch * channels * len];
    out.par_chunks_mut(len).enumerate().for_each(|(row, dst)| {
        let dst = &mut dst[input.pad[0]..len - input.pad[1]];
        let (dst_held, dst_x) = dst.split_at_mut(h);
        let pieces = [
            (dst_held, &held[row * h..][..h]),
            (dst_x, &x[row * time..][..time]),
        ];
        for (dst, src) in pieces {
            match alpha {
                Some(alpha) => snake::snake_row(src, alpha[row % channels], dst),
                None => dst.copy_from_slice(src),
            }
        }
    });
    Some((out, [batch, channels, len]))
}

/// [`conv::conv1d`] of each of `batch` padded items, with the output's dims; `None` where the
/// slices do not fit `shape` or the output would be empty (Burn's op then says what is wrong).
fn conv_items(
    padded: &[f32],
    (weight, strides): (&[f32], [usize; 3]),
    bias: &[f32],
    skip: Option<Option<&[f32]>>,
    batch: usize,
    shape: &ConvShape,
) -> Option<(Vec<f32>, [usize; 3])> {
    let out_time = shape.out_time()?;
    let (item, out_item) = (
        shape.in_channels * shape.time,
        shape.out_channels * out_time,
    );
    let fits = item > 0
        && out_item > 0
        && batch > 0
        && padded.len() == batch * item
        && last_index(
            [shape.out_channels, shape.in_channels, shape.kernel],
            strides,
        ) < weight.len()
        && bias.len() == shape.out_channels
        && skip.is_none_or(|s| s.is_some_and(|s| s.len() == batch * out_item));
    if !fits {
        return None;
    }
    let skip = skip.flatten();
    let mut y = vec![0.0f32; batch * out_item];
    for (n, (x, y)) in padded
        .chunks_exact(item)
        .zip(y.chunks_exact_mut(out_item))
        .enumerate()
    {
        let skip = skip.map(|s| &s[n * out_item..][..out_item]);
        conv::conv1d(x, (weight, strides), bias, skip, shape, y);
    }
    Some((y, [batch, shape.out_channels, out_time]))
}

/// [`transpose::conv_transpose1d`] of each of `batch` items, with the output's dims; `None`
/// where the slices do not fit `shape` or the output would be empty.
fn transpose_items(
    x: &[f32],
    (weight, strides): (&[f32], [usize; 3]),
    bias: &[f32],
    batch: usize,
    shape: &TransposeShape,
) -> Option<(Vec<f32>, [usize; 3])> {
    let out_time = shape.out_time()?;
    let (item, out_item) = (
        shape.in_channels * shape.time,
        shape.out_channels * out_time,
    );
    let dims = [shape.in_channels, shape.out_channels, shape.kernel];
    let fits = item > 0
        && out_item > 0
        && batch > 0
        && x.len() == batch * item
        && last_index(dims, strides) < weight.len()
        && bias.len() == shape.out_channels;
    if !fits {
        return None;
    }
    let mut y = vec![0.0f32; batch * out_item];
    for (x, y) in x.chunks_exact(item).zip(y.chunks_exact_mut(out_item)) {
        transpose::conv_transpose1d(x, (weight, strides), bias, shape, y);
    }
    Some((y, [batch, shape.out_channels, out_time]))
}

/// The offset of a strided tensor's last element (its dims all non-zero).
fn last_index(dims: [usize; 3], strides: [usize; 3]) -> usize {
    dims.iter().zip(strides).map(|(&n, s)| (n - 1) * s).sum()
}

/// The widest vector instructions the CPU has, of those the loops are compiled for (x86-64
/// only: elsewhere the codec takes Burn's own ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum SimdLevel {
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 F, VL and DQ, with FMA.
    Avx512,
}

/// [`SimdLevel`] of this CPU, detected once.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
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

/// The f32 storage of a tensor from its first element on, with its (non-negative) strides;
/// `None` for other dtypes or with the custom kernels off.
fn strided_f32<const D: usize>(x: &FlexTensor) -> Option<(&[f32], [usize; D])> {
    let layout = x.layout();
    let strides = layout.strides().iter().map(|&s| usize::try_from(s).ok());
    let strides: [usize; D] = strides.collect::<Option<Vec<_>>>()?.try_into().ok()?;
    let usable = custom_kernels() && x.dtype() == DType::F32;
    usable.then(|| (&x.storage::<f32>()[layout.start_offset()..], strides))
}

/// `values` of `shape` as an f32 Flex tensor.
fn float_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<Flex, D> {
    let tensor = FlexTensor::from_data(TensorData::new(values, shape));
    Tensor::from_primitive(TensorPrimitive::Float(tensor))
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::{conv_transpose1d, conv1d};
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
    use burn::tensor::{Distribution, Tensor};
    use burn_flex::Flex;

    use crate::backend::{ConvInput, DacBackend, generic};

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
    /// resampling), padding wider than the input, a batch of two, a size that spans several
    /// column blocks per thread, and one with few columns and many rows (split by rows).
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
            // Few columns, many rows: blocks of rows.
            (24, 200, 7, 1, 3, 1, 10, 2),
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
                let input = ConvInput::new(x.clone(), alpha, padding);
                let unpadded = ConvOptions::new([stride], [0], [dilation], 1);
                let ours = Flex::snake_conv1d(input, w, b, unpadded, None);
                assert_eq!(ours.dims(), burn.dims());
                let ours = worst_error(&values(&ours), &want, &scale);
                let burn = worst_error(&values(&burn), &want, &scale);
                let case = format!("{c_in}/{c_out}/{kernel}/{stride}/{dilation}");
                assert!(ours < 1e-6, "case {case}: error {ours:e} (Burn's {burn:e})");
                assert!(burn < 1e-6, "case {case}: Burn's error {burn:e}");
            }
        }
    }

    /// A transposed conv1d in f64 from the definition, with `1 + Σ|terms|` per output.
    fn naive_transpose(
        x: &Tensor<Flex, 3>,
        weight: &Tensor<Flex, 3>,
        bias: &Tensor<Flex, 1>,
        [stride, crop]: [usize; 2],
    ) -> (Vec<f64>, Vec<f64>) {
        let ([batch, c_in, time], [_, c_out, kernel]) = (x.dims(), weight.dims());
        let (xv, wv, bv) = (values(x), values(weight), values(bias));
        let out_time = (time - 1) * stride + kernel - 2 * crop;
        let mut sums = vec![(0.0f64, 1.0f64); batch * c_out * out_time];
        for (n, o, t) in (0..batch)
            .flat_map(|n| (0..c_out).map(move |o| (n, o)))
            .flat_map(|(n, o)| (0..out_time).map(move |t| (n, o, t)))
        {
            let b = f64::from(bv[o]);
            sums[(n * c_out + o) * out_time + t] = (b, 1.0 + b.abs());
        }
        for n in 0..batch {
            for i in 0..c_in {
                for t in 0..time {
                    for o in 0..c_out {
                        for k in 0..kernel {
                            let Some(at) = (t * stride + k).checked_sub(crop) else {
                                continue;
                            };
                            if at < out_time {
                                let term = f64::from(wv[(i * c_out + o) * kernel + k])
                                    * f64::from(xv[(n * c_in + i) * time + t]);
                                let sum = &mut sums[(n * c_out + o) * out_time + at];
                                sum.0 += term;
                                sum.1 += term.abs();
                            }
                        }
                    }
                }
            }
        }
        sums.into_iter().unzip()
    }

    /// The tap-by-tap transposed conv equals the definition as closely as Burn's does, for the
    /// decoder's strides (even and odd, crop `ceil(stride / 2)`), a batch of two, and sizes
    /// that span several column blocks or split the rows; weights laid out by `conv_weight` as
    /// the codec loads them.
    #[test]
    fn conv_transpose1d_equals_the_definition() {
        let device = Default::default();
        let normal = Distribution::Normal(0.0, 1.0);
        // (in, out, stride, time, batch)
        let cases = [
            (6, 5, 2usize, 30, 2),
            (4, 3, 3, 11, 1),
            (8, 4, 8, 40, 2),
            (5, 7, 5, 1, 1),
            (16, 8, 4, 3000, 1),
            (8, 200, 2, 5, 2),
        ];
        for (c_in, c_out, stride, time, batch) in cases {
            let kernel = 2 * stride;
            let crop = stride.div_ceil(2);
            let x = Tensor::<Flex, 3>::random([batch, c_in, time], normal, &device);
            let weight = Tensor::<Flex, 3>::random([c_in, c_out, kernel], normal, &device);
            let bias = Tensor::<Flex, 1>::random([c_out], normal, &device);
            let (want, scale) = naive_transpose(&x, &weight, &bias, [stride, crop]);
            let options = ConvTransposeOptions::new([stride], [crop], [0], [1], 1);
            let burn = conv_transpose1d(
                x.clone(),
                weight.clone(),
                Some(bias.clone()),
                options.clone(),
            );
            let input = ConvInput::new(x.clone(), None, 0);
            let ours =
                Flex::snake_conv_transpose1d(input, Flex::conv_weight(weight), bias, options);
            assert_eq!(ours.dims(), burn.dims());
            let ours = worst_error(&values(&ours), &want, &scale);
            let burn = worst_error(&values(&burn), &want, &scale);
            let case = format!("{c_in}/{c_out}/{stride}/{time}");
            assert!(ours < 1e-6, "case {case}: error {ours:e} (Burn's {burn:e})");
        }
    }

    /// Held columns, uneven padding and a skip connection (a stream's pieces) give what Burn's
    /// ops give on the same columns, for the conv and the transposed conv.
    #[test]
    fn pieces_equal_burns_ops() {
        let device = Default::default();
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<Flex, 3>::random([2, 6, 13], normal, &device);
        let held = Tensor::<Flex, 3>::random([2, 6, 4], normal, &device);
        let alpha = Tensor::<Flex, 3>::random([1, 6, 1], Distribution::Uniform(0.1, 2.0), &device);
        for pad in [[3, 0], [0, 3], [0, 0], [2, 5]] {
            let input = ConvInput {
                x: x.clone(),
                held: Some(held.clone()),
                alpha: Some(alpha.clone()),
                pad,
            };
            let out_time = input.len() - 6;
            let weight = Tensor::<Flex, 3>::random([5, 6, 7], normal, &device);
            let bias = Tensor::<Flex, 1>::random([5], normal, &device);
            let skip = Tensor::<Flex, 3>::random([2, 5, out_time], normal, &device);
            let options = ConvOptions::new([1], [0], [1], 1);
            let conv = |f: fn(_, _, _, _, _) -> Tensor<Flex, 3>| {
                let skip = Some(skip.clone());
                values(&f(
                    input.clone(),
                    weight.clone(),
                    bias.clone(),
                    options.clone(),
                    skip,
                ))
            };
            let (ours, burn) = (conv(Flex::snake_conv1d), conv(generic::snake_conv1d));
            let scale: Vec<f64> = burn.iter().map(|&v| 1.0 + f64::from(v).abs()).collect();
            let burn: Vec<f64> = burn.into_iter().map(f64::from).collect();
            assert_eq!(ours.len(), 2 * 5 * out_time);
            assert!(worst_error(&ours, &burn, &scale) < 1e-5, "pad {pad:?}");

            let weight = Tensor::<Flex, 3>::random([6, 3, 8], normal, &device);
            let bias = Tensor::<Flex, 1>::random([3], normal, &device);
            let options = ConvTransposeOptions::new([4], [2], [0], [1], 1);
            let up = |f: fn(_, _, _, _) -> Tensor<Flex, 3>| {
                values(&f(
                    input.clone(),
                    weight.clone(),
                    bias.clone(),
                    options.clone(),
                ))
            };
            let (ours, burn) = (
                up(Flex::snake_conv_transpose1d),
                up(generic::snake_conv_transpose1d),
            );
            let burn: Vec<f64> = burn.into_iter().map(f64::from).collect();
            let scale: Vec<f64> = burn.iter().map(|v| 1.0 + v.abs()).collect();
            assert!(worst_error(&ours, &burn, &scale) < 1e-5, "pad {pad:?}");
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
