//! The Python binding of meshlog: the module `meshlog._meshlog`, which the
//! `meshlog` package wraps. A thin layer: every rule is the Rust crate's;
//! this only converts values and errors, and releases the GIL while the
//! library works.

use std::sync::OnceLock;

use pyo3::prelude::*;

mod buffers;
mod errors;
mod keys;
mod mesh;
mod values;

use errors::Failure;

/// One tokio runtime for the process's network calls, made on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("meshlog-net")
        .enable_all()
        .build()
        .map_err(|error| Failure::internal(format!("no runtime: {error}")))?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

#[pymodule]
fn _meshlog(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("FORMAT_VERSION", meshlog::FORMAT_VERSION)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(module)?;
    buffers::register(module)?;
    values::register(module)?;
    module.add_class::<keys::PyLocalKeys>()?;
    module.add_class::<keys::PyEpochSecret>()?;
    module.add_function(wrap_pyfunction!(keys::package_member_id, module)?)?;
    module.add_class::<mesh::Mesh>()?;
    module.add_function(wrap_pyfunction!(mesh::_time_rust, module)?)?;
    Ok(())
}
