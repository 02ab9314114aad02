//! Dialers: where a byte stream to the server comes from.
//!
//! [`HttpConnector`](super::http::HttpConnector) speaks HTTP over whatever a
//! [`Dialer`] yields, so the same client runs over tokio TCP ([`TcpDialer`])
//! for real and over turmoil's simulated TCP (the dialer in `mcp-sim`).

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

/// Opens byte streams to a host and port.
pub trait Dialer: Send + Sync + 'static {
    /// The stream type.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Opens a stream to `host:port`. The caller bounds it with a timeout.
    fn dial(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Real TCP through tokio.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpDialer;

impl Dialer for TcpDialer {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, host: &str, port: u16) -> io::Result<tokio::net::TcpStream> {
        let stream = tokio::net::TcpStream::connect((host, port)).await?;
        // Requests are small and latency-bound: do not wait to coalesce.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}
