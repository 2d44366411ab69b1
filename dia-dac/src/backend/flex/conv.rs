//! Convolutions as one matrix product per kernel tap, straight from a padded copy of the input
//! (Snake applied while copying): `y[:, t] = skip[:, t] + bias + Σₖ W[:, :, k] ·
//! x[:, t·stride + k·dilation]`,
//! each thread taking blocks of output columns that stay in cache while every tap adds in.
//! Burn's Flex conv transposes the input to channels-last, copies it 7× into im2col tiles of 512
//! columns and scatters each tile's product back element by element; here nothing is copied but
//! the padded input, and the `gemm` crate reads the taps through strides.

use std::ops::Range;

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
    output_blocks(shape.out_channels, y, |block, y| {
        // SAFETY: each block writes its own part of `y`.
        unsafe { product.block(&block, y) }
    });
}

/// A part of an output `[out, out_time]`: rows `rows`, columns `start..start + width`.
pub struct Block {
    pub rows: Range<usize>,
    pub start: usize,
    pub width: usize,
}

/// Runs `task(block, y)` over disjoint blocks covering the output `y` `[out, out_time]`, in
/// parallel. Usually blocks of columns, one or more per thread, each small enough (about 1 MiB)
/// to stay in cache while every tap adds into it; with few columns (a stream's small pieces),
/// blocks of rows, so that the weight is read once in all rather than once per thread. `y` is
/// passed as a pointer because the blocks share it.
pub fn output_blocks(out_channels: usize, y: &mut [f32], task: impl Fn(Block, *mut f32) + Sync) {
    let out_time = y.len() / out_channels.max(1);
    let threads = rayon::current_num_threads().max(1);
    let out = Output(y.as_mut_ptr());
    if out_time < 64 * threads && out_channels >= 32 * threads {
        // Multiples of 16 rows, the products' register tiles.
        let rows = out_channels.div_ceil(threads).next_multiple_of(16);
        (0..out_channels.div_ceil(rows))
            .into_par_iter()
            .for_each(|part| {
                let rows = part * rows..((part + 1) * rows).min(out_channels);
                let block = Block {
                    rows,
                    start: 0,
                    width: out_time,
                };
                task(block, out.get());
            });
        return;
    }
    let cached = ((1 << 18) / out_channels.max(1)).max(128);
    let tasks = out_time.div_ceil(cached).div_ceil(threads) * threads;
    let columns = out_time.div_ceil(tasks).max(1);
    (0..out_time.div_ceil(columns))
        .into_par_iter()
        .for_each(|part| {
            let start = part * columns;
            let block = Block {
                rows: 0..out_channels,
                start,
                width: columns.min(out_time - start),
            };
            task(block, out.get());
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

/// Fills columns `start..start + width` of row `o` of `y` `[out, out_time]` with `bias` plus
/// `skip`'s same columns when given.
///
/// # Safety
/// The row's columns lie inside `y`, and no other thread touches them.
pub unsafe fn fill_row(
    y: *mut f32,
    (o, out_time): (usize, usize),
    (start, width): (usize, usize),
    bias: f32,
    skip: Option<&[f32]>,
) {
    let at = o * out_time + start;
    // SAFETY: in bounds and unshared (caller).
    let dst = unsafe { std::slice::from_raw_parts_mut(y.add(at), width) };
    match skip {
        Some(skip) => {
            for (d, &s) in dst.iter_mut().zip(&skip[at..at + width]) {
                *d = s + bias;
            }
        }
        None => dst.fill(bias),
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
    /// One block of the output: the bias (plus the skip connection), then one product per
    /// tap added in.
    ///
    /// # Safety
    /// `y` is the `[out, out_time]` output, and no other thread touches this block.
    unsafe fn block(&self, block: &Block, y: *mut f32) {
        let shape = self.shape;
        let (rows, start, width) = (block.rows.clone(), block.start, block.width);
        for o in rows.clone() {
            // SAFETY: row `o`'s columns `start..start + width` lie inside `y` (caller).
            unsafe {
                fill_row(
                    y,
                    (o, self.out_time),
                    (start, width),
                    self.bias[o],
                    self.skip,
                )
            };
        }
        let row = shape.time;
        for tap in 0..shape.kernel {
            // SAFETY: every index the strides reach is in bounds: weight `(o, i)` at
            // `o·s₀ + i·s₁ + tap·s₂` (checked by the caller), input `(i, t)` at
            // `i·row + (start + t)·stride + tap·dilation` with
            // `(out_time − 1)·stride + (kernel − 1)·dilation < row`, output `(o, t)` at
            // `o·out_time + start + t`, for `o` in `rows`.
            unsafe {
                gemm(
                    rows.len(),
                    width,
                    shape.in_channels,
                    y.add(rows.start * self.out_time + start),
                    1,
                    self.out_time as isize,
                    true,
                    self.weight
                        .as_ptr()
                        .add(tap * self.strides[2] + rows.start * self.strides[0]),
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
