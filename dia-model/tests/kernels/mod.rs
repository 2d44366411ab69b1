//! The CubeCL decode kernels (`backend/cubecl`) against the generic path they replace, on the
//! same GPU backend, fused (`Wgpu`) and unfused (`CubeBackend`): odd sizes, 1 to 8 rows, key
//! counts not a multiple of the cube's 128-key chunk, strided inputs (cache and head views),
//! masks; f32 within 1e-4 of the values' scale, f16 within a measured bound; the token chooser
//! picks the tensor ops' codes.

use burn::backend::wgpu::{CubeBackend, WgpuDevice, WgpuRuntime};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Distribution, Int, Tensor, TensorData};
use dia_model::backend::Dense;
use dia_model::backend::{DiaBackend, generic};
use dia_model::config::ModelVersion;
use dia_model::generation::{SamplerParams, TokenChooser};
use dia_model::{DiaConfig, WeightStorage};

/// Burn's wgpu backend without kernel fusion: the kernels launched directly.
type Unfused = CubeBackend<WgpuRuntime, f32, i32, u32>;
type Fused = burn::backend::Wgpu<f32>;

/// Every case compares the kernel with Burn's ops in f32 on the same inputs, relative to the
/// largest value. f32: other summation orders only.
const F32_TOL: f32 = 1e-4;
/// f16 inputs and output (the kernels compute in f32 and round once): measured on lavapipe
/// at most 5.3e-4, about one f16 rounding of the largest value (4.9e-4). Burn's ops in f16,
/// which round between ops, were up to 4.1e-3 off the same f32 reference.
const F16_TOL: f32 = 1e-3;

/// The largest difference between `got` and `want`, relative to `want`'s largest magnitude
/// (at least 1); fails on a NaN or infinity in either.
fn relative_diff<B: Backend, const D: usize>(got: Tensor<B, D>, want: Tensor<B, D>) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shapes differ");
    let values = |t: Tensor<B, D>| t.cast(DType::F32).into_data().to_vec::<f32>().unwrap();
    let (got, want) = (values(got), values(want));
    assert!(
        want.iter().all(|v| v.is_finite()),
        "non-finite reference {want:?}"
    );
    assert!(
        got.iter().all(|v| v.is_finite()),
        "non-finite values {got:?}"
    );
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

/// Runs `case` in f32 and in f16 and holds each difference to its dtype's tolerance.
fn within_tolerances(what: &str, case: impl Fn(DType) -> f32) {
    let d = case(DType::F32);
    assert!(d <= F32_TOL, "f32 {what}: {d}");
    let d = case(DType::F16);
    assert!(d <= F16_TOL, "f16 {what}: {d}");
}

/// `x` in f32: the reference computation for every dtype.
fn f32s<B: Backend, const D: usize>(x: &Tensor<B, D>) -> Tensor<B, D> {
    x.clone().cast(DType::F32)
}

fn random<B: Backend, const D: usize>(
    shape: [usize; D],
    dtype: DType,
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::<B, D>::random(shape, Distribution::Normal(0.0, 1.0), device).cast(dtype)
}

/// Single-query attention over a cache view: `len` of `len + 7` positions, the query heads a
/// view of a wider projection, optionally with the first (of several), every fifth and keys
/// 256 to 511 hidden.
fn attend_case<B: DiaBackend>(
    shape: [usize; 5],
    masked: bool,
    dtype: DType,
    device: &B::Device,
) -> f32 {
    let [batch, kv_heads, group, dim, len] = shape;
    let q = random::<B, 4>([batch, kv_heads, group + 1, dim], dtype, device).narrow(2, 1, group);
    let cache =
        |_| random::<B, 4>([batch, kv_heads, len + 7, dim], dtype, device).narrow(2, 0, len);
    let (k, v) = (cache(0), cache(1));
    let hidden = masked.then(|| {
        let hide = |j: usize| (j == 0 && len > 1) || j % 5 == 3 || (256..512).contains(&j);
        let bits: Vec<bool> = (0..batch * len).map(|i| hide(i % len)).collect();
        Tensor::<B, 4, Bool>::from_data(TensorData::new(bits, [batch, 1, 1, len]), device)
    });
    let want = generic::attend_one(f32s(&q), f32s(&k), f32s(&v), hidden.clone());
    relative_diff(B::attend_one(q, k, v, hidden), want)
}

fn check_attention<B: DiaBackend>(device: &B::Device) {
    // [batch, kv_heads, group, head_dim, keys]: one key; under, at and past one chunk; the
    // full model's head size; 8 rows; keys split in 3 (the last split short) and in 6 (masked:
    // the third and fourth splits wholly hidden).
    let shapes = [
        [1, 1, 1, 8, 1],
        [2, 2, 3, 20, 127],
        [1, 4, 2, 128, 128],
        [8, 3, 1, 33, 300],
        [1, 1, 2, 16, 700],
    ];
    for shape in shapes {
        for masked in [false, true] {
            let what = format!("attention {shape:?} masked {masked}");
            within_tolerances(&what, |dtype| {
                attend_case::<B>(shape, masked, dtype, device)
            });
        }
    }
}

/// RMSNorm after a residual add (and alone) on `[batch, seq, dim]`.
fn norm_case<B: DiaBackend>(
    shape: [usize; 3],
    residual: bool,
    dtype: DType,
    device: &B::Device,
) -> f32 {
    let x = random::<B, 3>(shape, dtype, device);
    let delta = residual.then(|| random::<B, 3>(shape, dtype, device));
    let weight = random::<B, 1>([shape[2]], DType::F32, device);
    let eps = 1e-5;
    let (want_sum, want) =
        generic::add_rms_norm(f32s(&x), delta.as_ref().map(f32s), weight.clone(), eps);
    let (sum, out) = B::add_rms_norm(x, delta, weight, eps);
    relative_diff(sum, want_sum).max(relative_diff(out, want))
}

fn check_norm<B: DiaBackend>(device: &B::Device) {
    // One row of 37, a decode step of 8 rows of 300, a prefill of 2 × 5 rows of 1000.
    for shape in [[1, 1, 37], [8, 1, 300], [2, 5, 1000]] {
        for residual in [false, true] {
            let what = format!("norm {shape:?} residual {residual}");
            within_tolerances(&what, |dtype| {
                norm_case::<B>(shape, residual, dtype, device)
            });
        }
    }
}

/// RoPE on a head view of `[batch, seq, heads, dim]` with angles narrowed from a longer table.
fn rope_case<B: DiaBackend>(shape: [usize; 4], dtype: DType, device: &B::Device) -> f32 {
    let [batch, heads, seq, dim] = shape;
    let x = random::<B, 4>([batch, seq, heads, dim], dtype, device).swap_dims(1, 2);
    let table = |_| {
        random::<B, 2>([seq + 3, dim / 2], DType::F32, device)
            .narrow(0, 2, seq)
            .unsqueeze::<4>()
    };
    let (sin, cos) = (table(0), table(1));
    let want = generic::rope(f32s(&x), sin.clone(), cos.clone());
    relative_diff(B::rope(x, sin, cos), want)
}

/// RoPE into the KV cache: `len` positions of a key head view and values written at `start`
/// of caches of `capacity`, against the generic path on caches of the same values; with
/// `shared`, a clone of the caches is alive and must keep its values.
fn rope_cache_case<B: DiaBackend>(
    shape: [usize; 6],
    shared: bool,
    dtype: DType,
    device: &B::Device,
) -> f32 {
    let [rows, heads, len, dim, start, capacity] = shape;
    let k = random::<B, 4>([rows, len, heads, dim], dtype, device).swap_dims(1, 2);
    let v = random::<B, 4>([rows, heads, len, dim], dtype, device);
    let table = |_| {
        random::<B, 2>([len + 3, dim / 2], DType::F32, device)
            .narrow(0, 1, len)
            .unsqueeze::<4>()
    };
    let tables = (table(0), table(1));
    let data = |_| random::<B, 4>([rows, heads, capacity, dim], dtype, device).into_data();
    let (k_data, v_data) = (data(0), data(1));
    let caches = || {
        let load = |d: &TensorData| Tensor::<B, 4>::from_data(d.clone(), (device, dtype));
        (load(&k_data), load(&v_data))
    };
    let want = generic::rope_cache_write(
        (f32s(&caches().0), f32s(&caches().1)),
        start,
        f32s(&k),
        f32s(&v),
        tables.clone(),
    );
    let kept = caches();
    let given = if shared { kept.clone() } else { caches() };
    let got = B::rope_cache_write(given, start, k, v, tables);
    if shared {
        kept.0.into_data().assert_eq(&k_data, true);
        kept.1.into_data().assert_eq(&v_data, true);
    }
    relative_diff(got.0, want.0).max(relative_diff(got.1, want.1))
}

fn check_rope_cache<B: DiaBackend>(device: &B::Device) {
    // [rows, heads, len, head_dim, start, capacity]: a decode step, one at the last slot, a
    // prefill of 7 positions.
    for shape in [
        [2, 4, 1, 128, 5, 16],
        [1, 3, 1, 34, 15, 16],
        [3, 2, 7, 16, 0, 9],
    ] {
        for shared in [false, true] {
            let what = format!("rope cache {shape:?} shared {shared}");
            within_tolerances(&what, |dtype| {
                rope_cache_case::<B>(shape, shared, dtype, device)
            });
        }
    }
}

fn check_rope<B: DiaBackend>(device: &B::Device) {
    for shape in [[1, 1, 1, 2], [2, 3, 1, 34], [3, 4, 5, 128]] {
        within_tolerances(&format!("rope {shape:?}"), |dtype| {
            rope_case::<B>(shape, dtype, device)
        });
    }
}

/// A `[rows, in]` · `[in, out]` projection with the weight stored as `storage` against Burn's
/// matmul in f32 on the same stored weight.
fn project_case<B: DiaBackend>(
    [rows, d_in, d_out]: [usize; 3],
    storage: WeightStorage,
    dtype: DType,
    device: &B::Device,
) -> f32 {
    let x = random::<B, 2>([rows, d_in], dtype, device);
    let weight = Dense::new(random::<B, 2>([d_in, d_out], DType::F32, device), storage);
    let want = f32s(&x).matmul(f32_weight(&weight));
    relative_diff(B::project(x, &weight), want)
}

/// A stored weight in f32, an int8 one scaled on the host (Burn's int8 cast on wgpu needs an
/// 8-bit type, which WGSL lacks).
fn f32_weight<B: Backend>(weight: &Dense<B>) -> Tensor<B, 2> {
    let q = match weight {
        Dense::Float(w) => return w.val().cast(DType::F32),
        Dense::Int8(q) => q,
        Dense::Tiled(_) => return f32_weight(&weight.clone().untiled()),
    };
    let [d_in, d_out] = weight.dims();
    let values = q.values.val().into_data().to_vec::<i8>().unwrap();
    let scale = q.scale.val().into_data().to_vec::<f32>().unwrap();
    let scaled: Vec<f32> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| f32::from(v) * scale[i % d_out])
        .collect();
    let device = q.scale.val().device();
    Tensor::from_data(TensorData::new(scaled, [d_in, d_out]), &device)
}

fn check_project<B: DiaBackend>(device: &B::Device) {
    // [rows, in, out]: one row and a short input (one pass); an odd width (scalar columns);
    // inputs split in 4 and 17 (the second pass), the last split short; 8 rows; 12 rows (Burn's
    // matmul, on int8 weights unpacked by a kernel).
    let shapes = [
        [1, 8, 4],
        [2, 67, 37],
        [3, 300, 36],
        [8, 1090, 260],
        [12, 40, 16],
    ];
    let storages = [WeightStorage::F32, WeightStorage::F16, WeightStorage::Int8];
    for shape in shapes {
        // Int8 takes columns in fours (whole words; every Dia width is).
        let int8 = |storage| storage == WeightStorage::Int8 && shape[2] % 4 != 0;
        for storage in storages.into_iter().filter(|&s| !int8(s)) {
            within_tolerances(&format!("project {shape:?} {storage:?}"), |dtype| {
                project_case::<B>(shape, storage, dtype, device)
            });
        }
    }
}

#[test]
fn project_kernel_matches_generic_path() {
    check_project::<Unfused>(&WgpuDevice::default());
    check_project::<Fused>(&WgpuDevice::default());
}

/// The kernels' arithmetic for a row does not depend on the rows beside it (continuous batching
/// on the GPU): a projection's rows and an item's attention are bit-identical alone and in a
/// batch, over enough keys that the batch's query heads alone would fill the GPU.
fn check_batch_invariance<B: DiaBackend>(device: &B::Device) {
    let bits = |t: Tensor<B, 2>| t.into_data().to_vec::<f32>().unwrap();
    let x = random::<B, 2>([8, 300], DType::F32, device);
    let weight = Dense::new(
        random::<B, 2>([300, 36], DType::F32, device),
        WeightStorage::F32,
    );
    let batch = B::project(x.clone(), &weight).narrow(0, 2, 2);
    let alone = B::project(x.narrow(0, 2, 2), &weight);
    assert_eq!(bits(batch), bits(alone), "projection rows");

    let q = random::<B, 4>([4, 2, 2, 32], DType::F32, device);
    let kv = || random::<B, 4>([4, 2, 3000, 32], DType::F32, device);
    let (k, v) = (kv(), kv());
    let item = |t: &Tensor<B, 4>| t.clone().narrow(0, 1, 1);
    let batch = B::attend_one(q.clone(), k.clone(), v.clone(), None);
    let alone = B::attend_one(item(&q), item(&k), item(&v), None);
    let flat = |t: Tensor<B, 4>| bits(t.flatten::<2>(0, 2));
    assert_eq!(flat(item(&batch)), flat(alone), "attention of one item");
}

#[test]
fn kernels_are_batch_invariant() {
    check_batch_invariance::<Unfused>(&WgpuDevice::default());
    check_batch_invariance::<Fused>(&WgpuDevice::default());
}

#[test]
fn attention_kernel_matches_generic_path() {
    check_attention::<Unfused>(&WgpuDevice::default());
    check_attention::<Fused>(&WgpuDevice::default());
}

#[test]
fn norm_kernel_matches_generic_path() {
    check_norm::<Unfused>(&WgpuDevice::default());
    check_norm::<Fused>(&WgpuDevice::default());
}

#[test]
fn rope_kernel_matches_generic_path() {
    check_rope::<Unfused>(&WgpuDevice::default());
    check_rope::<Fused>(&WgpuDevice::default());
}

#[test]
fn rope_cache_kernel_matches_generic_path() {
    check_rope_cache::<Unfused>(&WgpuDevice::default());
    check_rope_cache::<Fused>(&WgpuDevice::default());
}

/// The kernel's codes against the tensor ops' for `items` items of `cfg`'s model: random
/// logits (channel 0's EOS lifted for the second item, so the EOS rules run) and draws.
fn choose_case<B: DiaBackend>(cfg: &DiaConfig, params: SamplerParams, device: &B::Device) {
    let (channels, vocab, items) = (cfg.decoder.num_channels, cfg.decoder.vocab_size, 3);
    let eos = cfg.eos_token_id as usize;
    let logits = Tensor::<B, 4>::random(
        [2 * items, 1, channels, vocab],
        Distribution::Normal(0.0, 3.0),
        device,
    );
    let lift: Vec<f32> = (0..2 * items * channels * vocab)
        .map(|i| {
            if i / (channels * vocab) / 2 == 1 && i % (channels * vocab) == eos {
                12.0
            } else {
                0.0
            }
        })
        .collect();
    let logits = logits
        + Tensor::from_data(
            TensorData::new(lift, [2 * items, 1, channels, vocab]),
            device,
        );
    let draws = Tensor::<B, 4>::random([items, 1, channels, 1], Distribution::Default, device);
    let chooser = TokenChooser::<B>::new(cfg, params, device);
    let int = Tensor::<B, 1, Int>::zeros([1], device).dtype();
    let rule = format!("{:?} {params:?}", cfg.version);
    let kernel = B::choose_tokens(
        logits.clone(),
        Some(draws.clone()),
        &dia_model::backend::TokenRule {
            params,
            version: cfg.version,
            eos,
        },
    );
    assert!(kernel.is_some(), "{rule}: the backend has a token kernel");
    let codes = |t: Tensor<B, 4, Int>| {
        t.cast(int)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap()
    };
    let got = codes(chooser.choose(logits.clone(), Some(draws.clone()), int));
    let want = codes(chooser.choose_with_ops(logits, Some(draws)));
    assert!(
        got.iter().all(|&c| (0..vocab as i64).contains(&c)),
        "{rule}: codes out of range {got:?}"
    );
    assert_eq!(got, want, "{rule}");
}

fn check_choose<B: DiaBackend>(device: &B::Device) {
    let greedy = SamplerParams {
        cfg_scale: 3.0,
        temperature: 0.0,
        top_p: 0.95,
        top_k: 45,
    };
    let sampled = SamplerParams {
        temperature: 1.2,
        ..greedy
    };
    let no_top_p = SamplerParams {
        top_p: 1.0,
        top_k: 50,
        ..sampled
    };
    for version in [ModelVersion::V0626, ModelVersion::Original] {
        let cfg = DiaConfig {
            version,
            ..DiaConfig::dia_1_6b()
        };
        for params in [greedy, sampled, no_top_p] {
            choose_case::<B>(&cfg, params, device);
        }
    }
}

#[test]
fn token_kernel_matches_tensor_ops() {
    check_choose::<Unfused>(&WgpuDevice::default());
    check_choose::<Fused>(&WgpuDevice::default());
}
