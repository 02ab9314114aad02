//! The `mcp-sim` command line: the subcommands and how they fail.
//!
//! Argument parsing is clap's derive, so `--help` documents every option
//! from the doc comments below. Values clap can check on its own (a port
//! that is not a number, a ratio outside 0..=1) are refused by clap, with
//! its usual message and exit status 2. Values whose check needs words of
//! our own (a fault profile that does not exist, an address that is not
//! loopback) are refused by the subcommand as a [`Failure::Usage`]: one
//! line naming the bad value and what is accepted, also exit status 2.
//!
//! Each subcommand is a sibling module with its `...Args` and `run`.

pub mod audit;
pub mod drill;
pub mod explore;
pub mod merge;
pub mod replay;
pub mod serve;
pub mod sweep;

use clap::{Parser, Subcommand};

/// Deterministic simulation testing for mcp-session.
#[derive(Debug, Parser)]
#[command(name = "mcp-sim", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every built-in scenario over its default seeds, in parallel, audited:
    /// the project's main job.
    Sweep(sweep::SweepArgs),
    /// One report from the JSON reports of several `sweep --shard` runs.
    Merge(merge::MergeArgs),
    /// Run the simulated MCP server on loopback TCP until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Run one seed of a scenario (or a saved schedule) and print its audit,
    /// goals and trace hash.
    Replay(replay::ReplayArgs),
    /// A correctness report in Markdown: laws, goals, determinism, metrics.
    Audit(audit::AuditArgs),
    /// Load-test a real MCP server over TCP with the session manager.
    Drill(drill::DrillArgs),
    /// Every interleaving of a small scope's inputs against the real pool
    /// logic, breadth first, the audit's laws checked after every step.
    Explore(explore::ExploreArgs),
}

/// Why a subcommand did not do its job; `main` turns it into an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The arguments were wrong (exit status 2): a one-line message.
    Usage(String),
    /// The arguments were fine but the job failed (exit status 1).
    Runtime(String),
}

/// The text of `path`, refused past `max` bytes without reading more
/// (`/dev/zero` would otherwise grow without end).
pub(crate) fn read_capped(path: &std::path::Path, max: u64) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}
