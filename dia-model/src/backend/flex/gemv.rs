//! `[rows, k] · [k, n]` for a handful of rows, as in a decode step: memory-bound, so the kernel
//! streams the weight once, in long contiguous runs, for all rows at a time, and splits the
//! weight rows over threads. The weight is in column tiles ([`super::layout::Tiles`], made at
//! load), so a tile's sums stay in registers over a whole stretch of weight rows while its
//! streams run on through the next tiles. Weights in f32, f16, bf16 or int8; accumulation in f32.

use std::ops::Range;

use rayon::prelude::*;

use super::layout::{TILE, TILE_SPAN, TILE_STREAMS as STREAMS, tile_offset};
use super::simd::Widen;

/// Row count up to which this kernel is used: a decode step has two rows per item, so up to
/// eight items of a continuous batch, each row summed exactly as when it is alone.
pub const MAX_ROWS: usize = 16;

/// `x` `[rows, k]` (f32, row-major) times the `[k, n]` weight in `tiles` → `[rows, n]` f32.
///
/// Each stretch of [`TILE_SPAN`] weight rows is summed on its own (split-K): each task streams
/// one stretch of its tiles into its own partial sums; the partials are added at the end, in
/// stretch order (a few kB against megabytes of weight). When there are fewer stretches than
/// tasks the threads need, the tiles are cut into blocks too, which adds parallelism without
/// changing any sum.
pub fn matmul<W: Widen>(x: &[f32], rows: usize, tiles: &[W], k: usize, n: usize) -> Vec<f32> {
    matmul_with(Kernel::detected(), x, rows, tiles, k, n)
}

/// The inner loops [`matmul`] runs. The SIMD ones give the same bits: per output element the
/// same products are added in the same order, with the same fused multiply-adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Kernel {
    Scalar,
    Avx2,
    Avx512,
}

impl Kernel {
    /// The widest this CPU runs.
    fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        if super::simd::detected_avx512() {
            return Self::Avx512;
        }
        match super::simd::detected() {
            true => Self::Avx2,
            false => Self::Scalar,
        }
    }
}

/// [`matmul`] on the given inner loops.
fn matmul_with<W: Widen>(
    kernel: Kernel,
    x: &[f32],
    rows: usize,
    tiles: &[W],
    k: usize,
    n: usize,
) -> Vec<f32> {
    let count = n.div_ceil(TILE);
    assert_eq!(x.len(), rows * k, "x is not [rows, k]");
    assert_eq!(
        tiles.len(),
        count * k * TILE,
        "not the tiles of a [k, n] weight"
    );
    let stretches = k.div_ceil(TILE_SPAN).max(1);
    let wanted = 2 * rayon::current_num_threads();
    let blocks = wanted.div_ceil(stretches).clamp(1, count.max(1));
    let per_block = count.div_ceil(blocks);
    let block_tiles = |b: usize| (b * per_block).min(count)..count.min((b + 1) * per_block);
    let partials: Vec<Vec<f32>> = (0..stretches * blocks)
        .into_par_iter()
        .map(|task| {
            let (t, b) = (task / blocks, task % blocks);
            let ks = t * TILE_SPAN..k.min((t + 1) * TILE_SPAN);
            let span = Span::new(x, rows, [k, n], ks);
            span.block(kernel, tiles, block_tiles(b))
        })
        .collect();
    // Block `b` of stretch `t` is `partials[t * blocks + b]`: the sums run over t in order.
    let mut y = vec![0.0f32; rows * n];
    for (task, part) in partials.iter().enumerate() {
        let cols = block_tiles(task % blocks);
        let c0 = (cols.start * TILE).min(n);
        let (width, end) = (cols.len() * TILE, n.min(cols.end * TILE));
        for r in 0..rows {
            let (out, add) = (&mut y[r * n..][c0..end], &part[r * width..]);
            out.iter_mut().zip(add).for_each(|(a, p)| *a += p);
        }
    }
    y
}

/// Tile rows ahead of each stream that the SIMD kernels ask the cache for, so the next steps'
/// weights are on their way while this step's multiply-adds run.
#[cfg(target_arch = "x86_64")]
const PREFETCH: usize = 8;

/// One task's share of the product: rows `ks` (one stretch) of the weight, for every row of `x`.
struct Span {
    rows: usize,
    /// The weight's `[k, n]`.
    dims: [usize; 2],
    ks: Range<usize>,
    /// Rows per stream: weight rows `ks.start + j · run + i` for `j < STREAMS`, `i < run`.
    run: usize,
    /// The inputs `[steps, rows]` in the order the kernels take the weight rows: row
    /// `ks.start + j · run + i` for each `i`, `j < STREAMS`, then the rows past the streams. A
    /// group's inputs for a step are then adjacent, at fixed offsets from one pointer.
    inputs: Vec<f32>,
}

/// Where a tile's rows for one stretch lie in the tiles: each stream's first row, and the first
/// of the rows past the streams (which follow one another), in elements.
struct TileRows {
    streams: [usize; STREAMS],
    rest: usize,
}

impl Span {
    /// Rows `ks` of the weight `[k, n]`, for `x` `[rows, k]`.
    fn new(x: &[f32], rows: usize, [k, n]: [usize; 2], ks: Range<usize>) -> Self {
        let run = ks.len() / STREAMS;
        let streamed = (0..run).flat_map(|i| (0..STREAMS).map(move |j| i + j * run));
        let order = streamed.chain(run * STREAMS..ks.len());
        let mut inputs = Vec::with_capacity(ks.len() * rows);
        for at in order {
            inputs.extend((0..rows).map(|r| x[r * k + ks.start + at]));
        }
        Self {
            rows,
            dims: [k, n],
            ks,
            run,
            inputs,
        }
    }

    /// Tile `t`'s rows of this stretch.
    fn tile_rows(&self, t: usize) -> TileRows {
        let [k, n] = self.dims;
        let first = |i: usize| match i < k {
            true => tile_offset(k, n, t, i),
            false => 0,
        };
        TileRows {
            streams: std::array::from_fn(|j| first(self.ks.start + j * self.run)),
            rest: first(self.ks.start + self.run * STREAMS),
        }
    }

    /// Weight rows past the streams.
    fn rest(&self) -> usize {
        self.ks.len() - self.run * STREAMS
    }

    /// The partial sums `[rows, tiles · TILE]` of this stretch for the tiles `block`.
    fn block<W: Widen>(&self, kernel: Kernel, tiles: &[W], block: Range<usize>) -> Vec<f32> {
        let width = block.len() * TILE;
        let mut acc = vec![0.0f32; self.rows * width];
        for (i, t) in block.enumerate() {
            let sums = Sums {
                acc: &mut acc,
                width,
                col: i * TILE,
            };
            self.tile(kernel, tiles, self.tile_rows(t), sums);
        }
        #[cfg(target_arch = "x86_64")]
        if W::INTERLEAVED && kernel == Kernel::Avx2 {
            // SAFETY: AVX2 was detected (it was chosen); the columns are `acc`'s own.
            unsafe { deinterleave(&mut acc, self.rows, width, 0..width) };
        }
        acc
    }

    /// One tile's sums for every row, written to `sums`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn tile<W: Widen>(&self, kernel: Kernel, tiles: &[W], at: TileRows, sums: Sums<'_>) {
        let last = at.streams.iter().map(|&s| s + self.run * TILE);
        let end = last
            .chain([at.rest + self.rest() * TILE])
            .max()
            .unwrap_or(0);
        assert!(end <= tiles.len() && self.inputs.len() == self.ks.len() * self.rows);
        assert!(sums.acc.len() >= self.rows * sums.width && sums.col + TILE <= sums.width);
        #[cfg(target_arch = "x86_64")]
        if kernel != Kernel::Scalar {
            // SAFETY: a SIMD kernel is only chosen where its features were detected at run time;
            // the tile's rows and the sums are in bounds (asserted).
            unsafe { self.tile_simd(kernel == Kernel::Avx512, tiles, at, sums) };
            return;
        }
        self.tile_scalar(tiles, at, sums);
    }

    /// Portable version: the weight rows in the kernels' order, each product rounded before it
    /// is added.
    fn tile_scalar<W: Widen>(&self, tiles: &[W], at: TileRows, sums: Sums<'_>) {
        let streamed = (0..self.run).flat_map(|i| at.streams.map(|s| s + i * TILE));
        let rows = streamed.chain((0..self.rest()).map(|i| at.rest + i * TILE));
        for (step, row) in rows.enumerate() {
            let w = &tiles[row..][..TILE];
            for r in 0..self.rows {
                let a = self.inputs[step * self.rows + r];
                let out = &mut sums.acc[r * sums.width + sums.col..][..TILE];
                out.iter_mut()
                    .zip(w)
                    .for_each(|(o, w)| *o += a * w.to_f32());
            }
        }
    }
}

/// Where a tile's sums go: columns `col..col + TILE` of `acc` `[rows, width]`.
struct Sums<'a> {
    acc: &'a mut [f32],
    width: usize,
    col: usize,
}

#[cfg(target_arch = "x86_64")]
impl Span {
    /// The tile's rows in groups whose sums stay in registers: pairs with AVX2 (four vectors
    /// a row), up to eight rows with AVX-512's thirty-two registers (two a row). A group's sums
    /// run over the whole stretch (the weight from memory once, from L2 for the other groups)
    /// and are stored once.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C, and AVX-512F when `wide`; the tile's rows lie in
    /// `tiles` and the sums in `acc`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile_simd<W: Widen>(&self, wide: bool, tiles: &[W], at: TileRows, sums: Sums<'_>) {
        let out = |r: usize| sums.acc[r * sums.width + sums.col..].as_ptr().cast_mut();
        let base = tiles.as_ptr();
        let group = Group {
            streams: at.streams.map(|s| base.wrapping_add(s)),
            rest: base.wrapping_add(at.rest),
            width: sums.width,
        };
        let mut r = 0;
        // SAFETY (every call): the group's rows exist in `inputs` and `acc`, the tile's rows in
        // `tiles` (contract); AVX-512F when `wide` (contract).
        unsafe {
            while wide && r + 8 <= self.rows {
                self.group512::<W, 8>(&group, r, out(r));
                r += 8;
            }
            if wide && r + 4 <= self.rows {
                self.group512::<W, 4>(&group, r, out(r));
                r += 4;
            }
            while r + 2 <= self.rows {
                match wide {
                    true => self.group512::<W, 2>(&group, r, out(r)),
                    false => self.group::<W, 2>(&group, r, out(r)),
                }
                r += 2;
            }
            if r < self.rows {
                match wide {
                    true => self.group512::<W, 1>(&group, r, out(r)),
                    false => self.group::<W, 1>(&group, r, out(r)),
                }
            }
        }
    }

    /// Rows `r..r + R` of one tile with 512-bit vectors: `[R, TILE]` sums in `2R` registers
    /// over the stretch (its streams, then the rows past them), stored at `out` (rows `width`
    /// apart).
    ///
    /// # Safety
    /// As [`Span::tile_simd`]; `out` is row `r`'s first sum of the tile in `acc`.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    #[inline]
    unsafe fn group512<W: Widen, const R: usize>(&self, at: &Group<W>, r: usize, out: *mut f32) {
        use std::arch::x86_64::*;
        let mut x = self.inputs[r..].as_ptr();
        let mut sums = [[_mm512_setzero_ps(); 2]; R];
        // SAFETY: steps below `ks.len()` of `inputs`, the tile's rows, rows `r..r + R` of
        // `inputs` and `out` (contract).
        unsafe {
            for step in 0..self.run {
                for p in at.streams.map(|p| p.add(step * TILE)) {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH * TILE).cast());
                    let [w0, w1] = W::load32(p);
                    for (i, sum) in sums.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*x.add(i));
                        sum[0] = _mm512_fmadd_ps(xv, w0, sum[0]);
                        sum[1] = _mm512_fmadd_ps(xv, w1, sum[1]);
                    }
                    x = x.add(self.rows);
                }
            }
            for step in 0..self.rest() {
                let [w0, w1] = W::load32(at.rest.add(step * TILE));
                for (i, sum) in sums.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*x.add(i));
                    sum[0] = _mm512_add_ps(sum[0], _mm512_mul_ps(xv, w0));
                    sum[1] = _mm512_add_ps(sum[1], _mm512_mul_ps(xv, w1));
                }
                x = x.add(self.rows);
            }
            for (i, sum) in sums.iter().enumerate() {
                _mm512_storeu_ps(out.add(i * at.width), sum[0]);
                _mm512_storeu_ps(out.add(i * at.width + 16), sum[1]);
            }
        }
    }

    /// [`Span::group512`] with AVX2: four registers a row, so pairs of rows (eight sums, four
    /// weight vectors and a broadcast in sixteen registers).
    ///
    /// # Safety
    /// As [`Span::group512`], without AVX-512.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn group<W: Widen, const R: usize>(&self, at: &Group<W>, r: usize, out: *mut f32) {
        use std::arch::x86_64::*;
        let mut x = self.inputs[r..].as_ptr();
        let mut sums = [[_mm256_setzero_ps(); 4]; R];
        let load = |p: *const W| {
            // SAFETY: `p` is a row of the tile (the callers' contract).
            let ([w0, w1], [w2, w3]) = unsafe { (W::load16(p), W::load16(p.add(16))) };
            [w0, w1, w2, w3]
        };
        // SAFETY: as in `group512`.
        unsafe {
            for step in 0..self.run {
                for p in at.streams.map(|p| p.add(step * TILE)) {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH * TILE).cast());
                    let w = load(p);
                    for (i, sum) in sums.iter_mut().enumerate() {
                        let xv = _mm256_set1_ps(*x.add(i));
                        for (s, wv) in sum.iter_mut().zip(w) {
                            *s = _mm256_fmadd_ps(xv, wv, *s);
                        }
                    }
                    x = x.add(self.rows);
                }
            }
            for step in 0..self.rest() {
                let w = load(at.rest.add(step * TILE));
                for (i, sum) in sums.iter_mut().enumerate() {
                    let xv = _mm256_set1_ps(*x.add(i));
                    for (s, wv) in sum.iter_mut().zip(w) {
                        *s = _mm256_add_ps(*s, _mm256_mul_ps(xv, wv));
                    }
                }
                x = x.add(self.rows);
            }
            for (i, sum) in sums.iter().enumerate() {
                for (v, s) in sum.iter().enumerate() {
                    _mm256_storeu_ps(out.add(i * at.width + 8 * v), *s);
                }
            }
        }
    }
}

/// A tile's rows for the group kernels: each stream's first, the first past the streams, and
/// the width of the sums they write.
#[cfg(target_arch = "x86_64")]
struct Group<W> {
    streams: [*const W; STREAMS],
    rest: *const W,
    width: usize,
}

/// Puts back in order the sums of each sixteen columns that an interleaving
/// [`Widen::load16`] produced as (even columns, odd columns).
///
/// # Safety
/// The CPU must have AVX2; `cols` (a multiple of 16 long) lies within `0..n` and `acc` is
/// `[rows, n]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn deinterleave(acc: &mut [f32], rows: usize, n: usize, cols: Range<usize>) {
    use std::arch::x86_64::*;
    for r in 0..rows {
        for c in cols.clone().step_by(16) {
            let sixteen = &mut acc[r * n + c..][..16];
            // SAFETY: `sixteen` holds sixteen floats.
            unsafe {
                let p = sixteen.as_mut_ptr();
                let (even, odd) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
                // Per 128-bit lane: columns 0–3 | 8–11 and 4–7 | 12–15.
                let low = _mm256_unpacklo_ps(even, odd);
                let high = _mm256_unpackhi_ps(even, odd);
                _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(low, high));
                _mm256_storeu_ps(p.add(8), _mm256_permute2f128_ps::<0x31>(low, high));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};

    use super::*;

    /// `w` `[k, n]` in column tiles ([`super::layout::Tiles`]).
    fn tiled<W: Copy + Default>(w: &[W], k: usize, n: usize) -> Vec<W> {
        let mut tiles = vec![W::default(); n.div_ceil(TILE) * k * TILE];
        for (i, row) in w.chunks_exact(n).enumerate() {
            for (t, part) in row.chunks(TILE).enumerate() {
                let at = tile_offset(k, n, t, i);
                tiles[at..at + part.len()].copy_from_slice(part);
            }
        }
        tiles
    }

    /// The kernel on `w` `[k, n]`, tiled first.
    fn product<W: Widen + Default>(
        x: &[f32],
        rows: usize,
        w: &[W],
        k: usize,
        n: usize,
    ) -> Vec<f32> {
        matmul(x, rows, &tiled(w, k, n), k, n)
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (h >> 16) as f32 / 65536.0 - 0.5
            })
            .collect()
    }

    /// The kernel against an f64 product of the same (already rounded) weights.
    fn check<W: Widen + Default>(x: &[f32], rows: usize, w: &[W], k: usize, n: usize) {
        let mut want = vec![0.0f64; rows * n];
        for r in 0..rows {
            for kk in 0..k {
                for c in 0..n {
                    want[r * n + c] += f64::from(x[r * k + kk]) * f64::from(w[kk * n + c].to_f32());
                }
            }
        }
        let got = product(x, rows, w, k, n);
        let err = got
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .map(|d| if d.is_nan() { f64::INFINITY } else { d })
            .fold(0.0, f64::max);
        // Relative to the largest output: int8 values make outputs ~100× larger.
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let name = std::any::type_name::<W>();
        assert!(
            err < 1e-5 * scale,
            "{name} {rows}x{k}x{n}: max error {err} of {scale}"
        );
    }

    /// Odd sizes exercise the k remainder, the column tail and several row groups.
    #[test]
    fn matches_a_plain_product_for_every_weight_type() {
        for (rows, k, n) in [
            (1, 7, 13),
            (2, 64, 2048),
            (5, 131, 1033),
            (8, 256, 72),
            (2, 1030, 40),
            (8, 600, 9000),
            (13, 1030, 200),
            (16, 520, 100),
        ] {
            let x = values(rows * k, 1);
            let w = values(k * n, 2);
            check(&x, rows, &w, k, n);
            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            check(&x, rows, &w16, k, n);
            let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
            check(&x, rows, &wb, k, n);
            let wq: Vec<i8> = w.iter().map(|&v| (v * 254.0) as i8).collect();
            check(&x, rows, &wq, k, n);
        }
    }

    /// A row's sums do not depend on the rows beside it (continuous batching relies on it): each
    /// row of a product of up to 16 rows equals, bit for bit, that row's product alone.
    #[test]
    fn a_row_does_not_depend_on_the_row_count() {
        let (k, n) = (1100, 300);
        let w: Vec<bf16> = values(k * n, 6)
            .iter()
            .map(|&v| bf16::from_f32(v))
            .collect();
        let wf = values(k * n, 7);
        for rows in [2, 3, 8, 13, 16] {
            let x = values(rows * k, 5);
            let (all, all_f) = (product(&x, rows, &w, k, n), product(&x, rows, &wf, k, n));
            for r in 0..rows {
                let row = &x[r * k..][..k];
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                let (alone, alone_f) = (product(row, 1, &w, k, n), product(row, 1, &wf, k, n));
                assert_eq!(
                    bits(&all[r * n..][..n]),
                    bits(&alone),
                    "bf16 row {r} of {rows}"
                );
                assert_eq!(
                    bits(&all_f[r * n..][..n]),
                    bits(&alone_f),
                    "f32 row {r} of {rows}"
                );
            }
        }
    }

    /// On a CPU with AVX-512, its kernel gives the AVX2 kernel's bits for every weight type and
    /// row group, so the same seed gives the same audio on either kind of machine.
    #[test]
    fn the_avx512_kernel_gives_the_avx2_kernels_bits() {
        if Kernel::detected() != Kernel::Avx512 {
            eprintln!("no AVX-512 on this CPU: nothing to compare");
            return;
        }
        let (k, n) = (1030, 1000);
        let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let w = values(k * n, 8);
        let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
        let wq: Vec<i8> = w.iter().map(|&v| (v * 254.0) as i8).collect();
        let (w, w16, wb, wq) = (
            tiled(&w, k, n),
            tiled(&w16, k, n),
            tiled(&wb, k, n),
            tiled(&wq, k, n),
        );
        for rows in [1, 2, 3, 5, 8, 13, 16] {
            let x = values(rows * k, 9);
            let both =
                |f: &dyn Fn(Kernel) -> Vec<f32>| (bits(f(Kernel::Avx2)), bits(f(Kernel::Avx512)));
            let pairs = [
                ("f32", both(&|kn| matmul_with(kn, &x, rows, &w, k, n))),
                ("f16", both(&|kn| matmul_with(kn, &x, rows, &w16, k, n))),
                ("bf16", both(&|kn| matmul_with(kn, &x, rows, &wb, k, n))),
                ("int8", both(&|kn| matmul_with(kn, &x, rows, &wq, k, n))),
            ];
            for (name, (avx2, avx512)) in pairs {
                assert!(avx2 == avx512, "{name}, {rows} rows: the kernels differ");
            }
        }
    }

    /// Same inputs, same bits, on 1 to 16 threads: no sum depends on how work is shared out.
    #[test]
    fn the_result_does_not_depend_on_the_thread_count() {
        for (rows, k, n) in [(2, 2056, 1000), (8, 8192, 64), (1, 300, 4100)] {
            let x = values(rows * k, 3);
            let w: Vec<bf16> = values(k * n, 4)
                .iter()
                .map(|&v| bf16::from_f32(v))
                .collect();
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| product(&x, rows, &w, k, n))
            };
            let one = on(1);
            assert!(one.iter().all(|v| v.is_finite()));
            for threads in [2, 3, 5, 16] {
                let got = on(threads);
                let same = one
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{rows}x{k}x{n} on {threads} threads differs from 1 thread"
                );
            }
        }
    }
}
