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

use tokio::sync::oneshot;

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
    /// Where each queued waiter's grant is sent.
    /// In the core's queue order (ids ascending), so a grant, which goes to
    /// the head waiter, is found at the front.
    waiters: VecDeque<(WaiterId, oneshot::Sender<Grant<Sess<X>>>)>,
    /// Sessions invalidated after a 404 and not yet replaced.
    pub replace: u64,
}

impl<X> PoolData<X> {
    pub fn new(size: usize, deadlines: Deadlines) -> Self {
        PoolData {
            core: PoolCore::new(size, deadlines),
            waiters: VecDeque::new(),
            replace: 0,
        }
    }

    /// Closes the core; dropping the senders wakes every waiter with
    /// manager-closed. Idle sessions are closed by the manager (they are in
    /// its registry).
    pub fn close(&mut self) {
        let _ = self.core.close();
        self.waiters.clear();
    }
}

impl<X> PoolData<X> {
    /// Removes waiter `w`'s sender: at the front for a grant (FIFO), by a
    /// short scan for a cancellation or a timeout.
    pub fn take_waiter(&mut self, w: WaiterId) -> Option<oneshot::Sender<Grant<Sess<X>>>> {
        if self.waiters.front().is_some_and(|(id, _)| *id == w) {
            return self.waiters.pop_front().map(|(_, tx)| tx);
        }
        let i = self.waiters.iter().position(|(id, _)| *id == w)?;
        self.waiters.remove(i).map(|(_, tx)| tx)
    }
}

fn data<X>(st: &mut State<X>) -> &mut PoolData<X> {
    match &mut st.modes {
        ModeData::Pool(p) => p,
        _ => unreachable!("pool state in another mode"),
    }
}

/// Carries out the core's effects: grants go to their waiters, closes are
/// begun. A grant whose waiter is gone (cannot happen while the guard below
/// holds, but costs nothing to handle) goes back to the core.
pub(crate) fn apply<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    fx: Effects<Sess<C::Connection>>,
    now: Instant,
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
            inner.begin_close(st, &cell, reason, None);
        }
        for (w, grant) in fx.grants {
            let p = data(st);
            let undelivered = match p.take_waiter(w) {
                Some(tx) => tx.send(grant).err(),
                None => Some(grant),
            };
            match undelivered {
                Some(Grant::Session(e)) => pending.push(p.core.release(e, now)),
                Some(Grant::Slot(r)) => pending.push(p.core.cancel_reservation(r)),
                None => {}
            }
        }
    }
}

/// Where a pool acquire is, for its cancel guard.
enum Stage<X> {
    /// Nothing held.
    Idle,
    /// Queued as `waiter` since `since`.
    Waiting {
        waiter: WaiterId,
        rx: oneshot::Receiver<Grant<Sess<X>>>,
        since: Instant,
    },
    /// Creating a session in a reserved slot.
    Reserved(Reservation),
}

/// The cancel guard of one pool acquire.
struct PoolAcquire<'a, C: Connector> {
    inner: &'a Inner<C>,
    vu: VuId,
    stage: Stage<C::Connection>,
}

impl<C: Connector> Drop for PoolAcquire<'_, C> {
    fn drop(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Idle);
        let inner = self.inner;
        match stage {
            Stage::Idle => {}
            Stage::Waiting {
                waiter,
                mut rx,
                since,
            } => {
                let now = inner.clock.now();
                let mut st = inner.lock();
                st.metrics.acquire_wait.cancelled += 1;
                st.metrics.record_wait_end(now - since);
                let p = data(&mut st);
                let fx = if p.core.cancel_waiter(waiter) {
                    p.take_waiter(waiter);
                    Effects::default()
                } else {
                    // Granted before we could be woken: hand it back.
                    match rx.try_recv() {
                        Ok(Grant::Session(e)) => p.core.release(e, now),
                        Ok(Grant::Slot(r)) => p.core.cancel_reservation(r),
                        Err(_) => Effects::default(),
                    }
                };
                inner.emit(
                    Some(self.vu),
                    None,
                    EventKind::AcquireCancelled { waiting: true },
                );
                apply(inner, &mut st, fx, now);
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
                apply(inner, &mut st, fx, now);
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
    let deadline = {
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
                None
            }
            Acquire::Wait {
                waiter,
                position,
                deadline,
            } => {
                st.metrics.pool_waits += 1;
                st.metrics.acquire_wait.count += 1;
                let (tx, rx) = oneshot::channel();
                data(&mut st).waiters.push_back((waiter, tx));
                inner.deadline_added(&mut st, deadline);
                inner.emit(
                    Some(vu),
                    None,
                    EventKind::AcquireWait { position, deadline },
                );
                guard.stage = Stage::Waiting {
                    waiter,
                    rx,
                    since: start,
                };
                Some(deadline)
            }
        }
    };

    let mut waited_ms = 0;
    if let Some(deadline) = deadline {
        let Stage::Waiting { waiter, rx, since } = &mut guard.stage else {
            unreachable!("set just above")
        };
        let (waiter, since) = (*waiter, *since);
        // No timer per waiter: the evictor times out waiters at the head
        // waiter's deadline by dropping their senders.
        let _ = deadline;
        let got = (&mut *rx).await.ok();
        // A granted session was released (stamped `last_used`) at the grant:
        // that is when the wait ended, and it saves a clock read.
        let now = match &got {
            Some(Grant::Session(e)) => e.last_used,
            _ => inner.clock.now(),
        };
        let mut st = inner.lock();
        let grant = match got {
            Some(g) => Some(g),
            None => {
                if data(&mut st).core.cancel_waiter(waiter) {
                    // Still queued at the deadline: a timeout.
                    data(&mut st).take_waiter(waiter);
                    None
                } else {
                    // Granted at the last moment, or the pool closed.
                    rx.try_recv().ok()
                }
            }
        };
        st.metrics.record_wait_end(now - since);
        guard.stage = Stage::Idle;
        waited_ms = millis(now - since);
        match grant {
            Some(Grant::Session(e)) => {
                st.metrics.acquire_wait.served += 1;
                return inner.hand_out(&mut st, vu, e, false, waited_ms);
            }
            Some(Grant::Slot(r)) => {
                st.metrics.acquire_wait.served += 1;
                guard.stage = Stage::Reserved(r);
            }
            None if st.closed => return Err(fail(ErrorKind::ManagerClosed)),
            None => {
                st.metrics.pool_timeouts += 1;
                return Err(fail(ErrorKind::PoolTimeout {
                    waited: now - since,
                }));
            }
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
            apply(inner, &mut st, fx, now);
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
    let _ = vu;
    apply(inner, st, fx, now);
}
