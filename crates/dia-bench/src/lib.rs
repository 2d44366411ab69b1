//! dia-bench
