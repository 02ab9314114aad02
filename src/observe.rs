//! Events: every state change of the manager, reported to an [`EventSink`].
//!
//! The simulation records them into its trace and audits the laws from them;
//! a user can log them with [`TracingSink`] or collect them with
//! [`RecordingSink`]. The default sink, [`NoopSink`], does nothing.
//!
//! Events are reported while the manager holds its state lock, so their order
//! is the order in which the state changed. A sink must therefore be quick and
//! must never call back into the manager.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::clock::Instant;
use crate::era::SessionEra;
use crate::metrics::CloseReason;

/// A virtual user's identifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct VuId(pub u64);

impl From<u64> for VuId {
    fn from(n: u64) -> Self {
        VuId(n)
    }
}

impl std::fmt::Display for VuId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vu-{}", self.0)
    }
}

/// One state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Clock time of the change.
    pub at: Instant,
    /// The VU concerned, if any.
    pub vu: Option<VuId>,
    /// The session concerned, if any (its id as the server knows it).
    pub session: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened. Names are stable: traces are hashed over them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A VU asked for a session.
    AcquireStart,
    /// The pool was full: the acquire joined the waiter queue at `position`
    /// (0 = first), to give up at `deadline`.
    AcquireWait {
        /// Place in the queue on arrival.
        position: usize,
        /// When the acquire times out.
        deadline: Instant,
    },
    /// The acquire got a session.
    AcquireOk {
        /// Whether the session was made for this acquire.
        created: bool,
        /// Whether it was made to replace one invalidated after a 404
        /// (counted in `reconnects`).
        reconnect: bool,
        /// How long the acquire waited in the pool queue, in ms.
        waited_ms: u64,
    },
    /// The acquire timed out waiting.
    AcquireTimeout {
        /// How long it waited, in ms.
        waited_ms: u64,
    },
    /// The acquire failed.
    AcquireError {
        /// [`crate::SessionError::kind_name`] of the error.
        error: &'static str,
    },
    /// The acquire's future was dropped before it finished.
    AcquireCancelled {
        /// Whether it was waiting in the pool queue (rather than creating).
        waiting: bool,
    },
    /// A queued pool acquire was given what it waited for: a released
    /// session (`session` is set) or a free slot to create one in (`slot`).
    /// Emitted when the grant is made, before the waiter's task runs.
    WaiterGranted {
        /// A slot (the waiter will create a session) rather than a session.
        slot: bool,
    },
    /// A pool slot was reserved for the acquire, which now creates a session.
    SlotReserved,
    /// A reserved slot was freed without a session (create failed or was
    /// cancelled).
    SlotFreed,
    /// A session was initialized on the server, or (stateless era) a
    /// client context was made (counted in `total_created`).
    Created {
        /// The era it speaks.
        era: SessionEra,
    },
    /// A `server/discover` probe was answered: the verdict on the
    /// server's era (`modern`, `legacy` for a fallback to `initialize`, or
    /// `failed` when the answer decided nothing) and what the server said.
    EraProbed {
        /// The revision probed with.
        version: String,
        /// `modern`, `legacy` or `failed`.
        verdict: &'static str,
        /// Why the era was probed again, when it had a verdict before.
        reprobe: Option<&'static str>,
        /// What the answer was, for `legacy` and `failed`.
        answer: Option<String>,
        /// For `modern`: the discover result's `ttlMs` (capped at the
        /// longest duration a config takes), how long it is used without
        /// asking again, counted from this event. Left out when absent,
        /// as the trace leaves it out.
        #[serde(skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    /// A request was refused with -32022 and sent again at another
    /// revision (counted in `version_retries`).
    VersionRetried {
        /// The revision refused.
        from: String,
        /// The revision retried with.
        to: String,
    },
    /// A stateless-era request was answered as a legacy server answers it
    /// (counted in `era_changes`); the era is probed again.
    EraChanged,
    /// An operation is about to be sent on the session.
    OperationStart {
        /// The MCP method.
        method: &'static str,
    },
    /// The operation finished.
    OperationEnd {
        /// The MCP method.
        method: &'static str,
        /// `None` on success, else [`crate::SessionError::kind_name`].
        error: Option<&'static str>,
    },
    /// The lease was given back.
    Released,
    /// The lease was given back as invalid (the server lost the session).
    Invalidated,
    /// The lease was dropped without being given back.
    LeaseDropped,
    /// The session was closed by the client, for `reason`. Emitted once per
    /// session, when its close is decided (before the transport's close is
    /// sent).
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// The transport's close of a session (the HTTP DELETE) failed: the
    /// server refused it or could not be reached. The session is closed on
    /// the client all the same; the server may still hold it.
    CloseFailed {
        /// What the transport said.
        error: String,
    },
    /// `Manager::close` started.
    ManagerClosing,
    /// `Manager::close` finished: every session is closed.
    ManagerClosed,
}

/// Receives every [`Event`]. Called with the manager's lock held: be quick,
/// and never call the manager from here.
pub trait EventSink: Send + Sync + 'static {
    /// Record one event.
    fn record(&self, event: &Event);

    /// Whether this sink wants events at all. A sink that returns `false`
    /// is never called, and the manager does not build the events (no
    /// allocation on the hot path).
    fn enabled(&self) -> bool {
        true
    }
}

/// The default sink: ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopSink;

impl EventSink for NoopSink {
    fn record(&self, _: &Event) {}

    fn enabled(&self) -> bool {
        false
    }
}

/// Logs every event at `debug` level through `tracing`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn record(&self, e: &Event) {
        tracing::debug!(
            at_ms = e.at.as_millis(),
            vu = ?e.vu,
            session = e.session.as_deref().unwrap_or("-"),
            kind = ?e.kind,
            "mcp-session event"
        );
    }
}

/// Keeps every event in memory, in order: for tests and small runs.
#[derive(Clone, Debug, Default)]
pub struct RecordingSink {
    events: Arc<Mutex<Vec<Event>>>,
}

impl RecordingSink {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<Event> {
        crate::sync::lock(&self.events).clone()
    }

    /// Every event kind so far, in order (handy in assertions).
    pub fn kinds(&self) -> Vec<EventKind> {
        crate::sync::lock(&self.events)
            .iter()
            .map(|e| e.kind.clone())
            .collect()
    }
}

impl EventSink for RecordingSink {
    fn record(&self, event: &Event) {
        crate::sync::lock(&self.events).push(event.clone());
    }
}
