//! Typed errors: the reference's six kinds, plus one each for the steps of
//! making a session (connect, initialize, version negotiation, initialized
//! notification) and for operations.
//!
//! Every [`SessionError`] carries the operation that failed and, where one
//! was known, the session id, so a log line says what happened to which
//! session without any context around it.

use std::fmt;
use std::time::Duration;

use crate::config::{ConfigError, VersionPolicy};
use crate::transport::TransportError;

/// What the caller was doing when the error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Building a manager from a config.
    Create,
    /// Getting a session for a VU.
    Acquire,
    /// Running an MCP operation on a leased session.
    Use,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Acquire => "acquire",
            Op::Use => "use",
        })
    }
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The session is gone on the server (HTTP 404 for its id): invalidate
    /// the lease; the next acquire re-initializes.
    #[error("session expired")]
    SessionExpired,
    /// The session was closed by the client (evicted, churned, or the manager
    /// closed) before the operation was sent.
    #[error("session closed")]
    SessionClosed,
    /// `try_acquire` in pool mode found no idle session and no free slot.
    #[error("pool exhausted")]
    PoolExhausted,
    /// No session or slot came free within `acquire_timeout_ms`.
    #[error("pool timeout after {}ms", waited.as_millis())]
    PoolTimeout {
        /// How long the acquire waited.
        waited: Duration,
    },
    /// The manager was closed.
    #[error("manager closed")]
    ManagerClosed,
    /// The config was rejected.
    #[error("invalid configuration: {0}")]
    InvalidConfig(ConfigError),
    /// In reuse or churn mode the VU already holds its session: a VU runs
    /// one operation at a time.
    #[error("VU already holds its session")]
    VuBusy,
    /// The manager was started outside a tokio runtime (it needs one for its
    /// evictor and for closing sessions in the background).
    #[error("no tokio runtime: start the manager inside a runtime")]
    NoRuntime,
    /// Opening the transport failed.
    #[error("connect failed: {0}")]
    Connect(TransportError),
    /// The `initialize` request failed.
    #[error("initialize failed: {0}")]
    Initialize(TransportError),
    /// The server answered a protocol version the policy rejects.
    #[error("version negotiation failed: asked for {requested}, server answered {answered} (policy {policy})")]
    VersionNegotiation {
        /// The version asked for.
        requested: String,
        /// The version the server answered.
        answered: String,
        /// The policy that rejected it.
        policy: VersionPolicy,
    },
    /// The `notifications/initialized` notification failed.
    #[error("initialized notification failed: {0}")]
    InitializedNotification(TransportError),
    /// An operation on an established session failed (other than a 404,
    /// which is [`ErrorKind::SessionExpired`]).
    #[error("operation failed: {0}")]
    Operation(TransportError),
    /// Stateless era: the `server/discover` that opens a context failed
    /// (the era probe, or a refresh of a stale discover result). A server
    /// that does not speak 2026-07-28 with `era = modern` is
    /// [`TransportError::NotModern`] here.
    #[error("discover failed: {0}")]
    Discover(TransportError),
    /// A stateless-era request was answered as a legacy server answers it:
    /// the server changed era under the context. Invalidate the lease; the
    /// manager probes the era again for the next one.
    #[error("server era changed: {0}")]
    EraChanged(TransportError),
}

/// An error from session management.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}{}: {kind}", session.as_deref().map(|s| format!(" (session {s})")).unwrap_or_default())]
pub struct SessionError {
    /// What the caller was doing.
    pub op: Op,
    /// The session concerned, when one was known.
    pub session: Option<String>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl SessionError {
    /// An error of `kind` during `op`, about no particular session.
    pub fn new(op: Op, kind: ErrorKind) -> Self {
        SessionError {
            op,
            session: None,
            kind,
        }
    }

    /// The same error, about session `id`.
    pub fn with_session(mut self, id: impl Into<String>) -> Self {
        self.session = Some(id.into());
        self
    }

    /// Whether this error means the server lost the session (a 404 in the
    /// legacy era).
    pub fn is_session_expired(&self) -> bool {
        matches!(self.kind, ErrorKind::SessionExpired)
    }

    /// Whether the server changed era under a stateless-era context.
    pub fn is_era_changed(&self) -> bool {
        matches!(self.kind, ErrorKind::EraChanged(_))
    }

    /// Whether the lease should be invalidated rather than released: the
    /// server lost the session ([`SessionError::is_session_expired`]) or
    /// changed era ([`SessionError::is_era_changed`]).
    pub fn should_invalidate(&self) -> bool {
        self.is_session_expired() || self.is_era_changed()
    }

    /// The transport error underneath, if the failure came from the
    /// network or the server.
    pub fn transport(&self) -> Option<&TransportError> {
        match &self.kind {
            ErrorKind::Connect(e)
            | ErrorKind::Initialize(e)
            | ErrorKind::InitializedNotification(e)
            | ErrorKind::Operation(e)
            | ErrorKind::Discover(e)
            | ErrorKind::EraChanged(e) => Some(e),
            _ => None,
        }
    }

    /// A short, stable name for the kind, for metrics and traces.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::SessionExpired => "session_expired",
            ErrorKind::SessionClosed => "session_closed",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::PoolTimeout { .. } => "pool_timeout",
            ErrorKind::ManagerClosed => "manager_closed",
            ErrorKind::InvalidConfig(_) => "invalid_config",
            ErrorKind::VuBusy => "vu_busy",
            ErrorKind::NoRuntime => "no_runtime",
            ErrorKind::Connect(_) => "connect",
            ErrorKind::Initialize(_) => "initialize",
            ErrorKind::VersionNegotiation { .. } => "version_negotiation",
            ErrorKind::InitializedNotification(_) => "initialized_notification",
            ErrorKind::Operation(_) => "operation",
            ErrorKind::Discover(_) => "discover",
            ErrorKind::EraChanged(_) => "era_changed",
        }
    }
}

impl From<ConfigError> for SessionError {
    fn from(e: ConfigError) -> Self {
        SessionError::new(Op::Create, ErrorKind::InvalidConfig(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_op_session_and_kind() {
        let e = SessionError::new(Op::Use, ErrorKind::SessionExpired).with_session("abc");
        assert_eq!(e.to_string(), "use (session abc): session expired");
        let e = SessionError::new(
            Op::Acquire,
            ErrorKind::PoolTimeout {
                waited: Duration::from_millis(250),
            },
        );
        assert_eq!(e.to_string(), "acquire: pool timeout after 250ms");
        assert_eq!(e.kind_name(), "pool_timeout");
    }
}
