//! Property tests of the response reader (`response::read`, and through it
//! `jsonrpc::classify` and the SSE scanner).
//!
//! What this proves, for arbitrary input (256 cases per property):
//!
//! - **Never a panic, always a typed answer.** Arbitrary bytes, arbitrary
//!   JSON (and JSON-RPC-shaped) values, and arbitrary SSE framing (random
//!   `id`/`event`/`retry`/`data`/comment/unknown lines, raw bytes, a BOM,
//!   `\n`/`\r\n`/`\r` line ends) as bodies, with any status, any content
//!   type, any expectation, cut into random chunks (empty ones and trailer
//!   frames included), optionally ending in a transport error: the result is
//!   `Ok` or an `Err` whose variant is the one the status, content type, cap
//!   and body allow (a 3xx is a redirect, a 5xx a server error, a body over
//!   the cap a `BodyTooLarge` only if it was over the cap, `Closed` only after
//!   a transport error, `Ended` only from an SSE body, ...).
//! - **Chunking does not matter.** The same bytes as one chunk or as many
//!   give the same outcome.
//! - **Round trip.** A well-formed SSE stream (priming events, notifications,
//!   server requests using our id, responses to other ids, string ids,
//!   comments, `retry:`, single- or multi-line data) that carries our
//!   response yields exactly that result (or that JSON-RPC error), whatever
//!   follows it, at every split. Cut short at any byte, it yields the
//!   response if the response's event was complete, and otherwise `Ended`
//!   with exactly the last event id and `retry:` of the complete events
//!   before the cut (what resumption sends), or `Closed` when the cut is a
//!   transport error. A JSON body with our response yields its result.
//! - **One parse is two.** `jsonrpc::classify_slice` (the message parsed
//!   once, straight into its struct) gives what parsing into a `Value` and
//!   then classifying gives, for JSON-RPC-shaped and arbitrary values,
//!   pretty or compact, padded, with a member repeated, and for arbitrary
//!   bytes: the same response, the same `Other`, the same error.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

use super::jsonrpc::{classify, classify_slice, Incoming};
use super::response::{self, Expect, Reply};
use crate::transport::TransportError;

type Outcome = Result<Reply, TransportError>;

/// How a body reaches the reader.
#[derive(Clone, Debug)]
struct Delivery {
    /// Cut points (taken modulo the length, sorted; repeats give empty
    /// chunks).
    cuts: Vec<usize>,
    /// A trailers frame after the data.
    trailers: bool,
    /// The transport fails after the data.
    fail: bool,
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (
        vec(any::<usize>(), 0..12),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(cuts, trailers, fail)| Delivery {
            cuts,
            trailers,
            fail,
        })
}

fn clean_delivery() -> impl Strategy<Value = Delivery> {
    delivery().prop_map(|d| Delivery { fail: false, ..d })
}

fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Bytes> {
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

/// Runs `response::read` on a fresh current-thread runtime.
fn read(status: u16, ctype: Option<&str>, bytes: &[u8], d: &Delivery, expect: Expect) -> Outcome {
    let mut headers = HeaderMap::new();
    if let Some(ct) = ctype {
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
    }
    let mut frames: Vec<Result<Frame<Bytes>, std::io::Error>> = chunks(bytes, &d.cuts)
        .into_iter()
        .map(|c| Ok(Frame::data(c)))
        .collect();
    if d.trailers {
        frames.push(Ok(Frame::trailers(HeaderMap::new())));
    }
    if d.fail {
        frames.push(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        )));
    }
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let status = StatusCode::from_u16(status).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(response::read(status, &headers, body, expect))
}

// ------------------------------------------------------------ strategies --

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => Just(200u16),
        1 => prop::sample::select(vec![202u16, 204, 301, 307, 400, 401, 403, 404, 405, 500, 503]),
        1 => 100u16..1000,
    ]
}

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(Some(JSON.to_owned())),
        3 => Just(Some(SSE.to_owned())),
        1 => Just(Some("Application/JSON; charset=utf-8".to_owned())),
        1 => Just(Some(" text/event-stream ;charset=UTF-8".to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,24}".prop_map(Some),
    ]
}

fn expectation() -> impl Strategy<Value = Expect> {
    (
        prop::option::weighted(0.85, 0u64..4),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![0usize..64, 64usize..4096, Just(usize::MAX)],
    )
        .prop_map(|(id, had_session, quirk_400, max_body)| Expect {
            id,
            had_session,
            quirk_400,
            max_body,
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Quarters: floats whose shortest form parses back exactly (the
        // round-trip properties compare values).
        any::<i32>().prop_map(|m| Value::from(f64::from(m) / 4.0)),
        "\\PC{0,8}".prop_map(Value::from),
        "[\\x00-\\x1f\"\\\\]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,6}|id|method|result|error", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values shaped like JSON-RPC messages, well-formed or not, with ids that
/// often are the one waited for.
fn rpc_value() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        (0u64..4).prop_map(Value::from),
        (0u64..4).prop_map(|n| Value::from(n.to_string())),
        Just(Value::Null),
        json_value(),
    ];
    let error = prop_oneof![
        (any::<i64>(), "\\PC{0,12}").prop_map(|(c, m)| json!({"code": c, "message": m})),
        json_value(),
    ];
    let one = (
        prop::option::of(id),
        prop::option::of("[a-z/]{1,12}"),
        prop::option::of(json_value()),
        prop::option::of(error),
        any::<bool>(),
    )
        .prop_map(|(id, method, result, error, jsonrpc)| {
            let mut m = serde_json::Map::new();
            if jsonrpc {
                m.insert("jsonrpc".into(), "2.0".into());
            }
            for (k, v) in [
                ("id", id),
                ("method", method.map(Value::from)),
                ("result", result),
                ("error", error),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
        .boxed();
    prop_oneof![
        4 => one.clone(),
        1 => vec(one, 0..4).prop_map(Value::Array),
        1 => json_value(),
    ]
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["\n", "\r\n", "\r"])
}

/// One line of arbitrary SSE, valid or not.
fn sse_line() -> impl Strategy<Value = Vec<u8>> {
    let text =
        |prefix: &'static str| "[ -~]{0,12}".prop_map(move |v| format!("{prefix}{v}").into_bytes());
    prop_oneof![
        text("id: "),
        text("id:"),
        text("event: "),
        text("data: "),
        text("data:"),
        text(":"),
        text("retry: "),
        text(""),
        "[0-9]{0,25}".prop_map(|v| format!("retry: {v}").into_bytes()),
        rpc_value().prop_map(|v| format!("data: {v}").into_bytes()),
        json_value().prop_map(|v| format!("data: {v}").into_bytes()),
        Just(b"id: a\0b".to_vec()),
        Just(Vec::new()),
        Just(Vec::new()),
        vec(any::<u8>(), 0..12),
        "\\PC{0,6}".prop_map(|v| format!("data: {v}").into_bytes()),
    ]
}

/// An arbitrary SSE text: random lines with random line ends, maybe a BOM.
fn sse_text() -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), vec((sse_line(), eol()), 0..24)).prop_map(|(bom, lines)| {
        let mut out = if bom {
            b"\xEF\xBB\xBF".to_vec()
        } else {
            Vec::new()
        };
        for (line, eol) in lines {
            out.extend_from_slice(&line);
            out.extend_from_slice(eol.as_bytes());
        }
        out
    })
}

// ------------------------------------------------------------ invariants --

/// The main type of a content type, as the reader sees it.
fn media(ctype: Option<&str>) -> Option<String> {
    ctype.map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// What any outcome must respect, given only the request and the delivery.
fn check(
    status: u16,
    ctype: Option<&str>,
    len: usize,
    d: &Delivery,
    e: Expect,
    r: &Outcome,
) -> Result<(), TestCaseError> {
    use TransportError as T;
    let media = media(ctype);
    let kind = media.as_deref();
    match status {
        300..=399 => prop_assert!(
            matches!(r, Err(T::Redirect { status: s, .. }) if *s == status),
            "{r:?}"
        ),
        401 | 403 => prop_assert_eq!(r, &Err(T::Unauthorized { status })),
        500..=599 => prop_assert_eq!(r, &Err(T::ServerError { status })),
        200..=299 if e.id.is_none() => prop_assert_eq!(r, &Ok(Reply::Accepted)),
        201..=299 => prop_assert_eq!(r, &Err(T::Http { status })),
        404 if e.had_session => prop_assert_eq!(r, &Err(T::SessionNotFound)),
        400 => prop_assert!(
            matches!(r, Err(T::BadRequest { .. }))
                || (e.quirk_400 && e.had_session && r == &Err(T::SessionNotFound)),
            "{r:?}"
        ),
        200 => match r {
            Ok(Reply::Result(_)) => prop_assert!(kind == Some(JSON) || kind == Some(SSE)),
            Ok(Reply::Ended { .. }) => prop_assert_eq!(kind, Some(SSE)),
            Ok(Reply::Accepted) => prop_assert!(false, "Accepted for a request"),
            Err(T::ContentType { got }) => {
                prop_assert!(kind != Some(JSON) && kind != Some(SSE));
                prop_assert_eq!(got.as_deref(), kind);
            }
            Err(T::BodyTooLarge { limit }) => {
                prop_assert_eq!(*limit, e.max_body);
                prop_assert!(len > e.max_body, "{} bytes under the cap {}", len, limit);
            }
            Err(T::Closed { .. }) => prop_assert!(d.fail, "Closed without a transport error"),
            Err(T::MalformedSse { .. }) => prop_assert_eq!(kind, Some(SSE)),
            Err(T::MalformedJson { .. } | T::JsonRpc { .. }) => {
                prop_assert!(kind == Some(JSON) || kind == Some(SSE))
            }
            Err(T::Protocol(_)) => prop_assert_eq!(kind, Some(JSON)),
            other => prop_assert!(false, "unexpected {other:?}"),
        },
        _ => prop_assert_eq!(r, &Err(T::Http { status })),
    }
    Ok(())
}

// ----------------------------------------------------- well-formed SSE --

/// A well-formed SSE stream carrying the response to request `want`, and
/// what a reader must make of it.
#[derive(Clone, Debug)]
struct Stream {
    bytes: Vec<u8>,
    /// Per complete event, in order: where it is dispatched (the offset
    /// just past the first byte of its terminating empty line) and its
    /// `id` / valid `retry` fields.
    events: Vec<(usize, Option<String>, Option<u64>)>,
    /// Where the response's event is dispatched.
    response_at: usize,
    /// The response.
    expected: Result<Value, TransportError>,
}

impl Stream {
    /// What reading the first `cut` bytes must give.
    fn expected_at(&self, cut: usize, fail: bool) -> Outcome {
        if cut >= self.response_at {
            return self.expected.clone().map(result_reply);
        }
        if fail {
            return Err(TransportError::closed(""));
        }
        let (mut last_event_id, mut retry) = (None, None);
        for (at, id, r) in &self.events {
            if *at > cut {
                break;
            }
            if let Some(id) = id {
                last_event_id = (!id.is_empty()).then(|| id.clone());
            }
            if let Some(r) = r {
                retry = Some(Duration::from_millis(*r));
            }
        }
        Ok(Reply::Ended {
            last_event_id,
            retry,
        })
    }
}

/// One block: its lines (data lines kept together, in order), its id field
/// and its valid retry field.
type Block = (Vec<String>, Option<String>, Option<u64>);

fn id_field() -> impl Strategy<Value = (String, Option<String>)> {
    prop_oneof![
        "[!-~]{0,8}".prop_map(|v| (format!("id: {v}"), Some(v))),
        "[!-~]{1,8}".prop_map(|v| (format!("id:{v}"), Some(v))),
        Just(("id: a\0b".to_owned(), None)),
    ]
}

fn retry_field() -> impl Strategy<Value = (String, Option<u64>)> {
    prop_oneof![
        (0u64..100_000).prop_map(|n| (format!("retry: {n}"), Some(n))),
        (0u64..100_000).prop_map(|n| (format!("retry:{n}"), Some(n))),
        prop::sample::select(vec![
            "retry: ",
            "retry: 1x",
            "retry: -5",
            "retry:  7",
            "retry"
        ])
        .prop_map(|s| (s.to_owned(), None)),
    ]
}

/// Lines around the data: id, event, retry, comments, unknown fields.
fn meta() -> impl Strategy<Value = (Vec<String>, Option<String>, Option<u64>)> {
    (
        prop::option::of(id_field()),
        prop::option::of(retry_field()),
        prop::option::of("[a-z]{0,8}".prop_map(|e| format!("event: {e}"))),
        vec("[ -~]{0,10}".prop_map(|c| format!(":{c}")), 0..2),
        prop::option::of(Just("x-unknown: 1".to_owned())),
    )
        .prop_map(|(id, retry, event, comments, unknown)| {
            let mut lines = comments;
            lines.extend(event);
            lines.extend(unknown);
            let id_value = id.and_then(|(line, v)| {
                lines.push(line);
                v
            });
            let retry_value = retry.and_then(|(line, v)| {
                lines.push(line);
                v
            });
            (lines, id_value, retry_value)
        })
}

/// `v` as data lines: one line, or pretty-printed over several.
fn data_lines(v: &Value, pretty: bool) -> Vec<String> {
    if pretty {
        serde_json::to_string_pretty(v)
            .unwrap()
            .lines()
            .map(|l| format!("data: {l}"))
            .collect()
    } else {
        vec![format!("data: {v}")]
    }
}

/// Puts the data lines (as one unit) among the meta lines at `slot`.
fn assemble(
    (meta, id, retry): (Vec<String>, Option<String>, Option<u64>),
    data: Vec<String>,
    slot: usize,
) -> Block {
    let mut lines = meta;
    let at = slot % (lines.len() + 1);
    lines.splice(at..at, data);
    (lines, id, retry)
}

/// An event that is not the response to `want`.
fn filler(want: u64) -> impl Strategy<Value = Block> {
    let other_id = prop_oneof![
        (want + 1..want + 100).prop_map(Value::from),
        Just(Value::from(want.to_string())),
        Just(Value::Null),
    ];
    let data = prop_oneof![
        Just(Vec::new()),
        Just(vec!["data:".to_owned()]),
        Just(vec!["data: ".to_owned()]),
        (json_value(), any::<bool>()).prop_map(|(p, pretty)| data_lines(
            &json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": p}),
            pretty
        )),
        "[a-z/]{1,12}".prop_map(move |m| data_lines(
            &json!({"jsonrpc": "2.0", "id": want, "method": m, "params": {}}),
            false
        )),
        (other_id, json_value()).prop_map(|(id, r)| data_lines(
            &json!({"jsonrpc": "2.0", "id": id, "result": r}),
            false
        )),
        vec(Just(json!({"jsonrpc": "2.0", "method": "n"})), 0..3)
            .prop_map(|b| data_lines(&Value::Array(b), false)),
    ];
    (meta(), data, any::<usize>()).prop_map(|(m, d, slot)| assemble(m, d, slot))
}

/// A reply carrying `v` as its result.
fn result_reply(v: Value) -> Reply {
    Reply::Result(crate::transport::CallResult::from_value(&v))
}

/// The response to `want` (a result or a JSON-RPC error), and what it
/// must be read as.
fn response_msg(want: u64) -> impl Strategy<Value = (Value, Result<Value, TransportError>)> {
    prop_oneof![
        json_value().prop_map(move |r| (json!({"jsonrpc": "2.0", "id": want, "result": r}), Ok(r))),
        (any::<i64>(), "\\PC{0,12}").prop_map(move |(code, message)| (
            json!({"jsonrpc": "2.0", "id": want, "error": {"code": code, "message": message}}),
            Err(super::jsonrpc::ErrorObject {
                code,
                message,
                data: None
            }
            .into_error(200))
        )),
    ]
}

/// The response to `want` as an SSE event.
fn response(want: u64) -> impl Strategy<Value = (Block, Result<Value, TransportError>)> {
    (meta(), response_msg(want), any::<bool>(), any::<usize>()).prop_map(
        |(m, (msg, expected), pretty, slot)| {
            (assemble(m, data_lines(&msg, pretty), slot), expected)
        },
    )
}

fn stream() -> impl Strategy<Value = (u64, Stream)> {
    (0u64..4).prop_flat_map(|want| {
        (
            any::<bool>(),
            vec(filler(want), 0..6),
            response(want),
            vec(filler(want), 0..3),
            vec(any::<u8>(), 0..32),
            vec(eol(), 64),
        )
            .prop_map(move |(bom, before, (resp, expected), after, junk, eols)| {
                let mut bytes = if bom {
                    b"\xEF\xBB\xBF".to_vec()
                } else {
                    Vec::new()
                };
                let mut eols = eols.into_iter().cycle();
                let mut prev = "";
                let mut events = Vec::new();
                let mut response_at = 0;
                let n_before = before.len();
                for (i, (lines, id, retry)) in
                    before.into_iter().chain([resp]).chain(after).enumerate()
                {
                    for line in &lines {
                        let e = eols.next().unwrap_or("\n");
                        bytes.extend_from_slice(line.as_bytes());
                        bytes.extend_from_slice(e.as_bytes());
                        prev = e;
                    }
                    // The empty line: a CR then LF would be one line end.
                    let mut e = eols.next().unwrap_or("\n");
                    if prev == "\r" && e == "\n" {
                        e = "\r\n";
                    }
                    bytes.extend_from_slice(e.as_bytes());
                    prev = e;
                    let at = bytes.len() - e.len() + 1;
                    events.push((at, id, retry));
                    if i == n_before {
                        response_at = at;
                    }
                }
                bytes.extend_from_slice(&junk);
                (
                    want,
                    Stream {
                        bytes,
                        events,
                        response_at,
                        expected,
                    },
                )
            })
    })
}

fn sse_expect(want: u64) -> Expect {
    Expect {
        id: Some(want),
        had_session: true,
        quirk_400: true,
        max_body: usize::MAX,
    }
}

/// Compares outcomes, with any `Closed` equal to any other.
fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Err(TransportError::Closed { .. }), Err(TransportError::Closed { .. })) => true,
        _ => a == b,
    }
}

// ------------------------------------------------------------ properties --

/// `classify_slice` as the two steps it stands for.
fn classify_in_two_steps(bytes: &[u8], want: u64) -> Result<Incoming, TransportError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| TransportError::MalformedJson {
            message: e.to_string(),
            source: Some(crate::transport::Cause::new(e)),
        })?;
    classify(value, want)
}

proptest! {
    #[test]
    fn parsing_once_classifies_as_parsing_twice(
        v in prop_oneof![rpc_value(), json_value()],
        pretty in any::<bool>(),
        pad in "[ \t\r\n]{0,2}",
        dup in prop::option::of(("id|method|result|error", json_value())),
        want in 0u64..4,
    ) {
        let text = if pretty {
            serde_json::to_string_pretty(&v).unwrap()
        } else {
            v.to_string()
        };
        let mut bytes = format!("{pad}{text}{pad}").into_bytes();
        // A member repeated at the end of an object: `Value` keeps the
        // last, a struct refuses it.
        if let (Some((k, x)), Some(b'}')) = (dup, bytes.iter().rev().find(|b| !b.is_ascii_whitespace()).copied()) {
            if v.as_object().is_some_and(|o| !o.is_empty()) {
                let end = bytes.iter().rposition(|&b| b == b'}').unwrap();
                let extra = format!(",{}:{x}", Value::from(k));
                bytes.splice(end..end, extra.into_bytes());
            }
        }
        prop_assert_eq!(classify_slice(&bytes, want), classify_in_two_steps(&bytes, want));
    }

    #[test]
    fn parsing_once_fails_as_parsing_twice_on_arbitrary_bytes(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..64),
            "\\{[\\{\\}\\[\\]\",:0-9a-z ]{0,40}".prop_map(String::into_bytes),
        ],
        want in 0u64..4,
    ) {
        prop_assert_eq!(classify_slice(&bytes, want), classify_in_two_steps(&bytes, want));
    }
    #[test]
    fn arbitrary_bytes_give_a_typed_outcome(
        status in status(),
        ctype in content_type(),
        bytes in vec(any::<u8>(), 0..600),
        d in delivery(),
        e in expectation(),
    ) {
        let r = read(status, ctype.as_deref(), &bytes, &d, e);
        check(status, ctype.as_deref(), bytes.len(), &d, e, &r)?;
    }

    #[test]
    fn arbitrary_json_as_a_body_or_an_event_gives_a_typed_outcome(
        status in status(),
        v in prop_oneof![rpc_value(), json_value()],
        sse in any::<bool>(),
        d in delivery(),
        e in expectation(),
    ) {
        let (ctype, bytes) = if sse {
            (SSE, format!("data: {v}\n\n").into_bytes())
        } else {
            (JSON, v.to_string().into_bytes())
        };
        let r = read(status, Some(ctype), &bytes, &d, e);
        check(status, Some(ctype), bytes.len(), &d, e, &r)?;
        // A clean JSON body under the cap is never "ended", never too big.
        if status == 200 && e.id.is_some() && !d.fail && bytes.len() <= e.max_body {
            prop_assert!(!matches!(r, Err(TransportError::BodyTooLarge { .. })), "{:?}", r);
            if !sse {
                prop_assert!(!matches!(r, Ok(Reply::Ended { .. })), "{:?}", r);
            }
        }
    }

    #[test]
    fn arbitrary_sse_framing_gives_a_typed_outcome(
        status in status(),
        text in sse_text(),
        d in delivery(),
        e in expectation(),
    ) {
        let r = read(status, Some(SSE), &text, &d, e);
        check(status, Some(SSE), text.len(), &d, e, &r)?;
    }

    #[test]
    fn one_chunk_or_many_give_the_same_outcome(
        status in status(),
        ctype in prop_oneof![Just(SSE.to_owned()), Just(JSON.to_owned())],
        bytes in prop_oneof![sse_text(), vec(any::<u8>(), 0..300)],
        d in clean_delivery(),
        e in expectation(),
    ) {
        // Under the cap: over it, a stream may find the response before the
        // cap is crossed in small chunks, and not in one big one.
        let e = Expect { max_body: usize::MAX, ..e };
        let whole = Delivery { cuts: Vec::new(), trailers: false, fail: false };
        let one = read(status, Some(&ctype), &bytes, &whole, e);
        let many = read(status, Some(&ctype), &bytes, &d, e);
        prop_assert!(same(&one, &many), "one chunk: {:?}\nmany: {:?}", one, many);
    }

    #[test]
    fn a_well_formed_stream_yields_its_response_at_any_split(
        (want, s) in stream(),
        d in clean_delivery(),
    ) {
        let r = read(200, Some(SSE), &s.bytes, &d, sse_expect(want));
        prop_assert_eq!(r, s.expected.clone().map(result_reply));
    }

    #[test]
    fn a_stream_cut_short_yields_the_response_or_where_to_resume(
        (want, s) in stream(),
        cut in any::<usize>(),
        d in delivery(),
    ) {
        let cut = cut % (s.bytes.len() + 1);
        let r = read(200, Some(SSE), &s.bytes[..cut], &d, sse_expect(want));
        let expected = s.expected_at(cut, d.fail);
        prop_assert!(same(&r, &expected), "cut at {}: {:?}, expected {:?}", cut, r, expected);
    }

    #[test]
    fn a_json_body_with_the_response_yields_its_result(
        want in 0u64..4,
        (id, msg, expected) in (0u64..4)
            .prop_flat_map(|id| response_msg(id).prop_map(move |(m, e)| (id, m, e))),
        ctype in prop::sample::select(vec![JSON, "application/json; charset=utf-8", "APPLICATION/JSON"]),
        d in clean_delivery(),
    ) {
        let r = read(200, Some(ctype), msg.to_string().as_bytes(), &d, sse_expect(want));
        if id == want {
            prop_assert_eq!(r, expected.map(result_reply));
        } else {
            prop_assert!(matches!(r, Err(TransportError::Protocol(_))), "{:?}", r);
        }
    }
}
