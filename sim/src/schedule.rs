//! A [`Schedule`]: everything one run does, as a plain serde value drawn
//! from a [`Scenario`] and one `u64` seed.
//!
//! # Streams
//!
//! Every choice comes from the seed's `ChaCha8Rng`, one stream per purpose:
//! [`WORKLOAD_STREAM`] (config variations, VU counts and programs),
//! [`SWARM_STREAM`] (which of the scenario's fault kinds this seed switches
//! on), [`SERVER_STREAM`] (the server's knobs), [`SSE_STREAM`] (the legacy
//! SSE framing: priming event, notifications before the response) and the
//! fault plan's own
//! [`crate::faults::FAULT_STREAM`]. Switching a fault kind on or off, or
//! adding one to a scenario, changes the plan and nothing that was drawn for
//! the workload or the server.
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

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use mcp_session::transport::HttpConfig;
use mcp_session::{Era, Mode, SessionConfig, VersionPolicy};

use crate::balancer::Policy;
use crate::faults::{FaultKind, FaultPlan, FaultSpace};
use crate::scenarios::Scenario;
use crate::server::{ServerConfig, ServerEra};
use crate::topology::Latency;

/// The workload's ChaCha stream ("workload" in ASCII).
pub const WORKLOAD_STREAM: u64 = 0x776f_726b_6c6f_6164;
/// The swarm subset's ChaCha stream ("swarm" in ASCII).
pub const SWARM_STREAM: u64 = 0x73_7761_726d;
/// The server knobs' ChaCha stream ("server" in ASCII).
pub const SERVER_STREAM: u64 = 0x7365_7276_6572;
/// The SSE framing knobs' ChaCha stream ("sse" in ASCII): whether legacy
/// SSE answers open with a priming event, and how many notifications come
/// before the response. Its own stream, so that drawing them shifts none
/// of the other knobs.
pub const SSE_STREAM: u64 = 0x73_7365;

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

impl Schedule {
    /// The schedule of `scenario` for `seed`: the same pair always gives the
    /// same schedule.
    pub fn generate(scenario: &Scenario, seed: u64) -> Schedule {
        let mut w = stream(seed, WORKLOAD_STREAM);
        let mut session = vary_session(scenario, &mut w);
        let workers = (1..=scenario.workers.max(1))
            .map(|i| {
                let vus = vu_count(&mut w, scenario.vus);
                WorkerPlan {
                    name: worker_host(i),
                    vus: (1..=vus).map(|vu| program(scenario, vu, &mut w)).collect(),
                }
            })
            .collect::<Vec<_>>();

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

        let mut sv = stream(seed, SERVER_STREAM);
        let server = ServerConfig {
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
        let mut server = server;
        // What real servers put in a legacy SSE stream besides the answer
        // (the TypeScript SDK opens it with a priming event; log
        // notifications precede a tool's result): a client that took the
        // first event for the answer, or choked on an empty one, fails
        // only where a stream has them.
        let mut sse = stream(seed, SSE_STREAM);
        server.sse_priming = sse.random_bool(0.5);
        server.notifications_before_response = sse.random_range(0..=2);
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
        let servers: Vec<String> = match balancer {
            Some(b) => (0..b.instances).map(instance_host).collect(),
            None => vec![SERVER_HOST.to_owned()],
        };

        let faults = if scenario.fault_events == 0 || fault_kinds.is_empty() {
            FaultPlan::none()
        } else {
            let space = FaultSpace {
                kinds: fault_kinds.clone(),
                workers: workers.iter().map(|w| w.name.clone()).collect(),
                servers,
                balancers: if balancer.is_some() {
                    vec![SERVER_HOST.to_owned()]
                } else {
                    Vec::new()
                },
                ..fault_space(scenario, &session, busy_ms(&session, &workers))
            };
            FaultPlan::generate(seed, &space)
        };

        Schedule {
            seed,
            session,
            http: scenario.http.clone(),
            workers,
            server,
            latency,
            fault_kinds,
            faults,
            duration_ms: scenario.duration_ms,
            balancer,
        }
    }

    /// Checks a schedule that did not come from [`Schedule::generate`] (a
    /// file written or edited by hand) before it runs: every worker named
    /// once and not like a server host, latencies and server knobs in
    /// range, the fault plan naming only hosts the schedule has. The error
    /// names the field and the value.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        let servers = self.server_hosts();
        for (i, w) in self.workers.iter().enumerate() {
            let field = format!("workers[{i}].name");
            if w.name.is_empty() {
                return Err(format!("{field} is empty"));
            }
            if w.name == SERVER_HOST || servers.contains(&w.name) {
                return Err(format!("{field} {:?} is a server host's name", w.name));
            }
            if !names.insert(w.name.as_str()) {
                return Err(format!("{field} {:?} names two workers", w.name));
            }
        }
        let l = self.latency;
        if l.min_ms > l.max_ms {
            return Err(format!(
                "latency.min_ms {} is above latency.max_ms {}",
                l.min_ms, l.max_ms
            ));
        }
        let cfg = &self.server;
        if !(0.0..=1.0).contains(&cfg.sse_ratio) {
            return Err(format!(
                "server.sse_ratio {} is not in 0..=1",
                cfg.sse_ratio
            ));
        }
        if cfg.split_chunks > MAX_SPLIT_CHUNKS {
            return Err(format!(
                "server.split_chunks {} is above the maximum of {MAX_SPLIT_CHUNKS}",
                cfg.split_chunks
            ));
        }
        if cfg.notifications_before_response > MAX_NOTIFICATIONS {
            return Err(format!(
                "server.notifications_before_response {} is above the maximum of {MAX_NOTIFICATIONS}",
                cfg.notifications_before_response
            ));
        }
        if let Some(b) = self.balancer {
            if !(1..=MAX_INSTANCES).contains(&b.instances) {
                return Err(format!(
                    "balancer.instances {} is not in 1..={MAX_INSTANCES}",
                    b.instances
                ));
            }
        }
        let workers: Vec<String> = self.workers.iter().map(|w| w.name.clone()).collect();
        let balancers: Vec<String> = match self.balancer {
            Some(_) => vec![SERVER_HOST.to_owned()],
            None => Vec::new(),
        };
        self.faults
            .check_hosts(&servers, &balancers, &workers)
            .map_err(|e| format!("faults: {e}"))
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
        ..FaultSpace::default()
    }
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

/// VU `vu`'s program.
fn program(scenario: &Scenario, vu: u64, rng: &mut ChaCha8Rng) -> Program {
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
                    scenario.session.max_idle_ms
                } else {
                    (scenario.session.max_idle_ms + within(rng, (0, 2 * spread)))
                        .saturating_sub(spread)
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
        let thinks: Vec<u64> = (0..5)
            .flat_map(|seed| Schedule::generate(&s, seed).workers)
            .flat_map(|w| w.vus)
            .flat_map(|p| p.steps)
            .filter_map(|step| match step {
                Step::Call { think_ms, .. } | Step::CancelAcquire { think_ms, .. } => {
                    Some(think_ms)
                }
                Step::CloseManager => None,
            })
            .collect();
        let at = thinks
            .iter()
            .filter(|t| **t == s.session.max_idle_ms)
            .count();
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
