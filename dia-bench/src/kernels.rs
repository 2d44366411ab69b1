//! `dia-bench kernels`: the decode step's kernel hooks one at a time, at a model size's decode
//! shapes (random tensors), with the backend's own kernels and with Burn's generic ops:
//! microseconds and kernel launches per call. Runs alternate the two paths, so both see the
//! same machine.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use dia_model::backend::Dense;
use dia_model::backend::{custom_kernels, set_custom_kernels};
use dia_model::{BackendKind, DiaBackend, DiaConfig, OnBackend, WeightStorage};
use serde::Serialize;

use crate::codec::median;
use crate::counters;
use crate::machine::Machine;
use crate::measure::sync;
use crate::setting::Size;

/// What to time.
#[derive(Debug, Clone, Copy)]
pub struct KernelPlan {
    pub backend: BackendKind,
    pub size: Size,
    pub dtype: DType,
    /// Decoder rows per call (two per item with classifier-free guidance).
    pub rows: usize,
    /// Keys in the self-attention cache.
    pub cache: usize,
    /// Text positions the cross-attention reads.
    pub text: usize,
    /// Calls per timed run.
    pub calls: usize,
    /// Runs per path.
    pub runs: usize,
}

/// One hook's cost per call on each path (medians of the runs).
#[derive(Debug, Clone, Serialize)]
pub struct HookCost {
    pub hook: &'static str,
    /// The call's shapes, as the hook's documentation names them.
    pub shape: String,
    pub ours_us: f64,
    pub generic_us: f64,
    /// Kernel launches per call, where the backend's launches are counted (CubeCL).
    pub ours_launches: Option<f64>,
    pub generic_launches: Option<f64>,
}

/// The profile.
#[derive(Debug, Clone, Serialize)]
pub struct KernelProfile {
    pub machine: Machine,
    pub backend: BackendKind,
    pub size: Size,
    pub dtype: String,
    pub rows: usize,
    pub cache: usize,
    pub text: usize,
    pub hooks: Vec<HookCost>,
}

/// Profiles every hook of `plan` on its backend; custom kernels are on again afterwards.
pub fn profile(plan: &KernelPlan, machine: Machine) -> Result<KernelProfile> {
    counters::install();
    let hooks = plan.backend.run(Job { plan })??;
    set_custom_kernels(true);
    Ok(KernelProfile {
        machine,
        backend: plan.backend,
        size: plan.size,
        dtype: dia_model::runtime::dtype_name(plan.dtype),
        rows: plan.rows,
        cache: plan.cache,
        text: plan.text,
        hooks,
    })
}

struct Job<'a> {
    plan: &'a KernelPlan,
}

impl OnBackend for Job<'_> {
    type Output = Result<Vec<HookCost>>;

    fn run<B: DiaBackend>(self, device: B::Device) -> Self::Output {
        let plan = self.plan;
        let calls = hook_calls::<B>(plan, &plan.size.dia_config(), &device);
        let mut costs = Vec::with_capacity(calls.len());
        for call in &calls {
            let mut us = [Vec::new(), Vec::new()];
            let mut launches = [None, None];
            for _ in 0..plan.runs {
                for (path, custom) in [true, false].into_iter().enumerate() {
                    set_custom_kernels(custom);
                    let (time, count) = call.time(plan.calls, &device)?;
                    us[path].push(time);
                    launches[path] = count;
                }
            }
            costs.push(HookCost {
                hook: call.hook,
                shape: call.shape.clone(),
                ours_us: median(&us[0]),
                generic_us: median(&us[1]),
                ours_launches: launches[0],
                generic_launches: launches[1],
            });
        }
        Ok(costs)
    }
}

/// A hook call on fixed random inputs.
struct HookCall<'a, B: DiaBackend> {
    hook: &'static str,
    shape: String,
    run: Box<dyn Fn() -> Tensor<B, 3> + 'a>,
}

impl<B: DiaBackend> HookCall<'_, B> {
    /// Microseconds per call over `calls` calls queued back to back, and launches per call.
    fn time(&self, calls: usize, device: &B::Device) -> Result<(f64, Option<f64>)> {
        // Warm-up: compiles the kernels, fills the allocator's pools.
        drop((self.run)());
        sync::<B>(device)?;
        let before = counters::now();
        let start = Instant::now();
        for _ in 0..calls {
            drop((self.run)());
        }
        sync::<B>(device)?;
        let us = start.elapsed().as_secs_f64() * 1e6 / calls as f64;
        let launches = counters::now().since(before).launches;
        Ok((us, (launches > 0).then(|| launches as f64 / calls as f64)))
    }
}

/// The decoder's hooks at `plan`'s shapes for `config`'s decoder, each on its own inputs.
fn hook_calls<'a, B: DiaBackend>(
    plan: &KernelPlan,
    config: &DiaConfig,
    device: &'a B::Device,
) -> Vec<HookCall<'a, B>> {
    let d = &config.decoder;
    let inputs = Inputs::<B> {
        device,
        dtype: plan.dtype,
        rows: plan.rows,
    };
    let own = [d.num_key_value_heads, d.num_attention_heads, d.head_dim];
    let cross = [
        d.cross_num_key_value_heads,
        d.cross_num_attention_heads,
        d.cross_head_dim,
    ];
    vec![
        inputs.attention("attend_one (self-attention)", own, plan.cache, false),
        inputs.attention(
            "attend_one (cross-attention, masked)",
            cross,
            plan.text,
            true,
        ),
        inputs.norm(d.hidden_size, d.norm_eps),
        inputs.rope(d.num_attention_heads, d.head_dim),
        inputs.project(
            "o",
            [d.num_attention_heads * d.head_dim, d.hidden_size],
            None,
        ),
        inputs.project("gate/up", [d.hidden_size, 2 * d.intermediate_size], None),
        inputs.project("down", [d.intermediate_size, d.hidden_size], None),
        inputs.project(
            "gate/up",
            [d.hidden_size, 2 * d.intermediate_size],
            Some(WeightStorage::Int8),
        ),
        inputs.project(
            "gate/up",
            [d.hidden_size, 2 * d.intermediate_size],
            Some(WeightStorage::W8A8),
        ),
    ]
}

/// Random inputs of a decode step's shapes: `rows` rows in `dtype` on `device`.
struct Inputs<'a, B: DiaBackend> {
    device: &'a B::Device,
    dtype: DType,
    rows: usize,
}

impl<'a, B: DiaBackend> Inputs<'a, B> {
    fn random(&self, shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), self.device).cast(self.dtype)
    }

    /// [`DiaBackend::attend_one`] for `[kv_heads, heads, head_dim]` over `keys` keys; `masked`
    /// hides the last eighth of them (the text's padding, for the cross-attention).
    fn attention(
        &self,
        hook: &'static str,
        heads: [usize; 3],
        keys: usize,
        masked: bool,
    ) -> HookCall<'a, B> {
        let ([kv, heads, dim], rows) = (heads, self.rows);
        let q = self.random([rows, kv, heads / kv, dim]);
        let (k, v) = (
            self.random([rows, kv, keys, dim]),
            self.random([rows, kv, keys, dim]),
        );
        let hidden = masked.then(|| {
            let hide = |i: usize| i32::from(i % keys >= keys * 7 / 8);
            let bits: Vec<i32> = (0..rows * keys).map(hide).collect();
            Tensor::<B, 4, Int>::from_data(TensorData::new(bits, [rows, 1, 1, keys]), self.device)
                .equal_elem(1)
        });
        HookCall {
            hook,
            shape: format!(
                "q [{rows}, {kv}, {}, {dim}], k/v [{rows}, {kv}, {keys}, {dim}]",
                heads / kv
            ),
            run: Box::new(move || {
                B::attend_one(q.clone(), k.clone(), v.clone(), hidden.clone()).flatten(2, 3)
            }),
        }
    }

    /// [`DiaBackend::add_rms_norm`] after a residual add, `[rows, 1, width]`.
    fn norm(&self, width: usize, eps: f64) -> HookCall<'a, B> {
        let x = self.random([self.rows, 1, 1, width]).flatten::<3>(2, 3);
        let delta = self.random([self.rows, 1, 1, width]).flatten::<3>(2, 3);
        let weight = Tensor::<B, 1>::ones([width], (self.device, DType::F32));
        HookCall {
            hook: "add_rms_norm (residual + norm)",
            shape: format!("[{}, 1, {width}]", self.rows),
            run: Box::new(move || {
                B::add_rms_norm(x.clone(), Some(delta.clone()), weight.clone(), eps).1
            }),
        }
    }

    /// [`DiaBackend::project`] of `rows` rows by a random `[in, out]` weight stored as
    /// `storage` (default: the dtype's float).
    fn project(
        &self,
        name: &str,
        [d_in, d_out]: [usize; 2],
        storage: Option<WeightStorage>,
    ) -> HookCall<'a, B> {
        let storage = storage.unwrap_or(WeightStorage::of_dtype(self.dtype));
        let x = self.random([1, 1, self.rows, d_in]).flatten::<2>(0, 2);
        let weight =
            Tensor::<B, 2>::random([d_in, d_out], Distribution::Normal(0.0, 0.02), self.device);
        // Each path with the weight its load would make: tiled where the kernels read tiles.
        let (arranged, plain) = (
            Dense::new(weight.clone(), storage),
            Dense::plain(weight, storage),
        );
        HookCall {
            hook: "project",
            shape: format!(
                "{name}: [{}, {d_in}] · [{d_in}, {d_out}] {storage:?}",
                self.rows
            ),
            run: Box::new(move || {
                let weight = if custom_kernels() { &arranged } else { &plain };
                B::project(x.clone(), weight).unsqueeze()
            }),
        }
    }

    /// [`DiaBackend::rope`] of one position's query heads.
    fn rope(&self, heads: usize, dim: usize) -> HookCall<'a, B> {
        let angles = || {
            let shape = [1, 1, 1, dim / 2];
            Tensor::<B, 4>::random(shape, Distribution::Uniform(-1.0, 1.0), self.device)
        };
        let (sin, cos) = (angles(), angles());
        let q = self.random([self.rows, heads, 1, dim]);
        HookCall {
            hook: "rope",
            shape: format!("[{}, {heads}, 1, {dim}]", self.rows),
            run: Box::new(move || B::rope(q.clone(), sin.clone(), cos.clone()).flatten(2, 3)),
        }
    }
}

/// The profile as Markdown: one row per hook.
pub fn markdown(p: &KernelProfile) -> String {
    let m = &p.machine;
    let mut s = format!(
        "Decode-step hooks of the {:?} model, {} rows, {} cache keys, {} text positions, {}, \
         backend {}; {} ({}, {} threads, {:.1} GB/s read bandwidth measured), {}.\n\n",
        p.size,
        p.rows,
        p.cache,
        p.text,
        p.dtype,
        p.backend,
        m.cpu,
        m.os,
        m.threads,
        m.read_bandwidth_gb_s,
        m.date
    );
    s.push_str("Microseconds per call (median of the runs, calls queued back to back) and kernel launches per call.\n\n");
    s.push_str("| hook | shapes | ours µs | generic µs | speed-up | ours launches | generic launches |\n|---|---|---:|---:|---:|---:|---:|\n");
    let count = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    for h in &p.hooks {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.2}× | {} | {} |\n",
            h.hook,
            h.shape,
            h.ours_us,
            h.generic_us,
            h.generic_us / h.ours_us,
            count(h.ours_launches),
            count(h.generic_launches)
        ));
    }
    s
}
