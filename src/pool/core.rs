//! The pool as a pure state machine (sans-IO).
//!
//! No futures, no locks, no clock: every method takes `now` and returns a
//! decision, and the async shell (`modes/pool.rs`) carries the
//! decisions out (opens sessions, wakes waiters, closes sessions). Keeping the
//! races here, in plain data, is what lets tests step through them one event
//! at a time and lets a property test check the laws after every step.
//!
//! The state is: idle entries (oldest released first), a count of entries in
//! use, reservations (slots whose session is being created), and a FIFO queue
//! of waiters. The core keeps one invariant between calls:
//!
//! > `in_use + idle + reserved <= size`, and a waiter exists only when no
//! > idle entry and no free slot exists.
//!
//! So whenever capacity appears (a release, a freed slot, an eviction), it
//! goes to the waiter at the head of the queue before anyone else.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::clock::Instant;
use crate::eviction::{Deadlines, Entry};
use crate::metrics::CloseReason;

/// A slot reserved for a session that is being created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reservation(pub u64);

/// A queued acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId(pub u64);

/// The outcome of [`PoolCore::acquire`].
#[derive(Debug, PartialEq, Eq)]
pub enum Acquire<T> {
    /// An idle entry, now in use.
    Ready(Entry<T>),
    /// A free slot, now reserved: create a session, then
    /// [`PoolCore::commit`] or [`PoolCore::cancel_reservation`].
    Create(Reservation),
    /// No capacity: queued as this waiter until `deadline`.
    Wait {
        /// The waiter's id.
        waiter: WaiterId,
        /// Its place in the queue (0 = head).
        position: usize,
        /// When it times out.
        deadline: Instant,
    },
    /// No capacity and the caller would not wait.
    Exhausted,
    /// The pool is closed.
    Closed,
}

/// What a waiter is given when capacity appears.
#[derive(Debug, PartialEq, Eq)]
pub enum Grant<T> {
    /// A session, already counted in use.
    Session(Entry<T>),
    /// A reserved slot: create a session in it.
    Slot(Reservation),
}

/// Work for the shell: hand grants to waiters, close entries.
#[derive(Debug, PartialEq, Eq)]
pub struct Effects<T> {
    /// Grants, in the order they must be delivered.
    pub grants: Vec<(WaiterId, Grant<T>)>,
    /// Entries removed from the pool that must be closed, and why.
    pub closes: Vec<(T, CloseReason)>,
}

impl<T> Default for Effects<T> {
    fn default() -> Self {
        Effects {
            grants: Vec::new(),
            closes: Vec::new(),
        }
    }
}

impl<T> Effects<T> {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty() && self.closes.is_empty()
    }
}

/// A queued acquire and its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// Its id.
    pub id: WaiterId,
    /// When it arrived.
    pub since: Instant,
    /// When it times out.
    pub deadline: Instant,
}

/// The pool's pure state. `T` is whatever the shell pools (a session handle
/// in the library, a plain number in tests).
#[derive(Debug)]
pub struct PoolCore<T> {
    size: usize,
    deadlines: Deadlines,
    idle: VecDeque<Entry<T>>,
    in_use: usize,
    reserved: BTreeSet<Reservation>,
    waiters: VecDeque<Waiter>,
    next_id: u64,
    closed: bool,
}

impl<T> PoolCore<T> {
    /// An empty, open pool of `size` slots with the given eviction limits.
    pub fn new(size: usize, deadlines: Deadlines) -> Self {
        PoolCore {
            size,
            deadlines,
            idle: VecDeque::new(),
            in_use: 0,
            reserved: BTreeSet::new(),
            waiters: VecDeque::new(),
            next_id: 0,
            closed: false,
        }
    }

    /// Slots in all.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Entries handed out and not yet given back.
    pub fn in_use(&self) -> usize {
        self.in_use
    }
    /// Idle entries, oldest released first.
    pub fn idle(&self) -> impl ExactSizeIterator<Item = &Entry<T>> {
        self.idle.iter()
    }
    /// Slots reserved for sessions being created.
    pub fn reserved(&self) -> usize {
        self.reserved.len()
    }
    /// Queued acquires, head first.
    pub fn waiters(&self) -> impl ExactSizeIterator<Item = &Waiter> {
        self.waiters.iter()
    }
    /// Whether [`PoolCore::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    /// Slots neither in use, idle nor reserved.
    pub fn free_slots(&self) -> usize {
        self.size
            .saturating_sub(self.in_use + self.idle.len() + self.reserved.len())
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn reserve(&mut self) -> Reservation {
        let r = Reservation(self.next_id());
        self.reserved.insert(r);
        r
    }

    /// Asks for an entry at `now`. Idle entries are handed out oldest first;
    /// any found due for eviction on the way are removed and returned for
    /// closing. With no idle entry, a free slot is reserved; with neither,
    /// the caller queues (if `wait`) until `now + timeout`.
    pub fn acquire(
        &mut self,
        now: Instant,
        wait: bool,
        timeout: Duration,
    ) -> (Acquire<T>, Vec<(T, CloseReason)>) {
        let mut evicted = Vec::new();
        if self.closed {
            return (Acquire::Closed, evicted);
        }
        // FIFO: nobody overtakes a queued waiter. (By the invariant a waiter
        // implies no idle entry and no free slot, so this is the same as
        // checking capacity; it is spelled out so the rule is visible.)
        if self.waiters.is_empty() {
            while let Some(e) = self.idle.pop_front() {
                match self.deadlines.due(&e, now) {
                    Some(reason) => evicted.push((e.item, reason)),
                    None => {
                        self.in_use += 1;
                        return (Acquire::Ready(e), evicted);
                    }
                }
            }
            if self.free_slots() > 0 {
                return (Acquire::Create(self.reserve()), evicted);
            }
        }
        if !wait {
            return (Acquire::Exhausted, evicted);
        }
        let w = Waiter {
            id: WaiterId(self.next_id()),
            since: now,
            deadline: now + timeout,
        };
        self.waiters.push_back(w);
        let position = self.waiters.len() - 1;
        (
            Acquire::Wait {
                waiter: w.id,
                position,
                deadline: w.deadline,
            },
            evicted,
        )
    }

    /// The session for reservation `r` was created at `now`: it is now in
    /// use. If the pool was closed meanwhile, the item is given back as
    /// `Err` to be closed (and the slot is freed all the same).
    pub fn commit(&mut self, r: Reservation, item: T, now: Instant) -> Result<Entry<T>, T> {
        let had = self.reserved.remove(&r);
        debug_assert!(had, "commit of unknown reservation {r:?}");
        if self.closed || !had {
            return Err(item);
        }
        self.in_use += 1;
        Ok(Entry::new(item, now))
    }

    /// Creating the session for reservation `r` failed or was abandoned: the
    /// slot is free again and goes to the head waiter, if any.
    pub fn cancel_reservation(&mut self, r: Reservation) -> Effects<T> {
        let mut fx = Effects::default();
        if self.reserved.remove(&r) {
            self.serve_waiters(&mut fx);
        }
        fx
    }

    /// An entry comes back at `now` after use. Past its TTL, it is closed
    /// and its slot passed on; otherwise it goes straight to the head waiter,
    /// or to the back of the idle queue.
    pub fn release(&mut self, mut e: Entry<T>, now: Instant) -> Effects<T> {
        let mut fx = Effects::default();
        self.in_use = self.in_use.saturating_sub(1);
        e.last_used = now;
        if self.closed {
            fx.closes.push((e.item, CloseReason::Shutdown));
        } else if self.deadlines.ttl_due(&e, now) {
            fx.closes.push((e.item, CloseReason::Ttl));
            self.serve_waiters(&mut fx);
        } else if let Some(w) = self.waiters.pop_front() {
            self.in_use += 1;
            fx.grants.push((w.id, Grant::Session(e)));
        } else {
            self.idle.push_back(e);
        }
        fx
    }

    /// An entry in use is taken out of the pool for good (invalidated after
    /// a 404, or its lease dropped): it is to be closed with `reason`, and its
    /// slot goes to the head waiter.
    pub fn discard(&mut self, e: Entry<T>, reason: CloseReason) -> Effects<T> {
        let mut fx = Effects::default();
        self.in_use = self.in_use.saturating_sub(1);
        fx.closes.push((e.item, reason));
        if !self.closed {
            self.serve_waiters(&mut fx);
        }
        fx
    }

    /// Removes waiter `w` because its caller gave up (cancelled). Returns
    /// whether it was still queued; `false` means it was already granted, and
    /// the caller must hand back what it was given.
    pub fn cancel_waiter(&mut self, w: WaiterId) -> bool {
        match self.waiters.iter().position(|x| x.id == w) {
            Some(i) => {
                self.waiters.remove(i);
                true
            }
            None => false,
        }
    }

    /// Removes every idle entry due at `now` and returns them for closing;
    /// freed slots go to waiters.
    pub fn evict(&mut self, now: Instant) -> Effects<T> {
        let mut fx = Effects::default();
        let mut kept = VecDeque::with_capacity(self.idle.len());
        for e in self.idle.drain(..) {
            match self.deadlines.due(&e, now) {
                Some(reason) => fx.closes.push((e.item, reason)),
                None => kept.push_back(e),
            }
        }
        self.idle = kept;
        if !fx.closes.is_empty() {
            self.serve_waiters(&mut fx);
        }
        fx
    }

    /// Removes every queued waiter whose deadline is due at `now` (a pool
    /// timeout) and returns them, head first.
    pub fn expire_waiters(&mut self, now: Instant) -> Vec<WaiterId> {
        let mut out = Vec::new();
        while self.waiters.front().is_some_and(|w| w.deadline <= now) {
            out.push(self.waiters.pop_front().expect("checked").id);
        }
        out
    }

    /// The head waiter's deadline (deadlines never decrease along the
    /// queue: one timeout for all, FIFO).
    pub fn next_waiter_deadline(&self) -> Option<Instant> {
        self.waiters.front().map(|w| w.deadline)
    }

    /// The earliest eviction deadline among idle entries.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.idle
            .iter()
            .filter_map(|e| self.deadlines.next(e))
            .min()
    }

    /// Closes the pool: every waiter is dropped from the queue (their
    /// acquires fail with manager-closed) and every idle entry is returned
    /// for closing. Entries in use are closed when they come back;
    /// reservations fail at commit.
    pub fn close(&mut self) -> (Vec<WaiterId>, Vec<T>) {
        self.closed = true;
        let waiters = self.waiters.drain(..).map(|w| w.id).collect();
        let idle = self.idle.drain(..).map(|e| e.item).collect();
        (waiters, idle)
    }

    /// Hands free capacity to queued waiters, head first.
    fn serve_waiters(&mut self, fx: &mut Effects<T>) {
        while !self.waiters.is_empty() {
            let grant = if let Some(e) = self.idle.pop_front() {
                self.in_use += 1;
                Grant::Session(e)
            } else if self.free_slots() > 0 {
                Grant::Slot(self.reserve())
            } else {
                return;
            };
            let w = self.waiters.pop_front().expect("checked non-empty");
            fx.grants.push((w.id, grant));
        }
    }

    /// Checks the invariant; `Err` says which part broke. For tests and
    /// debug assertions.
    pub fn check_invariants(&self) -> Result<(), String> {
        let used = self.in_use + self.idle.len() + self.reserved.len();
        if used > self.size {
            return Err(format!(
                "pool bound: in_use {} + idle {} + reserved {} > size {}",
                self.in_use,
                self.idle.len(),
                self.reserved.len(),
                self.size
            ));
        }
        if !self.waiters.is_empty() && (!self.idle.is_empty() || used < self.size) {
            return Err(format!(
                "{} waiter(s) queued while idle {} / free {}",
                self.waiters.len(),
                self.idle.len(),
                self.size - used
            ));
        }
        if self.closed && (!self.waiters.is_empty() || !self.idle.is_empty()) {
            return Err("closed pool still holds waiters or idle entries".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn pool(size: usize) -> PoolCore<u32> {
        PoolCore::new(size, Deadlines::default())
    }

    fn created(p: &mut PoolCore<u32>, item: u32, now: Instant) -> Entry<u32> {
        let (a, ev) = p.acquire(now, true, T);
        assert!(ev.is_empty());
        let Acquire::Create(r) = a else {
            panic!("expected a free slot, got {a:?}")
        };
        p.commit(r, item, now).unwrap()
    }

    #[test]
    fn reserves_until_full_then_queues() {
        let mut p = pool(2);
        let a = created(&mut p, 1, at(0));
        let _b = created(&mut p, 2, at(0));
        assert_eq!(p.in_use(), 2);
        let (w, _) = p.acquire(at(5), true, T);
        assert_eq!(
            w,
            Acquire::Wait {
                waiter: WaiterId(3),
                position: 0,
                deadline: at(105)
            }
        );
        p.check_invariants().unwrap();
        // A release goes straight to the waiter, still counted in use.
        let fx = p.release(a, at(10));
        assert_eq!(fx.grants.len(), 1);
        assert!(matches!(&fx.grants[0], (WaiterId(3), Grant::Session(e)) if e.item == 1));
        assert_eq!(p.in_use(), 2);
        assert_eq!(p.idle().len(), 0);
        p.check_invariants().unwrap();
    }

    #[test]
    fn non_waiting_acquire_is_exhausted() {
        let mut p = pool(1);
        let _a = created(&mut p, 1, at(0));
        assert_eq!(p.acquire(at(0), false, T).0, Acquire::Exhausted);
        assert_eq!(p.waiters().len(), 0);
    }

    #[test]
    fn idle_handed_out_oldest_released_first() {
        let mut p = pool(3);
        let a = created(&mut p, 1, at(0));
        let b = created(&mut p, 2, at(0));
        let c = created(&mut p, 3, at(0));
        assert!(p.release(b, at(1)).is_empty());
        assert!(p.release(c, at(2)).is_empty());
        assert!(p.release(a, at(3)).is_empty());
        let order: Vec<u32> = (0..3)
            .map(|_| match p.acquire(at(4), true, T).0 {
                Acquire::Ready(e) => e.item,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(order, vec![2, 3, 1]);
    }

    #[test]
    fn waiters_served_in_arrival_order() {
        let mut p = pool(1);
        let a = created(&mut p, 1, at(0));
        let ids: Vec<WaiterId> = (0..3)
            .map(|i| match p.acquire(at(i), true, T).0 {
                Acquire::Wait {
                    waiter, position, ..
                } => {
                    assert_eq!(position as u64, i);
                    waiter
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let mut e = a;
        for (i, want) in ids.iter().enumerate() {
            let fx = p.release(e, at(10 + i as u64));
            let (got, Grant::Session(next)) = fx.grants.into_iter().next().unwrap() else {
                panic!("expected a session")
            };
            assert_eq!(got, *want);
            e = next;
        }
    }

    #[test]
    fn failed_create_passes_the_slot_to_the_head_waiter() {
        let mut p = pool(1);
        let (Acquire::Create(r), _) = p.acquire(at(0), true, T) else {
            panic!()
        };
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(1), true, T) else {
            panic!()
        };
        let fx = p.cancel_reservation(r);
        assert_eq!(fx.grants.len(), 1);
        assert!(matches!(fx.grants[0], (w, Grant::Slot(_)) if w == waiter));
        assert_eq!(p.reserved(), 1);
        p.check_invariants().unwrap();
        // Cancelling an unknown reservation does nothing.
        assert!(p.cancel_reservation(r).is_empty());
    }

    #[test]
    fn discard_frees_the_slot_for_a_waiter() {
        let mut p = pool(1);
        let a = created(&mut p, 1, at(0));
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(1), true, T) else {
            panic!()
        };
        let fx = p.discard(a, CloseReason::Invalidated);
        assert_eq!(fx.closes, vec![(1, CloseReason::Invalidated)]);
        assert!(matches!(fx.grants[0], (w, Grant::Slot(_)) if w == waiter));
        p.check_invariants().unwrap();
    }

    #[test]
    fn cancelled_waiter_leaves_no_entry() {
        let mut p = pool(1);
        let a = created(&mut p, 1, at(0));
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(1), true, T) else {
            panic!()
        };
        assert!(p.cancel_waiter(waiter));
        assert!(!p.cancel_waiter(waiter));
        assert_eq!(p.waiters().len(), 0);
        assert!(p.release(a, at(2)).grants.is_empty());
        assert_eq!(p.idle().len(), 1);
    }

    #[test]
    fn ttl_and_idle_eviction_at_the_deadline() {
        let d = Deadlines {
            ttl: Some(Duration::from_millis(1000)),
            max_idle: Some(Duration::from_millis(200)),
        };
        let mut p = PoolCore::new(2, d);
        let a = created(&mut p, 1, at(0));
        assert!(p.release(a, at(100)).is_empty());
        assert_eq!(p.next_deadline(), Some(at(300)));
        assert!(p.evict(at(299)).is_empty());
        let fx = p.evict(at(300));
        assert_eq!(fx.closes, vec![(1, CloseReason::Idle)]);
        assert_eq!(p.next_deadline(), None);
        // TTL: released at 900, due at 1000 (before its idle deadline 1100).
        let b = created(&mut p, 2, at(0));
        assert!(p.release(b, at(900)).is_empty());
        assert_eq!(p.next_deadline(), Some(at(1000)));
        // Found due during acquire: evicted and counted, a slot reserved.
        let (a, ev) = p.acquire(at(1000), true, T);
        assert!(matches!(a, Acquire::Create(_)));
        assert_eq!(ev, vec![(2, CloseReason::Ttl)]);
    }

    #[test]
    fn in_use_past_ttl_is_closed_on_release_and_slot_passed_on() {
        let d = Deadlines {
            ttl: Some(Duration::from_millis(50)),
            max_idle: None,
        };
        let mut p = PoolCore::new(1, d);
        let a = created(&mut p, 1, at(0));
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(10), true, T) else {
            panic!()
        };
        let fx = p.release(a, at(50));
        assert_eq!(fx.closes, vec![(1, CloseReason::Ttl)]);
        assert!(matches!(fx.grants[0], (w, Grant::Slot(_)) if w == waiter));
    }

    #[test]
    fn close_drains_waiters_and_idle_and_refuses_acquire() {
        let mut p = pool(2);
        let a = created(&mut p, 1, at(0));
        let b = created(&mut p, 2, at(0));
        assert!(p.release(a, at(1)).is_empty());
        let c = created_or_ready(&mut p, at(2));
        assert_eq!(c.item, 1);
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(3), true, T) else {
            panic!("full pool must queue")
        };
        assert!(p.release(c, at(4)).grants.len() == 1);
        let (Acquire::Wait { waiter: w2, .. }, _) = p.acquire(at(5), true, T) else {
            panic!("full pool must queue")
        };
        assert_ne!(waiter, w2);
        let (waiters, idle) = p.close();
        assert_eq!(waiters, vec![w2]);
        assert!(idle.is_empty());
        assert_eq!(p.acquire(at(6), true, T).0, Acquire::Closed);
        // Entries in use come back to be closed on shutdown, slot not passed on.
        let fx = p.release(b, at(7));
        assert_eq!(fx.closes, vec![(2, CloseReason::Shutdown)]);
        assert!(fx.grants.is_empty());
        p.check_invariants().unwrap();
    }

    #[test]
    fn waiters_expire_at_their_deadline_head_first() {
        let mut p = pool(1);
        let a = created(&mut p, 1, at(0));
        let w: Vec<WaiterId> = [0, 10, 20]
            .into_iter()
            .map(|t| match p.acquire(at(t), true, T).0 {
                Acquire::Wait { waiter, .. } => waiter,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(p.next_waiter_deadline(), Some(at(100)));
        assert!(p.expire_waiters(at(99)).is_empty(), "1ms before");
        assert_eq!(p.expire_waiters(at(110)), vec![w[0], w[1]], "at and after");
        assert_eq!(p.next_waiter_deadline(), Some(at(120)));
        let fx = p.release(a, at(111));
        assert!(matches!(fx.grants[..], [(g, Grant::Session(_))] if g == w[2]));
        p.check_invariants().unwrap();
    }

    fn created_or_ready(p: &mut PoolCore<u32>, now: Instant) -> Entry<u32> {
        match p.acquire(now, true, T).0 {
            Acquire::Ready(e) => e,
            other => panic!("expected an idle entry, got {other:?}"),
        }
    }
}
