//! The machine a report was made on, its measured read bandwidth, and the process's peak memory.

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The Burn release the workspace builds against (checked against Cargo.lock by a test).
pub const BURN_VERSION: &str = "0.21.0";

/// Where and when a report was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub logical_cores: usize,
    /// Worker threads each configuration ran with.
    pub threads: usize,
    pub memory_bytes: u64,
    /// Streaming read bandwidth with `threads` threads, best of five passes over 512 MiB.
    pub read_bandwidth_gb_s: f64,
    pub os: String,
    pub date: String,
    pub burn_version: String,
    pub dia_burn_version: String,
    /// The integer kernel `w8a8` rows ran on this CPU (`avx512-vnni`, `avx-vnni`, `avx2` or
    /// `scalar`).
    #[serde(default)]
    pub int8_kernel: String,
}

impl Machine {
    /// Describes this machine, measuring its read bandwidth with `threads` threads.
    pub fn detect(threads: usize) -> Self {
        Self {
            cpu: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads,
            memory_bytes: proc_field("/proc/meminfo", "MemTotal")
                .and_then(|v| kib(&v))
                .unwrap_or(0),
            read_bandwidth_gb_s: read_bandwidth(threads),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            date: chrono::Local::now().format("%Y-%m-%d %H:%M %Z").to_string(),
            burn_version: BURN_VERSION.into(),
            dia_burn_version: env!("CARGO_PKG_VERSION").into(),
            int8_kernel: dia_model::backend::flex::int8_kernel().into(),
        }
    }
}

/// The value after `key:` on the first matching line of a `/proc` file (Linux only).
fn proc_field(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// "123 kB" → bytes.
fn kib(value: &str) -> Option<u64> {
    value
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()
        .map(|k| k * 1024)
}

/// Resident memory of this process now (`VmRSS`), where the OS reports it.
pub fn current_rss_bytes() -> Option<u64> {
    proc_field("/proc/self/status", "VmRSS").and_then(|v| kib(&v))
}

/// Peak resident memory of this process so far (`VmHWM`), where the OS reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_field("/proc/self/status", "VmHWM").and_then(|v| kib(&v))
}

/// GB/s of summing a 512 MiB buffer (far beyond any cache) with `threads` threads, the best of
/// one stream and eight side-by-side streams per chunk (the decode kernel's pattern, which keeps
/// more reads in flight): the bound a memory-bound decode step is compared against.
pub fn read_bandwidth(threads: usize) -> f64 {
    let words = (512usize << 20) / 8;
    let buffer: Vec<u64> = (0..words as u64).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let chunk = words / threads.max(1) / 16;
    let one_stream = |c: &[u64]| c.iter().fold(0u64, |a, &b| a.wrapping_add(b));
    let best = (0..10)
        .map(|run| {
            let start = Instant::now();
            let sum: u64 = pool.install(|| {
                buffer
                    .par_chunks(chunk.max(1))
                    .map(|c| {
                        if run % 2 == 0 {
                            one_stream(c)
                        } else {
                            eight_streams(c)
                        }
                    })
                    .reduce(|| 0, u64::wrapping_add)
            });
            std::hint::black_box(sum);
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    (words * 8) as f64 / best / 1e9
}

/// The wrapping sum of `c` read as eight equal parts side by side, then the remainder.
fn eight_streams(c: &[u64]) -> u64 {
    let part = c.len() / 8;
    let mut sums = [0u64; 8];
    for i in 0..part {
        for (s, sum) in sums.iter_mut().enumerate() {
            *sum = sum.wrapping_add(c[s * part + i]);
        }
    }
    c[8 * part..]
        .iter()
        .chain(&sums)
        .fold(0u64, |a, &b| a.wrapping_add(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_streams_sum_everything() {
        let c: Vec<u64> = (0..1003).collect();
        assert_eq!(eight_streams(&c), 1002 * 1003 / 2);
    }

    #[test]
    fn burn_version_is_the_locked_one() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("the workspace Cargo.lock");
        let needle = format!("name = \"burn\"\nversion = \"{BURN_VERSION}\"");
        assert!(
            lock.contains(&needle),
            "Cargo.lock does not lock burn {BURN_VERSION}"
        );
    }

    #[test]
    fn proc_values_parse() {
        assert_eq!(kib("2048 kB"), Some(2 * 1024 * 1024));
        assert!(
            peak_rss_bytes().is_some_and(|b| b > 1 << 20),
            "VmHWM of this test process"
        );
        assert!(read_bandwidth(1) > 0.1);
    }
}
