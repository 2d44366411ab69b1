//! Moving between Flex tensors and the slices the kernels read and write.

use burn::tensor::{DType, Element, Tensor, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};

/// The Flex tensor behind a float tensor.
pub fn primitive<const D: usize>(x: Tensor<Flex, D>) -> FlexTensor {
    x.into_primitive().tensor()
}

/// A Flex tensor as a float tensor.
pub fn float<const D: usize>(t: FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// A float tensor's values in f32, row-major.
pub fn f32_values<const D: usize>(x: Tensor<Flex, D>) -> Vec<f32> {
    x.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32")
}

/// `values` of `shape` as a Flex tensor in `dtype`.
pub fn flex_tensor<E: Element, const D: usize>(
    values: Vec<E>,
    shape: [usize; D],
    dtype: DType,
) -> Tensor<Flex, D> {
    let data = TensorData::new(values, shape).convert_dtype(dtype);
    float(FlexTensor::from_data(data))
}

/// `y` `[rows, n]` (row-major) as one contiguous `[rows, width]` tensor per entry of
/// `widths`, in `dtype`.
pub fn split_columns<E: Element>(
    y: &[E],
    n: usize,
    widths: &[usize],
    dtype: DType,
) -> Vec<Tensor<Flex, 2>> {
    let rows = y.len() / n.max(1);
    let mut start = 0;
    widths
        .iter()
        .map(|&width| {
            let mut values = Vec::with_capacity(rows * width);
            for row in y.chunks_exact(n) {
                values.extend_from_slice(&row[start..start + width]);
            }
            start += width;
            flex_tensor(values, [rows, width], dtype)
        })
        .collect()
}

/// Copies `src` `[rows, heads, len, d]` into `dst` `[rows, heads, max_len, d]` at `start..`
/// in place. Flex's own slice_assign copies the whole cache first (it keeps a second handle
/// on the buffer), which costs more per step than the attention itself. False if `dst` is
/// shared, strided or too short.
pub fn write_rows<E: Element + bytemuck::Pod>(
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
