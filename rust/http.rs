//! `HttpSender`: plain-HTTP requests sent without the GIL, for the OTLP/HTTP exporter's transport.
//!
//! A Python HTTP client re-takes the GIL after every blocking socket call; behind a
//! busy application thread each re-take can wait a whole switch interval (5 ms).
//! Sending from Rust costs the exporter one re-take per call instead of one per
//! socket operation, and `send_all` sends several request bodies for one.

use crate::batching::millis;
use crate::http_cutoff::Cutoff;
use crate::http_early_answer;
use crate::http_outcome::{Outcome, PyHttpOutcome};
use crate::otlp::compress::Codec;
use crate::otlp::encoder::PyRequest;
use crate::send_progress::PySendProgress;
use crate::sync::locked;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::http::{Method, Request};
use ureq::Agent;

/// Longest response body kept: OTLP responses are tiny, an error page should not cost memory.
const RESPONSE_LIMIT: u64 = 1 << 20;

fn new_agent(cutoff: &Arc<Cutoff>) -> Agent {
    let config = Agent::config_builder()
        // Status codes are the caller's to judge (retryable or not), as with `requests`.
        .http_status_as_error(false)
        // `requests` is called with allow_redirects=False by the stock transport.
        .max_redirects(0)
        // Not ureq's reading of the proxy variables (HTTPS_PROXY for http:// too, CONNECT tunnels):
        // an endpoint `requests` would send through a proxy stays on `requests` (see `_http.py`).
        .proxy(None)
        .build();
    // An answer the server gives before it has read the whole body is read, as `requests` reads it.
    http_early_answer::agent(config, cutoff)
}

/// One request's settings, shared by every body of a `send_all`.
struct Call<'a> {
    method: &'a Method,
    url: &'a str,
    headers: &'a [(String, String)],
    timeout: Option<Duration>,
}

impl Call<'_> {
    fn send(&self, agent: &Agent, body: &[u8]) -> Outcome {
        match self.try_send(agent, body) {
            Ok(outcome) => outcome,
            Err(error) => Outcome::failed(&error),
        }
    }

    /// `send`, and how long it took.
    fn timed_send(&self, agent: &Agent, body: &[u8]) -> (Outcome, Duration) {
        let started = Instant::now();
        let outcome = self.send(agent, body);
        (outcome, started.elapsed())
    }

    fn try_send(&self, agent: &Agent, body: &[u8]) -> Result<Outcome, ureq::Error> {
        let mut request = Request::builder().method(self.method.clone()).uri(self.url);
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        let request = agent
            .configure_request(request.body(body)?)
            .timeout_global(self.timeout)
            .build();
        let response = agent.run(request)?;
        let status = response.status();
        let mut headers: Vec<(String, String)> = Vec::with_capacity(response.headers().len());
        for (name, value) in response.headers() {
            headers.push((
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
        // The status line decides: the server has the request and answered it. A body past the limit is cut (the
        // client reads none of it), and one that does not come whole, in time or at all, is what came of it: a
        // retry, or a spilled copy, would send the batch again (revD30: a 200 whose body ran past the timeout was
        // sent twice; a frozen process could not read to the end of a body closed by the server, ureq reading no
        // more once the time is spent, and counted a delivered batch failed).
        let mut body = Vec::new();
        let _ = response
            .into_body()
            .into_reader()
            .take(RESPONSE_LIMIT)
            .read_to_end(&mut body);
        Ok(Outcome::Response {
            status: status.as_u16(),
            reason: status.canonical_reason(),
            headers,
            body,
        })
    }
}

/// The user's timeout in seconds, bounded as every other wait is: ureq adds it to the clock,
/// which panics past `Instant`'s range (about 1e19 s), so anything over a year is a year.
fn timeout(seconds: Option<f64>) -> Option<Duration> {
    seconds.map(|s| millis(s * 1000.0))
}

fn method(name: &str) -> PyResult<Method> {
    Method::from_bytes(name.as_bytes())
        .map_err(|_| PyValueError::new_err(format!("invalid HTTP method: {name:?}")))
}

#[pyclass(frozen, name = "HttpSender", module = "spanbatch._core")]
pub struct PyHttpSender {
    /// Replaced on `close`: a fresh agent has no pooled connections, and can still send.
    agent: Mutex<Agent>,
    /// When requests end at the latest, once `end_sends_after` set it: every agent's connections read it.
    cutoff: Arc<Cutoff>,
}

#[pymethods]
impl PyHttpSender {
    #[new]
    fn new() -> Self {
        let cutoff = Arc::default();
        Self {
            agent: Mutex::new(new_agent(&cutoff)),
            cutoff,
        }
    }

    /// One request, detached.
    #[pyo3(signature = (method_name, url, headers, body, timeout_seconds=None))]
    fn send(
        &self,
        py: Python<'_>,
        method_name: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: PyBackedBytes,
        timeout_seconds: Option<f64>,
    ) -> PyResult<PyHttpOutcome> {
        let method = method(method_name)?;
        let call = Call {
            method: &method,
            url,
            headers: &headers,
            timeout: timeout(timeout_seconds),
        };
        let agent = locked(&self.agent).clone();
        let (outcome, took) = crate::handoff::detach(py, || call.timed_send(&agent, &body));
        Ok(PyHttpOutcome::new(outcome, took))
    }

    /// Serializes, compresses (`encoding`) and POSTs each request in turn, all in one
    /// detached stretch: each of its parts not accepted yet, in order, marking those the server
    /// accepts (2xx or 3xx, as the stock client counts success). A request's outcome is its last
    /// part's, or the first that failed (its later parts are then left for the caller).
    /// A part whose serialized size exceeds `max_request_size` (when positive) is not sent: its
    /// outcome's error is a `RequestTooLargeError`. `progress` is marked as each request ends.
    #[pyo3(signature = (url, headers, requests, encoding, max_request_size, timeout_seconds=None, progress=None))]
    #[allow(clippy::too_many_arguments)] // the Python call's arguments, one by one
    fn send_all(
        &self,
        py: Python<'_>,
        url: &str,
        headers: Vec<(String, String)>,
        requests: Vec<Py<PyRequest>>,
        encoding: &str,
        max_request_size: i64,
        timeout_seconds: Option<f64>,
        progress: Option<Py<PySendProgress>>,
    ) -> PyResult<Vec<PyHttpOutcome>> {
        let codec = Codec::parse(encoding)
            .ok_or_else(|| PyValueError::new_err(format!("unknown encoding {encoding:?}")))?;
        let call = Call {
            method: &Method::POST,
            url,
            headers: &headers,
            timeout: timeout(timeout_seconds),
        };
        let limit = usize::try_from(max_request_size).ok().filter(|&l| l > 0);
        let agent = locked(&self.agent).clone();
        let outcomes: Vec<(Outcome, Duration)> = crate::handoff::detach(py, || {
            let mut reached = true;
            let mut outcomes = Vec::with_capacity(requests.len());
            for request in &requests {
                // Each request's export starts here, with its serialization: its deadline counts from now.
                let started = Instant::now();
                let request = &request.get().0;
                let mut outcome = Outcome::NotSent;
                for index in request.pending() {
                    // One deadline for the request's parts, as the stock export of one request has.
                    let left = call.timeout.map(|t| t.saturating_sub(started.elapsed()));
                    let part = Call {
                        timeout: left,
                        ..call
                    };
                    let body = request.part_body(index);
                    outcome = match (limit, codec) {
                        (Some(limit), _) if body.len() > limit => Outcome::TooLarge(body.len()),
                        // The server could not be reached: the caller retries each request on its own.
                        _ if !reached => Outcome::NotSent,
                        // Past the deadline: the caller's client, given no time left, times it out as stock's
                        // does; not a sign the server is unreachable for the other requests.
                        _ if left == Some(Duration::ZERO) => Outcome::NotSent,
                        (_, Codec::None) => part.send(&agent, &body),
                        (_, packing) => part.send(&agent, &packing.apply(&body)),
                    };
                    request.request.done_with(body);
                    reached &= !matches!(outcome, Outcome::Failed { .. });
                    if !outcome.is_success() {
                        break;
                    }
                    request.accept(index);
                }
                outcomes.push((outcome, started.elapsed()));
                if let Some(progress) = &progress {
                    progress.get().mark_now();
                }
            }
            outcomes
        });
        Ok(outcomes
            .into_iter()
            .map(|(outcome, took)| PyHttpOutcome::new(outcome, took))
            .collect())
    }

    /// Drops pooled connections; later requests open new ones.
    fn close(&self) {
        *locked(&self.agent) = new_agent(&self.cutoff);
    }

    /// From now on, every request ends `seconds` from now at the latest, those under way too: one still
    /// waiting then fails as timed out, and one begun later fails before it writes (`http_cutoff.rs`).
    /// None: no cut-off any more (a forked child that lives on, whose parent was exiting).
    #[pyo3(signature = (seconds))]
    fn end_sends_after(&self, seconds: Option<f64>) {
        match seconds {
            Some(seconds) => self.cutoff.set(Instant::now() + millis(seconds * 1000.0)),
            None => self.cutoff.lift(),
        }
    }

    #[allow(clippy::unused_self)] // a Python method: `self` is how Python calls it
    fn __repr__(&self) -> String {
        format!("HttpSender(response_limit={RESPONSE_LIMIT}, max_redirects=0)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    /// A listener on a free loopback port, and the OTLP traces URL on it.
    fn listen() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        (listener, url)
    }

    /// Serves one connection with `reply`, returning the request it read.
    fn serve_once(reply: &'static str) -> (String, thread::JoinHandle<Vec<u8>>) {
        let (listener, url) = listen();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and a body of known length (the tests send 5 bytes).
            while !request.ends_with(b"hello") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "client closed early");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(reply.as_bytes()).unwrap();
            request
        });
        (url, handle)
    }

    fn call<'a>(url: &'a str, headers: &'a [(String, String)]) -> Call<'a> {
        Call {
            method: &Method::POST,
            url,
            headers,
            timeout: Some(Duration::from_secs(5)),
        }
    }

    #[test]
    fn sends_headers_and_body_and_reads_the_response() {
        let (url, server) = serve_once(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\nno",
        );
        let headers = vec![("x-tenant".to_owned(), "a b".to_owned())];
        let outcome = call(&url, &headers).send(&new_agent(&Arc::default()), b"hello");
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(request.starts_with("POST /v1/traces HTTP/1.1\r\n"));
        assert!(request.to_ascii_lowercase().contains("x-tenant: a b\r\n"));
        let Outcome::Response {
            status,
            reason,
            headers,
            body,
        } = outcome
        else {
            panic!("expected a response");
        };
        assert_eq!(
            (status, reason, body.as_slice()),
            (503, Some("Service Unavailable"), &b"no"[..])
        );
        assert!(headers.contains(&("retry-after".to_owned(), "3".to_owned())));
    }

    #[test]
    fn an_answer_before_the_body_is_read_is_the_outcome() {
        // A server that answers 413 after the headers and closes with the body unread: the kernel resets
        // the connection under the body still being written, and the answer is read all the same.
        let (listener, url) = listen();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
        });
        let body = vec![b'x'; 8 << 20];
        let outcome = call(&url, &[]).send(&new_agent(&Arc::default()), &body);
        server.join().unwrap();
        assert!(
            matches!(outcome, Outcome::Response { status: 413, .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_server_that_closes_without_an_answer_is_a_connection_error() {
        // The body refused as above, but no answer to read: retried as before, as `requests` retries it.
        let (listener, url) = listen();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).unwrap();
        });
        let body = vec![b'x'; 8 << 20];
        let outcome = call(&url, &[]).send(&new_agent(&Arc::default()), &body);
        server.join().unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Failed {
                    connection: true,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_refused_connection_is_a_connection_error() {
        // Bind then drop: the port is very likely closed for the moment the test needs.
        let url = listen().1;
        let outcome = call(&url, &[]).send(&new_agent(&Arc::default()), b"hello");
        assert!(matches!(
            outcome,
            Outcome::Failed {
                connection: true,
                ..
            }
        ));
    }

    /// A server that reads one request's head and body (the tests send "hello") and never answers, until
    /// the client goes away; returns what it read.
    fn never_answer() -> (String, thread::JoinHandle<Vec<u8>>) {
        let (listener, url) = listen();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return request,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
        });
        (url, handle)
    }

    fn is_cut_short(outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Failed { connection: true, message } if message.contains("cut short"))
    }

    #[test]
    fn a_cutoff_set_while_a_request_waits_for_its_answer_ends_it() {
        // The request's own timeout (5 s) is far off: the cut-off, set once the request is under way, ends it.
        let (url, server) = never_answer();
        let cutoff = Arc::new(Cutoff::default());
        let agent = new_agent(&cutoff);
        let setter = {
            let cutoff = Arc::clone(&cutoff);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(300));
                cutoff.set(Instant::now());
            })
        };
        let outcome = call(&url, &[]).send(&agent, b"hello");
        setter.join().unwrap();
        drop(agent); // closes the connection: the server's read ends
        assert!(is_cut_short(&outcome), "{outcome:?}");
        assert!(
            server.join().unwrap().ends_with(b"hello"),
            "the request was sent whole"
        );
    }

    #[test]
    fn a_cutoff_set_while_a_large_request_is_written_to_a_frozen_server_ends_it() {
        // A frozen server: the kernel takes the connection, nobody reads. A body larger than the socket buffers
        // waits in its write, begun long before the cut-off; the request's own timeout (5 s) is far off.
        let (listener, url) = listen();
        let cutoff = Arc::new(Cutoff::default());
        let agent = new_agent(&cutoff);
        let setter = {
            let cutoff = Arc::clone(&cutoff);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(500));
                cutoff.set(Instant::now());
            })
        };
        let body = vec![b'x'; 32 << 20];
        let (outcome, took) = call(&url, &[]).timed_send(&agent, &body);
        setter.join().unwrap();
        drop(listener);
        assert!(is_cut_short(&outcome), "{outcome:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn a_large_request_to_a_server_slow_to_read_goes_on_where_each_write_slice_stopped() {
        // The server reads nothing for 350 ms: the writes under way time out slice after slice, part-way through
        // the body; each next slice must send the rest, neither a byte twice nor one left out.
        let (listener, url) = listen();
        let body: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
        let expected = body.clone();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            thread::sleep(Duration::from_millis(350));
            let mut received = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            let head_end = loop {
                let n = stream.read(&mut buf).unwrap();
                received.extend_from_slice(&buf[..n]);
                if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
            };
            while received.len() < head_end + expected.len() {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "client closed early");
                received.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            received[head_end..] == expected[..]
        });
        let outcome = call(&url, &[]).send(&new_agent(&Arc::default()), &body);
        assert!(
            server.join().unwrap(),
            "the body arrived whole and in order"
        );
        assert!(
            matches!(outcome, Outcome::Response { status: 200, .. }),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_request_begun_past_the_cutoff_writes_nothing() {
        let (url, server) = never_answer();
        let cutoff = Arc::new(Cutoff::default());
        cutoff.set(Instant::now());
        let agent = new_agent(&cutoff);
        let outcome = call(&url, &[]).send(&agent, b"hello");
        drop(agent);
        assert!(is_cut_short(&outcome), "{outcome:?}");
        assert_eq!(server.join().unwrap(), b"");
    }

    #[test]
    fn without_a_cutoff_a_request_waits_out_its_own_timeout() {
        // The reads are sliced: the slices add up to the request's timeout, which ends it as before.
        let (url, server) = never_answer();
        let agent = new_agent(&Arc::default());
        let headers = [];
        let call = Call {
            timeout: Some(Duration::from_millis(350)),
            ..call(&url, &headers)
        };
        let (outcome, took) = call.timed_send(&agent, b"hello");
        drop(agent);
        server.join().unwrap();
        assert!(
            matches!(&outcome, Outcome::Failed { connection: true, message } if message.contains("timeout")),
            "{outcome:?}"
        );
        assert!(took >= Duration::from_millis(350), "{took:?}");
    }

    #[test]
    fn a_bad_url_is_not_a_connection_error() {
        let outcome = call("not a url", &[]).send(&new_agent(&Arc::default()), b"hello");
        assert!(matches!(
            outcome,
            Outcome::Failed {
                connection: false,
                ..
            }
        ));
    }
}
