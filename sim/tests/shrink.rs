//! Shrinking real runs, end to end: a seed whose run has some property (a
//! synthetic "failure" read off its report, since the sweep's runs break no
//! law), shrunk by re-running the simulation on each candidate, ends at a
//! strictly smaller schedule whose run still has it, and that no single
//! removal or reduction keeps; the shrunk schedule, saved as JSON, replays
//! to the same trace.

use std::path::PathBuf;

use mcp_sim::faults::FaultKind;
use mcp_sim::run::{run, Report};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::{Op, Schedule, Step};
use mcp_sim::strategy::{
    shrink_counted, shrink_failure, shrink_report, validate, ScheduleSize, ShrunkFailure,
};
use mcp_sim::trace::ManagerEvent;

fn run_seed(scenario: &Scenario, seed: u64) -> Report {
    run(&Schedule::generate(scenario, seed), &scenario.name, seed)
}

/// The run of the first seed of `scenario` (of `0..40`) whose run `has`
/// the property: the tests do not depend on what one seed happens to do.
fn first_run_with(scenario: &Scenario, has: impl Fn(&Report) -> bool) -> Report {
    (0..40)
        .map(|seed| run_seed(scenario, seed))
        .find(|r| has(r))
        .unwrap_or_else(|| panic!("no seed of {} in 0..40 has the property", scenario.name))
}

/// Whether the trace holds a manager event for which `is` holds.
fn has_event(report: &Report, is: impl Fn(&ManagerEvent) -> bool) -> bool {
    report
        .trace
        .events
        .iter()
        .any(|e| e.manager().is_some_and(|m| is(&m.event)))
}

/// A pool acquire timed out waiting.
fn timed_out(report: &Report) -> bool {
    has_event(report, |e| matches!(e, ManagerEvent::AcquireTimeout { .. }))
}

/// A VU invalidated its lease: its session had expired on the server.
fn invalidated(report: &Report) -> bool {
    has_event(report, |e| matches!(e, ManagerEvent::Invalidated))
}

/// A scratch directory for saved schedules, under the target directory.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The checks every shrunk failure must pass: still failing, runnable,
/// strictly smaller, minimal (shrinking it again, with a generous budget,
/// moves nothing), and its saved JSON replays to the same trace.
fn assert_shrunk(
    original: &Report,
    shrunk: &ShrunkFailure,
    mut still: impl FnMut(&Report) -> bool,
    dir: &str,
) {
    let min = shrunk.schedule();
    assert!(
        still(&shrunk.report),
        "the shrunk run lost the failure:\n{}",
        min.to_json()
    );
    assert_eq!(&shrunk.report.schedule, min);
    validate(min).expect("the shrunk schedule is runnable");
    let (before, after) = (ScheduleSize::of(&original.schedule), ScheduleSize::of(min));
    assert!(
        after.is_smaller_than(&before),
        "{before} -> {after}:\n{}",
        min.to_json()
    );
    assert!(
        !shrunk.exhausted,
        "the budget ran out after {} runs",
        shrunk.runs
    );
    assert_eq!(shrunk.original, before);

    let again = shrink_counted(
        min,
        |s| still(&run(s, &original.scenario, original.seed)),
        1_000,
    );
    assert_eq!(
        again.accepted,
        0,
        "not minimal:\n{}",
        again.schedule.to_json()
    );

    // Saved and read back, as `mcp-sim replay --schedule FILE` does.
    let path = shrunk.save(&scratch_dir(dir)).expect("saved");
    assert!(path.ends_with(format!("{}-{}.min.json", original.scenario, original.seed)));
    let text = std::fs::read_to_string(&path).expect("readable");
    let back: Schedule = serde_json::from_str(&text).expect("a schedule");
    assert_eq!(&back, min);
    let replayed = run(&back, &original.scenario, back.seed);
    assert_eq!(replayed.trace_hash, shrunk.report.trace_hash);
}

/// `pool-timeout` (a pool of 1-2 under 6-14 VUs and slow calls): the
/// smallest run with a pool timeout needs no fault and one VU more than
/// the pool has sessions: each session held by a VU, the holder of one in a
/// slow call, one VU waiting past the acquire timeout.
#[test]
fn a_pool_timeout_shrinks_to_one_vu_more_than_the_pool() {
    let original = first_run_with(&Scenario::pool_timeout(), timed_out);
    let shrunk = shrink_report(&original, "a pool timeout", timed_out, 300);
    assert_shrunk(&original, &shrunk, timed_out, "pool-timeout");

    let min = shrunk.schedule();
    let size = ScheduleSize::of(min);
    let pool = min.session.pool_size;
    assert_eq!(
        (size.workers, size.vus, size.faults),
        (1, pool + 1, 0),
        "{size}"
    );
    assert!(min.fault_kinds.is_empty());
    // One slow call keeps a waiter waiting past its deadline.
    let slow_steps = min
        .workers
        .iter()
        .flat_map(|w| &w.vus)
        .flat_map(|p| &p.steps)
        .filter(|s| {
            matches!(
                s,
                Step::Call {
                    op: Op::Slow { .. },
                    ..
                }
            )
        })
        .count();
    assert!(slow_steps >= 1, "{}", min.to_json());
}

/// `reuse` under expiries, bounces, 5xx, resets and latency spikes: the
/// smallest run in which a VU's session expires on the server keeps one VU
/// and one fault that loses sessions.
#[test]
fn an_expired_session_in_reuse_mode_shrinks_to_one_fault() {
    let original = first_run_with(&Scenario::reuse(), |r| {
        invalidated(r) && r.schedule.faults.len() > 1
    });
    let shrunk = shrink_report(&original, "an invalidated lease", invalidated, 300);
    assert_shrunk(&original, &shrunk, invalidated, "reuse");

    let min = shrunk.schedule();
    let size = ScheduleSize::of(min);
    assert_eq!((size.workers, size.vus, size.faults), (1, 1, 1), "{size}");
    let kind = min.faults.events[0].event.kind();
    assert!(
        matches!(kind, FaultKind::Bounce | FaultKind::EarlyExpiry),
        "{kind}"
    );
    assert_eq!(min.fault_kinds, [kind].into());
}

/// `server-crash` (pool mode; crashes, bounces, slow initialize, resets):
/// the smallest run in which a VU's session expires keeps one VU and one
/// restart.
#[test]
fn an_expired_session_after_a_crash_shrinks_to_one_restart() {
    let original = first_run_with(&Scenario::server_crash(), |r| {
        invalidated(r) && r.schedule.faults.len() > 1
    });
    let shrunk = shrink_report(&original, "an invalidated lease", invalidated, 300);
    assert_shrunk(&original, &shrunk, invalidated, "server-crash");
    let min = shrunk.schedule();
    let size = ScheduleSize::of(min);
    assert_eq!((size.workers, size.vus, size.faults), (1, 1, 1), "{size}");
    let kind = min.faults.events[0].event.kind();
    assert!(
        matches!(kind, FaultKind::Crash | FaultKind::Bounce),
        "{kind}"
    );
}

/// A clean run has nothing to shrink: no run is spent and the report is
/// kept.
#[test]
fn a_clean_run_is_not_shrunk() {
    let original = first_run_with(&Scenario::pool(), Report::is_clean);
    let shrunk = shrink_failure(&original, 50);
    assert_eq!(shrunk.runs, 0);
    assert_eq!(shrunk.report.trace_hash, original.trace_hash);
    assert_eq!(shrunk.failure, "");
}

/// The failure print: what failed, the seed, the sizes before and after,
/// the shrunk schedule as JSON, and both replay lines.
#[test]
fn the_failure_print_has_seed_schedule_and_both_replay_lines() {
    let original = first_run_with(&Scenario::pool_timeout(), timed_out);
    let shrunk = shrink_report(&original, "a pool timeout", timed_out, 300);
    let path = shrunk.save(&scratch_dir("print")).expect("saved");
    let text = shrunk.text(Some(&path));
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "failure: a pool timeout (scenario pool-timeout seed {})",
            original.seed
        )
    );
    let sizes = format!(
        "shrunk from {} to {} in {} runs\n",
        ScheduleSize::of(&original.schedule),
        ScheduleSize::of(shrunk.schedule()),
        shrunk.runs
    );
    assert!(text.contains(&sizes), "{text}");
    assert!(text.contains(&shrunk.schedule().to_json()), "{text}");
    let seed_line = format!(
        "\nreplay: cargo run -p mcp-sim -- replay pool-timeout {}\n",
        original.seed
    );
    assert!(text.contains(&seed_line), "{text}");
    let shrunk_line = format!(
        "\nreplay shrunk: cargo run -p mcp-sim -- replay --schedule {}\n",
        path.display()
    );
    assert!(text.contains(&shrunk_line), "{text}");
}
