//! insta snapshots of every built-in scenario at three fixed seeds: each
//! worker's final manager metrics and the goal counts, one snapshot per
//! scenario in the repository's top-level `snapshots/` folder
//! (`snapshots/scenario_<name>.snap`).
//!
//! A change in the library, the server, the fault plans or the schedule
//! generator that shifts what a seed does shows up here as a diff to
//! review. A failing run writes `snapshots/*.snap.new`; review them with
//! `cargo insta review` (`cargo install cargo-insta`) or accept them all
//! with `INSTA_UPDATE=always cargo test -p mcp-sim --test snapshots`, and
//! commit the `.snap` files. The snapshots are only meaningful because runs
//! are deterministic (`sim/tests/sweep.rs` checks that in-process, and
//! every run of this test in a new process checks it across processes).

use std::collections::BTreeMap;

use serde::Serialize;

use mcp_session::SessionMetrics;
use mcp_sim::run::run;
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;

/// The fixed seeds every scenario is snapshotted at.
const SEEDS: [u64; 3] = [1, 2, 3];

/// What a snapshot records of one seed.
#[derive(Serialize)]
struct SeedOutcome {
    /// Whether the run finished and broke no law.
    clean: bool,
    /// Each worker's final manager metrics, by host.
    metrics: BTreeMap<String, SessionMetrics>,
    /// Every goal with how often the run reached it.
    goals: BTreeMap<String, u64>,
}

/// Runs `seed` of `scenario` and keeps what the snapshot records.
fn outcome(scenario: &Scenario, seed: u64) -> SeedOutcome {
    let report = run(&Schedule::generate(scenario, seed), &scenario.name, seed);
    SeedOutcome {
        clean: report.is_clean(),
        metrics: report.metrics,
        goals: report.goals,
    }
}

#[test]
fn metrics_and_goals_of_every_scenario() {
    for scenario in Scenario::all() {
        let seeds: BTreeMap<String, SeedOutcome> = SEEDS
            .iter()
            .map(|&seed| (format!("seed {seed}"), outcome(&scenario, seed)))
            .collect();
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
            prepend_module_to_snapshot => false,
            description => format!("{}: {}", scenario.name, scenario.doc),
            omit_expression => true,
        }, {
            insta::assert_json_snapshot!(format!("scenario_{}", scenario.name), seeds);
        });
    }
}
