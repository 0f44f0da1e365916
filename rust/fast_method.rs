//! A method a processor instance may short-cut with a callable of its own (the bound Rust push).
//!
//! Stored on the class, as any method: `processor.on_end` looks the class up first, so a later
//! patch of the class attribute (`mock.patch.object(BatchSpanProcessor, "on_end")`) or a
//! subclass override is what the SDK calls, as with the stock class. Read on an instance, it
//! gives the instance's short cut when it has one (one attribute lookup, no Python frame), else
//! (the class's None) the function bound to the instance. Read on the class, it gives the
//! function itself.

use pyo3::prelude::*;
use pyo3::types::PyString;

#[pyclass(frozen, name = "FastMethod", module = "spanbatch._core")]
pub struct PyFastMethod {
    function: Py<PyAny>,
    /// The instance attribute that holds the short cut, when the instance has one.
    shortcut: Py<PyString>,
}

#[pymethods]
impl PyFastMethod {
    #[new]
    fn new(function: Py<PyAny>, shortcut: Py<PyString>) -> Self {
        Self { function, shortcut }
    }

    fn __get__(
        &self,
        py: Python<'_>,
        instance: Option<&Bound<'_, PyAny>>,
        owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let Some(instance) = instance.filter(|instance| !instance.is_none()) else {
            return Ok(self.function.clone_ref(py));
        };
        // The class holds None for it: an instance without a short cut costs a lookup, not an exception.
        let shortcut = instance.getattr(self.shortcut.bind(py))?;
        if !shortcut.is_none() {
            return Ok(shortcut.unbind());
        }
        let owner = match owner {
            Some(owner) => owner.clone(),
            None => instance.get_type().into_any(),
        };
        Ok(self
            .function
            .bind(py)
            .call_method1(pyo3::intern!(py, "__get__"), (instance, owner))?
            .unbind())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "FastMethod({}, shortcut={})",
            self.function.bind(py).repr()?,
            self.shortcut.bind(py)
        ))
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.function)?;
        visit.call(&self.shortcut)
    }
}
