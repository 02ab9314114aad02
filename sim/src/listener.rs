//! Where the simulated server's connections come from.
//!
//! The server is written once and runs in two worlds: inside a turmoil host
//! (simulated TCP, simulated time, every byte on a seeded network) and on
//! real loopback TCP (`mcp-sim serve`, where real clients and the official
//! conformance suite can reach it). The only thing that differs between the
//! two is how a connection is accepted, so that is all this trait abstracts:
//! everything after `accept` is the same hyper connection over a byte stream,
//! and how a peer's address is named: in a simulation every address belongs
//! to a named host (the server logs which worker a request came from), on
//! real TCP it is just an address.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// Accepts byte-stream connections for the server.
pub trait Listener: Send + 'static {
    /// The stream of one accepted connection.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Waits for the next connection and returns it with the peer's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The name of the host at `peer`, where the network names its hosts
    /// (a turmoil simulation); `None` by default (real TCP: an address is
    /// not a name worth logging, and would differ from run to run).
    fn peer_name(&self, peer: SocketAddr) -> Option<String> {
        let _ = peer;
        None
    }
}

/// Real TCP: `mcp-sim serve` and the loopback tests.
impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // SSE events and chunk boundaries go out as they are written, not
        // coalesced by Nagle's algorithm: a client must see the split.
        stream.set_nodelay(true)?;
        Ok((stream, peer))
    }
}

/// Simulated TCP inside a turmoil host.
impl Listener for turmoil::net::TcpListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&self) -> io::Result<(turmoil::net::TcpStream, SocketAddr)> {
        turmoil::net::TcpListener::accept(self).await
    }

    /// The simulated host's name (turmoil's reverse DNS).
    fn peer_name(&self, peer: SocketAddr) -> Option<String> {
        turmoil::reverse_lookup(peer.ip())
    }
}
