//! Half-split rotary position embedding in f32, from a precomputed table or recomputed per call.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor, TensorData};

use crate::backend::DiaBackend;

/// Rotary embedding for one head size: `out = [x1·cos − x2·sin, x2·cos + x1·sin]`.
#[derive(Module, Debug)]
pub struct RotaryEmbedding<B: Backend> {
    /// `theta^(2i / head_dim)`, `[1, head_dim / 2]`, f32: the reference divides positions by
    /// it, so we do too.
    timescale: Tensor<B, 2>,
    /// sin of positions `0..max_positions`, `[max_positions, head_dim / 2]`, with the table on.
    sin: Option<Tensor<B, 2>>,
    /// cos, like `sin`.
    cos: Option<Tensor<B, 2>>,
}

/// The sin/cos of a run of positions, shaped `[1, 1, seq, head_dim / 2]` for `[b, h, seq, d]`.
#[derive(Debug, Clone)]
pub struct RopeAngles<B: Backend> {
    sin: Tensor<B, 4>,
    cos: Tensor<B, 4>,
}

impl<B: Backend> RotaryEmbedding<B> {
    /// Builds the timescales `theta^(2i / head_dim)`; with `use_table`, also sin/cos for
    /// positions `0..max_positions`.
    pub fn new(
        head_dim: usize,
        theta: f64,
        max_positions: usize,
        use_table: bool,
        device: &B::Device,
    ) -> Self {
        let half = head_dim / 2;
        let theta = theta as f32;
        let timescale: Vec<f32> = (0..half)
            .map(|i| theta.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        let timescale =
            Tensor::<B, 2>::from_data(TensorData::new(timescale, [1, half]), (device, DType::F32));
        let mut rope = Self {
            timescale,
            sin: None,
            cos: None,
        };
        if use_table {
            let (sin, cos) = rope.compute(0, max_positions);
            rope.sin = Some(sin);
            rope.cos = Some(cos);
        }
        rope
    }

    /// `sin`/`cos` `[len, half]` of positions `start..start + len`, computed on the device.
    fn compute(&self, start: usize, len: usize) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let device = self.timescale.device();
        let positions = Tensor::<B, 1, Int>::arange(start as i64..(start + len) as i64, &device)
            .float()
            .cast(DType::F32)
            .unsqueeze_dim::<2>(1);
        let angles = positions.div(self.timescale.clone());
        (angles.clone().sin(), angles.cos())
    }

    /// Angles for positions `start..start + len`, from the table when there is one.
    pub fn angles(&self, start: usize, len: usize) -> RopeAngles<B> {
        let (sin, cos) = match (&self.sin, &self.cos) {
            (Some(sin), Some(cos)) => (
                sin.clone().narrow(0, start, len),
                cos.clone().narrow(0, start, len),
            ),
            _ => self.compute(start, len),
        };
        RopeAngles {
            sin: sin.unsqueeze::<4>(),
            cos: cos.unsqueeze::<4>(),
        }
    }
}

impl<B: DiaBackend> RopeAngles<B> {
    /// `(sin, cos)`, each `[1, 1, seq, head_dim / 2]` f32.
    pub fn tables(&self) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (self.sin.clone(), self.cos.clone())
    }

    /// Rotates `x` `[batch, heads, seq, head_dim]` in f32 and returns it in its own dtype.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        B::rope(x, self.sin.clone(), self.cos.clone())
    }
}
