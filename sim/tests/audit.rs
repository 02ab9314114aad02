//! The audit's laws on hand-written traces: one clean trace, and traces
//! breaking each law (every pool law several ways, each caught, named, at
//! its first violating event), traces the pool may legitimately produce
//! that must stay clean, the goals that need the manager's config or the
//! fault events, the JSONL round trip (the traces written with a
//! [`TraceBuilder`]), and one seeded topology world with
//! trace recorders: every law holds, goals are reported, and the same seed
//! gives the same trace hash.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use mcp_session::transport::{HttpConfig, Operation};
use mcp_session::{Mode, SessionConfig, VersionPolicy};
use mcp_sim::audit::{audit, AuditConfig, AuditReport, GOALS, LAWS, RUN_LAWS};
use mcp_sim::faults::{Action, Applied, FaultEvent, FaultPlan, Scheduled};
use mcp_sim::server::{ServerConfig, ServerEra, ServerEvent};
use mcp_sim::topology::{Latency, Topology, Vu, WorkerSpec};
use mcp_sim::trace::{Kind, ManagerEvent, Source, Trace, TraceBuilder, TraceEvent, TraceRecorder};

const W: &str = "worker";
const S: &str = "server";

/// The laws `mcp_sim::wire_laws` checks.
const WIRE_LAWS: [&str; 7] = [
    "modern_envelope_agrees",
    "no_legacy_wire_after_modern",
    "one_retry_per_refusal",
    "legacy_version_after_fallback",
    "mrtr_retry_exact",
    "discover_fresh",
    "era_counters_match",
];

/// Lease laws (`mcp_sim::lease_laws`) the pool traces here never reach:
/// those of the other modes, and the one about acquires during the
/// manager's close; `tests/lease_laws.rs` checks them.
const OTHER_MODE_LAWS: [&str; 4] = [
    "reuse_one_session_per_vu",
    "churn_exact",
    "per_request_closes_on_release",
    "no_session_after_close",
];

/// A trace from time `t` on (worker `W`, server `S`, no VU yet).
fn at(t: u64) -> TraceBuilder {
    let mut b = TraceBuilder::new();
    b.at(t);
    b
}

/// The last event `b` wrote: one event, to put in place of another.
fn one(b: &TraceBuilder) -> TraceEvent {
    b.last().expect("an event")
}

/// Pool of one: vu 1 creates s1 and uses it, vu 2 waits, is granted s1 at
/// the release and gets it; the manager closes, the server sees the
/// DELETE.
fn clean() -> Vec<TraceEvent> {
    let mut b = TraceBuilder::new();
    b.at(0).vu(1).acquire_start().slot_reserved();
    b.at(1).session_created("s1");
    b.at(2).created("s1").acquire_created("s1");
    b.at(3).initialized("s1");
    b.at(4).vu(2).acquire_start().acquire_wait(1004);
    b.at(5).vu(1).operation_start("s1", "ping");
    b.at(6).operation_end("s1", "ping", None);
    b.at(7).released("s1");
    b.vu(2).waiter_granted("s1").acquire_ok("s1");
    b.at(8).released("s1");
    b.at(9).no_vu().manager_closing().closed("s1", "shutdown");
    b.at(10).deleted("s1");
    b.at(11).manager_closed();
    b.build()
}

/// An `era_probed` of the stateless era's revision: `verdict`, no reprobe
/// reason, and what the server answered.
fn probed(verdict: &str, answer: &str) -> ManagerEvent {
    ManagerEvent::EraProbed {
        version: "2026-07-28".into(),
        verdict: verdict.to_owned().into(),
        reprobe: None,
        answer: Some(answer.to_owned()),
        ttl_ms: None,
    }
}

/// vu 1's `era_probed` at time 0.
fn probe_event(event: ManagerEvent) -> TraceEvent {
    one(at(0).vu(1).manager(None, event))
}

/// [`clean`] made by an auto-era manager: vu 1's `server/discover` probe
/// was answered as a legacy server answers it (event 1), and it fell back
/// to `initialize`.
fn clean_auto() -> Vec<TraceEvent> {
    let mut events = clean();
    let answer =
        "HTTP 400 with JSON-RPC error -32000 \"Bad Request: No valid session ID provided\"";
    events.insert(1, probe_event(probed("legacy", answer)));
    events
}

fn pool1() -> AuditConfig {
    AuditConfig::pool(1, 1000)
}

fn pool2() -> AuditConfig {
    AuditConfig::pool(2, 1000)
}

fn run(events: &[TraceEvent], cfg: &AuditConfig) -> AuditReport {
    audit(&Trace::new(events.to_vec()), cfg)
}

/// Asserts `events` break `law` first at `index`, with a message, and
/// break no law outside `also`.
fn breaks_with(law: &str, events: Vec<TraceEvent>, cfg: &AuditConfig, index: usize, also: &[&str]) {
    let r = run(&events, cfg);
    let v = r
        .violation(law)
        .unwrap_or_else(|| panic!("{law} not broken: {:#?}", r.violations));
    assert_eq!(v.event_index, index, "{law}: {v:#?}");
    assert_eq!(v.event, events[index], "{law}");
    assert!(!v.context.is_empty());
    assert!(!v.message.is_empty());
    let others: Vec<&str> = r
        .violations
        .iter()
        .map(|v| v.law.as_str())
        .filter(|l| *l != law && !also.contains(l))
        .collect();
    assert!(others.is_empty(), "{law}: also broken: {:#?}", r.violations);
}

/// Asserts `events` break `law` (and only it) first at `index`.
fn breaks(law: &str, events: Vec<TraceEvent>, cfg: &AuditConfig, index: usize) {
    breaks_with(law, events, cfg, index, &[]);
}

fn assert_clean(events: &[TraceEvent], cfg: &AuditConfig) -> AuditReport {
    let r = run(events, cfg);
    assert!(r.is_clean(), "{:#?}", r.violations);
    r
}

/// The metrics a manager reports for [`clean`]: one session created and
/// closed on shutdown, one wait served.
fn clean_metrics() -> mcp_session::SessionMetrics {
    let mut metrics = mcp_session::SessionMetrics {
        total_created: 1,
        pool_waits: 1,
        ..Default::default()
    };
    metrics.acquire_wait.count = 1;
    metrics.acquire_wait.served = 1;
    metrics.closed.shutdown = 1;
    // A legacy-era session.
    metrics.eras.legacy.created = 1;
    metrics
}

#[test]
fn clean_trace_passes_every_law() {
    let cfg = pool1().with_metrics([(W.to_owned(), clean_metrics())].into());
    let r = assert_clean(&clean(), &cfg);
    // The era law is checked where an auto-era manager falls back.
    let mut auto_metrics = clean_metrics();
    auto_metrics.eras.discover_probes = 1;
    auto_metrics.eras.fallbacks_to_legacy = 1;
    let auto_cfg = pool1().with_metrics([(W.to_owned(), auto_metrics)].into());
    let auto = assert_clean(&clean_auto(), &auto_cfg);
    assert_eq!(auto.goals["fell_back_to_legacy"], 1);
    // The laws of the wire log and the cause laws have hand-made traces
    // of their own (`tests/wire_laws.rs`, `tests/cause_laws.rs`, which
    // hold each of them checked).
    for law in LAWS.into_iter().filter(|l| {
        !WIRE_LAWS.contains(l)
            && !mcp_sim::cause_laws::LAWS.contains(l)
            && !OTHER_MODE_LAWS.contains(l)
            && !RUN_LAWS.contains(l)
    }) {
        assert!(
            r.checks[law] + auto.checks[law] > 0,
            "{law} never checked: {:?}",
            r.checks
        );
    }
    assert_eq!(r.goals["pool_wait"], 1);
    assert_eq!(r.goals["waiter_served_after_release"], 1);
    assert_eq!(r.closed[W]["shutdown"], 1);
    assert_eq!(r.goals.len(), GOALS.len());
    let names: BTreeSet<&str> = GOALS.iter().copied().collect();
    assert_eq!(names.len(), GOALS.len(), "goal names are unique");
}

// ------------------------------------------------------------ pool laws --

/// vu 1 holds the pool's only session s1 (events 0-3).
fn holding() -> TraceBuilder {
    let mut b = TraceBuilder::new();
    b.at(0).vu(1).acquire_start().slot_reserved();
    b.at(2).created("s1").acquire_created("s1");
    b
}

/// [`holding`], and vu 2 queued at 4 until 1004 (events 4-5).
fn holding_and_waiting() -> TraceBuilder {
    let mut b = holding();
    b.at(4).vu(2).acquire_start().acquire_wait(1004);
    b
}

/// [`holding_and_waiting`], and vu 3 queued at 5 until 1005 (events 6-7).
fn two_waiting() -> TraceBuilder {
    let mut b = holding_and_waiting();
    b.at(5).vu(3).acquire_start().acquire_wait(1005);
    b
}

#[test]
fn pool_bound_a_second_slot_reserved_in_a_full_pool() {
    let mut t = holding();
    t.at(4).vu(2).acquire_start().slot_reserved();
    breaks_with(
        "pool_bound",
        t.build(),
        &pool1(),
        5,
        &["acquire_ends_by_deadline"],
    );
}

#[test]
fn pool_bound_a_slot_granted_to_a_waiter_in_a_full_pool() {
    let mut t = holding_and_waiting();
    // Nothing was freed, yet the waiter is granted a slot.
    t.at(5).waiter_granted_slot();
    breaks_with(
        "pool_bound",
        t.build(),
        &pool1(),
        6,
        &["acquire_ends_by_deadline"],
    );
}

#[test]
fn pool_bound_a_session_created_outside_any_slot() {
    let mut t = holding();
    t.at(4).released("s1");
    t.at(5).vu(2).acquire_start();
    // No slot_reserved: s2 is created in no slot (and s1 is idle).
    t.at(6).created("s2");
    breaks_with(
        "pool_bound",
        t.build(),
        &pool1(),
        6,
        &["acquire_ends_by_deadline"],
    );
}

#[test]
fn pool_bound_a_slot_freed_that_was_not_held() {
    let mut t = holding();
    t.at(4)
        .vu(2)
        .acquire_start()
        .slot_freed()
        .acquire_error("connect");
    breaks("pool_bound", t.build(), &pool1(), 5);
}

#[test]
fn pool_bound_an_acquire_that_ends_holding_its_grant() {
    let mut t = holding_and_waiting();
    t.at(7).vu(1).invalidated("s1").closed("s1", "invalidated");
    t.vu(2).waiter_granted_slot();
    // It times out all the same: the slot it was granted is lost.
    t.at(1004).acquire_timeout(1000);
    breaks("pool_bound", t.build(), &pool1(), 9);
}

#[test]
fn one_holder_a_session_handed_out_twice() {
    let mut t = clean();
    // The release is gone: vu 2 gets s1 while vu 1 holds it (and it was
    // granted while held).
    t.remove(10);
    breaks_with("one_holder", t, &pool1(), 10, &["closed_split_by_reason"]);
}

#[test]
fn one_holder_an_idle_session_taken_by_two() {
    let mut t = holding();
    t.at(4).released("s1");
    t.at(5).vu(2).acquire_start().acquire_ok("s1");
    t.at(6).vu(3).acquire_start().acquire_ok("s1");
    breaks("one_holder", t.build(), &pool2(), 8);
}

#[test]
fn one_holder_a_give_back_by_another_vu() {
    let mut t = holding();
    t.at(4).vu(2).released("s1");
    breaks("one_holder", t.build(), &pool1(), 4);
}

#[test]
fn fifo_a_later_waiter_granted_first() {
    let mut t = two_waiting();
    t.at(7).vu(1).released("s1");
    t.vu(3).waiter_granted("s1").acquire_ok("s1");
    t.at(1004).vu(2).acquire_timeout(1000);
    breaks("fifo", t.build(), &pool1(), 9);
}

/// The same order is fine when the earlier waiter's deadline had come: the
/// pool had dropped it (it times out when its task runs).
#[test]
fn fifo_passing_a_waiter_whose_deadline_came_is_fine() {
    let mut t = two_waiting();
    t.at(1004).vu(1).released("s1");
    t.vu(3).waiter_granted("s1").acquire_ok("s1");
    t.vu(2).acquire_timeout(1000);
    assert_clean(&t.build(), &pool1());
}

/// ... but not if the passed waiter is then served after all.
#[test]
fn fifo_a_passed_waiter_served_later() {
    let mut t = two_waiting();
    t.at(1004).vu(1).released("s1");
    t.vu(3).waiter_granted("s1").acquire_ok("s1");
    t.at(1005).released("s1");
    t.vu(2).waiter_granted("s1").acquire_ok("s1");
    breaks("fifo", t.build(), &pool1(), 9);
}

#[test]
fn fifo_an_acquire_overtakes_the_queue() {
    let mut t = holding_and_waiting();
    // The release keeps s1 idle instead of granting it, and a newcomer
    // takes it ahead of the waiter.
    t.at(7).vu(1).released("s1");
    t.at(8).vu(3).acquire_start().acquire_ok("s1");
    t.at(1004).vu(2).acquire_timeout(1000);
    // The capacity law sees the idle session first (at the release).
    breaks_with("fifo", t.build(), &pool1(), 8, &["no_wait_with_capacity"]);
}

#[test]
fn fifo_a_waiter_served_without_a_grant() {
    let mut t = holding_and_waiting();
    t.at(7).vu(1).released("s1");
    t.vu(2).acquire_ok("s1");
    breaks_with("fifo", t.build(), &pool1(), 7, &["no_wait_with_capacity"]);
}

#[test]
fn fifo_a_grant_to_an_acquire_that_is_not_queued() {
    let mut t = holding();
    t.at(7).released("s1");
    t.vu(2).waiter_granted("s1");
    // vu 2 has no acquire: a grant to a departed waiter as well.
    breaks_with("fifo", t.build(), &pool1(), 5, &["no_grant_to_departed"]);
}

#[test]
fn no_wait_with_capacity_waiting_beside_a_free_slot() {
    let t = clean()[..8].to_vec();
    breaks_with(
        "no_wait_with_capacity",
        t,
        &pool2(),
        7,
        &["acquire_ends_by_deadline"],
    );
}

#[test]
fn no_wait_with_capacity_waiting_beside_an_idle_session() {
    let mut t = holding_and_waiting();
    // Released with a waiter queued, and not granted: idle while it waits.
    t.at(7).vu(1).released("s1");
    t.at(1004).vu(2).acquire_timeout(1000);
    breaks("no_wait_with_capacity", t.build(), &pool1(), 6);
}

#[test]
fn no_wait_with_capacity_a_slot_freed_and_not_passed_on() {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start().slot_reserved();
    t.at(1).vu(2).acquire_start().acquire_wait(1001);
    // The create fails; its slot is freed, and not granted.
    t.at(5).vu(1).slot_freed().acquire_error("connect");
    t.at(1001).vu(2).acquire_timeout(1000);
    // Found where the chain of the failure ends (at its slot_freed).
    breaks("no_wait_with_capacity", t.build(), &pool1(), 4);
}

/// A release, its session past TTL closed and the freed slot granted: the
/// chain ends with capacity passed on, so it is clean.
#[test]
fn no_wait_with_capacity_a_chain_that_passes_the_slot_on_is_fine() {
    let mut t = holding_and_waiting();
    t.at(7).vu(1).released("s1").closed("s1", "ttl");
    t.vu(2).waiter_granted_slot();
    t.at(9).created("s2").acquire_created("s2");
    let r = assert_clean(&t.build(), &pool1());
    assert_eq!(r.goals["ttl_in_use_closed_on_release"], 1);
}

/// A waiter cancelled after its grant, before its task ran: the session
/// goes back and on to the next waiter.
#[test]
fn a_grant_handed_back_by_a_cancelled_waiter_is_passed_on() {
    let mut t = two_waiting();
    t.at(7).vu(1).released("s1");
    t.vu(2).waiter_granted("s1").acquire_cancelled(true);
    t.vu(3).waiter_granted("s1").acquire_ok("s1");
    let r = assert_clean(&t.build(), &pool1());
    assert_eq!(r.goals["acquire_cancelled_waiting"], 1);
    assert_eq!(r.goals["waiter_served_after_release"], 1);
}

#[test]
fn acquire_ends_by_deadline_a_timeout_after_the_deadline() {
    let mut t = clean();
    t.truncate(10);
    t.push(one(at(1500).vu(2).acquire_timeout(1496)));
    breaks("acquire_ends_by_deadline", t, &pool1(), 10);
}

/// A pool timeout before its deadline: the pool gave up on its waiter
/// early.
#[test]
fn acquire_ends_by_deadline_a_timeout_before_the_deadline() {
    let mut t = holding_and_waiting();
    t.at(1002).vu(2).acquire_timeout(998);
    breaks("acquire_ends_by_deadline", t.build(), &pool1(), 6);
}

/// A waiter still queued when the manager closes, before its deadline,
/// must fail with `manager_closed`: timed out by the close is a violation,
/// and its `manager_closed` counterpart is clean.
#[test]
fn acquire_ends_by_deadline_a_waiter_the_close_timed_out() {
    let waiting_at_close = || {
        let mut t = holding_and_waiting();
        t.at(9).no_vu().manager_closing();
        t
    };
    let mut t = waiting_at_close();
    t.at(9).vu(2).acquire_timeout(5);
    breaks_with(
        "acquire_ends_by_deadline",
        t.build(),
        &pool1(),
        7,
        &[
            "no_session_after_close",
            "metrics_match_trace",
            "closed_split_by_reason",
        ],
    );
    let mut t = waiting_at_close();
    t.at(9).vu(2).acquire_error("manager_closed");
    let r = run(&t.build(), &pool1());
    assert!(
        r.violation("acquire_ends_by_deadline").is_none(),
        "{:#?}",
        r.violations
    );
}

#[test]
fn acquire_ends_by_deadline_an_acquire_that_never_ends() {
    let t = clean()[..8].to_vec();
    breaks("acquire_ends_by_deadline", t, &pool1(), 6);
}

#[test]
fn acquire_ends_by_deadline_still_queued_past_the_deadline() {
    let mut t = holding_and_waiting();
    // At 1100 the waiter is still queued: found there, before it ends.
    t.at(1100).vu(1).released("s1");
    t.vu(2).waiter_granted("s1").acquire_ok("s1");
    breaks("acquire_ends_by_deadline", t.build(), &pool1(), 6);
}

#[test]
fn acquire_ends_by_deadline_a_wait_longer_than_the_timeout() {
    let mut t = holding();
    // The manager reports a deadline past acquire_timeout_ms, and keeps it.
    t.at(4).vu(2).acquire_start().acquire_wait(1504);
    t.at(1504).acquire_timeout(1500);
    breaks("acquire_ends_by_deadline", t.build(), &pool1(), 6);
}

// ------------------------------------------------------------ other laws --

#[test]
fn no_use_after_close() {
    let mut t = clean();
    t.truncate(16);
    t.push(one(at(10).vu(2).operation_start("s1", "ping")));
    breaks_with(
        "no_use_after_close",
        t,
        &pool1(),
        16,
        &["closed_split_by_reason"],
    );
}

#[test]
fn created_equals_server_initialized() {
    let mut t = clean();
    t.remove(2);
    breaks("created_equals_server_initialized", t, &pool1(), 2);
}

#[test]
fn closed_split_by_reason() {
    let mut t = clean();
    t.remove(15);
    breaks_with("closed_split_by_reason", t, &pool1(), 16, &["clean_close"]);
    // Metrics that disagree with the trace.
    let mut metrics = clean_metrics();
    metrics.closed.shutdown = 0;
    metrics.closed.idle = 1;
    let cfg = pool1().with_metrics([(W.to_owned(), metrics)].into());
    breaks("closed_split_by_reason", clean(), &cfg, 17);
}

#[test]
fn clean_close_a_tcp_stream_left_on_a_worker() {
    let cfg = pool1().with_streams_at_end([(W.to_owned(), 1)].into());
    let r = run(&clean(), &cfg);
    let v = r.violation("clean_close").expect("caught");
    assert!(v.message.contains("1 TCP stream"), "{}", v.message);
    let cfg = pool1().with_streams_at_end([(W.to_owned(), 0)].into());
    assert!(run(&clean(), &cfg).violation("clean_close").is_none());
}

#[test]
fn metrics_match_trace() {
    // A cancelled wait counted as a pool timeout (the reference's defect 6).
    let mut metrics = clean_metrics();
    metrics.pool_timeouts = 1;
    let cfg = pool1().with_metrics([(W.to_owned(), metrics)].into());
    breaks("metrics_match_trace", clean(), &cfg, 17);
    // An eviction counted nowhere (defect 5): a TTL close with no count.
    let mut t = clean();
    t[15] = one(at(9).closed("s1", "ttl"));
    let mut metrics = clean_metrics();
    metrics.closed.shutdown = 0;
    metrics.closed.ttl = 1;
    let cfg = pool1().with_metrics([(W.to_owned(), metrics)].into());
    breaks("metrics_match_trace", t, &cfg, 17);
}

#[test]
fn no_use_after_close_a_closed_session_handed_out() {
    // The pool closes s1 (idle), then hands it to vu-2 all the same (the
    // reference's defect 1: an invalidated session back in the idle list).
    let mut t = holding();
    t.at(3).invalidated("s1").closed("s1", "invalidated");
    t.at(4).vu(2).acquire_start().acquire_ok("s1");
    let r = run(&t.build(), &pool1());
    let v = r.violation("no_use_after_close").expect("caught");
    assert_eq!(v.event_index, 7, "{v:#?}");
    assert!(v.message.contains("handed to vu-2"), "{}", v.message);
}

/// vu 1 gets s1 at 2, runs `ops` operations on it at 3, and gives it
/// back at `back`, where it is closed as churned.
fn churned_after(ops: usize, back: u64) -> Vec<TraceEvent> {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start();
    t.at(2).created("s1").acquire_created("s1");
    for _ in 0..ops {
        t.at(3).operation_start("s1", "ping");
    }
    t.at(back).released("s1").closed("s1", "churned");
    t.build()
}

#[test]
fn closed_split_by_reason_a_churn_before_its_interval() {
    let cfg = AuditConfig {
        churn_ops: Some(3),
        ..AuditConfig::for_session(&SessionConfig::with_mode(Mode::Churn))
    };
    // The close's reason is wrong too (`mcp_sim::lease_laws`).
    breaks_with(
        "closed_split_by_reason",
        churned_after(1, 4),
        &cfg,
        5,
        &["close_reason_exact"],
    );
}

#[test]
fn reconnects_exact() {
    let mut t = clean()[..6].to_vec();
    let mut again = at(5);
    again.vu(1).invalidated("s1").closed("s1", "invalidated");
    again.at(6).acquire_start().slot_reserved();
    again.at(7).created("s2").acquire_created("s2");
    t.extend(again.build());
    breaks_with(
        "reconnects_exact",
        t,
        &pool1(),
        11,
        &["created_equals_server_initialized"],
    );
}

#[test]
fn clean_close() {
    let mut t = clean();
    t.remove(16);
    breaks("clean_close", t, &pool1(), 16);
}

/// A session whose DELETE the client sent and saw fail for a cause the
/// trace holds (here an injected 503: of a trace that does not say which
/// request it answered, or of that session's DELETE) is excused: the law
/// is "closed where reachable". Without the failure report the same trace
/// is a leak.
#[test]
fn clean_close_excuses_a_reported_failed_delete() {
    let mut t = clean();
    t.remove(16); // the server never saw the DELETE succeed
    t.insert(16, one(at(10).close_failed("s1", "HTTP 503: server error")));
    t.insert(16, one(at(10).injected("DELETE", 503)));
    let r = run(&t, &pool1());
    assert!(r.violation("clean_close").is_none(), "{:#?}", r.violations);
    assert!(r.violations.is_empty(), "{:#?}", r.violations);
    // The failure injected into that very DELETE (the server logs its
    // session) excuses it; one injected into another session's does not.
    for (session, excused) in [("s1", true), ("s9", false)] {
        t[16] = one(at(10).server_event(ServerEvent::Injected {
            http: "DELETE".into(),
            status: 503,
            id: None,
            session: Some(session.into()),
            from: Some(W.into()),
        }));
        let r = run(&t, &pool1());
        assert_eq!(
            r.violation("clean_close").is_none(),
            excused,
            "{session}: {:#?}",
            r.violations
        );
    }
}

/// A failed DELETE nothing explains is no excuse: a client that sends its
/// DELETE without the session id gets 400 and leaves the session on the
/// server (it used to be excused as "unreachable").
#[test]
fn clean_close_does_not_excuse_a_delete_without_its_session_id() {
    let mut t = clean();
    t.remove(16);
    let error = "HTTP 400 bad request: (-32000) Bad Request: Server not initialized";
    t.insert(16, one(at(10).close_failed("s1", error)));
    let refused = ServerEvent::MissingSession {
        http: "DELETE".into(),
        method: None,
        from: Some(W.into()),
        header_version: Some("2025-11-25".into()),
    };
    t.insert(16, one(at(10).server_event(refused)));
    breaks_with("clean_close", t, &pool1(), 18, &["legacy_headers_present"]);
}

// ------------------------------------------------------------ era law --

#[test]
fn no_fallback_after_modern_error_a_fallback_on_a_stateless_error() {
    for code in ["-32020", "-32021", "-32022"] {
        let mut events = clean_auto();
        let answer =
            format!("HTTP 400 with JSON-RPC error {code} \"Unsupported protocol version\"");
        events[1] = probe_event(probed("legacy", &answer));
        breaks("no_fallback_after_modern_error", events, &pool1(), 1);
    }
}

#[test]
fn no_fallback_after_modern_error_other_codes_and_verdicts_are_fine() {
    let cfg = pool1();
    // A longer number that starts like one of the codes is not one.
    let mut events = clean_auto();
    events[1] = probe_event(probed("legacy", "JSON-RPC error -320221"));
    assert_clean(&events, &cfg);
    // A failed probe on -32022 is no fallback.
    let mut events = clean_auto();
    events[1] = probe_event(probed("failed", "JSON-RPC error -32022"));
    assert_clean(&events, &cfg);
}

// ------------------------------------------------------------ goals --

/// In pool mode with a 150 ms idle limit: s1 released at 10 is due at 160;
/// an acquire at exactly 160 counts, whether the eviction ran first in that
/// millisecond or not.
#[test]
fn acquire_at_an_eviction_deadline() {
    let cfg = AuditConfig {
        idle_ms: Some(150),
        ttl_ms: Some(600),
        ..pool2()
    };
    let base = || {
        let mut t = holding();
        t.at(10).released("s1");
        t
    };
    // The acquire first: it finds s1 due, closes it, creates another.
    let mut t = base();
    t.at(160).vu(2).acquire_start();
    t.no_vu().closed("s1", "idle");
    t.vu(2).slot_reserved();
    t.at(162).created("s2").acquire_created("s2");
    let r = assert_clean(&t.build(), &cfg);
    assert_eq!(r.goals["acquire_at_eviction_deadline"], 1);
    assert_eq!(r.goals["idle_eviction"], 1);
    // The evictor first, then the acquire in the same millisecond.
    let mut t = base();
    t.at(160).no_vu().closed("s1", "idle");
    t.vu(2).acquire_start().slot_reserved();
    t.at(162).created("s2").acquire_created("s2");
    let r = assert_clean(&t.build(), &cfg);
    assert_eq!(r.goals["acquire_at_eviction_deadline"], 1);
    // One millisecond early: the session is still good, no goal.
    let mut t = base();
    t.at(159).vu(2).acquire_start().acquire_ok("s1");
    let r = assert_clean(&t.build(), &cfg);
    assert_eq!(r.goals["acquire_at_eviction_deadline"], 0);
    // The TTL deadline: created (acquire_ok) at 2, due at 602.
    let mut t = base();
    t.at(100).acquire_start().acquire_ok("s1");
    t.at(500).released("s1");
    t.at(602).vu(3).acquire_start();
    t.no_vu().closed("s1", "ttl");
    t.vu(3).slot_reserved();
    let t = t.build();
    let r = run(&t, &cfg);
    assert_eq!(r.goals["acquire_at_eviction_deadline"], 1);
    assert_eq!(r.goals["ttl_eviction_idle"], 1);
    // Without the limits in the config, the goal is not counted.
    let r = run(&t, &pool2());
    assert_eq!(r.goals["acquire_at_eviction_deadline"], 0);
}

/// A re-creation after a 404, counted under the mode.
#[test]
fn recreate_after_404_is_split_by_mode() {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start();
    t.at(2).created("s1").acquire_created("s1");
    t.at(3).invalidated("s1").closed("s1", "invalidated");
    t.at(4).acquire_start();
    t.at(5).created("s2").acquire_recreated("s2");
    for (mode, goal) in [
        (Mode::Reuse, "recreate_after_404_reuse"),
        (Mode::Churn, "recreate_after_404_churn"),
    ] {
        let cfg = AuditConfig::for_session(&SessionConfig::with_mode(mode));
        let r = assert_clean(&t.build(), &cfg);
        assert_eq!(r.goals[goal], 1, "{mode:?}");
        let total: u64 = GOALS
            .iter()
            .filter(|g| g.starts_with("recreate_after_404"))
            .map(|g| r.goals[*g])
            .sum();
        assert_eq!(total, 1, "{mode:?}");
    }
    let mut p = holding();
    p.at(3).invalidated("s1").closed("s1", "invalidated");
    p.at(4).acquire_start().slot_reserved();
    p.at(5).created("s2").acquire_recreated("s2");
    let r = assert_clean(&p.build(), &pool1());
    assert_eq!(r.goals["recreate_after_404_pool"], 1);
}

/// Churn goals by the configured trigger, once the trigger was reached.
#[test]
fn churn_is_split_by_trigger() {
    let t = churned_after(2, 302);
    let by_ops = AuditConfig::for_session(&SessionConfig {
        churn_interval_ops: 2,
        ..SessionConfig::with_mode(Mode::Churn)
    });
    let r = assert_clean(&t, &by_ops);
    assert_eq!((r.goals["churn_by_ops"], r.goals["churn_by_time"]), (1, 0));
    let by_time = AuditConfig::for_session(&SessionConfig {
        churn_interval_ops: 0,
        churn_interval_ms: 300,
        ..SessionConfig::with_mode(Mode::Churn)
    });
    let r = assert_clean(&t, &by_time);
    assert_eq!((r.goals["churn_by_ops"], r.goals["churn_by_time"]), (0, 1));
}

/// A version-negotiation failure counts only under `strict`.
#[test]
fn version_mismatch_rejected_under_strict_only() {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start();
    t.at(2).created("s1").closed("s1", "failed");
    t.manager(
        Some("s1"),
        ManagerEvent::AcquireError {
            error: "version_negotiation".into(),
        },
    );
    for (policy, n) in [
        (VersionPolicy::Strict, 1),
        (VersionPolicy::Supported, 0),
        (VersionPolicy::None, 0),
    ] {
        let cfg = AuditConfig::for_session(&SessionConfig {
            protocol_version_policy: policy,
            ..SessionConfig::with_mode(Mode::PerRequest)
        });
        let r = assert_clean(&t.build(), &cfg);
        assert_eq!(r.goals["version_mismatch_rejected_strict"], n, "{policy:?}");
    }
}

/// A crash while the server holds an `initialize` it has not answered and
/// the client still waits for it; not when the handshake was over, nor
/// when the client had given up before the crash.
#[test]
fn server_crash_during_initialize() {
    let cfg = pool2();
    let start = || {
        let mut t = TraceBuilder::new();
        t.at(0).vu(1).acquire_start().slot_reserved();
        t.at(2)
            .session_created("s1")
            .delayed("s1", "initialize", 1800);
        t
    };
    let crash = Action::Crash { server: S.into() };
    // The crash cuts the initialize short: the create fails.
    let mut t = start();
    t.at(400)
        .fault(crash.clone())
        .slot_freed()
        .acquire_error("initialize");
    let r = assert_clean(&t.build(), &cfg);
    assert_eq!(r.goals["server_crash_during_initialize"], 1);
    // The client gave up (a timeout) before the crash: not counted.
    let mut t = start();
    t.at(300).slot_freed().acquire_error("initialize");
    t.at(400).fault(crash.clone());
    let r = assert_clean(&t.build(), &cfg);
    assert_eq!(r.goals["server_crash_during_initialize"], 0);
    // The client got the answer and is sending `initialized`: counted.
    let mut t = start();
    t.at(3).created("s1");
    t.at(4).fault(Action::Bounce { server: S.into() });
    t.at(5).closed("s1", "failed").slot_freed();
    t.manager(
        Some("s1"),
        ManagerEvent::AcquireError {
            error: "initialized_notification".into(),
        },
    );
    let r = assert_clean(&t.build(), &cfg);
    assert_eq!(r.goals["server_crash_during_initialize"], 1);
    // The handshake was over (the server got `initialized`): not counted.
    let mut t = start();
    t.at(3).created("s1");
    t.at(4).initialized("s1");
    t.at(5).acquire_created("s1");
    t.at(6).fault(crash);
    let r = assert_clean(&t.build(), &cfg);
    assert_eq!(r.goals["server_crash_during_initialize"], 0);
}

// ------------------------------------------------------------ the trace --

#[test]
fn fault_events_come_first_in_their_millisecond() {
    let mut b = TraceBuilder::new();
    b.at(5).vu(1).acquire_start().session_created("s1");
    let mut t = b.trace();
    t.push_faults(&[Applied {
        at_ms: 5,
        event: 3,
        action: Action::Expire {
            server: S.into(),
            session: "s1".into(),
        },
    }]);
    t.sort();
    let e = &t.events[0];
    assert_eq!(
        (e.source(), &*e.name(), &*e.host),
        (Source::Fault, "expire", S)
    );
    assert_eq!(e.session(), Some("s1"));
    assert!(matches!(&e.kind, Kind::Fault(f) if f.plan_event == 3));
    assert_eq!(t.events[1].name(), "acquire_start");
    assert!(e.line().contains("fault"), "{}", e.line());
}

#[test]
fn jsonl_round_trip() {
    let mut events = clean();
    events.push(one(at(12).fault(Action::Bounce { server: S.into() })));
    let t = Trace::new(events);
    let text = t.to_jsonl();
    assert!(text.ends_with('\n') && !text.contains('\r'));
    let back = Trace::from_jsonl(&text).expect("parse");
    assert_eq!(back, t);
    assert_eq!(back.hash(), t.hash());
    assert_eq!(t.hash().len(), 64);
    assert_eq!(t.timeline().lines().count(), t.events.len());
}

// ------------------------------------------------------------ integration --

const POOL: usize = 2;
const TIMEOUT_MS: u64 = 400;

fn echo(text: String) -> Operation {
    Operation::ToolsCall {
        name: "echo".into(),
        arguments: json!({ "text": text }),
    }
}

/// Rounds of acquire, one echo, give back (invalidate after a 404).
async fn probe(vu: Vu, rounds: u32) -> u32 {
    let mut ok = 0;
    for round in 0..rounds {
        if let Ok(mut lease) = vu.manager.acquire(vu.id).await {
            let r = lease
                .call(&echo(format!("vu {} round {round}", vu.id)))
                .await;
            tokio::time::sleep(Duration::from_millis(30)).await;
            match &r {
                Err(e) if e.is_session_expired() => lease.invalidate(),
                _ => lease.release(),
            }
            ok += u32::from(r.is_ok());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok
}

/// The world of [`probe`] VUs against a server of `era`, under an early
/// expiry, a bounce and a burst of 503s.
fn run_world(seed: u64, era: ServerEra) -> (Trace, mcp_sim::audit::AuditReport) {
    let session = SessionConfig {
        acquire_timeout_ms: TIMEOUT_MS,
        ..SessionConfig::pool(POOL)
    };
    let http = HttpConfig {
        connect_timeout_ms: 300,
        request_timeout_ms: 500,
        close_timeout_ms: 300,
        ..HttpConfig::default()
    };
    let recorder = TraceRecorder::new(W);
    let mut world = Topology::new(seed, Duration::from_secs(60))
        .latency(Latency::new(1, 5))
        .server(
            S,
            ServerConfig {
                seed,
                era,
                ..ServerConfig::default()
            },
        )
        .worker(WorkerSpec::new(W, S, session, 6).http(http))
        .event_sink(W, Arc::new(recorder.clone()))
        .build(|vu| probe(vu, 15));
    let plan = FaultPlan::new(vec![
        Scheduled {
            at_ms: 300,
            event: FaultEvent::EarlyExpiry {
                server: S.into(),
                pick: 0,
            },
        },
        Scheduled {
            at_ms: 600,
            event: FaultEvent::Bounce { server: S.into() },
        },
        Scheduled {
            at_ms: 900,
            event: FaultEvent::ServerErrors {
                server: S.into(),
                status: 503,
                count: 3,
            },
        },
    ]);
    let applied = world.run_with(&plan).expect("simulation");
    let mut trace = Trace::collect([&recorder], [(S, world.server(S).events())]);
    trace.push_faults(&applied);
    trace.sort();
    let cfg = AuditConfig::pool(POOL, TIMEOUT_MS).with_metrics(world.metrics());
    let report = audit(&trace, &cfg);
    (trace, report)
}

#[test]
fn seeded_world_obeys_every_law_and_is_deterministic() {
    let (trace, report) = run_world(11, ServerEra::Legacy);
    if !report.is_clean() || std::env::var_os("AUDIT_DUMP").is_some() {
        eprintln!("{}", trace.timeline());
        for v in &report.violations {
            eprintln!("{}: #{} {}", v.law, v.event_index, v.message);
        }
    }
    assert!(report.is_clean(), "{:#?}", report.violations);
    // The same against a dual-era server, which the auto-era client
    // speaks statelessly: every law is checked in one world or the other.
    let (modern, modern_report) = run_world(11, ServerEra::Dual);
    if !modern_report.is_clean() {
        eprintln!("{}", modern.timeline());
    }
    assert!(modern_report.is_clean(), "{:#?}", modern_report.violations);
    // A world without faults has no failure to explain, and its VUs
    // (driven here, not by `vu::run_vu`) log no `vu_error` or `vu_answer`
    // (`tests/cause_laws.rs` holds both laws checked).
    let vu_laws = ["failure_explained", "answer_delivered_intact"];
    for law in LAWS
        .into_iter()
        .filter(|l| !vu_laws.contains(l) && !OTHER_MODE_LAWS.contains(l) && !RUN_LAWS.contains(l))
    {
        assert!(
            report.checks[law] + modern_report.checks[law] > 0,
            "{law} never checked"
        );
    }
    // The server names the worker of every request it logs.
    let named = trace
        .events
        .iter()
        .chain(&modern.events)
        .filter_map(|e| e.server()?.client_host());
    assert!(named.clone().count() > 0);
    assert!(named.clone().all(|from| from == W));
    let reached = report.reached();
    eprintln!("goals reached: {reached:?}");
    assert!(reached.contains(&"pool_wait"), "{:?}", report.goals);
    assert!(reached.contains(&"waiter_served_after_release"));
    let (again, _) = run_world(11, ServerEra::Legacy);
    assert_eq!(trace.hash(), again.hash());
    assert_eq!(Trace::from_jsonl(&trace.to_jsonl()).unwrap(), trace);
    // A few more seeds: still no violation.
    for seed in 1..=8 {
        let (_, r) = run_world(seed, ServerEra::Legacy);
        assert!(r.is_clean(), "seed {seed}: {:#?}", r.violations);
    }
}

/// The era goals: a fallback, a retry after -32022, and a probe again
/// after a redeploy that ends in the new era, counted only after the
/// server moved that way.
#[test]
fn era_goals_follow_the_redeploys() {
    let reprobe = |verdict: &str| ManagerEvent::EraProbed {
        version: "2026-07-28".into(),
        verdict: verdict.to_owned().into(),
        reprobe: Some("a legacy session was lost".into()),
        answer: None,
        ttl_ms: None,
    };
    let moved = |from, to| Action::Era {
        server: S.into(),
        from,
        to,
    };
    let retried = ManagerEvent::VersionRetried {
        from: "2026-07-28".into(),
        to: "2026-07-28".into(),
    };
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).manager(None, probed("legacy", "HTTP 404"));
    t.at(1).created_in("s1", "legacy");
    // A probe again before any redeploy: no goal.
    t.at(2).vu(2).manager(None, reprobe("modern"));
    t.at(3).created_in("ctx-1", "modern");
    t.at(4).fault(moved(ServerEra::Legacy, ServerEra::Dual));
    t.at(5).vu(1).manager(None, reprobe("modern"));
    t.at(6).created_in("ctx-2", "modern");
    t.at(7).manager(Some("ctx-2"), retried);
    t.at(8).fault(moved(ServerEra::Dual, ServerEra::Legacy));
    t.at(9).vu(2).manager(None, reprobe("legacy"));
    t.at(10).created_in("s2", "legacy");
    let r = run(&t.build(), &AuditConfig::default());
    let got: Vec<u64> = [
        "fell_back_to_legacy",
        "version_retried",
        "modern_after_upgrade",
        "legacy_after_downgrade",
    ]
    .iter()
    .map(|g| r.goals[*g])
    .collect();
    assert_eq!(got, [2, 1, 1, 1]);
}
