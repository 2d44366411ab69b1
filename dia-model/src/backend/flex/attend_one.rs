//! Attention for one query position, as in every decode step: `softmax(q·kᵀ)·v` (scale 1) in
//! f32, reading keys and values where they lie (a strided view of the KV cache, any float
//! dtype) instead of copying and widening the whole filled prefix first.

use burn::tensor::{Bool, DType, Element, Tensor};
use burn_flex::{Flex, FlexTensor};
use half::{bf16, f16};
use rayon::prelude::*;

use super::elementwise::exp;
#[cfg(target_arch = "x86_64")]
use super::simd::dot_avx2;
use super::simd::{Widen, dot};

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

/// [`attend`] on Flex tensors (see [`crate::DiaBackend::attend_one`]): `None` when keys and
/// values differ in dtype, are not f32, f16 or bf16, or their last axis is not contiguous.
pub fn attend_tensors(
    q: &Tensor<Flex, 4>,
    k: &Tensor<Flex, 4>,
    v: &Tensor<Flex, 4>,
    hidden: Option<&Tensor<Flex, 4, Bool>>,
) -> Option<Vec<f32>> {
    // The query is a few hundred values: widened once, contiguous.
    let q32 = super::tensors::primitive(q.clone().cast(DType::F32)).to_contiguous();
    let (kp, vp) = (
        super::tensors::primitive(k.clone()),
        super::tensors::primitive(v.clone()),
    );
    let mask = hidden.map(|m| {
        m.clone()
            .into_data()
            .into_vec::<bool>()
            .expect("a bool tensor reads as bools")
    });
    let mask = mask.as_deref();
    match kp.dtype() {
        _ if kp.dtype() != vp.dtype() => None,
        DType::F32 => attend(&view::<f32>(&q32)?, &view::<f32>(&kp)?, &view(&vp)?, mask).into(),
        DType::F16 => attend(&view(&q32)?, &view::<f16>(&kp)?, &view(&vp)?, mask).into(),
        DType::BF16 => attend(&view(&q32)?, &view::<bf16>(&kp)?, &view(&vp)?, mask).into(),
        _ => None,
    }
}

/// A Flex tensor's storage as a [`View`] of `T`; `None` when its last axis is not contiguous.
fn view<T: Element + bytemuck::Pod>(t: &FlexTensor) -> Option<View<'_, T>> {
    let layout = t.layout();
    let strides = layout.strides();
    if strides[3] != 1 {
        return None;
    }
    Some(View {
        data: t.storage::<T>(),
        offset: layout.start_offset(),
        strides: [strides[0], strides[1], strides[2]],
        shape: layout.shape().dims::<4>(),
    })
}

/// `q` `[b, kv_heads, group, d]` attends `k`, `v` `[b, kv_heads, len, d]` (query `g` of KV
/// head `h` uses that head's keys); `hidden` `[b, len]`, true where a key is masked. Returns
/// `[b, kv_heads, group, d]` in f32, row-major.
pub fn attend<K: Widen>(
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
            if super::simd::detected() {
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
fn head<K: Widen>(
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
unsafe fn head_avx2<K: Widen>(
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
