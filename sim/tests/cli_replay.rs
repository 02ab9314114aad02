//! `mcp-sim replay`, run as a user runs it, and the cross-process half of
//! the determinism meta-check: for every built-in scenario, two separate
//! `replay` processes print the trace hash that `mcp_sim::run::run`
//! computes in this process; `--trace` writes a file with that hash and
//! `--schedule` with the generated schedule's JSON gives it too.
//!
//! The children of each check are all started before any is waited for, so
//! they run side by side (no threads in this file).

use std::path::PathBuf;
use std::process::Child;

use mcp_sim::faults::{FaultEvent, FaultPlan, Scheduled};
use mcp_sim::run::{run, Report};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::{Schedule, Step};
use mcp_sim::trace::Trace;

mod common;

use common::{output, spawn, usage_error};

/// The seed of the cross-process checks (one the sweep test also runs).
const SEED: u64 = 2;

/// A fresh scratch directory for this test binary's files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_replay")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The hash on the `trace-hash: <hex>` line of a replay's stdout.
fn printed_hash(stdout: &str) -> String {
    let hashes: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("trace-hash: "))
        .collect();
    assert_eq!(hashes.len(), 1, "one trace-hash line in:\n{stdout}");
    let hash = hashes[0].to_owned();
    assert_eq!(hash.len(), 64, "{hash}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    hash
}

/// Waits for a replay child; checks its exit status against the report of
/// the same run in this process and returns its stdout.
fn finished(child: Child, what: &str, expected: &Report) -> String {
    let out = child.wait_with_output().expect("wait for mcp-sim");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = if expected.is_clean() { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(code), "{what}: {stderr}\n{stdout}");
    stdout
}

fn in_process(scenario: &Scenario) -> Report {
    run(&Schedule::generate(scenario, SEED), &scenario.name, SEED)
}

#[test]
fn unknown_scenario_is_one_line_naming_it_and_the_known_ones() {
    let names = Scenario::names();
    let mut named = vec!["'chaos'"];
    named.extend(names.iter().map(String::as_str));
    let stderr = usage_error(&["replay", "chaos", "1"], &named);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn bad_seeds_and_missing_arguments_exit_2() {
    usage_error(&["replay", "pool", "abc"], &["'abc'", "SEED"]);
    usage_error(
        &["replay", "pool", "18446744073709551616"],
        &["'18446744073709551616'", "SEED"],
    );
    usage_error(&["replay", "pool", "-1"], &["'-1'"]);
    usage_error(&["replay", "pool"], &["<SEED>"]);
    usage_error(&["replay"], &["<SCENARIO>"]);
    usage_error(
        &["replay", "pool", "1", "--schedule", "x.json"],
        &["--schedule"],
    );
}

#[test]
fn bad_schedule_files_are_one_line_naming_the_file() {
    let dir = scratch("bad_schedules");
    let missing = dir.join("missing.json");
    let missing_s = missing.display().to_string();
    let stderr = usage_error(
        &["replay", "--schedule", &missing_s],
        &[&format!("'{missing_s}'"), "cannot read"],
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    for (name, text, problem) in [
        ("garbage.json", "not json at all\n", "expected"),
        ("empty.json", "", "EOF"),
        ("wrong_shape.json", "{\"seed\": 1}\n", "missing field"),
        ("bad_seed.json", "{\"seed\": -3}\n", "invalid value"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write schedule file");
        let shown = path.display().to_string();
        let stderr = usage_error(
            &["replay", "--schedule", &shown],
            &[&format!("'{shown}'"), "invalid schedule", problem],
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }

    // A directory is not readable as a file.
    let shown = dir.display().to_string();
    usage_error(&["replay", "--schedule", &shown], &[&format!("'{shown}'")]);
}

/// A schedule file that parses but could not run as written (what a hand
/// edit produces) is a usage error naming the field, never a panic.
#[test]
fn inconsistent_schedules_are_usage_errors_naming_the_field() {
    let dir = scratch("inconsistent_schedules");
    let good = Schedule::generate(&Scenario::partition(), 1);
    let mut dup = good.clone();
    dup.workers[1].name = dup.workers[0].name.clone();
    let mut server = good.clone();
    server.workers[0].name = "server".into();
    let mut latency = good.clone();
    latency.latency.min_ms = 50;
    latency.latency.max_ms = 5;
    let mut ratio = good.clone();
    ratio.server.sse_ratio = 5.0;
    let mut chunks = good.clone();
    chunks.server.split_chunks = u32::MAX;
    for (name, s, named) in [
        ("dup.json", dup, "names two workers"),
        ("server.json", server, "server host"),
        ("latency.json", latency, "latency.min_ms 50"),
        ("ratio.json", ratio, "server.sse_ratio 5"),
        ("chunks.json", chunks, "server.split_chunks 4294967295"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, s.to_json()).expect("write schedule file");
        let shown = path.display().to_string();
        let stderr = usage_error(
            &["replay", "--schedule", &shown],
            &[&format!("'{shown}'"), "invalid schedule", named],
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A schedule file whose fault plan (or server) holds a number out of its
/// range is a usage error (exit 2): one line naming the field's path and
/// the value, never a panic or a backtrace.
#[test]
fn out_of_range_values_are_usage_errors_naming_the_field() {
    let dir = scratch("out_of_range");
    let good = Schedule::generate(&Scenario::partition(), 1);
    let with_event = |event: FaultEvent| {
        let mut s = good.clone();
        s.faults = FaultPlan::new(vec![Scheduled { at_ms: 100, event }]);
        s
    };
    let status = with_event(FaultEvent::ServerErrors {
        server: "server".into(),
        status: 1000,
        count: 2,
    });
    let count = with_event(FaultEvent::MalformedJson {
        server: "server".into(),
        count: u32::MAX,
    });
    let range = with_event(FaultEvent::LatencyRange {
        worker: good.workers[0].name.clone(),
        server: "server".into(),
        min_ms: 900,
        max_ms: 10,
        span_ms: 100,
    });
    let span = with_event(FaultEvent::Crash {
        server: "server".into(),
        down_ms: u64::MAX,
    });
    let mut notifications = good.clone();
    notifications.server.notifications_before_response = 1_000_000;
    for (name, s, named) in [
        (
            "status.json",
            status,
            "faults.events[0].status 1000 is not an HTTP server error status (500..=599)",
        ),
        (
            "count.json",
            count,
            "faults.events[0].count 4294967295 is not in 1..=",
        ),
        (
            "range.json",
            range,
            "faults.events[0].min_ms 900 is above events[0].max_ms 10",
        ),
        (
            "span.json",
            span,
            "faults.events[0].down_ms 18446744073709551615 is not in 1..=",
        ),
        (
            "notifications.json",
            notifications,
            "server.notifications_before_response 1000000 is above the maximum of",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, s.to_json()).expect("write schedule file");
        let shown = path.display().to_string();
        let stderr = usage_error(
            &["replay", "--schedule", &shown],
            &[&format!("'{shown}'"), "invalid schedule", named],
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    }
}

/// An endless file is refused at the cap, not read into memory.
#[cfg(unix)]
#[test]
fn an_endless_schedule_file_is_refused_at_the_cap() {
    usage_error(
        &["replay", "--schedule", "/dev/zero"],
        &["'/dev/zero'", "larger than"],
    );
}

#[test]
fn unwritable_trace_file_is_a_usage_error() {
    let dir = scratch("unwritable");
    let path = dir.join("no/such/dir/trace.jsonl");
    let shown = path.display().to_string();
    let stderr = usage_error(
        &["replay", "pool", "1", "--trace", &shown],
        &[&format!("'{shown}'"), "trace file"],
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// The determinism meta-check across processes: every scenario at [`SEED`]
/// is run here and in two separate `replay` processes (the second also
/// writing `--trace` and printing `--timeline`); all three hashes agree, and
/// so does the hash of the written trace.
#[test]
fn replay_in_separate_processes_prints_the_in_process_hash() {
    let dir = scratch("cross_process");
    let seed = SEED.to_string();
    let mut pending = Vec::new();
    for scenario in Scenario::all() {
        let trace = dir.join(format!("{}.jsonl", scenario.name));
        let plain = spawn(&["replay", &scenario.name, &seed]);
        let traced = spawn(&[
            "replay",
            &scenario.name,
            &seed,
            "--trace",
            &trace.display().to_string(),
            "--timeline",
        ]);
        pending.push((scenario, plain, traced, trace));
    }
    for (scenario, plain, traced, trace) in pending {
        let report = in_process(&scenario);
        assert!(!report.trace.events.is_empty(), "{}", scenario.name);
        let what = format!("replay {} {seed}", scenario.name);

        let first = finished(plain, &what, &report);
        assert_eq!(
            printed_hash(&first),
            report.trace_hash,
            "{what}: another process, another trace"
        );
        assert!(first.contains("audit: "), "{first}");
        for law in mcp_sim::audit::LAWS {
            assert!(first.contains(law), "{what}: law {law} not listed");
        }
        assert!(first.contains("goals reached: "), "{first}");

        let second = finished(traced, &format!("{what} --trace --timeline"), &report);
        assert_eq!(printed_hash(&second), report.trace_hash, "{what} (second)");
        // The timeline: one line per event, before the summary.
        let timeline = second.lines().filter(|l| l.starts_with('#')).count();
        assert_eq!(timeline, report.trace.events.len(), "{what} --timeline");
        assert!(second.starts_with("#0 "), "{what}: timeline first");

        let text = std::fs::read_to_string(&trace).expect("the --trace file");
        let parsed = Trace::from_jsonl(&text).expect("a JSONL trace");
        assert_eq!(parsed.hash(), report.trace_hash, "{what}: --trace file");
        assert_eq!(parsed, report.trace, "{what}: --trace file");
    }
}

/// `--schedule` with the JSON of a generated schedule is the same run as
/// `replay <scenario> <seed>`.
#[test]
fn replay_of_a_saved_schedule_is_the_same_run() {
    let dir = scratch("schedules");
    let seed = SEED.to_string();
    let mut pending = Vec::new();
    for scenario in Scenario::all() {
        let schedule = Schedule::generate(&scenario, SEED);
        let file = dir.join(format!("{}.json", scenario.name));
        std::fs::write(&file, schedule.to_json()).expect("write schedule");
        let by_file = spawn(&["replay", "--schedule", &file.display().to_string()]);
        let by_seed = spawn(&["replay", &scenario.name, &seed]);
        pending.push((scenario, by_file, by_seed));
    }
    for (scenario, by_file, by_seed) in pending {
        let report = in_process(&scenario);
        let what = format!("{} {seed}", scenario.name);
        let from_file = finished(by_file, &format!("--schedule of {what}"), &report);
        let from_seed = finished(by_seed, &what, &report);
        assert_eq!(printed_hash(&from_file), printed_hash(&from_seed), "{what}");
        assert_eq!(printed_hash(&from_file), report.trace_hash, "{what}");
    }
}

#[test]
fn replay_line_is_the_documented_command() {
    let scenario = Scenario::pool();
    let report = in_process(&scenario);
    assert_eq!(
        report.replay_line(),
        format!("cargo run -p mcp-sim -- replay pool {SEED}")
    );
}

/// A run that is not clean (here: a schedule whose simulated-time bound
/// is too short to finish) exits 1, still prints its audit and hash, and
/// says on one stderr line why; the replay line names the schedule file.
#[test]
fn a_run_that_does_not_finish_exits_1() {
    let dir = scratch("unfinished");
    let mut schedule = Schedule::generate(&Scenario::pool(), SEED);
    schedule.duration_ms = 20;
    let file = dir.join("short.json");
    std::fs::write(&file, schedule.to_json()).expect("write schedule");
    let shown = file.display().to_string();
    let report = run(&schedule, &format!("schedule {shown}"), SEED);
    assert!(report.sim_error.is_some(), "the bound is too short");

    let out = output(&["replay", "--schedule", &shown]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{stdout}");
    assert_eq!(printed_hash(&stdout), report.trace_hash);
    assert!(stdout.contains("simulation failed"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "replay: cargo run -p mcp-sim -- replay --schedule {shown}"
        )),
        "{stdout}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not clean"), "{stderr}");
}

/// Each liveness trigger, as a user meets it: a schedule file whose VU
/// spins without time advancing (`spin_forever`), spawns a task that spins
/// on the worker's clock as a deadline timer left with a past deadline
/// would (`spin_on_clock`), or sleeps forever (`sleep_forever`) replays to
/// an exit 1 naming the law `liveness` and the budget it exceeded, with
/// the run's budget and its replay line — never a hang.
#[test]
fn each_liveness_trigger_replays_to_a_named_violation() {
    let dir = scratch("liveness");
    let hooks = [
        (Step::SpinForever, "spin", "scheduler-step budget"),
        (Step::SpinOnClock, "clock", "scheduler-step budget"),
        (Step::SleepForever, "sleep", "simulated-time budget"),
    ];
    let children: Vec<_> = hooks
        .into_iter()
        .map(|(hook, name, which)| {
            let mut schedule = Schedule::generate(&Scenario::reuse(), SEED);
            schedule.workers.truncate(1);
            schedule.workers[0].vus.truncate(1);
            schedule.workers[0].vus[0].steps = vec![hook];
            schedule.faults = FaultPlan::none();
            let file = dir.join(format!("{name}.json"));
            std::fs::write(&file, schedule.to_json()).expect("write schedule");
            let shown = file.display().to_string();
            let child = spawn(&["replay", "--schedule", &shown]);
            (child, shown, which)
        })
        .collect();
    for (child, shown, which) in children {
        let out = child.wait_with_output().expect("run mcp-sim");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{shown}: {stderr}\n{stdout}");
        assert!(stdout.contains("law liveness broken"), "{shown}: {stdout}");
        assert!(stdout.contains(which), "{shown}: {stdout}");
        assert!(stdout.contains("budget: "), "{shown}: {stdout}");
        assert!(
            stdout.contains(&format!(
                "replay: cargo run -p mcp-sim -- replay --schedule {shown}"
            )),
            "{shown}: {stdout}"
        );
        assert!(!stderr.contains("panicked"), "{shown}: {stderr}");
    }
}
