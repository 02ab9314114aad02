//! `mcp-sim audit`: a correctness report in Markdown.
//!
//! ```text
//! mcp-sim audit [--seeds N] [--scenario NAME[,NAME...]]... [--rerun N]
//!               [--jobs N] [--out FILE.md]
//! ```
//!
//! It sweeps the scenarios (every built-in one by default) over their seeds
//! (`0..N`, by default each scenario's [`Scenario::sweep_seeds`]) as
//! `mcp-sim sweep` does, then writes, in Markdown:
//!
//! 1. a verdict line;
//! 2. per scenario: seeds, failing seeds, violations, goals reached,
//!    simulated time, trace events;
//! 3. each law of [`LAWS`] with how often it was checked and how many seeds
//!    broke it;
//! 4. each goal of [`GOALS`] with its hits, how many seeds reached it and
//!    which scenarios;
//! 5. the determinism meta-check: the first `--rerun` seeds of each
//!    scenario (default 3) run a second time in this process, on whichever
//!    worker thread takes them, and their trace hashes compared with the
//!    first run's;
//! 6. the metrics per scenario: each `SessionMetrics` field summed over
//!    every seed's workers (`acquire_wait.max_ms`: the maximum);
//! 7. the failing seeds with their replay lines, if any.
//!
//! Nothing in it depends on the wall clock or on thread timing: the same
//! build and options give the same bytes. Without `--out` it goes to
//! stdout; progress goes to stderr.
//!
//! Exit status: 0 when no law broke, every seed finished and every re-run
//! gave the same hash; 1 otherwise (the report is written first); 2 on a
//! usage error (an unknown scenario, zero seeds or jobs, an output file that
//! cannot be created).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::Args;

use mcp_sim::audit::{GOALS, LAWS};
use mcp_sim::scenarios::Scenario;
use mcp_sim::sweep::{run_jobs, sweep, Build, Job, SeedResult, Shard, SweepOptions, SweepReport};

use super::sweep::{create, jobs, print, scenarios, stop_on_ctrl_c, write, Reporter};
use super::Failure;

/// The options of `mcp-sim audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Seeds per scenario, from 0 (default: 500 of each, as `sweep`).
    #[arg(long, value_name = "N")]
    pub seeds: Option<u64>,

    /// Only these scenarios (repeat the option, or give a comma-separated
    /// list); default: every built-in scenario.
    #[arg(long = "scenario", value_name = "NAME", value_delimiter = ',')]
    pub scenarios: Vec<String>,

    /// How many seeds of each scenario (the first ones) the determinism
    /// check runs twice.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub rerun: u64,

    /// Worker threads (default: the available parallelism).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Write the Markdown report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// One scenario's determinism check: the seeds run twice, and those whose
/// two hashes differed.
struct Rerun {
    scenario: String,
    seeds: Vec<u64>,
    different: Vec<u64>,
}

/// Runs the determinism check: the first `n` seeds of each scenario of
/// `report` again, compared by trace hash.
fn rerun(
    opts: &SweepOptions,
    report: &SweepReport,
    n: u64,
    stop: &AtomicBool,
    progress: &Reporter,
) -> Vec<Rerun> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut first: BTreeMap<(&str, u64), &SeedResult> = BTreeMap::new();
    for (i, s) in opts.scenarios.iter().enumerate() {
        let seeds = report.seeds.iter().filter(|r| r.scenario == s.name);
        for r in seeds.take(usize::try_from(n).unwrap_or(usize::MAX)) {
            jobs.push((i, r.seed..r.seed + 1));
            first.insert((r.scenario.as_str(), r.seed), r);
        }
    }
    mcp_sim::sweep::Progress::planned(progress, jobs.len() as u64);
    let again = run_jobs(&opts.scenarios, &jobs, opts.jobs, stop, progress);
    opts.scenarios
        .iter()
        .map(|s| {
            let mine: Vec<&SeedResult> = again.iter().filter(|r| r.scenario == s.name).collect();
            Rerun {
                scenario: s.name.clone(),
                seeds: mine.iter().map(|r| r.seed).collect(),
                different: mine
                    .iter()
                    .filter(|r| {
                        let before = first.get(&(r.scenario.as_str(), r.seed));
                        r.trace_hash.is_none()
                            || before.and_then(|b| b.trace_hash.as_ref()) != r.trace_hash.as_ref()
                    })
                    .map(|r| r.seed)
                    .collect(),
            }
        })
        .collect()
}

/// Escapes `|` and line breaks for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The laws of [`LAWS`] in order, then any other checked law by name.
fn law_names(report: &SweepReport) -> Vec<String> {
    let mut names: Vec<String> = LAWS.iter().map(|l| (*l).to_owned()).collect();
    for s in &report.scenarios {
        for law in s.checks.keys().chain(s.violations_by_law.keys()) {
            if !names.contains(law) {
                names.push(law.clone());
            }
        }
    }
    names
}

/// The Markdown report: the sections in the order the module docs list
/// them, each written by its own function into the one buffer.
fn markdown(report: &SweepReport, reruns: &[Rerun], how: &str, rerun_n: u64) -> String {
    let mut md = String::new();
    verdict(&mut md, report, reruns, how);
    scenario_table(&mut md, report);
    law_table(&mut md, report);
    goal_table(&mut md, report);
    determinism(&mut md, reruns, rerun_n);
    metric_table(&mut md, report);
    failing_seeds(&mut md, report);
    md
}

// Every writer below ignores `writeln!`'s result: writing to a `String`
// cannot fail (`fmt::Write for String` always returns `Ok`).

/// The title, the build line and the verdict: PASS only when no seed
/// failed, every re-run gave the same hash and the sweep was not
/// interrupted.
fn verdict(md: &mut String, report: &SweepReport, reruns: &[Rerun], how: &str) {
    let build = Build::current();
    let failing = report.failures().len();
    let different: usize = reruns.iter().map(|r| r.different.len()).sum();
    let rerun_total: usize = reruns.iter().map(|r| r.seeds.len()).sum();
    let _ = writeln!(md, "# mcp-sim correctness audit\n");
    let _ = writeln!(
        md,
        "mcp-sim {}, scenario definitions `{}`: {} scenario(s), {} seeds ({how}).\n",
        build.version,
        build.digest.get(..12).unwrap_or(&build.digest),
        report.scenarios.len(),
        report.seeds.len()
    );
    let pass = failing == 0 && different == 0 && !report.interrupted;
    let _ = writeln!(
        md,
        "**Verdict: {}.** {} of {} seeds clean; {} law violation(s); {} of {} goals reached; \
         {} of {} re-run seeds gave the same trace hash.{}\n",
        if pass { "PASS" } else { "FAIL" },
        report.seeds.len() - failing,
        report.seeds.len(),
        report.scenarios.iter().map(|s| s.violations).sum::<u64>(),
        GOALS.len() - report.missing_goals().len(),
        GOALS.len(),
        rerun_total - different,
        rerun_total,
        if report.interrupted {
            " Interrupted: not every planned seed ran."
        } else {
            ""
        }
    );
}

/// One row per scenario: its seeds, failures and how far it got.
fn scenario_table(md: &mut String, report: &SweepReport) {
    let _ = writeln!(md, "## Scenarios\n");
    let _ = writeln!(
        md,
        "| scenario | seeds | failing | violations | sim errors | panics | goals reached | simulated (s) | trace events |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &report.scenarios {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} of {} | {:.1} | {} |",
            s.scenario,
            s.seeds,
            s.failing,
            s.violations,
            s.sim_errors,
            s.panics,
            s.goals_reached(),
            GOALS.len(),
            s.simulated_ms as f64 / 1_000.0,
            s.events
        );
    }
}

/// One row per law (see [`law_names`]): checks and violations summed over
/// the scenarios, and the first five seeds that broke it.
fn law_table(md: &mut String, report: &SweepReport) {
    let _ = writeln!(md, "\n## Laws\n");
    let _ = writeln!(
        md,
        "Each law is checked from the trace alone, at every event it concerns.\n"
    );
    let _ = writeln!(md, "| law | checks | violations | first failing seeds |");
    let _ = writeln!(md, "|---|---:|---:|---|");
    for law in law_names(report) {
        let checks: u64 = report
            .scenarios
            .iter()
            .map(|s| s.checks.get(&law).copied().unwrap_or(0))
            .sum();
        let broken: u64 = report
            .scenarios
            .iter()
            .map(|s| s.violations_by_law.get(&law).copied().unwrap_or(0))
            .sum();
        let first: Vec<String> = report
            .seeds
            .iter()
            .filter(|r| r.violations.iter().any(|v| v.law == law))
            .take(5)
            .map(|r| format!("{} {}", r.scenario, r.seed))
            .collect();
        let _ = writeln!(md, "| {law} | {checks} | {broken} | {} |", first.join(", "));
    }
}

/// One row per goal of [`GOALS`]: hits, seeds and scenarios reaching it,
/// then the goals nobody reached.
fn goal_table(md: &mut String, report: &SweepReport) {
    let _ = writeln!(md, "\n## Goals\n");
    let _ = writeln!(
        md,
        "| goal | hits | seeds reaching it | scenarios reaching it |"
    );
    let _ = writeln!(md, "|---|---:|---:|---|");
    for goal in GOALS {
        let hits = report.goals.get(goal).copied().unwrap_or(0);
        let seeds = report
            .seeds
            .iter()
            .filter(|r| r.goals.get(goal).copied().unwrap_or(0) > 0)
            .count();
        let by: Vec<String> = report
            .scenarios
            .iter()
            .filter_map(|s| {
                let n = s.goals.get(goal).copied().unwrap_or(0);
                (n > 0).then(|| format!("{} ({n})", s.scenario))
            })
            .collect();
        let _ = writeln!(md, "| {goal} | {hits} | {seeds} | {} |", by.join(", "));
    }
    let missing = report.missing_goals();
    if missing.is_empty() {
        let _ = writeln!(md, "\nEvery goal was reached.");
    } else {
        let _ = writeln!(md, "\nGoals not reached: {}.", missing.join(", "));
    }
}

/// The in-process determinism check: per scenario, the seeds run twice
/// and those whose hashes differed, then the outcome.
fn determinism(md: &mut String, reruns: &[Rerun], rerun_n: u64) {
    let _ = writeln!(md, "\n## Determinism\n");
    let _ = writeln!(
        md,
        "The first {rerun_n} seed(s) of each scenario were run a second time in this process \
         (on whichever worker thread took them) and the two trace hashes compared. \
         The cross-process half of the check (`replay` in separate processes) is in \
         `sim/tests/cli_replay.rs`.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | seeds run twice | same hash | different hash |"
    );
    let _ = writeln!(md, "|---|---|---:|---|");
    for r in reruns {
        let seeds: Vec<String> = r.seeds.iter().map(u64::to_string).collect();
        let different: Vec<String> = r.different.iter().map(u64::to_string).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            r.scenario,
            seeds.join(", "),
            r.seeds.len() - r.different.len(),
            if different.is_empty() {
                "none".to_owned()
            } else {
                different.join(", ")
            }
        );
    }
    let _ = writeln!(
        md,
        "\nOutcome: {}",
        if reruns.iter().all(|r| r.different.is_empty()) {
            "every re-run seed gave the same trace hash."
        } else {
            "NOT DETERMINISTIC: some seeds gave a different trace hash (see above)."
        }
    );
}

/// One column per scenario, one row per `SessionMetrics` field (sorted by
/// name, the union over the scenarios), then the failed VU steps.
fn metric_table(md: &mut String, report: &SweepReport) {
    let _ = writeln!(md, "\n## Metrics per scenario\n");
    let _ = writeln!(
        md,
        "Each `SessionMetrics` field, summed over every seed's workers \
         (`acquire_wait.max_ms`: the maximum).\n"
    );
    let mut fields: Vec<&String> = report
        .scenarios
        .iter()
        .flat_map(|s| s.metrics.keys())
        .collect();
    fields.sort();
    fields.dedup();
    let names: Vec<&str> = report
        .scenarios
        .iter()
        .map(|s| s.scenario.as_str())
        .collect();
    let _ = writeln!(md, "| metric | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(names.len()));
    for field in fields {
        let values: Vec<String> = report
            .scenarios
            .iter()
            .map(|s| s.metrics.get(field).copied().unwrap_or(0).to_string())
            .collect();
        let _ = writeln!(md, "| {field} | {} |", values.join(" | "));
    }
    let vu_errors: Vec<String> = report
        .scenarios
        .iter()
        .map(|s| s.vu_errors.to_string())
        .collect();
    let _ = writeln!(md, "| (VU steps that failed) | {} |", vu_errors.join(" | "));
}

/// Each failing seed with why it failed and the line that replays it.
fn failing_seeds(md: &mut String, report: &SweepReport) {
    let _ = writeln!(md, "\n## Failing seeds\n");
    let failing = report.failures();
    if failing.is_empty() {
        let _ = writeln!(md, "None.");
    }
    for f in failing {
        let _ = writeln!(
            md,
            "- {} seed {}: {}  \n  replay: `{}`",
            f.scenario,
            f.seed,
            cell(&f.failure_line()),
            f.replay
        );
    }
}

/// Runs `mcp-sim audit`.
pub fn run(args: AuditArgs) -> Result<(), Failure> {
    const CMD: &str = "mcp-sim audit";
    let scenarios: Vec<Scenario> = scenarios(CMD, &args.scenarios)?;
    if args.seeds == Some(0) {
        return Err(Failure::Usage(format!(
            "{CMD}: invalid --seeds 0: give at least 1 seed"
        )));
    }
    let opts = SweepOptions {
        scenarios,
        seeds: args.seeds,
        seed_start: 0,
        shard: Shard::WHOLE,
        max_seeds: None,
        jobs: jobs(CMD, args.jobs)?,
        seed_timeout: mcp_sim::sweep::default_seed_timeout(),
    };
    let out = match &args.out {
        Some(path) => Some((create(CMD, "report file", path)?, path)),
        None => None,
    };

    let stop = stop_on_ctrl_c(CMD);
    let reporter = Reporter::new(CMD);
    let report = sweep(&opts, &stop, &reporter);
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            reporter.finish();
            return Err(Failure::Usage(format!("{CMD}: {e}")));
        }
    };
    let reruns = rerun(&opts, &report, args.rerun, &stop, &reporter);
    reporter.finish();

    let how = match args.seeds {
        Some(n) => format!("seeds 0..{n} of each"),
        None => "each scenario's sweep seed count, from seed 0".to_owned(),
    };
    let md = markdown(&report, &reruns, &how, args.rerun);
    match out {
        Some((file, path)) => {
            write(CMD, "report file", file, path, &md)?;
            eprintln!("{CMD}: report written to {}", path.display());
        }
        None => print(&md),
    }

    let different: usize = reruns.iter().map(|r| r.different.len()).sum();
    if different > 0 {
        return Err(Failure::Runtime(format!(
            "{CMD}: {different} seed(s) gave a different trace hash when run again"
        )));
    }
    super::sweep::verdict(CMD, &report)
}
