//! Attention for one query position, as in every decode step: `softmax(q·kᵀ)·v` (scale 1) in
//! f32, reading keys and values where they lie (a strided view of the KV cache, any float
//! dtype) instead of copying and widening the whole filled prefix first.

use rayon::prelude::*;

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
    let [batch, heads, group, dim] = q.shape;
    let len = k.shape[2];
    let per_head: Vec<Vec<f32>> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let mask = hidden.map(|m| &m[b * len..][..len]);
            let mut out = vec![0.0f32; group * dim];
            let mut scores = vec![0.0f32; len];
            // One key or value row widened to f32.
            let mut row = vec![0.0f32; dim];
            for (g, out) in out.chunks_exact_mut(dim).enumerate() {
                let query = q.row(b, h, g);
                for (t, s) in scores.iter_mut().enumerate() {
                    *s = if mask.is_some_and(|m| m[t]) {
                        f32::NEG_INFINITY
                    } else {
                        K::widen(k.row(b, h, t), &mut row);
                        dot(query, &row)
                    };
                }
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut total = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    total += *s;
                }
                for (t, &p) in scores.iter().enumerate() {
                    let p = p / total;
                    K::widen(v.row(b, h, t), &mut row);
                    for (o, &e) in out.iter_mut().zip(&row) {
                        *o += p * e;
                    }
                }
            }
            out
        })
        .collect();
    per_head.concat()
}

/// `Σ a[i]·b[i]` with eight running sums, so the compiler vectorizes it.
#[inline]
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
