//! What dia-model's test binaries share: the two CPU backends, tensor helpers and the checks in
//! the submodules; fixture paths, goldens and comparisons come from `dia-test-support`.
#![allow(dead_code)]

pub mod batching;
pub mod greedy;
pub mod layers;
pub mod sites;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
pub use dia_test_support::{Golden, fixture, golden_json, max_abs_diff};

pub type Flex = burn_flex::Flex;
pub type NdArray = burn_ndarray::NdArray<f32>;

/// The tiny fixture model on Flex, default options.
pub fn tiny_flex() -> dia_model::DiaModel<Flex> {
    let options = dia_model::ModelOptions::default();
    dia_model::DiaModel::<Flex>::load(&fixture("dia-tiny"), options, &Default::default()).unwrap()
}

/// Values of a float tensor.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// An int tensor from i64 values.
pub fn int_tensor<B: Backend, const D: usize>(
    values: Vec<i64>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D, burn::tensor::Int> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
