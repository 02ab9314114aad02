//! Hostile input to the server: no panic, no hang, bounded answers and
//! bounded state.
//!
//! Each case is a server config (every era, fixtures on or off, SSE or
//! JSON, priming, chunking, session limits and expiry, `localhost_only`)
//! and a sequence of HTTP requests, each fed through
//! [`Server::handle_parts`] — the function hyper's service calls per
//! request, body reading included — on a current-thread tokio runtime with
//! paused time (so a `slow` tool or a waiting client request costs no real
//! time). A request is arbitrary bytes, or a JSON-RPC skeleton (of either
//! era, with its routing headers and `_meta` envelope, usually coherent so
//! that it climbs far up the ladder) with hostile members: random methods,
//! ids of every JSON type, huge and out-of-range numbers, deep nesting,
//! long strings, escapes; and random values for `Mcp-Session-Id`,
//! `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Accept`,
//! `Content-Type`, `Content-Length`, `Host`, `Origin`, `Forwarded`,
//! `Mcp-Param-*` (often given twice). The answer's body is read as a
//! client would — wholly, or only its first frame before the client goes
//! away — for at most a minute of (paused) time.
//!
//! What holds, for every request:
//!
//! - no panic (a panic fails the case);
//! - the answer's body is at most [`BODY_FACTOR`] times the request's size
//!   plus [`BODY_CAP`];
//! - the server's state grows by a bounded amount per request: live
//!   sessions ≤ requests so far, the event log grows by at most
//!   [`EVENTS_PER_REQUEST`] events and by at most [`BODY_FACTOR`] times the
//!   request's size plus [`BODY_CAP`] bytes, the tool calls waiting for a
//!   client ≤ one per peer once the clients have gone away, and the
//!   `subscriptions/listen` streams held ≤ one once their clients have
//!   gone away (each table forgets its abandoned entries when the next one
//!   is added).
//!
//! `PROPTEST_CASES=N` runs N cases (default [`DEFAULT_CASES`]);
//! `PROPTEST_RNG_SEED=N` explores other cases than the fixed default seed.
//! A million cases in release (`PROPTEST_CASES=1000000 cargo test
//! --release -p mcp-sim --lib server::fuzz_tests`) took about 14 min for
//! the request sequences and 2 min for the arbitrary bodies, on two
//! shared cores.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::{Server, ServerConfig, ServerEra};

/// Cases per property in `cargo test` (debug build, a few seconds).
const DEFAULT_CASES: u32 = 384;

/// An answer's body is at most this many times its request's size ...
const BODY_FACTOR: usize = 8;

/// ... plus this many bytes (the largest fixed answer: `tools/list` with
/// every conformance fixture, SSE-framed, with notifications before it).
const BODY_CAP: usize = 64 * 1024;

/// Events one request may add to the log.
const EVENTS_PER_REQUEST: usize = 8;

/// How long (of paused time) a client reads an answer's body at most: a
/// `subscriptions/listen` stream stays open, a waiting tool call times out
/// after 10 s.
const READ_FOR: Duration = Duration::from_secs(60);

/// One request of a case.
#[derive(Clone, Debug)]
struct Hostile {
    method: Method,
    path: &'static str,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// The client reads only the first frame of the answer, then goes
    /// away (drops the body).
    leave_early: bool,
}

impl Hostile {
    /// The request's size: what the answer and the log are bounded by.
    fn size(&self) -> usize {
        self.path.len()
            + self.body.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

fn config() -> impl Strategy<Value = ServerConfig> {
    (
        (
            any::<u64>(),
            prop::sample::select(vec![0.0, 0.5, 1.0]),
            0u32..3,
            0u32..5,
            prop::option::of(0u64..50),
            prop::option::of(0u64..50),
            prop::option::of(0usize..4),
        ),
        (
            any::<bool>(),
            prop_oneof![8 => Just(1usize << 20), 1 => Just(64), 1 => Just(0)],
            prop::bool::weighted(0.1),
            any::<bool>(),
            prop::sample::select(ServerEra::ALL.to_vec()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (seed, sse_ratio, notes, split, ttl, idle, max_sessions),
                (quirk, max_body, localhost, conformance, era, priming),
            )| ServerConfig {
                seed,
                sse_ratio,
                notifications_before_response: notes,
                split_chunks: split,
                session_ttl: ttl.map(Duration::from_millis),
                session_idle: idle.map(Duration::from_millis),
                max_sessions,
                answer_400_for_unknown_session: quirk,
                max_body_bytes: max_body,
                localhost_only: localhost,
                conformance_tools: conformance,
                era,
                sse_priming: priming,
                ..ServerConfig::default()
            },
        )
}

/// Methods: every one either era serves or refuses, and random ones.
fn rpc_method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "initialize",
            "notifications/initialized",
            "notifications/cancelled",
            "ping",
            "logging/setLevel",
            "tools/list",
            "tools/call",
            "server/discover",
            "subscriptions/listen",
            "resources/list",
            "resources/read",
            "resources/templates/list",
            "resources/subscribe",
            "prompts/list",
            "prompts/get",
            "completion/complete",
            "sampling/createMessage",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
        1 => "[a-z/]{0,40}",
    ]
}

/// Tool names: the built-in tools, every fixture and MRTR tool, and random
/// ones.
fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "echo", "slow", "fail", "jsonrpc_error", "test_simple_text", "test_error_handling",
            "test_sampling", "test_elicitation", "test_elicitation_sep1034_defaults",
            "test_elicitation_sep1330_enums", "test_trigger_tool_change",
            "test_trigger_prompt_change", "test_trigger_resource_change", "test_logging_tool",
            "test_tool_with_logging", "test_tool_with_progress", "test_image_content",
            "test_audio_content", "test_embedded_resource", "test_multiple_content_types",
            "test_missing_capability", "test_param_header", "test_streaming_elicitation",
            "test_input_required_result_capabilities", "test_input_required_result_elicitation",
            "test_input_required_result_list_roots", "test_input_required_result_multi_round",
            "test_input_required_result_multiple_inputs", "test_input_required_result_prompt",
            "test_input_required_result_request_state", "test_input_required_result_sampling",
            "test_input_required_result_tampered_state", "test_simple_prompt",
            "test_prompt_with_arguments", "test_prompt_with_embedded_resource",
            "test_prompt_with_image",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Hostile JSON values: huge and odd numbers, long and escaped strings,
/// deep nesting, and plain leaves.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::from)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1.7976931348623157e308)),
        Just(json!(5e-324)),
        any::<String>().prop_map(Value::from),
        "[\\x00-\\x1f\"\\\\]{0,16}".prop_map(Value::from),
        (0usize..5000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    leaf.prop_recursive(4, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z_/.]{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON text nested `depth` levels deep (arrays or objects), past
/// serde_json's recursion limit at the larger depths.
fn deep(depth: usize, objects: bool) -> String {
    let (open, close) = if objects {
        ("{\"a\":", "}")
    } else {
        ("[", "]")
    };
    format!("{}1{}", open.repeat(depth), close.repeat(depth))
}

/// Ids of every JSON type, and numbers JSON can write but no integer holds.
fn rpc_id() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.9,
        prop_oneof![
            4 => (0u64..4).prop_map(|n| n.to_string()),
            1 => any::<u64>().prop_map(|n| n.to_string()),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec![
                "null", "true", "1.5", "-0", "1e400", "-1e400", "1e-400",
                "123456789012345678901234567890", "\"a\"", "\"\"", "{}", "[1]",
                "0.0000000000000000000000000000000001",
            ])
            .prop_map(str::to_owned),
            1 => any::<String>().prop_map(|s| Value::from(s).to_string()),
        ],
    )
}

/// The parts of a JSON-RPC request: their text, so that members can be
/// malformed or repeated.
#[derive(Clone, Debug)]
struct Skeleton {
    jsonrpc: Option<&'static str>,
    id: Option<String>,
    method: Option<String>,
    /// The tool, prompt or URI named.
    name: String,
    params: ParamsShape,
    /// The `_meta` envelope of the stateless era.
    meta: MetaShape,
    /// Extra text appended to the params object (a repeated member, junk).
    extra: Option<String>,
    /// How the message is wrapped: alone, in a batch, padded, cut short.
    wrap: u8,
    cut: usize,
}

#[derive(Clone, Debug)]
enum ParamsShape {
    Absent,
    /// The usual members for the method, with hostile arguments.
    Usual(Value),
    /// Any value in place of the params object.
    Any(Value),
    /// Nested deeper than any parser should go.
    Deep(usize, bool),
}

#[derive(Clone, Debug)]
enum MetaShape {
    Absent,
    /// The envelope with this protocol version, and maybe a log level.
    Envelope(String, bool),
    Any(Value),
}

fn protocol_version() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("2026-07-28".to_owned()),
        4 => prop::sample::select(vec![
            "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", "1900-01-01", "",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn skeleton() -> impl Strategy<Value = Skeleton> {
    (
        prop::option::weighted(
            0.95,
            prop_oneof![
                12 => Just("\"2.0\""),
                1 => prop::sample::select(vec!["\"1.0\"", "2.0", "null"]),
            ],
        ),
        rpc_id(),
        prop::option::weighted(0.95, rpc_method()),
        tool_name(),
        prop_oneof![
            1 => Just(ParamsShape::Absent),
            6 => hostile_value().prop_map(ParamsShape::Usual),
            1 => hostile_value().prop_map(ParamsShape::Any),
            1 => (1usize..600, any::<bool>()).prop_map(|(d, o)| ParamsShape::Deep(d, o)),
        ],
        prop_oneof![
            1 => Just(MetaShape::Absent),
            4 => (protocol_version(), any::<bool>()).prop_map(|(v, l)| MetaShape::Envelope(v, l)),
            1 => hostile_value().prop_map(MetaShape::Any),
        ],
        prop::option::weighted(
            0.2,
            prop_oneof![
                Just(",\"name\":\"echo\"".to_owned()),
                Just(",\"arguments\":{\"ms\":18446744073709551615}".to_owned()),
                Just(",\"requestState\":\"forged\"".to_owned()),
                Just(",\"inputResponses\":{\"sampling\":{\"x\":1}}".to_owned()),
                any::<String>(),
            ],
        ),
        0u8..24,
        any::<usize>(),
    )
        .prop_map(
            |(jsonrpc, id, method, name, params, meta, extra, wrap, cut)| Skeleton {
                jsonrpc,
                id,
                method,
                name,
                params,
                meta,
                extra,
                wrap,
                cut,
            },
        )
}

impl Skeleton {
    /// The request body's bytes.
    fn body(&self) -> Vec<u8> {
        let mut members = Vec::new();
        if let Some(j) = self.jsonrpc {
            members.push(format!("\"jsonrpc\":{j}"));
        }
        if let Some(id) = &self.id {
            members.push(format!("\"id\":{id}"));
        }
        if let Some(m) = &self.method {
            members.push(format!("\"method\":{}", Value::from(m.as_str())));
        }
        let meta = match &self.meta {
            MetaShape::Absent => None,
            MetaShape::Envelope(v, log) => {
                let mut m = json!({
                    "io.modelcontextprotocol/protocolVersion": v,
                    "io.modelcontextprotocol/clientCapabilities": {
                        "sampling": {}, "elicitation": {}, "roots": {}
                    },
                    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
                });
                if *log {
                    m["io.modelcontextprotocol/logLevel"] = json!("debug");
                }
                Some(m)
            }
            MetaShape::Any(v) => Some(v.clone()),
        };
        let params = match &self.params {
            ParamsShape::Absent => None,
            ParamsShape::Usual(args) => {
                let mut p = json!({
                    "name": self.name,
                    "uri": self.name,
                    "arguments": args,
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"sampling": {}, "elicitation": {}},
                    "level": "info",
                    "notifications": {"toolsListChanged": true, "promptsListChanged": true},
                    "ref": {"type": "ref/prompt", "name": self.name},
                    "argument": {"name": "a", "value": "b"},
                });
                if let Value::Object(a) = args {
                    // Arguments as the tools read them, too.
                    p["arguments"] = Value::Object(a.clone());
                }
                if let Some(m) = meta {
                    p["_meta"] = m;
                }
                Some(p.to_string())
            }
            ParamsShape::Any(v) => Some(v.to_string()),
            ParamsShape::Deep(d, o) => Some(deep(*d, *o)),
        };
        if let Some(mut p) = params {
            if let (Some(extra), true) = (&self.extra, p.ends_with('}')) {
                p.pop();
                p.push_str(extra);
                p.push('}');
            }
            members.push(format!("\"params\":{p}"));
        }
        let object = format!("{{{}}}", members.join(","));
        let mut out = match self.wrap {
            0 => format!("[{object}]").into_bytes(),
            1 => format!("  \r\n\t{object}\n ").into_bytes(),
            2 => format!("{object}{object}").into_bytes(),
            3 => format!("\u{feff}{object}").into_bytes(),
            _ => object.into_bytes(),
        };
        if self.wrap == 4 {
            // Cut short anywhere.
            out.truncate(self.cut % (out.len() + 1));
        }
        out
    }

    /// The headers a client of the body's era would send for it.
    fn routing(&self) -> Vec<(String, Vec<u8>)> {
        let mut h = Vec::new();
        if let MetaShape::Envelope(v, _) = &self.meta {
            h.push(("mcp-protocol-version".to_owned(), v.as_bytes().to_vec()));
        }
        if let Some(m) = &self.method {
            h.push(("mcp-method".to_owned(), m.as_bytes().to_vec()));
        }
        // A name that is not a valid header value as it is goes unsent
        // (the sentinel form comes from `header_value`'s plausible ones).
        if self.name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            h.push(("mcp-name".to_owned(), self.name.clone().into_bytes()));
        }
        h
    }
}

/// Header names the server reads, and a few it does not.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "accept",
            "content-type", "content-length", "host", "origin", "forwarded", "last-event-id",
            "mcp-param-a", "mcp-param-region",
        ])
        .prop_map(str::to_owned),
        1 => "x-[a-z0-9-]{1,12}",
    ]
}

/// Header values: plausible ones, and any bytes a header value may hold
/// (visible ASCII, spaces, tabs, obs-text).
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "srv-1", "srv-2", "srv-3", "srv-0", "srv-01", "srv-18446744073709551616", "",
            "2026-07-28", "2025-11-25", "2025-06-18", "1900-01-01",
            "application/json, text/event-stream", "application/json", "text/event-stream",
            "*/*", "text/*;q=0.1, application/*", "application/json; charset=utf-8",
            "APPLICATION/JSON", "text/plain", "tools/call", "tools/list", "server/discover",
            "initialize", "echo", "=?base64?ZWNobw==?=", "=?base64?!!?=", "=?base64??=",
            "0", "18446744073709551616", "-1", " 12 ", "localhost", "127.0.0.1:1", "[::1]",
            "evil.example", "http://localhost", "null", "for=\"[::1]:80\"", "for=unknown",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => vec(
            prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t'), 1 => 0x80u8..=0xff],
            0..64,
        ),
        1 => (0usize..9000).prop_map(|n| vec![b'a'; n]),
    ]
}

fn http_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        8 => Just(Method::POST),
        1 => Just(Method::GET),
        1 => Just(Method::DELETE),
        1 => prop::sample::select(vec![
            Method::PUT, Method::HEAD, Method::OPTIONS, Method::PATCH, Method::TRACE,
            Method::from_bytes(b"FUZZ").unwrap_or(Method::POST),
        ]),
    ]
}

fn hostile_request() -> impl Strategy<Value = Hostile> {
    let body = prop_oneof![
        5 => skeleton().prop_map(|s| (s.body(), s.routing())),
        1 => vec(any::<u8>(), 0..512).prop_map(|b| (b, Vec::new())),
        1 => Just((Vec::new(), Vec::new())),
    ];
    (
        http_method(),
        prop_oneof![
            8 => Just("/mcp"),
            1 => prop::sample::select(vec!["/", "/mcp/", "/MCP", "/mcp?x=1", "/%00", "/mcp%2F"]),
        ],
        body,
        // The usual Accept and Content-Type, mostly.
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.85),
        // The routing headers of the body's era, mostly.
        prop::bool::weighted(0.7),
        // The session `initialize` opened, often.
        prop::bool::weighted(0.6),
        vec((header_name(), header_value()), 0..4),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(method, path, (body, routing), accept, ctype, route, session, extra, leave_early)| {
                let mut headers = Vec::new();
                if accept {
                    headers.push((
                        "accept".to_owned(),
                        b"application/json, text/event-stream".to_vec(),
                    ));
                }
                if ctype {
                    headers.push(("content-type".to_owned(), b"application/json".to_vec()));
                }
                if route {
                    headers.extend(routing);
                }
                if session {
                    headers.push(("mcp-session-id".to_owned(), b"srv-1".to_vec()));
                }
                headers.extend(extra);
                Hostile {
                    method,
                    path,
                    headers,
                    body,
                    leave_early,
                }
            },
        )
}

/// A case's sequence of requests: usually opened by an `initialize` that
/// creates `srv-1` (so session ids in headers name a live session).
fn requests() -> impl Strategy<Value = Vec<Hostile>> {
    (any::<bool>(), vec(hostile_request(), 1..7)).prop_map(|(init, mut reqs)| {
        if init {
            let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"sampling": {}, "elicitation": {}},
                "clientInfo": {"name": "fuzz", "version": "0"}}});
            reqs.insert(
                0,
                Hostile {
                    method: Method::POST,
                    path: "/mcp",
                    headers: vec![
                        (
                            "accept".to_owned(),
                            b"application/json, text/event-stream".to_vec(),
                        ),
                        ("content-type".to_owned(), b"application/json".to_vec()),
                    ],
                    body: body.to_string().into_bytes(),
                    leave_early: false,
                },
            );
        }
        reqs
    })
}

/// What the server holds, for the bounds.
#[derive(Debug, Clone, Copy)]
struct Held {
    sessions: usize,
    events: usize,
    event_bytes: usize,
    peers: usize,
    waiting: usize,
    listen_streams: usize,
}

fn held(server: &Server) -> Held {
    let st = server.lock();
    let (peers, waiting) = st.client_requests.held();
    Held {
        sessions: st.sessions.len(),
        events: st.events.len(),
        event_bytes: st
            .events
            .iter()
            .map(|e| serde_json::to_string(e).map_or(0, |s| s.len()))
            .sum(),
        peers,
        waiting,
        listen_streams: st.listeners.held(),
    }
}

/// Sends `req` through the server's per-request path and reads the answer
/// as its client would. Returns the status and the body's size.
async fn exchange(server: &Server, req: &Hostile) -> (u16, usize) {
    let mut builder = Request::builder().method(req.method.clone()).uri(req.path);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_slice());
    }
    // Names and values are all valid: the strategies make only those.
    let request = builder
        .body(Full::new(Bytes::from(req.body.clone())))
        .unwrap_or_else(|e| panic!("the strategies make valid requests: {e}"));
    let (parts, body) = request.into_parts();
    let response = server.handle_parts(parts, body, Some("client")).await;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut got = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                // A reset on purpose: the connection dies.
                break;
            };
            if let Ok(data) = frame.into_data() {
                got += data.len();
            }
            if req.leave_early {
                break;
            }
        }
    };
    // An open stream (listen) ends when the client stops reading.
    let _ = tokio::time::timeout(READ_FOR, read).await;
    drop(body);
    // Let the tasks of dropped streams see it (keep-alives end).
    tokio::task::yield_now().await;
    (status, got)
}

/// Runs one case, checking the bounds after every request.
fn run_case(cfg: ServerConfig, reqs: &[Hostile]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| TestCaseError::fail(format!("runtime: {e}")))?;
    rt.block_on(async {
        let server = Server::new(cfg);
        let mut before = held(&server);
        for (n, req) in reqs.iter().enumerate() {
            let (status, body) = exchange(&server, req).await;
            let size = req.size();
            let after = held(&server);
            prop_assert!((100..600).contains(&status), "request {n}: status {status}");
            prop_assert!(
                body <= BODY_FACTOR * size + BODY_CAP,
                "request {n}: a body of {body} bytes for a request of {size}"
            );
            prop_assert!(
                after.sessions <= n + 1,
                "{} sessions after {} requests",
                after.sessions,
                n + 1
            );
            prop_assert!(
                after.events <= before.events + EVENTS_PER_REQUEST,
                "request {n} logged {} events",
                after.events - before.events
            );
            prop_assert!(
                after.event_bytes <= before.event_bytes + BODY_FACTOR * size + BODY_CAP,
                "request {n} logged {} bytes for a request of {size}",
                after.event_bytes - before.event_bytes
            );
            prop_assert!(
                after.peers <= n + 1 && after.waiting <= after.peers,
                "request {n}: {} calls wait in {} peers, their clients gone",
                after.waiting,
                after.peers
            );
            prop_assert!(
                after.listen_streams <= 1,
                "request {n}: {} listen streams held, their clients gone",
                after.listen_streams
            );
            before = after;
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(crate::strategy::proptest_config(
        DEFAULT_CASES,
        "proptest-regressions/server_fuzz.txt",
    ))]

    /// Hostile requests, structured and not, in sequences: no panic,
    /// bounded answers, bounded state.
    #[test]
    fn fuzz_hostile_requests_are_answered_within_bounds(
        cfg in config(),
        reqs in requests(),
    ) {
        run_case(cfg, &reqs)?;
    }

    /// Arbitrary bytes as the body of an otherwise well-formed POST, on
    /// every era: no panic, a bounded answer.
    #[test]
    fn fuzz_arbitrary_body_bytes(
        cfg in config(),
        body in vec(any::<u8>(), 0..2048),
        version in prop::option::of(protocol_version()),
    ) {
        let mut headers = vec![
            ("accept".to_owned(), b"application/json, text/event-stream".to_vec()),
            ("content-type".to_owned(), b"application/json".to_vec()),
            ("mcp-session-id".to_owned(), b"srv-1".to_vec()),
        ];
        if let Some(v) = version {
            headers.push(("mcp-protocol-version".to_owned(), v.into_bytes()));
        }
        let req = Hostile {
            method: Method::POST,
            path: "/mcp",
            headers,
            body,
            leave_early: false,
        };
        run_case(cfg, &[req])?;
    }
}

/// Builds a request to session `srv-1` (legacy era) of the tool `name`
/// with `arguments`.
fn legacy_call(id: u64, name: &str, arguments: Value, leave_early: bool) -> Hostile {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}});
    Hostile {
        method: Method::POST,
        path: "/mcp",
        headers: vec![
            (
                "accept".to_owned(),
                b"application/json, text/event-stream".to_vec(),
            ),
            ("content-type".to_owned(), b"application/json".to_vec()),
            ("mcp-session-id".to_owned(), b"srv-1".to_vec()),
        ],
        body: body.to_string().into_bytes(),
        leave_early,
    }
}

fn init() -> Hostile {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {"sampling": {}}}});
    Hostile {
        body: body.to_string().into_bytes(),
        headers: vec![
            (
                "accept".to_owned(),
                b"application/json, text/event-stream".to_vec(),
            ),
            ("content-type".to_owned(), b"application/json".to_vec()),
        ],
        ..legacy_call(0, "", json!({}), false)
    }
}

/// Regression (found while writing the fuzz test's state bounds): a client that calls a tool that
/// asks it for sampling and goes away before answering left its call in
/// the session's table for good; call after call, the table grew without
/// bound. Abandoned calls are now forgotten when the next one is made.
#[test]
fn abandoned_client_requests_do_not_pile_up() {
    let cfg = ServerConfig {
        conformance_tools: true,
        ..ServerConfig::default()
    };
    let mut reqs = vec![init()];
    for id in 1..=20 {
        reqs.push(legacy_call(
            id,
            "test_sampling",
            json!({"prompt": "p"}),
            true,
        ));
    }
    run_case(cfg, &reqs).unwrap();
}

/// Regression (found while writing the fuzz test's state bounds):
/// `subscriptions/listen` streams
/// whose clients went away were forgotten only when a list changed; a
/// client opening stream after stream grew the list without bound. They
/// are now also forgotten when a stream opens.
#[test]
fn abandoned_listen_streams_do_not_pile_up() {
    let cfg = ServerConfig {
        conformance_tools: true,
        era: ServerEra::Modern,
        ..ServerConfig::default()
    };
    let reqs: Vec<Hostile> = (1..=20)
        .map(|id| {
            let body = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
                "params": {"notifications": {"toolsListChanged": true}, "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {}}}});
            Hostile {
                method: Method::POST,
                path: "/mcp",
                headers: vec![
                    (
                        "accept".to_owned(),
                        b"application/json, text/event-stream".to_vec(),
                    ),
                    ("content-type".to_owned(), b"application/json".to_vec()),
                    ("mcp-protocol-version".to_owned(), b"2026-07-28".to_vec()),
                    ("mcp-method".to_owned(), b"subscriptions/listen".to_vec()),
                ],
                body: body.to_string().into_bytes(),
                leave_early: true,
            }
        })
        .collect();
    run_case(cfg, &reqs).unwrap();
}
