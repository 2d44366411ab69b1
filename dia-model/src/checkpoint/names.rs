//! Where each model parameter is stored in a nari-format or transformers checkpoint, and how
//! the stored tensor turns into the model's `[in, out]` weight: one table entry per parameter
//! ([`ModelParam::spec`]) holding its shape and its key, stored shape and transform in each
//! format.

use crate::config::DiaConfig;

/// The checkpoint's naming scheme, detected from its tensor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// nari-labs names: 3-D DenseGeneral kernels already in `[in, out]` order, nine embedding
    /// tables, `decoder.logits_dense`.
    Nari,
    /// transformers names: `[out, in]` Linear weights, one 9252-row embedding, top-level
    /// `logits_dense`, `model.` prefix.
    Transformers,
}

/// The encoder or the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    Encoder,
    Decoder,
}

/// Which attention block of a layer (the encoder has only self-attention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attn {
    SelfAttention,
    CrossAttention,
}

/// Projections inside an attention block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proj {
    Q,
    K,
    V,
    O,
}

/// Where an RMSNorm sits: a layer's norm before a block, or the stack's final norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormAt {
    /// Before self-attention.
    PreSa(usize),
    /// The encoder's norm before its MLP (named `post_sa_norm` in the checkpoints).
    PostSa(usize),
    /// Before cross-attention (decoder).
    PreCa(usize),
    /// Before the MLP (decoder).
    PreMlp(usize),
    /// After the last layer.
    Final,
}

/// One parameter of the model, whatever the checkpoint format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelParam {
    /// The encoder's byte embedding `[256, dim]`.
    TextEmbedding,
    /// The decoder's embedding of one channel `[vocab, dim]`.
    AudioEmbedding(usize),
    Norm(Stack, NormAt),
    /// A q/k/v/o projection of layer `layer`.
    Attention(Stack, usize, Attn, Proj),
    /// The fused gate/up projection `[dim, 2 · hidden]` of a layer's MLP.
    MlpIn(Stack, usize),
    /// The down projection `[hidden, dim]` of a layer's MLP.
    MlpOut(Stack, usize),
    /// The decoder's output head `[dim, channels · vocab]`.
    LogitsDense,
}

/// How a stored tensor becomes the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// Same elements in the same order; only the shape changes (nari DenseGeneral kernels).
    Reshape,
    /// A 2-D `[out, in]` weight transposed to `[in, out]`.
    Transpose,
    /// Rows `start..start + len` of a 2-D table (one channel of the fused embedding).
    Rows { start: usize, len: usize },
}

/// A parameter as one checkpoint format stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTensor {
    pub key: String,
    pub shape: Vec<usize>,
    pub transform: Transform,
}

/// Everything about one parameter: its shape in the model and its place in each format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// `[in, out]`, `[vocab, dim]` or `[dim]`.
    pub shape: Vec<usize>,
    pub nari: StoredTensor,
    pub transformers: StoredTensor,
}

impl ModelParam {
    /// Every parameter of a model with this config, in loading order.
    pub fn all(config: &DiaConfig) -> Vec<ModelParam> {
        use {Attn::*, ModelParam::*, Stack::*};
        let attention = |stack, layer, block| {
            [Proj::Q, Proj::K, Proj::V, Proj::O].map(|p| Attention(stack, layer, block, p))
        };
        let mut all = vec![TextEmbedding];
        for i in 0..config.encoder.num_hidden_layers {
            all.push(Norm(Encoder, NormAt::PreSa(i)));
            all.extend(attention(Encoder, i, SelfAttention));
            all.extend([
                Norm(Encoder, NormAt::PostSa(i)),
                MlpIn(Encoder, i),
                MlpOut(Encoder, i),
            ]);
        }
        all.push(Norm(Encoder, NormAt::Final));
        all.extend((0..config.decoder.num_channels).map(AudioEmbedding));
        for j in 0..config.decoder.num_hidden_layers {
            all.push(Norm(Decoder, NormAt::PreSa(j)));
            all.extend(attention(Decoder, j, SelfAttention));
            all.push(Norm(Decoder, NormAt::PreCa(j)));
            all.extend(attention(Decoder, j, CrossAttention));
            all.extend([
                Norm(Decoder, NormAt::PreMlp(j)),
                MlpIn(Decoder, j),
                MlpOut(Decoder, j),
            ]);
        }
        all.extend([Norm(Decoder, NormAt::Final), LogitsDense]);
        all
    }

    /// Whether the parameter is an RMSNorm scale (kept in f32 whatever the compute dtype).
    pub fn is_norm(self) -> bool {
        matches!(self, ModelParam::Norm(..))
    }

    /// The parameter's table entry.
    pub fn spec(self, config: &DiaConfig) -> ParamSpec {
        let (e, d) = (&config.encoder, &config.decoder);
        let key = self.nari_key();
        match self {
            ModelParam::TextEmbedding => same_in_both(key, vec![e.vocab_size, e.hidden_size]),
            ModelParam::Norm(stack, _) => same_in_both(key, vec![stack_width(config, stack)]),
            ModelParam::AudioEmbedding(c) => {
                let shape = vec![d.vocab_size, d.hidden_size];
                let transformers = StoredTensor {
                    key: "model.decoder.embeddings.embed.weight".into(),
                    shape: vec![d.num_channels * d.vocab_size, d.hidden_size],
                    transform: Transform::Rows {
                        start: c * d.vocab_size,
                        len: d.vocab_size,
                    },
                };
                ParamSpec {
                    nari: reshaped(key, shape.clone()),
                    shape,
                    transformers,
                }
            }
            ModelParam::Attention(stack, _, attn, proj) => {
                let (width, heads, head_dim) = attention_dims(config, stack, attn, proj);
                let (shape, stored) = match proj {
                    Proj::O => (vec![heads * head_dim, width], vec![heads, head_dim, width]),
                    _ => (vec![width, heads * head_dim], vec![width, heads, head_dim]),
                };
                linear(key, shape, stored)
            }
            ModelParam::MlpIn(stack, _) => {
                let (width, hidden) = mlp_dims(config, stack);
                linear(key, vec![width, 2 * hidden], vec![width, 2, hidden])
            }
            ModelParam::MlpOut(stack, _) => {
                let (width, hidden) = mlp_dims(config, stack);
                linear(key, vec![hidden, width], vec![hidden, width])
            }
            ModelParam::LogitsDense => linear(
                key,
                vec![d.hidden_size, d.num_channels * d.vocab_size],
                vec![d.hidden_size, d.num_channels, d.vocab_size],
            ),
        }
    }

    /// The nari key; the transformers key is derived from it (see [`transformers_key`]).
    pub(crate) fn nari_key(self) -> String {
        let stack = |s| match s {
            Stack::Encoder => "encoder",
            Stack::Decoder => "decoder",
        };
        match self {
            ModelParam::TextEmbedding => "encoder.embedding.weight".into(),
            ModelParam::AudioEmbedding(c) => format!("decoder.embeddings.{c}.weight"),
            ModelParam::Norm(s, NormAt::Final) => format!("{}.norm.weight", stack(s)),
            ModelParam::Norm(s, at) => {
                let (layer, name) = match at {
                    NormAt::PreSa(i) => (i, "pre_sa_norm"),
                    NormAt::PostSa(i) => (i, "post_sa_norm"),
                    NormAt::PreCa(i) => (i, "pre_ca_norm"),
                    NormAt::PreMlp(i) => (i, "pre_mlp_norm"),
                    NormAt::Final => unreachable!("matched above"),
                };
                format!("{}.layers.{layer}.{name}.weight", stack(s))
            }
            ModelParam::Attention(s, i, attn, proj) => {
                let block = match attn {
                    Attn::SelfAttention => "self_attention",
                    Attn::CrossAttention => "cross_attention",
                };
                let proj = match proj {
                    Proj::Q => "q_proj",
                    Proj::K => "k_proj",
                    Proj::V => "v_proj",
                    Proj::O => "o_proj",
                };
                format!("{}.layers.{i}.{block}.{proj}.weight", stack(s))
            }
            ModelParam::MlpIn(s, i) => format!("{}.layers.{i}.mlp.wi_fused.weight", stack(s)),
            ModelParam::MlpOut(s, i) => format!("{}.layers.{i}.mlp.wo.weight", stack(s)),
            ModelParam::LogitsDense => "decoder.logits_dense.weight".into(),
        }
    }
}

/// The transformers key of a nari key: `model.` in front, the MLP's `wi_fused`/`wo` renamed
/// `gate_up_proj`/`down_proj`, and the output head at the top level.
fn transformers_key(nari: &str) -> String {
    if nari == "decoder.logits_dense.weight" {
        return "logits_dense.weight".into();
    }
    format!("model.{nari}")
        .replace(".mlp.wi_fused.", ".mlp.gate_up_proj.")
        .replace(".mlp.wo.", ".mlp.down_proj.")
}

/// `(input width, heads, head_dim)` of an attention projection: K and V use the KV heads (and
/// in cross-attention read the encoder's width), Q and O the query heads.
fn attention_dims(
    config: &DiaConfig,
    stack: Stack,
    attn: Attn,
    proj: Proj,
) -> (usize, usize, usize) {
    let (e, d) = (&config.encoder, &config.decoder);
    let kv = matches!(proj, Proj::K | Proj::V);
    match (stack, attn) {
        (Stack::Encoder, _) => {
            let heads = if kv {
                e.num_key_value_heads
            } else {
                e.num_attention_heads
            };
            (e.hidden_size, heads, e.head_dim)
        }
        (Stack::Decoder, Attn::SelfAttention) => {
            let heads = if kv {
                d.num_key_value_heads
            } else {
                d.num_attention_heads
            };
            (d.hidden_size, heads, d.head_dim)
        }
        (Stack::Decoder, Attn::CrossAttention) if kv => (
            d.cross_hidden_size,
            d.cross_num_key_value_heads,
            d.cross_head_dim,
        ),
        (Stack::Decoder, Attn::CrossAttention) => {
            (d.hidden_size, d.cross_num_attention_heads, d.cross_head_dim)
        }
    }
}

/// `(width, hidden)` of a stack's MLP.
fn mlp_dims(config: &DiaConfig, stack: Stack) -> (usize, usize) {
    match stack {
        Stack::Encoder => (config.encoder.hidden_size, config.encoder.intermediate_size),
        Stack::Decoder => (config.decoder.hidden_size, config.decoder.intermediate_size),
    }
}

fn stack_width(config: &DiaConfig, stack: Stack) -> usize {
    mlp_dims(config, stack).0
}

fn reshaped(key: String, shape: Vec<usize>) -> StoredTensor {
    StoredTensor {
        key,
        shape,
        transform: Transform::Reshape,
    }
}

/// A tensor both formats store as the model holds it (embeddings, norms).
fn same_in_both(nari_key: String, shape: Vec<usize>) -> ParamSpec {
    ParamSpec {
        transformers: reshaped(transformers_key(&nari_key), shape.clone()),
        nari: reshaped(nari_key, shape.clone()),
        shape,
    }
}

/// A projection `[in, out]`: nari stores it as the DenseGeneral kernel `nari_shape` (the same
/// elements), transformers as the `[out, in]` Linear weight.
fn linear(nari_key: String, shape: Vec<usize>, nari_shape: Vec<usize>) -> ParamSpec {
    ParamSpec {
        transformers: StoredTensor {
            key: transformers_key(&nari_key),
            shape: vec![shape[1], shape[0]],
            transform: Transform::Transpose,
        },
        nari: reshaped(nari_key, nari_shape),
        shape,
    }
}

impl CheckpointFormat {
    /// Detects the format from the checkpoint's tensor names.
    pub fn detect<'a>(mut keys: impl Iterator<Item = &'a str>) -> Option<Self> {
        keys.find_map(|k| match k {
            "decoder.embeddings.0.weight" | "encoder.embedding.weight" => Some(Self::Nari),
            "model.decoder.embeddings.embed.weight" | "model.encoder.embedding.weight" => {
                Some(Self::Transformers)
            }
            _ => None,
        })
    }

    /// Where `param` is stored in this format and how to turn it into the model's shape.
    pub fn stored(self, param: ModelParam, config: &DiaConfig) -> StoredTensor {
        let spec = param.spec(config);
        match self {
            Self::Nari => spec.nari,
            Self::Transformers => spec.transformers,
        }
    }

    /// Every tensor (key and stored shape) a checkpoint of this format must hold, in order.
    pub fn expected_tensors(self, config: &DiaConfig) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        for param in ModelParam::all(config) {
            let stored = self.stored(param, config);
            if !out.iter().any(|(k, _)| *k == stored.key) {
                out.push((stored.key, stored.shape));
            }
        }
        out
    }
}
