//! Eviction deadlines: TTL counts from creation, idle time from the last
//! use. A session is due at its deadline: at `now == deadline` it is already
//! expired, one millisecond before it is not.
//!
//! The manager's deadline timer ([`run_deadline_timer`]) serves every
//! deadline the manager keeps: idle sessions' eviction and pool waiters'
//! acquire timeouts. It does not poll. It sleeps on the [`Clock`] until the
//! earliest deadline, has the manager act on what is due (time waiters
//! out, evict idle sessions), and is woken early whenever an earlier
//! deadline appears.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{Clock, Instant};
use crate::metrics::CloseReason;

/// A session (or any item) with the times eviction looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<T> {
    /// The item.
    pub item: T,
    /// When it was created.
    pub created_at: Instant,
    /// When it was last released (or created, if never used).
    pub last_used: Instant,
    /// Operations run on it so far.
    pub ops: u64,
}

impl<T> Entry<T> {
    /// A fresh entry created at `now`.
    pub fn new(item: T, now: Instant) -> Self {
        Entry {
            item,
            created_at: now,
            last_used: now,
            ops: 0,
        }
    }
}

/// The TTL and idle limits of a manager.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// Maximum lifetime from creation; `None` = unlimited.
    pub ttl: Option<Duration>,
    /// Maximum time unused; `None` = unlimited.
    pub max_idle: Option<Duration>,
}

impl Deadlines {
    /// When `e` reaches its TTL, if it has one.
    pub fn ttl_deadline<T>(&self, e: &Entry<T>) -> Option<Instant> {
        self.ttl.map(|d| e.created_at + d)
    }

    /// When `e` has idled too long, if idle eviction is on.
    pub fn idle_deadline<T>(&self, e: &Entry<T>) -> Option<Instant> {
        self.max_idle.map(|d| e.last_used + d)
    }

    /// The earlier of the two deadlines.
    pub fn next<T>(&self, e: &Entry<T>) -> Option<Instant> {
        self.next_at(e.created_at, e.last_used)
    }

    /// The earlier of the two deadlines of a session created at `created_at`
    /// and last used at `last_used`.
    pub fn next_at(&self, created_at: Instant, last_used: Instant) -> Option<Instant> {
        let ttl = self.ttl.map(|d| created_at + d);
        let idle = self.max_idle.map(|d| last_used + d);
        match (ttl, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether an idle `e` is due at `now`, and why. TTL wins when both are
    /// due, so the reason never depends on which check ran first.
    pub fn due<T>(&self, e: &Entry<T>, now: Instant) -> Option<CloseReason> {
        if self.ttl_deadline(e).is_some_and(|t| now >= t) {
            Some(CloseReason::Ttl)
        } else if self.idle_deadline(e).is_some_and(|t| now >= t) {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }

    /// Whether a session in use is past its TTL at `now` (it is then closed
    /// on release; idle time does not run while a session is in use).
    pub fn ttl_due<T>(&self, e: &Entry<T>, now: Instant) -> bool {
        self.ttl_deadline(e).is_some_and(|t| now >= t)
    }
}

/// What the deadline timer needs from the manager it serves.
pub(crate) trait HasDeadlines: Send + Sync + 'static {
    /// The earliest eviction deadline of any idle session; `None` if there is
    /// none. `Err(())` once the manager is closed: the deadline timer stops.
    fn next_deadline(&self) -> Result<Option<Instant>, ()>;
    /// Acts on every deadline due at `now`: times out the waiters whose
    /// deadline came, evicts the idle sessions due.
    fn deadlines_due(&self, now: Instant);
}

/// The deadline timer task. Holds only a weak reference, so a manager that is
/// dropped without `close()` does not live on in its deadline timer; `wake` is
/// notified on every change of the idle set and when the manager goes away.
pub(crate) async fn run_deadline_timer<E: HasDeadlines>(
    target: Weak<E>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
) {
    loop {
        let next = match target.upgrade().map(|t| t.next_deadline()) {
            Some(Ok(next)) => next,
            _ => return,
        };
        let sleep = async {
            match next {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = wake.notified() => continue,
            _ = sleep => {
                let Some(t) = target.upgrade() else { return };
                t.deadlines_due(clock.now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(created: u64, used: u64) -> Entry<()> {
        Entry {
            item: (),
            created_at: Instant::from_millis(created),
            last_used: Instant::from_millis(used),
            ops: 0,
        }
    }

    #[test]
    fn due_exactly_at_the_deadline_not_before() {
        let d = Deadlines {
            ttl: Some(Duration::from_millis(1000)),
            max_idle: Some(Duration::from_millis(300)),
        };
        let e = entry(0, 500);
        assert_eq!(d.next(&e), Some(Instant::from_millis(800)));
        assert_eq!(d.due(&e, Instant::from_millis(799)), None);
        assert_eq!(
            d.due(&e, Instant::from_millis(800)),
            Some(CloseReason::Idle)
        );
        assert_eq!(
            d.due(&e, Instant::from_millis(1000)),
            Some(CloseReason::Ttl)
        );
        assert!(!d.ttl_due(&e, Instant::from_millis(999)));
        assert!(d.ttl_due(&e, Instant::from_millis(1000)));
        let e = entry(0, 900);
        assert_eq!(d.next(&e), Some(Instant::from_millis(1000)));
    }

    #[test]
    fn no_limits_never_due() {
        let d = Deadlines::default();
        let e = entry(0, 0);
        assert_eq!(d.next(&e), None);
        assert_eq!(d.due(&e, Instant::from_millis(u64::MAX)), None);
    }
}
