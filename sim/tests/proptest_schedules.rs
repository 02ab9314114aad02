//! Property: every generated schedule of a few scenarios runs to the end
//! with a clean audit.
//!
//! Each case is [`ScheduleStrategy`]: a `u64` seed drawn from proptest's
//! ChaCha RNG, and [`Schedule::generate`] of it, so a case is a seed of the
//! scenario. A failing case is shrunk by proptest through the strategy's
//! value tree (fewer faults, workers, VUs, steps; shorter times), and the
//! failure prints the broken law, the seed, the shrunk schedule as JSON, the
//! timeline around the violation and two replay lines: the seed's (the case
//! before shrinking) and `replay --schedule` of the shrunk schedule, saved
//! under `target/mcp-sim-failures/`.
//!
//! # Regression files
//!
//! Each test persists its failing cases to, and replays them from, its own
//! file `sim/proptest-regressions/proptest_schedules/<scenario>.txt`
//! (proptest's `FileFailurePersistence`). Each line `cc <64 hex digits>` is
//! the 32-byte seed of proptest's ChaCha RNG for one case; `#` starts a
//! comment. Every line is replayed before any new case, on every run. The
//! schedule seed a line stands for is the first `u64` of that RNG
//! (`mcp_sim::strategy::persisted_seed`); the comments say which, and
//! [`regression_comments_name_their_seeds`] checks them. Commit a line
//! proptest adds after a failure (with a comment on what broke).
//!
//! # Knobs
//!
//! New cases are drawn afresh on each run (proptest's default), so runs
//! keep exploring; `PROPTEST_RNG_SEED=N` fixes them. `PROPTEST_CASES`
//! (default [`CASES`] per scenario), `PROPTEST_MAX_SHRINK_ITERS` (default
//! 200 runs); the other `PROPTEST_*` variables work as proptest documents.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use mcp_sim::run::run;
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::strategy::{
    failure_dir, min_file_name, persisted_seed, proptest_config, save_schedule,
    schedule_replay_line, ScheduleStrategy,
};

/// New cases per scenario and run (each is one simulation, some tens of
/// milliseconds).
const CASES: u32 = 12;

/// The regression file of scenario `$name`.
macro_rules! regressions {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_schedules/",
            $name,
            ".txt"
        )
    };
}

/// The scenarios with a property below, and their regression files.
const FILES: [(&str, &str); 4] = [
    ("reuse", regressions!("reuse")),
    ("pool", regressions!("pool")),
    ("server-crash", regressions!("server-crash")),
    ("partition", regressions!("partition")),
];

/// Runs `schedule` as a case of `scenario`; fails with the failure print
/// if the run is not clean. The schedule is saved (each failing candidate
/// overwrites the last, so the file ends as the shrunk one).
fn audit_clean(scenario: &str, schedule: &Schedule) -> Result<(), TestCaseError> {
    let report = run(schedule, scenario, schedule.seed);
    if report.is_clean() {
        return Ok(());
    }
    let file = min_file_name(scenario, schedule.seed);
    let mut replay = format!("{}   (the case before shrinking)", report.replay_line());
    match save_schedule(schedule, &failure_dir(), &file) {
        Ok(path) => {
            replay.push_str("\nreplay shrunk: ");
            replay.push_str(&schedule_replay_line(&path));
        }
        Err(e) => replay.push_str(&format!("\n(could not save the schedule: {e})")),
    }
    Err(TestCaseError::fail(
        report.failure_text_with_replay(&replay),
    ))
}

proptest! {
    #![proptest_config(proptest_config(CASES, regressions!("reuse")))]
    #[test]
    fn reuse_schedules_audit_clean(schedule in ScheduleStrategy::new(Scenario::reuse())) {
        audit_clean("reuse", &schedule)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(CASES, regressions!("pool")))]
    #[test]
    fn pool_schedules_audit_clean(schedule in ScheduleStrategy::new(Scenario::pool())) {
        audit_clean("pool", &schedule)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(CASES, regressions!("server-crash")))]
    #[test]
    fn server_crash_schedules_audit_clean(
        schedule in ScheduleStrategy::new(Scenario::server_crash())
    ) {
        audit_clean("server-crash", &schedule)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(CASES, regressions!("partition")))]
    #[test]
    fn partition_schedules_audit_clean(
        schedule in ScheduleStrategy::new(Scenario::partition())
    ) {
        audit_clean("partition", &schedule)?;
    }
}

/// Every `cc` line of the regression files is one proptest can read, and
/// its comment names the schedule seed it stands for (`# seed N: ...`), so
/// `cargo run -p mcp-sim -- replay <scenario> N` replays it.
#[test]
fn regression_comments_name_their_seeds() {
    for (scenario, file) in FILES {
        assert!(Scenario::by_name(scenario).is_some(), "{scenario}");
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut lines = 0;
        for (i, line) in text.lines().enumerate() {
            if line.split('#').next().unwrap_or("").trim().is_empty() {
                continue;
            }
            lines += 1;
            let at = format!("{file}:{}", i + 1);
            let seed = persisted_seed(line).unwrap_or_else(|| panic!("{at}: not a `cc` line"));
            let named = line
                .split_once("# seed ")
                .and_then(|(_, rest)| rest.split(':').next())
                .and_then(|n| n.trim().parse::<u64>().ok());
            assert_eq!(
                named,
                Some(seed),
                "{at}: the comment must say `# seed {seed}: ...`"
            );
        }
        assert!(lines > 0, "{file} holds no cases");
    }
}
