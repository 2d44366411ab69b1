//! Shared test support: fixture paths, golden tensors, backends and comparisons.
#![allow(dead_code)]

pub mod batching;
pub mod greedy;
pub mod layers;
pub mod sites;

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::SafeTensors;

pub type Flex = burn_flex::Flex;
pub type NdArray = burn_ndarray::NdArray<f32>;

/// `assets/fixtures/<name>` of the workspace.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/fixtures")
        .join(name)
}

/// `golden.json` of a fixture.
pub fn golden_json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name).join("golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Golden tensors of a fixture (`golden.safetensors`).
pub struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    pub fn open(name: &str) -> Self {
        Self {
            bytes: std::fs::read(fixture(name).join("golden.safetensors")).unwrap(),
        }
    }

    /// A tensor as f32 values and its shape (float or integer storage).
    pub fn get(&self, key: &str) -> (Vec<f32>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("golden tensor {key}"));
        let data = view.data();
        let values = match view.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            safetensors::Dtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            safetensors::Dtype::I32 => data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            other => panic!("golden dtype {other:?}"),
        };
        (values, view.shape().to_vec())
    }

    /// An integer golden tensor as i64 values.
    pub fn get_int(&self, key: &str) -> (Vec<i64>, Vec<usize>) {
        let (v, s) = self.get(key);
        (v.into_iter().map(|x| x as i64).collect(), s)
    }
}

/// Values of a float tensor.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// Largest absolute difference between two equally long slices; infinite if either holds a
/// NaN (which `f32::max` would otherwise skip).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0, f32::max)
}

/// An int tensor from i64 values.
pub fn int_tensor<B: Backend, const D: usize>(
    values: Vec<i64>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D, burn::tensor::Int> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
