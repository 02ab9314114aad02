//! The lease and mode laws (`mcp_sim::lease_laws`) on hand-written traces:
//! for each law, traces that break it (caught, named, at the first
//! violating event) and traces the library legitimately produces that must
//! stay clean; then a few seeds of the scenario of each mode, where every
//! law of that mode is checked and none breaks.

use mcp_session::Mode;
use mcp_sim::audit::{audit, AuditConfig, AuditReport, LAWS};
use mcp_sim::lease_laws::LEASE_LAWS;
use mcp_sim::run::run;
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::trace::{ManagerEvent, Trace, TraceBuilder, TraceEvent};

/// The steps these tests write again and again, each at the builder's
/// time and for its VU.
trait Steps {
    /// An acquire of a new session `sid` (start, created, ok).
    fn create(&mut self, sid: &str) -> &mut Self;
    /// An acquire of a new pool session `sid`, in a reserved slot.
    fn create_in_slot(&mut self, sid: &str) -> &mut Self;
    /// An acquire of session `sid`, kept or idle (start, ok).
    fn take(&mut self, sid: &str) -> &mut Self;
    /// A `ping` started on `sid`.
    fn op(&mut self, sid: &str) -> &mut Self;
}

impl Steps for TraceBuilder {
    fn create(&mut self, sid: &str) -> &mut Self {
        self.acquire_start().created(sid).acquire_created(sid)
    }

    fn create_in_slot(&mut self, sid: &str) -> &mut Self {
        self.acquire_start()
            .slot_reserved()
            .created(sid)
            .acquire_created(sid)
    }

    fn take(&mut self, sid: &str) -> &mut Self {
        self.acquire_start().acquire_ok(sid)
    }

    fn op(&mut self, sid: &str) -> &mut Self {
        self.operation_start(sid, "ping")
    }
}

/// A trace whose VU 1 got session `sid` at 0 (a new one), as [`Steps`]
/// writes it: the start of most of these stories.
fn created(sid: &str) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).create(sid);
    t
}

/// [`created`] in a pool: in a reserved slot.
fn created_in_slot(sid: &str) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).create_in_slot(sid);
    t
}

/// The manager closes at 5 (no VU), and nothing else happened.
fn closing() -> TraceBuilder {
    let mut t = TraceBuilder::new();
    t.at(5).manager_closing();
    t
}

/// An `acquire_error` (`error`) on `session`, at the builder's time and
/// for its VU.
fn error_on(t: &mut TraceBuilder, session: &str, error: &'static str) {
    let error = ManagerEvent::AcquireError {
        error: error.into(),
    };
    t.manager(Some(session), error);
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
    let mut t = created("s1");
    t.at(1).op("s1");
    t.at(10).released("s1");
    t.at(at).take("s1");
    t.build()
}

#[test]
fn no_stale_handout_at_the_idle_deadline() {
    let c = with_idle(cfg(Mode::Reuse), 100);
    breaks("no_stale_handout", &reuse_idle_at(110), &c, 6);
    breaks("no_stale_handout", &reuse_idle_at(500), &c, 6);
    // One millisecond before it, the session is still fresh.
    clean(&reuse_idle_at(109), &c);
    // At the deadline, the acquire closes it and makes a new one.
    let mut t = created("s1");
    t.at(10).released("s1");
    t.at(110).acquire_start().closed("s1", "idle");
    t.created("s2").acquire_created("s2");
    clean(&t.build(), &c);
}

#[test]
fn no_stale_handout_at_the_ttl_deadline_in_the_pool() {
    // Pool of two, TTL 100: s1 made at 0, released at 50, taken at 100.
    let c = with_ttl(pool(2), 100);
    let at = |at| {
        let mut t = created_in_slot("s1");
        t.at(50).released("s1");
        t.at(at).vu(2).take("s1");
        t.build()
    };
    breaks("no_stale_handout", &at(100), &c, 6);
    clean(&at(99), &c);
}

/// Pool of one, TTL 100: vu 1 holds s1, made at 0; vu 2 waits from 5;
/// s1 is released at 100, past its TTL (events 0-6).
fn released_past_ttl_with_a_waiter() -> TraceBuilder {
    let mut t = created_in_slot("s1");
    t.at(5).vu(2).acquire_start().acquire_wait(1005);
    t.at(100).vu(1).released("s1");
    t
}

#[test]
fn no_stale_handout_a_grant_past_its_ttl() {
    let c = with_ttl(pool(1), 100);
    // Granted to vu 2 instead of being closed.
    let mut t = released_past_ttl_with_a_waiter();
    t.vu(2).waiter_granted("s1").acquire_ok("s1");
    let t = t.build();
    // Broken at the release (kept past TTL), and at the grant.
    breaks("no_stale_handout", &t, &c, 6);
    let r = run_audit(&t[..8], &c);
    assert!(r.violation("no_stale_handout").is_some());
    // Closed at the release, its slot passed on: clean.
    let mut t = released_past_ttl_with_a_waiter();
    t.closed("s1", "ttl");
    t.vu(2).waiter_granted_slot();
    t.at(101).created("s2").acquire_created("s2");
    let r = clean(&t.build(), &c);
    assert!(r.checks["no_stale_handout"] > 0);
}

#[test]
fn no_stale_handout_a_session_past_ttl_kept_at_release() {
    let c = with_ttl(cfg(Mode::Reuse), 100);
    let mut used = created("s1");
    used.at(1).op("s1");
    used.at(100).released("s1");
    let mut kept = used.clone();
    kept.at(120).acquire_start();
    // (The trace ends with that acquire open.)
    let open = ["acquire_ends_by_deadline"];
    breaks_with("no_stale_handout", &kept.build(), &c, 4, &open);
    let mut closed_then = used;
    closed_then.closed("s1", "ttl");
    let r = clean(&closed_then.build(), &c);
    assert_eq!(r.goals["ttl_in_use_closed_on_release"], 1);
}

// ----------------------------------------------------- no_close_under_holder

#[test]
fn no_close_under_holder_the_evictor_closes_a_leased_session() {
    let c = with_idle(cfg(Mode::Reuse), 100);
    // s1 is released at 10 and taken again at 50; the evictor closes it
    // at 110 (its old idle deadline) while vu 1 holds it.
    let mut t = created("s1");
    t.at(10).released("s1");
    t.at(50).take("s1");
    t.at(110).no_vu().closed("s1", "idle");
    let t = t.build();
    breaks_with("no_close_under_holder", &t, &c, 6, &["close_reason_exact"]);
    // Past TTL while in use: closed only at the release.
    let c = with_ttl(cfg(Mode::Reuse), 100);
    let mut t = created("s1");
    t.at(100).no_vu().closed("s1", "ttl");
    let t = t.build();
    breaks_with("no_close_under_holder", &t, &c, 3, &["close_reason_exact"]);
}

#[test]
fn no_close_under_holder_allows_shutdown_and_the_holders_own_return() {
    let c = with_idle(cfg(Mode::Reuse), 100);
    let mut t = created("s1");
    t.at(5).no_vu().manager_closing().closed("s1", "shutdown");
    t.at(6).vu(1).released("s1");
    clean(&t.build(), &c);
    let mut t = created("s1");
    t.at(5).invalidated("s1").closed("s1", "invalidated");
    clean(&t.build(), &c);
    // A creation that fails after the server initialized the session.
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start();
    t.at(1).created("s1");
    t.at(2).closed("s1", "failed");
    error_on(&mut t, "s1", "initialized_notification");
    clean(&t.build(), &c);
}

// ------------------------------------------------------ no_grant_to_departed

/// Pool of one: vu 1 holds s1; vu 2 waits from 5 and its acquire ends at
/// 20 (`end` writes how); vu 1 releases at 30 and s1 is granted to vu 2.
fn grant_after(end: impl FnOnce(&mut TraceBuilder)) -> TraceBuilder {
    let mut t = created_in_slot("s1");
    t.at(5).vu(2).acquire_start().acquire_wait(1005);
    t.at(20);
    end(&mut t);
    t.at(30).vu(1).released("s1");
    t.vu(2).waiter_granted("s1");
    t
}

#[test]
fn no_grant_to_departed_after_cancel_timeout_or_error() {
    let c = pool(1);
    // The model's queue lost vu 2 too: `fifo` sees a grant to nobody queued.
    let ends: [fn(&mut TraceBuilder); 3] = [
        |t| {
            t.vu(2).acquire_cancelled(true);
        },
        |t| {
            t.vu(2).acquire_timeout(15);
        },
        |t| {
            t.vu(2).acquire_error("connect");
        },
    ];
    for end in ends {
        breaks_with(
            "no_grant_to_departed",
            &grant_after(end).build(),
            &c,
            8,
            &["fifo", "acquire_ends_by_deadline"],
        );
    }
    // A grant to a VU that never waited.
    let mut t = created_in_slot("s1");
    t.at(30).released("s1");
    t.vu(2).waiter_granted("s1");
    breaks_with("no_grant_to_departed", &t.build(), &c, 5, &["fifo"]);
}

#[test]
fn no_grant_to_departed_a_grant_to_the_queued_waiter() {
    let c = pool(1);
    let mut t = grant_after(|t| {
        t.vu(1).op("s1");
    });
    t.at(31).acquire_ok("s1");
    let r = clean(&t.build(), &c);
    assert_eq!(r.checks["no_grant_to_departed"], 1);
}

// ----------------------------------------------------------- one_lease_per_vu

#[test]
fn one_lease_per_vu_busy_without_a_lease() {
    let c = cfg(Mode::Reuse);
    // Invalidated and closed, but vu 1's next acquire is refused as busy:
    // its session is never replaced.
    let mut t = created("s1");
    t.at(5).invalidated("s1").closed("s1", "invalidated");
    t.at(6).acquire_start().acquire_error("vu_busy");
    breaks("one_lease_per_vu", &t.build(), &c, 6);
    // Busy while it holds s1: right.
    let mut t = created("s1");
    t.at(6).acquire_start().acquire_error("vu_busy");
    clean(&t.build(), &c);
}

#[test]
fn one_lease_per_vu_two_leases() {
    let c = pool(2);
    let mut t = created_in_slot("s1");
    t.at(1).create_in_slot("s2");
    breaks("one_lease_per_vu", &t.build(), &c, 7);
}

// ------------------------------------------------------------ pool_idle_first

/// Pool of two: s1 and s2 made, released at 5 and 6; vu 3 acquires at 7.
fn two_idle() -> TraceBuilder {
    let mut t = created_in_slot("s1");
    t.at(1).vu(2).create_in_slot("s2");
    t.at(5).vu(1).released("s1");
    t.at(6).vu(2).released("s2");
    t
}

#[test]
fn pool_idle_first_the_oldest_idle_session() {
    let c = pool(2);
    let mut younger = two_idle();
    younger.at(7).vu(3).take("s2");
    breaks("pool_idle_first", &younger.build(), &c, 11);
    let mut oldest = two_idle();
    oldest.at(7).vu(3).take("s1");
    clean(&oldest.build(), &c);
}

#[test]
fn pool_idle_first_no_slot_while_a_session_idles() {
    let c = pool(3);
    let mut t = two_idle();
    t.at(7).vu(3).create_in_slot("s3");
    breaks("pool_idle_first", &t.build(), &c, 11);
    // The idle ones found expired at that acquire are closed first.
    let c = with_idle(pool(3), 100);
    let mut t = two_idle();
    t.at(106).vu(3).acquire_start();
    t.no_vu().closed("s1", "idle").closed("s2", "idle");
    t.vu(3).slot_reserved().created("s3").acquire_created("s3");
    clean(&t.build(), &c);
}

// --------------------------------------------------- reuse_one_session_per_vu

#[test]
fn reuse_one_session_per_vu_a_new_session_while_the_old_idles() {
    let c = cfg(Mode::Reuse);
    let mut t = created("s1");
    t.at(5).released("s1");
    t.at(6).create("s2");
    breaks("reuse_one_session_per_vu", &t.build(), &c, 6);
}

#[test]
fn reuse_one_session_per_vu_another_vus_session() {
    let c = cfg(Mode::Reuse);
    let mut t = created("s1");
    t.at(5).released("s1");
    t.at(6).vu(2).take("s1");
    breaks("reuse_one_session_per_vu", &t.build(), &c, 5);
}

#[test]
fn reuse_one_session_per_vu_kept_then_replaced_after_invalidation() {
    let c = cfg(Mode::Reuse);
    let mut t = created("s1");
    t.at(5).released("s1");
    t.at(6).take("s1");
    t.at(7).invalidated("s1").closed("s1", "invalidated");
    t.at(8)
        .acquire_start()
        .created("s2")
        .acquire_recreated("s2");
    let r = clean(&t.build(), &c);
    assert_eq!(r.checks["reuse_one_session_per_vu"], 3);
}

// ---------------------------------------------------------------- churn_exact

/// Churn after 2 operations: s1 made, two operations, released at 5.
fn churn_two_ops() -> TraceBuilder {
    let mut t = created("s1");
    t.at(1).op("s1");
    t.at(2).op("s1");
    t.at(5).released("s1");
    t
}

#[test]
fn churn_exact_not_one_operation_late() {
    let c = churn_ops(2);
    let mut late = churn_two_ops();
    late.at(6).take("s1");
    breaks("churn_exact", &late.build(), &c, 5);
    let mut exact = churn_two_ops();
    exact.closed("s1", "churned");
    let r = clean(&exact.build(), &c);
    assert_eq!(r.goals["churn_by_ops"], 1);
}

#[test]
fn churn_exact_not_before_its_interval() {
    let c = churn_ops(2);
    let mut t = created("s1");
    t.at(1).op("s1");
    t.at(5).released("s1").closed("s1", "churned");
    breaks_with(
        "close_reason_exact",
        &t.build(),
        &c,
        5,
        &["closed_split_by_reason"],
    );
}

#[test]
fn churn_exact_by_time_at_the_acquire() {
    // Churn at 100 ms of age: released at 50, kept; the acquire at 100
    // must retire it.
    let c = churn_ms(100);
    let mut base = created("s1");
    base.at(50).released("s1");
    let mut late = base.clone();
    late.at(100).take("s1");
    breaks("churn_exact", &late.build(), &c, 5);
    let mut early = base.clone();
    early.at(99).take("s1");
    clean(&early.build(), &c);
    let mut exact = base;
    exact.at(100).acquire_start().closed("s1", "churned");
    exact.created("s2").acquire_created("s2");
    let r = clean(&exact.build(), &c);
    assert_eq!(r.goals["churn_by_time"], 1);
}

// ------------------------------------------------ per_request_closes_on_release

#[test]
fn per_request_closes_on_release_right_then() {
    let c = cfg(Mode::PerRequest);
    let mut used = created("s1");
    used.at(1).op("s1");
    used.at(5).released("s1");
    let mut kept = used.clone();
    kept.at(6).acquire_start();
    let open = ["acquire_ends_by_deadline"];
    breaks_with("per_request_closes_on_release", &kept.build(), &c, 4, &open);
    let mut reused = used.clone();
    reused.at(6).take("s1");
    breaks("per_request_closes_on_release", &reused.build(), &c, 4);
    let mut closed_then = used;
    closed_then.closed("s1", "released");
    clean(&closed_then.build(), &c);
}

// ---------------------------------------------------- no_session_after_close

#[test]
fn no_session_after_close_for_a_late_acquire() {
    let c = cfg(Mode::Reuse);
    // An acquire that starts after the close gets a session.
    let mut t = closing();
    t.at(6).vu(1).create("s1");
    breaks_with(
        "no_session_after_close",
        &t.build(),
        &c,
        2,
        &["closed_split_by_reason"],
    );
    // ... or fails with another error.
    let mut t = closing();
    t.at(6).vu(1).acquire_start().acquire_error("connect");
    breaks("no_session_after_close", &t.build(), &c, 2);
    // Refused as closed: right.
    let mut t = closing();
    t.at(6)
        .vu(1)
        .acquire_start()
        .acquire_error("manager_closed");
    let r = clean(&t.build(), &c);
    assert_eq!(r.checks["no_session_after_close"], 1);
}

#[test]
fn no_session_after_close_a_creation_under_way_is_closed_at_once() {
    let c = cfg(Mode::Reuse);
    let mut base = TraceBuilder::new();
    base.at(0).vu(1).acquire_start();
    base.at(5).no_vu().manager_closing();
    base.at(6).vu(1).created("s1");
    let mut kept = base.clone();
    kept.manager_closed();
    breaks_with(
        "no_session_after_close",
        &kept.build(),
        &c,
        2,
        &["closed_split_by_reason", "acquire_ends_by_deadline"],
    );
    let mut closed_then = base;
    closed_then.closed("s1", "shutdown");
    error_on(&mut closed_then, "s1", "manager_closed");
    clean(&closed_then.build(), &c);
}

// --------------------------------------------------------- close_reason_exact

#[test]
fn close_reason_exact_ttl_wins_over_idle() {
    // TTL 100, idle 50: released at 60, both due at 110.
    let c = with_idle(with_ttl(cfg(Mode::Reuse), 100), 50);
    let mut base = created("s1");
    base.at(60).released("s1");
    base.no_vu();
    let mut idle = base.clone();
    idle.at(110).closed("s1", "idle");
    breaks("close_reason_exact", &idle.build(), &c, 4);
    let mut ttl = base.clone();
    ttl.at(110).closed("s1", "ttl");
    clean(&ttl.build(), &c);
    // At 100 only TTL is due; idle (at 110) is not.
    let mut early = base;
    early.at(100).closed("s1", "idle");
    breaks("close_reason_exact", &early.build(), &c, 4);
}

#[test]
fn close_reason_exact_a_session_found_expired_at_acquire() {
    // TTL 100, idle 1000: vu 1's acquire at 100 finds s1 past its TTL and
    // must say so (not `idle`, not `churned`, not `invalidated`).
    let c = with_idle(with_ttl(cfg(Mode::Reuse), 100), 1000);
    let at = |reason| {
        let mut t = created("s1");
        t.at(10).released("s1");
        t.at(100).acquire_start().closed("s1", reason);
        t.created("s2").acquire_created("s2");
        t.build()
    };
    for wrong in ["idle", "churned", "invalidated", "released", "dropped"] {
        breaks("close_reason_exact", &at(wrong), &c, 5);
    }
    clean(&at("ttl"), &c);
}

#[test]
fn close_reason_exact_structural_reasons() {
    let c = cfg(Mode::Reuse);
    let mut idle = created("s1");
    idle.at(5).released("s1");
    idle.at(6).no_vu();
    // Shutdown before the manager's close; failed after it was handed out;
    // dropped without a dropped lease.
    for reason in ["shutdown", "failed", "dropped"] {
        let mut t = idle.clone();
        t.closed("s1", reason);
        breaks("close_reason_exact", &t.build(), &c, 4);
    }
    // An unknown reason.
    let mut t = idle;
    t.closed("s1", "bored");
    breaks_with(
        "close_reason_exact",
        &t.build(),
        &c,
        4,
        &["metrics_match_trace", "closed_split_by_reason"],
    );
    // A dropped lease, closed as dropped.
    let mut t = created("s1");
    t.at(5).lease_dropped("s1").closed("s1", "dropped");
    clean(&t.build(), &c);
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
