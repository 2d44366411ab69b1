//! Bias-free projection computed through the backend's [`DiaBackend::project`] hook, so each
//! backend can use its fastest kernel for the shape at hand.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::backend::DiaBackend;

/// `y = x · weight`.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    /// `[in, out]`.
    pub weight: Param<Tensor<B, 2>>,
}

impl<B: Backend> Dense<B> {
    /// Wraps an `[in, out]` weight.
    pub fn new(weight: Tensor<B, 2>) -> Self {
        Self {
            weight: Param::from_tensor(weight),
        }
    }
}

impl<B: DiaBackend> Dense<B> {
    /// `[batch, seq, in]` → `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, seq, d_in] = x.dims();
        let y = B::project(x.reshape([batch * seq, d_in]), self.weight.val());
        let d_out = y.dims()[1];
        y.reshape([batch, seq, d_out])
    }
}
