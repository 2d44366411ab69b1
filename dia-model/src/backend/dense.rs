//! Bias-free projection computed through the backend's [`DiaBackend::project`] hook, so each
//! backend can use its fastest kernel for the shape at hand; weights stored as a float dtype or
//! as int8 with one scale per output column, optionally with int8 inputs ([`WeightStorage`]), in `[in, out]` or in the
//! layout a backend's kernels read (Flex's column tiles, `backend::flex::Tiles`).

use burn::module::{Module, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor, TensorData};

use super::DiaBackend;
use crate::config::WeightStorage;

/// `y = x · weight`: the one representation of a projection's weight, which the backend hooks
/// take as it is.
#[derive(Module, Debug)]
pub enum Dense<B: Backend> {
    /// `[in, out]` in f32, f16 or bf16 (the hooks compute in the input's dtype).
    Float(Param<Tensor<B, 2>>),
    /// Int8 `[in, out]` with one f32 scale per output column.
    Int8(Int8Weight<B>),
    /// Either of the above in Flex's column tiles, as its kernels read it
    /// ([`DiaBackend::arrange`]); only Flex's hooks take it.
    #[cfg(feature = "flex")]
    Tiled(super::flex::Tiles<B>),
}

/// An int8 matrix: `weight[i, o] ≈ values[i, o] · scale[o]`.
#[derive(Module, Debug)]
pub struct Int8Weight<B: Backend> {
    /// `[in, out]`, int8, symmetric (−127..=127).
    pub values: Param<Tensor<B, 2, Int>>,
    /// `[out]`, f32: each output column's largest magnitude over 127.
    pub scale: Param<Tensor<B, 1>>,
    /// Whether each input row is quantized to int8 too ([`WeightStorage::W8A8`]): the hooks
    /// then compute `Σ q(x)·values` (exactly where they can) times both scales.
    pub int8_activations: bool,
}

impl<B: DiaBackend> Dense<B> {
    /// Stores an `[in, out]` weight as `storage` says: cast to a float dtype, or quantized to
    /// int8 with one scale per output column (symmetric; an all-zero column keeps scale 1);
    /// then laid out as the backend's kernels read it ([`DiaBackend::arrange`]).
    pub fn new(weight: Tensor<B, 2>, storage: WeightStorage) -> Self {
        B::arrange(Self::plain(weight, storage))
    }

    /// [`Dense::new`] in `[in, out]`, whatever the backend's kernels read.
    pub fn plain(weight: Tensor<B, 2>, storage: WeightStorage) -> Self {
        let Some(dtype) = storage.float_dtype() else {
            let int8_activations = storage == WeightStorage::W8A8;
            return Self::Int8(Int8Weight::quantize(weight, int8_activations));
        };
        let weight = if weight.dtype() == dtype {
            weight
        } else {
            weight.cast(dtype)
        };
        Self::Float(Param::from_tensor(weight))
    }

    /// The column blocks `parts` side by side (the fused q/k/v); every part in the same format.
    pub fn cat_columns(parts: Vec<Self>) -> Self {
        let mut floats = Vec::new();
        let (mut values, mut scales) = (Vec::new(), Vec::new());
        let mut int8_activations = false;
        for part in parts {
            match part.untiled() {
                Self::Float(w) => floats.push(w.into_value()),
                Self::Int8(q) => {
                    values.push(q.values.into_value());
                    scales.push(q.scale.into_value());
                    int8_activations = q.int8_activations;
                }
                #[cfg(feature = "flex")]
                Self::Tiled(_) => unreachable!("untiled above"),
            }
        }
        assert!(
            floats.is_empty() || values.is_empty(),
            "cannot join float and int8 weights"
        );
        if values.is_empty() {
            return B::arrange(Self::Float(Param::from_tensor(Tensor::cat(floats, 1))));
        }
        B::arrange(Self::Int8(Int8Weight {
            values: Param::initialized(ParamId::new(), cat_int8_columns(values)),
            scale: Param::from_tensor(Tensor::cat(scales, 0)),
            int8_activations,
        }))
    }
}

impl<B: Backend> Dense<B> {
    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Self::Float(w) => w.dims(),
            Self::Int8(q) => q.values.dims(),
            #[cfg(feature = "flex")]
            Self::Tiled(t) => t.dims(),
        }
    }

    /// The weight in `[in, out]`: a backend's own layout undone (Flex's tiles, a copy through
    /// the host), for the code that reads `[in, out]` (joining weights at load, tests).
    pub fn untiled(self) -> Self {
        match self {
            #[cfg(feature = "flex")]
            Self::Tiled(tiles) => tiles.untiled(),
            plain => plain,
        }
    }
}

/// Int8 `[in, out_i]` matrices side by side, joined on the host: WGSL has no 8-bit type, so
/// wgpu stores int8 but cannot run Burn's `cat` on it (this runs once, at load).
fn cat_int8_columns<B: Backend>(parts: Vec<Tensor<B, 2, Int>>) -> Tensor<B, 2, Int> {
    let device = parts[0].device();
    let [d_in, _] = parts[0].dims();
    let parts: Vec<(usize, Vec<i8>)> = parts
        .into_iter()
        .map(|p| {
            let width = p.dims()[1];
            (width, p.into_data().to_vec::<i8>().expect("int8 values"))
        })
        .collect();
    let d_out = parts.iter().map(|(width, _)| width).sum();
    let mut joined = Vec::with_capacity(d_in * d_out);
    for row in 0..d_in {
        for (width, values) in &parts {
            joined.extend_from_slice(&values[row * width..(row + 1) * width]);
        }
    }
    Tensor::from_data(TensorData::new(joined, [d_in, d_out]), (&device, DType::I8))
}

/// `f` on blocks of whole rows of `values` (`width` per row), one block per CPU thread, the
/// results in row order: quantizing a checkpoint's weights at load on every core.
fn on_row_blocks<T: Send>(values: &[f32], width: usize, f: impl Fn(&[f32]) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = values.len() / width.max(1);
    let block = rows.div_ceil(threads).max(1) * width.max(1);
    std::thread::scope(|scope| {
        let tasks: Vec<_> = values.chunks(block).map(|b| scope.spawn(|| f(b))).collect();
        tasks
            .into_iter()
            .map(|t| t.join().expect("a quantizing thread does not panic"))
            .collect()
    })
}

impl<B: Backend> Int8Weight<B> {
    /// Symmetric per-column quantization of an `[in, out]` weight, for int8 or float inputs.
    pub(crate) fn quantize(weight: Tensor<B, 2>, int8_activations: bool) -> Self {
        let [d_in, d_out] = weight.dims();
        let device = weight.device();
        let data = weight.into_data().convert::<f32>();
        let values = data.as_slice::<f32>().expect("converted to f32");
        let amax = on_row_blocks(values, d_out, |block| {
            let mut amax = vec![0.0f32; d_out];
            for row in block.chunks_exact(d_out) {
                for (m, v) in amax.iter_mut().zip(row) {
                    *m = m.max(v.abs());
                }
            }
            amax
        })
        .into_iter()
        .reduce(|a, b| a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect())
        .unwrap_or_else(|| vec![0.0; d_out]);
        let scale: Vec<f32> = amax
            .iter()
            .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
            .collect();
        let q: Vec<i8> = on_row_blocks(values, d_out, |block| {
            block
                .chunks_exact(d_out)
                .flat_map(|row| {
                    row.iter()
                        .zip(&scale)
                        .map(|(v, s)| (v / s).round().clamp(-127.0, 127.0) as i8)
                })
                .collect::<Vec<i8>>()
        })
        .concat();
        let values = Tensor::from_data(TensorData::new(q, [d_in, d_out]), (&device, DType::I8));
        let scale = Tensor::from_data(TensorData::new(scale, [d_out]), (&device, DType::F32));
        Self {
            values: Param::initialized(ParamId::new(), values),
            scale: Param::from_tensor(scale),
            int8_activations,
        }
    }

    /// The same weight taking its inputs as they come: for a hook that has quantized them.
    pub fn with_float_inputs(&self) -> Self {
        Self {
            values: self.values.clone(),
            scale: self.scale.clone(),
            int8_activations: false,
        }
    }
}

impl<B: DiaBackend> Dense<B> {
    /// `[batch, seq, in]` → `[batch, seq, out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, seq, d_in] = x.dims();
        let y = B::project(x.reshape([batch * seq, d_in]), self);
        let d_out = y.dims()[1];
        y.reshape([batch, seq, d_out])
    }

    /// `[batch, seq, in]` → one `[batch, seq, width]` per entry of `widths` (which sum to
    /// `out`), each contiguous where the backend can make it so.
    pub fn forward_split(&self, x: Tensor<B, 3>, widths: &[usize]) -> Vec<Tensor<B, 3>> {
        let [batch, seq, d_in] = x.dims();
        B::project_split(x.reshape([batch * seq, d_in]), self, widths)
            .into_iter()
            .map(|y| {
                let width = y.dims()[1];
                y.reshape([batch, seq, width])
            })
            .collect()
    }
}
