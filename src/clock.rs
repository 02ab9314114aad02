//! Time, injected.
//!
//! Every decision the library makes about time (acquire deadlines, TTL and
//! idle eviction, churn by time) reads a [`Clock`]. Nothing reads the wall
//! clock directly, so the same code runs:
//!
//! - for real, with [`TokioClock`] over real time;
//! - in tests, with [`TokioClock`] under `tokio::time::pause` (time jumps to
//!   the next timer as soon as every task is idle), or with [`ManualClock`],
//!   which moves only when the test says so;
//! - in simulation, with [`TokioClock`] inside turmoil, whose hosts run on
//!   simulated `tokio::time`.
//!
//! Times are [`Instant`]s: a duration since the clock's origin. That keeps them
//! plain, comparable, serializable values (a trace records them as
//! milliseconds) with no link to the machine's clock.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::ops::{Add, Sub};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::sync::lock;

/// A point in time: the time elapsed since the origin of the [`Clock`] that
/// produced it. Instants from different clocks are not comparable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Instant(Duration);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// An instant `since_origin` after the clock's origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Instant(since_origin)
    }

    /// An instant `ms` milliseconds after the clock's origin.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    /// Time since the clock's origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Whole milliseconds since the clock's origin (saturating at `u64::MAX`).
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates instead of panicking: an instant "forever" away is as good as
    /// never for deadlines.
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: never panics when `rhs` is later.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.as_millis())
    }
}

/// A future that completes at a deadline of a [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The source of time for the library.
///
/// Implementations must be monotonic: `now()` never goes backwards.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Instant;

    /// A future that completes once `now() >= deadline` (at once if it
    /// already is).
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

/// A [`Clock`] over `tokio::time`: real time normally, paused time under
/// `tokio::time::pause`, simulated time inside turmoil.
///
/// Its origin is the tokio instant at which it was created.
#[derive(Clone, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now (in `tokio::time`). Must be called where
    /// `tokio::time` works: inside a runtime, or in a turmoil host.
    pub fn new() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant(tokio::time::Instant::now().saturating_duration_since(self.origin))
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        // `checked_add` guards against deadlines so far away that they do not
        // fit tokio's instant; such a sleep simply never ends.
        match self.origin.checked_add(deadline.0) {
            Some(at) => Box::pin(tokio::time::sleep_until(at)),
            None => Box::pin(std::future::pending()),
        }
    }
}

/// A [`Clock`] that moves only when told to: for stepping pure code and
/// async code in tests without any timer of the runtime.
///
/// Sleepers wake when [`ManualClock::advance`] or [`ManualClock::set`] moves
/// the time to or past their deadline.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

#[derive(Debug, Default)]
struct ManualState {
    now: Instant,
    next_sleeper: u64,
    // Keyed by (deadline, arrival) so wake-up order is deterministic.
    sleepers: BTreeMap<(Instant, u64), Waker>,
}

impl ManualClock {
    /// A clock at its origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the time forward by `d` and wakes every sleeper now due.
    pub fn advance(&self, d: Duration) {
        let now = self.now() + d;
        self.set(now);
    }

    /// Moves the time to `t` (ignored if `t` is in the past: the clock is
    /// monotonic) and wakes every sleeper now due.
    pub fn set(&self, t: Instant) {
        let due: Vec<Waker> = {
            let mut st = lock(&self.inner);
            if t > st.now {
                st.now = t;
            }
            let now = st.now;
            let later = st.sleepers.split_off(&(now, u64::MAX));
            std::mem::replace(&mut st.sleepers, later)
                .into_values()
                .collect()
        };
        due.into_iter().for_each(Waker::wake);
    }

    /// How many sleepers are waiting for a future deadline.
    pub fn sleepers(&self) -> usize {
        lock(&self.inner).sleepers.len()
    }

    /// The earliest deadline anyone sleeps until, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        lock(&self.inner).sleepers.keys().next().map(|(t, _)| *t)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        lock(&self.inner).now
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(ManualSleep {
            clock: self.inner.clone(),
            deadline,
            key: None,
        })
    }
}

struct ManualSleep {
    clock: Arc<Mutex<ManualState>>,
    deadline: Instant,
    key: Option<u64>,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = lock(&this.clock);
        if st.now >= this.deadline {
            if let Some(k) = this.key.take() {
                st.sleepers.remove(&(this.deadline, k));
            }
            return Poll::Ready(());
        }
        let k = match this.key {
            Some(k) => k,
            None => {
                let k = st.next_sleeper;
                st.next_sleeper += 1;
                this.key = Some(k);
                k
            }
        };
        st.sleepers.insert((this.deadline, k), cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            lock(&self.clock).sleepers.remove(&(self.deadline, k));
        }
    }
}

/// Whole milliseconds of `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t - Instant::from_millis(9), Duration::ZERO);
        assert_eq!((t + Duration::MAX).since_origin(), Duration::MAX);
        assert_eq!(t.checked_add(Duration::MAX), None);
        assert_eq!(t.to_string(), "5ms");
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_in_deadline_order() {
        let clock = ManualClock::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for ms in [30u64, 10, 20] {
            let (c, o) = (clock.clone(), order.clone());
            handles.push(tokio::spawn(async move {
                c.sleep_until(Instant::from_millis(ms)).await;
                lock(&o).push(ms);
            }));
        }
        tokio::task::yield_now().await;
        while clock.sleepers() < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(clock.next_deadline(), Some(Instant::from_millis(10)));
        clock.advance(Duration::from_millis(19));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*lock(&order), vec![10]);
        clock.set(Instant::from_millis(30));
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(*lock(&order), vec![10, 20, 30]);
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        assert_eq!(clock.now(), Instant::ZERO);
        clock.sleep_until(Instant::from_millis(1500)).await;
        assert_eq!(clock.now(), Instant::from_millis(1500));
    }
}
