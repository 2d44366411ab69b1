//! What the facade's integration tests share: fixture paths and sample comparison.

use std::path::PathBuf;

/// A fixture under `assets/fixtures`.
pub fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/fixtures")
        .join(name)
}

/// The largest absolute difference between two equally long sample runs (∞ for a NaN).
#[allow(dead_code)] // not every test binary compares samples
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        )
}
