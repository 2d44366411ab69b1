//! The device sampler in one kernel: one cube per item and channel takes the row's CFG pair of
//! logits to a token, as [`crate::generation`]'s host sampler does: the guided candidate set
//! (V0626: the conditional logits inside the guided top-k; original: guided logits, EOS × 0.8),
//! the special-token masks and the argmax; when sampling, temperature, the EOS rule, top-k,
//! softmax, top-p and a draw with the host's seeded uniform. Top-k thresholds are found by
//! bisection on the values' ordered bits, so they are exact (ties kept, as the tensor path
//! keeps them); the draw walks the probabilities in id order, as the host does.

use burn::tensor::{DType, Shape};
use burn_cubecl::CubeRuntime;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::reduce::{cube_max, cube_sum};
use crate::backend::TokenRule;
use crate::config::ModelVersion;

/// Threads per cube (rows of up to [`MAX_VOCAB`] ids are a few strides of it).
const THREADS: u32 = 256;
/// The widest vocabulary the kernel takes (its rows live in shared memory).
pub const MAX_VOCAB: usize = 2048;
/// Stand-in for −∞ (WGSL has no infinite literal).
const FLOOR: f32 = -3.0e38;

/// `codes[i, 0, c, 0]` from `logits[2i (unconditional) / 2i + 1 (conditional), 0, c, :]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn choose_kernel<I: Int>(
    logits: &Tensor<f32>,  // [2 · items, 1, channels, vocab], contiguous
    draws: &Tensor<f32>,   // [items, 1, channels, 1], contiguous (unread when greedy)
    codes: &mut Tensor<I>, // [items, 1, channels, 1]
    cfg_scale: f32,
    temperature: f32,
    top_p: f32,
    top_k: u32,
    eos: u32,
    #[comptime] vocab: usize,
    #[comptime] guided_top_k: bool,
    #[comptime] sampled: bool,
    #[comptime] top_p_filters: bool,
    #[define(I)] _dtype: StorageType,
) {
    let channels = logits.shape(2);
    let row = CUBE_POS_X as usize;
    let (item, channel) = (row / channels, row % channels);
    let uncond_at = (2 * item * channels + channel) * vocab;
    let cond_at = uncond_at + channels * vocab;
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    let mut values = SharedMemory::<f32>::new(vocab);
    let mut alive = SharedMemory::<u32>::new(vocab);
    let mut red = SharedMemory::<f32>::new(THREADS as usize);
    let mut index = SharedMemory::<u32>::new(THREADS as usize);

    // The candidates: guided logits, ranked (V0626) or scaled (original), special ids hidden.
    let mut v = t;
    while v < vocab {
        let (cond, uncond) = (logits[cond_at + v], logits[uncond_at + v]);
        let guided = cond + (cond - uncond) * cfg_scale;
        let scale = select(!guided_top_k && channel == 0 && v == eos as usize, 0.8, 1.0);
        values[v] = guided * scale;
        alive[v] = 1u32;
        v += threads;
    }
    sync_cube();
    if guided_top_k {
        // Ranked over every id, the special ones included (as the reference ranks them).
        keep_top_k(&mut values, &mut alive, &mut red, top_k, vocab);
    }
    let mut v = t;
    while v < vocab {
        if guided_top_k {
            values[v] = logits[cond_at + v];
        }
        let special = v > eos as usize || (channel > 0 && v == eos as usize);
        alive[v] = select(special, 0u32, alive[v]);
        v += threads;
    }
    sync_cube();
    let best = argmax(&values, &alive, &mut red, &mut index, vocab);
    if sampled {
        // The EOS rule, temperature, top-k, softmax and top-p, then the draw.
        let eos_best = best == eos;
        let mut v = t;
        while v < vocab {
            let hidden =
                (v == eos as usize && !eos_best) || (guided_top_k && v < eos as usize && eos_best);
            alive[v] = select(hidden, 0u32, alive[v]);
            values[v] /= temperature;
            v += threads;
        }
        sync_cube();
        keep_top_k(&mut values, &mut alive, &mut red, top_k, vocab);
        softmax(&mut values, &alive, &mut red, vocab);
        if top_p_filters {
            nucleus(&mut values, &mut alive, top_p, vocab);
        }
        if t == 0 {
            codes[row] = I::cast_from(draw(&values, &alive, draws[row], best, vocab));
        }
    } else if t == 0 {
        codes[row] = I::cast_from(best);
    }
}

/// `x`'s bits as an unsigned key in the order of the floats (−0 taken as +0).
#[cube]
fn ordered(x: f32) -> u32 {
    let bits = u32::reinterpret(select(x == 0.0, 0.0, x));
    select(
        bits >= 0x8000_0000u32,
        bits ^ 0xFFFF_FFFFu32,
        bits ^ 0x8000_0000u32,
    )
}

/// Hides the alive ids below the `k`-th largest alive value (with multiplicity; an id tied
/// with it stays): the largest key with at least `k` alive values at or above it, one bit at a
/// time from the top. Fewer than `k` alive ids keep all.
#[cube]
fn keep_top_k(
    values: &mut SharedMemory<f32>,
    alive: &mut SharedMemory<u32>,
    red: &mut SharedMemory<f32>,
    k: u32,
    #[comptime] vocab: usize,
) {
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    let mut threshold = 0u32;
    let mut bit = 32u32;
    while bit > 0 {
        bit -= 1;
        let candidate = threshold | (1u32 << bit);
        let mut count = 0u32;
        let mut v = t;
        while v < vocab {
            count += select(alive[v] == 1 && ordered(values[v]) >= candidate, 1u32, 0u32);
            v += threads;
        }
        let total = cube_sum(red, f32::cast_from(count));
        if total >= f32::cast_from(k) {
            threshold = candidate;
        }
    }
    let mut v = t;
    while v < vocab {
        alive[v] = select(ordered(values[v]) < threshold, 0u32, alive[v]);
        v += threads;
    }
    sync_cube();
}

/// The first id of the largest alive value (torch's tie rule).
#[cube]
fn argmax(
    values: &SharedMemory<f32>,
    alive: &SharedMemory<u32>,
    red: &mut SharedMemory<f32>,
    index: &mut SharedMemory<u32>,
    #[comptime] vocab: usize,
) -> u32 {
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    let mut best = f32::new(FLOOR);
    let none = (vocab as u32).runtime();
    let mut at = none;
    let mut v = t;
    while v < vocab {
        if alive[v] == 1 && (values[v] > best || at == none) {
            best = values[v];
            at = v as u32;
        }
        v += threads;
    }
    red[t] = best;
    index[t] = at;
    sync_cube();
    let mut stride = threads / 2;
    while stride > 0 {
        if t < stride {
            let (other, other_at) = (red[t + stride], index[t + stride]);
            let (mine, mine_at) = (red[t], index[t]);
            let takes = other_at < none
                && (mine_at == none || other > mine || (other == mine && other_at < mine_at));
            if takes {
                red[t] = other;
                index[t] = other_at;
            }
        }
        sync_cube();
        stride /= 2;
    }
    let result = index[0];
    sync_cube();
    result
}

/// The alive values as probabilities (hidden ids 0).
#[cube]
fn softmax(
    values: &mut SharedMemory<f32>,
    alive: &SharedMemory<u32>,
    red: &mut SharedMemory<f32>,
    #[comptime] vocab: usize,
) {
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    let mut best = f32::new(FLOOR);
    let mut v = t;
    while v < vocab {
        if alive[v] == 1 {
            best = select(values[v] > best, values[v], best);
        }
        v += threads;
    }
    let best = cube_max(red, best);
    let mut sum = f32::new(0.0);
    let mut v = t;
    while v < vocab {
        let e = select(alive[v] == 1, (values[v] - best).exp(), 0.0);
        values[v] = e;
        sum += e;
        v += threads;
    }
    let total = cube_sum(red, sum);
    let mut v = t;
    while v < vocab {
        values[v] /= total;
        v += threads;
    }
    sync_cube();
}

/// Zeroes the ids outside the nucleus: an id goes when the mass of the more probable ids
/// exceeds `top_p` (ids tied with it count as it, so a tie goes or stays together).
#[cube]
fn nucleus(
    values: &mut SharedMemory<f32>,
    alive: &mut SharedMemory<u32>,
    top_p: f32,
    #[comptime] vocab: usize,
) {
    let t = UNIT_POS_X as usize;
    let threads = CUBE_DIM_X as usize;
    // Decided for every id before any is zeroed.
    let mut v = t;
    while v < vocab {
        if alive[v] == 1 {
            let p = values[v];
            let mut before = f32::new(0.0);
            for u in 0..vocab {
                before += select(values[u] > p, values[u], 0.0);
            }
            alive[v] = select(before > top_p, 2u32, 1u32);
        }
        v += threads;
    }
    sync_cube();
    let mut v = t;
    while v < vocab {
        if alive[v] == 2 {
            values[v] = 0.0;
            alive[v] = 0;
        }
        v += threads;
    }
    sync_cube();
}

/// The host's draw: `u = uniform · total`, the first id whose probability exceeds what is left
/// of `u`; rounding past the last bucket takes the last id with mass (`best` when none has).
#[cube]
fn draw(
    values: &SharedMemory<f32>,
    alive: &SharedMemory<u32>,
    uniform: f32,
    best: u32,
    #[comptime] vocab: usize,
) -> u32 {
    let mut total = f32::new(0.0);
    for v in 0..vocab {
        total += select(alive[v] == 1, values[v], 0.0);
    }
    let mut left = uniform * total;
    let none = (vocab as u32).runtime();
    let mut chosen = none;
    let mut last = best;
    for v in 0..vocab {
        let p = select(alive[v] == 1, values[v], 0.0);
        if p > 0.0 {
            last = v as u32;
            if chosen == none {
                if left < p {
                    chosen = v as u32;
                }
                left -= p;
            }
        }
    }
    select(chosen == none, last, chosen)
}

/// Launches [`choose_kernel`] on f32 `logits` `[2 · items, 1, channels, vocab]` (contiguous)
/// with `draws` `[items, 1, channels, 1]` when sampling; codes in `int`. The vocabulary is at
/// most [`MAX_VOCAB`].
pub fn choose<R: CubeRuntime>(
    logits: CubeTensor<R>,
    draws: Option<CubeTensor<R>>,
    rule: &TokenRule,
    int: DType,
) -> CubeTensor<R> {
    let [rows, _, channels, vocab] = logits.meta.shape().dims::<4>();
    let items = rows / 2;
    let client = logits.client.clone();
    let codes = empty_device_dtype(
        client.clone(),
        logits.device.clone(),
        Shape::new([items, 1, channels, 1]),
        int,
    );
    let sampled = draws.is_some() && rule.params.temperature != 0.0;
    // Greedy: the logits stand in for the draws, which the kernel does not read.
    let draws = draws.unwrap_or_else(|| logits.clone());
    choose_kernel::launch::<R>(
        &client,
        CubeCount::Static((items * channels) as u32, 1, 1),
        CubeDim::new_1d(THREADS),
        logits.into_tensor_arg(),
        draws.into_tensor_arg(),
        codes.clone().into_tensor_arg(),
        rule.params.cfg_scale,
        rule.params.temperature,
        rule.params.top_p,
        rule.params.top_k.min(u32::MAX as usize) as u32,
        rule.eos as u32,
        vocab,
        rule.version == ModelVersion::V0626,
        sampled,
        rule.params.top_p < 1.0,
        int.into(),
    );
    codes
}
