//! Products with many rows (the encoder over the text, a prompt's prefill): the output's columns
//! in blocks of a cache-sized slice of the weight (whole tiles of a tiled weight), one `gemm` call
//! each, spread over the threads. A weight not in f32 `[in, out]` is gathered and widened one
//! block at a time into a per-thread buffer, so no f32 copy of the whole weight is made per call
//! (Burn's generic path casts it all, element by element).

use std::ops::Range;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::layout::{TILE, tile_offset};
use super::simd::Widen;

/// A weight `[k, n]`: `values` row-major, or in column tiles ([`super::layout::Tiles`]) when
/// `tiled`; an int8 weight's columns are then multiplied by `scale`.
#[derive(Clone, Copy)]
pub struct Weight<'a, W> {
    pub values: &'a [W],
    pub scale: Option<&'a [f32]>,
    pub tiled: bool,
}

/// `x` `[rows, k]` · `weight` `[k, n]` → `[rows, n]`; `None` where the slices do not fit.
pub fn matmul<W: Widen>(
    x: &[f32],
    rows: usize,
    weight: Weight<'_, W>,
    k: usize,
    n: usize,
) -> Option<Vec<f32>> {
    let len = match weight.tiled {
        true => n.div_ceil(TILE) * k * TILE,
        false => k * n,
    };
    let fits = weight.values.len() == len && weight.scale.is_none_or(|s| s.len() >= n);
    if !fits || x.len() != rows * k || rows * k * n == 0 {
        return None;
    }
    // Two or more blocks per thread, of 16 (32 when tiled) to 256 columns (a 1024-row f32 block
    // is 1 MiB).
    let threads = rayon::current_num_threads().max(1);
    let step = if weight.tiled { TILE } else { 16 };
    let width = n
        .div_ceil(2 * threads)
        .next_multiple_of(step)
        .clamp(step, 256);
    let mut y = vec![0.0f32; rows * n];
    let out = Output(y.as_mut_ptr());
    let product = Product {
        x,
        rows,
        weight,
        k,
        n,
    };
    (0..n.div_ceil(width))
        .into_par_iter()
        .for_each_init(Vec::new, |wide, block| {
            let columns = block * width..n.min((block + 1) * width);
            // SAFETY: each block writes its own columns of `y`.
            unsafe { product.columns(columns, wide, out.get()) };
        });
    Some(y)
}

/// The output, shared by blocks that write disjoint columns of it.
struct Output(*mut f32);

// SAFETY: the blocks sharing it write disjoint elements, and `y` outlives them.
unsafe impl Sync for Output {}

impl Output {
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// What every block of one product reads.
struct Product<'a, W> {
    x: &'a [f32],
    rows: usize,
    weight: Weight<'a, W>,
    k: usize,
    n: usize,
}

impl<W: Widen> Product<'_, W> {
    /// The weight's columns `columns` (whole tiles when tiled) as f32 rows and their stride: in
    /// place for f32 `[in, out]`, gathered and widened into `wide` otherwise.
    fn block(&self, columns: Range<usize>, wide: &mut Vec<f32>) -> (*const f32, usize) {
        let (values, k, n) = (self.weight.values, self.k, self.n);
        if self.weight.tiled {
            let tiles = columns.start / TILE..columns.end.div_ceil(TILE);
            let width = tiles.len() * TILE;
            wide.resize(k * width, 0.0);
            for (i, row) in wide.chunks_exact_mut(width).enumerate() {
                for (t, part) in tiles.clone().zip(row.chunks_exact_mut(TILE)) {
                    W::widen(&values[tile_offset(k, n, t, i)..][..TILE], part);
                }
            }
            return (wide.as_ptr(), width);
        }
        if let Some(w) = W::as_f32(values) {
            return (w[columns.start..].as_ptr(), n);
        }
        wide.clear();
        for row in values.chunks_exact(n) {
            wide.extend(row[columns.clone()].iter().map(|v| v.to_f32()));
        }
        (wide.as_ptr(), columns.len())
    }

    /// Output columns `columns` of `y` `[rows, n]`, widening the weight's block into `wide`.
    ///
    /// # Safety
    /// `y` is the `[rows, n]` output, and no other thread touches these columns.
    unsafe fn columns(&self, columns: Range<usize>, wide: &mut Vec<f32>, y: *mut f32) {
        let (start, width, n) = (columns.start, columns.len(), self.n);
        let (rhs, rhs_row) = self.block(columns.clone(), wide);
        // SAFETY: lhs `(r, i)` at `r·k + i` inside `x`; rhs `(i, c)` at `i·rhs_row + c` with
        // `c < width ≤ rhs_row` inside the weight's block or `wide` (`k · rhs_row`); dst
        // `(r, c)` at `r·n + start + c`, this block's columns.
        unsafe {
            gemm(
                self.rows,
                width,
                self.k,
                y.add(start),
                1,
                n as isize,
                false,
                self.x.as_ptr(),
                1,
                self.k as isize,
                rhs,
                1,
                rhs_row as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
        if let Some(scale) = self.weight.scale {
            for r in 0..self.rows {
                // SAFETY: row `r`'s columns of this block, written only here.
                let row = unsafe { std::slice::from_raw_parts_mut(y.add(r * n + start), width) };
                row.iter_mut()
                    .zip(&scale[columns.clone()])
                    .for_each(|(v, s)| *v *= s);
            }
        }
    }
}
