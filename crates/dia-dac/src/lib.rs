//! dia-dac
