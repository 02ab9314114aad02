//! `mcp-sim sweep`: every built-in scenario over its default seeds, in
//! parallel, audited; the project's main job.
//!
//! ```text
//! mcp-sim sweep [--scenario NAME[,NAME...]]... [--seeds N] [--seed-start S]
//!               [--shard K/N] [--until-goals [--max-seeds N]] [--jobs N]
//!               [--seed-timeout-s SECONDS] [--json FILE]
//! ```
//!
//! Each chosen scenario runs the seeds `S..S+N` (`S` 0 and `N` the
//! scenario's [`Scenario::sweep_seeds`] unless given) on `--jobs` worker
//! threads (default: the available parallelism), each seed the very run
//! `mcp-sim replay <scenario> <seed>` makes ([`mcp_sim::sweep`]). On a
//! terminal, stderr shows a progress bar; otherwise a plain line every
//! tenth of the seeds. Failing seeds are also shown as they happen.
//!
//! `--shard K/N` runs the `K`-th of `N` disjoint parts of every scenario's
//! seed range; `K` counts from 1 (`1/3`, `2/3`, `3/3`), so a 0-based job
//! index `I` (Kubernetes' `JOB_COMPLETION_INDEX`) is `--shard $((I+1))/N`.
//! `mcp-sim merge` joins the shards' `--json` reports.
//!
//! `--until-goals` keeps adding seeds (doubling every scenario's range) until
//! every goal of [`mcp_sim::audit::GOALS`] is reached or each scenario has
//! run `--max-seeds` seeds.
//!
//! Stdout, in order: a line naming the sweep; the table per scenario (seeds,
//! failing seeds, violations, goals reached of all goals, simulated time,
//! simulated/wall ratio) with a total line; each failing seed with what
//! went wrong and its replay line; the goals reached (and those not); the
//! wall time. `--json FILE` writes the [`SweepReport`] (per-seed trace
//! hashes, violations, goals, metrics; no traces).
//!
//! Every seed runs within its liveness budget ([`mcp_sim::liveness`]: a run
//! over it is a `liveness` violation). As a last resort, a seed still
//! running after `--seed-timeout-s` seconds of real time (default 60, or
//! `MCP_SIM_SEED_TIMEOUT_S`) is reported as hung, with its replay line; its
//! thread is abandoned and the sweep goes on (and exits 1). Every seed of
//! the sweep gets a result: one the sweep failed to account for (a defect
//! of the sweep itself) is reported `lost`, with its replay line, and
//! fails the sweep too.
//!
//! Exit status: 0 when every seed finished and broke no law; 1 when a seed
//! broke a law, failed to finish or panicked, or the sweep was interrupted
//! (Ctrl-C: the seeds in flight finish, the report of what ran is printed
//! and written; a second Ctrl-C quits at once); 2 on a usage error (an
//! unknown scenario, a bad shard, zero seeds or jobs, a seed range past
//! `u64::MAX`, a report file that cannot be created). Nothing is run then.

use std::fs::File;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use mcp_sim::audit::GOALS;
use mcp_sim::scenarios::Scenario;
use mcp_sim::sweep::{sweep, Progress, SeedRange, SeedResult, Shard, SweepOptions, SweepReport};

use super::Failure;

/// The options of `mcp-sim sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Only these scenarios (repeat the option, or give a comma-separated
    /// list); default: every built-in scenario.
    #[arg(long = "scenario", value_name = "NAME", value_delimiter = ',')]
    pub scenarios: Vec<String>,

    /// Seeds per scenario (default: 500 of each, the main job).
    #[arg(long, value_name = "N")]
    pub seeds: Option<u64>,

    /// The first seed of every scenario.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed_start: u64,

    /// Run only the K-th of N disjoint parts of every scenario's seeds; K
    /// counts from 1 (1/3, 2/3, 3/3).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,

    /// Keep adding seeds (doubling each scenario's range) until every goal
    /// is reached, or --max-seeds per scenario.
    #[arg(long)]
    pub until_goals: bool,

    /// With --until-goals: the most seeds to run of one scenario.
    #[arg(long, value_name = "N", requires = "until_goals")]
    pub max_seeds: Option<u64>,

    /// Worker threads (default: the available parallelism).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// The wall-clock limit on one seed, in seconds: a seed still running
    /// then is reported hung and its thread abandoned (default: 60, or
    /// MCP_SIM_SEED_TIMEOUT_S).
    #[arg(long, value_name = "SECONDS")]
    pub seed_timeout_s: Option<f64>,

    /// Write the report as JSON to this file (the input of `mcp-sim merge`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The scenarios named in `names` (each may be a comma list already split
/// by clap), in the order given, without repeats; every built-in scenario
/// when `names` is empty. An unknown name is a usage error naming it and
/// the known ones.
pub fn scenarios(cmd: &str, names: &[String]) -> Result<Vec<Scenario>, Failure> {
    if names.is_empty() {
        return Ok(Scenario::all());
    }
    let mut out: Vec<Scenario> = Vec::new();
    for name in names {
        let name = name.trim();
        let scenario = Scenario::by_name(name).ok_or_else(|| {
            Failure::Usage(format!(
                "{cmd}: unknown scenario '{name}' (known: {})",
                Scenario::names().join(", ")
            ))
        })?;
        if !out.iter().any(|s| s.name == scenario.name) {
            out.push(scenario);
        }
    }
    Ok(out)
}

/// The worker thread count: `jobs`, or the available parallelism. Zero is
/// a usage error.
pub fn jobs(cmd: &str, jobs: Option<usize>) -> Result<usize, Failure> {
    match jobs {
        Some(0) => Err(Failure::Usage(format!(
            "{cmd}: invalid --jobs 0: give at least 1 worker thread"
        ))),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Creates `path` for writing (before any run, so a bad path is a usage
/// error and nothing is run).
pub fn create(cmd: &str, what: &str, path: &Path) -> Result<File, Failure> {
    File::create(path).map_err(|e| {
        Failure::Usage(format!(
            "{cmd}: cannot create {what} '{}': {e}",
            path.display()
        ))
    })
}

/// Writes `text` to `file` (created by [`create`]).
pub fn write(
    cmd: &str,
    what: &str,
    mut file: File,
    path: &Path,
    text: &str,
) -> Result<(), Failure> {
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| {
            Failure::Runtime(format!(
                "{cmd}: cannot write {what} '{}': {e}",
                path.display()
            ))
        })
}

/// Prints `text` on stdout; a closed stdout (`| head`) is not the job's
/// failure.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// A flag set on Ctrl-C, so that a sweep finishes the seeds in flight and
/// reports what ran. A second Ctrl-C exits at once (status 130).
pub fn stop_on_ctrl_c(cmd: &'static str) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // This thread is outside every simulation: it only waits for SIGINT on
    // a runtime of its own and sets a flag the sweep's queue reads between
    // seeds. It runs until the process exits.
    #[allow(clippy::disallowed_methods)]
    let _ = std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                flag.store(true, Ordering::SeqCst);
                eprintln!(
                    "{cmd}: interrupted: finishing the seeds in flight (Ctrl-C again to quit now)"
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            });
        });
    stop
}

/// Counts for the plain (non-terminal) progress lines.
#[derive(Default)]
struct Counts {
    total: u64,
    done: u64,
    failing: u64,
}

/// Progress on stderr: an indicatif bar on a terminal, plain lines (every
/// tenth of the seeds) otherwise; each failing seed as it happens.
pub struct Reporter {
    cmd: &'static str,
    bar: Option<ProgressBar>,
    counts: Mutex<Counts>,
}

impl Reporter {
    /// A reporter for `cmd`: a bar when stderr is a terminal.
    pub fn new(cmd: &'static str) -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} seeds {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter {
            cmd,
            bar,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Removes the bar (before the final output).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn planned(&self, more: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(more);
        }
        if let Ok(mut c) = self.counts.lock() {
            c.total += more;
        }
    }

    fn finished(&self, result: &SeedResult) {
        let Ok(mut c) = self.counts.lock() else {
            return;
        };
        c.done += 1;
        let failed = !result.is_clean();
        c.failing += u64::from(failed);
        let fail_line = failed.then(|| {
            format!(
                "FAIL {} seed {}: {}  (replay: {})",
                result.scenario,
                result.seed,
                result.failure_line(),
                result.replay
            )
        });
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if let Some(line) = fail_line {
                    bar.set_message(format!("{} failing", c.failing));
                    bar.println(line);
                }
            }
            None => {
                if let Some(line) = fail_line {
                    eprintln!("{}: {line}", self.cmd);
                }
                let total = c.total.max(1);
                if c.done == c.total || (c.done * 10 / total) > ((c.done - 1) * 10 / total) {
                    eprintln!(
                        "{}: {}/{} seeds done, {} failing",
                        self.cmd, c.done, c.total, c.failing
                    );
                }
            }
        }
    }
}

/// The lines after the table: failing seeds, goals, shards.
pub fn outcome_text(report: &SweepReport) -> String {
    let mut out = String::new();
    let failures = report.failure_lines();
    if !failures.is_empty() {
        out.push_str(&format!(
            "failing seeds ({}):\n{failures}",
            report.failures().len()
        ));
    }
    let missing = report.missing_goals();
    out.push_str(&format!(
        "goals reached: {} of {}\n",
        GOALS.len() - missing.len(),
        GOALS.len()
    ));
    if !missing.is_empty() {
        out.push_str(&format!("goals not reached: {}\n", missing.join(", ")));
    }
    let promises = report.goal_promises();
    if !promises.broken.is_empty() {
        let broken: Vec<String> = promises
            .broken
            .iter()
            .map(|(scenario, goal)| format!("{scenario}: {goal}"))
            .collect();
        out.push_str(&format!(
            "promised goals not reached ({}): {}\n",
            broken.len(),
            broken.join(", ")
        ));
    }
    if !promises.unchecked.is_empty() && !report.interrupted {
        let few: Vec<String> = promises
            .unchecked
            .iter()
            .map(|(scenario, ran, needed)| format!("{scenario} ({ran} of {needed})"))
            .collect();
        out.push_str(&format!(
            "goal promises not checked, too few seeds: {}\n",
            few.join(", ")
        ));
    }
    if report.interrupted {
        out.push_str(&format!(
            "interrupted: {} of {} planned seeds ran\n",
            report.seeds.len(),
            report.planned()
        ));
    }
    out
}

/// The outcome as a result: a runtime failure when a seed failed, the
/// sweep was interrupted, or a scenario run with enough seeds missed a goal
/// it promises ([`SweepReport::goal_promises`]).
pub fn verdict(cmd: &str, report: &SweepReport) -> Result<(), Failure> {
    let failing = report.failures().len();
    if failing > 0 {
        return Err(Failure::Runtime(format!(
            "{cmd}: {failing} of {} seeds failed (replay lines above)",
            report.seeds.len()
        )));
    }
    if report.interrupted {
        return Err(Failure::Runtime(format!(
            "{cmd}: interrupted after {} of {} seeds",
            report.seeds.len(),
            report.planned()
        )));
    }
    let broken = report.goal_promises().broken;
    if let Some((scenario, goal)) = broken.first() {
        return Err(Failure::Runtime(format!(
            "{cmd}: {} promised goal(s) not reached, the first: {scenario} never reached {goal} \
             (the path it stands for is no longer exercised)",
            broken.len()
        )));
    }
    Ok(())
}

/// Runs `mcp-sim sweep`: checks the options, says what it will run, runs
/// it, prints the table and the outcome, writes the JSON report.
pub fn run(args: SweepArgs) -> Result<(), Failure> {
    const CMD: &str = "mcp-sim sweep";
    let opts = options(CMD, &args)?;
    let ranges = opts.ranges().map_err(|e| usage(CMD, e.to_string()))?;
    let json = match &args.json {
        Some(path) => Some((create(CMD, "report file", path)?, path)),
        None => None,
    };
    print(&banner(CMD, &opts, &ranges, args.seeds));

    let stop = stop_on_ctrl_c(CMD);
    let reporter = Reporter::new(CMD);
    // Wall time of the whole sweep, measured here in the command line,
    // outside every simulation; it is printed and stored, never fed back.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let result = sweep(&opts, &stop, &reporter);
    let wall = started.elapsed();
    reporter.finish();
    let mut report = result.map_err(|e| usage(CMD, e.to_string()))?;
    report.wall_ms = wall.as_secs_f64() * 1_000.0;

    let mut text = report.table();
    text.push_str(&outcome_text(&report));
    if opts.max_seeds.is_some() {
        text.push_str(&format!(
            "until-goals: {} seeds run{}\n",
            report.seeds.len(),
            if report.missing_goals().is_empty() {
                ", every goal reached"
            } else {
                ", the cap was reached first"
            }
        ));
    }
    text.push_str(&format!("wall time: {:.2} s\n", wall.as_secs_f64()));
    print(&text);
    if let Some((file, path)) = json {
        write(CMD, "report file", file, path, &report.to_json())?;
    }
    verdict(CMD, &report)
}

/// A usage error of `cmd`.
fn usage(cmd: &str, message: String) -> Failure {
    Failure::Usage(format!("{cmd}: {message}"))
}

/// The sweep the options ask for, checked: known scenarios, seed counts
/// of at least 1 (and a cap not below the first round), a valid shard, a
/// positive seed timeout.
fn options(cmd: &str, args: &SweepArgs) -> Result<SweepOptions, Failure> {
    let scenarios = scenarios(cmd, &args.scenarios)?;
    if args.seeds == Some(0) {
        return Err(usage(cmd, "invalid --seeds 0: give at least 1 seed".into()));
    }
    if args.max_seeds == Some(0) {
        return Err(usage(
            cmd,
            "invalid --max-seeds 0: give at least 1 seed".into(),
        ));
    }
    if let (Some(max), Some(seeds)) = (args.max_seeds, args.seeds) {
        if max < seeds {
            return Err(usage(cmd, format!(
                "--max-seeds {max} is below --seeds {seeds}: the first round already runs {seeds} seeds of each scenario"
            )));
        }
    }
    let shard = match &args.shard {
        Some(s) => s.parse::<Shard>().map_err(|e| usage(cmd, e.to_string()))?,
        None => Shard::WHOLE,
    };
    let seed_timeout = match args.seed_timeout_s {
        None => mcp_sim::sweep::default_seed_timeout(),
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                usage(
                    cmd,
                    format!("invalid --seed-timeout-s {s}: give a positive number of seconds"),
                )
            })?,
    };
    Ok(SweepOptions {
        scenarios,
        seeds: args.seeds,
        seed_start: args.seed_start,
        shard,
        max_seeds: args
            .until_goals
            .then_some(args.max_seeds.unwrap_or(mcp_sim::sweep::DEFAULT_MAX_SEEDS)),
        jobs: jobs(cmd, args.jobs)?,
        seed_timeout,
    })
}

/// The line that says what will run: scenarios, seeds (this shard's part
/// of `ranges`), jobs, and the cap of an until-goals sweep.
fn banner(cmd: &str, opts: &SweepOptions, ranges: &[SeedRange], seeds: Option<u64>) -> String {
    let shard = opts.shard;
    let planned: u64 = ranges
        .iter()
        .map(|r| {
            let p = shard.part(r.seeds());
            p.end - p.start
        })
        .sum();
    let how = match seeds {
        Some(n) => format!("{n} per scenario"),
        None => "each scenario's default count".to_owned(),
    };
    format!(
        "{cmd}: {} scenario(s), {planned} seeds ({how}, from seed {}){}, {} job(s){}\n",
        opts.scenarios.len(),
        opts.seed_start,
        if shard == Shard::WHOLE {
            String::new()
        } else {
            format!(", shard {shard}")
        },
        opts.jobs,
        match opts.max_seeds {
            Some(max) =>
                format!(", until every goal is reached (at most {max} seeds per scenario)"),
            None => String::new(),
        }
    )
}
