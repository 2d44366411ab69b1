//! The read bandwidth a decode step is measured against: the fastest way this machine's threads
//! can stream a buffer far beyond any cache, so that "of bound" means what the hardware gives.
//!
//! Each thread sums its share of a 512 MiB buffer with vector loads (the widest the CPU has:
//! AVX-512, AVX2, or the baseline's 128-bit), as one, four or eight streams side by side (the
//! decode kernels read four), and the best pass of every pattern is the bound. A probe that
//! read one scalar word at a time reported 47.5 GB/s where the f32 decode streamed 50.9.

use std::time::Instant;

use rayon::prelude::*;

/// Words of the probe's buffer (512 MiB).
const WORDS: usize = (512 << 20) / 8;

/// Words each stream adds per step: one 512-bit vector, or two 256-bit or four 128-bit ones.
const LANES: usize = 8;

/// How a thread reads its share: streams side by side and the vector width it is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    pub streams: usize,
    pub isa: Isa,
}

/// The vector instructions a pattern's loop is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Baseline,
    Avx2,
    Avx512,
}

impl std::fmt::Display for Pattern {
    /// `avx512, 4 streams`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let isa = match self.isa {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        };
        let s = if self.streams == 1 { "" } else { "s" };
        write!(f, "{isa}, {} stream{s}", self.streams)
    }
}

impl Isa {
    /// The widest vectors this CPU runs first.
    fn available() -> Vec<Self> {
        let mut isas = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                isas.push(Self::Avx512);
            }
            if is_x86_feature_detected!("avx2") {
                isas.push(Self::Avx2);
            }
        }
        isas.push(Self::Baseline);
        isas
    }
}

/// GB/s of the fastest pattern reading a 512 MiB buffer with `threads` threads (best of three
/// passes per pattern), and that pattern.
pub fn read_bandwidth(threads: usize) -> (f64, Pattern) {
    let (pattern, gb_s) = measure(threads)
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("the baseline pattern always runs");
    (gb_s, pattern)
}

/// Every pattern this CPU runs, with its best GB/s over three passes.
pub fn measure(threads: usize) -> Vec<(Pattern, f64)> {
    let buffer: Vec<u64> = (0..WORDS as u64).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let chunk = (WORDS / threads.max(1) / 16).max(1);
    let want = (WORDS as u64 - 1).wrapping_mul(WORDS as u64) / 2;
    let mut results = Vec::new();
    for isa in Isa::available() {
        for streams in [1, 4, 8] {
            let pattern = Pattern { streams, isa };
            let best = (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let sum: u64 = pool.install(|| {
                        buffer
                            .par_chunks(chunk)
                            .map(|c| sum(c, pattern))
                            .reduce(|| 0, u64::wrapping_add)
                    });
                    assert_eq!(sum, want, "{pattern:?} summed the buffer wrong");
                    start.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min);
            results.push((pattern, (WORDS * 8) as f64 / best / 1e9));
        }
    }
    results
}

/// The wrapping sum of `c` read as `pattern` says.
pub fn sum(c: &[u64], pattern: Pattern) -> u64 {
    match (pattern.isa, pattern.streams) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, s) if is_x86_feature_detected!("avx512f") => {
            // SAFETY: the CPU has AVX-512F (checked just above).
            unsafe { x86::sum_avx512(c, s) }
        }
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, s) if is_x86_feature_detected!("avx2") => {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { x86::sum_avx2(c, s) }
        }
        (_, s) => sum_streams(c, s),
    }
}

/// The wrapping sum of `c` as `streams` equal parts read side by side, [`LANES`] words of each
/// per step into their own sums (which the compiler keeps in vector registers), then the
/// words past the parts.
#[inline(always)]
fn sum_streams(c: &[u64], streams: usize) -> u64 {
    match streams {
        1 => sum_parts::<1>(c),
        4 => sum_parts::<4>(c),
        _ => sum_parts::<8>(c),
    }
}

#[inline(always)]
fn sum_parts<const S: usize>(c: &[u64]) -> u64 {
    let part = c.len() / S / LANES * LANES;
    let parts: [&[u64]; S] = std::array::from_fn(|s| &c[s * part..(s + 1) * part]);
    let mut sums = [[0u64; LANES]; S];
    for step in 0..part / LANES {
        for (sum, words) in sums.iter_mut().zip(&parts) {
            let words = &words[step * LANES..][..LANES];
            for (a, &w) in sum.iter_mut().zip(words) {
                *a = a.wrapping_add(w);
            }
        }
    }
    c[S * part..]
        .iter()
        .chain(sums.iter().flatten())
        .fold(0u64, |a, &b| a.wrapping_add(b))
}

/// [`sum_streams`] compiled for wider vectors.
#[cfg(target_arch = "x86_64")]
mod x86 {
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sum_avx2(c: &[u64], streams: usize) -> u64 {
        super::sum_streams(c, streams)
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sum_avx512(c: &[u64], streams: usize) -> u64 {
        super::sum_streams(c, streams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pattern sums every word once, on lengths that leave words past the parts.
    #[test]
    fn every_pattern_sums_everything() {
        for len in [0usize, 7, 64, 1003, 4099] {
            let c: Vec<u64> = (0..len as u64).map(|v| v * 3 + 1).collect();
            let want = c.iter().fold(0u64, |a, &b| a.wrapping_add(b));
            for isa in Isa::available() {
                for streams in [1, 4, 8] {
                    let pattern = Pattern { streams, isa };
                    assert_eq!(sum(&c, pattern), want, "{pattern:?}, {len} words");
                }
            }
        }
    }

    #[test]
    fn the_probe_measures_a_bandwidth() {
        let (gb_s, pattern) = read_bandwidth(1);
        assert!(gb_s.is_finite() && gb_s > 0.1, "{gb_s} GB/s by {pattern}");
    }
}
