//! The Streamable HTTP transport (`HttpConnector` over `TcpDialer`) against
//! servers on real loopback TCP, one scripted server per test.
//!
//! What this proves, each time asserting the exact `TransportError` variant
//! (or the manager's `ErrorKind`):
//!
//! - every response shape is read: one JSON body, SSE with notifications,
//!   server requests, comments and other ids before the response, SSE cut
//!   into one-byte chunks with `\n`, `\r\n` or `\r` line ends, SSE behind an
//!   empty priming event, `Content-Length` and chunked bodies of both;
//! - the lifecycle is MCP's: `initialize` carries protocolVersion,
//!   capabilities and clientInfo with `Accept: application/json,
//!   text/event-stream`; the session id of a successful initialize (and only
//!   of a successful one) goes on every later request, with
//!   `MCP-Protocol-Version` for revisions >= 2025-06-18 only; a stateless
//!   server works and is never sent DELETE; close sends DELETE, takes 405 and
//!   404 as done, and does not wait behind a request in flight;
//! - every failure is typed: 404 and the TypeScript SDK's 400 (switchable)
//!   are `SessionNotFound` (and, through a reuse-mode `Manager`,
//!   `SessionExpired` then a re-initialize counted as a reconnect), other
//!   400s `BadRequest`, 401/403 `Unauthorized`, 5xx `ServerError`, JSON-RPC
//!   errors `JsonRpc`, `isError` tool results `ToolError`, a silent server
//!   `Timeout` (on the injected clock), nothing listening `Connect`, a
//!   connection closed or reset mid-response `Closed`, bad JSON
//!   `MalformedJson`, a wrong or missing content type `ContentType`, a body
//!   over the cap `BodyTooLarge`, a bad `Mcp-Session-Id` `InvalidSessionId`,
//!   a 3xx `Redirect` that is not followed; a connect that never completes is
//!   bounded;
//! - keep-alive: one TCP connection per session, re-dialed after the server
//!   closed it, and after a timed-out request;
//! - resumability: an SSE stream that ends before the response is resumed
//!   with GET + `Last-Event-ID`, no sooner than `retry:` (remembered across
//!   streams, like the last id), at most `max_resumes` times, all within the
//!   request timeout, and the response on the GET stream is returned.
//!
//! Timeouts run on a `ManualClock` (advanced once the server has the
//! request) wherever real time is not needed; the only real waits are a
//! 100 ms timeout, two 50 ms `retry:` waits and a 20 ms pause for a FIN to
//! arrive, so the file runs in well under a second.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use mcp_session::transport::{
    CloseOutcome, Connection, Connector, Dialer, HttpConfig, HttpConnection, HttpConnector,
    InitializeParams, Operation, TcpDialer, TransportError,
};
use mcp_session::{Clock, ErrorKind, ManagerBuilder, ManualClock, Mode, SessionConfig, TokioClock};

/// [`Connection::request`] without MRTR input, its result as a `Value`
/// (these tests compare whole results).
trait RequestValue {
    fn request_value(
        &self,
        op: &Operation,
    ) -> impl std::future::Future<Output = Result<Value, TransportError>> + Send;
}

impl<C: Connection> RequestValue for C {
    async fn request_value(&self, op: &Operation) -> Result<Value, TransportError> {
        self.request(op, None).await.map(|a| a.result.to_value())
    }
}

/// The revision the scripted server answers unless a test says otherwise.
const V: &str = "2025-11-25";
/// The session id the scripted server issues.
const SID: &str = "sess-1";
/// The TypeScript SDK's answer to an unknown session.
const TS_400: &str = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#;

// ------------------------------------------------------------- the server --

/// One request the server got.
#[derive(Clone, Debug)]
struct Seen {
    /// Which accepted TCP connection it came on (0-based).
    conn: usize,
    method: Method,
    path: String,
    headers: HeaderMap,
    /// The JSON body, or `Null`.
    body: Value,
    /// When it arrived (tokio time).
    at: tokio::time::Instant,
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

    fn is_post(&self, rpc: &str) -> bool {
        self.method == Method::POST && self.rpc() == rpc
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response body, and how it is framed on the wire.
enum Body {
    Empty,
    /// `Content-Length`.
    Full(Vec<u8>),
    /// Chunked, one HTTP chunk (and one write) per piece.
    Chunks(Vec<Vec<u8>>),
    /// Chunked, and the stream then stays open without another byte.
    ChunksThenHang(Vec<Vec<u8>>),
}

/// What the server answers to one request.
enum Answer {
    Reply {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Body,
    },
    /// Never answer.
    Never,
}

impl Answer {
    fn status(status: u16) -> Self {
        Answer::Reply {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        if let Answer::Reply { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.as_ref().to_vec()));
        }
        self
    }

    fn body(mut self, new: Body) -> Self {
        if let Answer::Reply { body, .. } = &mut self {
            *body = new;
        }
        self
    }

    /// 200 with a JSON body (`Content-Length`).
    fn json(v: &Value) -> Self {
        Answer::status(200)
            .header("content-type", "application/json")
            .body(Body::Full(v.to_string().into_bytes()))
    }

    /// 200 with an SSE body, one chunk per event.
    fn sse<S: Into<String>>(events: impl IntoIterator<Item = S>) -> Self {
        Answer::status(200)
            .header("content-type", "text/event-stream")
            .body(Body::Chunks(
                events.into_iter().map(|e| e.into().into_bytes()).collect(),
            ))
    }
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn init_result(id: &Value, version: &str) -> Value {
    result(
        id,
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "scripted", "version": "0"},
        }),
    )
}

fn notification(method: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": {}})
}

/// One SSE event carrying `v` as its data.
fn ev(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// A well-behaved MCP server answering revision `version` with session
/// [`SID`].
fn mcp(s: &Seen, version: &str) -> Answer {
    match s.method {
        Method::POST if s.rpc() == "initialize" => {
            Answer::json(&init_result(&s.id(), version)).header("mcp-session-id", SID)
        }
        Method::POST if s.body.get("id").is_none() => Answer::status(202),
        Method::POST if s.rpc() == "tools/call" => Answer::json(&result(
            &s.id(),
            json!({"content": [{"type": "text", "text": "ok"}]}),
        )),
        Method::POST => Answer::json(&result(&s.id(), json!({"method": s.rpc()}))),
        Method::DELETE => Answer::status(200),
        _ => Answer::status(405),
    }
}

type Handler = Box<dyn Fn(&Seen) -> Answer + Send + Sync>;

struct ServerState {
    handler: Handler,
    seen: Mutex<Vec<Seen>>,
    accepted: AtomicUsize,
    /// How many requests have arrived.
    count: watch::Sender<usize>,
    /// Bumped to drop every open connection.
    kill: watch::Sender<u64>,
}

/// A scripted hyper server on 127.0.0.1.
struct Server {
    url: String,
    state: Arc<ServerState>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived.
    async fn wait_requests(&self, n: usize) {
        let mut rx = self.state.count.subscribe();
        rx.wait_for(|c| *c >= n).await.unwrap();
    }

    /// Closes every open connection from the server side.
    fn drop_connections(&self) {
        self.state.kill.send_modify(|k| *k += 1);
    }
}

async fn serve(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(ServerState {
        handler: Box::new(handler),
        seen: Mutex::new(Vec::new()),
        accepted: AtomicUsize::new(0),
        count: watch::channel(0).0,
        kill: watch::channel(0).0,
    });
    let st = state.clone();
    let accept_task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            stream.set_nodelay(true).unwrap();
            let conn = st.accepted.fetch_add(1, Ordering::SeqCst);
            let st = st.clone();
            let mut kill = st.kill.subscribe();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(req, conn, st.clone()));
                let http = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    biased;
                    _ = kill.changed() => {}
                    _ = http => {}
                }
            });
        }
    });
    Server {
        url: format!("http://{addr}/mcp"),
        state,
        accept_task,
    }
}

type ServerBody = UnsyncBoxBody<Bytes, io::Error>;

fn chunk_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, io::Error>> + Send {
    futures_util::stream::iter(chunks).then(|c| async move {
        // Let the connection flush each chunk on its own.
        tokio::task::yield_now().await;
        Ok(Frame::data(Bytes::from(c)))
    })
}

async fn handle(
    req: Request<Incoming>,
    conn: usize,
    st: Arc<ServerState>,
) -> Result<Response<ServerBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        conn,
        method: parts.method,
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        at: tokio::time::Instant::now(),
    };
    st.seen.lock().unwrap().push(seen.clone());
    let answer = (st.handler)(&seen);
    st.count.send_modify(|c| *c += 1);
    let (status, headers, body) = match answer {
        Answer::Never => std::future::pending().await,
        Answer::Reply {
            status,
            headers,
            body,
        } => (status, headers, body),
    };
    let mut resp = Response::builder().status(status);
    for (k, v) in headers {
        resp = resp.header(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(&v).unwrap(),
        );
    }
    let body: ServerBody = match body {
        Body::Empty => Empty::new().map_err(|e| match e {}).boxed_unsync(),
        Body::Full(b) => Full::new(Bytes::from(b))
            .map_err(|e| match e {})
            .boxed_unsync(),
        Body::Chunks(c) => StreamBody::new(chunk_stream(c)).boxed_unsync(),
        Body::ChunksThenHang(c) => {
            StreamBody::new(chunk_stream(c).chain(futures_util::stream::pending())).boxed_unsync()
        }
    };
    Ok(resp.body(body).unwrap())
}

// --------------------------------------------------------- a raw server --

/// What a raw TCP server does with one request.
enum Raw {
    /// Write these bytes and keep the connection.
    Write(Vec<u8>),
    /// Write these bytes and close (FIN).
    WriteClose(Vec<u8>),
    /// Write these bytes and reset (RST).
    WriteReset(Vec<u8>),
    /// Read the request and never answer.
    Silent,
}

/// A server that writes exactly the bytes a test gives, for what hyper
/// will not do: cut a response in half, reset, say nothing.
async fn raw_server(
    script: impl Fn(usize, &Value) -> Raw + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let script = Arc::new(script);
    let requests = Arc::new(AtomicUsize::new(0));
    let reqs = requests.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (script, reqs) = (script.clone(), reqs.clone());
            tokio::spawn(async move { raw_connection(stream, &*script, &reqs).await });
        }
    });
    (url, requests)
}

async fn raw_connection(
    mut stream: TcpStream,
    script: &(dyn Fn(usize, &Value) -> Raw + Send + Sync),
    requests: &AtomicUsize,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request: the head, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut tmp = [0u8; 4096];
            match stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().unwrap())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut tmp = [0u8; 4096];
            match stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        let body: Value =
            serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
        buf.drain(..head_end + len);
        let n = requests.fetch_add(1, Ordering::SeqCst);
        match script(n, &body) {
            Raw::Write(bytes) => stream.write_all(&bytes).await.unwrap(),
            Raw::WriteClose(bytes) => {
                stream.write_all(&bytes).await.unwrap();
                return;
            }
            Raw::WriteReset(bytes) => {
                stream.write_all(&bytes).await.unwrap();
                stream.set_zero_linger().unwrap();
                return;
            }
            Raw::Silent => std::future::pending::<()>().await,
        }
    }
}

/// A whole HTTP/1.1 JSON response with `Content-Length`.
fn raw_json(v: &Value, extra: &str) -> Vec<u8> {
    let body = v.to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The raw server's answer to the handshake, `None` for other requests.
fn raw_handshake(body: &Value) -> Option<Raw> {
    match body.get("method").and_then(Value::as_str) {
        Some("initialize") => Some(Raw::Write(raw_json(
            &init_result(&body["id"], V),
            "mcp-session-id: raw-1\r\n",
        ))),
        Some("notifications/initialized") => Some(Raw::Write(
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec(),
        )),
        _ => None,
    }
}

// --------------------------------------------------------- the client --

fn config(url: &str) -> HttpConfig {
    HttpConfig {
        // Short bounds so that a regression fails fast instead of hanging.
        request_timeout_ms: 5_000,
        connect_timeout_ms: 2_000,
        close_timeout_ms: 2_000,
        ..HttpConfig::new(url)
    }
}

fn connector_with(cfg: HttpConfig, clock: Arc<dyn Clock>) -> HttpConnector<TcpDialer> {
    HttpConnector::new(TcpDialer, cfg, clock).unwrap()
}

fn connector(url: &str) -> HttpConnector<TcpDialer> {
    connector_with(config(url), Arc::new(TokioClock::new()))
}

fn params(version: &str) -> InitializeParams {
    InitializeParams {
        protocol_version: version.to_owned(),
        client_name: "http-transport-test".to_owned(),
        client_version: "9.9.9".to_owned(),
    }
}

/// Connects, initializes and sends the initialized notification.
async fn open_on(c: &HttpConnector<TcpDialer>) -> HttpConnection<TcpDialer> {
    let conn = c.connect().await.unwrap();
    conn.initialize(&params(V)).await.unwrap();
    conn.notify_initialized().await.unwrap();
    conn
}

async fn open(url: &str) -> HttpConnection<TcpDialer> {
    open_on(&connector(url)).await
}

fn tool(name: &str) -> Operation {
    Operation::ToolsCall {
        name: name.to_owned(),
        arguments: json!({"x": 1}),
    }
}

/// Lets other tasks on the runtime run.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Waits until something sleeps on `clock`.
async fn until_sleeping(clock: &ManualClock, n: usize) {
    while clock.sleepers() < n {
        tokio::task::yield_now().await;
    }
}

// ------------------------------------------------------ response shapes --

#[tokio::test]
async fn json_and_sse_with_content_length_or_chunked() {
    let calls = AtomicUsize::new(0);
    let server = serve(move |s| {
        if !s.is_post("tools/list") {
            return mcp(s, V);
        }
        let r = result(&s.id(), json!({"tools": [], "n": 1}));
        let text = r.to_string();
        let (a, b) = text.split_at(text.len() / 2);
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Answer::json(&r),
            1 => Answer::status(200)
                .header("content-type", "application/json; charset=utf-8")
                .body(Body::Chunks(vec![a.into(), b.into()])),
            2 => Answer::status(200)
                .header("content-type", "text/event-stream")
                .body(Body::Full(ev(&r).into_bytes())),
            _ => Answer::status(200)
                .header("content-type", "Text/Event-Stream; charset=utf-8")
                .body(Body::Chunks(vec![ev(&r).into_bytes()])),
        }
    })
    .await;
    let conn = open(&server.url).await;
    for _ in 0..4 {
        let r = conn
            .request_value(&Operation::ToolsList { cursor: None })
            .await
            .unwrap();
        assert_eq!(r, json!({"tools": [], "n": 1}));
    }
}

#[tokio::test]
async fn sse_skips_notifications_server_requests_and_other_ids() {
    let server = serve(|s| {
        if !s.is_post("tools/call") {
            return mcp(s, V);
        }
        let id = s.id();
        let ours = result(&id, json!({"content": [{"type": "text", "text": "done"}]}));
        let pretty = serde_json::to_string_pretty(&ours).unwrap();
        let multi_line: String = pretty.lines().map(|l| format!("data: {l}\n")).collect();
        Answer::sse([
            ": a comment first\n\n".to_owned(),
            format!(
                "event: message\nid: 1\ndata: {}\n\n",
                notification("notifications/progress")
            ),
            // A server request that happens to use our id.
            format!(
                "id: 2\ndata: {}\n\n",
                json!({"jsonrpc": "2.0", "id": id, "method": "sampling/createMessage", "params": {}})
            ),
            format!(
                "id: 3\ndata: {}\n\n",
                json!({"jsonrpc": "2.0", "id": 999, "result": {"not": "ours"}})
            ),
            format!(
                "id: 4\ndata: {}\n\n",
                json!([notification("a"), notification("b")])
            ),
            format!("id: 5\nretry: 1000\n{multi_line}\n"),
            ev(&notification("notifications/after")),
        ])
    })
    .await;
    let conn = open(&server.url).await;
    let r = conn.request_value(&tool("t")).await.unwrap();
    assert_eq!(r, json!({"content": [{"type": "text", "text": "done"}]}));
}

#[tokio::test]
async fn sse_one_byte_chunks_with_lf_crlf_and_cr_line_ends() {
    for eol in ["\n", "\r\n", "\r"] {
        let server = serve(move |s| {
            if !s.is_post("ping") {
                return mcp(s, V);
            }
            let text = format!(
                "id: a{eol}event: message{eol}data: {}{eol}{eol}: keep-alive{eol}{eol}id: b{eol}data: {}{eol}{eol}",
                notification("notifications/message"),
                result(&s.id(), json!({"eol": eol})),
            );
            Answer::status(200)
                .header("content-type", "text/event-stream")
                .body(Body::Chunks(text.bytes().map(|b| vec![b]).collect()))
        })
        .await;
        let conn = open(&server.url).await;
        let r = conn.request_value(&Operation::Ping).await;
        assert_eq!(r, Ok(json!({"eol": eol})), "{eol:?}");
    }
}

#[tokio::test]
async fn sse_empty_priming_event_before_the_response() {
    let server = serve(|s| {
        if !s.is_post("resources/list") {
            return mcp(s, V);
        }
        Answer::sse([
            "id: prime-0\r\ndata:\r\n\r\n".to_owned(),
            format!(
                "id: prime-1\r\ndata: {}\r\n\r\n",
                result(&s.id(), json!({"resources": []}))
            ),
        ])
    })
    .await;
    let conn = open(&server.url).await;
    let r = conn
        .request_value(&Operation::ResourcesList { cursor: None })
        .await;
    assert_eq!(r, Ok(json!({"resources": []})));
}

// ------------------------------------------------------------ lifecycle --

#[tokio::test]
async fn initialize_then_session_and_version_headers_on_every_request() {
    for (version, header) in [
        ("2024-11-05", false),
        ("2025-03-26", false),
        ("2025-06-18", true),
        ("2025-11-25", true),
    ] {
        let server = serve(move |s| mcp(s, version)).await;
        let conn = connector(&server.url).connect().await.unwrap();
        let init = conn.initialize(&params(version)).await.unwrap();
        assert_eq!(init.protocol_version, version);
        assert_eq!(init.session_id.as_deref(), Some(SID));
        conn.notify_initialized().await.unwrap();
        conn.request_value(&Operation::Ping).await.unwrap();
        conn.request_value(&Operation::ToolsList {
            cursor: Some("c1".into()),
        })
        .await
        .unwrap();
        conn.request_value(&tool("echo")).await.unwrap();
        conn.close().await.unwrap();

        let seen = server.seen();
        assert_eq!(seen.len(), 6, "{version}");
        let init_req = &seen[0];
        assert!(init_req.is_post("initialize"));
        assert_eq!(init_req.path, "/mcp");
        assert_eq!(init_req.body["jsonrpc"], "2.0");
        assert!(init_req.body["id"].is_u64());
        assert_eq!(
            init_req.body["params"],
            json!({
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "http-transport-test", "version": "9.9.9"},
            })
        );
        assert_eq!(init_req.header("mcp-session-id"), None);
        assert_eq!(init_req.header("mcp-protocol-version"), None);
        for s in &seen {
            if s.method == Method::POST {
                assert_eq!(
                    s.header("accept"),
                    Some("application/json, text/event-stream")
                );
                assert_eq!(s.header("content-type"), Some("application/json"));
            }
        }
        assert!(seen[1].is_post("notifications/initialized"));
        assert_eq!(seen[1].body.get("id"), None, "a notification has no id");
        assert!(seen[2].is_post("ping"));
        assert!(seen[3].is_post("tools/list"));
        assert_eq!(seen[3].body["params"], json!({"cursor": "c1"}));
        assert!(seen[4].is_post("tools/call"));
        assert_eq!(
            seen[4].body["params"],
            json!({"name": "echo", "arguments": {"x": 1}})
        );
        assert_eq!(seen[5].method, Method::DELETE);
        for s in &seen[1..] {
            assert_eq!(s.header("mcp-session-id"), Some(SID), "{version}");
            let want = header.then_some(version);
            assert_eq!(s.header("mcp-protocol-version"), want, "{version}");
        }
        // JSON-RPC ids are distinct.
        let ids: BTreeSet<String> = seen
            .iter()
            .filter_map(|s| s.body.get("id"))
            .map(Value::to_string)
            .collect();
        assert_eq!(ids.len(), 4);
    }
}

#[tokio::test]
async fn initialized_notification_wants_202_and_maps_errors() {
    let status = Arc::new(AtomicUsize::new(202));
    let st = status.clone();
    let server = serve(move |s| {
        if s.is_post("notifications/initialized") {
            let code = st.load(Ordering::SeqCst) as u16;
            let answer = Answer::status(code);
            return if code == 400 {
                answer
                    .header("content-type", "application/json")
                    .body(Body::Full(
                        br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"nope"},"id":null}"#
                            .to_vec(),
                    ))
            } else {
                answer
            };
        }
        mcp(s, V)
    })
    .await;
    let conn = connector(&server.url).connect().await.unwrap();
    conn.initialize(&params(V)).await.unwrap();
    assert_eq!(conn.notify_initialized().await, Ok(()));
    for (code, want) in [
        (
            400,
            TransportError::BadRequest {
                code: Some(-32600),
                message: "nope".into(),
            },
        ),
        (404, TransportError::SessionNotFound),
        (403, TransportError::Unauthorized { status: 403 }),
        (500, TransportError::ServerError { status: 500 }),
        (409, TransportError::Http { status: 409 }),
    ] {
        status.store(code, Ordering::SeqCst);
        assert_eq!(conn.notify_initialized().await, Err(want), "{code}");
    }
}

#[tokio::test]
async fn session_id_of_an_error_response_is_not_adopted() {
    let inits = AtomicUsize::new(0);
    let server = serve(move |s| {
        if !s.is_post("initialize") {
            return mcp(s, V);
        }
        match inits.fetch_add(1, Ordering::SeqCst) {
            0 => Answer::status(500).header("mcp-session-id", "bogus-500"),
            1 => Answer::json(&json!({
                "jsonrpc": "2.0", "id": s.id(),
                "error": {"code": -32602, "message": "unsupported"}
            }))
            .header("mcp-session-id", "bogus-rpc"),
            2 => Answer::status(400)
                .header("mcp-session-id", "bogus-400")
                .header("content-type", "application/json")
                .body(Body::Full(TS_400.as_bytes().to_vec())),
            // Then a success without a session id: a stateless server.
            _ => Answer::json(&init_result(&s.id(), V)),
        }
    })
    .await;
    let conn = connector(&server.url).connect().await.unwrap();
    assert_eq!(
        conn.initialize(&params(V)).await,
        Err(TransportError::ServerError { status: 500 })
    );
    assert_eq!(
        conn.initialize(&params(V)).await,
        Err(TransportError::JsonRpc {
            code: -32602,
            message: "unsupported".into()
        })
    );
    // Without a session id sent, the TypeScript 400 is a plain bad request.
    assert_eq!(
        conn.initialize(&params(V)).await,
        Err(TransportError::BadRequest {
            code: Some(-32000),
            message: "Bad Request: No valid session ID provided".into()
        })
    );
    let init = conn.initialize(&params(V)).await.unwrap();
    assert_eq!(init.session_id, None);
    conn.notify_initialized().await.unwrap();
    conn.request_value(&Operation::Ping).await.unwrap();
    conn.close().await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 6, "no DELETE for a session nobody issued");
    for s in &seen {
        assert_eq!(s.header("mcp-session-id"), None, "{:?}", s.rpc());
    }
}

#[tokio::test]
async fn stateless_server_gets_no_session_header_and_no_delete() {
    let server = serve(|s| {
        if s.is_post("initialize") {
            return Answer::json(&init_result(&s.id(), "2025-06-18"));
        }
        mcp(s, "2025-06-18")
    })
    .await;
    let conn = connector(&server.url).connect().await.unwrap();
    let init = conn.initialize(&params("2025-06-18")).await.unwrap();
    assert_eq!(init.session_id, None);
    conn.notify_initialized().await.unwrap();
    conn.request_value(&Operation::Ping).await.unwrap();
    assert_eq!(conn.close().await, Ok(CloseOutcome::NoSessionId));
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.method == Method::POST));
    for s in &seen {
        assert_eq!(s.header("mcp-session-id"), None);
    }
    for s in &seen[1..] {
        assert_eq!(s.header("mcp-protocol-version"), Some("2025-06-18"));
    }
}

#[tokio::test]
async fn close_sends_delete_and_takes_405_and_404_as_done() {
    for (code, want) in [
        (200, Ok(CloseOutcome::Deleted)),
        (204, Ok(CloseOutcome::Deleted)),
        (405, Ok(CloseOutcome::NotAllowed)),
        (404, Ok(CloseOutcome::AlreadyGone)),
        (500, Err(TransportError::ServerError { status: 500 })),
        (403, Err(TransportError::Http { status: 403 })),
    ] {
        let server = serve(move |s| match s.method {
            Method::DELETE => Answer::status(code),
            _ => mcp(s, V),
        })
        .await;
        let conn = open(&server.url).await;
        let t0 = tokio::time::Instant::now();
        assert_eq!(conn.close().await, want, "{code}");
        assert!(t0.elapsed() < Duration::from_millis(500), "{code}: prompt");
        let seen = server.seen();
        let delete = seen.last().unwrap();
        assert_eq!(delete.method, Method::DELETE);
        assert_eq!(delete.header("mcp-session-id"), Some(SID));
        assert_eq!(delete.header("mcp-protocol-version"), Some(V));
        assert_eq!(delete.path, "/mcp");
    }
}

#[tokio::test]
async fn close_does_not_wait_behind_a_request_in_flight() {
    let server = serve(|s| {
        if s.is_post("ping") {
            // Headers and a notification, then the stream stays open.
            return Answer::status(200)
                .header("content-type", "text/event-stream")
                .body(Body::ChunksThenHang(vec![ev(&notification(
                    "notifications/progress",
                ))
                .into_bytes()]));
        }
        mcp(s, V)
    })
    .await;
    let conn = Arc::new(open(&server.url).await);
    let c = conn.clone();
    let ping = tokio::spawn(async move { c.request_value(&Operation::Ping).await });
    server.wait_requests(3).await;
    settle().await;
    assert_eq!(conn.close().await, Ok(CloseOutcome::Deleted));
    let seen = server.seen();
    let delete = seen.last().unwrap();
    assert_eq!(delete.method, Method::DELETE);
    assert_eq!(delete.header("mcp-session-id"), Some(SID));
    assert_eq!(delete.conn, 1, "on a fresh connection");
    assert!(!ping.is_finished());
    ping.abort();
}

// --------------------------------------------------------------- errors --

/// A server that answers operations with `op(seen)` once the handshake is
/// done.
async fn answering(op: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Server {
    serve(move |s| {
        if s.method == Method::POST && s.rpc() != "initialize" && s.body.get("id").is_some() {
            op(s)
        } else {
            mcp(s, V)
        }
    })
    .await
}

#[tokio::test]
async fn http_404_with_a_session_is_session_not_found() {
    let server = answering(|_| Answer::status(404)).await;
    let conn = open(&server.url).await;
    assert_eq!(
        conn.request_value(&Operation::Ping).await,
        Err(TransportError::SessionNotFound)
    );
    // Without a session id (initialize) a 404 is only a status.
    let server = serve(|_| Answer::status(404)).await;
    let conn = connector(&server.url).connect().await.unwrap();
    assert_eq!(
        conn.initialize(&params(V)).await,
        Err(TransportError::Http { status: 404 })
    );
}

#[tokio::test]
async fn typescript_400_is_session_not_found_unless_switched_off() {
    let ts = || {
        Answer::status(400)
            .header("content-type", "application/json")
            .body(Body::Full(TS_400.as_bytes().to_vec()))
    };
    let server = answering(move |_| ts()).await;
    let conn = open(&server.url).await;
    assert_eq!(
        conn.request_value(&Operation::Ping).await,
        Err(TransportError::SessionNotFound)
    );
    let off = connector_with(
        HttpConfig {
            session_400_is_expired: false,
            ..config(&server.url)
        },
        Arc::new(TokioClock::new()),
    );
    let conn = open_on(&off).await;
    assert_eq!(
        conn.request_value(&Operation::Ping).await,
        Err(TransportError::BadRequest {
            code: Some(-32000),
            message: "Bad Request: No valid session ID provided".into()
        })
    );
}

#[tokio::test]
async fn other_400s_are_bad_request() {
    let n = AtomicUsize::new(0);
    let server = answering(move |_| match n.fetch_add(1, Ordering::SeqCst) {
        0 => Answer::status(400)
            .header("content-type", "application/json")
            .body(Body::Full(
                br#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}"#
                    .to_vec(),
            )),
        // -32000 but another message: not the session quirk.
        1 => Answer::status(400)
            .header("content-type", "application/json")
            .body(Body::Full(
                br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Server not initialized"},"id":null}"#
                    .to_vec(),
            )),
        _ => Answer::status(400)
            .header("content-type", "text/plain")
            .body(Body::Full(b"go away".to_vec())),
    })
    .await;
    let conn = open(&server.url).await;
    for (code, want) in [
        (Some(-32600), "Invalid Request"),
        (Some(-32000), "Bad Request: Server not initialized"),
        (None, ""),
    ] {
        assert_eq!(
            conn.request_value(&Operation::Ping).await,
            Err(TransportError::BadRequest {
                code,
                message: want.into()
            })
        );
    }
}

#[tokio::test]
async fn auth_server_and_other_statuses() {
    for (code, want) in [
        (401, TransportError::Unauthorized { status: 401 }),
        (403, TransportError::Unauthorized { status: 403 }),
        (500, TransportError::ServerError { status: 500 }),
        (503, TransportError::ServerError { status: 503 }),
        (406, TransportError::Http { status: 406 }),
        (202, TransportError::Http { status: 202 }),
    ] {
        let server = answering(move |_| Answer::status(code)).await;
        let conn = open(&server.url).await;
        assert_eq!(
            conn.request_value(&Operation::Ping).await,
            Err(want),
            "{code}"
        );
    }
}

#[tokio::test]
async fn jsonrpc_errors_and_tool_errors_in_json_and_sse() {
    for sse in [false, true] {
        let server = answering(move |s| {
            let msg = if s.rpc() == "tools/call" {
                result(
                    &s.id(),
                    json!({"isError": true, "content": [
                        {"type": "text", "text": "boom"}, {"type": "text", "text": "bang"}
                    ]}),
                )
            } else {
                json!({"jsonrpc": "2.0", "id": s.id(),
                       "error": {"code": -32601, "message": "Method not found"}})
            };
            if sse {
                Answer::sse([ev(&notification("n")), ev(&msg)])
            } else {
                Answer::json(&msg)
            }
        })
        .await;
        let conn = open(&server.url).await;
        assert_eq!(
            conn.request_value(&Operation::PromptsList { cursor: None })
                .await,
            Err(TransportError::MethodNotFound {
                method: "Method not found".into(),
                status: 200
            })
        );
        assert_eq!(
            conn.request_value(&tool("fails")).await,
            Err(TransportError::ToolError {
                message: "boom\nbang".into()
            })
        );
    }
}

#[tokio::test]
async fn request_timeout_on_the_injected_clock_then_the_session_goes_on() {
    let calls = AtomicUsize::new(0);
    let server = answering(move |s| match calls.fetch_add(1, Ordering::SeqCst) {
        // No answer at all.
        0 => Answer::Never,
        // Headers and one event, then silence.
        1 => Answer::status(200)
            .header("content-type", "text/event-stream")
            .body(Body::ChunksThenHang(vec![ev(&notification(
                "notifications/progress",
            ))
            .into_bytes()])),
        _ => Answer::json(&result(&s.id(), json!({}))),
    })
    .await;
    let clock = ManualClock::new();
    let cfg = HttpConfig {
        request_timeout_ms: 1_000,
        ..config(&server.url)
    };
    let conn = Arc::new(open_on(&connector_with(cfg, Arc::new(clock.clone()))).await);
    for (n, op) in [(3, Operation::Ping), (4, tool("slow"))] {
        let c = conn.clone();
        let op2 = op.clone();
        let call = tokio::spawn(async move { c.request_value(&op2).await });
        server.wait_requests(n).await;
        until_sleeping(&clock, 1).await;
        clock.advance(Duration::from_millis(999));
        settle().await;
        assert!(!call.is_finished(), "{op:?}: 1ms before the bound");
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            call.await.unwrap(),
            Err(TransportError::Timeout {
                what: op.method().to_owned(),
                after_ms: 1_000
            })
        );
    }
    // The abandoned exchanges do not wedge the session.
    let next = tokio::spawn({
        let c = conn.clone();
        async move { c.request_value(&Operation::Ping).await }
    });
    assert_eq!(next.await.unwrap(), Ok(json!({})));
}

#[tokio::test]
async fn request_timeout_in_real_time() {
    let server = answering(|_| Answer::Never).await;
    let cfg = HttpConfig {
        request_timeout_ms: 100,
        ..config(&server.url)
    };
    let conn = open_on(&connector_with(cfg, Arc::new(TokioClock::new()))).await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        conn.request_value(&Operation::Ping).await,
        Err(TransportError::Timeout {
            what: "ping".into(),
            after_ms: 100
        })
    );
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(2));
}

/// `last_request_id` names the id the server saw for the latest call's
/// request, answered or failed, and nothing when the call sent nothing;
/// a lease reports its own latest call's.
#[tokio::test]
async fn last_request_id_is_the_id_the_server_saw() {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = fail.clone();
    let server = answering(move |s| {
        if f.load(Ordering::SeqCst) {
            Answer::status(500)
        } else {
            mcp(s, V)
        }
    })
    .await;
    let last_seen_id = || server.seen().last().map(Seen::id);
    let conn = open(&server.url).await;
    // Only `initialize` (id 0) so far: no `request` call has forgotten it.
    assert_eq!(conn.last_request_id(), Some(0));
    conn.request_value(&Operation::Ping).await.unwrap();
    assert_eq!(conn.last_request_id(), Some(1));
    assert_eq!(last_seen_id(), Some(json!(1)));
    fail.store(true, Ordering::SeqCst);
    let e = conn.request_value(&tool("echo")).await;
    assert_eq!(e, Err(TransportError::ServerError { status: 500 }));
    assert_eq!(conn.last_request_id(), Some(2));
    assert_eq!(last_seen_id(), Some(json!(2)));
    // Refused before sending: no id, although one was sent before.
    conn.use_modern(Some(&mcp_session::transport::ModernParams {
        protocol_version: "2026-07-28".into(),
        offered: vec!["2026-07-28".into()],
        capabilities: json!({}),
        client_name: "t".into(),
        client_version: "0".into(),
    }));
    let e = conn.request_value(&Operation::Ping).await;
    assert!(
        matches!(e, Err(TransportError::NotInModernEra { .. })),
        "{e:?}"
    );
    assert_eq!(conn.last_request_id(), None);

    fail.store(false, Ordering::SeqCst);
    let manager = ManagerBuilder::new(SessionConfig::with_mode(Mode::Reuse))
        .clock(Arc::new(TokioClock::new()))
        .start(connector(&server.url))
        .unwrap();
    let mut lease = manager.acquire(1).await.unwrap();
    assert_eq!(lease.last_request_id(), None, "no call yet");
    // The era probe (`server/discover`) and `initialize` came first.
    lease.call(&Operation::Ping).await.unwrap();
    assert_eq!(lease.last_request_id(), Some(2));
    assert_eq!(last_seen_id(), Some(json!(2)));
    fail.store(true, Ordering::SeqCst);
    lease.call(&Operation::Ping).await.unwrap_err();
    assert_eq!(lease.last_request_id(), Some(3));
    assert_eq!(last_seen_id(), Some(json!(3)));
    lease.release();
    manager.close().await;
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let r = connector(&url).connect().await;
    assert!(
        matches!(r, Err(TransportError::Connect { .. })),
        "{:?}",
        r.err()
    );
    // The dial's I/O error is kept typed, as the source of the transport
    // error and, through the manager, of the session error.
    let e = r.err().expect("refused");
    let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<io::Error>());
    assert_eq!(
        io.map(io::Error::kind),
        Some(io::ErrorKind::ConnectionRefused)
    );
    let manager = ManagerBuilder::new(SessionConfig::with_mode(Mode::Reuse))
        .start(connector(&url))
        .expect("valid config");
    let e = manager.acquire(1).await.expect_err("nothing listens");
    assert!(e.is_transport() && e.kind.is_connect(), "{e}");
    let mut chain = Vec::new();
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = at {
        chain.push(err);
        at = err.source();
    }
    assert!(chain[1].is::<TransportError>(), "{chain:?}");
    let last = chain.last().and_then(|s| s.downcast_ref::<io::Error>());
    assert_eq!(
        last.map(io::Error::kind),
        Some(io::ErrorKind::ConnectionRefused)
    );
    manager.close().await;
}

#[tokio::test]
async fn connection_closed_or_reset_mid_response_is_closed() {
    // Half a JSON body, then FIN.
    let (url, _) = raw_server(|_, body| {
        let whole = raw_json(&init_result(&body["id"], V), "");
        Raw::WriteClose(whole[..whole.len() - 20].to_vec())
    })
    .await;
    let conn = connector(&url).connect().await.unwrap();
    let r = conn.initialize(&params(V)).await;
    assert!(matches!(r, Err(TransportError::Closed { .. })), "{r:?}");
    // hyper's error is kept typed as the source.
    let e = r.expect_err("closed");
    let hyper = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<hyper::Error>());
    assert!(hyper.is_some(), "{e:?}");

    // The request read, then FIN without a byte.
    let (url, _) = raw_server(|_, _| Raw::WriteClose(Vec::new())).await;
    let conn = connector(&url).connect().await.unwrap();
    let r = conn.initialize(&params(V)).await;
    assert!(matches!(r, Err(TransportError::Closed { .. })), "{r:?}");

    // An SSE stream cut inside a chunk, then RST; and then FIN.
    for reset in [true, false] {
        let (url, _) = raw_server(move |_, body| {
            if let Some(r) = raw_handshake(body) {
                return r;
            }
            let event = ev(&notification("notifications/progress"));
            let mut bytes = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n",
                event.len()
            )
            .into_bytes();
            bytes.extend_from_slice(b"40\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":");
            if reset {
                Raw::WriteReset(bytes)
            } else {
                Raw::WriteClose(bytes)
            }
        })
        .await;
        let conn = open(&url).await;
        let r = conn.request_value(&Operation::Ping).await;
        assert!(matches!(r, Err(TransportError::Closed { .. })), "{r:?}");
    }
}

#[tokio::test]
async fn malformed_json_in_a_body_or_an_event() {
    let n = AtomicUsize::new(0);
    let server = answering(move |s| match n.fetch_add(1, Ordering::SeqCst) {
        0 => Answer::status(200)
            .header("content-type", "application/json")
            .body(Body::Full(b"{\"jsonrpc\":\"2.0\",\"id\":".to_vec())),
        1 => Answer::sse([ev(&notification("ok")), "data: {oops\n\n".to_owned()]),
        // Valid JSON that is no JSON-RPC message.
        2 => Answer::json(&json!(17)),
        // Our id, but neither result nor error.
        _ => Answer::json(&json!({"jsonrpc": "2.0", "id": s.id()})),
    })
    .await;
    let conn = open(&server.url).await;
    for i in 0..4 {
        let r = conn.request_value(&Operation::Ping).await;
        assert!(
            matches!(r, Err(TransportError::MalformedJson { .. })),
            "{r:?}"
        );
        // The parser's error is kept typed, where there was one (the last
        // answer is JSON-RPC of the wrong shape, found by us).
        let e = r.expect_err("malformed");
        let parser =
            std::error::Error::source(&e).and_then(|s| s.downcast_ref::<serde_json::Error>());
        assert_eq!(parser.is_some(), i < 3, "{i}: {e:?}");
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type() {
    let n = AtomicUsize::new(0);
    let server = answering(move |s| {
        let body = Body::Full(result(&s.id(), json!({})).to_string().into_bytes());
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Answer::status(200)
                .header("content-type", "text/html")
                .body(body),
            1 => Answer::status(200).body(body),
            _ => Answer::status(200)
                .header("content-type", "text/plain; charset=utf-8")
                .body(body),
        }
    })
    .await;
    let conn = open(&server.url).await;
    for want in [Some("text/html"), None, Some("text/plain")] {
        assert_eq!(
            conn.request_value(&Operation::Ping).await,
            Err(TransportError::ContentType {
                got: want.map(str::to_owned)
            })
        );
    }
}

#[tokio::test]
async fn body_above_the_cap() {
    let n = AtomicUsize::new(0);
    let server = answering(move |s| {
        let pad = "x".repeat(2_000);
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Answer::json(&result(&s.id(), json!({"pad": pad}))),
            1 => Answer::sse(
                std::iter::repeat_n(": padding padding padding padding\n\n".to_owned(), 40)
                    .chain([ev(&result(&s.id(), json!({})))]),
            ),
            // The response within the cap, more afterwards: streaming
            // returns the response without reading on.
            _ => Answer::sse([
                ev(&result(&s.id(), json!({"small": true}))),
                format!(": {pad}\n\n"),
            ]),
        }
    })
    .await;
    let cfg = HttpConfig {
        max_body_bytes: 512,
        ..config(&server.url)
    };
    let conn = open_on(&connector_with(cfg, Arc::new(TokioClock::new()))).await;
    for _ in 0..2 {
        assert_eq!(
            conn.request_value(&Operation::Ping).await,
            Err(TransportError::BodyTooLarge { limit: 512 })
        );
    }
    assert_eq!(
        conn.request_value(&Operation::Ping).await,
        Ok(json!({"small": true}))
    );
}

#[tokio::test]
async fn invalid_session_ids_are_rejected() {
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"has space".to_vec(),
        b"tab\there".to_vec(),
        vec![b'x'; 129],
        b"caf\xc3\xa9".to_vec(),
    ];
    for id in bad {
        let header = id.clone();
        let server = serve(move |s| {
            Answer::json(&init_result(&s.id(), V)).header("mcp-session-id", &header)
        })
        .await;
        let conn = connector(&server.url).connect().await.unwrap();
        assert_eq!(
            conn.initialize(&params(V)).await,
            Err(TransportError::InvalidSessionId {
                got: String::from_utf8_lossy(&id).into_owned()
            })
        );
    }
    for good in ["x".repeat(128), "!~".to_owned(), "a".to_owned()] {
        let header = good.clone();
        let server = serve(move |s| {
            Answer::json(&init_result(&s.id(), V)).header("mcp-session-id", &header)
        })
        .await;
        let conn = connector(&server.url).connect().await.unwrap();
        let init = conn.initialize(&params(V)).await.unwrap();
        assert_eq!(init.session_id, Some(good));
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    for code in [301, 302, 303, 307, 308] {
        let server =
            answering(move |_| Answer::status(code).header("location", "/elsewhere")).await;
        let conn = open(&server.url).await;
        assert_eq!(
            conn.request_value(&Operation::Ping).await,
            Err(TransportError::Redirect {
                status: code,
                location: Some("/elsewhere".into())
            })
        );
        settle().await;
        let seen = server.seen();
        assert_eq!(seen.len(), 3, "{code}: one request, not followed");
        assert!(seen.iter().all(|s| s.path == "/mcp"));
    }
}

/// A dialer whose connect never completes (a black-holed host).
struct BlackHole;

impl Dialer for BlackHole {
    type Stream = TcpStream;

    async fn dial(&self, _host: &str, _port: u16) -> io::Result<TcpStream> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn connect_is_bounded() {
    // A dial that never ends times out on the injected clock.
    let clock = ManualClock::new();
    let cfg = HttpConfig {
        connect_timeout_ms: 3_000,
        ..HttpConfig::new("http://192.0.2.1:9/mcp")
    };
    let c = HttpConnector::new(BlackHole, cfg, Arc::new(clock.clone())).unwrap();
    let connect = tokio::spawn(async move { c.connect().await.err() });
    until_sleeping(&clock, 1).await;
    clock.advance(Duration::from_millis(2_999));
    settle().await;
    assert!(!connect.is_finished());
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        connect.await.unwrap(),
        Some(TransportError::Timeout {
            what: "connect".into(),
            after_ms: 3_000
        })
    );

    // A listener that accepts and never speaks: the TCP connect succeeds,
    // the first request is bounded by the request timeout.
    let (url, requests) = raw_server(|_, _| Raw::Silent).await;
    let clock = ManualClock::new();
    let cfg = HttpConfig {
        request_timeout_ms: 700,
        ..config(&url)
    };
    let conn = connector_with(cfg, Arc::new(clock.clone()))
        .connect()
        .await
        .unwrap();
    let init = tokio::spawn(async move { conn.initialize(&params(V)).await });
    while requests.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    until_sleeping(&clock, 1).await;
    clock.advance(Duration::from_millis(700));
    assert_eq!(
        init.await.unwrap(),
        Err(TransportError::Timeout {
            what: "initialize".into(),
            after_ms: 700
        })
    );
}

// ----------------------------------------------------------- keep-alive --

#[tokio::test]
async fn one_tcp_connection_per_session() {
    let n = AtomicUsize::new(0);
    let server = answering(move |s| {
        let r = result(&s.id(), json!({}));
        if n.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
            Answer::json(&r)
        } else {
            Answer::sse([ev(&notification("n")), ev(&r)])
        }
    })
    .await;
    let conn = open(&server.url).await;
    for _ in 0..6 {
        conn.request_value(&Operation::Ping).await.unwrap();
    }
    conn.close().await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 9);
    assert_eq!(
        server.accepted(),
        1,
        "{:?}",
        seen.iter().map(|s| s.conn).collect::<Vec<_>>()
    );
    assert!(seen.iter().all(|s| s.conn == 0));
}

#[tokio::test]
async fn redial_after_the_server_closed_the_connection() {
    let server = answering(|s| {
        // `Connection: close` on every other ping.
        let r = Answer::json(&result(&s.id(), json!({})));
        if s.conn % 2 == 0 {
            r.header("connection", "close")
        } else {
            r
        }
    })
    .await;
    let conn = open(&server.url).await;
    conn.request_value(&Operation::Ping).await.unwrap(); // conn 0, then closed
    conn.request_value(&Operation::Ping).await.unwrap(); // conn 1
    assert_eq!(server.accepted(), 2);

    // The server drops an idle connection without a word.
    server.drop_connections();
    tokio::time::sleep(Duration::from_millis(20)).await;
    conn.request_value(&Operation::Ping).await.unwrap(); // conn 2
    let seen = server.seen();
    let convs: Vec<usize> = seen.iter().map(|s| s.conn).collect();
    assert_eq!(convs, vec![0, 0, 0, 1, 2]);
    assert_eq!(seen[4].header("mcp-session-id"), Some(SID));
}

// ------------------------------------------------------- resumability --

/// An SSE event with an id (and retry).
fn ev_id(id: &str, retry: Option<u64>, v: &Value) -> String {
    let retry = retry.map(|r| format!("retry: {r}\n")).unwrap_or_default();
    format!("id: {id}\n{retry}data: {v}\n\n")
}

#[tokio::test]
async fn ended_sse_stream_is_resumed_with_get_and_last_event_id() {
    let pending = Mutex::new(Value::Null);
    let server = serve(move |s| match (s.method.clone(), s.rpc()) {
        (Method::POST, "tools/call") => {
            *pending.lock().unwrap() = s.id();
            Answer::sse([
                // 2025-11-25 style: a priming event, then the stream closes.
                "id: e0\nretry: 50\ndata:\n\n".to_owned(),
                ev_id("e1", None, &notification("notifications/progress")),
            ])
        }
        (Method::GET, _) => match s.header("last-event-id") {
            Some("e1") => Answer::sse([ev_id("e2", None, &notification("n"))]),
            Some("e2") => Answer::sse([ev_id(
                "e3",
                None,
                &result(
                    &pending.lock().unwrap(),
                    json!({"content": [], "resumed": true}),
                ),
            )]),
            _ => Answer::status(400),
        },
        _ => mcp(s, V),
    })
    .await;
    let conn = open(&server.url).await;
    conn.request_value(&Operation::Ping).await.unwrap();
    let r = conn.request_value(&tool("long")).await;
    assert_eq!(r, Ok(json!({"content": [], "resumed": true})));
    let seen = server.seen();
    let post = &seen[3];
    assert!(post.is_post("tools/call"));
    let gets: Vec<&Seen> = seen.iter().filter(|s| s.method == Method::GET).collect();
    assert_eq!(gets.len(), 2);
    for (get, last) in gets.iter().zip(["e1", "e2"]) {
        assert_eq!(get.header("last-event-id"), Some(last));
        assert_eq!(get.header("accept"), Some("text/event-stream"));
        assert_eq!(get.header("mcp-session-id"), Some(SID));
        assert_eq!(get.header("mcp-protocol-version"), Some(V));
        assert_eq!(get.path, "/mcp");
    }
    // Each reconnection waited for the last `retry:` (50 ms), which the
    // second stream did not repeat.
    assert!(gets[0].at - post.at >= Duration::from_millis(50));
    assert!(gets[1].at - gets[0].at >= Duration::from_millis(50));
}

#[tokio::test]
async fn resumption_keeps_the_last_id_when_a_resumed_stream_has_none() {
    let gets = AtomicUsize::new(0);
    let pending = Mutex::new(Value::Null);
    let server = serve(move |s| match s.method {
        Method::POST if s.rpc() == "ping" => {
            *pending.lock().unwrap() = s.id();
            Answer::sse([ev_id("p7", None, &notification("n"))])
        }
        Method::GET => {
            if gets.fetch_add(1, Ordering::SeqCst) == 0 {
                // Ends at once, with nothing new.
                Answer::sse(Vec::<String>::new())
            } else {
                Answer::sse([ev(&result(&pending.lock().unwrap(), json!({"late": true})))])
            }
        }
        _ => mcp(s, V),
    })
    .await;
    let conn = open(&server.url).await;
    assert_eq!(
        conn.request_value(&Operation::Ping).await,
        Ok(json!({"late": true}))
    );
    let seen = server.seen();
    let ids: Vec<Option<&str>> = seen
        .iter()
        .filter(|s| s.method == Method::GET)
        .map(|s| s.header("last-event-id"))
        .collect();
    assert_eq!(ids, vec![Some("p7"), Some("p7")]);
}

#[tokio::test]
async fn resumption_gives_up_after_max_resumes() {
    let gets = Arc::new(AtomicUsize::new(0));
    let g = gets.clone();
    let server = serve(move |s| match s.method {
        Method::POST if s.rpc() == "ping" => {
            Answer::sse([ev_id("r0", Some(5), &notification("n"))])
        }
        Method::GET => {
            let k = g.fetch_add(1, Ordering::SeqCst) + 1;
            Answer::sse([ev_id(&format!("r{k}"), None, &notification("n"))])
        }
        _ => mcp(s, V),
    })
    .await;
    let cfg = HttpConfig {
        max_resumes: 2,
        ..config(&server.url)
    };
    let conn = open_on(&connector_with(cfg, Arc::new(TokioClock::new()))).await;
    let r = conn.request_value(&Operation::Ping).await;
    assert!(matches!(r, Err(TransportError::Closed { .. })), "{r:?}");
    assert_eq!(gets.load(Ordering::SeqCst), 2);
    let ids: Vec<String> = server
        .seen()
        .iter()
        .filter(|s| s.method == Method::GET)
        .map(|s| s.header("last-event-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec!["r0", "r1"]);
}

#[tokio::test]
async fn resumption_is_typed_and_within_the_request_timeout() {
    // A server without a GET stream (405): the error is the stream that
    // ended before the response, and it says resumption was refused.
    let server = serve(|s| match s.method {
        Method::POST if s.rpc() == "ping" => Answer::sse([ev_id("x1", None, &notification("n"))]),
        _ => mcp(s, V),
    })
    .await;
    let conn = open(&server.url).await;
    match conn.request_value(&Operation::Ping).await {
        Err(TransportError::Closed { message: m, .. }) => {
            assert!(m.contains("resumption refused"), "{m}")
        }
        other => panic!("expected Closed(resumption refused), got {other:?}"),
    }

    // A `retry:` longer than the request timeout: the wait is cut short by
    // the timeout, and no GET goes out.
    let server = serve(|s| match s.method {
        Method::POST if s.rpc() == "ping" => {
            Answer::sse([ev_id("y1", Some(60_000), &notification("n"))])
        }
        _ => mcp(s, V),
    })
    .await;
    let clock = ManualClock::new();
    let cfg = HttpConfig {
        request_timeout_ms: 1_000,
        ..config(&server.url)
    };
    let conn = open_on(&connector_with(cfg, Arc::new(clock.clone()))).await;
    let ping = tokio::spawn(async move { conn.request_value(&Operation::Ping).await });
    // The request timeout and the retry wait.
    until_sleeping(&clock, 2).await;
    clock.advance(Duration::from_millis(1_000));
    assert_eq!(
        ping.await.unwrap(),
        Err(TransportError::Timeout {
            what: "ping".into(),
            after_ms: 1_000
        })
    );
    assert!(server.seen().iter().all(|s| s.method != Method::GET));
}

#[tokio::test]
async fn stream_without_event_ids_is_not_resumed() {
    let server = answering(|_| Answer::sse([ev(&notification("n"))])).await;
    let conn = open(&server.url).await;
    let r = conn.request_value(&Operation::Ping).await;
    assert!(matches!(r, Err(TransportError::Closed { .. })), "{r:?}");
    assert!(server.seen().iter().all(|s| s.method != Method::GET));
}

// ------------------------------------------------------ through a manager --

/// A server that forgets its sessions on `restart`, answering unknown ones
/// with 404 or (like the TypeScript SDK) 400.
async fn restartable(ts_400: bool) -> (Server, Arc<Mutex<BTreeSet<String>>>) {
    let live = Arc::new(Mutex::new(BTreeSet::new()));
    let next = AtomicUsize::new(0);
    let l = live.clone();
    let server = serve(move |s| {
        if s.is_post("initialize") {
            let id = format!("s-{}", next.fetch_add(1, Ordering::SeqCst) + 1);
            l.lock().unwrap().insert(id.clone());
            return Answer::json(&init_result(&s.id(), V)).header("mcp-session-id", id);
        }
        let known = s
            .header("mcp-session-id")
            .is_some_and(|id| l.lock().unwrap().contains(id));
        if !known {
            return if ts_400 {
                Answer::status(400)
                    .header("content-type", "application/json")
                    .body(Body::Full(TS_400.as_bytes().to_vec()))
            } else {
                Answer::status(404)
            };
        }
        if s.method == Method::DELETE {
            l.lock()
                .unwrap()
                .remove(s.header("mcp-session-id").unwrap());
        }
        mcp(s, V)
    })
    .await;
    (server, live)
}

#[tokio::test]
async fn manager_in_reuse_mode_reinitializes_after_the_session_is_lost() {
    for ts_400 in [false, true] {
        let (server, live) = restartable(ts_400).await;
        let manager = ManagerBuilder::new(SessionConfig::with_mode(Mode::Reuse))
            .clock(Arc::new(TokioClock::new()))
            .start(connector(&server.url))
            .unwrap();
        let mut lease = manager.acquire(1).await.unwrap();
        lease.call(&Operation::Ping).await.unwrap();
        let first = lease.id().to_owned();
        assert_eq!(first, "s-1");
        lease.release();

        live.lock().unwrap().clear(); // the server restarts

        let mut lease = manager.acquire(1).await.unwrap();
        assert_eq!(lease.id(), first, "reuse hands out the same session");
        let e = lease.call(&Operation::Ping).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionExpired, "ts_400={ts_400}");
        assert!(e.is_session_expired());
        lease.invalidate();

        let mut lease = manager.acquire(1).await.unwrap();
        assert_eq!(lease.id(), "s-2");
        lease.call(&Operation::Ping).await.unwrap();
        lease.release();

        let m = manager.metrics();
        assert_eq!((m.reconnects, m.total_created), (1, 2), "{m:?}");
        manager.close().await;
        let seen = server.seen();
        let inits = seen.iter().filter(|s| s.is_post("initialize")).count();
        assert_eq!(inits, 2);
        let deletes: Vec<&str> = seen
            .iter()
            .filter(|s| s.method == Method::DELETE)
            .filter_map(|s| s.header("mcp-session-id"))
            .collect();
        assert!(deletes.contains(&"s-2"), "{deletes:?}");
        assert!(live.lock().unwrap().is_empty());
    }
}
