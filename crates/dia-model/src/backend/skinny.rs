//! `[rows, k] · [k, n]` for a handful of rows, as in a decode step: memory-bound, so the kernel
//! streams the weight once, in long contiguous runs, for all rows at a time, and splits the
//! output columns over threads. Weights in f32, f16 or bf16; accumulation in f32.

use half::{bf16, f16};
use rayon::prelude::*;

/// Row count up to which this kernel is used (a decode step has two rows per item).
pub const MAX_ROWS: usize = 8;

/// Weight element types the kernel reads.
pub trait WeightElem: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    /// Eight consecutive elements widened to f32.
    ///
    /// # Safety
    /// `p` must point to eight readable elements; the CPU must have AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
}

impl WeightElem for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }
}

impl WeightElem for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
}

impl WeightElem for bf16 {
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // bf16 is the top half of an f32: widen to 32 bits and shift into place.
        unsafe {
            let wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(wide))
        }
    }
}

/// `x` `[rows, k]` (f32, row-major) times `w` `[k, n]` (row-major) → `[rows, n]` f32.
pub fn matmul<W: WeightElem>(x: &[f32], rows: usize, w: &[W], k: usize, n: usize) -> Vec<f32> {
    assert_eq!(x.len(), rows * k, "x is not [rows, k]");
    assert_eq!(w.len(), k * n, "w is not [k, n]");
    let width = tile_width(n);
    // [tile][rows][tile width]: each task owns its accumulators.
    let tiles: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(width))
        .into_par_iter()
        .map(|t| {
            let start = t * width;
            let cols = width.min(n - start);
            let mut acc = vec![0.0f32; rows * cols];
            tile(x, k, w, n, start, cols, &mut acc);
            (start, acc)
        })
        .collect();
    let mut y = vec![0.0f32; rows * n];
    for (start, acc) in tiles {
        let cols = acc.len() / rows;
        for (r, chunk) in acc.chunks_exact(cols).enumerate() {
            y[r * n + start..][..cols].copy_from_slice(chunk);
        }
    }
    y
}

/// Output columns per task: enough tasks to balance the threads, runs long enough to stream.
fn tile_width(n: usize) -> usize {
    let tasks = rayon::current_num_threads() * 4;
    n.div_ceil(tasks).next_multiple_of(8).clamp(64, 1024)
}

/// Accumulates `x` `[rows, k]` · `w[.., start..start + cols]` into `acc` `[rows, cols]`.
fn tile<W: WeightElem>(
    x: &[f32],
    k: usize,
    w: &[W],
    n: usize,
    start: usize,
    cols: usize,
    acc: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma_f16c() {
        // SAFETY: the features were detected at run time; the slices bound every access.
        unsafe { tile_avx2(x, k, w, n, start, cols, acc) };
        return;
    }
    tile_scalar(x, k, w, n, start, cols, acc, 0);
}

/// Portable version (and the column tail of the SIMD one), from column `from` of the tile.
#[allow(clippy::too_many_arguments)]
fn tile_scalar<W: WeightElem>(
    x: &[f32],
    k: usize,
    w: &[W],
    n: usize,
    start: usize,
    cols: usize,
    acc: &mut [f32],
    from: usize,
) {
    let rows = x.len() / k;
    for kk in 0..k {
        let wrow = &w[kk * n + start..][..cols];
        for r in 0..rows {
            let a = x[r * k + kk];
            let out = &mut acc[r * cols..][..cols];
            for c in from..cols {
                out[c] += a * wrow[c].to_f32();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma_f16c() -> bool {
    use std::sync::OnceLock;
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// Four weight rows at a time (four concurrent sequential streams), eight columns per vector,
/// rows of `x` in pairs whose broadcast values stay in registers; the block of four weight rows
/// is read from memory once and from L1 for the other pairs, and the tile's accumulators live
/// in L1.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_avx2<W: WeightElem>(
    x: &[f32],
    k: usize,
    w: &[W],
    n: usize,
    start: usize,
    cols: usize,
    acc: &mut [f32],
) {
    let rows = x.len() / k;
    let block = Block {
        x,
        k,
        n,
        cols,
        vec_cols: cols / 8 * 8,
        acc: acc.as_mut_ptr(),
    };
    let mut kk = 0;
    while kk + 4 <= k {
        // SAFETY: rows kk..kk + 4 of `w` exist; the columns read are start..start + vec_cols ≤ n.
        let base = unsafe { w.as_ptr().add(kk * n + start) };
        let mut r = 0;
        while r + 2 <= rows {
            // SAFETY: as above; rows r, r + 1 of `x` and `acc` exist.
            unsafe { block.pass::<W, 2>(base, kk, r) };
            r += 2;
        }
        if r < rows {
            // SAFETY: as above, row r.
            unsafe { block.pass::<W, 1>(base, kk, r) };
        }
        kk += 4;
    }
    if kk < k {
        // The last k % 4 weight rows, one row of `x` at a time.
        for r in 0..rows {
            for kr in kk..k {
                let a = x[r * k + kr];
                let wrow = &w[kr * n + start..][..block.vec_cols];
                let out = &mut acc[r * cols..][..block.vec_cols];
                for (o, wv) in out.iter_mut().zip(wrow) {
                    *o += a * wv.to_f32();
                }
            }
        }
    }
    if block.vec_cols < cols {
        tile_scalar(x, k, w, n, start, cols, acc, block.vec_cols);
    }
}

/// One tile's operands for [`Block::pass`].
#[cfg(target_arch = "x86_64")]
struct Block<'a> {
    x: &'a [f32],
    k: usize,
    n: usize,
    cols: usize,
    vec_cols: usize,
    acc: *mut f32,
}

#[cfg(target_arch = "x86_64")]
impl Block<'_> {
    /// Adds `x[r..r + R, kk..kk + 4]` · the four weight rows at `base` to `acc[r..r + R]`.
    ///
    /// # Safety
    /// `base` points at row `kk` of the tile's weights with `vec_cols` readable columns in
    /// each of the four rows (stride `n`); rows `r..r + R` exist in `x` and `acc`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn pass<W: WeightElem, const R: usize>(&self, base: *const W, kk: usize, r: usize) {
        use std::arch::x86_64::*;
        let xb: [[__m256; 4]; R] = std::array::from_fn(|i| {
            std::array::from_fn(|j| _mm256_set1_ps(self.x[(r + i) * self.k + kk + j]))
        });
        let n = self.n;
        let mut c = 0;
        while c < self.vec_cols {
            // SAFETY: per the contract above.
            unsafe {
                let w0 = W::load8(base.add(c));
                let w1 = W::load8(base.add(n + c));
                let w2 = W::load8(base.add(2 * n + c));
                let w3 = W::load8(base.add(3 * n + c));
                for (i, xr) in xb.iter().enumerate() {
                    let out = self.acc.add((r + i) * self.cols + c);
                    let mut a = _mm256_loadu_ps(out);
                    a = _mm256_fmadd_ps(xr[0], w0, a);
                    a = _mm256_fmadd_ps(xr[1], w1, a);
                    a = _mm256_fmadd_ps(xr[2], w2, a);
                    a = _mm256_fmadd_ps(xr[3], w3, a);
                    _mm256_storeu_ps(out, a);
                }
            }
            c += 8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (h >> 16) as f32 / 65536.0 - 0.5
            })
            .collect()
    }

    /// The kernel against an f64 product of the same (already rounded) weights.
    fn check<W: WeightElem>(x: &[f32], rows: usize, w: &[W], k: usize, n: usize) {
        let mut want = vec![0.0f64; rows * n];
        for r in 0..rows {
            for kk in 0..k {
                for c in 0..n {
                    want[r * n + c] += f64::from(x[r * k + kk]) * f64::from(w[kk * n + c].to_f32());
                }
            }
        }
        let got = matmul(x, rows, w, k, n);
        let err = got
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        let name = std::any::type_name::<W>();
        assert!(err < 1e-4, "{name} {rows}x{k}x{n}: max error {err}");
    }

    /// Odd sizes exercise the k remainder, the column tail and several row groups.
    #[test]
    fn matches_a_plain_product_for_every_weight_type() {
        for (rows, k, n) in [(1, 7, 13), (2, 64, 2048), (5, 131, 1033), (8, 256, 72)] {
            let x = values(rows * k, 1);
            let w = values(k * n, 2);
            check(&x, rows, &w, k, n);
            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            check(&x, rows, &w16, k, n);
            let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
            check(&x, rows, &wb, k, n);
        }
    }
}
