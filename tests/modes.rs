//! Every behaviour of `reference/semantics.md`, mode by mode, through the
//! public API against the scripted test double.
//!
//! All tests run on paused tokio time (`start_paused`): timers fire in
//! order as soon as every task is idle, so "exactly at the deadline" means
//! exactly, and nothing sleeps for real.

use std::sync::Arc;
use std::time::Duration;

use mcp_session::transport::scripted::ScriptedConnector;
use mcp_session::transport::Operation;
use mcp_session::{
    Clock, CloseReason, ErrorKind, EventKind, Instant, Manager, ManagerBuilder, Mode,
    RecordingSink, SessionConfig, SessionMetrics, SessionState, TokioClock, VersionPolicy,
};
use mcp_session::{Era, SessionEra};

type M = Manager<ScriptedConnector>;

struct World {
    manager: M,
    server: ScriptedConnector,
    events: RecordingSink,
    clock: Arc<dyn Clock>,
}

/// The modes' legacy-era behaviour: `era = legacy`, so no era probe
/// shifts timings and event sequences (the probe has tests of its own in
/// `tests/eras.rs`).
fn world(cfg: SessionConfig) -> World {
    let cfg = SessionConfig {
        era: Era::Legacy,
        ..cfg
    };
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = ScriptedConnector::new(clock.clone());
    let events = RecordingSink::new();
    let manager = ManagerBuilder::new(cfg)
        .clock(clock.clone())
        .events(Arc::new(events.clone()))
        .start(server.clone())
        .expect("valid config");
    World {
        manager,
        server,
        events,
        clock,
    }
}

fn cfg(mode: Mode, ttl_ms: u64, max_idle_ms: u64) -> SessionConfig {
    SessionConfig {
        ttl_ms,
        max_idle_ms,
        ..SessionConfig::with_mode(mode)
    }
}

/// Lets spawned tasks (evictor, background closes) run to quiescence.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    settle().await;
}

/// The accounting identity every manager keeps.
fn assert_accounting(m: &SessionMetrics) {
    if let Err(e) = m.check_accounting() {
        panic!("{e}: {m:?}");
    }
}

async fn ping(m: &M, vu: u64) -> String {
    let mut lease = m.acquire(vu).await.expect("acquire");
    lease.call(&Operation::Ping).await.expect("ping");
    let id = lease.id().to_owned();
    lease.release();
    id
}

fn closes(events: &RecordingSink) -> Vec<(String, CloseReason)> {
    events
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Closed { reason } => Some((e.session.unwrap_or_default(), reason)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- reuse --

#[tokio::test(start_paused = true)]
async fn reuse_keeps_one_session_per_vu() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    let a1 = ping(&w.manager, 1).await;
    let b1 = ping(&w.manager, 2).await;
    let a2 = ping(&w.manager, 1).await;
    assert_eq!(a1, a2);
    assert_ne!(a1, b1);
    assert_eq!(w.server.initialized().len(), 2);
    assert_eq!(w.server.operations_on(&a1), 2);
    let m = w.manager.metrics();
    assert_eq!(
        (m.total_created, m.idle_sessions, m.active_sessions),
        (2, 2, 0)
    );
    assert_accounting(&m);
}

#[tokio::test(start_paused = true)]
async fn reuse_vu_holding_its_session_is_busy() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    let lease = w.manager.acquire(1).await.unwrap();
    let e = w.manager.acquire(1).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::VuBusy);
    lease.release();
    w.manager.acquire(1).await.unwrap().release();
    assert_eq!(w.server.initialized().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn reuse_idle_eviction_before_at_and_after_the_deadline() {
    let w = world(cfg(Mode::Reuse, 0, 100));
    let first = ping(&w.manager, 1).await; // released at t=0
    sleep_ms(99).await;
    assert_eq!(w.manager.metrics().idle_evictions, 0, "1ms before");
    sleep_ms(1).await;
    assert_eq!(w.clock.now(), Instant::from_millis(100));
    let m = w.manager.metrics();
    assert_eq!(
        (m.idle_evictions, m.idle_sessions),
        (1, 0),
        "at the deadline"
    );
    assert_eq!(w.server.deleted(), vec![first.clone()]);
    sleep_ms(50).await;
    let second = ping(&w.manager, 1).await;
    assert_ne!(first, second, "after: a new session");
    assert_eq!(
        w.manager.metrics().reconnects,
        0,
        "an eviction is no reconnect"
    );
    assert_accounting(&w.manager.metrics());
}

#[tokio::test(start_paused = true)]
async fn reuse_ttl_eviction_counts_from_creation() {
    let w = world(cfg(Mode::Reuse, 300, 0));
    let s = ping(&w.manager, 1).await;
    sleep_ms(200).await;
    assert_eq!(
        ping(&w.manager, 1).await,
        s,
        "used at 200, still before TTL"
    );
    sleep_ms(99).await;
    assert_eq!(w.manager.metrics().ttl_evictions, 0, "299: 1ms before");
    sleep_ms(1).await;
    let m = w.manager.metrics();
    assert_eq!(m.ttl_evictions, 1, "300: at the TTL, whatever the last use");
    assert_eq!(closes(&w.events), vec![(s, CloseReason::Ttl)]);
}

#[tokio::test(start_paused = true)]
async fn reuse_session_past_ttl_in_use_is_closed_on_release() {
    let w = world(cfg(Mode::Reuse, 100, 0));
    let mut lease = w.manager.acquire(1).await.unwrap();
    sleep_ms(150).await;
    // In use: not evicted, and still usable.
    lease.call(&Operation::Ping).await.unwrap();
    assert_eq!(w.manager.metrics().ttl_evictions, 0);
    let id = lease.id().to_owned();
    lease.release();
    settle().await;
    assert_eq!(closes(&w.events), vec![(id.clone(), CloseReason::Ttl)]);
    assert_eq!(w.server.deleted(), vec![id]);
    assert_accounting(&w.manager.metrics());
}

#[tokio::test(start_paused = true)]
async fn reuse_invalidate_after_404_reconnects() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    let s = ping(&w.manager, 1).await;
    w.server.restart();
    let mut lease = w.manager.acquire(1).await.unwrap();
    assert_eq!(lease.id(), s);
    let e = lease.call(&Operation::Ping).await.unwrap_err();
    assert!(e.is_session_expired(), "{e}");
    assert_eq!(e.session.as_deref(), Some(s.as_str()));
    lease.invalidate();
    let s2 = ping(&w.manager, 1).await;
    assert_ne!(s, s2);
    let m = w.manager.metrics();
    assert_eq!(
        (m.reconnects, m.closed.invalidated, m.total_created),
        (1, 1, 2)
    );
    // Only the VU that lost its session reconnects.
    ping(&w.manager, 2).await;
    assert_eq!(w.manager.metrics().reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn cancelled_acquire_is_reported_in_every_mode() {
    for mode in [Mode::Reuse, Mode::PerRequest, Mode::Churn, Mode::Pool] {
        let w = world(cfg(mode, 0, 0));
        w.server.set_initialize_latency(Duration::from_millis(100));
        let r = tokio::time::timeout(Duration::from_millis(10), w.manager.acquire(1)).await;
        assert!(r.is_err(), "{mode}: the acquire was cut off while creating");
        settle().await;
        let cancelled = w
            .events
            .kinds()
            .into_iter()
            .filter(|k| *k == EventKind::AcquireCancelled { waiting: false })
            .count();
        assert_eq!(cancelled, 1, "{mode}: one cancellation reported");
        // Nothing is left behind: the VU is not busy and can acquire again.
        ping(&w.manager, 1).await;
        assert_accounting(&w.manager.metrics());
    }
}

// ---------------------------------------------------------- per_request --

#[tokio::test(start_paused = true)]
async fn per_request_new_session_every_acquire_closed_on_release() {
    let w = world(cfg(Mode::PerRequest, 0, 0));
    let a = ping(&w.manager, 1).await;
    let b = ping(&w.manager, 1).await;
    assert_ne!(a, b);
    settle().await;
    assert_eq!(w.server.deleted(), vec![a, b]);
    let m = w.manager.metrics();
    assert_eq!((m.total_created, m.closed.released, m.live()), (2, 2, 0));
    assert_accounting(&m);
}

#[tokio::test(start_paused = true)]
async fn per_request_invalidate_counts_a_reconnect_for_that_vu() {
    let w = world(cfg(Mode::PerRequest, 0, 0));
    // A released or dropped session is not replaced by a reconnect.
    ping(&w.manager, 1).await;
    drop(w.manager.acquire(1).await.unwrap());
    ping(&w.manager, 1).await;
    assert_eq!(w.manager.metrics().reconnects, 0);
    let lease = w.manager.acquire(1).await.unwrap();
    lease.invalidate();
    ping(&w.manager, 2).await;
    assert_eq!(w.manager.metrics().reconnects, 0);
    ping(&w.manager, 1).await;
    assert_eq!(w.manager.metrics().reconnects, 1);
}

// ----------------------------------------------------------------- pool --

fn pool_cfg(size: usize, timeout_ms: u64) -> SessionConfig {
    SessionConfig {
        acquire_timeout_ms: timeout_ms,
        ttl_ms: 0,
        max_idle_ms: 0,
        ..SessionConfig::pool(size)
    }
}

#[tokio::test(start_paused = true)]
async fn pool_shares_sessions_and_hands_out_oldest_released_first() {
    let w = world(pool_cfg(2, 1000));
    let a = w.manager.acquire(1).await.unwrap();
    let b = w.manager.acquire(2).await.unwrap();
    let (ida, idb) = (a.id().to_owned(), b.id().to_owned());
    b.release();
    sleep_ms(1).await;
    a.release();
    assert_eq!(w.manager.acquire(3).await.unwrap().id(), idb);
    assert_eq!(w.server.initialized().len(), 2);
    let _ = ida;
}

#[tokio::test(start_paused = true)]
async fn pool_waiter_gets_released_session_and_wait_is_counted() {
    let w = world(pool_cfg(1, 1000));
    let held = w.manager.acquire(1).await.unwrap();
    let id = held.id().to_owned();
    let m2 = w.manager.clone();
    let waiter = tokio::spawn(async move { m2.acquire(2).await.map(|l| l.id().to_owned()) });
    sleep_ms(40).await;
    assert_eq!(w.manager.metrics().pool_waits, 1);
    held.release();
    assert_eq!(waiter.await.unwrap().unwrap(), id);
    let m = w.manager.metrics();
    assert_eq!((m.pool_timeouts, m.acquire_wait.served), (0, 1));
    assert_eq!((m.pool_waits, m.acquire_wait.count), (1, 1));
    assert_eq!(m.acquire_wait.max_ms, 40);
    assert!(w.events.kinds().contains(&EventKind::AcquireOk {
        created: false,
        reconnect: false,
        waited_ms: 40
    }));
}

#[tokio::test(start_paused = true)]
async fn pool_acquire_times_out_exactly_at_its_deadline() {
    let w = world(pool_cfg(1, 250));
    let _held = w.manager.acquire(1).await.unwrap();
    let start = w.clock.now();
    let e = w.manager.acquire(2).await.unwrap_err();
    assert_eq!(w.clock.now() - start, Duration::from_millis(250));
    assert_eq!(
        e.kind,
        ErrorKind::PoolTimeout {
            waited: Duration::from_millis(250)
        }
    );
    let m = w.manager.metrics();
    assert_eq!((m.pool_waits, m.pool_timeouts), (1, 1));
    w.manager.check_invariants().unwrap();
}

#[tokio::test(start_paused = true)]
async fn pool_try_acquire_is_exhausted_without_waiting() {
    let w = world(pool_cfg(1, 1000));
    let _held = w.manager.acquire(1).await.unwrap();
    let e = w.manager.try_acquire(2).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PoolExhausted);
    assert_eq!(w.manager.metrics().pool_waits, 0);
}

#[tokio::test(start_paused = true)]
async fn pool_failed_create_frees_the_slot_and_wakes_the_next_waiter() {
    let w = world(pool_cfg(1, 10_000));
    w.server.set_latency(Duration::from_millis(10));
    w.server.fail_next_initializes(1);
    let m1 = w.manager.clone();
    let first = tokio::spawn(async move { m1.acquire(1).await.map(|l| l.id().to_owned()) });
    sleep_ms(1).await; // the first holds the only slot, creating
    let m2 = w.manager.clone();
    let second = tokio::spawn(async move { m2.acquire(2).await.map(|l| l.id().to_owned()) });
    let e = first.await.unwrap().unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Initialize(_)), "{e}");
    second
        .await
        .unwrap()
        .expect("served after the failed create freed the slot");
    let m = w.manager.metrics();
    assert_eq!((m.total_created, m.pool_waits, m.pool_timeouts), (1, 1, 0));
    // A slot handed to a waiter serves its wait as a session would.
    assert_eq!((m.acquire_wait.count, m.acquire_wait.served), (1, 1));
    w.manager.check_invariants().unwrap();
}

#[tokio::test(start_paused = true)]
async fn pool_idle_eviction_and_ttl_on_release() {
    let w = world(SessionConfig {
        ttl_ms: 500,
        max_idle_ms: 100,
        ..pool_cfg(2, 1000)
    });
    ping(&w.manager, 1).await;
    sleep_ms(100).await;
    assert_eq!(w.manager.metrics().idle_evictions, 1);
    let lease = w.manager.acquire(1).await.unwrap();
    sleep_ms(600).await;
    lease.release();
    settle().await;
    let m = w.manager.metrics();
    assert_eq!(
        (m.ttl_evictions, m.total_evicted, m.idle_sessions),
        (1, 2, 0)
    );
    assert_accounting(&m);
}

#[tokio::test(start_paused = true)]
async fn pool_invalidate_frees_the_slot_and_counts_the_replacement() {
    let w = world(pool_cfg(1, 1000));
    let lease = w.manager.acquire(1).await.unwrap();
    let dead = lease.id().to_owned();
    lease.invalidate();
    let next = w.manager.acquire(2).await.unwrap();
    assert_ne!(next.id(), dead);
    assert_eq!(w.manager.metrics().reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn pool_waiter_cancelled_behind_the_head_leaves_the_head_served() {
    let w = world(pool_cfg(1, 10_000));
    let held = w.manager.acquire(1).await.unwrap();
    let id = held.id().to_owned();
    // A waiter that releases what it gets, and says what it got.
    let wait = |vu: u64| {
        let m = w.manager.clone();
        tokio::spawn(async move {
            let lease = m.acquire(vu).await?;
            let id = lease.id().to_owned();
            lease.release();
            Ok::<_, mcp_session::SessionError>(id)
        })
    };
    let head = wait(2);
    sleep_ms(1).await;
    let middle = wait(3);
    sleep_ms(1).await;
    let tail = wait(4);
    sleep_ms(1).await;
    middle.abort();
    sleep_ms(1).await;
    assert_eq!(w.manager.metrics().acquire_wait.cancelled, 1);
    held.release();
    assert_eq!(
        head.await.unwrap().unwrap(),
        id,
        "the head waiter is served first"
    );
    assert_eq!(
        tail.await.unwrap().unwrap(),
        id,
        "then the one behind the cancelled"
    );
    w.manager.check_invariants().unwrap();
}

#[tokio::test(start_paused = true)]
async fn pool_dropped_or_released_lease_is_no_reconnect() {
    // Only a session invalidated after a 404 is replaced by a reconnect: a
    // lease dropped without a word closes its session, and the next one
    // created is a plain creation.
    let w = world(pool_cfg(1, 1000));
    drop(w.manager.acquire(1).await.unwrap());
    let next = w.manager.acquire(2).await.unwrap();
    next.release();
    let m = w.manager.metrics();
    assert_eq!((m.total_created, m.reconnects, m.closed.dropped), (2, 0, 1));
}

// ---------------------------------------------------------------- churn --

#[tokio::test(start_paused = true)]
async fn churn_by_ops_default_replaces_after_every_operation() {
    let w = world(cfg(Mode::Churn, 0, 0));
    let a = ping(&w.manager, 1).await;
    let b = ping(&w.manager, 1).await;
    assert_ne!(a, b);
    settle().await;
    let m = w.manager.metrics();
    // Each session is spent after its one operation and closed at release.
    assert_eq!((m.closed.churned, m.total_created, m.live()), (2, 2, 0));
    assert_eq!(w.server.deleted(), vec![a, b]);
}

#[tokio::test(start_paused = true)]
async fn churn_by_ops_counts_operations() {
    let w = world(SessionConfig {
        churn_interval_ops: 3,
        ..cfg(Mode::Churn, 0, 0)
    });
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..7 {
            v.push(ping(&w.manager, 1).await);
        }
        v
    };
    assert_eq!(ids[0], ids[2]);
    assert_ne!(ids[2], ids[3]);
    assert_eq!(ids[3], ids[5]);
    assert_ne!(ids[5], ids[6]);
    assert_eq!(w.manager.metrics().closed.churned, 2);
}

#[tokio::test(start_paused = true)]
async fn churn_by_time_reads_the_injected_clock() {
    let w = world(SessionConfig {
        churn_interval_ops: 0,
        churn_interval_ms: 1000,
        ..cfg(Mode::Churn, 0, 0)
    });
    let a = ping(&w.manager, 1).await;
    sleep_ms(999).await;
    assert_eq!(ping(&w.manager, 1).await, a);
    sleep_ms(1).await;
    let b = ping(&w.manager, 1).await;
    assert_ne!(a, b, "replaced at 1000ms of clock time");
    assert_eq!(w.manager.metrics().closed.churned, 1);
}

/// A struct that sets only `churn_interval_ms` (the rest from `Default`)
/// churns by time through the manager, as the same config from JSON does;
/// churn mode with no interval set churns after every operation.
#[tokio::test(start_paused = true)]
async fn churn_intervals_left_at_their_defaults_mean_not_set() {
    let literal = SessionConfig {
        mode: Mode::Churn,
        churn_interval_ms: 1000,
        ..Default::default()
    };
    let json = SessionConfig::from_json(r#"{"mode":"churn","churn_interval_ms":1000}"#).unwrap();
    assert_eq!(literal, json);
    assert_eq!(literal, SessionConfig::churn_every_ms(1000));
    let w = world(literal);
    let a = ping(&w.manager, 1).await;
    assert_eq!(ping(&w.manager, 1).await, a, "not churned by operations");
    sleep_ms(1000).await;
    assert_ne!(ping(&w.manager, 1).await, a, "churned at 1000ms");
    assert_eq!(w.manager.metrics().closed.churned, 1);

    let w = world(SessionConfig::with_mode(Mode::Churn));
    let a = ping(&w.manager, 1).await;
    let b = ping(&w.manager, 1).await;
    assert_ne!(a, b, "the reference's default: every operation");
    let w = world(SessionConfig::churn_every_ops(2));
    let ids = [
        ping(&w.manager, 1).await,
        ping(&w.manager, 1).await,
        ping(&w.manager, 1).await,
    ];
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
}

#[tokio::test(start_paused = true)]
async fn churn_sessions_are_evicted_too() {
    let w = world(SessionConfig {
        churn_interval_ops: 10,
        ..cfg(Mode::Churn, 0, 100)
    });
    ping(&w.manager, 1).await;
    sleep_ms(100).await;
    assert_eq!(w.manager.metrics().idle_evictions, 1);
}

// ------------------------------------------ creation, version, closing --

#[tokio::test(start_paused = true)]
async fn version_policy_strict_supported_none() {
    for (policy, answer, ok) in [
        (VersionPolicy::Strict, "2025-11-25", true),
        (VersionPolicy::Strict, "2025-06-18", false),
        (VersionPolicy::Supported, "2025-06-18", true),
        (VersionPolicy::Supported, "2024-01-01", false),
        (VersionPolicy::None, "1999-01-01", true),
    ] {
        let w = world(SessionConfig {
            protocol_version_policy: policy,
            ..cfg(Mode::Reuse, 0, 0)
        });
        w.server.answer_version(Some(answer));
        let r = w.manager.acquire(1).await;
        settle().await;
        let m = w.manager.metrics();
        assert_eq!(m.total_created, 1, "{policy} {answer}");
        if ok {
            assert_eq!(r.unwrap().info().protocol_version, answer);
        } else {
            let e = r.unwrap_err();
            assert!(
                matches!(e.kind, ErrorKind::VersionNegotiation { .. }),
                "{e}"
            );
            assert_eq!(m.closed.failed, 1, "rejected session is closed as failed");
            assert_eq!(w.server.deleted().len(), 1, "and DELETEd");
        }
        assert_accounting(&m);
    }
}

#[tokio::test(start_paused = true)]
async fn connect_initialize_and_initialized_failures_are_distinct() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    w.server.fail_next_connects(1);
    let e = w.manager.acquire(1).await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Connect(_)), "{e}");
    w.server.fail_next_initializes(1);
    let e = w.manager.acquire(1).await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Initialize(_)), "{e}");
    assert_eq!(
        w.manager.metrics().total_created,
        0,
        "nothing initialized yet"
    );
    w.server.fail_next_initialized(1);
    let e = w.manager.acquire(1).await.unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::InitializedNotification(_)),
        "{e}"
    );
    settle().await;
    let m = w.manager.metrics();
    assert_eq!((m.total_created, m.closed.failed), (1, 1));
    // The VU is not left busy by the failures.
    ping(&w.manager, 1).await;
}

#[tokio::test(start_paused = true)]
async fn operation_errors_are_typed() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    let mut lease = w.manager.acquire(1).await.unwrap();
    w.server.fail_next_operations(1);
    let e = lease.call(&Operation::Ping).await.unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Operation(_)), "{e}");
    lease.call(&Operation::Ping).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_closes_everything_fails_waiters_and_is_idempotent() {
    for mode in Mode::ALL {
        let w = world(SessionConfig {
            pool_size: 1,
            ..cfg(mode, 0, 0)
        });
        let idle = w.manager.acquire(1).await.unwrap();
        let idle_id = idle.id().to_owned();
        idle.release();
        let mut held = w.manager.acquire(2).await.unwrap();
        let held_id = held.id().to_owned();
        assert_eq!(held.info().state, SessionState::Active, "{mode}");
        let waiter = (mode == Mode::Pool).then(|| {
            let m = w.manager.clone();
            tokio::spawn(async move { m.acquire(3).await.map(|_| ()) })
        });
        settle().await;
        w.manager.close().await;
        if let Some(waiter) = waiter {
            let e = waiter.await.unwrap().unwrap_err();
            assert_eq!(e.kind, ErrorKind::ManagerClosed, "{mode}: waiter woken");
        }
        assert_eq!(
            held.info().state,
            SessionState::Closed,
            "{mode}: closed under the VU"
        );
        let sent = w.server.operation_log().len();
        let e = held.call(&Operation::Ping).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionClosed, "{mode}");
        assert_eq!(w.server.operation_log().len(), sent, "{mode}: nothing sent");
        held.release();
        let e = w.manager.acquire(4).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ManagerClosed, "{mode}");
        w.manager.close().await;
        let m = w.manager.metrics();
        assert_eq!(m.live(), 0, "{mode}");
        assert_eq!(m.closed.total(), m.total_created, "{mode}");
        assert!(w.server.live().is_empty(), "{mode}: every session DELETEd");
        let deleted = w.server.deleted();
        if mode != Mode::PerRequest {
            assert!(deleted.contains(&idle_id), "{mode}");
        }
        assert!(deleted.contains(&held_id), "{mode}");
        let kinds = w.events.kinds();
        let n = |k: &EventKind| kinds.iter().filter(|x| *x == k).count();
        assert_eq!(
            n(&EventKind::ManagerClosed),
            1,
            "{mode}: close reported once"
        );
        assert_accounting(&m);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_delete_is_reported_and_the_session_still_counts_closed() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    let id = ping(&w.manager, 1).await;
    w.server.fail_next_closes(1);
    w.manager.close().await;
    let m = w.manager.metrics();
    assert_eq!((m.closed.shutdown, m.live()), (1, 0));
    assert_accounting(&m);
    assert_eq!(w.server.live(), vec![id.clone()], "the server kept it");
    let failed: Vec<_> = w
        .events
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::CloseFailed { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].session.as_deref(), Some(id.as_str()));
}

#[tokio::test(start_paused = true)]
async fn events_carry_clock_time_vu_and_session() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    sleep_ms(5).await;
    let id = ping(&w.manager, 7).await;
    let evs = w.events.events();
    let kinds: Vec<_> = evs.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::AcquireStart,
            EventKind::Created {
                era: SessionEra::Legacy
            },
            EventKind::AcquireOk {
                created: true,
                reconnect: false,
                waited_ms: 0
            },
            EventKind::OperationStart { method: "ping" },
            EventKind::OperationEnd {
                method: "ping",
                error: None
            },
            EventKind::Released,
        ]
    );
    for e in &evs {
        assert_eq!(e.at, Instant::from_millis(5));
        assert_eq!(e.vu, Some(7.into()));
    }
    assert!(evs[1..]
        .iter()
        .all(|e| e.session.as_deref() == Some(id.as_str())));
}

#[tokio::test(start_paused = true)]
async fn invalid_config_is_refused_at_start_naming_the_field() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let bad = SessionConfig {
        pool_size: 0,
        ..SessionConfig::with_mode(Mode::Pool)
    };
    let e = Manager::start(bad, ScriptedConnector::new(clock))
        .err()
        .unwrap();
    let ErrorKind::InvalidConfig(c) = &e.kind else {
        panic!("{e}")
    };
    assert_eq!(c.field(), Some("pool_size"));
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    let clock: Arc<dyn Clock> = Arc::new(mcp_session::ManualClock::new());
    let e = Manager::start(SessionConfig::default(), ScriptedConnector::new(clock))
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::NoRuntime);
}

// ------------------------------------------------------ closes on server --

/// Every close is counted by what it did on the server: a confirmed DELETE
/// deletes, a session the server already forgot is not "deleted", a failed
/// DELETE is a failure, and a server that issued no session id had nothing
/// to delete. A report built from these counters cannot claim deletions
/// that never happened.
#[tokio::test(start_paused = true)]
async fn closes_say_what_they_did_on_the_server() {
    let w = world(cfg(Mode::Reuse, 0, 0));
    ping(&w.manager, 1).await;
    let s2 = ping(&w.manager, 2).await;
    ping(&w.manager, 3).await;
    w.server.expire(&s2);
    w.manager.close().await;
    let m = w.manager.metrics();
    assert_accounting(&m);
    let c = m.server_closes;
    assert_eq!((m.closed.shutdown, c.total()), (3, 3));
    assert_eq!((c.deleted, c.already_gone, c.failed), (2, 1, 0), "{c:?}");

    let w = world(cfg(Mode::Reuse, 0, 0));
    ping(&w.manager, 1).await;
    w.server.fail_next_closes(1);
    w.manager.close().await;
    let c = w.manager.metrics().server_closes;
    assert_eq!((c.deleted, c.failed, c.total()), (0, 1, 1), "{c:?}");

    let w = world(cfg(Mode::PerRequest, 0, 0));
    w.server.set_stateless(true);
    ping(&w.manager, 1).await;
    ping(&w.manager, 1).await;
    w.manager.close().await;
    let m = w.manager.metrics();
    assert_accounting(&m);
    let c = m.server_closes;
    assert_eq!(
        (m.closed.released, c.no_session_id, c.deleted),
        (2, 2, 0),
        "{c:?}"
    );
    assert!(
        w.server.deleted().is_empty(),
        "no DELETE without a session id"
    );
}

/// A stateless-era context ends with nothing to delete on the server.
#[tokio::test(start_paused = true)]
async fn stateless_era_closes_delete_nothing() {
    let cfg = SessionConfig {
        era: Era::Modern,
        ..SessionConfig::with_mode(Mode::PerRequest)
    };
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = ScriptedConnector::new(clock.clone());
    server.set_eras(false, true);
    let manager = ManagerBuilder::new(cfg)
        .clock(clock)
        .start(server.clone())
        .expect("valid config");
    let mut lease = manager.acquire(1).await.expect("acquire");
    lease
        .call(&Operation::ToolsList { cursor: None })
        .await
        .expect("tools/list");
    lease.release();
    manager.close().await;
    let m = manager.metrics();
    assert_eq!(m.eras.modern.closed.total(), 1);
    let c = m.server_closes;
    assert_eq!((c.stateless, c.deleted, c.total()), (1, 0, 1), "{c:?}");
    assert!(server.deleted().is_empty());
}

#[tokio::test(start_paused = true)]
async fn pool_acquire_within_is_a_pool_timeout_at_its_own_limit() {
    let w = world(pool_cfg(1, 250));
    let held = w.manager.acquire(1).await.unwrap();
    let start = w.clock.now();
    let e = w
        .manager
        .acquire_within(2, Duration::from_millis(40))
        .await
        .unwrap_err();
    assert!(
        e.kind
            == ErrorKind::PoolTimeout {
                waited: Duration::from_millis(40)
            },
        "{e}"
    );
    assert_eq!(w.clock.now() - start, Duration::from_millis(40));
    let m = w.manager.metrics();
    assert_eq!(
        (m.pool_waits, m.pool_timeouts, m.acquire_wait.cancelled),
        (1, 1, 0)
    );
    assert!(w
        .events
        .kinds()
        .contains(&EventKind::AcquireTimeout { waited_ms: 40 }));
    // A limit longer than the config's timeout does not lengthen the wait.
    let start = w.clock.now();
    let e = w
        .manager
        .acquire_within(3, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::PoolTimeout { .. }), "{e}");
    assert_eq!(w.clock.now() - start, Duration::from_millis(250));
    held.release();
    w.manager.close().await;
    assert_accounting(&w.manager.metrics());
}

#[tokio::test(start_paused = true)]
async fn a_short_limit_behind_the_head_leaves_first_and_the_head_is_served() {
    let w = world(pool_cfg(1, 1_000));
    let held = w.manager.acquire(1).await.unwrap();
    let m = w.manager.clone();
    let head = tokio::spawn(async move { m.acquire(2).await.map(|l| l.id().to_owned()) });
    settle().await;
    let start = w.clock.now();
    let e = w
        .manager
        .acquire_within(3, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert!(matches!(e.kind, ErrorKind::PoolTimeout { .. }), "{e}");
    assert_eq!(w.clock.now() - start, Duration::from_millis(30));
    assert!(!head.is_finished(), "the head waiter still waits");
    let id = held.id().to_owned();
    held.release();
    assert_eq!(
        head.await.unwrap().unwrap(),
        id,
        "the head gets the session"
    );
    let m = w.manager.metrics();
    assert_eq!(
        (m.pool_waits, m.pool_timeouts, m.acquire_wait.served),
        (2, 1, 1)
    );
    w.manager.close().await;
}
