//! The decision logic of every mode, as one kind of pure state machine.
//!
//! Each mode's state — the pool's slots, idle queue and waiters
//! ([`PoolCore`](crate::pool_core::PoolCore)), reuse's and churn's per-VU
//! table ([`VuTable`](crate::cores::VuTable)), per_request's replacement
//! debts ([`PerRequestCore`](crate::cores::PerRequestCore)) — sits behind
//! one trait, [`ModeCore`]. Every method takes the time it happens at and
//! returns a decision and the [`Effects`] to carry out; none of them does
//! I/O, sleeps, reads a clock or calls back into the manager.
//!
//! The manager is the thin shell around it (in the style of quinn-proto
//! and rustls): under its lock it asks the core, then executes what the
//! core decided — creates a session in a reserved slot, hands an entry out
//! as a lease, closes what the core gave up, wakes the waiters the core
//! granted. Because the decisions are pure and own all of their state,
//! `mcp-sim explore` can run the very same code through every interleaving
//! of a small world, and property tests can drive it without a runtime.
//!
//! `T` is whatever the shell keeps per session: a session handle in the
//! library, a plain number in tests and in exploration.

use std::time::Duration;

use crate::clock::Instant;
use crate::eviction::Entry;
use crate::metrics::CloseReason;
use crate::observe::VuId;

/// A slot reserved for a session that is being created (in the modes
/// without a bound, a ticket for the creation under way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reservation(pub u64);

/// A queued acquire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaiterId(pub u64);

/// The outcome of [`ModeCore::acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acquire<T> {
    /// An idle entry, now in use.
    Ready(Entry<T>),
    /// Make a session: a slot (or ticket) is reserved for it; then
    /// [`ModeCore::commit`] or [`ModeCore::cancel_reservation`].
    Create(Reservation),
    /// No capacity: queued as this waiter until `deadline` (pool only).
    Wait {
        /// The waiter's id.
        waiter: WaiterId,
        /// Its place in the queue (0 = head).
        position: usize,
        /// When it times out.
        deadline: Instant,
    },
    /// The VU already holds its session (or is making it): one lease per
    /// VU at a time (reuse and churn).
    Busy,
    /// No capacity and the caller would not wait (pool only).
    Exhausted,
    /// The manager is closed.
    Closed,
}

/// What a waiter is given when capacity appears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant<T> {
    /// A session, already counted in use.
    Session(Entry<T>),
    /// A reserved slot: create a session in it.
    Slot(Reservation),
}

/// How a wait ended, as the waiter's task finds it
/// ([`ModeCore::take_wait_end`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitEnd<T> {
    /// Served: a session or a slot.
    Granted(Grant<T>),
    /// Its deadline came first (a pool timeout).
    TimedOut,
    /// The pool closed while it waited (or before its task took the
    /// timeout).
    Closed,
}

/// How a lease comes back ([`ModeCore::give_back`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Return {
    /// `Lease::release`: the session is fine.
    Release,
    /// `Lease::invalidate`: the server lost the session (404).
    Invalidate,
    /// The lease was dropped unreturned.
    Drop,
    /// Released, but the manager had closed the session under the lease
    /// (its shutdown): it is not kept.
    Closed,
}

impl Return {
    /// The close reason when the session is not kept.
    pub fn close_reason(self) -> CloseReason {
        match self {
            Return::Release => CloseReason::Released,
            Return::Invalidate => CloseReason::Invalidated,
            Return::Drop => CloseReason::Dropped,
            Return::Closed => CloseReason::Shutdown,
        }
    }
}

/// A session the core gave up: close it, for `reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close<T> {
    /// The session.
    pub item: T,
    /// Why it is closed.
    pub reason: CloseReason,
    /// The VU whose session it was, when the core names one (reuse and
    /// churn keep each idle session for its VU). `None`: the shell
    /// attributes it — to the VU whose lease came back or whose acquire
    /// was cancelled, and to nobody when a pooled session is found due at
    /// an acquire or by the deadline timer.
    pub vu: Option<VuId>,
}

/// What one call of a core asks the shell to carry out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effects<T> {
    /// Sessions given up, to be closed (carried out first).
    pub closes: Vec<Close<T>>,
    /// Waiters granted a session or a slot, in grant order, with their VU:
    /// wake them (the grant waits for them in the core, see
    /// [`ModeCore::take_wait_end`]).
    pub grants: Vec<(WaiterId, VuId)>,
    /// Waiters whose deadline came, head first: wake them.
    pub timed_out: Vec<WaiterId>,
    /// Queued waiters dropped by [`ModeCore::close`], head first: wake them.
    pub closed_out: Vec<WaiterId>,
    /// After the call: the earliest deadline the deadline timer must wake for (an
    /// idle entry's eviction or the head waiter's timeout).
    pub next_deadline: Option<Instant>,
}

impl<T> Default for Effects<T> {
    fn default() -> Self {
        Effects {
            closes: Vec::new(),
            grants: Vec::new(),
            timed_out: Vec::new(),
            closed_out: Vec::new(),
            next_deadline: None,
        }
    }
}

impl<T> Effects<T> {
    /// Nothing to carry out (the next deadline aside).
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
            && self.closes.is_empty()
            && self.timed_out.is_empty()
            && self.closed_out.is_empty()
    }

    /// Asks for `item` to be closed for `reason` (for nobody in particular).
    pub fn close(&mut self, item: T, reason: CloseReason) {
        self.closes.push(Close {
            item,
            reason,
            vu: None,
        });
    }

    /// The closes as `(item, reason)` pairs, in order (for tests).
    pub fn closed(&self) -> Vec<(T, CloseReason)>
    where
        T: Clone,
    {
        self.closes
            .iter()
            .map(|c| (c.item.clone(), c.reason))
            .collect()
    }
}

/// One mode's decisions, pure: the manager asks, then carries out the
/// answer. Every method that changes state returns what to carry out.
///
/// The protocol, for one acquire: [`ModeCore::acquire`] answers `Ready`
/// (hand the entry out), `Create(r)` (make a session, then
/// [`ModeCore::commit`] it, or [`ModeCore::cancel_reservation`] if making
/// it failed or the acquire was dropped), `Wait` (park until
/// [`ModeCore::take_wait_end`] has an answer, or
/// [`ModeCore::cancel_waiter`] if the acquire is dropped), or an error.
/// Every lease comes back through [`ModeCore::give_back`]. The deadline timer
/// calls [`ModeCore::expire_waiters`] then [`ModeCore::evict`] at the
/// deadline [`ModeCore::next_wakeup`] names. [`ModeCore::close`] shuts
/// the core; the manager closes every live session itself.
pub trait ModeCore<T> {
    /// Asks for an entry for `vu` at `now`; a pool queues the caller if
    /// `wait`, until `now + timeout`. Sessions found expired or spent on
    /// the way come back in the effects, to be closed.
    fn acquire(
        &mut self,
        now: Instant,
        vu: VuId,
        wait: bool,
        timeout: Duration,
    ) -> (Acquire<T>, Effects<T>);

    /// The session for reservation `r` was made at `now`: it is now in
    /// use. If the core was closed meanwhile, the item comes back as `Err`,
    /// to be closed.
    fn commit(&mut self, r: Reservation, item: T, now: Instant) -> Result<Entry<T>, T>;

    /// Making the session for reservation `r` failed or was abandoned.
    fn cancel_reservation(&mut self, r: Reservation) -> Effects<T>;

    /// `vu`'s lease comes back at `now`, as `how` says.
    fn give_back(&mut self, vu: VuId, entry: Entry<T>, how: Return, now: Instant) -> Effects<T>;

    /// Waiter `w`'s task takes how its wait ended; `None` while it waits.
    /// (Only a pool queues: the other modes never answer `Wait`.)
    fn take_wait_end(&mut self, w: WaiterId) -> Option<WaitEnd<T>> {
        let _ = w;
        None
    }

    /// What waiter `w` was granted, while its task has not taken it.
    fn grant(&self, w: WaiterId) -> Option<&Grant<T>> {
        let _ = w;
        None
    }

    /// Waiter `w`'s acquire was dropped at `now`: it leaves, and a grant it
    /// had not taken is passed on.
    fn cancel_waiter(&mut self, w: WaiterId, now: Instant) -> Effects<T> {
        let _ = (w, now);
        Effects::default()
    }

    /// Ends the wait of every waiter whose deadline is due at `now` (a pool
    /// timeout). Run by the deadline timer before [`ModeCore::evict`].
    fn expire_waiters(&mut self, now: Instant) -> Effects<T> {
        let _ = now;
        Effects::default()
    }

    /// Gives up every idle session due (TTL or idle limit) at `now`.
    fn evict(&mut self, now: Instant) -> Effects<T>;

    /// The earliest deadline the deadline timer must wake for (an idle session's
    /// eviction or the head waiter's timeout).
    fn next_wakeup(&self) -> Option<Instant>;

    /// Shuts the core: later acquires answer `Closed`, queued waiters are
    /// dropped (`closed_out`). Idle sessions are forgotten: they are in the
    /// manager's registry, which closes them in creation order.
    fn close(&mut self) -> Effects<T>;

    /// Sessions kept idle.
    fn idle_count(&self) -> usize;

    /// Whether creations are bounded by capacity slots (pool mode): the
    /// shell then reports each reservation and its release
    /// (`slot_reserved`, `slot_freed`).
    fn bounded(&self) -> bool {
        false
    }

    /// Whether a session made now for `vu` replaces one invalidated after
    /// a 404 — a reconnect — and if so consumes that debt.
    fn take_replacement(&mut self, vu: VuId) -> bool;

    /// Checks the core's invariant; `Err` says which part broke.
    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }
}
