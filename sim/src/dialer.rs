//! The simulation side of the network seam: a [`Dialer`] over turmoil's
//! simulated TCP, so the library's real `HttpConnector` runs unchanged inside
//! a turmoil host.

use std::io;

use mcp_session::transport::Dialer;

/// Dials turmoil's simulated TCP (only usable inside a turmoil host or
/// client).
#[derive(Clone, Copy, Debug, Default)]
pub struct TurmoilDialer;

impl Dialer for TurmoilDialer {
    type Stream = turmoil::net::TcpStream;

    async fn dial(&self, host: &str, port: u16) -> io::Result<turmoil::net::TcpStream> {
        turmoil::net::TcpStream::connect((host, port)).await
    }
}
