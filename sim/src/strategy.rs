//! Schedules as proptest strategies, and shrinking of a failing schedule to
//! a minimal one.
//!
//! # A seed and a proptest case are the same schedule
//!
//! [`ScheduleStrategy`] draws one `u64` from the proptest runner's RNG and
//! returns [`Schedule::generate`] of its scenario for that seed: everything
//! else comes from the seed's own ChaCha streams (see
//! [`crate::schedule`]). So a proptest case *is* a seed of the scenario,
//! `cargo run -p mcp-sim -- replay <scenario> <seed>` replays it, and a
//! runner made by [`proptest_config`] (proptest's ChaCha RNG) replays a
//! case from the line proptest persists for it (`cc <64 hex digits>`, the
//! 32-byte ChaCha seed of that case's RNG): the case's schedule seed is the
//! first `u64` that RNG yields, which [`persisted_seed`] computes.
//!
//! # Shrinking
//!
//! [`ScheduleTree`] is the strategy's value tree. It shrinks a failing
//! schedule by passes, each a list of candidates smaller than the schedule
//! it starts from:
//!
//! 1. drop fault events (chunks of halving size, then one by one);
//! 2. drop worker hosts, with the link faults aimed at them (at least one
//!    worker stays);
//! 3. drop VUs (every worker keeps at least one);
//! 4. drop steps;
//! 5. turn `slow` and `echo` calls into `ping`;
//! 6. shorten think times, cancel deadlines and slow-tool sleeps (to zero,
//!    else by half);
//! 7. shorten fault spans, bursts, latencies and delays (to their least,
//!    else by half);
//! 8. clear the switched-on fault kinds the plan no longer uses.
//!
//! Standard proptest semantics: [`ValueTree::simplify`] moves to the next
//! smaller candidate (the current one failed, so it becomes the new base);
//! [`ValueTree::complicate`] backs the last candidate out (the test
//! passed) and moves to the next one. After a base has changed, a pass
//! tries the same position again (a removal exposed a new element there);
//! after a candidate passed, the next position. A round in which the base
//! changed is followed by another; a round in which no candidate failed
//! ends shrinking, and the schedule is then minimal: no single fault,
//! worker, VU or step can go, no call can become a `ping` and no number can
//! go to its least or to half without the failure going away. Every
//! accepted candidate is strictly smaller, so this always ends, unless a
//! budget stops it first ([`shrink`]).
//!
//! Every candidate stays runnable ([`validate`]): the session config still
//! validates (it is never changed), there is at least one worker, every
//! worker has at least one VU, worker names stay unique and every link
//! fault targets a worker that is still there. Step and fault variants the
//! passes do not know are left alone.
//!
//! # A failing run, shrunk
//!
//! [`shrink_failure`] shrinks the schedule of a failing [`Report`] while
//! "one of the laws it broke is still broken" ([`broken_laws`]), re-running
//! the simulation on each candidate ([`shrink_report`] takes any predicate
//! on the candidate's report instead), and
//! [`ShrunkFailure::text`] prints the broken law, the seed, the shrunk
//! schedule as JSON, the shrunk run's timeline around the violation, and
//! two replay lines: the seed's (the original run) and
//! `cargo run -p mcp-sim -- replay --schedule FILE` for the shrunk
//! schedule, saved by [`ShrunkFailure::save`] as
//! `target/mcp-sim-failures/<scenario>-<seed>.min.json`
//! ([`failure_dir`]).
//!
//! Nothing here reads the wall clock or draws randomness of its own: the
//! same failing schedule and predicate always shrink to the same schedule.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use proptest::prelude::Rng;
use proptest::strategy::{NewTree, Strategy, ValueTree};
use proptest::test_runner::{
    Config as ProptestConfig, FailurePersistence, FileFailurePersistence, RngAlgorithm, RngSeed,
    TestRng, TestRunner,
};

use crate::faults::FaultEvent;
use crate::run::{run, Report};
use crate::scenarios::Scenario;
use crate::schedule::{Op, Schedule, Step, WorkerPlan};

/// How many runs [`shrink_failure`] spends by default.
pub const DEFAULT_BUDGET: usize = 200;

/// The law name [`broken_laws`] gives a run whose simulation failed (a
/// worker's error, or the simulated duration running out).
pub const SIMULATION_FAILED: &str = "simulation";

/// The schedules of one scenario as a proptest strategy: each case draws a
/// `u64` seed from the runner's RNG and is [`Schedule::generate`] of it.
#[derive(Clone, Debug)]
pub struct ScheduleStrategy {
    scenario: Scenario,
}

impl ScheduleStrategy {
    /// The strategy of `scenario`.
    pub fn new(scenario: Scenario) -> Self {
        ScheduleStrategy { scenario }
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }
}

impl Strategy for ScheduleStrategy {
    type Tree = ScheduleTree;
    type Value = Schedule;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let seed = runner.rng().next_u64();
        Ok(ScheduleTree::new(Schedule::generate(&self.scenario, seed)))
    }
}

/// The seed of proptest's runner unless `PROPTEST_RNG_SEED` is set ("mcp-sim"
/// in ASCII).
pub const DEFAULT_RNG_SEED: u64 = 0x006d_6370_2d73_696d;

/// A proptest config for schedule properties: proptest's ChaCha RNG (so a
/// persisted `cc` line replays its case exactly, see [`persisted_seed`]),
/// failures persisted to and replayed from `regressions` (a file path; its
/// directory is created when a failure is first saved; off with
/// `PROPTEST_DISABLE_FAILURE_PERSISTENCE`), `default_cases`
/// cases unless `PROPTEST_CASES` says otherwise, and shrinking bounded to
/// [`DEFAULT_BUDGET`] runs unless `PROPTEST_MAX_SHRINK_ITERS` says
/// otherwise. The runner's own seed is fixed ([`DEFAULT_RNG_SEED`]), so
/// `cargo test` draws the same cases on every machine and every run, as a
/// deterministic simulation must; `PROPTEST_RNG_SEED=N` explores other
/// cases. Other `PROPTEST_*` variables work as proptest documents them.
pub fn proptest_config(default_cases: u32, regressions: &'static str) -> ProptestConfig {
    // `Config::default` reads the PROPTEST_* environment variables.
    let env = ProptestConfig::default();
    let set = |name: &str| std::env::var_os(name).is_some();
    ProptestConfig {
        cases: if set("PROPTEST_CASES") {
            env.cases
        } else {
            default_cases
        },
        max_shrink_iters: if set("PROPTEST_MAX_SHRINK_ITERS") {
            env.max_shrink_iters
        } else {
            u32::try_from(DEFAULT_BUDGET).unwrap_or(u32::MAX)
        },
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: if set("PROPTEST_RNG_SEED") {
            env.rng_seed
        } else {
            RngSeed::Fixed(DEFAULT_RNG_SEED)
        },
        // `PROPTEST_DISABLE_FAILURE_PERSISTENCE` leaves it off.
        failure_persistence: env.failure_persistence.as_ref().map(|_| {
            Box::new(FileFailurePersistence::Direct(regressions)) as Box<dyn FailurePersistence>
        }),
        ..env
    }
}

/// The schedule seed of a line of a proptest regression file (`cc <64 hex
/// digits>`, anything after `#` ignored) for a [`ScheduleStrategy`]: the
/// first `u64` of proptest's ChaCha RNG seeded with those 32 bytes. `None`
/// if the line is not of that shape.
pub fn persisted_seed(line: &str) -> Option<u64> {
    let content = line.split('#').next().unwrap_or("");
    let mut fields = content.split_whitespace();
    let (Some("cc"), Some(hex), None) = (fields.next(), fields.next(), fields.next()) else {
        return None;
    };
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes).next_u64())
}

/// Why a schedule cannot be run, or `Ok`: the session config validates,
/// there is at least one worker, worker names are unique and non-empty,
/// every worker has at least one VU, and every link fault targets one of
/// the workers.
pub fn validate(schedule: &Schedule) -> Result<(), String> {
    schedule
        .session
        .validate()
        .map_err(|e| format!("session config: {e}"))?;
    if schedule.workers.is_empty() {
        return Err("no workers".into());
    }
    let mut names = BTreeSet::new();
    for w in &schedule.workers {
        if w.name.is_empty() || !names.insert(w.name.as_str()) {
            return Err(format!("worker name {:?} empty or repeated", w.name));
        }
        if w.vus.is_empty() {
            return Err(format!("worker {} has no VUs", w.name));
        }
    }
    for (i, s) in schedule.faults.events.iter().enumerate() {
        if let Some(worker) = s.event.worker() {
            if !names.contains(worker) {
                return Err(format!("fault #{i} targets unknown worker {worker}"));
            }
        }
    }
    Ok(())
}

/// How big a schedule is: what shrinking makes smaller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScheduleSize {
    /// Worker hosts.
    pub workers: usize,
    /// VUs, over all workers.
    pub vus: usize,
    /// Steps, over all VUs.
    pub steps: usize,
    /// Fault events.
    pub faults: usize,
}

impl ScheduleSize {
    /// The size of `schedule`.
    pub fn of(schedule: &Schedule) -> Self {
        ScheduleSize {
            workers: schedule.workers.len(),
            vus: schedule.vu_count(),
            steps: schedule
                .workers
                .iter()
                .flat_map(|w| &w.vus)
                .map(|p| p.steps.len())
                .sum(),
            faults: schedule.faults.len(),
        }
    }

    /// Whether every count is at most `other`'s and one is less.
    pub fn is_smaller_than(&self, other: &ScheduleSize) -> bool {
        self.workers <= other.workers
            && self.vus <= other.vus
            && self.steps <= other.steps
            && self.faults <= other.faults
            && self != other
    }
}

impl fmt::Display for ScheduleSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "{}, {}, {}, {}",
            plural(self.workers, "worker", "workers"),
            plural(self.vus, "VU", "VUs"),
            plural(self.steps, "step", "steps"),
            plural(self.faults, "fault", "faults"),
        )
    }
}

/// The kinds of reduction, in the order a round tries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    DropFaults,
    DropWorkers,
    DropVus,
    DropSteps,
    SimplifyOps,
    ShortenStepTimes,
    ShrinkFaults,
    ClearFaultKinds,
}

impl Pass {
    const ALL: [Pass; 8] = [
        Pass::DropFaults,
        Pass::DropWorkers,
        Pass::DropVus,
        Pass::DropSteps,
        Pass::SimplifyOps,
        Pass::ShortenStepTimes,
        Pass::ShrinkFaults,
        Pass::ClearFaultKinds,
    ];
}

/// Where a round is: the pass, and the position in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    pass: usize,
    index: usize,
}

impl Cursor {
    const START: Cursor = Cursor { pass: 0, index: 0 };

    fn next_index(self) -> Cursor {
        Cursor {
            index: self.index + 1,
            ..self
        }
    }

    fn next_pass(self) -> Cursor {
        Cursor {
            pass: self.pass + 1,
            index: 0,
        }
    }
}

/// What a pass offers at a position.
enum Candidate {
    /// A smaller schedule to try.
    Try(Box<Schedule>),
    /// Nothing here (no change, or it would not be runnable).
    Skip,
    /// The pass is over.
    End,
}

/// The `index`-th chunk of a list of `len` elements: first the whole list,
/// then halves, quarters, ... down to single elements.
fn chunk(len: usize, mut index: usize) -> Option<Range<usize>> {
    let mut size = len;
    while size > 0 {
        let count = len.div_ceil(size);
        if index < count {
            let start = index * size;
            return Some(start..(start + size).min(len));
        }
        index -= count;
        size /= 2;
    }
    None
}

/// A number to shrink: where it is and its least value.
enum Num<'a> {
    U64(&'a mut u64, u64),
    U32(&'a mut u32, u32),
}

impl Num<'_> {
    /// Sets it to its least value (`to_least`) or halves it (not below the
    /// least); whether it changed.
    fn shrink(self, to_least: bool) -> bool {
        fn step<T: Copy + Ord + std::ops::Div<Output = T> + From<u8>>(
            v: &mut T,
            least: T,
            to_least: bool,
        ) -> bool {
            let new = if to_least {
                least
            } else {
                (*v / T::from(2)).max(least)
            };
            if new < *v {
                *v = new;
                true
            } else {
                false
            }
        }
        match self {
            Num::U64(v, least) => step(v, least, to_least),
            Num::U32(v, least) => step(v, least, to_least),
        }
    }
}

/// How many number slots a step has: think time, cancel deadline, slow
/// sleep.
const STEP_NUMS: usize = 3;

/// The step's `slot`-th number, if it has one there.
fn step_num(step: &mut Step, slot: usize) -> Option<Num<'_>> {
    match (step, slot) {
        (Step::Call { think_ms, .. }, 0) | (Step::CancelAcquire { think_ms, .. }, 0) => {
            Some(Num::U64(think_ms, 0))
        }
        (Step::CancelAcquire { after_ms, .. }, 1) => Some(Num::U64(after_ms, 0)),
        (
            Step::Call {
                op: Op::Slow { ms },
                ..
            },
            2,
        ) => Some(Num::U64(ms, 0)),
        _ => None,
    }
}

/// How many number slots a fault event has at most.
const FAULT_NUMS: usize = 3;

/// The fault event's `slot`-th number, with its least value, if it has one
/// there. Spans, downtimes and bursts keep at least 1.
fn fault_num(event: &mut FaultEvent, slot: usize) -> Option<Num<'_>> {
    match (event, slot) {
        (FaultEvent::Crash { down_ms, .. }, 0) => Some(Num::U64(down_ms, 1)),
        (FaultEvent::Partition { span_ms, .. }, 0)
        | (FaultEvent::Hold { span_ms, .. }, 0)
        | (FaultEvent::LatencyRange { span_ms, .. }, 0)
        | (FaultEvent::LatencySpike { span_ms, .. }, 0)
        | (FaultEvent::VersionMismatch { span_ms, .. }, 0)
        | (FaultEvent::MissingSessionId { span_ms, .. }, 0)
        | (FaultEvent::InvalidSessionId { span_ms, .. }, 0)
        | (FaultEvent::DiscoverChange { span_ms, .. }, 0)
        | (FaultEvent::StickinessSwitch { span_ms, .. }, 0) => Some(Num::U64(span_ms, 1)),
        (FaultEvent::DiscoverChange { ttl_ms, .. }, 1) => Some(Num::U64(ttl_ms, 0)),
        (FaultEvent::LatencyRange { min_ms, .. }, 1) => Some(Num::U64(min_ms, 0)),
        (FaultEvent::LatencyRange { min_ms, max_ms, .. }, 2) => {
            let least = min_ms.saturating_add(1);
            Some(Num::U64(max_ms, least))
        }
        (FaultEvent::LatencySpike { latency_ms, .. }, 1) => Some(Num::U64(latency_ms, 1)),
        (FaultEvent::EarlyExpiry { pick, .. }, 0) => Some(Num::U32(pick, 0)),
        (FaultEvent::ServerErrors { count, .. }, 0)
        | (FaultEvent::MalformedJson { count, .. }, 0)
        | (FaultEvent::TruncatedSse { count, .. }, 0)
        | (FaultEvent::ConnectionReset { count, .. }, 0)
        | (FaultEvent::SlowInitialize { count, .. }, 0)
        | (FaultEvent::HeaderStrip { count, .. }, 0)
        | (FaultEvent::ModernStreamCut { count, .. }, 0)
        | (FaultEvent::InputRounds { count, .. }, 0) => Some(Num::U32(count, 1)),
        (FaultEvent::InputRounds { rounds, .. }, 1) => Some(Num::U32(rounds, 1)),
        (FaultEvent::SlowInitialize { delay_ms, .. }, 1) => Some(Num::U64(delay_ms, 0)),
        _ => None,
    }
}

/// Where each step is: (worker, VU, step) indices, in order.
fn step_positions(s: &Schedule) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for (w, worker) in s.workers.iter().enumerate() {
        for (v, program) in worker.vus.iter().enumerate() {
            out.extend((0..program.steps.len()).map(|i| (w, v, i)));
        }
    }
    out
}

/// A candidate made by changing one step (the `pos`-th of all) of `base`
/// with `change`, which says whether it changed anything.
fn change_step(base: &Schedule, pos: usize, change: impl FnOnce(&mut Step) -> bool) -> Candidate {
    let Some(&(w, v, i)) = step_positions(base).get(pos) else {
        return Candidate::End;
    };
    let mut s = base.clone();
    if change(&mut s.workers[w].vus[v].steps[i]) {
        Candidate::Try(Box::new(s))
    } else {
        Candidate::Skip
    }
}

/// What `pass` offers at `index`, from `base`: each pass is a function of
/// its own below, which says when its candidates run out.
fn candidate(base: &Schedule, pass: Pass, index: usize) -> Candidate {
    match pass {
        Pass::DropFaults => drop_faults(base, index),
        Pass::DropWorkers => drop_workers(base, index),
        Pass::DropVus => drop_vus(base, index),
        Pass::DropSteps => drop_steps(base, index),
        Pass::SimplifyOps => change_step(base, index, |step| match step {
            Step::Call { op, .. } if matches!(op, Op::Slow { .. } | Op::Echo) => {
                *op = Op::Ping;
                true
            }
            _ => false,
        }),
        Pass::ShortenStepTimes => shorten_step_time(base, index),
        Pass::ShrinkFaults => shrink_fault(base, index),
        Pass::ClearFaultKinds => clear_fault_kinds(base, index),
    }
}

/// Without the `index`-th chunk of the fault events.
fn drop_faults(base: &Schedule, index: usize) -> Candidate {
    let Some(range) = chunk(base.faults.len(), index) else {
        return Candidate::End;
    };
    let mut s = base.clone();
    s.faults.events.drain(range);
    Candidate::Try(Box::new(s))
}

/// Without the `index`-th chunk of the workers (never all of them), and
/// without the fault events on their links.
fn drop_workers(base: &Schedule, index: usize) -> Candidate {
    let Some(range) = chunk(base.workers.len(), index) else {
        return Candidate::End;
    };
    if range.len() == base.workers.len() {
        return Candidate::Skip;
    }
    let mut s = base.clone();
    let gone: BTreeSet<String> = s.workers.drain(range).map(|w| w.name).collect();
    s.faults
        .events
        .retain(|e| e.event.worker().is_none_or(|w| !gone.contains(w)));
    Candidate::Try(Box::new(s))
}

/// Without the `index`-th chunk of all VUs (counted across the workers),
/// unless that leaves a worker without one.
fn drop_vus(base: &Schedule, index: usize) -> Candidate {
    let positions: Vec<(usize, usize)> = base
        .workers
        .iter()
        .enumerate()
        .flat_map(|(w, worker)| (0..worker.vus.len()).map(move |v| (w, v)))
        .collect();
    let Some(range) = chunk(positions.len(), index) else {
        return Candidate::End;
    };
    let drop: BTreeSet<(usize, usize)> = positions[range].iter().copied().collect();
    let workers: Vec<WorkerPlan> = base
        .workers
        .iter()
        .enumerate()
        .map(|(w, worker)| WorkerPlan {
            name: worker.name.clone(),
            vus: worker
                .vus
                .iter()
                .enumerate()
                .filter(|(v, _)| !drop.contains(&(w, *v)))
                .map(|(_, p)| p.clone())
                .collect(),
        })
        .collect();
    if workers.iter().any(|w| w.vus.is_empty()) {
        return Candidate::Skip;
    }
    Candidate::Try(Box::new(Schedule {
        workers,
        ..base.clone()
    }))
}

/// Without the `index`-th chunk of all steps (counted across the VUs).
fn drop_steps(base: &Schedule, index: usize) -> Candidate {
    let positions = step_positions(base);
    let Some(range) = chunk(positions.len(), index) else {
        return Candidate::End;
    };
    let mut s = base.clone();
    // Remove from the back so earlier positions stay put.
    for &(w, v, i) in positions[range].iter().rev() {
        s.workers[w].vus[v].steps.remove(i);
    }
    Candidate::Try(Box::new(s))
}

/// One number of one step shrunk: `index` counts through every step's
/// [`STEP_NUMS`] slots, each tried first at its least value, then halved.
fn shorten_step_time(base: &Schedule, index: usize) -> Candidate {
    let (pos, slot, to_least) = (
        index / (2 * STEP_NUMS),
        index % (2 * STEP_NUMS) / 2,
        index % 2 == 0,
    );
    change_step(base, pos, |step| {
        step_num(step, slot).is_some_and(|n| n.shrink(to_least))
    })
}

/// One number of one fault event shrunk, counted as in
/// [`shorten_step_time`] over each event's [`FAULT_NUMS`] slots.
fn shrink_fault(base: &Schedule, index: usize) -> Candidate {
    let (pos, slot, to_least) = (
        index / (2 * FAULT_NUMS),
        index % (2 * FAULT_NUMS) / 2,
        index % 2 == 0,
    );
    if pos >= base.faults.len() {
        return Candidate::End;
    }
    let mut s = base.clone();
    let changed =
        fault_num(&mut s.faults.events[pos].event, slot).is_some_and(|n| n.shrink(to_least));
    if changed {
        Candidate::Try(Box::new(s))
    } else {
        Candidate::Skip
    }
}

/// Only the fault kinds the events use switched on (one candidate).
fn clear_fault_kinds(base: &Schedule, index: usize) -> Candidate {
    if index > 0 {
        return Candidate::End;
    }
    let used = base.faults.kinds();
    let mut s = base.clone();
    s.fault_kinds.retain(|k| used.contains(k));
    if s.fault_kinds.len() < base.fault_kinds.len() {
        Candidate::Try(Box::new(s))
    } else {
        Candidate::Skip
    }
}

/// The value tree of [`ScheduleStrategy`]: a failing schedule and the
/// smaller candidates to try (see the module docs).
#[derive(Clone, Debug)]
pub struct ScheduleTree {
    /// The last schedule known to fail (at first, the generated one).
    base: Schedule,
    /// The value under test: `base`, or a candidate made from it.
    current: Schedule,
    /// The position of the candidate under test, if `current` is one.
    pending: Option<Cursor>,
    /// Where the next search for a candidate starts.
    cursor: Cursor,
    /// Whether this round has moved the base.
    progressed: bool,
}

impl ScheduleTree {
    /// A tree starting at `schedule`.
    pub fn new(schedule: Schedule) -> Self {
        ScheduleTree {
            base: schedule.clone(),
            current: schedule,
            pending: None,
            cursor: Cursor::START,
            progressed: false,
        }
    }

    /// The last schedule known to fail: the shrunk schedule once shrinking
    /// is over.
    pub fn minimal(&self) -> &Schedule {
        &self.base
    }

    /// Moves `current` to the next candidate from the cursor on; `false`
    /// (and `current` back at the base) when no round has one left.
    fn advance(&mut self) -> bool {
        loop {
            let Some(&pass) = Pass::ALL.get(self.cursor.pass) else {
                if !self.progressed {
                    self.current = self.base.clone();
                    return false;
                }
                self.progressed = false;
                self.cursor = Cursor::START;
                continue;
            };
            match candidate(&self.base, pass, self.cursor.index) {
                Candidate::Try(s) if *s != self.base && validate(&s).is_ok() => {
                    self.current = *s;
                    self.pending = Some(self.cursor);
                    return true;
                }
                Candidate::Try(_) | Candidate::Skip => self.cursor = self.cursor.next_index(),
                Candidate::End => self.cursor = self.cursor.next_pass(),
            }
        }
    }
}

impl ValueTree for ScheduleTree {
    type Value = Schedule;

    fn current(&self) -> Schedule {
        self.current.clone()
    }

    /// The current value failed: it becomes the base, and the next smaller
    /// candidate the current value.
    fn simplify(&mut self) -> bool {
        if let Some(at) = self.pending.take() {
            self.base = self.current.clone();
            self.progressed = true;
            // The same position again: a removal exposed a new element
            // there, a halving may halve again.
            self.cursor = at;
        }
        self.advance()
    }

    /// The current candidate passed: back to the base, and on to the next
    /// candidate.
    fn complicate(&mut self) -> bool {
        let Some(at) = self.pending.take() else {
            return false;
        };
        self.current = self.base.clone();
        self.cursor = at.next_index();
        self.advance()
    }
}

/// What [`shrink_counted`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk {
    /// The smallest schedule found that still fails.
    pub schedule: Schedule,
    /// How many candidates were run.
    pub runs: usize,
    /// How many of them failed (each became the new base).
    pub accepted: usize,
    /// Whether the budget ran out before the schedule was minimal.
    pub exhausted: bool,
}

/// Shrinks `schedule`, which fails, to a minimal schedule that still
/// `fails`, running at most `budget` candidates (see the module docs). The
/// result is `schedule` itself if no candidate fails.
pub fn shrink(
    schedule: &Schedule,
    fails: impl FnMut(&Schedule) -> bool,
    budget: usize,
) -> Schedule {
    shrink_counted(schedule, fails, budget).schedule
}

/// [`shrink`], with how many runs it took.
pub fn shrink_counted(
    schedule: &Schedule,
    mut fails: impl FnMut(&Schedule) -> bool,
    budget: usize,
) -> Shrunk {
    let mut tree = ScheduleTree::new(schedule.clone());
    let (mut runs, mut accepted) = (0, 0);
    let mut more = tree.simplify();
    while more {
        if runs >= budget {
            break;
        }
        runs += 1;
        more = if fails(&tree.current) {
            accepted += 1;
            tree.simplify()
        } else {
            tree.complicate()
        };
    }
    Shrunk {
        schedule: tree.base,
        runs,
        accepted,
        exhausted: more,
    }
}

/// The laws `report` broke, with [`SIMULATION_FAILED`] if its simulation
/// failed: empty for a clean run.
pub fn broken_laws(report: &Report) -> BTreeSet<String> {
    let mut laws: BTreeSet<String> = report.violations.iter().map(|v| v.law.clone()).collect();
    if report.sim_error.is_some() {
        laws.insert(SIMULATION_FAILED.to_owned());
    }
    laws
}

/// A failing run and its schedule shrunk.
#[derive(Clone, Debug)]
pub struct ShrunkFailure {
    /// What kept failing: the laws the original run broke (see
    /// [`broken_laws`]), or the caller's description.
    pub failure: String,
    /// The size of the original schedule.
    pub original: ScheduleSize,
    /// The run of the shrunk schedule (the original run if no smaller
    /// schedule failed).
    pub report: Report,
    /// How many runs shrinking took.
    pub runs: usize,
    /// Whether the budget ran out before the schedule was minimal.
    pub exhausted: bool,
}

/// Shrinks the schedule of the failing `report` while the run still breaks
/// one of the laws it broke (or still fails to finish, if it did), running
/// at most `budget` candidates, each with the report's scenario name and
/// seed. For a clean report nothing is run and the report is kept.
pub fn shrink_failure(report: &Report, budget: usize) -> ShrunkFailure {
    let laws = broken_laws(report);
    let failure = laws.iter().cloned().collect::<Vec<_>>().join(", ");
    let budget = if laws.is_empty() { 0 } else { budget };
    shrink_report(
        report,
        &failure,
        |r| broken_laws(r).iter().any(|l| laws.contains(l)),
        budget,
    )
}

/// Shrinks the schedule of `report`, which `still_fails`, to a minimal one
/// whose run (with the report's scenario name and seed) still fails, in at
/// most `budget` runs; `failure` says what the predicate looks for.
pub fn shrink_report(
    report: &Report,
    failure: &str,
    mut still_fails: impl FnMut(&Report) -> bool,
    budget: usize,
) -> ShrunkFailure {
    let mut last: Option<Report> = None;
    let shrunk = shrink_counted(
        &report.schedule,
        |candidate| {
            let r = run(candidate, &report.scenario, report.seed);
            let fails = still_fails(&r);
            if fails {
                last = Some(r);
            }
            fails
        },
        budget,
    );
    // The base only moves to a candidate that failed: the last one that did.
    let shrunk_report = match last {
        Some(r) if r.schedule == shrunk.schedule => r,
        _ => report.clone(),
    };
    ShrunkFailure {
        failure: failure.to_owned(),
        original: ScheduleSize::of(&report.schedule),
        report: shrunk_report,
        runs: shrunk.runs,
        exhausted: shrunk.exhausted,
    }
}

impl ShrunkFailure {
    /// The shrunk schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.report.schedule
    }

    /// The file name the shrunk schedule is saved under:
    /// `<scenario>-<seed>.min.json` (characters of the scenario name other
    /// than letters, digits, `-` and `_` become `_`).
    pub fn file_name(&self) -> String {
        min_file_name(&self.report.scenario, self.report.seed)
    }

    /// Saves the shrunk schedule as pretty JSON in `dir` (created if
    /// missing) under [`ShrunkFailure::file_name`]; returns its path.
    pub fn save(&self, dir: &Path) -> std::io::Result<PathBuf> {
        save_schedule(self.schedule(), dir, &self.file_name())
    }

    /// The failure for a human: what failed and the seed, how much
    /// smaller the schedule got, then the shrunk run's violations, each
    /// with the timeline around it, its schedule as JSON, and two replay
    /// lines: the seed's (the original, unshrunk run) and, if `saved` is
    /// where the shrunk schedule was saved, `replay --schedule` of it.
    pub fn text(&self, saved: Option<&Path>) -> String {
        let r = &self.report;
        let mut out = format!(
            "failure: {} (scenario {} seed {})\nshrunk from {} to {} in {} runs{}\n",
            self.failure,
            r.scenario,
            r.seed,
            self.original,
            ScheduleSize::of(&r.schedule),
            self.runs,
            if self.exhausted {
                " (budget spent: may not be minimal)"
            } else {
                ""
            },
        );
        let mut replay = r.replay_line();
        if let Some(path) = saved {
            replay.push_str("\nreplay shrunk: ");
            replay.push_str(&schedule_replay_line(path));
        }
        let text = r.failure_text_with_replay(&replay);
        if text.is_empty() {
            // A clean run that a caller's predicate calls failing.
            out.push_str(&format!(
                "schedule:\n{}\nreplay: {replay}\n",
                r.schedule.to_json()
            ));
        } else {
            out.push_str(&text);
        }
        out
    }
}

/// `<scenario>-<seed>.min.json`, the scenario name made safe for a file
/// name.
pub fn min_file_name(scenario: &str, seed: u64) -> String {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{seed}.min.json")
}

/// Saves `schedule` as pretty JSON in `dir` (created if missing) as
/// `file_name`; returns its path.
pub fn save_schedule(schedule: &Schedule, dir: &Path, file_name: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name);
    std::fs::write(&path, schedule.to_json() + "\n")?;
    Ok(path)
}

/// Where failing runs' shrunk schedules go: `$MCP_SIM_FAILURE_DIR` if set,
/// else `mcp-sim-failures` in `$CARGO_TARGET_DIR` if set, else in the
/// workspace's `target` directory.
pub fn failure_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MCP_SIM_FAILURE_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            crate_dir.parent().unwrap_or(crate_dir).join("target")
        });
    target.join("mcp-sim-failures")
}

/// The command line that replays the schedule saved at `path`.
pub fn schedule_replay_line(path: &Path) -> String {
    format!(
        "cargo run -p mcp-sim -- replay --schedule {}",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use proptest::test_runner::{RngSeed, TestError};

    use super::*;
    use crate::faults::FaultKind;

    /// The first seed of `scenario` whose schedule `wanted`.
    fn first_seed(scenario: &Scenario, wanted: impl Fn(&Schedule) -> bool) -> Schedule {
        (0..500)
            .map(|seed| Schedule::generate(scenario, seed))
            .find(|s| wanted(s))
            .expect("a seed with the wanted shape")
    }

    fn steps(s: &Schedule) -> impl Iterator<Item = &Step> {
        s.workers.iter().flat_map(|w| &w.vus).flat_map(|p| &p.steps)
    }

    fn slow_at_least(s: &Schedule, ms: u64) -> bool {
        steps(s).any(|step| matches!(step, Step::Call { op: Op::Slow { ms: m }, .. } if *m >= ms))
    }

    /// Wraps a predicate: every candidate must be runnable and round-trip
    /// through serde; counts the calls.
    fn checked<'a>(
        calls: &'a mut usize,
        mut fails: impl FnMut(&Schedule) -> bool + 'a,
    ) -> impl FnMut(&Schedule) -> bool + 'a {
        move |s| {
            *calls += 1;
            validate(s).unwrap_or_else(|e| panic!("candidate not runnable: {e}"));
            let back: Schedule = serde_json::from_str(&s.to_json()).expect("valid JSON");
            assert_eq!(&back, s, "serde round trip");
            fails(s)
        }
    }

    /// Shrinking `min` again finds nothing smaller: no single removal or
    /// reduction keeps it failing.
    fn assert_minimal(min: &Schedule, fails: impl FnMut(&Schedule) -> bool) {
        let again = shrink_counted(min, fails, usize::MAX);
        assert_eq!(again.accepted, 0, "{}", again.schedule.to_json());
        assert_eq!(&again.schedule, min);
    }

    #[test]
    fn chunks_halve_down_to_single_elements() {
        let all: Vec<_> = (0..).map_while(|i| chunk(5, i)).collect();
        assert_eq!(all, [0..5, 0..2, 2..4, 4..5, 0..1, 1..2, 2..3, 3..4, 4..5]);
        assert_eq!(chunk(0, 0), None);
        assert_eq!(chunk(1, 0), Some(0..1));
        assert_eq!(chunk(1, 1), None);
    }

    #[test]
    fn a_slow_step_shrinks_to_one_worker_one_vu_one_step() {
        let scenario = Scenario::pool_timeout();
        let original = first_seed(&scenario, |s| {
            slow_at_least(s, 200) && !s.faults.is_empty() && s.vu_count() > 3
        });
        let mut calls = 0;
        let shrunk = shrink_counted(
            &original,
            checked(&mut calls, |s| slow_at_least(s, 200)),
            10_000,
        );
        let min = &shrunk.schedule;
        assert!(!shrunk.exhausted);
        assert_eq!(calls, shrunk.runs);
        assert_eq!(
            ScheduleSize::of(min),
            ScheduleSize {
                workers: 1,
                vus: 1,
                steps: 1,
                faults: 0
            },
            "{}",
            min.to_json()
        );
        let Step::Call {
            op: Op::Slow { ms },
            think_ms: 0,
        } = min.workers[0].vus[0].steps[0]
        else {
            panic!(
                "expected one slow call without think time: {}",
                min.to_json()
            );
        };
        // Halved as far as it goes and still at least 200.
        assert!((200..400).contains(&ms), "{ms}");
        assert!(min.fault_kinds.is_empty(), "{:?}", min.fault_kinds);
        assert_eq!(min.session, original.session);
        assert_minimal(min, |s| slow_at_least(s, 200));
    }

    #[test]
    fn a_fault_kind_shrinks_to_that_one_fault() {
        let scenario = Scenario::server_crash();
        let original = first_seed(&scenario, |s| {
            s.faults.kinds().contains(&FaultKind::Crash) && s.faults.len() >= 3
        });
        let has_crash = |s: &Schedule| s.faults.kinds().contains(&FaultKind::Crash);
        let mut calls = 0;
        let min = shrink(&original, checked(&mut calls, has_crash), 10_000);
        assert_eq!(
            ScheduleSize::of(&min),
            ScheduleSize {
                workers: 1,
                vus: 1,
                steps: 0,
                faults: 1
            },
            "{}",
            min.to_json()
        );
        assert!(
            matches!(
                min.faults.events[0].event,
                FaultEvent::Crash { down_ms: 1, .. }
            ),
            "{}",
            min.to_json()
        );
        assert_eq!(min.fault_kinds, [FaultKind::Crash].into());
        assert_minimal(&min, has_crash);
    }

    #[test]
    fn dropping_a_worker_drops_its_link_faults_and_keeps_names() {
        let scenario = Scenario::partition();
        let on_worker_2 = |s: &Schedule| {
            s.faults
                .events
                .iter()
                .any(|e| e.event.worker() == Some("worker-2"))
        };
        let original = first_seed(&scenario, |s| {
            on_worker_2(s)
                && s.faults
                    .events
                    .iter()
                    .any(|e| e.event.worker() == Some("worker-1"))
        });
        let mut calls = 0;
        let min = shrink(&original, checked(&mut calls, on_worker_2), 10_000);
        assert_eq!(min.workers.len(), 1, "{}", min.to_json());
        assert_eq!(min.workers[0].name, "worker-2");
        assert_eq!(min.workers[0].vus.len(), 1);
        assert_eq!(min.faults.len(), 1);
        assert_eq!(min.faults.events[0].event.worker(), Some("worker-2"));
        assert_eq!(min.faults.events[0].event.span_ms(), Some(1));
        assert_minimal(&min, on_worker_2);
    }

    #[test]
    fn every_candidate_of_every_scenario_is_runnable() {
        // A predicate that accepts about one candidate in three, by a hash
        // of its JSON: shrinking wanders through every pass.
        for scenario in Scenario::all() {
            let original = Schedule::generate(&scenario, 3);
            let mut calls = 0;
            let fails = |s: &Schedule| {
                let h = s
                    .to_json()
                    .bytes()
                    .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                h % 3 == 0
            };
            let shrunk = shrink_counted(&original, checked(&mut calls, fails), 400);
            assert!(shrunk.runs > 0, "{}", scenario.name);
            validate(&shrunk.schedule).expect("runnable");
        }
    }

    #[test]
    fn shrinking_is_deterministic_and_keeps_a_passing_schedule() {
        let original = Schedule::generate(&Scenario::pool(), 1);
        let pred = |s: &Schedule| s.vu_count() >= 2 && !s.faults.is_empty();
        let (a, b) = (
            shrink(&original, pred, 1_000),
            shrink(&original, pred, 1_000),
        );
        assert_eq!(a, b);
        assert_eq!(shrink(&original, |_| false, 100), original);
        // A budget of zero runs nothing.
        let zero = shrink_counted(&original, |_| true, 0);
        assert_eq!((zero.runs, &zero.schedule), (0, &original));
        assert!(zero.exhausted);
    }

    #[test]
    fn the_strategy_draws_the_seeds_schedule_and_proptest_shrinks_it() {
        let scenario = Scenario::pool_timeout();
        let strategy = ScheduleStrategy::new(scenario.clone());
        let mut runner = TestRunner::new(ProptestConfig {
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(1),
            ..proptest_config(32, "unused")
        });
        for _ in 0..5 {
            let tree = strategy.new_tree(&mut runner).expect("a tree");
            let s = tree.current();
            assert_eq!(s, Schedule::generate(&scenario, s.seed));
        }
        let result = runner.run(&strategy, |s| {
            proptest::prop_assert!(!slow_at_least(&s, 300));
            Ok(())
        });
        let Err(TestError::Fail(_, min)) = result else {
            panic!("a slow step of 300 ms or more in 32 cases: {result:?}");
        };
        assert_eq!(ScheduleSize::of(&min).vus, 1);
        assert_eq!(ScheduleSize::of(&min).steps, 1);
        assert_eq!(ScheduleSize::of(&min).faults, 0);
    }

    #[test]
    fn a_persisted_line_gives_the_cases_seed() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let line = format!("cc {hex} # shrinks to ...");
        let strategy = ScheduleStrategy::new(Scenario::reuse());
        let mut runner = TestRunner::new_with_rng(
            ProptestConfig::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
        );
        let case = strategy.new_tree(&mut runner).expect("a tree").current();
        assert_eq!(persisted_seed(&line), Some(case.seed));
        assert_eq!(persisted_seed("cc 00"), None);
        assert_eq!(persisted_seed("xs 1 2 3 4"), None);
        assert_eq!(persisted_seed(&format!("cc {hex} extra")), None);
        assert_eq!(persisted_seed("# cc only a comment"), None);
    }

    #[test]
    fn sizes_compare_and_print() {
        let one = ScheduleSize {
            workers: 1,
            vus: 1,
            steps: 1,
            faults: 0,
        };
        let more = ScheduleSize { steps: 4, ..one };
        assert!(one.is_smaller_than(&more));
        assert!(!more.is_smaller_than(&one));
        assert!(!one.is_smaller_than(&one));
        assert_eq!(one.to_string(), "1 worker, 1 VU, 1 step, 0 faults");
        assert_eq!(
            min_file_name("eviction-race", 7),
            "eviction-race-7.min.json"
        );
        assert_eq!(
            min_file_name("schedule a/b.json", 1),
            "schedule_a_b_json-1.min.json"
        );
    }
}
