//! A TCP transport for `ureq` that still reads the server's answer after the server stopped taking the request.
//!
//! A backend or proxy may answer a large request (`413 Payload Too Large`) as soon as it has read the
//! headers, and close with the body unread. Writing the rest of the body then fails (reset, broken pipe)
//! while the answer waits in the socket. `urllib3`, under the stock OTLP client, goes on to read that
//! answer; `ureq` alone reports the write error, which the OTLP client takes for a connection error and
//! answers by sending the whole body again. Here a write refused by the peer ends the sending: the rest
//! of the request is discarded, and `ureq` reads the response, or fails reading it when none came (a
//! connection error, as before).

use crate::http_cutoff::Cutoff;
use crate::http_tcp::CutoffTcpConnector;
use std::io::ErrorKind;
use std::sync::Arc;
use ureq::config::Config;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};
use ureq::{Agent, Error};

/// An agent on plain TCP (no proxy, no TLS: see `_http.py`) whose connections read early answers, and end
/// at `cutoff` once it is set (`http_tcp.rs`).
pub fn agent(config: Config, cutoff: &Arc<Cutoff>) -> Agent {
    Agent::with_parts(
        config,
        CutoffTcpConnector(Arc::clone(cutoff)).chain(ReadsEarlyAnswers),
        DefaultResolver::default(),
    )
}

/// Wraps each connection the chain opened in an `EarlyAnswer`.
#[derive(Debug)]
struct ReadsEarlyAnswers;

impl<In: Transport> Connector<In> for ReadsEarlyAnswers {
    type Out = EarlyAnswer<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        Ok(chained.map(|inner| EarlyAnswer {
            inner,
            refused: false,
        }))
    }
}

/// A connection that, once the peer refused a write, discards the rest of the request.
#[derive(Debug)]
struct EarlyAnswer<T> {
    inner: T,
    /// The peer closed its side for our writes: nothing more is sent, and the connection is not reused.
    refused: bool,
}

/// A write error that says the peer will read no more (as `urllib3` counts them), not that it cannot be reached.
fn refused_by_peer(error: &Error) -> bool {
    matches!(error, Error::Io(io) if matches!(
        io.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    ))
}

impl<T: Transport> Transport for EarlyAnswer<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        if self.refused {
            return Ok(());
        }
        match self.inner.transmit_output(amount, timeout) {
            Err(error) if refused_by_peer(&error) => {
                self.refused = true;
                Ok(())
            }
            other => other,
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        !self.refused && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
