//! The lease and mode laws (`mcp_sim::lease_laws`) on hand-written traces:
//! for each law, traces that break it (caught, named, at the first
//! violating event) and traces the library legitimately produces that must
//! stay clean; then a few seeds of the scenario of each mode, where every
//! law of that mode is checked and none breaks.

use serde_json::{json, Value};

use mcp_session::Mode;
use mcp_sim::audit::{audit, AuditConfig, AuditReport, LAWS};
use mcp_sim::lease_laws::LEASE_LAWS;
use mcp_sim::run::run;
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::trace::{Kind, Trace, TraceEvent};

const W: &str = "worker";

/// A manager event at clock `t`, by `vu` (0: none), on `session` ("": none).
fn m(t: u64, vu: u64, session: &str, event: &'static str, detail: Value) -> TraceEvent {
    let mut detail = match detail {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    };
    detail.insert("clock_ms".into(), t.into());
    let mut v =
        json!({"t_ms": t, "host": W, "source": "manager", "event": event, "detail": detail});
    if !session.is_empty() {
        v["session"] = json!(session);
    }
    if vu > 0 {
        v["vu"] = json!(vu);
    }
    let e: TraceEvent = serde_json::from_value(v.clone()).expect("a trace line");
    assert!(!matches!(e.kind, Kind::Other(_)), "no typed event: {v}");
    e
}

fn none() -> Value {
    Value::Null
}

fn ok(created: bool) -> Value {
    json!({ "created": created, "reconnect": false, "waited_ms": 0 })
}

fn closed(reason: &str) -> Value {
    json!({ "reason": reason })
}

/// `vu` acquires a new session `sid` at `t` (start, created, ok).
fn create(t: u64, vu: u64, sid: &str) -> Vec<TraceEvent> {
    vec![
        m(t, vu, "", "acquire_start", none()),
        m(t, vu, sid, "created", none()),
        m(t, vu, sid, "acquire_ok", ok(true)),
    ]
}

/// `vu` acquires a new pool session `sid` at `t` in a reserved slot.
fn create_in_slot(t: u64, vu: u64, sid: &str) -> Vec<TraceEvent> {
    vec![
        m(t, vu, "", "acquire_start", none()),
        m(t, vu, "", "slot_reserved", none()),
        m(t, vu, sid, "created", none()),
        m(t, vu, sid, "acquire_ok", ok(true)),
    ]
}

/// `vu` takes its kept session `sid` at `t` (start, ok).
fn take(t: u64, vu: u64, sid: &str) -> Vec<TraceEvent> {
    vec![
        m(t, vu, "", "acquire_start", none()),
        m(t, vu, sid, "acquire_ok", ok(false)),
    ]
}

fn op(t: u64, vu: u64, sid: &str) -> TraceEvent {
    m(t, vu, sid, "operation_start", json!({ "method": "ping" }))
}

fn release(t: u64, vu: u64, sid: &str) -> TraceEvent {
    m(t, vu, sid, "released", none())
}

fn close(t: u64, vu: u64, sid: &str, reason: &str) -> TraceEvent {
    m(t, vu, sid, "closed", closed(reason))
}

/// The events, flattened.
fn trace(parts: Vec<Vec<TraceEvent>>) -> Vec<TraceEvent> {
    parts.into_iter().flatten().collect()
}

fn cfg(mode: Mode) -> AuditConfig {
    AuditConfig {
        mode: Some(mode),
        slack_ms: 1,
        ..AuditConfig::default()
    }
}

fn with_ttl(mut c: AuditConfig, ttl: u64) -> AuditConfig {
    c.ttl_ms = Some(ttl);
    c
}

fn with_idle(mut c: AuditConfig, idle: u64) -> AuditConfig {
    c.idle_ms = Some(idle);
    c
}

fn pool(size: usize) -> AuditConfig {
    AuditConfig::pool(size, 1000)
}

fn churn_ops(n: u64) -> AuditConfig {
    AuditConfig {
        churn_ops: Some(n),
        ..cfg(Mode::Churn)
    }
}

fn churn_ms(ms: u64) -> AuditConfig {
    AuditConfig {
        churn_ms: Some(ms),
        ..cfg(Mode::Churn)
    }
}

fn run_audit(events: &[TraceEvent], cfg: &AuditConfig) -> AuditReport {
    audit(&Trace::new(events.to_vec()), cfg)
}

/// Asserts `events` break `law` first at `index`, and no law outside
/// `also`.
fn breaks_with(law: &str, events: &[TraceEvent], cfg: &AuditConfig, index: usize, also: &[&str]) {
    let r = run_audit(events, cfg);
    let v = r
        .violation(law)
        .unwrap_or_else(|| panic!("{law} not broken: {:#?}", r.violations));
    assert_eq!(v.event_index, index, "{law}: {v:#?}");
    assert_eq!(v.event, events[index], "{law}");
    assert!(!v.message.is_empty());
    let others: Vec<&str> = r
        .violations
        .iter()
        .map(|v| v.law.as_str())
        .filter(|l| *l != law && !also.contains(l))
        .collect();
    assert!(others.is_empty(), "{law}: also broken: {:#?}", r.violations);
}

fn breaks(law: &str, events: &[TraceEvent], cfg: &AuditConfig, index: usize) {
    breaks_with(law, events, cfg, index, &[]);
}

fn clean(events: &[TraceEvent], cfg: &AuditConfig) -> AuditReport {
    let r = run_audit(events, cfg);
    assert!(r.is_clean(), "{:#?}", r.violations);
    r
}

#[test]
fn the_lease_laws_are_laws_of_the_audit() {
    for law in LEASE_LAWS {
        assert!(LAWS.contains(&law), "{law} is not in LAWS");
    }
}

// ---------------------------------------------------------- no_stale_handout

/// Reuse with a 100 ms idle limit: vu 1 made s1 at 0, released it at 10
/// (idle deadline 110), and acquires again at `at`.
fn reuse_idle_at(at: u64) -> Vec<TraceEvent> {
    trace(vec![
        create(0, 1, "s1"),
        vec![op(1, 1, "s1"), release(10, 1, "s1")],
        take(at, 1, "s1"),
    ])
}

#[test]
fn no_stale_handout_at_the_idle_deadline() {
    let c = with_idle(cfg(Mode::Reuse), 100);
    breaks("no_stale_handout", &reuse_idle_at(110), &c, 6);
    breaks("no_stale_handout", &reuse_idle_at(500), &c, 6);
    // One millisecond before it, the session is still fresh.
    clean(&reuse_idle_at(109), &c);
    // At the deadline, the acquire closes it and makes a new one.
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![release(10, 1, "s1")],
        vec![
            m(110, 1, "", "acquire_start", none()),
            close(110, 1, "s1", "idle"),
            m(110, 1, "s2", "created", none()),
            m(110, 1, "s2", "acquire_ok", ok(true)),
        ],
    ]);
    clean(&t, &c);
}

#[test]
fn no_stale_handout_at_the_ttl_deadline_in_the_pool() {
    // Pool of two, TTL 100: s1 made at 0, released at 50, taken at 100.
    let c = with_ttl(pool(2), 100);
    let at = |t| {
        trace(vec![
            create_in_slot(0, 1, "s1"),
            vec![release(50, 1, "s1")],
            take(t, 2, "s1"),
        ])
    };
    breaks("no_stale_handout", &at(100), &c, 6);
    clean(&at(99), &c);
}

#[test]
fn no_stale_handout_a_grant_past_its_ttl() {
    // Pool of one, TTL 100: vu 2 waits; s1 is released at 100, past its
    // TTL, and granted to vu 2 instead of being closed.
    let c = with_ttl(pool(1), 100);
    let t = trace(vec![
        create_in_slot(0, 1, "s1"),
        vec![
            m(5, 2, "", "acquire_start", none()),
            m(
                5,
                2,
                "",
                "acquire_wait",
                json!({ "position": 0, "deadline_ms": 1005 }),
            ),
            release(100, 1, "s1"),
            m(100, 2, "s1", "waiter_granted", json!({ "slot": false })),
            m(100, 2, "s1", "acquire_ok", ok(false)),
        ],
    ]);
    // Broken at the release (kept past TTL), and at the grant.
    breaks("no_stale_handout", &t, &c, 6);
    let r = run_audit(&t[..8], &c);
    assert!(r.violation("no_stale_handout").is_some());
    // Closed at the release, its slot passed on: clean.
    let t = trace(vec![
        create_in_slot(0, 1, "s1"),
        vec![
            m(5, 2, "", "acquire_start", none()),
            m(
                5,
                2,
                "",
                "acquire_wait",
                json!({ "position": 0, "deadline_ms": 1005 }),
            ),
            release(100, 1, "s1"),
            close(100, 1, "s1", "ttl"),
            m(100, 2, "", "waiter_granted", json!({ "slot": true })),
            m(101, 2, "s2", "created", none()),
            m(101, 2, "s2", "acquire_ok", ok(true)),
        ],
    ]);
    let r = clean(&t, &c);
    assert!(r.checks["no_stale_handout"] > 0);
}

#[test]
fn no_stale_handout_a_session_past_ttl_kept_at_release() {
    let c = with_ttl(cfg(Mode::Reuse), 100);
    let used = trace(vec![create(0, 1, "s1"), vec![op(1, 1, "s1")]]);
    let mut kept = used.clone();
    kept.push(release(100, 1, "s1"));
    kept.push(m(120, 1, "", "acquire_start", none()));
    // (The trace ends with that acquire open.)
    let open = ["acquire_ends_by_deadline"];
    breaks_with("no_stale_handout", &kept, &c, 4, &open);
    let mut closed_then = used;
    closed_then.push(release(100, 1, "s1"));
    closed_then.push(close(100, 1, "s1", "ttl"));
    let r = clean(&closed_then, &c);
    assert_eq!(r.goals["ttl_in_use_closed_on_release"], 1);
}

// ----------------------------------------------------- no_close_under_holder

#[test]
fn no_close_under_holder_the_evictor_closes_a_leased_session() {
    let c = with_idle(cfg(Mode::Reuse), 100);
    // s1 is released at 10 and taken again at 50; the evictor closes it
    // at 110 (its old idle deadline) while vu 1 holds it.
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![release(10, 1, "s1")],
        take(50, 1, "s1"),
        vec![close(110, 0, "s1", "idle")],
    ]);
    breaks_with("no_close_under_holder", &t, &c, 6, &["close_reason_exact"]);
    // Past TTL while in use: closed only at the release.
    let c = with_ttl(cfg(Mode::Reuse), 100);
    let t = trace(vec![create(0, 1, "s1"), vec![close(100, 0, "s1", "ttl")]]);
    breaks_with("no_close_under_holder", &t, &c, 3, &["close_reason_exact"]);
}

#[test]
fn no_close_under_holder_allows_shutdown_and_the_holders_own_return() {
    let c = with_idle(cfg(Mode::Reuse), 100);
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![
            m(5, 0, "", "manager_closing", none()),
            close(5, 0, "s1", "shutdown"),
            release(6, 1, "s1"),
        ],
    ]);
    clean(&t, &c);
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![
            m(5, 1, "s1", "invalidated", none()),
            close(5, 1, "s1", "invalidated"),
        ],
    ]);
    clean(&t, &c);
    // A creation that fails after the server initialized the session.
    let t = vec![
        m(0, 1, "", "acquire_start", none()),
        m(1, 1, "s1", "created", none()),
        close(2, 1, "s1", "failed"),
        m(
            2,
            1,
            "s1",
            "acquire_error",
            json!({ "error": "initialized_notification" }),
        ),
    ];
    clean(&t, &c);
}

// ------------------------------------------------------ no_grant_to_departed

/// Pool of one: vu 1 holds s1; vu 2 waits from 5 and its acquire ends at
/// 20 (`end`); vu 1 releases at 30 and s1 is granted to vu 2.
fn grant_after(end: TraceEvent) -> Vec<TraceEvent> {
    trace(vec![
        create_in_slot(0, 1, "s1"),
        vec![
            m(5, 2, "", "acquire_start", none()),
            m(
                5,
                2,
                "",
                "acquire_wait",
                json!({ "position": 0, "deadline_ms": 1005 }),
            ),
            end,
            release(30, 1, "s1"),
            m(30, 2, "s1", "waiter_granted", json!({ "slot": false })),
        ],
    ])
}

#[test]
fn no_grant_to_departed_after_cancel_timeout_or_error() {
    let c = pool(1);
    // The model's queue lost vu 2 too: `fifo` sees a grant to nobody queued.
    for end in [
        m(20, 2, "", "acquire_cancelled", json!({ "waiting": true })),
        m(20, 2, "", "acquire_timeout", json!({ "waited_ms": 15 })),
        m(20, 2, "", "acquire_error", json!({ "error": "connect" })),
    ] {
        breaks_with(
            "no_grant_to_departed",
            &grant_after(end),
            &c,
            8,
            &["fifo", "acquire_ends_by_deadline"],
        );
    }
    // A grant to a VU that never waited.
    let t = trace(vec![
        create_in_slot(0, 1, "s1"),
        vec![
            release(30, 1, "s1"),
            m(30, 2, "s1", "waiter_granted", json!({ "slot": false })),
        ],
    ]);
    breaks_with("no_grant_to_departed", &t, &c, 5, &["fifo"]);
}

#[test]
fn no_grant_to_departed_a_grant_to_the_queued_waiter() {
    let c = pool(1);
    let mut t = grant_after(op(20, 1, "s1"));
    t.push(m(31, 2, "s1", "acquire_ok", ok(false)));
    let r = clean(&t, &c);
    assert_eq!(r.checks["no_grant_to_departed"], 1);
}

// ----------------------------------------------------------- one_lease_per_vu

#[test]
fn one_lease_per_vu_busy_without_a_lease() {
    let c = cfg(Mode::Reuse);
    // Invalidated and closed, but vu 1's next acquire is refused as busy:
    // its session is never replaced.
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![
            m(5, 1, "s1", "invalidated", none()),
            close(5, 1, "s1", "invalidated"),
            m(6, 1, "", "acquire_start", none()),
            m(6, 1, "", "acquire_error", json!({ "error": "vu_busy" })),
        ],
    ]);
    breaks("one_lease_per_vu", &t, &c, 6);
    // Busy while it holds s1: right.
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![
            m(6, 1, "", "acquire_start", none()),
            m(6, 1, "", "acquire_error", json!({ "error": "vu_busy" })),
        ],
    ]);
    clean(&t, &c);
}

#[test]
fn one_lease_per_vu_two_leases() {
    let c = pool(2);
    let t = trace(vec![create_in_slot(0, 1, "s1"), create_in_slot(1, 1, "s2")]);
    breaks("one_lease_per_vu", &t, &c, 7);
}

// ------------------------------------------------------------ pool_idle_first

/// Pool of two: s1 and s2 made, released at 5 and 6; vu 3 acquires at 7.
fn two_idle() -> Vec<TraceEvent> {
    trace(vec![
        create_in_slot(0, 1, "s1"),
        create_in_slot(1, 2, "s2"),
        vec![release(5, 1, "s1"), release(6, 2, "s2")],
    ])
}

#[test]
fn pool_idle_first_the_oldest_idle_session() {
    let c = pool(2);
    let mut younger = two_idle();
    younger.extend(take(7, 3, "s2"));
    breaks("pool_idle_first", &younger, &c, 11);
    let mut oldest = two_idle();
    oldest.extend(take(7, 3, "s1"));
    clean(&oldest, &c);
}

#[test]
fn pool_idle_first_no_slot_while_a_session_idles() {
    let c = pool(3);
    let mut t = two_idle();
    t.extend(create_in_slot(7, 3, "s3"));
    breaks("pool_idle_first", &t, &c, 11);
    // The idle ones found expired at that acquire are closed first.
    let c = with_idle(pool(3), 100);
    let mut t = two_idle();
    t.extend(vec![
        m(106, 3, "", "acquire_start", none()),
        close(106, 0, "s1", "idle"),
        close(106, 0, "s2", "idle"),
        m(106, 3, "", "slot_reserved", none()),
        m(106, 3, "s3", "created", none()),
        m(106, 3, "s3", "acquire_ok", ok(true)),
    ]);
    clean(&t, &c);
}

// --------------------------------------------------- reuse_one_session_per_vu

#[test]
fn reuse_one_session_per_vu_a_new_session_while_the_old_idles() {
    let c = cfg(Mode::Reuse);
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![release(5, 1, "s1")],
        create(6, 1, "s2"),
    ]);
    breaks("reuse_one_session_per_vu", &t, &c, 6);
}

#[test]
fn reuse_one_session_per_vu_another_vus_session() {
    let c = cfg(Mode::Reuse);
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![release(5, 1, "s1")],
        take(6, 2, "s1"),
    ]);
    breaks("reuse_one_session_per_vu", &t, &c, 5);
}

#[test]
fn reuse_one_session_per_vu_kept_then_replaced_after_invalidation() {
    let c = cfg(Mode::Reuse);
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![release(5, 1, "s1")],
        take(6, 1, "s1"),
        vec![
            m(7, 1, "s1", "invalidated", none()),
            close(7, 1, "s1", "invalidated"),
            m(8, 1, "", "acquire_start", none()),
            m(8, 1, "s2", "created", none()),
            m(
                8,
                1,
                "s2",
                "acquire_ok",
                json!({ "created": true, "reconnect": true, "waited_ms": 0 }),
            ),
        ],
    ]);
    let r = clean(&t, &c);
    assert_eq!(r.checks["reuse_one_session_per_vu"], 3);
}

// ---------------------------------------------------------------- churn_exact

/// Churn after 2 operations: s1 made, two operations, released at 5.
fn churn_two_ops() -> Vec<TraceEvent> {
    trace(vec![
        create(0, 1, "s1"),
        vec![op(1, 1, "s1"), op(2, 1, "s1"), release(5, 1, "s1")],
    ])
}

#[test]
fn churn_exact_not_one_operation_late() {
    let c = churn_ops(2);
    let mut late = churn_two_ops();
    late.extend(take(6, 1, "s1"));
    breaks("churn_exact", &late, &c, 5);
    let mut exact = churn_two_ops();
    exact.push(close(5, 1, "s1", "churned"));
    let r = clean(&exact, &c);
    assert_eq!(r.goals["churn_by_ops"], 1);
}

#[test]
fn churn_exact_not_before_its_interval() {
    let c = churn_ops(2);
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![
            op(1, 1, "s1"),
            release(5, 1, "s1"),
            close(5, 1, "s1", "churned"),
        ],
    ]);
    breaks_with("close_reason_exact", &t, &c, 5, &["closed_split_by_reason"]);
}

#[test]
fn churn_exact_by_time_at_the_acquire() {
    // Churn at 100 ms of age: released at 50, kept; the acquire at 100
    // must retire it.
    let c = churn_ms(100);
    let base = trace(vec![create(0, 1, "s1"), vec![release(50, 1, "s1")]]);
    let mut late = base.clone();
    late.extend(take(100, 1, "s1"));
    breaks("churn_exact", &late, &c, 5);
    let mut early = base.clone();
    early.extend(take(99, 1, "s1"));
    clean(&early, &c);
    let mut exact = base;
    exact.extend(vec![
        m(100, 1, "", "acquire_start", none()),
        close(100, 1, "s1", "churned"),
        m(100, 1, "s2", "created", none()),
        m(100, 1, "s2", "acquire_ok", ok(true)),
    ]);
    let r = clean(&exact, &c);
    assert_eq!(r.goals["churn_by_time"], 1);
}

// ------------------------------------------------ per_request_closes_on_release

#[test]
fn per_request_closes_on_release_right_then() {
    let c = cfg(Mode::PerRequest);
    let used = trace(vec![create(0, 1, "s1"), vec![op(1, 1, "s1")]]);
    let mut kept = used.clone();
    kept.push(release(5, 1, "s1"));
    kept.push(m(6, 1, "", "acquire_start", none()));
    let open = ["acquire_ends_by_deadline"];
    breaks_with("per_request_closes_on_release", &kept, &c, 4, &open);
    let mut reused = used.clone();
    reused.push(release(5, 1, "s1"));
    reused.extend(take(6, 1, "s1"));
    breaks("per_request_closes_on_release", &reused, &c, 4);
    let mut closed_then = used;
    closed_then.push(release(5, 1, "s1"));
    closed_then.push(close(5, 1, "s1", "released"));
    clean(&closed_then, &c);
}

// ---------------------------------------------------- no_session_after_close

#[test]
fn no_session_after_close_for_a_late_acquire() {
    let c = cfg(Mode::Reuse);
    let closing = vec![m(5, 0, "", "manager_closing", none())];
    // An acquire that starts after the close gets a session.
    let t = trace(vec![closing.clone(), create(6, 1, "s1")]);
    breaks_with(
        "no_session_after_close",
        &t,
        &c,
        2,
        &["closed_split_by_reason"],
    );
    // ... or fails with another error.
    let t = trace(vec![
        closing.clone(),
        vec![
            m(6, 1, "", "acquire_start", none()),
            m(6, 1, "", "acquire_error", json!({ "error": "connect" })),
        ],
    ]);
    breaks("no_session_after_close", &t, &c, 2);
    // Refused as closed: right.
    let t = trace(vec![
        closing,
        vec![
            m(6, 1, "", "acquire_start", none()),
            m(
                6,
                1,
                "",
                "acquire_error",
                json!({ "error": "manager_closed" }),
            ),
        ],
    ]);
    let r = clean(&t, &c);
    assert_eq!(r.checks["no_session_after_close"], 1);
}

#[test]
fn no_session_after_close_a_creation_under_way_is_closed_at_once() {
    let c = cfg(Mode::Reuse);
    let base = vec![
        m(0, 1, "", "acquire_start", none()),
        m(5, 0, "", "manager_closing", none()),
        m(6, 1, "s1", "created", none()),
    ];
    let mut kept = base.clone();
    kept.push(m(6, 1, "", "manager_closed", none()));
    breaks_with(
        "no_session_after_close",
        &kept,
        &c,
        2,
        &["closed_split_by_reason", "acquire_ends_by_deadline"],
    );
    let mut closed_then = base;
    closed_then.push(close(6, 1, "s1", "shutdown"));
    closed_then.push(m(
        6,
        1,
        "s1",
        "acquire_error",
        json!({ "error": "manager_closed" }),
    ));
    clean(&closed_then, &c);
}

// --------------------------------------------------------- close_reason_exact

#[test]
fn close_reason_exact_ttl_wins_over_idle() {
    // TTL 100, idle 50: released at 60, both due at 110.
    let c = with_idle(with_ttl(cfg(Mode::Reuse), 100), 50);
    let base = trace(vec![create(0, 1, "s1"), vec![release(60, 1, "s1")]]);
    let mut idle = base.clone();
    idle.push(close(110, 0, "s1", "idle"));
    breaks("close_reason_exact", &idle, &c, 4);
    let mut ttl = base.clone();
    ttl.push(close(110, 0, "s1", "ttl"));
    clean(&ttl, &c);
    // At 100 only TTL is due; idle (at 110) is not.
    let mut early = base;
    early.push(close(100, 0, "s1", "idle"));
    breaks("close_reason_exact", &early, &c, 4);
}

#[test]
fn close_reason_exact_a_session_found_expired_at_acquire() {
    // TTL 100, idle 1000: vu 1's acquire at 100 finds s1 past its TTL and
    // must say so (not `idle`, not `churned`, not `invalidated`).
    let c = with_idle(with_ttl(cfg(Mode::Reuse), 100), 1000);
    let at = |reason| {
        trace(vec![
            create(0, 1, "s1"),
            vec![
                release(10, 1, "s1"),
                m(100, 1, "", "acquire_start", none()),
                close(100, 1, "s1", reason),
                m(100, 1, "s2", "created", none()),
                m(100, 1, "s2", "acquire_ok", ok(true)),
            ],
        ])
    };
    for wrong in ["idle", "churned", "invalidated", "released", "dropped"] {
        breaks("close_reason_exact", &at(wrong), &c, 5);
    }
    clean(&at("ttl"), &c);
}

#[test]
fn close_reason_exact_structural_reasons() {
    let c = cfg(Mode::Reuse);
    let idle = trace(vec![create(0, 1, "s1"), vec![release(5, 1, "s1")]]);
    // Shutdown before the manager's close.
    let mut t = idle.clone();
    t.push(close(6, 0, "s1", "shutdown"));
    breaks("close_reason_exact", &t, &c, 4);
    // Failed after it was handed out.
    let mut t = idle.clone();
    t.push(close(6, 0, "s1", "failed"));
    breaks("close_reason_exact", &t, &c, 4);
    // Dropped without a dropped lease.
    let mut t = idle.clone();
    t.push(close(6, 0, "s1", "dropped"));
    breaks("close_reason_exact", &t, &c, 4);
    // An unknown reason.
    let mut t = idle;
    t.push(close(6, 0, "s1", "bored"));
    breaks_with(
        "close_reason_exact",
        &t,
        &c,
        4,
        &["metrics_match_trace", "closed_split_by_reason"],
    );
    // A dropped lease, closed as dropped.
    let t = trace(vec![
        create(0, 1, "s1"),
        vec![
            m(5, 1, "s1", "lease_dropped", none()),
            close(5, 1, "s1", "dropped"),
        ],
    ]);
    clean(&t, &c);
}

// ----------------------------------------------------------- seeded runs

/// A few seeds of the scenario of each mode: clean, and every law of that
/// mode checked.
#[test]
fn each_modes_scenario_checks_its_laws() {
    let cases: [(&str, Mode, &[&str]); 4] = [
        (
            "reuse",
            Mode::Reuse,
            &[
                "no_stale_handout",
                "no_close_under_holder",
                "one_lease_per_vu",
                "reuse_one_session_per_vu",
                "close_reason_exact",
            ],
        ),
        (
            "per_request",
            Mode::PerRequest,
            &["per_request_closes_on_release", "close_reason_exact"],
        ),
        (
            "pool",
            Mode::Pool,
            &[
                "no_stale_handout",
                "no_grant_to_departed",
                "pool_idle_first",
                "close_reason_exact",
            ],
        ),
        (
            "churn",
            Mode::Churn,
            &[
                "churn_exact",
                "reuse_one_session_per_vu",
                "no_stale_handout",
            ],
        ),
    ];
    for (name, mode, laws) in cases {
        let scenario = Scenario::by_name(name).expect("a built-in scenario");
        let mut checks = std::collections::BTreeMap::new();
        for seed in 0..3 {
            let schedule = Schedule::generate(&scenario, seed);
            assert_eq!(schedule.session.mode, mode, "{name}");
            let report = run(&schedule, name, seed);
            assert!(
                report.violations.is_empty(),
                "{name} seed {seed}: {:#?}",
                report.violations
            );
            for (law, n) in report.checks {
                *checks.entry(law).or_insert(0u64) += n;
            }
        }
        for law in laws {
            assert!(checks[*law] > 0, "{name}: {law} never checked");
        }
    }
}
