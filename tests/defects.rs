//! The reference's ten defects (`reference/semantics.md`, "Defects of the
//! reference"), one test each, plus the two Rust-specific cancel-safety
//! hazards. Every test drives the public API against the in-memory
//! [`ScriptedConnector`] and checks both sides: the manager's metrics and
//! events, and what the scripted server saw (sessions initialized, DELETEs,
//! operations). Each test fails if its defect comes back.
//!
//! Time is paused tokio time (auto-advancing, no real sleeps) read through
//! [`TokioClock`], or a [`ManualClock`] where a test must step time without
//! letting the evictor run first.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_session::transport::scripted::ScriptedConnector;
use mcp_session::transport::Operation;
use mcp_session::{
    Clock, CloseReason, ErrorKind, EventKind, Manager, ManagerBuilder, ManualClock, Mode,
    RecordingSink, SessionConfig, TokioClock, VuId,
};
use mcp_session::{Era, SessionEra};

type M = Manager<ScriptedConnector>;

const PING: Operation = Operation::Ping;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A manager, its scripted server and its recorded events.
struct Rig {
    m: M,
    server: ScriptedConnector,
    sink: RecordingSink,
}

/// The defects are about the legacy era's sessions: the rig pins
/// `era = legacy`, so no era probe shifts their timing (the probe has
/// tests of its own in `tests/eras.rs`).
fn rig_on(cfg: SessionConfig, clock: Arc<dyn Clock>) -> Rig {
    let cfg = SessionConfig {
        era: Era::Legacy,
        ..cfg
    };
    let server = ScriptedConnector::new(clock.clone());
    let sink = RecordingSink::new();
    let m = ManagerBuilder::new(cfg)
        .clock(clock)
        .events(Arc::new(sink.clone()))
        .start(server.clone())
        .expect("valid config");
    Rig { m, server, sink }
}

/// A rig on a [`TokioClock`] (paused time in these tests).
fn rig(cfg: SessionConfig) -> Rig {
    rig_on(cfg, Arc::new(TokioClock::new()))
}

fn pool(size: usize, acquire_timeout_ms: u64) -> SessionConfig {
    SessionConfig {
        acquire_timeout_ms,
        ..SessionConfig::pool(size)
    }
}

/// Lets spawned tasks (background closes, waiters) run, without moving time.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// Yields until `f` holds (without moving time); panics if it never does.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// One VU iteration: acquire, ping, release. Returns the session id.
async fn use_once(m: &M, vu: u64) -> String {
    let mut lease = m.acquire(vu).await.expect("acquire");
    lease.call(&PING).await.expect("ping");
    let id = lease.id().to_owned();
    lease.release();
    id
}

/// The counter identities, checked against the server's side too.
fn assert_accounting(r: &Rig) {
    let m = r.m.metrics();
    assert_eq!(
        m.total_created,
        m.live() + m.closed.total(),
        "created = live + closed: {m:?}"
    );
    assert_eq!(
        m.total_created,
        r.server.initialized().len() as u64,
        "total_created = sessions the server initialized"
    );
    assert_eq!(m.total_evicted, m.ttl_evictions + m.idle_evictions);
    assert_eq!(m.ttl_evictions, m.closed.ttl);
    assert_eq!(m.idle_evictions, m.closed.idle);
}

/// After [`settle`] with nothing in flight: every open session is leased or
/// idle, and every closed one got its DELETE.
fn assert_quiescent(r: &Rig) {
    assert_accounting(r);
    let m = r.m.metrics();
    assert_eq!(m.live(), m.active_sessions + m.idle_sessions, "{m:?}");
    assert_eq!(r.server.deleted().len() as u64, m.closed.total());
}

/// No `OperationStart` on a session after its `Closed` event.
fn assert_no_use_after_close(sink: &RecordingSink) {
    let mut closed = BTreeSet::new();
    for e in sink.events() {
        match (&e.kind, &e.session) {
            (EventKind::Closed { .. }, Some(id)) => {
                closed.insert(id.clone());
            }
            (EventKind::OperationStart { .. }, Some(id)) => {
                assert!(!closed.contains(id), "operation on closed {id}: {e:?}");
            }
            _ => {}
        }
    }
}

/// The queue position of the latest acquire that had to wait.
fn last_wait_position(sink: &RecordingSink) -> Option<usize> {
    sink.kinds().into_iter().rev().find_map(|k| match k {
        EventKind::AcquireWait { position, .. } => Some(position),
        _ => None,
    })
}

/// Event kinds recorded since the first `from` events.
fn kinds_since(sink: &RecordingSink, from: usize) -> Vec<EventKind> {
    sink.kinds().split_off(from)
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// Defects 1 and 2 cannot be written at all: `Lease::release` and
// `Lease::invalidate` consume the lease, and the `compile_fail,E0382`
// doctests in `src/lease.rs` prove that releasing twice, or releasing after
// invalidating, does not compile. The two tests below check the nearest
// observable behaviour at run time.

/// Defect 1: an invalidated pool session must never come back from the pool.
#[tokio::test(start_paused = true)]
async fn defect_1_invalidated_session_never_back_in_pool() {
    let r = rig(pool(2, 1000));
    let mut a = r.m.acquire(1).await.unwrap();
    let b = r.m.acquire(2).await.unwrap();
    assert_eq!((a.id(), b.id()), ("s-1", "s-2"));
    r.server.expire("s-1");
    assert!(a.call(&PING).await.unwrap_err().is_session_expired());
    a.invalidate();
    b.release();

    let m = r.m.metrics();
    assert_eq!(m.idle_sessions, 1, "only s-2 is idle: {m:?}");
    assert_eq!(m.closed.invalidated, 1);
    settle().await;
    assert_eq!(r.server.deleted(), ids(&["s-1"]));

    let mut c = r.m.acquire(3).await.unwrap();
    let mut d = r.m.acquire(4).await.unwrap();
    assert_eq!((c.id(), d.id()), ("s-2", "s-3"), "s-1 is never handed out");
    c.call(&PING).await.unwrap();
    d.call(&PING).await.unwrap();
    assert_eq!(r.m.metrics().reconnects, 1, "s-3 replaced s-1");
    r.m.check_invariants().unwrap();
    c.release();
    d.release();
    settle().await;
    assert_quiescent(&r);
    assert_no_use_after_close(&r.sink);
}

/// Defect 2: a session released once is listed once: two VUs never hold it
/// at the same time.
#[tokio::test(start_paused = true)]
async fn defect_2_released_session_held_by_one_vu_at_a_time() {
    let r = rig(pool(2, 1000));
    assert_eq!(use_once(&r.m, 1).await, "s-1");
    assert_eq!(r.m.metrics().idle_sessions, 1);

    let (x, y) = tokio::join!(r.m.acquire(2), r.m.acquire(3));
    let (mut x, mut y) = (x.unwrap(), y.unwrap());
    assert_ne!(x.id(), y.id(), "two VUs hold one session");
    assert_eq!(
        sorted(vec![x.id().into(), y.id().into()]),
        ids(&["s-1", "s-2"])
    );
    x.call(&PING).await.unwrap();
    y.call(&PING).await.unwrap();
    // Both slots are taken: there is no second copy of s-1 left to hand out.
    let e = r.m.try_acquire(4).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PoolExhausted);
    let m = r.m.metrics();
    assert_eq!((m.active_sessions, m.idle_sessions), (2, 0));
    x.release();
    y.release();
    assert_eq!(r.m.metrics().idle_sessions, 2);
    r.m.check_invariants().unwrap();
    assert_quiescent(&r);
}

/// Defect 3: in reuse mode, acquiring at (or around) the idle deadline,
/// racing the evictor, never yields a closed session; and a session leased
/// just before its deadline is not evicted while in use.
#[tokio::test(start_paused = true)]
async fn defect_3_reuse_acquire_never_yields_closed_session() {
    for at in [99u64, 100, 101] {
        let cfg = SessionConfig {
            ttl_ms: 0,
            max_idle_ms: 100,
            ..SessionConfig::with_mode(Mode::Reuse)
        };
        let r = rig(cfg);
        assert_eq!(use_once(&r.m, 1).await, "s-1"); // idle from t=0, due at 100
        tokio::time::sleep(ms(at)).await; // the evictor's timer fires at 100 too
        let mut lease = r.m.acquire(1).await.unwrap();
        let fresh = lease.id() != "s-1";
        assert_eq!(fresh, at >= 100, "at {at}ms got {}", lease.id());
        // Held across the deadline: the evictor must not touch it.
        tokio::time::sleep(ms(150)).await;
        lease.call(&PING).await.expect("a leased session is open");
        assert_eq!(lease.info().state, mcp_session::SessionState::Active);
        lease.release();
        settle().await;
        let m = r.m.metrics();
        assert_eq!(m.idle_evictions, u64::from(fresh), "at {at}ms: {m:?}");
        assert_quiescent(&r);
        assert_no_use_after_close(&r.sink);
    }
}

/// Defect 4: `reconnects` counts only sessions made to replace one
/// invalidated after a 404; sessions found expired at acquire are counted as
/// evictions (and are not reconnects).
#[tokio::test(start_paused = true)]
async fn defect_4_reconnects_and_evictions_counted_apart() {
    // A manual clock: time moves and the acquire runs before the evictor
    // gets a turn, so the expiry is found by the acquire itself.
    let clock = ManualClock::new();
    let cfg = SessionConfig {
        ttl_ms: 300,
        max_idle_ms: 200,
        ..SessionConfig::with_mode(Mode::Reuse)
    };
    let r = rig_on(cfg, Arc::new(clock.clone()));

    assert_eq!(use_once(&r.m, 1).await, "s-1");
    r.server.expire("s-1"); // the server forgets it: 404
    let mut lease = r.m.acquire(1).await.unwrap();
    assert!(lease.call(&PING).await.unwrap_err().is_session_expired());
    lease.invalidate();
    assert_eq!(use_once(&r.m, 1).await, "s-2"); // t=0: the one reconnect
    assert_eq!(r.m.metrics().reconnects, 1);

    clock.advance(ms(150));
    assert_eq!(use_once(&r.m, 1).await, "s-2"); // last used at 150
    clock.advance(ms(150)); // t=300: s-2 reaches its TTL (idle due at 350)
    let before = r.sink.kinds().len();
    assert_eq!(use_once(&r.m, 1).await, "s-3");
    let ok = EventKind::AcquireOk {
        created: true,
        reconnect: false,
        waited_ms: 0,
    };
    let expect = [
        EventKind::AcquireStart,
        EventKind::Closed {
            reason: CloseReason::Ttl,
        },
        EventKind::Created {
            era: SessionEra::Legacy,
        },
        ok.clone(),
    ];
    assert_eq!(
        kinds_since(&r.sink, before)[..4],
        expect,
        "found at acquire"
    );

    clock.advance(ms(200)); // t=500: s-3 idle since 300
    let before = r.sink.kinds().len();
    assert_eq!(use_once(&r.m, 1).await, "s-4");
    let expect = [
        EventKind::AcquireStart,
        EventKind::Closed {
            reason: CloseReason::Idle,
        },
        EventKind::Created {
            era: SessionEra::Legacy,
        },
        ok,
    ];
    assert_eq!(
        kinds_since(&r.sink, before)[..4],
        expect,
        "found at acquire"
    );

    let m = r.m.metrics();
    assert_eq!(m.reconnects, 1, "evictions are not reconnects: {m:?}");
    assert_eq!(
        (m.ttl_evictions, m.idle_evictions, m.total_evicted),
        (1, 1, 2)
    );
    assert_eq!(m.closed.invalidated, 1);
    assert_eq!(m.total_created, 4);
    settle().await;
    assert_quiescent(&r);
}

/// Defect 5: pool evictions are counted: expired idle sessions dropped during
/// acquire, and sessions past their TTL closed on release.
#[tokio::test(start_paused = true)]
async fn defect_5_pool_evictions_counted() {
    let clock = ManualClock::new();
    let cfg = SessionConfig {
        ttl_ms: 1000,
        max_idle_ms: 100,
        ..pool(2, 1000)
    };
    let r = rig_on(cfg, Arc::new(clock.clone()));
    let a = r.m.acquire(1).await.unwrap();
    let b = r.m.acquire(2).await.unwrap();
    a.release();
    b.release();

    clock.advance(ms(100)); // both idle past max_idle; the evictor has not run
    let before = r.sink.kinds().len();
    let mut c = r.m.acquire(3).await.unwrap();
    assert_eq!(c.id(), "s-3");
    let idle = EventKind::Closed {
        reason: CloseReason::Idle,
    };
    assert_eq!(
        kinds_since(&r.sink, before)[..5],
        [
            EventKind::AcquireStart,
            idle.clone(),
            idle,
            EventKind::SlotReserved,
            EventKind::Created {
                era: SessionEra::Legacy,
            },
        ],
        "dropped during the acquire"
    );
    let m = r.m.metrics();
    assert_eq!(
        (m.idle_evictions, m.total_evicted, m.idle_sessions),
        (2, 2, 0)
    );

    clock.advance(ms(1000)); // t=1100: s-3 (created at 100) is past its TTL in use
    c.call(&PING).await.unwrap();
    c.release();
    let m = r.m.metrics();
    assert_eq!((m.ttl_evictions, m.total_evicted), (1, 3), "{m:?}");
    assert_eq!((m.idle_sessions, m.active_sessions), (0, 0));
    settle().await;
    assert_eq!(sorted(r.server.deleted()), ids(&["s-1", "s-2", "s-3"]));
    assert_eq!(use_once(&r.m, 4).await, "s-4");
    r.m.check_invariants().unwrap();
    assert_quiescent(&r);
}

/// Defect 6: a cancelled pool acquire is not a pool timeout; a real timeout
/// is, and ends at its deadline.
#[tokio::test(start_paused = true)]
async fn defect_6_cancelled_acquire_is_not_a_timeout() {
    let r = rig(pool(1, 1000));
    let held = r.m.acquire(1).await.unwrap();

    let cancelled = tokio::time::timeout(ms(100), r.m.acquire(2)).await;
    assert!(cancelled.is_err(), "the acquire was still waiting");
    let m = r.m.metrics();
    assert_eq!(m.pool_waits, 1);
    assert_eq!(m.pool_timeouts, 0, "a cancel is not a timeout");
    assert_eq!(m.acquire_wait.cancelled, 1);
    let kinds = r.sink.kinds();
    assert!(kinds.contains(&EventKind::AcquireCancelled { waiting: true }));
    assert!(!kinds
        .iter()
        .any(|k| matches!(k, EventKind::AcquireTimeout { .. })));

    let t0 = r.m.clock().now();
    let e = r.m.acquire(3).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PoolTimeout { waited: ms(1000) });
    assert_eq!(
        r.m.clock().now() - t0,
        ms(1000),
        "timed out at its deadline"
    );
    let m = r.m.metrics();
    assert_eq!((m.pool_waits, m.pool_timeouts), (2, 1));
    assert_eq!((m.acquire_wait.cancelled, m.acquire_wait.served), (1, 0));
    r.m.check_invariants().unwrap();
    held.release();
    assert_quiescent(&r);
}

/// Defect 7: churn by operations counts exactly (two VUs interleaving), churn
/// mode has idle eviction, and churn by time reads the injected clock.
#[tokio::test(start_paused = true)]
async fn defect_7_churn_exact_evicting_and_on_the_clock() {
    churn_by_ops_counts_exactly().await;
    churn_sessions_are_evicted().await;
    churn_by_time_uses_the_clock().await;
}

async fn churn_by_ops_counts_exactly() {
    let cfg = SessionConfig {
        churn_interval_ops: 3,
        ..SessionConfig::with_mode(Mode::Churn)
    };
    let r = rig(cfg);
    r.server.set_latency(ms(10)); // so the two VUs interleave
    let run = |vu| {
        let m = r.m.clone();
        async move {
            let mut seen = Vec::new();
            for _ in 0..6 {
                seen.push(use_once(&m, vu).await);
            }
            seen
        }
    };
    let (one, two) = tokio::join!(run(1), run(2));
    for seen in [&one, &two] {
        assert_eq!(
            seen[0..3],
            [seen[0].clone(), seen[0].clone(), seen[0].clone()]
        );
        assert_eq!(
            seen[3..6],
            [seen[3].clone(), seen[3].clone(), seen[3].clone()]
        );
        assert_ne!(seen[0], seen[3]);
    }
    for id in r.server.initialized() {
        assert_eq!(r.server.operations_on(&id), 3, "ops on {id}");
    }
    let m = r.m.metrics();
    assert_eq!((m.total_created, m.closed.churned, m.reconnects), (4, 4, 0));
    tokio::time::sleep(ms(50)).await; // the DELETEs take latency too
    assert_quiescent(&r);
}

async fn churn_sessions_are_evicted() {
    let cfg = SessionConfig {
        churn_interval_ops: 10,
        max_idle_ms: 100,
        ..SessionConfig::with_mode(Mode::Churn)
    };
    let r = rig(cfg);
    assert_eq!(use_once(&r.m, 1).await, "s-1");
    tokio::time::sleep(ms(150)).await; // the evictor fires at 100
    settle().await;
    let m = r.m.metrics();
    assert_eq!((m.idle_evictions, m.idle_sessions), (1, 0), "{m:?}");
    assert_eq!(r.server.deleted(), ids(&["s-1"]));
    assert_eq!(use_once(&r.m, 1).await, "s-2");
    assert_quiescent(&r);
}

async fn churn_by_time_uses_the_clock() {
    let cfg = SessionConfig {
        churn_interval_ops: 0,
        churn_interval_ms: 500,
        ..SessionConfig::with_mode(Mode::Churn)
    };
    let r = rig(cfg);
    assert_eq!(use_once(&r.m, 1).await, "s-1"); // t=0
    tokio::time::sleep(ms(499)).await; // paused time: no wall time passes
    assert_eq!(use_once(&r.m, 1).await, "s-1");
    assert_eq!(r.m.metrics().closed.churned, 0);
    tokio::time::sleep(ms(1)).await; // t=500
    assert_eq!(use_once(&r.m, 1).await, "s-2");
    assert_eq!(r.m.metrics().closed.churned, 1);
    settle().await;
    assert_quiescent(&r);
}

/// Defect 8: pool waiters are served in arrival order, and a newcomer does
/// not overtake them.
#[tokio::test(start_paused = true)]
async fn defect_8_pool_waiters_served_fifo() {
    let r = rig(pool(1, 60_000));
    let first = r.m.acquire(0).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    // Arrival order deliberately differs from VU id order.
    let arrivals = [5u64, 3, 9, 1, 7];
    let mut tasks = Vec::new();
    for (i, vu) in arrivals.into_iter().enumerate() {
        let (m, order) = (r.m.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let mut lease = m.acquire(vu).await.unwrap();
            order.lock().unwrap().push(vu);
            lease.call(&PING).await.unwrap();
            tokio::time::sleep(ms(10)).await;
            lease.release();
        }));
        let want = i as u64 + 1;
        until("waiter queued", || r.m.metrics().pool_waits == want).await;
    }
    first.release();
    let e = r.m.try_acquire(99).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PoolExhausted, "a newcomer overtook");
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), arrivals);
    let served: Vec<VuId> = r
        .sink
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::AcquireOk { .. }))
        .filter_map(|e| e.vu)
        .collect();
    let want: Vec<VuId> = [0].into_iter().chain(arrivals).map(VuId).collect();
    assert_eq!(served, want);
    let m = r.m.metrics();
    assert_eq!((m.total_created, m.acquire_wait.served), (1, 5));
    r.m.check_invariants().unwrap();
    assert_quiescent(&r);
}

/// Defect 9: per-request `close()` closes the sessions VUs hold; their leases
/// then fail with session-closed and send nothing.
#[tokio::test(start_paused = true)]
async fn defect_9_close_reaches_in_flight_per_request_sessions() {
    let r = rig(SessionConfig::with_mode(Mode::PerRequest));
    let mut a = r.m.acquire(1).await.unwrap();
    let mut b = r.m.acquire(2).await.unwrap();
    a.call(&PING).await.unwrap();
    b.call(&PING).await.unwrap();

    r.m.close().await; // returns once the DELETEs are done
    assert_eq!(sorted(r.server.deleted()), ids(&["s-1", "s-2"]));
    assert!(r.server.live().is_empty());
    let sent = r.server.operation_log().len();
    for lease in [&mut a, &mut b] {
        let e = lease.call(&PING).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionClosed);
    }
    assert_eq!(r.server.operation_log().len(), sent, "nothing sent");
    a.release();
    b.release();
    let e = r.m.acquire(3).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ManagerClosed);
    let m = r.m.metrics();
    assert_eq!((m.total_created, m.closed.shutdown), (2, 2), "{m:?}");
    assert_eq!(m.closed.total(), 2, "closed once each");
    settle().await;
    assert_quiescent(&r);
    assert_no_use_after_close(&r.sink);
}

/// Defect 10: locally made ids (stateless server) come from a per-manager
/// counter: every manager's first session is `local-1`, whatever else ran.
#[tokio::test(start_paused = true)]
async fn defect_10_local_ids_are_per_manager() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let server = ScriptedConnector::new(clock.clone());
    server.set_stateless(true);
    let start = |cfg| {
        ManagerBuilder::new(cfg)
            .clock(clock.clone())
            .start(server.clone())
            .unwrap()
    };
    let a = start(SessionConfig::with_mode(Mode::Reuse));
    assert_eq!(use_once(&a, 1).await, "local-1");
    assert_eq!(use_once(&a, 2).await, "local-2");
    let b = start(SessionConfig::with_mode(Mode::PerRequest));
    assert_eq!(use_once(&b, 1).await, "local-1", "b's own counter");
    assert_eq!(use_once(&b, 1).await, "local-2");
    assert_eq!(
        use_once(&a, 3).await,
        "local-3",
        "a's counter untouched by b"
    );
    // Ids follow neither the server (five sessions) nor the process.
    assert_eq!(server.initialized().len(), 5);
    for m in [&a, &b] {
        let x = m.metrics();
        assert_eq!(x.total_created, x.live() + x.closed.total());
    }
    assert_eq!(a.metrics().total_created + b.metrics().total_created, 5);
}

/// An acquire dropped while queued leaves no waiter behind; one dropped after
/// it was granted a session (but before it ran again) passes the session on
/// to the next waiter, or back to the pool.
#[tokio::test(start_paused = true)]
async fn cancel_safety_while_waiting() {
    let r = rig(pool(1, 10_000));
    let spawn_acquire = |vu: u64| {
        let m = r.m.clone();
        tokio::spawn(async move { m.acquire(vu).await })
    };
    let mgr = &r.m;
    let waits = |n: u64| move || mgr.metrics().pool_waits == n;

    // Dropped while queued: no ghost is left in the queue, and nothing is
    // granted to one.
    let held = r.m.acquire(1).await.unwrap();
    let w = spawn_acquire(2);
    until("2 queued", waits(1)).await;
    w.abort();
    assert!(w.await.unwrap_err().is_cancelled());
    let m = r.m.metrics();
    assert_eq!((m.acquire_wait.cancelled, m.pool_timeouts), (1, 0));
    r.m.check_invariants().unwrap();
    let w3 = spawn_acquire(3);
    until("3 queued", waits(2)).await;
    assert_eq!(
        last_wait_position(&r.sink),
        Some(0),
        "a ghost is queued ahead"
    );
    w3.abort();
    assert!(w3.await.unwrap_err().is_cancelled());
    held.release();
    assert_eq!(r.m.metrics().idle_sessions, 1, "not granted to a ghost");
    let t0 = r.m.clock().now();
    let held = r.m.acquire(4).await.unwrap();
    assert_eq!(held.id(), "s-1");
    assert_eq!(r.m.clock().now(), t0, "no wait");
    assert_eq!(r.m.metrics().pool_waits, 2);

    // Granted, then dropped before it ran: the next waiter gets the session.
    let w5 = spawn_acquire(5);
    until("5 queued", waits(3)).await;
    let w6 = spawn_acquire(6);
    until("6 queued", waits(4)).await;
    held.release(); // goes straight to waiter 5...
    assert_eq!(r.m.metrics().idle_sessions, 0, "granted to 5");
    w5.abort(); // ...whose future is dropped before it is polled again
    assert!(w5.await.unwrap_err().is_cancelled());
    let held = w6.await.unwrap().expect("6 gets the session 5 dropped");
    assert_eq!(held.id(), "s-1");

    // Same race with nobody else queued: the session goes back to the pool.
    let w7 = spawn_acquire(7);
    until("7 queued", waits(5)).await;
    held.release();
    assert_eq!(r.m.metrics().idle_sessions, 0, "granted to 7");
    w7.abort();
    assert!(w7.await.unwrap_err().is_cancelled());
    assert_eq!(r.m.metrics().idle_sessions, 1, "back in the pool");
    let t0 = r.m.clock().now();
    assert_eq!(use_once(&r.m, 8).await, "s-1");
    assert_eq!(r.m.clock().now(), t0, "no wait");

    let m = r.m.metrics();
    assert_eq!(m.acquire_wait.cancelled, 4);
    assert_eq!((m.pool_timeouts, m.total_created), (0, 1));
    r.m.check_invariants().unwrap();
    assert_quiescent(&r);
}

/// An acquire dropped while it creates a session frees its slot, and a
/// session the server had already initialized is closed (reason `failed`).
#[tokio::test(start_paused = true)]
async fn cancel_safety_while_creating() {
    // Dropped during `initialize`: the server never made the session.
    let r = rig(pool(1, 10_000));
    r.server.set_initialize_latency(ms(1000));
    let cancelled = tokio::time::timeout(ms(100), r.m.acquire(1)).await;
    assert!(cancelled.is_err());
    let kinds = r.sink.kinds();
    assert!(kinds.contains(&EventKind::AcquireCancelled { waiting: false }));
    assert!(kinds.contains(&EventKind::SlotFreed));
    r.m.check_invariants().unwrap();
    assert_eq!(r.m.metrics().total_created, 0);
    let lease = r.m.try_acquire(2).await.expect("the slot was freed");
    assert_eq!(lease.id(), "s-1");
    lease.release();
    assert_quiescent(&r);

    // Dropped during `notifications/initialized`: the server already holds
    // the session, so the client must close it.
    let r = rig(pool(1, 10_000));
    r.server.set_latency(ms(100)); // connect 0-100, initialize -200, notify -300
    let cancelled = tokio::time::timeout(ms(250), r.m.acquire(1)).await;
    assert!(cancelled.is_err());
    assert_eq!(r.server.initialized(), ids(&["s-1"]));
    let m = r.m.metrics();
    assert_eq!((m.total_created, m.closed.failed), (1, 1), "{m:?}");
    assert_eq!(m.total_created, m.live() + m.closed.total());
    assert_eq!((m.live(), m.active_sessions, m.idle_sessions), (0, 0, 0));
    tokio::time::sleep(ms(200)).await; // the DELETE takes latency too
    assert_eq!(r.server.deleted(), ids(&["s-1"]));
    assert!(r.server.live().is_empty(), "no half-made session survives");
    r.m.check_invariants().unwrap();
    let lease = r.m.try_acquire(2).await.expect("the slot was freed");
    assert_eq!(lease.id(), "s-2");
    lease.release();
    assert_quiescent(&r);
}
