//! Attention for one query position, as in every decode step: `softmax(q·kᵀ)·v` (scale 1) in
//! f32, reading keys and values where they lie (a strided view of the KV cache, any float
//! dtype) instead of copying and widening the whole filled prefix first.

use rayon::prelude::*;

use super::elementwise::exp;
use super::skinny::WeightElem;

/// A 4-D `[batch, heads, len, dim]` view into a tensor's storage whose last axis is
/// contiguous.
pub struct View<'a, E> {
    pub data: &'a [E],
    pub offset: usize,
    /// Strides of the first three axes, in elements.
    pub strides: [isize; 3],
    pub shape: [usize; 4],
}

impl<E> View<'_, E> {
    /// The `dim` elements of `[b, h, t, ..]`.
    #[inline]
    fn row(&self, b: usize, h: usize, t: usize) -> &[E] {
        let [sb, sh, st] = self.strides;
        let start = self.offset as isize + b as isize * sb + h as isize * sh + t as isize * st;
        &self.data[start as usize..][..self.shape[3]]
    }
}

/// `q` `[b, kv_heads, group, d]` attends `k`, `v` `[b, kv_heads, len, d]` (query `g` of KV
/// head `h` uses that head's keys); `hidden` `[b, len]`, true where a key is masked. Returns
/// `[b, kv_heads, group, d]` in f32, row-major.
pub fn attend<K: WeightElem>(
    q: &View<'_, f32>,
    k: &View<'_, K>,
    v: &View<'_, K>,
    hidden: Option<&[bool]>,
) -> Vec<f32> {
    let [batch, heads, _, _] = q.shape;
    let len = k.shape[2];
    let per_head: Vec<Vec<f32>> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let mask = hidden.map(|m| &m[b * len..][..len]);
            #[cfg(target_arch = "x86_64")]
            if super::skinny::has_avx2_fma_f16c() {
                // SAFETY: the CPU features were detected at run time.
                return unsafe { head_avx2(q, k, v, mask, b, h) };
            }
            head(q, k, v, mask, b, h, dot)
        })
        .collect();
    per_head.concat()
}

/// Query group `[group, d]` of KV head `h` in item `b` attended over its keys and values.
#[inline(always)]
fn head<K: WeightElem>(
    q: &View<'_, f32>,
    k: &View<'_, K>,
    v: &View<'_, K>,
    mask: Option<&[bool]>,
    b: usize,
    h: usize,
    dot: impl Fn(&[f32], &[f32]) -> f32,
) -> Vec<f32> {
    let [_, _, group, dim] = q.shape;
    let len = k.shape[2];
    let mut out = vec![0.0f32; group * dim];
    if len == 0 {
        return out;
    }
    // `[group, len]`: every key and value row is widened once for the whole group.
    let mut scores = vec![0.0f32; group * len];
    // One key or value row widened to f32.
    let mut row = vec![0.0f32; dim];
    for t in 0..len {
        if mask.is_some_and(|m| m[t]) {
            (0..group).for_each(|g| scores[g * len + t] = f32::NEG_INFINITY);
            continue;
        }
        K::widen(k.row(b, h, t), &mut row);
        for g in 0..group {
            scores[g * len + t] = dot(q.row(b, h, g), &row);
        }
    }
    for probs in scores.chunks_exact_mut(len) {
        let max = probs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for s in probs.iter_mut() {
            *s = exp(*s - max);
            total += *s;
        }
        probs.iter_mut().for_each(|s| *s /= total);
    }
    for t in 0..len {
        K::widen(v.row(b, h, t), &mut row);
        for (g, out) in out.chunks_exact_mut(dim).enumerate() {
            let p = scores[g * len + t];
            for (o, &e) in out.iter_mut().zip(&row) {
                *o += p * e;
            }
        }
    }
    out
}

/// [`head`] compiled for AVX2: the widening, dot products and sums run eight lanes wide.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn head_avx2<K: WeightElem>(
    q: &View<'_, f32>,
    k: &View<'_, K>,
    v: &View<'_, K>,
    mask: Option<&[bool]>,
    b: usize,
    h: usize,
) -> Vec<f32> {
    // SAFETY: the caller guarantees this function's features, which `dot_avx2` needs.
    head(q, k, v, mask, b, h, |a, b| unsafe { dot_avx2(a, b) })
}

/// `Σ a[i]·b[i]` in four independent FMA chains: a plain loop's single chain of additions
/// made the scores wait on the adder's latency (measured: the attention 13 % faster).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut sums = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads eight elements below n.
    unsafe {
        let fma = |at: usize, sum: __m256| {
            _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(at)),
                _mm256_loadu_ps(pb.add(at)),
                sum,
            )
        };
        while i + 32 <= n {
            for (j, sum) in sums.iter_mut().enumerate() {
                *sum = fma(i + 8 * j, *sum);
            }
            i += 32;
        }
        while i + 8 <= n {
            sums[0] = fma(i, sums[0]);
            i += 8;
        }
        let s = _mm256_add_ps(
            _mm256_add_ps(sums[0], sums[1]),
            _mm256_add_ps(sums[2], sums[3]),
        );
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s) + dot(&a[i..n], &b[i..n])
    }
}

/// `Σ a[i]·b[i]` with eight running sums, so the compiler vectorizes it.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}
