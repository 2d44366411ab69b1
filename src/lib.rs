//! dia-burn facade.
pub use dia_model;
