//! Interop with a real MCP server nobody here wrote: the official Rust SDK
//! (`rmcp`), serving Streamable HTTP in-process on real loopback TCP, with
//! one tool, `echo`.
//!
//! The server is rmcp's `StreamableHttpService` over a `LocalSessionManager`
//! (its default, stateful "legacy session" mode: an `Mcp-Session-Id` per
//! session, every answer an SSE stream that starts with a priming event,
//! DELETE ends a session), driven by hyper's HTTP/1.1 server connection. Every request is logged (method, session id, status)
//! so the tests can check what went over the wire.
//!
//! What is checked:
//! - every mode acquires, calls the tool, lists the tools, releases, with
//!   the number of sessions the mode should make, and `close()` ends every
//!   session on the server with DELETE;
//! - rmcp answers our default request for protocol revision `2025-11-25`
//!   with `2025-11-25` (so the default strict policy accepts it), and every
//!   other revision we speak with itself;
//! - a session the server has terminated answers 404, the call fails as
//!   session-expired, and after `invalidate` the next acquire re-initializes
//!   and counts one reconnect — in every mode, with the session ended
//!   through rmcp's own session manager;
//! - the same after a restart of the server on the same port (reuse mode),
//!   where the old session id reaches a server that never issued it.
//!
//! Real time and real sockets; the only timer is one 20 ms sleep for the
//! restart. The whole file runs in a few tens of milliseconds once built.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{
    SessionId, SessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler};

use mcp_session::transport::{HttpConfig, HttpConnector, Operation, TcpDialer};
use mcp_session::{
    Clock, Era, ErrorKind, Manager, ManagerBuilder, Mode, SessionConfig, SessionMetrics,
    TokioClock, SUPPORTED_PROTOCOL_VERSIONS,
};

// ------------------------------------------------------------- the server --

/// The `echo` tool's arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

/// An MCP server with one tool, `echo`, written with rmcp's macros.
#[derive(Debug, Clone)]
struct Echo {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Echo {
    fn new() -> Self {
        Echo {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Returns its text argument")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

/// One HTTP request the server saw, and its answer's status and type.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: Method,
    session: Option<String>,
    status: u16,
    content_type: Option<String>,
    /// The JSON-RPC method of the body, if it had one.
    rpc: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` of the
    /// body, if it had one (2026-07-28 requests).
    meta_version: Option<String>,
    /// The `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers.
    protocol_version: Option<String>,
    mcp_method: Option<String>,
    mcp_name: Option<String>,
}

/// rmcp's Streamable HTTP server on `127.0.0.1:<ephemeral>`.
struct Server {
    addr: SocketAddr,
    url: String,
    sessions: Arc<LocalSessionManager>,
    log: Arc<Mutex<Vec<Seen>>>,
    /// TCP connections accepted so far.
    accepted: Arc<AtomicU64>,
    /// The accept loop and every connection task, to stop the server.
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Server {
    /// A server on a fresh ephemeral port.
    async fn start() -> Server {
        Server::bind("127.0.0.1:0".parse().expect("address")).await
    }

    /// A server on `addr` (the same port again, for a restart).
    async fn bind(addr: SocketAddr) -> Server {
        let sessions = Arc::new(LocalSessionManager::default());
        // No SSE keep-alive pings: nothing in these tests idles long enough.
        let config = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
        let service = StreamableHttpService::new(|| Ok(Echo::new()), sessions.clone(), config);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        let accepted = Arc::new(AtomicU64::new(0));
        let connections = accepted.clone();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let conn_tasks = tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // As a production server would: SSE events go out as they
                // come, not held back by Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                accepted.fetch_add(1, Ordering::Relaxed);
                let (service, seen) = (service.clone(), seen.clone());
                let handler = service_fn(move |req: Request<Incoming>| {
                    let (service, seen) = (service.clone(), seen.clone());
                    async move {
                        let method = req.method().clone();
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let session = header("mcp-session-id");
                        let protocol_version = header("mcp-protocol-version");
                        let mcp_method = header("mcp-method");
                        let mcp_name = header("mcp-name");
                        // The body is read here (to log its method) and
                        // handed to rmcp as it came.
                        let (parts, body) = req.into_parts();
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let rpc = json["method"].as_str().map(str::to_owned);
                        let meta_version = json["params"]["_meta"]
                            ["io.modelcontextprotocol/protocolVersion"]
                            .as_str()
                            .map(str::to_owned);
                        let req = Request::from_parts(parts, Full::new(bytes));
                        let response = service.handle(req).await;
                        seen.lock().unwrap().push(Seen {
                            method,
                            session,
                            status: response.status().as_u16(),
                            content_type: response
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                            rpc,
                            meta_version,
                            protocol_version,
                            mcp_method,
                            mcp_name,
                        });
                        Ok::<_, Infallible>(response)
                    }
                });
                let conn = tokio::spawn(async move {
                    // Ends when the client closes the connection.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), handler)
                        .await;
                });
                conn_tasks.lock().unwrap().push(conn.abort_handle());
            }
        });
        tasks.lock().unwrap().push(acceptor.abort_handle());
        Server {
            addr,
            url: format!("http://{addr}/mcp"),
            sessions,
            log,
            accepted: connections,
            tasks,
        }
    }

    /// Stops the server as a crash would: the listener and every open
    /// connection are dropped, and with them every session.
    async fn stop(self) -> SocketAddr {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        // A short real sleep parks the runtime: the aborted tasks drop their
        // sockets, and the client's connection tasks see the close, before
        // anything is sent again.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.addr
    }

    fn connections(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    fn log(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Whether rmcp's session manager still holds session `id`.
    async fn holds(&self, id: &str) -> bool {
        self.sessions
            .has_session(&SessionId::from(id))
            .await
            .expect("has_session")
    }

    /// Ends session `id` on the server side, as rmcp does on its own
    /// DELETE (or as a restart would, for this one session).
    async fn terminate(&self, id: &str) {
        self.sessions
            .close_session(&SessionId::from(id))
            .await
            .expect("close_session");
        assert!(!self.holds(id).await);
    }

    /// Sessions rmcp's session manager holds right now.
    async fn live(&self) -> usize {
        self.sessions.sessions.read().await.len()
    }

    /// The statuses of the requests for `method` that carried session `id`.
    fn statuses(&self, method: &Method, id: &str) -> Vec<u16> {
        self.log()
            .into_iter()
            .filter(|s| s.method == *method && s.session.as_deref() == Some(id))
            .map(|s| s.status)
            .collect()
    }
}

// ------------------------------------------------------------- the client --

type M = Manager<HttpConnector<TcpDialer>>;

fn manager(server: &Server, cfg: SessionConfig) -> M {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let http = HttpConfig {
        // Bounds, should anything hang; nothing here comes near them.
        connect_timeout_ms: 2_000,
        request_timeout_ms: 2_000,
        close_timeout_ms: 2_000,
        ..HttpConfig::new(&server.url)
    };
    let connector = HttpConnector::new(TcpDialer, http, clock.clone()).expect("valid URL");
    ManagerBuilder::new(cfg)
        .clock(clock)
        .start(connector)
        .expect("valid config")
}

/// `mode` in the legacy era (rmcp 3 speaks both eras; the legacy tests
/// pin theirs, the stateless-era ones set it).
fn config(mode: Mode) -> SessionConfig {
    let cfg = match mode {
        Mode::Pool => SessionConfig::pool(2),
        mode => SessionConfig::with_mode(mode),
    };
    SessionConfig {
        era: Era::Legacy,
        ..cfg
    }
}

fn echo(text: &str) -> Operation {
    Operation::ToolsCall {
        name: "echo".into(),
        arguments: json!({ "text": text }),
    }
}

/// The text of a `tools/call` result's content.
fn texts(result: &Value) -> Vec<&str> {
    result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content array in {result}"))
        .iter()
        .filter(|c| c["type"] == "text")
        .filter_map(|c| c["text"].as_str())
        .collect()
}

fn assert_accounting(m: &SessionMetrics) {
    if let Err(e) = m.check_accounting() {
        panic!("{e}: {m:?}");
    }
}

/// Sessions each mode makes for one VU that runs one `tools/call` and one
/// `tools/list`, each on its own lease.
fn sessions_for_two_leases(mode: Mode) -> u64 {
    match mode {
        Mode::Reuse | Mode::Pool => 1,
        // A session per operation; churn replaces it after every operation
        // (the default `churn_interval_ops = 1`).
        Mode::PerRequest | Mode::Churn => 2,
    }
}

// ----------------------------------------------------------------- tests --

#[tokio::test]
async fn every_mode_calls_the_tool_and_closes_with_delete() {
    let server = Server::start().await;
    for mode in Mode::ALL {
        let m = manager(&server, config(mode));
        let connections = server.connections();
        let mut ids = Vec::new();

        let mut lease = m.acquire(1).await.expect("acquire");
        let info = lease.info();
        // rmcp answers our default request (2025-11-25) with the same
        // revision, so the default strict policy accepts it.
        assert_eq!(info.protocol_version, "2025-11-25", "{mode}");
        assert!(
            server.holds(lease.id()).await,
            "{mode}: rmcp has the session"
        );
        let text = format!("hello from {mode}");
        let result = lease
            .call(&echo(&text))
            .await
            .expect("tools/call")
            .to_value();
        assert_eq!(texts(&result), [text.as_str()], "{mode}: {result}");
        assert_ne!(result["isError"], true, "{mode}: {result}");
        ids.push(lease.id().to_owned());
        lease.release();

        let mut lease = m.acquire(1).await.expect("acquire");
        let list = lease
            .call(&Operation::ToolsList { cursor: None })
            .await
            .expect("tools/list")
            .to_value();
        let tools = list["tools"].as_array().expect("tools array");
        assert_eq!(tools.len(), 1, "{mode}: {list}");
        assert_eq!(tools[0]["name"], "echo", "{mode}: {list}");
        assert_eq!(tools[0]["inputSchema"]["type"], "object", "{mode}: {list}");
        ids.push(lease.id().to_owned());
        lease.release();

        let metrics = m.metrics();
        assert_eq!(
            metrics.total_created,
            sessions_for_two_leases(mode),
            "{mode}: {metrics:?}"
        );
        assert_eq!(metrics.reconnects, 0, "{mode}");
        assert_accounting(&metrics);

        m.close().await;
        let metrics = m.metrics();
        assert_eq!(metrics.live_sessions, 0, "{mode}: {metrics:?}");
        assert_accounting(&metrics);
        ids.dedup();
        assert_eq!(ids.len() as u64, metrics.total_created, "{mode}: {ids:?}");
        for id in &ids {
            // rmcp answers DELETE with 202 Accepted and forgets the session.
            assert_eq!(server.statuses(&Method::DELETE, id), [202], "{mode} {id}");
            assert!(!server.holds(id).await, "{mode}: {id} still on the server");
        }
        // One keep-alive HTTP connection per session carried everything
        // (initialize, initialized, the operation(s), DELETE): rmcp ends each
        // SSE response right after the answer, so the connection is free
        // again and never re-dialed.
        assert_eq!(
            server.connections() - connections,
            metrics.total_created,
            "{mode}"
        );
    }
    assert_eq!(server.live().await, 0, "every session ended on the server");
    // Nothing but 200 (initialize, operations) and 202 (initialized,
    // DELETE); every answer came as an SSE stream (after rmcp's priming
    // event, `id: 0` and `retry: 3000` with empty data), none as plain JSON.
    for seen in server.log() {
        match seen.status {
            200 => assert_eq!(
                seen.content_type.as_deref(),
                Some("text/event-stream"),
                "{seen:?}"
            ),
            202 => {}
            _ => panic!("unexpected answer {seen:?}"),
        }
    }
}

#[tokio::test]
async fn terminated_session_answers_404_and_the_next_acquire_reconnects() {
    let server = Server::start().await;
    for mode in Mode::ALL {
        let m = manager(&server, config(mode));
        let mut lease = m.acquire(1).await.expect("acquire");
        if matches!(mode, Mode::Reuse | Mode::Pool) {
            // The realistic case: a session used, released, kept idle, and
            // then lost by the server while the client still holds it.
            let r = lease
                .call(&echo("before"))
                .await
                .expect("tools/call")
                .to_value();
            assert_eq!(texts(&r), ["before"]);
            let id = lease.id().to_owned();
            lease.release();
            server.terminate(&id).await;
            lease = m.acquire(1).await.expect("acquire");
            assert_eq!(lease.id(), id, "{mode}: the idle session comes back");
        } else {
            // Per-request and churn never hand out a used session again: lose
            // this one while it is leased.
            server.terminate(lease.id()).await;
        }
        let dead = lease.id().to_owned();

        let e = lease.call(&echo("lost")).await.unwrap_err();
        assert!(e.is_session_expired(), "{mode}: {e}");
        assert_eq!(e.kind, ErrorKind::SessionExpired);
        assert_eq!(e.session.as_deref(), Some(dead.as_str()));
        assert_eq!(server.statuses(&Method::POST, &dead).last(), Some(&404));
        lease.invalidate();

        let mut lease = m.acquire(1).await.expect("acquire after the 404");
        assert_ne!(lease.id(), dead, "{mode}: a new session");
        assert!(server.holds(lease.id()).await);
        let r = lease.call(&echo("after")).await.expect("tools/call");
        assert_eq!(texts(&r.to_value()), ["after"], "{mode}");
        lease.release();

        let metrics = m.metrics();
        assert_eq!(metrics.reconnects, 1, "{mode}: {metrics:?}");
        assert_eq!(metrics.closed.invalidated, 1, "{mode}: {metrics:?}");
        assert_eq!(metrics.total_created, 2, "{mode}: {metrics:?}");
        assert_accounting(&metrics);
        m.close().await;
        // rmcp declared the session gone (404): no DELETE for it.
        assert!(server.statuses(&Method::DELETE, &dead).is_empty(), "{mode}");
    }
    assert_eq!(server.live().await, 0);
}

#[tokio::test]
async fn reuse_survives_a_server_restart_on_the_same_port() {
    let server = Server::start().await;
    let m = manager(&server, config(Mode::Reuse));
    let mut lease = m.acquire(1).await.expect("acquire");
    lease.call(&echo("before")).await.expect("tools/call");
    let old = lease.id().to_owned();
    lease.release();

    let addr = server.stop().await;
    let server = Server::bind(addr).await;

    // The client's keep-alive connection died with the old server. It
    // re-dials — at once if it has read the close, or after hyper cancelled
    // the unsent request if it had not yet (the transport then sends it once
    // more) — and sends the old session id, which the new server never
    // issued: 404.
    let mut lease = m.acquire(1).await.expect("acquire");
    assert_eq!(lease.id(), old);
    let e = lease.call(&echo("lost")).await.unwrap_err();
    assert!(e.is_session_expired(), "{e}");
    assert_eq!(server.statuses(&Method::POST, &old), [404]);
    lease.invalidate();

    let mut lease = m.acquire(1).await.expect("acquire after the restart");
    assert_ne!(lease.id(), old);
    let r = lease.call(&echo("after")).await.expect("tools/call");
    assert_eq!(texts(&r.to_value()), ["after"]);
    lease.release();
    let metrics = m.metrics();
    assert_eq!(
        (metrics.reconnects, metrics.total_created),
        (1, 2),
        "{metrics:?}"
    );
    m.close().await;
    assert_eq!(server.live().await, 0);
}

#[tokio::test]
async fn rmcp_answers_every_revision_we_speak_with_itself() {
    let server = Server::start().await;
    for version in SUPPORTED_PROTOCOL_VERSIONS {
        // Strict: the answer must be the revision asked for.
        let cfg = SessionConfig {
            protocol_version: version.to_owned(),
            era: Era::Legacy,
            ..SessionConfig::default()
        };
        let m = manager(&server, cfg);
        let mut lease = m.acquire(1).await.expect("acquire");
        assert_eq!(lease.info().protocol_version, version);
        // From 2025-06-18 on we send MCP-Protocol-Version, which rmcp
        // validates; before, we do not, and rmcp assumes 2025-03-26.
        let r = lease.call(&echo(version)).await.expect("tools/call");
        assert_eq!(texts(&r.to_value()), [version]);
        lease.call(&Operation::Ping).await.expect("ping");
        lease.release();
        m.close().await;
        assert_eq!(m.metrics().total_created, 1);
    }
    assert_eq!(server.live().await, 0);
}

/// rmcp 3 speaks 2026-07-28 too. With `era = modern` and with `era = auto`
/// every mode runs `tools/call` echo and `tools/list` without a failure in
/// the stateless era: each context opens with `server/discover` (`auto`
/// finds a modern server and does not fall back), every request carries
/// `MCP-Protocol-Version: 2026-07-28` equal to its `_meta` revision and
/// `Mcp-Method` equal to its method (and `Mcp-Name: echo` on the call),
/// and nothing of the legacy era goes over the wire: no `initialize`, no
/// `Mcp-Session-Id`, no GET, no DELETE — and rmcp holds no session.
#[tokio::test]
async fn every_mode_speaks_the_stateless_era_with_rmcp() {
    use mcp_session::SessionEra;
    let server = Server::start().await;
    for era in [Era::Modern, Era::Auto] {
        for mode in Mode::ALL {
            let at = format!("{mode} era={era}");
            let cfg = SessionConfig {
                era,
                ..config(mode)
            };
            let m = manager(&server, cfg);
            let mark = server.log().len();

            let mut lease = m.acquire(1).await.expect("acquire");
            let info = lease.info();
            assert_eq!(info.era, SessionEra::Modern, "{at}");
            assert_eq!(info.protocol_version, "2026-07-28", "{at}");
            let text = format!("stateless {at}");
            let result = lease.call(&echo(&text)).await.expect("tools/call");
            assert_eq!(texts(&result.to_value()), [text.as_str()], "{at}");
            assert!(!result.is_error(), "{at}");
            lease.release();

            let mut lease = m.acquire(1).await.expect("acquire");
            let list = lease
                .call(&Operation::ToolsList { cursor: None })
                .await
                .expect("tools/list")
                .to_value();
            assert_eq!(list["tools"][0]["name"], "echo", "{at}: {list}");
            lease.release();
            m.close().await;

            let metrics = m.metrics();
            assert_accounting(&metrics);
            let e = &metrics.eras;
            let n = sessions_for_two_leases(mode);
            assert_eq!((e.modern.created, e.legacy.created), (n, 0), "{at}: {e:?}");
            assert_eq!(e.fallbacks_to_legacy, 0, "{at}");
            assert_eq!(e.era_changes, 0, "{at}");
            assert_eq!(m.era(), Some(SessionEra::Modern), "{at}");
            let negotiated = m.negotiated().expect("negotiated");
            assert_eq!(
                (negotiated.era, negotiated.version.as_str()),
                (SessionEra::Modern, "2026-07-28"),
                "{at}"
            );

            let log = server.log()[mark..].to_vec();
            let discovers = log
                .iter()
                .filter(|s| s.rpc.as_deref() == Some("server/discover"))
                .count() as u64;
            assert_eq!(discovers, e.discover_probes, "{at}");
            assert!(discovers >= 1, "{at}: contexts open with a probe");
            assert_eq!(log.len() as u64, discovers + 2, "{at}: {log:#?}");
            for s in &log {
                assert_eq!(s.method, Method::POST, "{at}: {s:?}");
                assert_eq!(s.session, None, "{at}: {s:?}");
                assert_eq!(s.status, 200, "{at}: {s:?}");
                assert_eq!(
                    s.protocol_version.as_deref(),
                    Some("2026-07-28"),
                    "{at}: {s:?}"
                );
                assert_eq!(s.meta_version, s.protocol_version, "{at}: {s:?}");
                assert_eq!(s.mcp_method, s.rpc, "{at}: {s:?}");
                let name = (s.rpc.as_deref() == Some("tools/call")).then_some("echo");
                assert_eq!(s.mcp_name.as_deref(), name, "{at}: {s:?}");
                assert!(
                    !matches!(
                        s.rpc.as_deref(),
                        Some("initialize" | "notifications/initialized" | "ping")
                    ),
                    "{at}: {s:?}"
                );
            }
            assert_eq!(server.live().await, 0, "{at}: rmcp holds no session");
        }
    }
}
