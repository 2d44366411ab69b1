//! `dia-bench seams`: what decoding a long script's passes as one code sequence buys over
//! decoding each pass alone and joining the audio, measured at every join with the real
//! 44.1 kHz codec configuration (random weights, random codes: the codec's structure, not its
//! training, decides where the two can differ).

use anyhow::Result;
use burn_flex::Flex;
use dia_dac::{Dac, DacConfig};
use serde::Serialize;

/// What to decode.
#[derive(Debug, Clone, Copy)]
pub struct SeamPlan {
    pub passes: usize,
    pub pass_frames: usize,
    pub seed: u64,
}

/// One join between pass `k` and pass `k + 1`.
#[derive(Debug, Clone, Serialize)]
pub struct Join {
    /// First sample of pass `k + 1`.
    pub sample: usize,
    /// `|x[j] − x[j − 1]|` at the join, decoding all frames as one sequence.
    pub jump_joined: f32,
    /// The same, decoding each pass alone and joining the audio.
    pub jump_separate: f32,
    /// Largest `|joined − separate|` near the join.
    pub max_diff: f32,
    /// Milliseconds around the join where the two differ by more than 1e-4.
    pub diff_span_ms: f64,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct SeamReport {
    pub passes: usize,
    pub pass_frames: usize,
    pub sample_rate: u32,
    pub hop: usize,
    pub context_frames: usize,
    /// RMS of the joined decode.
    pub rms: f32,
    /// 99.9th percentile of `|x[i] − x[i − 1]|` away from the joins (joined decode).
    pub jump_p999: f32,
    /// Largest `|x[i] − x[i − 1]|` away from the joins (joined decode).
    pub jump_max: f32,
    pub joins: Vec<Join>,
}

/// Decodes `plan.passes` random passes both ways and measures every join.
pub fn measure_seams(plan: &SeamPlan) -> Result<SeamReport> {
    let device = Default::default();
    let dac = Dac::<Flex>::random(DacConfig::default(), plan.seed, &device)?;
    let config = dac.config();
    let (hop, channels) = (config.hop_length(), config.n_codebooks);
    let mut state = plan.seed;
    let passes: Vec<Vec<Vec<u32>>> = (0..plan.passes)
        .map(|_| {
            (0..plan.pass_frames)
                .map(|_| (0..channels).map(|_| next_code(&mut state)).collect())
                .collect()
        })
        .collect();
    let all: Vec<Vec<u32>> = passes.concat();
    let joined = dac.decode_frames(&all)?;
    let mut separate = Vec::with_capacity(joined.len());
    for pass in &passes {
        separate.extend(dac.decode_frames(pass)?);
    }
    let context = dac.decoder_context_frames();
    let joins: Vec<usize> = (1..plan.passes)
        .map(|k| k * plan.pass_frames * hop)
        .collect();
    let near = |i: usize| joins.iter().any(|&j| i + hop > j && i < j + hop);
    let mut jumps: Vec<f32> = (1..joined.len())
        .filter(|&i| !near(i))
        .map(|i| (joined[i] - joined[i - 1]).abs())
        .collect();
    jumps.sort_by(f32::total_cmp);
    let window = (context + 1) * hop;
    let ms = 1000.0 / f64::from(config.sample_rate);
    Ok(SeamReport {
        passes: plan.passes,
        pass_frames: plan.pass_frames,
        sample_rate: config.sample_rate,
        hop,
        context_frames: context,
        rms: (joined.iter().map(|x| x * x).sum::<f32>() / joined.len().max(1) as f32).sqrt(),
        jump_p999: jumps.get(jumps.len() * 999 / 1000).copied().unwrap_or(0.0),
        jump_max: jumps.last().copied().unwrap_or(0.0),
        joins: joins
            .iter()
            .map(|&j| measure_join(&joined, &separate, j, window, ms))
            .collect(),
    })
}

/// The two decodes at the join starting sample `j`, within `window` samples of it.
fn measure_join(joined: &[f32], separate: &[f32], j: usize, window: usize, ms: f64) -> Join {
    let range = j.saturating_sub(window)..(j + window).min(joined.len());
    // NaN counts as infinitely different (`f32::max` would skip it).
    let diff = |i: usize| match (joined[i] - separate[i]).abs() {
        d if d.is_nan() => f32::INFINITY,
        d => d,
    };
    let differs: Vec<usize> = range.clone().filter(|&i| diff(i) > 1e-4).collect();
    let span = match (differs.first(), differs.last()) {
        (Some(a), Some(b)) => (b - a + 1) as f64 * ms,
        _ => 0.0,
    };
    Join {
        sample: j,
        jump_joined: (joined[j] - joined[j - 1]).abs(),
        jump_separate: (separate[j] - separate[j - 1]).abs(),
        max_diff: range.map(diff).fold(0.0, f32::max),
        diff_span_ms: span,
    }
}

/// A code in `0..1024` from a SplitMix64 stream.
fn next_code(state: &mut u64) -> u32 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % 1024) as u32
}

/// The report as a Markdown table.
pub fn markdown(r: &SeamReport) -> String {
    let mut s = format!(
        "{} passes of {} frames, {} Hz, hop {}, decoder context {} frames. Joined decode: RMS \
         {:.4}, sample-to-sample jump away from the joins p99.9 {:.4}, max {:.4}.\n\n\
         | join at sample | jump, joined | jump, separate | max difference | differs over |\n\
         |---:|---:|---:|---:|---:|\n",
        r.passes,
        r.pass_frames,
        r.sample_rate,
        r.hop,
        r.context_frames,
        r.rms,
        r.jump_p999,
        r.jump_max
    );
    for j in &r.joins {
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.1} ms |\n",
            j.sample, j.jump_joined, j.jump_separate, j.max_diff, j.diff_span_ms
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_reports_its_jumps_and_where_the_decodes_differ() {
        let joined = vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        let mut separate = joined.clone();
        separate[3] = -0.5;
        separate[4] = 0.9;
        let join = measure_join(&joined, &separate, 4, 3, 1.0);
        assert!((join.jump_joined - 0.1).abs() < 1e-6);
        assert!((join.jump_separate - 1.4).abs() < 1e-6);
        assert!((join.max_diff - 0.8).abs() < 1e-6);
        assert_eq!(join.diff_span_ms, 2.0);
    }
}
