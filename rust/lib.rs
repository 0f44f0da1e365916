//! spanbatch's native core: a lock-free span queue with exact accounting,
//! driven by a Python worker that waits here without holding the GIL.
//! `otlp` is the OTLP/protobuf span encoder behind `spanbatch.exporter`, `http` its
//! GIL-free plain-HTTP transport.

pub mod batching;
mod core;
mod core_methods;
pub mod counters;
mod errors;
mod fanout;
pub mod flush;
mod fork;
mod handoff;
mod http;
mod http_outcome;
pub mod otlp;
pub mod queue;
mod reader;
pub mod room;
mod stats;
mod sync;
mod waits;
pub mod wakeup;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::core::PyBatchCore;
    #[pymodule_export]
    use crate::errors::{
        NotSentError, RequestTooLargeError, TransportConnectionError, TransportError,
    };
    #[pymodule_export]
    use crate::fanout::PyFanOut;
    #[pymodule_export]
    use crate::http::PyHttpSender;
    #[pymodule_export]
    use crate::http_outcome::PyHttpOutcome;
    #[pymodule_export]
    use crate::otlp::encoder::{compress, PySpanEncoder, PySpanRequest};
    #[pymodule_export]
    use crate::stats::{PyDropReason, PyStats};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("DROP_REASONS", crate::stats::drop_reasons(m.py())?)
    }
}
