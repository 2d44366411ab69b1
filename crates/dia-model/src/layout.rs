//! Checkpoint layouts: where each model parameter lives in a nari-format or transformers
//! checkpoint, and how its stored tensor turns into our `[in, out]` weight.

use crate::config::DiaConfig;

/// The checkpoint naming scheme, detected from the tensor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// nari-labs names: 3-D DenseGeneral kernels already in `[in, out]` order, nine embedding
    /// tables, `decoder.logits_dense`.
    Nari,
    /// transformers names: `[out, in]` Linear weights, one 9252-row embedding, top-level
    /// `logits_dense`, `model.` prefix.
    Transformers,
}

/// Projections inside an attention block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proj {
    Q,
    K,
    V,
    O,
}

/// Which attention block of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attn {
    SelfAttention,
    CrossAttention,
}

/// One parameter of the model, independent of the checkpoint layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamId {
    EncEmbedding,
    EncPreSaNorm(usize),
    EncAttn(usize, Proj),
    EncPostSaNorm(usize),
    EncMlpIn(usize),
    EncMlpOut(usize),
    EncNorm,
    DecEmbedding(usize),
    DecPreSaNorm(usize),
    DecAttn(usize, Attn, Proj),
    DecPreCaNorm(usize),
    DecPreMlpNorm(usize),
    DecMlpIn(usize),
    DecMlpOut(usize),
    DecNorm,
    LogitsDense,
}

/// How a stored tensor becomes the parameter: every model weight is `[in, out]` (Linear),
/// `[vocab, dim]` (embedding) or `[dim]` (norm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// Same elements in the same order; only the shape changes (nari DenseGeneral kernels).
    Reshape,
    /// A 2-D `[out, in]` weight transposed to `[in, out]`.
    Transpose,
    /// Rows `start..start + len` of a 2-D table (one channel of the fused embedding).
    Rows { start: usize, len: usize },
}

/// Where a parameter is stored and what it looks like there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub key: String,
    pub stored_shape: Vec<usize>,
    pub transform: Transform,
}

impl ParamId {
    /// Every parameter of a model with this config, in loading order.
    pub fn all(config: &DiaConfig) -> Vec<ParamId> {
        let mut ids = vec![ParamId::EncEmbedding];
        for i in 0..config.encoder.num_hidden_layers {
            ids.push(ParamId::EncPreSaNorm(i));
            ids.extend([Proj::Q, Proj::K, Proj::V, Proj::O].map(|p| ParamId::EncAttn(i, p)));
            ids.extend([
                ParamId::EncPostSaNorm(i),
                ParamId::EncMlpIn(i),
                ParamId::EncMlpOut(i),
            ]);
        }
        ids.push(ParamId::EncNorm);
        ids.extend((0..config.decoder.num_channels).map(ParamId::DecEmbedding));
        for j in 0..config.decoder.num_hidden_layers {
            ids.push(ParamId::DecPreSaNorm(j));
            for attn in [Attn::SelfAttention, Attn::CrossAttention] {
                ids.extend(
                    [Proj::Q, Proj::K, Proj::V, Proj::O].map(|p| ParamId::DecAttn(j, attn, p)),
                );
                if attn == Attn::SelfAttention {
                    ids.push(ParamId::DecPreCaNorm(j));
                }
            }
            ids.extend([
                ParamId::DecPreMlpNorm(j),
                ParamId::DecMlpIn(j),
                ParamId::DecMlpOut(j),
            ]);
        }
        ids.extend([ParamId::DecNorm, ParamId::LogitsDense]);
        ids
    }

    /// Shape of the parameter in the model: `[in, out]`, `[vocab, dim]` or `[dim]`.
    pub fn model_shape(&self, config: &DiaConfig) -> Vec<usize> {
        let (e, d) = (&config.encoder, &config.decoder);
        match *self {
            ParamId::EncEmbedding => vec![e.vocab_size, e.hidden_size],
            ParamId::EncPreSaNorm(_) | ParamId::EncPostSaNorm(_) | ParamId::EncNorm => {
                vec![e.hidden_size]
            }
            ParamId::EncAttn(_, p) => {
                let heads = match p {
                    Proj::K | Proj::V => e.num_key_value_heads,
                    Proj::Q | Proj::O => e.num_attention_heads,
                };
                proj_shape(p, e.hidden_size, heads * e.head_dim)
            }
            ParamId::EncMlpIn(_) => vec![e.hidden_size, 2 * e.intermediate_size],
            ParamId::EncMlpOut(_) => vec![e.intermediate_size, e.hidden_size],
            ParamId::DecEmbedding(_) => vec![d.vocab_size, d.hidden_size],
            ParamId::DecPreSaNorm(_)
            | ParamId::DecPreCaNorm(_)
            | ParamId::DecPreMlpNorm(_)
            | ParamId::DecNorm => vec![d.hidden_size],
            ParamId::DecAttn(_, Attn::SelfAttention, p) => {
                let heads = match p {
                    Proj::K | Proj::V => d.num_key_value_heads,
                    Proj::Q | Proj::O => d.num_attention_heads,
                };
                proj_shape(p, d.hidden_size, heads * d.head_dim)
            }
            ParamId::DecAttn(_, Attn::CrossAttention, p) => match p {
                Proj::Q => vec![
                    d.hidden_size,
                    d.cross_num_attention_heads * d.cross_head_dim,
                ],
                Proj::K | Proj::V => vec![
                    d.cross_hidden_size,
                    d.cross_num_key_value_heads * d.cross_head_dim,
                ],
                Proj::O => vec![
                    d.cross_num_attention_heads * d.cross_head_dim,
                    d.hidden_size,
                ],
            },
            ParamId::DecMlpIn(_) => vec![d.hidden_size, 2 * d.intermediate_size],
            ParamId::DecMlpOut(_) => vec![d.intermediate_size, d.hidden_size],
            ParamId::LogitsDense => vec![d.hidden_size, d.num_channels * d.vocab_size],
        }
    }

    /// Whether the parameter is an RMSNorm scale (kept in f32 whatever the compute dtype).
    pub fn is_norm(&self) -> bool {
        matches!(
            self,
            ParamId::EncPreSaNorm(_)
                | ParamId::EncPostSaNorm(_)
                | ParamId::EncNorm
                | ParamId::DecPreSaNorm(_)
                | ParamId::DecPreCaNorm(_)
                | ParamId::DecPreMlpNorm(_)
                | ParamId::DecNorm
        )
    }
}

/// `[in, out]` of a q/k/v (`width → heads·dim`) or o (`heads·dim → width`) projection.
fn proj_shape(p: Proj, width: usize, projected: usize) -> Vec<usize> {
    match p {
        Proj::O => vec![projected, width],
        _ => vec![width, projected],
    }
}

fn proj_name(p: Proj) -> &'static str {
    match p {
        Proj::Q => "q_proj",
        Proj::K => "k_proj",
        Proj::V => "v_proj",
        Proj::O => "o_proj",
    }
}

fn attn_name(a: Attn) -> &'static str {
    match a {
        Attn::SelfAttention => "self_attention",
        Attn::CrossAttention => "cross_attention",
    }
}

impl WeightLayout {
    /// Detects the layout from the checkpoint's tensor names.
    pub fn detect<'a>(mut keys: impl Iterator<Item = &'a str>) -> Option<Self> {
        keys.find_map(|k| match k {
            "decoder.embeddings.0.weight" | "encoder.embedding.weight" => Some(Self::Nari),
            "model.decoder.embeddings.embed.weight" | "model.encoder.embedding.weight" => {
                Some(Self::Transformers)
            }
            _ => None,
        })
    }

    /// Where `param` is stored in this layout and how to turn it into the model's shape.
    pub fn source(&self, param: ParamId, config: &DiaConfig) -> Source {
        let d = &config.decoder;
        let model_shape = param.model_shape(config);
        match self {
            WeightLayout::Nari => {
                let (key, stored_shape) = nari_name_and_shape(param, config, &model_shape);
                Source {
                    key,
                    stored_shape,
                    transform: Transform::Reshape,
                }
            }
            WeightLayout::Transformers => {
                let (key, stored_shape, transform) = match param {
                    ParamId::DecEmbedding(c) => (
                        "model.decoder.embeddings.embed.weight".to_string(),
                        vec![d.num_channels * d.vocab_size, d.hidden_size],
                        Transform::Rows {
                            start: c * d.vocab_size,
                            len: d.vocab_size,
                        },
                    ),
                    ParamId::LogitsDense => (
                        "logits_dense.weight".to_string(),
                        vec![model_shape[1], model_shape[0]],
                        Transform::Transpose,
                    ),
                    _ if model_shape.len() == 1 || param == ParamId::EncEmbedding => (
                        format!(
                            "model.{}",
                            nari_name_and_shape(param, config, &model_shape).0
                        ),
                        model_shape.clone(),
                        Transform::Reshape,
                    ),
                    _ => (
                        hf_linear_name(param),
                        vec![model_shape[1], model_shape[0]],
                        Transform::Transpose,
                    ),
                };
                Source {
                    key,
                    stored_shape,
                    transform,
                }
            }
        }
    }

    /// Every tensor (name and stored shape) a checkpoint of this layout must hold, in order.
    pub fn expected_tensors(&self, config: &DiaConfig) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        for param in ParamId::all(config) {
            let src = self.source(param, config);
            if !out.iter().any(|(k, _)| *k == src.key) {
                out.push((src.key, src.stored_shape));
            }
        }
        out
    }
}

/// nari key and stored (DenseGeneral) shape of a parameter.
fn nari_name_and_shape(
    param: ParamId,
    config: &DiaConfig,
    model_shape: &[usize],
) -> (String, Vec<usize>) {
    let (e, d) = (&config.encoder, &config.decoder);
    let heads_shape = |p: Proj, width: usize, heads: usize, dim: usize| match p {
        Proj::O => vec![heads, dim, width],
        _ => vec![width, heads, dim],
    };
    match param {
        ParamId::EncEmbedding => ("encoder.embedding.weight".into(), model_shape.to_vec()),
        ParamId::EncPreSaNorm(i) => (
            format!("encoder.layers.{i}.pre_sa_norm.weight"),
            model_shape.to_vec(),
        ),
        ParamId::EncPostSaNorm(i) => (
            format!("encoder.layers.{i}.post_sa_norm.weight"),
            model_shape.to_vec(),
        ),
        ParamId::EncAttn(i, p) => {
            let heads = if matches!(p, Proj::K | Proj::V) {
                e.num_key_value_heads
            } else {
                e.num_attention_heads
            };
            (
                format!("encoder.layers.{i}.self_attention.{}.weight", proj_name(p)),
                heads_shape(p, e.hidden_size, heads, e.head_dim),
            )
        }
        ParamId::EncMlpIn(i) => (
            format!("encoder.layers.{i}.mlp.wi_fused.weight"),
            vec![e.hidden_size, 2, e.intermediate_size],
        ),
        ParamId::EncMlpOut(i) => (
            format!("encoder.layers.{i}.mlp.wo.weight"),
            model_shape.to_vec(),
        ),
        ParamId::EncNorm => ("encoder.norm.weight".into(), model_shape.to_vec()),
        ParamId::DecEmbedding(c) => (
            format!("decoder.embeddings.{c}.weight"),
            model_shape.to_vec(),
        ),
        ParamId::DecPreSaNorm(j) => (
            format!("decoder.layers.{j}.pre_sa_norm.weight"),
            model_shape.to_vec(),
        ),
        ParamId::DecPreCaNorm(j) => (
            format!("decoder.layers.{j}.pre_ca_norm.weight"),
            model_shape.to_vec(),
        ),
        ParamId::DecPreMlpNorm(j) => (
            format!("decoder.layers.{j}.pre_mlp_norm.weight"),
            model_shape.to_vec(),
        ),
        ParamId::DecAttn(j, a, p) => {
            let (width, heads, dim) = match (a, p) {
                (Attn::SelfAttention, Proj::K | Proj::V) => {
                    (d.hidden_size, d.num_key_value_heads, d.head_dim)
                }
                (Attn::SelfAttention, _) => (d.hidden_size, d.num_attention_heads, d.head_dim),
                (Attn::CrossAttention, Proj::K | Proj::V) => (
                    d.cross_hidden_size,
                    d.cross_num_key_value_heads,
                    d.cross_head_dim,
                ),
                (Attn::CrossAttention, _) => {
                    (d.hidden_size, d.cross_num_attention_heads, d.cross_head_dim)
                }
            };
            (
                format!(
                    "decoder.layers.{j}.{}.{}.weight",
                    attn_name(a),
                    proj_name(p)
                ),
                heads_shape(p, width, heads, dim),
            )
        }
        ParamId::DecMlpIn(j) => (
            format!("decoder.layers.{j}.mlp.wi_fused.weight"),
            vec![d.hidden_size, 2, d.intermediate_size],
        ),
        ParamId::DecMlpOut(j) => (
            format!("decoder.layers.{j}.mlp.wo.weight"),
            model_shape.to_vec(),
        ),
        ParamId::DecNorm => ("decoder.norm.weight".into(), model_shape.to_vec()),
        ParamId::LogitsDense => (
            "decoder.logits_dense.weight".into(),
            vec![d.hidden_size, d.num_channels, d.vocab_size],
        ),
    }
}

/// transformers key of a Linear parameter (everything but norms and embeddings).
fn hf_linear_name(param: ParamId) -> String {
    match param {
        ParamId::EncAttn(i, p) => format!(
            "model.encoder.layers.{i}.self_attention.{}.weight",
            proj_name(p)
        ),
        ParamId::EncMlpIn(i) => format!("model.encoder.layers.{i}.mlp.gate_up_proj.weight"),
        ParamId::EncMlpOut(i) => format!("model.encoder.layers.{i}.mlp.down_proj.weight"),
        ParamId::DecAttn(j, a, p) => {
            format!(
                "model.decoder.layers.{j}.{}.{}.weight",
                attn_name(a),
                proj_name(p)
            )
        }
        ParamId::DecMlpIn(j) => format!("model.decoder.layers.{j}.mlp.gate_up_proj.weight"),
        ParamId::DecMlpOut(j) => format!("model.decoder.layers.{j}.mlp.down_proj.weight"),
        other => format!("{other:?}"),
    }
}
