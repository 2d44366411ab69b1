//! Every CUDA kernel of ours that a decode step, a prefill and the device sampler can launch,
//! as the C++ source CubeCL hands NVRTC: the launch code runs on [`CudaSource`] over the
//! activation dtypes, weight storages, row counts, masks, key splits and sampling rules that
//! reach a distinct kernel, with the full-size model's shapes.

use std::collections::BTreeMap;

use burn::tensor::{DType, Element, Shape};
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::Runtime;
use cubecl::client::ComputeClient;

use super::runtime::{CudaSource, CudaSourceDevice};
use crate::backend::TokenRule;
use crate::backend::cubecl::{attention, cache, norm, project, rope, sampling};
use crate::config::{DiaConfig, ModelVersion};
use crate::token_rule::SamplerParams;

/// The architectures checked: Ampere (A100), Ada (L4, RTX 40), Hopper (H100, `sm_90a`).
pub const ARCHS: [u32; 3] = [80, 89, 90];

/// One generated kernel.
#[derive(Debug, Clone)]
pub struct CudaKernel {
    /// The kernel's Rust type (CubeCL's name for it).
    pub name: String,
    /// CubeCL's identity of the variant (its comptime arguments, types and cube size): the
    /// CUDA runtime compiles each once.
    pub id: String,
    /// The `extern "C"` function NVRTC's output holds.
    pub entrypoint: String,
    /// The complete translation unit.
    pub source: String,
    /// Shared memory the kernel declares.
    pub shared_bytes: usize,
    /// Why the kernel cannot launch as generated (code generation failed, or it asks for more
    /// shared memory than a block gets without opting in).
    pub error: Option<String>,
}

/// The activation dtypes a model runs in.
const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// Every distinct kernel for `sm_{arch}` (each variant once, sorted by name).
pub fn cuda_kernels(arch: u32) -> Vec<CudaKernel> {
    let device = CudaSourceDevice { arch };
    let target = Target {
        client: CudaSource::client(&device),
        device,
    };
    let config = DiaConfig::dia_1_6b();
    for dtype in DTYPES {
        projections(&target, &config, dtype);
        attentions(&target, &config, dtype);
        elementwise(&target, &config, dtype);
    }
    samplers(&target, &config);
    let client = &target.client;
    cubecl::future::block_on(client.sync()).expect("a server that runs nothing syncs");
    let launched = client.info().lock().expect("sources").clone();
    let mut unique = BTreeMap::new();
    for kernel in launched {
        unique.insert((kernel.name.clone(), kernel.id.clone()), kernel);
    }
    unique.into_values().collect()
}

/// The architecture's client and device.
struct Target {
    client: ComputeClient<CudaSource>,
    device: CudaSourceDevice,
}

impl Target {
    /// A tensor of `shape` in `dtype` (a buffer without memory: no kernel reads it).
    fn tensor<const D: usize>(&self, shape: [usize; D], dtype: DType) -> CubeTensor<CudaSource> {
        let (client, device) = (self.client.clone(), self.device);
        empty_device_dtype(client, device, Shape::new(shape), dtype)
    }
}

/// The few-row projections (1 to [`project::MAX_ROWS`] rows: decode steps, short prefills) of
/// every weight storage, over the model's `(in, out)` shapes and a small input that is not
/// split (the one-pass variant, small models'); int8 weights' unpacking for longer prefills.
fn projections(target: &Target, config: &DiaConfig, dtype: DType) {
    let (e, d) = (&config.encoder, &config.decoder);
    let shapes = [
        (e.hidden_size, e.num_attention_heads * e.head_dim),
        (e.hidden_size, 2 * e.intermediate_size),
        (e.intermediate_size, e.hidden_size),
        (d.hidden_size, d.num_key_value_heads * d.head_dim),
        (
            d.cross_hidden_size,
            d.cross_num_key_value_heads * d.cross_head_dim,
        ),
        (d.hidden_size, 2 * d.intermediate_size),
        (d.intermediate_size, d.hidden_size),
        (d.hidden_size, d.num_channels * d.vocab_size),
        (64, d.hidden_size),
    ];
    let storages = [Some(DType::F32), Some(DType::F16), Some(DType::BF16), None];
    for (d_in, d_out) in shapes {
        for storage in storages {
            for rows in 1..=project::MAX_ROWS {
                let x = target.tensor([rows, d_in], dtype);
                let (weight, scale) = match storage {
                    Some(w) => (target.tensor([d_in, d_out], w), None),
                    None => {
                        let values = target.tensor([d_in, d_out], DType::I8);
                        (values, Some(target.tensor([d_out], DType::F32)))
                    }
                };
                project::project(x, weight, scale);
            }
        }
        project::dequantize(target.tensor([d_in, d_out], DType::I8), dtype);
    }
}

/// Single-query attention over the self-attention cache (short: one key split; long: split and
/// joined) and over the encoder's output (cross-attention), with and without a padding mask.
fn attentions(target: &Target, config: &DiaConfig, dtype: DType) {
    let d = &config.decoder;
    let self_attention = (
        d.num_key_value_heads,
        d.num_attention_heads / d.num_key_value_heads,
        d.head_dim,
    );
    let cross = (
        d.cross_num_key_value_heads,
        d.cross_num_attention_heads / d.cross_num_key_value_heads,
        d.cross_head_dim,
    );
    let lengths = [
        (self_attention, d.max_position_embeddings),
        (self_attention, 1),
        (cross, config.encoder.max_position_embeddings),
        (cross, 7),
    ];
    for ((heads, group, dim), keys) in lengths {
        for masked in [false, true] {
            let cache = || target.tensor([2, heads, keys, dim], dtype);
            let hidden = masked.then(|| target.tensor([2, 1, 1, keys], u8::dtype()));
            let q = target.tensor([2, heads, group, dim], dtype);
            attention::attend_one(q, cache(), cache(), hidden, u8::dtype());
        }
    }
}

/// Add + RMSNorm (with and without the residual), RoPE, and RoPE with the cache write.
fn elementwise(target: &Target, config: &DiaConfig, dtype: DType) {
    let d = &config.decoder;
    let rows = [2, d.hidden_size];
    for residual in [false, true] {
        let delta = residual.then(|| target.tensor(rows, dtype));
        let weight = target.tensor([d.hidden_size], DType::F32);
        norm::rms_norm(target.tensor(rows, dtype), delta, weight, 1e-5);
    }
    let (heads, dim) = (d.num_key_value_heads, d.head_dim);
    let angles = || target.tensor([1, 1, 1, dim / 2], DType::F32);
    let x = target.tensor([2, d.num_attention_heads, 1, dim], dtype);
    rope::rope(x, angles(), angles());
    let cache = || target.tensor([2, heads, d.max_position_embeddings, dim], dtype);
    let step = || target.tensor([2, heads, 1, dim], dtype);
    cache::rope_cache_write((cache(), cache()), 5, step(), step(), (angles(), angles()));
}

/// The token chooser: greedy and sampled, with and without top-p, for both model versions.
fn samplers(target: &Target, config: &DiaConfig) {
    let d = &config.decoder;
    for version in [ModelVersion::Original, ModelVersion::V0626] {
        for (temperature, top_p) in [(0.0, 1.0), (1.2, 1.0), (1.2, 0.95)] {
            let rule = TokenRule {
                params: SamplerParams {
                    cfg_scale: 3.0,
                    temperature,
                    top_p,
                    top_k: 45,
                },
                version,
                eos: config.eos_token_id as usize,
            };
            let logits = target.tensor([4, 1, d.num_channels, d.vocab_size], DType::F32);
            let draws = target.tensor([2, 1, d.num_channels, 1], DType::F32);
            sampling::choose(logits, Some(draws), &rule, i32::dtype());
        }
    }
}
