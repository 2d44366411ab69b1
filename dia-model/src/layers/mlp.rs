//! Gated-SiLU feed-forward block with the gate and up projections fused in one matrix.

use crate::backend::Dense;
use crate::backend::DiaBackend;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// `wo(silu(gate) ⊙ up)` where `[gate | up] = x · wi_fused`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[dim, 2 · hidden]`: columns `0..hidden` gate, `hidden..2·hidden` up.
    pub wi_fused: Dense<B>,
    /// `[hidden, dim]`.
    pub wo: Dense<B>,
}

impl<B: DiaBackend> Mlp<B> {
    /// `[batch, seq, dim]` → `[batch, seq, dim]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = self.wo.dims()[0];
        let [gate, up]: [Tensor<B, 3>; 2] = self
            .wi_fused
            .forward_split(x, &[hidden, hidden])
            .try_into()
            .expect("two widths, two parts");
        self.wo.forward(B::silu_mul(gate, up))
    }
}
