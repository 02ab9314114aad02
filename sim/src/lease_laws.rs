//! The laws of leases and modes, checked from a [`Trace`] alone (plus the
//! manager's configuration, [`AuditConfig`]): what each mode promises, when
//! a session may be handed out, who may close a session while it is leased,
//! and the reason every close carries. [`crate::audit::audit`] runs these
//! with its own laws and reports them together.
//!
//! # The model
//!
//! Per worker host, the manager's events are replayed (they are reported
//! under the manager's lock, in order): each session is being created (by
//! a VU), in use (leased to a VU), granted to a waiter, idle or closed,
//! with the manager clock of its creating `acquire_ok` (its TTL counts from
//! there), of its last release (its idle time counts from there: a release,
//! or a granted session handed back by a cancelled waiter) and the
//! operations started on it (`operation_start`). A release, invalidation
//! or drop is followed, in the same critical section, by the close it
//! causes: the next event of the host. The deadlines are the library's
//! (`src/eviction.rs`): a session is due *at* its deadline (`now >=
//! deadline`), one millisecond before it is not; when TTL and idle are both
//! due, the reason is `ttl`. After `manager_closing` every session is
//! closed with `shutdown`, and the laws below ask nothing else of it.
//!
//! # The laws, as checked
//!
//! - `no_stale_handout`: a session is handed out (`acquire_ok` of a session
//!   not created for it, or `waiter_granted` with a session) only before its
//!   TTL deadline (creation plus `ttl_ms`) and its idle deadline (last
//!   release plus `max_idle_ms`); a session released at or after its TTL is
//!   closed right then (reason `ttl`; in churn mode `churned` when churn is due as
//!   well, as the library checks churn first), never kept.
//! - `no_close_under_holder`: a session leased to a VU (or granted to a
//!   waiter, or being created by a VU) is closed only by the manager's
//!   shutdown, by its holder's own release, invalidation or drop (the close
//!   right after it), or, while being created, as `failed`: never by the
//!   evictor, by another VU's acquire, or for any other reason.
//! - `no_grant_to_departed`: a `waiter_granted` goes only to a VU whose
//!   acquire is queued (`acquire_wait`, not yet ended by a grant, timeout,
//!   error or cancellation, and not granted already).
//! - `one_lease_per_vu`: a VU is handed a session only while it holds no
//!   other lease, and refused as busy (`vu_busy`) only while it holds one
//!   or has another acquire under way.
//! - `pool_idle_first`: in pool mode, idle sessions are handed out first,
//!   oldest first (in the order they became idle): an acquire that takes an
//!   idle session, or a grant of one, takes the oldest; no acquire reserves
//!   a slot to create a session while one is idle (those due were closed by
//!   that acquire before).
//! - `reuse_one_session_per_vu`: in reuse and churn mode, a VU's acquire
//!   that does not create hands it its own session, the one it last
//!   released (idle since); and a new session is created for a VU only
//!   once its previous one is gone (closed: invalidated, evicted, churned,
//!   dropped, failed).
//! - `churn_exact`: in churn mode, a session is retired exactly when due:
//!   at the release where its operations reach `churn_interval_ops` (or,
//!   by time, at the first release or acquire at or after creation +
//!   `churn_interval_ms`), never kept or handed out past that, and never
//!   before.
//! - `per_request_closes_on_release`: in per-request mode every release
//!   closes its session right then, with reason `released`, and no acquire
//!   hands out a session it did not create.
//! - `no_session_after_close`: once the manager is closing
//!   (`manager_closing`), no acquire gets a session; an acquire that
//!   starts then fails with `manager_closed` (or is cancelled) and creates
//!   nothing; a session whose creation was under way is closed
//!   (`shutdown`) as soon as it is `created`.
//! - `close_reason_exact`: every close's reason is the one for what
//!   happened: `ttl` only at or after the TTL deadline (of an idle session,
//!   or at its release); `idle` only at or after the idle deadline of an
//!   idle session whose TTL is not due; `churned` only in churn mode, when
//!   due (at a release, or of an idle session at its VU's acquire when
//!   neither TTL nor idle is due); `invalidated` only right after the
//!   holder's `invalidated`; `dropped` only right after `lease_dropped`;
//!   `released` only in per-request mode right after `released`;
//!   `shutdown` only after `manager_closing`; `failed` only for a session
//!   never handed out. Reasons that need the config are judged only when
//!   it is known: `released` and `churned` with the mode, `ttl` with
//!   `ttl_ms`, `idle` with `max_idle_ms`, a churn's timing with the churn
//!   interval.

use std::collections::{BTreeMap, BTreeSet};

use mcp_session::Mode;

use crate::audit::{by_name, push_session, push_time, AuditConfig, StateSink, Time};
use crate::trace::{Kind, ManagerEvent, ManagerRecord, Trace};
use crate::wire_laws::Findings;

/// The laws of this module, in report order (each also in
/// [`crate::audit::LAWS`]).
pub const LEASE_LAWS: [&str; 10] = [
    NO_STALE_HANDOUT,
    NO_CLOSE_UNDER_HOLDER,
    NO_GRANT_TO_DEPARTED,
    ONE_LEASE_PER_VU,
    POOL_IDLE_FIRST,
    REUSE_ONE_SESSION_PER_VU,
    CHURN_EXACT,
    PER_REQUEST_CLOSES_ON_RELEASE,
    NO_SESSION_AFTER_CLOSE,
    CLOSE_REASON_EXACT,
];

const NO_STALE_HANDOUT: &str = "no_stale_handout";
const NO_CLOSE_UNDER_HOLDER: &str = "no_close_under_holder";
const NO_GRANT_TO_DEPARTED: &str = "no_grant_to_departed";
const ONE_LEASE_PER_VU: &str = "one_lease_per_vu";
const POOL_IDLE_FIRST: &str = "pool_idle_first";
const REUSE_ONE_SESSION_PER_VU: &str = "reuse_one_session_per_vu";
const CHURN_EXACT: &str = "churn_exact";
const PER_REQUEST_CLOSES_ON_RELEASE: &str = "per_request_closes_on_release";
const NO_SESSION_AFTER_CLOSE: &str = "no_session_after_close";
const CLOSE_REASON_EXACT: &str = "close_reason_exact";

/// Checks the lease and mode laws over `trace` (see the module docs).
pub fn check(trace: &Trace, cfg: &AuditConfig) -> Findings {
    check_with_state(trace, cfg).0
}

/// [`check`], and what the laws keep of each host for the events to come
/// (for [`crate::audit::LawState`]).
pub(crate) fn check_with_state(
    trace: &Trace,
    cfg: &AuditConfig,
) -> (Findings, BTreeMap<String, LeaseState>) {
    let mut l = Laws {
        cfg,
        mode: cfg
            .mode
            .or_else(|| cfg.pool_size.is_some().then_some(Mode::Pool)),
        hosts: BTreeMap::new(),
        out: Findings::default(),
    };
    for law in LEASE_LAWS {
        l.out.checks.insert(law, 0);
    }
    for (i, e) in trace.events.iter().enumerate() {
        if let Kind::Manager(m) = &e.kind {
            l.event(i, &e.host, m);
        }
    }
    let hosts: Vec<&str> = l.hosts.keys().copied().collect();
    let mut states = BTreeMap::new();
    for h in hosts {
        if let Some(mut host) = l.hosts.remove(h) {
            l.expected_close(&mut host, None);
            states.insert(h.to_owned(), l.pending(&host));
        }
    }
    (l.out, states)
}

/// What [`crate::audit::LawState`] keeps of one host's model here: what a
/// law still reads at a later event. Left out: a close expected of the next
/// event (the end of the trace fails it, so it never outlives a clean
/// prefix), a session's release time unless it is idle and its owner unless
/// it is idle in reuse or churn (read only at a hand-out of an idle
/// session; a hand-out of a held one breaks `one_holder` whatever they
/// are), sessions closed (any later event naming one breaks the audit's
/// laws), and the order of idle sessions outside pool mode.
#[derive(Clone, Debug, Default)]
pub(crate) struct LeaseState {
    closing: bool,
    vus: Vec<(u64, LeaseVu)>,
    /// Idle sessions, oldest first (pool mode: `pool_idle_first`).
    idle_order: Vec<String>,
    /// The give-back that was the last event: how, its session, its clock
    /// (read only by a close of that session at that clock).
    returned: Option<(u64, String, u64)>,
    sessions: Vec<(String, LeaseSess)>,
}

/// What the laws here remember of a VU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LeaseVu {
    open: u32,
    waiting: bool,
    granted: Option<String>,
    holding: Option<String>,
    /// Reuse and churn: its session until closed.
    current: Option<String>,
    late: bool,
}

/// What the laws here remember of a session not closed.
#[derive(Clone, Debug)]
struct LeaseSess {
    st: St,
    created: Option<Time>,
    released: Option<Time>,
    owner: Option<u64>,
    ops: u64,
    handed: bool,
}

impl LeaseState {
    /// Whether nothing is remembered (that the encoding would write at
    /// clock `now`).
    pub(crate) fn is_blank(&self, now: u64) -> bool {
        !self.closing
            && self.vus.is_empty()
            && self.idle_order.is_empty()
            && self.returned.as_ref().is_none_or(|r| r.2 != now)
            && self.sessions.is_empty()
    }

    pub(crate) fn encode_vus(&self, now: u64, sink: &mut dyn StateSink) {
        sink.push(u64::from(self.closing));
        sink.push(self.vus.len() as u64);
        for (vu, v) in &self.vus {
            sink.push(*vu);
            sink.push(u64::from(v.open));
            sink.push(u64::from(v.waiting));
            push_session(sink, v.granted.as_deref());
            push_session(sink, v.holding.as_deref());
            push_session(sink, v.current.as_deref());
            sink.push(u64::from(v.late));
        }
        sink.push(self.idle_order.len() as u64);
        for sid in &self.idle_order {
            sink.session(sid);
        }
        match &self.returned {
            Some((back, sid, clock)) if *clock == now => {
                sink.push(1 + back);
                sink.session(sid);
            }
            _ => sink.push(0),
        }
    }

    pub(crate) fn encode_sessions(&self, now: u64, sink: &mut dyn StateSink) {
        sink.push(self.sessions.len() as u64);
        for (sid, s) in by_name(sink, &self.sessions) {
            sink.session(sid);
            let (tag, vu) = match s.st {
                St::Creating { vu } => (0, vu),
                St::InUse { vu } => (1, vu),
                St::Granted { vu } => (2, vu),
                St::Idle => (3, 0),
                St::Closed => (4, 0),
            };
            sink.push(tag);
            sink.push(vu);
            push_time(sink, s.created, now);
            push_time(sink, s.released, now);
            sink.push(s.owner.map_or(0, |v| v + 1));
            sink.push(s.ops);
            sink.push(u64::from(s.handed));
        }
    }
}

/// Where a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Initialized for `vu`, not handed out yet.
    Creating {
        vu: u64,
    },
    /// Leased to `vu`.
    InUse {
        vu: u64,
    },
    /// Granted to waiter `vu`, not picked up yet.
    Granted {
        vu: u64,
    },
    Idle,
    Closed,
}

#[derive(Clone, Copy, Debug)]
struct Sess {
    st: St,
    /// Clock of its creating `acquire_ok`.
    created_ms: Option<u64>,
    /// Clock of its last release (or of a cancelled waiter's hand-back).
    released_ms: Option<u64>,
    /// The VU that last held it.
    owner: Option<u64>,
    /// Operations started on it.
    ops: u64,
    /// Whether it was ever handed out.
    handed: bool,
}

impl Sess {
    /// A session being created by `owner` (if known).
    fn creating(vu: u64, owner: Option<u64>) -> Sess {
        Sess {
            st: St::Creating { vu },
            created_ms: None,
            released_ms: None,
            owner,
            ops: 0,
            handed: false,
        }
    }
}

/// A close the previous event (a release) makes due as the next event.
#[derive(Clone, Copy, Debug)]
struct Expect<'a> {
    index: usize,
    session: &'a str,
    reason: &'static str,
    law: &'static str,
    why: &'static str,
}

/// How a holder gave its session back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Back {
    /// `released`.
    Released,
    /// `invalidated`.
    Invalidated,
    /// `lease_dropped`.
    Dropped,
}

/// A give-back just before: how, its session and clock.
#[derive(Clone, Copy, Debug)]
struct Returned<'a> {
    back: Back,
    session: &'a str,
    clock: u64,
}

/// How an acquire ended without a session.
#[derive(Clone, Copy, Debug)]
enum Ended<'a> {
    /// `acquire_timeout`.
    Timeout,
    /// `acquire_error`, with the error's kind.
    Error(&'a str),
    /// `acquire_cancelled`.
    Cancelled,
}

/// The event being judged: its index, VU (0: none), session ("": none) and
/// manager clock.
#[derive(Clone, Copy, Debug)]
struct At<'a> {
    i: usize,
    vu: u64,
    sid: &'a str,
    clock: u64,
}

#[derive(Default)]
struct Host<'a> {
    sessions: BTreeMap<&'a str, Sess>,
    /// Idle sessions in the order they became idle (pool: oldest first).
    idle_order: Vec<&'a str>,
    /// Open acquires per VU.
    open: BTreeMap<u64, u32>,
    /// VUs whose acquire is queued (and not granted yet).
    waiting: BTreeSet<u64>,
    /// The session granted to each waiter, not picked up yet.
    granted: BTreeMap<u64, &'a str>,
    /// The session leased to each VU.
    holding: BTreeMap<u64, &'a str>,
    /// Reuse and churn: each VU's session (leased or idle) until closed.
    current: BTreeMap<u64, &'a str>,
    closing: bool,
    /// VUs whose acquire started after `manager_closing`.
    late: BTreeSet<u64>,
    /// The give-back that was the previous event of the host.
    returned: Option<Returned<'a>>,
    expect: Option<Expect<'a>>,
}

impl Host<'_> {
    fn unidle(&mut self, sid: &str) {
        self.idle_order.retain(|s| *s != sid);
    }
}

struct Laws<'a> {
    cfg: &'a AuditConfig,
    mode: Option<Mode>,
    hosts: BTreeMap<&'a str, Host<'a>>,
    out: Findings,
}

impl<'a> Laws<'a> {
    /// What [`LeaseState`] keeps of `h` (see there).
    fn pending(&self, h: &Host<'a>) -> LeaseState {
        let mut vus: BTreeSet<u64> = BTreeSet::new();
        vus.extend(h.open.keys());
        vus.extend(h.waiting.iter());
        vus.extend(h.granted.keys());
        vus.extend(h.holding.keys());
        vus.extend(h.current.keys());
        vus.extend(h.late.iter());
        let owned = |s: Option<&&str>| s.map(|s| (*s).to_owned());
        let vus = vus
            .into_iter()
            .map(|vu| {
                let v = LeaseVu {
                    open: h.open.get(&vu).copied().unwrap_or(0),
                    waiting: h.waiting.contains(&vu),
                    granted: owned(h.granted.get(&vu)),
                    holding: owned(h.holding.get(&vu)),
                    current: owned(h.current.get(&vu)),
                    late: h.late.contains(&vu),
                };
                (vu, v)
            })
            .filter(|(_, v)| *v != LeaseVu::default())
            .collect();
        let sessions = self.pending_sessions(h);
        let idle_order = if self.mode == Some(Mode::Pool) {
            h.idle_order.iter().map(|s| (*s).to_owned()).collect()
        } else {
            Vec::new()
        };
        let returned = h.returned.map(|r| {
            let back = match r.back {
                Back::Released => 0,
                Back::Invalidated => 1,
                Back::Dropped => 2,
            };
            (back, r.session.to_owned(), r.clock)
        });
        LeaseState {
            closing: h.closing,
            vus,
            idle_order,
            returned,
            sessions,
        }
    }

    /// What [`Laws::pending`] keeps of `h`'s sessions not closed, by name.
    fn pending_sessions(&self, h: &Host<'a>) -> Vec<(String, LeaseSess)> {
        let reuse = matches!(self.mode, Some(Mode::Reuse | Mode::Churn));
        // A creation is compared with the TTL and (churn by age) the churn
        // interval; a release with the idle limit; operations with churn's.
        let churn_ms = self
            .cfg
            .churn_ms
            .filter(|_| self.mode == Some(Mode::Churn) && self.cfg.churn_ops.is_none());
        let created_cap = match (self.cfg.ttl_ms, churn_ms) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
        };
        let churn_ops = self
            .cfg
            .churn_ops
            .filter(|_| self.mode == Some(Mode::Churn));
        h.sessions
            .iter()
            .filter(|(_, s)| s.st != St::Closed)
            .map(|(sid, s)| {
                let idle = s.st == St::Idle;
                let state = LeaseSess {
                    st: s.st,
                    created: created_cap
                        .and_then(|cap| s.created_ms.map(|at| Time::Since { at, cap })),
                    released: self
                        .cfg
                        .idle_ms
                        .filter(|_| idle)
                        .and_then(|cap| s.released_ms.map(|at| Time::Since { at, cap })),
                    owner: s.owner.filter(|_| idle && reuse),
                    ops: churn_ops.map_or(0, |n| s.ops.min(n)),
                    handed: s.handed,
                };
                ((*sid).to_owned(), state)
            })
            .collect()
    }

    fn check(&mut self, law: &'static str) {
        *self.out.checks.entry(law).or_default() += 1;
    }

    fn fail(&mut self, law: &'static str, index: usize, message: String) {
        self.out.first.entry(law).or_insert((index, message));
    }

    fn ttl_deadline(&self, s: &Sess) -> Option<u64> {
        self.cfg
            .ttl_ms
            .and_then(|t| s.created_ms.map(|c| c.saturating_add(t)))
    }

    fn idle_deadline(&self, s: &Sess) -> Option<u64> {
        self.cfg
            .idle_ms
            .and_then(|t| s.released_ms.map(|r| r.saturating_add(t)))
    }

    fn ttl_due(&self, s: &Sess, clock: u64) -> bool {
        self.ttl_deadline(s).is_some_and(|d| clock >= d)
    }

    fn idle_due(&self, s: &Sess, clock: u64) -> bool {
        self.idle_deadline(s).is_some_and(|d| clock >= d)
    }

    /// Whether churn retires `s` at `clock` (as `Churn::due`).
    fn churn_due(&self, s: &Sess, clock: u64) -> bool {
        if self.mode != Some(Mode::Churn) {
            return false;
        }
        if let Some(n) = self.cfg.churn_ops {
            s.ops >= n
        } else if let Some(ms) = self.cfg.churn_ms {
            s.created_ms.is_some_and(|c| clock >= c.saturating_add(ms))
        } else {
            false
        }
    }

    /// The close expected as the host's next event: `next` is that event
    /// (`None`: the host's events ended).
    fn expected_close(&mut self, h: &mut Host<'a>, next: Option<&ManagerRecord>) {
        let Some(x) = h.expect.take() else { return };
        let closed = next.and_then(|m| match &m.event {
            ManagerEvent::Closed { reason } if m.session.as_deref() == Some(x.session) => {
                Some(reason)
            }
            _ => None,
        });
        match closed {
            Some(reason) => {
                if reason != x.reason {
                    self.fail(
                        x.law,
                        x.index,
                        format!(
                            "{} {}: closed as {reason}, not {}",
                            x.session, x.why, x.reason
                        ),
                    );
                }
            }
            None => self.fail(
                x.law,
                x.index,
                format!(
                    "{} {}, but not closed ({}) then",
                    x.session, x.why, x.reason
                ),
            ),
        }
    }

    /// One manager event of host `host`: its handler, after the close the
    /// event before it made due.
    fn event(&mut self, i: usize, host: &'a str, m: &'a ManagerRecord) {
        let mut h = self.hosts.remove(host).unwrap_or_default();
        self.expected_close(&mut h, Some(m));
        let at = At {
            i,
            vu: m.vu.unwrap_or(0),
            sid: m.session.as_deref().unwrap_or_default(),
            clock: m.clock_ms,
        };
        let returned = h.returned.take();
        let back = |back| (back, at);
        match &m.event {
            ManagerEvent::AcquireStart => {
                *h.open.entry(at.vu).or_default() += 1;
                if h.closing {
                    h.late.insert(at.vu);
                }
            }
            ManagerEvent::AcquireWait { .. } => {
                h.waiting.insert(at.vu);
            }
            ManagerEvent::WaiterGranted { slot } => self.waiter_granted(&mut h, at, *slot),
            ManagerEvent::AcquireOk { created, .. } => self.acquire_ok(&mut h, at, *created),
            ManagerEvent::AcquireTimeout { .. } => self.acquire_ended(&mut h, at, Ended::Timeout),
            ManagerEvent::AcquireError { error } => {
                self.acquire_ended(&mut h, at, Ended::Error(error));
            }
            ManagerEvent::AcquireCancelled { .. } => {
                self.acquire_ended(&mut h, at, Ended::Cancelled);
            }
            ManagerEvent::SlotReserved => self.slot_reserved(&h, at),
            ManagerEvent::Created { .. } => self.created(&mut h, at),
            ManagerEvent::OperationStart { .. } => {
                if let Some(s) = h.sessions.get_mut(at.sid) {
                    s.ops += 1;
                }
            }
            ManagerEvent::Released => self.give_back(&mut h, back(Back::Released)),
            ManagerEvent::Invalidated => self.give_back(&mut h, back(Back::Invalidated)),
            ManagerEvent::LeaseDropped => self.give_back(&mut h, back(Back::Dropped)),
            ManagerEvent::Closed { reason } => self.closed(&mut h, at, reason, returned),
            ManagerEvent::ManagerClosing => h.closing = true,
            _ => {}
        }
        self.hosts.insert(host, h);
    }

    fn end_acquire(&mut self, h: &mut Host<'a>, vu: u64) {
        if let Some(n) = h.open.get_mut(&vu) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                h.open.remove(&vu);
            }
        }
    }

    /// An acquire that ended without a session (`how`): refused as busy
    /// only while busy, after the manager's close only as closed, and a
    /// grant it left behind idle again.
    fn acquire_ended(&mut self, h: &mut Host<'a>, at: At<'a>, how: Ended<'_>) {
        let vu = at.vu;
        if let Ended::Error("vu_busy") = how {
            self.check(ONE_LEASE_PER_VU);
            let open = h.open.get(&vu).copied().unwrap_or(0);
            if !h.holding.contains_key(&vu) && open <= 1 && !h.closing {
                self.fail(
                    ONE_LEASE_PER_VU,
                    at.i,
                    format!("vu-{vu} refused as busy while it holds no lease"),
                );
            }
        }
        self.end_acquire(h, vu);
        h.waiting.remove(&vu);
        if h.late.remove(&vu) {
            self.ended_late(at, how);
        }
        if let Some(g) = h.granted.remove(&vu) {
            // A grant handed back (a cancelled waiter's): idle again
            // from now, in the library's core as here.
            if let Some(s) = h.sessions.get_mut(g) {
                if s.st == (St::Granted { vu }) {
                    s.st = St::Idle;
                    s.released_ms = Some(at.clock);
                    h.idle_order.push(g);
                }
            }
        }
    }

    /// `no_session_after_close` of an acquire started after the manager's
    /// close and ended `how`: with `manager_closed`, or cancelled.
    fn ended_late(&mut self, at: At<'a>, how: Ended<'_>) {
        let (name, error) = match how {
            Ended::Cancelled => return,
            Ended::Timeout => ("acquire_timeout", ""),
            Ended::Error(error) => ("acquire_error", error),
        };
        self.check(NO_SESSION_AFTER_CLOSE);
        if error != "manager_closed" {
            let msg = format!(
                "vu-{}'s acquire, started after the manager's close, ends with {name} {error}",
                at.vu
            );
            self.fail(NO_SESSION_AFTER_CLOSE, at.i, msg);
        }
    }

    /// `pool_idle_first`: no slot reserved while a session is idle.
    fn slot_reserved(&mut self, h: &Host<'a>, at: At<'a>) {
        if self.mode != Some(Mode::Pool) || h.closing {
            return;
        }
        self.check(POOL_IDLE_FIRST);
        if let Some(first) = h.idle_order.first() {
            let msg = format!("vu-{} reserves a slot while {first} is idle", at.vu);
            self.fail(POOL_IDLE_FIRST, at.i, msg);
        }
    }

    /// A session created: after the manager's close, closed at once.
    fn created(&mut self, h: &mut Host<'a>, at: At<'a>) {
        let (vu, sid) = (at.vu, at.sid);
        if h.closing {
            self.check(NO_SESSION_AFTER_CLOSE);
            if h.late.contains(&vu) {
                let msg = format!("{sid} created for vu-{vu}, after the manager's close");
                self.fail(NO_SESSION_AFTER_CLOSE, at.i, msg);
            } else {
                h.expect = Some(Expect {
                    index: at.i,
                    session: sid,
                    reason: "shutdown",
                    law: NO_SESSION_AFTER_CLOSE,
                    why: "created while the manager closes",
                });
            }
        }
        h.sessions.insert(sid, Sess::creating(vu, Some(vu)));
    }

    /// A handout (`what`) of `s` at `clock`: before its deadlines, not
    /// spent by churn.
    fn fresh(&mut self, i: usize, sid: &str, s: &Sess, clock: u64, what: &str) {
        self.check(NO_STALE_HANDOUT);
        if self.ttl_due(s, clock) {
            let d = self.ttl_deadline(s).unwrap_or_default();
            let msg = format!("{sid} {what} at {clock}ms, at or after its TTL deadline {d}ms");
            self.fail(NO_STALE_HANDOUT, i, msg);
        } else if self.idle_due(s, clock) {
            let d = self.idle_deadline(s).unwrap_or_default();
            let msg = format!("{sid} {what} at {clock}ms, at or after its idle deadline {d}ms");
            self.fail(NO_STALE_HANDOUT, i, msg);
        }
        if self.mode == Some(Mode::Churn) {
            self.check(CHURN_EXACT);
            if self.churn_due(s, clock) {
                let msg = format!(
                    "{sid} {what} at {clock}ms, spent by churn ({} operations, created at {:?}ms)",
                    s.ops, s.created_ms
                );
                self.fail(CHURN_EXACT, i, msg);
            }
        }
    }

    /// `pool_idle_first` of idle `sid` handed out (`what`): the oldest.
    fn oldest_idle(&mut self, h: &Host<'a>, i: usize, sid: &str, what: &str) {
        if self.mode != Some(Mode::Pool) {
            return;
        }
        self.check(POOL_IDLE_FIRST);
        if let Some(first) = h.idle_order.first().filter(|f| **f != sid) {
            let msg = format!("{sid} {what} while {first} idles longer");
            self.fail(POOL_IDLE_FIRST, i, msg);
        }
    }

    fn waiter_granted(&mut self, h: &mut Host<'a>, at: At<'a>, slot: bool) {
        let (vu, sid) = (at.vu, at.sid);
        self.check(NO_GRANT_TO_DEPARTED);
        if !h.waiting.remove(&vu) {
            let what = if h.open.contains_key(&vu) {
                "whose acquire is not queued"
            } else {
                "whose acquire has ended"
            };
            self.fail(
                NO_GRANT_TO_DEPARTED,
                at.i,
                format!("a grant to vu-{vu}, {what}"),
            );
        }
        if slot {
            return;
        }
        if let Some(s) = h.sessions.get(sid).copied() {
            if s.st == St::Idle {
                let what = format!("granted to vu-{vu}");
                self.fresh(at.i, sid, &s, at.clock, &what);
                self.oldest_idle(h, at.i, sid, &what);
            }
        }
        h.unidle(sid);
        if let Some(s) = h.sessions.get_mut(sid) {
            s.st = St::Granted { vu };
        }
        h.granted.insert(vu, sid);
    }

    fn acquire_ok(&mut self, h: &mut Host<'a>, at: At<'a>, created: bool) {
        let (i, vu, sid) = (at.i, at.vu, at.sid);
        self.end_acquire(h, vu);
        h.late.remove(&vu);
        if h.closing {
            self.check(NO_SESSION_AFTER_CLOSE);
            let msg = format!("{sid} handed to vu-{vu} while the manager closes");
            self.fail(NO_SESSION_AFTER_CLOSE, i, msg);
        }
        h.waiting.remove(&vu);
        let from_grant = h.granted.get(&vu) == Some(&sid);
        if from_grant {
            h.granted.remove(&vu);
        }
        self.check(ONE_LEASE_PER_VU);
        if let Some(other) = h.holding.get(&vu) {
            let msg = format!("{sid} handed to vu-{vu}, which still holds {other}");
            self.fail(ONE_LEASE_PER_VU, i, msg);
        }
        let prior = h.sessions.get(sid).copied();
        if !created && !from_grant && !h.closing {
            let what = format!("handed to vu-{vu}");
            if let Some(s) = prior {
                self.fresh(i, sid, &s, at.clock, &what);
            }
            self.oldest_idle(h, i, sid, &what);
        }
        self.mode_handout(h, at, created, prior);
        h.unidle(sid);
        h.holding.insert(vu, sid);
        let s = h.sessions.entry(sid).or_insert(Sess::creating(vu, None));
        s.st = St::InUse { vu };
        s.owner = Some(vu);
        s.handed = true;
        if created {
            s.created_ms = Some(at.clock);
        }
    }

    /// What the mode asks of a handout: in reuse and churn, the VU's own
    /// session (or a new one once it is gone); in per-request, a new one.
    fn mode_handout(&mut self, h: &mut Host<'a>, at: At<'a>, created: bool, prior: Option<Sess>) {
        let (i, vu, sid) = (at.i, at.vu, at.sid);
        match self.mode {
            Some(Mode::Reuse | Mode::Churn) => {
                self.check(REUSE_ONE_SESSION_PER_VU);
                let current = h.current.get(&vu).copied();
                if created {
                    if let Some(old) = current.filter(|o| *o != sid) {
                        let msg =
                            format!("{sid} created for vu-{vu}, whose session {old} is still open");
                        self.fail(REUSE_ONE_SESSION_PER_VU, i, msg);
                    }
                } else {
                    let own = prior.is_some_and(|s| s.owner == Some(vu) && s.st == St::Idle);
                    if !own || current != Some(sid) {
                        let msg = format!(
                            "{sid} handed to vu-{vu}, which is not its own idle session ({})",
                            current.unwrap_or("it has none")
                        );
                        self.fail(REUSE_ONE_SESSION_PER_VU, i, msg);
                    }
                }
                h.current.insert(vu, sid);
            }
            Some(Mode::PerRequest) => {
                self.check(PER_REQUEST_CLOSES_ON_RELEASE);
                if !created {
                    let msg = format!("{sid} handed to vu-{vu} again in per-request mode");
                    self.fail(PER_REQUEST_CLOSES_ON_RELEASE, i, msg);
                }
            }
            _ => {}
        }
    }

    /// A holder's give-back (`back`, at `at`): the close it makes due.
    fn give_back(&mut self, h: &mut Host<'a>, (back, at): (Back, At<'a>)) {
        let (vu, sid, clock) = (at.vu, at.sid, at.clock);
        h.returned = Some(Returned {
            back,
            session: sid,
            clock,
        });
        if h.holding.get(&vu) == Some(&sid) {
            h.holding.remove(&vu);
        }
        let Some(s) = h.sessions.get(sid).copied() else {
            return;
        };
        if s.st == St::Closed {
            // Closed under the lease (shutdown): nothing more happens.
            return;
        }
        if back != Back::Released {
            // Invalidated or dropped: closed right after (its reason is
            // checked there).
            if let Some(s) = h.sessions.get_mut(sid) {
                s.st = St::Idle;
            }
            return;
        }
        if let Some(s) = h.sessions.get_mut(sid) {
            s.st = St::Idle;
            s.released_ms = Some(clock);
        }
        if h.closing {
            return;
        }
        h.expect = self.close_owed(s, at);
        if self.mode == Some(Mode::PerRequest) {
            self.check(PER_REQUEST_CLOSES_ON_RELEASE);
        }
        if h.expect.is_none() {
            h.idle_order.push(sid);
        }
    }

    /// The close a release of `s` at `at` makes due, if any.
    fn close_owed(&mut self, s: Sess, at: At<'a>) -> Option<Expect<'a>> {
        let expect = |reason, law, why| Expect {
            index: at.i,
            session: at.sid,
            reason,
            law,
            why,
        };
        match self.mode {
            Some(Mode::PerRequest) => Some(expect(
                "released",
                PER_REQUEST_CLOSES_ON_RELEASE,
                "released in per-request mode",
            )),
            Some(Mode::Churn) if self.churn_due(&s, at.clock) => {
                self.check(CHURN_EXACT);
                Some(expect("churned", CHURN_EXACT, "released spent by churn"))
            }
            _ if self.ttl_due(&s, at.clock) => {
                self.check(NO_STALE_HANDOUT);
                Some(expect(
                    "ttl",
                    NO_STALE_HANDOUT,
                    "released at or after its TTL",
                ))
            }
            _ => None,
        }
    }

    fn closed(
        &mut self,
        h: &mut Host<'a>,
        at: At<'a>,
        reason: &str,
        returned: Option<Returned<'a>>,
    ) {
        let (i, sid, clock) = (at.i, at.sid, at.clock);
        let Some(s) = h.sessions.get(sid).copied() else {
            return;
        };
        // The holder's own give-back, just before (in the same critical
        // section: the same millisecond).
        let back = returned
            .filter(|r| r.session == sid && r.clock == clock)
            .map(|r| r.back);
        self.check(NO_CLOSE_UNDER_HOLDER);
        let held = match s.st {
            St::InUse { vu } => Some(("leased to", vu)),
            St::Granted { vu } => Some(("granted to", vu)),
            St::Creating { vu } => Some(("being created by", vu)),
            St::Idle | St::Closed => None,
        };
        if let Some((how, vu)) = held {
            let failed = reason == "failed" && matches!(s.st, St::Creating { .. });
            if reason != "shutdown" && !failed {
                let msg = format!("{sid} closed ({reason}) while {how} vu-{vu}");
                self.fail(NO_CLOSE_UNDER_HOLDER, i, msg);
            }
        }
        self.check(CLOSE_REASON_EXACT);
        if let Some(why) = self.wrong_reason(h, &s, reason, back, clock) {
            let msg = format!("{sid} closed as {reason} at {clock}ms {why}");
            self.fail(CLOSE_REASON_EXACT, i, msg);
        }
        h.unidle(sid);
        if let Some(s) = h.sessions.get_mut(sid) {
            s.st = St::Closed;
        }
        h.current.retain(|_, c| *c != sid);
    }

    /// What is wrong with closing `s` for `reason` at `clock`, right after
    /// its holder's give-back `back` if any (`close_reason_exact`).
    fn wrong_reason(
        &self,
        h: &Host<'a>,
        s: &Sess,
        reason: &str,
        back: Option<Back>,
        clock: u64,
    ) -> Option<String> {
        let known = self.mode.is_some();
        let idle = s.st == St::Idle && back.is_none();
        match reason {
            "shutdown" => (!h.closing).then(|| "before the manager's close".to_owned()),
            "failed" => s.handed.then(|| "after it was handed out".to_owned()),
            "invalidated" => {
                (back != Some(Back::Invalidated)).then(|| "not after its invalidation".to_owned())
            }
            "dropped" => {
                (back != Some(Back::Dropped)).then(|| "not after its lease was dropped".into())
            }
            _ if !known => None,
            "released" => {
                if self.mode != Some(Mode::PerRequest) {
                    Some("outside per-request mode".to_owned())
                } else {
                    (back != Some(Back::Released)).then(|| "not at its release".to_owned())
                }
            }
            "ttl" if self.cfg.ttl_ms.is_none() => None,
            "idle" if self.cfg.idle_ms.is_none() => None,
            "ttl" => self.wrong_ttl(s, idle, back, clock),
            "idle" => self.wrong_idle(s, idle, clock),
            "churned" => self.wrong_churn(s, idle, back, clock),
            other => Some(format!("an unknown reason {other}")),
        }
    }

    /// [`Laws::wrong_reason`] of a `ttl` close.
    fn wrong_ttl(&self, s: &Sess, idle: bool, back: Option<Back>, clock: u64) -> Option<String> {
        let released = back == Some(Back::Released);
        if !self.ttl_due(s, clock) {
            Some(format!(
                "before its TTL deadline ({:?}ms)",
                self.ttl_deadline(s)
            ))
        } else if released && self.churn_due(s, clock) {
            Some("at a release that churn retires first".to_owned())
        } else if !idle && !released {
            Some("neither idle nor at its release".to_owned())
        } else {
            None
        }
    }

    /// [`Laws::wrong_reason`] of an `idle` close.
    fn wrong_idle(&self, s: &Sess, idle: bool, clock: u64) -> Option<String> {
        if !self.idle_due(s, clock) {
            Some(format!(
                "before its idle deadline ({:?}ms)",
                self.idle_deadline(s)
            ))
        } else if self.ttl_due(s, clock) {
            Some("while its TTL is due too (TTL wins)".to_owned())
        } else if !idle {
            Some("while not idle".to_owned())
        } else {
            None
        }
    }

    /// [`Laws::wrong_reason`] of a `churned` close.
    fn wrong_churn(&self, s: &Sess, idle: bool, back: Option<Back>, clock: u64) -> Option<String> {
        let policy = self.cfg.churn_ops.is_some() || self.cfg.churn_ms.is_some();
        if self.mode != Some(Mode::Churn) {
            Some("outside churn mode".to_owned())
        } else if !policy {
            None
        } else if !self.churn_due(s, clock) {
            Some(format!(
                "before churn was due ({} operations, created at {:?}ms)",
                s.ops, s.created_ms
            ))
        } else if idle && (self.ttl_due(s, clock) || self.idle_due(s, clock)) {
            Some("at an acquire that finds it expired (ttl or idle wins)".to_owned())
        } else if !idle && back != Some(Back::Released) {
            Some("neither idle nor at its release".to_owned())
        } else {
            None
        }
    }
}
