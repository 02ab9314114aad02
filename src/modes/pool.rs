//! Pool mode: the async shell around [`PoolCore`].
//!
//! The core decides; this file carries decisions out. A waiting acquire
//! parks on a oneshot channel that the core's grants are sent to (under the
//! manager's lock, in the core's FIFO order), racing its deadline on the
//! injected clock.
//!
//! Cancel safety rests on one guard, [`PoolAcquire`]: whatever stage the
//! acquire has reached when its future is dropped — queued, granted but not
//! yet woken, or creating in a reserved slot — its `Drop` undoes exactly that
//! stage under the lock. A grant that raced the cancellation is handed back
//! to the core, which passes it to the next waiter.

use std::collections::VecDeque;

use std::task::{Poll, Waker};

use super::{ModeData, Return};
use crate::clock::Instant;
use crate::error::{ErrorKind, Op, SessionError};
use crate::eviction::{Deadlines, Entry};
use crate::lease::Lease;
use crate::manager::{millis, Inner, Sess, State};
use crate::metrics::CloseReason;
use crate::observe::{EventKind, VuId};
use crate::pool::core::{Acquire, Effects, Grant, PoolCore, Reservation, WaiterId};
use crate::transport::Connector;

/// Pool state behind the manager's lock.
pub(crate) struct PoolData<X> {
    pub core: PoolCore<Sess<X>>,
    /// Queued waiters, in the core's queue order, with the waker of the
    /// task to wake when a grant arrives (or the wait ends otherwise).
    parked: VecDeque<(WaiterId, VuId, Option<Waker>)>,
    /// Grants handed to waiters whose tasks have not run yet. A wait thus
    /// allocates nothing: no channel, just these two reused buffers.
    mailbox: Vec<(WaiterId, Grant<Sess<X>>)>,
    /// Sessions invalidated after a 404 and not yet replaced.
    pub replace: u64,
}

impl<X> PoolData<X> {
    pub fn new(size: usize, deadlines: Deadlines) -> Self {
        PoolData {
            core: PoolCore::new(size, deadlines),
            parked: VecDeque::new(),
            mailbox: Vec::new(),
            replace: 0,
        }
    }

    /// Closes the core and wakes every waiter: each finds itself neither
    /// parked nor granted and fails with manager-closed. Idle sessions are
    /// closed by the manager (they are in its registry).
    pub fn close(&mut self) {
        let _ = self.core.close();
        for (_, _, waker) in self.parked.drain(..) {
            waker.into_iter().for_each(Waker::wake);
        }
    }

    /// Unparks waiter `w` (granted, timed out or cancelled) and wakes it.
    /// Returns its VU if it was parked. Grants go to the head waiter, so the
    /// front is checked first.
    pub fn unpark(&mut self, w: WaiterId) -> Option<VuId> {
        let i = if self.parked.front().is_some_and(|(id, _, _)| *id == w) {
            0
        } else {
            self.parked.iter().position(|(id, _, _)| *id == w)?
        };
        let (_, vu, waker) = self.parked.remove(i)?;
        if let Some(waker) = waker {
            waker.wake();
        }
        Some(vu)
    }

    /// Takes the grant delivered to waiter `w`, if any.
    fn collect(&mut self, w: WaiterId) -> Option<Grant<Sess<X>>> {
        let i = self.mailbox.iter().position(|(id, _)| *id == w)?;
        Some(self.mailbox.swap_remove(i).1)
    }

    /// One poll of waiter `w`: its grant, `Some(None)` when its wait ended
    /// without one (timed out or pool closed), or `None` to keep waiting
    /// (with `waker` registered).
    fn poll_waiter(&mut self, w: WaiterId, waker: &Waker) -> Option<Option<Grant<Sess<X>>>> {
        if let Some(g) = self.collect(w) {
            return Some(Some(g));
        }
        match self.parked.iter_mut().find(|(id, _, _)| *id == w) {
            Some((_, _, slot)) => {
                if !slot.as_ref().is_some_and(|old| old.will_wake(waker)) {
                    *slot = Some(waker.clone());
                }
                None
            }
            None => Some(None),
        }
    }
}

fn data<X>(st: &mut State<X>) -> &mut PoolData<X> {
    match &mut st.modes {
        ModeData::Pool(p) => p,
        _ => unreachable!("pool state in another mode"),
    }
}

/// Carries out the core's effects: grants go to their waiters' mailboxes
/// (and the waiters are woken), closes are begun. A grant whose waiter is
/// gone (cannot happen while the guard below holds, but costs nothing to
/// handle) goes back to the core.
pub(crate) fn apply<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    fx: Effects<Sess<C::Connection>>,
    now: Instant,
    vu: Option<VuId>,
) {
    if fx.is_empty() {
        // The common release: the entry went idle, nothing to carry out.
        return;
    }
    // Undelivered grants produce more effects; `Vec::new` does not allocate,
    // so the common case (everything delivered) allocates nothing here.
    let mut first = Some(fx);
    let mut pending = Vec::new();
    while let Some(fx) = first.take().or_else(|| pending.pop()) {
        for (cell, reason) in fx.closes {
            inner.begin_close(st, &cell, reason, vu);
        }
        for (w, grant) in fx.grants {
            let p = data(st);
            if let Some(waiter_vu) = p.unpark(w) {
                let (slot, session) = match &grant {
                    Grant::Session(e) => (false, Some(e.item.id.as_str())),
                    Grant::Slot(_) => (true, None),
                };
                inner.emit(Some(waiter_vu), session, EventKind::WaiterGranted { slot });
                p.mailbox.push((w, grant));
                continue;
            }
            match grant {
                Grant::Session(e) => pending.push(p.core.release(e, now)),
                Grant::Slot(r) => pending.push(p.core.cancel_reservation(r)),
            }
        }
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
                let fx = if p.core.cancel_waiter(waiter) {
                    p.unpark(waiter);
                    Effects::default()
                } else {
                    // Granted before we could be woken: hand it back.
                    match p.collect(waiter) {
                        Some(Grant::Session(e)) => p.core.release(e, now),
                        Some(Grant::Slot(r)) => p.core.cancel_reservation(r),
                        None => Effects::default(),
                    }
                };
                inner.emit(
                    Some(self.vu),
                    None,
                    EventKind::AcquireCancelled { waiting: true },
                );
                apply(inner, &mut st, fx, now, Some(self.vu));
                drop(st);
                inner.wake_evictor();
            }
            Stage::Reserved(r) => {
                let now = inner.clock.now();
                let mut st = inner.lock();
                let fx = data(&mut st).core.cancel_reservation(r);
                inner.emit(
                    Some(self.vu),
                    None,
                    EventKind::AcquireCancelled { waiting: false },
                );
                inner.emit(Some(self.vu), None, EventKind::SlotFreed);
                apply(inner, &mut st, fx, now, Some(self.vu));
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
        let (decision, evicted) =
            data(&mut st)
                .core
                .acquire(start, wait, inner.cfg.acquire_timeout());
        for (cell, reason) in evicted {
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
                data(&mut st).parked.push_back((waiter, vu, None));
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
            let Some(grant) = data(&mut st).poll_waiter(waiter, cx.waker()) else {
                return Poll::Pending;
            };
            // A granted session was released (stamped `last_used`) at the
            // grant: that is when the wait ended, and it saves a clock read.
            let now = match &grant {
                Some(Grant::Session(e)) => e.last_used,
                _ => inner.clock.now(),
            };
            st.metrics.record_wait_end(now - since);
            *stage = Stage::Idle;
            waited_ms = millis(now - since);
            Poll::Ready(match grant {
                Some(Grant::Session(e)) => {
                    st.metrics.acquire_wait.served += 1;
                    Some(inner.hand_out(&mut st, vu, e, false, waited_ms))
                }
                Some(Grant::Slot(r)) => {
                    st.metrics.acquire_wait.served += 1;
                    *stage = Stage::Reserved(r);
                    None
                }
                None if st.closed => Some(Err(fail(ErrorKind::ManagerClosed))),
                None => {
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
            apply(inner, &mut st, fx, now, Some(vu));
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
    apply(inner, st, fx, now, Some(vu));
}
