//! The audit: the laws of `semantics.md` ("Laws that hold in ours at every
//! instant"), each a named check computed from a [`Trace`] alone (plus the
//! pool limits of the config, in [`AuditConfig`]), and the reachability
//! goals visible in a trace, counted.
//!
//! # What a trace shows, and what it cannot
//!
//! The manager reports every state change under its lock, but a pool grant
//! (a released session or a freed slot handed to the head waiter) is not an
//! event of its own: it shows only when the waiter's task runs (its
//! `acquire_ok`, or for a slot the `created` / `slot_freed` of the creation
//! it starts). The pool model below is therefore built to err on the safe
//! side for each law:
//!
//! - `pool_bound` counts sessions in use, idle (or in transit to a waiter)
//!   and the reservations it can see (`slot_reserved`, or a `created` by a
//!   VU that had none: a slot granted to a waiter). It never counts more
//!   than the pool holds, so a violation is real;
//! - `no_wait_with_capacity` flags an `acquire_wait` only when an idle
//!   session is visible, or when the free slots exceed the pending waiters
//!   (each of which may hold an unseen slot grant);
//! - `fifo` flags a waiter that got a session while an earlier waiter was
//!   still waiting and that earlier waiter then timed out or got a session
//!   later (a waiter whose wait ended ambiguously, by a slot grant or a
//!   cancellation, is not judged). It assumes woken tasks run in wake order,
//!   as on turmoil's single-threaded runtimes.
//!
//! Laws about the server (`created_equals_server_initialized`,
//! `clean_close`) are checked only when the trace holds server events.
//! Session ids are matched across servers by value.

use std::collections::{BTreeMap, BTreeSet};

use mcp_session::{CloseReason, SessionMetrics};
use serde::Serialize;

use crate::trace::{Source, Trace, TraceEvent};

/// The laws, by name, in report order.
pub const LAWS: [&str; 10] = [
    "pool_bound",
    "one_holder",
    "no_use_after_close",
    "acquire_ends_by_deadline",
    "fifo",
    "no_wait_with_capacity",
    "created_equals_server_initialized",
    "closed_split_by_reason",
    "reconnects_exact",
    "clean_close",
];

/// What the audit needs besides the trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditConfig {
    /// `pool_size` in pool mode (`None`: another mode; the pool laws are
    /// then not checked).
    pub pool_size: Option<usize>,
    /// `acquire_timeout_ms` in pool mode, if known: a timeout's
    /// `waited_ms` must not exceed it (plus `slack_ms`).
    pub acquire_timeout_ms: Option<u64>,
    /// How late a pool timeout may come after its deadline: the
    /// simulation's tick (a timer set at `t` fires in the tick reaching `t`).
    pub slack_ms: u64,
    /// Each worker's final metrics, by host, to check the trace against.
    pub metrics: BTreeMap<String, SessionMetrics>,
}

impl AuditConfig {
    /// Pool mode with `pool_size` and `acquire_timeout_ms`, 1 ms of slack.
    pub fn pool(pool_size: usize, acquire_timeout_ms: u64) -> Self {
        AuditConfig {
            pool_size: Some(pool_size),
            acquire_timeout_ms: Some(acquire_timeout_ms),
            slack_ms: 1,
            metrics: BTreeMap::new(),
        }
    }

    /// The same config, checking the trace against these metrics.
    pub fn with_metrics(mut self, metrics: BTreeMap<String, SessionMetrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// A broken law.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The law's name (one of [`LAWS`]).
    pub law: String,
    /// The index of the first violating event in the trace.
    pub event_index: usize,
    /// That event.
    pub event: TraceEvent,
    /// A few events around it.
    pub context: Vec<TraceEvent>,
    /// What went wrong.
    pub message: String,
}

/// What the audit found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Each law, with how many times it was checked.
    pub checks: BTreeMap<String, u64>,
    /// The first violation of each broken law.
    pub violations: Vec<Violation>,
    /// Closed sessions by reason, per worker host.
    pub closed: BTreeMap<String, BTreeMap<String, u64>>,
    /// The reachability goals, with how often each was reached (goals never
    /// reached are listed with 0).
    pub goals: BTreeMap<String, u64>,
}

impl AuditReport {
    /// Whether no law was broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violation of `law`, if any.
    pub fn violation(&self, law: &str) -> Option<&Violation> {
        self.violations.iter().find(|v| v.law == law)
    }

    /// The goals reached at least once.
    pub fn reached(&self) -> Vec<&str> {
        self.goals
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(g, _)| g.as_str())
            .collect()
    }
}

/// Audits `trace`: every law, and the goals.
pub fn audit(trace: &Trace, cfg: &AuditConfig) -> AuditReport {
    let mut a = Auditor::new(trace, cfg);
    a.run();
    a.finish()
}

/// The goals recognised from a trace.
///
/// Counted: `pool_wait`, `pool_timeout`, `waiter_served_after_release`,
/// `waiter_served_after_failed_create` (a `slot_freed` after a failed create
/// while waiters were pending, whose head waiter then created a session),
/// `idle_eviction`, `ttl_eviction_idle`, `ttl_in_use_closed_on_release`,
/// `recreate_after_404` (an `acquire_ok` with `reconnect`), `churn`,
/// `version_mismatch_rejected`, `acquire_cancelled_waiting`,
/// `acquire_cancelled_creating`, `close_with_waiters_pending` (a waiter
/// failed with manager-closed).
///
/// TODO (not visible reliably in a trace as it stands): acquire at the exact
/// instant of an eviction deadline (needs the deadline in the trace); 404 →
/// re-create split by mode (the mode is not in the trace); churn by ops vs
/// by time (the trigger is not in the `closed` event); server crash during
/// initialize (needs fault events in the trace).
pub const GOALS: [&str; 13] = [
    "pool_wait",
    "pool_timeout",
    "waiter_served_after_release",
    "waiter_served_after_failed_create",
    "idle_eviction",
    "ttl_eviction_idle",
    "ttl_in_use_closed_on_release",
    "recreate_after_404",
    "churn",
    "version_mismatch_rejected",
    "acquire_cancelled_waiting",
    "acquire_cancelled_creating",
    "close_with_waiters_pending",
];

/// A session in the pool model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolSt {
    /// Being created in a reservation (counted with the reservation).
    Creating,
    /// Leased; `closed` if the manager closed it meanwhile.
    InUse { closed: bool },
    /// Idle in the pool.
    Idle,
    /// Released while waiters were pending: maybe handed to one.
    Transit,
}

/// How a waiter's wait ended, for `fifo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WaitEnd {
    Session,
    Timeout,
    Ambiguous,
}

/// One pool waiter.
#[derive(Clone, Debug)]
struct Waiter {
    vu: u64,
    seq: u64,
}

/// One worker host's state.
#[derive(Default)]
struct Host {
    // pool model
    sessions: BTreeMap<String, PoolSt>,
    reserved: BTreeMap<u64, u64>,
    waiting: Vec<Waiter>,
    next_seq: u64,
    /// Waiters that got a session: (arrival seq, serve index).
    served: Vec<(u64, usize)>,
    /// Waiters granted a slot freed by a failed create, awaiting their
    /// `created`.
    freed_for: BTreeSet<u64>,
    // holders and closes
    holder: BTreeMap<String, u64>,
    closed: BTreeMap<String, usize>,
    invalidated: BTreeSet<String>,
    created: BTreeMap<String, usize>,
    reasons: BTreeMap<String, u64>,
    // acquires
    open: BTreeMap<u64, Vec<(usize, Option<u64>)>>,
    // reconnects
    owed_pool: u64,
    owed_vu: BTreeSet<u64>,
    reconnects: u64,
    closing: bool,
    closed_at: Option<usize>,
    /// Sessions whose transport close (DELETE) failed: refused or
    /// unreachable, so the server may rightly still hold them.
    close_failed: BTreeSet<String>,
    last_index: usize,
    last_release: Option<String>,
}

struct Auditor<'a> {
    trace: &'a Trace,
    cfg: &'a AuditConfig,
    hosts: BTreeMap<String, Host>,
    finished: BTreeMap<String, Host>,
    checks: BTreeMap<String, u64>,
    first: BTreeMap<String, (usize, String)>,
    goals: BTreeMap<String, u64>,
}

impl<'a> Auditor<'a> {
    fn new(trace: &'a Trace, cfg: &'a AuditConfig) -> Self {
        Auditor {
            trace,
            cfg,
            hosts: BTreeMap::new(),
            finished: BTreeMap::new(),
            checks: LAWS.iter().map(|l| ((*l).to_owned(), 0)).collect(),
            first: BTreeMap::new(),
            goals: GOALS.iter().map(|g| ((*g).to_owned(), 0)).collect(),
        }
    }

    fn check(&mut self, law: &str) {
        *self.checks.entry(law.to_owned()).or_default() += 1;
    }

    fn fail(&mut self, law: &str, index: usize, message: String) {
        self.first.entry(law.to_owned()).or_insert((index, message));
    }

    fn goal(&mut self, goal: &str) {
        *self.goals.entry(goal.to_owned()).or_default() += 1;
    }

    fn run(&mut self) {
        let trace = self.trace;
        for (i, e) in trace.events.iter().enumerate() {
            if e.source == Source::Manager {
                self.manager_event(i, e);
            }
        }
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        for h in hosts {
            self.end_of_host(&h);
        }
        self.server_laws();
    }

    fn manager_event(&mut self, i: usize, e: &TraceEvent) {
        let pool = self.cfg.pool_size;
        let host = std::mem::take(self.hosts.entry(e.host.clone()).or_default());
        let mut h = host;
        h.last_index = i;
        let vu = e.vu.unwrap_or(0);
        let sid = e.session.clone().unwrap_or_default();
        let prev_release = h.last_release.take();
        match e.event.as_str() {
            "acquire_start" => {
                self.check("acquire_ends_by_deadline");
                h.open.entry(vu).or_default().push((i, None));
            }
            "acquire_wait" => {
                self.goal("pool_wait");
                if let Some(o) = h.open.get_mut(&vu).and_then(|v| v.last_mut()) {
                    o.1 = e.u64("deadline_ms");
                }
                if let Some(size) = pool {
                    self.check("no_wait_with_capacity");
                    let idle = h.sessions.values().filter(|s| **s == PoolSt::Idle).count();
                    let occ = occupancy(&h);
                    if idle > 0 {
                        self.fail(
                            "no_wait_with_capacity",
                            i,
                            format!("vu-{vu} waits while {idle} session(s) are idle"),
                        );
                    } else if occ + (h.waiting.len() as u64) < size as u64 {
                        self.fail(
                            "no_wait_with_capacity",
                            i,
                            format!(
                                "vu-{vu} waits while only {occ} of {size} are taken and {} wait",
                                h.waiting.len()
                            ),
                        );
                    }
                }
                h.next_seq += 1;
                h.waiting.push(Waiter {
                    vu,
                    seq: h.next_seq,
                });
            }
            "acquire_ok" => {
                let created = e.bool("created").unwrap_or(false);
                let reconnect = e.bool("reconnect").unwrap_or(false);
                self.end_acquire(&mut h, i, vu, None);
                let end = if created {
                    WaitEnd::Ambiguous
                } else {
                    WaitEnd::Session
                };
                if let Some(w) = self.end_wait(&mut h, i, vu, end) {
                    if !created {
                        self.goal("waiter_served_after_release");
                    }
                    let _ = w;
                }
                // one holder
                self.check("one_holder");
                if let Some(other) = h.holder.get(&sid) {
                    let msg = format!("{sid} handed to vu-{vu} while vu-{other} holds it");
                    self.fail("one_holder", i, msg);
                }
                h.holder.insert(sid.clone(), vu);
                // pool model
                if created {
                    let r = h.reserved.entry(vu).or_default();
                    *r = r.saturating_sub(1);
                }
                h.sessions
                    .insert(sid.clone(), PoolSt::InUse { closed: false });
                // reconnects
                if created {
                    self.check("reconnects_exact");
                    let owed = if pool.is_some() {
                        let o = h.owed_pool > 0;
                        h.owed_pool = h.owed_pool.saturating_sub(1);
                        o
                    } else {
                        h.owed_vu.remove(&vu)
                    };
                    if owed != reconnect {
                        self.fail(
                            "reconnects_exact",
                            i,
                            format!(
                                "{sid} created for vu-{vu}: reconnect={reconnect}, but a \
                                 replacement was {}owed",
                                if owed { "" } else { "not " }
                            ),
                        );
                    }
                }
                if reconnect {
                    h.reconnects += 1;
                    self.goal("recreate_after_404");
                }
            }
            "acquire_timeout" => {
                self.goal("pool_timeout");
                let waited = e.u64("waited_ms");
                self.end_acquire(&mut h, i, vu, Some((e.clock_ms(), waited)));
                self.end_wait(&mut h, i, vu, WaitEnd::Timeout);
                h.reserved.remove(&vu);
            }
            "acquire_error" => {
                if e.str("error") == Some("version_negotiation") {
                    self.goal("version_mismatch_rejected");
                }
                self.end_acquire(&mut h, i, vu, None);
                let was_waiting = h.waiting.iter().any(|w| w.vu == vu);
                if was_waiting && e.str("error") == Some("manager_closed") {
                    self.goal("close_with_waiters_pending");
                }
                self.end_wait(&mut h, i, vu, WaitEnd::Ambiguous);
                h.reserved.remove(&vu);
            }
            "acquire_cancelled" => {
                if e.bool("waiting") == Some(true) {
                    self.goal("acquire_cancelled_waiting");
                } else {
                    self.goal("acquire_cancelled_creating");
                }
                self.end_acquire(&mut h, i, vu, None);
                self.end_wait(&mut h, i, vu, WaitEnd::Ambiguous);
                h.reserved.remove(&vu);
            }
            "slot_reserved" => {
                *h.reserved.entry(vu).or_default() += 1;
            }
            "slot_freed" => {
                self.end_wait(&mut h, i, vu, WaitEnd::Ambiguous);
                if let Some(r) = h.reserved.get_mut(&vu) {
                    *r = r.saturating_sub(1);
                }
                if let Some(head) = h.waiting.first() {
                    h.freed_for.insert(head.vu);
                }
            }
            "created" => {
                self.check("closed_split_by_reason");
                if h.freed_for.remove(&vu) {
                    self.goal("waiter_served_after_failed_create");
                }
                self.end_wait(&mut h, i, vu, WaitEnd::Ambiguous);
                let r = h.reserved.entry(vu).or_default();
                if *r == 0 {
                    *r = 1;
                }
                h.sessions.insert(sid.clone(), PoolSt::Creating);
                if h.created.insert(sid.clone(), i).is_some() {
                    self.fail("closed_split_by_reason", i, format!("{sid} created twice"));
                }
            }
            "operation_start" => {
                self.check("no_use_after_close");
                if h.closed.contains_key(&sid) {
                    self.fail(
                        "no_use_after_close",
                        i,
                        format!("operation on {sid} after it was closed"),
                    );
                } else if h.invalidated.contains(&sid) {
                    self.fail(
                        "no_use_after_close",
                        i,
                        format!("operation on {sid} after it was invalidated"),
                    );
                }
            }
            "released" | "invalidated" | "lease_dropped" => {
                match h.holder.get(&sid) {
                    Some(v) if *v == vu => {
                        h.holder.remove(&sid);
                    }
                    other => {
                        let msg = format!(
                            "vu-{vu} gives back {sid}, held by {}",
                            other.map_or("nobody".to_owned(), |v| format!("vu-{v}"))
                        );
                        self.fail("one_holder", i, msg);
                    }
                }
                if e.event == "released" {
                    let closed =
                        matches!(h.sessions.get(&sid), Some(PoolSt::InUse { closed: true }))
                            || h.closed.contains_key(&sid);
                    if closed {
                        h.sessions.remove(&sid);
                    } else if h.waiting.is_empty() {
                        h.sessions.insert(sid.clone(), PoolSt::Idle);
                    } else {
                        h.sessions.insert(sid.clone(), PoolSt::Transit);
                    }
                    h.last_release = Some(sid.clone());
                } else {
                    h.sessions.remove(&sid);
                    if e.event == "invalidated" {
                        h.invalidated.insert(sid.clone());
                        if !h.closing {
                            h.owed_pool += 1;
                            h.owed_vu.insert(vu);
                        }
                    }
                }
            }
            "closed" => {
                let reason = e.str("reason").unwrap_or("unknown").to_owned();
                *h.reasons.entry(reason.clone()).or_default() += 1;
                match reason.as_str() {
                    "idle" => self.goal("idle_eviction"),
                    "churned" => self.goal("churn"),
                    "ttl" => {
                        if prev_release.as_deref() == Some(sid.as_str()) {
                            self.goal("ttl_in_use_closed_on_release");
                        } else if h.sessions.get(&sid) == Some(&PoolSt::Idle) || pool.is_none() {
                            self.goal("ttl_eviction_idle");
                        }
                    }
                    _ => {}
                }
                if !h.created.contains_key(&sid) {
                    self.fail(
                        "closed_split_by_reason",
                        i,
                        format!("{sid} closed ({reason}) but never created"),
                    );
                }
                if h.closed.insert(sid.clone(), i).is_some() {
                    self.fail(
                        "closed_split_by_reason",
                        i,
                        format!("{sid} closed twice (again for {reason})"),
                    );
                }
                match h.sessions.get(&sid).copied() {
                    Some(PoolSt::InUse { .. }) => {
                        h.sessions
                            .insert(sid.clone(), PoolSt::InUse { closed: true });
                    }
                    Some(_) => {
                        h.sessions.remove(&sid);
                    }
                    None => {}
                }
            }
            "manager_closing" => {
                h.closing = true;
            }
            "close_failed" => {
                h.close_failed.insert(sid.clone());
            }
            "manager_closed" => {
                h.closed_at = Some(i);
            }
            _ => {}
        }
        if let Some(size) = pool {
            self.check("pool_bound");
            let occ = occupancy(&h);
            if occ > size as u64 {
                self.fail(
                    "pool_bound",
                    i,
                    format!("{occ} sessions/slots taken > pool_size {size}"),
                );
            }
        }
        self.hosts.insert(e.host.clone(), h);
    }

    /// Ends the VU's open acquire; `timeout` is `(clock_ms, waited_ms)` of a
    /// pool timeout.
    fn end_acquire(
        &mut self,
        h: &mut Host,
        i: usize,
        vu: u64,
        timeout: Option<(u64, Option<u64>)>,
    ) {
        let Some(open) = h.open.get_mut(&vu).and_then(Vec::pop) else {
            self.fail(
                "acquire_ends_by_deadline",
                i,
                format!("vu-{vu}: an acquire ended that never started"),
            );
            return;
        };
        let Some((now, waited)) = timeout else {
            return;
        };
        let slack = self.cfg.slack_ms;
        match open.1 {
            Some(deadline) if now > deadline + slack => self.fail(
                "acquire_ends_by_deadline",
                i,
                format!("vu-{vu} timed out at {now}ms, after its deadline {deadline}ms"),
            ),
            None => self.fail(
                "acquire_ends_by_deadline",
                i,
                format!("vu-{vu} timed out without waiting"),
            ),
            _ => {}
        }
        if let (Some(limit), Some(w)) = (self.cfg.acquire_timeout_ms, waited) {
            if w > limit + slack {
                self.fail(
                    "acquire_ends_by_deadline",
                    i,
                    format!("vu-{vu} waited {w}ms > acquire_timeout_ms {limit}"),
                );
            }
        }
    }

    /// Ends the VU's pool wait, if it is waiting; returns its arrival seq.
    fn end_wait(&mut self, h: &mut Host, i: usize, vu: u64, end: WaitEnd) -> Option<u64> {
        let pos = h.waiting.iter().position(|w| w.vu == vu)?;
        let w = h.waiting.remove(pos);
        if self.cfg.pool_size.is_none() {
            return Some(w.seq);
        }
        self.check("fifo");
        if end != WaitEnd::Ambiguous {
            // A later waiter already got a session while this one waited.
            if let Some((seq, at)) = h.served.iter().find(|(s, _)| *s > w.seq) {
                let msg = format!(
                    "waiter #{seq} was served before vu-{vu} (waiter #{}), which then {}",
                    w.seq,
                    if end == WaitEnd::Timeout {
                        "timed out"
                    } else {
                        "got a session"
                    }
                );
                let at = *at;
                self.fail("fifo", at, msg);
            }
        }
        if end == WaitEnd::Session {
            h.served.push((w.seq, i));
        }
        // Forget serves no pending waiter can be judged against.
        if let Some(min) = h.waiting.iter().map(|w| w.seq).min() {
            h.served.retain(|(s, _)| *s > min);
        } else {
            h.served.clear();
        }
        Some(w.seq)
    }

    fn end_of_host(&mut self, name: &str) {
        let Some(h) = self.hosts.remove(name) else {
            return;
        };
        for (vu, open) in &h.open {
            if let Some((i, _)) = open.first() {
                self.fail(
                    "acquire_ends_by_deadline",
                    *i,
                    format!("vu-{vu}'s acquire never ended"),
                );
            }
        }
        if let Some(at) = h.closed_at {
            for (sid, i) in &h.created {
                if !h.closed.contains_key(sid) {
                    let _ = i;
                    self.fail(
                        "closed_split_by_reason",
                        at,
                        format!("{sid} still open after the manager closed"),
                    );
                }
            }
        }
        if let Some(m) = self.cfg.metrics.get(name) {
            let at = h.closed_at.unwrap_or(h.last_index);
            self.check("closed_split_by_reason");
            if m.total_created != h.created.len() as u64 {
                self.fail(
                    "closed_split_by_reason",
                    at,
                    format!(
                        "{name}: total_created {} but {} created events",
                        m.total_created,
                        h.created.len()
                    ),
                );
            }
            for r in CloseReason::ALL {
                let seen = h.reasons.get(r.as_str()).copied().unwrap_or(0);
                if m.closed.get(r) != seen {
                    self.fail(
                        "closed_split_by_reason",
                        at,
                        format!(
                            "{name}: metrics closed.{} = {} but {seen} closed events",
                            r.as_str(),
                            m.closed.get(r)
                        ),
                    );
                }
            }
            self.check("reconnects_exact");
            if m.reconnects != h.reconnects {
                self.fail(
                    "reconnects_exact",
                    at,
                    format!(
                        "{name}: metrics reconnects {} but {} reconnect acquires",
                        m.reconnects, h.reconnects
                    ),
                );
            }
        }
        self.finished.insert(name.to_owned(), h);
    }

    fn server_laws(&mut self) {
        let trace = self.trace;
        if !trace.events.iter().any(|e| e.source == Source::Server) {
            return;
        }
        let mut server_created = BTreeSet::new();
        let mut live: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut notified = Vec::new();
        for (i, e) in trace.events.iter().enumerate() {
            if e.source != Source::Server {
                continue;
            }
            let sid = e.session.clone().unwrap_or_default();
            let set = live.entry(e.host.clone()).or_default();
            match e.event.as_str() {
                "session_created" => {
                    server_created.insert(sid.clone());
                    set.insert(sid);
                }
                "deleted" | "expired" => {
                    set.remove(&sid);
                }
                "sessions_cleared" => set.clear(),
                "notification" if e.str("method") == Some("notifications/initialized") => {
                    notified.push((i, sid));
                }
                _ => {}
            }
        }
        let mut all_created = BTreeSet::new();
        let finished = std::mem::take(&mut self.finished);
        for (host, h) in &finished {
            for (sid, i) in &h.created {
                all_created.insert(sid.clone());
                if sid.starts_with("local-") {
                    continue;
                }
                self.check("created_equals_server_initialized");
                if !server_created.contains(sid) {
                    self.fail(
                        "created_equals_server_initialized",
                        *i,
                        format!("{host} counts {sid} created; no server initialized it"),
                    );
                }
            }
            if let Some(at) = h.closed_at {
                // "Where reachable": a session whose DELETE the client sent
                // and saw fail (an injected 5xx, a reset, a partition) is not
                // a leak of the client's.
                for sid in h.created.keys().filter(|s| !h.close_failed.contains(*s)) {
                    self.check("clean_close");
                    if let Some((server, _)) = live.iter().find(|(_, s)| s.contains(sid)) {
                        self.fail(
                            "clean_close",
                            at,
                            format!("{sid} of {host} still open on {server} after close"),
                        );
                    }
                }
            }
        }
        for (i, sid) in notified {
            self.check("created_equals_server_initialized");
            if !all_created.contains(&sid) {
                self.fail(
                    "created_equals_server_initialized",
                    i,
                    format!("the server saw {sid} initialized; no manager counted it"),
                );
            }
        }
        self.finished = finished;
    }

    fn finish(self) -> AuditReport {
        let events = &self.trace.events;
        let mut violations = Vec::new();
        for law in LAWS {
            if let Some((i, message)) = self.first.get(law) {
                let i = (*i).min(events.len().saturating_sub(1));
                let from = i.saturating_sub(3);
                let to = (i + 4).min(events.len());
                violations.push(Violation {
                    law: law.to_owned(),
                    event_index: i,
                    event: events.get(i).cloned().unwrap_or_else(|| TraceEvent {
                        t_ms: 0,
                        host: String::new(),
                        source: Source::Manager,
                        event: String::new(),
                        session: None,
                        vu: None,
                        detail: serde_json::Value::Null,
                    }),
                    context: events.get(from..to).map(<[_]>::to_vec).unwrap_or_default(),
                    message: message.clone(),
                });
            }
        }
        let closed = self
            .finished
            .iter()
            .map(|(h, st)| (h.clone(), st.reasons.clone()))
            .collect();
        AuditReport {
            checks: self.checks,
            violations,
            closed,
            goals: self.goals,
        }
    }
}

/// Sessions in use, idle or in transit, plus visible reservations.
fn occupancy(h: &Host) -> u64 {
    let sessions = h
        .sessions
        .values()
        .filter(|s| **s != PoolSt::Creating)
        .count() as u64;
    sessions + h.reserved.values().sum::<u64>()
}
