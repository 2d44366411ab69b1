//! Typed, shape-checked access to a checkpoint's tensors while the model is built, and the
//! weight-norm fold. Every tensor is consumed once; whatever is left over is an error.

use std::collections::HashMap;
use std::path::PathBuf;

use burn::prelude::*;
use burn::tensor::TensorData;
use burn_store::TensorSnapshot;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::DacError;

/// The tensors of one checkpoint (original DAC names), handed out to layers as they load, or
/// random values of whatever shape a layer asks for.
pub(crate) struct Weights<'a, B: Backend> {
    file: PathBuf,
    tensors: HashMap<String, TensorSnapshot>,
    /// Set for random weights: `tensors` is then empty and every request is served from it.
    random: Option<ChaCha8Rng>,
    device: &'a B::Device,
}

impl<'a, B: Backend> Weights<'a, B> {
    pub fn new(
        file: PathBuf,
        tensors: HashMap<String, TensorSnapshot>,
        device: &'a B::Device,
    ) -> Self {
        Self {
            file,
            tensors,
            random: None,
            device,
        }
    }

    /// Random weights drawn from `seed`: uniform with PyTorch's default bound 1/√fan_in (so
    /// activations keep their scale through the stack), Snake `alpha` at 1 as DAC initialises it.
    pub fn random(seed: u64, device: &'a B::Device) -> Self {
        Self {
            file: PathBuf::from("<random>"),
            tensors: HashMap::new(),
            random: Some(ChaCha8Rng::seed_from_u64(seed)),
            device,
        }
    }

    /// Takes tensor `key`, which must exist, be a float tensor and have exactly `shape`.
    pub fn tensor<const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
    ) -> Result<Tensor<B, D>, DacError> {
        if let Some(rng) = &mut self.random {
            let len = shape.iter().product();
            let values = if key.ends_with("alpha") {
                vec![1.0f32; len]
            } else {
                let fan_in = shape.iter().skip(1).product::<usize>().max(1);
                let bound = 1.0 / (fan_in as f32).sqrt();
                (0..len).map(|_| rng.random_range(-bound..bound)).collect()
            };
            return Ok(Tensor::from_data(
                TensorData::new(values, shape),
                self.device,
            ));
        }
        let snapshot = self
            .tensors
            .remove(key)
            .ok_or_else(|| DacError::MissingTensor {
                file: self.file.clone(),
                key: key.to_string(),
            })?;
        if snapshot.shape.as_slice() != shape {
            return Err(DacError::ShapeMismatch {
                file: self.file.clone(),
                key: key.to_string(),
                expected: shape.to_vec(),
                found: snapshot.shape.to_vec(),
            });
        }
        let bad = |reason: String| DacError::BadTensor {
            file: self.file.clone(),
            key: key.to_string(),
            reason,
        };
        if !snapshot.dtype.is_float() {
            return Err(bad(format!(
                "holds {:?}, expected a float tensor",
                snapshot.dtype
            )));
        }
        let data = snapshot.to_data().map_err(|e| bad(e.to_string()))?;
        Ok(Tensor::from_data(data.convert::<f32>(), self.device))
    }

    /// A conv weight of `shape`: `{prefix}.weight` if stored folded, else the fold of
    /// `{prefix}.weight_g` (`[shape[0], 1, 1]`) and `{prefix}.weight_v` (`shape`).
    pub fn conv_weight(
        &mut self,
        prefix: &str,
        shape: [usize; 3],
    ) -> Result<Tensor<B, 3>, DacError> {
        let folded = format!("{prefix}.weight");
        if self.random.is_some() || self.tensors.contains_key(&folded) {
            return self.tensor(&folded, shape);
        }
        let g = self.tensor(&format!("{prefix}.weight_g"), [shape[0], 1, 1])?;
        let v = self.tensor(&format!("{prefix}.weight_v"), shape)?;
        Ok(fold_weight_norm(g, v))
    }

    /// Fails on the first (alphabetically) tensor that no layer took.
    pub fn finish(self) -> Result<(), DacError> {
        match self.tensors.into_keys().min() {
            Some(key) => Err(DacError::UnexpectedTensor {
                file: self.file,
                key,
            }),
            None => Ok(()),
        }
    }
}

/// PyTorch's `weight_norm(dim=0)`: `w = g · v / ‖v‖`, one norm per index of dim 0 taken over
/// the other two dims, no epsilon. For ConvTranspose1d (`[in, out, k]`) dim 0 is the input channel.
pub(crate) fn fold_weight_norm<B: Backend>(g: Tensor<B, 3>, v: Tensor<B, 3>) -> Tensor<B, 3> {
    // [d0, d1, k] → [d0, 1, 1]
    let norm = v.clone().square().sum_dim(2).sum_dim(1).sqrt();
    v * (g / norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_ndarray::NdArray;

    #[test]
    fn fold_normalises_each_dim0_slice_over_the_other_dims() {
        let device = Default::default();
        // Slice 0 has ‖v‖ = 5 (3, 4), slice 1 has ‖v‖ = 2 (2 spread over two dims).
        let v = Tensor::<NdArray<f32>, 3>::from_data(
            [[[3.0, 0.0], [0.0, 4.0]], [[0.0, 2.0], [0.0, 0.0]]],
            &device,
        );
        let g = Tensor::from_data([[[10.0]], [[0.5]]], &device);
        let w = fold_weight_norm(g, v).into_data().to_vec::<f32>().unwrap();
        assert_eq!(w, vec![6.0, 0.0, 0.0, 8.0, 0.0, 0.5, 0.0, 0.0]);
    }
}
