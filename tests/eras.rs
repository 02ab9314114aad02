//! Both MCP eras end to end: the `Manager` over the real Streamable HTTP
//! transport against one in-process hyper server on loopback TCP that can
//! be any of three servers, switched at run time (to upgrade or downgrade
//! it mid-run):
//!
//! - `legacy` — the TypeScript SDK 1.x (2025-11-25): `initialize` mints a
//!   session; a POST without a session, which includes every modern
//!   request, gets 400 `-32000 "Bad Request: Server not initialized"`
//!   (`id: null`); an unknown session 404; DELETE ends a session;
//! - `dual` — the Python SDK 2.3.0: routes by `MCP-Protocol-Version`, a
//!   header naming no handshake revision goes down the stateless ladder
//!   (session ids ignored), everything else to the legacy transport;
//! - `modern` — the stateless ladder only. A legacy client's request (no
//!   modern version header) is answered 400 `-32022 {supported,
//!   requested}`: the spec says a modern-only server SHOULD name its
//!   revisions in any error it returns to `initialize`, and -32022 is the
//!   error that carries them (`requested` = the `initialize`'s
//!   `protocolVersion`, or the legacy header). An `initialize` that does
//!   carry the modern header and `_meta` reaches the dispatcher and gets
//!   404 -32601 `data: "initialize"`, as Python and the conformance suite
//!   want. GET and DELETE: 405 `Allow: POST`.
//!
//! The stateless ladder is the reference's §3 (Python's order): 405 for
//! non-POST, 406 on a bad Accept, 400 -32700 / -32600 (`id: null`), 202 for
//! notifications (400 -32022 at an unserved version), 400 -32602 for missing
//! `_meta` keys, 400 -32020 for a header that disagrees with the body
//! (before 400 -32022 for an unserved version), 400 -32020 for
//! `Mcp-Param-*`, 404 -32601 (`data` = method) for unknown or removed
//! methods; error ids echo the request id; results carry `resultType`,
//! `_meta` serverInfo, and `ttlMs`/`cacheScope` on discover and lists. Its
//! tools: `echo`, `écho` (a name that needs the base64 sentinel), `mrtr`
//! (`input_required` with an escaped opaque `requestState`), `route` (two
//! `x-mcp-header` arguments), `sse` (a notification, then the response),
//! `sse_cut` (a notification with an event id and `retry:`, then the stream
//! ends) and `sse_abort` (the connection is cut mid-stream). Knobs: the
//! served revisions, discover/list `ttlMs`, the conformance suite's
//! "refuse the first request of every connection with -32022" trap, and
//! one-shot canned answers.
//!
//! Every request is logged (connection, method, headers, raw body, status,
//! which path answered it), and every test asserts on that log, not only
//! on return values. Real loopback sockets, no sleeps: the file runs in
//! well under a second once built.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use mcp_session::transport::{
    HttpConfig, HttpConnector, Operation, ResultType, TcpDialer, TransportError,
};
use mcp_session::{
    Clock, Era, ErrorKind, EventKind, Manager, ManagerBuilder, Mode, RecordingSink, SessionConfig,
    SessionEra, SessionMetrics, TokioClock,
};

/// The stateless revision.
const MODERN: &str = "2026-07-28";
/// The newest handshake revision.
const LEGACY: &str = "2025-11-25";
/// Revisions that route to the legacy transport (Python's
/// `HANDSHAKE_PROTOCOL_VERSIONS`).
const HANDSHAKE: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", LEGACY];
/// A modern revision the client does not offer.
const FUTURE: &str = "2027-01-01";

const PV: &str = "io.modelcontextprotocol/protocolVersion";
const CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const INFO: &str = "io.modelcontextprotocol/clientInfo";
const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The client identity and capabilities the tests' managers send.
const CLIENT: &str = "eras-test";
const CLIENT_VERSION: &str = "1.2.3";

fn client_caps() -> Value {
    json!({"elicitation": {"form": {}}})
}

/// The legacy transport's answer to a POST without a session (TS SDK 1.x).
const NOT_INITIALIZED: &str = "Bad Request: Server not initialized";
/// The Python SDK 1.x's (FastMCP's) answer to a POST without a session.
const MISSING_SESSION: &str = "Bad Request: Missing session ID";

// ------------------------------------------------------------- the server --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Personality {
    Legacy,
    Dual,
    Modern,
}

/// Which part of the server answered a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Legacy,
    Modern,
    /// A canned one-shot answer.
    Canned,
}

/// One request the server got, and what it answered.
#[derive(Clone, Debug)]
struct Seen {
    /// Which accepted TCP connection it came on (0-based).
    conn: usize,
    method: Method,
    headers: HeaderMap,
    /// The body exactly as sent.
    raw: Bytes,
    /// The body parsed, or `Null`.
    body: Value,
    /// The answer's status (0 while being answered).
    status: u16,
    path: Path,
}

impl Seen {
    fn rpc(&self) -> &str {
        self.body
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn id(&self) -> Value {
        self.body.get("id").cloned().unwrap_or(Value::Null)
    }

    fn params(&self) -> &Value {
        self.body.get("params").unwrap_or(&Value::Null)
    }

    fn meta(&self) -> Option<&Map<String, Value>> {
        self.params().get("_meta").and_then(Value::as_object)
    }

    /// A header's value, whitespace around it stripped (HTTP field
    /// parsing).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    fn is_post(&self, rpc: &str) -> bool {
        self.method == Method::POST && self.rpc() == rpc
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#conn{} {} {} -> {} {:?}",
            self.conn,
            self.method,
            self.text(),
            self.status,
            self.path
        )
    }
}

fn show(log: &[Seen]) -> String {
    log.iter()
        .map(|s| format!("  {s}\n"))
        .collect::<Vec<_>>()
        .concat()
}

/// A response body.
enum Out {
    Empty,
    /// `application/json`, the text as it is.
    Json(String),
    /// `text/event-stream`, one chunk per event; the stream then ends.
    Sse(Vec<String>),
    /// `text/event-stream`, one chunk per event; then the connection is
    /// cut (the chunked body never ends).
    SseAbort(Vec<String>),
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Out,
}

impl Reply {
    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Out::Empty,
        }
    }

    fn json(status: u16, v: &Value) -> Reply {
        Reply::text(status, v.to_string())
    }

    fn text(status: u16, text: String) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Out::Json(text),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn rpc_error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

fn error_reply(status: u16, id: &Value, code: i64, message: &str, data: Option<Value>) -> Reply {
    Reply::json(status, &rpc_error(id, code, message, data))
}

/// One SSE event carrying `v`.
fn event(v: &Value) -> String {
    format!("event: message\r\ndata: {v}\r\n\r\n")
}

fn progress() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/progress",
           "params": {"progressToken": "p", "progress": 1}})
}

/// A one-shot canned answer for the first request `when` matches.
struct Canned {
    when: Box<dyn Fn(&Seen) -> bool + Send>,
    reply: Box<dyn Fn(&Seen) -> Reply + Send>,
}

/// What the server is and does; tests change it at run time.
struct Knobs {
    personality: Personality,
    /// The legacy transport answers a POST without a session as the Python
    /// SDK 1.x (FastMCP) does — 400 `-32600 "Bad Request: Missing session
    /// ID"`, `id: "server-error"` — instead of as the TypeScript SDK does.
    python_legacy: bool,
    /// The modern revisions served (`supportedVersions`, `-32022` data).
    served: Vec<String>,
    discover_ttl_ms: u64,
    list_ttl_ms: u64,
    instructions: String,
    /// The conformance suite's trap: the first modern request of every
    /// TCP connection is refused with -32022 (even at a served revision).
    trap_first_per_conn: bool,
    trapped: BTreeSet<usize>,
    canned: Vec<Canned>,
    /// Live legacy sessions.
    sessions: BTreeSet<String>,
    next_session: u64,
    /// MRTR states issued (decoded).
    states: BTreeSet<String>,
    next_state: u64,
}

impl Knobs {
    fn new(personality: Personality) -> Knobs {
        Knobs {
            personality,
            python_legacy: false,
            served: vec![MODERN.to_owned()],
            discover_ttl_ms: 0,
            list_ttl_ms: 0,
            instructions: "v1".into(),
            trap_first_per_conn: false,
            trapped: BTreeSet::new(),
            canned: Vec::new(),
            sessions: BTreeSet::new(),
            next_session: 0,
            states: BTreeSet::new(),
            next_state: 0,
        }
    }
}

/// Whether a request goes down the stateless ladder on a dual server: its
/// version header names no handshake revision (Python's header routing).
fn routes_modern(s: &Seen) -> bool {
    matches!(s.header("mcp-protocol-version"), Some(v) if !HANDSHAKE.contains(&v))
}

fn answer(k: &mut Knobs, s: &Seen) -> (Reply, Path) {
    if let Some(i) = k.canned.iter().position(|c| (c.when)(s)) {
        let c = k.canned.remove(i);
        return ((c.reply)(s), Path::Canned);
    }
    match k.personality {
        Personality::Legacy => (legacy(k, s), Path::Legacy),
        Personality::Dual if routes_modern(s) => (modern(k, s), Path::Modern),
        Personality::Dual => (legacy(k, s), Path::Legacy),
        Personality::Modern => (modern(k, s), Path::Modern),
    }
}

/// The legacy (2025-11-25) transport, as the TypeScript SDK 1.x serves it.
fn legacy(k: &mut Knobs, s: &Seen) -> Reply {
    let sid = s.header("mcp-session-id").map(str::to_owned);
    match s.method {
        Method::POST => {}
        Method::DELETE => {
            return match sid {
                Some(id) if k.sessions.remove(&id) => Reply::empty(200),
                Some(_) => Reply::empty(404),
                None => error_reply(
                    400,
                    &Value::Null,
                    -32000,
                    "Bad Request: No valid session ID provided",
                    None,
                ),
            }
        }
        _ => return Reply::empty(405).header("allow", "POST, DELETE"),
    }
    let accept = s.header("accept").unwrap_or("");
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return error_reply(
            406,
            &Value::Null,
            -32000,
            "Not Acceptable: Client must accept both application/json and text/event-stream",
            None,
        );
    }
    if s.body.is_null() {
        return error_reply(400, &Value::Null, -32700, "Parse error", None);
    }
    let id = s.id();
    if s.rpc() == "initialize" && sid.is_none() {
        k.next_session += 1;
        let session = format!("sess-{}", k.next_session);
        k.sessions.insert(session.clone());
        let asked = s.params()["protocolVersion"].as_str().unwrap_or("");
        let version = if HANDSHAKE.contains(&asked) {
            asked
        } else {
            LEGACY
        };
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {}, "prompts": {}, "resources": {}},
            "serverInfo": {"name": "eras-legacy", "version": "1.0.0"},
        });
        return Reply::json(200, &rpc_result(&id, result)).header("mcp-session-id", session);
    }
    let Some(sid) = sid else {
        if k.python_legacy {
            return error_reply(400, &json!("server-error"), -32600, MISSING_SESSION, None);
        }
        return error_reply(400, &Value::Null, -32000, NOT_INITIALIZED, None);
    };
    if !k.sessions.contains(&sid) {
        return error_reply(404, &Value::Null, -32001, "Session not found", None);
    }
    if let Some(v) = s.header("mcp-protocol-version") {
        if !HANDSHAKE.contains(&v) {
            let msg = format!("Bad Request: Unsupported protocol version: {v}");
            return error_reply(400, &Value::Null, -32000, &msg, None);
        }
    }
    if s.body.get("id").is_none() {
        return Reply::empty(202);
    }
    let p = s.params();
    let result = match s.rpc() {
        "ping" => json!({}),
        "tools/list" => json!({"tools": tools()}),
        "prompts/list" => json!({"prompts": prompts()}),
        "resources/list" => json!({"resources": resources()}),
        "tools/call" => return tool_call(k, s, false),
        "prompts/get" => match prompt(p) {
            Some(r) => r,
            None => return error_reply(200, &id, -32602, "Unknown prompt", None),
        },
        "resources/read" => match read(p) {
            Some(r) => r,
            None => return error_reply(200, &id, -32602, "Unknown resource", None),
        },
        // The TS SDK answers an unknown method (server/discover included)
        // inside the session with a 200 carrying -32601.
        _ => return error_reply(200, &id, -32601, "Method not found", None),
    };
    Reply::json(200, &rpc_result(&id, result))
}

/// A modern result: `resultType` and `_meta.serverInfo` added.
fn complete(id: &Value, mut result: Value) -> Reply {
    result["resultType"] = json!("complete");
    result["_meta"] = json!({SERVER_INFO: {"name": "eras-modern", "version": "1.0.0"}});
    Reply::json(200, &rpc_result(id, result))
}

/// The header value `v` decoded: the base64 sentinel (markers exact,
/// lowercase) or the value itself; `None` for a bad sentinel.
fn decode(v: &str) -> Option<String> {
    mcp_session::transport::decode_header_value(v)
}

/// The stateless ladder (reference §3, Python's order).
fn modern(k: &mut Knobs, s: &Seen) -> Reply {
    // 2. Non-POST.
    if s.method != Method::POST {
        return Reply::empty(405).header("allow", "POST");
    }
    // 3. Accept.
    let accept = s.header("accept").unwrap_or("");
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return Reply::empty(406);
    }
    // 4. Parse.
    let Ok(body) = serde_json::from_slice::<Value>(&s.raw) else {
        return error_reply(400, &Value::Null, -32700, "Parse error", None);
    };
    // 6. A single request or notification object.
    let single = "Body must be a single JSON-RPC request or notification object";
    let Some(obj) = body.as_object() else {
        return error_reply(400, &Value::Null, -32600, single, None);
    };
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return error_reply(400, &Value::Null, -32600, single, None);
    };
    // 5. A notification: only the version header is checked.
    let Some(id) = obj.get("id").cloned() else {
        return match s.header("mcp-protocol-version") {
            Some(v) if k.served.iter().any(|x| x == v) => Reply::empty(202),
            v => error_reply(
                400,
                &Value::Null,
                -32022,
                "Unsupported protocol version",
                Some(json!({"supported": k.served, "requested": v})),
            ),
        };
    };
    // A modern-only server and a legacy client's request.
    if k.personality == Personality::Modern && !routes_modern(s) {
        let requested = if method == "initialize" {
            s.params()["protocolVersion"].as_str().map(str::to_owned)
        } else {
            s.header("mcp-protocol-version").map(str::to_owned)
        };
        return match requested {
            Some(requested) => error_reply(
                400,
                &id,
                -32022,
                "Unsupported protocol version",
                Some(json!({"supported": k.served, "requested": requested})),
            ),
            None => error_reply(
                400,
                &id,
                -32020,
                "required standard header mcp-protocol-version missing",
                None,
            ),
        };
    }
    // 8. Duplicate routing headers.
    for h in ["mcp-method", "mcp-name", "mcp-protocol-version"] {
        if s.headers.get_all(h).iter().count() > 1 {
            let msg = format!("{h} header appears more than once");
            return error_reply(400, &id, -32020, &msg, None);
        }
    }
    // 9. The envelope.
    let params = obj.get("params").cloned().unwrap_or(Value::Null);
    let meta = params.get("_meta").and_then(Value::as_object);
    let Some(meta) = meta.filter(|m| m.contains_key(PV) && m.contains_key(CAPS)) else {
        return error_reply(
            400,
            &id,
            -32602,
            "params._meta must carry protocolVersion and clientCapabilities",
            None,
        );
    };
    // 10. Headers against the body (before the version check).
    let header_version = s.header("mcp-protocol-version");
    if header_version.is_none() || meta[PV].as_str() != header_version {
        return error_reply(
            400,
            &id,
            -32020,
            "mcp-protocol-version header does not match the request envelope's protocol version",
            None,
        );
    }
    if s.header("mcp-method") != Some(method) {
        return error_reply(
            400,
            &id,
            -32020,
            "mcp-method header does not match the request body's method",
            None,
        );
    }
    let named = match method {
        "tools/call" | "prompts/get" => Some(params.get("name")),
        "resources/read" => Some(params.get("uri")),
        _ => None,
    };
    if let Some(want) = named {
        let got = s.header("mcp-name").and_then(decode);
        if want.and_then(Value::as_str) != got.as_deref() {
            return error_reply(
                400,
                &id,
                -32020,
                "mcp-name header does not match the request body",
                None,
            );
        }
    }
    // 11. The revision.
    let Some(version) = meta[PV].as_str() else {
        return error_reply(400, &id, -32602, "protocolVersion must be a string", None);
    };
    let refuse = |k: &Knobs| {
        error_reply(
            400,
            &id,
            -32022,
            "Unsupported protocol version",
            Some(json!({"supported": k.served, "requested": version})),
        )
    };
    if !k.served.iter().any(|v| v == version) {
        return refuse(k);
    }
    if k.trap_first_per_conn && k.trapped.insert(s.conn) {
        return refuse(k);
    }
    // 12. Mcp-Param-*.
    if method == "tools/call" {
        if let Err(why) = check_param_headers(s, &params) {
            return error_reply(400, &id, -32020, &why, None);
        }
    }
    // 13. Dispatch.
    let list_ttl = k.list_ttl_ms;
    let cacheable = |mut r: Value| {
        r["ttlMs"] = json!(list_ttl);
        r["cacheScope"] = json!("private");
        r
    };
    match method {
        "server/discover" => complete(
            &id,
            json!({
                "supportedVersions": k.served,
                "capabilities": {"tools": {"listChanged": true}, "prompts": {}, "resources": {}},
                "instructions": k.instructions,
                "ttlMs": k.discover_ttl_ms,
                "cacheScope": "private",
            }),
        ),
        "tools/list" => complete(&id, cacheable(json!({"tools": tools()}))),
        "prompts/list" => complete(&id, cacheable(json!({"prompts": prompts()}))),
        "resources/list" => complete(&id, cacheable(json!({"resources": resources()}))),
        "tools/call" => tool_call(k, s, true),
        "prompts/get" => match prompt(&params) {
            Some(r) => complete(&id, r),
            None => error_reply(400, &id, -32602, "Unknown prompt", None),
        },
        "resources/read" => match read(&params) {
            Some(r) => complete(&id, cacheable(r)),
            None => error_reply(
                400,
                &id,
                -32602,
                "Unknown resource",
                Some(json!({"uri": params["uri"]})),
            ),
        },
        // Unknown, and removed (`initialize`, `ping`, ...).
        _ => error_reply(404, &id, -32601, "Method not found", Some(json!(method))),
    }
}

/// The `route` tool's annotated arguments: (header name, property, type).
const ROUTE_PARAMS: [(&str, &str, &str); 2] = [
    ("Region", "region", "string"),
    ("Shard", "shard", "integer"),
];

/// Step 12: every annotated argument present and not null has its header,
/// equal (decoded, numerically for integers); no header without one.
fn check_param_headers(s: &Seen, params: &Value) -> Result<(), String> {
    if params["name"] != "route" {
        return Ok(());
    }
    for (name, prop, ty) in ROUTE_PARAMS {
        let header = format!("mcp-param-{}", name.to_ascii_lowercase());
        let arg = params["arguments"].get(prop).filter(|v| !v.is_null());
        let got = match s.header(&header) {
            Some(v) => Some(decode(v).ok_or_else(|| format!("{header}: bad base64"))?),
            None => None,
        };
        let ok = match (arg, got.as_deref()) {
            (None, None) => true,
            (Some(a), Some(h)) if ty == "integer" => {
                h.parse::<f64>().ok() == a.as_f64() && a.as_f64().is_some()
            }
            (Some(a), Some(h)) => a.as_str() == Some(h),
            _ => false,
        };
        if !ok {
            return Err(format!("{header} does not match argument {prop}: {arg:?}"));
        }
    }
    Ok(())
}

fn schema(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

fn tools() -> Value {
    let text = schema(json!({"message": {"type": "string"}, "text": {"type": "string"}}));
    json!([
        {"name": "echo", "description": "Returns its message", "inputSchema": text},
        {"name": "écho", "description": "echo, by a name that is not header-safe", "inputSchema": text},
        {"name": "mrtr", "description": "Asks for confirmation first (MRTR)", "inputSchema": schema(json!({}))},
        {"name": "route", "description": "Routed by headers", "inputSchema": schema(json!({
            "region": {"type": "string", "x-mcp-header": "Region"},
            "shard": {"type": "integer", "x-mcp-header": "Shard"},
            "text": {"type": "string"},
        }))},
        {"name": "sse", "description": "Answers as SSE", "inputSchema": schema(json!({}))},
        {"name": "sse_cut", "description": "Ends its SSE stream early", "inputSchema": schema(json!({}))},
        {"name": "sse_abort", "description": "Cuts the connection mid-stream", "inputSchema": schema(json!({}))},
    ])
}

fn prompts() -> Value {
    json!([{"name": "greet", "arguments": [{"name": "who"}]},
           {"name": "grüße", "arguments": []}])
}

fn prompt(params: &Value) -> Option<Value> {
    let name = params["name"].as_str()?;
    prompts().as_array()?.iter().find(|p| p["name"] == name)?;
    let who = params["arguments"]["who"].as_str().unwrap_or("you");
    Some(json!({"messages": [{"role": "user",
        "content": {"type": "text", "text": format!("{name} {who}")}}]}))
}

fn resources() -> Value {
    json!([{"uri": "test://doc/1", "name": "doc"},
           {"uri": "test://dôc/ü", "name": "dôc"}])
}

fn read(params: &Value) -> Option<Value> {
    let uri = params["uri"].as_str()?;
    resources().as_array()?.iter().find(|r| r["uri"] == uri)?;
    Some(
        json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": format!("body of {uri}")}]}),
    )
}

fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false,
           "structuredContent": {"result": text}})
}

/// The MRTR state `n` as the server writes it: a JSON string full of
/// escapes that a parse and re-serialisation would all change.
fn state_raw(n: u64) -> String {
    format!(r#""st-{n}\u00e9\/\"q\u0041""#)
}

/// What [`state_raw`] decodes to.
fn state_decoded(n: u64) -> String {
    format!("st-{n}é/\"qA")
}

fn tool_call(k: &mut Knobs, s: &Seen, modern: bool) -> Reply {
    let id = s.id();
    let p = s.params();
    let args = &p["arguments"];
    let done = |r: Value| {
        if modern {
            complete(&id, r)
        } else {
            Reply::json(200, &rpc_result(&id, r))
        }
    };
    let sse = |events: Vec<String>, abort: bool| Reply {
        status: 200,
        headers: vec![
            ("content-type", "text/event-stream".into()),
            ("cache-control", "no-cache, no-transform".into()),
            ("x-accel-buffering", "no".into()),
        ],
        body: if abort {
            Out::SseAbort(events)
        } else {
            Out::Sse(events)
        },
    };
    match p["name"].as_str().unwrap_or("") {
        "echo" | "écho" => {
            let text = args["message"]
                .as_str()
                .or(args["text"].as_str())
                .unwrap_or("");
            done(text_result(text))
        }
        "route" => done(text_result(&format!(
            "region={} shard={}",
            args["region"], args["shard"]
        ))),
        "mrtr" if modern => {
            let caps = &s.meta().expect("checked")[CAPS];
            if caps.get("elicitation").is_none() {
                return error_reply(
                    400,
                    &id,
                    -32021,
                    "mrtr needs the elicitation capability",
                    Some(json!({"requiredCapabilities": {"elicitation": {}}})),
                );
            }
            let state_ok = p["requestState"]
                .as_str()
                .is_some_and(|st| k.states.contains(st));
            let answer = &p["inputResponses"]["k"];
            if state_ok && !answer.is_null() {
                return done(text_result(&format!("state-ok {answer}")));
            }
            k.next_state += 1;
            let n = k.next_state;
            k.states.insert(state_decoded(n));
            let result = json!({
                "resultType": "input_required",
                "inputRequests": {"k": {"method": "elicitation/create", "params": {
                    "mode": "form", "message": "Proceed?",
                    "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                }}},
                "requestState": "__STATE__",
                "_meta": {SERVER_INFO: {"name": "eras-modern", "version": "1.0.0"}},
            });
            let text = rpc_result(&id, result)
                .to_string()
                .replace(r#""__STATE__""#, &state_raw(n));
            Reply::text(200, text)
        }
        "mrtr" => done(text_result("no MRTR before 2026-07-28")),
        "sse" => {
            let response = if modern {
                let mut r = text_result("over sse");
                r["resultType"] = json!("complete");
                rpc_result(&id, r)
            } else {
                rpc_result(&id, text_result("over sse"))
            };
            sse(vec![event(&progress()), event(&response)], false)
        }
        // An event id and a long `retry:`: a client that tried to resume
        // would GET, or wait 10 s.
        "sse_cut" => sse(
            vec![format!(
                "id: ev-1\r\nretry: 10000\r\ndata: {}\r\n\r\n",
                progress()
            )],
            false,
        ),
        "sse_abort" => sse(
            vec![format!("id: ev-1\r\ndata: {}\r\n\r\n", progress())],
            true,
        ),
        _ => error_reply(
            if modern { 400 } else { 200 },
            &id,
            -32602,
            "Unknown tool",
            None,
        ),
    }
}

struct Shared {
    knobs: Mutex<Knobs>,
    log: Mutex<Vec<Seen>>,
    accepted: AtomicUsize,
}

/// The server on 127.0.0.1, with its knobs and log.
struct Server {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(personality: Personality) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            knobs: Mutex::new(Knobs::new(personality)),
            log: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
        });
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                stream.set_nodelay(true).unwrap();
                let conn = sh.accepted.fetch_add(1, Ordering::SeqCst);
                let sh = sh.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(req, conn, sh.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server {
            url: format!("http://{addr}/mcp"),
            addr,
            shared,
            task,
        }
    }

    fn set(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.shared.knobs.lock().unwrap());
    }

    /// The server is replaced by one of `personality` (a restart: legacy
    /// sessions are gone).
    fn restart_as(&self, personality: Personality) {
        self.set(|k| {
            k.personality = personality;
            k.sessions.clear();
        });
    }

    /// Answers the first request `when` matches with `reply`, once.
    fn once(
        &self,
        when: impl Fn(&Seen) -> bool + Send + 'static,
        reply: impl Fn(&Seen) -> Reply + Send + 'static,
    ) {
        self.set(|k| {
            k.canned.push(Canned {
                when: Box::new(when),
                reply: Box::new(reply),
            })
        });
    }

    fn log(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The requests since `mark` (a length of the log).
    fn since(&self, mark: usize) -> Vec<Seen> {
        self.log()[mark..].to_vec()
    }

    fn len(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    fn live_sessions(&self) -> usize {
        self.shared.knobs.lock().unwrap().sessions.len()
    }
}

type ServerBody = UnsyncBoxBody<Bytes, io::Error>;

fn chunks(
    events: Vec<String>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, io::Error>> {
    futures_util::stream::iter(events).then(|e| async move {
        // Each event goes out as its own chunk.
        tokio::task::yield_now().await;
        Ok(Frame::data(Bytes::from(e)))
    })
}

async fn handle(
    req: Request<Incoming>,
    conn: usize,
    sh: Arc<Shared>,
) -> Result<Response<ServerBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let raw = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut seen = Seen {
        conn,
        method: parts.method,
        headers: parts.headers,
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
        raw,
        status: 0,
        path: Path::Legacy,
    };
    let (reply, path) = answer(&mut sh.knobs.lock().unwrap(), &seen);
    seen.status = reply.status;
    seen.path = path;
    sh.log.lock().unwrap().push(seen);
    let mut resp = Response::builder().status(reply.status);
    for (k, v) in reply.headers {
        resp = resp.header(k, v);
    }
    let body: ServerBody = match reply.body {
        Out::Empty => Empty::new().map_err(|e| match e {}).boxed_unsync(),
        Out::Json(text) => {
            resp = resp.header("content-type", "application/json");
            Full::new(Bytes::from(text))
                .map_err(|e| match e {})
                .boxed_unsync()
        }
        Out::Sse(events) => StreamBody::new(chunks(events)).boxed_unsync(),
        Out::SseAbort(events) => {
            StreamBody::new(chunks(events).chain(futures_util::stream::once(async {
                Err(io::Error::other("cut mid-stream"))
            })))
            .boxed_unsync()
        }
    };
    Ok(resp.body(body).unwrap())
}

// ------------------------------------------------- a raw client (ladder) --

/// What a raw request got back.
struct Got {
    status: u16,
    headers: HeaderMap,
    body: Value,
    text: String,
}

/// One raw HTTP request on a new connection.
async fn raw(server: &Server, method: Method, headers: &[(&str, &str)], body: &str) -> Got {
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri("/mcp")
        .header("host", server.addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A modern request body for `method` with `params` and `_meta` at
/// `version`.
fn modern_body(id: u64, method: &str, mut params: Value, version: Value) -> String {
    params["_meta"] = json!({PV: version, CAPS: {}, INFO: {"name": "raw", "version": "0"}});
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

const ACCEPT_BOTH: (&str, &str) = ("accept", "application/json, text/event-stream");
const JSON_CT: (&str, &str) = ("content-type", "application/json");

// ------------------------------------------------------------- the client --

type M = Manager<HttpConnector<TcpDialer>>;

/// A manager for `server` with `cfg`, recording its events.
fn manager(server: &Server, cfg: SessionConfig) -> (M, RecordingSink) {
    manager_with(server, cfg, client_caps())
}

fn manager_with(server: &Server, cfg: SessionConfig, caps: Value) -> (M, RecordingSink) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let http = HttpConfig {
        // Bounds, should anything hang; nothing here comes near them.
        connect_timeout_ms: 2_000,
        request_timeout_ms: 2_000,
        close_timeout_ms: 2_000,
        ..HttpConfig::new(&server.url)
    };
    let connector = HttpConnector::new(TcpDialer, http, clock.clone()).unwrap();
    let sink = RecordingSink::new();
    let m = ManagerBuilder::new(cfg)
        .clock(clock)
        .events(Arc::new(sink.clone()))
        .client_info(CLIENT, CLIENT_VERSION)
        .client_capabilities(caps)
        .start(connector)
        .unwrap();
    (m, sink)
}

fn config(mode: Mode, era: Era) -> SessionConfig {
    let base = match mode {
        Mode::Pool => SessionConfig::pool(2),
        mode => SessionConfig::with_mode(mode),
    };
    SessionConfig { era, ..base }
}

fn echo(text: &str) -> Operation {
    Operation::ToolsCall {
        name: "echo".into(),
        arguments: json!({"message": text}),
    }
}

fn tool(name: &str, arguments: Value) -> Operation {
    Operation::ToolsCall {
        name: name.into(),
        arguments,
    }
}

fn list() -> Operation {
    Operation::ToolsList { cursor: None }
}

/// Operations that failed, from the events.
fn failed_ops(sink: &RecordingSink) -> Vec<EventKind> {
    sink.kinds()
        .into_iter()
        .filter(|k| matches!(k, EventKind::OperationEnd { error: Some(_), .. }))
        .collect()
}

fn assert_accounting(m: &SessionMetrics) {
    if let Err(e) = m.check_accounting() {
        panic!("{e}: {m:?}");
    }
}

/// Sessions each mode makes for one VU that runs two operations, each on
/// its own lease.
fn sessions_for_two_leases(mode: Mode) -> u64 {
    match mode {
        Mode::Reuse | Mode::Pool => 1,
        Mode::PerRequest | Mode::Churn => 2,
    }
}

/// Everything a 2026-07-28 request must be on the wire.
fn assert_modern_wire(s: &Seen) {
    let ctx = format!("{s}");
    assert_eq!(s.method, Method::POST, "{ctx}");
    assert!(s.header("mcp-session-id").is_none(), "{ctx}");
    assert!(
        s.body.get("id").is_some(),
        "a request, not a notification: {ctx}"
    );
    let rpc = s.rpc();
    assert!(
        !["initialize", "ping", "notifications/initialized"].contains(&rpc),
        "{ctx}"
    );
    let meta = s.meta().unwrap_or_else(|| panic!("no _meta: {ctx}"));
    let version = meta[PV].as_str().unwrap_or_else(|| panic!("{ctx}"));
    assert_eq!(version, MODERN, "{ctx}");
    assert_eq!(s.headers.get_all("mcp-protocol-version").iter().count(), 1);
    assert_eq!(s.header("mcp-protocol-version"), Some(version), "{ctx}");
    assert_eq!(s.headers.get_all("mcp-method").iter().count(), 1);
    assert_eq!(s.header("mcp-method"), Some(rpc), "{ctx}");
    assert_eq!(meta[CAPS], client_caps(), "{ctx}");
    assert_eq!(
        meta[INFO],
        json!({"name": CLIENT, "version": CLIENT_VERSION}),
        "{ctx}"
    );
    let accept = s.header("accept").unwrap_or("");
    assert!(
        accept.contains("application/json") && accept.contains("text/event-stream"),
        "{ctx}"
    );
    assert_eq!(s.header("content-type"), Some("application/json"), "{ctx}");
    let named = match rpc {
        "tools/call" | "prompts/get" => Some(&s.params()["name"]),
        "resources/read" => Some(&s.params()["uri"]),
        _ => None,
    };
    match named {
        Some(want) => {
            let name = s.header("mcp-name").unwrap_or_else(|| panic!("{ctx}"));
            assert_eq!(s.headers.get_all("mcp-name").iter().count(), 1);
            assert_eq!(decode(name).as_deref(), want.as_str(), "{ctx}");
            // Header-safe values go as they are, the rest as the sentinel.
            let safe = want
                .as_str()
                .is_some_and(|w| w.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            assert_eq!(name.starts_with("=?base64?"), !safe, "{ctx}");
        }
        None => assert!(s.header("mcp-name").is_none(), "{ctx}"),
    }
}

/// A legacy request after `initialize`: the session, the negotiated
/// revision, no envelope.
fn assert_legacy_wire(s: &Seen) {
    let ctx = format!("{s}");
    assert!(s.header("mcp-session-id").is_some(), "{ctx}");
    assert_eq!(s.header("mcp-protocol-version"), Some(LEGACY), "{ctx}");
    assert!(s.meta().is_none(), "{ctx}");
    assert!(s.header("mcp-method").is_none(), "{ctx}");
}

/// Every request of a manager that made only modern contexts.
fn assert_all_modern(log: &[Seen]) {
    assert!(!log.is_empty());
    for s in log {
        assert_modern_wire(s);
    }
}

/// The discover probes in `log`.
fn discovers(log: &[Seen]) -> usize {
    log.iter().filter(|s| s.is_post("server/discover")).count()
}

fn count(log: &[Seen], pred: impl Fn(&Seen) -> bool) -> usize {
    log.iter().filter(|s| pred(s)).count()
}

/// Runs `op` on a new lease of `vu` and releases it.
async fn once(m: &M, vu: u64, op: &Operation) -> mcp_session::transport::CallResult {
    let mut lease = m.acquire(vu).await.expect("acquire");
    let r = lease.call(op).await.expect("call");
    lease.release();
    r
}

// ----------------------------------------------------------------- tests --

/// The test server itself follows the reference: every rung of the
/// stateless ladder (on both servers that have it), and the legacy
/// server's answers to modern requests. The client tests below are only
/// as good as this.
#[tokio::test]
async fn the_server_follows_the_reference_ladder() {
    for personality in [Personality::Modern, Personality::Dual] {
        let server = Server::start(personality).await;
        let modern = [ACCEPT_BOTH, JSON_CT, ("mcp-protocol-version", MODERN)];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut h = modern.to_vec();
            h.extend_from_slice(extra);
            h
        };
        let list = modern_body(7, "tools/list", json!({}), json!(MODERN));
        let at = format!("{personality:?}");
        // 405 for GET and DELETE, even with a session id.
        for method in [Method::GET, Method::DELETE] {
            let g = raw(&server, method, &with(&[("mcp-session-id", "sess-1")]), "").await;
            assert_eq!(g.status, 405, "{at}");
            assert_eq!(g.headers["allow"], "POST", "{at}");
            assert_eq!(g.text, "", "{at}");
        }
        // 406 for Accept without SSE.
        let g = raw(
            &server,
            Method::POST,
            &[
                ("accept", "application/json"),
                JSON_CT,
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/list"),
            ],
            &list,
        )
        .await;
        assert_eq!((g.status, g.text.as_str()), (406, ""), "{at}");
        // 400 -32700 and -32600, id null.
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "x")]),
            "{nope",
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32700)));
        assert_eq!(g.body["id"], Value::Null);
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "tools/list")]),
            &format!("[{list}]"),
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32600)));
        assert_eq!(g.body["id"], Value::Null);
        // A notification: 202, or -32022 at an unserved revision.
        let n = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}"#;
        let g = raw(&server, Method::POST, &modern, n).await;
        assert_eq!((g.status, g.text.as_str()), (202, ""), "{at}");
        let g = raw(
            &server,
            Method::POST,
            &[ACCEPT_BOTH, JSON_CT, ("mcp-protocol-version", "1900-01-01")],
            n,
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32022)));
        // -32602 without _meta or without clientCapabilities; id echoed.
        let bare = r#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{}}"#;
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "tools/list")]),
            bare,
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32602)));
        assert_eq!(g.body["id"], "a");
        let no_caps = json!({"jsonrpc":"2.0","id":8,"method":"tools/list",
            "params":{"_meta":{PV: MODERN}}})
        .to_string();
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "tools/list")]),
            &no_caps,
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32602)));
        // -32020: header and body disagree (checked before the version):
        // version, method (case-sensitive), name missing.
        let v999 = modern_body(9, "tools/list", json!({}), json!("v999.0.0"));
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "tools/list")]),
            &v999,
        )
        .await;
        assert_eq!(
            (g.status, &g.body["error"]["code"], &g.body["id"]),
            (400, &json!(-32020), &json!(9)),
            "{at}"
        );
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "Tools/List")]),
            &list,
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32020)));
        let call = modern_body(
            10,
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "hi"}}),
            json!(MODERN),
        );
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "tools/call")]),
            &call,
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32020)));
        // Whitespace around values and the base64 sentinel are accepted.
        let g = raw(
            &server,
            Method::POST,
            &with(&[
                ("mcp-method", " tools/call "),
                ("mcp-name", "=?base64?ZWNobw==?="),
            ]),
            &call,
        )
        .await;
        assert_eq!(g.status, 200, "{at}: {}", g.text);
        assert_eq!(g.body["result"]["content"][0]["text"], "hi");
        assert_eq!(g.body["result"]["resultType"], "complete");
        assert!(g.body["result"]["_meta"][SERVER_INFO].is_object());
        assert!(g.headers.get("mcp-session-id").is_none());
        // -32022 {supported, requested} at an unserved revision.
        let old = modern_body(11, "tools/list", json!({}), json!("1900-01-01"));
        let g = raw(
            &server,
            Method::POST,
            &[
                ACCEPT_BOTH,
                JSON_CT,
                ("mcp-protocol-version", "1900-01-01"),
                ("mcp-method", "tools/list"),
            ],
            &old,
        )
        .await;
        assert_eq!(g.status, 400, "{at}");
        assert_eq!(
            g.body["error"]["data"],
            json!({"supported": [MODERN], "requested": "1900-01-01"})
        );
        assert_eq!(g.body["id"], 11);
        // -32020 for Mcp-Param: an annotated argument without its header.
        let route = modern_body(
            12,
            "tools/call",
            json!({"name": "route", "arguments": {"region": "eu"}}),
            json!(MODERN),
        );
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "tools/call"), ("mcp-name", "route")]),
            &route,
        )
        .await;
        assert_eq!((g.status, &g.body["error"]["code"]), (400, &json!(-32020)));
        let g = raw(
            &server,
            Method::POST,
            &with(&[
                ("mcp-method", "tools/call"),
                ("mcp-name", "route"),
                ("mcp-param-region", "eu"),
            ]),
            &route,
        )
        .await;
        assert_eq!(g.status, 200, "{}", g.text);
        // 404 -32601, data = method, for removed and unknown methods.
        for method in ["ping", "initialize", "logging/setLevel", "unknown/method"] {
            let b = modern_body(13, method, json!({}), json!(MODERN));
            let g = raw(&server, Method::POST, &with(&[("mcp-method", method)]), &b).await;
            assert_eq!(g.status, 404, "{at} {method}");
            assert_eq!(g.body["error"]["code"], -32601);
            assert_eq!(g.body["error"]["data"], method);
            assert_eq!(g.body["id"], 13);
        }
        // Discover and lists are cacheable.
        let d = modern_body(14, "server/discover", json!({}), json!(MODERN));
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "server/discover")]),
            &d,
        )
        .await;
        let r = &g.body["result"];
        assert_eq!(r["supportedVersions"], json!([MODERN]));
        assert_eq!(
            (&r["ttlMs"], &r["cacheScope"], &r["resultType"]),
            (&json!(0), &json!("private"), &json!("complete"))
        );
        let g = raw(
            &server,
            Method::POST,
            &with(&[("mcp-method", "tools/list")]),
            &list,
        )
        .await;
        assert_eq!(
            (&g.body["result"]["ttlMs"], &g.body["result"]["cacheScope"]),
            (&json!(0), &json!("private"))
        );
        // A legacy client's initialize (no version header): the dual server
        // makes a session, the modern-only one names its revisions.
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"l","version":"0"}}}"#;
        let g = raw(&server, Method::POST, &[ACCEPT_BOTH, JSON_CT], init).await;
        match personality {
            Personality::Dual => {
                assert_eq!(g.status, 200);
                assert_eq!(g.headers["mcp-session-id"], "sess-1");
                assert_eq!(g.body["result"]["protocolVersion"], LEGACY);
            }
            _ => {
                assert_eq!(g.status, 400);
                assert_eq!(g.body["error"]["code"], -32022);
                assert_eq!(
                    g.body["error"]["data"],
                    json!({"supported": [MODERN], "requested": LEGACY})
                );
                assert_eq!(g.body["id"], 1);
            }
        }
    }
    // The legacy server answers every modern request as the TS SDK does.
    let server = Server::start(Personality::Legacy).await;
    let d = modern_body(1, "server/discover", json!({}), json!(MODERN));
    let g = raw(
        &server,
        Method::POST,
        &[
            ACCEPT_BOTH,
            JSON_CT,
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "server/discover"),
        ],
        &d,
    )
    .await;
    assert_eq!(g.status, 400);
    assert_eq!(
        g.body,
        json!({"jsonrpc":"2.0","error":{"code":-32000,"message":NOT_INITIALIZED},"id":null})
    );
}

/// The pairings of the matrix, and what each must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Legacy,
    Modern,
    /// `era = modern` against a legacy-only server.
    DiscoverNotModern,
    /// `era = legacy` against a modern-only server.
    InitializeRefused,
}

/// Every mode, every era setting, against every server where the pairing
/// means something: the sessions the mode should make, in the right era,
/// with the right wire (legacy sessions end with DELETE; modern contexts
/// never send a session id, GET, DELETE, initialize or ping), the era
/// counters, and no failed operation; the two impossible pairings fail the
/// acquire at once with the right error, and send one request.
#[tokio::test]
async fn every_mode_in_every_era_against_every_server() {
    use Outcome as O;
    use Personality as P;
    let pairings = [
        (Era::Auto, P::Legacy, O::Legacy),
        (Era::Auto, P::Dual, O::Modern),
        (Era::Auto, P::Modern, O::Modern),
        (Era::Modern, P::Dual, O::Modern),
        (Era::Modern, P::Modern, O::Modern),
        (Era::Legacy, P::Dual, O::Legacy),
        (Era::Legacy, P::Legacy, O::Legacy),
        (Era::Modern, P::Legacy, O::DiscoverNotModern),
        (Era::Legacy, P::Modern, O::InitializeRefused),
    ];
    for (era, personality, outcome) in pairings {
        for mode in Mode::ALL {
            let at = format!("{mode} era={era} server={personality:?}");
            let server = Server::start(personality).await;
            let (m, sink) = manager(&server, config(mode, era));
            match outcome {
                O::DiscoverNotModern | O::InitializeRefused => {
                    let t0 = Instant::now();
                    let e = m.acquire(1).await.unwrap_err();
                    assert!(t0.elapsed() < Duration::from_millis(500), "{at}: not fast");
                    let log = server.log();
                    assert_eq!(log.len(), 1, "{at}: one request\n{}", show(&log));
                    if outcome == O::DiscoverNotModern {
                        assert!(
                            matches!(&e.kind, ErrorKind::Discover(TransportError::NotModern { version, answer })
                                if version == MODERN && answer.contains("-32000")),
                            "{at}: {e:?}"
                        );
                        assert!(log[0].is_post("server/discover"), "{at}");
                        assert_modern_wire(&log[0]);
                    } else {
                        assert!(
                            matches!(&e.kind, ErrorKind::Initialize(TransportError::UnsupportedVersion { supported, .. })
                                if supported == &[MODERN]),
                            "{at}: {e:?}"
                        );
                        assert!(log[0].is_post("initialize"), "{at}");
                        assert!(log[0].meta().is_none(), "{at}");
                    }
                    let mt = m.metrics();
                    assert_eq!(mt.total_created, 0, "{at}");
                    assert_eq!(mt.eras.fallbacks_to_legacy, 0, "{at}");
                    assert_eq!(m.negotiated(), None, "{at}");
                    m.close().await;
                    assert_eq!(server.len(), 1, "{at}: nothing sent on close");
                    continue;
                }
                O::Legacy | O::Modern => {}
            }
            let want = if outcome == O::Modern {
                SessionEra::Modern
            } else {
                SessionEra::Legacy
            };

            // One VU, two operations, each on its own lease.
            let mut lease = m.acquire(1).await.expect("acquire");
            let info = lease.info();
            assert_eq!(info.era, want, "{at}");
            match want {
                SessionEra::Modern => {
                    assert!(lease.id().starts_with("ctx-"), "{at}: {}", lease.id());
                    assert_eq!(info.protocol_version, MODERN, "{at}");
                }
                SessionEra::Legacy => {
                    assert!(lease.id().starts_with("sess-"), "{at}: {}", lease.id());
                    assert_eq!(info.protocol_version, LEGACY, "{at}");
                }
            }
            let r = lease.call(&echo(&at)).await.expect("tools/call");
            assert_eq!(r.text(), at);
            assert_eq!(r.result_type(), ResultType::Complete);
            lease.release();
            let r = once(&m, 1, &list()).await;
            let names = r.to_value()["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].clone())
                .collect::<Vec<_>>();
            assert!(names.contains(&json!("echo")), "{at}: {names:?}");

            let n = sessions_for_two_leases(mode);
            let mt = m.metrics();
            let log = server.log();
            let e = &mt.eras;
            assert_eq!(mt.total_created, n, "{at}: {mt:?}");
            assert_eq!(e.of(want).created, n, "{at}: {mt:?}");
            assert_eq!(
                e.version_retries + e.era_reprobes + e.era_changes,
                0,
                "{at}: {e:?}"
            );
            assert_eq!(m.era(), Some(want), "{at}");
            assert_eq!(
                m.negotiated().map(|n| (n.era, n.version)),
                Some((
                    want,
                    if want == SessionEra::Modern {
                        MODERN
                    } else {
                        LEGACY
                    }
                    .to_owned()
                )),
                "{at}"
            );
            match (want, era) {
                // A probe per new context (the discover's ttlMs is 0).
                (SessionEra::Modern, _) => {
                    assert_eq!(e.discover_probes, n, "{at}: {e:?}");
                    assert_eq!(e.fallbacks_to_legacy, 0, "{at}");
                }
                // One probe, one fallback; then initialize only.
                (SessionEra::Legacy, Era::Auto) => {
                    assert_eq!(
                        (e.discover_probes, e.fallbacks_to_legacy),
                        (1, 1),
                        "{at}: {e:?}"
                    );
                    let first = &log[0];
                    assert!(first.is_post("server/discover"), "{at}");
                    assert_eq!(first.status, 400, "{at}");
                    assert_modern_wire(first);
                    // The fallback is on the same connection.
                    assert!(
                        log[1].is_post("initialize") && log[1].conn == first.conn,
                        "{at}\n{}",
                        show(&log)
                    );
                }
                (SessionEra::Legacy, _) => {
                    assert_eq!((e.discover_probes, e.fallbacks_to_legacy), (0, 0), "{at}");
                    assert_eq!(discovers(&log), 0, "{at}");
                }
            }

            // Then a burst: three more VUs, two leases each, concurrently.
            let burst = (2..=4u64).map(|vu| {
                let m = m.clone();
                async move {
                    for i in 0..2 {
                        let text = format!("vu{vu}-{i}");
                        let r = once(&m, vu, &echo(&text)).await;
                        assert_eq!(r.text(), text);
                    }
                }
            });
            futures_util::future::join_all(burst).await;
            m.close().await;

            let mt = m.metrics();
            assert_accounting(&mt);
            assert_eq!(mt.live_sessions, 0, "{at}");
            assert_eq!(mt.eras.of(want).created, mt.total_created, "{at}: {mt:?}");
            assert!(
                failed_ops(&sink).is_empty(),
                "{at}: {:?}",
                failed_ops(&sink)
            );
            let log = server.log();
            let posts_of = |rpc| count(&log, |s| s.is_post(rpc));
            match want {
                SessionEra::Modern => {
                    assert_all_modern(&log);
                    assert_eq!(discovers(&log) as u64, mt.eras.discover_probes, "{at}");
                    assert_eq!(mt.eras.discover_probes, mt.total_created, "{at}");
                    // Served by the stateless path, never the legacy one.
                    assert!(
                        log.iter()
                            .all(|s| s.path == Path::Modern && s.status == 200),
                        "{at}\n{}",
                        show(&log)
                    );
                }
                SessionEra::Legacy => {
                    let created = mt.total_created as usize;
                    assert_eq!(posts_of("initialize"), created, "{at}");
                    assert_eq!(posts_of("notifications/initialized"), created, "{at}");
                    assert_eq!(discovers(&log), usize::from(era == Era::Auto), "{at}");
                    // Every session ended with a DELETE the server accepted.
                    let deletes: Vec<_> =
                        log.iter().filter(|s| s.method == Method::DELETE).collect();
                    assert_eq!(deletes.len(), created, "{at}\n{}", show(&log));
                    assert!(deletes.iter().all(|s| s.status == 200), "{at}");
                    assert_eq!(server.live_sessions(), 0, "{at}");
                    for s in log
                        .iter()
                        .filter(|s| !s.is_post("initialize") && !s.is_post("server/discover"))
                    {
                        assert_legacy_wire(s);
                        assert_eq!(s.path, Path::Legacy, "{at}");
                    }
                    assert_eq!(count(&log, |s| s.method == Method::GET), 0, "{at}");
                }
            }
        }
    }
}

/// Every operation a VU can run, on the wire of the stateless era:
/// `MCP-Protocol-Version` = `_meta` revision, `Mcp-Method` = the body's
/// method, `Mcp-Name` (decoded) = the tool / prompt name or resource URI
/// and only on those three methods, as it is when header-safe and as the
/// base64 sentinel when not; Accept lists both types; `_meta` carries the
/// configured capabilities and client info. The server validates all of it
/// too (a mismatch would be a 400 -32020, and the call would fail).
#[tokio::test]
async fn every_modern_request_carries_its_envelope_and_routing_headers() {
    let server = Server::start(Personality::Modern).await;
    let (m, sink) = manager(&server, config(Mode::Reuse, Era::Modern));
    let mut lease = m.acquire(1).await.unwrap();
    let ops = [
        Operation::Discover,
        list(),
        echo("plain"),
        tool("écho", json!({"text": "accented"})),
        Operation::PromptsList { cursor: None },
        Operation::PromptsGet {
            name: "greet".into(),
            arguments: json!({"who": "ana"}),
        },
        Operation::PromptsGet {
            name: "grüße".into(),
            arguments: json!({}),
        },
        Operation::ResourcesList { cursor: None },
        Operation::ResourcesRead {
            uri: "test://doc/1".into(),
        },
        Operation::ResourcesRead {
            uri: "test://dôc/ü".into(),
        },
    ];
    for op in &ops {
        let r = lease
            .call(op)
            .await
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        assert_eq!(r.result_type(), ResultType::Complete, "{op:?}");
    }
    assert_eq!(
        lease.call(&ops[3]).await.unwrap().text(),
        "accented",
        "the tool whose name needs the sentinel ran"
    );
    lease.release();
    m.close().await;
    assert!(failed_ops(&sink).is_empty());
    let log = server.log();
    assert_all_modern(&log);
    // The probe, then one request per operation, in order, on one
    // connection.
    let methods: Vec<_> = log.iter().map(|s| s.rpc().to_owned()).collect();
    let mut want = vec!["server/discover".to_owned()];
    want.extend(ops.iter().map(|o| o.method().to_owned()));
    want.push("tools/call".into());
    assert_eq!(methods, want);
    assert!(log.iter().all(|s| s.conn == log[0].conn));
    // Ids are never reused on a connection.
    let ids: BTreeSet<String> = log.iter().map(|s| s.id().to_string()).collect();
    assert_eq!(ids.len(), log.len());
    let names: Vec<_> = log
        .iter()
        .filter_map(|s| s.header("mcp-name").map(str::to_owned))
        .collect();
    assert_eq!(
        names,
        [
            "echo",
            "=?base64?w6ljaG8=?=",
            "greet",
            "=?base64?Z3LDvMOfZQ==?=",
            "test://doc/1",
            "=?base64?dGVzdDovL2TDtGMvw7w=?=",
            "=?base64?w6ljaG8=?=",
        ]
    );
}

/// -32022 is never a reason to fall back. The conformance suite's trap (the
/// first request of every connection refused, `supported` naming the very
/// revision sent) is retried once, with a new id, at 2026-07-28 — for the
/// probe and for an operation alike — and counted. A server that lists
/// only a revision we do not offer gets exactly one request and an
/// `UnsupportedVersion` naming both lists. -32021 and -32020 on the probe
/// fail the acquire without a fallback and decide nothing (the next
/// acquire probes again).
#[tokio::test]
async fn unsupported_version_and_the_other_modern_errors_never_fall_back() {
    // The trap, on the probe and on the first request of a context made
    // from a fresh discover result (no probe).
    let server = Server::start(Personality::Modern).await;
    server.set(|k| {
        k.trap_first_per_conn = true;
        k.discover_ttl_ms = 60_000;
    });
    let (m, sink) = manager(&server, config(Mode::PerRequest, Era::Auto));
    assert_eq!(once(&m, 1, &echo("one")).await.text(), "one");
    let log = server.log();
    assert_eq!(
        log.iter().map(|s| (s.rpc(), s.status)).collect::<Vec<_>>(),
        [
            ("server/discover", 400),
            ("server/discover", 200),
            ("tools/call", 200)
        ],
        "\n{}",
        show(&log)
    );
    assert_ne!(log[0].id(), log[1].id(), "the retry has a new id");
    assert_eq!(log[0].conn, log[1].conn);
    let refused: Value = serde_json::from_slice(&log[0].raw).unwrap();
    assert_eq!(refused["params"]["_meta"][PV], MODERN);
    assert_eq!(m.metrics().eras.version_retries, 1);
    assert_eq!(m.metrics().eras.discover_probes, 1);
    let mark = server.len();
    assert_eq!(once(&m, 1, &echo("two")).await.text(), "two");
    let log = server.since(mark);
    assert_eq!(
        log.iter().map(|s| (s.rpc(), s.status)).collect::<Vec<_>>(),
        [("tools/call", 400), ("tools/call", 200)],
        "no probe (fresh discover), the call trapped and retried\n{}",
        show(&log)
    );
    assert_ne!(log[0].id(), log[1].id());
    assert_eq!(log[0].header("mcp-name"), log[1].header("mcp-name"));
    assert_eq!(
        log[0].body["params"]["arguments"],
        log[1].body["params"]["arguments"]
    );
    m.close().await;
    let mt = m.metrics();
    assert_eq!(mt.eras.version_retries, 2, "{mt:?}");
    assert_eq!(mt.eras.fallbacks_to_legacy, 0);
    assert!(failed_ops(&sink).is_empty());
    let retried: Vec<_> = sink
        .kinds()
        .into_iter()
        .filter_map(|k| match k {
            EventKind::VersionRetried { from, to } => Some((from, to)),
            _ => None,
        })
        .collect();
    assert_eq!(retried, vec![(MODERN.to_owned(), MODERN.to_owned()); 2]);
    assert_all_modern(&server.log());

    // Nothing mutual: one request, no retry, no initialize, in auto and
    // in modern.
    for era in [Era::Auto, Era::Modern] {
        let server = Server::start(Personality::Modern).await;
        server.set(|k| k.served = vec![FUTURE.to_owned()]);
        let (m, _) = manager(&server, config(Mode::Reuse, era));
        let e = m.acquire(1).await.unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Discover(TransportError::UnsupportedVersion {
                requested: MODERN.into(),
                supported: vec![FUTURE.into()],
                offered: vec![MODERN.into()],
            }),
            "{era}"
        );
        assert!(!e.should_invalidate());
        let log = server.log();
        assert_eq!(log.len(), 1, "{era}: exactly one request\n{}", show(&log));
        assert!(log[0].is_post("server/discover"));
        assert_eq!(m.era(), None, "{era}: no verdict");
        let mt = m.metrics();
        assert_eq!(
            (mt.eras.version_retries, mt.eras.fallbacks_to_legacy),
            (0, 0)
        );
        m.close().await;
        assert_eq!(server.len(), 1);
    }

    // Nothing mutual on an operation of a live context.
    let server = Server::start(Personality::Modern).await;
    let (m, _) = manager(&server, config(Mode::Reuse, Era::Auto));
    let mut lease = m.acquire(1).await.unwrap();
    server.set(|k| k.served = vec![FUTURE.to_owned()]);
    let mark = server.len();
    let e = lease.call(&echo("x")).await.unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::Operation(TransportError::UnsupportedVersion { requested, supported, offered })
            if requested == MODERN && supported == &[FUTURE] && offered == &[MODERN]),
        "{e:?}"
    );
    assert!(!e.should_invalidate(), "not an era change");
    assert_eq!(server.since(mark).len(), 1);
    lease.release();
    m.close().await;
    assert_eq!(m.metrics().eras.era_changes, 0);
    assert_eq!(count(&server.log(), |s| s.is_post("initialize")), 0);

    // Refused again after the retry: one retry only, then the error.
    let server = Server::start(Personality::Modern).await;
    for _ in 0..2 {
        server.once(
            |s| s.is_post("server/discover"),
            |s| {
                error_reply(
                    400,
                    &s.id(),
                    -32022,
                    "Unsupported protocol version",
                    Some(json!({"supported": [MODERN], "requested": MODERN})),
                )
            },
        );
    }
    let (m, _) = manager(&server, config(Mode::Reuse, Era::Auto));
    let e = m.acquire(1).await.unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::Discover(TransportError::UnsupportedVersion { requested, supported, .. })
            if requested == MODERN && supported == &[MODERN]),
        "{e:?}"
    );
    assert_eq!(
        server
            .log()
            .iter()
            .map(|s| (s.rpc(), s.status))
            .collect::<Vec<_>>(),
        [("server/discover", 400), ("server/discover", 400)]
    );
    assert_eq!(m.era(), None);
    m.close().await;

    // A DiscoverResult naming only modern revisions we do not offer: an
    // incompatibility, not a legacy server.
    let server = Server::start(Personality::Legacy).await;
    server.once(
        |s| s.is_post("server/discover"),
        |s| {
            complete(
                &s.id(),
                json!({"supportedVersions": [FUTURE], "capabilities": {}}),
            )
        },
    );
    let (m, _) = manager(&server, config(Mode::Reuse, Era::Auto));
    let e = m.acquire(1).await.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Discover(TransportError::UnsupportedVersion {
            requested: MODERN.into(),
            supported: vec![FUTURE.into()],
            offered: vec![MODERN.into()],
        })
    );
    assert_eq!(server.len(), 1, "no initialize");
    m.close().await;

    // -32021 and -32020 on the probe (400, and a 404 carrying -32020).
    type Check = fn(&TransportError) -> bool;
    let rows: [(u16, i64, Option<Value>, Check); 3] = [
        (
            400,
            -32021,
            Some(json!({"requiredCapabilities": {"sampling": {}}})),
            |e| matches!(e, TransportError::MissingCapability { required, .. } if *required == json!({"sampling": {}})),
        ),
        (400, -32020, None, |e| {
            matches!(e, TransportError::HeaderMismatch { status: 400, .. })
        }),
        (404, -32020, None, |e| {
            matches!(e, TransportError::HeaderMismatch { status: 404, .. })
        }),
    ];
    for (status, code, data, check) in rows {
        let at = format!("{status} {code}");
        let server = Server::start(Personality::Legacy).await;
        server.once(
            |s| s.is_post("server/discover"),
            move |s| error_reply(status, &s.id(), code, "modern error", data.clone()),
        );
        let (m, _) = manager(&server, config(Mode::Reuse, Era::Auto));
        let e = m.acquire(1).await.unwrap_err();
        let ErrorKind::Discover(t) = &e.kind else {
            panic!("{at}: {e:?}")
        };
        assert!(check(t), "{at}: {t:?}");
        assert_eq!(
            server.len(),
            1,
            "{at}: no initialize\n{}",
            show(&server.log())
        );
        assert_eq!(m.era(), None, "{at}");
        assert_eq!(m.metrics().eras.fallbacks_to_legacy, 0, "{at}");
        // No verdict: the next acquire probes again (and this legacy server
        // now answers as one).
        let lease = m.acquire(1).await.expect("second acquire");
        assert_eq!(lease.info().era, SessionEra::Legacy);
        lease.release();
        let e = m.metrics().eras;
        assert_eq!((e.discover_probes, e.fallbacks_to_legacy), (2, 1), "{at}");
        m.close().await;
    }

    // -32021 on an operation (the MRTR tool needs elicitation, and this
    // manager declares no capability).
    let server = Server::start(Personality::Modern).await;
    let (m, _) = manager_with(&server, config(Mode::Reuse, Era::Auto), json!({}));
    let mut lease = m.acquire(1).await.unwrap();
    let e = lease.call(&tool("mrtr", json!({}))).await.unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::Operation(TransportError::MissingCapability { required, .. })
            if *required == json!({"elicitation": {}})),
        "{e:?}"
    );
    assert!(!e.should_invalidate());
    lease.release();
    m.close().await;
    assert_eq!(m.metrics().eras.era_changes, 0);
    assert_eq!(count(&server.log(), |s| s.is_post("initialize")), 0);
}

/// The fallback rows of the reference's §4.2, end to end: a probe answered
/// with an empty 400, a 404 without a body, a 405, or a 200 carrying
/// -32601 makes an `auto` manager `initialize` on the same connection (one
/// fallback, then legacy sessions); that `initialize` carries no
/// `MCP-Protocol-Version` header. A 5xx decides nothing, and neither
/// does a refusal that says nothing about the era (401, 403, 408, 429):
/// the acquire fails with it, and the next one probes again.
#[tokio::test]
async fn fallback_rows_end_to_end() {
    type Row = (&'static str, fn(&Seen) -> Reply);
    let rows: [Row; 6] = [
        ("empty 400", |_| Reply::empty(400)),
        ("404 without body", |_| Reply::empty(404)),
        ("405", |_| Reply::empty(405).header("allow", "GET")),
        ("200 with -32601", |s| {
            Reply::json(200, &rpc_error(&s.id(), -32601, "Method not found", None))
        }),
        ("400 -32600 missing session (Python 1.x)", |_| {
            error_reply(400, &json!("server-error"), -32600, MISSING_SESSION, None)
        }),
        ("a DiscoverResult listing only legacy revisions", |s| {
            Reply::json(
                200,
                &rpc_result(
                    &s.id(),
                    json!({"supportedVersions": [LEGACY], "capabilities": {}}),
                ),
            )
        }),
    ];
    for (row, reply) in rows {
        for mode in Mode::ALL {
            let at = format!("{row} {mode}");
            let server = Server::start(Personality::Legacy).await;
            server.once(|s| s.is_post("server/discover"), reply);
            let (m, sink) = manager(&server, config(mode, Era::Auto));
            let mut lease = m.acquire(1).await.unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(lease.info().era, SessionEra::Legacy, "{at}");
            assert_eq!(lease.call(&echo("after")).await.unwrap().text(), "after");
            lease.release();
            m.close().await;
            let log = server.log();
            let rpcs: Vec<_> = log
                .iter()
                .map(|s| (s.method.as_str(), s.rpc(), s.path))
                .collect();
            assert_eq!(
                rpcs,
                [
                    ("POST", "server/discover", Path::Canned),
                    ("POST", "initialize", Path::Legacy),
                    ("POST", "notifications/initialized", Path::Legacy),
                    ("POST", "tools/call", Path::Legacy),
                    ("DELETE", "", Path::Legacy),
                ],
                "{at}\n{}",
                show(&log)
            );
            assert!(
                log.iter().all(|s| s.conn == log[0].conn),
                "{at}: one connection"
            );
            // Nothing is negotiated yet: the fallback `initialize` carries
            // no revision header, and no routing header either.
            assert_eq!(log[1].header("mcp-protocol-version"), None, "{at}");
            assert_eq!(log[1].header("mcp-method"), None, "{at}");
            let e = m.metrics().eras;
            assert_eq!(
                (e.discover_probes, e.fallbacks_to_legacy, e.legacy.created),
                (1, 1, 1),
                "{at}"
            );
            let probed: Vec<_> = sink
                .kinds()
                .into_iter()
                .filter_map(|k| match k {
                    EventKind::EraProbed { verdict, .. } => Some(verdict),
                    _ => None,
                })
                .collect();
            assert_eq!(probed, ["legacy"], "{at}");
        }
    }

    // No verdict: a 5xx, or a refusal that says nothing about the era.
    let no_verdict = [
        (503, TransportError::ServerError { status: 503 }),
        (500, TransportError::ServerError { status: 500 }),
        (401, TransportError::Unauthorized { status: 401 }),
        (403, TransportError::Unauthorized { status: 403 }),
        (408, TransportError::Http { status: 408 }),
        (429, TransportError::Http { status: 429 }),
    ];
    for (status, want) in no_verdict {
        for mode in Mode::ALL {
            let at = format!("{status} {mode}");
            let server = Server::start(Personality::Legacy).await;
            server.once(
                |s| s.is_post("server/discover"),
                move |_| Reply::empty(status),
            );
            let (m, _) = manager(&server, config(mode, Era::Auto));
            let e = match m.acquire(1).await {
                Ok(lease) => panic!("{at}: taken as a verdict: {}", lease.info().era),
                Err(e) => e,
            };
            assert_eq!(e.kind, ErrorKind::Discover(want.clone()), "{at}");
            assert_eq!(m.era(), None, "{at}");
            assert_eq!(server.len(), 1, "{at}: no initialize after it");
            let mt = m.metrics();
            assert_eq!((mt.total_created, mt.eras.fallbacks_to_legacy), (0, 0));
            let mut lease = m.acquire(1).await.expect("the next acquire");
            assert_eq!(lease.info().era, SessionEra::Legacy);
            lease.call(&echo("x")).await.unwrap();
            lease.release();
            let log = server.log();
            assert_eq!(
                log.iter()
                    .map(|s| (s.rpc(), s.status))
                    .take(3)
                    .collect::<Vec<_>>(),
                [
                    ("server/discover", status),
                    ("server/discover", 400),
                    ("initialize", 200)
                ],
                "{at}: probed again\n{}",
                show(&log)
            );
            let e = m.metrics().eras;
            assert_eq!((e.discover_probes, e.fallbacks_to_legacy), (2, 1), "{at}");
            m.close().await;
        }
    }
}

/// MRTR: `input_required` comes back with its input requests and the
/// exact `requestState` text; `call_with_input` resends the request with a
/// new id, `inputResponses`, and that text byte for byte (the server's
/// escapes intact, though a parse and re-serialisation would change every
/// one of them); the server then completes. A call on another VU's lease,
/// running at the same time, carries neither; nor does the VU's next call.
/// Answering without the requested key gets `input_required` again.
#[tokio::test]
async fn mrtr_retries_carry_the_exact_state_and_nothing_leaks() {
    let server = Server::start(Personality::Modern).await;
    let (m, sink) = manager(&server, config(Mode::Reuse, Era::Auto));
    let op = tool("mrtr", json!({"reason": "test"}));
    let mut a = m.acquire(1).await.unwrap();
    let mut b = m.acquire(2).await.unwrap();

    let first = a.call(&op).await.unwrap();
    assert_eq!(first.result_type(), ResultType::InputRequired);
    let ir = first.input_required().expect("input_required");
    assert_eq!(ir.keys(), ["k"]);
    assert_eq!(ir.input_requests["k"]["method"], "elicitation/create");
    assert_eq!(ir.request_state(), Some(state_raw(1).as_str()));
    assert!(
        first.raw().contains(&state_raw(1)),
        "raw result kept as sent"
    );
    let first_req = server.log().last().unwrap().clone();

    // The retry, and a concurrent call of another VU.
    let input = ir.respond(json!({"k": {"action": "accept", "content": {"ok": true}}}));
    let mark = server.len();
    let (done, other) = tokio::join!(a.call_with_input(&op, &input), b.call(&op));
    let done = done.unwrap();
    assert_eq!(done.result_type(), ResultType::Complete);
    assert_eq!(
        done.text(),
        r#"state-ok {"action":"accept","content":{"ok":true}}"#
    );
    let other = other.unwrap();
    assert_eq!(
        other.input_required().unwrap().request_state(),
        Some(state_raw(2).as_str()),
        "the other VU got its own state"
    );
    let log = server.since(mark);
    assert_eq!(log.len(), 2);
    let retry = log
        .iter()
        .find(|s| s.conn == first_req.conn)
        .expect("the retry, on VU 1's context");
    let plain = log.iter().find(|s| s.conn != first_req.conn).unwrap();
    assert_ne!(retry.id(), first_req.id(), "a new JSON-RPC id");
    let needle = format!(r#""requestState":{}"#, state_raw(1));
    assert!(
        retry.text().contains(&needle),
        "byte-identical state: {}",
        retry.text()
    );
    assert_eq!(
        retry.params()["inputResponses"],
        json!({"k": {"action": "accept", "content": {"ok": true}}})
    );
    assert_eq!(retry.params()["name"], "mrtr");
    assert_eq!(retry.params()["arguments"], json!({"reason": "test"}));
    for s in [plain, &first_req] {
        assert!(s.params().get("inputResponses").is_none(), "{s}");
        assert!(s.params().get("requestState").is_none(), "{s}");
    }

    // The next call on VU 1's lease carries nothing of it.
    let mark = server.len();
    assert_eq!(a.call(&echo("after")).await.unwrap().text(), "after");
    let next = &server.since(mark)[0];
    assert!(next.params().get("inputResponses").is_none());
    assert!(next.params().get("requestState").is_none());

    // Without the requested key: asked again, with a new state.
    let ir = other.input_required().unwrap();
    let again = b
        .call_with_input(&op, &ir.respond(json!({"other": 1})))
        .await
        .unwrap();
    assert_eq!(
        again.input_required().unwrap().request_state(),
        Some(state_raw(3).as_str())
    );
    a.release();
    b.release();
    m.close().await;
    assert!(failed_ops(&sink).is_empty());
    assert_all_modern(&server.log());
}

/// An SSE answer of the stateless era: a notification before the response
/// is skipped; a stream that ends before the response is `StreamLost` at
/// once — no GET (the event id and `retry: 10000` it carried are ignored),
/// no wait; a connection cut mid-stream is a lost request too. The next
/// call on the same lease works.
#[tokio::test]
async fn a_lost_sse_stream_is_lost_at_once_and_never_resumed() {
    for mode in Mode::ALL {
        let server = Server::start(Personality::Modern).await;
        let (m, _) = manager(&server, config(mode, Era::Auto));
        let mut lease = m.acquire(1).await.unwrap();
        let r = lease.call(&tool("sse", json!({}))).await.unwrap();
        assert_eq!(r.text(), "over sse", "{mode}");

        let t0 = Instant::now();
        let e = lease.call(&tool("sse_cut", json!({}))).await.unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Operation(TransportError::StreamLost),
            "{mode}"
        );
        assert!(!e.should_invalidate(), "{mode}");
        let e2 = lease.call(&tool("sse_abort", json!({}))).await.unwrap_err();
        assert!(
            matches!(
                &e2.kind,
                ErrorKind::Operation(TransportError::StreamLost | TransportError::Closed { .. })
            ),
            "{mode}: {e2:?}"
        );
        assert!(!e2.should_invalidate(), "{mode}");
        assert!(
            t0.elapsed() < Duration::from_millis(1_000),
            "{mode}: not prompt ({:?})",
            t0.elapsed()
        );
        assert_eq!(lease.call(&echo("next")).await.unwrap().text(), "next");
        lease.release();
        m.close().await;
        let log = server.log();
        assert!(
            log.iter().all(|s| s.method == Method::POST),
            "{mode}: no GET\n{}",
            show(&log)
        );
        assert_eq!(count(&log, |s| s.header("last-event-id").is_some()), 0);
        assert_all_modern(&log);
        let calls: Vec<_> = log
            .iter()
            .filter(|s| s.is_post("tools/call"))
            .map(|s| s.params()["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            calls,
            ["sse", "sse_cut", "sse_abort", "echo"],
            "{mode}: each sent once"
        );
        assert_eq!(m.metrics().eras.era_changes, 0);
    }
}

/// The server changes era under running managers, in every mode.
///
/// Upgrade: a legacy server restarts as a dual-era one. The old session
/// gets 404 → session expired → invalidate → the next acquire probes again
/// (counted as a re-probe), finds a modern server, and makes a context.
///
/// Downgrade: a modern server restarts as a legacy one. A modern call is
/// answered 400 -32000 → `EraChanged`, `should_invalidate` → the next
/// acquire probes again and falls back to `initialize`.
#[tokio::test]
async fn the_server_changes_era_mid_run() {
    for mode in Mode::ALL {
        // Upgrade.
        let server = Server::start(Personality::Legacy).await;
        let (m, sink) = manager(&server, config(mode, Era::Auto));
        let mut lease = m.acquire(1).await.unwrap();
        assert_eq!(lease.info().era, SessionEra::Legacy);
        lease.call(&echo("old")).await.unwrap();
        let old = lease.id().to_owned();
        server.restart_as(Personality::Dual);
        let mark = server.len();
        let e = lease.call(&echo("lost")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionExpired, "{mode}");
        assert!(e.should_invalidate());
        lease.invalidate();
        let mut lease = m.acquire(1).await.unwrap();
        assert_eq!(lease.info().era, SessionEra::Modern, "{mode}");
        assert_eq!(lease.call(&echo("new")).await.unwrap().text(), "new");
        lease.release();
        m.close().await;
        assert_eq!(m.era(), Some(SessionEra::Modern));
        let log = server.since(mark);
        let lost = &log[0];
        assert_eq!((lost.rpc(), lost.status), ("tools/call", 404), "{mode}");
        assert_eq!(lost.header("mcp-session-id"), Some(old.as_str()));
        let after: Vec<_> = log[1..]
            .iter()
            .filter(|s| s.method == Method::POST)
            .collect();
        assert_eq!(
            after
                .iter()
                .map(|s| (s.rpc(), s.status, s.path))
                .collect::<Vec<_>>(),
            [
                ("server/discover", 200, Path::Modern),
                ("tools/call", 200, Path::Modern)
            ],
            "{mode}\n{}",
            show(&log)
        );
        for s in after {
            assert_modern_wire(s);
        }
        // The server declared the old session gone (404): no DELETE for
        // it; and the context sends none.
        let deletes: Vec<_> = log.iter().filter(|s| s.method == Method::DELETE).collect();
        assert!(deletes.is_empty(), "{mode}\n{}", show(&log));
        let mt = m.metrics();
        let e = mt.eras;
        assert_eq!(
            (
                e.discover_probes,
                e.fallbacks_to_legacy,
                e.era_reprobes,
                e.era_changes
            ),
            (2, 1, 1, 0),
            "{mode}: {e:?}"
        );
        assert_eq!((e.legacy.created, e.modern.created), (1, 1), "{mode}");
        assert_eq!((mt.reconnects, e.modern.reconnects), (1, 1), "{mode}");
        assert_accounting(&mt);
        let reprobes: Vec<_> = sink
            .kinds()
            .into_iter()
            .filter_map(|k| match k {
                EventKind::EraProbed {
                    reprobe: Some(why),
                    verdict,
                    ..
                } => Some((why, verdict)),
                _ => None,
            })
            .collect();
        assert_eq!(reprobes.len(), 1, "{mode}");
        assert_eq!(reprobes[0].1, "modern");

        // Downgrade.
        let server = Server::start(Personality::Modern).await;
        let (m, sink) = manager(&server, config(mode, Era::Auto));
        let mut lease = m.acquire(1).await.unwrap();
        assert_eq!(lease.info().era, SessionEra::Modern);
        lease.call(&echo("modern")).await.unwrap();
        server.restart_as(Personality::Legacy);
        let mark = server.len();
        let e = lease.call(&echo("changed")).await.unwrap_err();
        assert!(
            matches!(&e.kind, ErrorKind::EraChanged(TransportError::BadRequest { code: Some(-32000), message })
                if message == NOT_INITIALIZED),
            "{mode}: {e:?}"
        );
        assert!(e.should_invalidate() && e.is_era_changed(), "{mode}");
        assert_eq!(m.metrics().eras.era_changes, 1, "{mode}");
        lease.invalidate();
        let mut lease = m.acquire(1).await.unwrap();
        assert_eq!(lease.info().era, SessionEra::Legacy, "{mode}");
        assert_eq!(lease.call(&echo("legacy")).await.unwrap().text(), "legacy");
        lease.release();
        m.close().await;
        assert_eq!(m.era(), Some(SessionEra::Legacy));
        let log = server.since(mark);
        assert_eq!(
            log.iter().map(|s| (s.rpc(), s.status)).collect::<Vec<_>>(),
            [
                ("tools/call", 400),
                ("server/discover", 400),
                ("initialize", 200),
                ("notifications/initialized", 202),
                ("tools/call", 200),
                ("", 200),
            ],
            "{mode}: the invalidated context sends nothing; the session ends with DELETE\n{}",
            show(&log)
        );
        assert_eq!(
            log[1].conn, log[2].conn,
            "fallback on the probe's connection"
        );
        let mt = m.metrics();
        let e = mt.eras;
        assert_eq!(
            (
                e.discover_probes,
                e.fallbacks_to_legacy,
                e.era_reprobes,
                e.era_changes
            ),
            (2, 1, 1, 1),
            "{mode}: {e:?}"
        );
        assert_eq!((e.modern.created, e.legacy.created), (1, 1));
        assert_eq!((mt.reconnects, e.legacy.reconnects), (1, 1), "{mode}");
        assert_accounting(&mt);
        assert!(sink.kinds().contains(&EventKind::EraChanged));
    }
}

/// An `auto` manager whose legacy server turns modern-only: the next
/// `initialize` is refused with -32022 (a modern error), and the manager
/// probes at once and makes a context — within the same acquire. On a
/// dual-era server `initialize` keeps working, and nothing is probed.
#[tokio::test]
async fn an_initialize_refused_with_a_modern_error_probes_at_once() {
    let server = Server::start(Personality::Legacy).await;
    let (m, _) = manager(&server, config(Mode::PerRequest, Era::Auto));
    once(&m, 1, &echo("legacy")).await;
    server.restart_as(Personality::Dual);
    once(&m, 1, &echo("still legacy")).await;
    assert_eq!(
        m.metrics().eras.discover_probes,
        1,
        "initialize still works"
    );
    server.restart_as(Personality::Modern);
    let mark = server.len();
    let mut lease = m.acquire(1).await.expect("one acquire");
    assert_eq!(lease.info().era, SessionEra::Modern);
    lease.call(&echo("modern")).await.unwrap();
    lease.release();
    m.close().await;
    // (The previous per-request session's DELETE may land after the
    // restart: POSTs only.)
    let log: Vec<_> = server
        .since(mark)
        .into_iter()
        .filter(|s| s.method == Method::POST)
        .collect();
    assert_eq!(
        log.iter().map(|s| (s.rpc(), s.status)).collect::<Vec<_>>(),
        [
            ("initialize", 400),
            ("server/discover", 200),
            ("tools/call", 200)
        ],
        "\n{}",
        show(&log)
    );
    assert_eq!(log[0].conn, log[1].conn);
    let e = m.metrics().eras;
    assert_eq!(
        (e.discover_probes, e.era_reprobes, e.fallbacks_to_legacy),
        (2, 1, 1),
        "{e:?}"
    );
    assert_eq!((e.legacy.created, e.modern.created), (2, 1));
}

/// A legacy session whose server is replaced by a modern-only one. Its
/// next request (legacy version header, no envelope) is answered 400
/// -32022 `{supported: ["2026-07-28"], requested: "2025-11-25"}` — an
/// answer only a 2026-07-28 server gives. The session should be given up
/// like a lost one (invalidate, re-probe, modern), not kept for its whole
/// TTL with every call failing.
#[tokio::test]
async fn a_legacy_session_on_a_server_turned_modern_only_is_given_up() {
    let server = Server::start(Personality::Legacy).await;
    let (m, _) = manager(&server, config(Mode::Reuse, Era::Auto));
    let mut lease = m.acquire(1).await.unwrap();
    lease.call(&echo("legacy")).await.unwrap();
    server.restart_as(Personality::Modern);
    let e = lease.call(&echo("refused")).await.unwrap_err();
    let last = server.log().last().unwrap().clone();
    assert!(last.is_post("tools/call") && last.status == 400, "{last}");
    assert!(
        e.should_invalidate(),
        "the session is unusable for good, but: {e:?}"
    );
    lease.invalidate();
    let mut lease = m.acquire(1).await.unwrap();
    assert_eq!(lease.info().era, SessionEra::Modern);
    lease.call(&echo("modern")).await.unwrap();
    lease.release();
    m.close().await;
    assert_eq!(m.metrics().eras.era_reprobes, 1);
}

/// A modern context whose server is replaced by a legacy-only Python SDK
/// 1.x (FastMCP) server, which answers every POST without a session with
/// 400 `-32600 "Bad Request: Missing session ID"`. The probe takes that
/// very answer for a legacy server (see `fallback_rows_end_to_end`); a live
/// context should too — `EraChanged`, then a re-probe and a fallback —
/// rather than fail every call until its TTL.
#[tokio::test]
async fn a_downgrade_to_a_python_legacy_server_is_an_era_change() {
    for mode in Mode::ALL {
        let server = Server::start(Personality::Modern).await;
        let (m, _) = manager(&server, config(mode, Era::Auto));
        let mut lease = m.acquire(1).await.unwrap();
        lease.call(&echo("modern")).await.unwrap();
        server.restart_as(Personality::Legacy);
        server.set(|k| k.python_legacy = true);
        let e = lease.call(&echo("changed")).await.unwrap_err();
        assert_eq!(server.log().last().unwrap().status, 400);
        assert!(e.is_era_changed(), "{mode}: {e:?}");
        lease.invalidate();
        let mut lease = m.acquire(1).await.unwrap();
        assert_eq!(lease.info().era, SessionEra::Legacy, "{mode}");
        lease.call(&echo("legacy")).await.unwrap();
        lease.release();
        m.close().await;
        let e = m.metrics().eras;
        assert_eq!(
            (e.era_changes, e.era_reprobes, e.fallbacks_to_legacy),
            (1, 1, 1),
            "{mode}"
        );
    }
}

/// `ttlMs` of the discover result: 60000 lets every new context of a
/// per-request manager skip the probe (one discover for many acquires); 0
/// makes every new context probe. A VU's own `server/discover` refreshes
/// `Manager::discovery()`, and a fresh result it brings lets the next
/// context skip its probe.
#[tokio::test]
async fn discover_ttl_is_honoured() {
    for era in [Era::Auto, Era::Modern] {
        for (ttl, probes) in [(60_000, 1), (0, 5)] {
            let server = Server::start(Personality::Modern).await;
            server.set(|k| k.discover_ttl_ms = ttl);
            let (m, _) = manager(&server, config(Mode::PerRequest, era));
            for i in 0..5 {
                once(&m, 1, &echo(&format!("{i}"))).await;
            }
            let log = server.log();
            assert_eq!(discovers(&log), probes, "{era} ttl {ttl}\n{}", show(&log));
            let mt = m.metrics();
            assert_eq!(
                (mt.eras.discover_probes, mt.eras.modern.created),
                (probes as u64, 5),
                "{era} ttl {ttl}"
            );
            // Five contexts, five connections.
            let conns: BTreeSet<_> = log.iter().map(|s| s.conn).collect();
            assert_eq!(conns.len(), 5);
            assert_eq!(m.discovery().is_some(), ttl > 0, "{era} ttl {ttl}");
            if let Some(d) = m.discovery() {
                assert_eq!(d.supported_versions, [MODERN]);
                assert_eq!(d.ttl_ms, ttl);
                assert_eq!(d.instructions.as_deref(), Some("v1"));
                assert_eq!(d.cache_scope.as_deref(), Some("private"));
            }
            m.close().await;
            assert_all_modern(&server.log());
        }
    }

    // A VU's discover refreshes the manager's.
    let server = Server::start(Personality::Modern).await;
    server.set(|k| k.discover_ttl_ms = 60_000);
    let (m, _) = manager(&server, config(Mode::Reuse, Era::Auto));
    let mut lease = m.acquire(1).await.unwrap();
    assert_eq!(m.discovery().unwrap().instructions.as_deref(), Some("v1"));
    server.set(|k| k.instructions = "v2".into());
    let r = lease.call(&Operation::Discover).await.unwrap();
    assert_eq!(r.discovery().unwrap().instructions.as_deref(), Some("v2"));
    assert_eq!(m.discovery().unwrap().instructions.as_deref(), Some("v2"));
    lease.release();
    m.close().await;

    // ttlMs 0: nothing fresh until a VU's discover brings a result that is.
    let server = Server::start(Personality::Modern).await;
    let (m, _) = manager(&server, config(Mode::PerRequest, Era::Auto));
    let mut lease = m.acquire(1).await.unwrap();
    assert!(m.discovery().is_none());
    server.set(|k| k.discover_ttl_ms = 60_000);
    lease.call(&Operation::Discover).await.unwrap();
    lease.release();
    assert_eq!(m.discovery().unwrap().ttl_ms, 60_000);
    let mark = server.len();
    once(&m, 1, &echo("no probe")).await;
    let log = server.since(mark);
    assert_eq!(
        log.iter().map(|s| s.rpc()).collect::<Vec<_>>(),
        ["tools/call"],
        "a fresh discover result: no probe"
    );
    assert_eq!(
        m.metrics().eras.discover_probes,
        1,
        "the VU's own discover is no probe"
    );
    m.close().await;
}

/// `Mcp-Param-{Name}`: once `tools/list` has shown a tool's `x-mcp-header`
/// annotations, its calls mirror those arguments into headers (as they
/// are, or as the base64 sentinel), leave them out when the argument is
/// null or absent, and every context of the manager knows them. Other
/// tools' calls carry none. Before the list, the server refuses the call
/// with -32020, typed as `HeaderMismatch`.
#[tokio::test]
async fn mcp_param_headers_follow_the_tools_list_annotations() {
    let server = Server::start(Personality::Modern).await;
    let (m, sink) = manager(&server, config(Mode::Reuse, Era::Auto));
    let mut lease = m.acquire(1).await.unwrap();
    let route = |args: Value| tool("route", args);

    // Not yet listed: no header, and the server says so.
    let e = lease
        .call(&route(json!({"region": "eu-west", "shard": 7})))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::Operation(TransportError::HeaderMismatch { status: 400, .. })
        ),
        "{e:?}"
    );
    assert!(!e.should_invalidate());
    assert_eq!(failed_ops(&sink).len(), 1);

    lease.call(&list()).await.unwrap();
    let mark = server.len();
    let calls = [
        json!({"region": "eu-west", "shard": 7, "text": "a"}),
        json!({"region": "zürich ", "shard": 8}),
        json!({"region": null, "text": "x"}),
        json!({"shard": 9}),
        json!({"region": "=?base64?eA==?=", "shard": 10.0}),
    ];
    for args in &calls {
        let r = lease.call(&route(args.clone())).await.unwrap();
        assert!(r.text().starts_with("region="), "{r}");
    }
    lease.call(&echo("no params")).await.unwrap();
    lease.release();
    // Another VU's new context: the annotations are the manager's.
    let mut other = m.acquire(2).await.unwrap();
    other
        .call(&route(json!({"region": "ap", "shard": 1})))
        .await
        .unwrap();
    other.release();
    m.close().await;
    assert_eq!(failed_ops(&sink).len(), 1, "only the call before the list");

    let log: Vec<_> = server
        .since(mark)
        .into_iter()
        .filter(|s| s.is_post("tools/call"))
        .collect();
    let params = |s: &Seen| {
        let mut h: Vec<(String, String)> = s
            .headers
            .iter()
            .filter(|(n, _)| n.as_str().starts_with("mcp-param-"))
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        h.sort();
        h
    };
    let h = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let got: Vec<_> = log.iter().map(params).collect();
    assert_eq!(
        got,
        [
            h(&[("mcp-param-region", "eu-west"), ("mcp-param-shard", "7")]),
            h(&[
                ("mcp-param-region", "=?base64?esO8cmljaCA=?="),
                ("mcp-param-shard", "8")
            ]),
            h(&[]),
            h(&[("mcp-param-shard", "9")]),
            h(&[
                ("mcp-param-region", "=?base64?PT9iYXNlNjQ/ZUE9PT89?="),
                ("mcp-param-shard", "10")
            ]),
            h(&[]),
            h(&[("mcp-param-region", "ap"), ("mcp-param-shard", "1")]),
        ],
        "\n{}",
        show(&log)
    );
    assert_eq!(log[5].params()["name"], "echo");
    assert_ne!(log[6].conn, log[0].conn, "the other VU's context");
    assert!(log.iter().all(|s| s.status == 200));
}

/// `ping` does not exist in the stateless era: refused before anything is
/// sent, and the context goes on working. In the legacy era it is sent.
#[tokio::test]
async fn ping_is_not_sent_in_the_modern_era() {
    for mode in Mode::ALL {
        let server = Server::start(Personality::Dual).await;
        let (m, _) = manager(&server, config(mode, Era::Auto));
        let mut lease = m.acquire(1).await.unwrap();
        let mark = server.len();
        let e = lease.call(&Operation::Ping).await.unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Operation(TransportError::NotInModernEra { method: "ping" }),
            "{mode}"
        );
        assert!(!e.should_invalidate());
        assert_eq!(server.len(), mark, "{mode}: nothing sent");
        assert_eq!(lease.call(&echo("after")).await.unwrap().text(), "after");
        lease.release();
        m.close().await;
        assert_eq!(count(&server.log(), |s| s.rpc() == "ping"), 0);
        assert_eq!(m.metrics().eras.era_changes, 0);

        // The same server, a legacy manager: ping goes out and is answered.
        let (m, _) = manager(&server, config(mode, Era::Legacy));
        let mut lease = m.acquire(1).await.unwrap();
        lease.call(&Operation::Ping).await.expect("legacy ping");
        lease.release();
        m.close().await;
        let pings: Vec<_> = server
            .log()
            .into_iter()
            .filter(|s| s.is_post("ping"))
            .collect();
        assert_eq!(pings.len(), 1, "{mode}");
        assert_eq!((pings[0].status, pings[0].path), (200, Path::Legacy));
    }
}
