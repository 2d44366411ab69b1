//! Rotary embedding in one pass: each `head_dim` row of q or k is read where the projection left
//! it (through the strides of the heads view) and written rotated into a contiguous output.
//! Burn's ops on the same view step through it element by element, five times over.

use burn::tensor::DType;
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// `x` `[b, heads, seq, d]` (f32, any non-negative strides with contiguous rows) rotated by
/// `sin`/`cos` (contiguous f32, `seq · d / 2` values): `[x1·cos − x2·sin, x2·cos + x1·sin]`
/// per row, contiguous. `None` where the tensors do not fit that (Burn's ops then run).
pub fn rotate(x: &FlexTensor, sin: &FlexTensor, cos: &FlexTensor) -> Option<Vec<f32>> {
    let layout = x.layout();
    let [b, heads, seq, dim] = layout.shape().dims::<4>();
    let strides: Vec<usize> = layout
        .strides()
        .iter()
        .map(|&s| usize::try_from(s).ok())
        .collect::<Option<_>>()?;
    let half = dim / 2;
    let (sin, cos) = (sin.as_slice::<f32>()?, cos.as_slice::<f32>()?);
    let fits = x.dtype() == DType::F32
        && dim % 2 == 0
        && strides[3] == 1
        && sin.len() == seq * half
        && cos.len() == seq * half
        && b * heads * seq > 0;
    if !fits {
        return None;
    }
    let values = x.storage::<f32>();
    let offset = layout.start_offset();
    let last = offset + (b - 1) * strides[0] + (heads - 1) * strides[1] + (seq - 1) * strides[2];
    if last + dim > values.len() {
        return None;
    }
    let mut out = vec![0.0f32; b * heads * seq * dim];
    out.par_chunks_mut(dim).enumerate().for_each(|(row, dst)| {
        let (t, head, item) = (row % seq, (row / seq) % heads, row / (seq * heads));
        let at = offset + item * strides[0] + head * strides[1] + t * strides[2];
        let (x1, x2) = values[at..at + dim].split_at(half);
        let (sin, cos) = (&sin[t * half..][..half], &cos[t * half..][..half]);
        let (first, second) = dst.split_at_mut(half);
        for j in 0..half {
            first[j] = x1[j] * cos[j] - x2[j] * sin[j];
            second[j] = x2[j] * cos[j] + x1[j] * sin[j];
        }
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};
    use burn_flex::Flex;

    use crate::backend::{DiaBackend, generic};

    /// On a strided heads view (as attention passes it) the one-pass rotation gives exactly
    /// what Burn's ops give: the same products and sums in the same order.
    #[test]
    fn rotate_equals_burns_ops() {
        let device = Default::default();
        let normal = Distribution::Normal(0.0, 1.0);
        // [b, seq, heads, d] → [b, heads, seq, d], a view.
        let x = Tensor::<Flex, 4>::random([2, 7, 3, 8], normal, &device).swap_dims(1, 2);
        let sin = Tensor::<Flex, 4>::random([1, 1, 7, 4], normal, &device);
        let cos = Tensor::<Flex, 4>::random([1, 1, 7, 4], normal, &device);
        let ours = Flex::rope(x.clone(), sin.clone(), cos.clone());
        let burn = generic::rope(x, sin, cos);
        assert_eq!(ours.dims(), [2, 3, 7, 8]);
        let ours = ours.into_data().to_vec::<f32>().unwrap();
        let burn = burn.into_data().to_vec::<f32>().unwrap();
        assert!(ours.iter().all(|v| v.is_finite()));
        assert_eq!(ours, burn);
    }
}
