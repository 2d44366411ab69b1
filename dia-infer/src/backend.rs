//! Run-time choice of backend and dtype through dia-model's one dispatch
//! ([`dia_model::BackendKind`]): each command is written once, generic over the backend.

use anyhow::Result;
use burn::tensor::DType;
use dia_model::{BackendKind, DiaBackend, OnBackend, ensure_dtype};

/// A command body that runs on any backend in a given compute dtype.
pub trait Command {
    /// Runs with backend `B` on `device`, computing the model in `dtype`.
    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Result<()>;
}

/// Runs `command` on `backend` (resolved from `auto` by the parser) in `dtype`, or in the
/// backend's default dtype.
pub fn dispatch(backend: BackendKind, dtype: Option<DType>, command: impl Command) -> Result<()> {
    let dtype = dtype.unwrap_or_else(|| backend.default_dtype());
    tracing::info!(%backend, ?dtype, "backend");
    backend.run(Checked {
        command,
        backend,
        dtype,
    })?
}

/// The command behind a check that the backend computes in its dtype.
struct Checked<C> {
    command: C,
    backend: BackendKind,
    dtype: DType,
}

impl<C: Command> OnBackend for Checked<C> {
    type Output = Result<()>;

    fn run<B: DiaBackend>(self, device: B::Device) -> Result<()> {
        ensure_dtype::<B>(self.backend, &device, self.dtype)?;
        self.command.run::<B>(device, self.dtype)
    }
}
