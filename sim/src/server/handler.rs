//! Request → response decisions: routing, the Streamable HTTP rules,
//! JSON-RPC, and the tools.
//!
//! [`decide`] is synchronous and does no I/O: it gets the whole request (the
//! body already read), the server's state and the time, and returns what to
//! answer, logging what it did on the way. Only two things are left to the
//! async caller: waiting (the `slow` tool sleeps on simulated time before
//! its answer), and putting the answer on the wire, where the seeded stream
//! picks JSON or SSE and the chunking (see [`super::encode`]).
//!
//! The rules, in the order they are checked (each one answers at once),
//! after the request is numbered and, if it goes to the stateless era (see
//! [`super::modern`]) or was sent as a stateless-era request (its
//! `MCP-Protocol-Version` is not a handshake revision), logged as it
//! arrived ([`super::wire`]):
//!
//! 1. sessions whose deadline has passed expire (logged, then unknown);
//! 2. an armed injected failure answers with its status;
//! 3. with `localhost_only`, a `Host` or `Origin` header that names a host
//!    other than loopback is 403 (DNS rebinding protection); a path other
//!    than the MCP endpoint is 404;
//! 4. GET is 405 (this server opens no standalone SSE stream, which the
//!    spec allows), and so is every method but POST and DELETE;
//! 5. DELETE needs a live session id: 200 and the session ends;
//! 6. POST needs `Accept` with both `application/json` and
//!    `text/event-stream` (406), a JSON `Content-Type` (415), and one
//!    JSON-RPC message (400 with a JSON-RPC error otherwise; batches are not
//!    supported, as in revisions since 2025-06-18);
//! 7. `initialize` creates a session (503 when `max_sessions` are live),
//!    and is answered late if a slow `initialize` is armed;
//!    everything else needs `Mcp-Session-Id` (400 without, 404 — or the
//!    TypeScript SDK's 400 — for one that is not live) and, if it sends
//!    `MCP-Protocol-Version`, a revision this server speaks (400);
//! 8. notifications and client responses are 202 with no body (a response
//!    goes to the tool call waiting for it, see [`super::client_requests`]);
//!    requests get a JSON-RPC response: `ping`, `logging/setLevel` (a valid level is
//!    accepted, not applied: the only log messages are the `info`
//!    notifications some SSE answers carry), `tools/list`, `tools/call`, or
//!    -32601.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, ORIGIN};
use hyper::{HeaderMap, Method, StatusCode};

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};

use super::events::ServerEvent;
use super::fixtures::{self, Reply};
use super::sessions::Full;
use super::{ServerConfig, State, LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS};

/// The request, as `decide` sees it.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The client host, as far as known (see [`super::events`]).
    pub from: Option<&'a str>,
}

/// What to answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    /// Extra headers (the content type is set from the body).
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

/// The body of an answer.
#[derive(Debug)]
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A plain JSON body, sent whole (errors at the HTTP level).
    Json(Value),
    /// The JSON-RPC response to a request: JSON or SSE, as the seed says.
    Rpc(Rpc),
    /// An SSE stream built already (and maybe left open:
    /// `subscriptions/listen`), sent as it is.
    Stream(super::encode::Chunked),
    /// A tool call that sends the client a request on its SSE stream and
    /// waits for the response (see [`super::client_requests`]).
    AwaitClient(super::client_requests::Waiting),
}

/// A JSON-RPC response to send.
#[derive(Debug)]
pub(crate) struct Rpc {
    /// The session it belongs to.
    pub session: Option<String>,
    /// The method it answers.
    pub method: String,
    /// The request's id.
    pub id: Value,
    /// The result, or the error code and message.
    pub outcome: Result<Value, (i64, String)>,
    /// The error's `data` member, if it has one.
    pub error_data: Option<Value>,
    /// Notifications sent before the response (they make the answer an
    /// SSE stream): the progress and log messages of fixture tools.
    pub notes: Vec<Value>,
    /// A stateless-era answer: never primed (no resumable streams).
    pub stateless: bool,
    /// Whether the configured `notifications/message` events may precede
    /// the response: always in the legacy era; in the stateless era only
    /// for a request whose `_meta` carries a `logLevel`.
    pub logs: bool,
    /// A stateless-era answer's request number (its wire log's), logged
    /// with the answer.
    pub request: Option<u64>,
}

/// A response as it goes on the wire: members in the order a
/// `serde_json::Value` object keeps them (sorted), so the bytes are those
/// of [`Rpc::message`].
#[derive(Serialize)]
struct WireResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<WireError<'a>>,
    id: &'a Value,
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
}

/// A JSON-RPC error object, members sorted.
#[derive(Serialize)]
struct WireError<'a> {
    code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    message: &'a str,
}

impl Rpc {
    /// The response message's bytes: [`Rpc::message`] serialized, without
    /// building it.
    pub fn to_bytes(&self) -> bytes::Bytes {
        let (result, error) = match &self.outcome {
            Ok(result) => (Some(result), None),
            Err((code, message)) => (
                None,
                Some(WireError {
                    code: *code,
                    data: self.error_data.as_ref(),
                    message,
                }),
            ),
        };
        let wire = WireResponse {
            error,
            id: &self.id,
            jsonrpc: "2.0",
            result,
        };
        // Serializing plain values cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default().into()
    }

    /// The response message (what [`Rpc::to_bytes`] writes, as a value).
    #[cfg(test)]
    pub fn message(&self) -> Value {
        match &self.outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": self.id, "result": result}),
            Err((code, message)) => {
                let mut error = json!({"code": code, "message": message});
                if let Some(data) = &self.error_data {
                    error["data"] = data.clone();
                }
                json!({"jsonrpc": "2.0", "id": self.id, "error": error})
            }
        }
    }

    /// A response with no error data and no notifications before it.
    pub fn plain(
        session: Option<String>,
        method: String,
        id: Value,
        outcome: Result<Value, (i64, String)>,
    ) -> Rpc {
        Rpc {
            session,
            method,
            id,
            outcome,
            error_data: None,
            notes: Vec::new(),
            stateless: false,
            logs: true,
            request: None,
        }
    }

    /// The response carrying a fixture's `reply` (its error data and
    /// notifications included).
    pub fn of_reply(session: Option<String>, method: String, id: Value, reply: Reply) -> Rpc {
        let (outcome, error_data) = match reply.outcome {
            Ok(v) => (Ok(v), None),
            Err(e) => (Err((e.code, e.message)), e.data),
        };
        Rpc {
            session,
            method,
            id,
            outcome,
            error_data,
            notes: reply.notes,
            stateless: false,
            logs: true,
            request: None,
        }
    }
}

/// What the caller does next.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Answer now.
    Now(Answer),
    /// Wait (on simulated time), then answer.
    After { wait: Duration, answer: Answer },
}

impl Decision {
    /// The answer, now or later.
    fn answer_mut(&mut self) -> &mut Answer {
        match self {
            Decision::Now(answer) | Decision::After { answer, .. } => answer,
        }
    }
}

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL_ERROR: i64 = -32603;
/// The implementation-defined server error the TypeScript SDK uses for
/// transport-level refusals, and the `jsonrpc_error` tool raises.
const SERVER_ERROR: i64 = -32000;
/// The TypeScript SDK's code for "Session not found".
const SESSION_NOT_FOUND: i64 = -32001;

/// The TypeScript SDK's message for an unknown session, which clients match.
pub(crate) const NO_VALID_SESSION: &str = "Bad Request: No valid session ID provided";

/// Decides the answer to `req` at `now` (ms since the server's start).
pub(crate) fn decide(st: &mut State, cfg: &ServerConfig, now: u64, req: &Req<'_>) -> Decision {
    // The wire log first: what the client sent, before anything alters it
    // (a stateless-era request sent to a legacy server too: the client's
    // envelope is what is logged).
    let request = st.next_request();
    let modern = super::modern::routes_modern(st.hooks.era.unwrap_or(cfg.era), req.headers);
    if modern || super::modern::routes_modern(super::ServerEra::Dual, req.headers) {
        super::wire::stateless(st, now, request, req);
    }
    for (session, reason) in st.sessions.expire_due(now) {
        st.record(now, ServerEvent::Expired { session, reason });
    }
    let http = req.method.as_str().to_owned();
    if let Some(status) = st.hooks.take_failure() {
        // The exchange it spoils: the request's id, if the body is one.
        let id = match parse(req.body) {
            Ok(Message::Request { id, .. }) => Some(id),
            _ => None,
        };
        st.record(
            now,
            ServerEvent::Injected {
                http,
                status,
                id,
                session: session_header(req.headers),
                from: req.from.map(str::to_owned),
            },
        );
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = format!("{status} (injected)");
        return Decision::Now(error_answer(status, INTERNAL_ERROR, &message));
    }
    if cfg.localhost_only {
        if let Some(why) = not_loopback(req.headers) {
            return Decision::Now(reject(st, now, req, StatusCode::FORBIDDEN, &why));
        }
    }
    if req.path != cfg.path {
        return Decision::Now(reject(st, now, req, StatusCode::NOT_FOUND, "no such path"));
    }
    if modern {
        let mut decision = super::modern::decide(st, cfg, now, req);
        if let Body::Rpc(rpc) = &mut decision.answer_mut().body {
            rpc.request = Some(request);
        }
        return decision;
    }
    match *req.method {
        Method::POST => post(st, cfg, now, req),
        Method::DELETE => Decision::Now(delete(st, cfg, now, req)),
        _ => {
            let why = if *req.method == Method::GET {
                "no standalone SSE stream"
            } else {
                "method not allowed"
            };
            let mut a = reject(st, now, req, StatusCode::METHOD_NOT_ALLOWED, why);
            a.headers.push(("allow", "POST, DELETE".into()));
            Decision::Now(a)
        }
    }
}

/// Why the request's `Host` or `Origin` header does not name a loopback
/// host, if one of them does not. A browser tricked by DNS rebinding sends
/// the attacker's name in both; a missing header has nothing to check.
fn not_loopback(headers: &HeaderMap) -> Option<String> {
    if let Some(host) = headers.get(HOST) {
        let host = String::from_utf8_lossy(host.as_bytes());
        if !is_loopback_authority(&host) {
            return Some(format!("Host {host} is not a loopback host"));
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if !authority.is_some_and(is_loopback_authority) {
            return Some(format!("Origin {origin} is not a loopback origin"));
        }
    }
    None
}

/// Whether `authority` (`host` or `host:port`, an IPv6 host in brackets)
/// names `localhost` or a loopback address.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.starts_with(':') => v6,
            _ => return false,
        },
        None => authority.split_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The log of a refusal of `req` at the HTTP level.
fn rejected(req: &Req<'_>, status: u16, why: String) -> ServerEvent {
    ServerEvent::Rejected {
        http: req.method.as_str().to_owned(),
        status,
        why,
        from: req.from.map(str::to_owned),
        session: session_header(req.headers),
        header_version: super::wire::header(req.headers, "mcp-protocol-version"),
    }
}

/// Logs a refusal and builds its answer (a JSON-RPC error body, id null).
fn reject(st: &mut State, now: u64, req: &Req<'_>, status: StatusCode, why: &str) -> Answer {
    st.record(now, rejected(req, status.as_u16(), why.to_owned()));
    let code = if status == StatusCode::BAD_REQUEST {
        INVALID_REQUEST
    } else {
        SERVER_ERROR
    };
    let reason = status.canonical_reason().unwrap_or("Error");
    error_answer(status, code, &format!("{reason}: {why}"))
}

/// An HTTP error with a JSON-RPC error body (id null), as the TypeScript SDK
/// answers transport-level refusals.
fn error_answer(status: StatusCode, code: i64, message: &str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: Body::Json(json!({
            "jsonrpc": "2.0",
            "error": {"code": code, "message": message},
            "id": null,
        })),
    }
}

/// The `Mcp-Session-Id` header, if present and readable.
fn session_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("mcp-session-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The answer to a request naming a session that is not live.
fn unknown_session(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    req: &Req<'_>,
    session: String,
    method: Option<String>,
) -> Answer {
    let (status, code, message) = if cfg.answer_400_for_unknown_session {
        (StatusCode::BAD_REQUEST, SERVER_ERROR, NO_VALID_SESSION)
    } else {
        (
            StatusCode::NOT_FOUND,
            SESSION_NOT_FOUND,
            "Session not found",
        )
    };
    st.record(
        now,
        ServerEvent::UnknownSession {
            session,
            http: req.method.as_str().to_owned(),
            method,
            status: status.as_u16(),
            from: req.from.map(str::to_owned),
            header_version: super::wire::header(req.headers, "mcp-protocol-version"),
        },
    );
    error_answer(status, code, message)
}

/// The answer to a request that needs a session and names none: what a
/// TypeScript SDK 1.x server answers (so also to every stateless-era
/// request a legacy server gets).
fn missing_session(st: &mut State, now: u64, req: &Req<'_>, method: Option<String>) -> Answer {
    st.record(
        now,
        ServerEvent::MissingSession {
            http: req.method.as_str().to_owned(),
            method,
            from: req.from.map(str::to_owned),
            header_version: super::wire::header(req.headers, "mcp-protocol-version"),
        },
    );
    error_answer(
        StatusCode::BAD_REQUEST,
        SERVER_ERROR,
        "Bad Request: Server not initialized",
    )
}

fn delete(st: &mut State, cfg: &ServerConfig, now: u64, req: &Req<'_>) -> Answer {
    let Some(session) = session_header(req.headers) else {
        return missing_session(st, now, req, None);
    };
    if !st.sessions.remove(&session) {
        return unknown_session(st, cfg, now, req, session, None);
    }
    st.record(
        now,
        ServerEvent::Deleted {
            session,
            from: req.from.map(str::to_owned),
            header_version: super::wire::header(req.headers, "mcp-protocol-version"),
        },
    );
    Answer {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: Body::Empty,
    }
}

/// Whether the `Accept` header admits `media` (exactly, or by a wildcard),
/// ignoring ASCII case. `media` is lowercase. Compared in place: this runs
/// twice for every POST, so it allocates nothing.
/// Whether the client accepts both `application/json` and
/// `text/event-stream`, as a POST must. The `Accept` header every MCP
/// client sends, exactly, is recognized before [`accepts`] parses it.
pub(crate) fn accepts_both(headers: &HeaderMap) -> bool {
    let mut all = headers.get_all(ACCEPT).iter();
    if let (Some(only), None) = (all.next(), all.next()) {
        if only.as_bytes() == b"application/json, text/event-stream" {
            return true;
        }
    }
    accepts(headers, "application/json") && accepts(headers, "text/event-stream")
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    let family = media.split('/').next().unwrap_or("");
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.split(';').next().unwrap_or("").trim())
        .any(|m| {
            m.eq_ignore_ascii_case(media)
                || m == "*/*"
                || m.strip_suffix("/*")
                    .is_some_and(|f| f.eq_ignore_ascii_case(family))
        })
}

/// One JSON-RPC message from the client, classified.
#[derive(Debug, PartialEq)]
pub(crate) enum Message {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
    },
    Response,
}

/// The members of a JSON-RPC message the server looks at, read in one
/// pass: `Some` for each member present (`null` included), strings
/// borrowed from the body where they need no unescaping.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    error: Option<IgnoredAny>,
}

/// `Some` whenever the member is there, even as `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Reads the body as one JSON-RPC message, or says why it is not one.
///
/// A JSON object of the usual shape is read straight into [`Wire`]; only
/// anything else (a batch, a member of an unexpected type, a member given
/// twice, bytes that are not JSON) goes through a `Value`, which gives the
/// same answer: [`parse_value`].
pub(crate) fn parse(body: &[u8]) -> Result<Message, (i64, &'static str)> {
    let object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if object {
        if let Ok(w) = serde_json::from_slice::<Wire<'_>>(body) {
            return classify_wire(w);
        }
    }
    parse_value(body)
}

/// [`parse`]'s rules applied to a message read into [`Wire`].
fn classify_wire(w: Wire<'_>) -> Result<Message, (i64, &'static str)> {
    if w.jsonrpc.as_deref() != Some("2.0") {
        return Err((INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\""));
    }
    let has_id = w.id.is_some();
    let id = w.id.filter(|id| id.is_string() || id.is_number());
    match (w.method, id) {
        (Some(method), Some(id)) => Ok(Message::Request {
            id,
            method: method.into_owned(),
            params: w.params.unwrap_or(Value::Null),
        }),
        (Some(_), None) if has_id => Err((
            INVALID_REQUEST,
            "Invalid Request: id must be a string or number",
        )),
        (Some(method), None) => Ok(Message::Notification {
            method: method.into_owned(),
        }),
        (None, Some(_)) if w.result.is_some() || w.error.is_some() => Ok(Message::Response),
        _ => Err((INVALID_REQUEST, "Invalid Request")),
    }
}

/// [`parse`] by way of a `Value`: every body, whatever its shape.
fn parse_value(body: &[u8]) -> Result<Message, (i64, &'static str)> {
    let value: Value = serde_json::from_slice(body).map_err(|_| (PARSE_ERROR, "Parse error"))?;
    let Value::Object(obj) = value else {
        return Err(if value.is_array() {
            (
                INVALID_REQUEST,
                "Invalid Request: batches are not supported",
            )
        } else {
            (INVALID_REQUEST, "Invalid Request: not a JSON-RPC message")
        });
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\""));
    }
    let id = obj.get("id").filter(|id| id.is_string() || id.is_number());
    match (obj.get("method").and_then(Value::as_str), id) {
        (Some(method), Some(id)) => Ok(Message::Request {
            id: id.clone(),
            method: method.to_owned(),
            params: obj.get("params").cloned().unwrap_or(Value::Null),
        }),
        (Some(_), None) if obj.contains_key("id") => Err((
            INVALID_REQUEST,
            "Invalid Request: id must be a string or number",
        )),
        (Some(method), None) => Ok(Message::Notification {
            method: method.to_owned(),
        }),
        (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => {
            Ok(Message::Response)
        }
        _ => Err((INVALID_REQUEST, "Invalid Request")),
    }
}

/// Answers a POST: one JSON-RPC message, checked layer by layer as rules
/// 6 to 8 of the module docs say. Each layer either lets the request
/// through or answers it at once; the order of the layers is the server's
/// observable behaviour (which refusal a request with two faults gets, and
/// what is logged), so it is kept here, in one place, and each helper
/// decides only its own question. Every message but `initialize` needs a
/// live session, named by its `Mcp-Session-Id`, and is a use of it (its
/// idle deadline moves): without the header, 400 (the TypeScript SDK's
/// "Server not initialized"); with one that is not live, 404 or the SDK's
/// 400 (see [`unknown_session`]).
fn post(st: &mut State, cfg: &ServerConfig, now: u64, req: &Req<'_>) -> Decision {
    if let Some(refusal) = refuse_media_types(st, now, req) {
        return Decision::Now(refusal);
    }
    let message = match parse(req.body) {
        Ok(message) => message,
        Err(why) => return Decision::Now(not_a_message(st, now, req, why)),
    };
    if let Message::Request { id, method, params } = &message {
        if method == "initialize" {
            return post_initialize(st, cfg, now, req, id, params);
        }
    }
    let Some(session) = session_header(req.headers) else {
        return Decision::Now(missing_session(st, now, req, rpc_method(&message)));
    };
    if !st.sessions.touch(&session, now) {
        let method = rpc_method(&message);
        return Decision::Now(unknown_session(st, cfg, now, req, session, method));
    }
    if let Some(refusal) = refuse_protocol_version(st, now, req) {
        return Decision::Now(refusal);
    }
    match message {
        Message::Notification { method } => {
            Decision::Now(notification(st, now, req, session, method))
        }
        Message::Response => Decision::Now(client_response(st, cfg, now, req, session)),
        Message::Request { id, method, params } => {
            request(st, cfg, now, req, session, id, method, &params)
        }
    }
}

/// The refusal of a POST whose client might not read the answer (406: it
/// must accept both JSON and SSE, since the seeded stream picks one), or
/// whose body is not declared JSON (415). Checked before the body is read,
/// so a bad body behind bad headers gets the header's status.
fn refuse_media_types(st: &mut State, now: u64, req: &Req<'_>) -> Option<Answer> {
    if !accepts_both(req.headers) {
        let why = "client must accept both application/json and text/event-stream";
        return Some(reject(st, now, req, StatusCode::NOT_ACCEPTABLE, why));
    }
    if !json_content_type(req.headers) {
        let why = "Content-Type must be application/json";
        return Some(reject(
            st,
            now,
            req,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            why,
        ));
    }
    None
}

/// Whether the `Content-Type` is `application/json` (any parameters, any
/// case): the only body a POST may carry.
fn json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The 400 for a body that is not one JSON-RPC message (`why`: [`parse`]'s
/// code and message): a JSON-RPC error with id null, since there is no
/// request id to answer, logged as a refusal at the HTTP level.
fn not_a_message(st: &mut State, now: u64, req: &Req<'_>, why: (i64, &str)) -> Answer {
    let (code, message) = why;
    st.record(now, rejected(req, 400, message.to_owned()));
    error_answer(StatusCode::BAD_REQUEST, code, message)
}

/// `initialize`: the one request that needs no session (it makes one).
/// Answered at once, or late if a slow `initialize` is armed. The session
/// exists on the server from now on, whether or not the client still
/// listens when a late answer goes out, so the delay is logged now, naming
/// that session.
fn post_initialize(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    req: &Req<'_>,
    id: &Value,
    params: &Value,
) -> Decision {
    let answer = initialize(st, cfg, now, req, id, params);
    let Some(delay_ms) = st.hooks.take_slow_initialize() else {
        return Decision::Now(answer);
    };
    let session = match &answer.body {
        Body::Rpc(rpc) => rpc.session.clone(),
        _ => None,
    };
    st.record(
        now,
        ServerEvent::Delayed {
            session,
            method: "initialize".to_owned(),
            delay_ms,
        },
    );
    Decision::After {
        wait: Duration::from_millis(delay_ms),
        answer,
    }
}

/// The JSON-RPC method of a message, if it has one: what a refusal for
/// want of a live session logs.
fn rpc_method(message: &Message) -> Option<String> {
    match message {
        Message::Request { method, .. } | Message::Notification { method } => Some(method.clone()),
        Message::Response => None,
    }
}

/// The 400 for an `MCP-Protocol-Version` header naming a revision this
/// server does not speak. Checked after the session, so an unknown
/// session is 404 whatever its header says. A request without the header
/// passes: the spec lets the server rely on the revision the session
/// negotiated.
fn refuse_protocol_version(st: &mut State, now: u64, req: &Req<'_>) -> Option<Answer> {
    let v = req.headers.get("mcp-protocol-version")?;
    let v = String::from_utf8_lossy(v.as_bytes());
    if SUPPORTED_PROTOCOL_VERSIONS.contains(&v.as_ref()) {
        return None;
    }
    let why = format!("Unsupported protocol version: {v}");
    Some(reject(st, now, req, StatusCode::BAD_REQUEST, &why))
}

/// A notification on a live session: 202, no body.
/// `notifications/initialized` marks the session as having completed the
/// handshake; any other is only logged.
fn notification(
    st: &mut State,
    now: u64,
    req: &Req<'_>,
    session: String,
    method: String,
) -> Answer {
    if method == "notifications/initialized" {
        st.sessions.mark_initialized(&session);
    }
    st.record(
        now,
        ServerEvent::Notification {
            session,
            method,
            from: req.from.map(str::to_owned),
            header_version: super::wire::header(req.headers, "mcp-protocol-version"),
        },
    );
    accepted()
}

/// A JSON-RPC response from the client on a live session: 202, no body.
/// The response goes to the tool call waiting for it (see
/// [`super::client_requests`]), not back to this POST.
fn client_response(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    req: &Req<'_>,
    session: String,
) -> Answer {
    st.record(
        now,
        ServerEvent::ClientResponse {
            session: session.clone(),
        },
    );
    super::client_requests::deliver(st, cfg, now, &session, req.body);
    accepted()
}

/// 202 Accepted, no body: a notification or response was received.
fn accepted() -> Answer {
    Answer {
        status: StatusCode::ACCEPTED,
        headers: Vec::new(),
        body: Body::Empty,
    }
}

/// The answer `200 OK` carrying the response `rpc`.
fn ok(rpc: Rpc) -> Answer {
    Answer {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: Body::Rpc(rpc),
    }
}

fn initialize(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    req: &Req<'_>,
    id: &Value,
    params: &Value,
) -> Answer {
    let rpc = |session: Option<String>, outcome| {
        Rpc::plain(session, "initialize".into(), id.clone(), outcome)
    };
    let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
        let missing = (
            INVALID_PARAMS,
            "Invalid params: protocolVersion is required".into(),
        );
        return ok(rpc(None, Err(missing)));
    };
    let answered = match &st.hooks.protocol_version {
        Some(forced) => forced.clone(),
        None if SUPPORTED_PROTOCOL_VERSIONS.contains(&requested) => requested.to_owned(),
        None => LATEST_PROTOCOL_VERSION.to_owned(),
    };
    let session = match st.sessions.create(now, answered.clone()) {
        Ok(session) => session,
        Err(Full { max }) => {
            st.record(
                now,
                ServerEvent::SessionLimit {
                    max,
                    from: req.from.map(str::to_owned),
                },
            );
            let message = format!("Service Unavailable: {max} sessions are live");
            let mut a = error_answer(StatusCode::SERVICE_UNAVAILABLE, SERVER_ERROR, &message);
            if let Body::Json(body) = &mut a.body {
                body["id"] = id.clone();
            }
            return a;
        }
    };
    st.record(
        now,
        ServerEvent::SessionCreated {
            session: session.clone(),
            requested: requested.to_owned(),
            answered: answered.clone(),
            id_header: st.hooks.session_id,
            from: req.from.map(str::to_owned),
            header_version: super::wire::header(req.headers, "mcp-protocol-version"),
        },
    );
    super::client_requests::remember(st, cfg, &session, params);
    let header = st.hooks.session_id_header(&session);
    let capabilities = if cfg.conformance_tools {
        fixtures::legacy_capabilities()
    } else {
        json!({"tools": {"listChanged": false}, "logging": {}})
    };
    let result = json!({
        "protocolVersion": answered,
        "capabilities": capabilities,
        "serverInfo": {"name": "mcp-sim", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "A simulated MCP server: tools echo, slow, fail, jsonrpc_error.",
    });
    let mut a = ok(rpc(Some(session), Ok(result)));
    if let Some(h) = header {
        a.headers.push(("mcp-session-id", h));
    }
    a
}

/// The text of the conformance suite's `test_simple_text` tool.
const SIMPLE_TEXT: &str = "This is a simple text response for testing.";
/// The text of the conformance suite's `test_error_handling` tool.
const ERROR_TEXT: &str = "This tool intentionally returns an error for testing";

/// The logging levels of `logging/setLevel`, least severe first.
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The tools, as `tools/list` describes them (with `conformance`, the
/// conformance suite's two as well).
/// The longest the `slow` tool sleeps (ms): a longer request is refused
/// with invalid params, so a client cannot hold a connection (and one of
/// `--max-connections`) for ever with one call.
pub const MAX_SLOW_MS: u64 = 60_000;

fn tools(conformance: bool) -> Value {
    let object = |properties: Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required});
    let mut tools = json!([
        {
            "name": "echo",
            "description": "Returns its text argument as text content.",
            "inputSchema": object(json!({"text": {"type": "string"}}), &["text"]),
        },
        {
            "name": "slow",
            "description": "Sleeps for `ms` milliseconds, then answers.",
            "inputSchema": object(json!({"ms": {"type": "integer", "minimum": 0, "maximum": MAX_SLOW_MS}}), &["ms"]),
        },
        {
            "name": "fail",
            "description": "Always fails: a result with isError true.",
            "inputSchema": object(json!({}), &[]),
        },
        {
            "name": "jsonrpc_error",
            "description": "Always answers with JSON-RPC error -32000.",
            "inputSchema": object(json!({}), &[]),
        },
    ]);
    if conformance {
        if let Value::Array(list) = &mut tools {
            list.push(json!({
                "name": "test_simple_text",
                "description": "Returns a fixed text (the conformance suite's tools-call-simple-text).",
                "inputSchema": object(json!({}), &[]),
            }));
            list.push(json!({
                "name": "test_error_handling",
                "description": "Always fails: a result with isError true (the conformance suite's tools-call-error).",
                "inputSchema": object(json!({}), &[]),
            }));
            list.extend(fixtures::tools());
        }
    }
    tools
}

/// A `tools/call` result with one text content.
fn text_result(text: &str, is_error: bool) -> Value {
    let mut r = json!({"content": [{"type": "text", "text": text}]});
    if is_error {
        r["isError"] = Value::Bool(true);
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn request(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    req: &Req<'_>,
    session: String,
    id: Value,
    method: String,
    params: &Value,
) -> Decision {
    let tool = tool_name(&method, params);
    st.record(
        now,
        ServerEvent::Request {
            session: session.clone(),
            method: method.clone(),
            tool,
            from: req.from.map(str::to_owned),
            header_version: super::wire::header(req.headers, "mcp-protocol-version"),
            id: Some(id.clone()),
        },
    );
    if let Some(d) = super::client_requests::call(st, cfg, now, &session, &id, params) {
        return d;
    }
    let (rpc, wait) = match fixture(cfg, &method, params, false) {
        Some(reply) => (Rpc::of_reply(Some(session), method, id, reply), None),
        None => {
            let (outcome, wait) = outcome(cfg, &method, params);
            (Rpc::plain(Some(session), method, id, outcome), wait)
        }
    };
    let answer = ok(rpc);
    after(wait, answer)
}

/// For `tools/call`: the tool's name.
pub(crate) fn tool_name(method: &str, params: &Value) -> Option<String> {
    (method == "tools/call")
        .then(|| {
            params
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten()
}

/// `answer`, after `wait` of simulated time if there is one.
pub(crate) fn after(wait: Option<Duration>, answer: Answer) -> Decision {
    match wait {
        Some(wait) => Decision::After { wait, answer },
        None => Decision::Now(answer),
    }
}

/// The conformance fixtures' answer to a request (`None`: not a fixture's,
/// or the fixtures are off): resources, prompts, completion and the
/// fixture tools, in the legacy era (`modern` false) or the stateless one.
pub(crate) fn fixture(
    cfg: &ServerConfig,
    method: &str,
    params: &Value,
    modern: bool,
) -> Option<Reply> {
    if !cfg.conformance_tools {
        return None;
    }
    if method == "tools/call" {
        let name = params.get("name").and_then(Value::as_str)?;
        let logs = !modern
            || params
                .pointer("/_meta/io.modelcontextprotocol~1logLevel")
                .is_some();
        return fixtures::call_tool(name, params, logs);
    }
    let outcome = fixtures::request(method, params, modern)?;
    Some(Reply {
        outcome,
        notes: Vec::new(),
    })
}

/// What a request (not `initialize`) is answered, and how long to wait
/// first: `ping`, `logging/setLevel`, `tools/list`, the tools, or -32601.
/// Shared by both eras.
pub(crate) fn outcome(
    cfg: &ServerConfig,
    method: &str,
    params: &Value,
) -> (Result<Value, (i64, String)>, Option<Duration>) {
    let tool = (method == "tools/call")
        .then(|| params.get("name").and_then(Value::as_str))
        .flatten();
    let empty = Map::new();
    let args = params
        .get("arguments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut wait = None;
    let outcome = match (method, tool) {
        ("ping", _) => Ok(json!({})),
        ("logging/setLevel", _) => match params.get("level").and_then(Value::as_str) {
            Some(level) if LOG_LEVELS.contains(&level) => Ok(json!({})),
            _ => Err((
                INVALID_PARAMS,
                format!(
                    "logging/setLevel: level must be one of {}",
                    LOG_LEVELS.join(", ")
                ),
            )),
        },
        ("tools/list", _) => Ok(json!({"tools": tools(cfg.conformance_tools)})),
        // `text`, or `message` as the official SDK servers' echo tools take.
        ("tools/call", Some("echo")) => match args
            .get("text")
            .or_else(|| args.get("message"))
            .and_then(Value::as_str)
        {
            Some(text) => Ok(text_result(text, false)),
            None => Err((
                INVALID_PARAMS,
                "echo: argument text or message (a string) is required".into(),
            )),
        },
        ("tools/call", Some("slow")) => match args.get("ms").and_then(Value::as_u64) {
            Some(ms) if ms > MAX_SLOW_MS => Err((
                INVALID_PARAMS,
                format!("slow: ms {ms} is above the maximum of {MAX_SLOW_MS}"),
            )),
            Some(ms) => {
                wait = Some(Duration::from_millis(ms));
                Ok(text_result(&format!("slept {ms} ms"), false))
            }
            None => Err((
                INVALID_PARAMS,
                "slow: argument ms (an integer) is required".into(),
            )),
        },
        ("tools/call", Some("fail")) => Ok(text_result("fail: failed on purpose", true)),
        ("tools/call", Some("jsonrpc_error")) => {
            Err((SERVER_ERROR, "jsonrpc_error: raised on purpose".into()))
        }
        ("tools/call", Some("test_simple_text")) if cfg.conformance_tools => {
            Ok(text_result(SIMPLE_TEXT, false))
        }
        ("tools/call", Some("test_error_handling")) if cfg.conformance_tools => {
            Ok(text_result(ERROR_TEXT, true))
        }
        ("tools/call", Some(other)) => Err((INVALID_PARAMS, format!("Unknown tool: {other}"))),
        ("tools/call", None) => Err((INVALID_PARAMS, "tools/call: name is required".into())),
        (other, _) => Err((METHOD_NOT_FOUND, format!("Method not found: {other}"))),
    };
    (outcome, wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON values of the kinds a JSON-RPC member may (or must not) hold.
    fn member_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            Just(json!("2.0")),
            Just(json!("1.0")),
            Just(json!(2.0)),
            (0u64..5).prop_map(Value::from),
            "[a-z/]{0,12}".prop_map(Value::from),
            Just(json!("esc\\aped \"method\"")),
            Just(json!({"name": "echo", "arguments": {"text": "hi"}})),
            Just(json!([1, 2])),
            Just(json!(true)),
        ]
    }

    /// A member: usually one of `likely`, else any member value.
    fn member(likely: Vec<Value>) -> impl proptest::strategy::Strategy<Value = Option<Value>> {
        use proptest::prelude::*;
        proptest::option::weighted(
            0.7,
            prop_oneof![3 => proptest::sample::select(likely), 2 => member_value()],
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(1024))]

        /// Reading a message in one pass gives what reading it through a
        /// `Value` gives: the same request, notification, response or
        /// error, for well-formed and malformed messages, a member given
        /// twice, batches and arbitrary bytes.
        #[test]
        fn parsing_in_one_pass_is_parsing_through_a_value(
            jsonrpc in member(vec![json!("2.0")]),
            id in member(vec![json!(1), json!("a")]),
            method in member(vec![json!("tools/call"), json!("notifications/initialized")]),
            params in member(vec![json!({"name": "echo"})]),
            result in member(vec![json!({})]),
            error in member(vec![json!({"code": 1, "message": "m"})]),
            again in proptest::option::of((
                proptest::sample::select(vec!["jsonrpc", "id", "method", "x"]),
                member_value(),
            )),
            wrap in 0u8..5,
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        ) {
            // Members written in order, a repeat at the end (a `Value`
            // keeps the last; a struct refuses repeats).
            let mut members: Vec<(&str, Value)> = [
                ("jsonrpc", jsonrpc),
                ("id", id),
                ("method", method),
                ("params", params),
                ("result", result),
                ("error", error),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            members.extend(again);
            let object = format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let body = match wrap {
                0 | 1 => object.into_bytes(),
                2 => format!("  \n{object} ").into_bytes(),
                3 => format!("[{object}]").into_bytes(),
                _ => junk,
            };
            proptest::prop_assert_eq!(parse(&body), parse_value(&body));
        }
    }

    #[test]
    fn a_response_goes_on_the_wire_as_its_message_serialized() {
        let rpc = |id: Value, outcome| Rpc::plain(None, "tools/call".into(), id, outcome);
        let cases = [
            rpc(
                json!(7),
                Ok(json!({"content": [{"type": "text", "text": "a\"b"}]})),
            ),
            rpc(json!("req-1"), Ok(Value::Null)),
            rpc(json!(0), Err((-32601, "Method not found: \"x\"".into()))),
            rpc(json!(2), Ok(json!({"z": 1, "a": {"y": [], "b": null}}))),
        ];
        for r in &cases {
            let want = serde_json::to_vec(&r.message()).unwrap();
            assert_eq!(&r.to_bytes()[..], &want[..], "{r:?}");
        }
    }
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accept_needs_both_types_or_wildcards() {
        let both = headers(&[("accept", "application/json, text/event-stream")]);
        assert!(accepts(&both, "application/json") && accepts(&both, "text/event-stream"));
        assert!(accepts_both(&both));
        let json_only = headers(&[("accept", "application/json")]);
        assert!(!accepts(&json_only, "text/event-stream"));
        let split = headers(&[("accept", "application/json;q=0.9"), ("accept", "text/*")]);
        assert!(accepts(&split, "application/json") && accepts(&split, "text/event-stream"));
        assert!(accepts(&headers(&[("accept", "*/*")]), "text/event-stream"));
        assert!(!accepts(&HeaderMap::new(), "application/json"));
        // The exact header is recognized at once; anything else is parsed.
        assert!(accepts_both(&split));
        assert!(!accepts_both(&json_only));
        assert!(!accepts_both(&HeaderMap::new()));
        let twice = headers(&[
            ("accept", "application/json, text/event-stream"),
            ("accept", "text/plain"),
        ]);
        assert!(accepts_both(&twice));
        let neither = headers(&[("accept", "text/plain"), ("accept", "image/png")]);
        assert!(!accepts_both(&neither));
    }

    #[test]
    fn only_loopback_hosts_and_origins_pass() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:3000",
            "127.9.8.7:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:8080",
            "localhost.evil.example.com",
            "10.0.0.1:80",
            "[::2]:80",
            "[::1",
            "[::1]x",
            "",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
        let h = |pairs: &[(&'static str, &str)]| not_loopback(&headers(pairs));
        assert_eq!(h(&[]), None);
        assert_eq!(
            h(&[("host", "127.0.0.1:9"), ("origin", "http://localhost:3000")]),
            None
        );
        assert!(h(&[("host", "evil.example.com")]).is_some());
        assert!(h(&[
            ("host", "127.0.0.1:9"),
            ("origin", "http://evil.example.com")
        ])
        .is_some());
        assert!(h(&[("host", "127.0.0.1:9"), ("origin", "null")]).is_some());
    }

    #[test]
    fn messages_are_classified() {
        let req = parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#);
        assert!(matches!(req, Ok(Message::Request { ref method, .. }) if method == "ping"));
        let note = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert!(matches!(note, Ok(Message::Notification { .. })));
        let resp = parse(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        assert!(matches!(resp, Ok(Message::Response)));
        for (bad, code) in [
            (&b"{"[..], PARSE_ERROR),
            (
                br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                INVALID_REQUEST,
            ),
            (
                br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                INVALID_REQUEST,
            ),
            (br#"{"jsonrpc":"2.0"}"#, INVALID_REQUEST),
        ] {
            assert_eq!(parse(bad).err().map(|e| e.0), Some(code));
        }
    }
}
