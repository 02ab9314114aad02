//! `mcp-sim sweep`, `merge` and `audit`, run as a user runs them: usage
//! errors, a small sweep whose per-seed trace hashes are the ones `replay`
//! prints, shards that cover a seed range exactly once and merge back into
//! the unsharded sweep, a merged report with a failing seed, and the audit's
//! Markdown sections.
//!
//! Kept fast: one or two cheap scenarios, a handful of seeds. The children
//! of each test are started before any is waited for, so they run side by
//! side (no threads in this file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

use mcp_sim::audit::{GOALS, LAWS};
use mcp_sim::scenarios::Scenario;
use mcp_sim::sweep::{run_seed, SeedRange, Shard, SweepReport, FORMAT};

mod common;

use common::spawn;

fn wait(child: Child) -> Output {
    child.wait_with_output().expect("wait for mcp-sim")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh scratch directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_sweep")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Waits for a child that must exit with `code`; returns its stdout.
fn expect_exit(child: Child, code: i32, what: &str) -> String {
    let out = wait(child);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stdout
}

fn read_report(path: &Path) -> SweepReport {
    let name = path.display().to_string();
    let json = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    SweepReport::from_json(&name, &json).unwrap_or_else(|e| panic!("{e}"))
}

/// (scenario, seed) → trace hash of every seed of a report.
fn hashes(report: &SweepReport) -> BTreeMap<(String, u64), String> {
    report
        .seeds
        .iter()
        .map(|s| {
            let hash = s.trace_hash.clone().expect("a trace hash");
            ((s.scenario.clone(), s.seed), hash)
        })
        .collect()
}

/// Every usage error: exit status 2, nothing on stdout, one line on stderr
/// naming the bad value (clap's own errors: the first line names it).
#[test]
fn usage_errors_name_the_bad_value() {
    let dir = scratch("usage");
    let missing = dir.join("missing.json");
    let not_json = dir.join("not.json");
    let other_format = dir.join("other.json");
    std::fs::write(&not_json, "garbage").expect("write");
    std::fs::write(&other_format, "{\"format\": \"some-other/9\"}").expect("write");
    let bad_dir = dir.join("no-such-dir").join("r.json");
    let cases: Vec<(Vec<&str>, Vec<&str>, bool)> = vec![
        (
            vec!["sweep", "--scenario", "reuse,nope"],
            vec!["'nope'", "reuse", "close-under-load"],
            true,
        ),
        (
            vec!["sweep", "--scenario", "pool", "--scenario", "bogus"],
            vec!["'bogus'"],
            true,
        ),
        (
            vec!["sweep", "--seed-timeout-s", "0"],
            vec!["--seed-timeout-s 0"],
            true,
        ),
        (
            vec!["sweep", "--shard", "0/3"],
            vec!["'0/3'", "from 1"],
            true,
        ),
        (vec!["sweep", "--shard", "4/3"], vec!["'4/3'"], true),
        (vec!["sweep", "--shard", "two/3"], vec!["'two/3'"], true),
        (vec!["sweep", "--shard", "1/0"], vec!["'1/0'"], true),
        (vec!["sweep", "--jobs", "0"], vec!["--jobs 0"], true),
        (vec!["sweep", "--seeds", "0"], vec!["--seeds 0"], true),
        (
            vec!["sweep", "--seed-start", "18446744073709551615"],
            vec!["18446744073709551615"],
            true,
        ),
        (
            vec!["sweep", "--json", path_str(&bad_dir)],
            vec!["r.json"],
            true,
        ),
        (vec!["sweep", "--seeds", "many"], vec!["'many'"], false),
        (
            vec![
                "sweep",
                "--until-goals",
                "--max-seeds",
                "2",
                "--seeds",
                "10",
            ],
            vec!["--max-seeds 2", "--seeds 10"],
            true,
        ),
        (
            vec!["sweep", "--max-seeds", "9"],
            vec!["--until-goals"],
            false,
        ),
        (
            vec!["merge", "/dev/zero"],
            vec!["'/dev/zero'", "larger than"],
            true,
        ),
        (
            vec!["merge", path_str(&missing)],
            vec!["missing.json"],
            true,
        ),
        (
            vec!["merge", path_str(&not_json)],
            vec!["not.json", "not JSON"],
            true,
        ),
        (
            vec!["merge", path_str(&other_format)],
            vec!["other.json", "'some-other/9'", FORMAT],
            true,
        ),
        (vec!["merge"], vec!["REPORT"], false),
        (vec!["audit", "--scenario", "nope"], vec!["'nope'"], true),
        (vec!["audit", "--seeds", "0"], vec!["--seeds 0"], true),
        (
            vec!["audit", "--out", path_str(&bad_dir)],
            vec!["r.json"],
            true,
        ),
    ];
    let children: Vec<Child> = cases.iter().map(|(args, _, _)| spawn(args)).collect();
    for ((args, named, one_line), child) in cases.iter().zip(children) {
        let out = wait(child);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: stdout {:?}",
            text(&out.stdout)
        );
        for name in named {
            assert!(stderr.contains(name), "{args:?}: {name} not in {stderr}");
        }
        if *one_line {
            assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        } else {
            let first = stderr.lines().next().unwrap_or_default();
            assert!(first.starts_with("error:"), "{args:?}: {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A small sweep: exit 0, the table, a JSON report whose per-seed trace
/// hashes are those of `mcp_sim::run::run` in this process and those
/// `replay` prints in another.
#[test]
fn small_sweep_matches_replay() {
    let dir = scratch("small");
    let json = dir.join("reuse.json");
    let sweep = spawn(&[
        "sweep",
        "--scenario",
        "reuse",
        "--seeds",
        "3",
        "--jobs",
        "2",
        "--json",
        path_str(&json),
    ]);
    let replay = spawn(&["replay", "reuse", "1"]);
    let stdout = expect_exit(sweep, 0, "sweep");
    for needle in [
        "scenario",
        "sim/wall",
        "total",
        "wall time:",
        "goals reached:",
    ] {
        assert!(stdout.contains(needle), "{needle} not in:\n{stdout}");
    }
    let row = stdout
        .lines()
        .find(|l| l.starts_with("reuse "))
        .unwrap_or_else(|| panic!("no reuse row in:\n{stdout}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..4], &["3", "0", "0"], "{row}");
    assert!(cols[4].ends_with(&format!("/{}", GOALS.len())), "{row}");

    let report = read_report(&json);
    assert_eq!(report.format, FORMAT);
    assert_eq!(report.shards, vec![Shard::WHOLE]);
    assert!(!report.interrupted && report.is_clean());
    assert_eq!(
        report.ranges,
        vec![SeedRange {
            scenario: "reuse".into(),
            start: 0,
            end: 3
        }]
    );
    assert_eq!(
        report.seeds.iter().map(|s| s.seed).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    for s in &report.seeds {
        assert_eq!(
            s.replay,
            format!("cargo run -p mcp-sim -- replay reuse {}", s.seed)
        );
        assert!(!s.metrics.is_empty() && !s.checks.is_empty(), "{s:?}");
    }
    let here = run_seed(&Scenario::reuse(), 2);
    assert_eq!(report.seeds[2].trace_hash, here.trace_hash);

    let replayed = expect_exit(replay, 0, "replay reuse 1");
    let printed: Vec<&str> = replayed
        .lines()
        .filter_map(|l| l.strip_prefix("trace-hash: "))
        .collect();
    assert_eq!(printed.len(), 1, "{replayed}");
    assert_eq!(Some(printed[0]), report.seeds[1].trace_hash.as_deref());
}

/// Three shards of two scenarios' seeds 10..17 run each seed exactly once;
/// merged (in any order) they give the unsharded sweep's ranges and
/// per-seed trace hashes. Overlapping or foreign reports are refused.
#[test]
fn shards_cover_the_range_once_and_merge_back() {
    let dir = scratch("shards");
    let common = [
        "sweep",
        "--scenario",
        "reuse,churn",
        "--seeds",
        "7",
        "--seed-start",
        "10",
        "--jobs",
        "1",
    ];
    let file = |name: &str| dir.join(name);
    let run = |json: &Path, shard: Option<&str>| {
        let mut args: Vec<&str> = common.to_vec();
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        args.extend(["--json", path_str(json)]);
        spawn(&args)
    };
    let shard_files: Vec<PathBuf> = (1..=3).map(|k| file(&format!("shard-{k}.json"))).collect();
    let whole_file = file("whole.json");
    let mut children: Vec<Child> = shard_files
        .iter()
        .enumerate()
        .map(|(i, f)| run(f, Some(&format!("{}/3", i + 1))))
        .collect();
    children.push(run(&whole_file, None));
    for (i, child) in children.into_iter().enumerate() {
        expect_exit(child, 0, &format!("sweep #{i}"));
    }

    let whole = read_report(&whole_file);
    let shards: Vec<SweepReport> = shard_files.iter().map(|f| read_report(f)).collect();
    for scenario in ["reuse", "churn"] {
        let mut seen = BTreeSet::new();
        for (k, r) in shards.iter().enumerate() {
            assert_eq!(r.shards, vec![Shard::new(k as u64 + 1, 3).unwrap()]);
            for s in r.seeds.iter().filter(|s| s.scenario == scenario) {
                assert!(
                    seen.insert(s.seed),
                    "{scenario} seed {} in two shards",
                    s.seed
                );
            }
        }
        assert_eq!(seen, (10..17).collect::<BTreeSet<u64>>(), "{scenario}");
    }
    let union: BTreeMap<_, _> = shards.iter().flat_map(hashes).collect();
    assert_eq!(union, hashes(&whole));

    let merged_file = file("merged.json");
    let s = |i: usize| path_str(&shard_files[i]);
    let merge = spawn(&["merge", s(2), s(0), s(1), "--json", path_str(&merged_file)]);
    let overlap = spawn(&["merge", s(0), path_str(&whole_file)]);
    let partial = spawn(&["merge", s(0), s(2)]);
    let stdout = expect_exit(merge, 0, "merge");
    assert!(stdout.contains("shards 1/3 2/3 3/3"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
    let merged = read_report(&merged_file);
    assert_eq!(hashes(&merged), hashes(&whole));
    assert_eq!(merged.ranges, whole.ranges);
    assert_eq!(merged.goals, whole.goals);
    assert!(merged.missing_shards().is_empty());

    let out = wait(overlap);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("shard-1.json")
            && stderr.contains("whole.json")
            && stderr.contains("overlap"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    let stdout = expect_exit(partial, 0, "merge of shards 1 and 3");
    assert!(
        stdout.contains("warning: shards missing from the merge: 2/3"),
        "{stdout}"
    );

    // A report of other scenario definitions is refused.
    let mut foreign = shards[1].clone();
    foreign.build.digest = "f".repeat(64);
    let foreign_file = file("foreign.json");
    std::fs::write(&foreign_file, foreign.to_json()).expect("write");
    let out = wait(spawn(&["merge", s(0), path_str(&foreign_file)]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("different scenario definitions"),
        "{stderr}"
    );
}

/// A report with a failing seed (a violation written into a real report)
/// merges, lists the seed with its replay line and exits 1.
#[test]
fn merged_failure_exits_1_with_replay_line() {
    let dir = scratch("failure");
    let json = dir.join("one.json");
    let sweep = spawn(&[
        "sweep",
        "--scenario",
        "churn",
        "--seeds",
        "1",
        "--seed-start",
        "4",
        "--json",
        path_str(&json),
    ]);
    expect_exit(sweep, 0, "sweep");
    let mut report = read_report(&json);
    report.seeds[0]
        .violations
        .push(mcp_sim::sweep::LawViolation {
            law: LAWS[0].to_owned(),
            event_index: 7,
            message: "planted by the test".into(),
        });
    let bad = dir.join("bad.json");
    std::fs::write(&bad, report.to_json()).expect("write");
    let out = wait(spawn(&["merge", path_str(&bad)]));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "FAIL churn seed 4: law {} broken at event #7: planted by the test",
            LAWS[0]
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("replay: cargo run -p mcp-sim -- replay churn 4"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 1 seeds failed"), "{stderr}");
}

/// `audit` writes its sections (every law and goal named, the determinism
/// outcome, the metrics), the same bytes to stdout and to `--out`.
#[test]
fn audit_report_has_its_sections() {
    let dir = scratch("audit");
    let md_file = dir.join("audit.md");
    let args = [
        "audit",
        "--scenario",
        "reuse",
        "--seeds",
        "2",
        "--rerun",
        "2",
    ];
    let to_stdout = spawn(&args);
    let mut with_out = args.to_vec();
    with_out.extend(["--out", path_str(&md_file)]);
    let to_file = spawn(&with_out);
    let md = expect_exit(to_stdout, 0, "audit");
    let quiet = expect_exit(to_file, 0, "audit --out");
    assert!(quiet.is_empty(), "{quiet}");
    let written = std::fs::read_to_string(&md_file).expect("read audit.md");
    assert_eq!(written, md, "the audit is not the same twice");

    for section in [
        "# mcp-sim correctness audit",
        "**Verdict: PASS.**",
        "## Scenarios",
        "## Laws",
        "## Goals",
        "## Determinism",
        "## Metrics per scenario",
        "## Failing seeds",
    ] {
        assert!(md.contains(section), "{section} not in:\n{md}");
    }
    for law in LAWS {
        assert!(md.contains(&format!("| {law} | ")), "{law} not in:\n{md}");
    }
    for goal in GOALS {
        assert!(md.contains(&format!("| {goal} | ")), "{goal} not in:\n{md}");
    }
    assert!(md.contains("| reuse | 0, 1 | 2 | none |"), "{md}");
    assert!(
        md.contains("every re-run seed gave the same trace hash"),
        "{md}"
    );
    assert!(md.contains("| total_created | "), "{md}");
}

/// A report of `seeds` seeds of `scenario` that reached no goal at all
/// (each seed clean, as a run that no longer exercises a path would be),
/// except `reached` by its first seed.
fn goalless_report(scenario: &str, seeds: u64, reached: &[&str]) -> SweepReport {
    let results = (0..seeds)
        .map(|seed| {
            let mut r = mcp_sim::sweep::SeedResult::panicked(scenario, seed, String::new(), 0.0);
            r.panic = None;
            r.trace_hash = Some(format!("{seed:064x}"));
            if seed == 0 {
                r.goals = reached.iter().map(|g| ((*g).to_owned(), 1)).collect();
            }
            r
        })
        .collect();
    let range = SeedRange {
        scenario: scenario.to_owned(),
        start: 0,
        end: seeds,
    };
    SweepReport::new(vec![Shard::WHOLE], vec![range], results, false, 0.0)
}

/// A goal is a sometimes-assertion: a sweep that runs a scenario's full
/// sweep seeds and never reaches a goal the scenario promises fails
/// (exit 1) and names the goal, instead of passing; one that reaches all
/// of them passes; a sweep with fewer seeds is not held to the promise
/// and says so.
#[test]
fn an_unreached_promised_goal_fails_the_sweep_and_is_named() {
    let scenario = Scenario::by_name("partition").expect("built in");
    let (needed, promised) = (scenario.sweep_seeds(), scenario.promised_goals());
    assert!(!promised.is_empty());
    let dir = scratch("promises");
    let write = |name: &str, report: &SweepReport| {
        let path = dir.join(name);
        std::fs::write(&path, report.to_json()).expect("write report");
        path
    };
    let missing = write(
        "missing.json",
        &goalless_report("partition", needed, &promised[1..]),
    );
    let kept = write("kept.json", &goalless_report("partition", needed, promised));
    let few = write("few.json", &goalless_report("partition", needed - 1, &[]));
    let children = [&missing, &kept, &few].map(|p| spawn(&["merge", path_str(p)]));
    let [missing, kept, few] = children;

    let out = wait(missing);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "promised goals not reached (1): partition: {}",
            promised[0]
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("partition never reached {}", promised[0])),
        "{stderr}"
    );

    let stdout = expect_exit(kept, 0, "every promised goal reached");
    assert!(!stdout.contains("promised goals not reached"), "{stdout}");

    let stdout = expect_exit(few, 0, "too few seeds to promise anything");
    assert!(
        stdout.contains(&format!(
            "goal promises not checked, too few seeds: partition ({} of {needed})",
            needed - 1
        )),
        "{stdout}"
    );
}

/// Every goal is promised by some scenario, so the default sweep fails if
/// any goal goes unreached; and a scenario promises only real goals.
#[test]
fn every_goal_is_promised_by_a_scenario() {
    let mut promised = BTreeSet::new();
    for s in Scenario::all() {
        for g in s.promised_goals() {
            assert!(GOALS.contains(g), "{}: {g} is not a goal", s.name);
            promised.insert(*g);
        }
    }
    let unpromised: Vec<&str> = GOALS
        .iter()
        .copied()
        .filter(|g| !promised.contains(g))
        .collect();
    assert!(
        unpromised.is_empty(),
        "promised by no scenario: {unpromised:?}"
    );
}

/// With a watchdog limit no seed can meet (a microsecond of real time),
/// every seed is reported hung with its replay line, in the output and the
/// JSON report, and the sweep still ends, promptly, with status 1.
#[test]
fn seeds_past_the_watchdog_limit_fail_the_sweep() {
    let dir = scratch("watchdog");
    let json = dir.join("hung.json");
    let args = [
        "sweep",
        "--scenario",
        "reuse",
        "--seeds",
        "2",
        "--jobs",
        "1",
        "--seed-timeout-s",
        "0.000001",
        "--json",
        path_str(&json),
    ];
    let stdout = expect_exit(spawn(&args), 1, "sweep with a tiny watchdog limit");
    assert!(stdout.contains("hung: no result after"), "{stdout}");
    assert!(
        stdout.contains("replay: cargo run -p mcp-sim -- replay reuse 1"),
        "{stdout}"
    );
    let report = read_report(&json);
    assert_eq!(report.seeds.len(), 2);
    assert!(report.seeds.iter().all(|s| s.hung && !s.is_clean()));
    assert_eq!(report.scenarios[0].hung, 2);
}
