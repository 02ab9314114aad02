//! Reuse mode (and churn, which is reuse with a [`Churn`] policy): one
//! session per VU, kept across operations.
//!
//! The table is pure state, behind [`ModeCore`] like every mode's. Acquire
//! checks expiry and takes the session in one step under the manager's
//! lock, and the deadline timer only ever sees idle sessions, so it can never
//! close a session between the check and its activation (the reference's
//! defect 3).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::churn::Churn;
use crate::clock::Instant;
use crate::eviction::{Deadlines, Entry};
use crate::metrics::CloseReason;
use crate::mode_core::{Acquire, Effects, ModeCore, Reservation, Return};
use crate::observe::VuId;

/// Each VU's session: idle in the table, or out (leased or being created).
/// The decision logic of reuse and churn, pure: every method takes `now`
/// and returns what to do; the manager does it (and `mcp-sim explore`
/// explores it).
#[derive(Clone, Debug)]
pub struct VuTable<T> {
    deadlines: Deadlines,
    churn: Churn,
    slots: BTreeMap<VuId, Slot<T>>,
    /// VUs whose next session replaces one invalidated after a 404.
    replace: BTreeSet<VuId>,
    /// The last creation ticket handed out.
    tickets: u64,
    /// Whether the manager closed.
    closed: bool,
}

#[derive(Clone, Debug)]
enum Slot<T> {
    Idle(Entry<T>),
    /// Leased to the VU (`None`), or being created for it in this ticket.
    Out(Option<Reservation>),
}

/// The outcome of [`VuTable::take`].
#[derive(Debug, PartialEq, Eq)]
pub enum Take<T> {
    /// The VU's session, now out.
    Ready(Entry<T>),
    /// The VU's session is already out.
    Busy,
    /// The VU has no usable session: make one under this ticket (the slot
    /// is now out). A session found expired or spent is handed back for
    /// closing.
    Create(Reservation, Option<(T, CloseReason)>),
}

impl<T> VuTable<T> {
    /// An empty table with these eviction limits and churn policy.
    pub fn new(deadlines: Deadlines, churn: Churn) -> Self {
        VuTable {
            deadlines,
            churn,
            slots: BTreeMap::new(),
            replace: BTreeSet::new(),
            tickets: 0,
            closed: false,
        }
    }

    /// The eviction limits.
    pub fn deadlines(&self) -> Deadlines {
        self.deadlines
    }

    /// The VU's session for use at `now`, checking eviction and churn in the
    /// same step.
    pub fn take(&mut self, vu: VuId, now: Instant) -> Take<T> {
        let retired = match self.slots.remove(&vu) {
            None => None,
            Some(out @ Slot::Out(_)) => {
                self.slots.insert(vu, out);
                return Take::Busy;
            }
            Some(Slot::Idle(e)) => {
                if let Some(reason) = self.deadlines.due(&e, now) {
                    Some((e.item, reason))
                } else if self.churn.due(&e, now) {
                    Some((e.item, CloseReason::Churned))
                } else {
                    self.slots.insert(vu, Slot::Out(None));
                    return Take::Ready(e);
                }
            }
        };
        self.tickets += 1;
        let r = Reservation(self.tickets);
        self.slots.insert(vu, Slot::Out(Some(r)));
        Take::Create(r, retired)
    }

    /// The VU making a session under ticket `r`.
    fn maker(&self, r: Reservation) -> Option<VuId> {
        self.slots.iter().find_map(|(vu, s)| match s {
            Slot::Out(Some(x)) if *x == r => Some(*vu),
            _ => None,
        })
    }

    /// The VU's session comes back at `now`: kept idle, or returned with the
    /// reason to close it (spent by churn, or past its TTL).
    pub fn put_back(
        &mut self,
        vu: VuId,
        mut e: Entry<T>,
        now: Instant,
    ) -> Option<(T, CloseReason)> {
        e.last_used = now;
        let retire = if self.churn.due(&e, now) {
            Some(CloseReason::Churned)
        } else if self.deadlines.ttl_due(&e, now) {
            Some(CloseReason::Ttl)
        } else {
            None
        };
        match retire {
            Some(reason) => {
                self.slots.remove(&vu);
                Some((e.item, reason))
            }
            None => {
                self.slots.insert(vu, Slot::Idle(e));
                None
            }
        }
    }

    /// The VU no longer has a session (creation failed, or it was closed).
    pub fn vacate(&mut self, vu: VuId) {
        self.slots.remove(&vu);
    }

    /// The VU's next session replaces one invalidated after a 404.
    pub fn mark_replacement(&mut self, vu: VuId) {
        self.replace.insert(vu);
    }

    /// Whether a session created now for `vu` is such a replacement (and
    /// if so, consumes that debt).
    pub fn take_replacement(&mut self, vu: VuId) -> bool {
        self.replace.remove(&vu)
    }

    /// The VU's session if it is idle in the table (`Some(None)`: out,
    /// leased or being created; `None`: the VU has no session).
    pub fn slot(&self, vu: VuId) -> Option<Option<&Entry<T>>> {
        self.slots.get(&vu).map(|s| match s {
            Slot::Idle(e) => Some(e),
            Slot::Out(_) => None,
        })
    }

    /// Whether the VU's next session is owed as a replacement.
    pub fn owes_replacement(&self, vu: VuId) -> bool {
        self.replace.contains(&vu)
    }

    /// Sessions kept idle.
    pub fn idle_count(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::Idle(_)))
            .count()
    }

    /// The earliest eviction deadline of an idle session.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|s| match s {
                Slot::Idle(e) => self.deadlines.next(e),
                Slot::Out(_) => None,
            })
            .min()
    }

    /// Whether the manager closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// A close of `vu`'s session.
fn close_for<T>(fx: &mut Effects<T>, vu: VuId, (item, reason): (T, CloseReason)) {
    fx.closes.push(crate::mode_core::Close {
        item,
        reason,
        vu: Some(vu),
    });
}

/// Reuse's and churn's decisions: [`VuTable::take`] at acquire,
/// [`VuTable::put_back`] at release, the deadline timer over idle sessions only.
impl<T> ModeCore<T> for VuTable<T> {
    fn acquire(
        &mut self,
        now: Instant,
        vu: VuId,
        _wait: bool,
        _timeout: Duration,
    ) -> (Acquire<T>, Effects<T>) {
        let mut fx = Effects::default();
        if self.closed {
            return (Acquire::Closed, fx);
        }
        let decision = match self.take(vu, now) {
            Take::Ready(e) => Acquire::Ready(e),
            Take::Busy => Acquire::Busy,
            Take::Create(r, retired) => {
                if let Some(gone) = retired {
                    close_for(&mut fx, vu, gone);
                }
                Acquire::Create(r)
            }
        };
        (decision, fx)
    }

    fn commit(&mut self, r: Reservation, item: T, now: Instant) -> Result<Entry<T>, T> {
        match self.maker(r) {
            Some(vu) if !self.closed => {
                self.slots.insert(vu, Slot::Out(None));
                Ok(Entry::new(item, now))
            }
            _ => Err(item),
        }
    }

    /// The VU has no session after all, so its next acquire is not refused
    /// as busy.
    fn cancel_reservation(&mut self, r: Reservation) -> Effects<T> {
        if let Some(vu) = self.maker(r) {
            self.slots.remove(&vu);
        }
        Effects::default()
    }

    /// A release keeps the session idle unless churn spent it or its TTL
    /// passed; anything else closes it, and an invalidated session makes
    /// the VU's next one a reconnect.
    fn give_back(&mut self, vu: VuId, entry: Entry<T>, how: Return, now: Instant) -> Effects<T> {
        let mut fx = Effects::default();
        if self.closed {
            close_for(&mut fx, vu, (entry.item, CloseReason::Shutdown));
            return fx;
        }
        let retire = match how {
            Return::Release => self.put_back(vu, entry, now),
            Return::Invalidate | Return::Drop | Return::Closed => {
                self.vacate(vu);
                if how == Return::Invalidate {
                    self.mark_replacement(vu);
                }
                Some((entry.item, how.close_reason()))
            }
        };
        if let Some(gone) = retire {
            close_for(&mut fx, vu, gone);
        }
        fx
    }

    /// Removes every idle session due at `now`, in VU order.
    fn evict(&mut self, now: Instant) -> Effects<T> {
        let due: Vec<(VuId, CloseReason)> = self
            .slots
            .iter()
            .filter_map(|(vu, s)| match s {
                Slot::Idle(e) => self.deadlines.due(e, now).map(|r| (*vu, r)),
                Slot::Out(_) => None,
            })
            .collect();
        let mut fx = Effects::default();
        for (vu, reason) in due {
            if let Some(Slot::Idle(e)) = self.slots.remove(&vu) {
                close_for(&mut fx, vu, (e.item, reason));
            }
        }
        fx
    }

    fn next_wakeup(&self) -> Option<Instant> {
        self.next_deadline()
    }

    /// Forgets every session and debt.
    fn close(&mut self) -> Effects<T> {
        self.closed = true;
        self.slots.clear();
        self.replace.clear();
        Effects::default()
    }

    fn idle_count(&self) -> usize {
        VuTable::idle_count(self)
    }

    fn take_replacement(&mut self, vu: VuId) -> bool {
        VuTable::take_replacement(self, vu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn take_is_check_and_activate_in_one_step() {
        let d = Deadlines {
            ttl: None,
            max_idle: Some(Duration::from_millis(100)),
        };
        let mut t = VuTable::new(d, Churn::Never);
        let vu = VuId(1);
        assert_eq!(t.take(vu, at(0)), Take::Create(Reservation(1), None));
        assert_eq!(t.take(vu, at(0)), Take::Busy);
        assert_eq!(t.put_back(vu, Entry::new(7u32, at(0)), at(10)), None);
        assert_eq!(t.idle_count(), 1);
        assert_eq!(t.next_deadline(), Some(at(110)));
        // Once taken, the deadline timer cannot see it, even past its deadline.
        let Take::Ready(e) = t.take(vu, at(109)) else {
            panic!()
        };
        assert!(ModeCore::evict(&mut t, at(500)).is_empty());
        assert_eq!(t.put_back(vu, e, at(500)), None);
        assert_eq!(
            t.take(vu, at(600)),
            Take::Create(Reservation(2), Some((7, CloseReason::Idle)))
        );
    }

    #[test]
    fn churn_retires_on_put_back_and_take() {
        let mut t = VuTable::new(Deadlines::default(), Churn::AfterOps(2));
        let vu = VuId(3);
        let _ = t.take(vu, at(0));
        let mut e = Entry::new(1u32, at(0));
        e.ops = 1;
        assert_eq!(t.put_back(vu, e, at(1)), None);
        let Take::Ready(mut e) = t.take(vu, at(2)) else {
            panic!()
        };
        e.ops = 2;
        assert_eq!(t.put_back(vu, e, at(3)), Some((1, CloseReason::Churned)));
        let mut t = VuTable::new(
            Deadlines::default(),
            Churn::AfterTime(Duration::from_millis(50)),
        );
        let _ = t.take(vu, at(0));
        assert_eq!(t.put_back(vu, Entry::new(2u32, at(0)), at(49)), None);
        assert_eq!(
            t.take(vu, at(50)),
            Take::Create(Reservation(2), Some((2, CloseReason::Churned)))
        );
    }
}
