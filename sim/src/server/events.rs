//! What the server did, as a log of plain values.
//!
//! Every request the server handles, and every change to its sessions, is
//! appended to an in-memory log as a [`Stamped`] [`ServerEvent`]: simulated
//! milliseconds since the server's start, and what happened. The log is the
//! server's side of the story for assertions ("the server saw the DELETE",
//! "the 404 came after the early expiry") and the raw material of the
//! determinism check: run a seed twice, serialize both logs, compare the
//! bytes. So every field is a deterministic value (no addresses, no wall
//! time, no hash-ordered collections), and everything the seed decides (the
//! answer format, how many pieces a body was cut into) is in it: a log that
//! left them out could not catch a run that drew differently.
//!
//! # The wire log
//!
//! The audit checks the client's wire behaviour from this log alone, so
//! what a request carried is logged as it arrived, before any fault hook
//! could alter it: every request routed to the stateless era as a
//! [`ServerEvent::StatelessWire`] (its id, method, envelope revision, the
//! routing headers, the name it names, a session id, an MRTR
//! `requestState`), and every stateless answer with its request's number,
//! whether it asked for input and the `requestState` it issued. Legacy-era
//! events carry `from` and the `MCP-Protocol-Version` header they came
//! with.
//!
//! `from` is the client host: the name the simulated network gives the
//! connection's peer, or, behind a load balancer, the `for` of the
//! `Forwarded` header it added (RFC 7239). It is `None`
//! outside a simulation (`mcp-sim serve`), where a peer is only an address.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::encode::Format;
use super::hooks::{AnswerFault, SessionIdFault};
use super::modern::ServerEra;
use super::sessions::ExpiryReason;

/// One event and when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped {
    /// Milliseconds of simulated time since the server's start.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: ServerEvent,
}

/// What happened on the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerEvent {
    /// `serve` began: the `run`-th time (2 and more: after a restart).
    Started {
        /// 1 for the first run.
        run: u64,
    },
    /// Every session was dropped on purpose (a restart that loses state).
    SessionsCleared {
        /// How many were live.
        dropped: usize,
    },
    /// `initialize` created a session.
    SessionCreated {
        /// The new session's id.
        session: String,
        /// The protocol revision the client asked for.
        requested: String,
        /// The revision answered.
        answered: String,
        /// What the `Mcp-Session-Id` header carried.
        id_header: SessionIdFault,
        /// The client host (see the module docs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The `MCP-Protocol-Version` header the `initialize` carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
    },
    /// `initialize` was refused with 503: `max_sessions` are live.
    SessionLimit {
        /// The limit.
        max: usize,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// A JSON-RPC request on a session (other than `initialize`).
    Request {
        /// The session it named.
        session: String,
        /// The JSON-RPC method.
        method: String,
        /// For `tools/call`: the tool's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool: Option<String>,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The `MCP-Protocol-Version` header it carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
        /// The JSON-RPC id: with the session, it names the exchange (the
        /// client counts ids per connection), which the VU logs too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
    },
    /// The answer to a JSON-RPC request (`initialize` included) went out.
    Answered {
        /// The session (for `initialize`: the one it created, if any).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The JSON-RPC method answered.
        method: String,
        /// JSON or SSE.
        format: Format,
        /// How many pieces the body was cut into.
        pieces: usize,
        /// The JSON-RPC error code, for an error response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<i64>,
        /// How the answer was spoiled on purpose, if it was (`pieces` then
        /// counts what was sent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<AnswerFault>,
        /// For a stateless-era answer: the number of the request it
        /// answers (its [`ServerEvent::StatelessWire`]'s `request`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<u64>,
        /// The JSON-RPC id it answers: with the session (the stateless
        /// era: with the client host of its request) it names the
        /// exchange, which the VU that got the answer, or failed, logs
        /// too (`vu_answer`, `vu_error`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
        /// A stateless-era result with `resultType: "input_required"`
        /// (MRTR: the client is to retry with input).
        #[serde(default, skip_serializing_if = "is_false")]
        input_required: bool,
        /// The `requestState` an `input_required` result issued.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_state: Option<Value>,
        /// For a result: its [`digest`], which the VU that got the answer
        /// logs too (`vu_answer`), so the audit can tell that the answer a
        /// VU got is the one a server sent (`answer_delivered_intact`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// What a request routed to the stateless era, or sent as one (its
    /// `MCP-Protocol-Version` is not a handshake revision: a legacy server
    /// gets these too), carried as it arrived (before the validation
    /// ladder, and before any fault hook): one per such request, whatever
    /// its answer. Every event the server logs
    /// while deciding that request (a refusal on the ladder, its
    /// `stateless_request`) follows it in the log, before the next
    /// request's events.
    StatelessWire {
        /// The request's number: the server counts every HTTP request it
        /// decides, from 1 (its answer's [`ServerEvent::Answered`] names
        /// it).
        request: u64,
        /// The client host (see the module docs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The HTTP method (the stateless era has only POST).
        http: String,
        /// The JSON-RPC id (absent for a notification, or a body that
        /// could not be read).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
        /// The body's JSON-RPC method.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, when
        /// a string.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta_version: Option<String>,
        /// The `MCP-Protocol-Version` header (several joined with `, `).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
        /// The `Mcp-Method` header (several joined with `, `).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_method: Option<String>,
        /// The `Mcp-Name` header, the base64 sentinel decoded (several
        /// joined with `, `, each decoded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_name: Option<String>,
        /// What the body names, for the methods `Mcp-Name` must match: the
        /// tool (`tools/call`), the prompt (`prompts/get`), the URI
        /// (`resources/read`), when a string.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The `Mcp-Session-Id` header, if it carried one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// `params.requestState`: an MRTR retry's state, as sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_state: Option<Value>,
    },
    /// A stateless-era (2026-07-28) request climbed the whole validation
    /// ladder and is served (no session).
    StatelessRequest {
        /// The JSON-RPC method.
        method: String,
        /// The revision of its envelope.
        version: String,
        /// For `tools/call`: the tool's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool: Option<String>,
    },
    /// A stateless-era notification (answered 202).
    StatelessNotification {
        /// The notification's method.
        method: String,
    },
    /// A stateless-era request was refused on the validation ladder.
    StatelessRefused {
        /// The HTTP status.
        status: u16,
        /// The JSON-RPC error code, when the answer has a body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i64>,
        /// Why.
        why: String,
    },
    /// A notification on a session (answered 202).
    Notification {
        /// The session it named.
        session: String,
        /// The notification's method.
        method: String,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The `MCP-Protocol-Version` header it carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
    },
    /// A JSON-RPC response from the client (answered 202).
    ClientResponse {
        /// The session it named.
        session: String,
    },
    /// DELETE ended a session (answered 200).
    Deleted {
        /// The session ended.
        session: String,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The `MCP-Protocol-Version` header it carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
    },
    /// A request named a session that is not live: unknown, terminated or
    /// expired. Answered 404, or 400 with the TypeScript SDK's body.
    UnknownSession {
        /// The id the request carried.
        session: String,
        /// The HTTP method.
        http: String,
        /// The JSON-RPC method, for a POST that had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// 404, or 400.
        status: u16,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The `MCP-Protocol-Version` header it carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
    },
    /// A request other than `initialize` carried no `Mcp-Session-Id`
    /// (answered 400).
    MissingSession {
        /// The HTTP method.
        http: String,
        /// The JSON-RPC method, for a POST that had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The `MCP-Protocol-Version` header it carried (a stateless-era
        /// request sent to a legacy server names its revision).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
    },
    /// A session ended without a DELETE.
    Expired {
        /// The session.
        session: String,
        /// TTL, idle, or early (on purpose).
        reason: ExpiryReason,
    },
    /// A request the protocol does not allow, refused at the HTTP level
    /// (wrong path or method, bad headers, unparsable body).
    Rejected {
        /// The HTTP method.
        http: String,
        /// The status answered.
        status: u16,
        /// Why, in a few words.
        why: String,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The `Mcp-Session-Id` header it carried (a legacy SSE
        /// resumption's GET names its session).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The `MCP-Protocol-Version` header it carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_version: Option<String>,
    },
    /// A request answered with an injected HTTP failure: the exchange it
    /// spoiled is named by the request's JSON-RPC id, its session (or, with
    /// none, its client host).
    Injected {
        /// The HTTP method.
        http: String,
        /// The status answered (500, 503, ...).
        status: u16,
        /// The JSON-RPC id of the request, if its body was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
        /// The `Mcp-Session-Id` it carried.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The client host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// The next `count` requests will be answered with `status`.
    FailuresArmed {
        /// How many requests.
        count: u32,
        /// The status they get.
        status: u16,
    },
    /// Every `every`-th request from now on will be answered with `status`
    /// (`every` 0: no more).
    PeriodicFailuresArmed {
        /// The period, in requests.
        every: u32,
        /// The status they get.
        status: u16,
    },
    /// The next `count` JSON-RPC answers will be spoiled with `fault`.
    AnswerFaultsArmed {
        /// How many answers.
        count: u32,
        /// What is done to them.
        fault: AnswerFault,
    },
    /// The next `count` `initialize` requests will be answered `delay_ms`
    /// late.
    SlowInitializeArmed {
        /// How many requests.
        count: u32,
        /// The delay, in milliseconds.
        delay_ms: u64,
    },
    /// An answer is held back on purpose (a slow `initialize`): it goes out
    /// `delay_ms` from now, if the client still listens.
    Delayed {
        /// The session the answer belongs to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// The JSON-RPC method answered.
        method: String,
        /// The delay, in milliseconds.
        delay_ms: u64,
    },
    /// `initialize` now answers this protocol revision whatever is asked
    /// (`None`: negotiates again).
    VersionForced {
        /// The revision forced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// `initialize` answers now carry this kind of `Mcp-Session-Id`.
    SessionIdFaultSet {
        /// Sent, omitted, or garbled.
        fault: SessionIdFault,
    },
    /// The server now speaks `era` (an upgrade or a downgrade at run
    /// time, overriding its config).
    EraSet {
        /// Legacy, dual or modern.
        era: ServerEra,
    },
    /// The next `count` stateless-era requests will be refused with -32022
    /// although their revision is served.
    VersionRefusalsArmed {
        /// How many requests.
        count: u32,
    },
    /// The routing headers (`Mcp-Method`, `Mcp-Name`) of the next `count`
    /// stateless-era requests will be stripped before the ladder checks
    /// them (a proxy in front of the server).
    RoutingStripArmed {
        /// How many requests.
        count: u32,
    },
    /// A stateless-era request lost its routing headers on the way in (an
    /// armed strip): whatever the client sent, the ladder saw neither
    /// `Mcp-Method` nor `Mcp-Name`.
    RoutingHeadersStripped {
        /// The request's JSON-RPC method.
        method: String,
    },
    /// `server/discover` now answers `ttl_ms` and changed capabilities
    /// (`None`: the config's again).
    DiscoverChangeSet {
        /// The `ttlMs` answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    /// The next `count` stateless-era answers will be SSE streams cut
    /// before the response.
    StreamCutsArmed {
        /// How many answers.
        count: u32,
    },
    /// The next `count` stateless-era `tools/call` requests will be
    /// answered `input_required` for `rounds` rounds first.
    InputRoundsArmed {
        /// How many requests.
        count: u32,
        /// How many rounds each.
        rounds: u32,
    },
    /// A `tools/call` was answered `input_required` by an armed series of
    /// input rounds (its `requestState` names the rounds left).
    InputRequested {
        /// The tool called.
        tool: String,
        /// How many more `input_required` answers come before the tool
        /// runs.
        left: u32,
    },
    /// A tool sent the client a request (`sampling/createMessage`,
    /// `elicitation/create`) on its call's SSE stream (legacy era) and
    /// waits for the client's response.
    ClientRequestSent {
        /// The session the call belongs to.
        session: String,
        /// The request's id (counted per session, from 1).
        id: u64,
        /// The request's method.
        method: String,
        /// The tool that asked.
        tool: String,
    },
    /// The client answered a request the server sent (a POST answered
    /// 202): the waiting tool call finishes.
    ClientRequestAnswered {
        /// The session.
        session: String,
        /// The request's id.
        id: u64,
        /// The JSON-RPC error code, if the client answered with an error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<i64>,
    },
    /// No response came within the timeout: the tool call finishes with
    /// an error result, and a later response is unmatched.
    ClientRequestTimedOut {
        /// The session.
        session: String,
        /// The request's id.
        id: u64,
        /// How long the server waited, in milliseconds.
        waited_ms: u64,
    },
    /// A response from the client that answers no request the server is
    /// waiting on: an unknown or wrong id, or one answered too late.
    ClientResponseUnmatched {
        /// The session.
        session: String,
        /// The response's id, as JSON text (`null` if it had none).
        id: String,
    },
    /// Requests sent to clients from now on wait this long for the answer.
    ClientRequestTimeoutSet {
        /// The timeout, in milliseconds.
        timeout_ms: u64,
    },
    /// Accepting a connection failed (out of file descriptors, ...); the
    /// server tries again after `retry_ms`.
    AcceptFailed {
        /// The error.
        why: String,
        /// The back-off before the next accept, in milliseconds.
        retry_ms: u64,
    },
}

/// The digest of a JSON-RPC result as the audit compares them: the first
/// 16 hex digits of the BLAKE3 of its compact JSON text (`serde_json`'s,
/// so a value parsed from the same text serializes to the same bytes).
pub fn digest(result: &Value) -> String {
    let text = serde_json::to_string(result).unwrap_or_default();
    let mut hex = blake3::hash(text.as_bytes()).to_hex().to_string();
    hex.truncate(16);
    hex
}

/// Whether `b` is false (serde leaves such flags out).
fn is_false(b: &bool) -> bool {
    !*b
}
