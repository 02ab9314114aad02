//! Sessions: their public description ([`SessionInfo`], [`SessionState`])
//! and the shared handle the manager and a lease both hold.

use std::fmt;
use std::sync::Mutex;

use serde::Serialize;

use crate::clock::{lock, Instant};
use crate::eviction::{Deadlines, Entry};
use crate::metrics::CloseReason;
use crate::observe::VuId;

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
    /// The protocol revision agreed with the server.
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
pub(crate) struct Cell<X> {
    pub key: u64,
    pub id: String,
    pub protocol_version: String,
    pub conn: X,
    closed: Mutex<Option<CloseReason>>,
}

impl<X> Cell<X> {
    pub fn new(key: u64, id: String, protocol_version: String, conn: X) -> Self {
        Cell {
            key,
            id,
            protocol_version,
            conn,
            closed: Mutex::new(None),
        }
    }

    /// Marks the session closed for `reason`. Only the first call wins, and
    /// only the winner may count the close: so every session is counted
    /// under exactly one reason, however many paths race to close it.
    pub fn mark_closed(&self, reason: CloseReason) -> bool {
        let mut c = lock(&self.closed);
        if c.is_some() {
            return false;
        }
        *c = Some(reason);
        true
    }

    /// Why the session was closed, if it was.
    pub fn closed(&self) -> Option<CloseReason> {
        *lock(&self.closed)
    }

    pub fn info(&self, e: &Entry<impl Sized>, vu: VuId, d: &Deadlines) -> SessionInfo {
        let state = match self.closed() {
            None => SessionState::Active,
            Some(r) if r.is_eviction() => SessionState::Expired,
            Some(_) => SessionState::Closed,
        };
        SessionInfo {
            id: self.id.clone(),
            vu,
            state,
            protocol_version: self.protocol_version.clone(),
            created_at: e.created_at,
            last_used_at: e.last_used,
            expires_at: d.ttl_deadline(e),
            idle_expires_at: d.idle_deadline(e),
            operation_count: e.ops,
        }
    }
}
