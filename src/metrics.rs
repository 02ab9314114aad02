//! Session metrics: the reference's nine counters with their names, plus the
//! closed-session split by reason and acquire-wait statistics.
//!
//! The counters obey identities that the tests and the simulation audit
//! check ([`SessionMetrics::check_accounting`]):
//! `total_created == live_sessions + closed.total()`,
//! `ttl_evictions == closed.ttl`, `idle_evictions == closed.idle`,
//! `total_evicted == ttl_evictions + idle_evictions`, and each of created,
//! closed, evicted and reconnects equal to the sum of its legacy-era and
//! stateless-era counts ([`EraMetrics`]).

use std::time::Duration;

use serde::Serialize;

use crate::era::SessionEra;
use crate::transport::CloseOutcome;

/// Why a session was closed. Every closed session has exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// It reached its TTL (found idle, or released after it).
    Ttl,
    /// It sat unused past `max_idle_ms`.
    Idle,
    /// Its lease was invalidated (the server lost it).
    Invalidated,
    /// Churn mode replaced it.
    Churned,
    /// Per-request mode: its one operation was done and it was released.
    Released,
    /// Its lease was dropped without `release` or `invalidate` (for example
    /// the VU's task was cancelled mid-operation); its state is unknown, so it
    /// is not reused.
    Dropped,
    /// The manager closed.
    Shutdown,
    /// It was initialized on the server but could not be completed (version
    /// rejected, initialized notification failed, or the acquire making it
    /// was cancelled).
    Failed,
}

impl CloseReason {
    /// Every reason, in declaration order.
    pub const ALL: [CloseReason; 8] = [
        CloseReason::Ttl,
        CloseReason::Idle,
        CloseReason::Invalidated,
        CloseReason::Churned,
        CloseReason::Released,
        CloseReason::Dropped,
        CloseReason::Shutdown,
        CloseReason::Failed,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Ttl => "ttl",
            CloseReason::Idle => "idle",
            CloseReason::Invalidated => "invalidated",
            CloseReason::Churned => "churned",
            CloseReason::Released => "released",
            CloseReason::Dropped => "dropped",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Failed => "failed",
        }
    }

    /// Whether this reason is an eviction (counted in `total_evicted`).
    pub fn is_eviction(self) -> bool {
        matches!(self, CloseReason::Ttl | CloseReason::Idle)
    }
}

/// Closed sessions, split by [`CloseReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClosedByReason {
    /// Closed at TTL.
    pub ttl: u64,
    /// Closed after idling too long.
    pub idle: u64,
    /// Closed because the lease was invalidated.
    pub invalidated: u64,
    /// Replaced by churn.
    pub churned: u64,
    /// Closed on release in per-request mode.
    pub released: u64,
    /// Closed because the lease was dropped unreturned.
    pub dropped: u64,
    /// Closed by `Manager::close`.
    pub shutdown: u64,
    /// Initialized but never completed.
    pub failed: u64,
}

impl ClosedByReason {
    /// The counter for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        match reason {
            CloseReason::Ttl => self.ttl,
            CloseReason::Idle => self.idle,
            CloseReason::Invalidated => self.invalidated,
            CloseReason::Churned => self.churned,
            CloseReason::Released => self.released,
            CloseReason::Dropped => self.dropped,
            CloseReason::Shutdown => self.shutdown,
            CloseReason::Failed => self.failed,
        }
    }

    fn slot(&mut self, reason: CloseReason) -> &mut u64 {
        match reason {
            CloseReason::Ttl => &mut self.ttl,
            CloseReason::Idle => &mut self.idle,
            CloseReason::Invalidated => &mut self.invalidated,
            CloseReason::Churned => &mut self.churned,
            CloseReason::Released => &mut self.released,
            CloseReason::Dropped => &mut self.dropped,
            CloseReason::Shutdown => &mut self.shutdown,
            CloseReason::Failed => &mut self.failed,
        }
    }

    /// All closed sessions.
    pub fn total(&self) -> u64 {
        CloseReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// What the closes did on the server, once their transport close ended:
/// a session is always closed on the client's side, but only a confirmed
/// DELETE ended it on the server. The counters add up to the closes whose
/// transport close has finished (all of them once [`crate::Manager::close`]
/// has returned; fewer while DELETEs are in flight).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerCloses {
    /// The server confirmed the DELETE: deleted there.
    pub deleted: u64,
    /// The server had already forgotten the session (404 to the DELETE, or
    /// to an earlier request, when no DELETE is sent).
    pub already_gone: u64,
    /// The server refused to let the client end the session (405).
    pub not_allowed: u64,
    /// The server issued no session id: nothing to delete, no DELETE sent.
    pub no_session_id: u64,
    /// Stateless-era contexts: nothing to delete, no DELETE sent.
    pub stateless: u64,
    /// The DELETE failed (an error status, the network, the close
    /// timeout): the session may still be alive on the server.
    pub failed: u64,
}

impl ServerCloses {
    /// The counter for `outcome`.
    pub fn get(&self, outcome: CloseOutcome) -> u64 {
        match outcome {
            CloseOutcome::Deleted => self.deleted,
            CloseOutcome::AlreadyGone => self.already_gone,
            CloseOutcome::NotAllowed => self.not_allowed,
            CloseOutcome::NoSessionId => self.no_session_id,
            CloseOutcome::Stateless => self.stateless,
        }
    }

    /// Counts one finished transport close: its outcome, or `None` for a
    /// failed DELETE.
    pub(crate) fn record(&mut self, outcome: Option<CloseOutcome>) {
        let slot = match outcome {
            Some(CloseOutcome::Deleted) => &mut self.deleted,
            Some(CloseOutcome::AlreadyGone) => &mut self.already_gone,
            Some(CloseOutcome::NotAllowed) => &mut self.not_allowed,
            Some(CloseOutcome::NoSessionId) => &mut self.no_session_id,
            Some(CloseOutcome::Stateless) => &mut self.stateless,
            None => &mut self.failed,
        };
        *slot += 1;
    }

    /// Every finished transport close.
    pub fn total(&self) -> u64 {
        CloseOutcome::ALL.iter().map(|o| self.get(*o)).sum::<u64>() + self.failed
    }
}

/// How long acquires waited in the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WaitStats {
    /// Acquires that had to wait (equals `pool_waits`).
    pub count: u64,
    /// Of those, how many ended with a session or slot.
    pub served: u64,
    /// Of those, how many were cancelled by the caller while waiting (not
    /// counted as timeouts).
    pub cancelled: u64,
    /// Total time spent waiting, in milliseconds.
    pub total_ms: u64,
    /// The longest single wait, in milliseconds.
    pub max_ms: u64,
}

impl WaitStats {
    /// The mean wait in milliseconds (0 when nobody waited).
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

/// A snapshot of a manager's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SessionMetrics {
    /// Sessions leased to a VU right now.
    pub active_sessions: u64,
    /// Open sessions not leased right now.
    pub idle_sessions: u64,
    /// Open sessions: leased, idle, or initialized and being completed.
    /// Counted from the manager's registry of sessions, independently of
    /// the other counters, so `total_created == live_sessions +
    /// closed.total()` is a real check.
    pub live_sessions: u64,
    /// Sessions the server initialized for this manager.
    pub total_created: u64,
    /// Sessions closed by TTL or idle eviction.
    pub total_evicted: u64,
    /// Sessions closed at their TTL.
    pub ttl_evictions: u64,
    /// Sessions closed after idling too long.
    pub idle_evictions: u64,
    /// Sessions created to replace one invalidated after a 404.
    pub reconnects: u64,
    /// Acquires that had to wait for a pool session or slot.
    pub pool_waits: u64,
    /// Acquires that gave up waiting at `acquire_timeout_ms`.
    pub pool_timeouts: u64,
    /// Closed sessions by reason.
    pub closed: ClosedByReason,
    /// What those closes did on the server (deleted there, nothing to
    /// delete, the DELETE failed, ...).
    pub server_closes: ServerCloses,
    /// Pool acquire wait statistics.
    pub acquire_wait: WaitStats,
    /// The era negotiation, and the session counters split by era.
    pub eras: EraMetrics,
}

/// The session counters of one era. (The pool's wait counters are not
/// split: an acquire has no era until its session is made.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EraCounts {
    /// Sessions (stateless era: client contexts) open now.
    pub live: u64,
    /// Sessions (stateless era: client contexts) created.
    pub created: u64,
    /// Of those, closed, by reason.
    pub closed: ClosedByReason,
    /// Closed by TTL or idle eviction.
    pub evicted: u64,
    /// Closed at their TTL.
    pub ttl_evictions: u64,
    /// Closed after idling too long.
    pub idle_evictions: u64,
    /// Created to replace one invalidated (after a 404, or an era change).
    pub reconnects: u64,
}

/// How the manager found its server's era, and the counters by era.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EraMetrics {
    /// `server/discover` requests sent to make a context (the first probe
    /// of an `auto` manager, every re-probe, and every refresh of a stale
    /// discover result).
    pub discover_probes: u64,
    /// Probes answered as a legacy server answers: `initialize` followed.
    pub fallbacks_to_legacy: u64,
    /// Requests retried at another revision after -32022.
    pub version_retries: u64,
    /// Probes sent because a verdict stopped holding (a legacy session
    /// lost, a modern request answered as legacy, an `initialize` refused
    /// with a modern error).
    pub era_reprobes: u64,
    /// Stateless-era requests answered as a legacy server answers.
    pub era_changes: u64,
    /// The session counters of the legacy era.
    pub legacy: EraCounts,
    /// The session counters of the stateless era.
    pub modern: EraCounts,
}

impl EraMetrics {
    /// The counters of `era`.
    pub fn of(&self, era: SessionEra) -> &EraCounts {
        match era {
            SessionEra::Legacy => &self.legacy,
            SessionEra::Modern => &self.modern,
        }
    }

    pub(crate) fn of_mut(&mut self, era: SessionEra) -> &mut EraCounts {
        match era {
            SessionEra::Legacy => &mut self.legacy,
            SessionEra::Modern => &mut self.modern,
        }
    }
}

impl SessionMetrics {
    /// Open sessions (the same as `live_sessions`).
    pub fn live(&self) -> u64 {
        self.live_sessions
    }

    /// Checks the accounting identities; `Err` names the one that broke.
    pub fn check_accounting(&self) -> Result<(), String> {
        let closed = self.closed.total();
        if self.total_created != self.live_sessions + closed {
            return Err(format!(
                "total_created {} != live {} + closed {}",
                self.total_created, self.live_sessions, closed
            ));
        }
        if self.server_closes.total() > closed {
            return Err(format!(
                "server closes {} > closed {closed}",
                self.server_closes.total()
            ));
        }
        if self.active_sessions + self.idle_sessions > self.live_sessions {
            return Err(format!(
                "active {} + idle {} > live {}",
                self.active_sessions, self.idle_sessions, self.live_sessions
            ));
        }
        if self.ttl_evictions != self.closed.ttl
            || self.idle_evictions != self.closed.idle
            || self.total_evicted != self.ttl_evictions + self.idle_evictions
        {
            return Err(format!(
                "evictions: total {} ttl {} idle {} vs closed ttl {} idle {}",
                self.total_evicted,
                self.ttl_evictions,
                self.idle_evictions,
                self.closed.ttl,
                self.closed.idle
            ));
        }
        let (l, m) = (&self.eras.legacy, &self.eras.modern);
        for (what, by_era, total) in [
            ("created", l.created + m.created, self.total_created),
            ("closed", l.closed.total() + m.closed.total(), closed),
            ("live", l.live + m.live, self.live_sessions),
            ("evicted", l.evicted + m.evicted, self.total_evicted),
            ("ttl", l.ttl_evictions + m.ttl_evictions, self.ttl_evictions),
            (
                "idle",
                l.idle_evictions + m.idle_evictions,
                self.idle_evictions,
            ),
            ("reconnects", l.reconnects + m.reconnects, self.reconnects),
        ] {
            if by_era != total {
                return Err(format!(
                    "{what} by era: legacy + modern = {by_era} != total {total}"
                ));
            }
        }
        if self.pool_timeouts + self.acquire_wait.served + self.acquire_wait.cancelled
            > self.pool_waits
        {
            return Err(format!(
                "waits: timeouts {} + served {} + cancelled {} > waits {}",
                self.pool_timeouts,
                self.acquire_wait.served,
                self.acquire_wait.cancelled,
                self.pool_waits
            ));
        }
        Ok(())
    }

    pub(crate) fn record_close(&mut self, reason: CloseReason, era: SessionEra) {
        *self.closed.slot(reason) += 1;
        let by_era = self.eras.of_mut(era);
        *by_era.closed.slot(reason) += 1;
        match reason {
            CloseReason::Ttl => {
                self.ttl_evictions += 1;
                by_era.ttl_evictions += 1;
            }
            CloseReason::Idle => {
                self.idle_evictions += 1;
                by_era.idle_evictions += 1;
            }
            _ => {}
        }
        if reason.is_eviction() {
            self.total_evicted += 1;
            by_era.evicted += 1;
        }
    }

    pub(crate) fn record_created(&mut self, era: SessionEra) {
        self.total_created += 1;
        self.eras.of_mut(era).created += 1;
    }

    pub(crate) fn record_reconnect(&mut self, era: SessionEra) {
        self.reconnects += 1;
        self.eras.of_mut(era).reconnects += 1;
    }

    pub(crate) fn record_wait_end(&mut self, waited: Duration) {
        let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        self.acquire_wait.total_ms = self.acquire_wait.total_ms.saturating_add(ms);
        self.acquire_wait.max_ms = self.acquire_wait.max_ms.max(ms);
    }
}
