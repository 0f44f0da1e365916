//! `HttpOutcome`: what one request of an `HttpSender` came to, as Python reads it.

use crate::errors::{
    AnswerUnreadableError, NotSentError, RequestTooLargeError, TransportConnectionError,
    TransportError,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::io::ErrorKind;
use std::time::Duration;

/// What one request came to.
#[derive(Debug)]
pub enum Outcome {
    Response {
        status: u16,
        reason: Option<&'static str>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The request failed before a response; `connection` errors are worth retrying.
    Failed { connection: bool, message: String },
    /// The server answered (a status line came) with headers that could not be read: it has the
    /// request, so neither a retry nor a spilled copy may send it again.
    AnswerUnreadable(String),
    /// Not sent: the serialized request has this many bytes, more than allowed.
    TooLarge(usize),
    /// Not sent: an earlier request of the same `send_all` failed, or its export's deadline passed.
    NotSent,
}

impl Outcome {
    /// A response the stock OTLP/HTTP client counts as accepted (2xx or 3xx).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Response { status, .. } if (200..400).contains(status))
    }

    /// The outcome of a request `ureq` could not make.
    pub fn failed(error: &ureq::Error) -> Self {
        match error {
            ureq::Error::Protocol(protocol) if answered(protocol) => {
                Self::AnswerUnreadable(error.to_string())
            }
            _ => Self::Failed {
                connection: is_connection_error(error),
                message: error.to_string(),
            },
        }
    }
}

/// Whether a failure is about reaching the server (retried by the OTLP client), as
/// `requests` counts connection, timeout and protocol errors.
fn is_connection_error(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::NotConnected
                | ErrorKind::BrokenPipe
                | ErrorKind::TimedOut
                | ErrorKind::UnexpectedEof
                | ErrorKind::AddrNotAvailable
                // No route to the server's host or network (what ureq reports when every address fails so):
                // urllib3's NewConnectionError, which requests raises as a ConnectionError.
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::NetworkDown
        ),
        ureq::Error::Timeout(_)
        | ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Whether a protocol error is about the headers of an answer that began with a status line: the server
/// has the request and answered it, so a retry would send the batch again. `requests` reads such headers
/// leniently and takes the status (one request); a status line it cannot read is a connection error there
/// too, and stays one here (`is_connection_error`).
fn answered(error: &ureq_proto::Error) -> bool {
    use ureq_proto::Error as Proto;
    match error {
        // httparse's words for a header line it refuses; its other errors are about the status line.
        Proto::HttpParseFail(what) => {
            what == "invalid header name" || what == "invalid header value"
        }
        Proto::BadHeader(_)
        | Proto::BadContentLengthHeader
        | Proto::TooManyContentLengthHeaders
        | Proto::ConflictingBodyHeaders
        | Proto::HeadersWith100 => true,
        _ => false,
    }
}

/// One request's outcome: a response, or the error that stood in for one; and how long the
/// attempt took, so that retries after it keep its export's deadline.
#[pyclass(frozen, name = "HttpOutcome", module = "spanbatch._core")]
pub struct PyHttpOutcome {
    outcome: Outcome,
    #[pyo3(get)]
    seconds: f64,
}

impl PyHttpOutcome {
    pub fn new(outcome: Outcome, took: Duration) -> Self {
        Self {
            outcome,
            seconds: took.as_secs_f64(),
        }
    }
}

#[pymethods]
impl PyHttpOutcome {
    /// The response's status code; None when there was no response.
    #[getter]
    fn status(&self) -> Option<u16> {
        match self.outcome {
            Outcome::Response { status, .. } => Some(status),
            _ => None,
        }
    }

    #[getter]
    fn reason(&self) -> Option<&'static str> {
        match self.outcome {
            Outcome::Response { reason, .. } => reason,
            _ => None,
        }
    }

    /// The response's headers in the order received, a repeated one once per value.
    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        match &self.outcome {
            Outcome::Response { headers, .. } => headers.clone(),
            _ => Vec::new(),
        }
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        match &self.outcome {
            Outcome::Response { body, .. } => PyBytes::new(py, body),
            _ => PyBytes::new(py, b""),
        }
    }

    /// A new exception saying why there is no response, or None when there is one:
    /// `TransportConnectionError`, `TransportError`, `AnswerUnreadableError`, `RequestTooLargeError` or
    /// `NotSentError`.
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let error = match &self.outcome {
            Outcome::Response { .. } => return None,
            Outcome::Failed {
                connection: true,
                message,
            } => TransportConnectionError::new_err(message.clone()),
            Outcome::Failed {
                connection: false,
                message,
            } => TransportError::new_err(message.clone()),
            Outcome::AnswerUnreadable(message) => AnswerUnreadableError::new_err(message.clone()),
            Outcome::TooLarge(size) => RequestTooLargeError::new_err(format!(
                "Serialized span request size {size} bytes exceeds max_request_size."
            )),
            Outcome::NotSent => {
                NotSentError::new_err(
                    "not sent: an earlier request to the same endpoint failed, or its export's deadline passed",
                )
            }
        };
        Some(error.into_value(py).into_any())
    }

    fn __repr__(&self) -> String {
        let what = match &self.outcome {
            Outcome::Response { status, .. } => format!("status={status}"),
            Outcome::Failed {
                connection: true,
                message,
            } => format!("connection_error={message:?}"),
            Outcome::Failed { message, .. } => format!("error={message:?}"),
            Outcome::AnswerUnreadable(message) => format!("unreadable_answer={message:?}"),
            Outcome::TooLarge(size) => format!("too_large={size}"),
            Outcome::NotSent => "not_sent=True".to_owned(),
        };
        format!("HttpOutcome({what}, seconds={})", self.seconds)
    }
}
