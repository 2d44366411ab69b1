//! What the facade's integration tests share, from `dia-test-support` under the names they use:
//! fixture paths and sample comparison.

#[allow(unused_imports)] // not every test binary compares samples
pub use dia_test_support::{fixture as asset, max_abs_diff};
