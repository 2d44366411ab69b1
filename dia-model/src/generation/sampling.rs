//! Next-token selection on the host: CFG, the special-token masks, both reference samplers,
//! and a seeded RNG so the same seed gives the same codes on every run and thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::ModelVersion;
pub use crate::token_rule::SamplerParams;

/// Token ids the sampler treats specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    pub eos: usize,
}

/// Chooses each channel's next token from the conditional and unconditional logits.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplerParams,
    version: ModelVersion,
    eos: usize,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler whose random draws are fixed by `seed`.
    pub fn new(
        params: SamplerParams,
        version: ModelVersion,
        special: SpecialIds,
        seed: u64,
    ) -> Self {
        Self {
            params,
            version,
            eos: special.eos,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The logits the token is drawn from for one channel (`cond`, `uncond`: `[vocab]`):
    /// 0626 keeps the conditional logits inside the guided top-k set; the original uses the
    /// guided logits with channel 0's EOS logit scaled by 0.8. Ids above EOS are masked on
    /// every channel, EOS itself on channels other than 0.
    pub fn candidate_logits(&self, cond: &[f32], uncond: &[f32], channel: usize) -> Vec<f32> {
        let scale = self.params.cfg_scale;
        let guided: Vec<f32> = cond
            .iter()
            .zip(uncond)
            .map(|(&c, &u)| c + scale * (c - u))
            .collect();
        let mut logits = match self.version {
            ModelVersion::V0626 => masked(cond, &top_k_mask(&guided, self.params.top_k)),
            ModelVersion::Original => guided,
        };
        let first_masked = if channel == 0 { self.eos + 1 } else { self.eos };
        for l in logits.iter_mut().skip(first_masked) {
            *l = f32::NEG_INFINITY;
        }
        if channel == 0
            && self.version == ModelVersion::Original
            && let Some(l) = logits.get_mut(self.eos)
        {
            *l *= 0.8;
        }
        logits
    }

    /// The next `n` uniforms in `[0, 1)` of the seeded stream [`Sampler::pick`] draws from (one
    /// per pick), for a sampler elsewhere (the device's) to draw with; none when greedy.
    pub(crate) fn uniforms(&mut self, n: usize) -> Option<Vec<f32>> {
        (self.params.temperature != 0.0).then(|| (0..n).map(|_| self.rng.random::<f32>()).collect())
    }

    /// Picks a token from candidate logits: argmax at temperature 0, otherwise temperature,
    /// the EOS rule, top-k, top-p and a draw from the seeded RNG.
    pub fn pick(&mut self, mut logits: Vec<f32>) -> usize {
        let best = argmax(&logits);
        if self.params.temperature == 0.0 {
            return best;
        }
        for l in &mut logits {
            *l /= self.params.temperature;
        }
        if best != self.eos {
            if let Some(l) = logits.get_mut(self.eos) {
                *l = f32::NEG_INFINITY;
            }
        } else if self.version == ModelVersion::V0626 {
            // EOS is the argmax: force it (0626 rule; ids above EOS are already masked).
            for l in &mut logits[..self.eos] {
                *l = f32::NEG_INFINITY;
            }
        }
        let keep = top_k_mask(&logits, self.params.top_k);
        let logits = masked(&logits, &keep);
        let mut probs = softmax(&logits);
        if self.params.top_p < 1.0 {
            nucleus(&mut probs, self.params.top_p);
        }
        let total: f32 = probs.iter().sum();
        let mut u = self.rng.random::<f32>() * total;
        for (i, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                if u < p {
                    return i;
                }
                u -= p;
            }
        }
        // Rounding left `u` past the last bucket: take the last token with mass.
        probs.iter().rposition(|&p| p > 0.0).unwrap_or(best)
    }
}

/// Index of the first maximum (torch's argmax tie rule); NaN never wins.
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// The `k` largest entries (ties broken by lower index).
pub fn top_k_mask(values: &[f32], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let mut keep = vec![false; values.len()];
    for &i in order.iter().take(k) {
        keep[i] = true;
    }
    keep
}

/// `values` with every entry outside `keep` set to `-inf`.
fn masked(values: &[f32], keep: &[bool]) -> Vec<f32> {
    values
        .iter()
        .zip(keep)
        .map(|(&v, &k)| if k { v } else { f32::NEG_INFINITY })
        .collect()
}

/// Numerically stable softmax; `-inf` entries get probability 0.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Zeroes every token outside the nucleus: sorted by probability, a token is dropped when
/// the mass before it already exceeds `top_p`; the most probable token always stays.
pub fn nucleus(probs: &mut [f32], top_p: f32) {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let mut cumulative = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let before = cumulative;
        cumulative += probs[i];
        if rank > 0 && before > top_p {
            probs[i] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(version: ModelVersion, temperature: f32) -> Sampler {
        let params = SamplerParams {
            cfg_scale: 3.0,
            temperature,
            top_p: 0.95,
            top_k: 2,
        };
        Sampler::new(params, version, SpecialIds { eos: 3 }, 7)
    }

    #[test]
    fn v0626_samples_conditional_logits_inside_guided_top_k() {
        let s = sampler(ModelVersion::V0626, 0.0);
        // guided = 4c - 3u = [4, 1, 10, -3, ...]: top-2 = {0, 2}; cond keeps 1.0 and 2.5.
        let cond = [1.0, 4.0, 2.5, 0.0, 0.0];
        let uncond = [0.0, 5.0, 0.0, 1.0, 0.0];
        let l = s.candidate_logits(&cond, &uncond, 1);
        assert_eq!(l[0], 1.0);
        assert_eq!(l[2], 2.5);
        assert!(l[1].is_infinite() && l[3].is_infinite() && l[4].is_infinite());
    }

    #[test]
    fn original_scales_channel0_eos_and_masks_specials() {
        let s = sampler(ModelVersion::Original, 0.0);
        let cond = [0.0, 0.0, 0.0, 1.0, 9.0];
        let l = s.candidate_logits(&cond, &cond, 0);
        assert_eq!(l[3], 0.8);
        assert!(l[4].is_infinite());
        let l1 = s.candidate_logits(&cond, &cond, 1);
        assert!(l1[3].is_infinite());
    }

    #[test]
    fn nucleus_keeps_the_token_that_crosses_the_threshold() {
        let mut p = vec![0.5, 0.3, 0.15, 0.05];
        nucleus(&mut p, 0.7);
        assert_eq!(p, vec![0.5, 0.3, 0.0, 0.0]);
    }

    #[test]
    fn same_seed_same_draws() {
        let logits = vec![1.0, 1.1, 0.9, -5.0, -5.0];
        let draw = |seed| {
            let mut s = sampler(ModelVersion::V0626, 1.0);
            s.rng = ChaCha8Rng::seed_from_u64(seed);
            (0..32).map(|_| s.pick(logits.clone())).collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
