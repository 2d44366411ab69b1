//! What the workspace's tests share: the fixture paths under `assets/fixtures/`, the reference's
//! golden outputs, sample comparisons, safetensors copies to damage, and seeded byte mutations
//! for the fuzz tests. A dev-dependency of every crate; it depends on none of them.

pub mod mutate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// `assets/fixtures/<relative>` of the workspace, whichever crate's test asks.
pub fn fixture(relative: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(fixtures_dir).join(relative)
}

/// The workspace's `assets/fixtures`, found upward from the crate under test (`cargo test` sets
/// `CARGO_MANIFEST_DIR` when it runs a test) before the folder this crate was compiled in: a
/// target dir shared between checkouts may hold this crate built in another one.
fn fixtures_dir() -> PathBuf {
    let under_test = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let compiled_in = Path::new(env!("CARGO_MANIFEST_DIR"));
    under_test
        .iter()
        .map(PathBuf::as_path)
        .chain([compiled_in])
        .flat_map(Path::ancestors)
        .map(|dir| dir.join("assets/fixtures"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("no assets/fixtures above {under_test:?} or {compiled_in:?}"))
}

/// The JSON file `assets/fixtures/<relative>` (a golden record, a manifest of tensor names).
pub fn fixture_json(relative: &str) -> serde_json::Value {
    let path = fixture(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `golden.json` of fixture `name`: the reference's inputs and outputs (text, cases, codes).
pub fn golden_json(name: &str) -> serde_json::Value {
    fixture_json(&format!("{name}/golden.json"))
}

/// The reference's golden tensors of a fixture (`<name>/golden.safetensors`), read as host
/// values so tests on any backend (or none, for the binaries' tests) compare against them.
pub struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    /// Reads `assets/fixtures/<name>/golden.safetensors`.
    pub fn open(name: &str) -> Self {
        let path = fixture(name).join("golden.safetensors");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Self { bytes }
    }

    /// Tensor `key` as f32 values (float or integer storage) and its shape.
    pub fn get(&self, key: &str) -> (Vec<f32>, Vec<usize>) {
        let view = self.view(key);
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::I64 | Dtype::I32 => self.get_int(key).0.into_iter().map(|x| x as f32).collect(),
            other => panic!("golden `{key}`: dtype {other:?}"),
        };
        (values, view.shape().to_vec())
    }

    /// Integer tensor `key` (codes, tokens) as i64 values and its shape.
    pub fn get_int(&self, key: &str) -> (Vec<i64>, Vec<usize>) {
        let view = self.view(key);
        let data = view.data();
        let values = match view.dtype() {
            Dtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::I32 => data
                .chunks_exact(4)
                .map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap())))
                .collect(),
            other => panic!("golden `{key}`: dtype {other:?} is not an integer"),
        };
        (values, view.shape().to_vec())
    }

    fn view(&self, key: &str) -> TensorView<'_> {
        SafeTensors::deserialize(&self.bytes)
            .expect("golden.safetensors is valid")
            .tensor(key)
            .unwrap_or_else(|_| panic!("golden tensor `{key}`"))
    }
}

/// dia-tiny's golden audio-prompt codes `key` (`caseI_promptJ`, `[frames][9]`) written as the
/// codes JSON that `dia-infer` and `dia-server` read.
pub fn write_prompt_codes(key: &str, path: &Path) {
    let (values, shape) = Golden::open("dia-tiny").get_int(key);
    let frames: Vec<&[i64]> = values.chunks(shape[1]).collect();
    std::fs::write(path, serde_json::to_string(&frames).unwrap()).unwrap();
}

/// The largest absolute difference between two equally long runs of values (samples, logits);
/// infinite if either holds a NaN, which a plain `f32::max` fold would skip. A length mismatch
/// panics at the caller's line.
#[track_caller]
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0, f32::max)
}

/// One tensor of a safetensors file, as stored: its dtype, shape and little-endian bytes.
#[derive(Clone, Debug)]
pub struct StoredTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// A safetensors file's tensors by name, for tests that write damaged or converted copies.
pub type Tensors = BTreeMap<String, StoredTensor>;

/// Every tensor of the safetensors file at `path`.
pub fn read_tensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let file = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let tensor = StoredTensor {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                bytes: view.data().to_vec(),
            };
            (name, tensor)
        })
        .collect()
}

/// Writes `tensors` as a safetensors file at `path`; panics if a shape does not fit its bytes.
pub fn write_tensors(path: &Path, tensors: &Tensors) {
    let views = tensors.iter().map(|(name, t)| {
        let view = TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
            .unwrap_or_else(|e| panic!("tensor `{name}`: {e}"));
        (name.clone(), view)
    });
    safetensors::serialize_to_file(views, None, path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
}
