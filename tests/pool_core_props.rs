//! Property test of the sans-IO pool core, [`PoolCore`].
//!
//! Random sequences of operations (acquire with and without waiting, a
//! create that succeeds or fails, release, invalidate/drop, a waiter that is
//! woken, cancelled or timed out, time passing, eviction, shutdown) drive a
//! `PoolCore<u64>`. The core owns the waiter queue and every waiter's state
//! (queued, granted, timed out, closed out), and the manager's shell
//! (`src/modes/mod.rs`) keeps only wakers; so the calls made here are the
//! shell's own calls, one for one: `acquire`, `commit`,
//! `cancel_reservation`, `release` and `discard` (behind
//! `ModeCore::give_back`), `take` (a woken task), `cancel_waiter` (the
//! `AcquireGuard` cancel guard), `expire_waiters` and
//! `evict` (the evictor), `close`. What the test holds besides the core is
//! what the VU tasks hold (leases, reservations being created) and a small
//! reference model, written here from the documented semantics, that
//! predicts every decision of the core. After every step the test checks
//! that the core agrees with the model and that the laws of
//! `reference/semantics.md` hold:
//!
//! * `check_invariants()` is Ok;
//! * in use + idle + reserved <= size, and each count matches the model;
//! * an item has at most one holder (idle, one lease, or one waiter's grant);
//! * an item that was closed is never handed out again, and is closed once,
//!   with exactly one reason;
//! * no waiter is queued while an idle entry or a free slot exists;
//! * grants go to waiters in arrival order;
//! * eviction closes an entry at or after its deadline, never before, and
//!   leaves no due entry idle (TTL wins when both deadlines passed);
//! * after `close()`: acquire returns `Closed`, no grants, no idle entries,
//!   no waiters.
//!
//! Deterministic regressions for specific races are at the bottom.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use mcp_session::cores::{
    Acquire, Deadlines, Effects, Entry, Grant, PoolCore, Reservation, WaitEnd, WaiterId,
    WaiterState,
};
use mcp_session::{CloseReason, Instant, VuId};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

type Check = Result<(), TestCaseError>;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// Pool size, eviction limits and acquire timeout, all in milliseconds.
#[derive(Clone, Copy, Debug)]
struct Params {
    size: usize,
    ttl: Option<u64>,
    max_idle: Option<u64>,
    timeout: u64,
}

impl Params {
    fn deadlines(&self) -> Deadlines {
        Deadlines {
            ttl: self.ttl.map(Duration::from_millis),
            max_idle: self.max_idle.map(Duration::from_millis),
        }
    }
}

/// Chooses one of `len > 0` things that exist at that moment.
trait Pick: Copy + std::fmt::Debug {
    fn pick(&self, len: usize) -> usize;
}

/// Generated steps pick with proptest's `Index` (shrinks towards the first).
impl Pick for Index {
    fn pick(&self, len: usize) -> usize {
        self.index(len)
    }
}

/// Hand-written scripts pick by position (clamped to the last).
impl Pick for usize {
    fn pick(&self, len: usize) -> usize {
        (*self).min(len - 1)
    }
}

/// One event the shell could see. Indices pick among the things that exist
/// at that moment; a step with nothing to apply to is skipped.
#[derive(Clone, Debug)]
enum Step<I: Pick = Index> {
    /// A VU acquires, willing to wait or not; with `limit`, waiting at most
    /// that long (a per-call limit, `Manager::acquire_within`; the shell
    /// passes the shorter of it and the config's timeout).
    Acquire { wait: bool, limit: Option<u64> },
    /// A create in a reserved slot succeeded.
    Commit(I),
    /// A create failed, or the acquire was cancelled while creating.
    FailCreate(I),
    /// A lease is released.
    Release(I),
    /// A lease is invalidated or dropped.
    Discard(I, CloseReason),
    /// A waiter whose wait ended (granted, timed out, closed out) is woken
    /// and takes the outcome.
    Wake(I),
    /// A waiting acquire future is dropped (queued, or ended and not woken).
    CancelWaiter(I),
    /// The evictor expires the waiters whose deadline has come.
    Expire,
    /// Time passes.
    Advance(u64),
    /// The evictor runs.
    Evict,
    /// The manager closes.
    Close,
}

fn params() -> impl Strategy<Value = Params> {
    (
        1usize..=4,
        prop::option::of(1u64..=40),
        prop::option::of(1u64..=20),
        1u64..=30,
    )
        .prop_map(|(size, ttl, max_idle, timeout)| Params {
            size,
            ttl,
            max_idle,
            timeout,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        14 => (
            prop_oneof![2 => Just(true), 1 => Just(false)],
            prop::option::weighted(0.3, 0u64..=30),
        )
            .prop_map(|(wait, limit)| Step::Acquire { wait, limit }),
        10 => any::<Index>().prop_map(Step::Commit),
        2 => any::<Index>().prop_map(Step::FailCreate),
        10 => any::<Index>().prop_map(Step::Release),
        4 => (
            any::<Index>(),
            prop_oneof![Just(CloseReason::Invalidated), Just(CloseReason::Dropped)],
        )
            .prop_map(|(i, r)| Step::Discard(i, r)),
        6 => any::<Index>().prop_map(Step::Wake),
        3 => any::<Index>().prop_map(Step::CancelWaiter),
        6 => Just(Step::Expire),
        12 => (0u64..=30).prop_map(Step::Advance),
        6 => Just(Step::Evict),
        1 => Just(Step::Close),
    ]
}

// ---------------------------------------------------------------------------
// Reference model
// ---------------------------------------------------------------------------

/// An item with the times eviction looks at, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Item {
    id: u64,
    created: u64,
    last_used: u64,
}

fn item_of(e: &Entry<u64>) -> Item {
    Item {
        id: e.item,
        created: e.created_at.as_millis(),
        last_used: e.last_used.as_millis(),
    }
}

/// A waiter as the model knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Waiter {
    id: WaiterId,
    vu: VuId,
    since: u64,
    deadline: u64,
}

/// A grant reduced to what the model predicts (reservation ids are the
/// core's to choose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum G {
    Session(u64),
    Slot,
    /// An effect names a grant the core does not hold.
    Missing,
}

/// `Effects` reduced to what the model predicts.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fx {
    grants: Vec<(WaiterId, G)>,
    closes: Vec<(u64, CloseReason)>,
}

/// `fx` reduced to what the model predicts; the grants it names are read
/// from the core, where they wait for their waiters.
fn shape(core: &PoolCore<u64>, fx: &Effects<u64>) -> Fx {
    Fx {
        grants: fx
            .grants
            .iter()
            .map(|(w, _)| {
                let g = match core.grant(*w) {
                    Some(Grant::Session(e)) => G::Session(e.item),
                    Some(Grant::Slot(_)) => G::Slot,
                    None => G::Missing,
                };
                (*w, g)
            })
            .collect(),
        closes: fx.closed(),
    }
}

/// An acquire outcome reduced to what the model predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum A {
    Ready(Item),
    Create,
    Wait {
        position: usize,
        deadline: u64,
    },
    Exhausted,
    Closed,
    /// Never from a pool (the VU rule is reuse's and churn's).
    Busy,
}

/// An id the core issues (`what`) must be new: `issued` holds every one
/// issued so far.
fn check_fresh<T: Ord + Copy + std::fmt::Debug>(
    ctx: &str,
    issued: &mut BTreeSet<T>,
    id: T,
    what: &str,
) -> Check {
    prop_assert!(issued.insert(id), "{ctx}: {what} {id:?} issued twice");
    Ok(())
}

/// One call of the core (the shell's), at the step's time.
trait CoreCall: FnOnce(&mut PoolCore<u64>, Instant) -> Effects<u64> {}

impl<F: FnOnce(&mut PoolCore<u64>, Instant) -> Effects<u64>> CoreCall for F {}

/// Takes the `i`-th of `v` (as the step picks it) out, if `v` has any.
fn pick_out<T>(v: &mut Vec<T>, i: &impl Pick) -> Option<T> {
    (!v.is_empty()).then(|| v.remove(i.pick(v.len())))
}

/// The core under test, the shell's holdings, and the reference model of
/// the idle queue.
struct Harness {
    p: Params,
    core: PoolCore<u64>,
    now: u64,
    step_no: usize,
    /// Whether the manager closed (model).
    closed: bool,
    /// Idle entries, oldest released first (model).
    idle: VecDeque<Item>,
    /// Leases handed out to VUs.
    held: Vec<Entry<u64>>,
    /// Reservations whose session is being created.
    creating: Vec<Reservation>,
    /// Queued waiters, in arrival order (model).
    queued: VecDeque<Waiter>,
    /// Waiters granted a session (its entry) or a slot who have not woken
    /// yet (model).
    mailbox: Vec<(Waiter, Option<Item>)>,
    /// Waiters timed out or closed out who have not woken yet (model).
    ended: Vec<(Waiter, WaiterState)>,
    next_vu: u64,
    /// The next deadline the last effects named, to check at the step's end.
    fx_deadline: Option<Option<u64>>,
    /// An entry being given back to the core in the current step.
    returning: Option<Item>,
    /// Every item closed so far, with its one reason.
    closed_items: BTreeMap<u64, CloseReason>,
    /// Where the core's decisions in this step differed from the model's
    /// predictions; reported after the laws are checked, so a broken law is
    /// named by its own assertion first.
    mismatches: Vec<String>,
    /// Every waiter id and reservation the core ever issued.
    waiter_ids: BTreeSet<WaiterId>,
    reservation_ids: BTreeSet<Reservation>,
    next_item: u64,
}

impl Harness {
    fn new(p: Params) -> Self {
        Harness {
            p,
            core: PoolCore::new(p.size, p.deadlines()),
            now: 0,
            step_no: 0,
            closed: false,
            idle: VecDeque::new(),
            held: Vec::new(),
            creating: Vec::new(),
            queued: VecDeque::new(),
            mailbox: Vec::new(),
            ended: Vec::new(),
            next_vu: 0,
            fx_deadline: None,
            returning: None,
            closed_items: BTreeMap::new(),
            mismatches: Vec::new(),
            waiter_ids: BTreeSet::new(),
            reservation_ids: BTreeSet::new(),
            next_item: 0,
        }
    }

    fn ctx(&self) -> String {
        format!("step {} at t={}ms", self.step_no, self.now)
    }

    /// The wait an acquire gets: the config's timeout, or a shorter
    /// per-call limit.
    fn timeout_ms(&self, limit: Option<u64>) -> u64 {
        limit.map_or(self.p.timeout, |l| l.min(self.p.timeout))
    }

    // --- model ------------------------------------------------------------

    /// Why an idle item is due at `now`, by the model's own arithmetic:
    /// due when `now >= deadline`; TTL wins over idle.
    fn due(&self, it: &Item) -> Option<CloseReason> {
        if self.p.ttl.is_some_and(|t| self.now >= it.created + t) {
            Some(CloseReason::Ttl)
        } else if self
            .p
            .max_idle
            .is_some_and(|m| self.now >= it.last_used + m)
        {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }

    fn ttl_due(&self, it: &Item) -> bool {
        self.p.ttl.is_some_and(|t| self.now >= it.created + t)
    }

    /// Slots taken by everything but idle entries: leases, reservations,
    /// and grants sitting in a waiter's channel.
    fn busy(&self) -> usize {
        self.held.len() + self.creating.len() + self.mailbox.len()
    }

    fn model_in_use(&self) -> usize {
        self.held.len() + self.mailbox.iter().filter(|(_, g)| g.is_some()).count()
    }

    fn model_reserved(&self) -> usize {
        self.creating.len() + self.mailbox.iter().filter(|(_, g)| g.is_none()).count()
    }

    fn model_free(&self, idle_len: usize) -> usize {
        self.p.size.saturating_sub(self.busy() + idle_len)
    }

    /// Capacity goes to queued waiters head first: idle entries, then free
    /// slots.
    fn predict_serve(&self, mut idle: VecDeque<Item>, mut free: usize, out: &mut Fx) {
        for w in &self.queued {
            if let Some(it) = idle.pop_front() {
                out.grants.push((w.id, G::Session(it.id)));
            } else if free > 0 {
                free -= 1;
                out.grants.push((w.id, G::Slot));
            } else {
                break;
            }
        }
    }

    fn predict_acquire(&self, wait: bool, timeout: u64) -> (A, Vec<(u64, CloseReason)>) {
        let mut evicted = Vec::new();
        if self.closed {
            return (A::Closed, evicted);
        }
        if self.queued.is_empty() {
            for it in &self.idle {
                match self.due(it) {
                    Some(r) => evicted.push((it.id, r)),
                    None => return (A::Ready(*it), evicted),
                }
            }
            if self.model_free(0) > 0 {
                return (A::Create, evicted);
            }
        }
        if !wait {
            return (A::Exhausted, evicted);
        }
        (
            A::Wait {
                position: self.queued.len(),
                deadline: self.now + timeout,
            },
            evicted,
        )
    }

    /// `it` (already taken off its holder) comes back.
    fn predict_release(&self, it: &Item) -> Fx {
        let mut fx = Fx::default();
        if self.closed {
            fx.closes.push((it.id, CloseReason::Shutdown));
        } else if self.ttl_due(it) {
            fx.closes.push((it.id, CloseReason::Ttl));
            self.predict_serve(self.idle.clone(), self.model_free(self.idle.len()), &mut fx);
        } else if let Some(w) = self.queued.front() {
            fx.grants.push((w.id, G::Session(it.id)));
        }
        fx
    }

    /// A slot was freed (its holder already removed).
    fn predict_freed_slot(&self) -> Fx {
        let mut fx = Fx::default();
        self.predict_serve(self.idle.clone(), self.model_free(self.idle.len()), &mut fx);
        fx
    }

    fn predict_discard(&self, id: u64, reason: CloseReason) -> Fx {
        let mut fx = Fx::default();
        fx.closes.push((id, reason));
        if !self.closed {
            self.predict_serve(self.idle.clone(), self.model_free(self.idle.len()), &mut fx);
        }
        fx
    }

    fn predict_evict(&self) -> Fx {
        let mut fx = Fx::default();
        let mut kept = VecDeque::new();
        for it in &self.idle {
            match self.due(it) {
                Some(r) => fx.closes.push((it.id, r)),
                None => kept.push_back(*it),
            }
        }
        if !fx.closes.is_empty() {
            let free = self.model_free(kept.len());
            self.predict_serve(kept, free, &mut fx);
        }
        fx
    }

    fn model_next_deadline(&self) -> Option<u64> {
        self.idle
            .iter()
            .filter_map(|it| {
                let t = self.p.ttl.map(|t| it.created + t);
                let i = self.p.max_idle.map(|m| it.last_used + m);
                match (t, i) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }

    /// Notes a decision of the core that differs from the model's.
    fn expect_model<V: PartialEq + std::fmt::Debug>(&mut self, what: &str, core: V, model: V) {
        if core != model {
            let ctx = self.ctx();
            self.mismatches.push(format!(
                "{ctx}: {what} differs from the model:\n   core: {core:?}\n  model: {model:?}"
            ));
        }
    }

    // --- bookkeeping laws ---------------------------------------------------

    /// An item is about to get a new holder (lease or grant). It must be
    /// open and held by nobody else.
    fn check_handout(&self, id: u64) -> Check {
        let ctx = self.ctx();
        prop_assert!(
            !self.closed_items.contains_key(&id),
            "{ctx}: item {id} handed out after it was closed ({:?})",
            self.closed_items[&id]
        );
        prop_assert!(
            !self.held.iter().any(|e| e.item == id),
            "{ctx}: item {id} handed out twice: already leased"
        );
        prop_assert!(
            !self
                .mailbox
                .iter()
                .any(|(_, g)| g.is_some_and(|it| it.id == id)),
            "{ctx}: item {id} handed out twice: already granted to a waiter"
        );
        prop_assert!(
            !self.idle.iter().any(|it| it.id == id),
            "{ctx}: item {id} handed out while also idle"
        );
        Ok(())
    }

    fn check_fresh_waiter(&mut self, w: WaiterId) -> Check {
        check_fresh(&self.ctx(), &mut self.waiter_ids, w, "waiter id")
    }

    fn check_fresh_reservation(&mut self, r: Reservation) -> Check {
        check_fresh(&self.ctx(), &mut self.reservation_ids, r, "reservation")
    }

    /// `it` is closed for `reason`: once, with one reason, and for an
    /// eviction reason only at or after the deadline.
    fn record_close(&mut self, it: Item, reason: CloseReason) -> Check {
        let ctx = self.ctx();
        let now = self.now;
        if let Some(first) = self.closed_items.get(&it.id) {
            prop_assert!(
                false,
                "{ctx}: item {} closed twice: {first:?} then {reason:?}",
                it.id
            );
        }
        match reason {
            CloseReason::Ttl => {
                let deadline = self.p.ttl.map(|t| it.created + t);
                prop_assert!(
                    deadline.is_some_and(|d| now >= d),
                    "{ctx}: item {} closed for TTL before its TTL deadline {deadline:?} ({it:?})",
                    it.id
                );
            }
            CloseReason::Idle => {
                let deadline = self.p.max_idle.map(|m| it.last_used + m);
                prop_assert!(
                    deadline.is_some_and(|d| now >= d),
                    "{ctx}: item {} closed as idle before its idle deadline {deadline:?} ({it:?})",
                    it.id
                );
                prop_assert!(
                    !self.ttl_due(&it),
                    "{ctx}: item {} closed as idle though its TTL had passed (TTL wins)",
                    it.id
                );
            }
            _ => {}
        }
        self.closed_items.insert(it.id, reason);
        Ok(())
    }

    /// Follows `fx` as the shell's `apply` carries it out: closes are
    /// begun, each granted waiter is woken (its grant waits in the core
    /// until its task takes it). A grant to a waiter that is not at the
    /// head of the queue is a broken law and fails the test.
    fn deliver(&mut self, fx: Effects<u64>) -> Check {
        let ctx = self.ctx();
        if self.closed {
            prop_assert!(
                fx.grants.is_empty(),
                "{ctx}: grants after close(): {:?}",
                shape(&self.core, &fx).grants
            );
        }
        // Checked against the model once the step has settled.
        self.fx_deadline = Some(fx.next_deadline.map(Instant::as_millis));
        for (id, reason) in fx.closed() {
            let Some(it) = self.take_returning_or_idle(id) else {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: close of item {id} ({reason:?}) that is neither idle nor being given back"
                )));
            };
            self.record_close(it, reason)?;
        }
        for (w, vu) in fx.grants {
            let pos = self.queued.iter().position(|q| q.id == w);
            prop_assert!(
                pos.is_some(),
                "{ctx}: grant to waiter {w:?}, which is not queued"
            );
            let head = self.queued.front().map(|q| q.id);
            prop_assert_eq!(
                pos,
                Some(0),
                "{}: FIFO: grant to {:?}, but the oldest queued waiter is {:?}",
                ctx,
                w,
                head
            );
            let waiter = self.queued.pop_front().expect("checked");
            prop_assert_eq!(vu, waiter.vu, "{}: grant names another VU", ctx);
            prop_assert_eq!(
                self.core.waiter_state(w),
                Some(WaiterState::Granted),
                "{}: granted waiter's state",
                ctx
            );
            let Some(grant) = self.core.grant(w).cloned() else {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: grant to {w:?} that the core does not hold"
                )));
            };
            let mut model = None;
            match &grant {
                Grant::Session(e) => {
                    let given = item_of(e);
                    let source = self.take_returning_or_idle(e.item);
                    prop_assert!(
                        source.is_some(),
                        "{ctx}: granted item {} was neither idle nor being given back",
                        e.item
                    );
                    prop_assert_eq!(
                        source,
                        Some(given),
                        "{}: granted entry's times differ from the model",
                        ctx
                    );
                    self.check_handout(e.item)?;
                    model = source;
                }
                Grant::Slot(r) => self.check_fresh_reservation(*r)?,
            }
            self.mailbox.push((waiter, model));
        }
        Ok(())
    }

    /// Item `id`, taken from where an effect may find it: the entry being
    /// given back, or the idle queue.
    fn take_returning_or_idle(&mut self, id: u64) -> Option<Item> {
        if self.returning.is_some_and(|it| it.id == id) {
            return self.returning.take();
        }
        let i = self.idle.iter().position(|it| it.id == id)?;
        self.idle.remove(i)
    }

    /// Makes one call of the core (`call`, at `now`), notes where its
    /// effects (`what`) differ from the model's `want`, and carries them
    /// out.
    fn apply(&mut self, what: &str, want: Fx, call: impl CoreCall) -> Check {
        let fx = call(&mut self.core, at(self.now));
        self.expect_model(what, shape(&self.core, &fx), want);
        self.deliver(fx)
    }

    /// After a give-back, an entry neither closed nor granted went idle.
    fn settle_returning(&mut self) {
        if let Some(it) = self.returning.take() {
            self.idle.push_back(it);
        }
    }

    /// Gives entry `it`, last used now, back to the core through `call`
    /// (a release, or the cancel of a waiter granted it): closed, granted
    /// or idle as the model predicts.
    fn give_back(&mut self, mut it: Item, what: &str, call: impl CoreCall) -> Check {
        it.last_used = self.now;
        let want = self.predict_release(&it);
        self.returning = Some(it);
        self.apply(what, want, call)?;
        self.settle_returning();
        Ok(())
    }

    /// Frees a slot through `call` (a failed create, or the cancel of a
    /// waiter granted a slot): the head waiters may get it.
    fn free_slot(&mut self, what: &str, call: impl CoreCall) -> Check {
        let want = self.predict_freed_slot();
        self.apply(what, want, call)
    }

    /// Gives a lease back to the core (release).
    fn release(&mut self, e: Entry<u64>) -> Check {
        let what = "release's effects";
        self.give_back(item_of(&e), what, |core, now| core.release(e, now))
    }

    /// Frees a reservation (failed create, or a granted slot handed back).
    fn cancel_reservation(&mut self, r: Reservation) -> Check {
        let what = "cancel_reservation's effects";
        self.free_slot(what, |core, _| core.cancel_reservation(r))
    }

    /// The grant waiting for waiter `w`, taken from the model's mailbox:
    /// a session's entry, or `None` for a slot.
    fn take_granted(&mut self, w: Waiter, why: &str) -> Option<Item> {
        let i = self
            .mailbox
            .iter()
            .position(|(q, _)| q.id == w.id)
            .expect(why);
        self.mailbox.remove(i).1
    }

    /// Every waiter whose task is still waiting: queued ones, then those
    /// whose wait ended (granted, then timed out or closed out).
    fn all_waiters(&self) -> Vec<Waiter> {
        self.queued
            .iter()
            .copied()
            .chain(self.mailbox.iter().map(|(w, _)| *w))
            .chain(self.ended.iter().map(|(w, _)| *w))
            .collect()
    }

    /// The acquire of waiter `w` is dropped: the `PoolAcquire` cancel guard
    /// calls `cancel_waiter`, and the core passes on a grant not yet taken.
    fn cancel_waiter(&mut self, w: Waiter) -> Check {
        let cancel = |core: &mut PoolCore<u64>, now| core.cancel_waiter(w.id, now);
        if let Some(i) = self.queued.iter().position(|q| q.id == w.id) {
            self.queued.remove(i);
            return self.apply("cancel_waiter (queued)'s effects", Fx::default(), cancel);
        }
        if let Some(i) = self.ended.iter().position(|(q, _)| q.id == w.id) {
            self.ended.remove(i);
            return self.apply("cancel_waiter (ended)'s effects", Fx::default(), cancel);
        }
        match self.take_granted(w, "a known waiter") {
            // Passed on as its release at `now`.
            Some(it) => self.give_back(it, "cancel_waiter (granted a session)'s effects", cancel),
            None => self.free_slot("cancel_waiter (granted a slot)'s effects", cancel),
        }
    }

    /// Waiter `w`'s task wakes and takes how its wait ended.
    fn wake(&mut self, w: Waiter) -> Check {
        let ctx = self.ctx();
        let end = self.core.take(w.id);
        if let Some(i) = self.ended.iter().position(|(q, _)| q.id == w.id) {
            let (_, state) = self.ended.remove(i);
            let want = match state {
                WaiterState::TimedOut => Some(WaitEnd::TimedOut),
                _ => Some(WaitEnd::Closed),
            };
            prop_assert_eq!(end, want, "{}: {:?} woke to another end", ctx, w.id);
            return Ok(());
        }
        let granted = self.take_granted(w, "a waiter whose wait ended");
        match (end, granted) {
            (Some(WaitEnd::Granted(Grant::Session(e))), Some(it)) if item_of(&e) == it => {
                self.held.push(e)
            }
            (Some(WaitEnd::Granted(Grant::Slot(r))), None) => self.creating.push(r),
            (end, granted) => {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: {:?} took {end:?}, the model granted {granted:?}",
                    w.id
                )))
            }
        }
        Ok(())
    }

    // --- steps --------------------------------------------------------------

    fn step<I: Pick>(&mut self, s: &Step<I>) -> Check {
        self.step_no += 1;
        match s {
            Step::Acquire { wait, limit } => self.acquire(*wait, *limit)?,
            Step::Commit(i) => {
                if let Some(r) = pick_out(&mut self.creating, i) {
                    self.commit(r)?;
                }
            }
            Step::FailCreate(i) => {
                if let Some(r) = pick_out(&mut self.creating, i) {
                    self.cancel_reservation(r)?;
                }
            }
            Step::Release(i) => {
                if let Some(e) = pick_out(&mut self.held, i) {
                    self.release(e)?;
                }
            }
            Step::Discard(i, reason) => {
                if let Some(e) = pick_out(&mut self.held, i) {
                    let mut it = item_of(&e);
                    it.last_used = self.now;
                    let want = self.predict_discard(it.id, *reason);
                    self.returning = Some(it);
                    let discard = |core: &mut PoolCore<u64>, _| core.discard(e, *reason);
                    self.apply("discard's effects", want, discard)?;
                    let ctx = self.ctx();
                    prop_assert!(
                        self.returning.take().is_none(),
                        "{ctx}: discarded item was not closed"
                    );
                }
            }
            Step::Wake(i) => {
                let woken: Vec<Waiter> = self
                    .mailbox
                    .iter()
                    .map(|(w, _)| *w)
                    .chain(self.ended.iter().map(|(w, _)| *w))
                    .collect();
                if !woken.is_empty() {
                    self.wake(woken[i.pick(woken.len())])?;
                }
            }
            Step::CancelWaiter(i) => {
                let all = self.all_waiters();
                if !all.is_empty() {
                    self.cancel_waiter(all[i.pick(all.len())])?;
                }
            }
            Step::Expire => {
                // Every waiter whose own deadline came, in queue order
                // (with per-call limits, not only a prefix of the queue).
                let mut want = Vec::new();
                let now = self.now;
                let (late, kept): (VecDeque<Waiter>, VecDeque<Waiter>) =
                    self.queued.drain(..).partition(|w| w.deadline <= now);
                self.queued = kept;
                for w in late {
                    want.push(w.id);
                    self.ended.push((w, WaiterState::TimedOut));
                }
                let fx = self.core.expire_waiters(at(self.now));
                let ctx = self.ctx();
                prop_assert_eq!(
                    &fx.timed_out,
                    &want,
                    "{}: expire_waiters must end the due waiters, head first",
                    ctx
                );
                self.deliver(fx)?;
            }
            Step::Advance(ms) => self.now += ms,
            Step::Evict => {
                let want = self.predict_evict();
                self.apply("evict's effects", want, |core, now| core.evict(now))?;
                let ctx = self.ctx();
                let left: Vec<Item> = self
                    .idle
                    .iter()
                    .filter(|it| self.due(it).is_some())
                    .copied()
                    .collect();
                prop_assert!(
                    left.is_empty(),
                    "{ctx}: evict(now) left due entries idle: {left:?}"
                );
            }
            Step::Close => {
                let fx = self.core.close();
                let ctx = self.ctx();
                let want_w: Vec<WaiterId> = self.queued.iter().map(|w| w.id).collect();
                prop_assert_eq!(
                    &fx.closed_out,
                    &want_w,
                    "{}: close() must end every queued waiter, head first",
                    ctx
                );
                let want_i: Vec<(u64, CloseReason)> = self
                    .idle
                    .iter()
                    .map(|it| (it.id, CloseReason::Shutdown))
                    .collect();
                prop_assert_eq!(
                    &fx.closed(),
                    &want_i,
                    "{}: close() must return every idle entry",
                    ctx
                );
                self.closed = true;
                // These acquires (and timed-out ones not yet woken) fail
                // with manager-closed.
                for (_, state) in &mut self.ended {
                    *state = WaiterState::Closed;
                }
                while let Some(w) = self.queued.pop_front() {
                    self.ended.push((w, WaiterState::Closed));
                }
                self.deliver(fx)?;
            }
        }
        self.check_laws()?;
        let mismatches = std::mem::take(&mut self.mismatches);
        prop_assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        Ok(())
    }

    fn acquire(&mut self, wait: bool, limit: Option<u64>) -> Check {
        let timeout = self.timeout_ms(limit);
        let (want, want_ev) = self.predict_acquire(wait, timeout);
        self.next_vu += 1;
        let vu = VuId(self.next_vu);
        let (got, fx) = self
            .core
            .acquire(at(self.now), vu, wait, Duration::from_millis(timeout));
        let ctx = self.ctx();
        prop_assert!(
            fx.grants.is_empty() && fx.timed_out.is_empty() && fx.closed_out.is_empty(),
            "{ctx}: acquire's effects hold more than evictions: {fx:?}"
        );
        self.fx_deadline = Some(fx.next_deadline.map(Instant::as_millis));
        let evicted = fx.closed();
        let ctx = self.ctx();
        let reduced = match &got {
            Acquire::Ready(e) => A::Ready(item_of(e)),
            Acquire::Create(_) => A::Create,
            Acquire::Wait {
                position, deadline, ..
            } => A::Wait {
                position: *position,
                deadline: deadline.as_millis(),
            },
            Acquire::Exhausted => A::Exhausted,
            Acquire::Closed => A::Closed,
            Acquire::Busy => A::Busy,
        };
        self.expect_model("acquire's evictions", &evicted, &want_ev);
        self.expect_model(&format!("acquire(wait={wait})"), reduced, want);
        for &(id, reason) in &evicted {
            let i = self.idle.iter().position(|it| it.id == id);
            prop_assert!(
                i.is_some(),
                "{ctx}: acquire evicted item {id} ({reason:?}), which was not idle"
            );
            let it = self.idle.remove(i.expect("checked")).expect("in range");
            self.record_close(it, reason)?;
        }
        match got {
            Acquire::Ready(e) => {
                let i = self.idle.iter().position(|it| it.id == e.item);
                prop_assert!(
                    i.is_some(),
                    "{ctx}: acquire handed out item {}, which was not idle",
                    e.item
                );
                let it = self.idle.remove(i.expect("checked")).expect("in range");
                let due = self.due(&it);
                prop_assert!(
                    due.is_none(),
                    "{ctx}: acquire handed out item {} although it was due ({due:?})",
                    e.item
                );
                self.check_handout(e.item)?;
                self.held.push(e);
            }
            Acquire::Create(r) => {
                self.check_fresh_reservation(r)?;
                self.creating.push(r);
            }
            Acquire::Wait {
                waiter, position, ..
            } => {
                self.check_fresh_waiter(waiter)?;
                prop_assert_eq!(
                    position,
                    self.queued.len(),
                    "{}: Wait position must be the number of waiters queued ahead",
                    ctx
                );
                self.queued.push_back(Waiter {
                    id: waiter,
                    vu,
                    since: self.now,
                    deadline: self.now + timeout,
                });
            }
            Acquire::Exhausted | Acquire::Closed | Acquire::Busy => {}
        }
        Ok(())
    }

    fn commit(&mut self, r: Reservation) -> Check {
        self.next_item += 1;
        let id = self.next_item;
        let ctx = self.ctx();
        match self.core.commit(r, id, at(self.now)) {
            Ok(e) => {
                prop_assert!(!self.closed, "{ctx}: commit succeeded after close()");
                prop_assert_eq!(
                    item_of(&e),
                    Item {
                        id,
                        created: self.now,
                        last_used: self.now
                    },
                    "{}: committed entry has wrong item or times",
                    ctx
                );
                self.check_handout(id)?;
                self.held.push(e);
            }
            Err(back) => {
                prop_assert!(
                    self.closed,
                    "{ctx}: commit refused on an open pool (item {back})"
                );
                prop_assert_eq!(back, id, "{}: commit gave back another item", ctx);
                // The shell closes it on shutdown; it was never handed out.
                let it = Item {
                    id,
                    created: self.now,
                    last_used: self.now,
                };
                self.record_close(it, CloseReason::Shutdown)?;
            }
        }
        Ok(())
    }

    // --- the laws, after every step -----------------------------------------

    fn check_laws(&mut self) -> Check {
        let ctx = self.ctx();
        let core = &self.core;

        // The core's own invariant.
        if let Err(e) = core.check_invariants() {
            return Err(TestCaseError::fail(format!(
                "{ctx}: check_invariants failed: {e}"
            )));
        }

        // Bound, and the counts agree with the model.
        let (in_use, idle_n, reserved) = (core.in_use(), core.idle().len(), core.reserved());
        prop_assert!(
            in_use + idle_n + reserved <= core.pool_size(),
            "{ctx}: bound: in_use {in_use} + idle {idle_n} + reserved {reserved} > size {}",
            core.pool_size()
        );
        prop_assert_eq!(
            in_use,
            self.model_in_use(),
            "{}: in_use differs from the model",
            ctx
        );
        prop_assert_eq!(
            reserved,
            self.model_reserved(),
            "{}: reserved differs from the model",
            ctx
        );
        let core_idle: Vec<Item> = core.idle().map(item_of).collect();
        let model_idle: Vec<Item> = self.idle.iter().copied().collect();
        prop_assert_eq!(
            &core_idle,
            &model_idle,
            "{}: idle entries (oldest released first) differ from the model",
            ctx
        );
        let core_waiters: Vec<Waiter> = core
            .waiters()
            .map(|w| Waiter {
                id: w.id,
                vu: w.vu,
                since: w.since.as_millis(),
                deadline: w.deadline.as_millis(),
            })
            .collect();
        let model_waiters: Vec<Waiter> = self.queued.iter().copied().collect();
        prop_assert_eq!(
            core_waiters,
            model_waiters,
            "{}: queued waiters (arrival order) differ from the model",
            ctx
        );
        prop_assert_eq!(
            core.next_deadline().map(Instant::as_millis),
            self.model_next_deadline(),
            "{}: next_deadline differs from the model",
            ctx
        );
        prop_assert_eq!(core.is_closed(), self.closed, "{}: is_closed differs", ctx);

        // Every waiter's state, as the model has it.
        let mut model_states: Vec<(WaiterId, WaiterState)> = self
            .mailbox
            .iter()
            .map(|(w, _)| (w.id, WaiterState::Granted))
            .chain(self.ended.iter().map(|(w, st)| (w.id, *st)))
            .collect();
        model_states.sort();
        let mut core_states: Vec<(WaiterId, WaiterState)> = core
            .ended()
            .map(|(w, _)| (w.id, core.waiter_state(w.id).expect("ended waiter")))
            .collect();
        core_states.sort();
        prop_assert_eq!(
            core_states,
            model_states,
            "{}: waiters whose wait ended differ from the model",
            ctx
        );
        for w in &self.queued {
            prop_assert_eq!(core.waiter_state(w.id), Some(WaiterState::Queued));
        }
        let model_wakeup = match (
            self.model_next_deadline(),
            self.queued.iter().map(|w| w.deadline).min(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        prop_assert_eq!(
            core.next_wakeup().map(Instant::as_millis),
            model_wakeup,
            "{}: next_wakeup differs from the model",
            ctx
        );
        if let Some(named) = self.fx_deadline.take() {
            prop_assert_eq!(
                named,
                model_wakeup,
                "{}: the effects' next deadline differs from the model",
                ctx
            );
        }

        // One holder per item, and no holder of a closed item.
        let mut holders: BTreeMap<u64, &str> = BTreeMap::new();
        let held = self.held.iter().map(|e| (e.item, "a lease"));
        let granted = core.ended().filter_map(|(_, end)| match end {
            WaitEnd::Granted(Grant::Session(e)) => Some((e.item, "a waiter's grant")),
            _ => None,
        });
        let idle = core_idle.iter().map(|it| (it.id, "the idle queue"));
        for (id, holder) in held.chain(granted).chain(idle) {
            if let Some(other) = holders.insert(id, holder) {
                prop_assert!(
                    false,
                    "{ctx}: item {id} held by two holders: {other} and {holder}"
                );
            }
            if let Some(reason) = self.closed_items.get(&id) {
                prop_assert!(
                    false,
                    "{ctx}: item {id} closed ({reason:?}) but still held by {holder}"
                );
            }
        }

        // Nobody waits while capacity exists.
        if core.waiters().len() > 0 {
            prop_assert!(
                idle_n == 0 && core.free_slots() == 0,
                "{ctx}: {} waiter(s) queued while idle {idle_n} / free {}",
                core.waiters().len(),
                core.free_slots()
            );
        }

        // After close(): no idle entries, no waiters, acquire refused.
        if self.closed {
            prop_assert!(idle_n == 0, "{ctx}: idle entries after close()");
            prop_assert!(core.waiters().len() == 0, "{ctx}: waiters after close()");
            for wait in [true, false] {
                let (a, ev) = self.core.acquire(
                    at(self.now),
                    VuId(0),
                    wait,
                    Duration::from_millis(self.p.timeout),
                );
                prop_assert!(
                    a == Acquire::Closed && ev.is_empty(),
                    "{ctx}: acquire(wait={wait}) after close() gave {a:?}, evicted {ev:?}"
                );
            }
        }
        Ok(())
    }
}

fn run<I: Pick>(p: Params, steps: &[Step<I>]) -> Check {
    let mut h = Harness::new(p);
    h.check_laws()?;
    for s in steps {
        h.step(s)?;
    }
    Ok(())
}

proptest! {
    #[test]
    fn pool_core_obeys_the_laws(
        p in params(),
        steps in prop::collection::vec(step(), 10..=60),
    ) {
        run(p, &steps)?;
    }
}

// ---------------------------------------------------------------------------
// Deterministic regressions
// ---------------------------------------------------------------------------

const TIMEOUT: Duration = Duration::from_millis(100);
const VU: VuId = VuId(1);

/// A pool of `size` with no eviction deadlines.
fn pool(size: usize) -> PoolCore<u64> {
    PoolCore::new(size, Deadlines::default())
}

fn reserve(p: &mut PoolCore<u64>, now: u64) -> Reservation {
    match p.acquire(at(now), VU, true, TIMEOUT) {
        (Acquire::Create(r), ev) if ev.is_empty() => r,
        other => panic!("expected a free slot, got {other:?}"),
    }
}

fn created(p: &mut PoolCore<u64>, item: u64, now: u64) -> Entry<u64> {
    let r = reserve(p, now);
    p.commit(r, item, at(now)).expect("open pool")
}

fn queue(p: &mut PoolCore<u64>, now: u64) -> WaiterId {
    match p.acquire(at(now), VU, true, TIMEOUT) {
        (Acquire::Wait { waiter, .. }, ev) if ev.is_empty() => waiter,
        other => panic!("expected to queue, got {other:?}"),
    }
}

/// Two waiters queue on a full pool: w1 at 1, then w2 at 2.
fn two_waiters(p: &mut PoolCore<u64>) -> (WaiterId, WaiterId) {
    (queue(p, 1), queue(p, 2))
}

fn granted_to(fx: &Effects<u64>) -> Vec<WaiterId> {
    fx.grants.iter().map(|(w, _)| *w).collect()
}

/// A pool of one whose session `item`, created at 0, is released at 3
/// while [`two_waiters`] queue: the pool, w1, w2, and the release's
/// effects (the session granted to w1, which has not woken yet).
fn released_to_the_first_of_two(item: u64) -> (PoolCore<u64>, WaiterId, WaiterId, Effects<u64>) {
    let mut p = pool(1);
    let a = created(&mut p, item, 0);
    let (w1, w2) = two_waiters(&mut p);
    let fx = p.release(a, at(3));
    (p, w1, w2, fx)
}

#[test]
fn granted_session_then_cancelled_goes_to_the_next_waiter() {
    // The release grants the session to w1, which has not woken yet.
    let (mut p, w1, w2, fx) = released_to_the_first_of_two(7);
    assert!(fx.closes.is_empty());
    assert_eq!(granted_to(&fx), vec![w1]);
    assert!(matches!(p.grant(w1), Some(Grant::Session(e)) if e.item == 7));
    // w1's acquire is dropped: the core passes its grant on to w2.
    let fx = p.cancel_waiter(w1, at(4));
    assert!(fx.closes.is_empty());
    assert_eq!(granted_to(&fx), vec![w2]);
    assert!(matches!(p.grant(w2), Some(Grant::Session(e)) if e.item == 7 && e.last_used == at(4)));
    assert_eq!(p.waiter_state(w1), None);
    assert_eq!(p.in_use(), 1);
    assert_eq!(p.idle().len(), 0);
    assert_eq!(p.waiters().len(), 0);
    p.check_invariants().unwrap();
}

#[test]
fn granted_slot_then_cancelled_goes_to_the_next_waiter() {
    let mut p = pool(1);
    let r = reserve(&mut p, 0);
    let (w1, w2) = two_waiters(&mut p);
    // The create fails: its slot goes to w1.
    let fx = p.cancel_reservation(r);
    assert_eq!(granted_to(&fx), vec![w1]);
    let Some(Grant::Slot(r1)) = p.grant(w1).cloned() else {
        panic!("expected a slot")
    };
    // w1 is cancelled before it woke: its slot goes to w2.
    let fx = p.cancel_waiter(w1, at(3));
    assert_eq!(granted_to(&fx), vec![w2]);
    assert!(matches!(p.grant(w2), Some(Grant::Slot(r2)) if *r2 != r1));
    assert_eq!(p.reserved(), 1);
    assert_eq!(p.waiters().len(), 0);
    p.check_invariants().unwrap();
}

#[test]
fn failed_create_passes_its_slot_to_the_head_waiter_only() {
    let mut p = pool(2);
    let r1 = reserve(&mut p, 0);
    let _r2 = reserve(&mut p, 0);
    let (w1, w2) = two_waiters(&mut p);
    let fx = p.cancel_reservation(r1);
    assert!(fx.closes.is_empty());
    assert_eq!(granted_to(&fx), vec![w1]);
    assert!(matches!(p.grant(w1), Some(Grant::Slot(_))));
    // w2 still waits, and the pool is still full.
    assert_eq!(p.waiters().map(|w| w.id).collect::<Vec<_>>(), vec![w2]);
    assert_eq!(p.reserved(), 2);
    assert_eq!(p.free_slots(), 0);
    p.check_invariants().unwrap();
}

#[test]
fn timeout_that_raced_a_grant_takes_the_grant() {
    let mut p = pool(1);
    let a = created(&mut p, 1, 0);
    let w = queue(&mut p, 0);
    // Granted exactly at the waiter's deadline, before the evictor ran.
    let fx = p.release(a, at(100));
    assert_eq!(granted_to(&fx), vec![w]);
    // The evictor finds nobody to expire: the waiter was served.
    assert!(p.expire_waiters(at(100)).is_empty());
    assert!(matches!(
        p.take(w),
        Some(WaitEnd::Granted(Grant::Session(_)))
    ));
    assert_eq!(p.in_use(), 1);
    p.check_invariants().unwrap();
}

#[test]
fn timed_out_waiter_is_never_granted() {
    let mut p = pool(1);
    let a = created(&mut p, 1, 0);
    let w1 = queue(&mut p, 0);
    let w2 = queue(&mut p, 50);
    // w1's deadline comes; its task has not run yet when a release comes.
    assert_eq!(p.expire_waiters(at(100)).timed_out, vec![w1]);
    let fx = p.release(a, at(101));
    assert_eq!(granted_to(&fx), vec![w2]);
    assert_eq!(p.take(w1), Some(WaitEnd::TimedOut));
    p.check_invariants().unwrap();
}

#[test]
fn idle_eviction_exactly_at_the_deadline() {
    let d = Deadlines {
        ttl: None,
        max_idle: Some(Duration::from_millis(10)),
    };
    let mut p = PoolCore::new(1, d);
    let a = created(&mut p, 1, 0);
    assert_eq!(p.release(a, at(5)).next_deadline, Some(at(15)));
    assert_eq!(p.next_deadline(), Some(at(15)));
    // One millisecond before: not due, by the evictor nor by an acquire.
    assert!(p.evict(at(14)).is_empty());
    let (Acquire::Ready(a), ev) = p.acquire(at(14), VU, true, TIMEOUT) else {
        panic!("entry must still be usable at 14ms")
    };
    assert!(ev.is_empty());
    assert!(p.release(a, at(14)).is_empty());
    // Released again at 14: due at 24 exactly.
    assert!(p.evict(at(23)).is_empty());
    assert_eq!(p.evict(at(24)).closed(), vec![(1, CloseReason::Idle)]);
    assert_eq!(p.idle().len(), 0);
    assert_eq!(p.free_slots(), 1);
    p.check_invariants().unwrap();
}

#[test]
fn ttl_eviction_exactly_at_the_deadline() {
    let d = Deadlines {
        ttl: Some(Duration::from_millis(20)),
        max_idle: Some(Duration::from_millis(10)),
    };
    let mut p = PoolCore::new(2, d);
    // Released at 15: TTL deadline 20 comes before the idle deadline 25.
    let a = created(&mut p, 1, 0);
    assert!(p.release(a, at(15)).is_empty());
    assert_eq!(p.next_deadline(), Some(at(20)));
    assert!(p.evict(at(19)).is_empty());
    // Found by an acquire exactly at the deadline: evicted, slot reserved.
    let (got, ev) = p.acquire(at(20), VU, true, TIMEOUT);
    assert!(matches!(got, Acquire::Create(_)), "{got:?}");
    assert_eq!(ev.closed(), vec![(1, CloseReason::Ttl)]);
    // In use at its TTL: closed on release exactly at the deadline, and its
    // slot passed to the waiter.
    let b = created(&mut p, 2, 30);
    let w = queue(&mut p, 31);
    let fx = p.release(b, at(50));
    assert_eq!(fx.closed(), vec![(2, CloseReason::Ttl)]);
    assert_eq!(granted_to(&fx), vec![w]);
    assert!(matches!(p.grant(w), Some(Grant::Slot(_))));
    p.check_invariants().unwrap();
}

#[test]
fn close_with_a_grant_in_flight() {
    let (mut p, w1, w2, fx) = released_to_the_first_of_two(1);
    assert_eq!(granted_to(&fx), vec![w1]);
    let fx = p.close();
    assert_eq!(fx.closed_out, vec![w2]);
    assert!(fx.closes.is_empty());
    // w1 is cancelled after close: its session comes back and is closed.
    let fx = p.cancel_waiter(w1, at(4));
    assert_eq!(fx.closed(), vec![(1, CloseReason::Shutdown)]);
    assert!(fx.grants.is_empty());
    assert_eq!(p.in_use(), 0);
    assert_eq!(p.take(w2), Some(WaitEnd::Closed));
    assert_eq!(p.acquire(at(5), VU, true, TIMEOUT).0, Acquire::Closed);
    p.check_invariants().unwrap();
}

/// A script's acquire that waits, with no limit of its own.
fn acquire() -> Step<usize> {
    Step::Acquire {
        wait: true,
        limit: None,
    }
}

/// A script's acquire that does not wait.
fn try_acquire() -> Step<usize> {
    Step::Acquire {
        wait: false,
        limit: None,
    }
}

/// The harness itself on a fixed script that reaches every step kind.
#[test]
fn harness_runs_a_fixed_script() {
    let p = Params {
        size: 2,
        ttl: Some(30),
        max_idle: Some(10),
        timeout: 15,
    };
    let script: [Step<usize>; 26] = [
        acquire(),
        acquire(),
        acquire(),
        try_acquire(),
        Step::Commit(0),
        Step::FailCreate(0),
        Step::Wake(0),
        Step::Commit(0),
        acquire(),
        Step::Release(0),
        Step::CancelWaiter(0),
        Step::Advance(5),
        Step::Release(0),
        Step::Advance(10),
        Step::Evict,
        acquire(),
        acquire(),
        acquire(),
        Step::Advance(20),
        Step::Expire,
        Step::Wake(0),
        Step::Commit(0),
        Step::Discard(0, CloseReason::Invalidated),
        Step::Close,
        Step::Commit(0),
        acquire(),
    ];
    run(p, &script).unwrap();
}
