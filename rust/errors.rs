//! The exceptions Python code catches, made here so that both languages name one type.

use pyo3::create_exception;
use pyo3::exceptions::{PyConnectionError, PyOSError};

create_exception!(
    spanbatch._core,
    TransportError,
    PyOSError,
    "A request that failed before any response for a reason retrying cannot fix (a bad URL or header)."
);
create_exception!(
    spanbatch._core,
    TransportConnectionError,
    PyConnectionError,
    "The server could not be reached, the request timed out or the connection broke: worth retrying."
);
create_exception!(
    spanbatch._core,
    NotSentError,
    PyConnectionError,
    "Not sent, because an earlier request of the same `send_all` could not reach the server."
);
create_exception!(
    spanbatch._core,
    RequestTooLargeError,
    TransportError,
    "Not sent: the serialized request is larger than `max_request_size`."
);
create_exception!(
    spanbatch._core,
    AnswerUnreadableError,
    TransportError,
    "The server answered with headers that could not be read: it has the request, which must not be sent again."
);
