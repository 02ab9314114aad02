//! # mcp-session
//!
//! MCP client session management for load testing: a [`Manager`] hands
//! sessions to virtual users (VUs) in one of four [`Mode`]s — `reuse`,
//! `per_request`, `pool`, `churn` — with a bounded, FIFO-fair pool, acquire
//! timeouts, TTL and idle eviction, re-initialization after a 404, metrics
//! and typed errors.
//!
//! It speaks both eras of MCP ([`Era`]): the legacy one (2025-11-25 and
//! before: `initialize`, `Mcp-Session-Id`) and the stateless one
//! (2026-07-28: every request carries its envelope; a "session" is a client
//! context), finding out which one its server speaks by itself (a
//! `server/discover` probe, [`Manager::era`]).
//!
//! The library is written against an injectable [`Clock`] and an injectable
//! network ([`transport::Connector`]), so the same code runs for real, under
//! paused tokio time in tests, and inside a deterministic simulation
//! (`mcp-sim`).
//!
//! ```
//! use std::sync::Arc;
//! use mcp_session::{Manager, SessionConfig, TokioClock, transport::Operation};
//! use mcp_session::transport::scripted::ScriptedConnector;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mcp_session::SessionError> {
//! let server = ScriptedConnector::new(Arc::new(TokioClock::new()));
//! let manager = Manager::start(SessionConfig::pool(4), server)?;
//! let mut lease = manager.acquire(1).await?;           // VU 1
//! match lease.call(&Operation::Ping).await {
//!     Ok(_) => lease.release(),                          // back to the pool
//!     Err(e) if e.should_invalidate() => lease.invalidate(),
//!     Err(e) => return Err(e),
//! }
//! manager.close().await;
//! assert_eq!(manager.metrics().total_created, 1);
//! # Ok(()) }
//! ```
//!
//! (The example runs on the in-memory test double, which needs the
//! `test-util` feature; against a real server the connector is
//! [`transport::HttpConnector`].)
//!
//! # One path per item
//!
//! Everything a load test uses is at the crate root: the manager and its
//! lease, the config, the clock, errors, metrics, events. Two namespaces
//! hold the rest, each for its own audience:
//!
//! - [`transport`]: the network seam — the `Connector` / `Connection`
//!   traits, operations and their results, transport errors, and the
//!   Streamable HTTP connector over a `Dialer`;
//! - [`cores`]: the pure decision cores of the modes, for property tests
//!   and exhaustive exploration (a load test never needs them).
//!
//! The modules that define these items are private, so each item has
//! exactly one public path.
//!
//! # Features
//!
//! - `test-util` (off by default): `transport::scripted`, the in-memory
//!   test double — a connector whose server is a script (latency, failures,
//!   404s, version answers) — for tests of code that uses a [`Manager`].
//!   Turn it on in `[dev-dependencies]`.
//! - `planted-bugs` (off by default): lets a test plant a deliberate bug in
//!   the pool core (`PoolCore::plant`), to show that exploration
//!   finds it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Every module is private: an item has one public path, the one the
// re-export block below (or one of the two namespaces after it) gives it.
mod clock;
mod config;
mod era;
mod error;
mod eviction;
mod lease;
mod manager;
mod metrics;
mod mode_core;
mod modes;
mod observe;
mod pool_core;
mod session;
mod sync;

// ---------------------------------------------------------------- the API --
//
// What a load test uses: the manager and its lease, the config, the
// clock, the errors, the metrics and the events. Grouped by concept, one
// line a module.

// The manager, and the lease it hands a VU.
pub use lease::Lease;
pub use manager::{Manager, ManagerBuilder, Negotiated};
// Configuration: the mode, the era, the protocol revisions and the limits.
pub use config::{
    is_modern_version, ConfigError, Era, Mode, SessionConfig, VersionPolicy,
    DEFAULT_PROTOCOL_VERSION, LAST_LEGACY_VERSION, MAX_DURATION_MS, MAX_POOL_SIZE,
    MODERN_PROTOCOL_VERSIONS, SUPPORTED_PROTOCOL_VERSIONS,
};
// Time: the injected clock and its instants.
pub use clock::{Clock, Instant, ManualClock, Sleep, TokioClock};
// Errors.
pub use error::{ErrorKind, Op, SessionError};
// Which era a session speaks, and what the manager knows of a session.
pub use era::SessionEra;
pub use session::{SessionInfo, SessionState};
// Metrics.
pub use metrics::{
    CloseReason, ClosedByReason, EraCounts, EraMetrics, ServerCloses, SessionMetrics, WaitStats,
};
// Events: what the manager reports every state change to.
pub use observe::{Event, EventKind, EventSink, NoopSink, RecordingSink, TracingSink, VuId};

// ---------------------------------------------------------- the namespaces --

// The network seam: a namespace of its own because it is a second
// audience's API (whoever implements a connector, or builds operations and
// reads their results), some twenty types the crate root would bury. Its
// items have one path too, `transport::X` (its own modules are private),
// except the test double, `transport::scripted` (feature `test-util`).
pub mod transport;

pub mod cores {
    //! The pure decision cores of every mode (sans-IO), and the types they
    //! speak in.
    //!
    //! Each mode's state — the pool's slots, idle queue and FIFO waiters
    //! ([`PoolCore`]), reuse's and churn's per-VU table ([`VuTable`], with a
    //! [`Churn`] policy), per_request's replacement debts ([`PerRequestCore`])
    //! — sits behind one trait, [`ModeCore`]. Every method takes the time it
    //! happens at and returns a decision and the [`Effects`] to carry out; none
    //! of them does I/O, sleeps, reads a clock or calls back into the manager.
    //! The [`Manager`](crate::Manager) is the thin shell around them: under its
    //! lock it asks the core, then carries out what the core decided. `T` is
    //! whatever the shell keeps per session: a session handle in the library,
    //! a plain number in tests and in exploration.
    //!
    //! A load test never needs this module. It is public because the cores are
    //! driven directly, without a runtime: by property tests that check the
    //! laws after every step, and by `mcp-sim explore`, which runs the very
    //! same code through every interleaving of a small world.
    //!
    //! The pool core keeps one invariant between calls: `in_use + idle +
    //! reserved <= size`, and a waiter is queued only when no idle entry and
    //! no free slot exists — so capacity that appears goes to the head of the
    //! queue before anyone else.

    pub use crate::eviction::{Deadlines, Entry};
    pub use crate::mode_core::{
        Acquire, Close, Effects, Grant, ModeCore, Reservation, Return, WaitEnd, WaiterId,
    };
    pub use crate::modes::churn::Churn;
    pub use crate::modes::per_request::PerRequestCore;
    pub use crate::modes::reuse::{Take, VuTable};
    pub use crate::pool_core::{PlantedBug, PoolCore, Waiter, WaiterState};
}

/// The README's code blocks, compiled and run as doctests so the usage
/// example cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
