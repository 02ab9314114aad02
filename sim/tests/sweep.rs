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

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use mcp_sim::faults::{FaultKind, FaultPlan};
use mcp_sim::liveness::{Budget, LAST_EVENTS, LAW as LIVENESS};
use mcp_sim::run::{run, run_untraced, Report, Untraced};
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::{Op, Schedule, Step};
use mcp_sim::strategy::{failure_dir, shrink_failure, ScheduleSize, DEFAULT_BUDGET};
use mcp_sim::sweep::{
    run_jobs_with, Job, NoProgress, Progress, Runner, SeedResult, Shard, SweepReport,
};
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
                .filter(|e| e.source() == Source::Server)
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

/// A world of one VU that runs `hook` after one ping, with no faults: a
/// schedule of the reuse scenario cut down, to trip a liveness budget
/// quickly.
fn hooked(hook: Step) -> Schedule {
    let mut schedule = Schedule::generate(&Scenario::reuse(), 0);
    schedule.workers.truncate(1);
    schedule.workers[0].vus.truncate(1);
    schedule.workers[0].vus[0].steps = vec![
        Step::Call {
            op: Op::Ping,
            think_ms: 10,
        },
        hook,
    ];
    schedule.faults = FaultPlan::none();
    schedule
}

/// Checks the `liveness` violation of `report`: first, naming `which`
/// budget, with the last events as context, in a failure text that ends
/// with the replay line and states the budget.
fn assert_liveness(report: &Report, which: &str) {
    assert!(!report.is_clean());
    assert!(report.sim_error.is_none(), "{:?}", report.sim_error);
    let v = &report.violations[0];
    assert_eq!(v.law, LIVENESS);
    assert!(v.message.contains(which), "{}", v.message);
    assert_eq!(v.event_index + 1, report.trace.events.len());
    assert!(!v.context.is_empty() && v.context.len() <= LAST_EVENTS);
    assert_eq!(v.context.last(), Some(&v.event));
    assert_eq!(report.checks[LIVENESS], 1);
    let text = report.failure_text();
    assert!(text.contains(&format!("law {LIVENESS} broken")), "{text}");
    assert!(
        text.contains(&format!("budget: {}", report.budget)),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with(&format!("replay: {}", report.replay_line())),
        "{text}"
    );
}

/// A VU that loops without simulated time advancing is stopped by the
/// scheduler-step budget (not by a hang): a `liveness` violation, with the
/// run's last events and its replay line. The same schedule, run again,
/// stops at the same step.
#[test]
fn a_seed_that_spins_is_a_liveness_violation_with_its_replay_line() {
    stopped_by_the_step_budget(Step::SpinForever);
}

/// Checks that the schedule `hooked(hook)` is stopped by its step budget
/// before its simulated-time budget, a `liveness` violation, the same at
/// every replay.
fn stopped_by_the_step_budget(hook: Step) {
    let schedule = hooked(hook);
    let budget = Budget::for_schedule(&schedule);
    let report = run(&schedule, "reuse", 0);
    assert_liveness(&report, "scheduler-step budget");
    assert_eq!(report.budget, budget);
    assert!(report.steps > budget.steps, "{} steps", report.steps);
    assert!(report.simulated_ms < budget.simulated_ms);
    let again = run(&schedule, "reuse", 0);
    assert_eq!(again.trace_hash, report.trace_hash);
    assert_eq!(again.violations[0].message, report.violations[0].message);
}

/// A VU that sleeps forever keeps simulated time advancing: the run is
/// stopped just past its simulated-time budget (before the schedule's own
/// bound), a `liveness` violation.
#[test]
fn a_seed_that_never_ends_in_simulated_time_is_a_liveness_violation() {
    let schedule = hooked(Step::SleepForever);
    let budget = Budget::for_schedule(&schedule);
    assert!(budget.simulated_ms < schedule.duration_ms, "{budget}");
    let report = run(&schedule, "reuse", 0);
    assert_liveness(&report, "simulated-time budget");
    assert_eq!(report.simulated_ms, budget.simulated_ms + 1);
    assert!(report.steps <= budget.steps);
}

/// A task that is not a VU (as the manager's deadline timer is not) and
/// spins on the worker's clock without simulated time advancing is stopped
/// by the step budget through the clock's meter, not by a hang: a
/// `liveness` violation, the same at every replay. (Without the metered
/// clock, only the sweep's wall-clock watchdog stopped such a seed, and its
/// abandoned thread spun on.)
#[test]
fn a_library_task_spinning_on_the_clock_is_a_liveness_violation() {
    stopped_by_the_step_budget(Step::SpinOnClock);
}

/// Seed 0 of every scenario stays well within its budget:
/// the budget is derived from the schedule, and no real seed comes near it.
#[test]
fn budgets_are_far_from_real_runs() {
    for scenario in Scenario::all() {
        let seed = 0;
        let report = run(&Schedule::generate(&scenario, seed), &scenario.name, seed);
        let b = report.budget;
        assert!(
            report.simulated_ms * 2 <= b.simulated_ms && report.steps * 2 <= b.steps,
            "{} seed {seed}: {} ms, {} steps of {b}",
            scenario.name,
            report.simulated_ms,
            report.steps
        );
    }
}

/// A seed that never returns (here: a runner that parks its thread for
/// good) is reported by the wall-clock watchdog as hung, with its replay
/// line; its thread is abandoned and replaced, every other seed still runs,
/// and the sweep's report fails. The one test that takes real time (the
/// watchdog's limit, a second).
#[test]
fn a_hung_seed_is_reported_by_the_watchdog_and_the_sweep_goes_on() {
    let scenarios = vec![Scenario::reuse()];
    let jobs: Vec<Job> = vec![(0, 0..4)];
    // The other seeds run a one-ping world: far within the limit even in
    // a debug build on a busy machine.
    let runner: Arc<Runner> = Arc::new(|s: &Scenario, seed: u64| {
        if seed == 1 {
            loop {
                std::thread::park();
            }
        }
        let mut schedule = hooked(Step::CloseManager);
        schedule.seed = seed;
        run(&schedule, &s.name, seed)
    });
    let stop = AtomicBool::new(false);
    let limit = Duration::from_millis(1_000);
    let results = run_jobs_with(&scenarios, &jobs, 1, &stop, &NoProgress, runner, limit);
    assert_eq!(
        results.iter().map(|r| r.seed).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    let hung = &results[1];
    assert!(hung.hung && !hung.is_clean(), "{hung:?}");
    assert!(hung.wall_ms >= 1_000.0, "{}", hung.wall_ms);
    assert_eq!(hung.replay, "cargo run -p mcp-sim -- replay reuse 1");
    assert!(
        hung.failure_line().contains("hung"),
        "{}",
        hung.failure_line()
    );
    for r in [&results[0], &results[2], &results[3]] {
        assert!(r.is_clean() && r.trace_hash.is_some(), "{r:?}");
        assert!(r.budget.is_some());
    }
    let report = SweepReport::new(vec![Shard::WHOLE], Vec::new(), results, false, 0.0);
    assert_eq!(report.failures().len(), 1);
    assert_eq!(report.scenarios[0].hung, 1);
    assert!(report.failure_lines().contains("replay reuse 1"));
}

/// A gate a runner waits at until the test opens it: a seed that hangs
/// exactly as long as the test wants, with no sleep.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*open {
            open = self
                .opened
                .wait(open)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.opened.notify_all();
    }
}

/// Opens `gate` once the watchdog has reported `seed` hung: by then it has
/// abandoned the seed's thread, which is released to carry on.
struct OpenWhenHung {
    gate: Arc<Gate>,
    seed: u64,
}

impl Progress for OpenWhenHung {
    fn finished(&self, result: &SeedResult) {
        if result.hung && result.seed == self.seed {
            self.gate.open();
        }
    }
}

/// A thread's name.
type Thread = Option<String>;

/// Opens its gate when dropped.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

thread_local! {
    /// On the thread that ran the slow seed: opens the gate the later
    /// seeds wait at once the thread exits or takes another seed.
    static WENT_ON: std::cell::RefCell<Option<OpenOnDrop>> = const { std::cell::RefCell::new(None) };
}

/// A seed that was only slow, not spinning: the watchdog reports it hung
/// and abandons its thread; then the seed returns and its thread recovers.
/// Every seed still has exactly one result: the slow one is hung (its late
/// result ignored), the others ran, none lost; and the recovered thread
/// took no further seed (the watchdog told it to quit before releasing
/// it).
///
/// So that the recovered thread has seeds to take should it try, the
/// seeds after the slow one wait until that thread has either exited or
/// taken one of them; so the replacement thread cannot take them all
/// first. Each seed returns a report computed up front, so that a limit of
/// tens of milliseconds holds even on a busy machine.
#[test]
fn a_recovered_abandoned_thread_loses_no_seed() {
    const SEEDS: u64 = 8;
    const SLOW: u64 = 1;
    let scenarios = vec![Scenario::reuse()];
    let jobs: Vec<Job> = vec![(0, 0..SEEDS)];
    let reports: Vec<Report> = (0..SEEDS)
        .map(|seed| {
            let mut schedule = hooked(Step::CloseManager);
            schedule.seed = seed;
            run(&schedule, "reuse", seed)
        })
        .collect();
    // Opened when the slow seed is reported hung, and when its thread
    // exits or goes on.
    let (released, went_on) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    // Which thread ran each seed, in the order they were started.
    let ran: Arc<Mutex<Vec<(u64, Thread)>>> = Arc::default();
    let runner: Arc<Runner> = {
        let (released, went_on, ran) = (released.clone(), went_on.clone(), ran.clone());
        Arc::new(move |_: &Scenario, seed: u64| {
            let thread = std::thread::current().name().map(str::to_owned);
            ran.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((seed, thread));
            if seed == SLOW {
                WENT_ON.with(|w| *w.borrow_mut() = Some(OpenOnDrop(went_on.clone())));
                released.wait();
            } else if seed > SLOW {
                // On the slow seed's thread, this opens the gate.
                drop(WENT_ON.with(|w| w.borrow_mut().take()));
                went_on.wait();
            }
            reports[usize::try_from(seed).unwrap()].clone()
        })
    };
    let progress = OpenWhenHung {
        gate: released.clone(),
        seed: SLOW,
    };
    let stop = AtomicBool::new(false);
    let limit = Duration::from_millis(40);
    let results = run_jobs_with(&scenarios, &jobs, 1, &stop, &progress, runner, limit);
    let ran = ran.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(
        results.iter().map(|r| r.seed).collect::<Vec<_>>(),
        (0..SEEDS).collect::<Vec<_>>(),
        "every seed exactly once; seeds run by thread: {ran:?}"
    );
    let slow = &results[usize::try_from(SLOW).unwrap()];
    assert!(slow.hung && !slow.is_clean(), "{slow:?}");
    assert!(slow.wall_ms >= 40.0, "{}", slow.wall_ms);
    assert!(
        slow.trace_hash.is_none(),
        "the late result is ignored: {slow:?}"
    );
    for r in results.iter().filter(|r| r.seed != SLOW) {
        // Clean; or, should the machine stall a thread past the limit,
        // hung, but never lost.
        assert!(r.is_clean() || r.hung, "{r:?}");
    }
    let slow_at = ran.iter().position(|(s, _)| *s == SLOW).unwrap();
    let slow_thread = &ran[slow_at].1;
    assert!(slow_thread.is_some(), "{ran:?}");
    assert!(
        ran[slow_at + 1..].iter().all(|(_, t)| t != slow_thread),
        "the abandoned thread took another seed: {ran:?}"
    );
}
