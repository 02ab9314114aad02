//! Per-request mode: every acquire initializes a new session; release closes
//! it (reason `released`). Sessions in flight are in the manager's registry
//! like any other, so `close()` closes them too (the reference could not).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::clock::Instant;
use crate::eviction::Entry;
use crate::mode_core::{Acquire, Effects, ModeCore, Reservation, Return};
use crate::observe::VuId;

/// Per-request's decisions, pure. Nothing is kept between leases but which
/// VUs' next session replaces one invalidated after a 404.
#[derive(Clone, Debug, Default)]
pub struct PerRequestCore {
    replace: BTreeSet<VuId>,
    /// The last creation ticket handed out.
    tickets: u64,
    closed: bool,
}

impl PerRequestCore {
    /// A core with no debts, open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the VU's next session is owed as a replacement.
    pub fn owes_replacement(&self, vu: VuId) -> bool {
        self.replace.contains(&vu)
    }

    /// Whether the manager closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl<T> ModeCore<T> for PerRequestCore {
    /// Always a new session: no bound, no waiting, and no busy check (a VU
    /// that holds a per-request lease may acquire another).
    fn acquire(
        &mut self,
        _now: Instant,
        _vu: VuId,
        _wait: bool,
        _timeout: Duration,
    ) -> (Acquire<T>, Effects<T>) {
        if self.closed {
            return (Acquire::Closed, Effects::default());
        }
        self.tickets += 1;
        (
            Acquire::Create(Reservation(self.tickets)),
            Effects::default(),
        )
    }

    fn commit(&mut self, _r: Reservation, item: T, now: Instant) -> Result<Entry<T>, T> {
        if self.closed {
            return Err(item);
        }
        Ok(Entry::new(item, now))
    }

    fn cancel_reservation(&mut self, _r: Reservation) -> Effects<T> {
        Effects::default()
    }

    /// Every session is closed when it comes back, for the reason of its
    /// return; an invalidated one makes the VU's next one a reconnect.
    fn give_back(&mut self, vu: VuId, entry: Entry<T>, how: Return, _now: Instant) -> Effects<T> {
        if how == Return::Invalidate && !self.closed {
            self.replace.insert(vu);
        }
        let mut fx = Effects::default();
        fx.close(entry.item, how.close_reason());
        fx
    }

    fn evict(&mut self, _now: Instant) -> Effects<T> {
        Effects::default()
    }

    fn next_wakeup(&self) -> Option<Instant> {
        None
    }

    fn close(&mut self) -> Effects<T> {
        self.closed = true;
        Effects::default()
    }

    fn idle_count(&self) -> usize {
        0
    }

    fn take_replacement(&mut self, vu: VuId) -> bool {
        self.replace.remove(&vu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CloseReason;

    #[test]
    fn every_lease_is_a_new_session_closed_on_return() {
        let mut c = PerRequestCore::new();
        let (vu, now) = (VuId(1), Instant::from_millis(5));
        let t = Duration::ZERO;
        let (a, fx) = ModeCore::<u32>::acquire(&mut c, now, vu, true, t);
        assert_eq!(a, Acquire::Create(Reservation(1)));
        assert!(fx.is_empty());
        let e = c.commit(Reservation(1), 7u32, now).unwrap();
        let fx = c.give_back(vu, e, Return::Invalidate, now);
        assert_eq!(fx.closed(), vec![(7, CloseReason::Invalidated)]);
        assert!(c.owes_replacement(vu));
        assert!(ModeCore::<u32>::take_replacement(&mut c, vu));
        assert!(!ModeCore::<u32>::take_replacement(&mut c, vu));
        let fx = c.give_back(vu, Entry::new(8u32, now), Return::Release, now);
        assert_eq!(fx.closed(), vec![(8, CloseReason::Released)]);
        ModeCore::<u32>::close(&mut c);
        let (a, _) = ModeCore::<u32>::acquire(&mut c, now, vu, true, t);
        assert_eq!(a, Acquire::Closed);
        assert_eq!(c.commit(Reservation(2), 9u32, now), Err(9));
    }
}
