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
//! - [`run`](mod@run): runs one schedule to its trace and audit (panics
//!   caught);
//! - [`liveness`]: each run's budget of simulated time and scheduler steps;
//! - [`sweep`](mod@sweep): many seeds in parallel, the report, sharding and
//!   merging.
//!
//! The simulated network and servers:
//!
//! - [`dialer`] / [`listener`]: the seam between the library's transport
//!   and turmoil (or real TCP, for `serve`);
//! - [`server`]: the simulated MCP server of both eras;
//! - [`balancer`]: a load balancer in front of several server instances
//!   (the `Forwarded` header it tells them the client with is a private
//!   helper, `forwarded.rs`);
//! - [`baseline`]: a bare hyper-over-turmoil loop the sweep bench compares
//!   against.
//!
//! The oracle:
//!
//! - [`trace`]: the recorded trace and its events' details
//!   ([`trace::Detail`]); the canonical bytes its hash is taken over are
//!   written by a private module, `canonical.rs`;
//! - [`audit`](mod@audit): the laws checked on every trace, and the goals;
//! - [`lease_laws`], [`cause_laws`], [`wire_laws`]: the lease and mode
//!   laws, the laws that every failure has a cause, and the wire laws of
//!   both eras;
//! - [`explore`]: exhaustive exploration of the decision cores.
//!
//! # Where to start
//!
//! The crate root re-exports the handful of items a user calls first —
//! draw a [`Schedule`] for a [`Scenario`] and a seed, [`run()`] it to a
//! [`Report`] (its [`Trace`], audited), [`audit()`] a saved trace, or
//! [`sweep()`] many seeds to a [`SweepReport`] — so that these read
//! `mcp_sim::run` rather than `mcp_sim::run::run`. Everything else is
//! reached through its module, where the rest of its concept lives.
//!
//! ```no_run
//! use mcp_sim::{run, Scenario, Schedule};
//!
//! let scenario = Scenario::all().into_iter().next().unwrap();
//! let report = run(&Schedule::generate(&scenario, 7), &scenario.name, 7);
//! // A run that broke a law prints the line that replays it exactly.
//! assert!(report.is_clean(), "{}", mcp_sim::sweep::replay_line(&scenario.name, 7));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod balancer;
pub mod baseline;
mod canonical;
pub mod cause_laws;
mod detail;
pub mod dialer;
pub mod explore;
pub mod faults;
mod forwarded;
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

// The front door: the entry points a user of the library calls first, as
// shortcuts at the root. Each stays in its module too, beside the rest of
// its concept (`run::run_caught`, `sweep::merge`, `audit::GOALS`, ...).
pub use audit::{audit, AuditConfig, AuditReport};
pub use run::{run, Report};
pub use scenarios::Scenario;
pub use schedule::Schedule;
pub use sweep::{sweep, SweepOptions, SweepReport};
pub use trace::Trace;

/// The session library this crate simulates, re-exported so that a user
/// of `mcp-sim` names the very version it was built with.
pub use mcp_session;
