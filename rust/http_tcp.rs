//! The plain TCP connections of an `HttpSender`, whose every wait, read or write, ends at its cut-off.
//!
//! ureq's own TCP transport writes with `write_all` under a timeout fixed when the write begins: a write cut
//! short there has sent an unknown part of its bytes and cannot go on, so a cut-off set while a large request
//! waits in its write (a frozen backend: the kernel took the connection, nobody reads) could not end it. Here
//! each wait is a slice of at most `LOOK_EVERY` (a socket timeout), and a slice that times out has either
//! taken nothing or says how much it sent: the next slice goes on from there, after a look at the cut-off.
//! No other thread, lock or registry: nothing a fork could leave held. Without a cut-off a wait ends at its
//! own timeout as before; a fast write is one `write` as with `write_all`, and the socket's timeout is set
//! once per connection (at `LOOK_EVERY`), not per write as ureq's remaining-time timeout was.

use crate::http_cutoff::{cut_short, Cutoff, LOOK_EVERY};
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};
use ureq::{Error, Timeout};

/// Opens `CutoffTcp` connections reading the sender's `Cutoff`: the first of the agent's connector chain.
#[derive(Debug)]
pub struct CutoffTcpConnector(pub Arc<Cutoff>);

impl Connector<()> for CutoffTcpConnector {
    type Out = CutoffTcp;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<Self::Out>, Error> {
        let config = details.config;
        let stream = open(details)?;
        if config.no_delay() {
            stream.set_nodelay(true)?;
        }
        Ok(Some(CutoffTcp {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            cutoff: Arc::clone(&self.0),
            read_slice: None,
            write_slice: None,
        }))
    }
}

/// Connects to the resolved addresses in turn until one takes the connection. Each try gets an even share of
/// the connect time still left among the addresses not tried yet, so an address that never answers leaves the
/// others time (a name with an IPv6 and an IPv4 address, only one of them served). The connect is not cut: a
/// backend that takes the connection is what the cut-off is for, and the connect's own timeout bounds it.
fn open(details: &ConnectionDetails) -> Result<TcpStream, Error> {
    let ends = details
        .timeout
        .not_zero()
        .and_then(|after| Instant::now().checked_add(*after));
    let mut failed = None;
    for (tried, addr) in details.addrs.iter().enumerate() {
        let untried = u32::try_from(details.addrs.len() - tried).unwrap_or(u32::MAX);
        let attempt = match ends {
            None => TcpStream::connect(addr),
            Some(ends) => match ends.saturating_duration_since(Instant::now()) / untried {
                Duration::ZERO => return Err(Error::Timeout(details.timeout.reason)),
                share => TcpStream::connect_timeout(addr, share),
            },
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(error) => failed = Some(error),
        }
    }
    Err(match failed {
        Some(error) if matches!(error.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            Error::Timeout(details.timeout.reason)
        }
        Some(error) => error.into(),
        None => Error::HostNotFound,
    })
}

/// A TCP connection whose reads and writes wait in slices, looking at the cut-off between them.
pub struct CutoffTcp {
    stream: TcpStream,
    buffers: LazyBuffers,
    cutoff: Arc<Cutoff>,
    /// The socket's read and write timeouts as last set: set again only when a slice differs.
    read_slice: Option<Duration>,
    write_slice: Option<Duration>,
}

impl fmt::Debug for CutoffTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CutoffTcp")
            .field("peer", &self.stream.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

/// A wait of `timeout` begun now: when it ends, None if never.
fn ends(timeout: NextTimeout) -> Option<Instant> {
    Instant::now().checked_add(*timeout.after)
}

/// The next slice of a wait.
enum Slice {
    /// Block at most this long.
    Wait(Duration),
    /// The wait's own time has passed: a read looks once more without blocking, then times out. A process frozen
    /// while it waited (AWS Lambda between invocations, SIGSTOP) wakes past its deadline with the answer already in
    /// the socket (a read under a timeout is not restarted after a stop): that answer was in time, from the
    /// backend's side, and the request was delivered (revA30: counted failed, and spilled and sent again).
    LastLook,
}

/// The next slice of a wait that `ends`; the cut-off's error once it has passed (the exit limit: no last look).
fn next_slice(ends: Option<Instant>, cutoff: &Cutoff) -> Result<Slice, Error> {
    let to_cutoff = cutoff.left();
    if to_cutoff == Some(Duration::ZERO) {
        return Err(cut_short());
    }
    let left = ends.map_or(LOOK_EVERY, |ends| {
        ends.saturating_duration_since(Instant::now())
    });
    if left.is_zero() {
        return Ok(Slice::LastLook);
    }
    Ok(Slice::Wait(
        left.min(LOOK_EVERY).min(to_cutoff.unwrap_or(LOOK_EVERY)),
    ))
}

/// Sets a socket timeout to `slice` unless it is already (a syscall saved on every slice but the last).
fn set_timeout(
    stream: &TcpStream,
    set: &mut Option<Duration>,
    slice: Duration,
    apply: fn(&TcpStream, Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if *set != Some(slice) {
        apply(stream, Some(slice))?;
        *set = Some(slice);
    }
    Ok(())
}

/// A read into `input` that does not block; nothing to take (`WouldBlock`) is the wait's timeout.
fn read_without_blocking(
    mut stream: &TcpStream,
    input: &mut [u8],
    reason: Timeout,
) -> Result<usize, Error> {
    stream.set_nonblocking(true)?;
    let read = stream.read(input);
    stream.set_nonblocking(false)?;
    match read {
        Ok(read) => Ok(read),
        Err(error) if slice_ended(&error) => Err(Error::Timeout(reason)),
        Err(error) => Err(error.into()),
    }
}

/// A slice that ended without its bytes, to be followed by the next: its timeout passed (`WouldBlock` on
/// Linux), or a signal came.
fn slice_ended(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

impl Transport for CutoffTcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    /// Writes the output in slices: a slice that times out returns what it sent (Linux's `send` under
    /// `SO_SNDTIMEO` counts what went out before the timeout), and the next goes on from there.
    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        let ends = ends(timeout);
        let mut sent = 0;
        while sent < amount {
            let Slice::Wait(slice) = next_slice(ends, &self.cutoff)? else {
                // No last look for a write: it could complete a request whose answer cannot be waited for any
                // more (the read after it is past the same deadline): delivered, counted failed, then sent again
                // (revE30: a 4.3 MB request frozen in its last part reached the backend twice).
                return Err(Error::Timeout(timeout.reason));
            };
            set_timeout(
                &self.stream,
                &mut self.write_slice,
                slice,
                TcpStream::set_write_timeout,
            )?;
            match (&self.stream).write(&self.buffers.output()[sent..amount]) {
                Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero).into()),
                Ok(written) => sent += written,
                Err(error) if slice_ended(&error) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Reads what came, waiting in slices: a read that times out has taken nothing from the socket.
    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        let ends = ends(timeout);
        loop {
            let slice = match next_slice(ends, &self.cutoff)? {
                Slice::Wait(slice) => slice,
                Slice::LastLook => {
                    let input = self.buffers.input_append_buf();
                    let read = read_without_blocking(&self.stream, input, timeout.reason)?;
                    self.buffers.input_appended(read);
                    return Ok(read > 0);
                }
            };
            set_timeout(
                &self.stream,
                &mut self.read_slice,
                slice,
                TcpStream::set_read_timeout,
            )?;
            match (&self.stream).read(self.buffers.input_append_buf()) {
                Ok(read) => {
                    self.buffers.input_appended(read);
                    return Ok(read > 0);
                }
                Err(error) if slice_ended(&error) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Whether a pooled connection can carry another request: nothing waits to be read on it, not even its end
    /// (a server that closed it). Looked at without blocking, and without taking anything from the socket.
    fn is_open(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let idle = matches!(self.stream.peek(&mut [0]), Err(error) if error.kind() == ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && idle
    }
}
