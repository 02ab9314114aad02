//! `mcp-sim`: the deterministic simulation testing framework for `mcp-session`.
//!
//! It runs the real library — the same `Manager`, the same HTTP transport —
//! inside turmoil, against simulated MCP servers of both eras with faults
//! injected, driven by seeded schedules: one `u64` seed reproduces a run
//! bit for bit, and an audit checks the laws of the session semantics on
//! every run's trace. It also explores the library's pure decision cores
//! exhaustively in small worlds, and drills real servers (the `mcp-sim`
//! binary: `sweep`, `replay`, `audit`, `merge`, `explore`, `serve`,
//! `drill`).
//!
//! # Layout
//!
//! One concept a module. The run, from schedule to verdict:
//!
//! - [`schedule`]: a run's whole input — workers, VU programs, server
//!   config, fault plan — drawn from one seed, and its validation;
//! - [`scenarios`]: the built-in scenarios the sweep runs, and the goals
//!   each promises to reach;
//! - [`faults`]: the fault plan (crashes, partitions, latency, injected
//!   answers) and how it is applied;
//! - [`strategy`]: schedules as proptest strategies, and shrinking;
//! - [`topology`]: builds the simulated world — server hosts, worker hosts,
//!   the VUs inside them;
//! - [`vu`]: what one VU does with its worker's session manager;
//! - [`run`]: runs one schedule to its trace and audit (panics caught);
//! - [`liveness`]: each run's budget of simulated time and scheduler steps;
//! - [`sweep`]: many seeds in parallel, the report, sharding and merging.
//!
//! The simulated network and servers:
//!
//! - [`dialer`] / [`listener`]: the seam between the library's transport
//!   and turmoil (or real TCP, for `serve`);
//! - [`server`]: the simulated MCP server of both eras;
//! - [`balancer`] and [`forwarded`]: a load balancer in front of several
//!   server instances, and the header it forwards the client with;
//! - [`baseline`]: a bare hyper-over-turmoil loop the sweep bench compares
//!   against.
//!
//! The oracle:
//!
//! - [`trace`], [`detail`], [`canonical`]: the recorded trace, its event
//!   details and their canonical bytes (what the trace hash is taken over);
//! - [`audit`]: the laws checked on every trace, and the goals;
//! - [`lease_laws`], [`cause_laws`], [`wire_laws`]: the lease and mode
//!   laws, the laws that every failure has a cause, and the wire laws of
//!   both eras;
//! - [`explore`]: exhaustive exploration of the decision cores.
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
