//! Shape helpers the backend hooks and the layers share: views that split a product's columns
//! into parts or heads (no arithmetic).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// `[batch, seq, heads·d]` → `[batch, heads, seq, d]`.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [batch, seq, width] = x.dims();
    x.reshape([batch, seq, heads, width / heads])
        .swap_dims(1, 2)
}

/// `y` `[rows, Σ widths]` as views of consecutive column blocks.
pub fn narrow_columns<B: Backend>(y: Tensor<B, 2>, widths: &[usize]) -> Vec<Tensor<B, 2>> {
    let mut start = 0;
    widths
        .iter()
        .map(|&width| {
            start += width;
            y.clone().narrow(1, start - width, width)
        })
        .collect()
}
