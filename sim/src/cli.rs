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
//! `serve` and `replay` exist so far; `sweep`, `audit` and `drill` will
//! join them here as siblings.

pub mod replay;
pub mod serve;

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
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulated MCP server on loopback TCP until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Run one seed of a scenario (or a saved schedule) and print its audit,
    /// goals and trace hash.
    Replay(replay::ReplayArgs),
}

/// Why a subcommand did not do its job; `main` turns it into an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The arguments were wrong (exit status 2): a one-line message.
    Usage(String),
    /// The arguments were fine but the job failed (exit status 1).
    Runtime(String),
}
