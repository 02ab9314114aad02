//! Every fault kind of the catalogue, injected into a turmoil world built by
//! the topology helper, against the library's real client.
//!
//! Each test runs one seeded world: a server host and a worker host whose
//! VUs (tasks sharing one `Manager`) probe the server in rounds (acquire,
//! one `echo`, give the lease back; invalidate it after a 404). A
//! `FaultPlan` written by hand puts one fault in the middle of the rounds,
//! and the `Applier` pulls it as the simulation steps. Then, from the VUs'
//! records, the server's event log and the manager's metrics:
//!
//! - the client saw the error kind this fault must cause (the exact
//!   `ErrorKind` / `TransportError` variant);
//! - nothing hung: every acquire and every operation ended within the
//!   client's configured bounds, in simulated time (and the simulation
//!   itself has a duration that a hang would run into);
//! - the client recovered once the fault was over (after a crash: the next
//!   acquire re-initialized, counted as a reconnect).
//!
//! Then the meta-checks: a generated plan is a function of its seed, and a
//! world under faults run twice from the same seeds gives the same server
//! events, byte for byte.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use mcp_session::transport::{CallResult, HttpConfig, Operation, TransportError};
use mcp_session::{Era, ErrorKind, Mode, SessionConfig, SessionError, SessionMetrics};
use mcp_sim::balancer::{self, Policy};
use mcp_sim::faults::{Action, Applied, FaultEvent, FaultKind, FaultPlan, FaultSpace, Scheduled};
use mcp_sim::schedule::{Op, Program, Schedule, Step as VuStep, WorkerPlan};
use mcp_sim::server::encode::Format;
use mcp_sim::server::hooks::CHANGED_CAPABILITY;
use mcp_sim::server::{AnswerFault, ExpiryReason, ServerConfig, ServerEra, ServerEvent, Stamped};
use mcp_sim::topology::{Latency, ServerSpec, Topology, Vu, VuKey, WorkerSpec};
use mcp_sim::trace::TraceRecorder;

const SERVER: &str = "server";
const WORKER: &str = "worker";

// ---------------------------------------------------------------- the probe --

/// One round of a VU: an acquire, and (if it gave a session) one call.
#[derive(Clone, Debug)]
struct Step {
    /// Simulated ms when the acquire began.
    at_ms: u64,
    /// How long the acquire took (simulated ms).
    acquire_ms: u64,
    /// The session acquired, or why not.
    session: Result<String, SessionError>,
    /// How long the call took, and what it returned.
    call: Option<(u64, Result<CallResult, SessionError>)>,
}

impl Step {
    /// The error of this round, if any (the acquire's or the call's).
    fn error(&self) -> Option<&SessionError> {
        match (&self.session, &self.call) {
            (Err(e), _) => Some(e),
            (Ok(_), Some((_, Err(e)))) => Some(e),
            _ => None,
        }
    }

    fn ok(&self) -> bool {
        self.error().is_none()
    }
}

fn now_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as u64)
}

fn echo(text: &str) -> Operation {
    Operation::ToolsCall {
        name: "echo".into(),
        arguments: json!({ "text": text }),
    }
}

/// The VU program: `rounds` rounds, `gap_ms` apart. A lease whose call got
/// a 404 is invalidated; any other outcome gives it back.
async fn probe(vu: Vu, rounds: u32, gap_ms: u64) -> Vec<Step> {
    let mut steps = Vec::new();
    for round in 0..rounds {
        let at_ms = now_ms();
        let start = tokio::time::Instant::now();
        let acquired = vu.manager.acquire(vu.id).await;
        let acquire_ms = start.elapsed().as_millis() as u64;
        let (session, call) = match acquired {
            Err(e) => (Err(e), None),
            Ok(mut lease) => {
                let id = lease.id().to_owned();
                let start = tokio::time::Instant::now();
                let r = lease
                    .call(&echo(&format!("vu {} round {round}", vu.id)))
                    .await;
                let took = start.elapsed().as_millis() as u64;
                match &r {
                    Err(e) if e.is_session_expired() => lease.invalidate(),
                    _ => lease.release(),
                }
                (Ok(id), Some((took, r)))
            }
        };
        steps.push(Step {
            at_ms,
            acquire_ms,
            session,
            call,
        });
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
    }
    steps
}

// ---------------------------------------------------------------- the world --

/// A world for one test.
#[derive(Clone, Debug)]
struct Setup {
    seed: u64,
    mode: Mode,
    era: Era,
    vus: u64,
    rounds: u32,
    gap_ms: u64,
    latency: Latency,
    http: HttpConfig,
    server: ServerConfig,
}

impl Setup {
    fn new(seed: u64, mode: Mode) -> Setup {
        Setup {
            seed,
            mode,
            era: Era::Legacy,
            vus: 1,
            rounds: 20,
            gap_ms: 100,
            latency: Latency::fixed(1),
            http: HttpConfig {
                connect_timeout_ms: 300,
                request_timeout_ms: 500,
                close_timeout_ms: 300,
                ..HttpConfig::default()
            },
            server: ServerConfig {
                seed,
                sse_ratio: 0.5,
                ..ServerConfig::default()
            },
        }
    }

    /// The longest an acquire may take: connect, then `initialize` and the
    /// initialized notification, each within the request timeout (a
    /// re-dial inside a request counts against the request's bound).
    /// In pool mode, add the longest wait for a session or a slot.
    fn acquire_bound_ms(&self) -> u64 {
        let wait = match self.mode {
            Mode::Pool => session_config(Mode::Pool).acquire_timeout_ms,
            _ => 0,
        };
        wait + self.http.connect_timeout_ms + 2 * self.http.request_timeout_ms
    }

    /// The longest an operation may take.
    fn call_bound_ms(&self) -> u64 {
        self.http.request_timeout_ms
    }
}

/// What a run left behind.
struct Outcome {
    setup: Setup,
    steps: BTreeMap<VuKey, Vec<Step>>,
    metrics: SessionMetrics,
    applied: Vec<Applied>,
    log: Vec<Stamped>,
    events_json: String,
}

impl Outcome {
    fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.values().flatten()
    }

    /// Prints the VUs' rounds and the server's log (`FAULTS_DUMP=1`, with
    /// `--nocapture`): the timeline of a fault, for a human.
    fn dump(&self) {
        for (vu, steps) in &self.steps {
            for s in steps {
                let call = s.call.as_ref().map(|(ms, r)| match r {
                    Ok(_) => format!("call {ms}ms ok"),
                    Err(e) => format!("call {ms}ms {e}"),
                });
                let session = match &s.session {
                    Ok(id) => id.clone(),
                    Err(e) => e.to_string(),
                };
                eprintln!(
                    "{}/{} @{}ms acquire {}ms {session} {}",
                    vu.worker,
                    vu.vu,
                    s.at_ms,
                    s.acquire_ms,
                    call.unwrap_or_default()
                );
            }
        }
        for a in &self.applied {
            eprintln!("fault {}", serde_json::to_string(a).unwrap());
        }
        for e in &self.log {
            eprintln!("server {}", serde_json::to_string(e).unwrap());
        }
    }

    fn errors(&self) -> Vec<&SessionError> {
        self.all_steps().filter_map(Step::error).collect()
    }

    fn events(&self) -> Vec<&ServerEvent> {
        self.log.iter().map(|s| &s.event).collect()
    }

    /// Nothing hung, and the manager's books balance.
    fn assert_bounded(&self) {
        // One tick of slack: a timer set at t fires in the tick that
        // reaches t.
        let (acq, call) = (
            self.setup.acquire_bound_ms() + 1,
            self.setup.call_bound_ms() + 1,
        );
        for (vu, steps) in &self.steps {
            assert_eq!(steps.len(), self.setup.rounds as usize, "{vu:?}");
            for s in steps {
                assert!(
                    s.acquire_ms <= acq,
                    "{vu:?}: acquire took {}ms > {acq}: {s:?}",
                    s.acquire_ms
                );
                if let Some((took, _)) = &s.call {
                    assert!(*took <= call, "{vu:?}: call took {took}ms > {call}: {s:?}");
                }
            }
        }
        if let Err(e) = self.metrics.check_accounting() {
            panic!("{e}: {:?}", self.metrics);
        }
        assert_eq!(self.metrics.live_sessions, 0, "closed: {:?}", self.metrics);
    }

    /// Every VU's last `n` rounds succeeded: the client is over the fault.
    fn assert_recovered(&self, n: usize) {
        for (vu, steps) in &self.steps {
            let tail = &steps[steps.len() - n..];
            assert!(
                tail.iter().all(Step::ok),
                "{vu:?} did not recover: {tail:#?}"
            );
        }
    }

    /// Nothing hung, the books balance, and every VU's last 5 rounds
    /// succeeded: the client came through the fault.
    fn assert_weathered(&self) {
        self.assert_bounded();
        self.assert_recovered(5);
    }

    /// The errors, and any error that does not `fit`, for a message.
    fn assert_errors(&self, what: &str, fit: impl Fn(&SessionError) -> bool) -> Vec<&SessionError> {
        let errors = self.errors();
        assert!(!errors.is_empty(), "{what}: the client saw no error");
        let odd: Vec<_> = errors.iter().filter(|e| !fit(e)).collect();
        assert!(odd.is_empty(), "{what}: unexpected errors {odd:#?}");
        errors
    }
}

fn run(setup: &Setup, plan: &FaultPlan) -> Outcome {
    let (rounds, gap) = (setup.rounds, setup.gap_ms);
    run_program(setup, plan, move |vu| probe(vu, rounds, gap))
}

/// [`run`] with another VU program (which must give each VU's rounds as
/// [`Step`]s).
fn run_program<F, Fut>(setup: &Setup, plan: &FaultPlan, program: F) -> Outcome
where
    F: Fn(Vu) -> Fut + 'static,
    Fut: std::future::Future<Output = Vec<Step>> + Send + 'static,
{
    let session = SessionConfig {
        era: setup.era,
        ..session_config_any_era(setup.mode)
    };
    let worker = WorkerSpec::new(WORKER, SERVER, session, setup.vus).http(setup.http.clone());
    let mut world = Topology::new(setup.seed, Duration::from_secs(60))
        .latency(setup.latency)
        .server(SERVER, setup.server.clone())
        .worker(worker)
        .build(program);
    let applied = world.run_with(plan).expect("simulation");
    let metrics = world.metrics()[WORKER];
    let o = Outcome {
        setup: setup.clone(),
        steps: world.take_results(),
        metrics,
        applied,
        log: world.server(SERVER).events(),
        events_json: world.server_events_json(),
    };
    if std::env::var_os("FAULTS_DUMP").is_some() {
        o.dump();
    }
    o
}

/// `mode` in the legacy era (the simulated server's only one so far).
fn session_config(mode: Mode) -> SessionConfig {
    let cfg = session_config_any_era(mode);
    SessionConfig {
        era: mcp_session::Era::Legacy,
        ..cfg
    }
}

fn session_config_any_era(mode: Mode) -> SessionConfig {
    match mode {
        Mode::Pool => SessionConfig {
            acquire_timeout_ms: 1_000,
            ..SessionConfig::pool(2)
        },
        mode => SessionConfig::with_mode(mode),
    }
}

fn at(at_ms: u64, event: FaultEvent) -> FaultPlan {
    FaultPlan::new(vec![Scheduled { at_ms, event }])
}

impl Setup {
    /// The world run with the probe program and one fault, `event` at
    /// `at_ms`.
    fn hit(&self, at_ms: u64, event: FaultEvent) -> Outcome {
        run(self, &at(at_ms, event))
    }
}

// ------------------------------------ the faults of this world's server --

/// Constructors of the fault events on the world's server, by their
/// numbers: `server_errors(503, 2)` is `FaultEvent::ServerErrors` of that
/// server, status 503, count 2.
macro_rules! on_server {
    ($($name:ident => $kind:ident($($field:ident: $ty:ty),*);)*) => {
        $(fn $name($($field: $ty),*) -> FaultEvent {
            FaultEvent::$kind { server: server(), $($field),* }
        })*
    };
}

/// Constructors of the fault events on the worker's link to the server,
/// by their numbers: `hold(800)` holds that link for 800 ms.
macro_rules! on_link {
    ($($name:ident => $kind:ident($($field:ident: $ty:ty),*);)*) => {
        $(fn $name($($field: $ty),*) -> FaultEvent {
            FaultEvent::$kind { worker: worker(), server: server(), $($field),* }
        })*
    };
}

on_server! {
    crash => Crash(down_ms: u64);
    early_expiry => EarlyExpiry(pick: u32);
    server_errors => ServerErrors(status: u16, count: u32);
    malformed_json => MalformedJson(count: u32);
    truncated_sse => TruncatedSse(count: u32);
    connection_reset => ConnectionReset(count: u32);
    slow_initialize => SlowInitialize(delay_ms: u64, count: u32);
    version_mismatch => VersionMismatch(version: String, span_ms: u64);
    missing_session_id => MissingSessionId(span_ms: u64);
    invalid_session_id => InvalidSessionId(span_ms: u64);
    header_strip => HeaderStrip(count: u32);
    modern_stream_cut => ModernStreamCut(count: u32);
    discover_change => DiscoverChange(ttl_ms: u64, span_ms: u64);
}

on_link! {
    partition => Partition(span_ms: u64);
    hold => Hold(span_ms: u64);
    latency_range => LatencyRange(min_ms: u64, max_ms: u64, span_ms: u64);
    latency_spike => LatencySpike(latency_ms: u64, span_ms: u64);
}

fn server() -> String {
    SERVER.into()
}

fn worker() -> String {
    WORKER.into()
}

fn is_op(e: &SessionError, f: impl Fn(&TransportError) -> bool) -> bool {
    matches!(&e.kind, ErrorKind::Operation(t) if f(t))
}

fn is_timeout(t: &TransportError) -> bool {
    matches!(t, TransportError::Timeout { .. })
}

// ------------------------------------------------------------ crash/bounce --

/// A crash or a bounce loses every session: the first call after the
/// restart gets 404 (`SessionExpired`), the lease is invalidated, and the
/// next acquire initializes a new session, counted as a reconnect.
fn assert_restart_lost_the_session(o: &Outcome) {
    let evs = o.events();
    let restarted = evs
        .iter()
        .position(|e| **e == ServerEvent::Started { run: 2 })
        .expect("the server restarted");
    assert_eq!(
        *evs[restarted - 1],
        ServerEvent::SessionsCleared { dropped: 1 },
        "the restart forgot srv-1"
    );
    let refused = evs.iter().skip(restarted).any(|e| {
        matches!(e, ServerEvent::UnknownSession { session, status: 404, .. } if session == "srv-1")
    });
    assert!(refused, "404 for srv-1 after the restart: {evs:#?}");

    let steps = &o.steps[&VuKey {
        worker: worker(),
        vu: 1,
    }];
    let expired = steps
        .iter()
        .position(|s| s.error().is_some_and(SessionError::is_session_expired))
        .expect("the client saw SessionExpired");
    assert_eq!(steps[expired].session.as_deref().ok(), Some("srv-1"));
    let next = &steps[expired + 1];
    let new = next.session.as_deref().expect("the next acquire works");
    assert_ne!(new, "srv-1", "a new session: {next:?}");
    assert!(next.ok(), "{next:?}");
    assert_eq!(o.metrics.reconnects, 1, "{:?}", o.metrics);
    assert_eq!(o.metrics.closed.invalidated, 1, "{:?}", o.metrics);
}

#[test]
fn crash_and_restart_loses_every_session_and_the_next_acquire_reinitializes() {
    let setup = Setup::new(1, Mode::Reuse);
    let o = setup.hit(550, crash(600));
    assert_eq!(
        o.applied
            .iter()
            .map(|a| (a.at_ms, &a.action))
            .collect::<Vec<_>>(),
        [
            (550, &Action::Crash { server: server() }),
            (1150, &Action::Restart { server: server() })
        ]
    );
    // While it is down: calls re-dial (the crash closed the keep-alive
    // connection) and time out on the connect, which hangs on a crashed
    // host; one still waiting at the restart is refused (no listener yet),
    // or fails on a connection the crash closed mid-request.
    o.assert_errors("crash", |e| {
        e.is_session_expired()
            || is_op(e, |t| {
                matches!(t, TransportError::Timeout { what, after_ms: 300 } if what == "connect")
                    || matches!(
                        t,
                        TransportError::Connect { .. } | TransportError::Closed { .. }
                    )
            })
    });
    assert!(o.errors().iter().any(|e| is_op(
        e,
        |t| matches!(t, TransportError::Timeout { what, .. } if what == "connect")
    )));
    let down = o
        .all_steps()
        .filter(|s| (550..1150).contains(&s.at_ms))
        .count();
    assert!(down > 0);
    assert!(o
        .all_steps()
        .filter(|s| (550..1150).contains(&s.at_ms))
        .all(|s| !s.ok()));
    assert_restart_lost_the_session(&o);
    o.assert_weathered();
}

#[test]
fn bounce_loses_every_session_and_the_next_acquire_reinitializes() {
    let setup = Setup::new(2, Mode::Reuse);
    let o = setup.hit(550, FaultEvent::Bounce { server: server() });
    assert_eq!(o.applied.len(), 1);
    o.assert_errors("bounce", |e| {
        e.is_session_expired() || is_op(e, |t| matches!(t, TransportError::Closed { .. }))
    });
    assert_restart_lost_the_session(&o);
    o.assert_weathered();
}

#[test]
fn a_server_with_a_shared_session_store_keeps_them_across_a_crash() {
    let setup = Setup::new(1, Mode::Reuse);
    let plan = at(550, crash(600));
    let spec =
        WorkerSpec::new(WORKER, SERVER, session_config(setup.mode), 1).http(setup.http.clone());
    let mut world = Topology::new(setup.seed, Duration::from_secs(60))
        .latency(setup.latency)
        .server_spec(ServerSpec {
            keep_sessions: true,
            ..ServerSpec::new(SERVER, setup.server.clone())
        })
        .worker(spec)
        .build(|vu| probe(vu, 20, 100));
    world.run_with(&plan).expect("simulation");
    let steps = world
        .take_results()
        .remove(&VuKey {
            worker: worker(),
            vu: 1,
        })
        .unwrap();
    // Calls fail while it is down, but the session survives the restart.
    assert!(steps.iter().any(|s| !s.ok()));
    assert!(steps
        .iter()
        .all(|s| s.session.as_deref().ok() == Some("srv-1")));
    assert!(steps
        .iter()
        .all(|s| !s.error().is_some_and(SessionError::is_session_expired)));
    assert!(steps[steps.len() - 5..].iter().all(Step::ok));
    assert_eq!(world.metrics()[WORKER].reconnects, 0);
    assert!(world
        .server(SERVER)
        .events()
        .iter()
        .any(|e| e.event == ServerEvent::Started { run: 2 }));
}

// ----------------------------------------------------------------- network --

#[test]
fn partition_times_requests_out_and_heals() {
    let setup = Setup::new(3, Mode::Reuse);
    let o = setup.hit(550, partition(800));
    // The call in flight when the link drops times out (its request, or
    // its answer, is lost); the connection is dropped with it, and a dial
    // while partitioned is refused at once (turmoil drops the SYN, and
    // with it the reply channel: the connect fails instead of hanging).
    let errors = o.assert_errors("partition", |e| {
        is_op(e, |t| {
            is_timeout(t) || matches!(t, TransportError::Connect { .. })
        })
    });
    assert!(
        matches!(&errors[0].kind, ErrorKind::Operation(TransportError::Timeout { what, after_ms: 500 }) if what == "tools/call"),
        "{errors:#?}"
    );
    assert!(errors.len() >= 2, "{errors:#?}");
    assert!(matches!(
        o.applied.last().map(|a| &a.action),
        Some(Action::Heal { .. })
    ));
    o.assert_weathered();
}

#[test]
fn hold_delays_messages_past_the_timeout_then_releases_them() {
    let setup = Setup::new(4, Mode::Reuse);
    let o = setup.hit(550, hold(800));
    o.assert_errors("hold", |e| is_op(e, is_timeout));
    o.assert_weathered();
}

#[test]
fn a_short_hold_only_slows_the_call_down() {
    let setup = Setup::new(4, Mode::Reuse);
    let o = setup.hit(550, hold(300));
    assert!(o.errors().is_empty(), "{:#?}", o.errors());
    let slowest = o
        .all_steps()
        .filter_map(|s| s.call.as_ref().map(|c| c.0))
        .max();
    assert!(
        slowest.is_some_and(|ms| (200..=300).contains(&ms)),
        "{slowest:?}"
    );
    o.assert_bounded();
}

#[test]
fn a_latency_range_slows_calls_without_errors() {
    let setup = Setup::new(5, Mode::Reuse);
    let o = setup.hit(550, latency_range(100, 200, 1_000));
    assert!(o.errors().is_empty(), "{:#?}", o.errors());
    for s in o.all_steps() {
        let took = s.call.as_ref().map(|c| c.0).unwrap();
        if (550..1_300).contains(&s.at_ms) {
            // A request and its answer: two messages of 100 ms or more.
            assert!((200..=500).contains(&took), "{s:?}");
        } else if s.at_ms >= 1_600 {
            assert!(took < 20, "back to the baseline: {s:?}");
        }
    }
    assert_eq!(
        o.applied.last().map(|a| &a.action),
        Some(&Action::Latency {
            worker: worker(),
            server: server(),
            min_ms: 1,
            max_ms: 1
        })
    );
    o.assert_bounded();
}

#[test]
fn a_latency_spike_past_the_timeout_times_calls_out() {
    let setup = Setup::new(6, Mode::Reuse);
    let o = setup.hit(550, latency_spike(1_000, 600));
    o.assert_errors("latency spike", |e| {
        is_op(e, |t| {
            matches!(t, TransportError::Timeout { after_ms: 500, .. })
        })
    });
    o.assert_weathered();
}

// ------------------------------------------------------------ server state --

#[test]
fn early_expiry_gives_404_and_a_reconnect() {
    let mut setup = Setup::new(7, Mode::Reuse);
    setup.vus = 2;
    let o = setup.hit(550, early_expiry(1));
    // Two VUs, a session each; pick 1 (in id order) is srv-2.
    assert_eq!(
        o.applied[0].action,
        Action::Expire {
            server: server(),
            session: "srv-2".into()
        }
    );
    let errors = o.assert_errors("early expiry", SessionError::is_session_expired);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].session.as_deref(), Some("srv-2"));
    assert!(o.events().contains(&&ServerEvent::Expired {
        session: "srv-2".into(),
        reason: ExpiryReason::Early
    }));
    assert_eq!(o.metrics.reconnects, 1);
    o.assert_weathered();
}

#[test]
fn server_error_bursts_are_typed_with_their_status() {
    let setup = Setup::new(8, Mode::Reuse);
    let plan = FaultPlan::new(vec![
        Scheduled {
            at_ms: 550,
            event: FaultEvent::ServerErrors {
                server: server(),
                status: 500,
                count: 2,
            },
        },
        Scheduled {
            at_ms: 1_050,
            event: FaultEvent::ServerErrors {
                server: server(),
                status: 503,
                count: 2,
            },
        },
    ]);
    let o = run(&setup, &plan);
    let errors = o.assert_errors("5xx", |e| {
        is_op(e, |t| matches!(t, TransportError::ServerError { .. }))
    });
    let statuses: Vec<u16> = errors
        .iter()
        .filter_map(|e| match e.kind {
            ErrorKind::Operation(TransportError::ServerError { status }) => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [500, 500, 503, 503]);
    o.assert_weathered();
}

#[test]
fn server_errors_on_initialize_fail_the_acquire() {
    let setup = Setup::new(8, Mode::PerRequest);
    let o = setup.hit(550, server_errors(503, 1));
    o.assert_errors("5xx on initialize", |e| {
        matches!(
            e.kind,
            ErrorKind::Initialize(TransportError::ServerError { status: 503 })
        )
    });
    o.assert_bounded();
}

// ------------------------------------------------------------ bad answers --

/// The answers the server spoiled, with their format.
fn spoiled(o: &Outcome, fault: AnswerFault) -> Vec<Format> {
    o.events()
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Answered {
                format, fault: f, ..
            } if *f == Some(fault) => Some(*format),
            _ => None,
        })
        .collect()
}

/// Four answers spoiled by `event` (`fault` on the server), in both JSON
/// and SSE: each gives an operation error that `expected` accepts, every
/// call ends by its deadline, and the client recovers.
fn spoiled_answers_are_typed_errors(
    seed: u64,
    event: FaultEvent,
    fault: AnswerFault,
    expected: fn(&TransportError) -> bool,
) {
    let setup = Setup::new(seed, Mode::Reuse);
    let o = run(&setup, &at(550, event));
    let errors = o.assert_errors(&format!("{fault:?}"), |e| is_op(e, expected));
    assert_eq!(errors.len(), 4);
    let formats = spoiled(&o, fault);
    assert!(
        formats.contains(&Format::Json) && formats.contains(&Format::Sse),
        "both shapes: {formats:?}"
    );
    o.assert_weathered();
}

#[test]
fn malformed_json_in_either_format_is_a_typed_error() {
    spoiled_answers_are_typed_errors(9, malformed_json(4), AnswerFault::Malformed, |t| {
        matches!(t, TransportError::MalformedJson { .. })
    });
}

#[test]
fn truncated_sse_without_event_ids_is_a_closed_stream() {
    // No notifications before the response: the truncated stream carries no
    // complete event, so there is no id to resume from.
    let setup = Setup::new(10, Mode::Reuse);
    let o = setup.hit(550, truncated_sse(2));
    let errors = o.assert_errors("truncated", |e| {
        is_op(
            e,
            |t| matches!(t, TransportError::Closed { message: m, .. } if m.contains("ended before the response")),
        )
    });
    assert_eq!(errors.len(), 2);
    assert_eq!(
        spoiled(&o, AnswerFault::Truncated),
        [Format::Sse, Format::Sse]
    );
    o.assert_weathered();
}

#[test]
fn truncated_sse_after_notifications_is_resumed_and_refused() {
    // Notifications with ids come before the cut: the client resumes the
    // stream with GET and Last-Event-ID, which this server (like many)
    // answers 405.
    let mut setup = Setup::new(10, Mode::Reuse);
    setup.server.notifications_before_response = 2;
    let o = setup.hit(550, truncated_sse(1));
    let errors = o.assert_errors("truncated + resume", |e| {
        is_op(
            e,
            |t| matches!(t, TransportError::Closed { message: m, .. } if m.contains("resumption refused")),
        )
    });
    assert_eq!(errors.len(), 1);
    let resumed = o
        .events()
        .into_iter()
        .any(|e| matches!(e, ServerEvent::Rejected { http, status: 405, .. } if http == "GET"));
    assert!(resumed, "the client tried to resume");
    o.assert_weathered();
}

#[test]
fn connection_reset_mid_answer_is_a_closed_connection() {
    spoiled_answers_are_typed_errors(11, connection_reset(4), AnswerFault::Reset, |t| {
        matches!(t, TransportError::Closed { .. })
    });
}

// ------------------------------------------------------------- initialize --

#[test]
fn slow_initialize_past_the_timeout_fails_the_acquire_at_its_deadline() {
    let setup = Setup::new(12, Mode::PerRequest);
    let o = setup.hit(550, slow_initialize(2_000, 1));
    let errors = o.assert_errors("slow initialize", |e| {
        matches!(&e.kind, ErrorKind::Initialize(TransportError::Timeout { what, after_ms: 500 }) if what == "initialize")
    });
    assert_eq!(errors.len(), 1);
    let failed = o.all_steps().find(|s| !s.ok()).unwrap();
    assert!((500..=501).contains(&failed.acquire_ms), "{failed:?}");
    // The server made the session all the same; the client never learned
    // its id.
    assert!(o.events().iter().any(|e| matches!(
        e,
        ServerEvent::Delayed {
            delay_ms: 2_000,
            ..
        }
    )));
    o.assert_weathered();
}

#[test]
fn a_mismatched_protocol_version_fails_negotiation_and_the_session_is_closed() {
    let setup = Setup::new(13, Mode::PerRequest);
    let o = setup.hit(550, version_mismatch("2024-11-05".into(), 250));
    let errors = o.assert_errors("version", |e| {
        matches!(&e.kind, ErrorKind::VersionNegotiation { answered, .. } if answered == "2024-11-05")
    });
    assert!(errors.len() >= 2, "{errors:#?}");
    // Each refused session is ended on the server with DELETE.
    for e in &errors {
        let id = e.session.as_deref().expect("names the session");
        assert!(
            o.events()
                .iter()
                .any(|e| matches!(e, ServerEvent::Deleted { session, .. } if session == id)),
            "{id}"
        );
    }
    o.assert_weathered();
}

#[test]
fn a_missing_session_id_makes_the_client_stateless_and_the_server_refuses() {
    let setup = Setup::new(14, Mode::PerRequest);
    let o = setup.hit(550, missing_session_id(250));
    o.assert_errors("missing id", |e| {
        matches!(
            e.kind,
            ErrorKind::InitializedNotification(TransportError::BadRequest { .. })
        )
    });
    assert!(o
        .events()
        .iter()
        .any(|e| matches!(e, ServerEvent::MissingSession { .. })));
    o.assert_weathered();
}

#[test]
fn an_invalid_session_id_fails_initialize() {
    let setup = Setup::new(15, Mode::PerRequest);
    let o = setup.hit(550, invalid_session_id(250));
    let errors = o.assert_errors("invalid id", |e| {
        matches!(
            &e.kind,
            ErrorKind::Initialize(TransportError::InvalidSessionId { got }) if got.ends_with(" garbled")
        )
    });
    assert!(errors.len() >= 2, "{errors:#?}");
    o.assert_weathered();
}

/// Two servers, three workers (two VUs each): a partition between `w2`
/// and `s1` hits `w2` only, and a crash of `s2` hits `w3` only.
#[test]
fn faults_hit_only_their_own_link_or_server() {
    let http = Setup::new(0, Mode::Reuse).http;
    let mut topology = Topology::new(16, Duration::from_secs(60))
        .latency(Latency::fixed(1))
        .server(
            "s1",
            ServerConfig {
                seed: 1,
                ..ServerConfig::default()
            },
        )
        .server(
            "s2",
            ServerConfig {
                seed: 2,
                ..ServerConfig::default()
            },
        );
    for (w, s) in [("w1", "s1"), ("w2", "s1"), ("w3", "s2")] {
        topology = topology
            .worker(WorkerSpec::new(w, s, session_config(Mode::Reuse), 2).http(http.clone()));
    }
    let mut world = topology.build(|vu| probe(vu, 15, 100));
    let plan = FaultPlan::new(vec![
        Scheduled {
            at_ms: 450,
            event: FaultEvent::Partition {
                worker: "w2".into(),
                server: "s1".into(),
                span_ms: 700,
            },
        },
        Scheduled {
            at_ms: 450,
            event: FaultEvent::Crash {
                server: "s2".into(),
                down_ms: 400,
            },
        },
    ]);
    world.run_with(&plan).expect("simulation");
    let results = world.take_results();
    assert_eq!(results.len(), 6);
    for (vu, steps) in &results {
        let failed = steps.iter().filter(|s| !s.ok()).count();
        match vu.worker.as_str() {
            "w1" => assert_eq!(failed, 0, "{vu:?}: {steps:#?}"),
            _ => assert!(failed > 0, "{vu:?}"),
        }
        assert!(steps[steps.len() - 3..].iter().all(Step::ok), "{vu:?}");
    }
    // Only s2 restarted; each worker's sessions are on its own server.
    let started = |s: &str| {
        world
            .server(s)
            .events()
            .iter()
            .filter(|e| matches!(e.event, ServerEvent::Started { .. }))
            .count()
    };
    assert_eq!((started("s1"), started("s2")), (1, 2));
    let metrics = world.metrics();
    assert_eq!(metrics.len(), 3);
    assert_eq!(
        metrics["w3"].reconnects, 2,
        "both VUs of w3 lost their session"
    );
    assert_eq!(metrics["w1"].reconnects + metrics["w2"].reconnects, 0);
}

/// A server fault spoils answers without drawing from the server's random
/// stream: the answers after it have the shapes they would have had.
#[test]
fn a_server_fault_does_not_shift_the_servers_draws() {
    let mut setup = Setup::new(17, Mode::Reuse);
    setup.vus = 2;
    let shapes = |plan: &FaultPlan| -> Vec<(Option<String>, String, Format)> {
        run(&setup, plan)
            .log
            .into_iter()
            .filter_map(|s| match s.event {
                ServerEvent::Answered {
                    session,
                    method,
                    format,
                    ..
                } => Some((session, method, format)),
                _ => None,
            })
            .collect()
    };
    let clean = shapes(&FaultPlan::none());
    let spoiled = shapes(&at(
        550,
        FaultEvent::MalformedJson {
            server: server(),
            count: 3,
        },
    ));
    assert!(clean.len() > 30);
    assert_eq!(clean, spoiled);
}

// ------------------------------------------- stateless era, balancers --

/// A world of an `auto` client against a dual-era server: the client
/// speaks the stateless era.
fn modern(seed: u64, mode: Mode) -> Setup {
    let mut setup = Setup::new(seed, mode);
    setup.era = Era::Auto;
    setup.server.era = ServerEra::Dual;
    setup
}

/// The transport error under any error kind that carries one.
fn transport(e: &SessionError) -> Option<&TransportError> {
    match &e.kind {
        ErrorKind::Operation(t)
        | ErrorKind::Discover(t)
        | ErrorKind::Connect(t)
        | ErrorKind::Initialize(t)
        | ErrorKind::InitializedNotification(t) => Some(t),
        _ => None,
    }
}

/// When the server logged each event that `f` picks, in order.
fn logged<T>(o: &Outcome, f: impl Fn(&ServerEvent) -> Option<T>) -> Vec<(u64, T)> {
    o.log
        .iter()
        .filter_map(|s| f(&s.event).map(|t| (s.at_ms, t)))
        .collect()
}

/// A proxy strips the routing headers: the server refuses those requests
/// with 400 -32020 (logged as stripped, so the client is not to blame),
/// the client reports a header mismatch — on an operation or on the era
/// probe — and never falls back to `initialize`.
#[test]
fn stripped_routing_headers_are_refused_with_32020_and_no_fallback() {
    for (seed, mode) in [(21, Mode::Reuse), (22, Mode::PerRequest)] {
        let setup = modern(seed, mode);
        let o = setup.hit(550, header_strip(3));
        assert_eq!(
            o.applied
                .iter()
                .map(|a| (a.at_ms, &a.action))
                .collect::<Vec<_>>(),
            [(
                550,
                &Action::HeaderStrip {
                    server: server(),
                    count: 3
                }
            )]
        );
        let errors = o.assert_errors("header strip", |e| {
            matches!(
                transport(e),
                Some(TransportError::HeaderMismatch { status: 400, .. })
            )
        });
        assert_eq!(errors.len(), 3, "{mode:?}: {errors:#?}");
        let armed = logged(&o, |e| {
            matches!(e, ServerEvent::RoutingStripArmed { count: 3 }).then_some(())
        });
        assert_eq!(armed, [(550, ())]);
        let stripped = logged(&o, |e| match e {
            ServerEvent::RoutingHeadersStripped { method } => Some(method.clone()),
            _ => None,
        });
        assert_eq!(stripped.len(), 3, "{stripped:?}");
        assert!(stripped.iter().all(|(at, _)| *at >= 550));
        if mode == Mode::PerRequest {
            // Each acquire probes (ttlMs 0): a probe was stripped too.
            assert!(
                stripped.iter().any(|(_, m)| m == "server/discover"),
                "{stripped:?}"
            );
        }
        let refused = logged(&o, |e| match e {
            ServerEvent::StatelessRefused {
                status: 400,
                code: Some(-32020),
                ..
            } => Some(()),
            _ => None,
        });
        assert_eq!(refused.len(), 3);
        // No fallback: never an `initialize`.
        assert!(!o
            .events()
            .iter()
            .any(|e| matches!(e, ServerEvent::SessionCreated { .. })));
        assert_eq!(o.metrics.eras.fallbacks_to_legacy, 0, "{:?}", o.metrics);
        o.assert_weathered();
    }
}

/// A stateless-era answer cut before its response is a lost request
/// (`StreamLost`: the era has no resumption); a legacy answer of the same
/// dual-era server is not cut, and the client recovers.
#[test]
fn a_modern_stream_cut_loses_the_request() {
    let setup = modern(23, Mode::Reuse);
    let plan = at(550, modern_stream_cut(2));
    let o = run(&setup, &plan);
    assert_eq!(
        o.applied[0].action,
        Action::StreamCut {
            server: server(),
            count: 2
        }
    );
    let errors = o.assert_errors("stream cut", |e| {
        is_op(e, |t| matches!(t, TransportError::StreamLost))
    });
    assert_eq!(errors.len(), 2);
    let cut = logged(&o, |e| match e {
        ServerEvent::Answered {
            session: None,
            method,
            format,
            fault: Some(AnswerFault::Truncated),
            ..
        } => Some((method.clone(), *format)),
        _ => None,
    });
    assert_eq!(cut.len(), 2);
    assert!(cut
        .iter()
        .all(|(at, (m, f))| *at >= 550 && m == "tools/call" && *f == Format::Sse));
    o.assert_weathered();

    // A legacy client of the same server: nothing to cut.
    let mut legacy = setup.clone();
    legacy.era = Era::Legacy;
    let o = run(&legacy, &plan);
    assert!(o.errors().is_empty(), "{:#?}", o.errors());
    assert!(spoiled(&o, AnswerFault::Truncated).is_empty());
}

/// One round of a VU reading `server/discover`: when, the `ttlMs` it
/// answered, and whether its capabilities were the changed ones.
type Discovered = (u64, u64, bool);

/// `rounds` rounds, `gap_ms` apart: acquire, `server/discover`, release.
async fn discovering(vu: Vu, rounds: u32, gap_ms: u64) -> Vec<Step> {
    let mut steps = Vec::new();
    for _ in 0..rounds {
        let at_ms = now_ms();
        let acquired = vu.manager.acquire(vu.id).await;
        let (session, call) = match acquired {
            Err(e) => (Err(e), None),
            Ok(mut lease) => {
                let r = lease.call(&Operation::Discover).await;
                lease.release();
                (Ok(String::new()), Some((0, r)))
            }
        };
        steps.push(Step {
            at_ms,
            acquire_ms: 0,
            session,
            call,
        });
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
    }
    steps
}

fn discovered(o: &Outcome) -> Vec<Discovered> {
    o.all_steps()
        .filter_map(|s| match &s.call {
            Some((_, Ok(r))) => {
                let changed = r
                    .member("capabilities")
                    .is_some_and(|c| c["experimental"][CHANGED_CAPABILITY].is_object());
                Some((s.at_ms, r.ttl_ms(), changed))
            }
            _ => None,
        })
        .collect()
}

/// For its span, `server/discover` answers a short `ttlMs` and changed
/// capabilities: a client making a context per request probes once per
/// `ttlMs` instead of at every acquire (it keeps the result that long,
/// then refreshes it), and reads the changed capabilities; at the span's
/// end the config's answer is back.
#[test]
fn a_discover_change_is_cached_for_its_ttl_then_refreshed() {
    let setup = modern(24, Mode::PerRequest);
    let plan = at(550, discover_change(300, 1_000));
    let o = run(&setup, &plan);
    assert!(o.errors().is_empty(), "{:#?}", o.errors());
    assert_eq!(
        o.applied
            .iter()
            .map(|a| (a.at_ms, &a.action))
            .collect::<Vec<_>>(),
        [
            (
                550,
                &Action::DiscoverChange {
                    server: server(),
                    ttl_ms: Some(300)
                }
            ),
            (
                1_550,
                &Action::DiscoverChange {
                    server: server(),
                    ttl_ms: None
                }
            ),
        ]
    );
    let set = logged(&o, |e| match e {
        ServerEvent::DiscoverChangeSet { ttl_ms } => Some(*ttl_ms),
        _ => None,
    });
    assert_eq!(set, [(550, Some(300)), (1_550, None)]);
    // The probes: one per acquire (every 100 ms) while a result is stale
    // at once; inside the span, one when the cached one is 300 ms old.
    let probes: Vec<u64> = logged(&o, |e| match e {
        ServerEvent::StatelessRequest { method, .. } if method == "server/discover" => Some(()),
        _ => None,
    })
    .into_iter()
    .map(|(at, ())| at)
    .collect();
    let gaps: Vec<(u64, u64)> = probes.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
    for &(at, gap) in &gaps {
        if !(500..=1_900).contains(&at) {
            assert!(gap <= 110, "stale at once: {gaps:?}");
        } else if (560..1_550).contains(&at) {
            assert!((300..=420).contains(&gap), "fresh for 300 ms: {gaps:?}");
        }
    }
    assert_eq!(
        o.metrics.eras.discover_probes,
        probes.len() as u64,
        "{:?}",
        o.metrics
    );
    assert!(probes.len() < setup.rounds as usize - 4, "{probes:?}");
    o.assert_bounded();

    // What a VU that reads `server/discover` sees: the changed answer
    // inside the span, the config's outside.
    let (rounds, gap) = (setup.rounds, setup.gap_ms);
    let o = run_program(&setup, &plan, move |vu| discovering(vu, rounds, gap));
    let seen = discovered(&o);
    assert_eq!(seen.len(), setup.rounds as usize, "{:#?}", o.errors());
    for &(at, ttl, changed) in &seen {
        if (560..1_540).contains(&at) {
            assert_eq!((ttl, changed), (300, true), "at {at}ms");
        } else if !(540..1_560).contains(&at) {
            assert_eq!((ttl, changed), (0, false), "at {at}ms");
        }
    }
}

/// A VU program of `steps` echo calls, 100 ms apart, as scenarios run them.
fn echoes(steps: usize) -> Vec<VuStep> {
    vec![
        VuStep::Call {
            op: Op::Echo,
            think_ms: 100,
        };
        steps
    ]
}

/// A call answered `input_required` completes through the VU's program:
/// the VU answers each round (a new request id, the exact `requestState`)
/// and the tool runs after the last; the run breaks no law, and a legacy
/// run of the same schedule is untouched.
#[test]
fn input_rounds_complete_through_the_vu_program() {
    let seed = 25;
    let mut schedule = Schedule::generate(&mcp_sim::scenarios::Scenario::reuse(), seed);
    schedule.session = SessionConfig {
        era: Era::Auto,
        ..SessionConfig::with_mode(Mode::Reuse)
    };
    schedule.server = ServerConfig {
        seed,
        era: ServerEra::Dual,
        ..ServerConfig::default()
    };
    schedule.workers = vec![WorkerPlan {
        name: "worker-1".into(),
        vus: vec![Program { steps: echoes(10) }; 2],
    }];
    schedule.faults = FaultPlan::new(vec![Scheduled {
        at_ms: 300,
        event: FaultEvent::InputRounds {
            server: "server".into(),
            count: 3,
            rounds: 2,
        },
    }]);
    schedule.fault_kinds = [FaultKind::InputRounds].into();
    let report = mcp_sim::run::run(&schedule, "input-rounds", seed);
    assert!(report.is_clean(), "{}", report.failure_text());
    let errors: u32 = report.vu_errors.values().flat_map(|v| v.values()).sum();
    assert_eq!(errors, 0, "{:?}", report.vu_errors);
    let server = |r: &mcp_sim::run::Report| -> Vec<ServerEvent> {
        r.trace
            .events
            .iter()
            .filter_map(|e| e.server())
            .cloned()
            .collect()
    };
    let asked: Vec<u32> = server(&report)
        .iter()
        .filter_map(|e| match e {
            ServerEvent::InputRequested { left, .. } => Some(*left),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 6, "three calls, two rounds each: {asked:?}");
    assert_eq!(asked.iter().filter(|&&l| l == 1).count(), 3);
    // Every step's call, and each of the six retries, is an operation.
    assert_eq!(report.operations(), 20 + 6);
    let calls_done = server(&report)
        .iter()
        .filter(|e| matches!(e, ServerEvent::Answered { method, .. } if method == "tools/call"))
        .count();
    assert_eq!(calls_done, 20 + 6);

    // Legacy: never asked, the same calls.
    schedule.session.era = Era::Legacy;
    let legacy = mcp_sim::run::run(&schedule, "input-rounds", seed);
    assert!(legacy.is_clean(), "{}", legacy.failure_text());
    assert!(!server(&legacy)
        .iter()
        .any(|e| matches!(e, ServerEvent::InputRequested { .. })));
    assert_eq!(legacy.operations(), 20);
}

/// A balanced world: instances `server-0..2` (dual era) behind balancer
/// `server`, one worker of `vus` VUs running `program`.
fn balanced<T, F, Fut>(
    seed: u64,
    era: Era,
    policy: Policy,
    vus: u64,
    program: F,
) -> mcp_sim::topology::World<T>
where
    T: Send + 'static,
    F: Fn(Vu) -> Fut + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let http = Setup::new(seed, Mode::Reuse).http;
    let session = SessionConfig {
        era,
        ..SessionConfig::with_mode(Mode::Reuse)
    };
    let server = ServerConfig {
        seed,
        era: ServerEra::Dual,
        ..ServerConfig::default()
    };
    Topology::new(seed, Duration::from_secs(60))
        .latency(Latency::fixed(1))
        .balanced(SERVER, server, 3, policy)
        .worker(WorkerSpec::new(WORKER, SERVER, session, vus).http(http))
        .build(program)
}

/// Behind a round-robin balancer the retries of an input round land on
/// other instances than the one that asked: the state is theirs to verify
/// too, and every call completes.
#[test]
fn input_rounds_behind_a_balancer_are_served_by_any_instance() {
    let recorder = TraceRecorder::new(WORKER);
    let mut world = balanced(26, Era::Modern, Policy::RoundRobin, 2, move |vu| {
        mcp_sim::vu::run_vu(vu, echoes(8), recorder.clone())
    });
    let plan = at(
        250,
        FaultEvent::InputRounds {
            server: "server-0".into(),
            count: 3,
            rounds: 2,
        },
    );
    let applied = world.run_with(&plan).expect("simulation");
    assert_eq!(
        applied[0].action,
        Action::InputRounds {
            server: "server-0".into(),
            count: 3,
            rounds: 2
        }
    );
    let errors: u32 = world.take_results().values().sum();
    assert_eq!(errors, 0);
    let asked: Vec<(String, u32)> = world
        .servers()
        .iter()
        .flat_map(|(name, s)| {
            s.events().into_iter().filter_map(move |e| match e.event {
                ServerEvent::InputRequested { left, .. } => Some((name.clone(), left)),
                _ => None,
            })
        })
        .collect();
    assert_eq!(asked.len(), 6, "{asked:?}");
    let first: Vec<&String> = asked
        .iter()
        .filter(|(_, l)| *l == 1)
        .map(|(n, _)| n)
        .collect();
    assert!(first.iter().all(|n| *n == "server-0"), "{asked:?}");
    assert!(
        asked.iter().any(|(n, l)| *l == 0 && n != "server-0"),
        "a retry served elsewhere: {asked:?}"
    );
}

/// For its span a sticky balancer routes round-robin: legacy sessions land
/// on instances that never made them (404, a reconnect); at the span's end
/// it is sticky again, and the client is over it.
#[test]
fn a_stickiness_switch_holds_for_its_span_then_restores_the_policy() {
    let mut world = balanced(27, Era::Legacy, Policy::Sticky, 2, |vu| probe(vu, 20, 100));
    let plan = at(
        550,
        FaultEvent::StickinessSwitch {
            balancer: SERVER.into(),
            pick: 0,
            span_ms: 600,
        },
    );
    let applied = world.run_with(&plan).expect("simulation");
    let policy = |from, to| Action::Policy {
        balancer: SERVER.into(),
        from,
        to,
    };
    assert_eq!(
        applied
            .iter()
            .map(|a| (a.at_ms, a.action.clone()))
            .collect::<Vec<_>>(),
        [
            (550, policy(Policy::Sticky, Policy::RoundRobin)),
            (1_150, policy(Policy::RoundRobin, Policy::Sticky)),
        ]
    );
    let log = world.balancer(SERVER).events();
    let set: Vec<(u64, Policy)> = log
        .iter()
        .filter_map(|s| match s.event {
            balancer::Event::PolicySet { policy } => Some((s.at_ms, policy)),
            _ => None,
        })
        .collect();
    assert_eq!(set, [(550, Policy::RoundRobin), (1_150, Policy::Sticky)]);
    for s in &log {
        if let balancer::Event::Routed { policy, .. } = s.event {
            let switched = (550..1_150).contains(&s.at_ms);
            assert_eq!(policy == Policy::RoundRobin, switched, "{s:?}");
        }
    }
    let results = world.take_results();
    let errors: Vec<&Step> = results.values().flatten().filter(|s| !s.ok()).collect();
    assert!(!errors.is_empty(), "round-robin breaks legacy sessions");
    // A session on another instance is unknown there: a 404 on a call, or
    // on the `initialized` notification of a session just made.
    let lost = |e: &SessionError| {
        e.is_session_expired()
            || matches!(
                e.kind,
                ErrorKind::InitializedNotification(TransportError::SessionNotFound)
            )
    };
    assert!(
        errors
            .iter()
            .all(|s| (550..1_200).contains(&s.at_ms) && s.error().is_some_and(lost)),
        "{errors:#?}"
    );
    for steps in results.values() {
        assert!(steps[steps.len() - 5..].iter().all(Step::ok));
    }
    assert!(world.metrics()[WORKER].reconnects > 0);
}

/// A plan naming a balancer the world lacks is refused before it runs.
#[test]
fn a_plan_naming_an_unknown_balancer_is_refused() {
    let mut world = balanced(28, Era::Modern, Policy::RoundRobin, 1, |vu| {
        probe(vu, 1, 10)
    });
    let plan = at(
        10,
        FaultEvent::StickinessSwitch {
            balancer: "nope".into(),
            pick: 1,
            span_ms: 10,
        },
    );
    let e = world.run_with(&plan).unwrap_err();
    assert!(e.to_string().contains("balancer \"nope\""), "{e}");
}

// ------------------------------------------------------------ determinism --

fn space() -> FaultSpace {
    FaultSpace {
        start_ms: 200,
        end_ms: 2_500,
        events: 8,
        max_span_ms: 700,
        slow_initialize_ms: 1_500,
        max_latency_ms: 800,
        ..FaultSpace::new([WORKER], [SERVER])
    }
}

#[test]
fn a_plan_is_a_function_of_its_seed() {
    let a = FaultPlan::generate(42, &space());
    assert_eq!(a, FaultPlan::generate(42, &space()));
    assert_eq!(a.to_json(), FaultPlan::generate(42, &space()).to_json());
    assert_ne!(a, FaultPlan::generate(43, &space()));
    let back: FaultPlan = serde_json::from_str(&a.to_json()).unwrap();
    assert_eq!(back, a);
    // Over many seeds every kind comes up.
    let seen: std::collections::BTreeSet<FaultKind> = (0..64)
        .flat_map(|s| FaultPlan::generate(s, &space()).kinds())
        .collect();
    assert_eq!(seen.len(), FaultKind::DEFAULT.len(), "{seen:?}");
}

/// A busy world under a generated plan of every kind: three VUs, mixed
/// answer shapes, the mode cycling with the seed (pool mode has two
/// sessions for the three).
fn busy(seed: u64) -> Outcome {
    let mode = Mode::ALL[(seed % 4) as usize];
    let mut setup = Setup::new(seed, mode);
    setup.vus = 3;
    // Past the last fault (faults start before 2.5 s, last at most 0.7 s,
    // a slow initialize answers 1.5 s late).
    setup.rounds = 60;
    setup.latency = Latency::new(1, 20);
    setup.server.notifications_before_response = 1;
    setup.server.split_chunks = 3;
    let plan = FaultPlan::generate(seed, &space());
    run(&setup, &plan)
}

#[test]
fn the_same_seed_gives_the_same_server_events_with_faults_on() {
    let a = busy(5);
    let b = busy(5);
    assert!(a.events_json.lines().count() > 50, "{}", a.events_json);
    assert_eq!(a.events_json, b.events_json);
    assert_eq!(a.applied, b.applied);
    assert_eq!(format!("{:?}", a.steps), format!("{:?}", b.steps));
    assert_ne!(a.events_json, busy(6).events_json);
}

/// Under any mix of faults nothing hangs, the books balance, and the
/// client gets back to work once the faults are over. Six seeds by
/// default; `MCP_SIM_SEEDS=N` for more.
#[test]
fn every_kind_together_never_hangs() {
    let seeds: u64 = std::env::var("MCP_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6);
    for seed in 0..seeds {
        let o = busy(seed);
        o.assert_bounded();
        assert!(!o.applied.is_empty(), "seed {seed}");
        o.assert_recovered(5);
    }
}
