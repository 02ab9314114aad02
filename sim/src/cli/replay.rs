//! `mcp-sim replay`: one run of a scenario's seed, or of a schedule saved as
//! JSON, with its audit.
//!
//! ```text
//! mcp-sim replay <scenario> <seed> [--trace FILE] [--timeline]
//! mcp-sim replay --schedule FILE   [--trace FILE] [--timeline]
//! ```
//!
//! The run is [`mcp_sim::run::run`] on [`Schedule::generate`] of the named
//! built-in scenario and seed (or on the schedule read from the file), the
//! very call a sweep makes, so its trace and its trace hash are the sweep's
//! for the same seed. What it prints on stdout, in order:
//!
//! 1. with `--timeline`, the human timeline of the whole trace;
//! 2. a line naming the run (scenario, seed, workers, VUs, trace events,
//!    simulated time);
//! 3. each law of the audit with how many times it was checked, and `ok` or
//!    `VIOLATED`;
//! 4. the goals reached, with their counts, and the ones not reached;
//! 5. `audit: clean`, or the violations and the simulation's own failure as
//!    [`mcp_sim::run::Report::failure_text`] writes them;
//! 6. `trace-hash: <hex>` on a line of its own.
//!
//! `--trace FILE` also writes the trace as JSONL (the canonical bytes: the
//! file's BLAKE3 is the printed hash).
//!
//! A run that panics is caught ([`mcp_sim::run::catch`], as a sweep catches
//! a seed's): instead of the summary, stdout gets the panic's message, the
//! schedule and the replay line.
//!
//! Exit status: 0 when the run finished and broke no law, 1 when it did not
//! or panicked (one line on stderr says so), 2 on a usage error: an unknown
//! scenario, a seed that is not a `u64`, a schedule file that cannot be
//! read, is not a schedule or does not validate
//! ([`Schedule::validate`]: the line names the field and the value), a
//! trace file that cannot be created. Nothing is run then.
//!
//! Nothing here reads the wall clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use mcp_sim::audit::{GOALS, LAWS};
use mcp_sim::run::{catch, run as run_schedule, Panicked, Report};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;

use super::Failure;

/// The options of `mcp-sim replay`.
#[derive(Debug, Clone, Args)]
#[command(override_usage = "mcp-sim replay <SCENARIO> <SEED> [OPTIONS]\n       \
                            mcp-sim replay --schedule <FILE> [OPTIONS]")]
pub struct ReplayArgs {
    /// The built-in scenario (reuse, per_request, pool, churn, ...).
    #[arg(required_unless_present = "schedule")]
    pub scenario: Option<String>,

    /// The seed (an unsigned 64-bit integer).
    #[arg(required_unless_present = "schedule")]
    pub seed: Option<u64>,

    /// Run the schedule in this JSON file (as a failure prints it) instead
    /// of a scenario's seed.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scenario", "seed"])]
    pub schedule: Option<PathBuf>,

    /// Write the trace to this file, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Print the human timeline of the whole trace first.
    #[arg(long)]
    pub timeline: bool,
}

/// What to run: the schedule, the run's name, and the command that replays
/// it.
struct Target {
    schedule: Schedule,
    name: String,
    seed: u64,
    replay: String,
}

/// The usage error for an unknown scenario: one line naming it and the
/// known ones.
pub fn unknown_scenario(name: &str) -> Failure {
    Failure::Usage(format!(
        "mcp-sim replay: unknown scenario '{name}' (known: {})",
        Scenario::names().join(", ")
    ))
}

/// Reads a schedule saved as JSON; the error is one line naming the file
/// and the problem.
pub fn read_schedule(path: &Path) -> Result<Schedule, Failure> {
    let shown = path.display();
    let cannot = |e: String| {
        Failure::Usage(format!(
            "mcp-sim replay: cannot read schedule file '{shown}': {e}"
        ))
    };
    let text = super::read_capped(path, MAX_SCHEDULE_BYTES).map_err(cannot)?;
    let invalid = |e: String| {
        Failure::Usage(format!(
            "mcp-sim replay: invalid schedule file '{shown}': {e}"
        ))
    };
    let schedule = serde_json::from_str::<Schedule>(&text).map_err(|e| invalid(e.to_string()))?;
    schedule.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(schedule)
}

/// The largest schedule file read (a generated one is a few kilobytes).
pub const MAX_SCHEDULE_BYTES: u64 = 16 * 1024 * 1024;

/// Resolves the arguments to a schedule, or the usage error.
fn target(args: &ReplayArgs) -> Result<Target, Failure> {
    if let Some(path) = &args.schedule {
        let schedule = read_schedule(path)?;
        let seed = schedule.seed;
        return Ok(Target {
            schedule,
            name: format!("schedule {}", path.display()),
            seed,
            replay: format!(
                "cargo run -p mcp-sim -- replay --schedule {}",
                path.display()
            ),
        });
    }
    // clap makes both present when there is no --schedule.
    let (Some(name), Some(seed)) = (&args.scenario, args.seed) else {
        return Err(Failure::Usage(
            "mcp-sim replay: give <SCENARIO> <SEED> or --schedule FILE".to_owned(),
        ));
    };
    let scenario = Scenario::by_name(name).ok_or_else(|| unknown_scenario(name))?;
    let schedule = Schedule::generate(&scenario, seed);
    let name = scenario.name;
    Ok(Target {
        schedule,
        replay: format!("cargo run -p mcp-sim -- replay {name} {seed}"),
        name,
        seed,
    })
}

/// The entries of `counts`, those named in `order` first and in that
/// order, then any others in name order.
fn in_order<'a>(counts: &'a BTreeMap<String, u64>, order: &[&str]) -> Vec<(&'a str, u64)> {
    let mut out: Vec<(&str, u64)> = order
        .iter()
        .filter_map(|k| counts.get_key_value(*k))
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    out.extend(
        counts
            .iter()
            .filter(|(k, _)| !order.contains(&k.as_str()))
            .map(|(k, n)| (k.as_str(), *n)),
    );
    out
}

/// The summary printed after a run (everything but the timeline).
pub fn summary(report: &Report, replay: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replay: {} seed {}: {} workers, {} VUs, {} trace events, {} ms simulated",
        report.scenario,
        report.seed,
        report.schedule.workers.len(),
        report.schedule.vu_count(),
        report.trace.events.len(),
        report.simulated_ms
    );
    let _ = writeln!(
        out,
        "budget: {} (took {} steps)",
        report.budget, report.steps
    );
    let width = report.checks.keys().map(String::len).max().unwrap_or(0);
    let _ = writeln!(out, "laws:");
    for (law, n) in in_order(&report.checks, &LAWS) {
        let verdict = if report.violations.iter().any(|v| v.law == law) {
            "VIOLATED"
        } else {
            "ok"
        };
        let _ = writeln!(out, "  {law:<width$}  {n:>8} checks  {verdict}");
    }
    let goals = in_order(&report.goals, &GOALS);
    let reached: Vec<_> = goals.iter().filter(|(_, n)| *n > 0).collect();
    let missed: Vec<&str> = goals
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(g, _)| *g)
        .collect();
    let _ = writeln!(
        out,
        "goals reached: {} of {}",
        reached.len(),
        report.goals.len()
    );
    let width = reached.iter().map(|(g, _)| g.len()).max().unwrap_or(0);
    for (goal, n) in reached {
        let _ = writeln!(out, "  {goal:<width$}  {n:>8}");
    }
    if !missed.is_empty() {
        let _ = writeln!(out, "goals not reached: {}", missed.join(", "));
    }
    if report.is_clean() {
        let _ = writeln!(out, "audit: clean");
    } else {
        let _ = writeln!(
            out,
            "audit: {} law(s) broken{}",
            report.violations.len(),
            if report.sim_error.is_some() {
                ", simulation failed"
            } else {
                ""
            }
        );
        out.push_str(&report.failure_text_with_replay(replay));
    }
    let _ = writeln!(out, "trace-hash: {}", report.trace_hash);
    out
}

/// What a replay runs: the schedule, the scenario's name and the seed to a
/// [`Report`] ([`run_schedule`]; a test may pass one that panics).
type Runner = dyn Fn(&Schedule, &str, u64) -> Report;

/// Runs `mcp-sim replay`.
pub fn run(args: ReplayArgs) -> Result<(), Failure> {
    let target = target(&args)?;
    let mut stdout = std::io::stdout().lock();
    replay(&args, &target, &run_schedule, &mut stdout)
}

/// What is printed for a run that panicked, in place of the summary: the
/// run, the panic, the schedule and the replay line (as
/// [`Report::failure_text_with_replay`] lays out a failing run's).
fn panic_text(target: &Target, panicked: &Panicked) -> String {
    format!(
        "replay: {} seed {}: {panicked}\nschedule:\n{}\nreplay: {}\n",
        target.name,
        target.seed,
        target.schedule.to_json(),
        target.replay
    )
}

/// Runs `target` with `runner`, a panic caught ([`catch`]), and writes what
/// `mcp-sim replay` prints to `out`. A panic is a failing run (exit 1),
/// reported as a sweep reports a panicked seed: its message and the replay
/// line.
fn replay(
    args: &ReplayArgs,
    target: &Target,
    runner: &Runner,
    out: &mut dyn std::io::Write,
) -> Result<(), Failure> {
    // Create the trace file before the run, so a bad path is a usage error
    // and nothing is run.
    let mut trace_file = match &args.trace {
        Some(path) => Some((
            File::create(path).map_err(|e| {
                Failure::Usage(format!(
                    "mcp-sim replay: cannot create trace file '{}': {e}",
                    path.display()
                ))
            })?,
            path,
        )),
        None => None,
    };

    let report = match catch(|| runner(&target.schedule, &target.name, target.seed)) {
        Ok(report) => report,
        Err(panicked) => {
            // A closed stdout (`| head`) is not the run's failure.
            let _ = out.write_all(panic_text(target, &panicked).as_bytes());
            let _ = out.flush();
            return Err(Failure::Runtime(
                format!(
                    "mcp-sim replay: {} seed {} {panicked} (replay: {})",
                    target.name, target.seed, target.replay
                )
                .replace('\n', " "),
            ));
        }
    };

    if let Some((file, path)) = trace_file.as_mut() {
        file.write_all(report.trace.to_jsonl().as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| {
                Failure::Runtime(format!(
                    "mcp-sim replay: cannot write trace file '{}': {e}",
                    path.display()
                ))
            })?;
    }
    let mut text = String::new();
    if args.timeline {
        text.push_str(&report.trace.timeline());
    }
    text.push_str(&summary(&report, &target.replay));
    // A closed stdout (`| head`) is not the run's failure.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();

    if report.is_clean() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "mcp-sim replay: {} seed {} is not clean ({} law(s) broken{})",
            report.scenario,
            report.seed,
            report.violations.len(),
            match &report.sim_error {
                Some(e) => format!(", simulation failed: {e}"),
                None => String::new(),
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments of `mcp-sim replay reuse <seed>`.
    fn args(seed: u64) -> ReplayArgs {
        ReplayArgs {
            scenario: Some("reuse".into()),
            seed: Some(seed),
            schedule: None,
            trace: None,
            timeline: false,
        }
    }

    /// A run that panics is a failing run (exit 1) reported with the panic's
    /// message and the replay line, as a sweep reports a panicked seed,
    /// not the end of the process.
    #[test]
    fn a_panicking_replay_is_reported_with_its_replay_line() {
        let args = args(7);
        let target = target(&args).expect("target");
        let runner = |_: &Schedule, _: &str, seed: u64| -> Report {
            panic!("boom at seed {seed}\nsecond line");
        };
        let mut out = Vec::new();
        let failure = replay(&args, &target, &runner, &mut out).expect_err("a panic fails");
        let Failure::Runtime(line) = failure else {
            panic!("not a runtime failure: {failure:?}");
        };
        assert_eq!(
            line,
            "mcp-sim replay: reuse seed 7 panicked: boom at seed 7 second line \
             (replay: cargo run -p mcp-sim -- replay reuse 7)"
        );
        let out = String::from_utf8(out).expect("utf-8");
        assert!(
            out.starts_with("replay: reuse seed 7: panicked: boom at seed 7"),
            "{out}"
        );
        assert!(out.contains("schedule:\n{"), "{out}");
        assert!(
            out.ends_with("replay: cargo run -p mcp-sim -- replay reuse 7\n"),
            "{out}"
        );
    }

    /// The same path with the real runner prints the summary and passes.
    #[test]
    fn a_clean_replay_prints_the_summary() {
        let args = args(1);
        let target = target(&args).expect("target");
        let mut out = Vec::new();
        let outcome = replay(&args, &target, &run_schedule, &mut out);
        let out = String::from_utf8(out).expect("utf-8");
        assert!(out.starts_with("replay: reuse seed 1:"), "{out}");
        assert!(out.contains("trace-hash: "), "{out}");
        assert_eq!(outcome.is_ok(), out.contains("audit: clean"), "{out}");
    }
}
