//! Exhaustive exploration: every interleaving of a small scope's inputs,
//! breadth first, against the real decision logic, with the audit's laws
//! checked after every step.
//!
//! # What is explored
//!
//! A world is the mode's pure decision core — the very code the manager
//! runs, driven only through [`ModeCore`]: [`PoolCore`] in pool mode,
//! [`VuTable`] in reuse and churn, [`PerRequestCore`] in per_request —
//! plus what the VU tasks hold (nothing, a queued wait, a slot they create
//! a session in, a lease), the manager's clock, and whether the manager
//! closed. An [`Input`] is one thing that can happen next: a VU acquires,
//! its session creation succeeds or fails, it runs an operation on its
//! lease, releases or invalidates it, its woken task takes how its wait
//! ended, its acquire is cancelled; a millisecond passes, or time jumps to the next
//! deadline; the evictor runs; the manager closes. Time never passes while
//! a woken task has not run or while a deadline is due and the evictor has
//! not run (tokio runs every ready task before the clock moves, and the
//! evictor's timer fires at its deadline), but any other input may come in
//! the same millisecond first — which is where the races at a deadline are.
//!
//! # The oracle
//!
//! Each input is carried out the way the manager's shell carries it out
//! (`src/modes/mod.rs`: the same calls of the core, in the same order),
//! and the events it reports are the manager's
//! events, converted to [`TraceEvent`]s exactly as a simulation records them.
//! After every step the path's trace is audited with
//! [`crate::audit::audit_prefix`]: the same law code as a sweep's audit, not
//! a second copy of it. The core's own invariant
//! ([`ModeCore::check_invariants`]) is checked as well.
//!
//! # The search
//!
//! Breadth first over inputs, with a set of visited states: a state is
//! hashed (BLAKE3 of a canonical encoding) with times relative to the clock
//! and capped where the future cannot tell them apart, sessions and
//! reservations named by where they are rather than by their ids. A state
//! is the world *and* what the laws keep from the path to it
//! ([`crate::audit::LawState`]: a reconnect owed, acquires open, waiters
//! queued, who holds what, ...), since the laws judge a later event by
//! that memory: a core that forgets a debt the laws still expect lands in
//! a world seen before, and must not be merged with it. So the
//! first violation found is on a shortest path to it, and that path is
//! printed as a replayable script ([`Input`]'s text form) and as a unit
//! test. The laws are checked after every transition, also one that leads
//! into a state already seen (the step itself may break a law: a stale
//! hand-out can land in the very state a correct hand-out reaches); states
//! reached again are not expanded again, and what follows them is checked
//! on the first (shortest) path to them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mcp_session::cores::{
    Acquire, Churn, Deadlines, Effects, Entry, Grant, ModeCore, PerRequestCore, PoolCore,
    Reservation, Return, VuTable, WaitEnd, WaiterId, WaiterState,
};
use mcp_session::{CloseReason, Event, EventKind, Instant, Mode, SessionConfig, SessionEra, VuId};

use crate::audit::{audit_prefix_state, AuditConfig, LawState, StateSink};
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
    /// In churn mode, `churn_interval_ms` (churn by age; used when
    /// `churn_ops` is 0).
    pub churn_ms: u64,
    /// In churn mode, `churn_interval_ops` (churn after that many
    /// operations; 0: by age).
    pub churn_ops: u64,
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
            churn_ops: 0,
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

    /// Churn mode after `ops` operations, otherwise as [`Scope::reuse`].
    pub fn churn_by_ops(ops: u64, vus: u64, depth: usize) -> Self {
        Scope {
            mode: Mode::Churn,
            churn_ops: ops,
            ..Scope::reuse(vus, depth)
        }
    }

    /// Per-request mode with `vus` VUs and paths of up to `depth` inputs.
    pub fn per_request(vus: u64, depth: usize) -> Self {
        Scope {
            mode: Mode::PerRequest,
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
            Scope::churn_by_ops(2, 2, 11),
            Scope::per_request(4, 12),
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
            c.churn_interval_ops = self.churn_ops;
            c.churn_interval_ms = if self.churn_ops > 0 { 0 } else { self.churn_ms };
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
                if mode == Mode::Churn && self.churn_ops > 0 {
                    format!(", churn after {} operations", self.churn_ops)
                } else if mode == Mode::Churn {
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
    /// VU `n` runs an operation on its lease (it counts toward churn).
    Call(u64),
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
            Input::Call(v) => write!(f, "call {v}"),
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
            "call" => Input::Call(vu(words.next())?),
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
    /// Holding a lease on the session.
    Holding(Entry<u64>),
}

/// The explored mode's decision core: the library's own type for each
/// mode, driven only through [`ModeCore`] (the concrete type is needed
/// only to encode the state).
#[derive(Clone, Debug)]
enum Core {
    Pool(PoolCore<u64>),
    /// Reuse and churn.
    PerVu(VuTable<u64>),
    PerRequest(PerRequestCore),
}

impl Core {
    fn get(&self) -> &dyn ModeCore<u64> {
        match self {
            Core::Pool(c) => c,
            Core::PerVu(c) => c,
            Core::PerRequest(c) => c,
        }
    }

    fn get_mut(&mut self) -> &mut dyn ModeCore<u64> {
        match self {
            Core::Pool(c) => c,
            Core::PerVu(c) => c,
            Core::PerRequest(c) => c,
        }
    }

    /// Waiter `w`'s state (only a pool queues).
    fn waiter_state(&self, w: WaiterId) -> Option<WaiterState> {
        match self {
            Core::Pool(c) => c.waiter_state(w),
            _ => None,
        }
    }
}

/// One explored world: the mode's core and the VU tasks around it.
#[derive(Clone, Debug)]
pub struct World {
    now: u64,
    core: Core,
    /// Churn's limits (ms, operations), for the canonical encoding.
    churn_ms: u64,
    churn_ops: u64,
    tasks: Vec<Task>,
    closed: bool,
    /// Sessions created and not closed (the manager's registry), by number.
    live: BTreeSet<u64>,
    /// Sessions closed.
    gone: BTreeSet<u64>,
    next_session: u64,
    /// Whether the evictor ran at this millisecond (it then sleeps until
    /// the next deadline the core names, even if a deadline it did not act
    /// on is still due).
    evicted_now: bool,
    timeout: Duration,
    /// What the laws keep from this world's path so far (a reconnect
    /// owed, acquires open, ...): part of the state, since two paths to
    /// the same core can still be judged apart by the laws.
    laws: Arc<LawState>,
}

impl World {
    /// The world of `scope` before anything happened.
    pub fn new(scope: &Scope) -> Self {
        let core = match scope.mode {
            Mode::Pool => Core::Pool(PoolCore::new(scope.pool_size, scope.deadlines())),
            Mode::PerRequest => Core::PerRequest(PerRequestCore::new()),
            // As the manager builds them (`modes::core_for`): reuse never
            // churns (`Churn::from_config` of a config without churn
            // intervals is churn's default, after every operation).
            Mode::Reuse => Core::PerVu(VuTable::new(scope.deadlines(), Churn::Never)),
            Mode::Churn => {
                let churn = Churn::from_config(&scope.session_config());
                Core::PerVu(VuTable::new(scope.deadlines(), churn))
            }
        };
        Self::around(scope, core)
    }

    /// The world of `scope` around a pool `core` (a core with a planted
    /// bug, in the tests that show exploration finds it).
    pub fn with_core(scope: &Scope, core: PoolCore<u64>) -> Self {
        Self::around(scope, Core::Pool(core))
    }

    fn around(scope: &Scope, core: Core) -> Self {
        World {
            now: 0,
            core,
            churn_ms: scope.churn_ms,
            churn_ops: scope.churn_ops,
            tasks: vec![Task::Idle; scope.vus as usize],
            closed: false,
            live: BTreeSet::new(),
            gone: BTreeSet::new(),
            next_session: 0,
            evicted_now: false,
            timeout: Duration::from_millis(scope.timeout_ms),
            laws: Arc::default(),
        }
    }

    /// The pool core (`None` in the other modes).
    pub fn pool_core(&self) -> Option<&PoolCore<u64>> {
        match &self.core {
            Core::Pool(c) => Some(c),
            _ => None,
        }
    }

    /// The clock, in ms.
    pub fn now(&self) -> u64 {
        self.now
    }

    fn mode(&mut self) -> &mut dyn ModeCore<u64> {
        self.core.get_mut()
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
        self.core.get().next_wakeup().map(Instant::as_millis)
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
                Task::Creating { .. } => {
                    out.extend([
                        Input::CreateOk(vu),
                        Input::CreateFail(vu),
                        Input::Cancel(vu),
                    ]);
                }
                Task::Holding(e) => {
                    if !self.gone.contains(&e.item) {
                        out.push(Input::Call(vu));
                    }
                    out.extend([Input::Release(vu), Input::Invalidate(vu)]);
                }
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

    /// Carries out `input` as the manager's shell (`src/modes/mod.rs`)
    /// does; returns the events the manager reports, or `Err` if the input
    /// cannot happen now. The laws are not run here: the search and
    /// [`replay_to`] run them on the path's trace, and keep what they keep
    /// in the world.
    pub fn step(&mut self, input: Input) -> Result<Vec<TraceEvent>, String> {
        if !self.enabled().contains(&input) {
            return Err(format!("`{input}` cannot happen at this point"));
        }
        let mut out = Out::new(self.now);
        let now = Instant::from_millis(self.now);
        match input {
            Input::Acquire(vu) => self.acquire(vu, &mut out),
            Input::CreateOk(vu) => self.create_ok(vu, &mut out),
            Input::CreateFail(vu) => {
                let Task::Creating { r, .. } = *self.task(vu) else {
                    unreachable!("enabled")
                };
                self.set(vu, Task::Idle);
                let fx = self.mode().cancel_reservation(r);
                self.freed(vu, fx, &mut out);
                out.acquire_error(vu, None, "connect");
            }
            Input::Call(vu) => self.call(vu, &mut out),
            Input::Release(vu) | Input::Invalidate(vu) => {
                let Task::Holding(e) = self.task(vu).clone() else {
                    unreachable!("enabled")
                };
                self.set(vu, Task::Idle);
                let how = if input == Input::Release(vu) {
                    out.emit(Some(vu), Some(e.item), EventKind::Released);
                    if self.gone.contains(&e.item) {
                        Return::Closed
                    } else {
                        Return::Release
                    }
                } else {
                    out.emit(Some(vu), Some(e.item), EventKind::Invalidated);
                    Return::Invalidate
                };
                let fx = self.mode().give_back(VuId(vu), e, how, now);
                self.apply(fx, Some(vu), &mut out);
            }
            Input::Wake(vu) => self.wake(vu, &mut out),
            Input::Cancel(vu) => self.cancel(vu, &mut out),
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
                let timed_out = self.mode().expire_waiters(now);
                self.apply(timed_out, None, &mut out);
                let fx = self.mode().evict(now);
                self.apply(fx, None, &mut out);
            }
            Input::Close => {
                self.closed = true;
                out.emit(None, None, EventKind::ManagerClosing);
                // The core's idle sessions are in the registry, closed
                // below in creation order, as the manager does.
                let _ = self.mode().close();
                for s in std::mem::take(&mut self.live) {
                    self.begin_close(s, CloseReason::Shutdown, None, &mut out);
                }
            }
        }
        Ok(out.events)
    }

    fn acquire(&mut self, vu: u64, out: &mut Out) {
        out.emit(Some(vu), None, EventKind::AcquireStart);
        let now = Instant::from_millis(self.now);
        let timeout = self.timeout;
        let (decision, fx) = self.mode().acquire(now, VuId(vu), true, timeout);
        self.apply(fx, None, out);
        match decision {
            Acquire::Ready(e) => self.hand_out(vu, e, false, 0, out),
            Acquire::Create(r) => {
                if self.core.get().bounded() {
                    out.emit(Some(vu), None, EventKind::SlotReserved);
                }
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
            Acquire::Busy => out.acquire_error(vu, None, "vu_busy"),
            Acquire::Exhausted => out.acquire_error(vu, None, "pool_exhausted"),
            Acquire::Closed => out.acquire_error(vu, None, "manager_closed"),
        }
    }

    /// An operation on the held session (it counts toward churn).
    fn call(&mut self, vu: u64, out: &mut Out) {
        let Task::Holding(mut e) = self.task(vu).clone() else {
            unreachable!("enabled")
        };
        let method = "ping";
        out.emit(Some(vu), Some(e.item), EventKind::OperationStart { method });
        e.ops += 1;
        let end = EventKind::OperationEnd {
            method,
            error: None,
        };
        out.emit(Some(vu), Some(e.item), end);
        self.set(vu, Task::Holding(e));
    }

    fn cancel(&mut self, vu: u64, out: &mut Out) {
        match self.task(vu).clone() {
            Task::Waiting { waiter, .. } => {
                self.set(vu, Task::Idle);
                let now = Instant::from_millis(self.now);
                let fx = self.mode().cancel_waiter(waiter, now);
                let kind = EventKind::AcquireCancelled { waiting: true };
                out.emit(Some(vu), None, kind);
                self.apply(fx, Some(vu), out);
            }
            Task::Creating { r, .. } => {
                self.set(vu, Task::Idle);
                let fx = self.mode().cancel_reservation(r);
                let kind = EventKind::AcquireCancelled { waiting: false };
                out.emit(Some(vu), None, kind);
                self.freed(vu, fx, out);
            }
            _ => unreachable!("enabled"),
        }
    }

    fn wake(&mut self, vu: u64, out: &mut Out) {
        let Task::Waiting { waiter, since } = *self.task(vu) else {
            unreachable!("enabled")
        };
        self.set(vu, Task::Idle);
        let waited_ms = self.now - since;
        match self.mode().take_wait_end(waiter) {
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
            // `create_session` finds the manager closed: the new session
            // is closed and the creation fails.
            self.begin_close(s, CloseReason::Shutdown, Some(vu), out);
            let fx = self.mode().cancel_reservation(r);
            self.freed(vu, fx, out);
            out.acquire_error(vu, Some(s), "manager_closed");
            return;
        }
        match self.mode().commit(r, s, now) {
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
        let reconnect = created && self.mode().take_replacement(VuId(vu));
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

    /// The shell's `freed`: a reservation given up, reported in a bounded
    /// mode, and its effects carried out.
    fn freed(&mut self, vu: u64, fx: Effects<u64>, out: &mut Out) {
        if self.core.get().bounded() {
            out.emit(Some(vu), None, EventKind::SlotFreed);
        }
        self.apply(fx, Some(vu), out);
    }

    /// The shell's `apply`: closes (for the VU the core names, else `vu`),
    /// then grants reported (their waiters are woken; waking is not an
    /// event).
    fn apply(&mut self, fx: Effects<u64>, vu: Option<u64>, out: &mut Out) {
        for c in fx.closes {
            self.begin_close(c.item, c.reason, c.vu.map(|v| v.0).or(vu), out);
        }
        for (w, waiter_vu) in fx.grants {
            let (slot, session) = match self.core.get().grant(w) {
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
    /// this world and every verdict on it, and nothing else — the core and
    /// the tasks around it, and what the laws keep from the path so far
    /// ([`LawState`]: a reconnect owed after an invalidation, acquires
    /// open, ...; without it a core that forgets such a debt lands in a
    /// state seen before, and the path on which the laws would catch it is
    /// never expanded). Times are relative to the clock (the core's ages
    /// capped two past their limit, where no correct future can tell them
    /// apart; the laws' where no law can), operation counts capped one
    /// past churn's limit; sessions are numbered in order of appearance in
    /// the encoding (the same session, in the core and in the laws, the
    /// same number), waiters and reservations named by the VU that holds
    /// them.
    pub fn key(&self) -> [u8; 16] {
        let mut enc = Encoder::new(self);
        enc.push(u64::from(self.closed));
        enc.push(u64::from(self.evicted_now));
        match &self.core {
            Core::Pool(c) => enc.pool(c),
            Core::PerVu(t) => {
                for vu in self.vus() {
                    enc.push(u64::from(t.owes_replacement(VuId(vu))));
                    match t.slot(VuId(vu)) {
                        None => enc.push(0),
                        Some(None) => enc.push(1),
                        Some(Some(e)) => {
                            enc.push(2);
                            enc.entry(e);
                        }
                    }
                }
            }
            Core::PerRequest(c) => {
                for vu in self.vus() {
                    enc.push(u64::from(c.owes_replacement(VuId(vu))));
                }
            }
        }
        for vu in self.vus() {
            enc.task(self.task(vu));
        }
        self.laws.encode(self.now, &mut enc);
        enc.finish()
    }
}

/// The number of session `s<n>` of an explored trace.
fn session_number(sid: &str) -> u64 {
    sid.strip_prefix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("an explored session is named s<n>, not {sid}"))
}

/// The laws' state is written into the same encoding, its sessions named
/// as the core's.
impl StateSink for Encoder<'_> {
    fn push(&mut self, v: u64) {
        Encoder::push(self, v);
    }

    fn session(&mut self, sid: &str) {
        let n = self.name(session_number(sid));
        Encoder::push(self, n);
    }

    fn named(&self, sid: &str) -> Option<u64> {
        self.names.get(&session_number(sid)).copied()
    }
}

/// Builds [`World::key`]'s canonical encoding.
struct Encoder<'a> {
    world: &'a World,
    k: Vec<u64>,
    names: BTreeMap<u64, u64>,
    ttl: u64,
    idle: u64,
}

impl<'a> Encoder<'a> {
    fn new(world: &'a World) -> Self {
        let cap = |v: Option<Duration>| v.map_or(0, |d| d.as_millis() as u64);
        let d = match &world.core {
            Core::Pool(c) => c.deadlines(),
            Core::PerVu(t) => t.deadlines(),
            Core::PerRequest(_) => Default::default(),
        };
        Encoder {
            world,
            k: Vec::with_capacity(64),
            names: BTreeMap::new(),
            ttl: cap(d.ttl).max(world.churn_ms),
            idle: cap(d.max_idle),
        }
    }

    fn push(&mut self, v: u64) {
        self.k.push(v);
    }

    /// A session, by order of appearance, and whether it is closed.
    fn name(&mut self, s: u64) -> u64 {
        let n = self.names.len() as u64;
        let n = *self.names.entry(s).or_insert(n);
        n * 2 + u64::from(self.world.gone.contains(&s))
    }

    /// An age capped two past the limit: "at the deadline", "one past" and
    /// "later" stay apart, so a core that is off by one at a deadline is
    /// not merged with a correct one.
    fn age(&self, t: Instant, limit: u64) -> u64 {
        (self.world.now - t.as_millis()).min(limit + 2)
    }

    fn entry(&mut self, e: &Entry<u64>) {
        let n = self.name(e.item);
        self.push(n);
        self.push(self.age(e.created_at, self.ttl));
        self.push(self.age(e.last_used, self.idle));
        let ops_cap = if self.world.churn_ops > 0 {
            self.world.churn_ops + 1
        } else {
            0
        };
        self.push(e.ops.min(ops_cap));
    }

    fn pool(&mut self, c: &PoolCore<u64>) {
        self.push(c.replacements_owed());
        self.push(c.in_use() as u64);
        self.push(c.reserved() as u64);
        self.push(c.idle().len() as u64);
        for e in c.idle() {
            self.entry(e);
        }
        self.push(u64::MAX);
        for w in c.waiters() {
            self.push(w.vu.0);
            // Signed: a waiter still queued past its deadline (a bug) is
            // not merged with one at it.
            self.push(w.deadline.as_millis().wrapping_sub(self.world.now));
        }
        self.push(u64::MAX);
    }

    fn task(&mut self, t: &Task) {
        match t {
            Task::Idle => self.push(0),
            Task::Waiting { waiter, .. } => {
                self.push(1);
                let Core::Pool(c) = &self.world.core else {
                    unreachable!("only a pool queues")
                };
                match c.waiter_state(*waiter) {
                    None | Some(WaiterState::Queued) => self.push(0),
                    Some(WaiterState::TimedOut) => self.push(1),
                    Some(WaiterState::Closed) => self.push(2),
                    Some(WaiterState::Granted) => match c.grant(*waiter) {
                        Some(Grant::Session(e)) => {
                            self.push(3);
                            self.entry(e);
                        }
                        _ => self.push(4),
                    },
                }
            }
            Task::Creating { .. } => self.push(2),
            Task::Holding(e) => {
                self.push(3);
                self.entry(e);
            }
        }
    }

    fn finish(self) -> [u8; 16] {
        let bytes: Vec<u8> = self.k.iter().flat_map(|v| v.to_le_bytes()).collect();
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
             ttl_ms: {ttl:?}, idle_ms: {idle:?}, timeout_ms: {timeout}, churn_ms: {churn}, churn_ops: {churn_ops} }};\n    \
             let script = parse_script(\"{script}\").unwrap();\n    \
             replay(&scope, &script).unwrap();\n\
             }}\n",
            law = self.law,
            mode = scope.mode,
            churn = scope.churn_ms,
            churn_ops = scope.churn_ops,
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

/// Judges a step that reported something, `trace` being its path's whole
/// trace (the step's events last): the audit's laws. They leave in `world`
/// what they keep for the steps after it. A silent step changes nothing
/// the laws see (its trace and their verdict are its parent's), so only
/// [`invariant`] judges it.
fn audit(world: &mut World, trace: &Trace, cfg: &AuditConfig) -> Option<(String, String)> {
    let (report, laws) = audit_prefix_state(trace, cfg);
    world.laws = Arc::new(laws);
    report.violations.into_iter().next().map(|v| {
        let message = format!("{} (event #{})", v.message, v.event_index);
        (v.law, message)
    })
}

/// The core's own invariant.
fn invariant(world: &World) -> Option<(String, String)> {
    world
        .core
        .get()
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
            // The laws judge the step first: what they keep from it is
            // part of the state looked up next (two paths to the same core
            // that the laws would still judge apart are not merged).
            // Every transition that reports something is judged, also one
            // into a state already seen: a law broken by the step itself
            // (a stale hand-out that lands in the same state as a correct
            // one) would otherwise be missed. A silent step into a seen
            // state adds nothing to check. Only fresh states are expanded.
            let trace = (!events.is_empty()).then(|| {
                let (_, mut trace) = path_to(&nodes, at);
                trace.events.extend(events.iter().cloned());
                trace
            });
            let broken = trace.as_ref().and_then(|t| audit(&mut next, t, &cfg));
            let fresh = seen.insert(next.key());
            if !fresh && events.is_empty() {
                continue;
            }
            if let Some((law, message)) = broken.or_else(|| invariant(&next)) {
                let (mut path, parent_trace) = path_to(&nodes, at);
                path.push(input);
                return Outcome {
                    states: seen.len() as u64,
                    transitions,
                    depth: path.len(),
                    violation: Some(Counterexample {
                        path,
                        law,
                        message,
                        trace: trace.unwrap_or(parent_trace),
                    }),
                };
            }
            if !fresh {
                continue;
            }
            nodes.push(Node {
                parent: at,
                input: Some(input),
                events,
            });
            frontier.push_back((nodes.len() - 1, d + 1, next));
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
    world: World,
    script: &[Input],
) -> Result<Trace, Box<Counterexample>> {
    replay_to(scope, world, script).map(|(_, trace)| trace)
}

/// [`replay_from`], keeping the world it ends in: its state, as the search
/// compares it ([`World::key`]), holds what the laws keep from the path.
pub fn replay_to(
    scope: &Scope,
    mut world: World,
    script: &[Input],
) -> Result<(World, Trace), Box<Counterexample>> {
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
        let broken = match world.step(*input) {
            Ok(events) if events.is_empty() => None,
            Ok(events) => {
                trace.events.extend(events);
                audit(&mut world, &trace, &cfg)
            }
            Err(e) => return Err(fail("script", e, &trace)),
        };
        if let Some((law, message)) = broken.or_else(|| invariant(&world)) {
            return Err(fail(&law, message, &trace));
        }
    }
    Ok((world, trace))
}
