//! `mcp-sim`: the deterministic simulation testing framework for `mcp-session`.
//!
//! This crate is the simulation side of the seam described in
//! `ARCHITECTURE.md`: it will supply a simulated network (turmoil), simulated
//! MCP servers with injected faults, seeded schedules, an audit of the laws of
//! the session semantics and a replayable trace. It is empty for now: the
//! session library it drives (`mcp-session`) comes first.
#![forbid(unsafe_code)]

/// The session library this crate simulates, re-exported for convenience.
pub use mcp_session;
