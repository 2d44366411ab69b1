//! The slices the product kernels read from a weight, in `[in, out]` or in column tiles
//! ([`super::layout::Tiles`]).

use burn::tensor::DType;
use burn_flex::{Flex, FlexTensor};
use half::{bf16, f16};

use super::tensors::primitive;
use crate::backend::Dense;

/// A weight's tensors as the kernels read them, in either layout.
pub struct Stored {
    values: FlexTensor,
    scale: Option<FlexTensor>,
    /// Int8 inputs ([`crate::backend::Int8Weight::int8_activations`]).
    int8_activations: bool,
    /// Whether in column tiles ([`super::layout::Tiles`]) rather than `[in, out]`.
    pub tiled: bool,
    /// `[in, out]`.
    pub dims: [usize; 2],
}

/// The values of a [`Stored`] weight, by type, with an int8 weight's column scales.
pub enum Values<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Bf16(&'a [bf16]),
    Int8 {
        values: &'a [i8],
        scale: &'a [f32],
    },
    /// Int8 in quad tiles, for int8 inputs ([`super::int8_dot`]).
    W8a8 {
        values: &'a [i8],
        scale: &'a [f32],
    },
}

impl Stored {
    /// The tensors behind `weight`.
    pub fn of(weight: &Dense<Flex>) -> Self {
        let dims = weight.dims();
        let (float, int8, tiled) = match weight {
            Dense::Float(w) => (Some(w), None, false),
            Dense::Int8(q) => (None, Some(q), false),
            Dense::Tiled(t) => (t.float.as_ref(), t.int8.as_ref(), true),
        };
        let int8_activations = int8.is_some_and(|q| q.int8_activations);
        let (values, scale) = match (float, int8) {
            (Some(w), _) => (primitive(w.val()), None),
            (None, Some(q)) => (
                q.values.val().into_primitive(),
                Some(primitive(q.scale.val())),
            ),
            (None, None) => panic!("tiles hold neither float nor int8 values"),
        };
        Self {
            values,
            scale,
            int8_activations,
            tiled,
            dims,
        }
    }

    /// The values as a slice; `None` when stored as a strided view or in another type, or with
    /// int8 inputs in `[in, out]` (only quad tiles have a kernel here).
    pub fn values(&self) -> Option<Values<'_>> {
        let v = &self.values;
        if self.int8_activations {
            let (values, scale) = (v.as_slice()?, self.scale.as_ref()?.as_slice()?);
            return self.tiled.then_some(Values::W8a8 { values, scale });
        }
        Some(match (v.dtype(), &self.scale) {
            (DType::F32, None) => Values::F32(v.as_slice()?),
            (DType::F16, None) => Values::F16(v.as_slice()?),
            (DType::BF16, None) => Values::Bf16(v.as_slice()?),
            (DType::I8, Some(scale)) => Values::Int8 {
                values: v.as_slice()?,
                scale: scale.as_slice()?,
            },
            _ => return None,
        })
    }
}
