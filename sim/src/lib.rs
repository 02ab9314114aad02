//! `mcp-sim`: the deterministic simulation testing framework for `mcp-session`.
//!
//! This crate is the simulation side of the seam described in
//! `ARCHITECTURE.md`: it supplies a simulated network (turmoil) through
//! [`dialer::TurmoilDialer`], and will supply simulated MCP servers with
//! injected faults, seeded schedules, an audit of the laws of the session
//! semantics and a replayable trace.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod balancer;
pub mod baseline;
pub mod canonical;
pub mod cause_laws;
pub mod detail;
pub mod dialer;
pub mod explore;
pub mod faults;
pub mod forwarded;
pub mod lease_laws;
pub mod listener;
pub mod liveness;
pub mod run;
pub mod scenarios;
pub mod schedule;
pub mod server;
pub mod strategy;
pub mod sweep;
pub mod topology;
pub mod trace;
pub mod vu;
pub mod wire_laws;

/// The session library this crate simulates, re-exported for convenience.
pub use mcp_session;
