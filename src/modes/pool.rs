//! Pool mode: the async shell around [`PoolCore`].
//!
//! The core decides and keeps every waiter's state; this file carries its
//! [`Effects`] out and keeps nothing of its own but the wakers of parked
//! tasks. A waiting acquire polls the core for how its wait ended
//! ([`PoolCore::take`]); the core's grants, timeouts and close wake it (under
//! the manager's lock, in the core's FIFO order).
//!
//! Cancel safety rests on one guard, [`PoolAcquire`]: whatever stage the
//! acquire has reached when its future is dropped — queued, granted but not
//! yet woken, or creating in a reserved slot — its `Drop` undoes exactly that
//! stage under the lock. A grant that raced the cancellation is passed on by
//! the core ([`PoolCore::cancel_waiter`]) to the next waiter.

use std::task::{Poll, Waker};

use super::{ModeData, Return};
use crate::clock::Instant;
use crate::error::{ErrorKind, Op, SessionError};
use crate::eviction::{Deadlines, Entry};
use crate::lease::Lease;
use crate::manager::{millis, Inner, Sess, State};
use crate::metrics::CloseReason;
use crate::observe::{EventKind, VuId};
use crate::pool::core::{Acquire, Effects, Grant, PoolCore, Reservation, WaitEnd, WaiterId};
use crate::transport::Connector;

/// Pool state behind the manager's lock.
pub(crate) struct PoolData<X> {
    pub core: PoolCore<Sess<X>>,
    /// The wakers of parked waiting tasks, in the order they first polled.
    /// A wait thus allocates nothing: no channel, just this reused buffer.
    wakers: Vec<(WaiterId, Waker)>,
    /// Sessions invalidated after a 404 and not yet replaced.
    pub replace: u64,
}

impl<X> PoolData<X> {
    pub fn new(size: usize, deadlines: Deadlines) -> Self {
        PoolData {
            core: PoolCore::new(size, deadlines),
            wakers: Vec::new(),
            replace: 0,
        }
    }

    /// Closes the core and wakes every queued waiter: each finds its wait
    /// ended by the close and fails with manager-closed. Idle sessions are
    /// closed by the manager (they are in its registry, which it closes in
    /// creation order), so the core's closes are not carried out here.
    pub fn close(&mut self) {
        let fx = self.core.close();
        for w in fx.closed_out {
            self.wake(w);
        }
    }

    /// Wakes waiter `w`'s task, if it is parked (its waker is dropped: it
    /// registers a new one if it has to wait again). Grants go to the head
    /// waiter, the first to park, so the front is checked first.
    pub fn wake(&mut self, w: WaiterId) {
        let i = if self.wakers.first().is_some_and(|(id, _)| *id == w) {
            0
        } else {
            match self.wakers.iter().position(|(id, _)| *id == w) {
                Some(i) => i,
                None => return,
            }
        };
        self.wakers.remove(i).1.wake();
    }

    /// One poll of waiter `w`: how its wait ended, or `None` to keep
    /// waiting (with `waker` registered).
    fn poll_waiter(&mut self, w: WaiterId, waker: &Waker) -> Option<WaitEnd<Sess<X>>> {
        if let Some(end) = self.core.take(w) {
            return Some(end);
        }
        match self.wakers.iter_mut().find(|(id, _)| *id == w) {
            Some((_, slot)) => {
                if !slot.will_wake(waker) {
                    *slot = waker.clone();
                }
            }
            None => self.wakers.push((w, waker.clone())),
        }
        None
    }
}

fn data<X>(st: &mut State<X>) -> &mut PoolData<X> {
    match &mut st.modes {
        ModeData::Pool(p) => p,
        _ => unreachable!("pool state in another mode"),
    }
}

/// Carries out the core's effects: closes are begun, granted waiters are
/// woken (and the grant reported), timed-out waiters are woken.
pub(crate) fn apply<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    fx: Effects<Sess<C::Connection>>,
    vu: Option<VuId>,
) {
    if fx.is_empty() {
        // The common release: the entry went idle, nothing to carry out.
        return;
    }
    for (cell, reason) in fx.closes {
        inner.begin_close(st, &cell, reason, vu);
    }
    let p = data(st);
    for (w, waiter_vu) in fx.grants {
        p.wake(w);
        let (slot, session) = match p.core.grant(w) {
            Some(Grant::Session(e)) => (false, Some(e.item.id.as_str())),
            _ => (true, None),
        };
        inner.emit(Some(waiter_vu), session, EventKind::WaiterGranted { slot });
    }
    // Pool timeouts: an expired waiter is woken and takes its timeout.
    for w in fx.timed_out {
        p.wake(w);
    }
}

/// Where a pool acquire is, for its cancel guard.
enum Stage {
    /// Nothing held.
    Idle,
    /// Queued as `waiter` since `since`.
    Waiting { waiter: WaiterId, since: Instant },
    /// Creating a session in a reserved slot.
    Reserved(Reservation),
}

/// The cancel guard of one pool acquire.
struct PoolAcquire<'a, C: Connector> {
    inner: &'a Inner<C>,
    vu: VuId,
    stage: Stage,
}

impl<C: Connector> Drop for PoolAcquire<'_, C> {
    fn drop(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Idle);
        let inner = self.inner;
        match stage {
            Stage::Idle => {}
            Stage::Waiting { waiter, since } => {
                let now = inner.clock.now();
                let mut st = inner.lock();
                st.metrics.acquire_wait.cancelled += 1;
                st.metrics.record_wait_end(now - since);
                let p = data(&mut st);
                // Still queued: its own task is woken as it leaves (as
                // every ended wait is). Granted before it could be woken:
                // the core passes the grant on.
                p.wake(waiter);
                let fx = p.core.cancel_waiter(waiter, now);
                inner.emit(
                    Some(self.vu),
                    None,
                    EventKind::AcquireCancelled { waiting: true },
                );
                apply(inner, &mut st, fx, Some(self.vu));
                drop(st);
                inner.wake_evictor();
            }
            Stage::Reserved(r) => {
                let mut st = inner.lock();
                let fx = data(&mut st).core.cancel_reservation(r);
                inner.emit(
                    Some(self.vu),
                    None,
                    EventKind::AcquireCancelled { waiting: false },
                );
                inner.emit(Some(self.vu), None, EventKind::SlotFreed);
                apply(inner, &mut st, fx, Some(self.vu));
            }
        }
    }
}

pub(crate) async fn acquire<C: Connector>(
    inner: &Inner<C>,
    vu: VuId,
    wait: bool,
) -> Result<Lease<C>, SessionError> {
    let mut guard = PoolAcquire {
        inner,
        vu,
        stage: Stage::Idle,
    };
    let fail = |kind| SessionError::new(Op::Acquire, kind);
    let start = inner.clock.now();
    {
        let mut st = inner.lock();
        inner.emit(Some(vu), None, EventKind::AcquireStart);
        let (decision, fx) =
            data(&mut st)
                .core
                .acquire(start, vu, wait, inner.cfg.acquire_timeout());
        // Idle sessions found due on the way (no grants: nobody waits
        // while a session is idle).
        for (cell, reason) in fx.closes {
            inner.begin_close(&mut st, &cell, reason, None);
        }
        match decision {
            Acquire::Ready(e) => return inner.hand_out(&mut st, vu, e, false, 0),
            Acquire::Exhausted => return Err(fail(ErrorKind::PoolExhausted)),
            Acquire::Closed => return Err(fail(ErrorKind::ManagerClosed)),
            Acquire::Create(r) => {
                inner.emit(Some(vu), None, EventKind::SlotReserved);
                guard.stage = Stage::Reserved(r);
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
                guard.stage = Stage::Waiting {
                    waiter,
                    since: start,
                };
            }
        }
    };

    let mut waited_ms = 0;
    if let Stage::Waiting { waiter, since } = guard.stage {
        // No timer per waiter: the evictor expires waiters at the head
        // waiter's deadline (the core's `expire_waiters`) and wakes them.
        // Whatever ends the wait is taken care of in the same critical
        // section that finds it.
        let stage = &mut guard.stage;
        let served = std::future::poll_fn(|cx| {
            let mut st = inner.lock();
            let Some(end) = data(&mut st).poll_waiter(waiter, cx.waker()) else {
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
        if let Some(result) = served {
            return result;
        }
    }

    let Stage::Reserved(r) = guard.stage else {
        unreachable!("every other stage returned above")
    };
    let created = inner.create_session(vu).await;
    let now = inner.clock.now();
    let mut st = inner.lock();
    guard.stage = Stage::Idle;
    match created {
        Ok(cell) => match data(&mut st).core.commit(r, cell, now) {
            Ok(entry) => inner.hand_out(&mut st, vu, entry, true, waited_ms),
            Err(cell) => {
                inner.begin_close(&mut st, &cell, CloseReason::Shutdown, Some(vu));
                Err(fail(ErrorKind::ManagerClosed).with_session(&cell.id))
            }
        },
        Err(e) => {
            let fx = data(&mut st).core.cancel_reservation(r);
            inner.emit(Some(vu), None, EventKind::SlotFreed);
            apply(inner, &mut st, fx, Some(vu));
            Err(e)
        }
    }
}

pub(crate) fn give_back<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    vu: VuId,
    entry: Entry<Sess<C::Connection>>,
    how: Return,
    now: Instant,
) {
    let p = data(st);
    let fx = match how {
        // A session the manager closed while it was leased is not pooled.
        Return::Release if entry.item.closed().is_none() => p.core.release(entry, now),
        Return::Release => p.core.discard(entry, CloseReason::Shutdown),
        Return::Invalidate | Return::Drop => {
            if how == Return::Invalidate && !p.core.is_closed() {
                p.replace += 1;
            }
            p.core.discard(entry, how.close_reason())
        }
    };
    apply(inner, st, fx, Some(vu));
}
