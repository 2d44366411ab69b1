//! `[rows, k] · [k, n]` with int8 activations against int8 weights (weight storage `w8a8`):
//! each row of `x` is quantized to int8 with one scale (its largest magnitude over 127), the
//! dot products are summed exactly in i32 by integer instructions, and each sum is scaled once:
//! `y[r, c] = sum · x_scale[r] · w_scale[c]`. The sums are exact, so every kernel (AVX-512
//! VNNI, AVX-VNNI, AVX2, scalar), split, thread count and batch gives the same bits. The weight
//! is in quad tiles ([`quad_offset`]): four input rows of a column in adjacent bytes, as the
//! integer dot-product instructions read them.

use std::ops::Range;

use rayon::prelude::*;

use super::layout::{TILE, TILE_SPAN, TILE_STREAMS as STREAMS, tile_offset};

/// Input rows summed into each 32-bit lane by one integer dot-product instruction.
pub const QUAD: usize = 4;

/// Rows a task takes at a time; up to this many, each stretch of the weight is also a task of
/// its own (split-K), as a decode step has too few rows to keep the threads busy otherwise.
const CHUNK_ROWS: usize = 16;

/// The weight's input rows `k` padded for quad tiles: a multiple of 16, so that every stream of
/// every stretch (Flex's column tiles) holds whole quads.
pub fn padded_rows(k: usize) -> usize {
    k.next_multiple_of(QUAD * STREAMS)
}

/// Where weight element `(i, c)` of a `[k, n]` int8 weight lies in its quad tiles: the column
/// tiles of [`super::layout::Tiles`] over `k` padded ([`padded_rows`]), each run of four rows of
/// a tile stored column by column, a column's four rows in four adjacent bytes.
pub fn quad_offset(k: usize, n: usize, i: usize, c: usize) -> usize {
    let quad = tile_offset(padded_rows(k), n, c / TILE, i - i % QUAD);
    quad + (c % TILE) * QUAD + i % QUAD
}

/// `w` `[k, n]` (row-major) in quad tiles, zero past `k` and `n`; each stretch on a thread of
/// its own (a weight of gigabytes is laid out in seconds).
pub fn quad_tiles(w: &[i8], k: usize, n: usize) -> Vec<i8> {
    let (kp, count) = (padded_rows(k), n.div_ceil(TILE));
    let mut tiles = vec![0i8; count * kp * TILE];
    let stretch = TILE_SPAN * count * TILE;
    tiles
        .par_chunks_mut(stretch)
        .enumerate()
        .for_each(|(s, part)| {
            for i in (s * TILE_SPAN..k.min((s + 1) * TILE_SPAN)).step_by(QUAD) {
                for t in 0..count {
                    let base = quad_offset(k, n, i, t * TILE) - s * stretch;
                    let quad = &mut part[base..base + QUAD * TILE];
                    for (j, row) in w[i * n..].chunks(n).take(QUAD.min(k - i)).enumerate() {
                        for (c, &v) in row[t * TILE..].iter().take(TILE).enumerate() {
                            quad[c * QUAD + j] = v;
                        }
                    }
                }
            }
        });
    tiles
}

/// The `[k, n]` weight back from its quad tiles.
pub fn untile_quads(tiles: &[i8], k: usize, n: usize) -> Vec<i8> {
    let mut w = vec![0i8; k * n];
    for i in (0..k).step_by(QUAD) {
        for t in 0..n.div_ceil(TILE) {
            let quad = &tiles[tile_offset(padded_rows(k), n, t, i)..][..QUAD * TILE];
            for (j, row) in w[i * n..].chunks_mut(n).take(QUAD.min(k - i)).enumerate() {
                for (c, v) in row[t * TILE..].iter_mut().take(TILE).enumerate() {
                    *v = quad[c * QUAD + j];
                }
            }
        }
    }
    w
}

/// The integer kernels, each giving the same exact sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub enum Kernel {
    Scalar,
    /// `vpmaddubsw` on |x| and the weights with x's signs, then `vpmaddwd`.
    Avx2,
    /// `vpdpbusd` on 256-bit vectors (Alder Lake and later, Zen 5).
    AvxVnni,
    /// `vpdpbusd` on 512-bit vectors (Ice Lake and later, Zen 4).
    Avx512Vnni,
}

impl Kernel {
    /// The kernels this CPU runs, best first (the scalar one always).
    pub fn available() -> Vec<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            let has = |f: bool, k: Self| f.then_some(k);
            let avx2 = super::simd::detected();
            let kernels = [
                has(
                    avx2 && is_x86_feature_detected!("avx512f")
                        && is_x86_feature_detected!("avx512bw")
                        && is_x86_feature_detected!("avx512vnni"),
                    Self::Avx512Vnni,
                ),
                has(avx2 && is_x86_feature_detected!("avxvnni"), Self::AvxVnni),
                has(avx2, Self::Avx2),
            ];
            kernels
                .into_iter()
                .flatten()
                .chain([Self::Scalar])
                .collect()
        }
        #[cfg(not(target_arch = "x86_64"))]
        vec![Self::Scalar]
    }

    /// The best this CPU runs (detected once).
    fn detected() -> Self {
        use std::sync::OnceLock;
        static DETECTED: OnceLock<Kernel> = OnceLock::new();
        *DETECTED.get_or_init(|| Self::available()[0])
    }

    /// The name reports and tests use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::AvxVnni => "avx-vnni",
            Self::Avx512Vnni => "avx512-vnni",
        }
    }

    /// Whether the kernel's unsigned operand is x + 128 (its sums are corrected by 128 · Σw).
    fn offset(self) -> bool {
        matches!(self, Self::AvxVnni | Self::Avx512Vnni)
    }
}

/// The best kernel this CPU has, by name (for reports).
pub fn kernel_name() -> &'static str {
    Kernel::detected().name()
}

/// `x` `[rows, k]` (f32) times the `[k, n]` int8 weight in quad `tiles` with column `scale`
/// `[n]` → `[rows, n]` f32. A row with a non-finite value gives non-finite outputs.
pub fn matmul(x: &[f32], rows: usize, tiles: &[i8], scale: &[f32], k: usize, n: usize) -> Vec<f32> {
    matmul_with(Kernel::detected(), x, rows, tiles, scale, k, n)
}

/// [`matmul`] on the given kernel.
pub fn matmul_with(
    kernel: Kernel,
    x: &[f32],
    rows: usize,
    tiles: &[i8],
    scale: &[f32],
    k: usize,
    n: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), rows * k, "x is not [rows, k]");
    assert_eq!(scale.len(), n, "one scale per column");
    let kp = padded_rows(k);
    assert_eq!(
        tiles.len(),
        n.div_ceil(TILE) * kp * TILE,
        "not quad tiles of [k, n]"
    );
    let (q, x_scale) = quantize_rows(x, rows, k, kp);
    let sums = int_sums(kernel, &q, rows, tiles, [kp, n]);
    let mut y = vec![0.0f32; rows * n];
    for (r, (out, sums)) in y.chunks_exact_mut(n).zip(sums.chunks_exact(n)).enumerate() {
        for ((o, &s), &ws) in out.iter_mut().zip(sums).zip(scale) {
            *o = s as f32 * x_scale[r] * ws;
        }
    }
    y
}

/// Each row of `x` `[rows, k]` as int8 `[rows, kp]` (zero past `k`) and its scale: the largest
/// magnitude over 127 (1 for a zero row, NaN for a row with a non-finite value), rounded half
/// to even as [`crate::backend::generic::quantize_rows`] (rows it made come back unchanged).
pub fn quantize_rows(x: &[f32], rows: usize, k: usize, kp: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; rows * kp];
    let mut scales = Vec::with_capacity(rows);
    for (row, out) in x.chunks_exact(k).zip(q.chunks_exact_mut(kp)).take(rows) {
        let finite = row.iter().all(|v| v.is_finite());
        let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = match (finite, amax > 0.0) {
            (false, _) => f32::NAN,
            (true, true) => amax / 127.0,
            (true, false) => 1.0,
        };
        for (o, v) in out.iter_mut().zip(row) {
            *o = (v / scale).round_ties_even().clamp(-127.0, 127.0) as i8;
        }
        scales.push(scale);
    }
    (q, scales)
}

/// The exact sums `q` `[rows, kp]` · weight `[kp, n]` in i32, `[rows, n]`: tasks over chunks of
/// rows, blocks of tiles and (for few rows) stretches, each adding its sums into its own part.
fn int_sums(kernel: Kernel, q: &[i8], rows: usize, tiles: &[i8], [kp, n]: [usize; 2]) -> Vec<i32> {
    let count = n.div_ceil(TILE);
    let chunks = rows.div_ceil(CHUNK_ROWS).max(1);
    let stretches = match rows <= CHUNK_ROWS {
        true => kp.div_ceil(TILE_SPAN).max(1),
        false => 1,
    };
    let wanted = 2 * rayon::current_num_threads();
    let blocks = wanted.div_ceil(chunks * stretches).clamp(1, count.max(1));
    let per_block = count.div_ceil(blocks);
    let block_tiles = |b: usize| (b * per_block).min(count)..count.min((b + 1) * per_block);
    let per_stretch = kp.div_ceil(stretches).next_multiple_of(TILE_SPAN);
    let parts: Vec<(usize, usize, Vec<i32>)> = (0..chunks * stretches * blocks)
        .into_par_iter()
        .map(|task| {
            let (chunk, rest) = (task / (stretches * blocks), task % (stretches * blocks));
            let (s, b) = (rest / blocks, rest % blocks);
            let rs = chunk * CHUNK_ROWS..rows.min((chunk + 1) * CHUNK_ROWS);
            let ks = (s * per_stretch).min(kp)..kp.min((s + 1) * per_stretch);
            let task = Task { q, kp, n, rows: rs };
            (chunk, b, task.sums(kernel, tiles, ks, block_tiles(b)))
        })
        .collect();
    let mut sums = vec![0i32; rows * n];
    for (chunk, b, part) in parts {
        let cols = block_tiles(b);
        let (c0, c1) = ((cols.start * TILE).min(n), n.min(cols.end * TILE));
        let width = cols.len() * TILE;
        for (i, r) in (chunk * CHUNK_ROWS..rows.min((chunk + 1) * CHUNK_ROWS)).enumerate() {
            let (out, add) = (&mut sums[r * n..][c0..c1], &part[i * width..]);
            out.iter_mut().zip(add).for_each(|(a, p)| *a += p);
        }
    }
    sums
}

/// One task's rows of the quantized input.
struct Task<'a> {
    q: &'a [i8],
    kp: usize,
    n: usize,
    rows: Range<usize>,
}

impl Task<'_> {
    /// The sums `[rows, tiles · TILE]` of input rows `ks` (whole stretches) for the tiles
    /// `block`.
    fn sums(
        &self,
        kernel: Kernel,
        tiles: &[i8],
        ks: Range<usize>,
        block: Range<usize>,
    ) -> Vec<i32> {
        let width = block.len() * TILE;
        let mut acc = vec![0i32; self.rows.len() * width];
        let mut start = ks.start;
        while start < ks.end {
            let span = Span::new(self, start..ks.end.min(start + TILE_SPAN), kernel.offset());
            for (i, t) in block.clone().enumerate() {
                let streams = span.streams(self.kp, self.n, t);
                span.tile(kernel, tiles, streams, &mut acc, [width, i * TILE]);
            }
            start += TILE_SPAN;
        }
        acc
    }
}

/// One stretch of the weight for a task's rows: its quads of input in the order the kernels
/// take them (`[steps, rows]`, a quad's four bytes in one i32), step `i · STREAMS + j` being
/// the quad at row `start + j · run + 4i`.
struct Span {
    rows: usize,
    start: usize,
    /// Rows per stream (a multiple of four).
    run: usize,
    inputs: Vec<i32>,
}

impl Span {
    /// Rows `ks` of `task`'s input; with `offset` each byte is x + 128 (as unsigned).
    fn new(task: &Task<'_>, ks: Range<usize>, offset: bool) -> Self {
        let run = ks.len() / STREAMS;
        let flip = if offset { 0x8080_8080u32 as i32 } else { 0 };
        let mut inputs = Vec::with_capacity(ks.len() / QUAD * task.rows.len());
        for i in (0..run).step_by(QUAD) {
            for j in 0..STREAMS {
                let at = ks.start + j * run + i;
                for r in task.rows.clone() {
                    let b = &task.q[r * task.kp + at..][..QUAD];
                    let quad = i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
                    inputs.push(quad ^ flip);
                }
            }
        }
        Self {
            rows: task.rows.len(),
            start: ks.start,
            run,
            inputs,
        }
    }

    /// Where each stream of tile `t` starts in the tiles.
    fn streams(&self, kp: usize, n: usize, t: usize) -> [usize; STREAMS] {
        std::array::from_fn(|j| tile_offset(kp, n, t, self.start + j * self.run))
    }

    /// Adds this stretch's sums for one tile into `acc` `[rows, width]` at column `col`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn tile(
        &self,
        kernel: Kernel,
        tiles: &[i8],
        streams: [usize; STREAMS],
        acc: &mut [i32],
        [width, col]: [usize; 2],
    ) {
        let end = streams
            .iter()
            .map(|s| s + self.run * TILE)
            .max()
            .unwrap_or(0);
        assert!(end <= tiles.len() && acc.len() >= self.rows * width && col + TILE <= width);
        #[cfg(target_arch = "x86_64")]
        if kernel != Kernel::Scalar {
            let base = tiles.as_ptr();
            let at = streams.map(|s| base.wrapping_add(s));
            let out = acc[col..].as_mut_ptr();
            // SAFETY: a SIMD kernel is only chosen where its features were detected; the
            // streams' quads and the sums are in bounds (asserted).
            unsafe { x86::tile(kernel, self, at, out, width) };
            return;
        }
        self.tile_scalar(tiles, streams, acc, [width, col]);
    }

    /// Portable version: each quad's four products added to the column's sum.
    fn tile_scalar(
        &self,
        tiles: &[i8],
        streams: [usize; STREAMS],
        acc: &mut [i32],
        [width, col]: [usize; 2],
    ) {
        for step in 0..self.run / QUAD * STREAMS {
            let (i, j) = (step / STREAMS, step % STREAMS);
            let quads = &tiles[streams[j] + i * QUAD * TILE..][..QUAD * TILE];
            for r in 0..self.rows {
                let x = self.inputs[step * self.rows + r]
                    .to_le_bytes()
                    .map(|b| i32::from(b as i8));
                let out = &mut acc[r * width + col..][..TILE];
                for (c, o) in out.iter_mut().enumerate() {
                    let w = &quads[c * QUAD..][..QUAD];
                    *o += (0..QUAD).map(|b| x[b] * i32::from(w[b])).sum::<i32>();
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Kernel, QUAD, STREAMS, Span, TILE};

    /// One tile's stretch for every row of `span`, in groups whose sums stay in registers.
    ///
    /// # Safety
    /// `kernel`'s features were detected; each stream holds `span.run` rows of the tile and
    /// `out` rows `span.rows` of `TILE` sums, `width` apart.
    pub unsafe fn tile(
        kernel: Kernel,
        span: &Span,
        at: [*const i8; STREAMS],
        out: *mut i32,
        width: usize,
    ) {
        let mut r = 0;
        // SAFETY (every call): the contract, for rows `r..r + R`.
        unsafe {
            while r < span.rows {
                let left = span.rows - r;
                let o = out.add(r * width);
                r += match (kernel, left) {
                    (Kernel::Avx512Vnni, 8..) => group512::<8>(span, at, r, o, width),
                    (Kernel::Avx512Vnni, 4..) => group512::<4>(span, at, r, o, width),
                    (Kernel::Avx512Vnni, 2..) => group512::<2>(span, at, r, o, width),
                    (Kernel::Avx512Vnni, _) => group512::<1>(span, at, r, o, width),
                    (Kernel::AvxVnni, 2..) => group_vnni256::<2>(span, at, r, o, width),
                    (Kernel::AvxVnni, _) => group_vnni256::<1>(span, at, r, o, width),
                    (_, 2..) => group_avx2::<2>(span, at, r, o, width),
                    _ => group_avx2::<1>(span, at, r, o, width),
                };
            }
        }
    }

    /// Asks the cache for the quad [`PREFETCH`] steps of its stream ahead (two cache lines), so
    /// the next steps' weights are on their way while this step's dot products run.
    #[inline(always)]
    fn prefetch(p: *const i8) {
        let ahead = p.wrapping_add(PREFETCH * QUAD * TILE);
        // SAFETY: a prefetch reads nothing the program sees, wherever it points.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64).cast());
        }
    }

    /// Quads ahead of each stream that the kernels prefetch.
    const PREFETCH: usize = 8;

    /// The quad of step `step` in a tile's streams (`QUAD · TILE` bytes).
    #[inline(always)]
    fn quad(at: &[*const i8; STREAMS], step: usize) -> *const i8 {
        at[step % STREAMS].wrapping_add(step / STREAMS * QUAD * TILE)
    }

    /// Rows `r..r + R` with 512-bit `vpdpbusd` on (x + 128, w), two registers a row, and the
    /// columns' weight sums in two more for the correction: `Σ x·w = Σ (x+128)·w − 128 · Σ w`.
    /// Returns `R`.
    ///
    /// # Safety
    /// As [`tile`], with AVX-512F, BW and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2")]
    unsafe fn group512<const R: usize>(
        span: &Span,
        at: [*const i8; STREAMS],
        r: usize,
        out: *mut i32,
        width: usize,
    ) -> usize {
        let steps = span.run / QUAD * STREAMS;
        let ones = _mm512_set1_epi8(1);
        let mut sums = [[_mm512_setzero_si512(); 2]; R];
        let mut wsum = [_mm512_setzero_si512(); 2];
        // SAFETY: steps below the stretch's, rows within the span's and `out`'s (contract).
        unsafe {
            let mut x = span.inputs.as_ptr().add(r);
            for step in 0..steps {
                let p = quad(&at, step);
                prefetch(p);
                let w = [
                    _mm512_loadu_si512(p.cast()),
                    _mm512_loadu_si512(p.add(64).cast()),
                ];
                wsum[0] = _mm512_dpbusd_epi32(wsum[0], ones, w[0]);
                wsum[1] = _mm512_dpbusd_epi32(wsum[1], ones, w[1]);
                for (i, sum) in sums.iter_mut().enumerate() {
                    let xv = _mm512_set1_epi32(*x.add(i));
                    sum[0] = _mm512_dpbusd_epi32(sum[0], xv, w[0]);
                    sum[1] = _mm512_dpbusd_epi32(sum[1], xv, w[1]);
                }
                x = x.add(span.rows);
            }
            let fix = [
                _mm512_slli_epi32::<7>(wsum[0]),
                _mm512_slli_epi32::<7>(wsum[1]),
            ];
            for (i, sum) in sums.iter().enumerate() {
                for (h, half) in sum.iter().enumerate() {
                    let o = out.add(i * width + 16 * h).cast::<__m512i>();
                    let exact = _mm512_sub_epi32(*half, fix[h]);
                    _mm512_storeu_si512(o, _mm512_add_epi32(_mm512_loadu_si512(o), exact));
                }
            }
        }
        R
    }

    /// [`group512`] with 256-bit `vpdpbusd` (AVX-VNNI): four registers a row. Returns `R`.
    ///
    /// # Safety
    /// As [`tile`], with AVX2 and AVX-VNNI.
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn group_vnni256<const R: usize>(
        span: &Span,
        at: [*const i8; STREAMS],
        r: usize,
        out: *mut i32,
        width: usize,
    ) -> usize {
        let steps = span.run / QUAD * STREAMS;
        let ones = _mm256_set1_epi8(1);
        let mut sums = [[_mm256_setzero_si256(); 4]; R];
        let mut wsum = [_mm256_setzero_si256(); 4];
        // SAFETY: as in `group512`.
        unsafe {
            let mut x = span.inputs.as_ptr().add(r);
            for step in 0..steps {
                let p = quad(&at, step);
                prefetch(p);
                let w = load_quad256(p);
                for (s, wv) in wsum.iter_mut().zip(w) {
                    *s = _mm256_dpbusd_avx_epi32(*s, ones, wv);
                }
                for (i, sum) in sums.iter_mut().enumerate() {
                    let xv = _mm256_set1_epi32(*x.add(i));
                    for (s, wv) in sum.iter_mut().zip(w) {
                        *s = _mm256_dpbusd_avx_epi32(*s, xv, wv);
                    }
                }
                x = x.add(span.rows);
            }
            store256(&sums, Some(wsum), out, width);
        }
        R
    }

    /// Rows `r..r + R` with AVX2: `vpmaddubsw` on |x| and the weights with x's signs (no pair
    /// of products exceeds 2 · 127², so nothing saturates), `vpmaddwd` by ones to 32 bits.
    /// Returns `R`.
    ///
    /// # Safety
    /// As [`tile`], with AVX2.
    #[target_feature(enable = "avx2")]
    unsafe fn group_avx2<const R: usize>(
        span: &Span,
        at: [*const i8; STREAMS],
        r: usize,
        out: *mut i32,
        width: usize,
    ) -> usize {
        let steps = span.run / QUAD * STREAMS;
        let ones = _mm256_set1_epi16(1);
        let mut sums = [[_mm256_setzero_si256(); 4]; R];
        // SAFETY: as in `group512`.
        unsafe {
            let mut x = span.inputs.as_ptr().add(r);
            for step in 0..steps {
                let p = quad(&at, step);
                prefetch(p);
                let w = load_quad256(p);
                for (i, sum) in sums.iter_mut().enumerate() {
                    let xv = _mm256_set1_epi32(*x.add(i));
                    let ax = _mm256_abs_epi8(xv);
                    for (s, wv) in sum.iter_mut().zip(w) {
                        let pairs = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, xv));
                        *s = _mm256_add_epi32(*s, _mm256_madd_epi16(pairs, ones));
                    }
                }
                x = x.add(span.rows);
            }
            store256(&sums, None, out, width);
        }
        R
    }

    /// A quad of a tile as four 256-bit vectors (columns 0–7, …, 24–31).
    ///
    /// # Safety
    /// The CPU has AVX; `p` points to `QUAD · TILE` readable bytes.
    #[target_feature(enable = "avx2")]
    unsafe fn load_quad256(p: *const i8) -> [__m256i; 4] {
        // SAFETY: the four loads lie within the quad (contract).
        unsafe {
            [
                _mm256_loadu_si256(p.cast()),
                _mm256_loadu_si256(p.add(32).cast()),
                _mm256_loadu_si256(p.add(64).cast()),
                _mm256_loadu_si256(p.add(96).cast()),
            ]
        }
    }

    /// Adds 256-bit sums (each row's four registers: columns 0–7, …, 24–31) into `out`, less
    /// 128 · `wsum` when the kernel summed x + 128.
    ///
    /// # Safety
    /// The CPU has AVX2; `out` holds `R` rows of `TILE` sums, `width` apart.
    #[target_feature(enable = "avx2")]
    unsafe fn store256<const R: usize>(
        sums: &[[__m256i; 4]; R],
        wsum: Option<[__m256i; 4]>,
        out: *mut i32,
        width: usize,
    ) {
        let mut fix = [_mm256_setzero_si256(); 4];
        if let Some(wsum) = wsum {
            for (f, w) in fix.iter_mut().zip(wsum) {
                *f = _mm256_slli_epi32::<7>(w);
            }
        }
        for (i, sum) in sums.iter().enumerate() {
            for (v, s) in sum.iter().enumerate() {
                // SAFETY: row `i`'s columns `8v..8v + 8` (contract).
                unsafe {
                    let o = out.add(i * width + 8 * v).cast::<__m256i>();
                    let exact = _mm256_sub_epi32(*s, fix[v]);
                    _mm256_storeu_si256(o, _mm256_add_epi32(_mm256_loadu_si256(o), exact));
                }
            }
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

    /// Int8 weights over the whole range, ±127 included.
    fn weights(k: usize, n: usize, seed: u32) -> Vec<i8> {
        values(k * n, seed)
            .iter()
            .map(|&v| (v * 254.0).round().clamp(-127.0, 127.0) as i8)
            .collect()
    }

    /// The plain definition on `[k, n]`: exact i32 sums of the quantized rows, scaled.
    fn reference(x: &[f32], rows: usize, w: &[i8], scale: &[f32], k: usize, n: usize) -> Vec<f32> {
        let (q, xs) = quantize_rows(x, rows, k, k);
        let mut y = vec![0.0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let s: i32 = (0..k)
                    .map(|i| i32::from(q[r * k + i]) * i32::from(w[i * n + c]))
                    .sum();
                y[r * n + c] = s as f32 * xs[r] * scale[c];
            }
        }
        y
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// Every kernel this CPU has gives the plain definition's bits, for odd sizes (the padded
    /// quads, the column tail, several stretches and row groups) and many rows; a kernel the
    /// CPU lacks is named as not run.
    #[test]
    fn every_kernel_gives_the_exact_sums() {
        let kernels = Kernel::available();
        let names: Vec<_> = kernels.iter().map(|k| k.name()).collect();
        eprintln!("int8 kernels run on this CPU: {names:?}");
        for missing in [Kernel::Avx512Vnni, Kernel::AvxVnni, Kernel::Avx2] {
            if !kernels.contains(&missing) {
                eprintln!("int8 kernel {} not run: this CPU lacks it", missing.name());
            }
        }
        for (rows, k, n) in [
            (1, 7, 13),
            (2, 64, 2048),
            (5, 131, 1033),
            (8, 600, 72),
            (13, 1030, 200),
            (16, 2048, 40),
            (37, 520, 100),
        ] {
            let x = values(rows * k, 1);
            let w = weights(k, n, 2);
            let scale: Vec<f32> = values(n, 3).iter().map(|v| v.abs() + 0.01).collect();
            let tiles = quad_tiles(&w, k, n);
            for (e, &v) in w.iter().enumerate() {
                assert_eq!(
                    tiles[quad_offset(k, n, e / n, e % n)],
                    v,
                    "{k}x{n}: element {e}"
                );
            }
            let placed = tiles.iter().filter(|&&v| v != 0).count();
            assert_eq!(
                placed,
                w.iter().filter(|&&v| v != 0).count(),
                "{k}x{n}: padding is zero"
            );
            assert_eq!(untile_quads(&tiles, k, n), w, "{k}x{n}: untiled");
            let want = bits(&reference(&x, rows, &w, &scale, k, n));
            for &kernel in &kernels {
                let got = matmul_with(kernel, &x, rows, &tiles, &scale, k, n);
                assert!(got.iter().all(|v| v.is_finite()));
                assert!(
                    bits(&got) == want,
                    "{} {rows}x{k}x{n}: not the exact sums",
                    kernel.name()
                );
            }
        }
    }

    /// Extreme inputs: every activation at ±127 against weights at ±127 over 8192 rows (the
    /// largest sums Dia's projections make) do not overflow or saturate; a non-finite input
    /// makes its row non-finite and leaves the others alone.
    #[test]
    fn extreme_and_non_finite_inputs() {
        let (k, n) = (8192, 64);
        let w: Vec<i8> = (0..k * n)
            .map(|i| if i % 3 == 0 { -127 } else { 127 })
            .collect();
        let mut x: Vec<f32> = (0..2 * k)
            .map(|i| if (i / 64) % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let scale = vec![1.0; n];
        let tiles = quad_tiles(&w, k, n);
        let want = bits(&reference(&x, 2, &w, &scale, k, n));
        for kernel in Kernel::available() {
            assert!(
                bits(&matmul_with(kernel, &x, 2, &tiles, &scale, k, n)) == want,
                "{}",
                kernel.name()
            );
        }
        x[5] = f32::NAN;
        let y = matmul(&x, 2, &tiles, &scale, k, n);
        assert!(y[..n].iter().all(|v| v.is_nan()), "the NaN row is NaN");
        assert!(bits(&y[n..]) == want[n..], "the other row is untouched");
    }

    /// A row's sums do not depend on the rows beside it or on the thread count.
    #[test]
    fn rows_and_threads_do_not_change_a_sum() {
        let (k, n) = (1100, 300);
        let w = weights(k, n, 6);
        let scale = vec![0.5; n];
        let tiles = quad_tiles(&w, k, n);
        let x = values(20 * k, 5);
        let all = matmul(&x, 20, &tiles, &scale, k, n);
        for r in [0, 7, 19] {
            let alone = matmul(&x[r * k..][..k], 1, &tiles, &scale, k, n);
            assert!(bits(&all[r * n..][..n]) == bits(&alone), "row {r}");
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(5)
            .build()
            .unwrap();
        let five = pool.install(|| matmul(&x, 20, &tiles, &scale, k, n));
        assert!(bits(&five) == bits(&all), "5 threads");
    }
}
