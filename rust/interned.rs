//! `interned!(py, "name")`: a Python string made once per call site, as `pyo3::intern!` makes
//! it, without that macro's fork hazard.
//!
//! `intern!` initialises its cell with the thread detached from the interpreter until the cell
//! is marked "being initialised", then attaches again. A `fork()` from another thread in that
//! gap (it holds the GIL the initialising thread waits for) leaves the child's cell being
//! initialised for ever: the first thread there to read that name waits for ever. Seen as a
//! forked child whose worker never exported, its flush timing out (1 run in 6 of
//! `test_fork_exports_every_record_once`). Here the string is made with the GIL held and then
//! stored, which runs no Python code: no thread ever waits on the cell, so a fork cannot leave
//! one waiting (threads that race each make the same interned string; the first stored is kept).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

/// The string in `cell`, made from `text` on first use (see the module's comment). Inlined, with
/// the making out of line: `on_end` reads a name per span, and the call cost 13 instructions.
#[inline]
pub fn get(
    cell: &'static PyOnceLock<Py<PyString>>,
    py: Python<'_>,
    text: &str,
) -> &'static Py<PyString> {
    match cell.get(py) {
        Some(made) => made,
        None => make(cell, py, text),
    }
}

#[cold]
#[inline(never)]
fn make(
    cell: &'static PyOnceLock<Py<PyString>>,
    py: Python<'_>,
    text: &str,
) -> &'static Py<PyString> {
    let _ = cell.set(py, PyString::intern(py, text).unbind());
    cell.get(py)
        .expect("stored just above, by this thread or another")
}

macro_rules! interned {
    ($py:expr, $text:expr) => {{
        static CELL: ::pyo3::sync::PyOnceLock<::pyo3::Py<::pyo3::types::PyString>> =
            ::pyo3::sync::PyOnceLock::new();
        let py: ::pyo3::Python<'_> = $py;
        $crate::interned::get(&CELL, py, $text).bind(py)
    }};
}
pub(crate) use interned;
