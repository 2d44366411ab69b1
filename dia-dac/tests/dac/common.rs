//! The codec's goldens as tensors, tensor comparisons, scratch directories, and the two CPU
//! backends every test runs on; fixture paths and sample comparisons come from
//! `dia-test-support`.

use std::path::PathBuf;

use burn::prelude::*;
use dia_test_support::{Tensors, read_tensors};
// Here `max_abs_diff` compares tensors; the support crate's slice version is `max_sample_diff`.
pub use dia_test_support::{fixture, max_abs_diff as max_sample_diff, write_tensors};

pub type Flex = burn_flex::Flex;
pub type NdArray = burn_ndarray::NdArray<f32>;

/// Defines `mod $name { fn flex(); fn ndarray(); }`, each calling the sibling generic
/// `fn $check<B: DacBackend>(device: &B::Device)` on its backend.
macro_rules! on_cpu_backends {
    ($name:ident, $check:ident) => {
        mod $name {
            #[test]
            fn flex() {
                super::$check::<$crate::common::Flex>(&Default::default());
            }

            #[test]
            fn ndarray() {
                super::$check::<$crate::common::NdArray>(&Default::default());
            }
        }
    };
}
pub(crate) use on_cpu_backends;

/// The reference outputs of the tiny codec (`dac-tiny/golden.safetensors`), as `[1, _, _]`
/// tensors on the backend under test.
pub struct Golden(dia_test_support::Golden);

impl Golden {
    /// Reads the golden file.
    pub fn load() -> Self {
        Self(dia_test_support::Golden::open("dac-tiny"))
    }

    /// Float tensor `key` (audio, latents).
    pub fn float<B: Backend>(&self, key: &str, device: &B::Device) -> Tensor<B, 3> {
        let (values, shape) = self.0.get(key);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Codes `key` as an int tensor.
    pub fn codes<B: Backend>(&self, key: &str, device: &B::Device) -> Tensor<B, 3, Int> {
        let (values, shape) = self.0.get_int(key);
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// Codes `key` as host values, codebook-major.
    pub fn code_values(&self, key: &str) -> Vec<i64> {
        self.0.get_int(key).0
    }
}

/// Largest absolute elementwise difference; panics if the shapes differ.
pub fn max_abs_diff<B: Backend>(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b).abs().max().into_scalar().elem::<f32>()
}

/// Int tensor → host `i64`s.
pub fn int_values<B: Backend>(t: Tensor<B, 3, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .into_vec()
        .expect("i64 codes")
}

/// A fresh, empty directory under the system temp dir for one test.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dia-dac-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The tensors of `dac-tiny/weights.safetensors` (original names, `weight_g`/`weight_v`).
pub fn tiny_tensors() -> Tensors {
    read_tensors(&fixture("dac-tiny/weights.safetensors"))
}
