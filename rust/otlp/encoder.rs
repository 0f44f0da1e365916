//! `SpanEncoder`: `ReadableSpan`s in, a serialized `ExportTraceServiceRequest` out.
//!
//! Each span is written to protobuf bytes as it is read, while the interpreter is held;
//! joining a request's parts into one body runs detached, so other Python threads go
//! on meanwhile. With a byte limit, a request over it is cut into parts that each fit
//! (see `request::Request::split`); the sender sends each part once.

use super::builder::{Encoder, Read, RequestBuilder};
use super::compress::Codec;
use super::spans::SpanFields;
use super::types::Types;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::PyClass;
use pyo3::{PyTraverseError, PyVisit};

/// What `SpanEncoder` and `LogEncoder` share, Python side: the encoder state and its counters.
#[pyclass(frozen, subclass, name = "Encoder", module = "spanbatch._core")]
#[derive(Default)]
pub struct PyEncoder {
    pub(crate) encoder: Encoder,
}

#[pymethods]
impl PyEncoder {
    /// Attribute values left out so far because OTLP cannot carry them.
    #[getter]
    fn skipped_values(&self) -> u64 {
        self.encoder.skipped_values()
    }

    /// Why the most recent item left out could not be read.
    #[getter]
    fn last_skip_reason(&self) -> Option<String> {
        self.encoder.last_skip_reason()
    }

    /// No request it makes is larger (serialized, before compression); `None`: no limit.
    #[getter]
    fn max_request_bytes(&self) -> Option<usize> {
        self.encoder.max_request_bytes()
    }

    /// The size of the largest item left out for its size in the latest request that had any.
    #[getter]
    fn last_too_large_bytes(&self) -> u64 {
        self.encoder.last_too_large_bytes()
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.encoder.traverse(&visit)
    }

    fn __clear__(&self) {
        self.encoder.clear();
    }
}

/// A new `SpanEncoder` or `LogEncoder`'s base, with its byte limit.
pub(crate) fn base(max_request_bytes: Option<usize>) -> PyResult<PyClassInitializer<PyEncoder>> {
    Ok(PyClassInitializer::from(PyEncoder {
        encoder: Encoder::limited(max_request_bytes)?,
    }))
}

/// The encoder state of a `SpanEncoder` or `LogEncoder`.
pub(crate) fn state<'a, T: PyClass<BaseType = PyEncoder>>(
    encoder: &'a Bound<'_, T>,
) -> &'a Encoder {
    &encoder.as_super().get().encoder
}

/// Reads `span` into `builder`; a span that cannot be read is left out and counted.
pub(crate) fn add_span(
    encoder: &Encoder,
    builder: &mut RequestBuilder,
    span: &Bound<'_, PyAny>,
    types: &Types,
) -> PyResult<()> {
    encoder.add(span.py(), builder, types, |scratch, pass| {
        let span = SpanFields::of(span, types)?;
        let placed = (span.resource()?, span.scope()?);
        span.write(scratch, types, pass)?;
        Ok(placed)
    })
}

/// What `SpanRequest` and `LogRequest` share, Python side: items read into a request,
/// serialized only when sent, in one part or in several that each fit the encoder's byte
/// limit; the parts the backend accepted are remembered, so a retry sends only the others.
#[pyclass(frozen, subclass, name = "Request", module = "spanbatch._core")]
pub struct PyRequest(pub(crate) Read);

#[pymethods]
impl PyRequest {
    /// The serialized request, as its encoder's `encode` returns it.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.0.to_bytes(py)
    }

    /// The items it was read from, those left out included: what its export settles.
    fn __len__(&self) -> usize {
        self.0.taken
    }

    /// The items it was read from that are not in it: unreadable, or too large.
    #[getter]
    fn left_out(&self) -> u64 {
        self.0.left_out.total()
    }

    /// The items it was read from that each alone were over the byte limit, and are not in it.
    #[getter]
    fn too_large(&self) -> u64 {
        self.0.left_out.too_large
    }

    /// How many requests it is sent as: 1, or more when it was cut to the byte limit
    /// (0 when every item in it was too large or unreadable).
    #[getter]
    fn parts(&self) -> usize {
        self.0.parts()
    }

    /// Part `index` serialized: a whole export request of its own.
    fn part_to_bytes<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyBytes>> {
        let index = self.0.checked(index)?;
        let body = crate::exit_gate::detach(py, || self.0.part_body(index));
        let bytes = PyBytes::new(py, &body);
        self.0.request.done_with(body);
        Ok(bytes)
    }

    /// The items (spans or log records) in part `index`.
    fn part_items(&self, index: usize) -> PyResult<usize> {
        Ok(self.0.part_items(self.0.checked(index)?))
    }

    /// The parts the backend has not accepted yet, in order: what an export (or its retry) sends.
    fn pending_parts(&self) -> Vec<usize> {
        self.0.pending()
    }

    /// Records that the backend accepted part `index`: it is not sent again.
    fn accept(&self, index: usize) -> PyResult<()> {
        self.0.accept(self.0.checked(index)?);
        Ok(())
    }
}

impl PyRequest {
    /// The `__repr__` of a request of `items` (its class's word for them).
    pub(crate) fn describe(slf: &Bound<'_, PyAny>, items: &str) -> PyResult<String> {
        let read = &slf.cast::<Self>()?.get().0;
        Ok(format!(
            "{}({items}={}, taken={}, parts={}, pending={})",
            slf.get_type().name()?,
            read.items(),
            read.taken,
            read.parts(),
            read.pending().len()
        ))
    }
}

/// Declares a signal's encoder class and the request class its `read` returns: the same
/// methods for every signal, under the signal's class names, item words and docs.
///
/// The arguments: the two classes (Rust and Python names) and the OTLP message the request
/// is; `encode`'s argument (its word for the items), what the items are called in the docs
/// and the function that adds one; the two counters, and why an item is skipped.
macro_rules! encoder_classes {
    (
        $encoder:ident = $encoder_name:literal,
        $request:ident = $request_name:literal of $message:literal;
        $arg:ident: $items:literal, one $one:literal, added by $add:path,
        as stock $stock:literal;
        $skipped:ident if it $unreadable:literal (could not be $verb:literal), $too_large:ident;
    ) => {
        #[::pyo3::pyclass(
            frozen,
            extends = $crate::otlp::encoder::PyEncoder,
            name = $encoder_name,
            module = "spanbatch._core"
        )]
        pub struct $encoder;

        impl $encoder {
            fn read_items(
                slf: &::pyo3::Bound<'_, Self>,
                items: &::pyo3::Bound<'_, ::pyo3::PyAny>,
            ) -> ::pyo3::PyResult<$crate::otlp::builder::Read> {
                let encoder = $crate::otlp::encoder::state(slf);
                encoder.read(items, |b, item, types| $add(encoder, b, item, types))
            }
        }

        #[::pyo3::pymethods]
        impl $encoder {
            #[doc = concat!(
                "`max_request_bytes`: no request it makes is larger ",
                "(serialized, before compression);\n",
                "a batch over it is cut into parts, and a ", $one, " over it alone is left out."
            )]
            #[new]
            #[pyo3(signature = (max_request_bytes = None))]
            fn new(
                max_request_bytes: Option<usize>,
            ) -> ::pyo3::PyResult<::pyo3::PyClassInitializer<Self>> {
                Ok($crate::otlp::encoder::base(max_request_bytes)?.add_subclass(Self))
            }

            #[doc = concat!(
                "Serializes `", stringify!($arg), "` as the stock `", $stock, "(", stringify!($arg),
                ").SerializeToString()` would.\n\n",
                "Attribute values OTLP cannot carry are left out (as stock does) and counted in\n",
                "`skipped_values`; a ", $one, " that ", $unreadable, " is left out and counted in\n`",
                stringify!($skipped), "`, where the stock encoder would fail the whole batch."
            )]
            fn encode<'py>(
                slf: &::pyo3::Bound<'py, Self>,
                $arg: &::pyo3::Bound<'py, ::pyo3::PyAny>,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::types::PyBytes>> {
                Ok(Self::read_items(slf, $arg)?.to_bytes(slf.py()))
            }

            #[doc = concat!(
                "Reads `", stringify!($arg),
                "` (counting what `encode` would leave out) into a request not yet\n",
                "serialized, for a sender to write and send later without the GIL."
            )]
            fn read<'py>(
                slf: &::pyo3::Bound<'py, Self>,
                $arg: &::pyo3::Bound<'py, ::pyo3::PyAny>,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, $request>> {
                $request::wrap(slf.py(), Self::read_items(slf, $arg)?)
            }

            #[doc = concat!($items, " left out so far because they could not be ", $verb, ".")]
            #[getter]
            fn $skipped(slf: &::pyo3::Bound<'_, Self>) -> u64 {
                $crate::otlp::encoder::state(slf).skipped_items()
            }

            #[doc = concat!(
                $items, " left out so far because each alone was over `max_request_bytes`."
            )]
            #[getter]
            fn $too_large(slf: &::pyo3::Bound<'_, Self>) -> u64 {
                $crate::otlp::encoder::state(slf).too_large_items()
            }

            fn __repr__(slf: &::pyo3::Bound<'_, Self>) -> String {
                $crate::otlp::encoder::state(slf).describe($encoder_name, stringify!($arg))
            }
        }

        #[doc = concat!($items, " read into an `", $message, "`.")]
        #[::pyo3::pyclass(
            frozen,
            extends = $crate::otlp::encoder::PyRequest,
            name = $request_name,
            module = "spanbatch._core"
        )]
        pub struct $request;

        impl $request {
            pub(crate) fn wrap(
                py: ::pyo3::Python<'_>,
                read: $crate::otlp::builder::Read,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'_, Self>> {
                ::pyo3::Bound::new(
                    py,
                    ::pyo3::PyClassInitializer::from($crate::otlp::encoder::PyRequest(read))
                        .add_subclass(Self),
                )
            }
        }

        #[::pyo3::pymethods]
        impl $request {
            fn __repr__(slf: &::pyo3::Bound<'_, Self>) -> ::pyo3::PyResult<String> {
                $crate::otlp::encoder::PyRequest::describe(slf.as_any(), stringify!($arg))
            }
        }
    };
}
pub(crate) use encoder_classes;

encoder_classes! {
    PySpanEncoder = "SpanEncoder", PySpanRequest = "SpanRequest" of "ExportTraceServiceRequest";
    spans: "Spans", one "span", added by add_span, as stock "encode_spans";
    skipped_spans if it "cannot be read at all" (could not be "read"), too_large_spans;
}

/// Compresses an OTLP/HTTP request body, detached: `encoding` is `"gzip"` or `"deflate"`.
#[pyfunction]
pub fn compress<'py>(
    py: Python<'py>,
    data: &[u8],
    encoding: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let codec = Codec::parse(encoding).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown content encoding {encoding:?}; expected 'gzip', 'deflate' or 'none'."
        ))
    })?;
    let packed = crate::exit_gate::detach(py, || codec.apply(data));
    Ok(PyBytes::new(py, &packed))
}
