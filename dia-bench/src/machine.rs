//! The machine a report was made on, its measured read bandwidth, and the process's peak memory.

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
    /// Streaming read bandwidth with `threads` threads: the fastest pattern of
    /// [`crate::bandwidth`] over 512 MiB.
    pub read_bandwidth_gb_s: f64,
    /// How the probe read at that speed (`avx512, 4 streams`).
    #[serde(default)]
    pub read_pattern: String,
    pub os: String,
    pub date: String,
    pub burn_version: String,
    pub dia_burn_version: String,
    /// The kernels the Flex rows' other hooks ran (`avx512`, `avx2`, or `generic`: Burn's ops).
    #[serde(default)]
    pub flex_kernels: String,
    /// The integer kernel `w8a8` rows ran on this CPU (`avx512-vnni`, `avx-vnni`, `avx2` or
    /// `scalar`).
    #[serde(default)]
    pub int8_kernel: String,
}

impl Machine {
    /// Describes this machine, measuring its read bandwidth with `threads` threads.
    pub fn detect(threads: usize) -> Self {
        let (read_bandwidth_gb_s, pattern) = crate::bandwidth::read_bandwidth(threads);
        Self {
            cpu: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads,
            memory_bytes: proc_field("/proc/meminfo", "MemTotal")
                .and_then(|v| kib(&v))
                .unwrap_or(0),
            read_bandwidth_gb_s,
            read_pattern: pattern.to_string(),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            date: chrono::Local::now().format("%Y-%m-%d %H:%M %Z").to_string(),
            burn_version: BURN_VERSION.into(),
            dia_burn_version: env!("CARGO_PKG_VERSION").into(),
            flex_kernels: dia_model::backend::flex::kernel_path().into(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
