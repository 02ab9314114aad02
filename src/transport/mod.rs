//! The network seam: a [`Connector`] opens a [`Connection`], which carries
//! one MCP session (initialize, the initialized notification, operations,
//! close).
//!
//! The manager only ever talks to these traits. The real implementation
//! (Streamable HTTP over a dialer) and the simulated one plug in here, and so
//! does [`scripted::ScriptedConnector`], the in-memory test double.

pub mod dialer;
pub mod http;
pub mod scripted;

pub use dialer::{Dialer, TcpDialer};
pub use http::{HttpConfig, HttpConnection, HttpConnector};

use std::future::Future;

use serde::Serialize;
use serde_json::Value;

/// Opens transport connections to one MCP server.
pub trait Connector: Send + Sync + 'static {
    /// The connection type.
    type Connection: Connection;

    /// Opens a connection. Must end in bounded time (a dead host is an
    /// error, not a hang).
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, TransportError>> + Send;
}

/// One MCP session's transport. Methods take `&self` so that the manager can
/// close a session while a VU holds it.
pub trait Connection: Send + Sync + 'static {
    /// Sends `initialize`; on success the server has created the session.
    fn initialize(
        &self,
        params: &InitializeParams,
    ) -> impl Future<Output = Result<Initialized, TransportError>> + Send;

    /// Sends `notifications/initialized`.
    fn notify_initialized(&self) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Runs one operation and returns its JSON-RPC `result`.
    fn request(&self, op: &Operation)
        -> impl Future<Output = Result<Value, TransportError>> + Send;

    /// Ends the session on the server (HTTP DELETE for Streamable HTTP).
    /// Must end in bounded time.
    fn close(&self) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// What the client sends in `initialize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InitializeParams {
    /// The protocol revision asked for.
    pub protocol_version: String,
    /// `clientInfo.name`.
    pub client_name: String,
    /// `clientInfo.version`.
    pub client_version: String,
}

/// What the server answered to `initialize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Initialized {
    /// The protocol revision the server chose.
    pub protocol_version: String,
    /// The server's `Mcp-Session-Id`, or `None` for a stateless server.
    pub session_id: Option<String>,
}

/// An MCP operation a VU runs on a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "method")]
pub enum Operation {
    /// `ping`.
    #[serde(rename = "ping")]
    Ping,
    /// `tools/list`, optionally from a pagination cursor.
    #[serde(rename = "tools/list")]
    ToolsList {
        /// Pagination cursor.
        cursor: Option<String>,
    },
    /// `tools/call`.
    #[serde(rename = "tools/call")]
    ToolsCall {
        /// Tool name.
        name: String,
        /// Tool arguments (a JSON object).
        arguments: Value,
    },
    /// `resources/list`.
    #[serde(rename = "resources/list")]
    ResourcesList {
        /// Pagination cursor.
        cursor: Option<String>,
    },
    /// `resources/read`.
    #[serde(rename = "resources/read")]
    ResourcesRead {
        /// Resource URI.
        uri: String,
    },
    /// `prompts/list`.
    #[serde(rename = "prompts/list")]
    PromptsList {
        /// Pagination cursor.
        cursor: Option<String>,
    },
    /// `prompts/get`.
    #[serde(rename = "prompts/get")]
    PromptsGet {
        /// Prompt name.
        name: String,
        /// Prompt arguments (a JSON object).
        arguments: Value,
    },
}

impl Operation {
    /// The JSON-RPC method name.
    pub fn method(&self) -> &'static str {
        match self {
            Operation::Ping => "ping",
            Operation::ToolsList { .. } => "tools/list",
            Operation::ToolsCall { .. } => "tools/call",
            Operation::ResourcesList { .. } => "resources/list",
            Operation::ResourcesRead { .. } => "resources/read",
            Operation::PromptsList { .. } => "prompts/list",
            Operation::PromptsGet { .. } => "prompts/get",
        }
    }
}

/// A transport failure. Distinct kinds, so the manager (and a load test's
/// report) can tell a dead session from a dead server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection could not be opened.
    #[error("connect: {0}")]
    Connect(String),
    /// No answer within the configured time.
    #[error("timed out after {after_ms}ms waiting for {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The bound that ran out.
        after_ms: u64,
    },
    /// The server does not know the session (HTTP 404 on a request that
    /// carried a session id).
    #[error("session not found on the server")]
    SessionNotFound,
    /// HTTP 400 (other than a recognised "no valid session" answer).
    #[error("HTTP 400 bad request: {message}")]
    BadRequest {
        /// The JSON-RPC error message of the body, if it had one.
        message: String,
    },
    /// HTTP 401 or 403.
    #[error("HTTP {status}: not authorized")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
    /// HTTP 5xx.
    #[error("HTTP {status}: server error")]
    ServerError {
        /// The status code.
        status: u16,
    },
    /// Any other unexpected HTTP status.
    #[error("HTTP status {status}")]
    Http {
        /// The status code.
        status: u16,
    },
    /// A redirect; they are not followed.
    #[error("HTTP {status} redirect to {} (redirects are not followed)", location.as_deref().unwrap_or("?"))]
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// A JSON-RPC error object.
    #[error("JSON-RPC error {code}: {message}")]
    JsonRpc {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// A `tools/call` result with `isError: true`.
    #[error("tool reported an error: {message}")]
    ToolError {
        /// The text content of the result.
        message: String,
    },
    /// The connection closed or reset before the answer was complete.
    #[error("connection closed: {0}")]
    Closed(String),
    /// A response body that is neither JSON nor SSE.
    #[error("unexpected content type {}", got.as_deref().unwrap_or("(none)"))]
    ContentType {
        /// The `Content-Type` header, if any.
        got: Option<String>,
    },
    /// A response body above the configured cap.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap.
        limit: usize,
    },
    /// A body (or SSE event data) that is not valid JSON-RPC.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// An SSE stream that cannot be decoded.
    #[error("malformed SSE: {0}")]
    MalformedSse(String),
    /// An `Mcp-Session-Id` that is not 1 to 128 visible ASCII characters.
    #[error("invalid Mcp-Session-Id {got:?}")]
    InvalidSessionId {
        /// The header value (lossily decoded).
        got: String,
    },
    /// A server URL this client cannot use.
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// Anything else that breaks the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}
