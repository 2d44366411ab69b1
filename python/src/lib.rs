//! `dia_burn._native`, the native module of the `dia_burn` Python package: dia-burn's `Dia`
//! (model and codec, the backend chosen by name) as a Python class speaking into NumPy arrays.
//! Generation runs on a thread of its own on dia-burn's continuous-batch scheduler, the calling
//! thread waiting with the GIL released; `python/check.sh` builds it and runs its tests.

mod arrays;
mod dia;
mod engine;
mod errors;
mod request;
mod speak;
mod stream;
mod worker;

use pyo3::prelude::*;

/// Dia text-to-dialogue and the Descript Audio Codec on Burn (Rust), speaking into NumPy
/// arrays: `Dia.from_pretrained(...).speak("[S1] Hello.")`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<dia::PyDia>()?;
    module.add_class::<request::PyRequest>()?;
    module.add_class::<stream::Stream>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
