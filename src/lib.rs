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
//! context), finding out which one its server speaks by itself
//! ([`era`]).
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
//! # Features
//!
//! - `test-util` (off by default): `transport::scripted`, the in-memory
//!   test double — a connector whose server is a script (latency, failures,
//!   404s, version answers) — for tests of code that uses a [`Manager`].
//!   Turn it on in `[dev-dependencies]`.
//! - `planted-bugs` (off by default): lets a test plant a deliberate bug in
//!   the pool core (`PoolCore::plant`), to show that exploration finds it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
pub mod config;
pub mod era;
pub mod error;
pub mod eviction;
mod lease;
mod manager;
pub mod metrics;
pub mod mode_core;
mod modes;
pub mod observe;
pub mod pool_core;
pub mod session;
mod sync;

/// The decision cores of reuse, churn and per_request, pure: the per-VU
/// table and the churn policy, and per_request's per-VU replacement debts
/// (the manager runs them under its lock, behind [`mode_core::ModeCore`];
/// `mcp-sim explore` explores them).
pub mod per_vu {
    pub use crate::modes::churn::Churn;
    pub use crate::modes::per_request::PerRequestCore;
    pub use crate::modes::reuse::{Take, VuTable};
}
pub mod transport;

pub use clock::{Clock, Instant, ManualClock, TokioClock};
pub use config::{ConfigError, Era, Mode, SessionConfig, VersionPolicy};
pub use era::SessionEra;
pub use error::{ErrorKind, Op, SessionError};
pub use lease::Lease;
pub use manager::{Manager, ManagerBuilder, Negotiated};
pub use metrics::{CloseReason, EraCounts, EraMetrics, ServerCloses, SessionMetrics};
pub use observe::{Event, EventKind, EventSink, VuId};
pub use session::{SessionInfo, SessionState};

/// The README's code blocks, compiled and run as doctests so the usage
/// example cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
