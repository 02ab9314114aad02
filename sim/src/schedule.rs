//! A [`Schedule`]: everything one run does, as a plain serde value drawn
//! from a [`Scenario`] and one `u64` seed.
//!
//! # Streams
//!
//! Every choice comes from the seed's `ChaCha8Rng`, one stream per purpose:
//! [`WORKLOAD_STREAM`] (config variations, VU counts and programs),
//! [`SWARM_STREAM`] (which of the scenario's fault kinds this seed switches
//! on), [`SERVER_STREAM`] (the server's knobs), [`KNOBS_STREAM`] (the
//! knobs drawn since every knob of the world is drawn: the manager's
//! limits and requested revision, the transport's timeouts, the server's
//! notifications, priming events, session limits and 400s) and the fault
//! plan's own [`crate::faults::FAULT_STREAM`]. Switching a fault kind on or
//! off, or adding one to a scenario, changes the plan and nothing that was
//! drawn for the workload or the server; a knob added to the knobs stream
//! (after its last draw) shifts none of the others.
//!
//! # Every knob is drawn
//!
//! Each field of the manager's, the transport's and the server's config
//! either has a range the seeds draw from (where the scenario allows) or a
//! reason it is not drawn; `sim/tests/knobs.rs` lists them all with the
//! share of the default test seeds that set each to something other than
//! its default, and fails if a drawn knob is never set.
//!
//! # Swarm testing
//!
//! Each seed switches on a random non-empty subset of the scenario's fault
//! kinds (each kind with probability one half), so some runs see one kind
//! of failure often instead of every kind rarely.
//!
//! TODO: proptest strategies over `Schedule` (from the same streams) and
//! shrinking of a failing schedule to a minimal one; the regression seed
//! file.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use mcp_session::transport::HttpConfig;
use mcp_session::{
    Era, Mode, SessionConfig, VersionPolicy, DEFAULT_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS,
};

use crate::balancer::Policy;
use crate::faults::{
    FaultKind, FaultPlan, FaultSpace, PlanError, MAX_FAULT_LATENCY_MS, MAX_FAULT_MS,
};
use crate::scenarios::Scenario;
use crate::server::{ServerConfig, ServerEra};
use crate::topology::Latency;

/// The workload's ChaCha stream ("workload" in ASCII).
pub const WORKLOAD_STREAM: u64 = 0x776f_726b_6c6f_6164;
/// The swarm subset's ChaCha stream ("swarm" in ASCII).
pub const SWARM_STREAM: u64 = 0x73_7761_726d;
/// The server knobs' ChaCha stream ("server" in ASCII).
pub const SERVER_STREAM: u64 = 0x7365_7276_6572;
/// The later knobs' ChaCha stream ("knobs" in ASCII): the manager's
/// limits and requested revision, the transport's settings, the server's
/// notifications, priming, session limits and 400s. New knobs are drawn
/// after the last one here, so that no earlier draw moves.
pub const KNOBS_STREAM: u64 = 0x6b_6e6f_6273;

/// The server knobs' bounds as drawn (well within [`MAX_NOTIFICATIONS`]):
/// at most this many notifications before a response.
pub const DRAWN_NOTIFICATIONS: u32 = 4;

/// The server host's name: the one server, or the load balancer in front
/// of the instances of a balanced schedule (see [`BalancerPlan`]).
pub const SERVER_HOST: &str = "server";

/// The host name of instance `i` (from 0) behind the balancer
/// [`SERVER_HOST`] ([`crate::topology::Topology::balanced`]'s naming).
pub fn instance_host(i: u64) -> String {
    format!("{SERVER_HOST}-{i}")
}

/// The most pieces a schedule's server may cut an answer into.
pub const MAX_SPLIT_CHUNKS: u32 = 64;
/// The most notifications a schedule's server may send before a response.
pub const MAX_NOTIFICATIONS: u32 = 100;
/// The most server instances behind a schedule's balancer.
pub const MAX_INSTANCES: u64 = 16;

/// Several server instances behind a load balancer, instead of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerPlan {
    /// How many instances (`server-0`, `server-1`, ...), each with the
    /// schedule's server config and its own seed.
    pub instances: u64,
    /// How the balancer ([`SERVER_HOST`]) routes, at the start.
    pub policy: Policy,
}

/// Why a schedule cannot run as written ([`Schedule::validate`]): its
/// message names the field's path and the value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// A worker with an empty name.
    #[error("workers[{index}].name is empty")]
    EmptyWorkerName {
        /// The worker's index.
        index: usize,
    },
    /// A worker named like a server host.
    #[error("workers[{index}].name {name:?} is a server host's name")]
    WorkerNamedLikeServer {
        /// The worker's index.
        index: usize,
        /// Its name.
        name: String,
    },
    /// A worker named like an earlier one.
    #[error("workers[{index}].name {name:?} names two workers")]
    DuplicateWorker {
        /// The later worker's index.
        index: usize,
        /// Its name.
        name: String,
    },
    /// The links' least latency above their most.
    #[error("latency.min_ms {min_ms} is above latency.max_ms {max_ms}")]
    LatencyMinAboveMax {
        /// The least latency.
        min_ms: u64,
        /// The most latency.
        max_ms: u64,
    },
    /// The links' most latency above [`MAX_FAULT_LATENCY_MS`].
    #[error("latency.max_ms {max_ms} is above the maximum of {max}")]
    LatencyAboveMax {
        /// The most latency.
        max_ms: u64,
        /// The limit.
        max: u64,
    },
    /// The server's share of SSE answers outside `0..=1`.
    #[error("server.sse_ratio {value} is not in 0..=1")]
    SseRatio {
        /// The ratio.
        value: f64,
    },
    /// The server cutting answers into more than [`MAX_SPLIT_CHUNKS`].
    #[error("server.split_chunks {value} is above the maximum of {max}")]
    SplitChunks {
        /// The pieces.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// The server sending more than [`MAX_NOTIFICATIONS`] before a
    /// response.
    #[error("server.notifications_before_response {value} is above the maximum of {max}")]
    Notifications {
        /// The notifications.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// A balancer with no instance or more than [`MAX_INSTANCES`].
    #[error("balancer.instances {value} is not in 1..={max}")]
    Instances {
        /// The instances.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// The fault plan names a host the schedule does not have, or holds a
    /// number out of its range (`faults.events[3].status 1000 is not an
    /// HTTP server error status (500..=599)`).
    #[error("faults{}{}", if .0.is_value() { "." } else { ": " }, .0)]
    Faults(PlanError),
    /// The managers' config is one the manager refuses.
    #[error("session: {0}")]
    Session(mcp_session::ConfigError),
    /// No worker, so nothing would run.
    #[error("workers is empty: a schedule needs at least one worker")]
    NoWorkers,
    /// A bound on simulated time of 0 or above [`MAX_FAULT_MS`].
    #[error("duration_ms {value} is not in 1..={max}")]
    Duration {
        /// The bound.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A VU step's time (think time, a slow tool's sleep, when an acquire
    /// is dropped) above [`MAX_FAULT_MS`].
    #[error(
        "workers[{worker}].vus[{vu}].steps[{step}].{field} {value} is above the maximum of {max}"
    )]
    StepTime {
        /// The worker's index.
        worker: usize,
        /// The VU's index in the worker.
        vu: usize,
        /// The step's index.
        step: usize,
        /// The field (`think_ms`, `op.ms`, `after_ms`).
        field: &'static str,
        /// The value.
        value: u64,
        /// The limit.
        max: u64,
    },
}

/// The first time of a VU step above [`MAX_FAULT_MS`]: (step, field,
/// value).
fn step_time_out_of_range(steps: &[Step]) -> Option<(usize, &'static str, u64)> {
    steps.iter().enumerate().find_map(|(i, step)| {
        let times: [(&'static str, u64); 2] = match step {
            Step::Call { op, think_ms } => {
                let slow = match op {
                    Op::Slow { ms } => *ms,
                    _ => 0,
                };
                [("think_ms", *think_ms), ("op.ms", slow)]
            }
            Step::CancelAcquire { after_ms, think_ms } => {
                [("after_ms", *after_ms), ("think_ms", *think_ms)]
            }
            Step::CloseManager | Step::SpinForever | Step::SpinOnClock | Step::SleepForever => {
                [("think_ms", 0), ("think_ms", 0)]
            }
        };
        times
            .into_iter()
            .find(|(_, v)| *v > MAX_FAULT_MS)
            .map(|(field, v)| (i, field, v))
    })
}

/// The name of worker host `i` (from 1).
pub fn worker_host(i: u64) -> String {
    format!("worker-{i}")
}

/// An MCP operation a VU step runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `ping` (on a stateless-era context, which has no `ping`:
    /// `tools/list`).
    Ping,
    /// `tools/call` of `echo`.
    Echo,
    /// `tools/call` of `slow`, sleeping `ms` on the server.
    Slow {
        /// How long the tool sleeps.
        ms: u64,
    },
}

/// One step of a VU's program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Acquire, run `op`, give the lease back (invalidate after a
    /// session-expired error, else release), then think `think_ms`.
    Call {
        /// The operation.
        op: Op,
        /// Think time after the step.
        think_ms: u64,
    },
    /// Start an acquire and drop it after `after_ms` if it has not
    /// finished (a lease got in time is released at once), then think.
    CancelAcquire {
        /// When the acquire is dropped.
        after_ms: u64,
        /// Think time after the step.
        think_ms: u64,
    },
    /// Close the worker's manager (every VU then meets a closed manager).
    CloseManager,
    /// Never drawn by a scenario: a test hook of the liveness budget
    /// ([`crate::liveness`]). Loops forever without advancing simulated
    /// time, yielding to the scheduler each time round: the run exceeds
    /// its scheduler-step budget.
    SpinForever,
    /// Never drawn by a scenario: a test hook of the liveness budget
    /// ([`crate::liveness`]). Sleeps a second of simulated time at a time,
    /// forever: the run exceeds its simulated-time budget.
    SleepForever,
    /// Never drawn by a scenario: a test hook of the liveness budget
    /// ([`crate::liveness`]). Spawns a task that is not a VU, as the
    /// manager's deadline timer is not, which sleeps on the worker's clock
    /// until the time it has just read, forever, as a deadline timer left
    /// with a deadline in the past does; the VU then sleeps a second of
    /// simulated time at a time, forever. Only the clock's meter sees the
    /// spinning task: the run exceeds its scheduler-step budget.
    SpinOnClock,
}

/// One VU's steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One worker host: its VUs' programs (VU `i` runs `vus[i - 1]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerPlan {
    /// The host name.
    pub name: String,
    /// Each VU's program.
    pub vus: Vec<Program>,
}

/// Everything one run does: a plain serde value, to print, save and replay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was drawn from (also turmoil's and the server's).
    pub seed: u64,
    /// Every worker's manager config.
    pub session: SessionConfig,
    /// Every worker's transport settings.
    pub http: HttpConfig,
    /// The worker hosts and their VUs' programs.
    pub workers: Vec<WorkerPlan>,
    /// The server host's config.
    pub server: ServerConfig,
    /// The links' baseline latency.
    pub latency: Latency,
    /// The fault kinds this seed switched on (swarm testing).
    pub fault_kinds: BTreeSet<FaultKind>,
    /// The faults.
    pub faults: FaultPlan,
    /// The simulation's bound on simulated time (ms).
    pub duration_ms: u64,
    /// Instances behind a load balancer, if the server is balanced (absent:
    /// one server host, [`SERVER_HOST`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<BalancerPlan>,
}

/// Whether a client with era setting `client` can work with a server
/// speaking `server`: every pair but a legacy-only client against a
/// modern-only server and a modern-only client against a legacy one.
pub fn eras_meet(client: Era, server: ServerEra) -> bool {
    !matches!(
        (client, server),
        (Era::Legacy, ServerEra::Modern) | (Era::Modern, ServerEra::Legacy)
    )
}

/// One of `items`, drawn from `rng` only when there is a choice (`None`
/// when empty).
fn one_of<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> Option<T> {
    match items {
        [] => None,
        [one] => Some(*one),
        many => Some(many[rng.random_range(0..many.len())]),
    }
}

/// A ChaCha8 generator for `seed` on `stream`.
fn stream(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A number in `range.0..=range.1` (`range.0` if empty).
fn within(rng: &mut ChaCha8Rng, range: (u64, u64)) -> u64 {
    if range.1 <= range.0 {
        range.0
    } else {
        rng.random_range(range.0..=range.1)
    }
}

/// A VU count in `range.0..=range.1` (at least 1), drawn log-uniformly:
/// first a doubling band (1, 2-3, 4-7, ..., 32-63, 64), each as likely, then
/// a count within it. Most runs are small enough for a race to stand out
/// and some are large enough for real contention, at a fraction of the
/// cost of a uniform draw over 1-64. Integers only: the same draw on every
/// platform (no floating-point `ln`/`exp`).
fn vu_count(rng: &mut ChaCha8Rng, range: (u64, u64)) -> u64 {
    let (lo, hi) = (range.0.max(1), range.1.max(range.0).max(1));
    let (first, last) = (lo.ilog2(), hi.ilog2());
    let band = if last > first {
        rng.random_range(first..=last)
    } else {
        first
    };
    let band_lo = (1u64 << band).max(lo);
    let band_hi = ((1u64 << band) - 1 + (1u64 << band)).min(hi);
    within(rng, (band_lo, band_hi))
}

/// Whether a `pct` percent chance came up.
fn chance(rng: &mut ChaCha8Rng, pct: u32) -> bool {
    pct > 0 && rng.random_range(0..100) < pct
}

/// The worker hosts and their VUs' programs, on the workload stream: per
/// worker, its VU count, then each VU's program.
fn draw_workers(
    scenario: &Scenario,
    session: &SessionConfig,
    w: &mut ChaCha8Rng,
) -> Vec<WorkerPlan> {
    (1..=scenario.workers.max(1))
        .map(|i| {
            let vus = vu_count(w, scenario.vus);
            WorkerPlan {
                name: worker_host(i),
                vus: (1..=vus)
                    .map(|vu| program(scenario, session, vu, w))
                    .collect(),
            }
        })
        .collect()
}

/// The fault kinds this seed switches on (swarm testing), on the swarm
/// stream: each of the scenario's with even odds, and one of them if the
/// coin switched on none.
fn swarm(scenario: &Scenario, seed: u64) -> BTreeSet<FaultKind> {
    let mut sw = stream(seed, SWARM_STREAM);
    let mut fault_kinds: BTreeSet<FaultKind> = scenario
        .fault_kinds
        .iter()
        .copied()
        .filter(|_| sw.random_bool(0.5))
        .collect();
    if fault_kinds.is_empty() && !scenario.fault_kinds.is_empty() {
        let all: Vec<_> = scenario.fault_kinds.iter().copied().collect();
        fault_kinds.insert(all[sw.random_range(0..all.len())]);
    }
    fault_kinds
}

/// What [`draw_world`] draws: the server's config, the links' latency,
/// and the balancer.
struct World {
    server: ServerConfig,
    latency: Latency,
    balancer: Option<BalancerPlan>,
}

/// The server side of a run, on the server stream: answer formats and
/// cuts, link latency, then (only where the scenario leaves a choice) the
/// server's era, the client's era (set in `session`), the discovery TTL,
/// and the balancer.
fn draw_world(scenario: &Scenario, seed: u64, session: &mut SessionConfig) -> World {
    let mut sv = stream(seed, SERVER_STREAM);
    let mut server = ServerConfig {
        seed,
        sse_ratio: [0.0, 0.5, 1.0][sv.random_range(0..3)],
        split_chunks: sv.random_range(1..=3),
        session_idle: scenario
            .server_idle_ms
            .map(std::time::Duration::from_millis),
        ..ServerConfig::default()
    };
    let latency = Latency::new(sv.random_range(0..=2), sv.random_range(2..=10));
    // After the draws above, and only when there is a choice: a
    // scenario without one draws exactly as before.
    if let Some(era) = one_of(&mut sv, &scenario.server_eras) {
        server.era = era;
    }
    // The client's era among those that can work with the server's
    // (a run where nothing could ever succeed exercises nothing).
    let client_eras: Vec<Era> = scenario
        .client_eras
        .iter()
        .copied()
        .filter(|&e| eras_meet(e, server.era))
        .collect();
    if let Some(era) = one_of(&mut sv, &client_eras) {
        session.era = era;
    }
    if let Some(ttl) = one_of(&mut sv, &scenario.discover_ttls_ms) {
        server.discover_ttl_ms = ttl;
    }
    let balancer = scenario.balancer.as_ref().map(|b| BalancerPlan {
        instances: within(&mut sv, b.instances).max(1),
        policy: one_of(&mut sv, &b.policies).unwrap_or_default(),
    });
    World {
        server,
        latency,
        balancer,
    }
}

/// The fault plan of schedule `s` (everything else of it drawn), on the
/// fault stream: none when the scenario has no fault events or the swarm
/// switched every kind off; else drawn over the schedule's hosts, aimed
/// at its busy period.
fn fault_plan(scenario: &Scenario, s: &Schedule) -> FaultPlan {
    if scenario.fault_events == 0 || s.fault_kinds.is_empty() {
        return FaultPlan::none();
    }
    let space = FaultSpace {
        kinds: s.fault_kinds.clone(),
        workers: s.workers.iter().map(|w| w.name.clone()).collect(),
        servers: s.server_hosts(),
        balancers: if s.balancer.is_some() {
            vec![SERVER_HOST.to_owned()]
        } else {
            Vec::new()
        },
        // A slow `initialize` outlasts the drawn request timeout.
        slow_initialize_ms: s.http.request_timeout_ms + 300,
        ..fault_space(scenario, &s.session, busy_ms(&s.session, &s.workers))
    };
    FaultPlan::generate(s.seed, &space)
}

impl Schedule {
    /// The schedule of `scenario` for `seed`: the same pair always gives the
    /// same schedule.
    ///
    /// Each purpose draws from a stream of its own (workload, knobs,
    /// swarm, server, faults), so that a new draw on one stream shifts
    /// nothing on the others; within a stream the order of the draws is
    /// fixed, new ones appended at the end.
    pub fn generate(scenario: &Scenario, seed: u64) -> Schedule {
        let mut w = stream(seed, WORKLOAD_STREAM);
        let mut k = stream(seed, KNOBS_STREAM);
        let mut session = vary_session(scenario, &mut w);
        // The limits before the programs: a think time aimed at the idle
        // deadline aims at the drawn one.
        vary_limits(scenario, &mut session, &mut k);
        let workers = draw_workers(scenario, &session, &mut w);
        let fault_kinds = swarm(scenario, seed);
        let World {
            mut server,
            latency,
            balancer,
        } = draw_world(scenario, seed, &mut session);
        // The later knobs, on their own stream, in a fixed order (append
        // new ones at the end).
        if scenario.vary.protocol_version {
            session.protocol_version = requested_version(&mut k).to_owned();
        }
        let mut http = vary_http(&scenario.http, &mut k);
        vary_server(&mut server, &session, &workers, &mut k);
        if server.answer_400_for_unknown_session {
            // The TypeScript SDK's 400 is taken for a 404, or a restart
            // would leave every client on a session the server no longer
            // knows (a world where nothing works after the first bounce).
            http.session_400_is_expired = true;
        }
        let mut schedule = Schedule {
            seed,
            session,
            http,
            workers,
            server,
            latency,
            fault_kinds,
            faults: FaultPlan::none(),
            duration_ms: scenario.duration_ms,
            balancer,
        };
        schedule.faults = fault_plan(scenario, &schedule);
        schedule
    }

    /// Checks a schedule that did not come from [`Schedule::generate`] (a
    /// file written or edited by hand) before it runs: every worker named
    /// once and not like a server host, latencies and server knobs in
    /// range, the fault plan naming only hosts the schedule has and every
    /// number of it in range ([`FaultPlan::check_values`]), the session
    /// config one the manager accepts, the duration and every VU step's
    /// times within a day of simulated time. The error names the field's
    /// path and the value.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.session.validate().map_err(ScheduleError::Session)?;
        if self.workers.is_empty() {
            return Err(ScheduleError::NoWorkers);
        }
        if !(1..=MAX_FAULT_MS).contains(&self.duration_ms) {
            return Err(ScheduleError::Duration {
                value: self.duration_ms,
                max: MAX_FAULT_MS,
            });
        }
        self.validate_step_times()?;
        let servers = self.server_hosts();
        self.validate_worker_names(&servers)?;
        self.validate_latency()?;
        self.validate_server()?;
        let workers: Vec<String> = self.workers.iter().map(|w| w.name.clone()).collect();
        let balancers: Vec<String> = match self.balancer {
            Some(_) => vec![SERVER_HOST.to_owned()],
            None => Vec::new(),
        };
        self.faults
            .check_hosts(&servers, &balancers, &workers)
            .and_then(|()| self.faults.check_values())
            .map_err(ScheduleError::Faults)
    }

    /// Every VU step's times within a day of simulated time.
    fn validate_step_times(&self) -> Result<(), ScheduleError> {
        for (worker, w) in self.workers.iter().enumerate() {
            for (vu, program) in w.vus.iter().enumerate() {
                if let Some((step, field, value)) = step_time_out_of_range(&program.steps) {
                    return Err(ScheduleError::StepTime {
                        worker,
                        vu,
                        step,
                        field,
                        value,
                        max: MAX_FAULT_MS,
                    });
                }
            }
        }
        Ok(())
    }

    /// Every worker named, once, and not like a server host (`servers`):
    /// the simulation addresses hosts by name.
    fn validate_worker_names(&self, servers: &[String]) -> Result<(), ScheduleError> {
        let mut names = BTreeSet::new();
        for (index, w) in self.workers.iter().enumerate() {
            let name = w.name.clone();
            if w.name.is_empty() {
                return Err(ScheduleError::EmptyWorkerName { index });
            }
            if w.name == SERVER_HOST || servers.contains(&w.name) {
                return Err(ScheduleError::WorkerNamedLikeServer { index, name });
            }
            if !names.insert(w.name.as_str()) {
                return Err(ScheduleError::DuplicateWorker { index, name });
            }
        }
        Ok(())
    }

    /// The baseline latency a range, within the faults' bound.
    fn validate_latency(&self) -> Result<(), ScheduleError> {
        let l = self.latency;
        if l.min_ms > l.max_ms {
            return Err(ScheduleError::LatencyMinAboveMax {
                min_ms: l.min_ms,
                max_ms: l.max_ms,
            });
        }
        if l.max_ms > MAX_FAULT_LATENCY_MS {
            return Err(ScheduleError::LatencyAboveMax {
                max_ms: l.max_ms,
                max: MAX_FAULT_LATENCY_MS,
            });
        }
        Ok(())
    }

    /// The server's knobs, and the balancer's instance count, in range.
    fn validate_server(&self) -> Result<(), ScheduleError> {
        let cfg = &self.server;
        if !(0.0..=1.0).contains(&cfg.sse_ratio) {
            return Err(ScheduleError::SseRatio {
                value: cfg.sse_ratio,
            });
        }
        if cfg.split_chunks > MAX_SPLIT_CHUNKS {
            return Err(ScheduleError::SplitChunks {
                value: cfg.split_chunks,
                max: MAX_SPLIT_CHUNKS,
            });
        }
        if cfg.notifications_before_response > MAX_NOTIFICATIONS {
            return Err(ScheduleError::Notifications {
                value: cfg.notifications_before_response,
                max: MAX_NOTIFICATIONS,
            });
        }
        if let Some(b) = self.balancer {
            if !(1..=MAX_INSTANCES).contains(&b.instances) {
                return Err(ScheduleError::Instances {
                    value: b.instances,
                    max: MAX_INSTANCES,
                });
            }
        }
        Ok(())
    }

    /// The server hosts: [`SERVER_HOST`], or the balanced instances.
    pub fn server_hosts(&self) -> Vec<String> {
        match self.balancer {
            Some(b) => (0..b.instances).map(instance_host).collect(),
            None => vec![SERVER_HOST.to_owned()],
        }
    }

    /// The schedule as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing these plain values cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Each worker's VU count, in worker order.
    pub fn vus_per_worker(&self) -> Vec<usize> {
        self.workers.iter().map(|w| w.vus.len()).collect()
    }

    /// How many VUs in all.
    pub fn vu_count(&self) -> usize {
        self.workers.iter().map(|w| w.vus.len()).sum()
    }

    /// A rough estimate of how long the workload keeps its workers busy
    /// (simulated ms, no faults): see [`busy_ms`].
    pub fn busy_ms(&self) -> u64 {
        busy_ms(&self.session, &self.workers)
    }
}

/// What one operation is taken to cost on top of its tool's own time
/// (ms): a round trip or two on the baseline links.
const OP_MS: u64 = 10;

/// A rough estimate of how long a workload keeps its workers busy
/// (simulated ms, no faults), to aim the fault plan at the busy period:
/// per worker, the longer of its longest VU program (its operations and
/// think times) and, in pool mode, the operations of all its VUs shared
/// among `pool_size` sessions (at most the longest program with every
/// acquire waiting out its timeout); a worker whose manager is closed
/// part-way is busy until then. The slowest worker's.
pub fn busy_ms(session: &SessionConfig, workers: &[WorkerPlan]) -> u64 {
    let op = |o: &Op| match o {
        Op::Slow { ms } => OP_MS + ms,
        Op::Ping | Op::Echo => OP_MS,
    };
    workers
        .iter()
        .map(|w| {
            let mut longest = 0;
            let mut longest_waiting = 0;
            let mut ops = 0;
            let mut closed_at: Option<u64> = None;
            for p in &w.vus {
                let mut t = 0;
                let mut calls = 0;
                for step in &p.steps {
                    match step {
                        Step::Call { op: o, think_ms } => {
                            ops += op(o);
                            calls += 1;
                            t += op(o) + think_ms;
                        }
                        Step::CancelAcquire { after_ms, think_ms } => {
                            t += after_ms.min(&OP_MS) + think_ms;
                        }
                        Step::CloseManager => {
                            closed_at = Some(closed_at.map_or(t, |c| c.min(t)));
                        }
                        // Test hooks: they never end, and are given no
                        // time of their own.
                        Step::SpinForever | Step::SpinOnClock | Step::SleepForever => {}
                    }
                }
                longest = longest.max(t);
                longest_waiting = longest_waiting.max(t + calls * session.acquire_timeout_ms);
            }
            // Shared by the pool, but no acquire waits longer than its
            // timeout.
            let shared = if session.mode == Mode::Pool {
                (ops / session.pool_size.max(1) as u64).min(longest_waiting)
            } else {
                0
            };
            let busy = longest.max(shared);
            closed_at.map_or(busy, |c| busy.min(c))
        })
        .max()
        .unwrap_or(0)
}

/// The fault space of `scenario` for a workload busy for about `busy_ms`
/// (hosts and kinds left empty): faults start in the busy period, from
/// [`Scenario::fault_start_ms`] to the earlier of the estimated end of the
/// work ([`busy_ms`]) and [`Scenario::fault_end_ms`] (at least 100 ms
/// wide), so they meet the traffic rather than an idle world; spans up to
/// 800 ms; a slow `initialize` answers 300 ms after the client gave up
/// waiting; [`Scenario::fault_follow_pct`] of the events follow an earlier
/// one; and, unless the manager makes a session per request (and so
/// initializes all the time), a fault that acts on `initialize` only and
/// follows nothing is armed at the start, for the clients' first sessions
/// (later, such clients initialize only after a restart or an expiry,
/// which follow-ups aim at).
pub fn fault_space(scenario: &Scenario, session: &SessionConfig, busy_ms: u64) -> FaultSpace {
    let start_ms = scenario.fault_start_ms;
    let end_ms = scenario.fault_end_ms.min(busy_ms).max(start_ms + 100);
    FaultSpace {
        kinds: BTreeSet::new(),
        workers: Vec::new(),
        servers: Vec::new(),
        start_ms,
        end_ms,
        events: scenario.fault_events,
        max_span_ms: 800,
        slow_initialize_ms: scenario.http.request_timeout_ms + 300,
        follow_pct: scenario.fault_follow_pct,
        initialize_first_pct: if session.mode == Mode::PerRequest {
            0
        } else {
            100
        },
        mismatched_versions: mismatched_versions(&session.protocol_version),
        ..FaultSpace::default()
    }
}

/// The revisions a version mismatch answers a client that asked for
/// `requested`: the oldest supported revision other than `requested`, and
/// one no client speaks. Never the one asked for (that would be no
/// mismatch, and `version-policy` would stop testing one).
pub fn mismatched_versions(requested: &str) -> Vec<String> {
    let other = SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v != requested)
        .copied()
        .unwrap_or("2024-11-05");
    vec![other.to_owned(), "1999-01-01".to_owned()]
}

/// The legacy revision a client asks for: the library's default
/// (2025-11-25) half the time, each of the three older ones a sixth
/// (2024-11-05 and 2025-03-26 have no `MCP-Protocol-Version` header).
fn requested_version(rng: &mut ChaCha8Rng) -> &'static str {
    let older = &SUPPORTED_PROTOCOL_VERSIONS[..SUPPORTED_PROTOCOL_VERSIONS.len() - 1];
    match rng.random_range(0..6) {
        i @ 0..=2 => older[i],
        _ => DEFAULT_PROTOCOL_VERSION,
    }
}

/// A value from two thirds to four thirds of `base` (at least 1).
fn around(rng: &mut ChaCha8Rng, base: u64) -> u64 {
    within(rng, ((base * 2 / 3).max(1), (base * 4 / 3).max(1)))
}

/// Beyond this (ms), a manager limit is taken never to act within a run
/// (the library's defaults: 15 minutes, a minute, 30 s).
const LONG_LIMIT_MS: u64 = 10_000;

/// A manager limit of base `base` (ms, 0 = off) drawn: a short one from
/// two thirds to four thirds of itself; a long one (a default beyond any
/// run) kept half the time, switched off (0) a quarter and drawn from
/// `short` a quarter, so it acts within the run; an off one kept.
fn vary_limit(rng: &mut ChaCha8Rng, base: u64, short: (u64, u64)) -> u64 {
    if base == 0 {
        base
    } else if base <= LONG_LIMIT_MS {
        around(rng, base)
    } else {
        match rng.random_range(0..4) {
            0 | 1 => base,
            2 => 0,
            _ => within(rng, short),
        }
    }
}

/// The manager's limits with the seed's variations ([`Vary::limits`]):
/// `ttl_ms`, `max_idle_ms` and, in pool mode, `acquire_timeout_ms`.
fn vary_limits(scenario: &Scenario, s: &mut SessionConfig, rng: &mut ChaCha8Rng) {
    if !scenario.vary.limits {
        return;
    }
    s.ttl_ms = vary_limit(rng, s.ttl_ms, (1_000, 4_000));
    s.max_idle_ms = vary_limit(rng, s.max_idle_ms, (200, 2_000));
    if s.mode == Mode::Pool {
        // Never 0: a pool must wait a while.
        s.acquire_timeout_ms = around(rng, s.acquire_timeout_ms.max(1));
    }
}

/// The transport's settings drawn around the scenario's: connect, request
/// and close timeouts from two thirds to four thirds of theirs (a close
/// still outlasts a round trip under the worst latency fault); the body
/// cap and the resumption count kept half the time, else drawn (64 KiB
/// or 1 MiB, far above any answer; 0 to 5 resumptions).
fn vary_http(base: &HttpConfig, rng: &mut ChaCha8Rng) -> HttpConfig {
    let mut h = base.clone();
    h.connect_timeout_ms = around(rng, h.connect_timeout_ms);
    h.request_timeout_ms = around(rng, h.request_timeout_ms);
    h.close_timeout_ms = around(rng, h.close_timeout_ms);
    h.max_body_bytes = match rng.random_range(0..4) {
        0 | 1 => h.max_body_bytes,
        2 => 1024 * 1024,
        _ => 64 * 1024,
    };
    h.max_resumes = if rng.random_bool(0.5) {
        h.max_resumes
    } else {
        rng.random_range(0..=5)
    };
    // Whether the TypeScript SDK's 400 counts as a 404: off a quarter of
    // the time (set back on when the server answers that 400).
    h.session_400_is_expired = !chance(rng, 25);
    h
}

/// The server's later knobs: notifications before an SSE answer's
/// response (none half the time, else 1 to [`DRAWN_NOTIFICATIONS`]),
/// priming events (half the time), a session TTL and (unless the scenario
/// sets one) an idle limit a third of the time each, short enough to act
/// within a run, a cap on live sessions a quarter of the time (never below
/// three quarters of the sessions the workers hold at once, so most work
/// still gets a session), and the TypeScript SDK's 400 for an unknown
/// session a quarter of the time.
fn vary_server(
    server: &mut ServerConfig,
    session: &SessionConfig,
    workers: &[WorkerPlan],
    rng: &mut ChaCha8Rng,
) {
    server.notifications_before_response = if rng.random_bool(0.5) {
        0
    } else {
        rng.random_range(1..=DRAWN_NOTIFICATIONS)
    };
    server.sse_priming = rng.random_bool(0.5);
    if chance(rng, 33) {
        server.session_ttl = Some(Duration::from_millis(rng.random_range(1_000..=5_000)));
    }
    let idle = chance(rng, 33).then(|| rng.random_range(500..=3_000));
    if server.session_idle.is_none() {
        server.session_idle = idle.map(Duration::from_millis);
    }
    // The sessions the workers hold at once: a session per VU, or per
    // pool slot.
    let held: u64 = workers
        .iter()
        .map(|w| {
            let vus = w.vus.len() as u64;
            if session.mode == Mode::Pool {
                vus.min(session.pool_size as u64)
            } else {
                vus
            }
        })
        .sum();
    if chance(rng, 25) {
        let least = (held * 3 / 4).max(1);
        server.max_sessions = usize::try_from(within(rng, (least, held + 2))).ok();
    }
    server.answer_400_for_unknown_session = chance(rng, 25);
}

/// The scenario's config with the seed's variations.
fn vary_session(scenario: &Scenario, rng: &mut ChaCha8Rng) -> SessionConfig {
    let mut s = scenario.session.clone();
    if scenario.vary.pool_size && s.mode == Mode::Pool {
        s.pool_size = rng.random_range(1..=s.pool_size.max(1));
    }
    if scenario.vary.churn {
        if rng.random_bool(0.5) {
            s.churn_interval_ops = rng.random_range(1..=4);
            s.churn_interval_ms = 0;
        } else {
            s.churn_interval_ops = 0;
            s.churn_interval_ms = rng.random_range(100..=500);
        }
    }
    if scenario.vary.version_policy {
        // The default policy, strict, half the time; the others a quarter
        // each.
        s.protocol_version_policy = match rng.random_range(0..4) {
            0 | 1 => VersionPolicy::Strict,
            2 => VersionPolicy::Supported,
            _ => VersionPolicy::None,
        };
    }
    s
}

/// VU `vu`'s program (think times aimed at the idle deadline aim at
/// `session`'s).
fn program(scenario: &Scenario, session: &SessionConfig, vu: u64, rng: &mut ChaCha8Rng) -> Program {
    let n = within(
        rng,
        (u64::from(scenario.steps.0), u64::from(scenario.steps.1)),
    );
    let mut steps: Vec<Step> = (0..n)
        .map(|_| {
            let think_ms = within(rng, scenario.think_ms);
            let think_ms = if chance(rng, scenario.deadline_think_pct) {
                let spread = scenario.deadline_think_spread_ms;
                if spread == 0 {
                    session.max_idle_ms
                } else {
                    (session.max_idle_ms + within(rng, (0, 2 * spread))).saturating_sub(spread)
                }
            } else {
                think_ms
            };
            if chance(rng, scenario.cancel_pct) {
                Step::CancelAcquire {
                    after_ms: within(rng, scenario.cancel_after_ms),
                    think_ms,
                }
            } else if chance(rng, scenario.slow_pct) {
                Step::Call {
                    op: Op::Slow {
                        ms: within(rng, scenario.slow_ms),
                    },
                    think_ms,
                }
            } else if rng.random_bool(0.5) {
                Step::Call {
                    op: Op::Echo,
                    think_ms,
                }
            } else {
                Step::Call {
                    op: Op::Ping,
                    think_ms,
                }
            }
        })
        .collect();
    if scenario.close_mid_run && vu == 1 {
        let at = rng.random_range(0..=steps.len());
        steps.insert(at, Step::CloseManager);
    }
    Program { steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vu_counts_cover_their_range_by_doubling_bands() {
        let mut rng = stream(7, WORKLOAD_STREAM);
        let draws: Vec<u64> = (0..7000).map(|_| vu_count(&mut rng, (1, 64))).collect();
        assert!(draws.iter().all(|n| (1..=64).contains(n)));
        // Seven bands (1, 2-3, ..., 32-63, 64), about 1000 draws each.
        for (lo, hi) in [
            (1, 1),
            (2, 3),
            (4, 7),
            (8, 15),
            (16, 31),
            (32, 63),
            (64, 64),
        ] {
            let n = draws.iter().filter(|d| (lo..=hi).contains(*d)).count();
            assert!((800..1200).contains(&n), "{lo}-{hi}: {n}");
        }
        assert_eq!(vu_count(&mut rng, (5, 5)), 5);
        assert_eq!(vu_count(&mut rng, (0, 0)), 1);
        assert!((6..=14).contains(&vu_count(&mut rng, (6, 14))));
    }

    #[test]
    fn the_same_seed_draws_the_same_schedule() {
        for s in Scenario::all() {
            let a = Schedule::generate(&s, 5);
            assert_eq!(a, Schedule::generate(&s, 5), "{}", s.name);
            a.session.validate().expect("valid config");
            let back: Schedule = serde_json::from_str(&a.to_json()).expect("round trip");
            assert_eq!(back, a);
        }
    }

    #[test]
    fn fault_kinds_do_not_shift_the_workload() {
        let s = Scenario::pool();
        let mut fewer = s.clone();
        fewer.fault_kinds = [FaultKind::Bounce].into();
        for seed in 0..10 {
            let (a, b) = (
                Schedule::generate(&s, seed),
                Schedule::generate(&fewer, seed),
            );
            assert_eq!(a.workers, b.workers);
            assert_eq!(a.session, b.session);
            assert_eq!(a.server, b.server);
            assert!(b.fault_kinds.is_subset(&fewer.fault_kinds));
        }
    }

    /// Faults that follow nothing start inside the workload's estimated
    /// busy period (or at 0 ms, a fault on `initialize` armed for the first
    /// sessions).
    #[test]
    fn faults_start_in_the_busy_period() {
        for mut s in Scenario::all() {
            s.fault_follow_pct = 0;
            for seed in 0..10 {
                let sch = Schedule::generate(&s, seed);
                let space = fault_space(&s, &sch.session, sch.busy_ms());
                assert!(space.end_ms <= sch.busy_ms().max(s.fault_start_ms + 100));
                for e in &sch.faults.events {
                    let window = (space.start_ms..space.end_ms).contains(&e.at_ms);
                    assert!(window || e.at_ms == 0, "{} {seed}: {e:?}", s.name);
                }
            }
        }
    }

    #[test]
    fn eviction_race_thinks_exactly_the_idle_limit_sometimes() {
        let s = Scenario::eviction_race();
        // Each think time with its seed's idle limit (drawn per seed).
        let thinks: Vec<(u64, u64)> = (0..5)
            .map(|seed| Schedule::generate(&s, seed))
            .flat_map(|sch| {
                let idle = sch.session.max_idle_ms;
                sch.workers
                    .into_iter()
                    .flat_map(|w| w.vus)
                    .flat_map(|p| p.steps)
                    .filter_map(move |step| match step {
                        Step::Call { think_ms, .. } | Step::CancelAcquire { think_ms, .. } => {
                            Some((think_ms, idle))
                        }
                        Step::CloseManager
                        | Step::SpinForever
                        | Step::SpinOnClock
                        | Step::SleepForever => None,
                    })
            })
            .collect();
        let at = thinks.iter().filter(|(t, idle)| t == idle).count();
        assert!(at > 0 && at < thinks.len() / 2, "{at} of {}", thinks.len());
    }

    #[test]
    fn swarm_subsets_vary_by_seed() {
        let s = Scenario::reuse();
        let subsets: BTreeSet<_> = (0..20)
            .map(|seed| Schedule::generate(&s, seed).fault_kinds)
            .collect();
        assert!(subsets.len() > 3, "{subsets:?}");
        assert!(subsets.iter().all(|k| !k.is_empty()));
    }

    use crate::faults::{FaultEvent, Scheduled, MAX_FAULT_COUNT, MAX_FAULT_MS, MAX_FAULT_ROUNDS};

    /// A generated schedule whose plan is a bounce at 0 ms, then `event`
    /// at `at_ms` (event 1), and what validating it says.
    fn validate_with(at_ms: u64, event: FaultEvent) -> Result<(), ScheduleError> {
        let mut s = Schedule::generate(&Scenario::partition(), 1);
        let bounce = FaultEvent::Bounce {
            server: SERVER_HOST.into(),
        };
        s.faults = FaultPlan::new(vec![
            Scheduled {
                at_ms: 0,
                event: bounce,
            },
            Scheduled { at_ms, event },
        ]);
        s.validate()
    }

    /// The error of `event` at 100 ms, as `mcp-sim replay` prints it.
    fn refusal(event: FaultEvent) -> String {
        validate_with(100, event).expect_err("refused").to_string()
    }

    fn server() -> String {
        SERVER_HOST.into()
    }

    fn worker() -> String {
        worker_host(1)
    }

    #[test]
    fn a_fault_status_outside_http_is_refused() {
        let burst = |status| FaultEvent::ServerErrors {
            server: server(),
            status,
            count: 2,
        };
        assert_eq!(
            validate_with(100, burst(1000)),
            Err(ScheduleError::Faults(PlanError::NotServerErrorStatus {
                event: 1,
                status: 1000
            }))
        );
        assert_eq!(
            refusal(burst(1000)),
            "faults.events[1].status 1000 is not an HTTP server error status (500..=599)"
        );
        // Not a server error: the client would not see a 5xx burst.
        for status in [0, 99, 200, 404, 499, 600, u16::MAX] {
            assert!(validate_with(100, burst(status)).is_err(), "{status}");
        }
        for status in [500, 503, 599] {
            assert_eq!(validate_with(100, burst(status)), Ok(()), "{status}");
        }
    }

    #[test]
    fn a_latency_range_min_above_max_is_refused() {
        let range = |min_ms, max_ms| FaultEvent::LatencyRange {
            worker: worker(),
            server: server(),
            min_ms,
            max_ms,
            span_ms: 100,
        };
        assert_eq!(
            refusal(range(500, 20)),
            "faults.events[1].min_ms 500 is above events[1].max_ms 20"
        );
        assert_eq!(validate_with(100, range(20, 20)), Ok(()));
        assert_eq!(validate_with(100, range(0, 500)), Ok(()));
    }

    #[test]
    fn a_fault_latency_above_the_limit_is_refused() {
        let spike = FaultEvent::LatencySpike {
            worker: worker(),
            server: server(),
            latency_ms: u64::MAX,
            span_ms: 100,
        };
        assert_eq!(
            refusal(spike),
            format!(
                "faults.events[1].latency_ms {} is not in 0..={MAX_FAULT_LATENCY_MS}",
                u64::MAX
            )
        );
        let range = FaultEvent::LatencyRange {
            worker: worker(),
            server: server(),
            min_ms: 0,
            max_ms: MAX_FAULT_LATENCY_MS + 1,
            span_ms: 100,
        };
        assert!(refusal(range).starts_with("faults.events[1].max_ms 60001 is not in"));
    }

    #[test]
    fn a_baseline_latency_above_the_limit_is_refused() {
        let mut s = Schedule::generate(&Scenario::partition(), 1);
        s.latency = Latency::new(0, u64::MAX);
        assert_eq!(
            s.validate().expect_err("refused").to_string(),
            format!(
                "latency.max_ms {} is above the maximum of {MAX_FAULT_LATENCY_MS}",
                u64::MAX
            )
        );
    }

    #[test]
    fn a_fault_count_above_the_limit_is_refused() {
        let over = MAX_FAULT_COUNT + 1;
        let bursts = [
            FaultEvent::ServerErrors {
                server: server(),
                status: 503,
                count: over,
            },
            FaultEvent::MalformedJson {
                server: server(),
                count: over,
            },
            FaultEvent::TruncatedSse {
                server: server(),
                count: over,
            },
            FaultEvent::ConnectionReset {
                server: server(),
                count: over,
            },
            FaultEvent::SlowInitialize {
                server: server(),
                delay_ms: 100,
                count: over,
            },
            FaultEvent::VersionTrap {
                server: server(),
                count: over,
            },
            FaultEvent::HeaderStrip {
                server: server(),
                count: over,
            },
            FaultEvent::ModernStreamCut {
                server: server(),
                count: over,
            },
            FaultEvent::InputRounds {
                server: server(),
                count: over,
                rounds: 1,
            },
        ];
        for event in bursts {
            assert_eq!(
                refusal(event.clone()),
                format!("faults.events[1].count {over} is not in 1..={MAX_FAULT_COUNT}"),
                "{event:?}"
            );
        }
    }

    /// A burst of no request does nothing: written by hand, it is a
    /// mistake.
    #[test]
    fn a_fault_count_of_zero_is_refused() {
        let event = FaultEvent::MalformedJson {
            server: server(),
            count: 0,
        };
        assert_eq!(
            refusal(event),
            format!("faults.events[1].count 0 is not in 1..={MAX_FAULT_COUNT}")
        );
    }

    #[test]
    fn input_rounds_outside_their_range_are_refused() {
        for rounds in [0, MAX_FAULT_ROUNDS + 1, u32::MAX] {
            let event = FaultEvent::InputRounds {
                server: server(),
                count: 1,
                rounds,
            };
            assert_eq!(
                refusal(event),
                format!("faults.events[1].rounds {rounds} is not in 1..={MAX_FAULT_ROUNDS}")
            );
        }
    }

    /// A span of 0 ms would end before it starts (ends go first at a tie)
    /// and never be undone; a span or a time past a day could overflow
    /// `at_ms + span_ms`.
    #[test]
    fn a_fault_span_of_zero_or_past_a_day_is_refused() {
        let partition = |span_ms| FaultEvent::Partition {
            worker: worker(),
            server: server(),
            span_ms,
        };
        for span in [0, MAX_FAULT_MS + 1, u64::MAX] {
            assert_eq!(
                refusal(partition(span)),
                format!("faults.events[1].span_ms {span} is not in 1..={MAX_FAULT_MS}")
            );
        }
        let crash = FaultEvent::Crash {
            server: server(),
            down_ms: u64::MAX,
        };
        assert!(refusal(crash).starts_with("faults.events[1].down_ms 18446744073709551615"));
        for (field, event) in [
            (
                "delay_ms",
                FaultEvent::SlowInitialize {
                    server: server(),
                    delay_ms: u64::MAX,
                    count: 1,
                },
            ),
            (
                "ttl_ms",
                FaultEvent::DiscoverChange {
                    server: server(),
                    ttl_ms: u64::MAX,
                    span_ms: 100,
                },
            ),
        ] {
            assert_eq!(
                refusal(event),
                format!(
                    "faults.events[1].{field} {} is not in 0..={MAX_FAULT_MS}",
                    u64::MAX
                )
            );
        }
        assert_eq!(validate_with(MAX_FAULT_MS, partition(MAX_FAULT_MS)), Ok(()));
    }

    #[test]
    fn a_fault_time_past_a_day_is_refused() {
        let bounce = FaultEvent::Bounce { server: server() };
        let e = validate_with(u64::MAX, bounce).expect_err("refused");
        assert_eq!(
            e.to_string(),
            format!(
                "faults.events[1].at_ms {} is not in 0..={MAX_FAULT_MS}",
                u64::MAX
            )
        );
    }

    #[test]
    fn a_step_time_past_a_day_is_refused() {
        let mut s = Schedule::generate(&Scenario::partition(), 1);
        s.workers[0].vus[0].steps[0] = Step::Call {
            op: Op::Slow { ms: u64::MAX },
            think_ms: 0,
        };
        assert_eq!(
            s.validate().expect_err("refused").to_string(),
            format!(
                "workers[0].vus[0].steps[0].op.ms {} is above the maximum of {MAX_FAULT_MS}",
                u64::MAX
            )
        );
        s.workers[0].vus[0].steps[0] = Step::CancelAcquire {
            after_ms: 5,
            think_ms: MAX_FAULT_MS + 1,
        };
        assert!(s
            .validate()
            .expect_err("refused")
            .to_string()
            .starts_with("workers[0].vus[0].steps[0].think_ms "));
    }

    #[test]
    fn a_duration_of_zero_or_past_a_day_is_refused() {
        let mut s = Schedule::generate(&Scenario::partition(), 1);
        for bad in [0, MAX_FAULT_MS + 1] {
            s.duration_ms = bad;
            assert_eq!(
                s.validate().expect_err("refused").to_string(),
                format!("duration_ms {bad} is not in 1..={MAX_FAULT_MS}")
            );
        }
    }

    #[test]
    fn a_session_config_the_manager_refuses_is_refused() {
        let mut s = Schedule::generate(&Scenario::pool(), 1);
        s.session.pool_size = 0;
        let e = s.validate().expect_err("refused").to_string();
        assert!(e.starts_with("session: ") && e.contains("pool_size"), "{e}");
        let mut s = Schedule::generate(&Scenario::pool(), 1);
        s.workers.clear();
        assert_eq!(s.validate(), Err(ScheduleError::NoWorkers));
    }

    #[test]
    fn a_stickiness_pick_other_than_0_or_1_is_refused() {
        let mut s = Schedule::generate(&Scenario::partition(), 1);
        s.balancer = Some(BalancerPlan {
            instances: 2,
            policy: Policy::default(),
        });
        let switch = |pick| FaultEvent::StickinessSwitch {
            balancer: SERVER_HOST.into(),
            pick,
            span_ms: 100,
        };
        s.faults = FaultPlan::new(vec![Scheduled {
            at_ms: 10,
            event: switch(1),
        }]);
        assert_eq!(s.validate(), Ok(()));
        s.faults.events[0].event = switch(2);
        assert_eq!(
            s.validate().expect_err("refused").to_string(),
            "faults.events[0].pick 2 is not in 0..=1"
        );
    }

    /// Host errors keep their words, after `faults: `.
    #[test]
    fn a_fault_naming_an_unknown_host_is_refused() {
        let e = validate_with(
            100,
            FaultEvent::Bounce {
                server: "elsewhere".into(),
            },
        )
        .expect_err("refused");
        assert_eq!(
            e.to_string(),
            "faults: fault event 1 names server \"elsewhere\", which is not in the topology"
        );
    }

    #[test]
    fn every_generated_schedule_is_valid() {
        for scenario in Scenario::all() {
            for seed in 0..20 {
                let s = Schedule::generate(&scenario, seed);
                assert_eq!(s.validate(), Ok(()), "{} {seed}", scenario.name);
            }
        }
    }
}
