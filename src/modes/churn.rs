//! Churn mode: reuse, except that a VU's session is retired (closed with
//! reason `churned`) after `churn_interval_ops` operations, or — when that is
//! 0 — once it is `churn_interval_ms` old, by the injected clock. The check
//! runs at release (so a spent session is not kept idle) and at acquire (for
//! time that passed while it was idle). Eviction applies as in reuse.

use std::time::Duration;

use crate::clock::Instant;
use crate::config::SessionConfig;
use crate::eviction::Entry;

/// When a VU's session is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Churn {
    /// Never (reuse mode).
    Never,
    /// After this many operations.
    AfterOps(u64),
    /// Once this old.
    AfterTime(Duration),
}

impl Churn {
    /// The policy `cfg` asks for (reuse's is [`Churn::Never`]).
    pub fn from_config(cfg: &SessionConfig) -> Self {
        match (cfg.churn_ops(), cfg.churn_interval()) {
            (0, Some(d)) => Churn::AfterTime(d),
            (0, None) => Churn::Never,
            (n, _) => Churn::AfterOps(n),
        }
    }

    /// Whether `e` is spent at `now`.
    pub fn due<T>(&self, e: &Entry<T>, now: Instant) -> bool {
        match *self {
            Churn::Never => false,
            Churn::AfterOps(n) => e.ops >= n,
            Churn::AfterTime(d) => now >= e.created_at + d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_time_policies() {
        let mut e = Entry::new((), Instant::from_millis(100));
        let by_ops = Churn::AfterOps(2);
        e.ops = 1;
        assert!(!by_ops.due(&e, Instant::from_millis(100)));
        e.ops = 2;
        assert!(by_ops.due(&e, Instant::from_millis(100)));
        let by_time = Churn::AfterTime(Duration::from_millis(50));
        assert!(!by_time.due(&e, Instant::from_millis(149)));
        assert!(by_time.due(&e, Instant::from_millis(150)));
        assert!(!Churn::Never.due(&e, Instant::from_millis(u64::MAX)));
    }

    #[test]
    fn from_config_follows_the_reference_rule() {
        let mut c = SessionConfig::with_mode(crate::config::Mode::Churn);
        assert_eq!(Churn::from_config(&c), Churn::AfterOps(1));
        c.churn_interval_ops = 0;
        c.churn_interval_ms = 250;
        assert_eq!(
            Churn::from_config(&c),
            Churn::AfterTime(Duration::from_millis(250))
        );
    }
}
