//! Flex's weight layout: column tiles ([`Tiles`]), made once at load ([`crate::backend::DiaBackend::arrange`]),
//! which the few-row kernel ([`super::gemv`]) reads as long sequential streams and the many-row
//! path ([`super::many_rows`]) gathers into blocks for gemm. [`tile_offset`] is the layout's one
//! definition.

use burn::module::{Module, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{BasicOps, DType, Element, Tensor, TensorData};
use half::{bf16, f16};

use crate::backend::{Dense, Int8Weight};

/// Columns per tile of [`Tiles`].
pub const TILE: usize = 32;

/// Input rows per stretch of [`Tiles`]: a few-row product sums each stretch on its own (split-K)
/// and adds the stretches in order. Fixed, so every sum is added in the same order whatever the
/// thread count (the same seed gives the same codes on any machine); long enough to stream
/// (Dia's 2048-row projections make four stretches, two per thread on two cores), and a
/// multiple of [`TILE_STREAMS`].
pub const TILE_SPAN: usize = 512;

/// Streams a stretch of [`Tiles`] is read as: its rows are cut into this many equal runs, each
/// stored contiguously across all tiles, and a few-row product takes one row of each per step,
/// so the prefetcher follows a few long sequential streams (measured on the 2-core EPYC, bf16:
/// 2 streams 32 GB/s, 4 streams 35–37, 6 or 8 streams 33–34, 16 streams 19–22).
pub const TILE_STREAMS: usize = 4;

/// An `[in, out]` weight as `[tiles · in, TILE]` rows of [`TILE`] columns: tile `t` holds
/// columns `TILE·t..TILE·(t + 1)` (zero past `out`), and its row for input row `i` lies at
/// [`tile_offset`]. Per stretch of [`TILE_SPAN`] input rows: each of its [`TILE_STREAMS`] runs
/// of rows for every tile in turn, then the rows past the runs for every tile. A few-row product
/// reads a tile's runs as long sequential streams into sums that stay in registers (Flex's
/// layout, made at load).
#[derive(Module, Debug)]
pub struct Tiles<B: Backend> {
    /// Float tiles (f32, f16 or bf16), or `None` when `int8` holds them.
    pub float: Option<Param<Tensor<B, 2>>>,
    /// Int8 tiles and their scales `[out]`, or `None` for float tiles. With int8 inputs, in quad
    /// tiles (`int8_dot::quad_offset`) as the integer kernels read them.
    pub int8: Option<Int8Weight<B>>,
    /// The weight's input rows (quad tiles pad them).
    pub rows: usize,
    /// The weight's columns, without the last tile's padding.
    pub out: usize,
}

impl<B: Backend> Tiles<B> {
    /// The weight's `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        [self.rows, self.out]
    }

    /// `weight` in column tiles (quad tiles for int8 inputs): a copy through the host, made
    /// once, at load.
    pub fn tile(weight: Dense<B>) -> Dense<B> {
        let [rows, out] = weight.dims();
        let (float, int8) = match weight {
            Dense::Float(w) => (
                Some(Param::from_tensor(retile(w.into_value(), tile_data))),
                None,
            ),
            Dense::Int8(q) => {
                let layout = match q.int8_activations {
                    true => quad_data,
                    false => tile_data,
                };
                let values =
                    Param::initialized(ParamId::new(), retile(q.values.into_value(), layout));
                let int8_activations = q.int8_activations;
                (
                    None,
                    Some(Int8Weight {
                        values,
                        scale: q.scale,
                        int8_activations,
                    }),
                )
            }
            Dense::Tiled(_) => return weight,
        };
        Dense::Tiled(Self {
            float,
            int8,
            rows,
            out,
        })
    }

    /// The weight back in `[in, out]` (a copy through the host).
    pub fn untiled(self) -> Dense<B> {
        let [rows, out] = [self.rows, self.out];
        let untile = |data: TensorData| untile_data(data, out);
        match (self.float, self.int8) {
            (Some(w), _) => Dense::Float(Param::from_tensor(retile(w.into_value(), untile))),
            (None, Some(q)) => {
                let values = match q.int8_activations {
                    true => retile(q.values.into_value(), |d| untile_quad_data(d, rows, out)),
                    false => retile(q.values.into_value(), untile),
                };
                Dense::Int8(Int8Weight {
                    values: Param::initialized(ParamId::new(), values),
                    scale: q.scale,
                    int8_activations: q.int8_activations,
                })
            }
            (None, None) => panic!("tiles hold neither float nor int8 values"),
        }
    }
}

/// Int8 `[d_in, out]` values in quad tiles (`[tiles · padded d_in, TILE]`).
fn quad_data(data: TensorData) -> TensorData {
    let [d_in, out] = data.shape.dims::<2>();
    let values = data.to_vec::<i8>().expect("int8 values");
    let tiles = super::int8_dot::quad_tiles(&values, d_in, out);
    let rows = tiles.len() / TILE;
    TensorData::new(tiles, [rows, TILE])
}

/// [`quad_data`] undone.
fn untile_quad_data(data: TensorData, d_in: usize, out: usize) -> TensorData {
    let tiles = data.to_vec::<i8>().expect("int8 quad tiles");
    TensorData::new(
        super::int8_dot::untile_quads(&tiles, d_in, out),
        [d_in, out],
    )
}

/// Where input row `i` of tile `t` starts, in elements, in the [`Tiles`] of a `[d_in, out]`
/// weight: the layout's one definition, which the tiling, the untiling and the kernels share.
pub fn tile_offset(d_in: usize, out: usize, t: usize, i: usize) -> usize {
    let count = out.div_ceil(TILE);
    let start = i / TILE_SPAN * TILE_SPAN;
    let len = TILE_SPAN.min(d_in - start);
    let run = len / TILE_STREAMS;
    let at = i - start;
    let row = if at < run * TILE_STREAMS {
        (at / run * count + t) * run + at % run
    } else {
        let rest = len - run * TILE_STREAMS;
        run * TILE_STREAMS * count + t * rest + (at - run * TILE_STREAMS)
    };
    (start * count + row) * TILE
}

/// A tensor's values rearranged on the host by `f` (its data to the new data, shape included);
/// a tensor no other handle shares moves to the host and back without a copy on the CPU.
fn retile<B: Backend, K: BasicOps<B>>(
    tensor: Tensor<B, 2, K>,
    f: impl FnOnce(TensorData) -> TensorData,
) -> Tensor<B, 2, K> {
    let device = tensor.device();
    let data = f(tensor.into_data());
    let dtype = data.dtype;
    Tensor::from_data(data, (&device, dtype))
}

/// `[d_in, out]` values as `[tiles · d_in, TILE]` ([`Tiles`]), zero past `out`.
fn tile_data(data: TensorData) -> TensorData {
    match data.dtype {
        DType::F32 => tile_values::<f32>(data),
        DType::F16 => tile_values::<f16>(data),
        DType::BF16 => tile_values::<bf16>(data),
        DType::I8 => tile_values::<i8>(data),
        other => panic!("no column tiles for {other:?} weights"),
    }
}

/// [`tile_data`] for one element type: written into a vector of that type, which the tensor
/// then takes without another copy.
fn tile_values<T: Element + Default>(data: TensorData) -> TensorData {
    let [d_in, out] = data.shape.dims::<2>();
    let count = out.div_ceil(TILE);
    let mut tiles = vec![T::default(); count * d_in * TILE];
    let plain = data.as_slice::<T>().expect("the dtype's elements");
    per_stretch(&mut tiles, count * TILE, d_in, |start, region| {
        for (at, i, t) in stretch_rows(d_in, out, start) {
            let width = TILE.min(out - t * TILE);
            region[at..][..width].copy_from_slice(&plain[i * out + t * TILE..][..width]);
        }
    });
    TensorData::new(tiles, [count * d_in, TILE])
}

/// [`tile_data`] undone: `[tiles · d_in, TILE]` back to `[d_in, out]`.
fn untile_data(data: TensorData, out: usize) -> TensorData {
    match data.dtype {
        DType::F32 => untile_values::<f32>(data, out),
        DType::F16 => untile_values::<f16>(data, out),
        DType::BF16 => untile_values::<bf16>(data, out),
        DType::I8 => untile_values::<i8>(data, out),
        other => panic!("no column tiles for {other:?} weights"),
    }
}

/// [`untile_data`] for one element type.
fn untile_values<T: Element + Default>(data: TensorData, out: usize) -> TensorData {
    let count = out.div_ceil(TILE);
    let d_in = data.shape.dims::<2>()[0] / count.max(1);
    let mut plain = vec![T::default(); d_in * out];
    let tiles = data.as_slice::<T>().expect("the dtype's elements");
    per_stretch(&mut plain, out, d_in, |start, region| {
        let from_region = &tiles[start * count * TILE..];
        for (at, i, t) in stretch_rows(d_in, out, start) {
            let width = TILE.min(out - t * TILE);
            let to = &mut region[(i - start) * out + t * TILE..][..width];
            to.copy_from_slice(&from_region[at..][..width]);
        }
    });
    TensorData::new(plain, [d_in, out])
}

/// Runs `f(first input row, values)` on each stretch's part of `values`, which holds
/// `row_len` per input row, the stretches spread over the CPU's threads (a weight of gigabytes
/// is tiled in seconds, not tens of seconds).
fn per_stretch<T: Send>(
    values: &mut [T],
    row_len: usize,
    d_in: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = (TILE_SPAN * row_len).max(1);
    let regions: Vec<(usize, &mut [T])> = values
        .chunks_mut(chunk)
        .enumerate()
        .map(|(s, region)| (s * TILE_SPAN, region))
        .take(d_in.div_ceil(TILE_SPAN))
        .collect();
    let mut shares: Vec<Vec<(usize, &mut [T])>> = (0..threads).map(|_| Vec::new()).collect();
    for (n, region) in regions.into_iter().enumerate() {
        shares[n % threads].push(region);
    }
    std::thread::scope(|scope| {
        for share in shares {
            let f = &f;
            scope.spawn(move || {
                share
                    .into_iter()
                    .for_each(|(start, region)| f(start, region))
            });
        }
    });
}

/// The rows of the stretch starting at input row `start`, in the order [`Tiles`] stores them:
/// (element offset from the stretch's first, input row, tile). Agrees with [`tile_offset`].
fn stretch_rows(
    d_in: usize,
    out: usize,
    start: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    let count = out.div_ceil(TILE);
    let len = TILE_SPAN.min(d_in - start);
    let run = len / TILE_STREAMS;
    let streamed = (0..TILE_STREAMS).flat_map(move |j| {
        (0..count).flat_map(move |t| (0..run).map(move |step| (start + j * run + step, t)))
    });
    let rest =
        (0..count).flat_map(move |t| (run * TILE_STREAMS..len).map(move |at| (start + at, t)));
    streamed
        .chain(rest)
        .enumerate()
        .map(|(row, (i, t))| (row * TILE, i, t))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{DType, TensorData};

    use super::{TILE, tile_data, tile_offset, untile_data};

    /// Every element lands where [`tile_offset`] says, the padding is zero, and untiling gives
    /// the weight back, for stretches with and without rows past their streams, several
    /// stretches, one column and ragged last tiles, in f32 and int8.
    #[test]
    fn tiles_hold_every_element_once_and_untile_back() {
        for (k, n) in [
            (7usize, 13usize),
            (48, 40),
            (1030, 33),
            (600, 64),
            (1, 1),
            (513, 70),
        ] {
            let values: Vec<f32> = (0..k * n).map(|v| v as f32 + 1.0).collect();
            let data = TensorData::new(values.clone(), [k, n]);
            let tiles = tile_data(data.clone());
            assert_eq!(tiles.shape.dims::<2>(), [n.div_ceil(TILE) * k, TILE]);
            let flat = tiles.to_vec::<f32>().unwrap();
            let mut placed = 0;
            for i in 0..k {
                for c in 0..n.div_ceil(TILE) * TILE {
                    let got = flat[tile_offset(k, n, c / TILE, i) + c % TILE];
                    let want = if c < n { values[i * n + c] } else { 0.0 };
                    assert_eq!(got, want, "[{k}, {n}]: row {i}, column {c}");
                    placed += usize::from(c < n);
                }
            }
            assert_eq!(placed, k * n);
            assert_eq!(flat.iter().filter(|&&v| v != 0.0).count(), k * n);
            untile_data(tiles, n).assert_eq(&data, true);
            let int8: Vec<i8> = (0..k * n).map(|v| (v % 251) as i8).collect();
            let int8 = TensorData::new(int8, [k, n]);
            assert_eq!(int8.dtype, DType::I8);
            untile_data(tile_data(int8.clone()), n).assert_eq(&int8, true);
        }
    }
}
