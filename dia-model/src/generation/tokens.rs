//! Choosing a step's tokens from its CFG logits on the device, as the host [`super::Sampler`]
//! does (CFG, the special-token masks, both versions' candidate sets, temperature, the EOS rule,
//! top-k, top-p, a draw with the host's seeded uniforms): the backend's kernel
//! ([`DiaBackend::choose_tokens`]) or Burn's tensor ops. Sampled codes can differ from the
//! host's where the device's float rounding moves a probability across a bucket edge. Ties are
//! broken by value (a candidate tied with the k-th largest is kept), the host by index.

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};

use super::sampling::SamplerParams;
use crate::backend::{DiaBackend, TokenRule};
use crate::config::{DiaConfig, ModelVersion};

/// Chooses tokens for one decoding's parameters and model version.
pub struct TokenChooser<B: Backend> {
    masks: Masks<B>,
    rule: TokenRule,
}

impl<B: DiaBackend> TokenChooser<B> {
    /// A chooser by `params` for `cfg`'s model, its constant masks on `device`.
    pub fn new(cfg: &DiaConfig, params: SamplerParams, device: &B::Device) -> Self {
        Self {
            masks: Masks::new(cfg, device),
            rule: TokenRule {
                params,
                version: cfg.version,
                eos: cfg.eos_token_id as usize,
            },
        }
    }

    /// Each item's next codes `[items, 1, channels, 1]` (in `int`) from its f32 CFG rows of
    /// `logits` `[2 · items, 1, channels, vocab]`, with `draws` `[items, 1, channels, 1]` when
    /// sampling: the backend's kernel ([`DiaBackend::choose_tokens`]) where it has one, else
    /// [`TokenChooser::choose_with_ops`].
    pub fn choose(
        &self,
        logits: Tensor<B, 4>,
        draws: Option<Tensor<B, 4>>,
        int: DType,
    ) -> Tensor<B, 4, Int> {
        match B::choose_tokens(logits.clone(), draws.clone(), &self.rule) {
            Some(codes) => codes.cast(int),
            None => self.choose_with_ops(logits, draws).cast(int),
        }
    }

    /// [`TokenChooser::choose`] from Burn's tensor ops (any backend).
    pub fn choose_with_ops(
        &self,
        logits: Tensor<B, 4>,
        draws: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 4, Int> {
        let [rows, _, channels, vocab] = logits.dims();
        // [2·items, 1, C, V] -> [items, 2, C, V]: row 2i is item i's unconditional, 2i + 1
        // its conditional; each a [items, 1, C, V] view.
        let pairs = logits.reshape([rows / 2, 2, channels, vocab]);
        let uncond = pairs.clone().narrow(1, 0, 1);
        let cond = pairs.narrow(1, 1, 1);
        let candidates = self.candidates(cond, uncond);
        let best = candidates.clone().argmax(3);
        match draws {
            Some(draws) if self.rule.params.temperature != 0.0 => {
                self.draw(candidates, best, draws)
            }
            _ => best,
        }
    }

    /// The logits a token is drawn from `[items, 1, channels, vocab]`, as
    /// [`super::Sampler::candidate_logits`] builds them.
    fn candidates(&self, cond: Tensor<B, 4>, uncond: Tensor<B, 4>) -> Tensor<B, 4> {
        let shape = cond.shape();
        let guided = cond.clone() + (cond.clone() - uncond) * self.rule.params.cfg_scale;
        let logits = match self.rule.version {
            ModelVersion::V0626 => keep_top_k(cond, guided, self.rule.params.top_k),
            ModelVersion::Original => guided * self.masks.eos_scale.clone().expand(shape.clone()),
        };
        logits.mask_fill(self.masks.special.clone().expand(shape), f32::NEG_INFINITY)
    }

    /// A draw from `candidates` `[items, 1, channels, vocab]` as [`super::Sampler::pick`] makes
    /// it (temperature, the EOS rule, top-k, top-p), with `draws` `[items, 1, channels, 1]`;
    /// `best` is the candidates' argmax.
    fn draw(
        &self,
        candidates: Tensor<B, 4>,
        best: Tensor<B, 4, Int>,
        draws: Tensor<B, 4>,
    ) -> Tensor<B, 4, Int> {
        let shape = candidates.shape();
        let eos_best = best.equal_elem(self.rule.eos as i64).expand(shape.clone());
        let mut hidden = self
            .masks
            .is_eos
            .clone()
            .expand(shape.clone())
            .bool_and(eos_best.clone().bool_not());
        if self.rule.version == ModelVersion::V0626 {
            let below = self.masks.below_eos.clone().expand(shape.clone());
            hidden = hidden.bool_or(below.bool_and(eos_best));
        }
        let logits =
            (candidates / self.rule.params.temperature).mask_fill(hidden, f32::NEG_INFINITY);
        let mut probs = softmax(
            keep_top_k(logits.clone(), logits, self.rule.params.top_k),
            3,
        );
        if self.rule.params.top_p < 1.0 {
            probs = nucleus(probs, self.rule.params.top_p, self.rule.params.top_k);
        }
        let cumulative = probs.cumsum(3);
        let total = cumulative.clone().narrow(3, shape[3] - 1, 1);
        let target = (draws * total.clone()).expand(shape.clone());
        // The first id whose cumulative mass passes the draw: the ids at or below it. Ids whose
        // mass is below the total stop the count at the last id with mass, where rounding
        // leaves the draw past the total.
        let total = total.expand(shape);
        cumulative
            .clone()
            .lower_equal(target)
            .bool_and(cumulative.lower(total))
            .int()
            .sum_dim(3)
    }
}

/// Constant tensors of the chooser: which ids each channel may not produce.
struct Masks<B: Backend> {
    /// Ids above EOS on every channel and EOS on channels other than 0 `[1, 1, channels, vocab]`.
    special: Tensor<B, 4, Bool>,
    /// The original version's factor on channel 0's EOS logit (0.8), 1 elsewhere
    /// `[1, 1, channels, vocab]`.
    eos_scale: Tensor<B, 4>,
    /// `id == eos` and `id < eos` `[1, 1, 1, vocab]`.
    is_eos: Tensor<B, 4, Bool>,
    below_eos: Tensor<B, 4, Bool>,
}

impl<B: Backend> Masks<B> {
    fn new(cfg: &DiaConfig, device: &B::Device) -> Self {
        let (channels, vocab) = (cfg.decoder.num_channels, cfg.decoder.vocab_size);
        let eos = cfg.eos_token_id as usize;
        let special: Vec<bool> = (0..channels)
            .flat_map(|c| (0..vocab).map(move |v| v > eos || (c > 0 && v == eos)))
            .collect();
        let original = cfg.version == ModelVersion::Original;
        let eos_scale: Vec<f32> = (0..channels * vocab)
            .map(|i| if original && i == eos { 0.8 } else { 1.0 })
            .collect();
        let ids: Vec<i64> = (0..vocab as i64).collect();
        let ids = Tensor::<B, 4, Int>::from_data(TensorData::new(ids, [1, 1, 1, vocab]), device);
        let shape = [1, 1, channels, vocab];
        Self {
            special: Tensor::from_data(TensorData::new(special, shape), device),
            eos_scale: Tensor::from_data(TensorData::new(eos_scale, shape), device),
            is_eos: ids.clone().equal_elem(eos as i64),
            below_eos: ids.lower_elem(eos as i64),
        }
    }
}

/// `values` `[items, 1, channels, n]` with `-inf` where `by` (same shape) is below its `k`-th
/// largest entry along the last dim: outside `by`'s top-k set (an entry tied with the k-th
/// largest stays in).
fn keep_top_k<B: Backend>(values: Tensor<B, 4>, by: Tensor<B, 4>, k: usize) -> Tensor<B, 4> {
    let shape = by.shape();
    if k >= shape[3] {
        return values;
    }
    let kth = by.clone().topk(k, 3).narrow(3, k - 1, 1);
    values.mask_fill(by.lower(kth.expand(shape)), f32::NEG_INFINITY)
}

/// `probs` `[items, 1, channels, vocab]` with every token outside the nucleus zeroed, as
/// [`super::sampling::nucleus`] does: a token goes when the mass of the more probable ones
/// exceeds `top_p`. At most `top_k` tokens have mass (the top-k filter ran before).
fn nucleus<B: Backend>(probs: Tensor<B, 4>, top_p: f32, top_k: usize) -> Tensor<B, 4> {
    let shape = probs.shape();
    // Burn's top-k takes fewer than all: with every token a candidate the smallest is left out,
    // and it stays exactly when all the others fit in `top_p`.
    let sorted = probs.clone().topk(top_k.min(shape[3] - 1), 3);
    let cumulative = sorted.clone().cumsum(3);
    let all_fit = cumulative
        .clone()
        .narrow(3, sorted.dims()[3] - 1, 1)
        .lower_equal_elem(top_p);
    let before = cumulative - sorted.clone();
    let smallest_kept = sorted
        .mask_fill(before.greater_elem(top_p), f32::INFINITY)
        .min_dim(3)
        .mask_fill(all_fit, 0.0);
    probs
        .clone()
        .mask_fill(probs.lower(smallest_kept.expand(shape)), 0.0)
}
