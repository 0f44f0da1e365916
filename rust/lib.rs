//! spanbatch's native core: a lock-free span queue with exact accounting,
//! driven by a Python worker that waits here without holding the GIL.
//! `otlp` is the OTLP/protobuf span encoder behind `spanbatch.exporter`, `http` its
//! GIL-free plain-HTTP transport.

// Pedantic, less the lints that argue with pyo3's signatures (arguments and `PyVisit` come by
// value), or ask for attributes and sections a crate with no Rust users does not need.
#![warn(clippy::pedantic)]
#![allow(
    clippy::must_use_candidate,
    clippy::missing_errors_doc,
    clippy::missing_panics_doc,
    clippy::needless_pass_by_value,
    clippy::single_match_else,
    clippy::struct_field_names
)]

pub mod batching;
mod core;
mod core_methods;
pub mod counters;
mod drop_news;
pub mod drop_reasons;
mod errors;
mod exit_gate;
mod fanout;
pub mod flush;
mod fork;
mod handoff;
mod http;
mod http_cutoff;
mod http_early_answer;
mod http_outcome;
mod http_tcp;
mod interned;
mod log_emit;
pub mod otlp;
pub mod queue;
mod read_ahead;
pub mod read_on;
mod reader;
pub mod room;
mod room_wait;
mod sampled;
mod send_progress;
pub mod send_time;
mod shared_lock;
mod stats;
mod sync;
mod waits;
pub mod wakeup;

use pyo3::prelude::*;

/// `debug` or `release`: whether the module was built with debug assertions (`maturin develop`
/// without `--release`), which makes it several times slower.
const BUILD_PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// `off` when `PyO3`'s reference pool is compiled out (`.cargo/config.toml`): no pymethod call
/// then takes the pool's global lock.
const REFERENCE_POOL: &str = if cfg!(pyo3_disable_reference_pool) {
    "off"
} else {
    "on"
};

/// What the module was built as, for bug reports:
/// `profile=release refpool=off arch=x86_64 os=linux`.
fn build_info() -> String {
    format!(
        "profile={BUILD_PROFILE} refpool={REFERENCE_POOL} arch={} os={}",
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

#[pymodule(gil_used = false)]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::core::PyBatchCore;
    #[pymodule_export]
    use crate::drop_news::PyDropNews;
    #[pymodule_export]
    use crate::errors::{
        AnswerUnreadableError, NotSentError, RequestTooLargeError, TransportConnectionError,
        TransportError,
    };
    #[pymodule_export]
    use crate::exit_gate::{close_exit_gate, exit_gate_after_fork_in_child, greenlets_may_pause};
    #[pymodule_export]
    use crate::fanout::PyFanOut;
    #[pymodule_export]
    use crate::http::PyHttpSender;
    #[pymodule_export]
    use crate::http_outcome::PyHttpOutcome;
    #[pymodule_export]
    use crate::log_emit::PyLogEmit;
    #[pymodule_export]
    use crate::otlp::encoder::{compress, PySpanEncoder, PySpanRequest};
    #[pymodule_export]
    use crate::otlp::log_encoder::{PyLogEncoder, PyLogRequest};
    #[pymodule_export]
    use crate::room_wait::PyRoomWait;
    #[pymodule_export]
    use crate::send_progress::PySendProgress;
    #[pymodule_export]
    use crate::shared_lock::PySharedLock;
    #[pymodule_export]
    use crate::stats::{PyDropReason, PyStats};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("build_profile", crate::BUILD_PROFILE)?;
        m.add("build_info", crate::build_info())?;
        m.add("DROP_REASONS", crate::stats::drop_reasons(m.py())?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_info_names_the_profile() {
        let info = super::build_info();
        assert!(info.starts_with("profile=debug ") || info.starts_with("profile=release "));
        assert!(info.contains(" refpool=off "), "{info}");
    }
}
