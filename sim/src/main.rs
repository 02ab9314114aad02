//! `mcp-sim`: the command line of the simulation crate.
//!
//! This file only parses, dispatches and maps outcomes to exit codes; each
//! subcommand lives in its own module under `cli/`. Exit codes:
//!
//! - 0: the command did its job (for `serve`: it ran until Ctrl-C; for
//!   `replay`: the run finished and broke no law);
//! - 1: it could not (for `serve`: the port could not be bound; for
//!   `replay`: a law was broken or the simulation failed);
//! - 2: a usage error, from clap or from our own checks of the values
//!   clap let through (an unknown fault profile, a non-loopback host, an
//!   unknown scenario, an unreadable or invalid schedule file).
//!
//! Usage errors are one line on stderr and never a panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, Failure};

/// mimalloc instead of the system allocator: a sweep allocates and frees
/// many small objects (trace events, JSON values, HTTP buffers) on every
/// worker thread, where the system allocator was a sixth of the wall time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `parse` prints clap's own errors and exits 2 (0 for --help/--version).
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Replay(args) => cli::replay::run(args),
        Command::Sweep(args) => cli::sweep::run(args),
        Command::Merge(args) => cli::merge::run(args),
        Command::Audit(args) => cli::audit::run(args),
        Command::Drill(args) => cli::drill::run(args),
        Command::Explore(args) => cli::explore::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}
