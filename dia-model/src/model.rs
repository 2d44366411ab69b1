//! The whole Dia model: text batch preparation (with the CFG rows), encoder, decoder.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use crate::backend::DiaBackend;
use crate::config::DiaConfig;
use crate::layers::DecoderState;
use crate::layers::Encoder;
use crate::layers::{DecodeGroup, Decoder};
use crate::tokenizer::TEXT_PAD_ID;

/// Dia: encoder-decoder transformer from text bytes to nine-channel DAC codes.
#[derive(Module, Debug)]
pub struct DiaModel<B: Backend> {
    pub encoder: Encoder<B>,
    pub decoder: Decoder<B>,
    #[module(skip)]
    pub config: DiaConfig,
}

/// Encoder input for a batch with classifier-free guidance: rows `2b` (unconditional: zeros)
/// and `2b + 1` (conditional: the text) for item `b`, padded to the longest text.
#[derive(Debug, Clone)]
pub struct TextBatch<B: Backend> {
    /// `[2 · batch, len]`.
    pub tokens: Tensor<B, 2, Int>,
    /// `[2 · batch, len]`, true at padding; `None` when every text has the same length. Both
    /// rows of an item share the conditional text's mask, as in the reference.
    pub padding: Option<Tensor<B, 2, Bool>>,
}

impl<B: Backend> TextBatch<B> {
    /// Builds the CFG rows from already tokenized texts (each non-empty).
    pub fn new(texts: &[Vec<u32>], device: &B::Device) -> Self {
        let len = texts.iter().map(Vec::len).max().unwrap_or(0);
        let rows = 2 * texts.len();
        let mut tokens = vec![TEXT_PAD_ID as i64; rows * len];
        let mut padding = vec![false; rows * len];
        for (b, text) in texts.iter().enumerate() {
            let cond = (2 * b + 1) * len;
            for (i, &t) in text.iter().enumerate() {
                tokens[cond + i] = i64::from(t);
            }
            for row in [2 * b, 2 * b + 1] {
                // A NUL byte counts as padding, as `token != 0` does in the reference.
                for i in 0..len {
                    padding[row * len + i] = text.get(i).is_none_or(|&t| t == TEXT_PAD_ID);
                }
            }
        }
        let any_padding = padding.iter().any(|&p| p);
        Self {
            tokens: Tensor::from_data(TensorData::new(tokens, [rows, len]), device),
            padding: any_padding
                .then(|| Tensor::from_data(TensorData::new(padding, [rows, len]), device)),
        }
    }
}

impl<B: DiaBackend> DiaModel<B> {
    /// The device the weights live on.
    pub fn device(&self) -> B::Device {
        self.encoder.embedding.val().device()
    }

    /// Encoder output `[2 · batch, len, enc_dim]` in the compute dtype.
    pub fn encode(&self, text: &TextBatch<B>) -> Tensor<B, 3> {
        self.encoder
            .forward(text.tokens.clone(), text.padding.clone())
    }

    /// Cross-attention K/V from the encoder output and empty self-attention caches for
    /// `max_len` decoder positions.
    pub fn decoder_state(
        &self,
        enc: Tensor<B, 3>,
        text: &TextBatch<B>,
        max_len: usize,
    ) -> DecoderState<B> {
        self.decoder
            .init_state(enc, text.padding.clone(), max_len, None)
    }

    /// Decoder pass over frames `[rows, len, channels]` at positions `start..start + len`;
    /// f32 logits `[rows, len, channels, vocab]`.
    pub fn decode(
        &self,
        tokens: Tensor<B, 3, Int>,
        start: usize,
        state: &mut DecoderState<B>,
    ) -> Tensor<B, 4> {
        self.decoder
            .forward(tokens, &mut [DecodeGroup { state, start }])
    }

    /// Decoder pass over frames `[Σ rows, len, channels]` whose rows belong to `groups`, each at
    /// its own positions with its own caches (a continuous batch); f32 logits
    /// `[Σ rows, len, channels, vocab]`.
    pub fn decode_groups(
        &self,
        tokens: Tensor<B, 3, Int>,
        groups: &mut [DecodeGroup<'_, B>],
    ) -> Tensor<B, 4> {
        self.decoder.forward(tokens, groups)
    }
}
