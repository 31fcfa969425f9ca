//! A member's keys, and an epoch's secret: secrets stay in Rust and leave
//! only through a call that says so.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::Failure;

/// A member's secret keys (signing and DH). Saved to a file readable by its
/// owner only; never shown by `repr`.
#[pyclass(module = "meshlog._meshlog", name = "LocalKeys", frozen)]
pub(crate) struct PyLocalKeys {
    pub(crate) inner: meshlog::LocalKeys,
}

#[pymethods]
impl PyLocalKeys {
    /// New keys from the operating system's randomness.
    #[staticmethod]
    fn generate() -> PyLocalKeys {
        PyLocalKeys {
            inner: meshlog::LocalKeys::generate(),
        }
    }

    /// Keys from a key file (`meshlog keys new`, or `save`).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyLocalKeys> {
        py.detach(|| meshlog::LocalKeys::load(&path).map_err(Failure::from))
            .map(|inner| PyLocalKeys { inner })
            .map_err(|failure| failure.into_py(py))
    }

    /// Writes a new key file, mode 0600; refuses to overwrite one.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path).map_err(Failure::from))
            .map_err(|failure| failure.into_py(py))
    }

    /// The member's signed key package, as `meshlog keys show --public`
    /// prints it: what an admin's `Mesh.add_member` takes.
    fn public(&self) -> String {
        self.inner.package().to_string()
    }

    /// The package at a higher counter, for `Mesh.post_package`: a newer
    /// package replaces the member's keys in the roster (SPEC.md §5.4).
    fn package_with_counter(&self, counter: u64) -> String {
        self.inner.package_with_counter(counter).to_string()
    }

    /// The member id these keys prove: a hash of the signing key, as hex.
    #[getter]
    fn member_id(&self) -> String {
        self.inner.member_id().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "LocalKeys(member_id={}, secrets redacted)",
            self.inner.member_id()
        )
    }
}

impl PyLocalKeys {
    /// A copy for a call that takes the keys.
    pub(crate) fn copy(&self) -> meshlog::LocalKeys {
        self.inner.duplicate()
    }
}

/// An epoch's secret. `expose()` gives its 32 bytes; `repr` never does.
#[pyclass(module = "meshlog._meshlog", name = "EpochSecret", frozen)]
pub(crate) struct PyEpochSecret {
    pub(crate) epoch: String,
    pub(crate) inner: meshlog::EpochSecret,
}

#[pymethods]
impl PyEpochSecret {
    /// The epoch (a rotation's hash, as hex).
    #[getter]
    fn epoch(&self) -> String {
        self.epoch.clone()
    }

    /// The secret's 32 bytes. Python cannot wipe them after use: prefer
    /// `Mesh.seal` and `Mesh.open_sealed`, which never show them.
    fn expose<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.expose())
    }

    /// A short, labelled fingerprint that tells two copies of a secret
    /// apart without showing either.
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }

    fn __repr__(&self) -> String {
        format!(
            "EpochSecret(epoch={}, fingerprint={}, secret redacted)",
            self.epoch,
            self.inner.fingerprint()
        )
    }
}

/// The member id (hex) a key package names, after checking the package's
/// signature by its own key.
#[pyfunction]
pub(crate) fn package_member_id(package: &str) -> PyResult<String> {
    let package: meshlog::KeyPackage = package
        .parse()
        .map_err(|error| crate::errors::value_error("a key package", error))?;
    package
        .check()
        .map_err(|error| crate::errors::value_error("a key package", error))?;
    Ok(package.member().to_string())
}
