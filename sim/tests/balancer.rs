//! Several server instances behind a simulated load balancer, against the
//! library's real client, inside turmoil.
//!
//! Why MCP 2026-07-28 went stateless, shown by simulation: a modern
//! (stateless) client works against whichever instance a round-robin
//! balancer picks; a legacy session that lands on an instance that did not
//! create it gets 404, and the client must invalidate and initialize again;
//! a sticky balancer hides the problem until stickiness is switched off.
//! Then the meta-checks: a seed gives the same balancer log and the same
//! server logs twice, and the random policy is a function of its seed.
//!
//! Each world: one balancer host `server` (the name the worker dials) in
//! front of instances `server-0`, `server-1`, `server-2`, and one worker
//! whose VUs run rounds of acquire, one `echo`, give the lease back
//! (invalidate it when the error says so).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use mcp_session::transport::{HttpConfig, Operation, TransportError};
use mcp_session::{Era, Mode, SessionConfig, SessionError, SessionMetrics};
use mcp_sim::balancer::{Event, Policy, Route, Stamped};
use mcp_sim::faults::{FaultEvent, FaultPlan, Scheduled};
use mcp_sim::server::{ServerConfig, ServerEra, ServerEvent};
use mcp_sim::topology::{Latency, Topology, Vu, VuKey, WorkerSpec, World};

const BALANCER: &str = "server";
const WORKER: &str = "worker";
const INSTANCES: usize = 3;

// ---------------------------------------------------------------- the probe --

/// One round of a VU: when it began, and how it ended.
#[derive(Clone, Debug)]
struct Round {
    at_ms: u64,
    result: Result<(), SessionError>,
}

fn now_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as u64)
}

fn echo(text: &str) -> Operation {
    Operation::ToolsCall {
        name: "echo".into(),
        arguments: json!({ "text": text }),
    }
}

/// `rounds` rounds, `gap_ms` apart: acquire, one echo, then release the
/// lease, or invalidate it if the error says the session is gone.
async fn probe(vu: Vu, rounds: u32, gap_ms: u64) -> Vec<Round> {
    let mut out = Vec::new();
    for round in 0..rounds {
        let at_ms = now_ms();
        let result = match vu.manager.acquire(vu.id).await {
            Err(e) => Err(e),
            Ok(mut lease) => {
                let text = format!("vu {} round {round}", vu.id);
                match lease.call(&echo(&text)).await {
                    Ok(_) => {
                        lease.release();
                        Ok(())
                    }
                    Err(e) if e.should_invalidate() => {
                        lease.invalidate();
                        Err(e)
                    }
                    Err(e) => {
                        lease.release();
                        Err(e)
                    }
                }
            }
        };
        out.push(Round { at_ms, result });
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
    }
    out
}

// ---------------------------------------------------------------- the world --

/// A world for one test.
#[derive(Clone, Debug)]
struct Setup {
    seed: u64,
    mode: Mode,
    era: Era,
    server_era: ServerEra,
    policy: Policy,
    vus: u64,
    rounds: u32,
    gap_ms: u64,
}

impl Setup {
    fn new(seed: u64, era: Era, policy: Policy) -> Setup {
        Setup {
            seed,
            mode: Mode::Reuse,
            era,
            server_era: ServerEra::Dual,
            policy,
            vus: 4,
            rounds: 12,
            gap_ms: 50,
        }
    }

    fn mode(self, mode: Mode) -> Setup {
        Setup { mode, ..self }
    }

    fn session(&self) -> SessionConfig {
        let cfg = match self.mode {
            Mode::Pool => SessionConfig {
                acquire_timeout_ms: 2_000,
                ..SessionConfig::pool(2)
            },
            mode => SessionConfig::with_mode(mode),
        };
        SessionConfig {
            era: self.era,
            ..cfg
        }
    }

    fn build(&self) -> World<Vec<Round>> {
        let http = HttpConfig {
            connect_timeout_ms: 1_000,
            request_timeout_ms: 2_000,
            close_timeout_ms: 1_000,
            ..HttpConfig::default()
        };
        let server = ServerConfig {
            seed: self.seed,
            era: self.server_era,
            ..ServerConfig::default()
        };
        let worker = WorkerSpec::new(WORKER, BALANCER, self.session(), self.vus).http(http);
        let (rounds, gap) = (self.rounds, self.gap_ms);
        Topology::new(self.seed, Duration::from_secs(120))
            .latency(Latency::new(1, 5))
            .balanced(BALANCER, server, INSTANCES, self.policy)
            .worker(worker)
            .build(move |vu| probe(vu, rounds, gap))
    }
}

/// What a run left behind.
struct Outcome {
    rounds: BTreeMap<VuKey, Vec<Round>>,
    metrics: SessionMetrics,
    served: Vec<u64>,
    balancer: Vec<Stamped>,
    balancer_json: String,
    servers_json: String,
    server_events: BTreeMap<String, Vec<ServerEvent>>,
}

impl Outcome {
    fn of(world: &World<Vec<Round>>) -> Outcome {
        let balancer = world.balancer(BALANCER);
        let server_events = world
            .servers()
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    s.events().into_iter().map(|e| e.event).collect(),
                )
            })
            .collect();
        Outcome {
            rounds: world.take_results(),
            metrics: world.metrics()[WORKER],
            served: balancer.served(),
            balancer: balancer.events(),
            balancer_json: balancer.events_json(),
            servers_json: world.server_events_json(),
            server_events,
        }
    }

    fn errors(&self) -> Vec<&SessionError> {
        let rounds = self.rounds.values().flatten();
        rounds.filter_map(|r| r.result.as_ref().err()).collect()
    }

    /// Every VU ran all its rounds: nothing hung.
    fn assert_complete(&self, setup: &Setup) {
        assert_eq!(self.rounds.len() as u64, setup.vus, "every VU ended");
        for (vu, rounds) in &self.rounds {
            assert_eq!(rounds.len(), setup.rounds as usize, "{vu:?}");
        }
        if let Err(e) = self.metrics.check_accounting() {
            panic!("{e}: {:?}", self.metrics);
        }
        assert_eq!(self.metrics.live_sessions, 0, "{:?}", self.metrics);
    }

    /// The statuses the balancer relayed, in order.
    fn statuses(&self) -> Vec<u16> {
        self.balancer
            .iter()
            .filter_map(|s| match s.event {
                Event::Answered { status, .. } => Some(status),
                _ => None,
            })
            .collect()
    }

    /// How many requests named a session their instance did not know.
    fn unknown_sessions(&self) -> usize {
        let events = self.server_events.values().flatten();
        events
            .filter(|e| matches!(e, ServerEvent::UnknownSession { .. }))
            .count()
    }

    /// Every request an instance logged names the worker as its client:
    /// the balancer's `Forwarded: for=` (an instance's TCP peer is the
    /// balancer).
    fn assert_from_the_worker(&self) {
        let mut seen = 0;
        for e in self.server_events.values().flatten() {
            let from = match e {
                ServerEvent::StatelessWire { from, .. }
                | ServerEvent::SessionCreated { from, .. }
                | ServerEvent::Request { from, .. }
                | ServerEvent::Notification { from, .. }
                | ServerEvent::Deleted { from, .. }
                | ServerEvent::UnknownSession { from, .. } => from,
                _ => continue,
            };
            assert_eq!(from.as_deref(), Some(WORKER), "{e:?}");
            seen += 1;
        }
        assert!(seen > 0, "no request logged");
    }

    /// The backend of every routed request, in order.
    fn backends(&self) -> Vec<usize> {
        self.balancer
            .iter()
            .filter_map(|s| match s.event {
                Event::Routed { backend, .. } => Some(backend),
                _ => None,
            })
            .collect()
    }
}

fn run(setup: &Setup) -> Outcome {
    let mut world = setup.build();
    world.run().expect("simulation");
    Outcome::of(&world)
}

// ---------------------------------------------------------------- the tests --

/// The hosts: instances `server-0..2` are server hosts, `server` is the
/// balancer the worker dials.
#[test]
fn a_balanced_server_is_instances_behind_one_name() {
    let world = Setup::new(1, Era::Modern, Policy::RoundRobin).build();
    let names: Vec<&String> = world.servers().keys().collect();
    assert_eq!(names, ["server-0", "server-1", "server-2"]);
    let seeds: Vec<u64> = world.servers().values().map(|s| s.config().seed).collect();
    assert_eq!(seeds[0], 1);
    assert!(seeds[0] != seeds[1] && seeds[1] != seeds[2], "{seeds:?}");
    assert_eq!(
        world.balancer(BALANCER).backends(),
        ["server-0", "server-1", "server-2"]
    );
    assert_eq!(world.balancer(BALANCER).policy(), Policy::RoundRobin);
}

/// (a) Stateless clients do not care which instance answers: every mode
/// runs without a failed operation, and every instance served.
#[test]
fn modern_clients_work_behind_round_robin_in_every_mode() {
    for mode in Mode::ALL {
        let setup = Setup::new(11, Era::Modern, Policy::RoundRobin).mode(mode);
        let o = run(&setup);
        o.assert_complete(&setup);
        assert!(o.errors().is_empty(), "{mode:?}: {:#?}", o.errors());
        assert!(o.served.iter().all(|&n| n > 0), "{mode:?}: {:?}", o.served);
        for (name, events) in &o.server_events {
            let served = events
                .iter()
                .filter(|e| matches!(e, ServerEvent::StatelessRequest { .. }))
                .count();
            assert!(served > 0, "{mode:?}: {name} served no stateless request");
        }
        assert_eq!(o.unknown_sessions(), 0, "{mode:?}");
        assert!(o.statuses().iter().all(|&s| s < 300), "{mode:?}");
        o.assert_from_the_worker();
    }
}

/// (b) Legacy sessions behind round-robin break: an instance that did not
/// create a session answers 404, the client invalidates and initializes
/// again (counted as reconnects), and nothing hangs.
#[test]
fn legacy_sessions_break_behind_round_robin() {
    let setup = Setup::new(21, Era::Legacy, Policy::RoundRobin);
    let o = run(&setup);
    o.assert_complete(&setup);
    assert!(
        o.unknown_sessions() > 0,
        "no instance saw a foreign session"
    );
    assert!(o.statuses().contains(&404), "{:?}", o.statuses());
    let errors = o.errors();
    assert!(
        errors.iter().any(|e| e.should_invalidate()),
        "no call saw its session gone: {errors:#?}"
    );
    assert!(o.metrics.reconnects > 0, "{:?}", o.metrics);
    o.assert_from_the_worker();
    // A 404 came only for an id another instance minted.
    for (name, events) in &o.server_events {
        for e in events {
            if let ServerEvent::UnknownSession { session, .. } = e {
                let (_, minted_by) = session.split_once('@').expect("a qualified id");
                assert_ne!(minted_by, name, "{name} refused its own {session}");
            }
        }
    }
}

/// (c) A sticky balancer sends every request of a session to the instance
/// that created it: legacy clients run without a 404.
#[test]
fn legacy_sessions_hold_behind_a_sticky_balancer() {
    for mode in Mode::ALL {
        let setup = Setup::new(31, Era::Legacy, Policy::Sticky).mode(mode);
        let o = run(&setup);
        o.assert_complete(&setup);
        assert!(o.errors().is_empty(), "{mode:?}: {:#?}", o.errors());
        assert_eq!(o.unknown_sessions(), 0, "{mode:?}");
        assert!(!o.statuses().contains(&404), "{mode:?}");
        assert_eq!(o.metrics.reconnects, 0, "{mode:?}: {:?}", o.metrics);
        let learned = o.balancer.iter().any(|s| {
            matches!(
                s.event,
                Event::Routed {
                    route: Route::Learned,
                    ..
                }
            )
        });
        assert!(learned, "{mode:?}: no request followed its session");
    }
}

/// (d) Switching stickiness off mid-run (sticky → round-robin) starts the
/// 404s: none before the switch, some after.
#[test]
fn switching_stickiness_off_mid_run_starts_the_404s() {
    let setup = Setup {
        rounds: 20,
        ..Setup::new(41, Era::Legacy, Policy::Sticky)
    };
    let switch_at = Duration::from_millis(500);
    let mut world = setup.build();
    let mut switched = false;
    while !world.sim().step().expect("simulation") {
        if !switched && world.elapsed() >= switch_at {
            let balancer = world.balancer(BALANCER);
            balancer.advance_clock_to(world.elapsed());
            balancer.set_policy(Policy::RoundRobin);
            switched = true;
        }
    }
    assert!(switched, "the run ended before the switch");
    let o = Outcome::of(&world);
    o.assert_complete(&setup);
    let at = o
        .balancer
        .iter()
        .position(|s| {
            s.event
                == Event::PolicySet {
                    policy: Policy::RoundRobin,
                }
        })
        .expect("the switch is logged");
    let (before, after) = o.balancer.split_at(at);
    let is_404 = |s: &Stamped| matches!(s.event, Event::Answered { status: 404, .. });
    assert!(
        before.len() > 10,
        "requests before the switch: {}",
        before.len()
    );
    assert!(!before.iter().any(is_404), "a 404 while sticky");
    assert!(after.iter().any(is_404), "no 404 after the switch");
    assert!(o.metrics.reconnects > 0, "{:?}", o.metrics);
    // Every failed round was under way at the switch or began after it
    // (a round takes a few milliseconds on these links).
    let switch_ms = o.balancer[at].at_ms;
    let failed: Vec<&Round> = o
        .rounds
        .values()
        .flatten()
        .filter(|r| r.result.is_err())
        .collect();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|r| r.at_ms + 100 >= switch_ms),
        "{failed:#?}"
    );
}

/// (e) The same seed twice: the same balancer log, the same server logs.
#[test]
fn the_same_seed_gives_the_same_logs() {
    for policy in Policy::ALL {
        let setup = Setup::new(51, Era::Legacy, policy);
        let (a, b) = (run(&setup), run(&setup));
        assert!(!a.balancer_json.is_empty());
        assert_eq!(a.balancer_json, b.balancer_json, "{policy:?}");
        assert_eq!(a.servers_json, b.servers_json, "{policy:?}");
        assert_eq!(a.metrics, b.metrics, "{policy:?}");
    }
}

/// (f) The random policy is a function of the seed: the same seed routes
/// the same way, another seed another way, and every instance is drawn.
#[test]
fn random_routing_is_reproducible_by_seed() {
    let routes = |seed| run(&Setup::new(seed, Era::Modern, Policy::Random)).backends();
    let (a, b, c) = (routes(61), routes(61), routes(62));
    assert_eq!(a, b);
    assert_ne!(a, c);
    for i in 0..INSTANCES {
        assert!(a.contains(&i), "instance {i} never drawn: {a:?}");
    }
    let o = run(&Setup::new(61, Era::Modern, Policy::Random));
    assert!(o.errors().is_empty(), "{:#?}", o.errors());
    let all_random = o.balancer.iter().all(|s| match &s.event {
        Event::Routed { route, .. } => *route == Route::Random,
        _ => true,
    });
    assert!(all_random);
}

/// An instance that is down is a 502 from the balancer (logged as
/// `failed`), not a hang; once it is back, every round succeeds again.
#[test]
fn a_crashed_instance_is_a_502_and_the_client_recovers() {
    let setup = Setup {
        rounds: 30,
        ..Setup::new(71, Era::Modern, Policy::RoundRobin)
    };
    let crash = FaultEvent::Crash {
        server: "server-1".into(),
        down_ms: 300,
    };
    let plan = FaultPlan::new(vec![Scheduled {
        at_ms: 300,
        event: crash,
    }]);
    let mut world = setup.build();
    world.run_with(&plan).expect("simulation");
    let o = Outcome::of(&world);
    o.assert_complete(&setup);
    let failed: Vec<usize> = o
        .balancer
        .iter()
        .filter_map(|s| match s.event {
            Event::Failed { backend, .. } => Some(backend),
            _ => None,
        })
        .collect();
    assert!(!failed.is_empty(), "no request met the crashed instance");
    assert!(failed.iter().all(|&b| b == 1), "{failed:?}");
    let saw_502 = o.errors().iter().any(|e| {
        matches!(
            e.transport(),
            Some(TransportError::ServerError { status: 502 })
        )
    });
    assert!(saw_502, "{:#?}", o.errors());
    for (vu, rounds) in &o.rounds {
        let tail = &rounds[rounds.len() - 5..];
        assert!(tail.iter().all(|r| r.result.is_ok()), "{vu:?}: {tail:#?}");
    }
}
