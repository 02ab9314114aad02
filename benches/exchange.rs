//! What one request costs the client in each era of MCP: a legacy
//! (2025-11-25) `tools/call` on an initialized session next to a
//! stateless-era (2026-07-28) one on a client context.
//!
//! Both go through the real client — [`HttpConnection`] over hyper's
//! HTTP/1.1 — and differ only in what the era puts on the wire. Legacy: the
//! JSON-RPC request plus `Mcp-Session-Id` and `MCP-Protocol-Version`.
//! Modern: the request with `params._meta` (protocol version, client
//! capabilities, client info), plus `MCP-Protocol-Version`, `Mcp-Method` and
//! `Mcp-Name`; and the answer carries `resultType` and `_meta.serverInfo`,
//! as real 2026-07-28 servers send them. Target: a modern exchange costs no
//! more than a legacy one.
//!
//! The network is an in-memory duplex pipe to an in-process hyper server
//! whose answers are canned (it reads the request id by a byte search and
//! copies it into a prepared answer), so the numbers are the client's
//! encoding and decoding, hyper on both ends, and the pipe — the same for
//! both eras except for what the era adds.
//!
//! Groups: `exchange/legacy` and `exchange/modern` (one `tools/call`
//! round trip per iteration, on a session or context made beforehand), and
//! `cold/legacy` and `cold/modern`: what a cold client pays for one
//! operation, as `per_request` mode does per acquire: a new connection,
//! then `initialize`, `notifications/initialized`, the call and DELETE in
//! the legacy era; `server/discover` and the call in the stateless one.
//! Run with `cargo bench --bench exchange`.

use std::convert::Infallible;
use std::hint::black_box;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::DuplexStream;

use mcp_session::transport::{
    Connection, Connector, Dialer, HttpConfig, HttpConnection, HttpConnector, InitializeParams,
    ModernParams, Operation,
};
use mcp_session::TokioClock;

/// A dialer whose every stream is a pipe to a fresh canned server.
#[derive(Clone, Copy)]
struct PipeDialer;

impl Dialer for PipeDialer {
    type Stream = DuplexStream;

    async fn dial(&self, _host: &str, _port: u16) -> io::Result<DuplexStream> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(answer);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), svc)
                .await;
        });
        Ok(client)
    }
}

const INIT: &str = r#"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"bench","version":"1"}}"#;
const DISCOVER: &str = r#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"resultType":"complete","ttlMs":0,"cacheScope":"private"}"#;
const LEGACY_RESULT: &str = r#"{"content":[{"type":"text","text":"hello"}],"isError":false}"#;
const MODERN_RESULT: &str = r#"{"content":[{"type":"text","text":"hello"}],"isError":false,"resultType":"complete","_meta":{"io.modelcontextprotocol/serverInfo":{"name":"bench","version":"1"}}}"#;

/// Where the request id is: the digits after the first `"id":` of the
/// body (the client writes it near the start: `{"jsonrpc":"2.0","id":N,`).
fn request_id(body: &[u8]) -> Option<std::ops::Range<usize>> {
    let at = body.windows(5).position(|w| w == b"\"id\":")? + 5;
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0).then_some(at..at + digits)
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let modern = req.headers().contains_key("mcp-method");
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if method == hyper::Method::DELETE {
        return Ok(Response::builder()
            .status(200)
            .body(Full::default())
            .unwrap_or_default());
    }
    let Some(id) = request_id(&body) else {
        // A notification.
        return Ok(Response::builder()
            .status(202)
            .body(Full::default())
            .unwrap_or_default());
    };
    // The client writes `"method"` right after the id: a constant-time
    // look, so the canned server costs the same for bodies of any length.
    let initialize = body[id.end..].starts_with(br#","method":"initialize""#);
    let discover = body[id.end..].starts_with(br#","method":"server/discover""#);
    let result = match (initialize, modern) {
        (true, _) => INIT,
        (false, true) if discover => DISCOVER,
        (false, true) => MODERN_RESULT,
        (false, false) => LEGACY_RESULT,
    };
    let mut out = Vec::with_capacity(64 + result.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(&body[id]);
    out.extend_from_slice(br#","result":"#);
    out.extend_from_slice(result.as_bytes());
    out.push(b'}');
    let mut resp = Response::builder().header("content-type", "application/json");
    if initialize {
        resp = resp.header("mcp-session-id", "bench-session");
    }
    Ok(resp.body(Full::new(out.into())).unwrap_or_default())
}

fn echo() -> Operation {
    Operation::ToolsCall {
        name: "echo".into(),
        arguments: json!({ "message": "hello" }),
    }
}

fn connector() -> HttpConnector<PipeDialer> {
    let clock = Arc::new(TokioClock::new());
    HttpConnector::new(
        PipeDialer,
        HttpConfig::new("http://bench.invalid/mcp"),
        clock,
    )
    .expect("valid URL")
}

fn modern_params() -> ModernParams {
    ModernParams {
        protocol_version: "2026-07-28".into(),
        offered: vec!["2026-07-28".into()],
        capabilities: json!({}),
        client_name: "mcp-session".into(),
        client_version: "0.1.0".into(),
    }
}

/// A new connection set up in the legacy era (initialize + initialized)
/// or the stateless one (a `server/discover` when `discover`).
async fn connection(modern: bool, discover: bool) -> HttpConnection<PipeDialer> {
    let conn = connector().connect().await.expect("connect");
    if modern {
        conn.use_modern(Some(&modern_params()));
        if discover {
            conn.request(&Operation::Discover, None)
                .await
                .expect("discover");
        }
    } else {
        conn.initialize(&InitializeParams {
            protocol_version: "2025-11-25".into(),
            client_name: "mcp-session".into(),
            client_version: "0.1.0".into(),
        })
        .await
        .expect("initialize");
        conn.notify_initialized().await.expect("initialized");
    }
    conn
}

/// One operation of a cold client: connect, negotiate, call, close.
async fn cold(modern: bool, op: &Operation) {
    let conn = connection(modern, true).await;
    black_box(conn.request(op, None).await.expect("tools/call"));
    conn.close().await.expect("close");
}

fn exchange(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let op = echo();
    let mut group = c.benchmark_group("exchange");
    for (name, modern) in [("legacy", false), ("modern", true)] {
        let conn = rt.block_on(async {
            let conn = connection(modern, false).await;
            // Warm the keep-alive connection and check the answer is read.
            let r = conn.request(&op, None).await.expect("tools/call");
            assert_eq!(r.result.text(), "hello");
            conn
        });
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(conn.request(&op, None).await.expect("tools/call"));
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("cold");
    for (name, modern) in [("legacy", false), ("modern", true)] {
        group.bench_function(name, |b| b.to_async(&rt).iter(|| cold(modern, &op)));
    }
    group.finish();
}

criterion_group!(benches, exchange);
criterion_main!(benches);
