//! The seeded sweep: every built-in scenario over a few seeds, each run
//! audited; no law may break and every run must finish. Then the
//! determinism meta-check: one seed per scenario, run twice in this
//! process, gives the same trace hash.
//!
//! `MCP_SIM_SEEDS=N` sweeps seeds `0..N` (by default each scenario's
//! [`Scenario::default_seeds`]); `MCP_SIM_SEED=S` runs exactly seed `S`.
//! A failure prints the law, the seed, the schedule as JSON, a timeline
//! excerpt and the line that replays it.

use mcp_sim::faults::FaultKind;
use mcp_sim::run::{run, Report};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;

/// The seeds to sweep of `scenario`, from the environment.
fn seeds(scenario: &Scenario) -> Vec<u64> {
    let var = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.trim()
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{name}={v:?}: {e}"))
        })
    };
    if let Some(seed) = var("MCP_SIM_SEED") {
        return vec![seed];
    }
    (0..var("MCP_SIM_SEEDS").unwrap_or_else(|| scenario.default_seeds())).collect()
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
                eprintln!("{}", report.failure_text());
                failures.push(format!(
                    "{} seed {}: {}",
                    scenario.name,
                    seed,
                    report
                        .violations
                        .iter()
                        .map(|v| v.law.clone())
                        .chain(report.sim_error.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
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
