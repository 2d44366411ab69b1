//! Products with many rows (the encoder over the text, a prompt's prefill): the output's columns
//! in blocks of a cache-sized slice of the weight, one `gemm` call each, spread over the threads.
//! An int8 weight is widened to f32 one block at a time into a per-thread buffer, so no f32 copy
//! of the whole weight is made per call (Burn's generic path casts it all, element by element).

use std::ops::Range;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// A weight `[k, n]`, row-major.
#[derive(Clone, Copy)]
pub enum Weight<'a> {
    F32(&'a [f32]),
    /// `values[i, o] · scale[o]`.
    Int8 {
        values: &'a [i8],
        scale: &'a [f32],
    },
}

/// `x` `[rows, k]` · `weight` `[k, n]` → `[rows, n]`; `None` where the slices do not fit.
pub fn matmul(x: &[f32], rows: usize, weight: Weight<'_>, k: usize, n: usize) -> Option<Vec<f32>> {
    let fits = match weight {
        Weight::F32(w) => w.len() == k * n,
        Weight::Int8 { values, scale } => values.len() == k * n && scale.len() == n,
    };
    if !fits || x.len() != rows * k || rows * k * n == 0 {
        return None;
    }
    // Two or more blocks per thread, of 16 to 256 columns (a 1024-row f32 block is 1 MiB).
    let threads = rayon::current_num_threads().max(1);
    let width = n.div_ceil(2 * threads).next_multiple_of(16).clamp(16, 256);
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
struct Product<'a> {
    x: &'a [f32],
    rows: usize,
    weight: Weight<'a>,
    k: usize,
    n: usize,
}

impl Product<'_> {
    /// Output columns `columns` of `y` `[rows, n]`, widening an int8 block into `wide`.
    ///
    /// # Safety
    /// `y` is the `[rows, n]` output, and no other thread touches these columns.
    unsafe fn columns(&self, columns: Range<usize>, wide: &mut Vec<f32>, y: *mut f32) {
        let (start, width, n) = (columns.start, columns.len(), self.n);
        let (rhs, rhs_row) = match self.weight {
            Weight::F32(w) => (w[start..].as_ptr(), n),
            Weight::Int8 { values, .. } => {
                wide.clear();
                for row in values.chunks_exact(n) {
                    wide.extend(row[columns.clone()].iter().map(|&v| f32::from(v)));
                }
                (wide.as_ptr(), width)
            }
        };
        // SAFETY: lhs `(r, i)` at `r·k + i` inside `x`; rhs `(i, c)` at `i·rhs_row + c` with
        // `c < width` inside the weight (from column `start`) or `wide` (`k · width`); dst
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
        if let Weight::Int8 { scale, .. } = self.weight {
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
