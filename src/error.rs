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
///
/// Every kind has a predicate, derived from the enum (`is_vu_busy()`,
/// `is_pool_timeout()`, `is_connect()`, ... — the variant's name in
/// snake_case), and a stable name ([`ErrorKind::name`]); the kinds a caller
/// usually branches on have the same predicates on [`SessionError`].
///
/// The error underneath a transport kind (`Connect`, `Initialize`,
/// `Operation`, ...) is its [`std::error::Error::source`], and the lower
/// layer's error under that one (an I/O error, hyper's, serde_json's) is
/// its source in turn ([`crate::transport::Cause`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr, strum::EnumIs)]
#[strum(serialize_all = "snake_case")]
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
    InvalidConfig(#[source] ConfigError),
    /// In reuse or churn mode the VU already holds its session: one lease
    /// per VU at a time. The Go reference handed back the same session
    /// instead, so two operations of one VU could share it concurrently and
    /// give it back twice. Release (or invalidate) the lease first, or run
    /// concurrent work as separate VUs (distinct [`crate::VuId`]s), each
    /// with its own session — see [`crate::Manager::acquire`].
    #[error("VU already holds its session")]
    VuBusy,
    /// The manager was started outside a tokio runtime (it needs one for its
    /// deadline timer and for closing sessions in the background).
    #[error("no tokio runtime: start the manager inside a runtime")]
    NoRuntime,
    /// Opening the transport failed.
    #[error("connect failed: {0}")]
    Connect(#[source] TransportError),
    /// The `initialize` request failed.
    #[error("initialize failed: {0}")]
    Initialize(#[source] TransportError),
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
    InitializedNotification(#[source] TransportError),
    /// An operation on an established session failed (other than a 404,
    /// which is [`ErrorKind::SessionExpired`]).
    #[error("operation failed: {0}")]
    Operation(#[source] TransportError),
    /// Stateless era: the `server/discover` that opens a context failed
    /// (the era probe, or a refresh of a stale discover result). A server
    /// that does not speak 2026-07-28 with `era = modern` is
    /// [`TransportError::NotModern`] here.
    #[error("discover failed: {0}")]
    Discover(#[source] TransportError),
    /// A stateless-era request was answered as a legacy server answers it:
    /// the server changed era under the context. Invalidate the lease; the
    /// manager probes the era again for the next one.
    #[error("server era changed: {0}")]
    EraChanged(#[source] TransportError),
}

impl ErrorKind {
    /// A short, stable name for the kind, for metrics and traces: the
    /// variant's name in snake_case (`vu_busy`, `pool_timeout`, `connect`),
    /// derived from the enum, so no variant can lack one.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// An error from session management.
///
/// Its `Display` names the operation, the session and the kind
/// (`acquire (session s-1): connect failed: connect: ...`); its
/// [`std::error::Error::source`] is the kind's: the transport error for a
/// transport kind, whose own source is the lower layer's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionError {
    /// What the caller was doing.
    pub op: Op,
    /// The session concerned, when one was known.
    pub session: Option<String>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(s) = &self.session {
            write!(f, " (session {s})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for SessionError {
    /// The kind's source: the kind's text is already part of this error's
    /// `Display`, so the chain goes on from the error underneath it.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
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
    #[must_use = "with_session returns the error with the session set; the one it was called on is gone"]
    pub fn with_session(mut self, id: impl Into<String>) -> Self {
        self.session = Some(id.into());
        self
    }

    /// Whether this error means the server lost the session (a 404 in the
    /// legacy era).
    pub fn is_session_expired(&self) -> bool {
        self.kind.is_session_expired()
    }

    /// Whether the server changed era under a stateless-era context.
    pub fn is_era_changed(&self) -> bool {
        self.kind.is_era_changed()
    }

    /// Whether the client had closed the session before the operation was
    /// sent ([`ErrorKind::SessionClosed`]).
    pub fn is_session_closed(&self) -> bool {
        self.kind.is_session_closed()
    }

    /// Whether the VU already holds its lease ([`ErrorKind::VuBusy`]: reuse
    /// and churn mode give one lease per VU at a time).
    pub fn is_vu_busy(&self) -> bool {
        self.kind.is_vu_busy()
    }

    /// Whether `try_acquire` found the pool full ([`ErrorKind::PoolExhausted`]).
    pub fn is_pool_exhausted(&self) -> bool {
        self.kind.is_pool_exhausted()
    }

    /// Whether an acquire waited its whole timeout for a pool session
    /// ([`ErrorKind::PoolTimeout`]).
    pub fn is_pool_timeout(&self) -> bool {
        self.kind.is_pool_timeout()
    }

    /// Whether the manager was closed ([`ErrorKind::ManagerClosed`]).
    pub fn is_manager_closed(&self) -> bool {
        self.kind.is_manager_closed()
    }

    /// Whether the config was refused ([`ErrorKind::InvalidConfig`]).
    pub fn is_invalid_config(&self) -> bool {
        self.kind.is_invalid_config()
    }

    /// Whether the manager was started outside a tokio runtime
    /// ([`ErrorKind::NoRuntime`]).
    pub fn is_no_runtime(&self) -> bool {
        self.kind.is_no_runtime()
    }

    /// Whether the server's protocol revision was refused by the policy
    /// ([`ErrorKind::VersionNegotiation`]).
    pub fn is_version_negotiation(&self) -> bool {
        self.kind.is_version_negotiation()
    }

    /// Whether the network or the server failed: the error has a
    /// [`TransportError`] underneath ([`SessionError::transport`]).
    pub fn is_transport(&self) -> bool {
        self.transport().is_some()
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

    /// A short, stable name for the kind, for metrics and traces
    /// ([`ErrorKind::name`]).
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
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

    /// One error of every kind, with the name traces and metrics carry.
    fn every_kind() -> Vec<(ErrorKind, &'static str)> {
        let t = || TransportError::connect("refused");
        vec![
            (ErrorKind::SessionExpired, "session_expired"),
            (ErrorKind::SessionClosed, "session_closed"),
            (ErrorKind::PoolExhausted, "pool_exhausted"),
            (
                ErrorKind::PoolTimeout {
                    waited: Duration::from_millis(5),
                },
                "pool_timeout",
            ),
            (ErrorKind::ManagerClosed, "manager_closed"),
            (
                ErrorKind::InvalidConfig(ConfigError::ChurnBothSet { ms: 1, ops: 1 }),
                "invalid_config",
            ),
            (ErrorKind::VuBusy, "vu_busy"),
            (ErrorKind::NoRuntime, "no_runtime"),
            (ErrorKind::Connect(t()), "connect"),
            (ErrorKind::Initialize(t()), "initialize"),
            (
                ErrorKind::VersionNegotiation {
                    requested: "2025-11-25".into(),
                    answered: "2024-11-05".into(),
                    policy: VersionPolicy::Strict,
                },
                "version_negotiation",
            ),
            (
                ErrorKind::InitializedNotification(t()),
                "initialized_notification",
            ),
            (ErrorKind::Operation(t()), "operation"),
            (ErrorKind::Discover(t()), "discover"),
            (ErrorKind::EraChanged(t()), "era_changed"),
        ]
    }

    /// The derived names are the ones traces have always carried (they
    /// reach the trace hashes): a rename of a variant shows up here.
    #[test]
    fn kind_names_are_the_variants_in_snake_case() {
        for (kind, name) in every_kind() {
            assert_eq!(kind.name(), name);
            assert_eq!(SessionError::new(Op::Use, kind).kind_name(), name);
        }
    }

    /// Each error answers exactly its own predicate among those on
    /// `SessionError`, and agrees with the derived one on its kind.
    #[test]
    fn predicates_answer_for_their_own_kind_only() {
        type Predicate = fn(&SessionError) -> bool;
        let predicates: [(&str, Predicate); 10] = [
            ("session_expired", SessionError::is_session_expired),
            ("session_closed", SessionError::is_session_closed),
            ("pool_exhausted", SessionError::is_pool_exhausted),
            ("pool_timeout", SessionError::is_pool_timeout),
            ("manager_closed", SessionError::is_manager_closed),
            ("invalid_config", SessionError::is_invalid_config),
            ("vu_busy", SessionError::is_vu_busy),
            ("no_runtime", SessionError::is_no_runtime),
            ("version_negotiation", SessionError::is_version_negotiation),
            ("era_changed", SessionError::is_era_changed),
        ];
        for (kind, name) in every_kind() {
            let e = SessionError::new(Op::Acquire, kind);
            for (p_name, p) in predicates {
                assert_eq!(p(&e), p_name == name, "{p_name} of {name}");
            }
            assert_eq!(e.is_transport(), e.transport().is_some(), "{name}");
        }
        let e = SessionError::new(Op::Acquire, ErrorKind::VuBusy);
        assert!(e.kind.is_vu_busy() && !e.kind.is_pool_timeout());
        assert!(ErrorKind::Connect(TransportError::connect("x")).is_connect());
    }

    /// `source()` goes from the session error past the kind (whose text
    /// the `Display` already holds) to the transport error, and on to the
    /// lower layer's error, typed; `Display` reads as it always did.
    #[test]
    fn sources_chain_down_to_the_lower_layers_error() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let t = TransportError::Connect {
            message: format!("127.0.0.1:9: ConnectionRefused: {io}"),
            source: Some(crate::transport::Cause::new(io)),
        };
        let e = SessionError::new(Op::Acquire, ErrorKind::Connect(t.clone())).with_session("s-1");
        assert_eq!(
            e.to_string(),
            "acquire (session s-1): connect failed: connect: 127.0.0.1:9: ConnectionRefused: refused"
        );
        let first = e.source().expect("the transport error");
        assert_eq!(first.downcast_ref::<TransportError>(), Some(&t));
        let io = first.source().expect("the I/O error");
        let io = io.downcast_ref::<std::io::Error>().expect("typed");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(e.is_transport());
        // A config error is the source of an invalid-config error.
        let e = SessionError::from(ConfigError::ChurnBothSet { ms: 1, ops: 2 });
        let c = e.source().and_then(|s| s.downcast_ref::<ConfigError>());
        assert_eq!(c, Some(&ConfigError::ChurnBothSet { ms: 1, ops: 2 }));
        // Kinds with nothing underneath have no source.
        assert!(SessionError::new(Op::Acquire, ErrorKind::VuBusy)
            .source()
            .is_none());
    }
}
