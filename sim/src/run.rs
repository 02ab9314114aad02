//! Running a [`Schedule`]: build the world through [`crate::topology`] (one
//! server host, the schedule's workers, a [`TraceRecorder`] on every
//! worker), run it under the fault plan, collect the trace, audit it, and
//! return a [`Report`].
//!
//! The wall clock is read twice per run, around it, for
//! [`Report::wall_ms`]; nothing inside the simulation reads it, and the
//! trace (and so its hash) never holds it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use mcp_session::SessionMetrics;

use crate::audit::{audit, AuditConfig, Violation};
use crate::faults::Applied;
use crate::liveness::{Budget, Exceeded, Meter};
use crate::schedule::{Schedule, Step, SERVER_HOST};
use crate::server::{ServerEvent, Stamped};
use crate::topology::{Topology, Vu, WorkerSpec};
use crate::trace::{ManagerEvent, Trace, TraceRecorder};
use crate::vu::run_vu;

/// What one run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// What was run.
    pub schedule: Schedule,
    /// Each worker's final manager metrics, by host.
    pub metrics: BTreeMap<String, SessionMetrics>,
    /// Each VU's steps that ended in an error, by worker host and VU id.
    pub vu_errors: BTreeMap<String, BTreeMap<u64, u32>>,
    /// The hex BLAKE3 of the trace's canonical bytes.
    pub trace_hash: String,
    /// Each law, with how many times the audit checked it.
    pub checks: BTreeMap<String, u64>,
    /// The broken laws (first violation of each).
    pub violations: Vec<Violation>,
    /// The reachability goals, with how often each was reached.
    pub goals: BTreeMap<String, u64>,
    /// Why the simulation itself failed (a worker's error, or the simulated
    /// duration running out: a hang), if it did.
    pub sim_error: Option<String>,
    /// Simulated time when the run ended (ms).
    pub simulated_ms: u64,
    /// What the run was allowed to spend ([`Budget::for_schedule`]):
    /// exceeding it is a `liveness` violation.
    pub budget: Budget,
    /// Scheduler steps (polls of the VU tasks, readings of and sleeps on
    /// the workers' clocks) the run took.
    pub steps: u64,
    /// Real time the whole call took (ms): drawing nothing from it, the
    /// simulation cannot depend on it; it is not in the trace.
    pub wall_ms: f64,
    /// The whole trace (not serialized: write it with
    /// [`Trace::to_jsonl`]).
    #[serde(skip)]
    pub trace: Trace,
}

impl Report {
    /// Whether the run finished and broke no law.
    pub fn is_clean(&self) -> bool {
        self.sim_error.is_none() && self.violations.is_empty()
    }

    /// How many MCP operations the VUs ran: the manager's `operation_end`
    /// events (each `ping` or `tools/call` sent on a session, successful or
    /// not). Session setup and teardown (`initialize`, the `initialized`
    /// notification, DELETE) are not counted: see
    /// [`Report::server_requests`] for every exchange on the wire.
    pub fn operations(&self) -> u64 {
        let n = self
            .trace
            .events
            .iter()
            .filter(|e| {
                e.manager()
                    .is_some_and(|m| matches!(m.event, ManagerEvent::OperationEnd { .. }))
            })
            .count();
        n as u64
    }

    /// How many HTTP requests the server handled: one per request, whatever
    /// the answer (an `initialize`, a notification, an operation, a DELETE,
    /// an SSE resumption GET, a refusal, an injected failure), counted from
    /// the server's events in the trace (those logged exactly once per
    /// request handled). Requests lost on the network before reaching the
    /// server are not counted.
    pub fn server_requests(&self) -> u64 {
        let per_request = |e: &ServerEvent| {
            matches!(
                e,
                ServerEvent::SessionCreated { .. }
                    | ServerEvent::SessionLimit { .. }
                    | ServerEvent::Request { .. }
                    | ServerEvent::Notification { .. }
                    | ServerEvent::ClientResponse { .. }
                    | ServerEvent::Deleted { .. }
                    | ServerEvent::UnknownSession { .. }
                    | ServerEvent::MissingSession { .. }
                    | ServerEvent::Rejected { .. }
                    | ServerEvent::Injected { .. }
                    | ServerEvent::StatelessRequest { .. }
                    | ServerEvent::StatelessNotification { .. }
                    | ServerEvent::StatelessRefused { .. }
            )
        };
        let n = self
            .trace
            .events
            .iter()
            .filter(|e| e.server().is_some_and(per_request))
            .count();
        n as u64
    }

    /// The command line that replays this run.
    pub fn replay_line(&self) -> String {
        format!(
            "cargo run -p mcp-sim -- replay {} {}",
            self.scenario, self.seed
        )
    }

    /// A failure message for a human: each broken law with its first
    /// violating event, the timeline around it, the schedule as JSON and the
    /// replay line. Empty for a clean run.
    pub fn failure_text(&self) -> String {
        self.failure_text_with_replay(&self.replay_line())
    }

    /// [`Report::failure_text`] ending with `replay` as the command that
    /// replays the run: for a run whose schedule did not come from a
    /// scenario and seed (`mcp-sim replay --schedule FILE`).
    pub fn failure_text_with_replay(&self, replay: &str) -> String {
        if self.is_clean() {
            return String::new();
        }
        let mut out = format!("scenario {} seed {}\n", self.scenario, self.seed);
        if let Some(e) = &self.sim_error {
            out.push_str(&format!(
                "simulation failed at {}ms: {e}\n",
                self.simulated_ms
            ));
            let n = self.trace.events.len();
            out.push_str("last events:\n");
            out.push_str(&self.trace.timeline_range(n.saturating_sub(20), n));
        }
        for v in &self.violations {
            out.push_str(&format!(
                "law {} broken at event #{}: {}\n",
                v.law, v.event_index, v.message
            ));
            // A run over budget was stopped at its last event: show what
            // led there.
            let before = if v.law == crate::liveness::LAW {
                crate::liveness::LAST_EVENTS - 1
            } else {
                12
            };
            out.push_str(
                &self
                    .trace
                    .timeline_range(v.event_index.saturating_sub(before), v.event_index + 5),
            );
        }
        if !self.violations.is_empty() || self.sim_error.is_some() {
            out.push_str(&format!("budget: {}\n", self.budget));
        }
        out.push_str("schedule:\n");
        out.push_str(&self.schedule.to_json());
        out.push_str("\nreplay: ");
        out.push_str(replay);
        out.push('\n');
        out
    }
}

/// What simulating a schedule left behind, before any trace is assembled.
struct Simulated {
    /// The worker hosts' recorders (their manager events only if the run
    /// recorded them; the VUs' own events always).
    recorders: BTreeMap<String, TraceRecorder>,
    /// Each server host's own event log, by host.
    server_logs: Vec<(String, Vec<Stamped>)>,
    /// What the fault plan applied.
    applied: Vec<Applied>,
    /// Why the simulation failed, if it did.
    sim_error: Option<String>,
    /// Simulated time at the end (ms).
    simulated_ms: u64,
    /// The run's budget.
    budget: Budget,
    /// The scheduler steps taken.
    steps: u64,
    /// The budget exceeded, if the run was stopped for it.
    exceeded: Option<Exceeded>,
    /// Each VU's steps that ended in an error.
    vu_errors: BTreeMap<String, BTreeMap<u64, u32>>,
    /// Each worker's final manager metrics.
    metrics: BTreeMap<String, SessionMetrics>,
    /// Each worker's established TCP streams at the end.
    streams_at_end: BTreeMap<String, i64>,
}

/// Builds `schedule`'s world and runs it to the end. With `record_manager`,
/// each worker's manager reports its events to the worker's recorder;
/// without, it has no event sink. Recording reads nothing from the
/// simulation and draws no randomness: the simulation is the same either
/// way (`sim/tests/sweep.rs` holds [`run_untraced`] to [`run`]).
fn simulate(schedule: &Schedule, seed: u64, record_manager: bool) -> Simulated {
    let recorders: BTreeMap<String, TraceRecorder> = schedule
        .workers
        .iter()
        .map(|w| (w.name.clone(), TraceRecorder::new(w.name.clone())))
        .collect();
    let sinks = record_manager.then_some(&recorders);
    // Every VU and every worker's clock is metered against the step
    // budget; the loop below checks both budgets between steps (see
    // `crate::liveness`).
    let budget = Budget::for_schedule(schedule);
    let meter = Meter::new(budget.steps);
    let topology = topology(schedule, seed, sinks).metered(meter.clone());
    let (programs, vu_recorders) = (Arc::new(programs(schedule)), Arc::new(recorders.clone()));
    let vu_meter = meter.clone();
    let mut world = topology.build(move |vu: Vu| {
        let steps = programs
            .get(&(vu.worker.clone(), vu.id))
            .cloned()
            .unwrap_or_default();
        let recorder = vu_recorders[&vu.worker].clone();
        vu_meter.meter(run_vu(vu, steps, recorder))
    });

    let mut exceeded = None;
    let within = |sim: &turmoil::Sim<'_>| {
        let at_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        exceeded = budget.exceeded(at_ms, meter.steps());
        exceeded.is_none()
    };
    let (sim_error, applied) = match world.run_within(&schedule.faults, within) {
        Ok((applied, _)) => (None, applied),
        Err(e) => (Some(e.to_string()), Vec::new()),
    };
    let simulated_ms = u64::try_from(world.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut vu_errors: BTreeMap<String, BTreeMap<u64, u32>> = BTreeMap::new();
    for (key, n) in world.take_results() {
        vu_errors.entry(key.worker).or_default().insert(key.vu, n);
    }
    Simulated {
        recorders,
        // The servers are done with: move their logs out.
        server_logs: schedule
            .server_hosts()
            .into_iter()
            .map(|h| {
                let log = world.server(&h).take_events();
                (h, log)
            })
            .collect(),
        applied,
        sim_error,
        simulated_ms,
        budget,
        steps: meter.steps(),
        exceeded,
        vu_errors,
        metrics: world.metrics(),
        streams_at_end: world.streams_at_end(),
    }
}

/// Each VU's steps, by (worker, VU id from 1).
fn programs(schedule: &Schedule) -> BTreeMap<(String, u64), Vec<Step>> {
    schedule
        .workers
        .iter()
        .flat_map(|w| {
            w.vus
                .iter()
                .enumerate()
                .map(|(i, p)| ((w.name.clone(), i as u64 + 1), p.steps.clone()))
        })
        .collect()
}

/// The world of `schedule`: its server (or balanced instances) and its
/// workers, each manager reporting to its worker's recorder in `sinks`
/// when given.
fn topology(
    schedule: &Schedule,
    seed: u64,
    sinks: Option<&BTreeMap<String, TraceRecorder>>,
) -> Topology {
    let mut topology =
        Topology::new(seed, Duration::from_millis(schedule.duration_ms)).latency(schedule.latency);
    topology = match schedule.balancer {
        Some(b) => topology.balanced(
            SERVER_HOST,
            schedule.server.clone(),
            usize::try_from(b.instances).unwrap_or(usize::MAX).max(1),
            b.policy,
        ),
        None => topology.server(SERVER_HOST, schedule.server.clone()),
    };
    for w in &schedule.workers {
        topology = topology.worker(
            WorkerSpec::new(
                w.name.clone(),
                SERVER_HOST,
                schedule.session.clone(),
                w.vus.len() as u64,
            )
            .http(schedule.http.clone()),
        );
        if let Some(recorder) = sinks.and_then(|r| r.get(&w.name)) {
            topology = topology.event_sink(w.name.clone(), Arc::new(recorder.clone()));
        }
    }
    topology
}

/// Runs `schedule` (of scenario `scenario`, drawn from `seed`) and audits
/// its trace.
pub fn run(schedule: &Schedule, scenario: &str, seed: u64) -> Report {
    // The one wall-clock reading of a run: around it, never inside the
    // simulation, and it lands only in `Report::wall_ms`.
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let mut sim = simulate(schedule, seed, true);
    // The recorders are done with: move their logs out.
    let balanced = schedule.balancer.is_some();
    let (hosts, logs): (Vec<String>, Vec<Vec<Stamped>>) =
        std::mem::take(&mut sim.server_logs).into_iter().unzip();
    let logs = hosts.iter().map(String::as_str).zip(logs);
    let mut trace = Trace::collect_taken(sim.recorders.values(), logs);
    if balanced {
        // The instances mint colliding ids; the balancer qualified them on
        // the way to the clients (`srv-3@server-1`): the trace names them
        // so too.
        trace.qualify_server_sessions();
    }
    trace.push_faults(&sim.applied);
    trace.sort();
    let cfg = AuditConfig::for_session(&schedule.session)
        .with_metrics(sim.metrics.clone())
        .with_streams_at_end(sim.streams_at_end);
    let mut audit = audit(&trace, &cfg);
    // Liveness is the run's own law: checked once per run, first when
    // broken (a run stopped part-way may break others for that reason).
    *audit
        .checks
        .entry(crate::liveness::LAW.to_owned())
        .or_default() += 1;
    if let Some(exceeded) = &sim.exceeded {
        audit.violations.insert(0, exceeded.violation(&trace));
    }

    Report {
        scenario: scenario.to_owned(),
        seed,
        schedule: schedule.clone(),
        metrics: sim.metrics,
        vu_errors: sim.vu_errors,
        trace_hash: trace.hash(),
        checks: audit.checks,
        violations: audit.violations,
        goals: audit.goals,
        sim_error: sim.sim_error,
        simulated_ms: sim.simulated_ms,
        budget: sim.budget,
        steps: sim.steps,
        wall_ms: started.elapsed().as_secs_f64() * 1_000.0,
        trace,
    }
}

/// A run that panicked instead of returning its [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("panicked: {message}")]
pub struct Panicked {
    /// What the panic said (its `&str` or `String` payload).
    pub message: String,
}

/// Runs `f` and catches a panic ([`std::panic::catch_unwind`]): how a sweep
/// runs each seed and `mcp-sim replay` its one, so a seed that panics is a
/// failing seed, reported with its message, never the end of the process.
/// The panic hook is left as it is: the default one still prints where the
/// panic happened on stderr (and a panic of a task inside the simulation,
/// which the simulation turns into its own failure, keeps its message).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| Panicked {
        message: payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-string payload".to_owned()),
    })
}

/// [`run`], with a panic of the run caught ([`catch`]).
pub fn run_caught(schedule: &Schedule, scenario: &str, seed: u64) -> Result<Report, Panicked> {
    catch(|| run(schedule, scenario, seed))
}

/// What [`run_untraced`] leaves: the simulation's outcome, without a trace,
/// audit or hash.
#[derive(Clone, Debug, PartialEq)]
pub struct Untraced {
    /// Each worker's final manager metrics, by host.
    pub metrics: BTreeMap<String, SessionMetrics>,
    /// Each VU's steps that ended in an error, by worker host and VU id.
    pub vu_errors: BTreeMap<String, BTreeMap<u64, u32>>,
    /// How many events the simulated server logged (its own records, kept
    /// as in every run).
    pub server_events: usize,
    /// Why the simulation itself failed, if it did.
    pub sim_error: Option<String>,
    /// Simulated time when the run ended (ms).
    pub simulated_ms: u64,
}

/// Runs `schedule` (drawn from `seed`) as [`run`] does, but with the
/// simulation-testing layer left out: the managers report no events, and
/// no trace is assembled, hashed or audited. The same simulation as
/// [`run`]'s, so it costs what the stack alone costs (our manager,
/// transport and simulated server over turmoil): the sweep bench's `stack`
/// measurement (`MCP_SIM_BENCH_STACK=1`). Not a way to test anything: no
/// law is checked.
pub fn run_untraced(schedule: &Schedule, seed: u64) -> Untraced {
    let sim = simulate(schedule, seed, false);
    Untraced {
        metrics: sim.metrics,
        vu_errors: sim.vu_errors,
        server_events: sim.server_logs.iter().map(|(_, l)| l.len()).sum(),
        sim_error: sim.sim_error,
        simulated_ms: sim.simulated_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::Scenario;

    /// A panic is caught with its message, whatever its payload; a run that
    /// does not panic comes back as it is.
    #[test]
    fn a_panicking_run_is_caught_with_its_message() {
        let literal = catch(|| -> u32 { panic!("boom") });
        assert_eq!(
            literal,
            Err(Panicked {
                message: "boom".into()
            })
        );
        let formatted = catch(|| -> u32 { panic!("boom at seed {}", 3) });
        assert_eq!(
            formatted.unwrap_err().to_string(),
            "panicked: boom at seed 3"
        );
        let opaque = catch(|| -> u32 { std::panic::panic_any(17_u8) });
        assert_eq!(
            opaque.unwrap_err().message,
            "a panic with a non-string payload"
        );
        assert_eq!(catch(|| 5), Ok(5));
    }

    /// [`run_caught`] is [`run`] when nothing panics: the same trace.
    #[test]
    fn a_caught_run_is_the_same_run() {
        let scenario = Scenario::reuse();
        let schedule = Schedule::generate(&scenario, 1);
        let caught = run_caught(&schedule, &scenario.name, 1).expect("no panic");
        let plain = run(&schedule, &scenario.name, 1);
        assert_eq!(caught.trace_hash, plain.trace_hash);
    }
}
