//! Flex: few-row projections go to the streaming kernel in [`super::skinny`], which reads each
//! weight once for all rows at close to memory bandwidth; everything else is Burn's gemm.

use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};
use half::{bf16, f16};

use super::DiaBackend;
use super::skinny::{self, MAX_ROWS};

impl DiaBackend for Flex {
    fn project(x: Tensor<Self, 2>, weight: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let [rows, _] = x.dims();
        let out_dtype = x.dtype();
        let supported = |d: DType| matches!(d, DType::F32 | DType::F16 | DType::BF16);
        if rows > MAX_ROWS || !supported(out_dtype) || !supported(weight.dtype()) {
            return x.matmul(weight);
        }
        let w = weight.into_primitive().tensor();
        let [k, n] = w.layout().shape().dims::<2>();
        let x_rows = || {
            x.clone()
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("converted to f32")
        };
        let y = match w.dtype() {
            DType::F32 => w
                .as_slice::<f32>()
                .map(|w| skinny::matmul(&x_rows(), rows, w, k, n)),
            DType::F16 => w
                .as_slice::<f16>()
                .map(|w| skinny::matmul(&x_rows(), rows, w, k, n)),
            _ => w
                .as_slice::<bf16>()
                .map(|w| skinny::matmul(&x_rows(), rows, w, k, n)),
        };
        match y {
            Some(y) => {
                let y = TensorData::new(y, [rows, n]).convert_dtype(out_dtype);
                Tensor::from_primitive(TensorPrimitive::Float(FlexTensor::from_data(y)))
            }
            // A weight stored as a strided view: gemm reads it in place, no copy per call.
            None => x.matmul(Tensor::from_primitive(TensorPrimitive::Float(w))),
        }
    }

    fn cache_write(
        cache: Tensor<Self, 4>,
        start: usize,
        value: Tensor<Self, 4>,
    ) -> Tensor<Self, 4> {
        let mut dst = cache.into_primitive().tensor();
        let src = value.into_primitive().tensor().to_contiguous();
        let written = dst.dtype() == src.dtype()
            && match dst.dtype() {
                DType::F32 => write_rows::<f32>(&mut dst, &src, start),
                DType::F16 => write_rows::<f16>(&mut dst, &src, start),
                DType::BF16 => write_rows::<bf16>(&mut dst, &src, start),
                _ => false,
            };
        let tensor = |t| Tensor::from_primitive(TensorPrimitive::Float(t));
        if written {
            tensor(dst)
        } else {
            // Shared or strided cache: Burn's copy-on-write slice_assign.
            let [rows, heads, len, dim] = src.layout().shape().dims::<4>();
            tensor(dst).slice_assign([0..rows, 0..heads, start..start + len, 0..dim], tensor(src))
        }
    }
}

/// Copies `src` `[rows, heads, len, d]` into `dst` `[rows, heads, max_len, d]` at `start..`
/// in place. Flex's own slice_assign copies the whole cache first (it keeps a second handle
/// on the buffer), which costs more per step than the attention itself. False if `dst` is
/// shared, strided or too short.
fn write_rows<E: burn::tensor::Element + bytemuck::Pod>(
    dst: &mut FlexTensor,
    src: &FlexTensor,
    start: usize,
) -> bool {
    let [rows, heads, max_len, dim] = dst.layout().shape().dims::<4>();
    let [src_rows, src_heads, len, src_dim] = src.layout().shape().dims::<4>();
    let full = dst.layout().num_elements() * std::mem::size_of::<E>();
    if [src_rows, src_heads, src_dim] != [rows, heads, dim]
        || start + len > max_len
        || !dst.is_contiguous()
        || dst.layout().start_offset() != 0
        || dst.bytes().len() != full
    {
        return false;
    }
    let Some(src) = src.as_slice::<E>() else {
        return false;
    };
    let Some(out) = dst.try_storage_mut::<E>() else {
        return false;
    };
    let run = len * dim;
    for (rh, chunk) in src.chunks_exact(run).enumerate() {
        out[(rh * max_len + start) * dim..][..run].copy_from_slice(chunk);
    }
    true
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};
    use burn_flex::Flex;

    use crate::backend::DiaBackend;

    /// In place when the cache is unique, copy-on-write when another handle shares it: both
    /// equal Burn's slice_assign, and the other handle never sees the write.
    #[test]
    fn cache_write_equals_slice_assign_and_respects_sharing() {
        let device = Default::default();
        let cache = Tensor::<Flex, 4>::random([2, 3, 8, 4], Distribution::Default, &device);
        let value = Tensor::<Flex, 4>::random([2, 3, 2, 4], Distribution::Default, &device);
        let want = cache
            .clone()
            .slice_assign([0..2, 0..3, 5..7, 0..4], value.clone())
            .into_data();
        let before = cache.clone().into_data();
        let shared = cache.clone();
        let written = Flex::cache_write(cache, 5, value.clone());
        written.into_data().assert_eq(&want, true);
        shared.clone().into_data().assert_eq(&before, true);
        let unique = Tensor::<Flex, 4>::from_data(before, &device);
        Flex::cache_write(unique, 5, value)
            .into_data()
            .assert_eq(&want, true);
    }
}
