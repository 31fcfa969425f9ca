//! Bytes that Rust keeps and Python reads in place, through the buffer
//! protocol (`bytes(x)`, `memoryview(x)`, `socket.send(x)`, `f.write(x)`):
//! a sealed message, and an opened message's plaintext. A megabyte sealed
//! or opened is then neither copied nor allocated again on Python's side,
//! and a plaintext is zeroized once its last reader lets go, which a
//! Python `bytes` never is.

use std::ffi::{c_char, c_int, c_void};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::Failure;

/// Fills `view` with `data`, read-only, one byte an item, for `owner`,
/// whose reference the view keeps: `data` must live as long as `owner`
/// and never change, which holds for the frozen classes below.
///
/// # Safety
///
/// `view` is the `Py_buffer` Python passed to `__getbuffer__`.
unsafe fn fill_view(
    view: *mut ffi::Py_buffer,
    flags: c_int,
    data: &[u8],
    owner: Bound<'_, PyAny>,
) -> PyResult<()> {
    if view.is_null() {
        return Err(PyBufferError::new_err("no view to fill"));
    }
    if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE {
        return Err(PyBufferError::new_err("read-only bytes"));
    }
    // SAFETY: `view` is a valid, writable Py_buffer (checked non-null);
    // `data` outlives the view, which holds a reference to its owner.
    unsafe {
        (*view).obj = owner.into_ptr();
        (*view).buf = data.as_ptr() as *mut c_void;
        (*view).len = data.len() as isize;
        (*view).readonly = 1;
        (*view).itemsize = 1;
        (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
            c"B".as_ptr() as *mut c_char
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
            &mut (*view).len
        } else {
            std::ptr::null_mut()
        };
        (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
            &mut (*view).itemsize
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = std::ptr::null_mut();
    }
    Ok(())
}

/// The bytes of any bytes-like object: ours without a copy when we can.
pub(crate) fn bytes_of(object: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = object.extract::<&[u8]>() {
        return Ok(bytes.to_vec());
    }
    PyBuffer::<u8>::get(object)?.to_vec(object.py())
}

/// Whether two byte strings are equal, in time that depends on their
/// lengths only.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A sealed message (SPEC.md §16), as it travels: bytes-like, so it goes
/// to a socket or file as it is; `bytes(sealed)` copies it.
#[pyclass(module = "meshlog._meshlog", name = "Sealed", frozen)]
pub(crate) struct PySealed {
    pub(crate) inner: meshlog::Sealed,
}

#[pymethods]
impl PySealed {
    /// Parses sealed bytes (their layout only; `Mesh.open_sealed` checks
    /// the rest).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<PySealed> {
        meshlog::Sealed::from_vec(bytes_of(data)?)
            .map(|inner| PySealed { inner })
            .map_err(|error| Failure::from(meshlog::Error::from(error)).into_py(py))
    }

    /// The group it was sealed in (hex).
    #[getter]
    fn group(&self) -> String {
        self.inner.group().to_string()
    }

    /// The epoch it was sealed in (hex).
    #[getter]
    fn epoch(&self) -> String {
        self.inner.epoch().to_string()
    }

    /// The associated data, in the clear.
    #[getter]
    fn associated_data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.associated_data())
    }

    fn __len__(&self) -> usize {
        self.inner.as_bytes().len()
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.as_bytes())
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<PySealed>() {
            Ok(other) => self.inner.as_bytes() == other.get().inner.as_bytes(),
            Err(_) => bytes_of(other).is_ok_and(|other| self.inner.as_bytes() == other),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Sealed(group={}, epoch={}, {} bytes)",
            self.inner.group(),
            self.inner.epoch(),
            self.inner.as_bytes().len()
        )
    }

    /// # Safety
    ///
    /// Called by Python with a valid view.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let data = slf.get().inner.as_bytes();
        // SAFETY: the class is frozen, so the bytes neither move nor change
        // while the view holds the object.
        unsafe { fill_view(view, flags, data, slf.clone().into_any()) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// An opened message's plaintext: bytes-like, read in place, and zeroized
/// when the last reader lets go. `bytes(plaintext)` makes a copy that
/// Python keeps, and cannot wipe.
#[pyclass(module = "meshlog._meshlog", name = "Plaintext", frozen)]
pub(crate) struct Plaintext {
    data: Vec<u8>,
}

impl Plaintext {
    pub(crate) fn new(data: Vec<u8>) -> Plaintext {
        Plaintext { data }
    }
}

impl Drop for Plaintext {
    /// Wipes the plaintext before its memory is freed. `zeroize` writes a
    /// byte at a time through volatile stores, which for a megabyte costs
    /// more than a tenth of opening it; a `memset` that `black_box` then
    /// reads cannot be dropped by the compiler either, and runs at memory
    /// speed.
    fn drop(&mut self) {
        self.data.fill(0);
        std::hint::black_box(&self.data);
    }
}

#[pymethods]
impl Plaintext {
    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    /// The plaintext decoded as text (UTF-8 by default).
    #[pyo3(signature = (encoding = "utf-8", errors = "strict"))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        encoding: &str,
        errors: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        PyBytes::new(py, &self.data).call_method1("decode", (encoding, errors))
    }

    /// Equal to any bytes-like object holding the same bytes; compared in
    /// time that depends on the lengths only.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<Plaintext>() {
            Ok(other) => same_bytes(&self.data, &other.get().data),
            Err(_) => bytes_of(other).is_ok_and(|other| same_bytes(&self.data, &other)),
        }
    }

    fn __repr__(&self) -> String {
        format!("Plaintext({} bytes, redacted)", self.data.len())
    }

    /// # Safety
    ///
    /// Called by Python with a valid view.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let data: &[u8] = &slf.get().data;
        // SAFETY: as for `Sealed`: frozen, so the bytes stay put.
        unsafe { fill_view(view, flags, data, slf.clone().into_any()) }
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PySealed>()?;
    module.add_class::<Plaintext>()?;
    Ok(())
}
