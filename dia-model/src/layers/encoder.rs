//! Text encoder: byte embeddings, pre-norm self-attention layers, final norm.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::embedding;
use burn::tensor::{Bool, Int, Tensor};

use crate::backend::DiaBackend;
use crate::layers::Mlp;
use crate::layers::RmsNorm;
use crate::layers::RotaryEmbedding;
use crate::layers::{AttnMask, SelfAttention};

/// One encoder layer: `x += attn(norm(x))`, `x += mlp(norm(x))`.
#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    pub pre_sa_norm: RmsNorm<B>,
    pub self_attention: SelfAttention<B>,
    /// Despite its name, the norm in front of the MLP.
    pub post_sa_norm: RmsNorm<B>,
    pub mlp: Mlp<B>,
}

/// The text encoder.
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    /// `[256, dim]` byte embedding.
    pub embedding: Param<Tensor<B, 2>>,
    pub layers: Vec<EncoderLayer<B>>,
    pub norm: RmsNorm<B>,
    pub rope: RotaryEmbedding<B>,
}

impl<B: DiaBackend> Encoder<B> {
    /// `tokens` `[rows, len]` → `[rows, len, dim]` in the compute dtype. `padding`
    /// `[rows, len]` marks padded positions, which no valid position attends.
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        padding: Option<Tensor<B, 2, Bool>>,
    ) -> Tensor<B, 3> {
        let [_, len] = tokens.dims();
        let mut x = embedding(self.embedding.val(), tokens);
        let angles = self.rope.angles(0, len);
        let mask = match padding {
            Some(p) => AttnMask::Padding(p.unsqueeze_dim::<3>(1).unsqueeze_dim::<4>(1)),
            None => AttnMask::None,
        };
        // Each sublayer's output is added to `x` by the norm after it (one kernel on GPUs).
        let mut delta = None;
        for layer in &self.layers {
            let h;
            (x, h) = layer.pre_sa_norm.add_forward(x, delta.take());
            let attended = layer.self_attention.forward(h, &angles, &mask, None);
            let (sum, h) = layer.post_sa_norm.add_forward(x, Some(attended));
            x = sum;
            delta = Some(layer.mlp.forward(h));
        }
        self.norm.add_forward(x, delta).1
    }
}
