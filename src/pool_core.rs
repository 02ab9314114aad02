//! The pool as a pure state machine (sans-IO).
//!
//! No futures, no locks, no clock, no wakers: every method takes `now` and
//! returns a decision plus one [`Effects`] value (grants made, sessions to
//! close, waiters timed out or dropped by the close, the next deadline),
//! and the manager's shell (`src/modes/mod.rs`) carries the effects out (opens
//! sessions, wakes tasks, closes sessions). The shell keeps nothing but a
//! waker per parked task: the waiter queue and each waiter's state
//! (queued, granted, timed out, closed out) live here. Keeping the races
//! here, in plain data, is what lets tests step through them one event at
//! a time, a property test check the laws after every step, and
//! `mcp-sim explore` enumerate every interleaving.
//!
//! The state is: idle entries (oldest released first), a count of entries in
//! use, reservations (slots whose session is being created), a FIFO queue
//! of waiters, and the waiters whose wait has ended but whose task has not
//! yet taken the outcome ([`PoolCore::take`]). The core keeps one invariant
//! between calls:
//!
//! > `in_use + idle + reserved <= size`, and a waiter is queued only when
//! > no idle entry and no free slot exists.
//!
//! So whenever capacity appears (a release, a freed slot, an eviction), it
//! goes to the waiter at the head of the queue before anyone else. A grant
//! is counted in use (or reserved) from the moment it is made; if its
//! waiter is cancelled before taking it, [`PoolCore::cancel_waiter`] passes
//! it on as a release (or a freed slot) would.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::clock::Instant;
use crate::eviction::{Deadlines, Entry};
use crate::metrics::CloseReason;
use crate::observe::VuId;

use crate::mode_core::{Acquire, Effects, Grant, Reservation, WaitEnd, WaiterId};
use crate::mode_core::{ModeCore, Return};

/// A waiter's state, as [`PoolCore::waiter_state`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WaiterState {
    /// In the queue.
    Queued,
    /// Given a session or a slot, not yet taken.
    Granted,
    /// Timed out, not yet taken.
    TimedOut,
    /// Dropped by the close, not yet taken.
    Closed,
}

/// A deliberate bug a test can plant in a core (with the cargo feature
/// `planted-bugs`, `PoolCore::plant`) to show that exploration
/// (`mcp-sim explore`) finds it. Without the feature nothing can plant one,
/// and the checks for them compile to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlantedBug {
    /// An idle entry is handed out without looking at its deadlines (an
    /// idle session past its TTL or idle deadline is handed out).
    StaleHandout,
    /// A waiter whose deadline came is timed out but left in the queue,
    /// where a later grant can reach it (a grant to a departed waiter).
    GrantToDeparted,
    /// Waiters are expired one millisecond after their deadline.
    OffByOneDeadline,
    /// A release with three or more waiters queued parks the entry idle
    /// instead of granting it (a lost wake-up that needs three waiters).
    LostWakeupThirdWaiter,
    /// An invalidated session is not owed a replacement: the next session
    /// made is not counted as a reconnect (a forgotten reconnect; the core
    /// is then back in the state it started from).
    ForgottenReconnect,
}

/// A queued acquire and its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// Its id.
    pub id: WaiterId,
    /// The VU that waits.
    pub vu: VuId,
    /// When it arrived.
    pub since: Instant,
    /// When it times out.
    pub deadline: Instant,
}

/// The pool's pure state. `T` is whatever the shell pools (a session handle
/// in the library, a plain number in tests and in exploration).
#[derive(Clone, Debug)]
pub struct PoolCore<T> {
    size: usize,
    deadlines: Deadlines,
    idle: VecDeque<Entry<T>>,
    in_use: usize,
    reserved: BTreeSet<Reservation>,
    waiters: VecDeque<Waiter>,
    /// The queued waiters by deadline: each acquire may bring its own
    /// limit, so the earliest deadline is not always the head's.
    timeouts: BTreeSet<(Instant, WaiterId)>,
    /// Waiters whose wait ended, until their task takes the outcome.
    ended: Vec<(Waiter, WaitEnd<T>)>,
    next_id: u64,
    closed: bool,
    /// Sessions invalidated after a 404 and not yet replaced: the next
    /// that many sessions made count as reconnects.
    replace: u64,
    #[cfg(feature = "planted-bugs")]
    bug: Option<PlantedBug>,
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
            timeouts: BTreeSet::new(),
            ended: Vec::new(),
            next_id: 0,
            closed: false,
            replace: 0,
            #[cfg(feature = "planted-bugs")]
            bug: None,
        }
    }

    /// Plants `bug` (for tests of the tests only).
    #[cfg(feature = "planted-bugs")]
    pub fn plant(&mut self, bug: PlantedBug) {
        self.bug = Some(bug);
    }

    /// Whether `bug` was planted (always `false` without the feature).
    #[inline]
    fn planted(&self, bug: PlantedBug) -> bool {
        #[cfg(feature = "planted-bugs")]
        return self.bug == Some(bug);
        #[cfg(not(feature = "planted-bugs"))]
        {
            let _ = bug;
            false
        }
    }

    /// Slots in all: the manager's `pool_size` (named so here too; it is
    /// the capacity, not how many sessions exist).
    pub fn pool_size(&self) -> usize {
        self.size
    }
    /// The eviction limits.
    pub fn deadlines(&self) -> Deadlines {
        self.deadlines
    }
    /// Entries handed out (or granted) and not yet given back.
    pub fn in_use(&self) -> usize {
        self.in_use
    }
    /// Idle entries, oldest released first.
    pub fn idle(&self) -> impl ExactSizeIterator<Item = &Entry<T>> {
        self.idle.iter()
    }
    /// Slots reserved for sessions being created (or granted to a waiter).
    pub fn reserved(&self) -> usize {
        self.reserved.len()
    }
    /// Reservations outstanding, in id order.
    pub fn reservations(&self) -> impl ExactSizeIterator<Item = &Reservation> {
        self.reserved.iter()
    }
    /// Queued acquires, head first.
    pub fn waiters(&self) -> impl ExactSizeIterator<Item = &Waiter> {
        self.waiters.iter()
    }
    /// Waiters whose wait ended and whose task has not taken the outcome,
    /// in the order their waits ended.
    pub fn ended(&self) -> impl ExactSizeIterator<Item = &(Waiter, WaitEnd<T>)> {
        self.ended.iter()
    }
    /// Whether [`PoolCore::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    /// Sessions invalidated after a 404 and not yet replaced.
    pub fn replacements_owed(&self) -> u64 {
        self.replace
    }
    /// The id the next waiter or reservation will get (for a canonical
    /// encoding of the state; ids only grow).
    pub fn id_counter(&self) -> u64 {
        self.next_id
    }
    /// Slots neither in use, idle nor reserved.
    pub fn free_slots(&self) -> usize {
        self.size
            .saturating_sub(self.in_use + self.idle.len() + self.reserved.len())
    }

    /// Waiter `w`'s state, `None` if the core does not know it (never
    /// queued, cancelled, or its outcome taken).
    pub fn waiter_state(&self, w: WaiterId) -> Option<WaiterState> {
        if self.waiters.iter().any(|x| x.id == w) {
            return Some(WaiterState::Queued);
        }
        self.ended
            .iter()
            .find(|(x, _)| x.id == w)
            .map(|(_, end)| match end {
                WaitEnd::Granted(_) => WaiterState::Granted,
                WaitEnd::TimedOut => WaiterState::TimedOut,
                WaitEnd::Closed => WaiterState::Closed,
            })
    }

    /// What waiter `w` was granted, while its task has not taken it.
    pub fn grant(&self, w: WaiterId) -> Option<&Grant<T>> {
        self.ended.iter().find_map(|(x, end)| match end {
            WaitEnd::Granted(g) if x.id == w => Some(g),
            _ => None,
        })
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

    /// Finishes `fx` with the deadline the deadline timer must wake for next.
    fn done(&self, mut fx: Effects<T>) -> Effects<T> {
        fx.next_deadline = self.next_wakeup();
        fx
    }

    /// Asks for an entry for `vu` at `now`. Idle entries are handed out
    /// oldest first; any found due for eviction on the way are removed and
    /// returned for closing. With no idle entry, a free slot is reserved;
    /// with neither, the caller queues (if `wait`) until `now + timeout`.
    pub fn acquire(
        &mut self,
        now: Instant,
        vu: VuId,
        wait: bool,
        timeout: Duration,
    ) -> (Acquire<T>, Effects<T>) {
        let mut fx = Effects::default();
        if self.closed {
            return (Acquire::Closed, self.done(fx));
        }
        // FIFO: nobody overtakes a queued waiter. (By the invariant a waiter
        // implies no idle entry and no free slot, so this is the same as
        // checking capacity; it is spelled out so the rule is visible.)
        if self.waiters.is_empty() {
            while let Some(e) = self.idle.pop_front() {
                let due = if self.planted(PlantedBug::StaleHandout) {
                    None
                } else {
                    self.deadlines.due(&e, now)
                };
                match due {
                    Some(reason) => fx.close(e.item, reason),
                    None => {
                        self.in_use += 1;
                        return (Acquire::Ready(e), self.done(fx));
                    }
                }
            }
            if self.free_slots() > 0 {
                let r = self.reserve();
                return (Acquire::Create(r), self.done(fx));
            }
        }
        if !wait {
            return (Acquire::Exhausted, self.done(fx));
        }
        let w = Waiter {
            id: WaiterId(self.next_id()),
            vu,
            since: now,
            deadline: now + timeout,
        };
        self.waiters.push_back(w);
        self.timeouts.insert((w.deadline, w.id));
        let position = self.waiters.len() - 1;
        let a = Acquire::Wait {
            waiter: w.id,
            position,
            deadline: w.deadline,
        };
        (a, self.done(fx))
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
        self.done(fx)
    }

    /// An entry comes back at `now` after use. Past its TTL, it is closed
    /// and its slot passed on; otherwise it goes straight to the head waiter,
    /// or to the back of the idle queue.
    pub fn release(&mut self, mut e: Entry<T>, now: Instant) -> Effects<T> {
        let mut fx = Effects::default();
        self.in_use = self.in_use.saturating_sub(1);
        e.last_used = now;
        if self.closed {
            fx.close(e.item, CloseReason::Shutdown);
        } else if self.deadlines.ttl_due(&e, now) {
            fx.close(e.item, CloseReason::Ttl);
            self.serve_waiters(&mut fx);
        } else if self.waiters.is_empty()
            || (self.planted(PlantedBug::LostWakeupThirdWaiter) && self.waiters.len() >= 3)
        {
            self.idle.push_back(e);
        } else {
            let w = self.pop_waiter().expect("checked non-empty");
            self.in_use += 1;
            self.granted(&mut fx, w, Grant::Session(e));
        }
        self.done(fx)
    }

    /// An entry in use is taken out of the pool for good (invalidated after
    /// a 404, or its lease dropped): it is to be closed with `reason`, and its
    /// slot goes to the head waiter.
    pub fn discard(&mut self, e: Entry<T>, reason: CloseReason) -> Effects<T> {
        let mut fx = Effects::default();
        self.in_use = self.in_use.saturating_sub(1);
        fx.close(e.item, reason);
        if !self.closed {
            self.serve_waiters(&mut fx);
        }
        self.done(fx)
    }

    /// Waiter `w`'s caller gave up (its acquire was cancelled) at `now`: it
    /// leaves whatever state it is in. A grant it had not taken yet is
    /// passed on as its release (at `now`) or freed slot would be.
    pub fn cancel_waiter(&mut self, w: WaiterId, now: Instant) -> Effects<T> {
        if let Some(i) = self.waiters.iter().position(|x| x.id == w) {
            let gone = self.waiters.remove(i).expect("in range");
            self.timeouts.remove(&(gone.deadline, gone.id));
            return self.done(Effects::default());
        }
        let Some(i) = self.ended.iter().position(|(x, _)| x.id == w) else {
            return self.done(Effects::default());
        };
        match self.ended.swap_remove(i).1 {
            WaitEnd::Granted(Grant::Session(e)) => self.release(e, now),
            WaitEnd::Granted(Grant::Slot(r)) => self.cancel_reservation(r),
            WaitEnd::TimedOut | WaitEnd::Closed => self.done(Effects::default()),
        }
    }

    /// Waiter `w`'s task takes how its wait ended; `None` while it is still
    /// queued (or if the core does not know it).
    pub fn take(&mut self, w: WaiterId) -> Option<WaitEnd<T>> {
        let i = self.ended.iter().position(|(x, _)| x.id == w)?;
        Some(self.ended.swap_remove(i).1)
    }

    /// Removes every idle entry due at `now` and returns them for closing;
    /// freed slots go to waiters.
    pub fn evict(&mut self, now: Instant) -> Effects<T> {
        let mut fx = Effects::default();
        let mut kept = VecDeque::with_capacity(self.idle.len());
        for e in self.idle.drain(..) {
            match self.deadlines.due(&e, now) {
                Some(reason) => fx.close(e.item, reason),
                None => kept.push_back(e),
            }
        }
        self.idle = kept;
        if !fx.closes.is_empty() {
            self.serve_waiters(&mut fx);
        }
        self.done(fx)
    }

    /// Ends the wait of every queued waiter whose deadline is due at `now`
    /// (a pool timeout), head first.
    pub fn expire_waiters(&mut self, now: Instant) -> Effects<T> {
        let mut fx = Effects::default();
        let late = self.planted(PlantedBug::OffByOneDeadline);
        let due = |d: Instant| d <= now && !(late && d == now);
        if self.planted(PlantedBug::GrantToDeparted) {
            let ended = &self.ended;
            let gone: Vec<Waiter> = self
                .waiters
                .iter()
                .filter(|w| due(w.deadline) && !ended.iter().any(|(x, _)| x.id == w.id))
                .copied()
                .collect();
            for w in gone {
                fx.timed_out.push(w.id);
                self.ended.push((w, WaitEnd::TimedOut));
            }
            return self.done(fx);
        }
        // Only the waiters whose deadline came leave, in queue order; with
        // one timeout for all (the usual case) they are a prefix of the
        // queue.
        let mut late_ids = BTreeSet::new();
        while let Some(&(d, id)) = self.timeouts.first() {
            if !due(d) {
                break;
            }
            self.timeouts.pop_first();
            late_ids.insert(id);
        }
        if late_ids.is_empty() {
            return self.done(fx);
        }
        let mut kept = VecDeque::with_capacity(self.waiters.len());
        for w in self.waiters.drain(..) {
            if late_ids.contains(&w.id) {
                fx.timed_out.push(w.id);
                self.ended.push((w, WaitEnd::TimedOut));
            } else {
                kept.push_back(w);
            }
        }
        self.waiters = kept;
        self.done(fx)
    }

    /// The earliest deadline of a queued waiter (the head's, when every
    /// acquire waits as long as the config says).
    pub fn next_waiter_deadline(&self) -> Option<Instant> {
        self.timeouts.first().map(|(d, _)| *d)
    }

    /// Takes the head waiter off the queue.
    fn pop_waiter(&mut self) -> Option<Waiter> {
        let w = self.waiters.pop_front()?;
        self.timeouts.remove(&(w.deadline, w.id));
        Some(w)
    }

    /// The earliest eviction deadline among idle entries.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.idle
            .iter()
            .filter_map(|e| self.deadlines.next(e))
            .min()
    }

    /// The earliest of [`PoolCore::next_deadline`] and
    /// [`PoolCore::next_waiter_deadline`]: when the deadline timer must run.
    pub fn next_wakeup(&self) -> Option<Instant> {
        match (self.next_deadline(), self.next_waiter_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Closes the pool: every queued waiter's wait ends (`closed_out`; its
    /// acquire fails with manager-closed, as does one that timed out and
    /// has not taken that yet) and every idle entry is returned for closing
    /// with reason `shutdown`. Entries in use are closed when they come
    /// back; reservations fail at commit; grants not yet taken stay with
    /// their waiters.
    pub fn close(&mut self) -> Effects<T> {
        let mut fx = Effects::default();
        self.closed = true;
        for (_, end) in &mut self.ended {
            if matches!(end, WaitEnd::TimedOut) {
                *end = WaitEnd::Closed;
            }
        }
        self.timeouts.clear();
        for w in self.waiters.drain(..) {
            fx.closed_out.push(w.id);
            self.ended.push((w, WaitEnd::Closed));
        }
        for e in self.idle.drain(..) {
            fx.close(e.item, CloseReason::Shutdown);
        }
        self.done(fx)
    }

    fn granted(&mut self, fx: &mut Effects<T>, w: Waiter, grant: Grant<T>) {
        fx.grants.push((w.id, w.vu));
        self.ended.push((w, WaitEnd::Granted(grant)));
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
            let w = self.pop_waiter().expect("checked non-empty");
            self.granted(fx, w, grant);
        }
    }

    /// Checks the invariant; `Err` says which part broke. For tests,
    /// exploration and debug assertions.
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
        let granted_sessions = self
            .ended
            .iter()
            .filter(|(_, e)| matches!(e, WaitEnd::Granted(Grant::Session(_))))
            .count();
        if granted_sessions > self.in_use {
            return Err(format!(
                "{granted_sessions} sessions granted but only {} in use",
                self.in_use
            ));
        }
        for (w, end) in &self.ended {
            if let WaitEnd::Granted(Grant::Slot(r)) = end {
                if !self.reserved.contains(r) {
                    return Err(format!("{:?} granted {r:?}, which is not reserved", w.id));
                }
            }
        }
        if self.timeouts.len() != self.waiters.len()
            || self
                .waiters
                .iter()
                .any(|w| !self.timeouts.contains(&(w.deadline, w.id)))
        {
            return Err("the deadline index does not match the waiter queue".into());
        }
        Ok(())
    }
}

/// The pool's decisions behind the one trait every mode implements; each
/// method is the inherent one of the same name (documented there), plus
/// the give-back rule and the reconnect debt.
impl<T> ModeCore<T> for PoolCore<T> {
    fn acquire(
        &mut self,
        now: Instant,
        vu: VuId,
        wait: bool,
        timeout: Duration,
    ) -> (Acquire<T>, Effects<T>) {
        PoolCore::acquire(self, now, vu, wait, timeout)
    }

    fn commit(&mut self, r: Reservation, item: T, now: Instant) -> Result<Entry<T>, T> {
        PoolCore::commit(self, r, item, now)
    }

    fn cancel_reservation(&mut self, r: Reservation) -> Effects<T> {
        PoolCore::cancel_reservation(self, r)
    }

    /// A release goes back to the pool (or to the head waiter); anything
    /// else is discarded with its reason, and an invalidated session is
    /// owed a replacement (a reconnect) unless the pool is closed.
    fn give_back(&mut self, _vu: VuId, entry: Entry<T>, how: Return, now: Instant) -> Effects<T> {
        match how {
            Return::Release => self.release(entry, now),
            Return::Invalidate | Return::Drop | Return::Closed => {
                if how == Return::Invalidate
                    && !self.closed
                    && !self.planted(PlantedBug::ForgottenReconnect)
                {
                    self.replace += 1;
                }
                self.discard(entry, how.close_reason())
            }
        }
    }

    fn take_wait_end(&mut self, w: WaiterId) -> Option<WaitEnd<T>> {
        self.take(w)
    }

    fn grant(&self, w: WaiterId) -> Option<&Grant<T>> {
        PoolCore::grant(self, w)
    }

    fn cancel_waiter(&mut self, w: WaiterId, now: Instant) -> Effects<T> {
        PoolCore::cancel_waiter(self, w, now)
    }

    fn expire_waiters(&mut self, now: Instant) -> Effects<T> {
        PoolCore::expire_waiters(self, now)
    }

    fn evict(&mut self, now: Instant) -> Effects<T> {
        PoolCore::evict(self, now)
    }

    fn next_wakeup(&self) -> Option<Instant> {
        PoolCore::next_wakeup(self)
    }

    fn close(&mut self) -> Effects<T> {
        PoolCore::close(self)
    }

    fn idle_count(&self) -> usize {
        self.idle.len()
    }

    fn bounded(&self) -> bool {
        true
    }

    fn take_replacement(&mut self, _vu: VuId) -> bool {
        let owed = self.replace > 0;
        self.replace = self.replace.saturating_sub(1);
        owed
    }

    fn check_invariants(&self) -> Result<(), String> {
        PoolCore::check_invariants(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(100);
    const VU: VuId = VuId(1);

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn pool(size: usize) -> PoolCore<u32> {
        PoolCore::new(size, Deadlines::default())
    }

    fn created(p: &mut PoolCore<u32>, item: u32, now: Instant) -> Entry<u32> {
        let (a, ev) = p.acquire(now, VU, true, T);
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
        let (w, _) = p.acquire(at(5), VU, true, T);
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
        assert_eq!(fx.grants, vec![(WaiterId(3), VU)]);
        assert!(matches!(p.grant(WaiterId(3)), Some(Grant::Session(e)) if e.item == 1));
        assert_eq!(p.waiter_state(WaiterId(3)), Some(WaiterState::Granted));
        assert_eq!(p.in_use(), 2);
        assert_eq!(p.idle().len(), 0);
        p.check_invariants().unwrap();
    }

    #[test]
    fn non_waiting_acquire_is_exhausted() {
        let mut p = pool(1);
        let _a = created(&mut p, 1, at(0));
        assert_eq!(p.acquire(at(0), VU, false, T).0, Acquire::Exhausted);
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
            .map(|_| match p.acquire(at(4), VU, true, T).0 {
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
            .map(|i| match p.acquire(at(i), VU, true, T).0 {
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
            let (got, _) = fx.grants[0];
            assert_eq!(got, *want);
            let Some(WaitEnd::Granted(Grant::Session(next))) = p.take(got) else {
                panic!("expected a session")
            };
            e = next;
        }
    }

    #[test]
    fn failed_create_passes_the_slot_to_the_head_waiter() {
        let mut p = pool(1);
        let (Acquire::Create(r), _) = p.acquire(at(0), VU, true, T) else {
            panic!()
        };
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(1), VU, true, T) else {
            panic!()
        };
        let fx = p.cancel_reservation(r);
        assert_eq!(fx.grants, vec![(waiter, VU)]);
        assert!(matches!(p.grant(waiter), Some(Grant::Slot(_))));
        assert_eq!(p.reserved(), 1);
        p.check_invariants().unwrap();
        // Cancelling an unknown reservation does nothing.
        assert!(p.cancel_reservation(r).is_empty());
    }

    #[test]
    fn discard_frees_the_slot_for_a_waiter() {
        let mut p = pool(1);
        let a = created(&mut p, 1, at(0));
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(1), VU, true, T) else {
            panic!()
        };
        let fx = p.discard(a, CloseReason::Invalidated);
        assert_eq!(fx.closed(), vec![(1, CloseReason::Invalidated)]);
        assert_eq!(fx.grants, vec![(waiter, VU)]);
        assert!(matches!(p.grant(waiter), Some(Grant::Slot(_))));
        p.check_invariants().unwrap();
    }

    #[test]
    fn cancelled_waiter_leaves_no_entry() {
        let mut p = pool(1);
        let a = created(&mut p, 1, at(0));
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(1), VU, true, T) else {
            panic!()
        };
        assert!(p.cancel_waiter(waiter, at(1)).is_empty());
        assert_eq!(p.waiter_state(waiter), None);
        assert!(p.cancel_waiter(waiter, at(1)).is_empty());
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
        assert_eq!(fx.closed(), vec![(1, CloseReason::Idle)]);
        assert_eq!(p.next_deadline(), None);
        // TTL: released at 900, due at 1000 (before its idle deadline 1100).
        let b = created(&mut p, 2, at(0));
        assert!(p.release(b, at(900)).is_empty());
        assert_eq!(p.next_deadline(), Some(at(1000)));
        // Found due during acquire: evicted and counted, a slot reserved.
        let (a, ev) = p.acquire(at(1000), VU, true, T);
        assert!(matches!(a, Acquire::Create(_)));
        assert_eq!(ev.closed(), vec![(2, CloseReason::Ttl)]);
    }

    #[test]
    fn in_use_past_ttl_is_closed_on_release_and_slot_passed_on() {
        let d = Deadlines {
            ttl: Some(Duration::from_millis(50)),
            max_idle: None,
        };
        let mut p = PoolCore::new(1, d);
        let a = created(&mut p, 1, at(0));
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(10), VU, true, T) else {
            panic!()
        };
        let fx = p.release(a, at(50));
        assert_eq!(fx.closed(), vec![(1, CloseReason::Ttl)]);
        assert_eq!(fx.grants, vec![(waiter, VU)]);
        assert!(matches!(
            p.take(waiter),
            Some(WaitEnd::Granted(Grant::Slot(_)))
        ));
    }

    #[test]
    fn close_drains_waiters_and_idle_and_refuses_acquire() {
        let mut p = pool(2);
        let a = created(&mut p, 1, at(0));
        let b = created(&mut p, 2, at(0));
        assert!(p.release(a, at(1)).is_empty());
        let c = created_or_ready(&mut p, at(2));
        assert_eq!(c.item, 1);
        let (Acquire::Wait { waiter, .. }, _) = p.acquire(at(3), VU, true, T) else {
            panic!("full pool must queue")
        };
        assert!(p.release(c, at(4)).grants.len() == 1);
        let (Acquire::Wait { waiter: w2, .. }, _) = p.acquire(at(5), VU, true, T) else {
            panic!("full pool must queue")
        };
        assert_ne!(waiter, w2);
        let fx = p.close();
        assert_eq!(fx.closed_out, vec![w2]);
        assert!(fx.closes.is_empty());
        assert_eq!(p.take(w2), Some(WaitEnd::Closed));
        // The grant made before the close stays with its waiter.
        assert!(matches!(p.take(waiter), Some(WaitEnd::Granted(_))));
        assert_eq!(p.acquire(at(6), VU, true, T).0, Acquire::Closed);
        // Entries in use come back to be closed on shutdown, slot not passed on.
        let fx = p.release(b, at(7));
        assert_eq!(fx.closed(), vec![(2, CloseReason::Shutdown)]);
        assert!(fx.grants.is_empty());
        p.check_invariants().unwrap();
    }

    #[test]
    fn waiters_expire_at_their_deadline_head_first() {
        let mut p = pool(1);
        let a = created(&mut p, 1, at(0));
        let w: Vec<WaiterId> = [0, 10, 20]
            .into_iter()
            .map(|t| match p.acquire(at(t), VU, true, T).0 {
                Acquire::Wait { waiter, .. } => waiter,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(p.next_waiter_deadline(), Some(at(100)));
        assert!(p.expire_waiters(at(99)).is_empty(), "1ms before");
        let fx = p.expire_waiters(at(110));
        assert_eq!(fx.timed_out, vec![w[0], w[1]], "at and after");
        assert_eq!(fx.next_deadline, Some(at(120)));
        assert_eq!(p.waiter_state(w[0]), Some(WaiterState::TimedOut));
        assert_eq!(p.next_waiter_deadline(), Some(at(120)));
        let fx = p.release(a, at(111));
        assert_eq!(fx.grants, vec![(w[2], VU)]);
        // A timeout not yet taken when the pool closes reads as the close.
        let _ = p.close();
        assert_eq!(p.take(w[0]), Some(WaitEnd::Closed));
        assert!(matches!(
            p.take(w[2]),
            Some(WaitEnd::Granted(Grant::Session(_)))
        ));
        p.check_invariants().unwrap();
    }

    fn created_or_ready(p: &mut PoolCore<u32>, now: Instant) -> Entry<u32> {
        match p.acquire(now, VU, true, T).0 {
            Acquire::Ready(e) => e,
            other => panic!("expected an idle entry, got {other:?}"),
        }
    }
}
