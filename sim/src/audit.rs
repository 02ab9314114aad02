//! The audit: the laws of `semantics.md` ("Laws that hold in ours at every
//! instant"), each a named check computed from a [`Trace`] alone (plus what
//! the manager was configured with, in [`AuditConfig`]), and the
//! reachability goals visible in a trace, counted.
//!
//! # The pool model
//!
//! The manager reports every state change of the pool under its lock, in
//! order, so the audit replays the pool exactly, per worker host:
//!
//! - sessions: in use (by one VU), idle, being created in a reserved slot,
//!   or granted to a waiter (`waiter_granted` with the session: handed to
//!   that waiter, whose task has not run yet);
//! - reservations, per VU: `slot_reserved` (a free slot taken by an
//!   acquire), or `waiter_granted` with `slot` (a free slot handed to a
//!   waiter); each ends with the session's `acquire_ok`, a `slot_freed`, or
//!   the acquire failing;
//! - the waiter queue, in arrival order (`acquire_wait`, with its deadline),
//!   left by a grant, a timeout, a cancellation or the manager's close.
//!
//! One release, invalidation, failed create or eviction is a short chain of
//! events (`released`, then `closed` and `waiter_granted` as the pool
//! passes the capacity on): the capacity law is checked where a chain ends,
//! at the next event that is not part of it. A waiter whose deadline has
//! come may already have been dropped from the queue by the evictor (that
//! is not an event: its `acquire_timeout` follows when its task runs), so
//! the laws about waiting count only waiters whose deadline is still ahead.
//!
//! # The laws, as checked
//!
//! - `pool_bound`: after every event, the sessions in use, idle or granted
//!   plus the reserved slots are at most `pool_size`; a session is created
//!   only in a slot its VU holds, a slot is freed only by its holder, and
//!   an acquire that ends without a session holds no grant and no slot.
//! - `one_holder`: a session is handed out or granted only when nobody
//!   holds it (or it was granted to that very VU), and given back only by
//!   its holder.
//! - `no_use_after_close`: no operation starts on a session the client
//!   closed or invalidated.
//! - `acquire_ends_by_deadline`: every `acquire_start` ends (with a
//!   session, a timeout, an error or a cancellation); a pool timeout comes
//!   neither before its deadline nor later than it (plus slack) after
//!   waiting no longer than `acquire_timeout_ms` (so a waiter the
//!   manager's close drops before its deadline must end with
//!   `manager_closed`, not a timeout); no acquire is still queued past its
//!   deadline.
//! - `fifo`: a grant goes to the earliest queued waiter whose deadline is
//!   ahead (one passed over because its deadline had come must then end
//!   without a session); no acquire takes an idle session or a free slot
//!   while such a waiter is queued; a waiter leaves the queue with a
//!   session only through a grant.
//! - `no_wait_with_capacity`: where a chain ends (and where a waiter
//!   arrives), no waiter whose deadline is ahead is queued while a session
//!   is idle or a slot is free.
//! - `created_equals_server_initialized`: every session a manager counts
//!   created was initialized by a server, and every session a server saw
//!   `notifications/initialized` for was counted by a manager (a
//!   stateless-era context, `created` with era `modern`, has no server
//!   session and is passed by, here and in `clean_close`).
//! - `closed_split_by_reason`: each session is created once and closed
//!   once, with one reason; a churned session had reached its churn
//!   interval; after `close()` none is open; the metrics' counts by reason
//!   match the trace.
//! - `reconnects_exact`: a session created after an invalidation (in pool
//!   mode: any, in the others: the same VU's) is flagged `reconnect`, and
//!   no other is; the metrics agree.
//! - `clean_close`: after `close()` no server still holds a session the
//!   client created, unless its DELETE was reported failed for a cause
//!   the trace holds (a network fault on its worker or a server, an
//!   injected failure, the server answering it as unknown: see
//!   [`crate::cause_laws`]; a DELETE refused with 400 because it carried
//!   no session id is not excused) or a server
//!   answered the session as unknown (404: the client sends no DELETE for
//!   a session declared gone; behind a balancer that is not sticky, the
//!   instance that answered may not be the one that minted it); and no worker
//!   host still holds a TCP stream ([`AuditConfig::streams_at_end`]).
//! - `metrics_match_trace`: the manager's counters say what happened
//!   (the reference's defects 4 to 6 were counters that drifted): pool
//!   waits, pool timeouts and cancelled waits equal their events, and the
//!   TTL, idle and total eviction counts equal the evictions closed.
//! - `no_fallback_after_modern_error`: an auto-era manager never falls
//!   back to the legacy era (`era_probed` with verdict `legacy`) on an
//!   answer that carries one of the stateless era's own errors (-32020,
//!   -32021, -32022, named in the probe's `answer`): a server that answers
//!   those speaks the stateless era, and -32022 in particular asks for a
//!   retry at another revision, not a fallback.
//!
//! The laws of leases and modes are checked by [`crate::lease_laws`]
//! (where each is described in full), from the manager's events:
//!
//! - `no_stale_handout`: no session is handed out at or after its TTL or
//!   idle deadline, and one released past its TTL is closed then.
//! - `no_close_under_holder`: a leased, granted or creating session is
//!   closed only by shutdown, by its holder's give-back, or as `failed`.
//! - `no_grant_to_departed`: a grant goes only to a queued acquire.
//! - `one_lease_per_vu`: a VU holds one lease at a time, and is refused as
//!   busy only while it holds one.
//! - `pool_idle_first`: the pool hands out idle sessions first, oldest
//!   first.
//! - `reuse_one_session_per_vu`: reuse and churn keep one session per VU
//!   and make a new one only once it is gone.
//! - `churn_exact`: churn retires a session exactly when due.
//! - `per_request_closes_on_release`: per-request closes on release.
//! - `no_session_after_close`: once the manager closes, no acquire gets
//!   or creates a session.
//! - `close_reason_exact`: every close's reason is the right one.
//!
//! The laws of the client's wire behaviour are checked by
//! [`crate::wire_laws`] (where each is described in full), from the
//! server's wire log:
//!
//! - `modern_envelope_agrees`: a stateless-era request's routing headers
//!   agree with its body and envelope, and it carries no session id.
//! - `no_legacy_wire_after_modern`: once a manager chose the stateless era,
//!   no legacy traffic starts from its worker until it doubts that.
//! - `one_retry_per_refusal`: one retry per -32022 refusal, per operation.
//! - `legacy_version_after_fallback`: a legacy session's requests carry
//!   the revision its `initialize` was answered.
//! - `mrtr_retry_exact`: an MRTR retry carries a state a server issued to
//!   the same request, once.
//! - `discover_fresh`: a stateless context is made only on a fresh
//!   discover result.
//! - `era_counters_match`: the metrics' era counters say what the trace
//!   shows.
//!
//! One law is the run's own, not the trace's ([`RUN_LAWS`]; checked once
//! per run by [`crate::run::run`], never by [`audit`]):
//!
//! - `liveness`: the run finished within its budget of simulated time and
//!   of scheduler steps, derived from its schedule
//!   ([`crate::liveness::Budget::for_schedule`]); a run over either is
//!   stopped there, and the violation shows its last events.
//!
//! The laws that explain failures, and the server's side of the legacy
//! wire, are checked by [`crate::cause_laws`] (where each is described in
//! full, with what counts as a cause):
//!
//! - `failure_explained`: every failed step of a VU has a cause in the
//!   trace (a fault, an answer the server chose, a deadline).
//! - `legacy_headers_present`: legacy requests carry `Mcp-Session-Id` and,
//!   from 2025-06-18 on, `MCP-Protocol-Version`.
//! - `no_request_after_expiry_seen`: nothing names a session after its VU
//!   read that it is gone.
//! - `answer_delivered_intact`: the result a VU got is one a server sent.
//!
//! Laws about the server (`created_equals_server_initialized`,
//! `clean_close`) are checked only when the trace holds server events.
//! Session ids are matched across servers by value.

use std::collections::{BTreeMap, BTreeSet};

use mcp_session::{CloseReason, Era, Mode, SessionConfig, SessionMetrics, VersionPolicy};
use serde::Serialize;

use crate::faults::Action;
use crate::server::{ServerEra, ServerEvent};
use crate::trace::{FaultRecord, Kind, ManagerEvent, ManagerRecord, Source, Trace, TraceEvent};

/// The laws, by name, in report order.
pub const LAWS: [&str; 34] = [
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
    "metrics_match_trace",
    // The lease and mode laws (`crate::lease_laws::LEASE_LAWS`).
    "no_stale_handout",
    "no_close_under_holder",
    "no_grant_to_departed",
    "one_lease_per_vu",
    "pool_idle_first",
    "reuse_one_session_per_vu",
    "churn_exact",
    "per_request_closes_on_release",
    "no_session_after_close",
    "close_reason_exact",
    "no_fallback_after_modern_error",
    "modern_envelope_agrees",
    "no_legacy_wire_after_modern",
    "one_retry_per_refusal",
    "legacy_version_after_fallback",
    "mrtr_retry_exact",
    "discover_fresh",
    "era_counters_match",
    "liveness",
    "failure_explained",
    "legacy_headers_present",
    "no_request_after_expiry_seen",
    "answer_delivered_intact",
];

/// The laws of [`LAWS`] a run checks itself rather than [`audit`] from
/// the trace (listed by the audit with no checks).
pub const RUN_LAWS: [&str; 1] = ["liveness"];

/// What the audit needs besides the trace: the manager's configuration
/// (every field optional: a trace audited without it is checked for what
/// can be checked, and the goals that need it are not counted).
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
    /// Each worker's TCP streams still held after its manager was closed
    /// (`crate::topology::World::streams_at_end`), for `clean_close`: each
    /// must be 0.
    pub streams_at_end: BTreeMap<String, i64>,
    /// The manager's mode, if known (`None` with a `pool_size`: pool).
    pub mode: Option<Mode>,
    /// `ttl_ms`, when TTL eviction is on.
    pub ttl_ms: Option<u64>,
    /// `max_idle_ms`, when idle eviction is on.
    pub idle_ms: Option<u64>,
    /// In churn mode, churn after this many operations.
    pub churn_ops: Option<u64>,
    /// In churn mode, churn once a session is this old (ms; used only when
    /// `churn_ops` is `None`, as in the manager).
    pub churn_ms: Option<u64>,
    /// The protocol version policy.
    pub version_policy: Option<VersionPolicy>,
    /// The era setting (`Some(Era::Modern)`: the managers never speak the
    /// legacy era, see `no_legacy_wire_after_modern`).
    pub era: Option<Era>,
}

impl AuditConfig {
    /// Pool mode with `pool_size` and `acquire_timeout_ms`, 1 ms of slack,
    /// nothing else known.
    pub fn pool(pool_size: usize, acquire_timeout_ms: u64) -> Self {
        AuditConfig {
            pool_size: Some(pool_size),
            acquire_timeout_ms: Some(acquire_timeout_ms),
            slack_ms: 1,
            mode: Some(Mode::Pool),
            ..AuditConfig::default()
        }
    }

    /// Everything the audit can use of a manager's config, 1 ms of slack.
    pub fn for_session(cfg: &SessionConfig) -> Self {
        let pool = cfg.mode == Mode::Pool;
        let churn = cfg.mode == Mode::Churn;
        let positive = |v: u64| (v > 0).then_some(v);
        AuditConfig {
            pool_size: pool.then_some(cfg.pool_size),
            acquire_timeout_ms: pool.then_some(cfg.acquire_timeout_ms),
            slack_ms: 1,
            metrics: BTreeMap::new(),
            streams_at_end: BTreeMap::new(),
            mode: Some(cfg.mode),
            ttl_ms: positive(cfg.ttl_ms),
            idle_ms: positive(cfg.max_idle_ms),
            churn_ops: churn.then_some(cfg.churn_ops()).and_then(positive),
            churn_ms: (churn && cfg.churn_ops() == 0)
                .then_some(cfg.churn_interval_ms)
                .and_then(positive),
            version_policy: Some(cfg.protocol_version_policy),
            era: Some(cfg.era),
        }
    }

    /// The same config, checking that each worker's TCP streams at the end
    /// are these (all must be 0).
    pub fn with_streams_at_end(mut self, streams: BTreeMap<String, i64>) -> Self {
        self.streams_at_end = streams;
        self
    }

    /// The same config, checking the trace against these metrics.
    pub fn with_metrics(mut self, metrics: BTreeMap<String, SessionMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The mode, as far as known.
    fn effective_mode(&self) -> Option<Mode> {
        self.mode
            .or_else(|| self.pool_size.is_some().then_some(Mode::Pool))
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

/// Audits a trace that may stop anywhere — a path of `mcp-sim explore`,
/// audited after every step: the manager events' laws, each event checked
/// as [`audit`] checks it, and the capacity law at the end of the last
/// chain; but not what only the end of a whole run can tell (acquires that
/// never ended, sessions open after the close, the final metrics), nor the
/// server's and the wire's laws (an explored path has no server).
pub fn audit_prefix(trace: &Trace, cfg: &AuditConfig) -> AuditReport {
    audit_prefix_state(trace, cfg).0
}

/// [`audit_prefix`], and what the laws keep from `trace` that can still
/// decide a verdict on the events to come ([`LawState`]): what
/// `mcp-sim explore` adds to the state it compares, so that two paths the
/// laws would judge apart later are not merged.
pub fn audit_prefix_state(trace: &Trace, cfg: &AuditConfig) -> (AuditReport, LawState) {
    let mut a = Auditor::new(trace, cfg);
    for (i, e) in trace.events.iter().enumerate() {
        if let Kind::Manager(m) = &e.kind {
            a.manager_event(i, e, m);
        }
    }
    let hosts: Vec<&str> = a.hosts.keys().copied().collect();
    for name in hosts {
        if let Some(h) = a.hosts.remove(name) {
            if let Some(at) = h.pending_capacity {
                a.capacity(&h, at, h.clock);
            }
            a.finished.insert(name, *h);
        }
    }
    // The lease and mode laws judge each event as it comes (a close owed
    // at a release is owed in that release's own chain of events, which an
    // explored step always holds whole).
    let (leases, lease_state) = crate::lease_laws::check_with_state(trace, cfg);
    a.merge(leases);
    let mut state = LawState::default();
    for (name, h) in &a.finished {
        let lease = lease_state.get(*name).cloned().unwrap_or_default();
        state
            .hosts
            .insert((*name).to_owned(), (h.pending(cfg), lease));
    }
    (a.finish(), state)
}

/// Where a [`LawState`] is written: the explorer's state encoder. Sessions
/// are written by id and named by the sink, consistently with the rest of
/// the state it encodes (the same session, the same name).
pub trait StateSink {
    /// A value.
    fn push(&mut self, v: u64);
    /// A session, by its id in the trace.
    fn session(&mut self, sid: &str);
    /// The sink's name for `sid`, if it has written it already.
    fn named(&self, sid: &str) -> Option<u64>;
}

/// A time a law compares with the clock, kept as far as the comparison
/// can tell it apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Time {
    /// An instant in the past (ms) whose age is compared (`age >= limit`)
    /// with limits up to `cap`: ages at or past `cap` are alike.
    Since { at: u64, cap: u64 },
    /// A deadline (ms), compared as "still ahead" and "more than `slack`
    /// behind": everything further behind is alike.
    Until { at: u64, slack: u64 },
}

impl Time {
    /// The time, as the laws will read it from clock `now` on.
    pub(crate) fn key(self, now: u64) -> u64 {
        match self {
            Time::Since { at, cap } => now.saturating_sub(at).min(cap),
            Time::Until { at, slack } => {
                let floor = -(slack as i64) - 1;
                ((at as i64 - now as i64).max(floor) - floor) as u64
            }
        }
    }
}

/// Writes an optional time (0: none).
pub(crate) fn push_time(sink: &mut dyn StateSink, t: Option<Time>, now: u64) {
    match t {
        None => sink.push(0),
        Some(t) => sink.push(1 + t.key(now)),
    }
}

/// Writes an optional session (0: none).
pub(crate) fn push_session(sink: &mut dyn StateSink, sid: Option<&str>) {
    match sid {
        None => sink.push(0),
        Some(sid) => {
            sink.push(1);
            sink.session(sid);
        }
    }
}

/// `items` in a canonical order: those the sink named already, by name,
/// then the others by id (they are named as they are written).
pub(crate) fn by_name<'s, R>(
    sink: &dyn StateSink,
    items: &'s [(String, R)],
) -> Vec<&'s (String, R)> {
    let mut v: Vec<&(String, R)> = items.iter().collect();
    v.sort_by_cached_key(|(sid, _)| (sink.named(sid).unwrap_or(u64::MAX), sid.clone()));
    v
}

/// What the laws keep from a trace prefix that can still decide a verdict
/// on events to come — the laws' memory across events, as opposed to what
/// each event shows: a reconnect owed after an invalidation, a VU's open
/// acquires, the waiters queued and their deadlines, who holds or was
/// granted what, each session's state, age and operations as far as a law
/// still compares them, the sessions closed or invalidated. What only
/// feeds a goal, a message or the end of a whole run (the final metrics,
/// sessions left open) is left out, and so are the ids of sessions no law
/// will see again. Built by [`audit_prefix_state`] from the audit's own
/// models (this module's and [`crate::lease_laws`]'s), written by
/// [`LawState::encode`].
#[derive(Clone, Debug, Default)]
pub struct LawState {
    hosts: BTreeMap<String, (HostState, crate::lease_laws::LeaseState)>,
}

impl LawState {
    /// Writes the state as the laws will read it from clock `now` on
    /// (times relative to `now`, capped where no law tells them apart).
    /// Deterministic: every collection is written in a fixed order.
    pub fn encode(&self, now: u64, sink: &mut dyn StateSink) {
        for (n, (audit, lease)) in self.hosts.values().enumerate() {
            // A host whose models remember nothing is written as no host
            // at all (as before its first event).
            if audit.is_blank(sink) && lease.is_blank(now) {
                continue;
            }
            sink.push(n as u64 + 1);
            audit.encode_vus(now, sink);
            lease.encode_vus(now, sink);
            audit.encode_sessions(now, sink);
            lease.encode_sessions(now, sink);
            // Sessions the laws are done with matter only if something
            // else (the explorer's own state) still names them: any event
            // naming one again breaks a law.
            let mut retired: Vec<u64> = audit
                .retired
                .iter()
                .filter_map(|sid| sink.named(sid))
                .collect();
            retired.sort_unstable();
            sink.push(retired.len() as u64);
            for n in retired {
                sink.push(n);
            }
        }
        sink.push(0);
    }
}

/// What [`LawState`] keeps of one host's model in this module.
#[derive(Clone, Debug, Default)]
struct HostState {
    closing: bool,
    /// Per VU that has any, by VU.
    vus: Vec<(u64, VuState)>,
    /// The queue: VU, deadline, whether passed over by a later grant.
    waiting: Vec<(u64, Time, bool)>,
    /// Reconnects owed (pool mode).
    owed_pool: u64,
    /// Sessions not retired: (state, creation (churn by age), operations
    /// (churn by operations), holder, closed, invalidated).
    sessions: Vec<(String, SessState)>,
    /// Sessions closed and held by nobody.
    retired: Vec<String>,
}

/// What [`HostState`] keeps of a VU.
#[derive(Clone, Debug)]
struct VuState {
    /// Slots reserved (pool mode).
    reserved: u64,
    /// The session granted to it, not picked up yet.
    granted: Option<String>,
    /// Its open acquires' pool deadlines (while a timeout can still be
    /// judged by them).
    open: Vec<Option<Time>>,
    /// Whether its next session is owed as a reconnect (not in pool mode).
    owed: bool,
}

/// What [`HostState`] keeps of a session not retired.
#[derive(Clone, Debug)]
struct SessState {
    st: Option<St>,
    created: Option<Time>,
    ops: u64,
    holder: Option<u64>,
    closed: bool,
    invalidated: bool,
}

impl HostState {
    /// Whether nothing is remembered (that [`LawState::encode`] would write).
    fn is_blank(&self, sink: &dyn StateSink) -> bool {
        !self.closing
            && self.vus.is_empty()
            && self.waiting.is_empty()
            && self.owed_pool == 0
            && self.sessions.is_empty()
            && self.retired.iter().all(|sid| sink.named(sid).is_none())
    }

    fn encode_vus(&self, now: u64, sink: &mut dyn StateSink) {
        sink.push(u64::from(self.closing));
        sink.push(self.vus.len() as u64);
        for (vu, v) in &self.vus {
            sink.push(*vu);
            sink.push(v.reserved);
            push_session(sink, v.granted.as_deref());
            sink.push(v.open.len() as u64);
            for d in &v.open {
                push_time(sink, *d, now);
            }
            sink.push(u64::from(v.owed));
        }
        sink.push(self.waiting.len() as u64);
        for (vu, deadline, passed_over) in &self.waiting {
            sink.push(*vu);
            sink.push(deadline.key(now));
            sink.push(u64::from(*passed_over));
        }
        sink.push(self.owed_pool);
    }

    fn encode_sessions(&self, now: u64, sink: &mut dyn StateSink) {
        sink.push(self.sessions.len() as u64);
        for (sid, s) in by_name(sink, &self.sessions) {
            sink.session(sid);
            let (tag, vu, closed) = match s.st {
                None => (0, 0, false),
                Some(St::Creating { vu }) => (1, vu, false),
                Some(St::InUse { vu, closed }) => (2, vu, closed),
                Some(St::Idle) => (3, 0, false),
                Some(St::Granted { vu }) => (4, vu, false),
            };
            sink.push(tag);
            sink.push(vu);
            sink.push(u64::from(closed));
            push_time(sink, s.created, now);
            sink.push(s.ops);
            sink.push(s.holder.map_or(0, |v| v + 1));
            sink.push(u64::from(s.closed));
            sink.push(u64::from(s.invalidated));
        }
    }
}

/// The reachability goals ("sometimes"): states a sweep must reach, each
/// counted every time a trace shows it. "Clock" is the manager's clock
/// (`detail.clock_ms`).
///
/// - `pool_wait`: an acquire joined the pool's waiter queue
///   (`acquire_wait`).
/// - `pool_timeout`: a queued acquire timed out (`acquire_timeout`).
/// - `waiter_served_after_release`: a waiter got a session a release handed
///   to it (its `waiter_granted` with the session, then its `acquire_ok`).
/// - `waiter_served_after_failed_create`: a create failed, its freed slot
///   was granted to the head waiter (`slot_freed` not after a
///   cancellation, then `waiter_granted` with `slot`), and that waiter
///   created a session in it (`created`).
/// - `idle_eviction`: a session was closed for idling too long.
/// - `ttl_eviction_idle`: an idle session was closed at its TTL.
/// - `ttl_in_use_closed_on_release`: a session that reached its TTL while
///   in use was closed when it was released.
/// - `acquire_at_eviction_deadline`: an acquire started (`acquire_start`)
///   at exactly the clock millisecond of an idle session's eviction
///   deadline (its `released` clock plus `max_idle_ms`, or the clock of its
///   creating `acquire_ok` plus `ttl_ms`, whichever comes first): the
///   session still idle then, or evicted in that very millisecond. In pool
///   mode any VU's acquire counts; in the other modes, the acquire of the
///   VU whose session it is. Needs [`AuditConfig::idle_ms`] or
///   [`AuditConfig::ttl_ms`].
/// - `recreate_after_404_reuse`, `recreate_after_404_pool`,
///   `recreate_after_404_churn`: in that mode, a session was created to
///   replace one invalidated after a 404 (`acquire_ok` with `reconnect`).
///   Needs [`AuditConfig::mode`] (or a `pool_size`).
/// - `churn_by_ops`: in churn mode by operation count, a session was
///   retired (`closed`, reason `churned`) after its `churn_interval_ops`
///   operations.
/// - `churn_by_time`: in churn mode by age, a session was retired once
///   `churn_interval_ms` old.
/// - `version_mismatch_rejected_strict`: under the `strict` version policy,
///   an acquire failed with `version_negotiation` (the server answered
///   another protocol revision than asked for).
/// - `server_crash_during_initialize`: a server crashed or was bounced
///   (the fault event `crash` or `bounce` in the trace) while a session's
///   `initialize` handshake was under way on both sides: the server had
///   taken its `initialize` (`session_created`) and not yet received its
///   `notifications/initialized`, and the client was still making it (the
///   VU whose `created` names it had not got it yet, or, before the
///   client's `created`, a creation that began no later than the server's
///   `session_created` was still open). Counted once per crash or bounce.
/// - `acquire_cancelled_waiting`: an acquire was dropped while queued.
/// - `acquire_cancelled_creating`: an acquire was dropped while creating a
///   session.
/// - `close_with_waiters_pending`: the manager closed while acquires were
///   queued, and a queued acquire failed with manager-closed.
/// - `fell_back_to_legacy`: an auto-era manager's `server/discover` probe
///   was answered as a legacy server answers it (`era_probed` with verdict
///   `legacy`), and it fell back to `initialize`.
/// - `version_retried`: a stateless-era request refused with -32022 was
///   sent again at another revision (`version_retried`).
/// - `modern_after_upgrade`: after a server was redeployed one era up
///   (the fault event `era` with `to` above `from`), a VU probed the era
///   again (`era_probed` with a `reprobe` reason and verdict `modern`) and
///   then made a stateless-era context (`created` with era `modern`).
/// - `legacy_after_downgrade`: after a server was redeployed one era down,
///   a VU probed the era again with verdict `legacy` and then initialized
///   a legacy session (`created` with era `legacy`).
///
/// The stateless era's goals are counted by [`crate::wire_laws`]:
///
/// - `discover_refreshed`: a manager probed again (verdict `modern`, no
///   `reprobe` reason) because its cached discover result had gone stale.
/// - `mrtr_completed`: a request carrying a server-issued `requestState`
///   was answered with a complete result.
/// - `legacy_session_broken_by_balancer`: an instance answered a session
///   another instance minted as unknown, and its VU then got a new session.
/// - `lost_modern_stream`: a stateless answer was cut on purpose and the
///   operation waiting for it ended in an error.
pub const GOALS: [&str; 26] = [
    "pool_wait",
    "pool_timeout",
    "waiter_served_after_release",
    "waiter_served_after_failed_create",
    "idle_eviction",
    "ttl_eviction_idle",
    "ttl_in_use_closed_on_release",
    "acquire_at_eviction_deadline",
    "recreate_after_404_reuse",
    "recreate_after_404_pool",
    "recreate_after_404_churn",
    "churn_by_ops",
    "churn_by_time",
    "version_mismatch_rejected_strict",
    "server_crash_during_initialize",
    "acquire_cancelled_waiting",
    "acquire_cancelled_creating",
    "close_with_waiters_pending",
    "fell_back_to_legacy",
    "version_retried",
    "modern_after_upgrade",
    "legacy_after_downgrade",
    "discover_refreshed",
    "mrtr_completed",
    "legacy_session_broken_by_balancer",
    "lost_modern_stream",
];

/// The stateless era's own error codes (-32020, -32021, -32022) that a
/// probe's answer names, as a code (not followed by another digit): the
/// first one found.
fn modern_error_code(answer: &str) -> Option<&'static str> {
    ["-32020", "-32021", "-32022"].into_iter().find(|code| {
        answer.match_indices(code).any(|(at, _)| {
            !answer[at + code.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    })
}

/// Where a session is, in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Initialized by the server for `vu`, not handed out yet (in pool
    /// mode: inside `vu`'s reservation).
    Creating { vu: u64 },
    /// Leased to `vu`; `closed` if the manager closed it meanwhile.
    InUse { vu: u64, closed: bool },
    /// Kept idle.
    Idle,
    /// Handed to waiter `vu` by the pool, not yet picked up.
    Granted { vu: u64 },
}

/// One session of the model.
#[derive(Clone, Copy, Debug)]
struct Sess {
    st: St,
    /// Clock of its creating `acquire_ok` (its TTL counts from there).
    created_ms: Option<u64>,
    /// Clock of its last `released` (its idle time counts from there).
    released_ms: Option<u64>,
    /// The VU that last held it.
    owner: Option<u64>,
    /// Operations started on it.
    ops: u64,
}

impl Sess {
    fn new(st: St) -> Self {
        Sess {
            st,
            created_ms: None,
            released_ms: None,
            owner: None,
            ops: 0,
        }
    }
}

/// One queued acquire.
#[derive(Clone, Debug)]
struct Waiter {
    vu: u64,
    seq: u64,
    /// When it times out (manager clock).
    deadline: u64,
    /// A grant that went to a later waiter while this one was queued with
    /// its deadline come (so it must have been dropped already): the index
    /// of that grant, and the later waiter.
    passed_over: Option<(usize, u64)>,
}

/// One open acquire.
#[derive(Clone, Copy, Debug)]
struct Open {
    /// The `acquire_start`'s index.
    index: usize,
    /// Its pool deadline, once it waits.
    deadline: Option<u64>,
}

/// One worker host's model.
#[derive(Default)]
struct Host<'a> {
    sessions: BTreeMap<&'a str, Sess>,
    /// Reserved slots per VU (pool mode).
    reserved: BTreeMap<u64, u64>,
    waiting: Vec<Waiter>,
    next_seq: u64,
    /// The session granted to each waiter, not picked up yet.
    granted: BTreeMap<u64, &'a str>,
    /// Waiters dropped from the queue by the manager's close.
    closed_out: BTreeSet<u64>,
    /// Waiters granted a slot a failed create freed.
    failed_create_grant: BTreeSet<u64>,
    /// When each VU's creation began (trace time), while it runs.
    creating_since: BTreeMap<u64, u64>,
    /// Sessions evicted at their deadline: (clock, owner), of the current
    /// millisecond.
    evicted_now: Vec<(u64, Option<u64>)>,
    /// The previous event: what it was, its VU and session.
    prev: Option<Prev<'a>>,
    /// A chain of effects whose end has not been seen: the capacity law is
    /// checked at its end (the index of its last event).
    pending_capacity: Option<usize>,
    /// The last event's clock.
    clock: u64,
    // holders and closes
    holder: BTreeMap<&'a str, u64>,
    closed: BTreeMap<&'a str, usize>,
    invalidated: BTreeSet<&'a str>,
    created: BTreeMap<&'a str, usize>,
    created_by: BTreeMap<&'a str, u64>,
    reasons: BTreeMap<&'a str, u64>,
    // acquires
    open: BTreeMap<u64, Vec<Open>>,
    // reconnects
    owed_pool: u64,
    owed_vu: BTreeSet<u64>,
    reconnects: u64,
    closing: bool,
    closed_at: Option<usize>,
    /// Sessions whose transport close (DELETE) failed: refused or
    /// unreachable, so the server may rightly still hold them.
    close_failed: BTreeSet<&'a str>,
    /// Stateless-era contexts (`created` with era `modern`): no server
    /// session stands behind them, so the server laws pass them by.
    modern: BTreeSet<&'a str>,
    /// Each VU's last `era_probed` that had a `reprobe` reason and a
    /// verdict (`modern` or `legacy`), until its next `created`.
    reprobed: BTreeMap<u64, &'a str>,
    last_index: usize,
    /// How many `acquire_wait`, `acquire_timeout` and cancelled waits
    /// (`acquire_cancelled` with `waiting`), for `metrics_match_trace`.
    counted: Counted,
}

/// The events the metrics count, as the trace shows them.
#[derive(Clone, Copy, Debug, Default)]
struct Counted {
    waits: u64,
    timeouts: u64,
    cancelled_waits: u64,
}

/// The event before, as `Host::prev` keeps it.
#[derive(Clone, Copy)]
struct Prev<'a> {
    what: PrevKind,
    vu: Option<u64>,
    session: Option<&'a str>,
}

/// What the event before was, as far as the laws look back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PrevKind {
    Released,
    AcquireCancelled,
    /// A slot freed by a failed create.
    SlotFreed,
    /// A slot freed by a cancelled create.
    SlotFreedCancelled,
    Other,
}

impl Host<'_> {
    /// Sessions in use, idle or granted, plus reservations.
    fn occupancy(&self) -> u64 {
        let sessions = self
            .sessions
            .values()
            .filter(|s| !matches!(s.st, St::Creating { .. }))
            .count() as u64;
        sessions + self.reserved.values().sum::<u64>()
    }

    fn idle(&self) -> usize {
        self.sessions.values().filter(|s| s.st == St::Idle).count()
    }

    /// Waiters whose deadline is still ahead at `clock`.
    fn live_waiters(&self, clock: u64) -> impl Iterator<Item = &Waiter> {
        self.waiting.iter().filter(move |w| w.deadline > clock)
    }

    fn prev_is(&self, what: PrevKind) -> bool {
        self.prev.is_some_and(|p| p.what == what)
    }

    /// What [`LawState`] keeps of this model: what a law still reads at a
    /// later event. Left out: what only goals read (`prev`, `evicted_now`,
    /// `creating_since`, `closed_out`, `failed_create_grant`, `reprobed`,
    /// a session's release and owner), what only the end of a whole run
    /// reads (`counted`, `reasons`, `reconnects`, `closed_at`,
    /// `close_failed`, `modern`), what only names a violation (indices,
    /// waiter numbers), and the capacity owed at the end of a chain, which
    /// [`audit_prefix`] checks at the end of every prefix (the next event
    /// either continues the chain, which owes it again, or checks the same
    /// model at the same clock).
    fn pending(&self, cfg: &AuditConfig) -> HostState {
        let pool = cfg.pool_size.is_some();
        let slack = cfg.slack_ms;
        let mut vus: BTreeSet<u64> = BTreeSet::new();
        vus.extend(self.reserved.keys());
        vus.extend(self.granted.keys());
        vus.extend(self.open.keys());
        vus.extend(self.owed_vu.iter());
        let vus = vus
            .into_iter()
            .filter_map(|vu| self.pending_vu(vu, pool, slack).map(|v| (vu, v)))
            .collect();
        let waiting = self
            .waiting
            .iter()
            .map(|w| {
                let deadline = Time::Until {
                    at: w.deadline,
                    slack,
                };
                (w.vu, deadline, w.passed_over.is_some())
            })
            .collect();
        let (sessions, retired) = self.pending_sessions(cfg);
        HostState {
            closing: self.closing,
            vus,
            waiting,
            owed_pool: if pool { self.owed_pool } else { 0 },
            sessions,
            retired,
        }
    }

    /// What [`Host::pending`] keeps of `vu` (`None`: nothing a law reads).
    fn pending_vu(&self, vu: u64, pool: bool, slack: u64) -> Option<VuState> {
        // Reservations are read only in pool mode (`pool_bound`, the
        // capacity law), a VU's reconnect owed only outside it
        // (`reconnects_exact`).
        let reserved = if pool {
            self.reserved.get(&vu).copied().unwrap_or(0)
        } else {
            0
        };
        let granted = self.granted.get(&vu).map(|s| (*s).to_owned());
        // An open acquire's pool deadline is read only by its timeout; one
        // that times out holding a grant or a slot breaks `pool_bound`
        // whatever its deadline.
        let served = granted.is_some() || reserved > 0;
        let open: Vec<Option<Time>> = self.open.get(&vu).map_or(Vec::new(), |v| {
            v.iter()
                .map(|o| {
                    o.deadline
                        .filter(|_| !served)
                        .map(|at| Time::Until { at, slack })
                })
                .collect()
        });
        let owed = !pool && self.owed_vu.contains(&vu);
        let any = reserved > 0 || granted.is_some() || !open.is_empty() || owed;
        any.then_some(VuState {
            reserved,
            granted,
            open,
            owed,
        })
    }

    /// What [`Host::pending`] keeps of the sessions: the live ones' state,
    /// and the names of those closed and gone (retired).
    fn pending_sessions(&self, cfg: &AuditConfig) -> (Vec<(String, SessState)>, Vec<String>) {
        // A session's creation and operations are read only by the churn
        // check of a `churned` close, by the trigger the config names.
        let churn_ms = cfg.churn_ms.filter(|_| cfg.churn_ops.is_none());
        let mut sids: BTreeSet<&str> = BTreeSet::new();
        sids.extend(self.sessions.keys());
        sids.extend(self.holder.keys());
        sids.extend(self.created.keys());
        sids.extend(self.invalidated.iter());
        sids.extend(self.closed.keys());
        let (mut sessions, mut retired) = (Vec::new(), Vec::new());
        for sid in sids {
            let s = self.sessions.get(sid);
            let closed = self.closed.contains_key(sid);
            if closed && s.is_none() && !self.holder.contains_key(sid) {
                retired.push(sid.to_owned());
                continue;
            }
            let created = churn_ms.and_then(|cap| {
                s.and_then(|s| s.created_ms)
                    .map(|at| Time::Since { at, cap })
            });
            let ops = cfg.churn_ops.map_or(0, |n| s.map_or(0, |s| s.ops).min(n));
            let state = SessState {
                st: s.map(|s| s.st),
                created,
                ops,
                holder: self.holder.get(sid).copied(),
                closed,
                invalidated: self.invalidated.contains(sid),
            };
            sessions.push((sid.to_owned(), state));
        }
        (sessions, retired)
    }
}

/// Whether `e` is an effect of the event before it, inside one critical
/// section of the manager.
fn chain_link(e: &ManagerEvent) -> bool {
    matches!(
        e,
        ManagerEvent::Closed { .. } | ManagerEvent::WaiterGranted { .. }
    )
}

/// Whether capacity may be passed on after `e` by the events that follow
/// (its chain).
fn chain_start(e: &ManagerEvent) -> bool {
    matches!(
        e,
        ManagerEvent::Released
            | ManagerEvent::Invalidated
            | ManagerEvent::LeaseDropped
            | ManagerEvent::SlotFreed
            | ManagerEvent::Closed { .. }
            | ManagerEvent::AcquireCancelled { .. }
            | ManagerEvent::WaiterGranted { .. }
    )
}

/// The manager event being judged: its index, trace time, VU (`vu`: 0
/// for none), session (`sid`: "" for none) and manager clock.
#[derive(Clone, Copy, Debug)]
struct At<'a> {
    i: usize,
    t_ms: u64,
    vu_of: Option<u64>,
    vu: u64,
    session: Option<&'a str>,
    sid: &'a str,
    clock: u64,
}

/// How a holder gave its session back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Back {
    Released,
    Invalidated,
    Dropped,
}

struct Auditor<'a> {
    trace: &'a Trace,
    cfg: &'a AuditConfig,
    /// Each worker host's model, boxed: moved out for each of its events
    /// and back, a pointer's move rather than the whole model's.
    hosts: BTreeMap<&'a str, Box<Host<'a>>>,
    /// An empty model that stands in for the one moved out.
    spare: Option<Box<Host<'a>>>,
    finished: BTreeMap<&'a str, Host<'a>>,
    /// Per server host: sessions whose `initialize` it took and whose
    /// `notifications/initialized` it has not received, with the time.
    handshakes: BTreeMap<&'a str, BTreeMap<&'a str, u64>>,
    checks: BTreeMap<&'static str, u64>,
    first: BTreeMap<&'static str, (usize, String)>,
    goals: BTreeMap<&'static str, u64>,
    /// Whether a server has been redeployed one era (up, down) so far.
    era_moved: (bool, bool),
    /// Failed DELETEs nothing in the trace explains, by (worker, session)
    /// ([`crate::cause_laws`]): `clean_close` does not excuse them.
    unexplained_close: BTreeSet<(String, String)>,
}

impl<'a> Auditor<'a> {
    fn new(trace: &'a Trace, cfg: &'a AuditConfig) -> Self {
        Auditor {
            trace,
            cfg,
            hosts: BTreeMap::new(),
            spare: None,
            finished: BTreeMap::new(),
            handshakes: BTreeMap::new(),
            checks: LAWS.iter().map(|l| (*l, 0)).collect(),
            first: BTreeMap::new(),
            goals: GOALS.iter().map(|g| (*g, 0)).collect(),
            era_moved: (false, false),
            unexplained_close: BTreeSet::new(),
        }
    }

    fn check(&mut self, law: &'static str) {
        *self.checks.entry(law).or_default() += 1;
    }

    fn fail(&mut self, law: &'static str, index: usize, message: String) {
        self.first.entry(law).or_insert((index, message));
    }

    fn goal(&mut self, goal: &'static str) {
        *self.goals.entry(goal).or_default() += 1;
    }

    fn run(&mut self) {
        let trace = self.trace;
        for (i, e) in trace.events.iter().enumerate() {
            match &e.kind {
                Kind::Manager(m) => self.manager_event(i, e, m),
                Kind::Server(s) => self.server_event(&e.host, e.t_ms, s),
                Kind::Fault(f) => self.fault_event(&e.host, f),
                Kind::Vu(_) | Kind::Other(_) => {}
            }
        }
        let hosts: Vec<&'a str> = self.hosts.keys().copied().collect();
        for h in hosts {
            self.end_of_host(h);
        }
        let causes = crate::cause_laws::check(self.trace, self.cfg);
        self.unexplained_close = causes.unexplained_close;
        self.server_laws();
        self.streams_at_end();
        for (law, n) in causes.checks {
            *self.checks.entry(law).or_default() += n;
        }
        for (law, first) in causes.first {
            self.first.entry(law).or_insert(first);
        }
        let wire = crate::wire_laws::check(self.trace, self.cfg);
        self.merge(wire);
        let leases = crate::lease_laws::check(self.trace, self.cfg);
        self.merge(leases);
    }

    /// Adds what another module's laws found.
    fn merge(&mut self, found: crate::wire_laws::Findings) {
        for (law, n) in found.checks {
            *self.checks.entry(law).or_default() += n;
        }
        for (law, first) in found.first {
            self.first.entry(law).or_insert(first);
        }
        for (goal, n) in found.goals {
            *self.goals.entry(goal).or_default() += n;
        }
    }

    /// Follows each server's open handshakes.
    fn server_event(&mut self, host: &'a str, t_ms: u64, e: &'a ServerEvent) {
        let open = self.handshakes.entry(host).or_default();
        match e {
            ServerEvent::SessionCreated { session, .. } => {
                open.insert(session, t_ms);
            }
            ServerEvent::Notification {
                session, method, ..
            } if method == "notifications/initialized" => {
                open.remove(session.as_str());
            }
            ServerEvent::Deleted { session, .. } | ServerEvent::Expired { session, .. } => {
                open.remove(session.as_str());
            }
            ServerEvent::SessionsCleared { .. } => open.clear(),
            _ => {}
        }
    }

    /// A redeploy (which way the era moved), or a server going down (was
    /// an `initialize` handshake under way?).
    fn fault_event(&mut self, host: &str, f: &FaultRecord) {
        match &f.action {
            Action::Era { from, to, .. } => {
                let rank = |era: &ServerEra| match era {
                    ServerEra::Legacy => 0,
                    ServerEra::Dual => 1,
                    ServerEra::Modern => 2,
                };
                if rank(to) > rank(from) {
                    self.era_moved.0 = true;
                } else {
                    self.era_moved.1 = true;
                }
            }
            Action::Crash { .. } | Action::Bounce { .. } => self.crash(host),
            _ => {}
        }
    }

    /// `server_crash_during_initialize`: server `host` went down while an
    /// `initialize` handshake was under way on both sides.
    fn crash(&mut self, host: &str) {
        let Some(open) = self.handshakes.get(host) else {
            return;
        };
        let hit = open.iter().any(|(sid, &taken)| {
            match self
                .hosts
                .values()
                .find_map(|h| h.created_by.get(*sid).map(|vu| (h, *vu)))
            {
                // The client has the answer and is finishing (the
                // `initialized` notification): still making it?
                Some((h, vu)) => {
                    h.creating_since.contains_key(&vu)
                        && h.sessions
                            .get(*sid)
                            .is_some_and(|s| s.st == St::Creating { vu })
                }
                // No answer yet: a creation open since before the server
                // took it.
                None => self
                    .hosts
                    .values()
                    .any(|h| h.creating_since.values().any(|&since| since <= taken)),
            }
        });
        if hit {
            self.goal("server_crash_during_initialize");
        }
    }

    /// One manager event: the chain and capacity bookkeeping around the
    /// event's own handler ([`Auditor::handle`]).
    fn manager_event(&mut self, i: usize, e: &'a TraceEvent, m: &'a ManagerRecord) {
        // The host's model is moved out for the event (the spare empty one
        // stands in) and back at the end.
        let spare = self.spare.take().unwrap_or_default();
        let mut h = match self.hosts.get_mut(&*e.host) {
            Some(slot) => std::mem::replace(slot, spare),
            None => {
                self.hosts.insert(&*e.host, spare);
                Box::default()
            }
        };
        let at = At {
            i,
            t_ms: e.t_ms,
            vu_of: m.vu,
            vu: m.vu.unwrap_or(0),
            session: m.session.as_deref(),
            sid: m.session.as_deref().unwrap_or_default(),
            clock: m.clock_ms,
        };
        h.last_index = i;
        if !chain_link(&m.event) {
            if let Some(at) = h.pending_capacity.take() {
                let at_clock = h.clock;
                self.capacity(&h, at, at_clock);
            }
        }
        h.evicted_now.retain(|(t, _)| *t >= at.clock);
        self.overdue_waiters(&h, i, at.clock);
        self.handle(&mut h, at, &m.event);
        self.after_event(&mut h, at, &m.event);
        if let Some(slot) = self.hosts.get_mut(&*e.host) {
            self.spare = Some(std::mem::replace(slot, h));
        }
    }

    /// The handler of each kind of manager event.
    fn handle(&mut self, h: &mut Host<'a>, at: At<'a>, e: &'a ManagerEvent) {
        match e {
            ManagerEvent::AcquireStart => self.acquire_start(h, at),
            ManagerEvent::AcquireWait { deadline_ms, .. } => {
                self.acquire_wait(h, at, *deadline_ms);
            }
            ManagerEvent::WaiterGranted { slot } => self.waiter_granted(h, at, *slot),
            ManagerEvent::AcquireOk {
                created, reconnect, ..
            } => self.acquire_ok(h, at, *created, *reconnect),
            ManagerEvent::AcquireTimeout { waited_ms } => self.acquire_timeout(h, at, *waited_ms),
            ManagerEvent::AcquireError { error } => self.acquire_error(h, at, error),
            ManagerEvent::AcquireCancelled { waiting } => self.acquire_cancelled(h, at, *waiting),
            ManagerEvent::SlotReserved => self.slot_reserved(h, at),
            ManagerEvent::SlotFreed => self.slot_freed(h, at),
            ManagerEvent::Created { era } => self.created(h, at, era.as_deref()),
            ManagerEvent::EraProbed {
                verdict,
                reprobe,
                answer,
                ..
            } => self.era_probed(h, at, verdict, reprobe.is_some(), answer.as_deref()),
            ManagerEvent::VersionRetried { .. } => self.goal("version_retried"),
            ManagerEvent::OperationStart { .. } => {
                let sid = at.sid;
                self.use_of(h, at.i, sid, format_args!("operation on {sid}"));
                if let Some(s) = h.sessions.get_mut(sid) {
                    s.ops += 1;
                }
            }
            ManagerEvent::Released => self.give_back(h, at, Back::Released),
            ManagerEvent::Invalidated => self.give_back(h, at, Back::Invalidated),
            ManagerEvent::LeaseDropped => self.give_back(h, at, Back::Dropped),
            ManagerEvent::Closed { reason } => self.closed(h, at, reason),
            ManagerEvent::ManagerClosing => {
                h.closing = true;
                h.closed_out = h.waiting.drain(..).map(|w| w.vu).collect();
            }
            ManagerEvent::CloseFailed { .. } => {
                h.close_failed.insert(at.sid);
            }
            ManagerEvent::ManagerClosed => h.closed_at = Some(at.i),
            ManagerEvent::EraChanged | ManagerEvent::OperationEnd { .. } => {}
        }
    }

    /// After each manager event: `pool_bound`, the capacity law (at once,
    /// or where its chain ends), and what the next event looks back at.
    fn after_event(&mut self, h: &mut Host<'a>, at: At<'a>, e: &ManagerEvent) {
        if let Some(size) = self.cfg.pool_size {
            self.check("pool_bound");
            let occ = h.occupancy();
            if occ > size as u64 {
                self.fail(
                    "pool_bound",
                    at.i,
                    format!("{occ} sessions/slots taken > pool_size {size}"),
                );
            }
            if chain_start(e) {
                h.pending_capacity = Some(at.i);
            } else {
                self.capacity(h, at.i, at.clock);
            }
        }
        // A slot freed by a failed create (not by a cancellation).
        let cancelled_creating = h
            .prev
            .is_some_and(|p| p.what == PrevKind::AcquireCancelled && p.vu == at.vu_of);
        let what = match e {
            ManagerEvent::Released => PrevKind::Released,
            ManagerEvent::AcquireCancelled { .. } => PrevKind::AcquireCancelled,
            ManagerEvent::SlotFreed if cancelled_creating => PrevKind::SlotFreedCancelled,
            ManagerEvent::SlotFreed => PrevKind::SlotFreed,
            _ => PrevKind::Other,
        };
        h.prev = Some(Prev {
            what,
            vu: at.vu_of,
            session: at.session,
        });
        h.clock = at.clock;
    }

    fn acquire_start(&mut self, h: &mut Host<'a>, at: At<'a>) {
        let (vu, clock) = (at.vu, at.clock);
        self.check("acquire_ends_by_deadline");
        h.open.entry(vu).or_default().push(Open {
            index: at.i,
            deadline: None,
        });
        if self.cfg.effective_mode() != Some(Mode::Pool) {
            h.creating_since.insert(vu, at.t_ms);
        }
        // At the exact instant of an eviction deadline?
        let (ttl, idle) = (self.cfg.ttl_ms, self.cfg.idle_ms);
        if ttl.is_none() && idle.is_none() {
            return;
        }
        let any_vu = self.cfg.pool_size.is_some();
        let mine = |owner: Option<u64>| any_vu || owner == Some(vu);
        let at_deadline = h
            .sessions
            .values()
            .any(|s| s.st == St::Idle && mine(s.owner) && deadline(s, ttl, idle) == Some(clock))
            || h.evicted_now
                .iter()
                .any(|(t, owner)| *t == clock && mine(*owner));
        if at_deadline {
            self.goal("acquire_at_eviction_deadline");
        }
    }

    /// An acquire joined the pool's queue, until `deadline_ms`.
    fn acquire_wait(&mut self, h: &mut Host<'a>, at: At<'a>, deadline: u64) {
        self.goal("pool_wait");
        h.counted.waits += 1;
        if let Some(o) = h.open.get_mut(&at.vu).and_then(|v| v.last_mut()) {
            o.deadline = Some(deadline);
        }
        h.next_seq += 1;
        h.waiting.push(Waiter {
            vu: at.vu,
            seq: h.next_seq,
            deadline,
            passed_over: None,
        });
    }

    fn acquire_timeout(&mut self, h: &mut Host<'a>, at: At<'a>, waited_ms: u64) {
        self.goal("pool_timeout");
        h.counted.timeouts += 1;
        self.end_acquire(h, at.i, at.vu, Some((at.clock, Some(waited_ms))));
        self.leave_queue(h, at.vu);
        self.ends_holding_nothing(h, at.i, at.vu);
        h.creating_since.remove(&at.vu);
    }

    fn acquire_error(&mut self, h: &mut Host<'a>, at: At<'a>, error: &str) {
        let vu = at.vu;
        if error == "version_negotiation" && self.cfg.version_policy == Some(VersionPolicy::Strict)
        {
            self.goal("version_mismatch_rejected_strict");
        }
        if error == "manager_closed" && h.closed_out.remove(&vu) {
            self.goal("close_with_waiters_pending");
        }
        self.end_acquire(h, at.i, vu, None);
        self.leave_queue(h, vu);
        if h.closing {
            // A session granted but not picked up before the close, or a
            // slot whose session the closed pool refused: gone with the
            // pool.
            if let Some(g) = h.granted.remove(&vu) {
                h.sessions.remove(&g);
            }
            h.reserved.remove(&vu);
        } else {
            self.ends_holding_nothing(h, at.i, vu);
        }
        h.creating_since.remove(&vu);
    }

    fn acquire_cancelled(&mut self, h: &mut Host<'a>, at: At<'a>, waiting: bool) {
        let vu = at.vu;
        if waiting {
            self.goal("acquire_cancelled_waiting");
            h.counted.cancelled_waits += 1;
        } else {
            self.goal("acquire_cancelled_creating");
        }
        self.end_acquire(h, at.i, vu, None);
        h.creating_since.remove(&vu);
        let queued = self.leave_queue(h, vu);
        if waiting && !queued {
            // Granted before its task ran: the grant goes back to the pool
            // (and on to the next waiter, if any).
            if let Some(g) = h.granted.remove(&vu) {
                if let Some(s) = h.sessions.get_mut(&g) {
                    s.st = St::Idle;
                }
            } else if let Some(r) = h.reserved.get_mut(&vu) {
                *r = r.saturating_sub(1);
            }
        }
    }

    fn slot_reserved(&mut self, h: &mut Host<'a>, at: At<'a>) {
        let vu = at.vu;
        self.overtakes(h, at.i, vu, at.clock, format_args!("reserves a free slot"));
        *h.reserved.entry(vu).or_default() += 1;
        h.creating_since.insert(vu, at.t_ms);
    }

    fn slot_freed(&mut self, h: &mut Host<'a>, at: At<'a>) {
        let vu = at.vu;
        let held = h.reserved.get(&vu).copied().unwrap_or(0);
        if self.cfg.pool_size.is_some() {
            self.check("pool_bound");
            if held == 0 {
                self.fail(
                    "pool_bound",
                    at.i,
                    format!("vu-{vu} frees a slot it does not hold"),
                );
            }
        }
        if held > 1 {
            h.reserved.insert(vu, held - 1);
        } else {
            h.reserved.remove(&vu);
        }
        h.creating_since.remove(&vu);
    }

    /// An era probe: `no_fallback_after_modern_error`, and what a reprobe
    /// decided for the era goals.
    fn era_probed(
        &mut self,
        h: &mut Host<'a>,
        at: At<'a>,
        verdict: &'a str,
        reprobe: bool,
        answer: Option<&str>,
    ) {
        let vu = at.vu;
        if verdict == "legacy" {
            self.goal("fell_back_to_legacy");
            self.check("no_fallback_after_modern_error");
            if let Some(code) = answer.and_then(modern_error_code) {
                self.fail(
                    "no_fallback_after_modern_error",
                    at.i,
                    format!("vu-{vu} fell back to legacy on an answer with {code}"),
                );
            }
        }
        match verdict {
            "modern" | "legacy" if reprobe => {
                h.reprobed.insert(vu, verdict);
            }
            _ => {
                h.reprobed.remove(&vu);
            }
        }
    }

    /// An acquire that takes capacity directly while live waiters are
    /// queued overtakes them.
    fn overtakes(&mut self, h: &Host, i: usize, vu: u64, clock: u64, what: std::fmt::Arguments) {
        if self.cfg.pool_size.is_none() {
            return;
        }
        self.check("fifo");
        if let Some(w) = h.live_waiters(clock).find(|w| w.vu != vu) {
            self.fail(
                "fifo",
                i,
                format!(
                    "vu-{vu} {what} while vu-{} (waiter #{}) is queued",
                    w.vu, w.seq
                ),
            );
        }
    }

    /// A grant to queued waiter `at.vu`: `fifo` (the earliest live waiter
    /// first), and a session granted only while nobody holds it.
    fn waiter_granted(&mut self, h: &mut Host<'a>, at: At<'a>, slot: bool) {
        let (i, vu) = (at.i, at.vu);
        self.check("fifo");
        let Some(pos) = h.waiting.iter().position(|w| w.vu == vu) else {
            self.fail(
                "fifo",
                i,
                format!("a grant to vu-{vu}, which is not queued"),
            );
            return;
        };
        self.served_in_order(h, at, pos);
        if slot {
            *h.reserved.entry(vu).or_default() += 1;
            h.creating_since.insert(vu, at.t_ms);
            if h.prev_is(PrevKind::SlotFreed) {
                h.failed_create_grant.insert(vu);
            }
            return;
        }
        self.check("one_holder");
        let sid = at.sid;
        match h.sessions.get_mut(sid) {
            Some(s) if s.st == St::Idle => {
                s.st = St::Granted { vu };
                h.granted.insert(vu, sid);
            }
            other => {
                let what = match other.map(|s| s.st) {
                    Some(St::InUse { vu: v, .. }) => format!("held by vu-{v}"),
                    Some(St::Granted { vu: v }) => format!("granted to vu-{v}"),
                    Some(St::Creating { vu: v }) => format!("being created by vu-{v}"),
                    Some(St::Idle) => "idle".to_owned(),
                    None => "not in the pool".to_owned(),
                };
                self.fail(
                    "one_holder",
                    i,
                    format!("{sid} granted to vu-{vu} while {what}"),
                );
            }
        }
    }

    /// `fifo` of a grant to the waiter at `pos` in the queue: no live
    /// waiter ahead of it, and none passed over before that is served now;
    /// the waiter leaves the queue.
    fn served_in_order(&mut self, h: &mut Host<'a>, at: At<'a>, pos: usize) {
        let (i, vu, clock) = (at.i, at.vu, at.clock);
        let me = h.waiting[pos].seq;
        for w in &mut h.waiting[..pos] {
            if w.deadline > clock {
                let msg = format!(
                    "vu-{vu} (waiter #{me}) is served before vu-{} (waiter #{}), \
                     queued ahead of it until {}ms",
                    w.vu, w.seq, w.deadline
                );
                self.fail("fifo", i, msg);
            } else {
                // Its deadline had come: the pool may have dropped it
                // already, and then it must not be served later.
                w.passed_over.get_or_insert((i, vu));
            }
        }
        let w = h.waiting.remove(pos);
        if let Some((at, by)) = w.passed_over {
            self.fail(
                "fifo",
                at,
                format!(
                    "vu-{by} was served while vu-{vu} (waiter #{}) was queued ahead of it; \
                     vu-{vu} was served later, at event #{i}",
                    w.seq
                ),
            );
        }
    }

    /// `no_use_after_close` at event `i`, a use (`what`) of session `sid`.
    fn use_of(&mut self, h: &Host, i: usize, sid: &str, what: std::fmt::Arguments) {
        self.check("no_use_after_close");
        let after = if h.closed.contains_key(sid) {
            "closed"
        } else if h.invalidated.contains(sid) {
            "invalidated"
        } else {
            return;
        };
        self.fail(
            "no_use_after_close",
            i,
            format!("{what} after it was {after}"),
        );
    }

    /// A session handed to `at.vu` (`created` for it, `reconnect`ing):
    /// its first use, its slot or grant taken up, its one holder, and the
    /// reconnect owed.
    fn acquire_ok(&mut self, h: &mut Host<'a>, at: At<'a>, created: bool, reconnect: bool) {
        let (i, vu, sid, clock) = (at.i, at.vu, at.sid, at.clock);
        // Handing a VU a session is its first use: a closed or invalidated
        // one must never be handed out (the reference's defects 1 and 3).
        self.use_of(h, i, sid, format_args!("{sid} handed to vu-{vu}"));
        self.end_acquire(h, i, vu, None);
        h.creating_since.remove(&vu);
        if created {
            let r = h.reserved.entry(vu).or_default();
            *r = r.saturating_sub(1);
            if *r == 0 {
                h.reserved.remove(&vu);
            }
        } else if self.cfg.pool_size.is_some() {
            self.taken_from_pool(h, at);
        }
        self.one_holder(h, at);
        h.holder.insert(sid, vu);
        let s = h.sessions.entry(sid).or_insert_with(|| Sess::new(St::Idle));
        s.st = St::InUse { vu, closed: false };
        s.owner = Some(vu);
        if created {
            s.created_ms = Some(clock);
            self.reconnect_owed(h, at, reconnect);
        }
        if reconnect {
            h.reconnects += 1;
            match self.cfg.effective_mode() {
                Some(Mode::Reuse) => self.goal("recreate_after_404_reuse"),
                Some(Mode::Pool) => self.goal("recreate_after_404_pool"),
                Some(Mode::Churn) => self.goal("recreate_after_404_churn"),
                _ => {}
            }
        }
    }

    /// A pool session handed out without being created: a grant picked
    /// up, else an idle session taken (overtaking no waiter).
    fn taken_from_pool(&mut self, h: &mut Host<'a>, at: At<'a>) {
        let (i, vu, sid) = (at.i, at.vu, at.sid);
        if h.granted.get(&vu) == Some(&sid) {
            h.granted.remove(&vu);
            self.goal("waiter_served_after_release");
        } else if h.waiting.iter().any(|w| w.vu == vu) {
            self.check("fifo");
            self.fail(
                "fifo",
                i,
                format!("vu-{vu} leaves the queue with {sid}, never granted to it"),
            );
            self.leave_queue(h, vu);
        } else {
            self.overtakes(h, i, vu, at.clock, format_args!("takes idle {sid}"));
        }
    }

    /// `one_holder` of a handout: nobody else holds the session, and it
    /// was granted to no other VU.
    fn one_holder(&mut self, h: &Host<'a>, at: At<'a>) {
        let (vu, sid) = (at.vu, at.sid);
        self.check("one_holder");
        if let Some(other) = h.holder.get(sid) {
            let msg = format!("{sid} handed to vu-{vu} while vu-{other} holds it");
            self.fail("one_holder", at.i, msg);
        } else if let Some(St::Granted { vu: g }) = h.sessions.get(sid).map(|s| s.st) {
            if g != vu {
                let msg = format!("{sid} handed to vu-{vu} while granted to vu-{g}");
                self.fail("one_holder", at.i, msg);
            }
        }
    }

    /// `reconnects_exact` of a session created for `at.vu`: flagged
    /// `reconnect` exactly when a replacement was owed.
    fn reconnect_owed(&mut self, h: &mut Host<'a>, at: At<'a>, reconnect: bool) {
        let (vu, sid) = (at.vu, at.sid);
        self.check("reconnects_exact");
        let owed = if self.cfg.pool_size.is_some() {
            let o = h.owed_pool > 0;
            h.owed_pool = h.owed_pool.saturating_sub(1);
            o
        } else {
            h.owed_vu.remove(&vu)
        };
        if owed != reconnect {
            self.fail(
                "reconnects_exact",
                at.i,
                format!(
                    "{sid} created for vu-{vu}: reconnect={reconnect}, but a \
                     replacement was {}owed",
                    if owed { "" } else { "not " }
                ),
            );
        }
    }

    /// A session created (in era `era`): in a slot its VU holds, once; and
    /// the goals of a fresh probe after a redeploy.
    fn created(&mut self, h: &mut Host<'a>, at: At<'a>, era: Option<&'a str>) {
        let (i, vu, sid) = (at.i, at.vu, at.sid);
        if era == Some("modern") {
            h.modern.insert(sid);
        }
        match (h.reprobed.remove(&vu), era) {
            (Some("modern"), Some("modern")) if self.era_moved.0 => {
                self.goal("modern_after_upgrade");
            }
            (Some("legacy"), Some("legacy")) if self.era_moved.1 => {
                self.goal("legacy_after_downgrade");
            }
            _ => {}
        }
        self.check("closed_split_by_reason");
        if self.cfg.pool_size.is_some() {
            self.check("pool_bound");
            if h.reserved.get(&vu).copied().unwrap_or(0) == 0 {
                self.fail(
                    "pool_bound",
                    i,
                    format!("{sid} created by vu-{vu}, which holds no reserved slot"),
                );
            }
        }
        if h.failed_create_grant.remove(&vu) {
            self.goal("waiter_served_after_failed_create");
        }
        h.sessions.insert(sid, Sess::new(St::Creating { vu }));
        h.created_by.insert(sid, vu);
        if h.created.insert(sid, i).is_some() {
            self.fail("closed_split_by_reason", i, format!("{sid} created twice"));
        }
    }

    /// A holder gave its session back (`back`): `one_holder`, then idle
    /// again (a release) or gone.
    fn give_back(&mut self, h: &mut Host<'a>, at: At<'a>, back: Back) {
        let (vu, sid) = (at.vu, at.sid);
        self.check("one_holder");
        match h.holder.get(sid) {
            Some(v) if *v == vu => {
                h.holder.remove(sid);
            }
            other => {
                let msg = format!(
                    "vu-{vu} gives back {sid}, held by {}",
                    other.map_or("nobody".to_owned(), |v| format!("vu-{v}"))
                );
                self.fail("one_holder", at.i, msg);
            }
        }
        if back == Back::Released {
            let closed = matches!(
                h.sessions.get(sid).map(|s| s.st),
                Some(St::InUse { closed: true, .. })
            ) || h.closed.contains_key(sid);
            if closed {
                h.sessions.remove(sid);
            } else {
                let s = h.sessions.entry(sid).or_insert_with(|| Sess::new(St::Idle));
                s.st = St::Idle;
                s.released_ms = Some(at.clock);
                s.owner = Some(vu);
            }
        } else {
            h.sessions.remove(sid);
            if back == Back::Invalidated {
                h.invalidated.insert(sid);
                if !h.closing {
                    h.owed_pool += 1;
                    h.owed_vu.insert(vu);
                }
            }
        }
    }

    /// A session closed for `reason`: the goals of evictions and churn,
    /// closed once and only once created (`closed_split_by_reason`).
    fn closed(&mut self, h: &mut Host<'a>, at: At<'a>, reason: &'a str) {
        let (i, sid) = (at.i, at.sid);
        *h.reasons.entry(reason).or_default() += 1;
        let s = h.sessions.get(sid).copied();
        self.close_goals(h, at, reason, s);
        if !h.created.contains_key(sid) {
            self.fail(
                "closed_split_by_reason",
                i,
                format!("{sid} closed ({reason}) but never created"),
            );
        }
        if h.closed.insert(sid, i).is_some() {
            self.fail(
                "closed_split_by_reason",
                i,
                format!("{sid} closed twice (again for {reason})"),
            );
        }
        match s.map(|s| s.st) {
            Some(St::InUse { vu, .. }) => {
                if let Some(s) = h.sessions.get_mut(sid) {
                    s.st = St::InUse { vu, closed: true };
                }
            }
            Some(St::Granted { .. }) => {
                // Closed with the manager: its waiter fails when it runs;
                // until then the grant is where it was.
            }
            Some(_) => {
                h.sessions.remove(sid);
            }
            None => {}
        }
    }

    /// The goals of a close for `reason` of session `s` (as it was): an
    /// eviction (idle, at its TTL, at its release), a churn; and an
    /// eviction at its deadline remembered for
    /// `acquire_at_eviction_deadline`.
    fn close_goals(&mut self, h: &mut Host<'a>, at: At<'a>, reason: &str, s: Option<Sess>) {
        let (sid, clock) = (at.sid, at.clock);
        let was_idle = s.is_some_and(|s| s.st == St::Idle);
        // Closed by its release (in the same critical section): the
        // release just before, in the same millisecond.
        let after_release = h.clock == clock
            && h.prev
                .is_some_and(|p| p.what == PrevKind::Released && p.session == Some(sid));
        match reason {
            "idle" => self.goal("idle_eviction"),
            "ttl" if after_release => self.goal("ttl_in_use_closed_on_release"),
            "ttl" if was_idle => self.goal("ttl_eviction_idle"),
            "churned" => self.churned(at.i, sid, s, clock),
            _ => {}
        }
        if let (Some(s), "idle" | "ttl") = (s, reason) {
            if was_idle
                && !after_release
                && deadline(&s, self.cfg.ttl_ms, self.cfg.idle_ms) == Some(clock)
            {
                h.evicted_now.push((clock, s.owner));
            }
        }
    }

    /// A session retired by churn: by the trigger the config names, and
    /// only once it was due.
    fn churned(&mut self, i: usize, sid: &str, s: Option<Sess>, clock: u64) {
        let Some(s) = s else { return };
        if let Some(n) = self.cfg.churn_ops {
            self.check("closed_split_by_reason");
            if s.ops >= n {
                self.goal("churn_by_ops");
            } else {
                self.fail(
                    "closed_split_by_reason",
                    i,
                    format!("{sid} churned after {} of {n} operations", s.ops),
                );
            }
        } else if let Some(ms) = self.cfg.churn_ms {
            self.check("closed_split_by_reason");
            let age = s.created_ms.map(|c| clock.saturating_sub(c));
            if age.is_some_and(|a| a >= ms) {
                self.goal("churn_by_time");
            } else {
                self.fail(
                    "closed_split_by_reason",
                    i,
                    format!("{sid} churned at age {age:?}ms, before {ms}ms"),
                );
            }
        }
    }

    /// The capacity law at the end of a chain (index `at`, clock `clock`):
    /// no live waiter while a session is idle or a slot is free.
    fn capacity(&mut self, h: &Host, at: usize, clock: u64) {
        let Some(size) = self.cfg.pool_size else {
            return;
        };
        if h.closing {
            return;
        }
        self.check("no_wait_with_capacity");
        let Some(w) = h.live_waiters(clock).next() else {
            return;
        };
        let (idle, occ) = (h.idle(), h.occupancy());
        let n = h.live_waiters(clock).count();
        if idle > 0 {
            self.fail(
                "no_wait_with_capacity",
                at,
                format!(
                    "vu-{} waits (with {} other waiter(s)) while {idle} session(s) are idle",
                    w.vu,
                    n - 1
                ),
            );
        } else if occ < size as u64 {
            self.fail(
                "no_wait_with_capacity",
                at,
                format!(
                    "vu-{} waits (with {} other waiter(s)) while only {occ} of {size} are taken",
                    w.vu,
                    n - 1
                ),
            );
        }
    }

    /// Waiters still queued past their deadline (plus slack).
    fn overdue_waiters(&mut self, h: &Host, i: usize, clock: u64) {
        let slack = self.cfg.slack_ms;
        if let Some(w) = h
            .waiting
            .iter()
            .find(|w| clock > w.deadline.saturating_add(slack))
        {
            self.fail(
                "acquire_ends_by_deadline",
                i,
                format!(
                    "vu-{} is still waiting at {clock}ms, past its deadline {}ms",
                    w.vu, w.deadline
                ),
            );
        }
    }

    /// A pool acquire that ends without a session must not still hold a
    /// granted session or a reserved slot: they would be lost to the pool.
    /// (Dropped from the model either way, so that one leak is reported
    /// once.)
    fn ends_holding_nothing(&mut self, h: &mut Host, i: usize, vu: u64) {
        if self.cfg.pool_size.is_none() {
            return;
        }
        self.check("pool_bound");
        if let Some(g) = h.granted.remove(&vu) {
            h.sessions.remove(g);
            self.fail(
                "pool_bound",
                i,
                format!("vu-{vu}'s acquire ends without {g}, which was granted to it"),
            );
        }
        if h.reserved.remove(&vu).is_some_and(|n| n > 0) {
            self.fail(
                "pool_bound",
                i,
                format!("vu-{vu}'s acquire ends holding a reserved slot"),
            );
        }
    }

    /// Takes the VU out of the queue without a session; returns whether it
    /// was queued.
    fn leave_queue(&mut self, h: &mut Host, vu: u64) -> bool {
        let Some(pos) = h.waiting.iter().position(|w| w.vu == vu) else {
            return false;
        };
        h.waiting.remove(pos);
        true
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
        match open.deadline {
            Some(deadline) if now > deadline + slack => self.fail(
                "acquire_ends_by_deadline",
                i,
                format!("vu-{vu} timed out at {now}ms, after its deadline {deadline}ms"),
            ),
            // Early is as wrong as late: a waiter the pool gave up on
            // before its time, or one the manager's close timed out
            // instead of failing it with `manager_closed`. No slack here:
            // a timer never fires early, and the clock's milliseconds and
            // the deadline's are cut the same way, so even real time
            // gives `now >= deadline`.
            Some(deadline) if now < deadline => self.fail(
                "acquire_ends_by_deadline",
                i,
                format!("vu-{vu} timed out at {now}ms, before its deadline {deadline}ms"),
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

    fn end_of_host(&mut self, name: &'a str) {
        let Some(h) = self.hosts.remove(name) else {
            return;
        };
        if let Some(at) = h.pending_capacity {
            self.capacity(&h, at, h.clock);
        }
        for (vu, open) in &h.open {
            if let Some(o) = open.first() {
                self.fail(
                    "acquire_ends_by_deadline",
                    o.index,
                    format!("vu-{vu}'s acquire never ended"),
                );
            }
        }
        if let Some(at) = h.closed_at {
            for sid in h.created.keys() {
                if !h.closed.contains_key(sid) {
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
            self.metrics_match_trace(&h, m, name, at);
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
        self.finished.insert(name, *h);
    }

    /// `metrics_match_trace` for host `name` with final metrics `m`.
    fn metrics_match_trace(&mut self, h: &Host, m: &SessionMetrics, name: &str, at: usize) {
        let c = h.counted;
        let reason = |r: CloseReason| h.reasons.get(r.as_str()).copied().unwrap_or(0);
        let (ttl, idle) = (reason(CloseReason::Ttl), reason(CloseReason::Idle));
        let pairs = [
            ("pool_waits", m.pool_waits, "acquire_wait events", c.waits),
            (
                "acquire_wait.count",
                m.acquire_wait.count,
                "acquire_wait events",
                c.waits,
            ),
            (
                "pool_timeouts",
                m.pool_timeouts,
                "acquire_timeout events",
                c.timeouts,
            ),
            (
                "acquire_wait.cancelled",
                m.acquire_wait.cancelled,
                "waits cancelled",
                c.cancelled_waits,
            ),
            ("ttl_evictions", m.ttl_evictions, "ttl closes", ttl),
            ("idle_evictions", m.idle_evictions, "idle closes", idle),
            (
                "total_evicted",
                m.total_evicted,
                "ttl and idle closes",
                ttl + idle,
            ),
        ];
        for (counter, value, what, seen) in pairs {
            self.check("metrics_match_trace");
            if value != seen {
                self.fail(
                    "metrics_match_trace",
                    at,
                    format!("{name}: metrics {counter} = {value} but {seen} {what}"),
                );
            }
        }
    }

    /// `clean_close` of the connections: no worker host keeps a TCP stream
    /// once its manager is closed.
    fn streams_at_end(&mut self) {
        let last = self.trace.events.len().saturating_sub(1);
        let cfg = self.cfg;
        for (host, &held) in &cfg.streams_at_end {
            self.check("clean_close");
            if held != 0 {
                let at = self
                    .finished
                    .get(host.as_str())
                    .map_or(last, |h| h.closed_at.unwrap_or(h.last_index));
                self.fail(
                    "clean_close",
                    at,
                    format!("{host} still holds {held} TCP stream(s) after close"),
                );
            }
        }
    }

    /// The laws about the servers (`created_equals_server_initialized`,
    /// `clean_close`), when the trace holds server events.
    fn server_laws(&mut self) {
        let trace = self.trace;
        if !trace.events.iter().any(|e| e.source() == Source::Server) {
            return;
        }
        let side = ServerSide::of(trace);
        let finished = std::mem::take(&mut self.finished);
        let unexplained = std::mem::take(&mut self.unexplained_close);
        let mut all_created = BTreeSet::new();
        for (host, h) in &finished {
            all_created.extend(h.created.keys().copied());
            self.initialized_by_a_server(host, h, &side);
            if let Some(at) = h.closed_at {
                self.closed_on_servers(host, h, at, &side, &unexplained);
            }
        }
        for &(i, sid) in &side.notified {
            self.check("created_equals_server_initialized");
            if !all_created.contains(sid) {
                self.fail(
                    "created_equals_server_initialized",
                    i,
                    format!("the server saw {sid} initialized; no manager counted it"),
                );
            }
        }
        self.finished = finished;
    }

    /// `created_equals_server_initialized` for worker `host`: a server
    /// initialized every legacy session it created.
    fn initialized_by_a_server(&mut self, host: &str, h: &Host<'a>, side: &ServerSide<'a>) {
        for (sid, i) in &h.created {
            if sid.starts_with("local-") || h.modern.contains(sid) {
                continue;
            }
            self.check("created_equals_server_initialized");
            if !side.created.contains(sid) {
                self.fail(
                    "created_equals_server_initialized",
                    *i,
                    format!("{host} counts {sid} created; no server initialized it"),
                );
            }
        }
    }

    /// `clean_close` for worker `host`, closed at event `at`: no server
    /// still holds a session it created.
    ///
    /// "Where reachable": a session whose DELETE the client sent and saw
    /// fail for a cause in the trace (an injected 5xx, a reset, a
    /// partition: see `cause_laws`; not a 400 for a DELETE without its
    /// session id, which stays in `unexplained`), or that a balancer sent
    /// to an instance that did not mint it, is not a leak of the client's.
    fn closed_on_servers(
        &mut self,
        host: &str,
        h: &Host<'a>,
        at: usize,
        side: &ServerSide<'a>,
        unexplained: &BTreeSet<(String, String)>,
    ) {
        let excused = |s: &str| {
            h.close_failed.contains(s) && !unexplained.contains(&(host.to_owned(), s.to_owned()))
        };
        for sid in h
            .created
            .keys()
            .filter(|s| !excused(s) && !h.modern.contains(*s) && !side.delete_missed.contains(*s))
        {
            self.check("clean_close");
            if let Some((server, _)) = side.live.iter().find(|(_, s)| s.contains(sid)) {
                self.fail(
                    "clean_close",
                    at,
                    format!("{sid} of {host} still open on {server} after close"),
                );
            }
        }
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
                    event: events.get(i).cloned().unwrap_or_default(),
                    context: events.get(from..to).map(<[_]>::to_vec).unwrap_or_default(),
                    message: message.clone(),
                });
            }
        }
        let closed = self
            .finished
            .iter()
            .map(|(h, st)| {
                let reasons = st.reasons.iter().map(|(r, n)| ((*r).to_owned(), *n));
                ((*h).to_owned(), reasons.collect())
            })
            .collect();
        AuditReport {
            checks: owned_keys(&self.checks),
            violations,
            closed,
            goals: owned_keys(&self.goals),
        }
    }
}

/// What the servers' events tell the server laws.
#[derive(Default)]
struct ServerSide<'a> {
    /// The sessions a server initialized.
    created: BTreeSet<&'a str>,
    /// Each server's live sessions at the end.
    live: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// The `notifications/initialized` a server took: index and session.
    notified: Vec<(usize, &'a str)>,
    /// Sessions a server answered as unknown (404): the client was told
    /// they are gone, and sends no DELETE for them. Behind a balancer that
    /// is not sticky, the instance that answered may not be the one that
    /// minted it, which may still hold it: not the client's leak.
    delete_missed: BTreeSet<&'a str>,
}

impl<'a> ServerSide<'a> {
    /// What the server events of `trace` tell.
    fn of(trace: &'a Trace) -> ServerSide<'a> {
        let mut side = ServerSide::default();
        for (i, e) in trace.events.iter().enumerate() {
            if let Kind::Server(s) = &e.kind {
                side.event(i, &e.host, s);
            }
        }
        side
    }

    /// Server event `i`, of host `host`.
    fn event(&mut self, i: usize, host: &'a str, s: &'a ServerEvent) {
        let sid = s.session().unwrap_or_default();
        let live = self.live.entry(host).or_default();
        match s {
            ServerEvent::UnknownSession { .. } => {
                self.delete_missed.insert(sid);
            }
            ServerEvent::SessionCreated { .. } => {
                self.created.insert(sid);
                live.insert(sid);
            }
            ServerEvent::Deleted { .. } | ServerEvent::Expired { .. } => {
                live.remove(sid);
            }
            ServerEvent::SessionsCleared { .. } => live.clear(),
            ServerEvent::Notification { method, .. } if method == "notifications/initialized" => {
                self.notified.push((i, sid));
            }
            _ => {}
        }
    }
}

/// `map` with its keys copied into `String`s.
fn owned_keys(map: &BTreeMap<&str, u64>) -> BTreeMap<String, u64> {
    map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// An idle session's eviction deadline (manager clock): the earlier of its
/// TTL and idle deadlines, as far as known.
fn deadline(s: &Sess, ttl: Option<u64>, idle: Option<u64>) -> Option<u64> {
    let ttl = ttl.and_then(|t| s.created_ms.map(|c| c + t));
    let idle = idle.and_then(|t| s.released_ms.map(|r| r + t));
    match (ttl, idle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
