//! Sweeps: many seeds of many scenarios, run in parallel, each reduced to a
//! small [`SeedResult`] as it finishes, and aggregated into a
//! [`SweepReport`] (the JSON of `mcp-sim sweep --json`).
//!
//! # Seeds, ranges and shards
//!
//! A sweep runs, for each chosen scenario, the half-open seed range
//! `start..start + count` ([`SeedRange`]); `count` is the scenario's
//! [`Scenario::sweep_seeds`] unless a count is given. A [`Shard`] `K/N`
//! (`K` counted from 1, as in "shard 1 of 3") takes the `K`-th of `N`
//! contiguous, disjoint, nearly equal parts of every scenario's range
//! ([`Shard::part`]): the `N` shards of a sweep together run each seed of
//! it exactly once, and [`merge`] puts their reports back together,
//! refusing reports whose seed ranges overlap or that come from another
//! report format or another set of scenario definitions.
//!
//! # Until every goal is reached
//!
//! With [`SweepOptions::max_seeds`] set, the sweep runs in rounds: the first
//! round is the ranges above; while some goal of [`GOALS`] has not been
//! reached by the seeds run so far, the next round doubles every scenario's
//! range (capped at `max_seeds` seeds per scenario), and so on until every
//! goal is reached or no scenario may grow. The decision is taken between
//! rounds on the sorted results, so it depends only on the seeds. Each
//! round's ranges are sharded like the first; a shard decides on its own
//! seeds' goals, so the shards of such a sweep stay disjoint.
//!
//! # Threads and determinism
//!
//! Each seed is its own deterministic, single-threaded turmoil world
//! ([`crate::run::run`] on [`Schedule::generate`]); worker threads only
//! pick seeds from a shared queue and run them one at a time. Results are
//! sorted by (scenario, seed) before anything is aggregated or reported,
//! so a report does not depend on which thread ran which seed, nor when.
//! The only wall-clock readings are each seed's [`SeedResult::wall_ms`]
//! (measured around the run, never read inside it) and whatever the caller
//! measures around a whole sweep.
//!
//! A seed that panics is caught ([`crate::run::catch`]) and recorded
//! as a failing seed with its replay line; the other seeds go on.
//!
//! # The watchdog
//!
//! A run over its liveness budget ([`crate::liveness`]) is stopped by the
//! run itself. As a last resort, for a seed that never hands control back
//! (a loop that never yields), each seed runs under a wall-clock limit
//! ([`SweepOptions::seed_timeout`], default [`DEFAULT_SEED_TIMEOUT`] or
//! `MCP_SIM_SEED_TIMEOUT_S`): the thread that coordinates the workers
//! records a seed still running past it as [`SeedResult::hung`] (a failing
//! seed, with its replay line), abandons its worker thread and starts
//! another in its place, and the sweep goes on. An abandoned thread is
//! detached (the process still exits when the command returns) and told to
//! take no further seed; one that was only slow finishes its seed, whose
//! late result is dropped (the seed stays hung), and exits. This is the
//! one wall-clock reading that decides anything, and it decides only
//! whether a result is waited for, never what a simulation does.
//!
//! The coordinator keeps its books by seed, not by thread, so that no seed
//! is lost. A thread reports each seed it takes as started, and the
//! coordinator waits for that seed until its result comes in, from
//! whichever thread ran it (an abandoned one included: a thread may take
//! a seed just as it is being abandoned, and that seed's result counts),
//! or until the seed itself is declared hung; each seed gets exactly one
//! result. The sweep ends only once every seed has been taken (or the
//! sweep was stopped), every seed taken has been seen started, none is
//! still running, and every thread not abandoned has exited. Should no
//! thread be left to take the remaining seeds (none could be started, or
//! an abandoned one could not be replaced), the coordinating thread runs
//! them itself, one at a time, with no watchdog over the seed it runs. As
//! a defence against a defect in all this, a seed left without a result
//! is reported as [`SeedResult::lost`], a failing seed with its replay
//! line: a sweep never shrinks silently.
//!
//! A stop
//! flag (the command line sets it on Ctrl-C) makes the workers finish the
//! seeds in flight and take no more; the report is then marked
//! [`SweepReport::interrupted`], and the seeds never started are left out
//! (they are not lost).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use mcp_session::SessionMetrics;

use crate::audit::{GOALS, LAWS};
use crate::liveness::Budget;
use crate::run::{catch, run, Panicked, Report};
use crate::scenarios::Scenario;
use crate::schedule::Schedule;

/// The report format written by `mcp-sim sweep --json` and read by
/// `mcp-sim merge`. Reports of another format are refused.
pub const FORMAT: &str = "mcp-sim-sweep-report/1";

/// The default cap on seeds per scenario of an until-every-goal sweep.
pub const DEFAULT_MAX_SEEDS: u64 = 1_000;

/// The default wall-clock limit on one seed: far beyond any seed's run
/// (the slowest default seeds take a second or two in release builds).
pub const DEFAULT_SEED_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that sets the wall-clock limit on one seed, in
/// seconds (fractions allowed), where no option does.
pub const SEED_TIMEOUT_ENV: &str = "MCP_SIM_SEED_TIMEOUT_S";

/// The wall-clock limit on one seed: `MCP_SIM_SEED_TIMEOUT_S` if it holds
/// a positive number of seconds, else [`DEFAULT_SEED_TIMEOUT`].
pub fn default_seed_timeout() -> Duration {
    std::env::var(SEED_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_SEED_TIMEOUT)
}

/// The command that replays `seed` of `scenario` (the same line as
/// [`Report::replay_line`]).
pub fn replay_line(scenario: &str, seed: u64) -> String {
    format!("cargo run -p mcp-sim -- replay {scenario} {seed}")
}

/// Why a sweep could not be planned, a report could not be read, or
/// reports could not be merged. Each message is one line naming the bad
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    /// A shard that is not `K/N` with `1 <= K <= N`.
    #[error("invalid shard '{value}': {why} (expected K/N with 1 <= K <= N)")]
    Shard {
        /// What was given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A seed range that does not fit in a `u64`.
    #[error(
        "seed range of scenario {scenario} overflows: start {start} + {count} seeds > u64::MAX"
    )]
    Overflow {
        /// The scenario.
        scenario: String,
        /// The first seed.
        start: u64,
        /// How many seeds.
        count: u64,
    },
    /// A report that is not JSON, not a sweep report, or of another format.
    #[error("'{source_name}' is not a sweep report of format {FORMAT}: {why}")]
    Format {
        /// Where the report came from (a file name).
        source_name: String,
        /// What is wrong with it.
        why: String,
    },
    /// Two reports that were not made by the same build.
    #[error("'{a}' and '{b}' do not match: {what}")]
    Mismatch {
        /// One report.
        a: String,
        /// The other.
        b: String,
        /// What differs.
        what: String,
    },
    /// Two reports that ran some of the same seeds.
    #[error(
        "'{a}' and '{b}' overlap: scenario {scenario} seeds {a_range} and {b_range} \
         (shards of one sweep must have disjoint seed ranges)"
    )]
    Overlap {
        /// One report.
        a: String,
        /// The other.
        b: String,
        /// The scenario.
        scenario: String,
        /// `a`'s range, as `start..end`.
        a_range: String,
        /// `b`'s range, as `start..end`.
        b_range: String,
    },
    /// Nothing to merge.
    #[error("no reports to merge")]
    Empty,
}

/// One of `n` disjoint parts of a sweep: `K/N`, `K` counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    k: u64,
    n: u64,
}

impl Shard {
    /// The whole sweep: shard `1/1`.
    pub const WHOLE: Shard = Shard { k: 1, n: 1 };

    /// Shard `k` of `n` (`1 <= k <= n`).
    pub fn new(k: u64, n: u64) -> Result<Shard, SweepError> {
        let err = |why: &str| SweepError::Shard {
            value: format!("{k}/{n}"),
            why: why.to_owned(),
        };
        if n == 0 {
            return Err(err("N must be at least 1"));
        }
        if k == 0 {
            return Err(err("K counts from 1 (for a 0-based index I, give I+1)"));
        }
        if k > n {
            return Err(err("K must not exceed N"));
        }
        Ok(Shard { k, n })
    }

    /// Which shard this is, from 1.
    pub fn k(&self) -> u64 {
        self.k
    }

    /// How many shards in all.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// This shard's part of `range`: the `k`-th of `n` contiguous parts
    /// whose sizes differ by at most one. The parts of shards `1/n` to
    /// `n/n` are disjoint and cover `range` exactly; some are empty when
    /// the range holds fewer than `n` seeds.
    pub fn part(&self, range: Range<u64>) -> Range<u64> {
        let len = u128::from(range.end.saturating_sub(range.start));
        let cut = |i: u64| {
            // len * i / n <= len, which fits in a u64.
            range.start + u64::try_from(len * u128::from(i) / u128::from(self.n)).unwrap_or(0)
        };
        cut(self.k - 1)..cut(self.k)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Shard {
    type Err = SweepError;

    fn from_str(s: &str) -> Result<Shard, SweepError> {
        let err = |why: &str| SweepError::Shard {
            value: s.to_owned(),
            why: why.to_owned(),
        };
        let (k, n) = s.trim().split_once('/').ok_or_else(|| err("no '/'"))?;
        let k = k
            .trim()
            .parse::<u64>()
            .map_err(|_| err("K is not an unsigned integer"))?;
        let n = n
            .trim()
            .parse::<u64>()
            .map_err(|_| err("N is not an unsigned integer"))?;
        Shard::new(k, n).map_err(|e| match e {
            SweepError::Shard { why, .. } => err(&why),
            other => other,
        })
    }
}

impl Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Shard, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The most seeds one range of a report may hold (2^32: far beyond any
/// sweep; `0..u64::MAX` is a hand-made range, not a run).
pub const MAX_RANGE_SEEDS: u64 = 1 << 32;

/// The seeds `start..end` (half-open) of one scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRange {
    /// The scenario's name.
    pub scenario: String,
    /// The first seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// How many seeds.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it holds no seed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The seeds.
    pub fn seeds(&self) -> Range<u64> {
        self.start..self.end
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}..{}", self.scenario, self.start, self.end)
    }
}

/// A broken law of one seed, without the trace around it (replay the seed
/// for that).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LawViolation {
    /// The law (one of [`LAWS`]).
    pub law: String,
    /// The index of the first violating event in the seed's trace.
    pub event_index: usize,
    /// What went wrong.
    pub message: String,
}

/// What a sweep keeps of one seed's run: everything but the schedule and
/// the trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The hex BLAKE3 of the trace (what `mcp-sim replay` prints as
    /// `trace-hash`); `None` when the run panicked.
    pub trace_hash: Option<String>,
    /// How many events the trace held.
    pub events: u64,
    /// The broken laws (first violation of each).
    pub violations: Vec<LawViolation>,
    /// Why the simulation itself failed (a worker's error, or a hang), if
    /// it did.
    pub sim_error: Option<String>,
    /// The panic message, if the run panicked.
    pub panic: Option<String>,
    /// The goals this seed reached, with their counts (goals not reached
    /// are left out).
    pub goals: BTreeMap<String, u64>,
    /// Each law, with how many times the audit checked it.
    pub checks: BTreeMap<String, u64>,
    /// Simulated time when the run ended (ms).
    pub simulated_ms: u64,
    /// What the run was allowed to spend (exceeding it breaks `liveness`);
    /// `None` when there was no run to speak of (it panicked or hung).
    #[serde(default)]
    pub budget: Option<Budget>,
    /// Scheduler steps (VU polls, clock readings and sleeps) the run took.
    #[serde(default)]
    pub steps: u64,
    /// Whether the seed gave no result within the sweep's wall-clock limit
    /// (the watchdog): its thread was abandoned.
    #[serde(default)]
    pub hung: bool,
    /// Whether the sweep lost the seed: it recorded no result for it, a
    /// defect of the sweep itself ([`SeedResult::lost`]).
    #[serde(default)]
    pub lost: bool,
    /// Real time the run took on its worker thread (ms). The only value
    /// here that differs between two runs of the same seed.
    pub wall_ms: f64,
    /// The workers' final metrics, summed over the workers, by field
    /// ([`metrics_fields`]).
    pub metrics: BTreeMap<String, u64>,
    /// VU steps that ended in an error, over all VUs.
    pub vu_errors: u64,
    /// The command that replays this seed.
    pub replay: String,
}

impl SeedResult {
    /// The summary of `report`, which took `wall_ms` of real time.
    pub fn from_report(report: &Report, wall_ms: f64) -> SeedResult {
        let mut metrics = BTreeMap::new();
        for m in report.metrics.values() {
            add_metrics(&mut metrics, &metrics_fields(m));
        }
        SeedResult {
            scenario: report.scenario.clone(),
            seed: report.seed,
            trace_hash: Some(report.trace_hash.clone()),
            events: report.trace.events.len() as u64,
            violations: report
                .violations
                .iter()
                .map(|v| LawViolation {
                    law: v.law.clone(),
                    event_index: v.event_index,
                    message: v.message.clone(),
                })
                .collect(),
            sim_error: report.sim_error.clone(),
            panic: None,
            goals: report
                .goals
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(g, n)| (g.clone(), *n))
                .collect(),
            checks: report.checks.clone(),
            simulated_ms: report.simulated_ms,
            budget: Some(report.budget),
            steps: report.steps,
            hung: false,
            lost: false,
            wall_ms,
            metrics,
            vu_errors: report
                .vu_errors
                .values()
                .flat_map(|vus| vus.values())
                .map(|n| u64::from(*n))
                .sum(),
            replay: report.replay_line(),
        }
    }

    /// A seed whose run panicked with `message`.
    pub fn panicked(scenario: &str, seed: u64, message: String, wall_ms: f64) -> SeedResult {
        SeedResult {
            scenario: scenario.to_owned(),
            seed,
            trace_hash: None,
            events: 0,
            violations: Vec::new(),
            sim_error: None,
            panic: Some(message),
            goals: BTreeMap::new(),
            checks: BTreeMap::new(),
            simulated_ms: 0,
            budget: None,
            steps: 0,
            hung: false,
            lost: false,
            wall_ms,
            metrics: BTreeMap::new(),
            vu_errors: 0,
            replay: replay_line(scenario, seed),
        }
    }

    /// A seed still running after `wall_ms` of real time, past the sweep's
    /// wall-clock limit: the watchdog abandoned its thread.
    pub fn hung(scenario: &str, seed: u64, wall_ms: f64) -> SeedResult {
        SeedResult {
            panic: None,
            hung: true,
            ..SeedResult::panicked(scenario, seed, String::new(), wall_ms)
        }
    }

    /// A seed the sweep has no result for, although it should: a defect of
    /// the sweep, not of the seed (its replay line tells how the seed
    /// runs). The sweep reports it, failing, rather than leave it out;
    /// `wall_ms` is how long it was seen running (0 if it was not seen
    /// started).
    pub fn lost(scenario: &str, seed: u64, wall_ms: f64) -> SeedResult {
        SeedResult {
            panic: None,
            lost: true,
            ..SeedResult::panicked(scenario, seed, String::new(), wall_ms)
        }
    }

    /// Whether the run finished, broke no law, did not panic, did not
    /// hang and was not lost.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
            && self.sim_error.is_none()
            && self.panic.is_none()
            && !self.hung
            && !self.lost
    }

    /// One line on what went wrong (empty for a clean seed): the broken
    /// laws with their messages, the simulation's failure, the panic.
    pub fn failure_line(&self) -> String {
        let mut parts: Vec<String> = self
            .violations
            .iter()
            .map(|v| {
                format!(
                    "law {} broken at event #{}: {}",
                    v.law, v.event_index, v.message
                )
            })
            .collect();
        if let Some(e) = &self.sim_error {
            parts.push(format!("simulation failed at {}ms: {e}", self.simulated_ms));
        }
        if let Some(p) = &self.panic {
            parts.push(format!("panicked: {p}"));
        }
        if self.hung {
            parts.push(format!(
                "hung: no result after {:.1} s of real time (the watchdog abandoned its thread)",
                self.wall_ms / 1_000.0
            ));
        }
        if self.lost {
            parts.push(
                "lost: the sweep recorded no result for this seed (a defect of the sweep, \
                 not of the seed)"
                    .to_owned(),
            );
        }
        parts.join("; ").replace('\n', " ")
    }
}

/// The numeric fields of `metrics` by name, nested ones joined with a dot
/// (`closed.ttl`, `acquire_wait.max_ms`), read from its serde form so that
/// fields added to [`SessionMetrics`] show up without a change here.
pub fn metrics_fields(metrics: &SessionMetrics) -> BTreeMap<String, u64> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, u64>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::Number(n) => {
                if let Some(n) = n.as_u64() {
                    out.insert(prefix.to_owned(), n);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(metrics) {
        walk("", &v, &mut out);
    }
    out
}

/// Adds metric fields into `into`: a field named `max_ms` (or ending in
/// `.max_ms`) keeps the maximum, every other field the sum.
pub fn add_metrics(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        let slot = into.entry(k.clone()).or_default();
        if k == "max_ms" || k.ends_with(".max_ms") {
            *slot = (*slot).max(*v);
        } else {
            *slot = slot.saturating_add(*v);
        }
    }
}

/// Runs `seed` of `scenario` as `mcp-sim replay` does, catches a panic, and
/// reduces the report to its [`SeedResult`] (the trace is dropped here).
pub fn run_seed(scenario: &Scenario, seed: u64) -> SeedResult {
    run_seed_with(scenario, seed, &default_runner)
}

/// What a sweep runs for one seed: [`crate::run::run`] on
/// [`Schedule::generate`], exactly as `mcp-sim replay` does.
pub fn default_runner(scenario: &Scenario, seed: u64) -> Report {
    run(&Schedule::generate(scenario, seed), &scenario.name, seed)
}

/// [`run_seed`] with another runner in place of [`default_runner`] (for
/// tests of the sweep itself: a runner that panics, say).
pub fn run_seed_with(scenario: &Scenario, seed: u64, runner: &Runner) -> SeedResult {
    // The wall clock is read around the run only, never inside the
    // simulation; its reading lands in `wall_ms` and nowhere else.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let outcome = catch(|| runner(scenario, seed));
    let wall_ms = started.elapsed().as_secs_f64() * 1_000.0;
    match outcome {
        Ok(report) => SeedResult::from_report(&report, wall_ms),
        Err(Panicked { message }) => SeedResult::panicked(&scenario.name, seed, message, wall_ms),
    }
}

/// How one seed is run: the scenario and the seed to a [`Report`].
pub type Runner = dyn Fn(&Scenario, u64) -> Report + Send + Sync;

/// What a sweep tells its caller as it goes (from worker threads).
pub trait Progress: Sync {
    /// `more` seeds were added to the plan.
    fn planned(&self, more: u64) {
        let _ = more;
    }

    /// A seed finished (clean or not).
    fn finished(&self, result: &SeedResult) {
        let _ = result;
    }
}

/// A [`Progress`] that shows nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// The position of `scenario` among the built-in scenarios, for sorting
/// (others after them, by name).
fn scenario_rank(names: &[String], scenario: &str) -> usize {
    names
        .iter()
        .position(|n| n == scenario)
        .unwrap_or(names.len())
}

/// Sorts results by (scenario in built-in order, seed).
pub fn sort_results(results: &mut [SeedResult]) {
    let names = Scenario::names();
    results.sort_by(|a, b| {
        (scenario_rank(&names, &a.scenario), &a.scenario, a.seed).cmp(&(
            scenario_rank(&names, &b.scenario),
            &b.scenario,
            b.seed,
        ))
    });
}

/// Seeds to run: a scenario (its index in the scenario list) and a range of
/// its seeds.
pub type Job = (usize, Range<u64>);

/// Runs every seed of `jobs` on `threads` worker threads, telling
/// `progress` of each; returns the results sorted by (scenario, seed).
/// Seeds are taken from the ranges one at a time (never listed up front).
/// Once `stop` is set, no further seed is started (the ones in flight
/// finish and are returned). Each seed runs under
/// [`default_seed_timeout`] (see [`run_jobs_with`]).
pub fn run_jobs(
    scenarios: &[Scenario],
    jobs: &[Job],
    threads: usize,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Vec<SeedResult> {
    run_jobs_with(
        scenarios,
        jobs,
        threads,
        stop,
        progress,
        Arc::new(default_runner),
        default_seed_timeout(),
    )
}

/// What a worker thread tells the coordinating thread. Seeds are named by
/// their number in the [`Queue`].
enum Message {
    /// Worker `worker` started seed `index`.
    Started { worker: usize, index: u64 },
    /// Seed `index` finished.
    Finished { index: u64, result: Box<SeedResult> },
    /// Worker `worker` took its last seed.
    Exited { worker: usize },
}

/// What the worker threads share: the seeds, numbered from 0 through the
/// jobs in turn, and how many have been taken.
struct Queue {
    /// Each job's scenario and range (jobs naming no scenario left out).
    jobs: Vec<(Scenario, Range<u64>)>,
    /// How many seeds the jobs hold.
    total: u64,
    /// How many seeds have been taken: seed `i` is taken once, by whoever
    /// moves `next` from `i` to `i + 1`; it never passes `total`.
    next: AtomicU64,
    /// Take no further seed: the sweep was stopped.
    stop: AtomicBool,
}

impl Queue {
    /// The seeds of `jobs`, each job's scenario an index into `scenarios`.
    fn new(scenarios: &[Scenario], jobs: &[Job], stop: bool) -> Queue {
        let jobs: Vec<(Scenario, Range<u64>)> = jobs
            .iter()
            .filter_map(|(s, range)| Some((scenarios.get(*s)?.clone(), range.clone())))
            .collect();
        let total = jobs
            .iter()
            .map(|(_, r)| r.end.saturating_sub(r.start))
            .fold(0, u64::saturating_add);
        Queue {
            jobs,
            total,
            next: AtomicU64::new(0),
            stop: AtomicBool::new(stop),
        }
    }

    /// Seed number `i`: its scenario and seed (`None` past the last).
    fn seed(&self, mut i: u64) -> Option<(&Scenario, u64)> {
        for (scenario, range) in &self.jobs {
            let len = range.end.saturating_sub(range.start);
            if i < len {
                return Some((scenario, range.start + i));
            }
            i -= len;
        }
        None
    }

    /// Takes the next seed: its number, or `None` once all are taken.
    fn take(&self) -> Option<u64> {
        self.next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.total).then_some(n + 1)
            })
            .ok()
    }

    /// How many seeds have been taken.
    fn taken(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Whether every seed has been taken.
    fn exhausted(&self) -> bool {
        self.taken() >= self.total
    }

    /// Whether the sweep was stopped.
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Starts worker thread `worker`: it takes seeds from `queue` one at a time
/// and runs them, telling `tx`, until the queue is empty or stopped or
/// `quit` is set. Whether it could be started.
fn spawn_worker(
    worker: usize,
    queue: &Arc<Queue>,
    runner: &Arc<Runner>,
    tx: &mpsc::Sender<Message>,
    quit: &Arc<AtomicBool>,
) -> bool {
    let (queue, runner, tx, quit) = (queue.clone(), runner.clone(), tx.clone(), quit.clone());
    let work = move || {
        // `quit` is read before each seed is taken, so an abandoned thread
        // that recovers takes no further seed; one it takes as it is being
        // abandoned is still accounted for (see `Workers`).
        while !queue.stopped() && !quit.load(Ordering::SeqCst) {
            let Some(index) = queue.take() else {
                break;
            };
            // Every number `take` hands out names a seed.
            let Some((scenario, seed)) = queue.seed(index) else {
                break;
            };
            if tx.send(Message::Started { worker, index }).is_err() {
                return;
            }
            let result = Box::new(run_seed_with(scenario, seed, &*runner));
            if tx.send(Message::Finished { index, result }).is_err() {
                return;
            }
        }
        let _ = tx.send(Message::Exited { worker });
    };
    // OS threads here sit outside every simulation: each runs whole seeds,
    // one at a time, and each seed is its own single-threaded deterministic
    // turmoil world. Results are sorted by (scenario, seed), so no output
    // depends on thread timing. Each thread gets a main-thread-sized
    // stack, as the simulation's futures are deep in debug builds. The
    // threads are detached, so that the watchdog can abandon one.
    #[allow(clippy::disallowed_methods)]
    let spawned = std::thread::Builder::new()
        .name(format!("sweep-{worker}"))
        .stack_size(8 << 20)
        .spawn(work);
    spawned.is_ok()
}

/// [`run_jobs`] with another runner in place of [`default_runner`], and a
/// wall-clock limit on each seed: a seed still running after `seed_timeout`
/// is recorded as [`SeedResult::hung`] (whatever it reports later is
/// ignored), its thread abandoned (left running, detached, told to take no
/// further seed) and replaced, and the other seeds go on. Every seed of
/// `jobs` gets exactly one result, unless `stop` ends the sweep first
/// (jobs naming no scenario in `scenarios` are skipped): see the module
/// docs.
pub fn run_jobs_with(
    scenarios: &[Scenario],
    jobs: &[Job],
    threads: usize,
    stop: &AtomicBool,
    progress: &dyn Progress,
    runner: Arc<Runner>,
    seed_timeout: Duration,
) -> Vec<SeedResult> {
    run_jobs_spawning(
        scenarios,
        jobs,
        threads,
        stop,
        progress,
        runner,
        seed_timeout,
        usize::MAX,
    )
}

/// [`run_jobs_with`], starting at most `spawns` worker threads: past that,
/// starting one fails as if the system refused (for tests of the sweep
/// when threads cannot be started or replaced).
#[allow(clippy::too_many_arguments)]
fn run_jobs_spawning(
    scenarios: &[Scenario],
    jobs: &[Job],
    threads: usize,
    stop: &AtomicBool,
    progress: &dyn Progress,
    runner: Arc<Runner>,
    seed_timeout: Duration,
    spawns: usize,
) -> Vec<SeedResult> {
    let queue = Arc::new(Queue::new(scenarios, jobs, stop.load(Ordering::SeqCst)));
    let total = queue.total;
    let (tx, rx) = mpsc::channel();
    let mut workers = Workers::new(queue, runner, tx, spawns);
    let threads = threads.clamp(1, usize::try_from(total.max(1)).unwrap_or(usize::MAX));
    for _ in 0..threads {
        workers.spawn();
    }
    loop {
        if stop.load(Ordering::SeqCst) {
            workers.queue.stop.store(true, Ordering::SeqCst);
        }
        if workers.settled() {
            break;
        }
        let queue = &workers.queue;
        if workers.live() == 0 && !queue.stopped() && !queue.exhausted() {
            // Seeds remain but no thread takes them (none could be started,
            // or every one was abandoned and none could replace it): start
            // one, or else run one seed here, without a watchdog over it.
            workers.spawn();
            if workers.live() == 0 {
                workers.run_one_here(progress);
                // Take in what came meanwhile before judging what is late.
                while let Ok(message) = rx.try_recv() {
                    workers.receive(message, progress);
                }
                workers.abandon_overdue(seed_timeout, progress);
                continue;
            }
        }
        match rx.recv_timeout(workers.wait(seed_timeout)) {
            Ok(message) => workers.receive(message, progress),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Cannot happen while `workers` holds a sender; if it did,
            // `finish` reports every seed left without a result.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        workers.abandon_overdue(seed_timeout, progress);
    }
    workers.finish(progress)
}

/// A worker thread, as the coordinating thread sees it.
struct Thread {
    /// Set when the thread is abandoned: it takes no further seed.
    quit: Arc<AtomicBool>,
    /// Whether the watchdog abandoned it.
    abandoned: bool,
    /// Whether it said it took its last seed.
    exited: bool,
}

/// The coordinating thread's books, kept by seed, not by thread: which
/// seeds were seen started and are still running, on which thread and
/// since when; the one result of each seed accounted for; and the worker
/// threads.
///
/// A seed is accounted for when its result comes in, from whichever
/// thread ran it (an abandoned one included: it may have taken a seed just
/// as it was abandoned), or when it is declared hung, after which its late
/// result is dropped. A seed is seen started after it is taken, so the
/// books are complete once every seed taken has been seen started
/// (`started == queue.taken()`) and none is still running.
// The watchdog's wall clock (`Instant`) is read here, on the coordinating
// thread, outside every simulation; it decides only whether a seed's
// result is still waited for.
#[allow(clippy::disallowed_types)]
struct Workers {
    queue: Arc<Queue>,
    runner: Arc<Runner>,
    tx: mpsc::Sender<Message>,
    /// How many more threads may be started (unbounded in a sweep).
    spawns: usize,
    /// Threads started so far: the next one's number.
    spawned: usize,
    /// The threads that could be started, by number.
    threads: BTreeMap<usize, Thread>,
    /// How many seeds were seen started (or were run here).
    started: u64,
    /// The seeds started and not yet accounted for, by number in the
    /// queue: the thread running it, and since when.
    running: BTreeMap<u64, (usize, std::time::Instant)>,
    /// The one result of each seed accounted for, by number in the queue.
    results: BTreeMap<u64, SeedResult>,
}

#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
impl Workers {
    /// No thread yet; at most `spawns` will be started.
    fn new(
        queue: Arc<Queue>,
        runner: Arc<Runner>,
        tx: mpsc::Sender<Message>,
        spawns: usize,
    ) -> Workers {
        Workers {
            queue,
            runner,
            tx,
            spawns,
            spawned: 0,
            threads: BTreeMap::new(),
            started: 0,
            running: BTreeMap::new(),
            results: BTreeMap::new(),
        }
    }

    /// Starts one more worker thread, if it can.
    fn spawn(&mut self) {
        let worker = self.spawned;
        self.spawned += 1;
        if self.spawns == 0 {
            return;
        }
        self.spawns -= 1;
        let quit = Arc::new(AtomicBool::new(false));
        if spawn_worker(worker, &self.queue, &self.runner, &self.tx, &quit) {
            let thread = Thread {
                quit,
                abandoned: false,
                exited: false,
            };
            self.threads.insert(worker, thread);
        }
    }

    /// How many threads still take seeds (neither exited nor abandoned).
    fn live(&self) -> usize {
        self.threads
            .values()
            .filter(|t| !t.abandoned && !t.exited)
            .count()
    }

    /// Whether the sweep is over: no seed is left to take (or it was
    /// stopped), every seed taken is accounted for, and every thread not
    /// abandoned has exited.
    fn settled(&self) -> bool {
        (self.queue.stopped() || self.queue.exhausted())
            && self.started == self.queue.taken()
            && self.running.is_empty()
            && self.live() == 0
    }

    /// How long to wait for a message: until the earliest deadline of a
    /// running seed, and never over 100 ms, often enough to see `stop`.
    fn wait(&self, seed_timeout: Duration) -> Duration {
        self.running
            .values()
            .map(|(_, at)| seed_timeout.saturating_sub(at.elapsed()))
            .min()
            .unwrap_or(seed_timeout)
            .min(Duration::from_millis(100))
    }

    /// Records `result` as seed `index`'s, unless it has one already.
    fn record(&mut self, index: u64, result: SeedResult, progress: &dyn Progress) {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.results.entry(index) {
            progress.finished(&result);
            slot.insert(result);
        }
    }

    /// Takes in what a worker said, abandoned or not.
    fn receive(&mut self, message: Message, progress: &dyn Progress) {
        match message {
            Message::Started { worker, index } => {
                self.started += 1;
                self.running
                    .insert(index, (worker, std::time::Instant::now()));
            }
            Message::Finished { index, result } => {
                // A seed no longer running was declared hung: its late
                // result is dropped, so that it has one result.
                if self.running.remove(&index).is_some() {
                    self.record(index, *result, progress);
                }
            }
            Message::Exited { worker } => {
                if let Some(thread) = self.threads.get_mut(&worker) {
                    thread.exited = true;
                }
            }
        }
    }

    /// Records every seed running for `seed_timeout` or longer as hung,
    /// abandons its thread (told to take no further seed) and, if that
    /// thread was still live, starts a replacement, which keeps the sweep's
    /// parallelism.
    fn abandon_overdue(&mut self, seed_timeout: Duration, progress: &dyn Progress) {
        let overdue: Vec<u64> = self
            .running
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= seed_timeout)
            .map(|(index, _)| *index)
            .collect();
        for index in overdue {
            let Some((worker, at)) = self.running.remove(&index) else {
                continue;
            };
            // Told to quit before the hang is reported, so that a thread
            // that recovers at once takes no further seed.
            let mut replace = false;
            if let Some(thread) = self.threads.get_mut(&worker) {
                thread.quit.store(true, Ordering::SeqCst);
                replace = !thread.abandoned && !thread.exited;
                thread.abandoned = true;
            }
            if let Some((scenario, seed)) = self.queue.seed(index) {
                let wall_ms = at.elapsed().as_secs_f64() * 1_000.0;
                let result = SeedResult::hung(&scenario.name, seed, wall_ms);
                self.record(index, result, progress);
            }
            if replace {
                self.spawn();
            }
        }
    }

    /// Takes one seed and runs it on this thread (when no worker thread
    /// takes seeds).
    fn run_one_here(&mut self, progress: &dyn Progress) {
        let Some(index) = self.queue.take() else {
            return;
        };
        self.started += 1;
        if let Some((scenario, seed)) = self.queue.seed(index) {
            let result = run_seed_with(scenario, seed, &*self.runner);
            self.record(index, result, progress);
        }
    }

    /// The results, sorted. Defence in depth: a seed without a result is
    /// reported [`SeedResult::lost`] (every seed still running, and unless
    /// the sweep was stopped, every seed at all), so that a defect here
    /// fails the sweep rather than shrink it.
    fn finish(mut self, progress: &dyn Progress) -> Vec<SeedResult> {
        for (index, (_, at)) in std::mem::take(&mut self.running) {
            self.lose(index, at.elapsed().as_secs_f64() * 1_000.0, progress);
        }
        if !self.queue.stopped() && (self.results.len() as u64) < self.queue.total {
            for index in 0..self.queue.total {
                if !self.results.contains_key(&index) {
                    self.lose(index, 0.0, progress);
                }
            }
        }
        let mut results: Vec<SeedResult> = self.results.into_values().collect();
        sort_results(&mut results);
        results
    }

    /// Records seed `index` as lost, seen running for `wall_ms`.
    fn lose(&mut self, index: u64, wall_ms: f64, progress: &dyn Progress) {
        if let Some((scenario, seed)) = self.queue.seed(index) {
            let result = SeedResult::lost(&scenario.name, seed, wall_ms);
            self.record(index, result, progress);
        }
    }
}

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The scenarios, in the order to report them.
    pub scenarios: Vec<Scenario>,
    /// Seeds per scenario (`None`: each scenario's
    /// [`Scenario::sweep_seeds`]).
    pub seeds: Option<u64>,
    /// The first seed of every scenario.
    pub seed_start: u64,
    /// Which part of the seeds to run.
    pub shard: Shard,
    /// Keep adding seeds until every goal of [`GOALS`] is reached, up to
    /// this many seeds per scenario (`None`: one round only).
    pub max_seeds: Option<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// The wall-clock limit on one seed (the watchdog, a last resort: see
    /// the module docs).
    pub seed_timeout: Duration,
}

impl SweepOptions {
    /// Every built-in scenario at its default seed count from seed 0, the
    /// whole sweep, on `jobs` threads.
    pub fn new(jobs: usize) -> SweepOptions {
        SweepOptions {
            scenarios: Scenario::all(),
            seeds: None,
            seed_start: 0,
            shard: Shard::WHOLE,
            max_seeds: None,
            jobs,
            seed_timeout: default_seed_timeout(),
        }
    }

    /// How many seeds round one runs of `scenario` (before sharding).
    pub fn count(&self, scenario: &Scenario) -> u64 {
        self.seeds.unwrap_or_else(|| scenario.sweep_seeds())
    }

    /// The full (unsharded) range of each scenario in round one; an error
    /// if one does not fit in a `u64`, or if an until-every-goal cap does
    /// not.
    pub fn ranges(&self) -> Result<Vec<SeedRange>, SweepError> {
        self.scenarios
            .iter()
            .map(|s| {
                let count = self.count(s);
                let overflow = |count| SweepError::Overflow {
                    scenario: s.name.clone(),
                    start: self.seed_start,
                    count,
                };
                let end = self
                    .seed_start
                    .checked_add(count)
                    .ok_or_else(|| overflow(count))?;
                if let Some(max) = self.max_seeds {
                    self.seed_start
                        .checked_add(max)
                        .ok_or_else(|| overflow(max))?;
                }
                Ok(SeedRange {
                    scenario: s.name.clone(),
                    start: self.seed_start,
                    end,
                })
            })
            .collect()
    }
}

/// One scenario's results, summed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    /// The scenario's name.
    pub scenario: String,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that broke a law, failed to finish, panicked, hung or were
    /// lost.
    pub failing: u64,
    /// Law violations, over all seeds (at most one per law and seed).
    pub violations: u64,
    /// Seeds whose simulation failed (an error or a hang).
    pub sim_errors: u64,
    /// Seeds that panicked.
    pub panics: u64,
    /// Seeds the watchdog gave up on ([`SeedResult::hung`]).
    #[serde(default)]
    pub hung: u64,
    /// Seeds the sweep lost ([`SeedResult::lost`]).
    #[serde(default)]
    pub lost: u64,
    /// Seeds that broke each law (laws never broken are left out).
    pub violations_by_law: BTreeMap<String, u64>,
    /// Each law, with how many times it was checked over all seeds.
    pub checks: BTreeMap<String, u64>,
    /// Each goal of [`GOALS`] (and any other a seed reported), with its
    /// hits over all seeds.
    pub goals: BTreeMap<String, u64>,
    /// The metrics of all seeds' workers, summed by field (see
    /// [`add_metrics`]).
    pub metrics: BTreeMap<String, u64>,
    /// VU steps that ended in an error.
    pub vu_errors: u64,
    /// Trace events.
    pub events: u64,
    /// Simulated time, summed over seeds (ms).
    pub simulated_ms: u64,
    /// Real time spent running the seeds, summed over seeds (ms).
    pub wall_ms: f64,
}

impl ScenarioSummary {
    /// An empty summary of `scenario`.
    fn empty(scenario: &str) -> ScenarioSummary {
        ScenarioSummary {
            scenario: scenario.to_owned(),
            goals: GOALS.iter().map(|g| ((*g).to_owned(), 0)).collect(),
            ..ScenarioSummary::default()
        }
    }

    /// Adds one seed.
    fn add(&mut self, r: &SeedResult) {
        self.seeds += 1;
        self.failing += u64::from(!r.is_clean());
        self.violations += r.violations.len() as u64;
        self.sim_errors += u64::from(r.sim_error.is_some());
        self.panics += u64::from(r.panic.is_some());
        self.hung += u64::from(r.hung);
        self.lost += u64::from(r.lost);
        for v in &r.violations {
            *self.violations_by_law.entry(v.law.clone()).or_default() += 1;
        }
        for (law, n) in &r.checks {
            *self.checks.entry(law.clone()).or_default() += n;
        }
        for (goal, n) in &r.goals {
            *self.goals.entry(goal.clone()).or_default() += n;
        }
        add_metrics(&mut self.metrics, &r.metrics);
        self.vu_errors += r.vu_errors;
        self.events += r.events;
        self.simulated_ms = self.simulated_ms.saturating_add(r.simulated_ms);
        self.wall_ms += r.wall_ms;
    }

    /// The goals of [`GOALS`] this scenario reached.
    pub fn goals_reached(&self) -> usize {
        GOALS
            .iter()
            .filter(|g| self.goals.get(**g).copied().unwrap_or(0) > 0)
            .count()
    }

    /// Simulated time over real time (`None` when no real time was spent).
    pub fn speed(&self) -> Option<f64> {
        (self.wall_ms > 0.0).then(|| self.simulated_ms as f64 / self.wall_ms)
    }
}

/// How a sweep kept the goals its scenarios promise: see
/// [`SweepReport::goal_promises`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoalPromises {
    /// The scenarios whose promises were checked (they ran at least their
    /// sweep seeds).
    pub checked: Vec<String>,
    /// The scenarios run with too few seeds to be held to their promises:
    /// (name, seeds run, seeds needed).
    pub unchecked: Vec<(String, u64, u64)>,
    /// The promised goals not reached: (scenario, goal).
    pub broken: Vec<(String, &'static str)>,
}

/// Where a report's code came from: reports of different builds' scenario
/// definitions are not merged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// The `mcp-sim` version.
    pub version: String,
    /// SHA-256 (hex) of the built-in scenario definitions, laws and goals.
    pub digest: String,
}

impl Build {
    /// This build.
    pub fn current() -> Build {
        let definition = serde_json::json!({
            "scenarios": Scenario::all(),
            "sweep_seeds": Scenario::all().iter().map(Scenario::sweep_seeds).collect::<Vec<_>>(),
            "laws": &LAWS[..],
            "goals": GOALS,
            "promised_goals": Scenario::all().iter().map(Scenario::promised_goals).collect::<Vec<_>>(),
        });
        let digest = Sha256::digest(definition.to_string().as_bytes());
        Build {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            digest: digest.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            }),
        }
    }
}

/// The outcome of a sweep (or of several merged): the `--json` report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Always [`FORMAT`].
    pub format: String,
    /// The build that ran it.
    pub build: Build,
    /// The shards it holds: `["1/1"]` for a whole sweep, `["2/3"]` for one
    /// shard, every input's shards for a merged report.
    pub shards: Vec<Shard>,
    /// Whether it was stopped before every planned seed ran (Ctrl-C).
    pub interrupted: bool,
    /// How long the sweep took in real time (ms), as measured by the
    /// caller; for a merged report, the longest input's.
    pub wall_ms: f64,
    /// The seed ranges it was asked to run, per scenario, sorted, adjacent
    /// ones joined.
    pub ranges: Vec<SeedRange>,
    /// Each scenario's results, summed, in the order of `ranges`.
    pub scenarios: Vec<ScenarioSummary>,
    /// Each goal of [`GOALS`] (and any other a seed reported), with its
    /// hits over all scenarios.
    pub goals: BTreeMap<String, u64>,
    /// Every seed's result, sorted by (scenario, seed).
    pub seeds: Vec<SeedResult>,
}

/// The order of seed ranges in a report: by scenario (built-in ones in
/// their order, see [`scenario_rank`], then by name), then by start.
fn range_order(names: &[String], a: &SeedRange, b: &SeedRange) -> std::cmp::Ordering {
    (scenario_rank(names, &a.scenario), &a.scenario, a.start).cmp(&(
        scenario_rank(names, &b.scenario),
        &b.scenario,
        b.start,
    ))
}

/// Sorts ranges by (scenario, start) and joins adjacent ones; drops empty
/// ones.
fn normalize_ranges(mut ranges: Vec<SeedRange>) -> Vec<SeedRange> {
    let names = Scenario::names();
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by(|a, b| range_order(&names, a, b));
    let mut out: Vec<SeedRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.scenario == r.scenario && last.end == r.start => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

impl SweepReport {
    /// The report of `seeds`, asked to run `ranges` as `shards`: sorts
    /// everything and computes the per-scenario and overall sums.
    pub fn new(
        shards: Vec<Shard>,
        ranges: Vec<SeedRange>,
        mut seeds: Vec<SeedResult>,
        interrupted: bool,
        wall_ms: f64,
    ) -> SweepReport {
        let ranges = normalize_ranges(ranges);
        sort_results(&mut seeds);
        let mut scenarios: Vec<ScenarioSummary> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let names = ranges
            .iter()
            .map(|r| r.scenario.as_str())
            .chain(seeds.iter().map(|s| s.scenario.as_str()));
        for name in names {
            if !index.contains_key(name) {
                index.insert(name.to_owned(), scenarios.len());
                scenarios.push(ScenarioSummary::empty(name));
            }
        }
        for r in &seeds {
            if let Some(&i) = index.get(&r.scenario) {
                scenarios[i].add(r);
            }
        }
        let mut goals: BTreeMap<String, u64> = GOALS.iter().map(|g| ((*g).to_owned(), 0)).collect();
        for s in &scenarios {
            for (g, n) in &s.goals {
                *goals.entry(g.clone()).or_default() += n;
            }
        }
        SweepReport {
            format: FORMAT.to_owned(),
            build: Build::current(),
            shards,
            interrupted,
            wall_ms,
            ranges,
            scenarios,
            goals,
            seeds,
        }
    }

    /// Whether every seed finished, broke no law and did not panic.
    pub fn is_clean(&self) -> bool {
        self.seeds.iter().all(SeedResult::is_clean)
    }

    /// The seeds that are not clean.
    pub fn failures(&self) -> Vec<&SeedResult> {
        self.seeds.iter().filter(|s| !s.is_clean()).collect()
    }

    /// The goals of [`GOALS`] no seed reached.
    pub fn missing_goals(&self) -> Vec<&'static str> {
        GOALS
            .iter()
            .copied()
            .filter(|g| self.goals.get(*g).copied().unwrap_or(0) == 0)
            .collect()
    }

    /// How the sweep kept the goals its scenarios promise
    /// ([`Scenario::promised_goals`]): each built-in scenario that ran at
    /// least its [`Scenario::sweep_seeds`] is checked, and each of its
    /// promised goals that none of its seeds reached is a broken promise.
    /// A scenario run with fewer seeds (a quick sweep, one shard) is listed
    /// as unchecked: it promised nothing for so few. A merge of the shards
    /// is checked again as a whole.
    pub fn goal_promises(&self) -> GoalPromises {
        let mut out = GoalPromises::default();
        for summary in &self.scenarios {
            let Some(scenario) = Scenario::by_name(&summary.scenario) else {
                continue;
            };
            let needed = scenario.sweep_seeds();
            if summary.seeds < needed {
                out.unchecked
                    .push((summary.scenario.clone(), summary.seeds, needed));
                continue;
            }
            out.checked.push(summary.scenario.clone());
            for goal in scenario.promised_goals() {
                if summary.goals.get(*goal).copied().unwrap_or(0) == 0 {
                    out.broken.push((summary.scenario.clone(), goal));
                }
            }
        }
        out
    }

    /// How many seeds the ranges hold (what was planned).
    pub fn planned(&self) -> u64 {
        self.ranges.iter().map(SeedRange::len).sum()
    }

    /// The shards missing from a set of shards of one split: for each `N`
    /// among [`SweepReport::shards`], the `K/N` not present. Empty for a
    /// whole sweep or a complete merge.
    pub fn missing_shards(&self) -> Vec<Shard> {
        let mut by_n: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for s in &self.shards {
            by_n.entry(s.n).or_default().insert(s.k);
        }
        by_n.iter()
            .flat_map(|(&n, ks)| {
                (1..=n)
                    .filter(|k| !ks.contains(k))
                    .map(move |k| Shard { k, n })
            })
            .collect()
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Plain values and finite floats: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a report written by [`SweepReport::to_json`]; `source` names
    /// it in errors. Refuses anything not of format [`FORMAT`].
    pub fn from_json(source: &str, text: &str) -> Result<SweepReport, SweepError> {
        let err = |why: String| SweepError::Format {
            source_name: source.to_owned(),
            why,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| err(format!("not JSON: {e}")))?;
        match value.get("format") {
            Some(Value::String(f)) if f == FORMAT => {}
            Some(Value::String(f)) => return Err(err(format!("its format is '{f}'"))),
            Some(_) => return Err(err("its 'format' is not a string".to_owned())),
            None => return Err(err("it has no 'format' field".to_owned())),
        }
        let report: SweepReport = serde_json::from_value(value).map_err(|e| err(e.to_string()))?;
        report.consistency().map_err(err)?;
        Ok(report)
    }

    /// Whether the report holds together: every range of a known scenario,
    /// ordered (`start < end`) and of at most [`MAX_RANGE_SEEDS`] seeds;
    /// every seed of a known scenario, inside one of its ranges, once; every
    /// trace hash 64 lowercase hex digits. A report a sweep wrote always
    /// does; one edited by hand, or made by something else, may not.
    pub fn consistency(&self) -> Result<(), String> {
        for r in &self.ranges {
            if Scenario::by_name(&r.scenario).is_none() {
                return Err(format!("range of unknown scenario '{}'", r.scenario));
            }
            if r.start >= r.end {
                return Err(format!(
                    "range {}..{} of scenario {} is empty or reversed",
                    r.start, r.end, r.scenario
                ));
            }
            if r.len() > MAX_RANGE_SEEDS {
                return Err(format!(
                    "range {}..{} of scenario {} holds {} seeds, more than {MAX_RANGE_SEEDS}",
                    r.start,
                    r.end,
                    r.scenario,
                    r.len()
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for seed in &self.seeds {
            let (name, n) = (&seed.scenario, seed.seed);
            if Scenario::by_name(name).is_none() {
                return Err(format!("seed {n} of unknown scenario '{name}'"));
            }
            let inside = self
                .ranges
                .iter()
                .any(|r| &r.scenario == name && r.seeds().contains(&n));
            if !inside {
                return Err(format!(
                    "seed {n} of scenario {name} is outside the report's ranges"
                ));
            }
            if !seen.insert((name.as_str(), n)) {
                return Err(format!("seed {n} of scenario {name} is listed twice"));
            }
            if let Some(h) = &seed.trace_hash {
                let hex =
                    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !hex {
                    return Err(format!(
                        "seed {n} of scenario {name}: trace hash '{}' is not 64 lowercase hex digits",
                        h.chars().take(80).collect::<String>()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The table of scenarios: seeds, failing seeds, violations, goals
    /// reached of [`GOALS`], simulated time and simulated/wall ratio, and a
    /// total line.
    pub fn table(&self) -> String {
        let total_goals = GOALS.len();
        let width = self
            .scenarios
            .iter()
            .map(|s| s.scenario.len())
            .chain(["scenario".len(), "total".len()])
            .max()
            .unwrap_or(8);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>7}  {:>10}  {:>7}  {:>11}  {:>9}",
            "scenario", "seeds", "failing", "violations", "goals", "simulated", "sim/wall"
        );
        let speed = |s: Option<f64>| match s {
            Some(x) => format!("{x:.0}x"),
            None => "-".to_owned(),
        };
        let simulated = |ms: u64| format!("{:.1}s", ms as f64 / 1_000.0);
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "{:<width$}  {:>6}  {:>7}  {:>10}  {:>7}  {:>11}  {:>9}",
                s.scenario,
                s.seeds,
                s.failing,
                s.violations,
                format!("{}/{total_goals}", s.goals_reached()),
                simulated(s.simulated_ms),
                speed(s.speed()),
            );
        }
        let sum = |f: fn(&ScenarioSummary) -> u64| self.scenarios.iter().map(f).sum::<u64>();
        let simulated_ms = sum(|s| s.simulated_ms);
        let wall: f64 = self.scenarios.iter().map(|s| s.wall_ms).sum();
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>7}  {:>10}  {:>7}  {:>11}  {:>9}",
            "total",
            sum(|s| s.seeds),
            sum(|s| s.failing),
            sum(|s| s.violations),
            format!("{}/{total_goals}", total_goals - self.missing_goals().len()),
            simulated(simulated_ms),
            speed((wall > 0.0).then(|| simulated_ms as f64 / wall)),
        );
        out
    }

    /// The failing seeds, one line each with what went wrong, then its
    /// replay line; empty when every seed is clean.
    pub fn failure_lines(&self) -> String {
        let mut out = String::new();
        for f in self.failures() {
            let _ = writeln!(
                out,
                "FAIL {} seed {}: {}\n  replay: {}",
                f.scenario,
                f.seed,
                f.failure_line(),
                f.replay
            );
        }
        out
    }
}

/// Runs the sweep `opts` describes, telling `progress` of each seed; stops
/// taking seeds once `stop` is set. `wall_ms` of the report is left 0 for
/// the caller to fill.
pub fn sweep(
    opts: &SweepOptions,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<SweepReport, SweepError> {
    let full = opts.ranges()?;
    let mut ranges: Vec<SeedRange> = Vec::new();
    let mut results: Vec<SeedResult> = Vec::new();
    // The end of each scenario's unsharded range so far.
    let mut ends: Vec<u64> = full.iter().map(|r| r.start).collect();
    let mut targets: Vec<u64> = full.iter().map(|r| r.end).collect();
    let mut round = 0u32;
    loop {
        let mut jobs: Vec<Job> = Vec::new();
        for (i, r) in full.iter().enumerate() {
            let part = opts.shard.part(ends[i]..targets[i]);
            if !part.is_empty() {
                ranges.push(SeedRange {
                    scenario: r.scenario.clone(),
                    start: part.start,
                    end: part.end,
                });
                jobs.push((i, part));
            }
            ends[i] = targets[i];
        }
        progress.planned(jobs.iter().map(|(_, r)| r.end - r.start).sum());
        results.extend(run_jobs_with(
            &opts.scenarios,
            &jobs,
            opts.jobs,
            stop,
            progress,
            Arc::new(default_runner),
            opts.seed_timeout,
        ));
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(max) = opts.max_seeds else {
            break;
        };
        let reached: BTreeSet<&str> = results
            .iter()
            .flat_map(|r| r.goals.keys().map(String::as_str))
            .collect();
        if GOALS.iter().all(|g| reached.contains(g)) {
            break;
        }
        // Double every scenario's range, up to `max` seeds.
        round += 1;
        let mut grew = false;
        for (i, r) in full.iter().enumerate() {
            let count = r.len().max(1);
            let doubled = count.saturating_mul(1u64.checked_shl(round).unwrap_or(u64::MAX));
            let target = r.start.saturating_add(doubled.min(max));
            if target > ends[i] {
                targets[i] = target;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let interrupted = stop.load(Ordering::SeqCst);
    Ok(SweepReport::new(
        vec![opts.shard],
        ranges,
        results,
        interrupted,
        0.0,
    ))
}

/// Merges shard reports (each with the name it is known by, for errors)
/// into one. Refuses reports of another build or whose seed ranges (or
/// seeds) overlap; the result is the report one sweep over the union of
/// their ranges would have given, but for wall times.
pub fn merge(inputs: &[(String, SweepReport)]) -> Result<SweepReport, SweepError> {
    let Some((_, first)) = inputs.first() else {
        return Err(SweepError::Empty);
    };
    same_build(inputs)?;
    no_range_overlap(inputs)?;
    no_seed_overlap(inputs)?;
    let mut shards: Vec<Shard> = inputs
        .iter()
        .flat_map(|(_, r)| r.shards.iter().copied())
        .collect();
    shards.sort_by_key(|s| (s.n, s.k));
    let mut report = SweepReport::new(
        shards,
        inputs
            .iter()
            .flat_map(|(_, r)| r.ranges.iter().cloned())
            .collect(),
        inputs
            .iter()
            .flat_map(|(_, r)| r.seeds.iter().cloned())
            .collect(),
        inputs.iter().any(|(_, r)| r.interrupted),
        inputs.iter().map(|(_, r)| r.wall_ms).fold(0.0, f64::max),
    );
    report.build = first.build.clone();
    Ok(report)
}

/// Checks that every report is of [`FORMAT`] and made by the same build
/// as the first (same version, same scenario definitions): results of
/// different definitions are not comparable.
fn same_build(inputs: &[(String, SweepReport)]) -> Result<(), SweepError> {
    let Some((first_name, first)) = inputs.first() else {
        return Ok(());
    };
    for (name, r) in inputs {
        if r.format != FORMAT {
            return Err(SweepError::Format {
                source_name: name.clone(),
                why: format!("its format is '{}'", r.format),
            });
        }
        let mismatch = |what: String| SweepError::Mismatch {
            a: first_name.clone(),
            b: name.clone(),
            what,
        };
        if r.build.version != first.build.version {
            return Err(mismatch(format!(
                "made by mcp-sim {} and {}",
                first.build.version, r.build.version
            )));
        }
        if r.build.digest != first.build.digest {
            return Err(mismatch(format!(
                "made from different scenario definitions (digest {} vs {})",
                short(&first.build.digest),
                short(&r.build.digest)
            )));
        }
    }
    Ok(())
}

/// Checks that no two seed ranges overlap, across reports (or, for a
/// hand-edited report, within one): the first overlap, in range order,
/// is the error.
fn no_range_overlap(inputs: &[(String, SweepReport)]) -> Result<(), SweepError> {
    let names = Scenario::names();
    let mut all: Vec<(&str, &SeedRange)> = inputs
        .iter()
        .flat_map(|(name, r)| r.ranges.iter().map(move |range| (name.as_str(), range)))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    all.sort_by(|(_, a), (_, b)| range_order(&names, a, b));
    for w in all.windows(2) {
        let ((a, ra), (b, rb)) = (w[0], w[1]);
        if ra.scenario == rb.scenario && ra.end > rb.start {
            return Err(SweepError::Overlap {
                a: a.to_owned(),
                b: b.to_owned(),
                scenario: ra.scenario.clone(),
                a_range: format!("{}..{}", ra.start, ra.end),
                b_range: format!("{}..{}", rb.start, rb.end),
            });
        }
    }
    Ok(())
}

/// Checks that no seed is in two reports (outside their ranges, if
/// edited).
fn no_seed_overlap(inputs: &[(String, SweepReport)]) -> Result<(), SweepError> {
    let mut seen: BTreeMap<(&str, u64), &str> = BTreeMap::new();
    for (name, r) in inputs {
        for s in &r.seeds {
            if let Some(other) = seen.insert((s.scenario.as_str(), s.seed), name.as_str()) {
                return Err(SweepError::Overlap {
                    a: other.to_owned(),
                    b: name.clone(),
                    scenario: s.scenario.clone(),
                    a_range: format!("{}..{}", s.seed, s.seed + 1),
                    b_range: format!("{}..{}", s.seed, s.seed + 1),
                });
            }
        }
    }
    Ok(())
}

/// The first 12 hex digits of a digest.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shard_parsing() {
        assert_eq!("2/3".parse::<Shard>(), Shard::new(2, 3));
        assert_eq!(" 1 / 1 ".parse::<Shard>(), Ok(Shard::WHOLE));
        for bad in ["0/3", "4/3", "1/0", "x/3", "1/y", "3", "", "-1/3", "1/3/4"] {
            let e = bad.parse::<Shard>().expect_err(bad).to_string();
            assert!(e.contains(&format!("'{bad}'")), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!("0/3"
            .parse::<Shard>()
            .unwrap_err()
            .to_string()
            .contains("from 1"));
        let s = Shard::new(2, 5).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"2/5\"");
        assert_eq!(serde_json::from_str::<Shard>("\"2/5\"").unwrap(), s);
        assert!(serde_json::from_str::<Shard>("\"6/5\"").is_err());
    }

    proptest! {
        /// The parts of shards 1/n..n/n are contiguous, in order, and cover
        /// the range exactly once.
        #[test]
        fn shard_parts_cover_exactly_once(start in 0u64..u64::MAX / 2, len in 0u64..500, n in 1u64..40) {
            let range = start..start + len;
            let mut at = range.start;
            for k in 1..=n {
                let part = Shard::new(k, n).unwrap().part(range.clone());
                prop_assert_eq!(part.start, at);
                prop_assert!(part.end >= part.start);
                prop_assert!(part.end - part.start <= len / n + 1);
                at = part.end;
            }
            prop_assert_eq!(at, range.end);
        }
    }

    #[test]
    fn shard_part_near_u64_max() {
        let range = u64::MAX - 10..u64::MAX;
        let a = Shard::new(1, 2).unwrap().part(range.clone());
        let b = Shard::new(2, 2).unwrap().part(range.clone());
        assert_eq!(
            (a.start, a.end, b.start, b.end),
            (range.start, u64::MAX - 5, u64::MAX - 5, u64::MAX)
        );
    }

    #[test]
    fn ranges_are_joined_and_sorted() {
        let r = |s: &str, a, b| SeedRange {
            scenario: s.into(),
            start: a,
            end: b,
        };
        let out = normalize_ranges(vec![
            r("pool", 3, 5),
            r("reuse", 2, 4),
            r("reuse", 0, 2),
            r("pool", 0, 0),
            r("reuse", 5, 6),
        ]);
        assert_eq!(
            out,
            vec![r("reuse", 0, 4), r("reuse", 5, 6), r("pool", 3, 5)]
        );
    }

    #[test]
    fn metrics_fields_are_flattened() {
        let mut m = SessionMetrics {
            total_created: 3,
            ..SessionMetrics::default()
        };
        m.closed.ttl = 2;
        m.acquire_wait.max_ms = 7;
        let f = metrics_fields(&m);
        assert_eq!(f["total_created"], 3);
        assert_eq!(f["closed.ttl"], 2);
        assert_eq!(f["acquire_wait.max_ms"], 7);
        let mut sum = BTreeMap::new();
        add_metrics(&mut sum, &f);
        add_metrics(&mut sum, &f);
        assert_eq!(sum["total_created"], 6);
        assert_eq!(sum["acquire_wait.max_ms"], 7);
    }

    fn result(scenario: &str, seed: u64) -> SeedResult {
        SeedResult::panicked(scenario, seed, "x".into(), 0.0)
    }

    #[test]
    fn merge_refuses_overlap_and_other_builds() {
        let range = |a, b| SeedRange {
            scenario: "reuse".into(),
            start: a,
            end: b,
        };
        let a = SweepReport::new(
            vec![Shard::new(1, 2).unwrap()],
            vec![range(0, 3)],
            vec![result("reuse", 0)],
            false,
            1.0,
        );
        let b = SweepReport::new(
            vec![Shard::new(2, 2).unwrap()],
            vec![range(3, 6)],
            vec![result("reuse", 4)],
            false,
            2.0,
        );
        let m = merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        assert_eq!(m.ranges, vec![range(0, 6)]);
        assert_eq!(
            m.seeds.iter().map(|s| s.seed).collect::<Vec<_>>(),
            vec![0, 4]
        );
        assert!(m.missing_shards().is_empty());
        assert_eq!(m.wall_ms, 2.0);

        let c = SweepReport::new(vec![Shard::WHOLE], vec![range(2, 4)], vec![], false, 0.0);
        let e = merge(&[("a".into(), a.clone()), ("c".into(), c)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'a' and 'c' overlap") && e.contains("0..3") && e.contains("2..4"),
            "{e}"
        );

        let mut d = b.clone();
        d.build.digest = "0".repeat(64);
        let e = merge(&[("a".into(), a.clone()), ("d".into(), d)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("different scenario definitions"), "{e}");

        let only_a = merge(&[("a".into(), a)]).unwrap();
        assert_eq!(only_a.missing_shards(), vec![Shard::new(2, 2).unwrap()]);
        assert_eq!(merge(&[]).unwrap_err(), SweepError::Empty);
    }

    /// A panicking seed is recorded as failing, with its replay line, and
    /// the other seeds still run; results come back sorted whatever the
    /// thread count.
    #[test]
    fn a_panic_loses_no_other_seed() {
        let scenarios = vec![Scenario::reuse()];
        let jobs: Vec<Job> = vec![(0, 2..4), (0, 0..2)];
        let runner: Arc<Runner> = Arc::new(|s: &Scenario, seed: u64| {
            if seed == 2 {
                panic!("boom at seed {seed}");
            }
            default_runner(s, seed)
        });
        let stop = AtomicBool::new(false);
        let results = run_jobs_with(
            &scenarios,
            &jobs,
            3,
            &stop,
            &NoProgress,
            runner.clone(),
            DEFAULT_SEED_TIMEOUT,
        );
        assert_eq!(
            results.iter().map(|r| r.seed).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        let panicked = &results[2];
        assert!(!panicked.is_clean());
        assert_eq!(panicked.panic.as_deref(), Some("boom at seed 2"));
        assert_eq!(panicked.replay, "cargo run -p mcp-sim -- replay reuse 2");
        assert!(panicked.failure_line().contains("boom at seed 2"));
        for r in [&results[0], &results[1], &results[3]] {
            assert!(r.trace_hash.is_some() && r.panic.is_none(), "{r:?}");
        }
        // The same seeds on one thread: the same hashes.
        let one = run_jobs_with(
            &scenarios,
            &jobs,
            1,
            &stop,
            &NoProgress,
            runner.clone(),
            DEFAULT_SEED_TIMEOUT,
        );
        let hashes =
            |rs: &[SeedResult]| rs.iter().map(|r| r.trace_hash.clone()).collect::<Vec<_>>();
        assert_eq!(hashes(&one), hashes(&results));
        // Once stopped, nothing more is started.
        stop.store(true, Ordering::SeqCst);
        assert!(run_jobs_with(
            &scenarios,
            &jobs,
            2,
            &stop,
            &NoProgress,
            runner.clone(),
            DEFAULT_SEED_TIMEOUT
        )
        .is_empty());
    }

    /// A lost seed fails the sweep, is counted, and is printed with its
    /// replay line.
    #[test]
    fn a_lost_seed_fails_the_sweep() {
        let lost = SeedResult::lost("reuse", 3, 0.0);
        assert!(lost.lost && !lost.is_clean() && !lost.hung);
        assert_eq!(lost.replay, "cargo run -p mcp-sim -- replay reuse 3");
        let report = SweepReport::new(vec![Shard::WHOLE], Vec::new(), vec![lost], false, 0.0);
        assert_eq!(report.failures().len(), 1);
        assert_eq!(
            (report.scenarios[0].failing, report.scenarios[0].lost),
            (1, 1)
        );
        let lines = report.failure_lines();
        assert!(
            lines.contains("FAIL reuse seed 3: lost: the sweep recorded no result")
                && lines.contains("replay: cargo run -p mcp-sim -- replay reuse 3"),
            "{lines}"
        );
    }

    /// A gate a runner waits at until the test opens it.
    #[derive(Default)]
    struct Gate {
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
    }

    impl Gate {
        fn wait(&self) {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            while !*open {
                open = self.opened.wait(open).unwrap_or_else(|e| e.into_inner());
            }
        }

        fn open(&self) {
            *self.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
            self.opened.notify_all();
        }
    }

    /// Opens its gate once a seed is reported hung.
    struct OpenWhenHung(Arc<Gate>);

    impl Progress for OpenWhenHung {
        fn finished(&self, result: &SeedResult) {
            if result.hung {
                self.0.open();
            }
        }
    }

    /// Which thread ran each seed, in the order they were started.
    type Ran = Arc<std::sync::Mutex<Vec<(u64, std::thread::ThreadId)>>>;

    /// A runner that returns, at once, the report of seeds computed up
    /// front, but waits at `gate` on seed `slow`; it notes which thread
    /// ran each seed.
    fn gated_runner(seeds: u64, slow: u64, gate: &Arc<Gate>) -> (Arc<Runner>, Ran) {
        let reports: Vec<Report> = (0..seeds)
            .map(|seed| default_runner(&Scenario::reuse(), seed))
            .collect();
        let ran: Ran = Arc::default();
        let (gate, noted) = (gate.clone(), ran.clone());
        let runner: Arc<Runner> = Arc::new(move |_: &Scenario, seed: u64| {
            noted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((seed, std::thread::current().id()));
            if seed == slow {
                gate.wait();
            }
            reports[usize::try_from(seed).unwrap()].clone()
        });
        (runner, ran)
    }

    /// The watchdog abandons the only thread, and no thread can replace
    /// it: the coordinating thread runs the remaining seeds itself, and
    /// every seed has one result (the slow one hung). (The gate opens on
    /// any hang, so that a stall on seed 0 cannot leave seed 1 waiting
    /// here for good.)
    #[test]
    fn seeds_run_here_when_an_abandoned_thread_cannot_be_replaced() {
        let gate = Arc::new(Gate::default());
        let (runner, ran) = gated_runner(6, 1, &gate);
        let stop = AtomicBool::new(false);
        let results = run_jobs_spawning(
            &[Scenario::reuse()],
            &[(0, 0..6)],
            1,
            &stop,
            &OpenWhenHung(gate.clone()),
            runner,
            Duration::from_millis(40),
            1,
        );
        assert_eq!(
            results.iter().map(|r| r.seed).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        // Seed 1 hangs; unless the machine stalled the thread past the
        // limit on seed 0 already (then seed 0 hangs, and seed 1, the gate
        // open, runs here).
        assert!(results[1].hung || results[0].hung, "{results:?}");
        for r in &results[2..] {
            assert!(r.is_clean(), "{r:?}");
        }
        let here = std::thread::current().id();
        let ran = ran.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for seed in 2..6 {
            assert!(ran.contains(&(seed, here)), "seed {seed}: {ran:?}");
        }
    }

    /// With no thread at all, every seed runs on the coordinating thread.
    #[test]
    fn seeds_run_here_when_no_thread_can_be_started() {
        let gate = Arc::new(Gate::default());
        gate.open();
        let (runner, ran) = gated_runner(3, u64::MAX, &gate);
        let stop = AtomicBool::new(false);
        let results = run_jobs_spawning(
            &[Scenario::reuse()],
            &[(0, 0..3)],
            2,
            &stop,
            &NoProgress,
            runner,
            DEFAULT_SEED_TIMEOUT,
            0,
        );
        assert_eq!(
            results.iter().map(|r| r.seed).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(results.iter().all(SeedResult::is_clean), "{results:?}");
        let here = std::thread::current().id();
        let ran = ran.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(ran.iter().all(|(_, t)| *t == here), "{ran:?}");
    }

    /// The books, message by message: a thread abandoned as it takes
    /// another seed (it read its quit flag just before) still has that
    /// seed's result counted; the abandoned seed's late result is dropped;
    /// the sweep is not over while a seed taken has not been seen started;
    /// and a seed left without a result is reported lost.
    #[test]
    fn the_books_are_kept_by_seed() {
        let queue = Arc::new(Queue::new(&[Scenario::reuse()], &[(0, 10..13)], false));
        let (tx, _rx) = mpsc::channel();
        let runner: Arc<Runner> = Arc::new(default_runner);
        let mut workers = Workers::new(queue.clone(), runner, tx, 0);
        let quit = Arc::new(AtomicBool::new(false));
        workers.threads.insert(
            0,
            Thread {
                quit: quit.clone(),
                abandoned: false,
                exited: false,
            },
        );
        let done = |seed: u64| {
            Box::new(SeedResult::from_report(
                &default_runner(&Scenario::reuse(), seed),
                1.0,
            ))
        };
        let p = &NoProgress;
        assert_eq!(queue.take(), Some(0));
        workers.receive(
            Message::Started {
                worker: 0,
                index: 0,
            },
            p,
        );
        workers.abandon_overdue(Duration::ZERO, p);
        assert!(quit.load(Ordering::SeqCst) && workers.threads[&0].abandoned);
        assert!(workers.results[&0].hung);
        // The thread had already taken the next seed.
        assert_eq!(queue.take(), Some(1));
        assert!(!workers.settled(), "seed 1 was taken but not seen started");
        let late = done(10);
        workers.receive(
            Message::Finished {
                index: 0,
                result: late,
            },
            p,
        );
        assert!(workers.results[&0].hung, "the late result is dropped");
        workers.receive(
            Message::Started {
                worker: 0,
                index: 1,
            },
            p,
        );
        assert!(!workers.settled(), "seed 1 runs");
        workers.receive(
            Message::Finished {
                index: 1,
                result: done(11),
            },
            p,
        );
        workers.receive(Message::Exited { worker: 0 }, p);
        assert!(workers.results[&1].is_clean(), "{:?}", workers.results[&1]);
        // Seed 2 is never taken: the sweep is not over, and were it ended
        // anyway, seed 2 would be reported lost.
        assert!(!workers.settled());
        let results = workers.finish(p);
        assert_eq!(
            results
                .iter()
                .map(|r| (r.seed, r.hung, r.lost))
                .collect::<Vec<_>>(),
            vec![(10, true, false), (11, false, false), (12, false, true)]
        );
        let lost = &results[2];
        assert!(!lost.is_clean());
        assert_eq!(lost.replay, "cargo run -p mcp-sim -- replay reuse 12");
    }

    #[test]
    fn from_json_checks_the_format() {
        let r = SweepReport::new(
            vec![Shard::WHOLE],
            vec![SeedRange {
                scenario: "reuse".into(),
                start: 0,
                end: 2,
            }],
            vec![result("reuse", 1)],
            false,
            0.0,
        );
        let back = SweepReport::from_json("r.json", &r.to_json()).unwrap();
        assert_eq!(back, r);
        for (text, why) in [
            ("nope", "not JSON"),
            ("{}", "no 'format'"),
            ("{\"format\": \"other/2\"}", "'other/2'"),
            ("{\"format\": 3}", "not a string"),
        ] {
            let e = SweepReport::from_json("r.json", text)
                .unwrap_err()
                .to_string();
            assert!(e.contains("'r.json'") && e.contains(why), "{e}");
        }
    }

    #[test]
    fn from_json_refuses_inconsistent_reports() {
        let good = SweepReport::new(
            vec![Shard::WHOLE],
            vec![SeedRange {
                scenario: "reuse".into(),
                start: 0,
                end: 3,
            }],
            vec![result("reuse", 1)],
            false,
            0.0,
        );
        let edit = |f: &dyn Fn(&mut SweepReport)| {
            let mut r = good.clone();
            f(&mut r);
            SweepReport::from_json("r.json", &r.to_json())
                .unwrap_err()
                .to_string()
        };
        type Edit = dyn Fn(&mut SweepReport);
        let cases: [(&Edit, &str); 6] = [
            (&|r| (r.ranges[0].start, r.ranges[0].end) = (5, 1), "5..1"),
            (&|r| r.ranges[0].end = u64::MAX, "more than"),
            (
                &|r| r.ranges[0].scenario = "chaos".into(),
                "unknown scenario 'chaos'",
            ),
            (&|r| r.seeds[0].seed = 7, "outside"),
            (&|r| r.seeds.push(r.seeds[0].clone()), "twice"),
            (&|r| r.seeds[0].trace_hash = Some("xyz".into()), "'xyz'"),
        ];
        for (f, why) in cases {
            let e = edit(f);
            assert!(e.contains("'r.json'") && e.contains(why), "{why}: {e}");
        }
    }
}
