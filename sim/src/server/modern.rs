//! The stateless era (MCP 2026-07-28): how the server routes a request to
//! it, and the validation ladder a modern request climbs.
//!
//! Which era answers is the server's [`ServerEra`]: `legacy` serves only
//! the 2025-11-25 transport (a modern request gets what a TypeScript SDK
//! 1.x server answers: 400 `-32000 "Bad Request: Server not initialized"`,
//! `id: null`); `dual` routes as the Python SDK 2.x server does — by the
//! `MCP-Protocol-Version` header alone: present and not a handshake
//! revision → the stateless era, else the legacy transport with its
//! sessions; `modern` serves only the stateless era and refuses
//! `initialize` with -32022, naming the revisions it supports.
//!
//! The ladder follows the reference's §3 (Python 2.3.0's order; the first
//! failure answers):
//!
//! 1. non-POST → 405 with `Allow: POST`, no body;
//! 2. `Accept` without both `application/json` and `text/event-stream` →
//!    406, no body;
//! 3. not JSON → 400 -32700, `id: null`;
//! 4. a notification → 202; 400 `id: null` if its version header is
//!    missing or given twice (-32020, as for every POST) or names a
//!    revision not served (-32022, `requested` the header's value);
//! 5. not one request object (a batch, a response) → 400 -32600, `id: null`;
//! 6. a routing header given twice → 400 -32020;
//! 7. `params._meta` missing, or without `protocolVersion` or
//!    `clientCapabilities` → 400 -32602;
//! 8. `MCP-Protocol-Version` absent or unequal to the `_meta` revision,
//!    `Mcp-Method` unequal to the method, `Mcp-Name` missing or unequal to
//!    the name or URI (base64 sentinel decoded) → 400 -32020 — before
//! 9. a `_meta` revision not served → 400 -32022 `{supported, requested}`;
//!    then `Mcp-Param-*` headers that do not match the tool's
//!    `x-mcp-header` arguments (the conformance fixtures only; see
//!    `server/param_headers.rs`) → 400 -32020;
//! 10. dispatch: `server/discover`, `tools/list`, `tools/call` and, with
//!     the conformance fixtures, `resources/{list,read,templates/list}`,
//!     `prompts/{list,get}`, `completion/complete` and
//!     `subscriptions/listen` (see `server/listen.rs`); an unknown or
//!     removed method (`initialize`, `ping`, `logging/setLevel`,
//!     `resources/subscribe`, ...) → 404 -32601 with the method as `data`.
//!     A fixture's refusal that the Python SDK maps to 400 (an unknown
//!     resource or prompt: -32602 with `data`; a missing client capability:
//!     -32021 with `requiredCapabilities`) is a 400; other errors are 200
//!     with the error in the body.
//!
//! Every error whose request id could be read echoes it. Results carry
//! `resultType` (`complete`, or `input_required` from the MRTR tools of
//! `server/mrtr.rs`) and `_meta` serverInfo; complete results of
//! `server/discover`, the lists and `resources/read` carry `ttlMs` and
//! `cacheScope`. `Mcp-Session-Id` and
//! `Last-Event-ID` are ignored, and no session id is minted. An answer
//! sent as SSE carries no event ids: the era has no resumption (spec §6).

use hyper::{HeaderMap, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use std::time::Duration;

use super::encode::Chunked;
use super::events::ServerEvent;
use super::fixtures::{self, Reply, RpcError};
use super::handler::{self, Answer, Body, Decision, Message, Req, Rpc};
use super::{mrtr, ServerConfig, State};

/// The stateless-era revisions this server serves.
pub const MODERN_PROTOCOL_VERSIONS: [&str; 1] = ["2026-07-28"];

/// The handshake (legacy) revisions: a dual-era server sends a request
/// whose version header names one of these (or none) to the legacy
/// transport.
pub const HANDSHAKE_PROTOCOL_VERSIONS: [&str; 4] = super::SUPPORTED_PROTOCOL_VERSIONS;

/// Which eras the server speaks.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ServerEra {
    /// 2025-11-25 and older only (the TypeScript SDK 1.x servers).
    #[default]
    Legacy,
    /// Both: a modern request is served statelessly, `initialize` still
    /// opens a session (the Python SDK 2.x servers).
    Dual,
    /// 2026-07-28 only: `initialize` is refused.
    Modern,
}

impl ServerEra {
    /// Every personality, in declaration order.
    pub const ALL: [ServerEra; 3] = [ServerEra::Legacy, ServerEra::Dual, ServerEra::Modern];

    /// `legacy`, `dual` or `modern`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerEra::Legacy => "legacy",
            ServerEra::Dual => "dual",
            ServerEra::Modern => "modern",
        }
    }
}

impl std::str::FromStr for ServerEra {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ServerEra::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("unknown era {s:?} (accepted: legacy, dual, modern)"))
    }
}

/// JSON-RPC codes of the stateless era.
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// The `_meta` keys of the request envelope.
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// Where a request's (deprecated) log level is, as a JSON pointer.
const META_LOG_LEVEL: &str = "/_meta/io.modelcontextprotocol~1logLevel";

/// Whether a request goes to the stateless era on a server of era `era`.
pub(crate) fn routes_modern(era: ServerEra, headers: &HeaderMap) -> bool {
    match era {
        ServerEra::Legacy => false,
        ServerEra::Modern => true,
        ServerEra::Dual => headers.get("mcp-protocol-version").is_some_and(|v| {
            !HANDSHAKE_PROTOCOL_VERSIONS
                .iter()
                .any(|h| h.as_bytes() == v.as_bytes())
        }),
    }
}

/// One header's value, if it is there exactly once (`Err` when twice).
fn one_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h [u8]>, ()> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v.as_bytes())),
        (Some(_), Some(_)) => Err(()),
    }
}

/// A header value as the client meant it: the base64 sentinel decoded.
fn decoded(v: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(v).ok()?.trim();
    mcp_session::transport::decode_header_value(text)
}

/// A modern error: the JSON-RPC error with `id` (or `null`) and `data`,
/// at HTTP `status`, logged.
fn refuse(
    st: &mut State,
    now: u64,
    status: StatusCode,
    id: Option<&Value>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Decision {
    st.record(
        now,
        ServerEvent::StatelessRefused {
            status: status.as_u16(),
            code: Some(code),
            why: message.to_owned(),
        },
    );
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    Decision::Now(Answer {
        status,
        headers: Vec::new(),
        body: Body::Json(json!({
            "jsonrpc": "2.0",
            "id": id.cloned().unwrap_or(Value::Null),
            "error": error,
        })),
    })
}

/// A 400 with a JSON-RPC error (see [`refuse`]).
fn bad_request(
    st: &mut State,
    now: u64,
    id: Option<&Value>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Decision {
    refuse(st, now, StatusCode::BAD_REQUEST, id, code, message, data)
}

/// A refusal without a body (405, 406), logged.
fn bare(st: &mut State, now: u64, status: StatusCode, why: &str) -> Answer {
    st.record(
        now,
        ServerEvent::StatelessRefused {
            status: status.as_u16(),
            code: None,
            why: why.to_owned(),
        },
    );
    Answer {
        status,
        headers: Vec::new(),
        body: Body::Empty,
    }
}

/// The answer of a `modern` server to a legacy `initialize`: -32022, with
/// the revisions it serves and the one asked for — a string, as the spec
/// requires: `protocolVersion` as sent, its JSON text if it is not a
/// string, empty if there is none.
pub(crate) fn refuse_initialize(st: &mut State, now: u64, id: &Value, params: &Value) -> Decision {
    let requested = match params.get("protocolVersion") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    bad_request(
        st,
        now,
        Some(id),
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version: this server speaks only the stateless era",
        Some(json!({"supported": MODERN_PROTOCOL_VERSIONS, "requested": requested})),
    )
}

/// Climbs the ladder (the module docs number its rungs) for one
/// stateless-era request: the first rung it fails answers.
pub(crate) fn decide(st: &mut State, cfg: &ServerConfig, now: u64, req: &Req<'_>) -> Decision {
    if let Some(refused) = refuse_transport(st, now, req) {
        return Decision::Now(refused);
    }
    let version_header = one_header(req.headers, "mcp-protocol-version");
    let message = match handler::parse(req.body) {
        Ok(m) => m,
        Err((PARSE_ERROR, why)) => return bad_request(st, now, None, PARSE_ERROR, why, None),
        Err((_, why)) => return bad_request(st, now, None, INVALID_REQUEST, why, None),
    };
    let (id, method, params) = match message {
        Message::Notification { method } => {
            return notification(st, now, version_header, method);
        }
        Message::Response => {
            let why = "Body must be a single JSON-RPC request or notification object";
            return bad_request(st, now, None, INVALID_REQUEST, why, None);
        }
        Message::Request { id, method, params } => (id, method, params),
    };
    if method == "initialize" && matches!(version_header, Ok(None)) {
        // A legacy client: a modern-only server names what it speaks.
        return refuse_initialize(st, now, &id, &params);
    }
    match check_request(st, cfg, now, req, &method, &params, version_header) {
        Ok(version) => dispatch(st, cfg, now, id, method, &params, version),
        Err(Refusal { code, why, data }) => bad_request(st, now, Some(&id), code, &why, data),
    }
}

/// Rungs 1 and 2: a method other than POST, or an `Accept` that does not
/// take both answer formats, is refused with a bare status.
fn refuse_transport(st: &mut State, now: u64, req: &Req<'_>) -> Option<Answer> {
    if *req.method != Method::POST {
        let mut a = bare(
            st,
            now,
            StatusCode::METHOD_NOT_ALLOWED,
            "the stateless era has no GET stream and no DELETE",
        );
        a.headers.push(("allow", "POST".into()));
        return Some(a);
    }
    if !handler::accepts_both(req.headers) {
        let why = "client must accept both application/json and text/event-stream";
        return Some(bare(st, now, StatusCode::NOT_ACCEPTABLE, why));
    }
    None
}

/// Rung 4: a notification is accepted (202, logged) when its version
/// header names a revision served, refused otherwise: -32020 when the
/// header is missing (only a modern-only server routes such a request
/// here) or given twice, -32022 naming the revision asked for (always a
/// string, as the spec's `UnsupportedProtocolVersion` data requires) when
/// it is not served.
fn notification(
    st: &mut State,
    now: u64,
    version_header: Result<Option<&[u8]>, ()>,
    method: String,
) -> Decision {
    let requested = match version_header {
        Ok(Some(v)) => v,
        Ok(None) => {
            let why = "required standard header missing: mcp-protocol-version";
            return bad_request(st, now, None, HEADER_MISMATCH, why, None);
        }
        Err(()) => {
            let why = "a routing header appears more than once";
            return bad_request(st, now, None, HEADER_MISMATCH, why, None);
        }
    };
    if !MODERN_PROTOCOL_VERSIONS
        .iter()
        .any(|m| m.as_bytes() == requested)
    {
        let data = json!({
            "supported": MODERN_PROTOCOL_VERSIONS,
            "requested": String::from_utf8_lossy(requested),
        });
        return bad_request(
            st,
            now,
            None,
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            Some(data),
        );
    }
    st.record(now, ServerEvent::StatelessNotification { method });
    Decision::Now(Answer {
        status: StatusCode::ACCEPTED,
        headers: Vec::new(),
        body: Body::Empty,
    })
}

/// Why a request was refused with 400: the JSON-RPC error's code, message
/// and `data`, answered with the request's id.
struct Refusal {
    code: i64,
    why: String,
    data: Option<Value>,
}

impl Refusal {
    /// A refusal without `data`.
    fn new(code: i64, why: &str) -> Refusal {
        Refusal {
            code,
            why: why.to_owned(),
            data: None,
        }
    }
}

/// Rungs 6 to 9 for a request: the routing headers once each, the `_meta`
/// envelope, the headers matching the body, a revision served. Returns
/// the revision the request carries.
///
/// Two armed faults act here, in this order: a proxy stripping the
/// routing headers (before they are compared), and a one-off refusal of a
/// served revision (the version trap).
fn check_request<'p>(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    req: &Req<'_>,
    method: &str,
    params: &'p Value,
    version_header: Result<Option<&[u8]>, ()>,
) -> Result<&'p str, Refusal> {
    let (Ok(version_header), Ok(method_header), Ok(name_header)) = (
        version_header,
        one_header(req.headers, "mcp-method"),
        one_header(req.headers, "mcp-name"),
    ) else {
        return Err(Refusal::new(
            HEADER_MISMATCH,
            "a routing header appears more than once",
        ));
    };
    let meta = params.get("_meta").and_then(Value::as_object);
    let Some(meta) =
        meta.filter(|m| m.contains_key(META_VERSION) && m.contains_key(META_CAPABILITIES))
    else {
        let why = "params._meta must be an object carrying the required \
                   'io.modelcontextprotocol/protocolVersion' and \
                   'io.modelcontextprotocol/clientCapabilities' envelope keys";
        return Err(Refusal::new(INVALID_PARAMS, why));
    };
    let (method_header, name_header) =
        super::hooks::strip_routing(st, now, method, method_header, name_header);
    let meta_version = meta.get(META_VERSION).and_then(Value::as_str);
    let headers = Routing {
        version: version_header,
        method: method_header,
        name: name_header,
    };
    headers.check(method, params, meta_version)?;
    let Some(version) = meta_version else {
        return Err(Refusal::new(
            INVALID_PARAMS,
            "protocolVersion must be a string",
        ));
    };
    if !MODERN_PROTOCOL_VERSIONS.contains(&version) || st.hooks.take_refuse_version() {
        return Err(Refusal {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            why: "Unsupported protocol version".to_owned(),
            data: Some(json!({"supported": MODERN_PROTOCOL_VERSIONS, "requested": version})),
        });
    }
    if let Some(why) = super::param_headers::mismatch(cfg, method, params, req.headers) {
        return Err(Refusal::new(HEADER_MISMATCH, &why));
    }
    Ok(version)
}

/// The routing headers of a request, each given at most once.
struct Routing<'h> {
    version: Option<&'h [u8]>,
    method: Option<&'h [u8]>,
    name: Option<&'h [u8]>,
}

impl Routing<'_> {
    /// Rung 8: each header must say what the body says — the revision of
    /// the `_meta` envelope (`meta_version`), the method, and the name or
    /// URI for the methods that have one (base64 sentinel decoded).
    fn check(
        &self,
        method: &str,
        params: &Value,
        meta_version: Option<&str>,
    ) -> Result<(), Refusal> {
        let header_version = self.version.and_then(|v| std::str::from_utf8(v).ok());
        if header_version.map(str::trim) != meta_version {
            let why =
                "mcp-protocol-version header does not match the request envelope's protocol version";
            return Err(Refusal::new(HEADER_MISMATCH, why));
        }
        if self
            .method
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            != Some(method)
        {
            let why = "mcp-method header does not match the request body's method";
            return Err(Refusal::new(HEADER_MISMATCH, why));
        }
        if let Some(key) = named_by(method) {
            let want = params.get(key).and_then(Value::as_str);
            if want.is_none() || self.name.and_then(decoded).as_deref() != want {
                let why =
                    format!("mcp-name header does not match the request body's '{key}' parameter");
                return Err(Refusal::new(HEADER_MISMATCH, &why));
            }
        }
        Ok(())
    }
}

/// The parameter `Mcp-Name` must equal, for the methods that have one.
fn named_by(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Whether the stateless era serves `method` on this server (the
/// resources, prompts, completion and listen methods come with the
/// conformance fixtures).
fn served(cfg: &ServerConfig, method: &str) -> bool {
    match method {
        "server/discover" | "tools/list" | "tools/call" => true,
        "resources/list"
        | "resources/read"
        | "resources/templates/list"
        | "prompts/list"
        | "prompts/get"
        | "completion/complete"
        | "subscriptions/listen" => cfg.conformance_tools,
        _ => false,
    }
}

/// Runs a request that climbed the whole ladder.
fn dispatch(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    id: Value,
    method: String,
    params: &Value,
    version: &str,
) -> Decision {
    let tool = (method == "tools/call")
        .then(|| {
            params
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten();
    if !served(cfg, &method) {
        return refuse(
            st,
            now,
            StatusCode::NOT_FOUND,
            Some(&id),
            METHOD_NOT_FOUND,
            "Method not found",
            Some(Value::String(method)),
        );
    }
    st.record(
        now,
        ServerEvent::StatelessRequest {
            method: method.clone(),
            version: version.to_owned(),
            tool,
        },
    );
    if method == "subscriptions/listen" {
        let (ack, rx) = st.listeners.open(&id, params);
        return Decision::Now(Answer {
            status: StatusCode::OK,
            headers: vec![("x-accel-buffering", "no".into())],
            body: Body::Stream(Chunked::open(vec![ack], rx)),
        });
    }
    let (mut reply, wait) = mrtr::with_input_rounds(st, now, &method, params, |st, params| {
        answer(st, cfg, &method, params)
    });
    match &mut reply.outcome {
        Err(e) if e.status != 200 => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            let data = e.data.take();
            return refuse(st, now, status, Some(&id), e.code, &e.message, data);
        }
        Err(_) => {}
        Ok(result) => stamp(result, &method, cfg),
    }
    let answer = Answer {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: Body::Rpc(Rpc {
            stateless: true,
            logs: params.pointer(META_LOG_LEVEL).is_some(),
            ..Rpc::of_reply(None, method, id, reply)
        }),
    };
    match wait {
        Some(wait) => Decision::After { wait, answer },
        None => Decision::Now(answer),
    }
}

/// The list a `test_trigger_*` tool announces as changed.
fn trigger(name: &str) -> Option<&'static str> {
    match name {
        "test_trigger_tool_change" => Some("toolsListChanged"),
        "test_trigger_prompt_change" => Some("promptsListChanged"),
        "test_trigger_resource_change" => Some("resourcesListChanged"),
        _ => None,
    }
}

/// The answer to a served method (not `subscriptions/listen`), before
/// [`stamp`], and how long to wait first: the fixtures' and MRTR tools'
/// when the conformance fixtures are on, else what both eras answer.
fn answer(
    st: &mut State,
    cfg: &ServerConfig,
    method: &str,
    params: &Value,
) -> (Reply, Option<Duration>) {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    if cfg.conformance_tools {
        let special = match method {
            "tools/call" => match trigger(name) {
                Some(kind) => {
                    let sent = st.listeners.announce(kind);
                    let text = format!("announced {kind} on {sent} stream(s)");
                    Some(Reply::ok(
                        json!({"content": [{"type": "text", "text": text}]}),
                    ))
                }
                None => mrtr::call_tool(name, params, cfg.seed)
                    .or_else(|| super::client_requests::call_stateless(name, params)),
            },
            "prompts/get" => mrtr::get_prompt(name, params),
            _ => None,
        };
        if let Some(reply) = special.or_else(|| handler::fixture(cfg, method, params, true)) {
            return (reply, None);
        }
    }
    let (outcome, wait) = match method {
        "server/discover" => {
            let mut result = discover(cfg);
            if let Some(change) = st.hooks.discover_change {
                change.apply(&mut result);
            }
            (Ok(result), None)
        }
        other => handler::outcome(cfg, other, params),
    };
    let mut outcome = outcome.map_err(|(code, message)| RpcError {
        code,
        message,
        data: None,
        status: 200,
    });
    if let (true, "tools/list", Ok(result)) = (cfg.conformance_tools, method, &mut outcome) {
        if let Some(Value::Array(list)) = result.get_mut("tools") {
            list.extend(mrtr::tools());
        }
    }
    let reply = Reply {
        outcome,
        notes: Vec::new(),
    };
    (reply, wait)
}

/// A `server/discover` result (before [`stamp`]).
fn discover(cfg: &ServerConfig) -> Value {
    json!({
        "supportedVersions": MODERN_PROTOCOL_VERSIONS,
        "capabilities": if cfg.conformance_tools {
            fixtures::modern_capabilities()
        } else {
            json!({"tools": {"listChanged": false}})
        },
        "instructions": "A simulated MCP server: tools echo, slow, fail, jsonrpc_error.",
        "ttlMs": cfg.discover_ttl_ms,
        "cacheScope": "private",
    })
}

/// What every stateless-era result carries: `resultType` (`complete`,
/// unless it is an `input_required` one), `_meta` serverInfo, and for
/// complete cacheable results `ttlMs`/`cacheScope`.
fn stamp(result: &mut Value, method: &str, cfg: &ServerConfig) {
    let Value::Object(map) = result else {
        return;
    };
    let complete = map.get("resultType").and_then(Value::as_str) != Some("input_required");
    if complete {
        map.insert("resultType".into(), "complete".into());
    }
    map.insert(
        "_meta".into(),
        json!({"io.modelcontextprotocol/serverInfo": {
            "name": "mcp-sim", "version": env!("CARGO_PKG_VERSION")
        }}),
    );
    let cacheable = matches!(
        method,
        "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
    );
    if complete && cacheable {
        map.insert("ttlMs".into(), cfg.discover_ttl_ms.into());
        map.insert("cacheScope".into(), "private".into());
    }
}
