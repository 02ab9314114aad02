//! The simulation side of the network seam: a [`Dialer`] over turmoil's
//! simulated TCP, so the library's real `HttpConnector` runs unchanged inside
//! a turmoil host.
//!
//! # Phantom streams
//!
//! turmoil 0.7 registers a connecting socket in the host's TCP table before
//! the SYN-ACK comes, and removes it only when a `TcpStream` made from it is
//! dropped. A connect that is refused, or whose future is dropped before
//! the SYN-ACK (a connect timeout, a cancelled acquire), never makes one, so
//! its entry stays and `turmoil::established_tcp_stream_count` counts it
//! for the rest of the run. The dialer counts those connects
//! ([`TurmoilDialer::phantom_streams`]) so that the streams a host still
//! holds at the end can be told from turmoil's leftovers.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mcp_session::transport::Dialer;

/// Dials turmoil's simulated TCP (only usable inside a turmoil host or
/// client), counting connects that leave a phantom entry in turmoil's table.
#[derive(Clone, Debug, Default)]
pub struct TurmoilDialer {
    phantoms: Arc<AtomicUsize>,
}

impl TurmoilDialer {
    /// A dialer with its own phantom count.
    pub fn new() -> Self {
        TurmoilDialer::default()
    }

    /// How many connects through this dialer (and its clones) were refused
    /// or abandoned before the SYN-ACK: each left an entry turmoil counts as
    /// an established stream until the end of the run.
    pub fn phantom_streams(&self) -> usize {
        self.phantoms.load(Ordering::SeqCst)
    }
}

/// Counts one phantom when dropped while armed: the connect future was
/// dropped after turmoil registered its socket (which happens on the first
/// poll, the only time this guard exists).
struct Connecting<'a> {
    phantoms: &'a AtomicUsize,
    armed: bool,
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.phantoms.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Dialer for TurmoilDialer {
    type Stream = turmoil::net::TcpStream;

    async fn dial(&self, host: &str, port: u16) -> io::Result<turmoil::net::TcpStream> {
        let mut connecting = Connecting {
            phantoms: &self.phantoms,
            armed: true,
        };
        let result = turmoil::net::TcpStream::connect((host, port)).await;
        // A refusal also leaves the entry behind; any other error came
        // before the socket was registered.
        connecting.armed =
            matches!(&result, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused);
        result
    }
}
