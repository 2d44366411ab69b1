//! Building a [`DiaModel`] from a checkpoint on disk, whatever its layout.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::attention::{CrossAttention, HeadShape, QkvProjection, SelfAttention};
use crate::backend::DiaBackend;
use crate::checkpoint::Checkpoint;
use crate::config::{DiaConfig, ModelGeneration};
use crate::decoder::{Decoder, DecoderLayer};
use crate::dense::{Dense, Int8Weight};
use crate::encoder::{Encoder, EncoderLayer};
use crate::error::{DiaError, Result};
use crate::layout::{Attn, ParamId, Proj, Transform, WeightLayout};
use crate::mlp::Mlp;
use crate::model::{DiaModel, ModelOptions};
use crate::norm::RmsNorm;
use crate::rope::RotaryEmbedding;

/// The files of a local checkpoint: its `config.json` and its weights (one safetensors file
/// or a sharded `model.safetensors.index.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
}

impl CheckpointFiles {
    /// Finds the config and weights in a checkpoint directory.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(DiaError::UnknownLayout {
                path: dir.to_path_buf(),
                message: "not a directory (expected a checkpoint directory with config.json)"
                    .into(),
            });
        }
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(DiaError::UnknownLayout {
                path: dir.to_path_buf(),
                message: "no config.json in the checkpoint directory".into(),
            });
        }
        let weights = ["model.safetensors.index.json", "model.safetensors"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| DiaError::UnknownLayout {
                path: dir.to_path_buf(),
                message: "no model.safetensors or model.safetensors.index.json".into(),
            })?;
        Ok(Self { config, weights })
    }
}

impl<B: DiaBackend> DiaModel<B> {
    /// Loads a checkpoint directory (nari or transformers layout, single or sharded),
    /// casting weights to `options.dtype` tensor by tensor.
    pub fn load(dir: &Path, options: ModelOptions, device: &B::Device) -> Result<Self> {
        Self::load_files(&CheckpointFiles::in_dir(dir)?, options, device)
    }

    /// Loads from explicit config and weights paths.
    pub fn load_files(
        files: &CheckpointFiles,
        options: ModelOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let config = DiaConfig::from_file(&files.config)?;
        let is_index = files
            .weights
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".index.json"));
        let checkpoint = if is_index {
            Checkpoint::open_index(&files.weights)?
        } else {
            Checkpoint::open_file(&files.weights)?
        };
        let layout =
            WeightLayout::detect(checkpoint.keys()).ok_or_else(|| DiaError::UnknownLayout {
                path: files.weights.clone(),
                message: "no Dia embedding tensor found (neither nari nor transformers names)"
                    .into(),
            })?;
        tracing::info!(?layout, generation = ?config.generation, "loading Dia weights");
        let mut loader = Loader {
            source: Source::Checkpoint {
                checkpoint: &checkpoint,
                layout,
                used: HashSet::new(),
            },
            config: &config,
            options,
            device,
        };
        let model = loader.build()?;
        loader.check_all_used()?;
        Ok(model)
    }

    /// A model of `config`'s shapes with random weights (uniform, standard deviation 0.02;
    /// norms 1.0) drawn from `seed`: for benchmarks and tests, where speed and memory do not
    /// depend on the values.
    pub fn random(
        config: &DiaConfig,
        options: ModelOptions,
        seed: u64,
        device: &B::Device,
    ) -> Self {
        let mut loader = Loader {
            source: Source::Random(Box::new(ChaCha8Rng::seed_from_u64(seed))),
            config,
            options,
            device,
        };
        loader
            .build()
            .expect("random weights always have the config's shapes")
    }
}

/// Where parameter values come from.
enum Source<'a> {
    /// A checkpoint in either layout; `used` collects the keys read.
    Checkpoint {
        checkpoint: &'a Checkpoint,
        layout: WeightLayout,
        used: HashSet<String>,
    },
    /// Random values (see [`DiaModel::random`]).
    Random(Box<ChaCha8Rng>),
}

/// Reads parameters one at a time, converting each to the model's layout and dtype.
struct Loader<'a, B: Backend> {
    source: Source<'a>,
    config: &'a DiaConfig,
    options: ModelOptions,
    device: &'a B::Device,
}

impl<B: DiaBackend> Loader<'_, B> {
    /// One parameter as stored in the model: `[in, out]`, `[vocab, dim]` or `[dim]` (f32 for norms).
    fn tensor<const D: usize>(&mut self, id: ParamId) -> Result<Tensor<B, D>> {
        let dtype = if id.is_norm() {
            DType::F32
        } else {
            self.options.dtype
        };
        let (values, shape) = self.values(id)?;
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            (self.device, dtype),
        ))
    }

    /// One parameter's f32 values in the model's layout, and its shape.
    fn values(&mut self, id: ParamId) -> Result<(Vec<f32>, Vec<usize>)> {
        let shape = id.model_shape(self.config);
        let values = match &mut self.source {
            Source::Checkpoint {
                checkpoint,
                layout,
                used,
            } => {
                let src = layout.source(id, self.config);
                let raw = checkpoint.get(&src.key)?;
                if raw.shape != src.stored_shape {
                    return Err(DiaError::ShapeMismatch {
                        path: raw.path.to_path_buf(),
                        key: src.key.clone(),
                        expected: src.stored_shape,
                        found: raw.shape,
                    });
                }
                let values = match src.transform {
                    Transform::Reshape => raw.to_f32()?,
                    Transform::Rows { start, len } => raw.rows(start, len).to_f32()?,
                    Transform::Transpose => {
                        transpose(&raw.to_f32()?, src.stored_shape[0], src.stored_shape[1])
                    }
                };
                used.insert(src.key);
                values
            }
            Source::Random(rng) => {
                let len = shape.iter().product();
                if id.is_norm() {
                    vec![1.0; len]
                } else {
                    // Uniform on ±0.02·√3 has standard deviation 0.02.
                    let a = 0.02 * 3f32.sqrt();
                    (0..len).map(|_| rng.random_range(-a..a)).collect()
                }
            }
        };
        Ok((values, shape))
    }

    /// A projection: its weight in the compute dtype, or quantized to int8 from the f32 values.
    fn linear(&mut self, id: ParamId) -> Result<Dense<B>> {
        if !self.options.int8_weights {
            return Ok(Dense::new(self.tensor(id)?));
        }
        let (values, shape) = self.values(id)?;
        let shape = [shape[0], shape[1]];
        Ok(Dense::Int8(Int8Weight::from_f32(
            &values,
            shape,
            self.device,
        )))
    }

    fn norm(&mut self, id: ParamId, eps: f64) -> Result<RmsNorm<B>> {
        Ok(RmsNorm::new(self.tensor::<1>(id)?, eps))
    }

    fn self_attention(
        &mut self,
        shape: HeadShape,
        id: impl Fn(Proj) -> ParamId,
    ) -> Result<SelfAttention<B>> {
        let (q, k, v) = (
            self.linear(id(Proj::Q))?,
            self.linear(id(Proj::K))?,
            self.linear(id(Proj::V))?,
        );
        Ok(SelfAttention {
            qkv: QkvProjection::new(q, k, v, self.options.fused_qkv),
            o_proj: self.linear(id(Proj::O))?,
            shape,
        })
    }

    fn build(&mut self) -> Result<DiaModel<B>> {
        let (e, d) = (self.config.encoder.clone(), self.config.decoder.clone());
        let enc_shape = HeadShape {
            heads: e.num_attention_heads,
            kv_heads: e.num_key_value_heads,
            head_dim: e.head_dim,
        };
        let embedding = Param::from_tensor(self.tensor::<2>(ParamId::EncEmbedding)?);
        let mut enc_layers = Vec::with_capacity(e.num_hidden_layers);
        for i in 0..e.num_hidden_layers {
            enc_layers.push(EncoderLayer {
                pre_sa_norm: self.norm(ParamId::EncPreSaNorm(i), e.norm_eps)?,
                self_attention: self.self_attention(enc_shape, |p| ParamId::EncAttn(i, p))?,
                post_sa_norm: self.norm(ParamId::EncPostSaNorm(i), e.norm_eps)?,
                mlp: Mlp {
                    wi_fused: self.linear(ParamId::EncMlpIn(i))?,
                    wo: self.linear(ParamId::EncMlpOut(i))?,
                },
            });
        }
        let encoder = Encoder {
            embedding,
            layers: enc_layers,
            norm: self.norm(ParamId::EncNorm, e.norm_eps)?,
            rope: RotaryEmbedding::new(
                e.head_dim,
                e.rope_theta,
                e.max_position_embeddings,
                self.options.rope_table,
                self.device,
            ),
        };

        let embeddings = (0..d.num_channels)
            .map(|c| {
                self.tensor::<2>(ParamId::DecEmbedding(c))
                    .map(Param::from_tensor)
            })
            .collect::<Result<Vec<_>>>()?;
        let self_shape = HeadShape {
            heads: d.num_attention_heads,
            kv_heads: d.num_key_value_heads,
            head_dim: d.head_dim,
        };
        let cross_shape = HeadShape {
            heads: d.cross_num_attention_heads,
            kv_heads: d.cross_num_key_value_heads,
            head_dim: d.cross_head_dim,
        };
        let mut dec_layers = Vec::with_capacity(d.num_hidden_layers);
        for j in 0..d.num_hidden_layers {
            let cross = |p| ParamId::DecAttn(j, Attn::CrossAttention, p);
            dec_layers.push(DecoderLayer {
                pre_sa_norm: self.norm(ParamId::DecPreSaNorm(j), d.norm_eps)?,
                self_attention: self
                    .self_attention(self_shape, |p| ParamId::DecAttn(j, Attn::SelfAttention, p))?,
                pre_ca_norm: self.norm(ParamId::DecPreCaNorm(j), d.norm_eps)?,
                cross_attention: CrossAttention {
                    q_proj: self.linear(cross(Proj::Q))?,
                    k_proj: self.linear(cross(Proj::K))?,
                    v_proj: self.linear(cross(Proj::V))?,
                    o_proj: self.linear(cross(Proj::O))?,
                    shape: cross_shape,
                },
                pre_mlp_norm: self.norm(ParamId::DecPreMlpNorm(j), d.norm_eps)?,
                mlp: Mlp {
                    wi_fused: self.linear(ParamId::DecMlpIn(j))?,
                    wo: self.linear(ParamId::DecMlpOut(j))?,
                },
            });
        }
        // The original generation rotates cross-attention keys at encoder positions, so its
        // table must cover the text length as well as the decoder positions.
        let cross_rope = (self.config.generation == ModelGeneration::Original).then(|| {
            RotaryEmbedding::new(
                d.cross_head_dim,
                d.rope_theta,
                d.max_position_embeddings.max(e.max_position_embeddings),
                self.options.rope_table,
                self.device,
            )
        });
        let decoder = Decoder {
            embeddings,
            layers: dec_layers,
            norm: self.norm(ParamId::DecNorm, d.norm_eps)?,
            logits_dense: self.linear(ParamId::LogitsDense)?,
            rope: RotaryEmbedding::new(
                d.head_dim,
                d.rope_theta,
                d.max_position_embeddings,
                self.options.rope_table,
                self.device,
            ),
            cross_rope,
        };
        Ok(DiaModel {
            encoder,
            decoder,
            config: self.config.clone(),
        })
    }

    /// Fails on any checkpoint tensor the config did not account for.
    fn check_all_used(&self) -> Result<()> {
        let Source::Checkpoint {
            checkpoint, used, ..
        } = &self.source
        else {
            return Ok(());
        };
        match checkpoint.keys().find(|k| !used.contains(*k)) {
            Some(key) => Err(DiaError::UnexpectedTensor {
                path: checkpoint.path_of(key).to_path_buf(),
                key: key.to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for (r, row) in values.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
    out
}
