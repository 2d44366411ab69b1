//! Criterion benches of the pieces of a decode: a projection at decode shape (Burn's gemm vs
//! the Flex kernel), one decoder step, the encoder, the sampler, and DAC decode of one second.
//! Run with `cargo bench -p dia-bench`; sizes are the report's `small` unless named.

use std::hint::black_box;

use burn::tensor::{Distribution, Int, Tensor, TensorData};
use burn_flex::Flex;
use criterion::{Criterion, criterion_group, criterion_main};
use dia_bench::measure::TEXT;
use dia_bench::setting::Size;
use dia_dac::{Dac, audio_to_vec};
use dia_model::backend::Dense;
use dia_model::config::ModelVersion;
use dia_model::generation::{Sampler, SamplerParams, SpecialIds};
use dia_model::model::TextBatch;
use dia_model::tokenizer::encode_text;
use dia_model::{DiaModel, ModelOptions, WeightStorage};

/// Decode-shape projections of a full-size step (two CFG rows): the MLP input
/// `[2, 2048] · [2048, 8192]` and output `[2, 8192] · [8192, 2048]`.
fn projection(c: &mut Criterion) {
    for (k, n) in [(2048, 8192), (8192, 2048)] {
        projection_shape(c, k, n);
    }
}

fn projection_shape(c: &mut Criterion, k: usize, n: usize) {
    let device = Default::default();
    let mut group = c.benchmark_group(format!("projection_2x{k}x{n}"));
    let x = Tensor::<Flex, 3>::random([1, 2, k], Distribution::Default, &device);
    for storage in [
        WeightStorage::F32,
        WeightStorage::F16,
        WeightStorage::BF16,
        WeightStorage::Int8,
    ] {
        let w = Tensor::<Flex, 2>::random([k, n], Distribution::Default, &device);
        let dense = Dense::new(w.clone(), storage);
        let dtype = storage.float_dtype().unwrap_or(burn::tensor::DType::F32);
        let xd = x.clone().cast(dtype);
        if let Dense::Float(w) = Dense::plain(w, storage) {
            let (x2, w) = (xd.clone().reshape([2, k]), w.val());
            group.bench_function(format!("burn_matmul_{storage}"), |b| {
                b.iter(|| black_box(x2.clone().matmul(w.clone())))
            });
        }
        group.bench_function(format!("dia_project_{storage}"), |b| {
            b.iter(|| black_box(dense.forward(xd.clone())))
        });
    }
    group.finish();
}

/// The MLP input projection `[rows, 2048] · [2048, 8192]` at the row counts of 1 to 8 items of
/// a continuous batch: how much each item beyond the first adds to a step's projections.
fn projection_rows(c: &mut Criterion) {
    let device = Default::default();
    let (k, n) = (2048, 8192);
    let mut group = c.benchmark_group(format!("projection_rows_{k}x{n}"));
    for storage in [WeightStorage::F32, WeightStorage::BF16] {
        let w = Tensor::<Flex, 2>::random([k, n], Distribution::Default, &device);
        let dense = Dense::new(w, storage);
        for rows in [2, 4, 8, 16] {
            let x = Tensor::<Flex, 3>::random([1, rows, k], Distribution::Default, &device);
            group.bench_function(format!("{storage}_{rows}_rows"), |b| {
                b.iter(|| black_box(dense.forward(x.clone())))
            });
        }
    }
    group.finish();
}

fn model_steps(c: &mut Criterion) {
    let device = Default::default();
    let config = Size::Small.dia_config();
    let model = DiaModel::<Flex>::random(&config, ModelOptions::default(), 0, &device);
    let text = encode_text(TEXT, config.encoder.max_position_embeddings);
    let batch = TextBatch::new(&[text.tokens], &device);
    c.bench_function("small_encoder_and_cross_cache", |b| {
        b.iter(|| {
            let enc = model.encode(&batch);
            black_box(model.decoder_state(enc, &batch, 3072))
        })
    });
    let enc = model.encode(&batch);
    let mut state = model.decoder_state(enc, &batch, 3072);
    let frame =
        Tensor::<Flex, 3, Int>::from_data(TensorData::new(vec![1026i64; 18], [2, 1, 9]), &device);
    c.bench_function("small_decode_step", |b| {
        b.iter(|| black_box(model.decode(frame.clone(), 1, &mut state).into_data()))
    });
}

fn sampler(c: &mut Criterion) {
    let vocab = 1028;
    let logits: Vec<f32> = (0..2 * 9 * vocab)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
        .collect();
    let params = SamplerParams {
        cfg_scale: 3.0,
        temperature: 1.2,
        top_p: 0.95,
        top_k: 45,
    };
    let mut sampler = Sampler::new(params, ModelVersion::V0626, SpecialIds { eos: 1024 }, 0);
    c.bench_function("sampler_one_frame", |b| {
        b.iter(|| {
            for ch in 0..9 {
                let (uncond, cond) = (
                    &logits[ch * vocab..][..vocab],
                    &logits[(9 + ch) * vocab..][..vocab],
                );
                black_box(sampler.pick(sampler.candidate_logits(cond, uncond, ch)));
            }
        })
    });
}

fn dac_one_second(c: &mut Criterion) {
    let device = Default::default();
    let dac = Dac::<Flex>::random(Size::Full.dac_config(), 0, &device).expect("valid config");
    let frames = dac.config().frame_rate().round() as usize;
    let codes: Vec<i64> = (0..9 * frames).map(|i| (i as i64 * 7919) % 1024).collect();
    let codes = Tensor::<Flex, 3, Int>::from_data(TensorData::new(codes, [1, 9, frames]), &device);
    let mut group = c.benchmark_group("dac");
    group.sample_size(10);
    group.bench_function("decode_one_second_44k", |b| {
        b.iter(|| {
            black_box(audio_to_vec(dac.decode(codes.clone()).expect("decode")).expect("audio"))
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    projection,
    projection_rows,
    model_steps,
    sampler,
    dac_one_second
);
criterion_main!(benches);
