//! Sessions: their public description ([`SessionInfo`], [`SessionState`])
//! and the shared handle the manager and a lease both hold.

use std::fmt;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::Instant;
use crate::era::SessionEra;
use crate::eviction::{Deadlines, Entry};
use crate::metrics::CloseReason;
use crate::observe::VuId;
use crate::sync::lock;

/// Where a session is in its life:
/// `creating → active ⇄ idle → expired | closed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Being initialized.
    Creating,
    /// Leased to a VU.
    Active,
    /// Open, not leased.
    Idle,
    /// Closed by TTL or idle eviction.
    Expired,
    /// Closed for any other reason.
    Closed,
}

impl SessionState {
    /// Whether the session is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Expired | SessionState::Closed)
    }

    /// Whether `self → next` is a legal transition:
    ///
    /// ```text
    /// creating ──▶ active ⇄ idle
    ///     │          │       │
    ///     └──────────┴───────┴──▶ expired | closed   (terminal)
    /// ```
    ///
    /// `creating → closed` is a session the server initialized but the
    /// client could not complete; `expired` (TTL or idle) is reached only
    /// from `idle` or, at release past TTL, from `active`. Staying in the
    /// same state is not a transition.
    pub fn can_become(self, next: SessionState) -> bool {
        use SessionState::*;
        matches!(
            (self, next),
            (Creating, Active)
                | (Active, Idle)
                | (Idle, Active)
                | (Creating | Active | Idle, Closed)
                | (Active | Idle, Expired)
        )
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Creating => "creating",
            SessionState::Active => "active",
            SessionState::Idle => "idle",
            SessionState::Expired => "expired",
            SessionState::Closed => "closed",
        })
    }
}

/// A snapshot of one session, as a lease sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The session id: the server's `Mcp-Session-Id`, or `local-N` (N from
    /// a per-manager counter) for a stateless server.
    pub id: String,
    /// The VU holding it.
    pub vu: VuId,
    /// Its state.
    pub state: SessionState,
    /// The era the session speaks.
    pub era: SessionEra,
    /// The protocol revision agreed with the server (stateless era: the
    /// revision its requests carry).
    pub protocol_version: String,
    /// When it was created.
    pub created_at: Instant,
    /// When it was last released (or created, if never released).
    pub last_used_at: Instant,
    /// When it reaches its TTL, if it has one.
    pub expires_at: Option<Instant>,
    /// `last_used_at + max_idle`: when it is evicted if it stays idle, if
    /// idle eviction is on.
    pub idle_expires_at: Option<Instant>,
    /// Operations run on it so far.
    pub operation_count: u64,
}

/// The shared handle of one live session: its transport connection and
/// whether (and why) the client has closed it. The manager's registry and
/// the lease of the VU using it both point here, so the manager can close a
/// session a VU holds and the VU sees it at its next operation.
pub(crate) struct LiveSession<X> {
    pub key: u64,
    pub id: String,
    pub era: SessionEra,
    pub protocol_version: String,
    pub conn: X,
    status: Mutex<Status>,
}

/// Where a session is, and why it ended if it did.
#[derive(Clone, Copy, Debug)]
struct Status {
    state: SessionState,
    closed: Option<CloseReason>,
}

impl<X> LiveSession<X> {
    /// A session the server has just initialized (state `creating`).
    pub fn new(key: u64, id: String, era: SessionEra, protocol_version: String, conn: X) -> Self {
        LiveSession {
            key,
            id,
            era,
            protocol_version,
            conn,
            status: Mutex::new(Status {
                state: SessionState::Creating,
                closed: None,
            }),
        }
    }

    /// Moves an open session to `next` (`active` or `idle`). A closed
    /// session stays closed: a lease given back after `close()` must not
    /// revive it.
    pub fn set_state(&self, next: SessionState) {
        let mut s = lock(&self.status);
        if s.state.is_terminal() || s.state == next {
            return;
        }
        debug_assert!(
            s.state.can_become(next),
            "illegal transition {} -> {next}",
            s.state
        );
        s.state = next;
    }

    /// The current state.
    pub fn state(&self) -> SessionState {
        lock(&self.status).state
    }

    /// Marks the session closed for `reason` (state `expired` for an
    /// eviction, `closed` otherwise). Only the first call wins, and only the
    /// winner may count the close: so every session is counted under exactly
    /// one reason, however many paths race to close it.
    pub fn mark_closed(&self, reason: CloseReason) -> bool {
        let mut s = lock(&self.status);
        if s.closed.is_some() {
            return false;
        }
        let next = if reason.is_eviction() {
            SessionState::Expired
        } else {
            SessionState::Closed
        };
        debug_assert!(
            s.state.can_become(next),
            "illegal transition {} -> {next}",
            s.state
        );
        *s = Status {
            state: next,
            closed: Some(reason),
        };
        true
    }

    /// Runs `f` if the session is open, atomically with that check (under
    /// the session's own lock, which [`LiveSession::mark_closed`] also takes): an
    /// event `f` reports is thus ordered before the close's, or not
    /// reported at all. Returns whether it ran.
    pub fn if_open(&self, f: impl FnOnce()) -> bool {
        let s = lock(&self.status);
        if s.closed.is_some() {
            return false;
        }
        f();
        true
    }

    /// Why the session was closed, if it was.
    pub fn closed(&self) -> Option<CloseReason> {
        lock(&self.status).closed
    }

    pub fn info(&self, e: &Entry<impl Sized>, vu: VuId, d: &Deadlines) -> SessionInfo {
        SessionInfo {
            id: self.id.clone(),
            vu,
            state: self.state(),
            era: self.era,
            protocol_version: self.protocol_version.clone(),
            created_at: e.created_at,
            last_used_at: e.last_used,
            expires_at: d.ttl_deadline(e),
            idle_expires_at: d.idle_deadline(e),
            operation_count: e.ops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SessionState::{self, *};

    #[test]
    fn transition_table() {
        let all = [Creating, Active, Idle, Expired, Closed];
        let legal: Vec<(SessionState, SessionState)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            legal,
            vec![
                (Creating, Active),
                (Creating, Closed),
                (Active, Idle),
                (Active, Expired),
                (Active, Closed),
                (Idle, Active),
                (Idle, Expired),
                (Idle, Closed),
            ]
        );
        assert!(all
            .iter()
            .filter(|s| s.is_terminal())
            .eq([Expired, Closed].iter()));
    }

    #[test]
    fn closed_sessions_stay_closed() {
        let c = super::LiveSession::new(
            1,
            "s".into(),
            crate::SessionEra::Legacy,
            "2025-11-25".into(),
            (),
        );
        assert_eq!(c.state(), Creating);
        c.set_state(Active);
        c.set_state(Idle);
        assert!(c.mark_closed(crate::metrics::CloseReason::Idle));
        assert_eq!(c.state(), Expired);
        assert!(
            !c.mark_closed(crate::metrics::CloseReason::Shutdown),
            "first close wins"
        );
        c.set_state(Active);
        assert_eq!(c.state(), Expired);
        assert_eq!(c.closed(), Some(crate::metrics::CloseReason::Idle));
    }
}
