//! Convolutions as one matrix product per kernel tap, straight from a padded copy of the input
//! (Snake applied while copying): `y[:, t] = skip[:, t] + bias + Σₖ W[:, :, k] ·
//! x[:, t·stride + k·dilation]`,
//! each thread taking blocks of output columns that stay in cache while every tap adds in.
//! Burn's Flex conv transposes the input to channels-last, copies it 7× into im2col tiles of 512
//! columns and scatters each tile's product back element by element; here nothing is copied but
//! the padded input, and the `gemm` crate reads the taps through strides.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// The geometry of a stride/dilation conv1d on one batch item, its input already padded.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    /// Input length, padding included.
    pub time: usize,
}

impl ConvShape {
    /// The output length, `None` where the kernel does not fit the input.
    pub fn out_time(&self) -> Option<usize> {
        let span = self.dilation * (self.kernel - 1) + 1;
        (self.kernel > 0 && self.stride > 0 && self.time >= span)
            .then(|| (self.time - span) / self.stride + 1)
    }
}

/// One item's conv1d into `y` `[out, out_time]`: `padded` `[in, time]` (padded, through Snake),
/// `weight` `[out, in, kernel]` (element `(o, i, k)` at `o·s₀ + i·s₁ + k·s₂` for `strides`
/// `[s₀, s₁, s₂]`), `bias` `[out]`, `skip` `[out, out_time]` added when given
/// (`out_time` from [`ConvShape::out_time`]). The output's columns are cut into one or more
/// tasks per thread, each small enough to stay in cache while every tap adds into it.
pub fn conv1d(
    padded: &[f32],
    (weight, strides): (&[f32], [usize; 3]),
    bias: &[f32],
    skip: Option<&[f32]>,
    shape: &ConvShape,
    y: &mut [f32],
) {
    let out_time = y.len() / shape.out_channels.max(1);
    let product = Product {
        padded,
        weight,
        strides,
        bias,
        skip,
        shape,
        out_time,
    };
    let threads = rayon::current_num_threads().max(1);
    let cached = ((1 << 18) / shape.out_channels.max(1)).max(128);
    let tasks = out_time.div_ceil(cached).div_ceil(threads) * threads;
    let columns = out_time.div_ceil(tasks).max(1);
    let out = Output(y.as_mut_ptr());
    (0..out_time.div_ceil(columns))
        .into_par_iter()
        .for_each(|task| {
            let start = task * columns;
            // SAFETY: each task writes its own columns `start..start + width` of `y`.
            unsafe { product.columns(start, columns.min(out_time - start), out.get()) };
        });
}

/// The output buffer, shared by tasks that write disjoint columns of it.
struct Output(*mut f32);

// SAFETY: the tasks sharing it write disjoint elements, and `y` outlives them.
unsafe impl Sync for Output {}

impl Output {
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// What every task of one conv1d reads.
struct Product<'a> {
    /// The input through Snake, zero-padded: `[in, time]`.
    padded: &'a [f32],
    weight: &'a [f32],
    /// The weight's strides along out, in and kernel.
    strides: [usize; 3],
    bias: &'a [f32],
    skip: Option<&'a [f32]>,
    shape: &'a ConvShape,
    out_time: usize,
}

impl Product<'_> {
    /// Output columns `start..start + width`: the bias (plus the skip connection), then one
    /// product per tap added in.
    ///
    /// # Safety
    /// `y` is the `[out, out_time]` output, and no other thread touches these columns.
    unsafe fn columns(&self, start: usize, width: usize, y: *mut f32) {
        let shape = self.shape;
        let (m, k) = (shape.out_channels, shape.in_channels);
        for (o, &b) in self.bias.iter().enumerate() {
            let at = o * self.out_time + start;
            // SAFETY: row `o`'s columns `start..start + width` lie inside `y` (caller).
            let dst = unsafe { std::slice::from_raw_parts_mut(y.add(at), width) };
            match self.skip {
                Some(skip) => {
                    for (d, &s) in dst.iter_mut().zip(&skip[at..at + width]) {
                        *d = s + b;
                    }
                }
                None => dst.fill(b),
            }
        }
        let row = shape.time;
        for tap in 0..shape.kernel {
            // SAFETY: every index the strides reach is in bounds: weight `(o, i)` at
            // `o·s₀ + i·s₁ + tap·s₂` (checked by the caller), input `(i, t)` at
            // `i·row + (start + t)·stride + tap·dilation` with
            // `(out_time − 1)·stride + (kernel − 1)·dilation < row`, output `(o, t)` at
            // `o·out_time + start + t`.
            unsafe {
                gemm(
                    m,
                    width,
                    k,
                    y.add(start),
                    1,
                    self.out_time as isize,
                    true,
                    self.weight.as_ptr().add(tap * self.strides[2]),
                    self.strides[1] as isize,
                    self.strides[0] as isize,
                    self.padded
                        .as_ptr()
                        .add(tap * shape.dilation + start * shape.stride),
                    shape.stride as isize,
                    row as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        }
    }
}
