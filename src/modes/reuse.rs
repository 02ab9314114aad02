//! Reuse mode (and churn, which is reuse with a [`Churn`] policy): one
//! session per VU, kept across operations.
//!
//! The table is pure state. Acquire checks expiry and takes the session in
//! one step under the manager's lock, and the evictor only ever sees idle
//! sessions, so it can never close a session between the check and its
//! activation (the reference's defect 3).

use std::collections::{BTreeMap, BTreeSet};

use super::churn::Churn;
use super::{ModeData, Return};
use crate::clock::Instant;
use crate::error::{ErrorKind, SessionError};
use crate::eviction::{Deadlines, Entry};
use crate::lease::Lease;
use crate::manager::{Inner, Sess, State};
use crate::metrics::CloseReason;
use crate::observe::VuId;
use crate::transport::Connector;

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
}

#[derive(Clone, Debug)]
enum Slot<T> {
    Idle(Entry<T>),
    /// Leased to the VU, or being created for it.
    Out,
}

/// The outcome of [`VuTable::take`].
#[derive(Debug, PartialEq, Eq)]
pub enum Take<T> {
    /// The VU's session, now out.
    Ready(Entry<T>),
    /// The VU's session is already out.
    Busy,
    /// The VU has no usable session: make one (the slot is now out). A
    /// session found expired or spent is handed back for closing.
    Create(Option<(T, CloseReason)>),
}

impl<T> VuTable<T> {
    /// An empty table with these eviction limits and churn policy.
    pub fn new(deadlines: Deadlines, churn: Churn) -> Self {
        VuTable {
            deadlines,
            churn,
            slots: BTreeMap::new(),
            replace: BTreeSet::new(),
        }
    }

    /// The VU's session for use at `now`, checking eviction and churn in the
    /// same step.
    pub fn take(&mut self, vu: VuId, now: Instant) -> Take<T> {
        let slot = self.slots.insert(vu, Slot::Out);
        match slot {
            None => Take::Create(None),
            Some(Slot::Out) => Take::Busy,
            Some(Slot::Idle(e)) => {
                if let Some(reason) = self.deadlines.due(&e, now) {
                    Take::Create(Some((e.item, reason)))
                } else if self.churn.due(&e, now) {
                    Take::Create(Some((e.item, CloseReason::Churned)))
                } else {
                    Take::Ready(e)
                }
            }
        }
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
            Slot::Out => None,
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
                Slot::Out => None,
            })
            .min()
    }

    /// Removes every idle session due at `now`, in VU order.
    pub fn evict(&mut self, now: Instant) -> Vec<(VuId, T, CloseReason)> {
        let due: Vec<(VuId, CloseReason)> = self
            .slots
            .iter()
            .filter_map(|(vu, s)| match s {
                Slot::Idle(e) => self.deadlines.due(e, now).map(|r| (*vu, r)),
                Slot::Out => None,
            })
            .collect();
        due.into_iter()
            .filter_map(|(vu, r)| match self.slots.remove(&vu) {
                Some(Slot::Idle(e)) => Some((vu, e.item, r)),
                _ => None,
            })
            .collect()
    }

    /// Forgets every session and debt (the manager closed).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.replace.clear();
    }
}

fn table<X>(st: &mut State<X>) -> &mut VuTable<Sess<X>> {
    match &mut st.modes {
        ModeData::PerVu(t) => t,
        _ => unreachable!("reuse/churn state in another mode"),
    }
}

/// Clears the VU's slot if the acquire ends without a lease (error or
/// cancellation), so its next acquire is not refused as busy.
struct Vacate<'a, C: Connector> {
    inner: &'a Inner<C>,
    vu: VuId,
    armed: bool,
}

impl<C: Connector> Drop for Vacate<'_, C> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut st = self.inner.lock();
        if !st.closed {
            table(&mut st).vacate(self.vu);
        }
    }
}

pub(crate) async fn acquire<C: Connector>(
    inner: &Inner<C>,
    vu: VuId,
) -> Result<Lease<C>, SessionError> {
    {
        let now = inner.clock.now();
        let mut st = inner.lock();
        match table(&mut st).take(vu, now) {
            Take::Ready(e) => return inner.hand_out(&mut st, vu, e, false, 0),
            Take::Busy => {
                drop(st);
                return Err(SessionError::new(
                    crate::error::Op::Acquire,
                    ErrorKind::VuBusy,
                ));
            }
            Take::Create(retired) => {
                if let Some((cell, reason)) = retired {
                    inner.begin_close(&mut st, &cell, reason, Some(vu));
                }
            }
        }
    }
    let mut vacate = Vacate {
        inner,
        vu,
        armed: true,
    };
    let cell = inner.create_session(vu).await?;
    vacate.armed = false;
    let now = inner.clock.now();
    let mut st = inner.lock();
    inner.hand_out(&mut st, vu, Entry::new(cell, now), true, 0)
}

pub(crate) fn give_back<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    vu: VuId,
    entry: Entry<Sess<C::Connection>>,
    how: Return,
    now: Instant,
) {
    if st.closed {
        inner.begin_close(st, &entry.item, CloseReason::Shutdown, Some(vu));
        return;
    }
    let cell = entry.item.clone();
    let retire = match how {
        Return::Release if cell.closed().is_none() => table(st).put_back(vu, entry, now),
        Return::Release => {
            table(st).vacate(vu);
            None
        }
        Return::Invalidate | Return::Drop => {
            let t = table(st);
            t.vacate(vu);
            if how == Return::Invalidate {
                t.mark_replacement(vu);
            }
            Some((entry.item, how.close_reason()))
        }
    };
    if let Some((cell, reason)) = retire {
        inner.begin_close(st, &cell, reason, Some(vu));
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
        assert_eq!(t.take(vu, at(0)), Take::Create(None));
        assert_eq!(t.take(vu, at(0)), Take::Busy);
        assert_eq!(t.put_back(vu, Entry::new(7u32, at(0)), at(10)), None);
        assert_eq!(t.idle_count(), 1);
        assert_eq!(t.next_deadline(), Some(at(110)));
        // Once taken, the evictor cannot see it, even past its deadline.
        let Take::Ready(e) = t.take(vu, at(109)) else {
            panic!()
        };
        assert!(t.evict(at(500)).is_empty());
        assert_eq!(t.put_back(vu, e, at(500)), None);
        assert_eq!(
            t.take(vu, at(600)),
            Take::Create(Some((7, CloseReason::Idle)))
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
            Take::Create(Some((2, CloseReason::Churned)))
        );
    }
}
