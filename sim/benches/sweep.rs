//! The sweep benchmark: what one seed of each built-in scenario costs in
//! wall time, against a bare hyper-over-turmoil request loop of the same
//! shape measured in the same process (see `mcp_sim::baseline` for the
//! baseline and why the comparison is fair).
//!
//! ```text
//! cargo bench -p mcp-sim --bench sweep              # every scenario
//! cargo bench -p mcp-sim --bench sweep -- pool      # criterion's filter
//! MCP_SIM_BENCH_SEEDS=1,2,3 cargo bench -p mcp-sim --bench sweep
//! ```
//!
//! For each scenario at its default size, criterion measures two
//! functions in a group named after the scenario:
//!
//! - `ours`: one seed's full run: schedule generation, the turmoil run of
//!   our manager, transport and simulated server under its fault plan with
//!   its trace, and the audit ([`mcp_sim::run::run`]);
//! - `bare`: [`BareLoop::matching`] that run: the same VUs per worker,
//!   latency and seed, as many HTTP exchanges, and a think time that
//!   brings its simulated time to about the run's.
//!
//! Throughput is in elements = HTTP exchanges the server handled, so
//! criterion's own report gives exchanges per second for both. After
//! criterion, a table gives, per scenario and seed: seeds per second,
//! simulated over wall time, VU operations and exchanges, wall µs per VU
//! operation and per exchange for ours, the same for the bare loop, the
//! ratio ours / bare per exchange (the target: at most 1.5), and how much
//! of a seed goes to drawing the schedule, hashing the trace and auditing
//! it (timed again after criterion, on the finished report).
//!
//! `MCP_SIM_BENCH_SHAPE=1` adds a third function, `bare-shaped`: the same
//! bare loop with the run's network shape, opening a new connection as
//! often as the run made sessions (our transport keeps one connection per
//! MCP session) and answering in as many pieces per answer as the
//! simulated server did on average (see `mcp_sim::baseline`), and a
//! column with its µs per exchange and our ratio to it: what our CPU
//! costs once both sides move the same TCP segments.
//! The ratio to the plain bare loop stays the benchmark's target.
//!
//! `MCP_SIM_BENCH_STACK=1` adds `stack`: the same seeds run by
//! [`mcp_sim::run::run_untraced`], the same simulation with the
//! simulation-testing layer left out (no manager events, trace, hash or
//! audit), and a column with its µs per exchange and its ratio to the bare
//! loop: what our manager, transport and simulated server cost on their
//! own.
//!
//! `MCP_SIM_BENCH_SEEDS` (comma-separated, default `1`) picks the seeds:
//! one iteration runs each of them once (and its matching bare loop), and
//! the table divides by their number.
//!
//! `MCP_SIM_BENCH_PROFILE=N` skips criterion and runs each scenario's
//! seeds `N` times (the bare loops instead with
//! `MCP_SIM_BENCH_PROFILE_BARE=1`, with the run's shape if
//! `MCP_SIM_BENCH_SHAPE=1`; untraced with `MCP_SIM_BENCH_STACK=1`; one
//! scenario with
//! `MCP_SIM_BENCH_SCENARIO=name`): a fixed workload to run under a
//! profiler, e.g. `valgrind --tool=callgrind`, whose instruction counts
//! do not depend on the machine's load.
//!
//! Sample sizes are small (10 samples, 0.5 s warm-up, 2 s of measurement
//! per function) so that the whole bench runs in about two minutes.

// A benchmark measures wall time, outside every simulation: the
// determinism lints do not apply to it.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion, Throughput};

use mcp_sim::audit::{audit, AuditConfig};
use mcp_sim::baseline::{BareLoop, BareReport};
use mcp_sim::run::{run, run_untraced, Report};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::server::ServerEvent;

/// The allocator `mcp-sim` itself runs with (see its `main.rs`): both
/// sides of the comparison are measured with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Samples per function (criterion's least).
const SAMPLES: usize = 10;

/// How many times the phases of a seed are timed again for the table.
const PHASE_REPS: u32 = 11;

/// The wall time of each of criterion's calls: (iterations, elapsed).
type Samples = Rc<RefCell<Vec<(u64, Duration)>>>;

/// One scenario: what its seeds' runs did, and the measurements.
struct Row {
    /// The scenario's name.
    name: String,
    /// The seeds' reference runs.
    reports: Vec<Report>,
    /// What their matching bare loops did.
    bare: Vec<BareReport>,
    /// What the bare loops with the runs' network shape did, if asked.
    shaped: Vec<BareReport>,
    /// criterion's calls of `ours`.
    ours_samples: Samples,
    /// criterion's calls of `bare`.
    bare_samples: Samples,
    /// criterion's calls of `bare-shaped`.
    shaped_samples: Samples,
    /// criterion's calls of `stack`.
    stack_samples: Samples,
}

impl Row {
    fn seeds(&self) -> f64 {
        self.reports.len() as f64
    }

    fn operations(&self) -> u64 {
        self.reports.iter().map(Report::operations).sum()
    }

    fn exchanges(&self) -> u64 {
        self.reports.iter().map(Report::server_requests).sum()
    }

    fn simulated_ms(&self) -> u64 {
        self.reports.iter().map(|r| r.simulated_ms).sum()
    }

    fn bare_exchanges(&self) -> u64 {
        self.bare.iter().map(|b| b.served).sum()
    }

    fn bare_simulated_ms(&self) -> u64 {
        self.bare.iter().map(|b| b.simulated_ms).sum()
    }

    fn shaped_exchanges(&self) -> u64 {
        self.shaped.iter().map(|b| b.served).sum()
    }
}

/// Whether to bench the bare loop with the runs' network shape too.
fn shape_wanted() -> bool {
    std::env::var_os("MCP_SIM_BENCH_SHAPE").is_some()
}

/// Whether to bench our stack without the simulation-testing layer too.
fn stack_wanted() -> bool {
    std::env::var_os("MCP_SIM_BENCH_STACK").is_some()
}

/// [`BareLoop::matching`] `report`, with its network shape: a new
/// connection as often as the run made MCP sessions (at least one per VU),
/// and each answer in as many pieces as the simulated server's answers
/// had on average (rounded).
fn shaped_loop(report: &Report) -> BareLoop {
    let server = || report.trace.events.iter().filter_map(|e| e.server());
    let sessions = server()
        .filter(|s| matches!(s, ServerEvent::SessionCreated { .. }))
        .count();
    let pieces: Vec<usize> = server()
        .filter_map(|s| match s {
            ServerEvent::Answered { pieces, .. } => Some(*pieces),
            _ => None,
        })
        .collect();
    let answers = pieces.len();
    let pieces: u64 = pieces.iter().map(|p| *p as u64).sum();
    let l = BareLoop::matching(report);
    let per_vu = sessions.div_ceil(l.vus_per_worker.iter().sum::<usize>().max(1));
    let every = l.ops_per_vu().div_ceil(per_vu.max(1));
    let per_answer = (pieces as f64 / answers.max(1) as f64).round() as usize;
    l.requests_per_connection(every).response_pieces(per_answer)
}

/// An environment variable, parsed.
fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: cannot parse {v:?}")),
    )
}

/// The seeds to bench (`MCP_SIM_BENCH_SEEDS`, default `1`).
fn seeds() -> Vec<u64> {
    let Ok(list) = std::env::var("MCP_SIM_BENCH_SEEDS") else {
        return vec![1];
    };
    let seeds: Vec<u64> = list
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("MCP_SIM_BENCH_SEEDS: not a seed: {s:?}"))
        })
        .collect();
    assert!(!seeds.is_empty(), "MCP_SIM_BENCH_SEEDS is empty");
    seeds
}

/// One seed of `scenario`, start to end.
fn full_run(scenario: &Scenario, seed: u64) -> Report {
    run(&Schedule::generate(scenario, seed), &scenario.name, seed)
}

/// The bare loop matching `report`, run.
fn bare_run(l: &BareLoop) -> BareReport {
    l.run().unwrap_or_else(|e| panic!("bare loop: {e}"))
}

/// The median of `d` (sorted in place), if it has any.
fn median(d: &mut [Duration]) -> Option<Duration> {
    d.sort_unstable();
    d.get(d.len() / 2).copied()
}

/// Wall time per iteration: the median over the measurement samples (the
/// last [`SAMPLES`] calls: warm-up calls come first) of each sample's mean,
/// so that a sample slowed down by another process on the machine does not
/// count; `None` if criterion took none (filtered out).
fn per_iteration(samples: &Samples) -> Option<Duration> {
    let s = samples.borrow();
    let mut means: Vec<Duration> = s[s.len().saturating_sub(SAMPLES)..]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, d)| *d / u32::try_from(*n).unwrap_or(u32::MAX))
        .collect();
    median(&mut means)
}

/// `f`'s median wall time over [`PHASE_REPS`] calls.
fn timed<T>(mut f: impl FnMut() -> T) -> Duration {
    let mut d: Vec<Duration> = (0..PHASE_REPS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    median(&mut d).unwrap_or_default()
}

/// `MCP_SIM_BENCH_PROFILE`: a fixed workload for a profiler.
fn profile(n: u32, scenarios: &[Scenario], seeds: &[u64]) {
    let bare = std::env::var_os("MCP_SIM_BENCH_PROFILE_BARE").is_some();
    for scenario in scenarios {
        let loops: Vec<BareLoop> = seeds
            .iter()
            .map(|&s| {
                let report = full_run(scenario, s);
                if shape_wanted() {
                    shaped_loop(&report)
                } else {
                    BareLoop::matching(&report)
                }
            })
            .collect();
        for _ in 0..n {
            if bare {
                loops.iter().for_each(|l| {
                    black_box(bare_run(l));
                });
            } else if stack_wanted() {
                for &seed in seeds {
                    black_box(run_untraced(&Schedule::generate(scenario, seed), seed));
                }
            } else {
                for &seed in seeds {
                    drop(black_box(full_run(scenario, seed)));
                }
            }
        }
    }
}

/// Benches `loops`, one iteration running each once, into `samples`.
fn bench_bare(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    loops: &[BareLoop],
    samples: &Samples,
) {
    bench_recorded(group, name, samples, || {
        loops.iter().for_each(|l| {
            black_box(bare_run(l));
        });
    });
}

/// Benches `iteration` as `name`, keeping each of criterion's calls
/// (iterations, wall time) in `samples` for the table.
fn bench_recorded(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    samples: &Samples,
    mut iteration: impl FnMut(),
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                iteration();
            }
            let wall = start.elapsed();
            samples.borrow_mut().push((iters, wall));
            wall
        });
    });
}

fn main() {
    let seeds = seeds();
    let only: Option<String> = env("MCP_SIM_BENCH_SCENARIO");
    let scenarios: Vec<Scenario> = Scenario::all()
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| *o == s.name))
        .collect();
    if let Some(n) = env::<u32>("MCP_SIM_BENCH_PROFILE") {
        profile(n, &scenarios, &seeds);
        return;
    }

    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut rows = Vec::new();
    for scenario in &scenarios {
        // The reference runs: what an iteration does, counted once.
        let reports: Vec<Report> = seeds.iter().map(|&s| full_run(scenario, s)).collect();
        for r in reports.iter().filter(|r| !r.is_clean()) {
            eprintln!("warning: {} seed {} is not clean", r.scenario, r.seed);
        }
        let loops: Vec<BareLoop> = reports.iter().map(BareLoop::matching).collect();
        let shaped: Vec<BareLoop> = if shape_wanted() {
            reports.iter().map(shaped_loop).collect()
        } else {
            Vec::new()
        };
        let row = Row {
            name: scenario.name.clone(),
            bare: loops.iter().map(bare_run).collect(),
            shaped: shaped.iter().map(bare_run).collect(),
            reports,
            ours_samples: Samples::default(),
            bare_samples: Samples::default(),
            shaped_samples: Samples::default(),
            stack_samples: Samples::default(),
        };

        let mut group = c.benchmark_group(scenario.name.as_str());
        group.throughput(Throughput::Elements(row.exchanges()));
        bench_recorded(&mut group, "ours", &row.ours_samples, || {
            for &seed in &seeds {
                drop(black_box(full_run(scenario, seed)));
            }
        });
        group.throughput(Throughput::Elements(row.bare_exchanges()));
        bench_bare(&mut group, "bare", &loops, &row.bare_samples);
        if !shaped.is_empty() {
            group.throughput(Throughput::Elements(row.shaped_exchanges()));
            bench_bare(&mut group, "bare-shaped", &shaped, &row.shaped_samples);
        }
        if stack_wanted() {
            // The same simulation as `ours` (sim/tests/sweep.rs), so the
            // same exchanges; the schedule drawn in the loop, as `ours`
            // draws it.
            group.throughput(Throughput::Elements(row.exchanges()));
            bench_recorded(&mut group, "stack", &row.stack_samples, || {
                for &seed in &seeds {
                    let schedule = Schedule::generate(scenario, seed);
                    black_box(run_untraced(&schedule, seed));
                }
            });
        }
        group.finish();
        rows.push(row);
    }
    c.final_summary();
    print_table(&rows, &scenarios);
}

/// Microseconds, as a float.
fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Per seed: drawing the schedule, hashing the trace, auditing it.
fn phases(scenario: &Scenario, reports: &[Report]) -> (f64, f64, f64) {
    let (mut generate, mut hash, mut check) = (0.0, 0.0, 0.0);
    for r in reports {
        generate += us(timed(|| Schedule::generate(scenario, r.seed)));
        hash += us(timed(|| r.trace.hash()));
        let cfg = AuditConfig::for_session(&r.schedule.session).with_metrics(r.metrics.clone());
        check += us(timed(|| audit(&r.trace, &cfg)));
    }
    let n = reports.len().max(1) as f64;
    (generate / n, hash / n, check / n)
}

fn print_table(rows: &[Row], scenarios: &[Scenario]) {
    println!();
    println!(
        "per seed; exch = HTTP exchanges the server handled; ratio = µs/exch ours over bare \
         (target <= 1.5)"
    );
    println!(
        "{:<16} {:>7} {:>8} {:>4} {:>5} {:>6} {:>8} {:>8} | {:>5} {:>6} {:>8} {:>8} | {:>5} | {:>5} {:>6} {:>6}",
        "scenario",
        "seeds/s",
        "sim/wall",
        "ops",
        "exch",
        "sim ms",
        "µs/op",
        "µs/exch",
        "exch",
        "sim ms",
        "sim/wall",
        "µs/exch",
        "ratio",
        "gen",
        "hash",
        "audit",
    );
    println!(
        "{:<16} {:-^62} | {:-^32} | {:5} | {:-^20}",
        "", " ours ", " bare ", "", " µs per seed "
    );
    let mut ratios = Vec::new();
    for (row, scenario) in rows.iter().zip(scenarios) {
        let (Some(ours), Some(bare)) = (
            per_iteration(&row.ours_samples),
            per_iteration(&row.bare_samples),
        ) else {
            continue;
        };
        let n = row.seeds();
        let ours_exch = us(ours) / row.exchanges().max(1) as f64;
        let bare_exch = us(bare) / row.bare_exchanges().max(1) as f64;
        let ratio = ours_exch / bare_exch;
        ratios.push(ratio);
        let (generate, hash, check) = phases(scenario, &row.reports);
        let shaped = per_iteration(&row.shaped_samples).map(|d| {
            let exch = us(d) / row.shaped_exchanges().max(1) as f64;
            format!(
                "  shaped bare: {exch:>6.1} µs/exch, ratio {:.2}",
                ours_exch / exch
            )
        });
        let stack = per_iteration(&row.stack_samples).map(|d| {
            let exch = us(d) / row.exchanges().max(1) as f64;
            format!(
                "  stack: {exch:>6.1} µs/exch, stack/bare {:.2}",
                exch / bare_exch
            )
        });
        println!(
            "{:<16} {:>7.1} {:>8.1} {:>4.0} {:>5.0} {:>6.0} {:>8.1} {:>8.1} | {:>5.0} {:>6.0} {:>8.1} {:>8.1} | {:>5.2} | {:>5.0} {:>6.0} {:>6.0}{}",
            row.name,
            1e6 * n / us(ours),
            row.simulated_ms() as f64 * 1e3 / us(ours),
            row.operations() as f64 / n,
            row.exchanges() as f64 / n,
            row.simulated_ms() as f64 / n,
            us(ours) / row.operations().max(1) as f64,
            ours_exch,
            row.bare_exchanges() as f64 / n,
            row.bare_simulated_ms() as f64 / n,
            row.bare_simulated_ms() as f64 * 1e3 / us(bare),
            bare_exch,
            ratio,
            generate,
            hash,
            check,
            shaped.unwrap_or_default(),
        );
        if let Some(stack) = stack {
            println!("{:<16}{stack}", "");
        }
    }
    if !ratios.is_empty() {
        let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        let worst = ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "ratio ours/bare per exchange: geometric mean {geo:.2}, worst {worst:.2} (target <= 1.5)"
        );
    }
}
