//! Exhaustive exploration: every interleaving of a small scope's inputs,
//! breadth first, against the real decision logic, with the audit's laws
//! checked after every step.
//!
//! # What is explored
//!
//! A world is the pool's pure core ([`PoolCore`], the very code the manager
//! runs) plus what the VU tasks hold (nothing, a queued wait, a slot they
//! create a session in, a lease), the manager's clock, and whether the
//! manager closed. An [`Input`] is one thing that can happen next: a VU
//! acquires, its session creation succeeds or fails, it releases or
//! invalidates its lease, its woken task takes how its wait ended, its
//! acquire is cancelled; a millisecond passes, or time jumps to the next
//! deadline; the evictor runs; the manager closes. Time never passes while
//! a woken task has not run or while a deadline is due and the evictor has
//! not run (tokio runs every ready task before the clock moves, and the
//! evictor's timer fires at its deadline), but any other input may come in
//! the same millisecond first — which is where the races at a deadline are.
//!
//! # The oracle
//!
//! Each input is carried out the way the manager's pool shell carries it
//! out (`src/modes/pool.rs`), and the events it reports are the manager's
//! events, converted to [`TraceEvent`]s exactly as a simulation records them.
//! After every step the path's trace is audited with
//! [`crate::audit::audit_prefix`]: the same law code as a sweep's audit, not
//! a second copy of it. The core's own invariant
//! ([`PoolCore::check_invariants`]) is checked as well.
//!
//! # The search
//!
//! Breadth first over inputs, with a set of visited states: a state is
//! hashed (BLAKE3 of a canonical encoding) with times relative to the clock
//! and capped where the future cannot tell them apart, sessions and
//! reservations named by where they are rather than by their ids. So the
//! first violation found is on a shortest path to it, and that path is
//! printed as a replayable script ([`Input`]'s text form) and as a unit
//! test. States reached again by another path are not expanded again; the
//! laws are checked on the first (shortest) path to each state.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mcp_session::eviction::{Deadlines, Entry};
use mcp_session::per_vu::{Churn, Take, VuTable};
use mcp_session::pool::core::{
    Acquire, Effects, Grant, PoolCore, Reservation, WaitEnd, WaiterId, WaiterState,
};
use mcp_session::{CloseReason, Event, EventKind, Instant, Mode, SessionConfig, SessionEra, VuId};

use crate::audit::{audit_prefix, AuditConfig};
use crate::trace::{Trace, TraceEvent};

/// The host name of the explored manager in the traces.
const HOST: &str = "worker-0";

/// A scope: what is explored, and how deep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// The mode: `pool`, or `reuse` / `churn` (the per-VU table).
    pub mode: Mode,
    /// `pool_size`.
    pub pool_size: usize,
    /// How many VUs (each acquires, holds at most one lease, and so on).
    pub vus: u64,
    /// The longest path explored, in inputs.
    pub depth: usize,
    /// `ttl_ms` (`None`: no TTL).
    pub ttl_ms: Option<u64>,
    /// `max_idle_ms` (`None`: no idle eviction).
    pub idle_ms: Option<u64>,
    /// `acquire_timeout_ms`.
    pub timeout_ms: u64,
    /// In churn mode, `churn_interval_ms` (churn by age; `churn_interval_ops`
    /// is 0, as explored paths run no operations).
    pub churn_ms: u64,
}

impl Scope {
    /// Pool mode with `pool_size` slots, `vus` VUs, paths of up to `depth`
    /// inputs, and short limits (TTL 4 ms, idle 2 ms, acquire timeout 2 ms)
    /// so that every deadline is within a few steps.
    pub fn pool(pool_size: usize, vus: u64, depth: usize) -> Self {
        Scope {
            mode: Mode::Pool,
            pool_size,
            vus,
            depth,
            ttl_ms: Some(4),
            idle_ms: Some(2),
            timeout_ms: 2,
            churn_ms: 0,
        }
    }

    /// Reuse mode with `vus` VUs and paths of up to `depth` inputs (TTL
    /// 4 ms, idle 2 ms).
    pub fn reuse(vus: u64, depth: usize) -> Self {
        Scope {
            mode: Mode::Reuse,
            pool_size: 0,
            ..Scope::pool(0, vus, depth)
        }
    }

    /// Churn mode by age (`churn_interval_ms` 3), otherwise as
    /// [`Scope::reuse`].
    pub fn churn(vus: u64, depth: usize) -> Self {
        Scope {
            mode: Mode::Churn,
            churn_ms: 3,
            ..Scope::reuse(vus, depth)
        }
    }

    /// The default set, run by `mcp-sim explore` without `--mode` and by
    /// `cargo test` (`sim/tests/explore.rs`).
    pub fn defaults() -> Vec<Scope> {
        vec![
            Scope::pool(1, 3, 11),
            Scope::pool(2, 3, 10),
            Scope::pool(3, 4, 8),
            Scope::reuse(3, 11),
            Scope::churn(3, 11),
            Scope {
                ttl_ms: None,
                idle_ms: None,
                ..Scope::pool(1, 4, 10)
            },
        ]
    }

    /// The manager config this scope explores.
    pub fn session_config(&self) -> SessionConfig {
        let mut c = SessionConfig::with_mode(self.mode);
        c.pool_size = self.pool_size;
        c.ttl_ms = self.ttl_ms.unwrap_or(0);
        c.max_idle_ms = self.idle_ms.unwrap_or(0);
        c.acquire_timeout_ms = self.timeout_ms;
        if self.mode == Mode::Churn {
            c.churn_interval_ops = 0;
            c.churn_interval_ms = self.churn_ms;
        }
        c
    }

    /// The audit's config: the manager's, with no slack (the explored
    /// evictor runs at its deadline exactly).
    pub fn audit_config(&self) -> AuditConfig {
        let mut a = AuditConfig::for_session(&self.session_config());
        a.slack_ms = 0;
        a
    }

    /// The eviction limits of this scope.
    pub fn deadlines(&self) -> Deadlines {
        Deadlines {
            ttl: self.ttl_ms.map(Duration::from_millis),
            max_idle: self.idle_ms.map(Duration::from_millis),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |v: Option<u64>| v.map_or("off".to_owned(), |v| format!("{v}ms"));
        match self.mode {
            Mode::Pool => write!(
                f,
                "--mode pool --pool-size {} --vus {} --depth {} (ttl {}, idle {}, acquire timeout {}ms)",
                self.pool_size,
                self.vus,
                self.depth,
                ms(self.ttl_ms),
                ms(self.idle_ms),
                self.timeout_ms
            ),
            mode => write!(
                f,
                "--mode {} --vus {} --depth {} (ttl {}, idle {}{})",
                mode.as_str(),
                self.vus,
                self.depth,
                ms(self.ttl_ms),
                ms(self.idle_ms),
                if mode == Mode::Churn {
                    format!(", churn after {}ms", self.churn_ms)
                } else {
                    String::new()
                }
            ),
        }
    }
}

/// One thing that can happen next. The text form (`acquire 1`, `tick`, ...)
/// is the replayable script's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Input {
    /// VU `n` acquires (waiting if the pool is full).
    Acquire(u64),
    /// VU `n`'s session creation succeeds.
    CreateOk(u64),
    /// VU `n`'s session creation fails (connect error).
    CreateFail(u64),
    /// VU `n` releases its lease.
    Release(u64),
    /// VU `n` invalidates its lease (the server answered 404).
    Invalidate(u64),
    /// VU `n`'s woken task runs and takes how its wait ended.
    Wake(u64),
    /// VU `n`'s acquire future is dropped (waiting or creating).
    Cancel(u64),
    /// One millisecond passes.
    Tick,
    /// Time jumps to the next deadline.
    Jump,
    /// The evictor runs (expires due waiters, evicts due idle sessions).
    Evict,
    /// The manager closes.
    Close,
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Acquire(v) => write!(f, "acquire {v}"),
            Input::CreateOk(v) => write!(f, "create_ok {v}"),
            Input::CreateFail(v) => write!(f, "create_fail {v}"),
            Input::Release(v) => write!(f, "release {v}"),
            Input::Invalidate(v) => write!(f, "invalidate {v}"),
            Input::Wake(v) => write!(f, "wake {v}"),
            Input::Cancel(v) => write!(f, "cancel {v}"),
            Input::Tick => f.write_str("tick"),
            Input::Jump => f.write_str("jump"),
            Input::Evict => f.write_str("evict"),
            Input::Close => f.write_str("close"),
        }
    }
}

impl FromStr for Input {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let verb = words.next().ok_or("an empty step")?;
        let vu = |w: Option<&str>| -> Result<u64, String> {
            w.ok_or(format!("`{verb}` needs a VU number"))?
                .parse()
                .map_err(|_| format!("`{s}`: not a VU number"))
        };
        let input = match verb {
            "acquire" => Input::Acquire(vu(words.next())?),
            "create_ok" => Input::CreateOk(vu(words.next())?),
            "create_fail" => Input::CreateFail(vu(words.next())?),
            "release" => Input::Release(vu(words.next())?),
            "invalidate" => Input::Invalidate(vu(words.next())?),
            "wake" => Input::Wake(vu(words.next())?),
            "cancel" => Input::Cancel(vu(words.next())?),
            "tick" => Input::Tick,
            "jump" => Input::Jump,
            "evict" => Input::Evict,
            "close" => Input::Close,
            other => return Err(format!("unknown step `{other}`")),
        };
        match words.next() {
            Some(extra) => Err(format!("`{s}`: unexpected `{extra}`")),
            None => Ok(input),
        }
    }
}

/// Parses a script: one input per line or separated by `;`, `#` comments.
pub fn parse_script(text: &str) -> Result<Vec<Input>, String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(|l| l.split(';'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::parse)
        .collect()
}

/// What a VU's task holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Task {
    /// No acquire under way, no lease.
    Idle,
    /// Waiting as `waiter` since `since` (ms).
    Waiting { waiter: WaiterId, since: u64 },
    /// Creating a session in reservation `r`, after waiting `waited_ms`.
    Creating { r: Reservation, waited_ms: u64 },
    /// Creating a session for its slot of the per-VU table.
    Making,
    /// Holding a lease on the session.
    Holding(Entry<u64>),
}

/// One explored world: the pool core and the VU tasks around it.
#[derive(Clone, Debug)]
pub struct World {
    now: u64,
    core: PoolCore<u64>,
    /// Reuse and churn: the per-VU table (the pool core is then unused).
    table: Option<VuTable<u64>>,
    /// Churn by age: its interval (ms), for the canonical encoding.
    churn_ms: u64,
    tasks: Vec<Task>,
    closed: bool,
    /// Sessions created and not closed (the manager's registry), by number.
    live: BTreeSet<u64>,
    /// Sessions closed.
    gone: BTreeSet<u64>,
    next_session: u64,
    /// Sessions invalidated after a 404 and not yet replaced.
    replace: u64,
    /// Whether the evictor ran at this millisecond (it then sleeps until
    /// the next deadline the core names, even if a deadline it did not act
    /// on is still due).
    evicted_now: bool,
    timeout: Duration,
}

impl World {
    /// The world of `scope` before anything happened.
    pub fn new(scope: &Scope) -> Self {
        let mut w = Self::with_core(scope, PoolCore::new(scope.pool_size, scope.deadlines()));
        if scope.mode != Mode::Pool {
            let churn = Churn::from_config(&scope.session_config());
            w.table = Some(VuTable::new(scope.deadlines(), churn));
        }
        w
    }

    /// The world of `scope` around `core` (a core with a planted bug, in
    /// the tests that show exploration finds it).
    pub fn with_core(scope: &Scope, core: PoolCore<u64>) -> Self {
        World {
            now: 0,
            core,
            table: None,
            churn_ms: scope.churn_ms,
            tasks: vec![Task::Idle; scope.vus as usize],
            closed: false,
            live: BTreeSet::new(),
            gone: BTreeSet::new(),
            next_session: 0,
            replace: 0,
            evicted_now: false,
            timeout: Duration::from_millis(scope.timeout_ms),
        }
    }

    /// The pool core.
    pub fn core(&self) -> &PoolCore<u64> {
        &self.core
    }

    /// The clock, in ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    fn vus(&self) -> impl Iterator<Item = u64> {
        1..=self.tasks.len() as u64
    }

    fn task(&self, vu: u64) -> &Task {
        &self.tasks[(vu - 1) as usize]
    }

    fn set(&mut self, vu: u64, t: Task) {
        self.tasks[(vu - 1) as usize] = t;
    }

    /// A VU whose wait ended and whose task has not run yet.
    fn ready(&self, vu: u64) -> bool {
        matches!(self.task(vu), Task::Waiting { waiter, .. }
            if self.core.waiter_state(*waiter) != Some(WaiterState::Queued))
    }

    /// When the evictor must run next.
    fn next_wakeup(&self) -> Option<u64> {
        if self.closed {
            return None;
        }
        match &self.table {
            Some(t) => t.next_deadline(),
            None => self.core.next_wakeup(),
        }
        .map(Instant::as_millis)
    }

    fn due(&self) -> Option<u64> {
        self.next_wakeup().filter(|d| *d <= self.now)
    }

    /// The inputs that can happen next, in a fixed order.
    pub fn enabled(&self) -> Vec<Input> {
        let mut out = Vec::new();
        for vu in self.vus() {
            match self.task(vu) {
                Task::Idle => out.push(Input::Acquire(vu)),
                Task::Waiting { .. } => {
                    if self.ready(vu) {
                        out.push(Input::Wake(vu));
                    }
                    out.push(Input::Cancel(vu));
                }
                Task::Making => {
                    out.extend([
                        Input::CreateOk(vu),
                        Input::CreateFail(vu),
                        Input::Cancel(vu),
                    ]);
                }
                Task::Creating { .. } => {
                    out.extend([
                        Input::CreateOk(vu),
                        Input::CreateFail(vu),
                        Input::Cancel(vu),
                    ]);
                }
                Task::Holding(_) => out.extend([Input::Release(vu), Input::Invalidate(vu)]),
            }
        }
        let evictor_done = self.due().is_none() || self.evicted_now;
        let settled = !self.vus().any(|vu| self.ready(vu)) && evictor_done;
        if settled {
            out.push(Input::Tick);
            if self.next_wakeup().is_some_and(|d| d > self.now + 1) {
                out.push(Input::Jump);
            }
        }
        if !evictor_done {
            out.push(Input::Evict);
        }
        if !self.closed {
            out.push(Input::Close);
        }
        out
    }

    /// Carries out `input` as the manager does; returns the events the
    /// manager reports, or `Err` if the input cannot happen now.
    pub fn step(&mut self, input: Input) -> Result<Vec<TraceEvent>, String> {
        if !self.enabled().contains(&input) {
            return Err(format!("`{input}` cannot happen at this point"));
        }
        let mut out = Out::new(self.now);
        if self.table.is_some() {
            self.step_per_vu(input, &mut out);
            return Ok(out.events);
        }
        match input {
            Input::Acquire(vu) => self.acquire(vu, &mut out),
            Input::CreateOk(vu) => self.create_ok(vu, &mut out),
            Input::CreateFail(vu) => {
                let Task::Creating { r, .. } = *self.task(vu) else {
                    unreachable!("enabled")
                };
                self.set(vu, Task::Idle);
                let fx = self.core.cancel_reservation(r);
                out.emit(Some(vu), None, EventKind::SlotFreed);
                self.apply(fx, Some(vu), &mut out);
                out.acquire_error(vu, None, "connect");
            }
            Input::Release(vu) | Input::Invalidate(vu) => {
                let Task::Holding(e) = self.task(vu).clone() else {
                    unreachable!("enabled")
                };
                self.set(vu, Task::Idle);
                let sid = Some(e.item);
                let now = Instant::from_millis(self.now);
                let fx = if input == Input::Release(vu) {
                    out.emit(Some(vu), sid, EventKind::Released);
                    if self.gone.contains(&e.item) {
                        self.core.discard(e, CloseReason::Shutdown)
                    } else {
                        self.core.release(e, now)
                    }
                } else {
                    out.emit(Some(vu), sid, EventKind::Invalidated);
                    if !self.core.is_closed() {
                        self.replace += 1;
                    }
                    self.core.discard(e, CloseReason::Invalidated)
                };
                self.apply(fx, Some(vu), &mut out);
            }
            Input::Wake(vu) => self.wake(vu, &mut out),
            Input::Cancel(vu) => match self.task(vu).clone() {
                Task::Waiting { waiter, .. } => {
                    self.set(vu, Task::Idle);
                    let fx = self
                        .core
                        .cancel_waiter(waiter, Instant::from_millis(self.now));
                    out.emit(
                        Some(vu),
                        None,
                        EventKind::AcquireCancelled { waiting: true },
                    );
                    self.apply(fx, Some(vu), &mut out);
                }
                Task::Creating { r, .. } => {
                    self.set(vu, Task::Idle);
                    let fx = self.core.cancel_reservation(r);
                    out.emit(
                        Some(vu),
                        None,
                        EventKind::AcquireCancelled { waiting: false },
                    );
                    out.emit(Some(vu), None, EventKind::SlotFreed);
                    self.apply(fx, Some(vu), &mut out);
                }
                _ => unreachable!("enabled"),
            },
            Input::Tick => {
                self.now += 1;
                self.evicted_now = false;
            }
            Input::Jump => {
                self.now = self.next_wakeup().unwrap_or(self.now);
                self.evicted_now = false;
            }
            Input::Evict => {
                self.evicted_now = true;
                let now = Instant::from_millis(self.now);
                let timed_out = self.core.expire_waiters(now);
                self.apply(timed_out, None, &mut out);
                let fx = self.core.evict(now);
                self.apply(fx, None, &mut out);
            }
            Input::Close => {
                self.closed = true;
                out.emit(None, None, EventKind::ManagerClosing);
                // The core's idle sessions are in the registry, closed
                // below in creation order, as the manager does.
                let _ = self.core.close();
                for s in std::mem::take(&mut self.live) {
                    self.begin_close(s, CloseReason::Shutdown, None, &mut out);
                }
            }
        }
        Ok(out.events)
    }

    /// Reuse and churn: `input` carried out as `modes/reuse.rs` does.
    fn step_per_vu(&mut self, input: Input, out: &mut Out) {
        let now = Instant::from_millis(self.now);
        let mut t = self.table.take().expect("per-VU mode");
        match input {
            Input::Acquire(vu) => {
                out.emit(Some(vu), None, EventKind::AcquireStart);
                if self.closed {
                    out.acquire_error(vu, None, "manager_closed");
                } else {
                    match t.take(VuId(vu), now) {
                        Take::Ready(e) => {
                            self.table = Some(t);
                            self.hand_out(vu, e, false, 0, out);
                            return;
                        }
                        Take::Busy => out.acquire_error(vu, None, "vu_busy"),
                        Take::Create(retired) => {
                            if let Some((s, reason)) = retired {
                                self.begin_close(s, reason, Some(vu), out);
                            }
                            self.set(vu, Task::Making);
                        }
                    }
                }
            }
            Input::CreateOk(vu) => {
                self.set(vu, Task::Idle);
                self.next_session += 1;
                let s = self.next_session;
                self.live.insert(s);
                let era = SessionEra::Legacy;
                out.emit(Some(vu), Some(s), EventKind::Created { era });
                if self.closed {
                    self.begin_close(s, CloseReason::Shutdown, Some(vu), out);
                    out.acquire_error(vu, Some(s), "manager_closed");
                } else {
                    let reconnect = t.take_replacement(VuId(vu));
                    out.emit(
                        Some(vu),
                        Some(s),
                        EventKind::AcquireOk {
                            created: true,
                            reconnect,
                            waited_ms: 0,
                        },
                    );
                    self.set(vu, Task::Holding(Entry::new(s, now)));
                }
            }
            Input::CreateFail(vu) | Input::Cancel(vu) => {
                self.set(vu, Task::Idle);
                if !self.closed {
                    t.vacate(VuId(vu));
                }
                if matches!(input, Input::CreateFail(_)) {
                    out.acquire_error(vu, None, "connect");
                } else {
                    let kind = EventKind::AcquireCancelled { waiting: false };
                    out.emit(Some(vu), None, kind);
                }
            }
            Input::Release(vu) | Input::Invalidate(vu) => {
                let Task::Holding(e) = self.task(vu).clone() else {
                    unreachable!("enabled")
                };
                self.set(vu, Task::Idle);
                let release = matches!(input, Input::Release(_));
                let kind = if release {
                    EventKind::Released
                } else {
                    EventKind::Invalidated
                };
                out.emit(Some(vu), Some(e.item), kind);
                if self.closed {
                    self.begin_close(e.item, CloseReason::Shutdown, Some(vu), out);
                } else if release {
                    if let Some((s, reason)) = t.put_back(VuId(vu), e, now) {
                        self.begin_close(s, reason, Some(vu), out);
                    }
                } else {
                    t.vacate(VuId(vu));
                    t.mark_replacement(VuId(vu));
                    self.begin_close(e.item, CloseReason::Invalidated, Some(vu), out);
                }
            }
            Input::Wake(_) => unreachable!("no waiters in a per-VU mode"),
            Input::Tick => {
                self.now += 1;
                self.evicted_now = false;
            }
            Input::Jump => {
                self.table = Some(t);
                self.now = self.next_wakeup().unwrap_or(self.now);
                self.evicted_now = false;
                return;
            }
            Input::Evict => {
                self.evicted_now = true;
                for (vu, s, reason) in t.evict(now) {
                    self.begin_close(s, reason, Some(vu.0), out);
                }
            }
            Input::Close => {
                self.closed = true;
                out.emit(None, None, EventKind::ManagerClosing);
                t.clear();
                for s in std::mem::take(&mut self.live) {
                    self.begin_close(s, CloseReason::Shutdown, None, out);
                }
            }
        }
        self.table = Some(t);
    }

    fn acquire(&mut self, vu: u64, out: &mut Out) {
        out.emit(Some(vu), None, EventKind::AcquireStart);
        let now = Instant::from_millis(self.now);
        let (decision, fx) = self.core.acquire(now, VuId(vu), true, self.timeout);
        for (s, reason) in fx.closes {
            self.begin_close(s, reason, None, out);
        }
        match decision {
            Acquire::Ready(e) => self.hand_out(vu, e, false, 0, out),
            Acquire::Create(r) => {
                out.emit(Some(vu), None, EventKind::SlotReserved);
                self.set(vu, Task::Creating { r, waited_ms: 0 });
            }
            Acquire::Wait {
                waiter,
                position,
                deadline,
            } => {
                out.emit(
                    Some(vu),
                    None,
                    EventKind::AcquireWait { position, deadline },
                );
                self.set(
                    vu,
                    Task::Waiting {
                        waiter,
                        since: self.now,
                    },
                );
            }
            Acquire::Exhausted => out.acquire_error(vu, None, "pool_exhausted"),
            Acquire::Closed => out.acquire_error(vu, None, "manager_closed"),
        }
    }

    fn wake(&mut self, vu: u64, out: &mut Out) {
        let Task::Waiting { waiter, since } = *self.task(vu) else {
            unreachable!("enabled")
        };
        self.set(vu, Task::Idle);
        let waited_ms = self.now - since;
        match self.core.take(waiter) {
            Some(WaitEnd::Granted(Grant::Session(e))) => {
                let waited = e.last_used.as_millis() - since;
                self.hand_out(vu, e, false, waited, out)
            }
            Some(WaitEnd::Granted(Grant::Slot(r))) => self.set(vu, Task::Creating { r, waited_ms }),
            Some(WaitEnd::TimedOut | WaitEnd::Closed) | None if self.closed => {
                out.acquire_error(vu, None, "manager_closed")
            }
            Some(WaitEnd::TimedOut | WaitEnd::Closed) | None => {
                out.emit(Some(vu), None, EventKind::AcquireTimeout { waited_ms })
            }
        }
    }

    fn create_ok(&mut self, vu: u64, out: &mut Out) {
        let Task::Creating { r, waited_ms } = *self.task(vu) else {
            unreachable!("enabled")
        };
        self.set(vu, Task::Idle);
        self.next_session += 1;
        let s = self.next_session;
        self.live.insert(s);
        out.emit(
            Some(vu),
            Some(s),
            EventKind::Created {
                era: SessionEra::Legacy,
            },
        );
        let now = Instant::from_millis(self.now);
        if self.closed {
            self.begin_close(s, CloseReason::Shutdown, Some(vu), out);
            let fx = self.core.cancel_reservation(r);
            out.emit(Some(vu), None, EventKind::SlotFreed);
            self.apply(fx, Some(vu), out);
            out.acquire_error(vu, Some(s), "manager_closed");
            return;
        }
        match self.core.commit(r, s, now) {
            Ok(e) => self.hand_out(vu, e, true, waited_ms, out),
            Err(s) => {
                self.begin_close(s, CloseReason::Shutdown, Some(vu), out);
                out.acquire_error(vu, Some(s), "manager_closed");
            }
        }
    }

    fn hand_out(&mut self, vu: u64, e: Entry<u64>, created: bool, waited_ms: u64, out: &mut Out) {
        if self.closed {
            self.begin_close(e.item, CloseReason::Shutdown, Some(vu), out);
            out.acquire_error(vu, Some(e.item), "manager_closed");
            return;
        }
        let reconnect = created && self.replace > 0;
        if reconnect {
            self.replace -= 1;
        }
        out.emit(
            Some(vu),
            Some(e.item),
            EventKind::AcquireOk {
                created,
                reconnect,
                waited_ms,
            },
        );
        self.set(vu, Task::Holding(e));
    }

    fn begin_close(&mut self, s: u64, reason: CloseReason, vu: Option<u64>, out: &mut Out) {
        if !self.gone.insert(s) {
            return;
        }
        self.live.remove(&s);
        out.emit(vu, Some(s), EventKind::Closed { reason });
    }

    /// The shell's `apply`: closes, then grants reported (their waiters
    /// are woken; waking is not an event).
    fn apply(&mut self, fx: Effects<u64>, vu: Option<u64>, out: &mut Out) {
        for (s, reason) in fx.closes {
            self.begin_close(s, reason, vu, out);
        }
        for (w, waiter_vu) in fx.grants {
            let (slot, session) = match self.core.grant(w) {
                Some(Grant::Session(e)) => (false, Some(e.item)),
                _ => (true, None),
            };
            out.emit(
                Some(waiter_vu.0),
                session,
                EventKind::WaiterGranted { slot },
            );
        }
    }

    /// The canonical encoding of the state: what decides every future of
    /// this world, and nothing else. Times are relative to the clock (ages
    /// capped two past their limit, where no correct future can tell them
    /// apart); sessions are
    /// numbered in order of appearance in the encoding, waiters and
    /// reservations named by the VU that holds them.
    fn key(&self) -> [u8; 16] {
        let mut k = Vec::<u64>::with_capacity(64);
        let mut names: BTreeMap<u64, u64> = BTreeMap::new();
        let mut name = |s: u64, gone: bool| {
            let n = names.len() as u64;
            let n = *names.entry(s).or_insert(n);
            n * 2 + u64::from(gone)
        };
        let d = self.core.deadlines();
        let cap = |v: Option<Duration>| v.map_or(0, |d| d.as_millis() as u64);
        let (ttl, idle) = (cap(d.ttl).max(self.churn_ms), cap(d.max_idle));
        // Capped two past the limit: "at the deadline", "one past" and
        // "later" stay apart, so a core that is off by one at a deadline
        // is not merged with a correct one.
        let age = |t: Instant, limit: u64| (self.now - t.as_millis()).min(limit + 2);
        let mut entry = |k: &mut Vec<u64>, e: &Entry<u64>| {
            k.push(name(e.item, self.gone.contains(&e.item)));
            k.push(age(e.created_at, ttl));
            k.push(age(e.last_used, idle));
        };
        k.push(u64::from(self.closed));
        k.push(u64::from(self.evicted_now));
        k.push(self.replace);
        k.push(self.core.in_use() as u64);
        k.push(self.core.reserved() as u64);
        k.push(self.core.idle().len() as u64);
        for e in self.core.idle() {
            entry(&mut k, e);
        }
        k.push(u64::MAX);
        for w in self.core.waiters() {
            k.push(w.vu.0);
            // Signed: a waiter still queued past its deadline (a bug) is
            // not merged with one at it.
            k.push(w.deadline.as_millis().wrapping_sub(self.now));
        }
        k.push(u64::MAX);
        if let Some(t) = &self.table {
            for vu in self.vus() {
                k.push(u64::from(t.owes_replacement(VuId(vu))));
                match t.slot(VuId(vu)) {
                    None => k.push(0),
                    Some(None) => k.push(1),
                    Some(Some(e)) => {
                        k.push(2);
                        entry(&mut k, e);
                    }
                }
            }
        }
        for vu in self.vus() {
            match self.task(vu) {
                Task::Idle => k.push(0),
                Task::Waiting { waiter, .. } => {
                    k.push(1);
                    match self.core.waiter_state(*waiter) {
                        None | Some(WaiterState::Queued) => k.push(0),
                        Some(WaiterState::TimedOut) => k.push(1),
                        Some(WaiterState::Closed) => k.push(2),
                        Some(WaiterState::Granted) => match self.core.grant(*waiter) {
                            Some(Grant::Session(e)) => {
                                k.push(3);
                                entry(&mut k, e);
                            }
                            _ => k.push(4),
                        },
                    }
                }
                Task::Creating { .. } => k.push(2),
                Task::Making => k.push(4),
                Task::Holding(e) => {
                    k.push(3);
                    entry(&mut k, e);
                }
            }
        }
        let bytes: Vec<u8> = k.iter().flat_map(|v| v.to_le_bytes()).collect();
        let h = blake3::hash(&bytes);
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.as_bytes()[..16]);
        out
    }
}

/// Events of one step, converted as the simulation's recorder converts
/// them.
struct Out {
    host: Arc<str>,
    now: u64,
    events: Vec<TraceEvent>,
}

impl Out {
    fn new(now: u64) -> Self {
        Out {
            host: Arc::from(HOST),
            now,
            events: Vec::new(),
        }
    }

    fn emit(&mut self, vu: Option<u64>, session: Option<u64>, kind: EventKind) {
        let e = Event {
            at: Instant::from_millis(self.now),
            vu: vu.map(VuId),
            session: session.map(|s| format!("s{s}")),
            kind,
        };
        self.events
            .push(TraceEvent::from_manager(&self.host, self.now, &e));
    }

    fn acquire_error(&mut self, vu: u64, session: Option<u64>, error: &'static str) {
        self.emit(Some(vu), session, EventKind::AcquireError { error });
    }
}

/// A law broken on a shortest path.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// The inputs from the start.
    pub path: Vec<Input>,
    /// The law (one of the audit's, or `core_invariant`).
    pub law: String,
    /// What went wrong.
    pub message: String,
    /// The path's trace.
    pub trace: Trace,
}

impl Counterexample {
    /// The path as a script `mcp-sim explore --replay` takes.
    pub fn script(&self) -> String {
        self.path
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A unit test that replays the path and expects the law to hold (so it
    /// fails until the bug is fixed), to paste into `sim/tests/explore.rs`.
    pub fn unit_test(&self, scope: &Scope) -> String {
        format!(
            "#[test]\n\
             fn explore_counterexample_{law}() {{\n    \
             let scope = Scope {{ mode: Mode::{mode:?}, pool_size: {size}, vus: {vus}, depth: {depth}, \
             ttl_ms: {ttl:?}, idle_ms: {idle:?}, timeout_ms: {timeout}, churn_ms: {churn} }};\n    \
             let script = parse_script(\"{script}\").unwrap();\n    \
             replay(&scope, &script).unwrap();\n\
             }}\n",
            law = self.law,
            mode = scope.mode,
            churn = scope.churn_ms,
            size = scope.pool_size,
            vus = scope.vus,
            depth = scope.depth,
            ttl = scope.ttl_ms,
            idle = scope.idle_ms,
            timeout = scope.timeout_ms,
            script = self.script(),
        )
    }
}

/// What an exploration did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Distinct states visited (the start included).
    pub states: u64,
    /// Transitions taken (inputs carried out, including those reaching a
    /// state already visited).
    pub transitions: u64,
    /// The longest path expanded, in inputs.
    pub depth: usize,
    /// The first violation found (on a shortest path), if any.
    pub violation: Option<Counterexample>,
}

/// One visited state in the search tree.
struct Node {
    parent: usize,
    input: Option<Input>,
    events: Vec<TraceEvent>,
}

fn path_to(nodes: &[Node], mut i: usize) -> (Vec<Input>, Trace) {
    let mut chain = Vec::new();
    while nodes[i].input.is_some() {
        chain.push(i);
        i = nodes[i].parent;
    }
    chain.reverse();
    let inputs = chain.iter().filter_map(|&i| nodes[i].input).collect();
    let events = chain
        .iter()
        .flat_map(|&i| nodes[i].events.iter().cloned())
        .collect();
    (inputs, Trace::new(events))
}

/// Checks the audit's laws on `trace`, then the core's own invariant on
/// `world`: the first broken one.
fn check(world: &World, trace: &Trace, cfg: &AuditConfig) -> Option<(String, String)> {
    let report = audit_prefix(trace, cfg);
    if let Some(v) = report.violations.into_iter().next() {
        let message = format!("{} (event #{})", v.message, v.event_index);
        return Some((v.law, message));
    }
    world
        .core
        .check_invariants()
        .err()
        .map(|e| ("core_invariant".to_owned(), e))
}

/// Explores `scope` from its empty world.
pub fn explore(scope: &Scope) -> Outcome {
    explore_from(scope, World::new(scope))
}

/// Explores `scope` breadth first from `start`.
pub fn explore_from(scope: &Scope, start: World) -> Outcome {
    let cfg = scope.audit_config();
    let mut seen: BTreeSet<[u8; 16]> = BTreeSet::new();
    seen.insert(start.key());
    let mut nodes = vec![Node {
        parent: 0,
        input: None,
        events: Vec::new(),
    }];
    let mut frontier: VecDeque<(usize, usize, World)> = VecDeque::new();
    frontier.push_back((0, 0, start));
    let mut transitions = 0u64;
    let mut depth = 0;
    while let Some((at, d, world)) = frontier.pop_front() {
        if d >= scope.depth {
            continue;
        }
        depth = depth.max(d + 1);
        for input in world.enabled() {
            let mut next = world.clone();
            let events = next.step(input).expect("an enabled input");
            transitions += 1;
            if !seen.insert(next.key()) {
                continue;
            }
            nodes.push(Node {
                parent: at,
                input: Some(input),
                events,
            });
            let i = nodes.len() - 1;
            let (path, trace) = path_to(&nodes, i);
            if let Some((law, message)) = check(&next, &trace, &cfg) {
                return Outcome {
                    states: seen.len() as u64,
                    transitions,
                    depth: path.len(),
                    violation: Some(Counterexample {
                        path,
                        law,
                        message,
                        trace,
                    }),
                };
            }
            frontier.push_back((i, d + 1, next));
        }
    }
    Outcome {
        states: seen.len() as u64,
        transitions,
        depth,
        violation: None,
    }
}

/// Replays `script` in `scope`, checking the laws after every step; `Err`
/// names the first broken law (or an input that could not happen).
pub fn replay(scope: &Scope, script: &[Input]) -> Result<Trace, Box<Counterexample>> {
    replay_from(scope, World::new(scope), script)
}

/// [`replay`] from `start`.
pub fn replay_from(
    scope: &Scope,
    mut world: World,
    script: &[Input],
) -> Result<Trace, Box<Counterexample>> {
    let cfg = scope.audit_config();
    let mut trace = Trace::default();
    for (n, input) in script.iter().enumerate() {
        let fail = |law: &str, message: String, trace: &Trace| {
            Box::new(Counterexample {
                path: script[..=n].to_vec(),
                law: law.to_owned(),
                message,
                trace: trace.clone(),
            })
        };
        match world.step(*input) {
            Ok(events) => trace.events.extend(events),
            Err(e) => return Err(fail("script", e, &trace)),
        }
        if let Some((law, message)) = check(&world, &trace, &cfg) {
            return Err(fail(&law, message, &trace));
        }
    }
    Ok(trace)
}
