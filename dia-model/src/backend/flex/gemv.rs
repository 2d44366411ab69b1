//! `[rows, k] · [k, n]` for a handful of rows, as in a decode step: memory-bound, so the kernel
//! streams the weight once, in long contiguous runs, for all rows at a time, and splits the
//! weight rows over threads. Weights in f32, f16, bf16 or int8; accumulation in f32.

use std::ops::Range;

use rayon::prelude::*;

use super::simd::Widen;

/// Row count up to which this kernel is used: a decode step has two rows per item, so up to
/// eight items of a continuous batch, each row summed exactly as when it is alone.
pub const MAX_ROWS: usize = 16;

/// `x` `[rows, k]` (f32, row-major) times `w` `[k, n]` (row-major) → `[rows, n]` f32.
///
/// The weight rows are split into stretches of [`K_SPAN`] (split-K): each task streams one
/// contiguous stretch of `w`, which the hardware prefetcher follows at full bandwidth, into its
/// own partial `[rows, n]` sums; the partials are added at the end, in stretch order (a few kB
/// against megabytes of weight). When there are fewer stretches than tasks the threads need,
/// the columns are cut into blocks too, which adds parallelism without changing any sum.
pub fn matmul<W: Widen>(x: &[f32], rows: usize, w: &[W], k: usize, n: usize) -> Vec<f32> {
    matmul_with(Kernel::detected(), x, rows, w, k, n)
}

/// The inner loops [`matmul`] runs. Each gives the same bits: per output element the same
/// products are added in the same order, with the same fused multiply-adds.
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
    w: &[W],
    k: usize,
    n: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), rows * k, "x is not [rows, k]");
    assert_eq!(w.len(), k * n, "w is not [k, n]");
    let operands = Operands { x, k, w, n };
    let stretches = k.div_ceil(K_SPAN).max(1);
    let wanted = 2 * rayon::current_num_threads();
    let blocks = wanted.div_ceil(stretches).clamp(1, n.div_ceil(COLS).max(1));
    let block = n.div_ceil(blocks).next_multiple_of(COLS);
    let partials: Vec<Vec<f32>> = (0..stretches * blocks)
        .into_par_iter()
        .map(|task| {
            let (t, b) = (task / blocks, task % blocks);
            let ks = t * K_SPAN..k.min((t + 1) * K_SPAN);
            let cols = (b * block).min(n)..n.min((b + 1) * block);
            let mut acc = vec![0.0f32; rows * n];
            // Column chunks bound the partial sums to what L2 holds when there are many rows.
            let chunk = (CHUNK_FLOATS / rows).next_multiple_of(COLS);
            for c0 in cols.clone().step_by(chunk) {
                accumulate(
                    kernel,
                    &operands,
                    ks.clone(),
                    c0..cols.end.min(c0 + chunk),
                    &mut acc,
                );
            }
            acc
        })
        .collect();
    // Block `b` of stretch `t` is `partials[t * blocks + b]`: the sums run over t in order.
    let mut y = vec![0.0f32; rows * n];
    for (task, part) in partials.iter().enumerate() {
        let b = task % blocks;
        let cols = (b * block).min(n)..n.min((b + 1) * block);
        for r in 0..rows {
            let (out, add) = (&mut y[r * n..][cols.clone()], &part[r * n..][cols.clone()]);
            out.iter_mut().zip(add).for_each(|(a, p)| *a += p);
        }
    }
    y
}

/// The product's inputs: `x` `[rows, k]` and `w` `[k, n]`, both row-major.
#[derive(Clone, Copy)]
struct Operands<'a, W> {
    x: &'a [f32],
    k: usize,
    w: &'a [W],
    n: usize,
}

/// Partial sums per task, in f32 elements (128 kB: well inside L2).
const CHUNK_FLOATS: usize = 32 * 1024;

/// Weight rows per split-K stretch: fixed, so every sum is added in the same order whatever the
/// thread count (the same seed gives the same codes on any machine); long enough to stream
/// (Dia's 2048-row projections make four stretches, two per thread on two cores), and a
/// multiple of [`STREAMS`] so its streams come out whole.
const K_SPAN: usize = 512;

/// Adds `x[.., ks]` · `w[ks, cols]` to `acc[.., cols]` (`acc` is `[rows, n]`).
fn accumulate<W: Widen>(
    kernel: Kernel,
    operands: &Operands<'_, W>,
    ks: Range<usize>,
    cols: Range<usize>,
    acc: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if kernel != Kernel::Scalar {
        // SAFETY: a SIMD kernel is only chosen where its features were detected at run time;
        // the bounds are asserted inside.
        unsafe { accumulate_simd(kernel == Kernel::Avx512, operands, ks, cols, acc) };
        return;
    }
    accumulate_scalar(operands, ks, cols, acc);
}

/// Portable version, and the tails (k rows past the last block, columns past the
/// last vector of eight) of the SIMD one.
fn accumulate_scalar<W: Widen>(
    operands: &Operands<'_, W>,
    ks: Range<usize>,
    cols: Range<usize>,
    acc: &mut [f32],
) {
    let &Operands { x, k, w, n } = operands;
    let rows = x.len() / k;
    for kk in ks {
        let wrow = &w[kk * n..][cols.clone()];
        for r in 0..rows {
            let a = x[r * k + kk];
            let out = &mut acc[r * n..][cols.clone()];
            for (o, wv) in out.iter_mut().zip(wrow) {
                *o += a * wv.to_f32();
            }
        }
    }
}

/// Columns per step of the SIMD kernel: four vectors of eight.
const COLS: usize = 32;

/// Weight rows per pass of the SIMD kernel, one memory stream each (measured on the 2-core
/// EPYC, bf16: 2 streams 32 GB/s, 4 streams 35–37, 6 or 8 streams 33–34, 16 streams 19–22).
const STREAMS: usize = 4;

/// `STREAMS` weight rows at a time, 32 columns per step, rows of `x` in groups whose sums stay
/// in registers (pairs with AVX2, up to eight rows with AVX-512's 32 registers); the weight
/// rows come from memory once and from L1 for the other groups.
///
/// The task's rows are cut into `STREAMS` equal stretches and a pass takes one row of each:
/// the prefetcher follows a few long sequential streams instead of a block of adjacent rows
/// (a few kB each) that it must pick up anew after every block (bf16 `[2048, 2048]`: 28 GB/s
/// with blocks of 8 adjacent rows, 35 GB/s with 4 stretches).
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C, and AVX-512F when `wide`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn accumulate_simd<W: Widen>(
    wide: bool,
    operands: &Operands<'_, W>,
    ks: Range<usize>,
    cols: Range<usize>,
    acc: &mut [f32],
) {
    let &Operands { x, k, w, n } = operands;
    let rows = x.len() / k;
    let stretch = ks.len() / STREAMS;
    let streamed_end = ks.start + stretch * STREAMS;
    let vec_end = cols.start + (cols.len() / COLS) * COLS;
    assert!(ks.end <= k && cols.end <= n && acc.len() == rows * n);
    let stripe = Stripe {
        x,
        k,
        n,
        stretch,
        cols: cols.start..vec_end,
        acc: acc.as_mut_ptr(),
    };
    for kk in ks.start..ks.start + stretch {
        // SAFETY: rows kk + j · stretch < streamed_end ≤ k of `w` and `x`; rows 0..rows of `x`
        // and `acc` exist; columns are below n (asserted); AVX-512F when `wide` (contract).
        unsafe {
            match wide {
                true => stripe.passes_avx512(w, kk, rows),
                false => stripe.passes_avx2(w, kk, rows),
            }
        }
    }
    if W::INTERLEAVED && !wide {
        // SAFETY: AVX2 was detected by the caller; rows and columns are in bounds (asserted).
        unsafe { deinterleave(acc, rows, n, cols.start..vec_end) };
    }
    accumulate_scalar(operands, streamed_end..ks.end, cols.start..vec_end, acc);
    accumulate_scalar(operands, ks, vec_end..cols.end, acc);
}

/// One task's operands for [`Stripe::pass`]: `acc` is `[rows, n]`, `cols` a multiple of 32 long,
/// the pass's weight rows `stretch` apart.
#[cfg(target_arch = "x86_64")]
struct Stripe<'a> {
    x: &'a [f32],
    k: usize,
    n: usize,
    stretch: usize,
    cols: Range<usize>,
    acc: *mut f32,
}

#[cfg(target_arch = "x86_64")]
impl Stripe<'_> {
    /// [`Stripe::pass`] for every row of `x`, in pairs.
    ///
    /// # Safety
    /// As [`Stripe::pass`], for rows `0..rows`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn passes_avx2<W: Widen>(&self, w: &[W], kk: usize, rows: usize) {
        let mut r = 0;
        while r + 2 <= rows {
            // SAFETY: rows r, r + 1 exist (contract).
            unsafe { self.pass::<W, 2>(w, kk, r) };
            r += 2;
        }
        if r < rows {
            // SAFETY: row r exists (contract).
            unsafe { self.pass::<W, 1>(w, kk, r) };
        }
    }

    /// [`Stripe::pass512`] for every row of `x`, in groups of eight, then four, two and one.
    ///
    /// # Safety
    /// As [`Stripe::pass512`], for rows `0..rows`.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    unsafe fn passes_avx512<W: Widen>(&self, w: &[W], kk: usize, rows: usize) {
        let mut r = 0;
        // SAFETY (every call): the group's rows exist (contract).
        while r + 8 <= rows {
            unsafe { self.pass512::<W, 8>(w, kk, r) };
            r += 8;
        }
        if r + 4 <= rows {
            unsafe { self.pass512::<W, 4>(w, kk, r) };
            r += 4;
        }
        if r + 2 <= rows {
            unsafe { self.pass512::<W, 2>(w, kk, r) };
            r += 2;
        }
        if r < rows {
            unsafe { self.pass512::<W, 1>(w, kk, r) };
        }
    }

    /// `x[r + i, kk + j · stretch]` for each of `R` rows and `STREAMS` streams: the inputs one
    /// pass multiplies the weight rows by.
    #[inline(always)]
    fn row_inputs<const R: usize>(&self, kk: usize, r: usize) -> [[f32; STREAMS]; R] {
        std::array::from_fn(|i| {
            std::array::from_fn(|j| self.x[(r + i) * self.k + kk + j * self.stretch])
        })
    }

    /// [`Stripe::pass`] with 512-bit vectors: a 32-column step is two registers per row, so
    /// eight rows' sums (sixteen registers) stay in AVX-512's thirty-two, and each weight
    /// vector is loaded (and widened) once per eight rows instead of once per two.
    ///
    /// # Safety
    /// As [`Stripe::pass`]; the CPU must also have AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    #[inline]
    unsafe fn pass512<W: Widen, const R: usize>(&self, w: &[W], kk: usize, r: usize) {
        use std::arch::x86_64::*;
        let (n, stretch) = (self.n, self.stretch);
        let xs = self.row_inputs::<R>(kk, r);
        let base = w[kk * n..].as_ptr();
        for c in self.cols.clone().step_by(COLS) {
            // SAFETY: per the contract above.
            unsafe {
                let outs: [*mut f32; R] = std::array::from_fn(|i| self.acc.add((r + i) * n + c));
                let mut sums: [[__m512; 2]; R] = std::array::from_fn(|i| {
                    [_mm512_loadu_ps(outs[i]), _mm512_loadu_ps(outs[i].add(16))]
                });
                for j in 0..STREAMS {
                    let [w0, w1] = W::load32(base.add(j * stretch * n + c));
                    for (sum, xr) in sums.iter_mut().zip(&xs) {
                        let xv = _mm512_set1_ps(xr[j]);
                        sum[0] = _mm512_fmadd_ps(xv, w0, sum[0]);
                        sum[1] = _mm512_fmadd_ps(xv, w1, sum[1]);
                    }
                }
                for (sum, out) in sums.iter().zip(outs) {
                    _mm512_storeu_ps(out, sum[0]);
                    _mm512_storeu_ps(out.add(16), sum[1]);
                }
            }
        }
    }

    /// Adds `x[r..r + R, kk + j · stretch]` · weight row `kk + j · stretch`, for each
    /// `j < STREAMS`, over `cols`, to `acc[r..r + R]`.
    ///
    /// # Safety
    /// `w` is `[k, n]` and rows `kk + j · stretch` (j < STREAMS) lie below `k`; rows
    /// `r..r + R` exist in `x` and `acc`; `cols` lies within `0..n`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn pass<W: Widen, const R: usize>(&self, w: &[W], kk: usize, r: usize) {
        use std::arch::x86_64::*;
        let (n, stretch) = (self.n, self.stretch);
        let xs = self.row_inputs::<R>(kk, r);
        let base = w[kk * n..].as_ptr();
        for c in self.cols.clone().step_by(COLS) {
            // SAFETY: per the contract above.
            unsafe {
                let outs: [*mut f32; R] = std::array::from_fn(|i| self.acc.add((r + i) * n + c));
                // Sums for `[R rows, 32 columns]`: eight registers at R = 2, with four weight
                // vectors and one broadcast that leaves three of AVX2's sixteen spare.
                let mut sums: [[__m256; 4]; R] = std::array::from_fn(|i| {
                    std::array::from_fn(|v| _mm256_loadu_ps(outs[i].add(8 * v)))
                });
                for j in 0..STREAMS {
                    let p = base.add(j * stretch * n + c);
                    let [w0, w1] = W::load16(p);
                    let [w2, w3] = W::load16(p.add(16));
                    for (sum, xr) in sums.iter_mut().zip(&xs) {
                        let xv = _mm256_set1_ps(xr[j]);
                        sum[0] = _mm256_fmadd_ps(xv, w0, sum[0]);
                        sum[1] = _mm256_fmadd_ps(xv, w1, sum[1]);
                        sum[2] = _mm256_fmadd_ps(xv, w2, sum[2]);
                        sum[3] = _mm256_fmadd_ps(xv, w3, sum[3]);
                    }
                }
                for (sum, out) in sums.iter().zip(outs) {
                    for (v, s) in sum.iter().enumerate() {
                        _mm256_storeu_ps(out.add(8 * v), *s);
                    }
                }
            }
        }
    }
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

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (h >> 16) as f32 / 65536.0 - 0.5
            })
            .collect()
    }

    /// The kernel against an f64 product of the same (already rounded) weights.
    fn check<W: Widen>(x: &[f32], rows: usize, w: &[W], k: usize, n: usize) {
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
            let (all, all_f) = (matmul(&x, rows, &w, k, n), matmul(&x, rows, &wf, k, n));
            for r in 0..rows {
                let row = &x[r * k..][..k];
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                let (alone, alone_f) = (matmul(row, 1, &w, k, n), matmul(row, 1, &wf, k, n));
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
                pool.install(|| matmul(&x, rows, &w, k, n))
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
