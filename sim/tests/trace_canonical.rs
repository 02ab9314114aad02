//! The trace's canonical bytes (what its hash is taken over) are written by
//! hand (`sim/src/canonical.rs`); on real runs of every scenario they must be
//! exactly serde_json's, and read back to the same trace.

use mcp_sim::run::run;
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::trace::Trace;

#[test]
fn canonical_lines_are_serde_json_lines_on_every_scenario() {
    let mut events = 0;
    for scenario in Scenario::all() {
        for seed in [0, 1] {
            let report = run(&Schedule::generate(&scenario, seed), &scenario.name, seed);
            let jsonl = report.trace.to_jsonl();
            let lines: Vec<&str> = jsonl.lines().collect();
            assert_eq!(lines.len(), report.trace.events.len());
            for (line, e) in lines.iter().zip(&report.trace.events) {
                assert_eq!(*line, serde_json::to_string(e).unwrap());
            }
            assert_eq!(Trace::from_jsonl(&jsonl).unwrap(), report.trace);
            // The hash is BLAKE3 of exactly those bytes, however they were
            // fed to it.
            let whole = blake3::hash(jsonl.as_bytes()).to_hex().to_string();
            assert_eq!(report.trace.hash(), whole);
            assert_eq!(report.trace_hash, whole);
            events += lines.len();
        }
    }
    assert!(events > 1000, "only {events} events");
}
