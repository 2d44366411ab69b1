//! Fixture paths, golden tensors, comparisons, and the two CPU backends every test runs on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn_store::{ModuleStore, SafetensorsStore};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

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

/// `assets/fixtures/<relative>` in the repository.
pub fn fixture(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/fixtures")
        .join(relative)
}

/// The reference outputs of the tiny codec (`dac-tiny/golden.safetensors`).
pub struct Golden(HashMap<String, TensorData>);

impl Golden {
    pub fn load() -> Self {
        let mut store = SafetensorsStore::from_file(fixture("dac-tiny/golden.safetensors"));
        let snapshots = store
            .get_all_snapshots()
            .expect("golden.safetensors is readable");
        Self(
            snapshots
                .iter()
                .map(|(key, s)| (key.clone(), s.to_data().expect("golden tensor data")))
                .collect(),
        )
    }

    fn data(&self, key: &str) -> TensorData {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("golden `{key}`"))
            .clone()
    }

    pub fn float<B: Backend>(&self, key: &str, device: &B::Device) -> Tensor<B, 3> {
        Tensor::from_data(self.data(key).convert::<f32>(), device)
    }

    pub fn codes<B: Backend>(&self, key: &str, device: &B::Device) -> Tensor<B, 3, Int> {
        Tensor::from_data(self.data(key).convert::<i64>(), device)
    }

    pub fn code_values(&self, key: &str) -> Vec<i64> {
        self.data(key)
            .convert::<i64>()
            .into_vec()
            .expect("i64 codes")
    }
}

/// Largest absolute elementwise difference; panics if the shapes differ.
pub fn max_abs_diff<B: Backend>(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b).abs().max().into_scalar().elem::<f32>()
}

/// Largest absolute difference of two equally long sample runs; infinite where either has a NaN.
pub fn max_sample_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
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

/// Named f32 tensors: name, shape, little-endian bytes.
pub type Tensors = Vec<(String, Vec<usize>, Vec<u8>)>;

/// The tensors of `dac-tiny/weights.safetensors` (original names, `weight_g`/`weight_v`).
pub fn tiny_tensors() -> Tensors {
    let bytes = std::fs::read(fixture("dac-tiny/weights.safetensors")).expect("fixture");
    let file = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    file.tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec(), view.data().to_vec()))
        .collect()
}

pub fn write_safetensors(path: &Path, tensors: &Tensors) {
    let views = tensors.iter().map(|(name, shape, data)| {
        let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("consistent view");
        (name.clone(), view)
    });
    safetensors::serialize_to_file(views, None, path).expect("write safetensors");
}
