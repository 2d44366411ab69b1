//! dia-infer
