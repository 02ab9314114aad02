//! `mcp-sim explore`: every interleaving of a small scope's inputs against
//! the real decision logic, breadth first, with the audit's laws checked
//! after every step ([`mcp_sim::explore`]).
//!
//! ```text
//! mcp-sim explore                                   # the default set
//! mcp-sim explore --mode pool --pool-size 3 --vus 4 --depth 12
//! mcp-sim explore --mode churn --churn-ops 2 --vus 2 --depth 11
//! mcp-sim explore --mode pool --pool-size 1 --vus 3 --replay 'acquire 1; create_ok 1; ...'
//! ```
//!
//! Prints, per scope: states visited, transitions, depth reached and time;
//! on a violation, the law, the shortest path to it as a replayable script
//! and as a unit test, and the path's trace. Exit status: 0 when no law
//! broke, 1 when one did, 2 for a usage error.

use clap::Args;

use mcp_session::Mode;
use mcp_sim::explore::{explore, parse_script, replay, Counterexample, Scope};

use super::Failure;

/// The options of `mcp-sim explore`.
#[derive(Debug, Clone, Args)]
pub struct ExploreArgs {
    /// The mode to explore (`pool`, `reuse`, `churn` or `per_request`);
    /// without it, the default set of scopes.
    #[arg(long)]
    pub mode: Option<String>,
    /// `pool_size`.
    #[arg(long, default_value_t = 3)]
    pub pool_size: usize,
    /// How many VUs.
    #[arg(long, default_value_t = 4)]
    pub vus: u64,
    /// The longest path, in inputs.
    #[arg(long, default_value_t = 12)]
    pub depth: usize,
    /// `ttl_ms` (0: none).
    #[arg(long, default_value_t = 4)]
    pub ttl_ms: u64,
    /// `max_idle_ms` (0: none).
    #[arg(long, default_value_t = 2)]
    pub idle_ms: u64,
    /// `acquire_timeout_ms`.
    #[arg(long, default_value_t = 2)]
    pub timeout_ms: u64,
    /// In churn mode, `churn_interval_ms` (churn by age).
    #[arg(long, default_value_t = 3)]
    pub churn_ms: u64,
    /// In churn mode, `churn_interval_ops` (churn after that many
    /// operations; 0: by age, `--churn-ms`).
    #[arg(long, default_value_t = 0)]
    pub churn_ops: u64,
    /// Replay this script (inputs separated by `;` or newlines) instead of
    /// exploring, printing its trace.
    #[arg(long, value_name = "SCRIPT")]
    pub replay: Option<String>,
}

/// Runs `mcp-sim explore`.
pub fn run(args: ExploreArgs) -> Result<(), Failure> {
    let scopes = match args.mode.as_deref() {
        None if args.replay.is_none() => Scope::defaults(),
        None | Some("pool" | "reuse" | "churn" | "per_request") => {
            let positive = |v: u64| (v > 0).then_some(v);
            let mode = match args.mode.as_deref() {
                Some("reuse") => Mode::Reuse,
                Some("churn") => Mode::Churn,
                Some("per_request") => Mode::PerRequest,
                _ => Mode::Pool,
            };
            vec![Scope {
                mode,
                pool_size: args.pool_size,
                vus: args.vus,
                depth: args.depth,
                ttl_ms: positive(args.ttl_ms),
                idle_ms: positive(args.idle_ms),
                timeout_ms: args.timeout_ms,
                churn_ms: if mode == Mode::Churn {
                    args.churn_ms
                } else {
                    0
                },
                churn_ops: if mode == Mode::Churn {
                    args.churn_ops
                } else {
                    0
                },
            }]
        }
        Some(other) => {
            return Err(Failure::Usage(format!(
                "--mode {other}: `pool`, `reuse`, `churn` or `per_request`"
            )))
        }
    };
    if args.pool_size == 0 || args.vus == 0 {
        return Err(Failure::Usage(
            "--pool-size and --vus must be at least 1".into(),
        ));
    }
    if let Some(text) = &args.replay {
        let script = parse_script(text).map_err(|e| Failure::Usage(format!("--replay: {e}")))?;
        return match replay(&scopes[0], &script) {
            Ok(trace) => {
                print!("{}", trace.timeline());
                println!("{} steps, no law broken", script.len());
                Ok(())
            }
            Err(c) => {
                print!("{}", c.trace.timeline());
                Err(Failure::Runtime(format!("{}: {}", c.law, c.message)))
            }
        };
    }
    let mut broken = 0;
    for scope in &scopes {
        // Wall time of a command-line run, for the report only.
        #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
        let started = std::time::Instant::now();
        let out = explore(scope);
        let elapsed = started.elapsed();
        println!(
            "explore {scope}: {} states, {} transitions, depth {}, {:.2}s",
            out.states,
            out.transitions,
            out.depth,
            elapsed.as_secs_f64()
        );
        if let Some(c) = &out.violation {
            broken += 1;
            print_counterexample(scope, c);
        }
    }
    if broken > 0 {
        return Err(Failure::Runtime(format!("{broken} scope(s) broke a law")));
    }
    Ok(())
}

fn print_counterexample(scope: &Scope, c: &Counterexample) {
    println!("  VIOLATION {}: {}", c.law, c.message);
    println!("  shortest path ({} inputs):", c.path.len());
    println!("    {}", c.script());
    println!(
        "  replay: mcp-sim explore --mode {} --pool-size {} --vus {} --ttl-ms {} --idle-ms {} --timeout-ms {} --churn-ms {} --churn-ops {} --replay '{}'",
        scope.mode.as_str(),
        scope.pool_size,
        scope.vus,
        scope.ttl_ms.unwrap_or(0),
        scope.idle_ms.unwrap_or(0),
        scope.timeout_ms,
        scope.churn_ms,
        scope.churn_ops,
        c.script()
    );
    println!("  as a unit test:\n{}", c.unit_test(scope));
    println!("  trace:\n{}", c.trace.timeline());
}
