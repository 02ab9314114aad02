//! Liveness: every run has a budget of simulated time and of scheduler
//! steps, derived from its schedule alone ([`Budget::for_schedule`]); a run
//! that exceeds either is stopped there and breaks the law `liveness`, with
//! its replay line and the timeline of its last events, like any other
//! failing seed.
//!
//! # Why
//!
//! A seed that spins without advancing simulated time, or advances it
//! forever (a deadline comparison that slipped by one tick once did), must
//! not hang a sweep with nothing printed: it is a failure to report and
//! replay.
//!
//! # What is counted
//!
//! - Simulated time: turmoil's `Sim::elapsed`, read between steps.
//! - Scheduler steps ([`Meter`]): the polls of the VU tasks, and every
//!   reading of the workers' clocks and every sleep on them
//!   ([`MeteredClock`]). A turmoil step is a tick of simulated time, so
//!   counting those would only count time again; what spins without time
//!   advancing is a task polled again and again within one tick.
//!   - The VU tasks are where the client's code runs (acquire, call,
//!     release and the manager's close are awaited inside them), so a busy
//!     loop there that yields (as any loop over `tokio` futures does, by
//!     tokio's cooperative budget) is counted. Once the budget is spent,
//!     the metered VU is parked for good (never polled again).
//!   - The library's own tasks (the manager's deadline timer, the
//!     connections' timeouts) are not VUs: they are metered through the
//!     clock they were given. A deadline left at or before now (a waiter
//!     timed out but left queued, a deadline comparison off by one) makes
//!     the deadline timer wake at once, forever, reading the clock and
//!     sleeping on it each time, without simulated time advancing or any
//!     VU being polled. Once the budget is spent, every sleep on a metered
//!     clock is pending for good, so the timer parks.
//!
//!   Either way the tick ends, and the step loop stops the run.
//!
//! A loop that never yields and never touches the clock, or one in a task
//! that is neither a VU's nor the library's (the server), never gives a
//! step back to the loop: that is what the sweep's wall-clock watchdog is
//! for ([`crate::sweep::SweepOptions::seed_timeout`]).
//!
//! # Determinism
//!
//! The budget is a pure function of the schedule; counting polls changes
//! no poll, no waker and no randomness, so a run that stays within its
//! budget is the very run it was without one (its trace hash is the same).
//!
//! # Test hooks
//!
//! [`crate::schedule::Step::SpinForever`],
//! [`crate::schedule::Step::SpinOnClock`] and
//! [`crate::schedule::Step::SleepForever`] are VU steps no scenario draws:
//! tests (and hand-written schedule files) use them to trip each budget.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

use mcp_session::{Clock, Instant, Mode, Sleep};

use crate::audit::Violation;
use crate::schedule::Schedule;
use crate::trace::Trace;

/// The law a run over its budget breaks.
pub const LAW: &str = "liveness";

/// The simulation's tick (ms): turmoil's default, which the topology keeps.
pub const TICK_MS: u64 = 1;

/// How many times its expected length a run may take in simulated time.
pub const TIME_FACTOR: u64 = 4;

/// Simulated time (ms) every run may take besides: the manager's close and
/// the topology's settling of streams, and room for a schedule whose
/// estimate is 0.
pub const TIME_BASE_MS: u64 = 10_000;

/// How many polls per tick a VU may take on average over its budget (a
/// VU is polled when woken: by a timer, an answer, a grant; the default
/// sweep's busiest seed took under 5 000 polls in all, against budgets of
/// millions).
pub const STEPS_PER_VU_TICK: u64 = 1;

/// Polls every run may take besides (start-up, close, a burst of
/// notifications or split answers within one tick).
pub const STEPS_BASE: u64 = 100_000;

/// How many trace events a liveness violation shows (the run's last).
pub const LAST_EVENTS: usize = 20;

/// What a run may spend before it is a liveness violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Simulated time (ms) the run may take.
    pub simulated_ms: u64,
    /// Scheduler steps (polls of the VU tasks, readings of and sleeps on
    /// the workers' clocks) the run may take.
    pub steps: u64,
}

impl Budget {
    /// The budget of `schedule`:
    ///
    /// - the expected length is the later of the workload's estimate
    ///   ([`Schedule::busy_ms`]: programs, think times, pool sharing) and
    ///   the end of the fault plan ([`crate::faults::FaultPlan::end_ms`]:
    ///   a partition or a crash may hold the workload up until it is over),
    ///   plus one longest legitimate wait (in pool mode an acquire's
    ///   timeout; a connect, a request with all its SSE resumptions, a DELETE: what a
    ///   step caught by a fault may wait out once the fault is over);
    /// - the simulated-time budget is [`TIME_FACTOR`] times that, plus
    ///   [`TIME_BASE_MS`] for the close and a schedule expecting nothing;
    /// - the step budget is the simulated-time budget in ticks, times the
    ///   VUs, times [`STEPS_PER_VU_TICK`] (a VU is polled when woken, far
    ///   less than once per tick on average), plus [`STEPS_BASE`].
    ///
    /// On the default sweep (6 500 seeds) the budgets run from 58 to 82
    /// seconds of simulated time (every one below the scenarios' 120 s
    /// bound), and no seed took more than a tenth of its time budget or a
    /// hundredth of its step budget.
    ///
    /// The schedule's own `duration_ms` stays its hard bound (turmoil's,
    /// reported as a simulation error); the budget is meant to come first.
    pub fn for_schedule(schedule: &Schedule) -> Budget {
        let http = &schedule.http;
        // Only a pool makes an acquire wait for another VU's session.
        let acquire_ms = match schedule.session.mode {
            Mode::Pool => schedule.session.acquire_timeout_ms,
            _ => 0,
        };
        let wait_ms = acquire_ms
            .saturating_add(http.connect_timeout_ms)
            .saturating_add(
                http.request_timeout_ms
                    .saturating_mul(1 + u64::from(http.max_resumes)),
            )
            .saturating_add(http.close_timeout_ms);
        let expected_ms = schedule
            .busy_ms()
            .max(schedule.faults.end_ms())
            .saturating_add(wait_ms);
        let simulated_ms = expected_ms
            .saturating_mul(TIME_FACTOR)
            .saturating_add(TIME_BASE_MS);
        let vus = schedule.vu_count().max(1) as u64;
        let steps = (simulated_ms / TICK_MS)
            .saturating_mul(vus)
            .saturating_mul(STEPS_PER_VU_TICK)
            .saturating_add(STEPS_BASE);
        Budget {
            simulated_ms,
            steps,
        }
    }

    /// Which budget a run at `simulated_ms` having taken `steps` has
    /// exceeded, if any (steps first: a run spinning in one tick).
    pub fn exceeded(&self, simulated_ms: u64, steps: u64) -> Option<Exceeded> {
        if steps > self.steps {
            Some(Exceeded::Steps {
                budget: self.steps,
                reached: steps,
                at_ms: simulated_ms,
            })
        } else if simulated_ms > self.simulated_ms {
            Some(Exceeded::SimulatedTime {
                budget_ms: self.simulated_ms,
                reached_ms: simulated_ms,
            })
        } else {
            None
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ms simulated, {} scheduler steps",
            self.simulated_ms, self.steps
        )
    }
}

/// A budget a run exceeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "exceeded", rename_all = "snake_case")]
pub enum Exceeded {
    /// The run went on past its simulated-time budget.
    SimulatedTime {
        /// The budget (ms).
        budget_ms: u64,
        /// Simulated time when it was stopped (ms).
        reached_ms: u64,
    },
    /// The VU tasks were polled, and the workers' clocks used, more often
    /// than the step budget allows.
    Steps {
        /// The budget (polls).
        budget: u64,
        /// The polls counted when it was stopped.
        reached: u64,
        /// Simulated time when it was stopped (ms).
        at_ms: u64,
    },
}

impl Exceeded {
    /// The violation's message: which budget, the budget and the value
    /// reached.
    pub fn message(&self) -> String {
        match self {
            Exceeded::SimulatedTime {
                budget_ms,
                reached_ms,
            } => format!(
                "simulated-time budget exceeded: reached {reached_ms} ms of a budget of \
                 {budget_ms} ms without finishing (the run was stopped there)"
            ),
            Exceeded::Steps {
                budget,
                reached,
                at_ms,
            } => format!(
                "scheduler-step budget exceeded: reached {reached} steps (VU polls and clock \
                 calls) of a budget \
                 of {budget} at {at_ms} ms of simulated time: spinning without time advancing \
                 (the run was stopped there)"
            ),
        }
    }

    /// The `liveness` violation of a run over budget whose trace is
    /// `trace`: at its last event, with the last [`LAST_EVENTS`] events as
    /// context.
    pub fn violation(&self, trace: &Trace) -> Violation {
        let events = &trace.events;
        let last = events.len().saturating_sub(1);
        Violation {
            law: LAW.to_owned(),
            event_index: last,
            event: events.get(last).cloned().unwrap_or_default(),
            context: events[events.len().saturating_sub(LAST_EVENTS)..].to_vec(),
            message: self.message(),
        }
    }
}

/// Counts the polls of the futures it meters and the uses of the clocks it
/// meters, against a budget, for one run. Cloned into every VU and every
/// worker's clock of the run.
#[derive(Clone, Debug)]
pub struct Meter {
    polls: Arc<AtomicU64>,
    budget: u64,
}

impl Meter {
    /// A meter allowing `budget` polls.
    pub fn new(budget: u64) -> Meter {
        Meter {
            polls: Arc::new(AtomicU64::new(0)),
            budget,
        }
    }

    /// The polls counted so far.
    pub fn steps(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Counts one step; whether the budget still allows it.
    fn step(&self) -> bool {
        self.polls.fetch_add(1, Ordering::Relaxed) < self.budget
    }

    /// `fut`, counted by this meter: polled as it is, until the meter's
    /// budget is spent; then it stays pending for good, without waking,
    /// so that a spinning task stops spinning and the step loop gets the
    /// run back. Pinned in place (no allocation per VU). Boxing it gives
    /// the same runs: the reuse seeds 2 and 3 once seemed to change with a
    /// `Box::pin` here, but that was a build directory shared between
    /// worktrees running another tree's code; rebuilt alone, boxed and in
    /// place give the same trace hashes, in process after process.
    pub fn meter<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        let meter = self.clone();
        async move {
            tokio::pin!(fut);
            std::future::poll_fn(|cx: &mut Context<'_>| {
                if !meter.step() {
                    return Poll::Pending;
                }
                fut.as_mut().poll(cx)
            })
            .await
        }
    }
}

/// A [`Clock`] that counts every reading and every sleep on a [`Meter`]:
/// how the library's own tasks (which the simulation does not spawn, so
/// cannot wrap) are metered. Within the budget it is `inner`, unchanged:
/// counting reads nothing and changes no time. Once the budget is spent,
/// every new sleep is pending for good (without waking), so that a task
/// spinning on the clock parks and the step loop gets the run back.
#[derive(Clone, Debug)]
pub struct MeteredClock<C> {
    inner: C,
    meter: Meter,
}

impl<C: Clock> MeteredClock<C> {
    /// `inner`, counted by `meter`.
    pub fn new(inner: C, meter: Meter) -> MeteredClock<C> {
        MeteredClock { inner, meter }
    }
}

impl<C: Clock> Clock for MeteredClock<C> {
    fn now(&self) -> Instant {
        // A reading over budget still tells the time: only a sleep can
        // park the task that spins.
        self.meter.step();
        self.inner.now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        if self.meter.step() {
            self.inner.sleep_until(deadline)
        } else {
            Box::pin(std::future::pending())
        }
    }
}
