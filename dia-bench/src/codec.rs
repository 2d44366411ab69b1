//! `dia-bench codec`: where a DAC decode's time goes, layer type by layer type at the shapes of
//! the 44.1 kHz decoder (random tensors, through the backend's hooks), and the whole decode,
//! each with the backend's own kernels and with Burn's generic ops (`set_custom_kernels`).
//! Runs alternate the two paths, so both see the same machine.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Distribution, Tensor};
use dia_dac::backend::ConvInput;
use dia_dac::{Dac, DacConfig};
use dia_model::backend::set_custom_kernels;
use dia_model::{BackendKind, DiaBackend, OnBackend};
use serde::Serialize;

use crate::machine::Machine;
use crate::measure::{codec_ms_per_audio_s, ms, sync};

/// What to time.
#[derive(Debug, Clone, Copy)]
pub struct CodecPlan {
    pub backend: BackendKind,
    /// Seconds of audio decoded per run.
    pub seconds: f64,
    /// Runs per path.
    pub runs: usize,
}

/// One layer type's milliseconds per second of audio, summed over its calls.
#[derive(Debug, Clone, Serialize)]
pub struct LayerCost {
    pub layer: &'static str,
    pub calls: usize,
    pub ours_ms: f64,
    pub generic_ms: f64,
}

/// Milliseconds per second of audio of each run of the whole decode, one path.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DecodeRuns {
    pub whole_ms: Vec<f64>,
    pub streamed_ms: Vec<f64>,
}

/// The profile.
#[derive(Debug, Clone, Serialize)]
pub struct CodecProfile {
    pub machine: Machine,
    pub backend: BackendKind,
    pub seconds: f64,
    pub layers: Vec<LayerCost>,
    pub ours: DecodeRuns,
    pub generic: DecodeRuns,
}

/// Profiles the 44.1 kHz codec with random weights on `plan.backend`.
pub fn profile(plan: &CodecPlan, machine: Machine) -> Result<CodecProfile> {
    let (layers, ours, generic) = plan.backend.run(Job { plan })??;
    set_custom_kernels(true);
    Ok(CodecProfile {
        machine,
        backend: plan.backend,
        seconds: plan.seconds,
        layers,
        ours,
        generic,
    })
}

struct Job<'a> {
    plan: &'a CodecPlan,
}

impl OnBackend for Job<'_> {
    type Output = Result<(Vec<LayerCost>, DecodeRuns, DecodeRuns)>;

    fn run<B: DiaBackend>(self, device: B::Device) -> Self::Output {
        let plan = self.plan;
        let config = DacConfig::default();
        let dac = Dac::<B>::random(config.clone(), 0, &device)?;
        let frames = (plan.seconds * config.frame_rate()).round().max(1.0) as usize;
        let audio_s = (frames * config.hop_length()) as f64 / f64::from(config.sample_rate);
        let calls = decoder_calls(&config, frames);
        // One row per layer type, in decode order.
        let mut layers = Vec::<LayerCost>::new();
        for call in &calls {
            match layers.iter_mut().find(|l| l.layer == call.layer) {
                Some(row) => row.calls += 1,
                None => layers.push(LayerCost {
                    layer: call.layer,
                    calls: 1,
                    ours_ms: 0.0,
                    generic_ms: 0.0,
                }),
            }
        }
        let (mut ours, mut generic) = (DecodeRuns::default(), DecodeRuns::default());
        for _ in 0..plan.runs {
            for custom in [true, false] {
                set_custom_kernels(custom);
                let cost = codec_ms_per_audio_s(&dac, plan.seconds)?;
                let runs = if custom { &mut ours } else { &mut generic };
                runs.whole_ms.push(cost.whole);
                runs.streamed_ms.push(cost.streamed);
                for call in &calls {
                    let ms = call.time::<B>(&device)? / audio_s / plan.runs as f64;
                    let Some(entry) = layers.iter_mut().find(|l| l.layer == call.layer) else {
                        continue;
                    };
                    if custom {
                        entry.ours_ms += ms;
                    } else {
                        entry.generic_ms += ms;
                    }
                }
            }
        }
        Ok((layers, ours, generic))
    }
}

/// One layer call of a decode: its type and geometry.
struct LayerCall {
    layer: &'static str,
    op: Op,
}

/// The geometry of a call (`time` is the input length).
enum Op {
    Conv {
        channels: [usize; 2],
        kernel: usize,
        dilation: usize,
        time: usize,
        snake: bool,
    },
    Upsample {
        channels: [usize; 2],
        stride: usize,
        time: usize,
    },
    Snake {
        channels: usize,
        time: usize,
    },
}

/// Every convolution of the decoder for `frames` frames, in order, and each Snake alone (which
/// the convolutions apply themselves, so their rows count it twice).
fn decoder_calls(config: &DacConfig, frames: usize) -> Vec<LayerCall> {
    let conv = |layer, channels, kernel, dilation, time, snake| LayerCall {
        layer,
        op: Op::Conv {
            channels,
            kernel,
            dilation,
            time,
            snake,
        },
    };
    let snake = |channels, time| LayerCall {
        layer: "Snake alone (inside the rows above)",
        op: Op::Snake { channels, time },
    };
    let mut width = config.decoder_dim;
    let mut time = frames;
    let mut calls = vec![conv(
        "input conv, k7",
        [config.resolved_latent_dim(), width],
        7,
        1,
        time,
        false,
    )];
    for &stride in &config.decoder_rates {
        let out = width / 2;
        calls.push(LayerCall {
            layer: "upsampling: Snake + transposed conv",
            op: Op::Upsample {
                channels: [width, out],
                stride,
                time,
            },
        });
        calls.push(snake(width, time));
        time *= stride;
        for dilation in [1, 3, 9] {
            let unit = "residual: Snake + dilated k7 conv";
            calls.push(conv(unit, [out, out], 7, dilation, time, true));
            calls.push(conv(
                "residual: Snake + 1×1 conv + skip",
                [out, out],
                1,
                1,
                time,
                true,
            ));
            calls.extend([snake(out, time), snake(out, time)]);
        }
        width = out;
    }
    calls.push(snake(width, time));
    calls.push(conv(
        "output: Snake + k7 conv to 1 channel",
        [width, 1],
        7,
        1,
        time,
        true,
    ));
    calls
}

/// A layer call ready to run on its input.
type Layer<'a, B> = Box<dyn Fn(Tensor<B, 3>) -> Tensor<B, 3> + 'a>;

impl LayerCall {
    /// Milliseconds of one call on random tensors of its shapes.
    fn time<B: DiaBackend>(&self, device: &B::Device) -> Result<f64> {
        let (x, run) = self.prepare::<B>(device);
        sync::<B>(device)?;
        let start = Instant::now();
        let y = run(x);
        sync::<B>(device)?;
        let elapsed = ms(start);
        drop(y);
        Ok(elapsed)
    }

    /// A random input of the call's shape, and the call with random weights.
    fn prepare<'a, B: DiaBackend>(&self, device: &'a B::Device) -> (Tensor<B, 3>, Layer<'a, B>) {
        let normal = Distribution::Normal(0.0, 1.0);
        let random = |shape: [usize; 3]| Tensor::<B, 3>::random(shape, normal, device);
        let alpha = move |channels| Some(Tensor::<B, 3>::ones([1, channels, 1], device));
        let bias = move |channels| Tensor::<B, 1>::zeros([channels], device);
        match self.op {
            Op::Conv {
                channels: [c_in, c_out],
                kernel,
                dilation,
                time,
                snake,
            } => {
                let weight = B::conv_weight(random([c_out, c_in, kernel]));
                let alpha = if snake { alpha(c_in) } else { None };
                let padding = dilation * (kernel - 1) / 2;
                let options = ConvOptions::new([1], [0], [dilation], 1);
                // The 1×1 convs close residual units: the skip connection adds in.
                let skip = (kernel == 1).then(|| random([1, c_out, time]));
                let run = move |x| {
                    B::snake_conv1d(
                        ConvInput::new(x, alpha.clone(), padding),
                        weight.clone(),
                        bias(c_out),
                        options.clone(),
                        skip.clone(),
                    )
                };
                (random([1, c_in, time]), Box::new(run))
            }
            Op::Upsample {
                channels: [c_in, c_out],
                stride,
                time,
            } => {
                let weight = B::conv_weight(random([c_in, c_out, 2 * stride]));
                let options =
                    ConvTransposeOptions::new([stride], [stride.div_ceil(2)], [0], [1], 1);
                let run = move |x| {
                    let alpha = alpha(c_in);
                    B::snake_conv_transpose1d(
                        ConvInput::new(x, alpha, 0),
                        weight.clone(),
                        bias(c_out),
                        options.clone(),
                    )
                };
                (random([1, c_in, time]), Box::new(run))
            }
            Op::Snake { channels, time } => {
                let alpha = Tensor::<B, 3>::ones([1, channels, 1], device);
                let run = move |x| B::snake(x, alpha.clone());
                (random([1, channels, time]), Box::new(run))
            }
        }
    }
}

/// The profile as Markdown: one row per layer type, then the whole decode's runs.
pub fn markdown(p: &CodecProfile) -> String {
    let m = &p.machine;
    let mut s = format!(
        "DAC 44.1 kHz decoder, random weights, {:.1} s of audio, backend {}, {} threads; {} ({}, \
         {:.1} GB/s read bandwidth measured), {}.\n\n",
        p.seconds, p.backend, m.threads, m.cpu, m.os, m.read_bandwidth_gb_s, m.date
    );
    s.push_str("Milliseconds per second of audio (mean of the runs).\n\n");
    s.push_str(
        "| layer | calls | ours | Burn's generic ops | speed-up |\n|---|---:|---:|---:|---:|\n",
    );
    let (mut ours, mut generic) = (0.0, 0.0);
    for l in &p.layers {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.2}× |\n",
            l.layer,
            l.calls,
            l.ours_ms,
            l.generic_ms,
            l.generic_ms / l.ours_ms
        ));
        if !l.layer.starts_with("Snake alone") {
            ours += l.ours_ms;
            generic += l.generic_ms;
        }
    }
    s.push_str(&format!(
        "| all convolutions | | {ours:.0} | {generic:.0} | {:.2}× |\n\n",
        generic / ours
    ));
    s.push_str("Whole decode (`Dac::decode_frames`) and streamed (one frame per push), ms per second of audio, each run:\n\n");
    s.push_str("| path | whole | median | streamed | median |\n|---|---|---:|---|---:|\n");
    for (name, runs) in [("ours", &p.ours), ("Burn's generic ops", &p.generic)] {
        s.push_str(&format!(
            "| {name} | {} | {:.0} | {} | {:.0} |\n",
            list(&runs.whole_ms),
            median(&runs.whole_ms),
            list(&runs.streamed_ms),
            median(&runs.streamed_ms)
        ));
    }
    s
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The median (the mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 44.1 kHz decoder: one input conv, four upsampling blocks of three residual units,
    /// one output conv at 96 channels and the full sample rate; every Snake counted once.
    #[test]
    fn decoder_calls_cover_the_44khz_decoder() {
        let calls = decoder_calls(&DacConfig::default(), 3);
        let count = |name: &str| calls.iter().filter(|c| c.layer == name).count();
        assert_eq!(count("input conv, k7"), 1);
        assert_eq!(count("upsampling: Snake + transposed conv"), 4);
        assert_eq!(count("residual: Snake + dilated k7 conv"), 12);
        assert_eq!(count("residual: Snake + 1×1 conv + skip"), 12);
        assert_eq!(count("Snake alone (inside the rows above)"), 4 + 24 + 1);
        let Some(LayerCall {
            op: Op::Conv { channels, time, .. },
            ..
        }) = calls.last().filter(|c| c.layer.starts_with("output"))
        else {
            panic!("the output conv comes last");
        };
        assert_eq!((*channels, *time), ([96, 1], 3 * 512));
    }

    #[test]
    fn median_of_odd_even_and_no_runs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
