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

use serde::{Deserialize, Serialize};

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
    },
    /// `initialize` was refused with 503: `max_sessions` are live.
    SessionLimit {
        /// The limit.
        max: usize,
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
    },
    /// A request other than `initialize` carried no `Mcp-Session-Id`
    /// (answered 400).
    MissingSession {
        /// The HTTP method.
        http: String,
        /// The JSON-RPC method, for a POST that had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
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
    },
    /// A request answered with an injected HTTP failure.
    Injected {
        /// The HTTP method.
        http: String,
        /// The status answered (500, 503, ...).
        status: u16,
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
}
