//! Replays the committed regression seeds of `sim/regressions.txt` (one
//! `scenario seed` per line, `#` comments): each must run to the end with
//! a clean audit and give the same trace hash twice. A line naming an
//! unknown scenario or not of that shape fails the test with its line
//! number. A seed that breaks a law is shrunk as the sweep shrinks one
//! (`sim/tests/sweep.rs`), and printed with both replay lines.
//!
//! The proptest regression files (`sim/proptest-regressions/`) are
//! replayed by the property tests they belong to
//! (`sim/tests/proptest_schedules.rs`).

use mcp_sim::run::{run, Report};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::Schedule;
use mcp_sim::strategy::{failure_dir, shrink_failure, DEFAULT_BUDGET};

/// The regression file, relative to the `mcp-sim` crate.
const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions.txt");

/// One regression line.
#[derive(Debug, PartialEq)]
struct Entry {
    /// 1-based line number in the file.
    line: usize,
    scenario: String,
    seed: u64,
}

/// Parses the regression file's text: the entries, or one message per bad
/// line naming its number.
fn parse(text: &str) -> Result<Vec<Entry>, Vec<String>> {
    let (mut entries, mut errors) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [scenario, seed] = fields[..] else {
            errors.push(format!(
                "line {line}: expected `scenario seed`, got {raw:?}"
            ));
            continue;
        };
        let Ok(seed) = seed.parse::<u64>() else {
            errors.push(format!(
                "line {line}: seed {seed:?} is not an unsigned integer in {raw:?}"
            ));
            continue;
        };
        if Scenario::by_name(scenario).is_none() {
            errors.push(format!(
                "line {line}: unknown scenario {scenario:?} (known: {})",
                Scenario::names().join(", ")
            ));
            continue;
        }
        entries.push(Entry {
            line,
            scenario: scenario.to_owned(),
            seed,
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn replay(entry: &Entry) -> Report {
    let scenario = Scenario::by_name(&entry.scenario).expect("checked by parse");
    run(
        &Schedule::generate(&scenario, entry.seed),
        &scenario.name,
        entry.seed,
    )
}

#[test]
fn committed_regression_seeds_replay_clean_and_stable() {
    let text = std::fs::read_to_string(FILE).unwrap_or_else(|e| panic!("{FILE}: {e}"));
    let entries =
        parse(&text).unwrap_or_else(|errors| panic!("{FILE} is malformed:\n{}", errors.join("\n")));
    assert!(!entries.is_empty(), "{FILE} holds no seeds");
    let mut failures = Vec::new();
    for entry in &entries {
        let (a, b) = (replay(entry), replay(entry));
        let at = format!("{FILE}:{}: {} {}", entry.line, entry.scenario, entry.seed);
        if !a.is_clean() {
            let shrunk = shrink_failure(&a, DEFAULT_BUDGET);
            let saved = shrunk.save(&failure_dir()).ok();
            eprintln!("{}", shrunk.text(saved.as_deref()));
            failures.push(format!("{at}: audit not clean"));
        }
        if a.trace_hash != b.trace_hash {
            failures.push(format!(
                "{at}: trace hash differs between two runs ({} vs {})\nreplay: {}",
                a.trace_hash,
                b.trace_hash,
                a.replay_line()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "regression seeds failing:\n{}",
        failures.join("\n")
    );
}

#[test]
fn parse_skips_comments_and_blank_lines() {
    let text = "# a comment\n\n  pool 7  # trailing comment\nreuse\t0\n";
    assert_eq!(
        parse(text),
        Ok(vec![
            Entry {
                line: 3,
                scenario: "pool".into(),
                seed: 7
            },
            Entry {
                line: 4,
                scenario: "reuse".into(),
                seed: 0
            },
        ])
    );
}

#[test]
fn parse_names_the_line_of_each_bad_entry() {
    let text = "pool 1\nnope 3\npool\npool x\npool 1 2\n";
    let errors = parse(text).expect_err("malformed lines");
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors[0].starts_with("line 2: unknown scenario \"nope\""),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("line 3: expected `scenario seed`"),
        "{}",
        errors[1]
    );
    assert!(errors[2].starts_with("line 4: seed \"x\""), "{}", errors[2]);
    assert!(
        errors[3].starts_with("line 5: expected `scenario seed`"),
        "{}",
        errors[3]
    );
}
