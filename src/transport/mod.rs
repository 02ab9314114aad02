//! The network seam: a [`Connector`] opens a [`Connection`], which carries
//! one MCP session: in the legacy era (2025-11-25 and before) initialize,
//! the initialized notification, operations and close; in the stateless
//! era (2026-07-28) a client context — a negotiated version and one
//! keep-alive connection — whose every request carries its own envelope.
//!
//! The manager only ever talks to these traits. The real implementation
//! ([`HttpConnector`]: Streamable HTTP over a [`Dialer`]) and the simulated
//! one plug in here, and so does `scripted::ScriptedConnector`, the
//! in-memory test double (feature `test-util`).
//!
//! Every item here has one path, `transport::X`: the modules that define
//! them are private. The one submodule, `scripted`, is the test double,
//! kept apart so that one feature gate covers it.

mod cause;
mod dialer;
mod http;
mod result;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod scripted;

pub use cause::Cause;
pub use dialer::{Dialer, TcpDialer};
pub use http::{
    decode_header_value, HttpConfig, HttpConnection, HttpConnector, META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO, META_PROTOCOL_VERSION,
};
pub use result::{CallResult, Discovery, InputRequired, InputResponses, ResultType};

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
///
/// A new connection speaks the legacy era until [`Connection::use_modern`]
/// switches it to the stateless one; the manager decides which.
pub trait Connection: Send + Sync + 'static {
    /// Legacy era: sends `initialize`; on success the server has created
    /// the session.
    fn initialize(
        &self,
        params: &InitializeParams,
    ) -> impl Future<Output = Result<Initialized, TransportError>> + Send;

    /// Legacy era: sends `notifications/initialized`.
    fn notify_initialized(&self) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Switches this connection to the stateless era (`Some`): from now on
    /// every request carries `params._meta` and the routing headers for
    /// `params`, and nothing of the legacy era (no session id, `ping`, GET,
    /// DELETE) is sent. `None` switches back to the legacy era (after a
    /// probe found a legacy server). No I/O.
    fn use_modern(&self, params: Option<&ModernParams>);

    /// The modern revision the connection sends now (`None` in the legacy
    /// era). It changes when the server answers -32022 and the request is
    /// retried at another revision.
    fn modern_version(&self) -> Option<String>;

    /// Runs one operation and returns its result. `input` makes it the
    /// retry of an `input_required` answer (MRTR, modern era only).
    fn request(
        &self,
        op: &Operation,
        input: Option<&InputResponses>,
    ) -> impl Future<Output = Result<Answer, TransportError>> + Send;

    /// Ends the session on the server (HTTP DELETE for Streamable HTTP; in
    /// the stateless era there is nothing to end) and says what that did
    /// there. Must end in bounded time.
    fn close(&self) -> impl Future<Output = Result<CloseOutcome, TransportError>> + Send;

    /// The JSON-RPC id of the last request this connection put on the
    /// wire, answered or not (`initialize` too). A call of
    /// [`Connection::request`] first forgets it, so once one returns this
    /// names that call's request (after a -32022 retry: the retry's), or
    /// is `None` when it sent none (refused before sending, or no
    /// connection could be opened). Lets a caller match what it got with
    /// what the server answered for that id. The default, for transports
    /// without JSON-RPC ids: `None`.
    fn last_request_id(&self) -> Option<u64> {
        None
    }
}

/// What closing a session did on the server. A session is always closed on
/// the client's side; only some closes end something on the server, and a
/// report that says "closed" must not let a reader think the server was
/// told when it was not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseOutcome {
    /// The server confirmed the DELETE (2xx): the session is deleted there.
    Deleted,
    /// The server had already forgotten the session: it answered 404 to
    /// the DELETE, or an earlier request (then no DELETE is sent).
    AlreadyGone,
    /// The server does not let clients end sessions (405 to the DELETE):
    /// it ends them itself, when it will.
    NotAllowed,
    /// The server issued no session id (a stateless legacy server):
    /// nothing to delete, no DELETE sent.
    NoSessionId,
    /// A stateless-era client context: the era has no session to delete,
    /// no DELETE sent.
    Stateless,
}

impl CloseOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [CloseOutcome; 5] = [
        CloseOutcome::Deleted,
        CloseOutcome::AlreadyGone,
        CloseOutcome::NotAllowed,
        CloseOutcome::NoSessionId,
        CloseOutcome::Stateless,
    ];

    /// The outcome's name, as in the metrics' JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseOutcome::Deleted => "deleted",
            CloseOutcome::AlreadyGone => "already_gone",
            CloseOutcome::NotAllowed => "not_allowed",
            CloseOutcome::NoSessionId => "no_session_id",
            CloseOutcome::Stateless => "stateless",
        }
    }
}

/// What the client sends with every request of the stateless era.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModernParams {
    /// The revision to send first (`MCP-Protocol-Version` and `_meta`).
    pub protocol_version: String,
    /// Every modern revision the client speaks: an -32022 answer moves to
    /// the newest of these that the server lists, once per request.
    pub offered: Vec<String>,
    /// `clientCapabilities` (`{}`: none of the optional ones).
    pub capabilities: Value,
    /// `clientInfo.name`.
    pub client_name: String,
    /// `clientInfo.version`.
    pub client_version: String,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The JSON-RPC result.
    pub result: CallResult,
    /// Set when the server refused the revision sent (-32022) and the
    /// request was retried at this one, which the connection now sends.
    pub renegotiated: Option<VersionRetry>,
}

/// One retry after an `UnsupportedProtocolVersion` (-32022) answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionRetry {
    /// The revision that was refused.
    pub from: String,
    /// The revision the request was sent again with.
    pub to: String,
}

impl Answer {
    /// An answer without renegotiation.
    pub fn new(result: CallResult) -> Self {
        Answer {
            result,
            renegotiated: None,
        }
    }
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
    /// `ping` (legacy era only: the stateless era removed it, and a
    /// modern connection refuses it without sending).
    #[serde(rename = "ping")]
    Ping,
    /// `server/discover` (stateless era; a legacy server answers it with
    /// method-not-found).
    #[serde(rename = "server/discover")]
    Discover,
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
            Operation::Discover => "server/discover",
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
    #[error("connect: {message}")]
    Connect {
        /// What failed, with the lower layer's text.
        message: String,
        /// The lower layer's error (the dial's [`std::io::Error`],
        /// hyper's handshake error), when there was one: the
        /// [`std::error::Error::source`] of this error.
        #[source]
        source: Option<Cause>,
    },
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
    /// HTTP 400 (other than a recognised "no valid session" answer or one
    /// of the 2026-07-28 errors below).
    #[error("HTTP 400 bad request: {}{message}", code.map(|c| format!("({c}) ")).unwrap_or_default())]
    BadRequest {
        /// The JSON-RPC error code of the body, if it had one.
        code: Option<i64>,
        /// The JSON-RPC error message of the body, if it had one.
        message: String,
    },
    /// -32020 HeaderMismatch: the routing headers disagree with the body
    /// (a client bug, or something between client and server that strips
    /// or rewrites headers).
    #[error("header mismatch (-32020, HTTP {status}): {message}")]
    HeaderMismatch {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// -32021 MissingRequiredClientCapability: the server cannot serve the
    /// request without these client capabilities.
    #[error("server requires client capabilities {required} (-32021): {message}")]
    MissingCapability {
        /// `error.data.requiredCapabilities` (a `ClientCapabilities` object).
        required: Value,
        /// The server's message.
        message: String,
    },
    /// -32022 UnsupportedProtocolVersion, with no revision in common.
    #[error("protocol version {requested} not supported (-32022): server supports {supported:?}, client offers {offered:?}")]
    UnsupportedVersion {
        /// The revision sent.
        requested: String,
        /// `error.data.supported`.
        supported: Vec<String>,
        /// The modern revisions the client offers.
        offered: Vec<String>,
    },
    /// -32601: the server has no such method (in the stateless era, HTTP
    /// 404; e.g. `ping` sent to a modern server).
    #[error("method not found (-32601, HTTP {status}): {method}")]
    MethodNotFound {
        /// The method, or the server's message when it did not name it.
        method: String,
        /// The HTTP status (404 in the stateless era, 200 in the legacy).
        status: u16,
    },
    /// The server does not speak the stateless era (`era = modern` and the
    /// probe was answered like a legacy server answers it).
    #[error("the server does not speak MCP {version} (stateless): it answered {answer}")]
    NotModern {
        /// The revision probed with.
        version: String,
        /// What the server answered, in a few words.
        answer: String,
    },
    /// The server's era changed under an open context: a stateless request
    /// answered like a legacy server answers it. The context is gone
    /// (invalidate it); the manager probes the era again.
    #[error("the server no longer speaks the stateless era: {answer}")]
    EraChanged {
        /// What the server answered, in a few words.
        answer: String,
    },
    /// An SSE answer of the stateless era ended before the response. The
    /// era has no resumption: the request is lost (send it again, as a new
    /// request).
    #[error("the SSE stream ended before the response; the request is lost (the stateless era has no resumption)")]
    StreamLost,
    /// A `tools/call` of a tool that `tools/list` listed with invalid
    /// `x-mcp-header` annotations: clients must drop such tools, so the
    /// call is not sent.
    #[error(
        "tool {name:?} has invalid x-mcp-header annotations (dropped from tools/list); not called"
    )]
    InvalidTool {
        /// The tool.
        name: String,
    },
    /// A method the stateless era removed (`ping`): not sent.
    #[error("{method} does not exist in MCP 2026-07-28 (stateless); not sent")]
    NotInModernEra {
        /// The method.
        method: &'static str,
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
    #[error("connection closed: {message}")]
    Closed {
        /// What happened, with the lower layer's text.
        message: String,
        /// hyper's (or the body's) error, when there was one: the
        /// [`std::error::Error::source`] of this error.
        #[source]
        source: Option<Cause>,
    },
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
    #[error("malformed JSON: {message}")]
    MalformedJson {
        /// What is wrong, with the parser's text.
        message: String,
        /// serde_json's error, when the body was not JSON at all or not a
        /// JSON-RPC message: the [`std::error::Error::source`] of this
        /// error.
        #[source]
        source: Option<Cause>,
    },
    /// An SSE stream that cannot be decoded.
    #[error("malformed SSE: {message}")]
    MalformedSse {
        /// What is wrong, with the SSE parser's text.
        message: String,
        /// The SSE parser's error: the [`std::error::Error::source`] of
        /// this error.
        #[source]
        source: Option<Cause>,
    },
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

impl TransportError {
    /// [`TransportError::Connect`] with `message` and no lower-layer error.
    pub fn connect(message: impl Into<String>) -> Self {
        TransportError::Connect {
            message: message.into(),
            source: None,
        }
    }

    /// [`TransportError::Closed`] with `message` and no lower-layer error.
    pub fn closed(message: impl Into<String>) -> Self {
        TransportError::Closed {
            message: message.into(),
            source: None,
        }
    }

    /// [`TransportError::Closed`] for a lower layer's `error`, whose text is
    /// the message.
    pub fn closed_by(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Closed {
            message: error.to_string(),
            source: Some(Cause::new(error)),
        }
    }

    /// [`TransportError::MalformedJson`] with `message` and no parser error.
    pub fn malformed_json(message: impl Into<String>) -> Self {
        TransportError::MalformedJson {
            message: message.into(),
            source: None,
        }
    }
}
