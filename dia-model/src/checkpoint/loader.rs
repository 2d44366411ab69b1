//! Building a [`DiaModel`] parameter by parameter, from a checkpoint in either format or from
//! random values.

use std::collections::HashSet;
use std::path::Path;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::converted::{Recorder, read_dense};
use super::names::{Attn, CheckpointFormat, ModelParam, NormAt, Proj, Stack, Transform};
use super::shards::Shards;
use crate::backend::Dense;
use crate::backend::DiaBackend;
use crate::config::ModelOptions;
use crate::config::{DiaConfig, ModelVersion};
use crate::error::{DiaError, Result};
use crate::layers::Mlp;
use crate::layers::RmsNorm;
use crate::layers::RotaryEmbedding;
use crate::layers::{CrossAttention, HeadShape, QkvProjection, SelfAttention};
use crate::layers::{Decoder, DecoderLayer};
use crate::layers::{Encoder, EncoderLayer};
use crate::model::DiaModel;

/// Where parameter values come from.
pub(crate) enum Source<'a> {
    /// A checkpoint in either format; `used` collects the keys read.
    Checkpoint {
        shards: &'a Shards,
        format: CheckpointFormat,
        used: HashSet<String>,
    },
    /// A converted checkpoint ([`super::converted`]): tensors as the model keeps them.
    Converted {
        shards: &'a Shards,
        used: HashSet<String>,
    },
    /// Uniform values with standard deviation 0.02 (norms 1.0) drawn from a seeded RNG.
    Random(Box<ChaCha8Rng>),
}

impl<'a> Source<'a> {
    /// Random values drawn from `seed`.
    pub fn random(seed: u64) -> Self {
        Self::Random(Box::new(ChaCha8Rng::seed_from_u64(seed)))
    }

    /// A checkpoint in either format, detected from its tensor names (`path` names it in
    /// errors).
    pub fn checkpoint(shards: &'a Shards, path: &Path) -> Result<Self> {
        let format =
            CheckpointFormat::detect(shards.keys()).ok_or_else(|| DiaError::UnknownLayout {
                path: path.to_path_buf(),
                message: "no Dia embedding tensor found (neither nari nor transformers names)"
                    .into(),
            })?;
        tracing::info!(?format, "checkpoint format");
        Ok(Self::Checkpoint {
            shards,
            format,
            used: HashSet::new(),
        })
    }
}

/// Reads parameters one at a time, converting each to the model's layout and dtype.
pub(crate) struct Loader<'a, B: Backend> {
    pub source: Source<'a>,
    pub config: &'a DiaConfig,
    pub options: ModelOptions,
    pub device: &'a B::Device,
    /// Every tensor built, kept for a converted checkpoint ([`super::converted::convert`]).
    pub record: Option<Recorder>,
}

impl<B: DiaBackend> Loader<'_, B> {
    /// The whole model.
    pub fn build(&mut self) -> Result<DiaModel<B>> {
        Ok(DiaModel {
            encoder: self.encoder()?,
            decoder: self.decoder()?,
            config: self.config.clone(),
        })
    }

    /// Fails on any checkpoint tensor the config did not account for.
    pub fn check_all_used(&self) -> Result<()> {
        let (shards, used) = match &self.source {
            Source::Checkpoint { shards, used, .. } | Source::Converted { shards, used } => {
                (shards, used)
            }
            Source::Random(_) => return Ok(()),
        };
        match shards.keys().find(|k| !used.contains(*k)) {
            Some(key) => Err(DiaError::UnexpectedTensor {
                path: shards.path_of(key).to_path_buf(),
                key: key.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn encoder(&mut self) -> Result<Encoder<B>> {
        let e = self.config.encoder.clone();
        let shape = HeadShape {
            heads: e.num_attention_heads,
            kv_heads: e.num_key_value_heads,
            head_dim: e.head_dim,
        };
        let embedding = Param::from_tensor(self.tensor::<2>(ModelParam::TextEmbedding)?);
        let norm = |at| ModelParam::Norm(Stack::Encoder, at);
        let mut layers = Vec::with_capacity(e.num_hidden_layers);
        for i in 0..e.num_hidden_layers {
            layers.push(EncoderLayer {
                pre_sa_norm: self.norm(norm(NormAt::PreSa(i)), e.norm_eps)?,
                self_attention: self.self_attention(Stack::Encoder, i, shape)?,
                post_sa_norm: self.norm(norm(NormAt::PostSa(i)), e.norm_eps)?,
                mlp: self.mlp(Stack::Encoder, i)?,
            });
        }
        Ok(Encoder {
            embedding,
            layers,
            norm: self.norm(norm(NormAt::Final), e.norm_eps)?,
            rope: self.rope(e.head_dim, e.rope_theta, e.max_position_embeddings),
        })
    }

    fn decoder(&mut self) -> Result<Decoder<B>> {
        let (e, d) = (self.config.encoder.clone(), self.config.decoder.clone());
        let tables = (0..d.num_channels)
            .map(|c| self.tensor::<2>(ModelParam::AudioEmbedding(c)))
            .collect::<Result<Vec<_>>>()?;
        let embeddings = Param::from_tensor(Tensor::cat(tables, 0));
        let layers = (0..d.num_hidden_layers)
            .map(|j| self.decoder_layer(j))
            .collect::<Result<Vec<_>>>()?;
        // The original version rotates cross-attention keys at encoder positions, so its
        // table must cover the text length as well as the decoder positions.
        let cross_positions = d.max_position_embeddings.max(e.max_position_embeddings);
        let cross_rope = (self.config.version == ModelVersion::Original)
            .then(|| self.rope(d.cross_head_dim, d.rope_theta, cross_positions));
        Ok(Decoder {
            embeddings,
            vocab: d.vocab_size,
            layers,
            norm: self.norm(ModelParam::Norm(Stack::Decoder, NormAt::Final), d.norm_eps)?,
            logits_dense: self.dense(ModelParam::LogitsDense)?,
            rope: self.rope(d.head_dim, d.rope_theta, d.max_position_embeddings),
            cross_rope,
        })
    }

    fn decoder_layer(&mut self, j: usize) -> Result<DecoderLayer<B>> {
        let d = self.config.decoder.clone();
        let self_shape = HeadShape {
            heads: d.num_attention_heads,
            kv_heads: d.num_key_value_heads,
            head_dim: d.head_dim,
        };
        let cross = |p| ModelParam::Attention(Stack::Decoder, j, Attn::CrossAttention, p);
        let norm = |at| ModelParam::Norm(Stack::Decoder, at);
        Ok(DecoderLayer {
            pre_sa_norm: self.norm(norm(NormAt::PreSa(j)), d.norm_eps)?,
            self_attention: self.self_attention(Stack::Decoder, j, self_shape)?,
            pre_ca_norm: self.norm(norm(NormAt::PreCa(j)), d.norm_eps)?,
            cross_attention: CrossAttention {
                q_proj: self.dense(cross(Proj::Q))?,
                k_proj: self.dense(cross(Proj::K))?,
                v_proj: self.dense(cross(Proj::V))?,
                o_proj: self.dense(cross(Proj::O))?,
                shape: HeadShape {
                    heads: d.cross_num_attention_heads,
                    kv_heads: d.cross_num_key_value_heads,
                    head_dim: d.cross_head_dim,
                },
            },
            pre_mlp_norm: self.norm(norm(NormAt::PreMlp(j)), d.norm_eps)?,
            mlp: self.mlp(Stack::Decoder, j)?,
        })
    }

    fn self_attention(
        &mut self,
        stack: Stack,
        layer: usize,
        shape: HeadShape,
    ) -> Result<SelfAttention<B>> {
        let id = |p| ModelParam::Attention(stack, layer, Attn::SelfAttention, p);
        // In `[in, out]`: the projection joins them before laying them out.
        let (q, k, v) = (
            self.plain_dense(id(Proj::Q))?,
            self.plain_dense(id(Proj::K))?,
            self.plain_dense(id(Proj::V))?,
        );
        Ok(SelfAttention {
            qkv: QkvProjection::new(q, k, v, self.options.fused_qkv),
            o_proj: self.dense(id(Proj::O))?,
            shape,
        })
    }

    fn mlp(&mut self, stack: Stack, layer: usize) -> Result<Mlp<B>> {
        Ok(Mlp {
            wi_fused: self.dense(ModelParam::MlpIn(stack, layer))?,
            wo: self.dense(ModelParam::MlpOut(stack, layer))?,
        })
    }

    fn norm(&mut self, id: ModelParam, eps: f64) -> Result<RmsNorm<B>> {
        Ok(RmsNorm::new(self.tensor::<1>(id)?, eps))
    }

    fn rope(&self, head_dim: usize, theta: f64, positions: usize) -> RotaryEmbedding<B> {
        RotaryEmbedding::new(
            head_dim,
            theta,
            positions,
            self.options.rope_table,
            self.device,
        )
    }

    /// A projection, stored as the options say and laid out for the backend's kernels.
    fn dense(&mut self, id: ModelParam) -> Result<Dense<B>> {
        self.projection(id, true)
    }

    /// A projection, stored as the options say, in `[in, out]`.
    fn plain_dense(&mut self, id: ModelParam) -> Result<Dense<B>> {
        self.projection(id, false)
    }

    /// A projection stored as the options say (float weights made in their storage dtype
    /// directly, int8 ones quantized from f32, a converted checkpoint's as they are), laid out
    /// for the backend's kernels when `arrange`, else in `[in, out]`.
    fn projection(&mut self, id: ModelParam, arrange: bool) -> Result<Dense<B>> {
        let storage = self.options.weight_storage();
        let weight = match &mut self.source {
            Source::Converted { shards, used } => {
                let spec = id.spec(self.config);
                let shape = [spec.shape[0], spec.shape[1]];
                read_dense(shards, &spec.nari.key, shape, storage, self.device, used)?
            }
            _ => {
                let (values, shape) = self.values(id)?;
                let dtype = storage.float_dtype().unwrap_or(DType::F32);
                let weight =
                    Tensor::from_data(TensorData::new(values, shape), (self.device, dtype));
                Dense::plain(weight, storage)
            }
        };
        let weight = match arrange {
            true => B::arrange(weight),
            false => weight.untiled(),
        };
        if let Some(record) = &mut self.record {
            record.dense(&id.nari_key(), &weight);
        }
        Ok(weight)
    }

    /// A parameter other than a projection: f32 for norms, the compute dtype otherwise.
    fn tensor<const D: usize>(&mut self, id: ModelParam) -> Result<Tensor<B, D>> {
        let dtype = if id.is_norm() {
            DType::F32
        } else {
            self.options.dtype
        };
        let data = match &mut self.source {
            Source::Converted { shards, used } => {
                let spec = id.spec(self.config);
                let data = shards.get_shaped(&spec.nari.key, &spec.shape)?.data()?;
                used.insert(spec.nari.key);
                data
            }
            _ => {
                let (values, shape) = self.values(id)?;
                TensorData::new(values, shape)
            }
        };
        let tensor = Tensor::from_data(data, (self.device, dtype));
        if let Some(record) = &mut self.record {
            record.tensor(id.nari_key(), &tensor);
        }
        Ok(tensor)
    }

    /// One parameter's f32 values in the model's layout, and its shape.
    fn values(&mut self, id: ModelParam) -> Result<(Vec<f32>, Vec<usize>)> {
        let spec = id.spec(self.config);
        let values = match &mut self.source {
            Source::Checkpoint {
                shards,
                format,
                used,
            } => {
                let stored = match format {
                    CheckpointFormat::Nari => spec.nari,
                    CheckpointFormat::Transformers => spec.transformers,
                };
                let values = read_stored(shards, &stored)?;
                used.insert(stored.key);
                values
            }
            Source::Converted { .. } => unreachable!("a converted checkpoint is read as stored"),
            Source::Random(rng) => {
                let len = spec.shape.iter().product();
                if id.is_norm() {
                    vec![1.0; len]
                } else {
                    // Uniform on ±0.02·√3 has standard deviation 0.02.
                    let a = 0.02 * 3f32.sqrt();
                    (0..len).map(|_| rng.random_range(-a..a)).collect()
                }
            }
        };
        Ok((values, spec.shape))
    }
}

/// A stored tensor's values, checked against its expected shape and transformed.
fn read_stored(shards: &Shards, stored: &super::names::StoredTensor) -> Result<Vec<f32>> {
    let raw = shards.get_shaped(&stored.key, &stored.shape)?;
    Ok(match stored.transform {
        Transform::Reshape => raw.to_f32()?,
        Transform::Rows { start, len } => raw.rows(start, len).to_f32()?,
        Transform::Transpose => transpose(&raw.to_f32()?, stored.shape[0], stored.shape[1]),
    })
}

/// Row-major `[rows, cols]` → `[cols, rows]`, in blocks of 32 × 32 (each block's reads and
/// writes stay within a few cache lines and pages), the output's rows shared among the CPU's
/// threads: a naive transpose of a 6.4 GB checkpoint took most of its load time.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 32;
    let mut out = vec![0.0; values.len()];
    if out.is_empty() {
        return out;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = cols.div_ceil(threads).div_ceil(BLOCK) * BLOCK;
    std::thread::scope(|scope| {
        for (t, part) in out.chunks_mut(per_thread * rows).enumerate() {
            scope.spawn(move || {
                let (first, count) = (t * per_thread, part.len() / rows);
                for c0 in (0..count).step_by(BLOCK) {
                    for r0 in (0..rows).step_by(BLOCK) {
                        for c in c0..(c0 + BLOCK).min(count) {
                            let to = &mut part[c * rows..][..rows];
                            for r in r0..(r0 + BLOCK).min(rows) {
                                to[r] = values[r * cols + first + c];
                            }
                        }
                    }
                }
            });
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::transpose;

    /// Every element lands at its transposed place, for shapes that are and are not multiples
    /// of the block and of the threads' shares.
    #[test]
    fn transpose_moves_every_element() {
        for (rows, cols) in [(1, 1), (3, 70), (64, 64), (33, 129), (100, 1)] {
            let values: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let out = transpose(&values, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        out[c * rows + r],
                        values[r * cols + c],
                        "[{rows}, {cols}]: ({r}, {c})"
                    );
                }
            }
        }
    }
}
