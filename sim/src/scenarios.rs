//! The built-in named scenarios: a mode, a workload shape and a fault
//! profile each. A [`Scenario`] is the space a seed draws a
//! [`crate::schedule::Schedule`] from; [`Scenario::by_name`] finds one,
//! [`Scenario::all`] lists them in a fixed order.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use mcp_session::transport::HttpConfig;
use mcp_session::{Era, Mode, SessionConfig};

use crate::balancer::Policy;
use crate::faults::FaultKind;
use crate::server::ServerEra;

/// A named family of runs: what the manager is, how many VUs do what, and
/// which fault kinds a seed may switch on (swarm testing: each seed switches
/// on a random subset of them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The name (`reuse`, `eviction-race`, ...).
    pub name: String,
    /// One line on what it exercises.
    pub doc: String,
    /// The manager config every seed starts from (a seed may vary the
    /// pool size, the churn trigger, the version policy, the requested
    /// revision and the limits, see [`Scenario::vary`]).
    pub session: SessionConfig,
    /// The transport's timeouts (its `url` is set by the topology).
    pub http: HttpConfig,
    /// Worker hosts.
    pub workers: u64,
    /// VUs per worker, drawn from `vus.0..=vus.1` log-uniformly (each
    /// doubling band as likely).
    pub vus: (u64, u64),
    /// Steps per VU, drawn from `steps.0..=steps.1`.
    pub steps: (u32, u32),
    /// Think time after each step, drawn from `think_ms.0..=think_ms.1`.
    pub think_ms: (u64, u64),
    /// How long a `slow` tool call sleeps, drawn from
    /// `slow_ms.0..=slow_ms.1`.
    pub slow_ms: (u64, u64),
    /// Percent of steps that are `slow` tool calls.
    pub slow_pct: u32,
    /// Percent of steps that start an acquire and cancel it.
    pub cancel_pct: u32,
    /// When a cancelled acquire is dropped, drawn from
    /// `cancel_after_ms.0..=cancel_after_ms.1`.
    pub cancel_after_ms: (u64, u64),
    /// Whether VU 1 of each worker closes the manager part-way through its
    /// program (the others then run into a closed manager).
    pub close_mid_run: bool,
    /// What the seed may vary in the manager config.
    pub vary: Vary,
    /// The fault kinds a seed may switch on.
    pub fault_kinds: BTreeSet<FaultKind>,
    /// How many fault events a plan holds (0: no faults).
    pub fault_events: u32,
    /// Faults start at or after this simulated time (ms).
    pub fault_start_ms: u64,
    /// Faults start before this simulated time (ms), and before the
    /// workload's estimated end ([`crate::schedule::busy_ms`]).
    pub fault_end_ms: u64,
    /// Percent of a plan's events (after the first) that follow an earlier
    /// one, where it has its effect ([`crate::faults::FaultSpace::follow_pct`]).
    pub fault_follow_pct: u32,
    /// Percent of think times set to exactly `max_idle_ms`: the VU's next
    /// acquire then falls on the idle deadline of the session it just
    /// released (an acquire racing its eviction).
    pub deadline_think_pct: u32,
    /// How far (ms) a deadline think time may fall either side of
    /// `max_idle_ms`, drawn evenly from `-spread..=spread`: with 1, the next
    /// acquire comes a millisecond before, at or after the deadline (0:
    /// exactly at it, with no extra draw).
    pub deadline_think_spread_ms: u64,
    /// The server's session idle limit, if any (ms).
    pub server_idle_ms: Option<u64>,
    /// The simulation's bound on simulated time (ms): a run still going
    /// then is a hang.
    pub duration_ms: u64,
    /// The eras the server may start in, one drawn per seed (empty: the
    /// server config's default, legacy; one: that one, with no draw).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_eras: Vec<ServerEra>,
    /// The era settings the client may have, one drawn per seed among
    /// those that can work with the server's era drawn before it
    /// ([`crate::schedule::eras_meet`]; empty: the session config's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_eras: Vec<Era>,
    /// The `ttlMs` a stateless-era server may give its `server/discover`
    /// results, one drawn per seed (empty: the server config's, 0): how
    /// long the client may make contexts without asking again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discover_ttls_ms: Vec<u64>,
    /// Server instances behind a load balancer, if any (absent: one
    /// server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<BalancerSpace>,
}

/// What a seed may draw of a balanced server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerSpace {
    /// How many instances, drawn from `instances.0..=instances.1` (at
    /// least 1).
    pub instances: (u64, u64),
    /// The routing policies the balancer may start with, one drawn.
    pub policies: Vec<Policy>,
}

/// How many seeds the test sweep runs of a scenario by default (see
/// [`Scenario::default_seeds`]).
pub const DEFAULT_SEEDS: u64 = 6;

/// How many seeds `mcp-sim sweep` runs of a scenario by default (see
/// [`Scenario::sweep_seeds`]).
pub const SWEEP_SEEDS: u64 = 500;

/// What a seed may vary in a scenario's manager config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vary {
    /// Pool size drawn from `1..=pool_size` of the base config.
    pub pool_size: bool,
    /// Churn by operations (1..=4) or by time (100..=500 ms), drawn.
    pub churn: bool,
    /// The version policy drawn: strict (the default) half the time,
    /// supported or none a quarter each.
    pub version_policy: bool,
    /// The legacy revision the client asks for in `initialize` drawn among
    /// the four it speaks (2024-11-05 and 2025-03-26 send no
    /// `MCP-Protocol-Version` header): the default, 2025-11-25, half the
    /// time, each older one a sixth. A version mismatch fault then answers
    /// a revision other than the one asked for
    /// ([`crate::schedule::fault_space`]).
    #[serde(default)]
    pub protocol_version: bool,
    /// The manager's limits drawn around the scenario's: `ttl_ms`,
    /// `max_idle_ms` and (pool mode) `acquire_timeout_ms`, each from
    /// two thirds to four thirds of its base; a base of the library's
    /// defaults (limits far beyond a run) is kept half the time, else
    /// switched off (0) or drawn short enough to act within a run (see
    /// [`crate::schedule`], the knobs stream).
    #[serde(default)]
    pub limits: bool,
}

/// The transport timeouts of every scenario: connects and requests short,
/// so failures resolve within a few simulated seconds; the DELETE that
/// closes a session as long as the library's default, longer than a round
/// trip under the worst latency fault, so a close is not lost to latency.
fn http() -> HttpConfig {
    HttpConfig {
        connect_timeout_ms: 800,
        request_timeout_ms: 1_500,
        close_timeout_ms: 5_000,
        ..HttpConfig::default()
    }
}

/// The goals each built-in scenario promises: the table behind
/// [`Scenario::promised_goals`] (which says how a goal earns its place),
/// one row per scenario. Kept as data, apart from the code, so that the
/// list reads as the list it is.
const PROMISED_GOALS: &[(&str, &[&str])] = &[
    (
        "reuse",
        &[
            "acquire_at_eviction_deadline",
            "acquire_cancelled_creating",
            "discover_refreshed",
            "fell_back_to_legacy",
            "idle_eviction",
            "lost_modern_stream",
            "recreate_after_404_reuse",
        ],
    ),
    (
        "per_request",
        &[
            "acquire_cancelled_creating",
            "discover_refreshed",
            "fell_back_to_legacy",
            "lost_modern_stream",
        ],
    ),
    (
        "pool",
        &[
            "acquire_cancelled_creating",
            "acquire_cancelled_waiting",
            "discover_refreshed",
            "fell_back_to_legacy",
            "pool_wait",
            "recreate_after_404_pool",
            "waiter_served_after_release",
        ],
    ),
    (
        "churn",
        &[
            "acquire_cancelled_creating",
            "churn_by_ops",
            "churn_by_time",
            "discover_refreshed",
            "fell_back_to_legacy",
            "idle_eviction",
            "recreate_after_404_churn",
            "server_crash_during_initialize",
        ],
    ),
    (
        "eviction-race",
        &[
            "acquire_at_eviction_deadline",
            "acquire_cancelled_creating",
            "acquire_cancelled_waiting",
            "discover_refreshed",
            "fell_back_to_legacy",
            "idle_eviction",
            "pool_timeout",
            "pool_wait",
            "recreate_after_404_pool",
            "ttl_eviction_idle",
            "ttl_in_use_closed_on_release",
            "waiter_served_after_failed_create",
            "waiter_served_after_release",
        ],
    ),
    (
        "pool-timeout",
        &[
            "acquire_cancelled_waiting",
            "discover_refreshed",
            "fell_back_to_legacy",
            "pool_timeout",
            "pool_wait",
            "recreate_after_404_pool",
            "ttl_in_use_closed_on_release",
            "waiter_served_after_release",
        ],
    ),
    (
        "server-crash",
        &[
            "acquire_cancelled_creating",
            "acquire_cancelled_waiting",
            "discover_refreshed",
            "fell_back_to_legacy",
            "lost_modern_stream",
            "pool_wait",
            "recreate_after_404_pool",
            "server_crash_during_initialize",
            "waiter_served_after_failed_create",
            "waiter_served_after_release",
        ],
    ),
    (
        "partition",
        &[
            "acquire_cancelled_creating",
            "discover_refreshed",
            "fell_back_to_legacy",
            "idle_eviction",
            "recreate_after_404_reuse",
            "ttl_eviction_idle",
            "ttl_in_use_closed_on_release",
        ],
    ),
    (
        "version-policy",
        &[
            "acquire_cancelled_creating",
            "discover_refreshed",
            "fell_back_to_legacy",
            "version_mismatch_rejected_strict",
        ],
    ),
    (
        "close-under-load",
        &[
            "acquire_cancelled_waiting",
            "close_with_waiters_pending",
            "discover_refreshed",
            "fell_back_to_legacy",
            "pool_wait",
            "waiter_served_after_release",
        ],
    ),
    (
        "era-negotiation",
        &[
            "acquire_cancelled_creating",
            "churn_by_ops",
            "churn_by_time",
            "discover_refreshed",
            "fell_back_to_legacy",
            "lost_modern_stream",
            "mrtr_completed",
            "recreate_after_404_churn",
            "version_retried",
        ],
    ),
    (
        "upgrade-mid-run",
        &[
            "acquire_cancelled_creating",
            "discover_refreshed",
            "fell_back_to_legacy",
            "idle_eviction",
            "legacy_after_downgrade",
            "modern_after_upgrade",
            "recreate_after_404_reuse",
        ],
    ),
    (
        "stateless-behind-lb",
        &[
            "acquire_cancelled_creating",
            "discover_refreshed",
            "fell_back_to_legacy",
            "idle_eviction",
            "legacy_session_broken_by_balancer",
            "mrtr_completed",
            "recreate_after_404_reuse",
        ],
    ),
];

impl Scenario {
    /// A scenario `name` in `mode` with the common defaults: one worker of
    /// 1 to 64 VUs (drawn log-uniformly) doing 4 to 10 steps (5% of them cancelled acquires), no
    /// faults; faults, when switched on, start from 20 ms and a quarter of
    /// them follow an earlier one.
    ///
    /// Every seed draws the server's era (legacy, dual or modern) and then
    /// the client's era setting among those that can work with it (era
    /// swarm): the four modes, eviction and the pool run in both eras. The
    /// config's own era, legacy, is what a scenario without the draw gets.
    fn base(name: &str, doc: &str, session: SessionConfig) -> Scenario {
        Scenario {
            name: name.into(),
            doc: doc.into(),
            session: SessionConfig {
                era: Era::Legacy,
                ..session
            },
            http: http(),
            workers: 1,
            vus: (1, 64),
            steps: (4, 10),
            think_ms: (0, 120),
            slow_ms: (20, 200),
            slow_pct: 15,
            cancel_pct: 5,
            cancel_after_ms: (0, 50),
            close_mid_run: false,
            vary: Vary {
                protocol_version: true,
                limits: true,
                ..Vary::default()
            },
            fault_kinds: BTreeSet::new(),
            fault_events: 0,
            fault_start_ms: 20,
            fault_end_ms: 3_000,
            fault_follow_pct: 25,
            deadline_think_pct: 0,
            deadline_think_spread_ms: 0,
            server_idle_ms: None,
            duration_ms: 120_000,
            server_eras: ServerEra::ALL.to_vec(),
            client_eras: Era::ALL.to_vec(),
            discover_ttls_ms: vec![0, 500, 60_000],
            balancer: None,
        }
    }

    fn faults(mut self, events: u32, kinds: impl IntoIterator<Item = FaultKind>) -> Scenario {
        self.fault_events = events;
        self.fault_kinds = kinds.into_iter().collect();
        self
    }

    /// `reuse`: one session per VU, kept across operations; 404s from
    /// expiries and restarts lead to re-creation. The idle limit (100 ms)
    /// is within the think times, and a fifth of them fall a millisecond
    /// before, at or after it: a VU's acquire races the eviction of its own
    /// session (the reference's defect 3 lived there).
    pub fn reuse() -> Scenario {
        let mut s = Scenario::base(
            "reuse",
            "reuse mode: one session per VU, idle limit within the think times; expiries, bounces and 5xx",
            SessionConfig {
                max_idle_ms: 100,
                ..SessionConfig::with_mode(Mode::Reuse)
            },
        )
        .faults(
            3,
            [
                FaultKind::EarlyExpiry,
                FaultKind::Bounce,
                FaultKind::ServerErrors,
                FaultKind::ConnectionReset,
                FaultKind::LatencySpike,
            ],
        );
        s.deadline_think_pct = 20;
        s.deadline_think_spread_ms = 1;
        s
    }

    /// `per_request`: a new session for every operation; spoiled answers.
    pub fn per_request() -> Scenario {
        Scenario::base(
            "per_request",
            "per-request mode: a session per operation; 5xx and spoiled answers",
            SessionConfig::with_mode(Mode::PerRequest),
        )
        .faults(
            3,
            [
                FaultKind::ServerErrors,
                FaultKind::MalformedJson,
                FaultKind::TruncatedSse,
                FaultKind::Hold,
            ],
        )
    }

    /// `pool`: VUs share a bounded pool and wait for it (FIFO).
    pub fn pool() -> Scenario {
        let mut s = Scenario::base(
            "pool",
            "pool mode: up to pool_size shared sessions, FIFO waiters; expiries and restarts",
            SessionConfig {
                acquire_timeout_ms: 1_500,
                ..SessionConfig::pool(4)
            },
        )
        .faults(
            3,
            [
                FaultKind::EarlyExpiry,
                FaultKind::Bounce,
                FaultKind::ServerErrors,
                FaultKind::LatencyRange,
            ],
        );
        s.vus = (4, 10);
        s.vary.pool_size = true;
        s
    }

    /// `churn`: sessions replaced after some operations or some time; the
    /// sessions a bounce or an early expiry takes are re-created.
    pub fn churn() -> Scenario {
        Scenario::base(
            "churn",
            "churn mode: sessions replaced by operation count or by age; expiries, bounces and 5xx",
            SessionConfig {
                churn_interval_ops: 2,
                ..SessionConfig::with_mode(Mode::Churn)
            },
        )
        .faults(
            3,
            [
                FaultKind::EarlyExpiry,
                FaultKind::Bounce,
                FaultKind::ServerErrors,
            ],
        )
        .vary_churn()
    }

    fn vary_churn(mut self) -> Scenario {
        self.vary.churn = true;
        self
    }

    /// `eviction-race`: idle and TTL limits as short as the think times, so
    /// acquires, releases and evictions meet; 15% of think times are
    /// exactly the idle limit, so an acquire often comes at the very
    /// millisecond an idle session is due.
    pub fn eviction_race() -> Scenario {
        let mut s = Scenario::base(
            "eviction-race",
            "pool mode with idle and TTL limits near the think times: evictions race acquires",
            SessionConfig {
                max_idle_ms: 150,
                ttl_ms: 600,
                acquire_timeout_ms: 1_000,
                ..SessionConfig::pool(3)
            },
        )
        .faults(2, [FaultKind::EarlyExpiry, FaultKind::LatencySpike]);
        s.vus = (3, 8);
        s.think_ms = (50, 300);
        s.deadline_think_pct = 15;
        s.server_idle_ms = Some(2_000);
        s.vary.pool_size = true;
        s
    }

    /// `pool-timeout`: a small pool, many VUs and slow calls, so waits
    /// time out.
    pub fn pool_timeout() -> Scenario {
        let mut s = Scenario::base(
            "pool-timeout",
            "a pool of 1-2 under many VUs and slow calls: waits, timeouts, cancelled waits",
            SessionConfig {
                acquire_timeout_ms: 300,
                ..SessionConfig::pool(2)
            },
        )
        .faults(1, [FaultKind::LatencySpike]);
        s.vus = (6, 14);
        s.steps = (3, 6);
        s.slow_pct = 50;
        s.slow_ms = (100, 500);
        s.cancel_pct = 15;
        s.cancel_after_ms = (0, 200);
        s.vary.pool_size = true;
        s
    }

    /// `server-crash`: the server crashes, restarts, stalls initialize or
    /// cuts connections. Five faults, 40% of them following an earlier one
    /// (a second restart among the re-initializations after a first), and
    /// a slow initialize armed from the start (for the first sessions), so
    /// that restarts often cut an `initialize` short.
    pub fn server_crash() -> Scenario {
        let mut s = Scenario::base(
            "server-crash",
            "pool mode against a crashing server: crash, bounce, slow initialize, resets",
            SessionConfig {
                acquire_timeout_ms: 2_000,
                ..SessionConfig::pool(3)
            },
        )
        .faults(
            5,
            [
                FaultKind::Crash,
                FaultKind::Bounce,
                FaultKind::SlowInitialize,
                FaultKind::ConnectionReset,
            ],
        );
        s.vus = (3, 8);
        s.fault_follow_pct = 40;
        s
    }

    /// `partition`: two workers, links partitioned, held or slowed.
    pub fn partition() -> Scenario {
        let mut s = Scenario::base(
            "partition",
            "two workers in reuse mode; links partitioned, held or slowed",
            SessionConfig::with_mode(Mode::Reuse),
        )
        .faults(
            3,
            [
                FaultKind::Partition,
                FaultKind::Hold,
                FaultKind::LatencyRange,
                FaultKind::LatencySpike,
            ],
        );
        s.workers = 2;
        s.vus = (2, 4);
        s
    }

    /// `version-policy`: the server answers other protocol revisions or
    /// bad session ids; the policy is drawn per seed. Per-request mode, so
    /// sessions are made while the faults are in force.
    pub fn version_policy() -> Scenario {
        let mut s = Scenario::base(
            "version-policy",
            "per-request mode, policy drawn per seed; mismatched versions, missing or invalid session ids",
            SessionConfig::with_mode(Mode::PerRequest),
        )
        .faults(
            3,
            [
                FaultKind::VersionMismatch,
                FaultKind::MissingSessionId,
                FaultKind::InvalidSessionId,
            ],
        );
        s.vary.version_policy = true;
        s
    }

    /// `close-under-load`: the manager is closed while VUs hold sessions
    /// and wait for them.
    pub fn close_under_load() -> Scenario {
        let mut s = Scenario::base(
            "close-under-load",
            "pool mode: VU 1 closes the manager while others hold sessions or wait",
            SessionConfig {
                acquire_timeout_ms: 5_000,
                ..SessionConfig::pool(2)
            },
        );
        s.vus = (6, 12);
        s.slow_pct = 40;
        s.close_mid_run = true;
        s
    }

    /// The client in auto era (`server/discover` first, `initialize` on a
    /// legacy answer, probed again when the verdict stops holding).
    fn auto(mut self) -> Scenario {
        self.session.era = Era::Auto;
        self.client_eras = vec![Era::Auto];
        self
    }

    /// `era-negotiation`: an auto client against a server whose era is
    /// drawn per seed (legacy, dual or modern), which may refuse a served
    /// revision with -32022 (the version trap: the client retries once),
    /// sit behind a proxy that strips the routing headers (-32020: never a
    /// fallback), shorten its discover `ttlMs` and change its
    /// capabilities, cut a stateless answer's stream, or ask for input
    /// (`input_required` rounds the VUs answer). Churn mode (by operations
    /// or by time, drawn), so sessions and contexts are made all through
    /// the run, and each creation may meet a fault: a probe refused, a
    /// discover result gone stale.
    pub fn era_negotiation() -> Scenario {
        let mut s = Scenario::base(
            "era-negotiation",
            "auto era, churn mode, against a legacy, dual or modern server (drawn); the -32022 version trap, stripped headers, discover changes, cut streams, input rounds, bounces, expiries",
            SessionConfig {
                churn_interval_ops: 2,
                ..SessionConfig::with_mode(Mode::Churn)
            },
        )
        .auto()
        .faults(
            5,
            [
                FaultKind::VersionTrap,
                FaultKind::Bounce,
                FaultKind::EarlyExpiry,
                FaultKind::HeaderStrip,
                FaultKind::DiscoverChange,
                FaultKind::ModernStreamCut,
                FaultKind::InputRounds,
            ],
        )
        .vary_churn();
        s.server_eras = ServerEra::ALL.to_vec();
        s.vus = (1, 16);
        s
    }

    /// `upgrade-mid-run`: an auto client against a server that starts
    /// legacy or modern and is redeployed one era up or down mid-run (each
    /// time with a restart): the client must notice and probe again.
    pub fn upgrade_mid_run() -> Scenario {
        let mut s = Scenario::base(
            "upgrade-mid-run",
            "auto era; the server starts legacy or modern and is upgraded or downgraded mid-run (with restarts)",
            SessionConfig::with_mode(Mode::Reuse),
        )
        .auto()
        .faults(6, [FaultKind::EraUpgrade, FaultKind::EraDowngrade]);
        s.server_eras = vec![ServerEra::Legacy, ServerEra::Modern];
        s.vus = (1, 16);
        s.steps = (8, 16);
        s
    }

    /// `stateless-behind-lb`: two or three server instances behind a load
    /// balancer that routes round-robin, at random or sticky by session id
    /// (drawn). A stateless (modern) client works against any instance; a
    /// legacy session routed to an instance that did not mint it gets 404
    /// and the VU's session is made again — why the protocol went
    /// stateless. Reuse mode, so sessions are kept across operations;
    /// instances restart and fail, the balancer switches its policy for a
    /// while, and tool calls ask for input (whose retries any instance
    /// serves).
    pub fn stateless_behind_lb() -> Scenario {
        let mut s = Scenario::base(
            "stateless-behind-lb",
            "reuse mode behind a round-robin, random or sticky balancer over 2-3 instances, both eras; restarts, 5xx, stickiness switches, input rounds",
            SessionConfig::with_mode(Mode::Reuse),
        )
        .faults(
            4,
            [
                FaultKind::Bounce,
                FaultKind::ServerErrors,
                FaultKind::StickinessSwitch,
                FaultKind::InputRounds,
            ],
        );
        s.balancer = Some(BalancerSpace {
            instances: (2, 3),
            policies: Policy::ALL.to_vec(),
        });
        s.vus = (1, 16);
        s
    }

    /// Every built-in scenario, in a fixed order.
    pub fn all() -> Vec<Scenario> {
        vec![
            Scenario::reuse(),
            Scenario::per_request(),
            Scenario::pool(),
            Scenario::churn(),
            Scenario::eviction_race(),
            Scenario::pool_timeout(),
            Scenario::server_crash(),
            Scenario::partition(),
            Scenario::version_policy(),
            Scenario::close_under_load(),
            Scenario::era_negotiation(),
            Scenario::upgrade_mid_run(),
            Scenario::stateless_behind_lb(),
        ]
    }

    /// The built-in scenario `name`, if there is one.
    pub fn by_name(name: &str) -> Option<Scenario> {
        Scenario::all().into_iter().find(|s| s.name == name)
    }

    /// How many seeds (`0..n`) the test sweep runs of this scenario by
    /// default ([`DEFAULT_SEEDS`], more where a goal is rare): the
    /// built-in scenarios together must reach every goal within their
    /// default seed counts (`sim/tests/goals.rs`). `eviction-race` runs 10:
    /// its seeds reach the rarer eviction and pool paths
    /// (`ttl_eviction_idle`, `waiter_served_after_failed_create`) at a
    /// lower rate than the others reach theirs. A run takes milliseconds.
    pub fn default_seeds(&self) -> u64 {
        match self.name.as_str() {
            "eviction-race" => 10,
            _ => DEFAULT_SEEDS,
        }
    }

    /// The goals this scenario promises to reach within its sweep seeds
    /// ([`Scenario::sweep_seeds`]): its sometimes-assertions. A sweep that
    /// runs at least that many seeds of it and misses one of them fails
    /// ([`crate::sweep::SweepReport::goal_promises`]), as an unreached
    /// sometimes-assertion fails in moonpool: the path the goal stands for
    /// is no longer exercised, and the laws along it no longer checked.
    ///
    /// Each goal listed here is reached by at least 20 of the scenario's
    /// first 500 seeds (the odds of 500 seeds missing a goal that one seed
    /// in 25 reaches are below one in a billion); rarer goals of a scenario
    /// are left to others that reach them often. Every goal of
    /// [`crate::audit::GOALS`] is promised by some scenario (a test checks
    /// it), so the default sweep fails if any goal goes unreached. Unknown
    /// scenarios promise nothing.
    pub fn promised_goals(&self) -> &'static [&'static str] {
        PROMISED_GOALS
            .iter()
            .find(|(name, _)| *name == self.name)
            .map_or(&[], |(_, goals)| goals)
    }

    /// How many seeds (`0..n`) `mcp-sim sweep` and `mcp-sim audit` run of
    /// this scenario when not told: [`SWEEP_SEEDS`] (or the test count, if
    /// ever larger). The main job is a thorough search, the test sweep a
    /// quick one: 500 seeds of each of the twelve scenarios take about half a
    /// minute on two cores in a release build.
    pub fn sweep_seeds(&self) -> u64 {
        SWEEP_SEEDS.max(self.default_seeds())
    }

    /// The names of the built-in scenarios, in order.
    pub fn names() -> Vec<String> {
        Scenario::all().into_iter().map(|s| s.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let names = Scenario::names();
        let set: BTreeSet<_> = names.iter().collect();
        assert_eq!(set.len(), names.len());
        for n in &names {
            assert_eq!(Scenario::by_name(n).map(|s| s.name), Some(n.clone()));
        }
        assert!(Scenario::by_name("nope").is_none());
    }

    #[test]
    fn every_base_config_is_valid() {
        for s in Scenario::all() {
            s.session
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        }
    }
}
