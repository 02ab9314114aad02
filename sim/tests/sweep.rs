//! The seeded sweep: every built-in scenario over a few seeds, each run
//! audited; no law may break and every run must finish. Then the
//! determinism meta-check: one seed per scenario, run twice in this
//! process, gives the same trace hash.
//!
//! `MCP_SIM_SEEDS=N` sweeps seeds `0..N` (by default each scenario's
//! [`Scenario::default_seeds`]); `MCP_SIM_SEED=S` runs exactly seed `S`.
//!
//! A failing seed's schedule is shrunk ([`shrink_failure`]: re-run while
//! one of the laws it broke is still broken, at most
//! `MCP_SIM_SHRINK_BUDGET` runs, default [`DEFAULT_BUDGET`], 0 to skip) and
//! saved as `target/mcp-sim-failures/<scenario>-<seed>.min.json`. The
//! failure prints the law, the seed, the shrunk schedule as JSON, the
//! shrunk run's timeline around the violation, and two replay lines: the
//! seed's (`cargo run -p mcp-sim -- replay <scenario> <seed>`, the original
//! run) and the shrunk schedule's (`... replay --schedule FILE`).

use mcp_sim::faults::FaultKind;
use mcp_sim::run::{run, run_untraced, Report, Untraced};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::strategy::{failure_dir, shrink_failure, ScheduleSize, DEFAULT_BUDGET};
use mcp_sim::trace::Source;

/// A `u64` from the environment variable `name`, if set.
fn var(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("{name}={v:?}: {e}"))
    })
}

/// The seeds to sweep of `scenario`, from the environment.
fn seeds(scenario: &Scenario) -> Vec<u64> {
    if let Some(seed) = var("MCP_SIM_SEED") {
        return vec![seed];
    }
    (0..var("MCP_SIM_SEEDS").unwrap_or_else(|| scenario.default_seeds())).collect()
}

/// Prints the failure of `report`, its schedule shrunk first (unless the
/// budget is 0); returns a one-line summary.
fn report_failure(report: &Report) -> String {
    let budget = var("MCP_SIM_SHRINK_BUDGET").map_or(DEFAULT_BUDGET, |b| b as usize);
    let laws = report
        .violations
        .iter()
        .map(|v| v.law.clone())
        .chain(report.sim_error.clone())
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!("{} seed {}: {laws}", report.scenario, report.seed);
    if budget == 0 {
        eprintln!("{}", report.failure_text());
        return summary;
    }
    let shrunk = shrink_failure(report, budget);
    let saved = match shrunk.save(&failure_dir()) {
        Ok(path) => Some(path),
        Err(e) => {
            eprintln!("could not save the shrunk schedule: {e}");
            None
        }
    };
    eprintln!("{}", shrunk.text(saved.as_deref()));
    format!(
        "{summary} (shrunk to {}{})",
        ScheduleSize::of(shrunk.schedule()),
        saved
            .map(|p| format!(", {}", p.display()))
            .unwrap_or_default()
    )
}

fn run_seed(scenario: &Scenario, seed: u64) -> Report {
    let schedule = Schedule::generate(scenario, seed);
    run(&schedule, &scenario.name, seed)
}

#[test]
fn sweep_every_scenario() {
    let mut failures = Vec::new();
    let mut goals = std::collections::BTreeMap::<String, u64>::new();
    for scenario in Scenario::all() {
        for seed in seeds(&scenario) {
            let report = run_seed(&scenario, seed);
            for (g, n) in &report.goals {
                *goals.entry(g.clone()).or_default() += n;
            }
            if !report.is_clean() {
                failures.push(report_failure(&report));
            }
        }
    }
    eprintln!("goals reached over the sweep: {goals:?}");
    assert!(
        failures.is_empty(),
        "failing runs:\n{}",
        failures.join("\n")
    );
}

/// Whether a schedule restarts the server (a crash or a bounce).
fn restarts(schedule: &Schedule) -> bool {
    schedule
        .faults
        .kinds()
        .iter()
        .any(|k| matches!(k, FaultKind::Crash | FaultKind::Bounce))
}

/// Runs `seed` of `scenario` twice; panics if the trace hashes differ.
fn assert_deterministic(scenario: &Scenario, seed: u64) {
    let a = run_seed(scenario, seed);
    let b = run_seed(scenario, seed);
    assert!(!a.trace.events.is_empty(), "{}: empty trace", scenario.name);
    assert_eq!(
        a.trace_hash,
        b.trace_hash,
        "{} seed {seed} is not deterministic\nreplay: {}",
        scenario.name,
        a.replay_line()
    );
}

/// Every scenario, the sweep's first seed, run twice in one process: the
/// same trace hash.
#[test]
fn same_seed_same_trace_hash() {
    for scenario in Scenario::all() {
        assert_deterministic(&scenario, seeds(&scenario)[0]);
    }
}

/// The same check on every sweep seed whose plan crashes or bounces a
/// server. A crash drops the host's tokio runtime; the simulated server
/// drives its connections inside its own task so that they die in a fixed
/// order (spawned per connection, they died in tokio's process-wide task-id
/// order, and a run depended on what the process had run before).
#[test]
fn restarts_are_deterministic_in_process() {
    for scenario in Scenario::all() {
        for seed in seeds(&scenario) {
            if restarts(&Schedule::generate(&scenario, seed)) {
                assert_deterministic(&scenario, seed);
            }
        }
    }
}

/// A run without the simulation-testing layer (no manager events, trace,
/// hash or audit: what the sweep bench's `stack` measurement runs) is the
/// same simulation: for every scenario's sweep seeds, the same final
/// metrics, VU errors, server log length, outcome and simulated time as the
/// traced run. Otherwise the bench would compare the bare loop with a
/// different workload.
#[test]
fn an_untraced_run_simulates_the_same() {
    for scenario in Scenario::all() {
        for seed in seeds(&scenario) {
            let schedule = Schedule::generate(&scenario, seed);
            let traced = run(&schedule, &scenario.name, seed);
            let untraced = run_untraced(&schedule, seed);
            let server_events = traced
                .trace
                .events
                .iter()
                .filter(|e| e.source == Source::Server)
                .count();
            assert!(server_events > 0, "{} seed {seed}", scenario.name);
            assert_eq!(
                untraced,
                Untraced {
                    metrics: traced.metrics.clone(),
                    vu_errors: traced.vu_errors.clone(),
                    server_events,
                    sim_error: traced.sim_error.clone(),
                    simulated_ms: traced.simulated_ms,
                },
                "{} seed {seed}\nreplay: {}",
                scenario.name,
                traced.replay_line()
            );
        }
    }
}
