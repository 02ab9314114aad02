//! The manager's shell around the modes' decision logic.
//!
//! Each mode's decisions are a pure state machine behind one trait,
//! [`ModeCore`]:
//!
//! - [`reuse`]: one session per VU ([`reuse::VuTable`]), which with a
//!   [`churn`] policy is also churn's;
//! - [`per_request`]: a fresh session per acquire;
//! - the pool: [`crate::pool_core::PoolCore`], slots, an idle queue and
//!   FIFO waiters.
//!
//! This file is the one place that carries their decisions out, the same
//! way for every mode: under the manager's lock it asks the core, then
//! hands an entry out as a lease, makes a session in a reserved slot,
//! parks a waiting task, closes what the core gave up and wakes the
//! waiters it granted. The modes never reach back into the manager. The
//! shell keeps nothing of its own but the wakers of parked tasks
//! ([`Wakers`]).
//!
//! Cancel safety rests on one guard, [`AcquireGuard`]: whatever stage an
//! acquire has reached when its future is dropped — queued, granted but not
//! yet woken, or creating in a reserved slot — its `Drop` undoes exactly
//! that stage under the lock. A grant that raced the cancellation is
//! passed on by the core ([`ModeCore::cancel_waiter`]) to the next waiter.

pub(crate) mod churn;
pub(crate) mod per_request;
pub(crate) mod reuse;

use std::task::{Poll, Waker};
use std::time::Duration;

use crate::clock::millis;
use crate::clock::Instant;
use crate::config::{Mode, SessionConfig};
use crate::error::{ErrorKind, Op, SessionError};
use crate::eviction::{Deadlines, Entry};
use crate::lease::Lease;
use crate::manager::{Inner, SessionRef, State};
use crate::metrics::CloseReason;
use crate::mode_core::{Acquire, Effects, Grant, ModeCore, Reservation, Return, WaitEnd, WaiterId};
use crate::observe::{EventKind, VuId};
use crate::pool_core::PoolCore;
use crate::transport::Connector;

/// A mode's decision core, as the manager holds it.
pub(crate) type Core<X> = Box<dyn ModeCore<SessionRef<X>> + Send>;

/// The core `cfg`'s mode runs.
pub(crate) fn core_for<X: Send + Sync + 'static>(
    cfg: &SessionConfig,
    deadlines: Deadlines,
) -> Core<X> {
    match cfg.mode {
        Mode::PerRequest => Box::new(per_request::PerRequestCore::new()),
        Mode::Pool => Box::new(PoolCore::new(cfg.pool_size, deadlines)),
        Mode::Reuse => Box::new(reuse::VuTable::new(deadlines, churn::Churn::Never)),
        Mode::Churn => Box::new(reuse::VuTable::new(
            deadlines,
            churn::Churn::from_config(cfg),
        )),
    }
}

/// The wakers of parked waiting tasks, in the order they first polled. A
/// wait thus allocates nothing: no channel, just this reused buffer.
#[derive(Default)]
pub(crate) struct Wakers(Vec<(WaiterId, Waker)>);

impl Wakers {
    /// Wakes waiter `w`'s task, if it is parked (its waker is dropped: it
    /// registers a new one if it has to wait again). Grants go to the head
    /// waiter, the first to park, so the front is checked first.
    pub fn wake(&mut self, w: WaiterId) {
        let i = if self.0.first().is_some_and(|(id, _)| *id == w) {
            0
        } else {
            match self.0.iter().position(|(id, _)| *id == w) {
                Some(i) => i,
                None => return,
            }
        };
        self.0.remove(i).1.wake();
    }

    /// Registers `waker` for waiter `w` (replacing a stale one).
    fn park(&mut self, w: WaiterId, waker: &Waker) {
        match self.0.iter_mut().find(|(id, _)| *id == w) {
            Some((_, slot)) => {
                if !slot.will_wake(waker) {
                    *slot = waker.clone();
                }
            }
            None => self.0.push((w, waker.clone())),
        }
    }
}

/// Shuts the core: its queued waiters are woken and find their wait ended
/// by the close (their acquires fail with manager-closed). Idle sessions
/// are closed by the manager (they are in its registry, which it closes in
/// creation order), so the core's closes are not carried out here.
pub(crate) fn close<X>(st: &mut State<X>) {
    let fx = st.core.close();
    for w in fx.closed_out {
        st.wakers.wake(w);
    }
}

/// Carries out a core's effects: closes are begun (for the VU the core
/// names, else `vu`), granted waiters are woken (and the grant reported),
/// timed-out waiters are woken.
pub(crate) fn apply<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    fx: Effects<SessionRef<C::Connection>>,
    vu: Option<VuId>,
) {
    if fx.is_empty() {
        // The common release: the entry went idle, nothing to carry out.
        return;
    }
    for c in fx.closes {
        inner.begin_close(st, &c.item, c.reason, c.vu.or(vu));
    }
    for (w, waiter_vu) in fx.grants {
        st.wakers.wake(w);
        let (slot, session) = match st.core.grant(w) {
            Some(Grant::Session(e)) => (false, Some(e.item.id.as_str())),
            _ => (true, None),
        };
        inner.emit(Some(waiter_vu), session, EventKind::WaiterGranted { slot });
    }
    // Pool timeouts: an expired waiter is woken and takes its timeout.
    for w in fx.timed_out {
        st.wakers.wake(w);
    }
}

/// Where an acquire is, for its cancel guard.
enum Stage {
    /// Nothing held.
    Idle,
    /// Queued as `waiter` since `since`.
    Waiting { waiter: WaiterId, since: Instant },
    /// Creating a session in a reserved slot (or ticket).
    Reserved(Reservation),
}

/// The cancel guard of one acquire: dropped mid-way, it undoes its stage.
struct AcquireGuard<'a, C: Connector> {
    inner: &'a Inner<C>,
    vu: VuId,
    stage: Stage,
}

impl<C: Connector> Drop for AcquireGuard<'_, C> {
    fn drop(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Idle);
        let (inner, vu) = (self.inner, self.vu);
        match stage {
            Stage::Idle => {}
            Stage::Waiting { waiter, since } => {
                let now = inner.clock.now();
                let mut st = inner.lock();
                st.metrics.acquire_wait.cancelled += 1;
                st.metrics.record_wait_end(now - since);
                // Still queued: its own task is woken as it leaves (as
                // every ended wait is). Granted before it could be woken:
                // the core passes the grant on.
                st.wakers.wake(waiter);
                let fx = st.core.cancel_waiter(waiter, now);
                inner.emit(
                    Some(vu),
                    None,
                    EventKind::AcquireCancelled { waiting: true },
                );
                apply(inner, &mut st, fx, Some(vu));
                drop(st);
                inner.wake_timer();
            }
            Stage::Reserved(r) => {
                let mut st = inner.lock();
                let fx = st.core.cancel_reservation(r);
                inner.emit(
                    Some(vu),
                    None,
                    EventKind::AcquireCancelled { waiting: false },
                );
                freed(inner, &mut st, fx, vu);
            }
        }
    }
}

/// A reservation given up: reported (in a bounded mode) and its effects
/// carried out.
fn freed<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    fx: Effects<SessionRef<C::Connection>>,
    vu: VuId,
) {
    if st.core.bounded() {
        inner.emit(Some(vu), None, EventKind::SlotFreed);
    }
    apply(inner, st, fx, Some(vu));
}

fn fail(kind: ErrorKind) -> SessionError {
    SessionError::new(Op::Acquire, kind)
}

/// How long an acquire may wait for capacity (pool mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all: fail with pool-exhausted.
    No,
    /// Up to this long, then fail with a pool timeout.
    Upto(Duration),
}

/// One acquire, in every mode: ask the core, then carry the decision out
/// — hand out, wait, or create.
pub(crate) async fn acquire<C: Connector>(
    inner: &Inner<C>,
    vu: VuId,
    wait: Wait,
) -> Result<Lease<C>, SessionError> {
    let mut guard = AcquireGuard {
        inner,
        vu,
        stage: Stage::Idle,
    };
    if let Some(done) = decide(inner, vu, wait, &mut guard.stage) {
        return done;
    }
    let mut waited_ms = 0;
    if let Stage::Waiting { waiter, since } = guard.stage {
        let (served, waited) = wait_for_grant(inner, vu, waiter, since, &mut guard.stage).await;
        if let Some(result) = served {
            return result;
        }
        waited_ms = waited;
    }
    let Stage::Reserved(r) = guard.stage else {
        unreachable!("every other stage returned above")
    };
    let created = inner.create_session(vu).await;
    let now = inner.clock.now();
    let mut st = inner.lock();
    guard.stage = Stage::Idle;
    match created {
        Ok(cell) => match st.core.commit(r, cell, now) {
            Ok(entry) => inner.hand_out(&mut st, vu, entry, true, waited_ms),
            Err(cell) => {
                inner.begin_close(&mut st, &cell, CloseReason::Shutdown, Some(vu));
                Err(fail(ErrorKind::ManagerClosed).with_session(&cell.id))
            }
        },
        Err(e) => {
            let fx = st.core.cancel_reservation(r);
            freed(inner, &mut st, fx, vu);
            Err(e)
        }
    }
}

/// The core's decision on an acquire, carried out under one lock: the
/// acquire's result if it ends here, else `None` with `stage` set to what
/// it waits for (a grant, or a session to create).
fn decide<C: Connector>(
    inner: &Inner<C>,
    vu: VuId,
    wait: Wait,
    stage: &mut Stage,
) -> Option<Result<Lease<C>, SessionError>> {
    let start = inner.clock.now();
    let mut st = inner.lock();
    inner.emit(Some(vu), None, EventKind::AcquireStart);
    let (waits, timeout) = match wait {
        Wait::No => (false, Duration::ZERO),
        Wait::Upto(t) => (true, t),
    };
    let (decision, fx) = st.core.acquire(start, vu, waits, timeout);
    // Sessions found expired or spent on the way (no grants: nobody waits
    // while a session is idle).
    apply(inner, &mut st, fx, None);
    match decision {
        Acquire::Ready(e) => return Some(inner.hand_out(&mut st, vu, e, false, 0)),
        Acquire::Busy => return Some(Err(fail(ErrorKind::VuBusy))),
        Acquire::Exhausted => return Some(Err(fail(ErrorKind::PoolExhausted))),
        Acquire::Closed => return Some(Err(fail(ErrorKind::ManagerClosed))),
        Acquire::Create(r) => {
            if st.core.bounded() {
                inner.emit(Some(vu), None, EventKind::SlotReserved);
            }
            *stage = Stage::Reserved(r);
        }
        Acquire::Wait {
            waiter,
            position,
            deadline,
        } => {
            st.metrics.pool_waits += 1;
            st.metrics.acquire_wait.count += 1;
            inner.deadline_added(&mut st, deadline);
            inner.emit(
                Some(vu),
                None,
                EventKind::AcquireWait { position, deadline },
            );
            *stage = Stage::Waiting {
                waiter,
                since: start,
            };
        }
    }
    None
}

/// Parks until the core ends waiter `waiter`'s wait. No timer per waiter:
/// the deadline timer expires waiters at the head waiter's deadline
/// ([`ModeCore::expire_waiters`]) and wakes them. Whatever ends the wait is
/// taken care of in the same critical section that finds it. Returns the
/// acquire's result if it ends here (else `stage` is the granted slot) and
/// the time waited, in ms.
async fn wait_for_grant<C: Connector>(
    inner: &Inner<C>,
    vu: VuId,
    waiter: WaiterId,
    since: Instant,
    stage: &mut Stage,
) -> (Option<Result<Lease<C>, SessionError>>, u64) {
    let mut waited_ms = 0;
    let served = std::future::poll_fn(|cx| {
        let mut st = inner.lock();
        let Some(end) = st.core.take_wait_end(waiter) else {
            st.wakers.park(waiter, cx.waker());
            return Poll::Pending;
        };
        // A granted session was released (stamped `last_used`) at the
        // grant: that is when the wait ended, and it saves a clock read.
        let now = match &end {
            WaitEnd::Granted(Grant::Session(e)) => e.last_used,
            _ => inner.clock.now(),
        };
        st.metrics.record_wait_end(now - since);
        *stage = Stage::Idle;
        waited_ms = millis(now - since);
        Poll::Ready(match end {
            WaitEnd::Granted(Grant::Session(e)) => {
                st.metrics.acquire_wait.served += 1;
                Some(inner.hand_out(&mut st, vu, e, false, waited_ms))
            }
            WaitEnd::Granted(Grant::Slot(r)) => {
                st.metrics.acquire_wait.served += 1;
                *stage = Stage::Reserved(r);
                None
            }
            WaitEnd::TimedOut | WaitEnd::Closed if st.closed => {
                Some(Err(fail(ErrorKind::ManagerClosed)))
            }
            WaitEnd::TimedOut | WaitEnd::Closed => {
                st.metrics.pool_timeouts += 1;
                Some(Err(fail(ErrorKind::PoolTimeout {
                    waited: now - since,
                })))
            }
        })
    })
    .await;
    (served, waited_ms)
}

/// A lease's session comes back (lock held). A session the manager closed
/// while it was leased (its shutdown) is not kept.
pub(crate) fn give_back<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    vu: VuId,
    entry: Entry<SessionRef<C::Connection>>,
    how: Return,
    now: Instant,
) {
    let how = match how {
        Return::Release if entry.item.closed().is_some() => Return::Closed,
        how => how,
    };
    let fx = st.core.give_back(vu, entry, how, now);
    apply(inner, st, fx, Some(vu));
}

/// The deadline timer's deadline came (lock held): pool timeouts first (an
/// expired waiter is woken and takes its timeout), then idle evictions.
pub(crate) fn deadlines_due<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    now: Instant,
) {
    let timed_out = st.core.expire_waiters(now);
    apply(inner, st, timed_out, None);
    let fx = st.core.evict(now);
    apply(inner, st, fx, None);
}
