//! The library's real client (`Manager` over `HttpConnector`) against the
//! simulated MCP server, inside turmoil.
//!
//! Every test is one or two seeded turmoil simulations: a host `server`
//! serving on port 8080, and a client host running a `Manager` whose HTTP
//! transport dials through [`TurmoilDialer`]. Time is simulated (turmoil's
//! tick), so "within the deadline" is checked exactly, a test that sleeps
//! for seconds takes none of them, and each simulation ends as soon as its
//! client does. `simulation_duration` is set explicitly on every one: a
//! bound that a hang runs into, with a clear error, long before a test
//! harness timeout.
//!
//! What the server did is read from its event log after the run; what the
//! client saw is asserted inside the client.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{json, Value};

use mcp_session::transport::{CallResult, HttpConfig, HttpConnector, Operation, TransportError};
use mcp_session::{
    Clock, Era, ErrorKind, Manager, ManagerBuilder, Mode, SessionConfig, SessionMetrics, TokioClock,
};
use mcp_sim::dialer::TurmoilDialer;
use mcp_sim::server::encode::Format;
use mcp_sim::server::{ExpiryReason, Server, ServerConfig, ServerEvent, SessionIdFault, Stamped};

type M = Manager<HttpConnector<TurmoilDialer>>;

const URL: &str = "http://server:8080/mcp";

// --------------------------------------------------------------- the world --

/// A simulation with a fixed seed and an explicit bound on simulated time.
fn sim(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .build()
}

/// Runs `server` on host `server`, port 8080. The closure runs again on a
/// bounce, and a restart loses every session (an in-memory session store).
fn host_server(sim: &mut turmoil::Sim<'static>, server: &Server) {
    let handle = server.clone();
    sim.host("server", move || {
        let server = handle.clone();
        async move {
            server.forget_sessions();
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 8080)).await?;
            server.serve(listener).await?;
            Ok(())
        }
    });
}

/// Bounds for every wait of the transport; nothing in a healthy run comes
/// near them.
fn http() -> HttpConfig {
    HttpConfig {
        connect_timeout_ms: 1_000,
        request_timeout_ms: 2_000,
        close_timeout_ms: 1_000,
        ..HttpConfig::new(URL)
    }
}

/// A manager over turmoil TCP, on the simulated clock (call inside a host).
/// In the legacy era: these tests are about the simulated server's
/// sessions.
fn manager(cfg: SessionConfig, http: HttpConfig) -> M {
    let cfg = SessionConfig {
        era: Era::Legacy,
        ..cfg
    };
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let connector =
        HttpConnector::new(TurmoilDialer::new(), http, clock.clone()).expect("valid URL");
    ManagerBuilder::new(cfg)
        .clock(clock)
        .start(connector)
        .expect("valid config")
}

fn config(mode: Mode) -> SessionConfig {
    match mode {
        Mode::Pool => SessionConfig::pool(2),
        mode => SessionConfig::with_mode(mode),
    }
}

fn echo(text: &str) -> Operation {
    Operation::ToolsCall {
        name: "echo".into(),
        arguments: json!({ "text": text }),
    }
}

fn tool(name: &str, arguments: Value) -> Operation {
    Operation::ToolsCall {
        name: name.into(),
        arguments,
    }
}

/// The text contents of a `tools/call` result.
fn texts(result: &CallResult) -> Vec<String> {
    let result = result.to_value();
    result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {result}"))
        .iter()
        .filter_map(|c| c["text"].as_str().map(str::to_owned))
        .collect()
}

fn assert_accounting(m: &SessionMetrics) {
    if let Err(e) = m.check_accounting() {
        panic!("{e}: {m:?}");
    }
}

fn events(server: &Server) -> Vec<ServerEvent> {
    server.events().into_iter().map(|s| s.event).collect()
}

fn created(server: &Server) -> Vec<String> {
    events(server)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::SessionCreated { session, .. } => Some(session),
            _ => None,
        })
        .collect()
}

fn deleted(server: &Server) -> Vec<String> {
    events(server)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Deleted { session, .. } => Some(session),
            _ => None,
        })
        .collect()
}

fn formats(server: &Server) -> Vec<Format> {
    events(server)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Answered { format, .. } => Some(format),
            _ => None,
        })
        .collect()
}

/// Events that mean the client broke a rule or named a dead session.
fn complaints(server: &Server) -> Vec<Stamped> {
    server
        .events()
        .into_iter()
        .filter(|s| {
            matches!(
                s.event,
                ServerEvent::UnknownSession { .. }
                    | ServerEvent::MissingSession { .. }
                    | ServerEvent::Rejected { .. }
            )
        })
        .collect()
}

// --------------------------------------------------------------- lifecycle --

/// Sessions a mode makes for one VU that takes two leases in a row.
fn sessions_for_two_leases(mode: Mode) -> usize {
    match mode {
        Mode::Reuse | Mode::Pool => 1,
        // A session per lease; churn replaces it after every operation
        // (the default `churn_interval_ops = 1`).
        Mode::PerRequest | Mode::Churn => 2,
    }
}

/// One VU, two leases (tools/list; then pings and an echo), then `close()`:
/// the full lifecycle, with answers drawn at `sse_ratio`.
fn lifecycle(mode: Mode, sse_ratio: f64, seed: u64) -> Server {
    let server = Server::new(ServerConfig {
        seed,
        sse_ratio,
        notifications_before_response: 2,
        split_chunks: 4,
        ..ServerConfig::default()
    });
    let mut sim = sim(seed);
    host_server(&mut sim, &server);
    sim.client("client", async move {
        let m = manager(config(mode), http());

        let mut lease = m.acquire(1).await?;
        let list = lease
            .call(&Operation::ToolsList { cursor: None })
            .await?
            .to_value();
        let names: Vec<&str> = list["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["echo", "slow", "fail", "jsonrpc_error"], "{mode}");
        lease.release();

        let mut lease = m.acquire(1).await?;
        for _ in 0..3 {
            assert_eq!(lease.call(&Operation::Ping).await?.to_value(), json!({}));
        }
        let text = format!("hello from {mode}");
        let result = lease.call(&echo(&text)).await?;
        assert_eq!(texts(&result), [text], "{mode}");
        lease.release();

        m.close().await;
        let metrics = m.metrics();
        assert_eq!(
            metrics.total_created as usize,
            sessions_for_two_leases(mode),
            "{mode}: {metrics:?}"
        );
        assert_eq!(metrics.live_sessions, 0);
        assert_accounting(&metrics);
        Ok(())
    });
    sim.run().expect("simulation");

    let made = created(&server);
    assert_eq!(made.len(), sessions_for_two_leases(mode), "{mode}");
    let mut gone = deleted(&server);
    gone.sort();
    assert_eq!(gone, made, "{mode}: every session ended with DELETE");
    assert!(server.live_sessions().is_empty(), "{mode}");
    assert!(
        complaints(&server).is_empty(),
        "{mode}: {:?}",
        complaints(&server)
    );
    // Each session: initialize, then the initialized notification.
    let evs = events(&server);
    for id in &made {
        let notified = evs.iter().any(|e| matches!(e, ServerEvent::Notification { session, method, .. } if session == id && method == "notifications/initialized"));
        assert!(notified, "{mode}: {id} was initialized");
    }
    server
}

fn lifecycle_in_every_mode(sse_ratio: f64) -> Vec<Server> {
    Mode::ALL
        .into_iter()
        .map(|mode| lifecycle(mode, sse_ratio, 11))
        .collect()
}

#[test]
fn lifecycle_with_json_answers() {
    for server in lifecycle_in_every_mode(0.0) {
        let f = formats(&server);
        assert!(
            f.len() >= 6 && f.iter().all(|&f| f == Format::Json),
            "{f:?}"
        );
    }
}

#[test]
fn lifecycle_with_sse_answers() {
    for server in lifecycle_in_every_mode(1.0) {
        let f = formats(&server);
        assert!(f.len() >= 6 && f.iter().all(|&f| f == Format::Sse), "{f:?}");
        // Bodies were cut: the client reassembled SSE from pieces.
        let cut = server
            .events()
            .into_iter()
            .any(|s| matches!(s.event, ServerEvent::Answered { pieces, .. } if pieces > 1));
        assert!(cut);
    }
}

#[test]
fn lifecycle_with_mixed_answers() {
    for server in lifecycle_in_every_mode(0.5) {
        let f = formats(&server);
        assert!(
            f.contains(&Format::Json) && f.contains(&Format::Sse),
            "{f:?}"
        );
    }
}

// ------------------------------------------------------------------ expiry --

/// How the server loses the session.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Loss {
    /// `expire_session`, the fault hook.
    Early,
    /// Not used for longer than the server's idle limit.
    Idle,
    /// Older than the server's TTL.
    Ttl,
}

/// Reuse mode: use a session, lose it on the server, see the error, and
/// reconnect after invalidating.
fn lost_session(loss: Loss, answer_400: bool) -> Server {
    let server = Server::new(ServerConfig {
        seed: 5,
        answer_400_for_unknown_session: answer_400,
        session_idle: (loss == Loss::Idle).then_some(Duration::from_millis(1_000)),
        session_ttl: (loss == Loss::Ttl).then_some(Duration::from_millis(1_500)),
        ..ServerConfig::default()
    });
    let mut sim = sim(5);
    host_server(&mut sim, &server);
    let handle = server.clone();
    sim.client("client", async move {
        let m = manager(config(Mode::Reuse), http());
        let mut lease = m.acquire(1).await?;
        lease.call(&echo("first")).await?;
        let first = lease.id().to_owned();
        lease.release();
        match loss {
            Loss::Early => assert!(handle.expire_session(&first)),
            Loss::Idle => tokio::time::sleep(Duration::from_millis(1_200)).await,
            Loss::Ttl => {
                // Used at 500 and 1000 ms: the TTL (1500) counts from
                // creation whatever the use.
                for _ in 0..2 {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let mut lease = m.acquire(1).await?;
                    lease.call(&Operation::Ping).await?;
                    lease.release();
                }
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
        }

        let mut lease = m.acquire(1).await?;
        assert_eq!(lease.id(), first, "the idle session comes back");
        let e = lease.call(&echo("lost")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionExpired, "{loss:?}: {e}");
        assert_eq!(e.session.as_deref(), Some(first.as_str()));
        lease.invalidate();

        let mut lease = m.acquire(1).await?;
        assert_ne!(lease.id(), first, "a new session");
        let r = lease.call(&echo("again")).await?;
        assert_eq!(texts(&r), ["again"]);
        lease.release();
        let metrics = m.metrics();
        assert_eq!(metrics.reconnects, 1, "{metrics:?}");
        assert_eq!(metrics.closed.invalidated, 1, "{metrics:?}");
        assert_eq!(metrics.total_created, 2, "{metrics:?}");
        assert_accounting(&metrics);
        m.close().await;
        Ok(())
    });
    sim.run().expect("simulation");

    let reason = match loss {
        Loss::Early => ExpiryReason::Early,
        Loss::Idle => ExpiryReason::Idle,
        Loss::Ttl => ExpiryReason::Ttl,
    };
    let status = if answer_400 { 400 } else { 404 };
    let evs = events(&server);
    let expired = evs
        .iter()
        .position(|e| {
            *e == ServerEvent::Expired {
                session: "srv-1".into(),
                reason,
            }
        })
        .unwrap_or_else(|| panic!("no {reason:?} expiry of srv-1 in {evs:#?}"));
    let refused = evs
        .iter()
        .position(|e| {
            matches!(e, ServerEvent::UnknownSession { session, method, status: s, .. }
                if session == "srv-1" && method.as_deref() == Some("tools/call") && *s == status)
        })
        .unwrap_or_else(|| panic!("no {status} for srv-1 in {evs:#?}"));
    assert!(expired < refused);
    assert_eq!(created(&server), ["srv-1", "srv-2"]);
    server
}

#[test]
fn early_expiry_gives_404_and_the_next_acquire_reinitializes() {
    lost_session(Loss::Early, false);
}

#[test]
fn the_typescript_400_for_an_unknown_session_is_handled_like_404() {
    let server = lost_session(Loss::Early, true);
    // The operation got the quirk's 400, read as the session gone: the
    // client sends no DELETE for it.
    let post_400 = events(&server).into_iter().any(|e| {
        matches!(e, ServerEvent::UnknownSession { ref session, ref http, status: 400, .. }
            if session == "srv-1" && http == "POST")
    });
    assert!(post_400);
    let delete = events(&server).into_iter().any(|e| {
        matches!(e, ServerEvent::UnknownSession { ref session, ref http, .. }
            if session == "srv-1" && http == "DELETE")
    });
    assert!(!delete, "a DELETE for a session the server declared gone");
}

#[test]
fn server_side_idle_expiry_gives_404() {
    lost_session(Loss::Idle, false);
}

#[test]
fn server_side_ttl_gives_404_however_often_the_session_is_used() {
    lost_session(Loss::Ttl, false);
}

// ----------------------------------------------------------------- timeout --

#[test]
fn slow_tool_past_the_request_timeout_fails_at_the_deadline() {
    let server = Server::new(ServerConfig {
        seed: 3,
        ..ServerConfig::default()
    });
    let mut sim = sim(3);
    host_server(&mut sim, &server);
    sim.client("client", async move {
        let cfg = HttpConfig {
            request_timeout_ms: 500,
            ..http()
        };
        let m = manager(config(Mode::Reuse), cfg);
        let mut lease = m.acquire(1).await?;
        let start = tokio::time::Instant::now();
        let e = lease
            .call(&tool("slow", json!({ "ms": 2_000 })))
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(&e.kind, ErrorKind::Operation(TransportError::Timeout { after_ms: 500, what }) if what == "tools/call"),
            "{e}"
        );
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_millis(520),
            "{took:?}"
        );
        // A slow call that fits the timeout answers.
        let r = lease.call(&tool("slow", json!({ "ms": 100 }))).await?;
        assert_eq!(texts(&r), ["slept 100 ms"]);
        lease.release();
        m.close().await;
        Ok(())
    });
    sim.run().expect("simulation");
}

/// The `slow` tool sleeps at most a minute: a longer sleep is refused at
/// once, so one call cannot hold a connection of the server for ever.
#[test]
fn a_slow_call_past_the_cap_is_refused_at_once() {
    let server = Server::new(ServerConfig {
        seed: 3,
        ..ServerConfig::default()
    });
    let mut sim = sim(3);
    host_server(&mut sim, &server);
    sim.client("client", async move {
        let m = manager(config(Mode::Reuse), http());
        let mut lease = m.acquire(1).await?;
        let start = tokio::time::Instant::now();
        let e = lease
            .call(&tool("slow", json!({ "ms": u64::MAX })))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("slow: ms 18446744073709551615 is above the maximum of 60000"),
            "{e}"
        );
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "refused at once"
        );
        lease.release();
        m.close().await;
        Ok(())
    });
    sim.run().expect("simulation");
}

// ------------------------------------------------------------ crash/bounce --

#[test]
fn crash_and_bounce_between_two_acquires_loses_the_session() {
    const RUNNING: u8 = 0;
    const PAUSED: u8 = 1;
    const RESUMED: u8 = 2;
    let server = Server::new(ServerConfig {
        seed: 21,
        ..ServerConfig::default()
    });
    let mut sim = sim(21);
    host_server(&mut sim, &server);
    let phase = Arc::new(AtomicU8::new(RUNNING));
    let seen = phase.clone();
    sim.client("client", async move {
        let m = manager(config(Mode::Reuse), http());
        let mut lease = m.acquire(1).await?;
        lease.call(&echo("before")).await?;
        let first = lease.id().to_owned();
        lease.release();

        seen.store(PAUSED, Ordering::SeqCst);
        while seen.load(Ordering::SeqCst) != RESUMED {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let mut lease = m.acquire(1).await?;
        assert_eq!(lease.id(), first, "reuse: the idle session comes back");
        let e = lease.call(&echo("after")).await.unwrap_err();
        // The restarted server does not know the session (404), or the
        // keep-alive connection died with the old process.
        assert!(
            e.is_session_expired()
                || matches!(
                    e.kind,
                    ErrorKind::Operation(
                        TransportError::Closed { .. } | TransportError::Connect { .. }
                    )
                ),
            "{e}"
        );
        lease.invalidate();
        let mut lease = m.acquire(1).await?;
        assert_ne!(lease.id(), first);
        assert_eq!(texts(&lease.call(&echo("again")).await?), ["again"]);
        lease.release();
        assert_eq!(m.metrics().reconnects, 1);
        assert_accounting(&m.metrics());
        m.close().await;
        Ok(())
    });
    while phase.load(Ordering::SeqCst) != PAUSED {
        assert!(!sim.step().expect("simulation"), "client ended early");
    }
    sim.crash("server");
    // Down for a while; nothing tries to reach it.
    for _ in 0..50 {
        sim.step().expect("simulation");
    }
    sim.bounce("server");
    phase.store(RESUMED, Ordering::SeqCst);
    sim.run().expect("simulation");

    let evs = events(&server);
    let restarted = evs
        .iter()
        .position(|e| *e == ServerEvent::Started { run: 2 })
        .expect("restarted");
    assert_eq!(
        evs[restarted - 1],
        ServerEvent::SessionsCleared { dropped: 1 },
        "the restart forgot srv-1"
    );
    assert_eq!(created(&server), ["srv-1", "srv-2"]);
    assert_eq!(server.live_sessions(), Vec::<String>::new());
}

// ------------------------------------------------------------- determinism --

/// Four VUs on a pool of two, mixed operations, mixed answer shapes, an
/// injected 503 burst and an idle limit: a log with many seeded choices.
fn busy_run(server_seed: u64) -> String {
    let server = Server::new(ServerConfig {
        seed: server_seed,
        sse_ratio: 0.5,
        notifications_before_response: 2,
        split_chunks: 5,
        session_idle: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    });
    let mut sim = sim(42);
    host_server(&mut sim, &server);
    let handle = server.clone();
    sim.client("client", async move {
        let m = manager(SessionConfig::pool(2), http());
        let vus = (1..=4u64).map(|vu| {
            let (m, handle) = (m.clone(), handle.clone());
            async move {
                for step in 0..6u64 {
                    if vu == 2 && step == 3 {
                        handle.fail_next(2, 503);
                    }
                    let op = match (vu + step) % 5 {
                        0 => Operation::Ping,
                        1 => echo(&format!("vu {vu} step {step}")),
                        2 => tool("slow", json!({ "ms": 40 * vu })),
                        3 => Operation::ToolsList { cursor: None },
                        _ => tool("fail", json!({})),
                    };
                    let Ok(mut lease) = m.acquire(vu).await else {
                        continue;
                    };
                    match lease.call(&op).await {
                        Err(e) if e.is_session_expired() => lease.invalidate(),
                        _ => lease.release(),
                    }
                    tokio::time::sleep(Duration::from_millis(100 * vu)).await;
                }
            }
        });
        join_all(vus).await;
        m.close().await;
        Ok(())
    });
    sim.run().expect("simulation");
    let log = server.events_json();
    assert!(log.lines().count() > 40, "{log}");
    log
}

#[test]
fn the_same_seed_gives_the_same_server_events() {
    let a = busy_run(8);
    let b = busy_run(8);
    assert_eq!(a, b);
    // The log records the seeded choices: another server seed shows.
    assert_ne!(a, busy_run(9));
}

// ------------------------------------------------------------------- hooks --

/// The fault hooks switch at run time, from the client's host, and the
/// client sees what each one should cause. (The seeded fault plan that
/// pulls them is another piece; this only shows that they work.)
#[test]
fn fault_hooks_switch_at_run_time() {
    let server = Server::new(ServerConfig {
        seed: 2,
        ..ServerConfig::default()
    });
    let mut sim = sim(2);
    host_server(&mut sim, &server);
    let handle = server.clone();
    sim.client("client", async move {
        let m = manager(config(Mode::PerRequest), http());

        handle.fail_next(2, 500);
        for _ in 0..2 {
            let e = m.acquire(1).await.unwrap_err();
            assert!(
                matches!(
                    e.kind,
                    ErrorKind::Initialize(TransportError::ServerError { status: 500 })
                ),
                "{e}"
            );
        }

        handle.answer_protocol_version(Some("2025-03-26"));
        let e = m.acquire(1).await.unwrap_err();
        assert!(
            matches!(e.kind, ErrorKind::VersionNegotiation { .. }),
            "{e}"
        );
        handle.answer_protocol_version(None);

        handle.set_session_id_fault(SessionIdFault::Garbled);
        let e = m.acquire(1).await.unwrap_err();
        assert!(
            matches!(
                e.kind,
                ErrorKind::Initialize(TransportError::InvalidSessionId { .. })
            ),
            "{e}"
        );

        // No id: the client takes the server for stateless, and the server
        // refuses the requests that then carry none.
        handle.set_session_id_fault(SessionIdFault::Omitted);
        let e = m.acquire(1).await.unwrap_err();
        assert!(
            matches!(
                e.kind,
                ErrorKind::InitializedNotification(TransportError::BadRequest { .. })
            ),
            "{e}"
        );
        handle.set_session_id_fault(SessionIdFault::Sent);

        let mut lease = m.acquire(1).await?;
        for (name, kind) in [
            ("fail", "tool"),
            ("jsonrpc_error", "jsonrpc"),
            ("nope", "jsonrpc"),
        ] {
            let e = lease.call(&tool(name, json!({}))).await.unwrap_err();
            let ok = match (kind, &e.kind) {
                ("tool", ErrorKind::Operation(TransportError::ToolError { .. })) => true,
                ("jsonrpc", ErrorKind::Operation(TransportError::JsonRpc { code, .. })) => {
                    *code == if name == "nope" { -32602 } else { -32000 }
                }
                _ => false,
            };
            assert!(ok, "{name}: {e}");
        }
        lease.release();
        m.close().await;
        Ok(())
    });
    sim.run().expect("simulation");
    let evs = events(&server);
    let injected = evs
        .iter()
        .filter(|e| matches!(e, ServerEvent::Injected { status: 500, .. }))
        .count();
    assert_eq!(injected, 2);
    assert!(evs.iter().any(|e| matches!(e, ServerEvent::MissingSession {
        http,
        method: Some(method),
        ..
    } if http == "POST" && method == "notifications/initialized")));
}
