//! Hostile responses to the client: no panic, typed errors, bounded
//! memory. The sibling of `props.rs` (which proves the reader's finer
//! laws); this module throws worse at more of the path.
//!
//! Each case is a response — status, headers (`Content-Type`, `Location`,
//! `Mcp-Session-Id` of odd bytes) and a body in random chunks, maybe
//! ending in a transport error, maybe never ending — read the way
//! `HttpConnection::post` reads one, for either era: `response::read`
//! (status mapping, the JSON body, the SSE scanner, the 2026-07-28 error
//! codes), then what the client does with what it got: the session id
//! check of `initialize`, the `InitializeResult`, a tool result's
//! `isError`, the `server/discover` result, `ttlMs`, MRTR's
//! `input_required`, the `x-mcp-header` annotations of `tools/list`, and
//! every accessor of the result. Bodies are arbitrary bytes, JSON-RPC
//! messages with hostile members (huge and out-of-range numbers, deep
//! nesting, unknown `resultType`s, error codes and data of every type,
//! batches), and SSE streams (priming events, notifications, server
//! requests, other ids, `retry:` past `u64`, odd ids, comments, fields
//! without a colon, `\r`/`\n`/`\r\n` mixes, a BOM, very long lines).
//!
//! What holds, for every case:
//!
//! - no panic;
//! - the outcome is a value, or an error of a kind the status, content
//!   type and body allow ([`allowed`]);
//! - memory is bounded by the body cap: the reader pulls at most the cap
//!   (or the 64 KiB it reads of an error body) plus one chunk, whatever
//!   the body's length — a body that never ends included — and a body
//!   over the cap is the typed `BodyTooLarge`, not a bigger buffer.
//!
//! `PROPTEST_CASES=N` runs N cases per property (default
//! [`DEFAULT_CASES`]); the runner's seed is fixed unless
//! `PROPTEST_RNG_SEED` is set, so `cargo test` draws the same cases every
//! time. A million cases in release (`PROPTEST_CASES=1000000 cargo test
//! --release -p mcp-session --lib transport::http::fuzz`) took about 1.5
//! min for the arbitrary bytes and about 3.5 min for the hostile responses,
//! on two shared cores.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, RngSeed, TestCaseError};
use serde_json::{json, Value};

use super::jsonrpc;
use super::response::{self, Expect, Reply};
use super::{params, valid_session_id, HttpConfig};
use crate::transport::{Operation, TransportError};

/// Cases per property in `cargo test`.
const DEFAULT_CASES: u32 = 512;

/// What the reader reads of a 400 or 404 body at most (`response.rs`).
const ERROR_BODY_CAP: usize = 64 * 1024;

/// The runner's seed unless `PROPTEST_RNG_SEED` is set.
const DEFAULT_RNG_SEED: u64 = 0x0066_757a_7a5f_636c;

/// proptest's config from the `PROPTEST_*` variables, with
/// [`DEFAULT_CASES`] cases unless `PROPTEST_CASES` says otherwise and a
/// fixed seed unless `PROPTEST_RNG_SEED` says otherwise.
fn config() -> ProptestConfig {
    // `Config::default` reads the PROPTEST_* environment variables.
    let env = ProptestConfig::default();
    let set = |name: &str| std::env::var_os(name).is_some();
    ProptestConfig {
        cases: if set("PROPTEST_CASES") {
            env.cases
        } else {
            DEFAULT_CASES
        },
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: if set("PROPTEST_RNG_SEED") {
            env.rng_seed
        } else {
            RngSeed::Fixed(DEFAULT_RNG_SEED)
        },
        ..env
    }
}

// ------------------------------------------------------------------ body --

/// A response body: `chunks`, then `pattern` over and over (if any: a body
/// that never ends), then a transport error if `fail`. Counts the bytes
/// the reader pulls.
struct Hostile {
    chunks: VecDeque<Bytes>,
    pattern: Option<Bytes>,
    fail: bool,
    pulled: Arc<AtomicUsize>,
}

impl HttpBody for Hostile {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let next = match self.chunks.pop_front() {
            Some(c) => Some(c),
            None => self.pattern.clone(),
        };
        if let Some(c) = next {
            self.pulled.fetch_add(c.len(), Ordering::Relaxed);
            return Poll::Ready(Some(Ok(Frame::data(c))));
        }
        if self.fail {
            self.fail = false;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            ))));
        }
        Poll::Ready(None)
    }
}

/// How a body is delivered.
#[derive(Clone, Debug)]
struct Delivery {
    /// Cut points (modulo the length; repeats give empty chunks).
    cuts: Vec<usize>,
    /// The body never ends: after the bytes, this repeats forever.
    forever: Option<Vec<u8>>,
    /// A transport error after the bytes.
    fail: bool,
}

fn chunks(bytes: &[u8], cuts: &[usize]) -> VecDeque<Bytes> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| c % (bytes.len() + 1))
        .chain([0, bytes.len()])
        .collect();
    at.sort_unstable();
    at.windows(2)
        .map(|w| Bytes::copy_from_slice(&bytes[w[0]..w[1]]))
        .collect()
}

/// A response as the server sent it.
#[derive(Clone, Debug)]
struct Response {
    status: u16,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
}

impl Response {
    fn header_map(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in &self.headers {
            // The strategies make valid values only; a bad one is skipped.
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.append(*k, v);
            }
        }
        h
    }
}

/// What a read came to, and how much it pulled.
struct Read {
    outcome: Result<Reply, TransportError>,
    pulled: usize,
    largest_chunk: usize,
}

/// Reads `r` as `HttpConnection::post` does, on a fresh current-thread
/// runtime.
fn read(r: &Response, d: &Delivery, e: Expect) -> Read {
    let pulled = Arc::new(AtomicUsize::new(0));
    let chunks = chunks(&r.body, &d.cuts);
    let pattern = d.forever.as_ref().map(|p| Bytes::from(p.clone()));
    let largest_chunk = chunks
        .iter()
        .map(Bytes::len)
        .chain(pattern.as_ref().map(Bytes::len))
        .max()
        .unwrap_or(0);
    let body = Hostile {
        chunks,
        pattern,
        fail: d.fail,
        pulled: pulled.clone(),
    };
    let headers = r.header_map();
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let outcome = tokio::runtime::Builder::new_current_thread()
        .build()
        .map(|rt| rt.block_on(response::read(status, &headers, body, e)))
        .unwrap_or_else(|err| Err(TransportError::connect(err.to_string())));
    Read {
        outcome,
        pulled: pulled.load(Ordering::Relaxed),
        largest_chunk,
    }
}

// ------------------------------------------------------------ strategies --

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        12 => Just(200u16),
        1 => Just(202u16),
        2 => prop::sample::select(vec![400u16, 404]),
        1 => prop::sample::select(vec![204u16, 301, 307, 401, 403, 405, 413, 500, 503]),
        1 => 100u16..1000,
    ]
}

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

/// Header values: plausible ones, and any bytes a header value may hold
/// (visible ASCII, spaces, tabs, obs-text).
fn odd_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(
            prop_oneof![8 => 0x20u8..0x7f, 1 => Just(b'\t'), 1 => 0x80u8..=0xff],
            0..40
        ),
        (0usize..300).prop_map(|n| vec![b'a'; n]),
    ]
}

fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        8 => Just(Some(JSON.as_bytes().to_vec())),
        8 => Just(Some(SSE.as_bytes().to_vec())),
        1 => prop::sample::select(vec![
            "Application/JSON; charset=utf-8", " text/event-stream ;charset=UTF-8",
            "text/event-stream;", "application/json, text/event-stream", "text/html",
            "application/jsonx", ";", "",
        ])
        .prop_map(|s| Some(s.as_bytes().to_vec())),
        1 => Just(None),
        1 => odd_bytes().prop_map(Some),
    ]
}

fn session_id() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(
        0.5,
        prop_oneof![
            Just(b"s1".to_vec()),
            Just(vec![b'x'; 128]),
            Just(vec![b'x'; 129]),
            Just(b"a b".to_vec()),
            Just(Vec::new()),
            odd_bytes(),
        ],
    )
}

fn expectation() -> impl Strategy<Value = Expect> {
    (
        prop::option::weighted(0.9, 0u64..2),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            1 => 0usize..64,
            1 => 64usize..4096,
            3 => 4096usize..200_000,
            2 => Just(HttpConfig::default().max_body_bytes),
        ],
    )
        .prop_map(|(id, had_session, quirk_400, max_body)| Expect {
            id,
            had_session,
            quirk_400,
            max_body,
        })
}

/// Hostile JSON values: huge and odd numbers, long and escaped strings,
/// and the members results are read for.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::from)),
        "\\PC{0,12}".prop_map(Value::from),
        "[\\x00-\\x1f\"\\\\]{0,8}".prop_map(Value::from),
        prop::sample::select(vec![
            "complete",
            "input_required",
            "incomplete",
            "",
            "text",
            "x-mcp-header",
            "2026-07-28",
            "private",
            "public",
        ])
        .prop_map(Value::from),
        (0usize..3000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    let key = prop_oneof![
        3 => prop::sample::select(vec![
            "resultType", "isError", "content", "text", "type", "structuredContent",
            "protocolVersion", "supportedVersions", "capabilities", "instructions", "ttlMs",
            "cacheScope", "inputRequests", "requestState", "tools", "name", "inputSchema",
            "properties", "x-mcp-header", "allOf", "items", "_meta",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z]{0,6}",
    ];
    leaf.prop_recursive(5, 40, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON text of a result: hostile values, results shaped like the ones the
/// client reads, and texts no value writes (numbers past any integer or
/// float, nesting past the parser's limit, members given twice).
fn result_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => hostile_value().prop_map(|v| v.to_string()),
        2 => (hostile_value(), hostile_value(), hostile_value()).prop_map(|(a, b, c)| json!({
            "resultType": a, "isError": b, "content": [{"type": "text", "text": c}],
            "supportedVersions": ["2026-07-28", b], "ttlMs": c, "cacheScope": a,
            "protocolVersion": a, "inputRequests": {"x": b}, "requestState": c,
            "tools": [{"name": "t", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "string", "x-mcp-header": a}, "b": b}}}],
        }).to_string()),
        1 => prop::sample::select(vec![
            "1e400", "-1e400", "123456789012345678901234567890123456789", "{\"ttlMs\":1e999}",
            "{\"ttlMs\":-1}", "{\"ttlMs\":18446744073709551616}", "{\"ttlMs\":1.5e300}",
            "{\"resultType\":\"complete\",\"resultType\":\"input_required\"}",
            "{\"isError\":true,\"isError\":false}", "{\"resultType\":\"\\u0063omplete\"}",
            "{\"resultType\":\"input_required\",\"requestState\":{\"deep\":[[[[1]]]]}}",
            "{\"supportedVersions\":null}", "\"\\ud800\"", "[]", "null",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..400, any::<bool>()).prop_map(|(depth, objects)| {
            let (open, close) = if objects { ("{\"a\":", "}") } else { ("[", "]") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth))
        }),
    ]
}

/// JSON text of an id: often the one waited for.
fn id_text() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.95,
        prop_oneof![
            6 => (0u64..2).prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec![
                "\"1\"", "1.0", "1e0", "-0", "null", "18446744073709551616", "1e400", "[1]",
            ])
            .prop_map(str::to_owned),
            1 => hostile_value().prop_map(|v| v.to_string()),
        ],
    )
}

/// JSON text of an error object: the stateless era's codes with their
/// data, any code, and members of the wrong type.
fn error_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (
            prop_oneof![
                3 => prop::sample::select(vec![
                    -32020i64, -32021, -32022, -32601, -32600, -32602, -32700, -32000, -32001,
                ]),
                1 => any::<i64>(),
            ],
            hostile_value(),
            hostile_value(),
        )
            .prop_map(|(code, message, data)| {
                let message = match message {
                    Value::String(s) => Value::String(s),
                    _ => Value::from("Bad Request: No valid session ID provided"),
                };
                json!({"code": code, "message": message, "data": data}).to_string()
            }),
        1 => (hostile_value(), hostile_value()).prop_map(|(code, data)| json!({
            "code": code, "message": data, "data": {
                "supported": [code, "2026-07-28"], "requested": data,
                "requiredCapabilities": data}
        }).to_string()),
        1 => prop::sample::select(vec![
            "{\"code\":1e400,\"message\":\"m\"}", "{\"code\":9223372036854775808}",
            "{\"code\":-32022,\"data\":{\"supported\":\"2026-07-28\"}}", "{}", "null", "[]",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A JSON-RPC message's text, usually about the request waited for.
fn message_text() -> impl Strategy<Value = String> {
    let one = (
        prop::option::weighted(0.95, Just("\"jsonrpc\":\"2.0\"")),
        id_text(),
        prop::option::weighted(0.2, "[a-z/]{1,20}"),
        prop_oneof![
            3 => result_text().prop_map(|r| Some(format!("\"result\":{r}"))),
            2 => error_text().prop_map(|e| Some(format!("\"error\":{e}"))),
            1 => (result_text(), error_text())
                .prop_map(|(r, e)| Some(format!("\"result\":{r},\"error\":{e}"))),
            1 => Just(None),
        ],
    )
        .prop_map(|(jsonrpc, id, method, outcome)| {
            let members: Vec<String> = [
                jsonrpc.map(str::to_owned),
                id.map(|i| format!("\"id\":{i}")),
                method.map(|m| format!("\"method\":{}", Value::from(m))),
                outcome,
            ]
            .into_iter()
            .flatten()
            .collect();
            format!("{{{}}}", members.join(","))
        })
        .boxed();
    prop_oneof![
        6 => one.clone(),
        1 => vec(one, 0..4).prop_map(|m| format!("[{}]", m.join(","))),
    ]
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\n", "\r\n", "\r"])
}

/// One SSE event or line, well-formed or not.
fn sse_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop_oneof![
            // A priming event: an id, `retry:`, empty data.
            2 => (any::<u32>(), any::<u64>())
                .prop_map(|(id, retry)| format!("id: {id}\nretry: {retry}\ndata:\n\n")),
            4 => (message_text(), eol()).prop_map(|(m, e)| format!("data: {m}{e}{e}")),
            // A message split over data lines.
            1 => (message_text(), any::<usize>(), eol()).prop_map(|(m, at, e)| {
                let at = (0..=at % (m.len() + 1)).rev().find(|&i| m.is_char_boundary(i)).unwrap_or(0);
                format!("data: {}{e}data:{}{e}{e}", &m[..at], &m[at..])
            }),
            1 => (
                prop::sample::select(vec![
                    "id: ", "id:", "event: ", "event: message", "data:", "data: ", ": ", "retry: ",
                    "retry:", "retry: 18446744073709551616", "retry: -1", "retry: 1e9", "id: \0",
                    "nocolon", "\u{feff}data: x", " data: x", "DATA: x",
                ]),
                "[ -~]{0,16}",
                eol(),
            )
                .prop_map(|(field, v, e)| format!("{field}{v}{e}")),
            1 => eol().prop_map(str::to_owned),
            // A very long line, ended or not.
            1 => (0usize..100_000, prop::option::of(eol()))
                .prop_map(|(n, e)| format!("data: {}{}", "x".repeat(n), e.unwrap_or(""))),
        ]
        .prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..24),
    ]
}

fn sse_body() -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), vec(sse_piece(), 0..16)).prop_map(|(bom, pieces)| {
        let mut out = if bom {
            b"\xEF\xBB\xBF".to_vec()
        } else {
            Vec::new()
        };
        for p in pieces {
            out.extend_from_slice(&p);
        }
        out
    })
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    (
        message_text(),
        "[ \t\r\n]{0,2}",
        vec(any::<u8>(), 0..3),
        0u8..8,
    )
        .prop_map(|(m, pad, junk, how)| match how {
            0 => {
                // Trailing junk.
                let mut b = m.into_bytes();
                b.extend_from_slice(&junk);
                b
            }
            1 => format!("{pad}{m}{pad}").into_bytes(),
            _ => m.into_bytes(),
        })
}

/// What repeats forever in a body that never ends: nothing that holds a
/// response to any id, so only the cap ends it.
fn forever() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b": keep-alive\n\n".to_vec()),
        Just(b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n".to_vec()),
        Just(b"id: 7\nretry: 5\ndata:\n\n".to_vec()),
        Just(b"xxxxxxxxxxxxxxxx".to_vec()),
        Just(b"\r".to_vec()),
        Just(b" ".to_vec()),
        Just(b"[[[[[[[[".to_vec()),
        Just(b"data: {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}\n\n".to_vec()),
    ]
    .prop_flat_map(|p| (1usize..256).prop_map(move |k| p.repeat(k)))
}

/// A well-formed response to id 0 or 1 carrying a hostile (but valid)
/// result, as a JSON body or an SSE event after a priming one: what gets
/// as far as the result's readers.
fn good_response() -> impl Strategy<Value = Vec<u8>> {
    (
        0u64..2,
        prop_oneof![hostile_value().prop_map(|v| v.to_string()), result_text()],
        any::<bool>(),
    )
        .prop_map(|(id, result, sse)| {
            let msg = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}");
            if sse {
                format!("id: 1\nretry: 10\ndata:\n\ndata: {msg}\n\n").into_bytes()
            } else {
                msg.into_bytes()
            }
        })
}

fn response() -> impl Strategy<Value = Response> {
    (
        status(),
        content_type(),
        prop_oneof![
            3 => sse_body(),
            3 => json_body(),
            3 => good_response(),
            1 => vec(any::<u8>(), 0..600),
        ],
        session_id(),
        prop::option::weighted(0.1, odd_bytes()),
    )
        .prop_map(|(status, ctype, body, session, location)| {
            let mut headers = Vec::new();
            if let Some(ct) = ctype {
                headers.push(("content-type", ct));
            }
            if let Some(s) = session {
                headers.push(("mcp-session-id", s));
            }
            if let Some(l) = location {
                headers.push(("location", l));
            }
            Response {
                status,
                headers,
                body,
            }
        })
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (
        vec(any::<usize>(), 0..12),
        prop::option::weighted(0.1, forever()),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(cuts, forever, fail)| Delivery {
            cuts,
            forever,
            fail,
        })
}

// ------------------------------------------------------------ invariants --

/// The main type of the content type, as the reader sees it.
fn media(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Whether `r` is an outcome the status and content type allow, and the
/// body's delivery (`fail`: a transport error could end it).
fn allowed(
    status: u16,
    kind: Option<&str>,
    e: Expect,
    fail: bool,
    r: &Result<Reply, TransportError>,
) -> bool {
    use TransportError as T;
    let modern = |r: &Result<Reply, TransportError>| {
        matches!(
            r,
            Err(T::HeaderMismatch { .. }
                | T::MissingCapability { .. }
                | T::UnsupportedVersion { .. }
                | T::MethodNotFound { .. })
        )
    };
    match status {
        300..=399 => matches!(r, Err(T::Redirect { status: s, .. }) if *s == status),
        401 | 403 => r == &Err(T::Unauthorized { status }),
        500..=599 => r == &Err(T::ServerError { status }),
        200..=299 if e.id.is_none() => r == &Ok(Reply::Accepted),
        201..=299 => r == &Err(T::Http { status }),
        404 if e.had_session => r == &Err(T::SessionNotFound),
        400 => {
            matches!(r, Err(T::BadRequest { .. }))
                || modern(r)
                || (e.quirk_400 && e.had_session && r == &Err(T::SessionNotFound))
        }
        404 => r == &Err(T::Http { status }) || modern(r),
        200 => {
            let json = kind == Some(JSON);
            let sse = kind == Some(SSE);
            match r {
                Ok(Reply::Result(_)) => json || sse,
                Ok(Reply::Ended { .. }) => sse,
                Ok(Reply::Accepted) => false,
                Err(T::ContentType { got }) => !json && !sse && got.as_deref() == kind,
                Err(T::BodyTooLarge { limit }) => *limit == e.max_body && (json || sse),
                Err(T::Closed { .. }) => fail && (json || sse),
                Err(T::MalformedSse { .. }) => sse,
                Err(T::MalformedJson { .. } | T::JsonRpc { .. } | T::Protocol(_)) => json || sse,
                other => modern(other) && (json || sse),
            }
        }
        _ => r == &Err(T::Http { status }),
    }
}

/// Everything the client does with a result: none of it may panic, and
/// what fails, fails typed.
fn use_result(
    result: &crate::transport::CallResult,
    session: Option<&HeaderValue>,
) -> Result<(), TestCaseError> {
    use TransportError as T;
    let id = session.map(valid_session_id).transpose();
    if let Some(v) = session {
        let b = v.as_bytes();
        let valid = (1..=128).contains(&b.len()) && b.iter().all(|c| (0x21..=0x7e).contains(c));
        prop_assert_eq!(id.is_ok(), valid, "session id {:?}", v);
        if let Err(e) = &id {
            prop_assert!(matches!(e, T::InvalidSessionId { .. }), "{:?}", e);
        }
    }
    let init = jsonrpc::initialized(result, id.ok().flatten());
    prop_assert!(
        matches!(init, Ok(_) | Err(T::MalformedJson { .. })),
        "{:?}",
        init
    );
    let call = Operation::ToolsCall {
        name: "t".into(),
        arguments: json!({}),
    };
    let checked = jsonrpc::check_tool_result(&call, result.clone());
    prop_assert!(
        matches!(checked, Ok(_) | Err(T::ToolError { .. })),
        "{:?}",
        checked
    );
    let _ = (
        result.raw(),
        result.to_value(),
        result.result_type(),
        result.is_error(),
    );
    let _ = (result.content(), result.text(), result.structured_content());
    let _ = (result.discovery(), result.ttl_ms(), result.member("tools"));
    if let Some(input) = result.input_required() {
        let _ = (input.keys(), input.request_state());
        let _ = input.respond(json!({"x": 1}));
    }
    if let Some(learned) = params::learn(result) {
        let drop: Vec<String> = learned.into_iter().map(|(name, _)| name).collect();
        let _ = params::without_tools(result, &drop);
    }
    Ok(())
}

/// A body that never ends is read up to this cap at most in the
/// properties (the real cap has its own test,
/// [`an_endless_body_stops_at_the_real_cap`]): a million cases of 4 MiB
/// each would take hours.
const ENDLESS_CAP: usize = 64 * 1024;

/// The invariants of one read of `r`.
fn check(r: &Response, d: &Delivery, e: Expect) -> Result<(), TestCaseError> {
    let e = match d.forever {
        Some(_) => Expect {
            max_body: e.max_body.min(ENDLESS_CAP),
            ..e
        },
        None => e,
    };
    let headers = r.header_map();
    let kind = media(&headers);
    let read = read(r, d, e);
    prop_assert!(
        allowed(r.status, kind.as_deref(), e, d.fail, &read.outcome),
        "status {} type {:?}: {:?}",
        r.status,
        kind,
        read.outcome
    );
    // Memory: never more than the cap and one chunk pulled, whatever the
    // length (a body that never ends included).
    let cap = if matches!(r.status, 400 | 404) {
        e.max_body.min(ERROR_BODY_CAP)
    } else {
        e.max_body
    };
    prop_assert!(
        read.pulled <= cap.saturating_add(read.largest_chunk),
        "pulled {} bytes under a cap of {} (chunks up to {})",
        read.pulled,
        cap,
        read.largest_chunk
    );
    let total = r.body.len();
    let reads_body = r.status == 200 && e.id.is_some();
    if reads_body && kind.as_deref() == Some(JSON) {
        // A JSON body is read whole: over the cap (or never ending) it is
        // too large, and under it never is.
        let over = d.forever.is_some() || total > e.max_body;
        prop_assert_eq!(
            matches!(read.outcome, Err(TransportError::BodyTooLarge { .. })),
            over,
            "{} bytes (forever: {}), cap {}: {:?}",
            total,
            d.forever.is_some(),
            e.max_body,
            read.outcome
        );
    }
    if reads_body && kind.as_deref() == Some(SSE) && d.forever.is_some() {
        // A stream that never ends ends with the cap, or with what its
        // finite start holds (the response, or an error in an event the
        // first repeats complete: two, for a lone `\r` after a line).
        let from_start = read.pulled <= total + 2 * read.largest_chunk;
        prop_assert!(
            matches!(read.outcome, Err(TransportError::BodyTooLarge { .. }))
                || (from_start && !matches!(read.outcome, Ok(Reply::Ended { .. }))),
            "pulled {} of a start of {}: {:?}",
            read.pulled,
            total,
            read.outcome
        );
    }
    let needs_no_body = !reads_body || kind.as_deref().is_some_and(|k| k != JSON && k != SSE);
    if needs_no_body && !matches!(r.status, 400 | 404) {
        prop_assert_eq!(read.pulled, 0, "a body read that needed no reading");
    }
    if let Ok(Reply::Result(result)) = &read.outcome {
        use_result(result, headers.get("mcp-session-id"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Hostile responses of every shape, delivered in random chunks, maybe
    /// cut by a transport error, maybe never ending.
    #[test]
    fn fuzz_hostile_responses_are_read_typed_within_the_cap(
        r in response(),
        d in delivery(),
        e in expectation(),
    ) {
        check(&r, &d, e)?;
    }

    /// Arbitrary bytes as a JSON or SSE body of a 200, and as an error
    /// body.
    #[test]
    fn fuzz_arbitrary_bytes_are_read_typed_within_the_cap(
        status in prop::sample::select(vec![200u16, 200, 200, 400, 404]),
        sse in any::<bool>(),
        body in vec(any::<u8>(), 0..2048),
        d in delivery(),
        e in expectation(),
    ) {
        let ctype = if sse { SSE } else { JSON };
        let r = Response {
            status,
            headers: vec![("content-type", ctype.as_bytes().to_vec())],
            body,
        };
        check(&r, &d, e)?;
    }
}

/// A body that never ends, at the client's real cap (4 MiB): the typed
/// error, after at most the cap and one chunk, for a JSON body, an SSE
/// stream of keep-alives, an SSE event whose data line never ends, and a
/// 400 error body (read up to 64 KiB).
#[test]
fn an_endless_body_stops_at_the_real_cap() {
    let cap = HttpConfig::default().max_body_bytes;
    assert_eq!(cap, 4 * 1024 * 1024);
    let e = Expect {
        id: Some(1),
        had_session: true,
        quirk_400: true,
        max_body: cap,
    };
    for (status, ctype, start, pattern) in [
        (200, JSON, &b""[..], &b"          "[..]),
        (200, SSE, b"", b": keep-alive\n\n"),
        (200, SSE, b"data: ", b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        (200, SSE, b"", b"\r"),
        (400, JSON, b"", b"[[[[[[[["),
    ] {
        let r = Response {
            status,
            headers: vec![("content-type", ctype.as_bytes().to_vec())],
            body: start.to_vec(),
        };
        let d = Delivery {
            cuts: Vec::new(),
            forever: Some(pattern.repeat(1024)),
            fail: false,
        };
        let read = read(&r, &d, e);
        let limit = if status == 400 { ERROR_BODY_CAP } else { cap };
        assert!(
            read.pulled <= limit + read.largest_chunk,
            "{status} {ctype}: pulled {}",
            read.pulled
        );
        if status == 200 {
            assert_eq!(
                read.outcome,
                Err(TransportError::BodyTooLarge { limit: cap }),
                "{ctype} {:?}",
                String::from_utf8_lossy(pattern)
            );
        } else {
            assert!(
                matches!(read.outcome, Err(TransportError::BadRequest { .. })),
                "{:?}",
                read.outcome
            );
        }
    }
}
