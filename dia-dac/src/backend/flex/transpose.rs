//! The decoder's upsampling (transposed conv1d) as one matrix product per kernel tap:
//! `y[:, i·stride + k − crop] += W[:, :, k]ᵀ · x[:, i]`, each product writing every
//! `stride`-th output column in place. Burn's Flex op computes all `out · kernel` rows of
//! `Wᵀ · x` into a buffer first and scatters them into the output; here nothing is buffered, and
//! each thread's block of output columns stays in cache while the taps add in.

use gemm::{Parallelism, gemm};

use super::conv::{Block, fill_row, output_blocks};

/// The geometry of a transposed conv1d on one batch item (no dilation, groups or output
/// padding; `crop` is Burn's `padding`).
#[derive(Debug, Clone, Copy)]
pub struct TransposeShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub crop: usize,
    /// Input length.
    pub time: usize,
}

impl TransposeShape {
    /// `(time − 1)·stride + kernel − 2·crop`, `None` where that is not positive.
    pub fn out_time(&self) -> Option<usize> {
        let full = (self.time.checked_sub(1)? * self.stride).checked_add(self.kernel)?;
        full.checked_sub(2 * self.crop)
            .filter(|&t| t > 0 && self.stride > 0)
    }
}

/// One item's transposed conv into `y` `[out, out_time]`: `x` `[in, time]`, `weight`
/// `[in, out, kernel]` (element `(i, o, k)` at `i·s₀ + o·s₁ + k·s₂` for `strides`), `bias`
/// `[out]`.
pub fn conv_transpose1d(
    x: &[f32],
    (weight, strides): (&[f32], [usize; 3]),
    bias: &[f32],
    shape: &TransposeShape,
    y: &mut [f32],
) {
    let out_time = y.len() / shape.out_channels.max(1);
    output_blocks(shape.out_channels, y, |block, y| {
        let Block { rows, start, width } = block;
        for o in rows.clone() {
            // SAFETY: each block writes its own part of `y`.
            unsafe { fill_row(y, (o, out_time), (start, width), bias[o], None) };
        }
        for tap in 0..shape.kernel {
            // Inputs i with start ≤ i·stride + tap − crop < start + width.
            let bound = |column: usize| (column + shape.crop).saturating_sub(tap);
            let first = bound(start).div_ceil(shape.stride);
            let end = bound(start + width).div_ceil(shape.stride).min(shape.time);
            if end <= first {
                continue;
            }
            let column = first * shape.stride + tap - shape.crop;
            // SAFETY: every index is in bounds: weight `(i, o)` at `i·s₀ + o·s₁ + tap·s₂`
            // (checked by the caller), input `(i, t)` at `i·time + t` with `t < time`, output
            // `(o, c)` at `o·out_time + c` with `o` in `rows` and `c = t·stride + tap − crop`
            // in this block's columns, a part no other block writes.
            unsafe {
                gemm(
                    rows.len(),
                    end - first,
                    shape.in_channels,
                    y.add(rows.start * out_time + column),
                    shape.stride as isize,
                    out_time as isize,
                    true,
                    weight
                        .as_ptr()
                        .add(tap * strides[2] + rows.start * strides[1]),
                    strides[0] as isize,
                    strides[1] as isize,
                    x.as_ptr().add(first),
                    1,
                    shape.time as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        }
    });
}
