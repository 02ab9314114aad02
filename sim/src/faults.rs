//! The fault catalogue: everything that can go wrong between a worker and an
//! MCP server, as plain values, drawn from a seed, applied to a turmoil
//! simulation.
//!
//! # Three layers
//!
//! - [`FaultKind`] names a kind of failure; a set of kinds is what a
//!   scenario switches on.
//! - [`FaultEvent`] is one concrete failure with its parameters (which
//!   host, which link, how long, how many); a [`FaultPlan`] is a list of
//!   them, each at a millisecond of simulated time. A plan is a plain serde
//!   value: it can be printed, saved, diffed, written by hand, and replayed.
//! - [`Applier`] executes a plan in a turmoil [`Sim`]: it steps the
//!   simulation (`sim.step()`, one tick at a time) and, as each event's
//!   time comes, pulls turmoil's own controls (crash, bounce, partition,
//!   hold, per-link latency) or the server's run-time hooks
//!   ([`crate::server::hooks`]). What it did is kept as a log of
//!   [`Applied`] actions.
//!
//! # Why the plan is separate from the run
//!
//! A failing run must replay exactly, and shrink: both need the faults to
//! be data fixed before the run starts, not decisions taken while it runs.
//! So faults never react to what the client does; they happen at fixed
//! simulated times, and the only run-time input is what the target looks
//! like at that moment (which session an early expiry hits is picked from
//! the server's live sessions, in id order; the era an upgrade moves to,
//! and the policy a stickiness switch picks, from the one in force).
//!
//! # Determinism
//!
//! [`FaultPlan::generate`] draws from its own ChaCha stream: the seed's
//! ChaCha8 generator on stream [`FAULT_STREAM`]. The server draws from
//! stream 0 of its own seed, and a workload from its own stream, so turning
//! a fault kind on or off changes the fault plan and nothing else that was
//! drawn. The applier only steps the simulation and acts between steps, in
//! a fixed order (time, then ends before starts, then plan order), and
//! keeps its state in `BTreeMap`s: the same plan on the same world does the
//! same things at the same ticks.
//!
//! # The catalogue
//!
//! | kind | how it is injected |
//! |---|---|
//! | crash | `sim.crash(server)`, `sim.bounce(server)` after `down_ms` |
//! | bounce | `sim.bounce(server)` |
//! | partition | `sim.partition(worker, server)`, `sim.repair` after the span |
//! | hold | `sim.hold(worker, server)`, `sim.release` after the span |
//! | latency range, spike | `sim.set_link_latency` + `set_link_max_message_latency`, the world's baseline after the span |
//! | early expiry | [`Server::expire_session`] |
//! | 500/503 bursts | [`Server::fail_next`] |
//! | malformed JSON, truncated SSE, connection reset | [`Server::arm_answer_fault`] |
//! | slow initialize | [`Server::slow_initialize`] |
//! | version mismatch | [`Server::answer_protocol_version`] for the span |
//! | missing / invalid session id | [`Server::set_session_id_fault`] for the span |
//! | era upgrade, downgrade (only where named) | [`Server::set_era`] one step, then `sim.bounce(server)` |
//! | version trap (only where named) | [`Server::refuse_version_next`] |
//! | header strip (only where named) | [`Server::strip_routing_headers_next`]: the ladder's header check sees no `Mcp-Method`/`Mcp-Name` (400 -32020) |
//! | discover change (only where named) | [`Server::set_discover_change`] for the span: another `ttlMs`, changed capabilities |
//! | modern stream cut (only where named) | [`Server::cut_modern_streams_next`]: stateless-era answers as SSE cut before the response |
//! | input rounds (only where named) | [`Server::ask_input_rounds_next`]: `tools/call` answered `input_required` for some rounds |
//! | stickiness switch (only where named; a balancer) | [`Balancer::set_policy`] to another policy for the span |
//!
//! Whether a restart loses the server's sessions is the server host's
//! business (see [`crate::topology::ServerSpec::keep_sessions`]), not the
//! fault's.
//!
//! # Spans and bursts
//!
//! A fault with a span (a crash's downtime, a partition, a hold, a latency
//! change, a forced protocol version, a session-id fault, a discover
//! change, a stickiness switch) is applied at its
//! start and undone at its end. Spans of the same sort on the same target
//! stack: the most recent one in force wins, and the target is restored
//! when the last one ends (a server crashed twice over restarts once, at
//! the end of the later downtime). A bounce of a crashed server is skipped:
//! turmoil's bounce would start it early.
//!
//! A burst (5xx, malformed, truncated, reset, slow initialize, a version
//! trap, a header strip, a stream cut, input rounds) arms a counter on the
//! server that requests use up; a burst armed while one of the same sort
//! is still pending replaces it.
//!
//! # Faults a scenario names
//!
//! The kinds after the first fifteen ([`FaultKind::DEFAULT`]) are drawn
//! only by a [`FaultSpace`] that names them: they need a server that speaks
//! the stateless era, or a balancer, and a scenario that expects their
//! effect. A stickiness switch needs a balancer host
//! ([`FaultSpace::balancers`]); a space without one never draws it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use turmoil::Sim;

use crate::balancer::{Balancer, Policy};
use crate::server::{AnswerFault, DiscoverChange, Server, ServerEra, SessionIdFault};
use crate::topology::Latency;

/// The ChaCha stream fault plans are drawn from ("faults" in ASCII): apart
/// from the server's (stream 0) and a workload's, whatever seeds they use.
pub const FAULT_STREAM: u64 = 0x6661_756c_7473;

/// The latest a fault event may start, and the longest any of its spans,
/// downtimes, delays or `ttlMs` may be (ms of simulated time): a day. A
/// generated plan stays far below it; a plan written by hand is refused
/// past it ([`FaultPlan::check_values`]), so `at_ms + span_ms` cannot
/// overflow.
pub const MAX_FAULT_MS: u64 = 24 * 60 * 60 * 1_000;
/// The most latency a latency fault may set on a link (ms): a minute. A
/// generated plan draws at most [`FaultSpace::max_latency_ms`] (1500 by
/// default).
pub const MAX_FAULT_LATENCY_MS: u64 = 60_000;
/// The most requests or answers a burst may hit (5xx, malformed, truncated,
/// reset, slow initialize, a version trap, a header strip, a stream cut,
/// input rounds). A generated plan draws at most [`FaultSpace::max_count`]
/// (3 by default).
pub const MAX_FAULT_COUNT: u32 = 10_000;
/// The most `input_required` rounds an input-rounds fault may ask for (a
/// VU gives up after [`crate::vu::MAX_INPUT_ROUNDS`]). A generated plan
/// draws at most [`FaultSpace::max_input_rounds`] (3 by default).
pub const MAX_FAULT_ROUNDS: u32 = 100;
/// The HTTP statuses a server-error burst may answer with: the server
/// errors, which the client types as such (500 and 503 are drawn).
pub const SERVER_ERROR_STATUSES: std::ops::RangeInclusive<u16> = 500..=599;

/// A kind of failure: what a scenario switches on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The server host crashes and restarts after a downtime: in-flight
    /// requests die with the connection, connects hang until it is back,
    /// and every session is lost (404 after).
    Crash,
    /// The server host restarts at once (turmoil's bounce): connections
    /// die, sessions are lost.
    Bounce,
    /// Every message between a worker and a server is dropped for a span.
    Partition,
    /// Every message between a worker and a server is held for a span, then
    /// delivered late.
    Hold,
    /// The latency of a worker–server link is drawn from a range for a
    /// span.
    LatencyRange,
    /// The latency of a worker–server link jumps to one high value for a
    /// span.
    LatencySpike,
    /// The server expires one live session early (404 for it after).
    EarlyExpiry,
    /// The server answers a burst of requests with HTTP 500 or 503.
    ServerErrors,
    /// The server sends JSON-RPC answers that are not valid JSON.
    MalformedJson,
    /// The server's SSE answers end before the response.
    TruncatedSse,
    /// The server answers `initialize` later than the client waits.
    SlowInitialize,
    /// The server answers `initialize` with a protocol revision other than
    /// the one asked for, for a span.
    VersionMismatch,
    /// The server's `initialize` answers carry no `Mcp-Session-Id`, for a
    /// span.
    MissingSessionId,
    /// The server's `initialize` answers carry an invalid `Mcp-Session-Id`,
    /// for a span.
    InvalidSessionId,
    /// The server's connection dies halfway through an answer.
    ConnectionReset,
    /// The server is redeployed one era up (legacy → dual → modern): it
    /// speaks the new era from then on, and restarts at once (a bounce:
    /// sessions are lost).
    EraUpgrade,
    /// The server is redeployed one era down (modern → dual → legacy),
    /// with a bounce.
    EraDowngrade,
    /// The server refuses the next stateless-era requests with -32022
    /// although their revision is served (the conformance suite's trap).
    VersionTrap,
    /// A proxy in front of the server strips `Mcp-Method` and `Mcp-Name`
    /// from the next stateless-era requests: the server refuses them with
    /// 400 -32020 (a modern error: no fallback).
    HeaderStrip,
    /// For a span, `server/discover` answers a short `ttlMs` and changed
    /// capabilities: a client that caches the result refreshes it.
    DiscoverChange,
    /// The next stateless-era answers are SSE streams cut before the
    /// response: lost requests, as the era has no resumption.
    ModernStreamCut,
    /// The next stateless-era `tools/call` requests are answered
    /// `input_required` for a few rounds (MRTR) before the tool runs.
    InputRounds,
    /// For a span, a balancer routes by another policy (round-robin,
    /// random, sticky).
    StickinessSwitch,
}

impl FaultKind {
    /// Every kind, in declaration order.
    pub const ALL: [FaultKind; 23] = [
        FaultKind::Crash,
        FaultKind::Bounce,
        FaultKind::Partition,
        FaultKind::Hold,
        FaultKind::LatencyRange,
        FaultKind::LatencySpike,
        FaultKind::EarlyExpiry,
        FaultKind::ServerErrors,
        FaultKind::MalformedJson,
        FaultKind::TruncatedSse,
        FaultKind::SlowInitialize,
        FaultKind::VersionMismatch,
        FaultKind::MissingSessionId,
        FaultKind::InvalidSessionId,
        FaultKind::ConnectionReset,
        FaultKind::EraUpgrade,
        FaultKind::EraDowngrade,
        FaultKind::VersionTrap,
        FaultKind::HeaderStrip,
        FaultKind::DiscoverChange,
        FaultKind::ModernStreamCut,
        FaultKind::InputRounds,
        FaultKind::StickinessSwitch,
    ];

    /// The kinds a [`FaultSpace`] switches on by default: every kind but
    /// the era faults (an upgrade, a downgrade, the version trap) and the
    /// stateless-era and balancer faults declared after them, which only a
    /// space that names them draws. They are [`FaultKind::ALL`]'s first
    /// fifteen: the others are declared last.
    pub const DEFAULT: [FaultKind; 15] = {
        let mut kinds = [FaultKind::Crash; 15];
        let mut i = 0;
        while i < kinds.len() {
            kinds[i] = FaultKind::ALL[i];
            i += 1;
        }
        kinds
    };

    /// The snake_case name (as in a serialized plan).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Bounce => "bounce",
            FaultKind::Partition => "partition",
            FaultKind::Hold => "hold",
            FaultKind::LatencyRange => "latency_range",
            FaultKind::LatencySpike => "latency_spike",
            FaultKind::EarlyExpiry => "early_expiry",
            FaultKind::ServerErrors => "server_errors",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::TruncatedSse => "truncated_sse",
            FaultKind::SlowInitialize => "slow_initialize",
            FaultKind::VersionMismatch => "version_mismatch",
            FaultKind::MissingSessionId => "missing_session_id",
            FaultKind::InvalidSessionId => "invalid_session_id",
            FaultKind::ConnectionReset => "connection_reset",
            FaultKind::EraUpgrade => "era_upgrade",
            FaultKind::EraDowngrade => "era_downgrade",
            FaultKind::VersionTrap => "version_trap",
            FaultKind::HeaderStrip => "header_strip",
            FaultKind::DiscoverChange => "discover_change",
            FaultKind::ModernStreamCut => "modern_stream_cut",
            FaultKind::InputRounds => "input_rounds",
            FaultKind::StickinessSwitch => "stickiness_switch",
        }
    }

    /// Whether events of this kind act on a worker–server link (and so
    /// need a worker to target).
    pub fn is_link_fault(self) -> bool {
        matches!(
            self,
            FaultKind::Partition
                | FaultKind::Hold
                | FaultKind::LatencyRange
                | FaultKind::LatencySpike
        )
    }

    /// Whether events of this kind act on a balancer (and so need one to
    /// target).
    pub fn is_balancer_fault(self) -> bool {
        self == FaultKind::StickinessSwitch
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault kind name that is not in the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind {name:?} (expected one of: {})", FaultKind::ALL.map(FaultKind::as_str).join(", "))]
pub struct UnknownFaultKind {
    /// The name given.
    pub name: String,
}

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(s: &str) -> Result<Self, UnknownFaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFaultKind { name: s.to_owned() })
    }
}

/// One concrete failure. Hosts are named as in the topology; times are
/// milliseconds of simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum FaultEvent {
    /// Crash `server`; restart it `down_ms` later.
    Crash {
        /// The server host.
        server: String,
        /// How long it stays down.
        down_ms: u64,
    },
    /// Restart `server` at once.
    Bounce {
        /// The server host.
        server: String,
    },
    /// Drop every message between `worker` and `server` for `span_ms`.
    Partition {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
        /// How long.
        span_ms: u64,
    },
    /// Hold every message between `worker` and `server` for `span_ms`,
    /// then deliver them.
    Hold {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
        /// How long.
        span_ms: u64,
    },
    /// Draw each message's latency on the link from `min_ms..=max_ms`
    /// (turmoil's exponential curve) for `span_ms`.
    LatencyRange {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
        /// Least latency.
        min_ms: u64,
        /// Most latency.
        max_ms: u64,
        /// How long.
        span_ms: u64,
    },
    /// Every message on the link takes `latency_ms` for `span_ms`.
    LatencySpike {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
        /// The latency of each message.
        latency_ms: u64,
        /// How long.
        span_ms: u64,
    },
    /// Expire one live session of `server` early: the `pick`-th (modulo
    /// their number) in id order. Nothing if none is live.
    EarlyExpiry {
        /// The server host.
        server: String,
        /// Which session.
        pick: u32,
    },
    /// Answer the next `count` requests to `server` with `status`.
    ServerErrors {
        /// The server host.
        server: String,
        /// 500, 503, ...
        status: u16,
        /// How many requests.
        count: u32,
    },
    /// Send the next `count` JSON-RPC answers of `server` malformed.
    MalformedJson {
        /// The server host.
        server: String,
        /// How many answers.
        count: u32,
    },
    /// Send the next `count` JSON-RPC answers of `server` as SSE streams
    /// that end before the response.
    TruncatedSse {
        /// The server host.
        server: String,
        /// How many answers.
        count: u32,
    },
    /// Answer the next `count` `initialize` requests to `server`
    /// `delay_ms` late.
    SlowInitialize {
        /// The server host.
        server: String,
        /// How late.
        delay_ms: u64,
        /// How many requests.
        count: u32,
    },
    /// `server` answers `initialize` with `version` whatever is asked, for
    /// `span_ms`.
    VersionMismatch {
        /// The server host.
        server: String,
        /// The revision answered.
        version: String,
        /// How long.
        span_ms: u64,
    },
    /// `server`'s `initialize` answers carry no `Mcp-Session-Id` for
    /// `span_ms`.
    MissingSessionId {
        /// The server host.
        server: String,
        /// How long.
        span_ms: u64,
    },
    /// `server`'s `initialize` answers carry an invalid `Mcp-Session-Id`
    /// for `span_ms`.
    InvalidSessionId {
        /// The server host.
        server: String,
        /// How long.
        span_ms: u64,
    },
    /// Cut the next `count` JSON-RPC answers of `server` off with a
    /// connection reset halfway through.
    ConnectionReset {
        /// The server host.
        server: String,
        /// How many answers.
        count: u32,
    },
    /// Redeploy `server` one era up (legacy → dual → modern) and restart
    /// it at once; nothing if it is modern already.
    EraUpgrade {
        /// The server host.
        server: String,
    },
    /// Redeploy `server` one era down (modern → dual → legacy) and
    /// restart it at once; nothing if it is legacy already.
    EraDowngrade {
        /// The server host.
        server: String,
    },
    /// Refuse the next `count` stateless-era requests to `server` with
    /// -32022 although their revision is served.
    VersionTrap {
        /// The server host.
        server: String,
        /// How many requests.
        count: u32,
    },
    /// Strip `Mcp-Method` and `Mcp-Name` from the next `count`
    /// stateless-era requests to `server` (a proxy in front of it), which
    /// it then refuses with 400 -32020.
    HeaderStrip {
        /// The server host.
        server: String,
        /// How many requests.
        count: u32,
    },
    /// `server` answers `server/discover` with `ttl_ms` and changed
    /// capabilities for `span_ms`.
    DiscoverChange {
        /// The server host.
        server: String,
        /// The `ttlMs` answered.
        ttl_ms: u64,
        /// How long.
        span_ms: u64,
    },
    /// Send the next `count` stateless-era answers of `server` as SSE
    /// streams cut before the response.
    ModernStreamCut {
        /// The server host.
        server: String,
        /// How many answers.
        count: u32,
    },
    /// Answer the next `count` stateless-era `tools/call` requests to
    /// `server` `input_required` for `rounds` rounds before the tool runs.
    InputRounds {
        /// The server host.
        server: String,
        /// How many requests.
        count: u32,
        /// How many `input_required` answers each gets (at least 1).
        rounds: u32,
    },
    /// `balancer` routes by another policy for `span_ms`: the `pick`-th
    /// (modulo 2) of the two policies other than the one in force, in
    /// [`Policy::ALL`]'s order.
    StickinessSwitch {
        /// The balancer host.
        balancer: String,
        /// Which other policy.
        pick: u32,
        /// How long.
        span_ms: u64,
    },
}

impl FaultEvent {
    /// The event's kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultEvent::Crash { .. } => FaultKind::Crash,
            FaultEvent::Bounce { .. } => FaultKind::Bounce,
            FaultEvent::Partition { .. } => FaultKind::Partition,
            FaultEvent::Hold { .. } => FaultKind::Hold,
            FaultEvent::LatencyRange { .. } => FaultKind::LatencyRange,
            FaultEvent::LatencySpike { .. } => FaultKind::LatencySpike,
            FaultEvent::EarlyExpiry { .. } => FaultKind::EarlyExpiry,
            FaultEvent::ServerErrors { .. } => FaultKind::ServerErrors,
            FaultEvent::MalformedJson { .. } => FaultKind::MalformedJson,
            FaultEvent::TruncatedSse { .. } => FaultKind::TruncatedSse,
            FaultEvent::SlowInitialize { .. } => FaultKind::SlowInitialize,
            FaultEvent::VersionMismatch { .. } => FaultKind::VersionMismatch,
            FaultEvent::MissingSessionId { .. } => FaultKind::MissingSessionId,
            FaultEvent::InvalidSessionId { .. } => FaultKind::InvalidSessionId,
            FaultEvent::ConnectionReset { .. } => FaultKind::ConnectionReset,
            FaultEvent::EraUpgrade { .. } => FaultKind::EraUpgrade,
            FaultEvent::EraDowngrade { .. } => FaultKind::EraDowngrade,
            FaultEvent::VersionTrap { .. } => FaultKind::VersionTrap,
            FaultEvent::HeaderStrip { .. } => FaultKind::HeaderStrip,
            FaultEvent::DiscoverChange { .. } => FaultKind::DiscoverChange,
            FaultEvent::ModernStreamCut { .. } => FaultKind::ModernStreamCut,
            FaultEvent::InputRounds { .. } => FaultKind::InputRounds,
            FaultEvent::StickinessSwitch { .. } => FaultKind::StickinessSwitch,
        }
    }

    /// The server host the event targets (`None` for a balancer's).
    pub fn server(&self) -> Option<&str> {
        let server = match self {
            FaultEvent::Crash { server, .. }
            | FaultEvent::Bounce { server }
            | FaultEvent::Partition { server, .. }
            | FaultEvent::Hold { server, .. }
            | FaultEvent::LatencyRange { server, .. }
            | FaultEvent::LatencySpike { server, .. }
            | FaultEvent::EarlyExpiry { server, .. }
            | FaultEvent::ServerErrors { server, .. }
            | FaultEvent::MalformedJson { server, .. }
            | FaultEvent::TruncatedSse { server, .. }
            | FaultEvent::SlowInitialize { server, .. }
            | FaultEvent::VersionMismatch { server, .. }
            | FaultEvent::MissingSessionId { server, .. }
            | FaultEvent::InvalidSessionId { server, .. }
            | FaultEvent::ConnectionReset { server, .. }
            | FaultEvent::EraUpgrade { server }
            | FaultEvent::EraDowngrade { server }
            | FaultEvent::VersionTrap { server, .. }
            | FaultEvent::HeaderStrip { server, .. }
            | FaultEvent::DiscoverChange { server, .. }
            | FaultEvent::ModernStreamCut { server, .. }
            | FaultEvent::InputRounds { server, .. } => server,
            FaultEvent::StickinessSwitch { .. } => return None,
        };
        Some(server)
    }

    /// The balancer host of a balancer fault.
    pub fn balancer(&self) -> Option<&str> {
        match self {
            FaultEvent::StickinessSwitch { balancer, .. } => Some(balancer),
            _ => None,
        }
    }

    /// The host the event acts on: its server, or its balancer.
    pub fn host(&self) -> &str {
        self.server().or(self.balancer()).unwrap_or_default()
    }

    /// The worker host of a link fault.
    pub fn worker(&self) -> Option<&str> {
        match self {
            FaultEvent::Partition { worker, .. }
            | FaultEvent::Hold { worker, .. }
            | FaultEvent::LatencyRange { worker, .. }
            | FaultEvent::LatencySpike { worker, .. } => Some(worker),
            _ => None,
        }
    }

    /// How long the fault lasts once applied, for faults that are undone
    /// (`None`: applied once, or consumed by requests).
    pub fn span_ms(&self) -> Option<u64> {
        match self {
            FaultEvent::Crash { down_ms, .. } => Some(*down_ms),
            FaultEvent::Partition { span_ms, .. }
            | FaultEvent::Hold { span_ms, .. }
            | FaultEvent::LatencyRange { span_ms, .. }
            | FaultEvent::LatencySpike { span_ms, .. }
            | FaultEvent::VersionMismatch { span_ms, .. }
            | FaultEvent::MissingSessionId { span_ms, .. }
            | FaultEvent::InvalidSessionId { span_ms, .. }
            | FaultEvent::DiscoverChange { span_ms, .. }
            | FaultEvent::StickinessSwitch { span_ms, .. } => Some(*span_ms),
            _ => None,
        }
    }
}

/// A fault event at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// Milliseconds of simulated time since the simulation's start.
    pub at_ms: u64,
    /// What happens.
    #[serde(flatten)]
    pub event: FaultEvent,
}

/// A list of fault events in time order: what goes wrong in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The events, sorted by `at_ms` (ties keep their order).
    pub events: Vec<Scheduled>,
}

/// Where and how much a generated plan may fail. Kinds that need a target
/// the topology lacks (a link fault without workers, anything without
/// servers) are left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpace {
    /// The kinds switched on. Default: [`FaultKind::DEFAULT`] (all but
    /// the era faults).
    pub kinds: BTreeSet<FaultKind>,
    /// Worker hosts link faults may hit.
    pub workers: Vec<String>,
    /// Server hosts faults may hit.
    pub servers: Vec<String>,
    /// Balancer hosts balancer faults (a stickiness switch) may hit.
    /// Default none: no balancer fault is drawn.
    pub balancers: Vec<String>,
    /// Events start at or after this time (ms). Default 100.
    pub start_ms: u64,
    /// ... and before this one (ms). Default 5000.
    pub end_ms: u64,
    /// How many events. Default 6.
    pub events: u32,
    /// The longest span (downtime, partition, ...) in ms; spans are drawn
    /// from `50..=max_span_ms`. Default 1000.
    pub max_span_ms: u64,
    /// The most requests a burst (5xx, malformed, truncated, reset) hits;
    /// counts are drawn from `1..=max_count`. Default 3.
    pub max_count: u32,
    /// The most latency of a latency range or spike (ms). Default 1500.
    pub max_latency_ms: u64,
    /// How late a slow `initialize` answers (ms): past the client's request
    /// timeout, to exercise it. Default 35000 (past the library's default
    /// 30 s).
    pub slow_initialize_ms: u64,
    /// The revisions a version mismatch may answer; one is drawn. Default:
    /// an older supported revision and one no client speaks.
    pub mismatched_versions: Vec<String>,
    /// Percent of the events after the first that are drawn as follow-ups
    /// of an earlier event (one drawn uniformly among those before it)
    /// rather than at a uniform time: placed where the earlier event has
    /// its effect, so that faults meet the traffic the earlier one caused
    /// (see [`FaultPlan::generate`]), and may fall after `end_ms`. Default
    /// 0: every time uniform.
    pub follow_pct: u32,
    /// How far after the earlier event's effect a follow-up lands: drawn
    /// from `0..=follow_gap_ms`. Default 300.
    pub follow_gap_ms: u64,
    /// Percent of the events of a kind that acts on `initialize` only
    /// (slow initialize, a forced protocol version, a session-id fault),
    /// and follow nothing, that are armed at 0 ms rather than at a uniform
    /// time: before the clients make their first sessions, which is when
    /// a client that keeps its sessions (reuse, pool, churn) initializes
    /// at all, short of a restart or an expiry. Default 0.
    pub initialize_first_pct: u32,
    /// The most `input_required` rounds of an input-rounds fault; rounds
    /// are drawn from `1..=max_input_rounds`. Default 3.
    pub max_input_rounds: u32,
    /// The longest `ttlMs` a discover change answers (ms); drawn from
    /// `0..=max_discover_ttl_ms`. Default 500.
    pub max_discover_ttl_ms: u64,
}

impl Default for FaultSpace {
    fn default() -> Self {
        FaultSpace {
            kinds: FaultKind::DEFAULT.into_iter().collect(),
            workers: Vec::new(),
            servers: Vec::new(),
            balancers: Vec::new(),
            start_ms: 100,
            end_ms: 5_000,
            events: 6,
            max_span_ms: 1_000,
            max_count: 3,
            max_latency_ms: 1_500,
            slow_initialize_ms: 35_000,
            mismatched_versions: vec!["2024-11-05".into(), "1999-01-01".into()],
            follow_pct: 0,
            follow_gap_ms: 300,
            initialize_first_pct: 0,
            max_input_rounds: 3,
            max_discover_ttl_ms: 500,
        }
    }
}

impl FaultSpace {
    /// The defaults, over these hosts.
    pub fn new(
        workers: impl IntoIterator<Item = impl Into<String>>,
        servers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        FaultSpace {
            workers: workers.into_iter().map(Into::into).collect(),
            servers: servers.into_iter().map(Into::into).collect(),
            ..FaultSpace::default()
        }
    }

    /// The same space with only `kinds` switched on.
    pub fn only(mut self, kinds: impl IntoIterator<Item = FaultKind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// The same space with these balancer hosts.
    pub fn with_balancers(
        mut self,
        balancers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.balancers = balancers.into_iter().map(Into::into).collect();
        self
    }

    /// The kinds that can be drawn: switched on, and with a target (no
    /// kind without a server; a link fault needs a worker, a balancer
    /// fault a balancer).
    pub fn drawable(&self) -> Vec<FaultKind> {
        if self.servers.is_empty() {
            return Vec::new();
        }
        self.kinds
            .iter()
            .copied()
            .filter(|k| !k.is_link_fault() || !self.workers.is_empty())
            .filter(|k| !k.is_balancer_fault() || !self.balancers.is_empty())
            .collect()
    }
}

/// Where a drawn event has its effect on the traffic: when, and whether
/// that is a restart (after which clients initialize new sessions).
#[derive(Clone, Copy, Debug)]
struct Effect {
    at_ms: u64,
    restart: bool,
}

impl Effect {
    /// The effect of `event` starting at `at_ms`, on its own: a crash's
    /// at its restart, a bounce's at once, anything else's at its start.
    fn of(at_ms: u64, event: &FaultEvent) -> Effect {
        match event {
            FaultEvent::Crash { down_ms, .. } => Effect {
                at_ms: at_ms.saturating_add(*down_ms),
                restart: true,
            },
            FaultEvent::Bounce { .. }
            | FaultEvent::EraUpgrade { .. }
            | FaultEvent::EraDowngrade { .. } => Effect {
                at_ms,
                restart: true,
            },
            _ => Effect {
                at_ms,
                restart: false,
            },
        }
    }
}

/// Whether a fault acts on `initialize` only.
fn initialize_only(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::SlowInitialize
            | FaultKind::VersionMismatch
            | FaultKind::MissingSessionId
            | FaultKind::InvalidSessionId
    )
}

/// When a follow-up `event` of `lead` (whose effect is `effect`) starts,
/// and where it has its own effect.
///
/// - After a restart clients find their sessions gone and initialize new
///   ones. A fault that acts on `initialize` only (slow initialize, a
///   forced protocol version, a session-id fault) is armed between the
///   lead's start and that restart (while the server is down, for a
///   crash), so it is in force for those re-initializations, and its
///   effect is the restart's.
/// - Anything else lands `0..=gap_ms` after the lead's effect: after a
///   restart, among the re-initializations (a second restart then cuts
///   them short, slowed down or not); after an early expiry, among the
///   requests that find the session gone.
fn follow_up(
    rng: &mut ChaCha8Rng,
    lead: &Scheduled,
    effect: Effect,
    event: &FaultEvent,
    gap_ms: u64,
) -> (u64, Effect) {
    if effect.restart && initialize_only(event.kind()) {
        let at_ms = draw(rng, lead.at_ms.min(effect.at_ms), effect.at_ms);
        return (at_ms, effect);
    }
    let at_ms = effect.at_ms.saturating_add(draw(rng, 0, gap_ms));
    (at_ms, Effect::of(at_ms, event))
}

/// A number in `lo..=hi` (`lo` if the range is empty).
fn draw(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..=hi)
    }
}

/// One of `items` (which must not be empty).
fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// The draws of one [`FaultPlan::generate`]: the fault stream, the space,
/// and the bounds every event shares.
///
/// The order of the draws is the plan's identity (the same seed must give
/// the same plan, release after release), so each method draws exactly
/// what the documentation of [`FaultPlan::generate`] lists, in that order.
struct Drawer<'a> {
    rng: ChaCha8Rng,
    space: &'a FaultSpace,
    /// The longest span drawn (at least 50 ms, the shortest).
    max_span: u64,
    /// The largest count drawn (at least 1).
    max_count: u64,
}

impl<'a> Drawer<'a> {
    /// The drawer of `seed` over `space`, on [`FAULT_STREAM`].
    fn new(seed: u64, space: &'a FaultSpace) -> Drawer<'a> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(FAULT_STREAM);
        Drawer {
            rng,
            space,
            max_span: space.max_span_ms.max(50),
            max_count: u64::from(space.max_count.max(1)),
        }
    }

    /// The next event and where it has its effect, `drawn` being the
    /// events so far: whether (and which) it follows, its time if it does
    /// not, its kind and parameters, then its time if it does.
    fn scheduled(
        &mut self,
        kinds: &[FaultKind],
        drawn: &[(Scheduled, Effect)],
    ) -> (Scheduled, Effect) {
        let space = self.space;
        let lead = (!drawn.is_empty() && self.chance(space.follow_pct))
            .then(|| drawn[self.rng.random_range(0..drawn.len())].clone());
        // A follow-up's time is drawn last, from its lead's.
        let uniform_ms = lead.is_none().then(|| {
            if space.end_ms > space.start_ms {
                self.rng.random_range(space.start_ms..space.end_ms)
            } else {
                space.start_ms
            }
        });
        let kind = *pick(&mut self.rng, kinds);
        let server = pick(&mut self.rng, &space.servers).clone();
        let event = self.event(kind, server);
        let (at_ms, effect) = match (&lead, uniform_ms) {
            (Some((lead, effect)), _) => {
                follow_up(&mut self.rng, lead, *effect, &event, space.follow_gap_ms)
            }
            (None, uniform_ms) => {
                // An `initialize`-only fault may be armed at 0 ms instead,
                // so that it meets the clients' first initializations.
                let first =
                    initialize_only(event.kind()) && self.chance(space.initialize_first_pct);
                let at_ms = if first {
                    0
                } else {
                    uniform_ms.unwrap_or(space.start_ms)
                };
                (at_ms, Effect::of(at_ms, &event))
            }
        };
        (Scheduled { at_ms, event }, effect)
    }

    /// Whether a `pct` per cent chance comes up; draws nothing when `pct`
    /// is 0, so that a space without the option draws as it always did.
    fn chance(&mut self, pct: u32) -> bool {
        pct > 0 && self.rng.random_range(0..100) < pct
    }

    /// A span in `50..=max_span` ms.
    fn span(&mut self) -> u64 {
        draw(&mut self.rng, 50, self.max_span)
    }

    /// A count in `1..=max_count`.
    fn count(&mut self) -> u32 {
        draw(&mut self.rng, 1, self.max_count) as u32
    }

    /// A worker host, for a link fault.
    fn worker(&mut self) -> String {
        pick(&mut self.rng, &self.space.workers).clone()
    }

    /// An event of `kind` on `server`, its parameters drawn.
    ///
    /// One piece on purpose: a table with one arm per kind, whose fields
    /// are drawn in the order written (struct fields evaluate top to
    /// bottom). Split up, the order of draws — the plan format — would be
    /// spread over several functions.
    fn event(&mut self, kind: FaultKind, server: String) -> FaultEvent {
        let space = self.space;
        match kind {
            FaultKind::Crash => FaultEvent::Crash {
                server,
                down_ms: self.span(),
            },
            FaultKind::Bounce => FaultEvent::Bounce { server },
            FaultKind::Partition => FaultEvent::Partition {
                worker: self.worker(),
                server,
                span_ms: self.span(),
            },
            FaultKind::Hold => FaultEvent::Hold {
                worker: self.worker(),
                server,
                span_ms: self.span(),
            },
            FaultKind::LatencyRange => {
                let worker = self.worker();
                let min_ms = draw(&mut self.rng, 0, space.max_latency_ms / 4);
                let max_ms = draw(
                    &mut self.rng,
                    min_ms + 1,
                    space.max_latency_ms.max(min_ms + 1),
                );
                FaultEvent::LatencyRange {
                    worker,
                    server,
                    min_ms,
                    max_ms,
                    span_ms: self.span(),
                }
            }
            FaultKind::LatencySpike => {
                let worker = self.worker();
                let latency_ms = draw(
                    &mut self.rng,
                    space.max_latency_ms / 4,
                    space.max_latency_ms,
                );
                FaultEvent::LatencySpike {
                    worker,
                    server,
                    latency_ms,
                    span_ms: self.span(),
                }
            }
            FaultKind::EarlyExpiry => FaultEvent::EarlyExpiry {
                server,
                pick: self.rng.random_range(0..u32::MAX),
            },
            FaultKind::ServerErrors => FaultEvent::ServerErrors {
                server,
                status: if self.rng.random_bool(0.5) { 500 } else { 503 },
                count: self.count(),
            },
            FaultKind::MalformedJson => FaultEvent::MalformedJson {
                server,
                count: self.count(),
            },
            FaultKind::TruncatedSse => FaultEvent::TruncatedSse {
                server,
                count: self.count(),
            },
            FaultKind::SlowInitialize => FaultEvent::SlowInitialize {
                server,
                delay_ms: space.slow_initialize_ms,
                count: self.count(),
            },
            FaultKind::VersionMismatch => FaultEvent::VersionMismatch {
                server,
                version: if space.mismatched_versions.is_empty() {
                    "1999-01-01".into()
                } else {
                    pick(&mut self.rng, &space.mismatched_versions).clone()
                },
                span_ms: self.span(),
            },
            FaultKind::MissingSessionId => FaultEvent::MissingSessionId {
                server,
                span_ms: self.span(),
            },
            FaultKind::InvalidSessionId => FaultEvent::InvalidSessionId {
                server,
                span_ms: self.span(),
            },
            FaultKind::ConnectionReset => FaultEvent::ConnectionReset {
                server,
                count: self.count(),
            },
            FaultKind::EraUpgrade => FaultEvent::EraUpgrade { server },
            FaultKind::EraDowngrade => FaultEvent::EraDowngrade { server },
            // One refusal (the conformance suite's trap, which a
            // client passes by retrying once) or two in a row (the
            // retry refused too: the client must fail the request,
            // never fall back to legacy).
            FaultKind::VersionTrap => FaultEvent::VersionTrap {
                server,
                count: draw(&mut self.rng, 1, 2) as u32,
            },
            FaultKind::HeaderStrip => FaultEvent::HeaderStrip {
                server,
                count: self.count(),
            },
            FaultKind::DiscoverChange => FaultEvent::DiscoverChange {
                server,
                ttl_ms: draw(&mut self.rng, 0, space.max_discover_ttl_ms),
                span_ms: self.span(),
            },
            FaultKind::ModernStreamCut => FaultEvent::ModernStreamCut {
                server,
                count: self.count(),
            },
            FaultKind::InputRounds => FaultEvent::InputRounds {
                server,
                count: self.count(),
                rounds: draw(&mut self.rng, 1, u64::from(space.max_input_rounds.max(1))) as u32,
            },
            // `drawable` leaves it out without a balancer.
            FaultKind::StickinessSwitch => FaultEvent::StickinessSwitch {
                balancer: pick(&mut self.rng, &space.balancers).clone(),
                pick: self.rng.random_range(0..2),
                span_ms: self.span(),
            },
        }
    }
}

impl FaultPlan {
    /// A plan of `events`, sorted by time (ties keep their order).
    pub fn new(mut events: Vec<Scheduled>) -> Self {
        events.sort_by_key(|s| s.at_ms);
        FaultPlan { events }
    }

    /// No faults.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// A plan drawn from `seed` over `space`, on the fault stream
    /// ([`FAULT_STREAM`]): the same seed and space give the same plan.
    ///
    /// Each event draws, in order: whether it follows an earlier event
    /// (with [`FaultSpace::follow_pct`], from the second event on; nothing
    /// is drawn when it is 0) and which; unless it follows, its time in
    /// `start_ms..end_ms`; its kind (uniform over
    /// [`FaultSpace::drawable`]); its target and parameters (see
    /// [`FaultSpace`] for the ranges; every event draws a server first,
    /// a balancer fault its balancer after it); then, for a follow-up, its time
    /// relative to where the event it follows has its effect, and for any
    /// other event that acts on `initialize` only, whether it is armed at
    /// 0 ms instead (with [`FaultSpace::initialize_first_pct`]; nothing is
    /// drawn when it is 0). With both percentages 0 a plan is drawn as it
    /// always was.
    ///
    /// Where a follow-up lands: clients initialize new sessions after a
    /// restart (a crash's end, a bounce), so a fault that acts on
    /// `initialize` only is armed between the restart's start and the
    /// restart (in force for those re-initializations), and anything else
    /// up to [`FaultSpace::follow_gap_ms`] after the restart, among them (a
    /// second restart cuts them short); a follow-up of any other event
    /// lands up to `follow_gap_ms` after it.
    pub fn generate(seed: u64, space: &FaultSpace) -> FaultPlan {
        let kinds = space.drawable();
        if kinds.is_empty() {
            return FaultPlan::none();
        }
        let mut drawer = Drawer::new(seed, space);
        let mut drawn: Vec<(Scheduled, Effect)> = Vec::new();
        for _ in 0..space.events {
            let next = drawer.scheduled(&kinds, &drawn);
            drawn.push(next);
        }
        FaultPlan::new(drawn.into_iter().map(|(s, _)| s).collect())
    }

    /// Whether the plan has no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// The kinds in the plan.
    pub fn kinds(&self) -> BTreeSet<FaultKind> {
        self.events.iter().map(|s| s.event.kind()).collect()
    }

    /// When the last fault is over (ms): the latest start or end of a span.
    pub fn end_ms(&self) -> u64 {
        self.events
            .iter()
            .map(|s| s.at_ms.saturating_add(s.event.span_ms().unwrap_or(0)))
            .max()
            .unwrap_or(0)
    }

    /// Whether every host the plan names is among `servers`, `balancers`
    /// and `workers`: the first event naming another is the error.
    pub fn check_hosts(
        &self,
        servers: &[String],
        balancers: &[String],
        workers: &[String],
    ) -> Result<(), PlanError> {
        let has = |list: &[String], h: &str| list.iter().any(|x| x == h);
        self.hosts_known(
            |h| has(servers, h),
            |h| has(balancers, h),
            |h| has(workers, h),
        )
    }

    /// Whether every number in the plan is in its range: the first one
    /// that is not is the error.
    ///
    /// - every `at_ms`, span (`span_ms`, a crash's `down_ms`), a slow
    ///   initialize's `delay_ms` and a discover change's `ttl_ms` in
    ///   `0..=`[`MAX_FAULT_MS`] (spans from 1: a span of 0 would end before
    ///   it starts, and never be undone);
    /// - latencies (`min_ms`, `max_ms`, `latency_ms`) in
    ///   `0..=`[`MAX_FAULT_LATENCY_MS`], a range's `min_ms` not above its
    ///   `max_ms`;
    /// - a burst's `count` in `1..=`[`MAX_FAULT_COUNT`], an input-rounds
    ///   fault's `rounds` in `1..=`[`MAX_FAULT_ROUNDS`];
    /// - a server-error burst's `status` in [`SERVER_ERROR_STATUSES`];
    /// - a stickiness switch's `pick` 0 or 1 (one of the two other
    ///   policies); an early expiry's `pick` is any `u32` (taken modulo the
    ///   live sessions).
    ///
    /// A plan from [`FaultPlan::generate`] passes (with the default
    /// space's limits, or any below these).
    pub fn check_values(&self) -> Result<(), PlanError> {
        for (i, s) in self.events.iter().enumerate() {
            check_event_values(i, s)?;
        }
        Ok(())
    }

    /// [`FaultPlan::check_hosts`] with a test per sort of host.
    fn hosts_known(
        &self,
        server: impl Fn(&str) -> bool,
        balancer: impl Fn(&str) -> bool,
        worker: impl Fn(&str) -> bool,
    ) -> Result<(), PlanError> {
        for (i, s) in self.events.iter().enumerate() {
            let unknown = |name: &str| (i, name.to_owned());
            if let Some((event, name)) = s.event.server().filter(|h| !server(h)).map(unknown) {
                return Err(PlanError::UnknownServer { event, name });
            }
            if let Some((event, name)) = s.event.balancer().filter(|h| !balancer(h)).map(unknown) {
                return Err(PlanError::UnknownBalancer { event, name });
            }
            if let Some((event, name)) = s.event.worker().filter(|h| !worker(h)).map(unknown) {
                return Err(PlanError::UnknownWorker { event, name });
            }
        }
        Ok(())
    }

    /// The plan as pretty JSON (the form to print, save and replay).
    pub fn to_json(&self) -> String {
        // Serializing these plain values cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// `value` of event `event`'s `field` in `min..=max`, or the error.
fn in_range(
    event: usize,
    field: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), PlanError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(PlanError::OutOfRange {
            event,
            field,
            value,
            min,
            max,
        })
    }
}

/// [`FaultPlan::check_values`] for event `i`: its time, then its numbers
/// in the order of its fields. One arm per kind (or per group of kinds
/// with the same numbers), each check in [`Fields`].
fn check_event_values(i: usize, s: &Scheduled) -> Result<(), PlanError> {
    let f = Fields { event: i };
    f.ms("at_ms", s.at_ms)?;
    match &s.event {
        FaultEvent::Crash { down_ms, .. } => f.span("down_ms", *down_ms),
        FaultEvent::Bounce { .. }
        | FaultEvent::EraUpgrade { .. }
        | FaultEvent::EraDowngrade { .. } => Ok(()),
        FaultEvent::Partition { span_ms, .. }
        | FaultEvent::Hold { span_ms, .. }
        | FaultEvent::VersionMismatch { span_ms, .. }
        | FaultEvent::MissingSessionId { span_ms, .. }
        | FaultEvent::InvalidSessionId { span_ms, .. } => f.span("span_ms", *span_ms),
        FaultEvent::LatencyRange {
            min_ms,
            max_ms,
            span_ms,
            ..
        } => {
            f.latency_range(*min_ms, *max_ms)?;
            f.span("span_ms", *span_ms)
        }
        FaultEvent::LatencySpike {
            latency_ms,
            span_ms,
            ..
        } => {
            f.latency("latency_ms", *latency_ms)?;
            f.span("span_ms", *span_ms)
        }
        // Any `pick` is a session: it is taken modulo the live ones.
        FaultEvent::EarlyExpiry { .. } => Ok(()),
        FaultEvent::ServerErrors { status, count, .. } => {
            f.status(*status)?;
            f.count(*count)
        }
        FaultEvent::MalformedJson { count, .. }
        | FaultEvent::TruncatedSse { count, .. }
        | FaultEvent::ConnectionReset { count, .. }
        | FaultEvent::VersionTrap { count, .. }
        | FaultEvent::HeaderStrip { count, .. }
        | FaultEvent::ModernStreamCut { count, .. } => f.count(*count),
        FaultEvent::SlowInitialize {
            delay_ms, count, ..
        } => {
            f.ms("delay_ms", *delay_ms)?;
            f.count(*count)
        }
        FaultEvent::DiscoverChange {
            ttl_ms, span_ms, ..
        } => {
            f.ms("ttl_ms", *ttl_ms)?;
            f.span("span_ms", *span_ms)
        }
        FaultEvent::InputRounds { count, rounds, .. } => {
            f.count(*count)?;
            f.check("rounds", u64::from(*rounds), 1, u64::from(MAX_FAULT_ROUNDS))
        }
        FaultEvent::StickinessSwitch { pick, span_ms, .. } => {
            f.check("pick", u64::from(*pick), 0, 1)?;
            f.span("span_ms", *span_ms)
        }
    }
}

/// The checks of one event's numbers, each error naming the event and
/// the field.
#[derive(Clone, Copy)]
struct Fields {
    event: usize,
}

impl Fields {
    /// `value` of `field` in `min..=max`.
    fn check(self, field: &'static str, value: u64, min: u64, max: u64) -> Result<(), PlanError> {
        in_range(self.event, field, value, min, max)
    }

    /// A time or duration that may be 0.
    fn ms(self, field: &'static str, value: u64) -> Result<(), PlanError> {
        self.check(field, value, 0, MAX_FAULT_MS)
    }

    /// A span, downtime or delay that lasts at least 1 ms.
    fn span(self, field: &'static str, value: u64) -> Result<(), PlanError> {
        self.check(field, value, 1, MAX_FAULT_MS)
    }

    /// A link latency.
    fn latency(self, field: &'static str, value: u64) -> Result<(), PlanError> {
        self.check(field, value, 0, MAX_FAULT_LATENCY_MS)
    }

    /// A latency range: both ends in range, the least not above the most.
    fn latency_range(self, min_ms: u64, max_ms: u64) -> Result<(), PlanError> {
        self.latency("min_ms", min_ms)?;
        self.latency("max_ms", max_ms)?;
        if min_ms > max_ms {
            return Err(PlanError::LatencyMinAboveMax {
                event: self.event,
                min_ms,
                max_ms,
            });
        }
        Ok(())
    }

    /// How many requests or answers a burst hits: at least 1.
    fn count(self, value: u32) -> Result<(), PlanError> {
        self.check("count", u64::from(value), 1, u64::from(MAX_FAULT_COUNT))
    }

    /// An HTTP server error status ([`SERVER_ERROR_STATUSES`]).
    fn status(self, status: u16) -> Result<(), PlanError> {
        if !SERVER_ERROR_STATUSES.contains(&status) {
            return Err(PlanError::NotServerErrorStatus {
                event: self.event,
                status,
            });
        }
        Ok(())
    }
}

/// What the applier did, or why it did nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// `sim.crash(server)`.
    Crash {
        /// The server host.
        server: String,
    },
    /// `sim.bounce(server)` after a crash: it starts again.
    Restart {
        /// The server host.
        server: String,
    },
    /// `sim.bounce(server)`.
    Bounce {
        /// The server host.
        server: String,
    },
    /// `sim.partition(worker, server)`.
    Partition {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
    },
    /// `sim.hold(worker, server)`.
    Hold {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
    },
    /// `sim.repair` / `sim.release`: the link carries messages again (held
    /// ones are delivered).
    Heal {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
    },
    /// The link's latency range was set (back to the world's baseline at
    /// the end of a span).
    Latency {
        /// The worker host.
        worker: String,
        /// The server host.
        server: String,
        /// Least latency.
        min_ms: u64,
        /// Most latency.
        max_ms: u64,
    },
    /// A session was expired on the server.
    Expire {
        /// The server host.
        server: String,
        /// The session.
        session: String,
    },
    /// HTTP failures were armed.
    ServerErrors {
        /// The server host.
        server: String,
        /// Their status.
        status: u16,
        /// How many.
        count: u32,
    },
    /// Spoiled answers were armed.
    AnswerFault {
        /// The server host.
        server: String,
        /// What is done to them.
        fault: AnswerFault,
        /// How many.
        count: u32,
    },
    /// Slow `initialize` answers were armed.
    SlowInitialize {
        /// The server host.
        server: String,
        /// How late.
        delay_ms: u64,
        /// How many.
        count: u32,
    },
    /// `initialize` answers were forced to a revision (`None`: negotiated
    /// again).
    Version {
        /// The server host.
        server: String,
        /// The revision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// What `initialize` answers carry in `Mcp-Session-Id` was set.
    SessionId {
        /// The server host.
        server: String,
        /// Sent, omitted or garbled.
        fault: SessionIdFault,
    },
    /// The server was redeployed to speak another era (a bounce follows,
    /// unless it is down).
    Era {
        /// The server host.
        server: String,
        /// The era it spoke.
        from: ServerEra,
        /// The era it speaks now.
        to: ServerEra,
    },
    /// -32022 refusals of served revisions were armed.
    VersionTrap {
        /// The server host.
        server: String,
        /// How many.
        count: u32,
    },
    /// Stripping of the routing headers of stateless-era requests was
    /// armed.
    HeaderStrip {
        /// The server host.
        server: String,
        /// How many.
        count: u32,
    },
    /// What `server/discover` answers was changed (`None`: the config's
    /// again).
    DiscoverChange {
        /// The server host.
        server: String,
        /// The `ttlMs` it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    /// Cut streams of stateless-era answers were armed.
    StreamCut {
        /// The server host.
        server: String,
        /// How many.
        count: u32,
    },
    /// `input_required` rounds of `tools/call` were armed.
    InputRounds {
        /// The server host.
        server: String,
        /// How many calls.
        count: u32,
        /// How many rounds each.
        rounds: u32,
    },
    /// A balancer's routing policy was switched.
    Policy {
        /// The balancer host.
        balancer: String,
        /// The policy it routed by.
        from: Policy,
        /// The policy it routes by now.
        to: Policy,
    },
    /// The event had nothing to act on.
    Skipped {
        /// Why, in a few words.
        why: String,
    },
}

/// One thing the applier did, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Simulated ms when it was done (`Sim::elapsed`).
    pub at_ms: u64,
    /// The index of the plan event it belongs to.
    pub event: usize,
    /// What was done.
    #[serde(flatten)]
    pub action: Action,
}

/// A plan that names a host the world does not have, or holds a number
/// outside its range ([`FaultPlan::check_values`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A number of an event outside the range it may take.
    #[error("events[{event}].{field} {value} is not in {min}..={max}")]
    OutOfRange {
        /// The event's index in the plan.
        event: usize,
        /// The field, as in the serialized plan.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The least value it may take.
        min: u64,
        /// The most.
        max: u64,
    },
    /// A server-error burst whose status is not an HTTP server error
    /// ([`SERVER_ERROR_STATUSES`]).
    #[error("events[{event}].status {status} is not an HTTP server error status (500..=599)")]
    NotServerErrorStatus {
        /// The event's index in the plan.
        event: usize,
        /// The status.
        status: u16,
    },
    /// A latency range whose least latency is above its most.
    #[error("events[{event}].min_ms {min_ms} is above events[{event}].max_ms {max_ms}")]
    LatencyMinAboveMax {
        /// The event's index in the plan.
        event: usize,
        /// Its least latency.
        min_ms: u64,
        /// Its most latency.
        max_ms: u64,
    },
    /// No server host of that name.
    #[error("fault event {event} names server {name:?}, which is not in the topology")]
    UnknownServer {
        /// The event's index in the plan.
        event: usize,
        /// The name.
        name: String,
    },
    /// No worker host of that name.
    #[error("fault event {event} names worker {name:?}, which is not in the topology")]
    UnknownWorker {
        /// The event's index in the plan.
        event: usize,
        /// The name.
        name: String,
    },
    /// No balancer host of that name.
    #[error("fault event {event} names balancer {name:?}, which is not in the topology")]
    UnknownBalancer {
        /// The event's index in the plan.
        event: usize,
        /// The name.
        name: String,
    },
}

impl PlanError {
    /// The index in the plan of the event at fault.
    pub fn event(&self) -> usize {
        match self {
            PlanError::OutOfRange { event, .. }
            | PlanError::NotServerErrorStatus { event, .. }
            | PlanError::LatencyMinAboveMax { event, .. }
            | PlanError::UnknownServer { event, .. }
            | PlanError::UnknownWorker { event, .. }
            | PlanError::UnknownBalancer { event, .. } => *event,
        }
    }

    /// Whether the error is about a number of an event (its message then
    /// starts with the field's path, `events[i].field`), rather than a
    /// host it names.
    pub fn is_value(&self) -> bool {
        matches!(
            self,
            PlanError::OutOfRange { .. }
                | PlanError::NotServerErrorStatus { .. }
                | PlanError::LatencyMinAboveMax { .. }
        )
    }
}

/// The start or the end of an event, at a time. Sorted by time, then ends
/// before starts (a span ending at t and one starting at t do not overlap),
/// then plan order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at_ms: u64,
    start: bool,
    event: usize,
}

/// A link, as a pair of host names.
type Link = (String, String);

/// How a link is blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Partition,
    Hold,
}

/// Spans in force on one target: `(event, setting)`, oldest first; the
/// last one is the one applied.
type Stack<T> = Vec<(usize, T)>;

/// Executes a [`FaultPlan`] in a turmoil simulation, by stepping it.
///
/// ```no_run
/// # use std::collections::BTreeMap;
/// # use mcp_sim::faults::{Applier, FaultPlan};
/// # use mcp_sim::topology::Latency;
/// # fn go(sim: &mut turmoil::Sim<'static>, servers: BTreeMap<String, mcp_sim::server::Server>, plan: FaultPlan) -> turmoil::Result {
/// let mut applier = Applier::new(&plan, servers, ["worker-1"], Latency::default())?;
/// applier.run(sim)?; // steps until every client is done
/// for done in applier.log() {
///     println!("{}ms: {:?}", done.at_ms, done.action);
/// }
/// # Ok(()) }
/// ```
pub struct Applier {
    plan: Vec<Scheduled>,
    due: Vec<Due>,
    next: usize,
    servers: BTreeMap<String, Server>,
    balancers: BTreeMap<String, Balancer>,
    baseline: Latency,
    crashed: BTreeMap<String, Stack<()>>,
    blocked: BTreeMap<Link, Stack<Block>>,
    latency: BTreeMap<Link, Stack<Latency>>,
    versions: BTreeMap<String, Stack<String>>,
    session_ids: BTreeMap<String, Stack<SessionIdFault>>,
    discover: BTreeMap<String, Stack<DiscoverChange>>,
    /// Per balancer: the policy it routed by before the switches in force,
    /// and the switches.
    policies: BTreeMap<String, (Policy, Stack<Policy>)>,
    log: Vec<Applied>,
}

impl Applier {
    /// An applier of `plan` to a world with these server handles (by host
    /// name) and worker hosts, whose links have `baseline` latency (what a
    /// latency fault restores), and no balancer. Fails if the plan names a
    /// host the world does not have.
    pub fn new(
        plan: &FaultPlan,
        servers: BTreeMap<String, Server>,
        workers: impl IntoIterator<Item = impl Into<String>>,
        baseline: Latency,
    ) -> Result<Applier, PlanError> {
        Applier::with_balancers(plan, servers, BTreeMap::new(), workers, baseline)
    }

    /// [`Applier::new`] for a world that has these balancer handles too
    /// (by host name; see [`crate::topology::World::balancers`]).
    pub fn with_balancers(
        plan: &FaultPlan,
        servers: BTreeMap<String, Server>,
        balancers: BTreeMap<String, Balancer>,
        workers: impl IntoIterator<Item = impl Into<String>>,
        baseline: Latency,
    ) -> Result<Applier, PlanError> {
        let workers: BTreeSet<String> = workers.into_iter().map(Into::into).collect();
        plan.hosts_known(
            |h| servers.contains_key(h),
            |h| balancers.contains_key(h),
            |h| workers.contains(h),
        )?;
        let mut due = Vec::new();
        for (i, s) in plan.events.iter().enumerate() {
            due.push(Due {
                at_ms: s.at_ms,
                start: true,
                event: i,
            });
            if let Some(span) = s.event.span_ms() {
                due.push(Due {
                    at_ms: s.at_ms.saturating_add(span),
                    start: false,
                    event: i,
                });
            }
        }
        due.sort();
        Ok(Applier {
            plan: plan.events.clone(),
            due,
            next: 0,
            servers,
            balancers,
            baseline,
            crashed: BTreeMap::new(),
            blocked: BTreeMap::new(),
            latency: BTreeMap::new(),
            versions: BTreeMap::new(),
            session_ids: BTreeMap::new(),
            discover: BTreeMap::new(),
            policies: BTreeMap::new(),
            log: Vec::new(),
        })
    }

    /// Steps `sim` until every client host is done, applying each event as
    /// its time comes (before the step that starts at that time). Fails as
    /// the simulation does (a client error, or its duration running out).
    /// Events still due when the clients are done are not applied.
    pub fn run(&mut self, sim: &mut Sim<'_>) -> turmoil::Result {
        self.run_while(sim, |_| true).map(|_| ())
    }

    /// [`Applier::run`], asking `go_on` before each step whether to take
    /// it: returns `true` once every client host is done, `false` when
    /// `go_on` stopped the run first (a liveness budget spent, see
    /// [`crate::liveness`]). `go_on` only reads: a run it never stops is
    /// [`Applier::run`]'s.
    pub fn run_while(
        &mut self,
        sim: &mut Sim<'_>,
        mut go_on: impl FnMut(&Sim<'_>) -> bool,
    ) -> turmoil::Result<bool> {
        loop {
            if !go_on(sim) {
                return Ok(false);
            }
            self.apply_due(sim);
            if sim.step()? {
                return Ok(true);
            }
        }
    }

    /// Applies every start and end due at or before `sim.elapsed()`, in
    /// order. For driving the simulation by hand: call it before each
    /// `sim.step()`.
    pub fn apply_due(&mut self, sim: &mut Sim<'_>) {
        let now = sim.elapsed();
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        while let Some(&due) = self.due.get(self.next) {
            if due.at_ms > now_ms {
                break;
            }
            self.next += 1;
            for server in self.servers.values() {
                server.advance_clock_to(now);
            }
            for balancer in self.balancers.values() {
                balancer.advance_clock_to(now);
            }
            let event = self.plan[due.event].event.clone();
            let actions = if due.start {
                self.start(sim, due.event, &event)
            } else {
                self.end(sim, due.event, &event)
            };
            self.log.extend(actions.into_iter().map(|action| Applied {
                at_ms: now_ms,
                event: due.event,
                action,
            }));
        }
    }

    /// Whether every start and end has been applied.
    pub fn is_done(&self) -> bool {
        self.next >= self.due.len()
    }

    /// What was done so far.
    pub fn log(&self) -> &[Applied] {
        &self.log
    }

    /// The log, consumed.
    pub fn into_log(self) -> Vec<Applied> {
        self.log
    }

    fn server(&self, name: &str) -> &Server {
        // Checked in `new`.
        &self.servers[name]
    }

    fn balancer(&self, name: &str) -> &Balancer {
        // Checked in `new`.
        &self.balancers[name]
    }

    /// Starts event `i`. The faults on hosts and links (turmoil's crash,
    /// partition, hold, latency; a redeploy; a balancer's policy) are
    /// applied here; the faults the server plays itself are armed on its
    /// hooks by [`Applier::arm_server`].
    fn start(&mut self, sim: &mut Sim<'_>, i: usize, event: &FaultEvent) -> Vec<Action> {
        if let FaultEvent::StickinessSwitch { balancer, pick, .. } = event {
            return self.switch_policy(i, balancer, *pick);
        }
        let server = event.host().to_owned();
        match event {
            FaultEvent::Crash { .. } => self.crash(sim, i, server),
            FaultEvent::Bounce { .. } => self.bounce(sim, server),
            FaultEvent::Partition { worker, .. } => {
                self.block(sim, i, (worker.clone(), server), Block::Partition)
            }
            FaultEvent::Hold { worker, .. } => {
                self.block(sim, i, (worker.clone(), server), Block::Hold)
            }
            FaultEvent::LatencyRange {
                worker,
                min_ms,
                max_ms,
                ..
            } => self.push_latency(
                sim,
                i,
                (worker.clone(), server),
                Latency::new(*min_ms, *max_ms),
            ),
            FaultEvent::LatencySpike {
                worker, latency_ms, ..
            } => self.push_latency(
                sim,
                i,
                (worker.clone(), server),
                Latency::new(*latency_ms, *latency_ms),
            ),
            FaultEvent::EraUpgrade { .. } => self.change_era(sim, server, true),
            FaultEvent::EraDowngrade { .. } => self.change_era(sim, server, false),
            // Handled above.
            FaultEvent::StickinessSwitch { .. } => Vec::new(),
            FaultEvent::EarlyExpiry { .. }
            | FaultEvent::ServerErrors { .. }
            | FaultEvent::MalformedJson { .. }
            | FaultEvent::TruncatedSse { .. }
            | FaultEvent::ConnectionReset { .. }
            | FaultEvent::SlowInitialize { .. }
            | FaultEvent::VersionMismatch { .. }
            | FaultEvent::MissingSessionId { .. }
            | FaultEvent::InvalidSessionId { .. }
            | FaultEvent::VersionTrap { .. }
            | FaultEvent::HeaderStrip { .. }
            | FaultEvent::DiscoverChange { .. }
            | FaultEvent::ModernStreamCut { .. }
            | FaultEvent::InputRounds { .. } => self.arm_server(i, server, event),
        }
    }

    /// Starts event `i`, a fault `server` plays itself: a one-off burst
    /// armed on its hooks (counted down by the requests it hits), or a
    /// span pushed on a stack of this applier (undone by [`Applier::end`]).
    fn arm_server(&mut self, i: usize, server: String, event: &FaultEvent) -> Vec<Action> {
        match event {
            FaultEvent::EarlyExpiry { pick, .. } => self.expire_one(server, *pick),
            FaultEvent::ServerErrors { status, count, .. } => {
                self.server(&server).fail_next(*count, *status);
                vec![Action::ServerErrors {
                    server,
                    status: *status,
                    count: *count,
                }]
            }
            FaultEvent::MalformedJson { count, .. } => {
                self.arm(server, AnswerFault::Malformed, *count)
            }
            FaultEvent::TruncatedSse { count, .. } => {
                self.arm(server, AnswerFault::Truncated, *count)
            }
            FaultEvent::ConnectionReset { count, .. } => {
                self.arm(server, AnswerFault::Reset, *count)
            }
            FaultEvent::SlowInitialize {
                delay_ms, count, ..
            } => {
                self.server(&server)
                    .slow_initialize(*count, Duration::from_millis(*delay_ms));
                vec![Action::SlowInitialize {
                    server,
                    delay_ms: *delay_ms,
                    count: *count,
                }]
            }
            FaultEvent::VersionMismatch { version, .. } => self.push_version(i, server, version),
            FaultEvent::MissingSessionId { .. } => {
                self.push_session_id_fault(i, server, SessionIdFault::Omitted)
            }
            FaultEvent::InvalidSessionId { .. } => {
                self.push_session_id_fault(i, server, SessionIdFault::Garbled)
            }
            FaultEvent::VersionTrap { count, .. } => {
                self.server(&server).refuse_version_next(*count);
                vec![Action::VersionTrap {
                    server,
                    count: *count,
                }]
            }
            FaultEvent::HeaderStrip { count, .. } => {
                self.server(&server).strip_routing_headers_next(*count);
                vec![Action::HeaderStrip {
                    server,
                    count: *count,
                }]
            }
            FaultEvent::DiscoverChange { ttl_ms, .. } => self.push_discover(i, server, *ttl_ms),
            FaultEvent::ModernStreamCut { count, .. } => {
                self.server(&server).cut_modern_streams_next(*count);
                vec![Action::StreamCut {
                    server,
                    count: *count,
                }]
            }
            FaultEvent::InputRounds { count, rounds, .. } => {
                let rounds = (*rounds).max(1);
                self.server(&server).ask_input_rounds_next(*count, rounds);
                vec![Action::InputRounds {
                    server,
                    count: *count,
                    rounds,
                }]
            }
            // Host, link and balancer faults: see `start`.
            _ => Vec::new(),
        }
    }

    /// Takes `server` down for crash `i`. Downtimes overlap: only the
    /// first one crashes the host; the others wait on the stack, so the
    /// server comes back when the last of them ends (see [`Applier::end`]).
    fn crash(&mut self, sim: &mut Sim<'_>, i: usize, server: String) -> Vec<Action> {
        let stack = self.crashed.entry(server.clone()).or_default();
        stack.push((i, ()));
        if stack.len() > 1 {
            return vec![skipped("already down")];
        }
        sim.crash(server.as_str());
        vec![Action::Crash { server }]
    }

    /// Restarts `server` at once (all sessions lost), unless a downtime is
    /// in force: a bounce cannot bring back a crashed host early.
    fn bounce(&mut self, sim: &mut Sim<'_>, server: String) -> Vec<Action> {
        if self.crashed.get(&server).is_some_and(|s| !s.is_empty()) {
            return vec![skipped("server is down")];
        }
        sim.bounce(server.as_str());
        vec![Action::Bounce { server }]
    }

    /// Blocks `link` as `block` says for event `i`: the newest block on a
    /// link is the one in force.
    fn block(&mut self, sim: &mut Sim<'_>, i: usize, link: Link, block: Block) -> Vec<Action> {
        let stack = self.blocked.entry(link.clone()).or_default();
        let before = stack.last().map(|&(_, b)| b);
        stack.push((i, block));
        relink(sim, &link, before, Some(block))
    }

    /// Expires, on `server` only, the `pick`-th of its live sessions (in
    /// id order, modulo their number): the client learns of it only from
    /// its next request's 404.
    fn expire_one(&self, server: String, pick: u32) -> Vec<Action> {
        let s = self.server(&server);
        let live = s.live_sessions();
        if live.is_empty() {
            return vec![skipped("no live session")];
        }
        let session = live[pick as usize % live.len()].clone();
        s.expire_session(&session);
        vec![Action::Expire { server, session }]
    }

    /// Makes `server` answer `initialize` with `version` for event `i`.
    fn push_version(&mut self, i: usize, server: String, version: &str) -> Vec<Action> {
        let stack = self.versions.entry(server.clone()).or_default();
        stack.push((i, version.to_owned()));
        self.server(&server).answer_protocol_version(Some(version));
        vec![Action::Version {
            server,
            version: Some(version.to_owned()),
        }]
    }

    /// Makes `server` omit or garble its session id for event `i`.
    fn push_session_id_fault(
        &mut self,
        i: usize,
        server: String,
        fault: SessionIdFault,
    ) -> Vec<Action> {
        let stack = self.session_ids.entry(server.clone()).or_default();
        stack.push((i, fault));
        self.server(&server).set_session_id_fault(fault);
        vec![Action::SessionId { server, fault }]
    }

    /// Moves `server` one era up (legacy → dual → modern) or down, and
    /// restarts it so that it serves as the new era from its first answer.
    fn change_era(&mut self, sim: &mut Sim<'_>, server: String, up: bool) -> Vec<Action> {
        let from = self.server(&server).era();
        let to = match (from, up) {
            (ServerEra::Legacy, true) => ServerEra::Dual,
            (ServerEra::Dual, true) => ServerEra::Modern,
            (ServerEra::Modern, false) => ServerEra::Dual,
            (ServerEra::Dual, false) => ServerEra::Legacy,
            (ServerEra::Modern, true) => return vec![skipped("already modern")],
            (ServerEra::Legacy, false) => return vec![skipped("already legacy")],
        };
        self.server(&server).set_era(to);
        let mut done = vec![Action::Era {
            server: server.clone(),
            from,
            to,
        }];
        // A server that is down comes back in the new era when its
        // downtime ends.
        if self.crashed.get(&server).is_none_or(Vec::is_empty) {
            sim.bounce(server.as_str());
            done.push(Action::Bounce { server });
        }
        done
    }

    /// Makes `server`'s discovery answer announce a change (with this TTL)
    /// for event `i`.
    fn push_discover(&mut self, i: usize, server: String, ttl_ms: u64) -> Vec<Action> {
        let change = DiscoverChange { ttl_ms };
        let stack = self.discover.entry(server.clone()).or_default();
        stack.push((i, change));
        self.server(&server).set_discover_change(Some(change));
        vec![Action::DiscoverChange {
            server,
            ttl_ms: Some(ttl_ms),
        }]
    }

    /// Switches `balancer` to the `pick`-th of the policies other than the
    /// one in force, remembering the policy to restore.
    fn switch_policy(&mut self, i: usize, balancer: &str, pick: u32) -> Vec<Action> {
        let b = self.balancer(balancer).clone();
        let from = b.policy();
        let others: Vec<Policy> = Policy::ALL.into_iter().filter(|&p| p != from).collect();
        let to = others[pick as usize % others.len()];
        let (before, stack) = self
            .policies
            .entry(balancer.to_owned())
            .or_insert_with(|| (from, Vec::new()));
        if stack.is_empty() {
            *before = from;
        }
        stack.push((i, to));
        b.set_policy(to);
        vec![Action::Policy {
            balancer: balancer.to_owned(),
            from,
            to,
        }]
    }

    fn end(&mut self, sim: &mut Sim<'_>, i: usize, event: &FaultEvent) -> Vec<Action> {
        let server = event.host().to_owned();
        match event {
            FaultEvent::Crash { .. } => {
                let stack = self.crashed.entry(server.clone()).or_default();
                stack.retain(|&(e, _)| e != i);
                if !stack.is_empty() {
                    return vec![skipped("another downtime goes on")];
                }
                sim.bounce(server.as_str());
                vec![Action::Restart { server }]
            }
            FaultEvent::Partition { worker, .. } | FaultEvent::Hold { worker, .. } => {
                let link = (worker.clone(), server);
                let stack = self.blocked.entry(link.clone()).or_default();
                let before = stack.last().map(|&(_, b)| b);
                stack.retain(|&(e, _)| e != i);
                let after = stack.last().map(|&(_, b)| b);
                relink(sim, &link, before, after)
            }
            FaultEvent::LatencyRange { worker, .. } | FaultEvent::LatencySpike { worker, .. } => {
                let link = (worker.clone(), server);
                let stack = self.latency.entry(link.clone()).or_default();
                stack.retain(|&(e, _)| e != i);
                let now = stack.last().map_or(self.baseline, |&(_, l)| l);
                set_latency(sim, &link, now)
            }
            FaultEvent::VersionMismatch { .. } => {
                let stack = self.versions.entry(server.clone()).or_default();
                stack.retain(|(e, _)| *e != i);
                let version = stack.last().map(|(_, v)| v.clone());
                self.server(&server)
                    .answer_protocol_version(version.as_deref());
                vec![Action::Version { server, version }]
            }
            FaultEvent::MissingSessionId { .. } | FaultEvent::InvalidSessionId { .. } => {
                let stack = self.session_ids.entry(server.clone()).or_default();
                stack.retain(|&(e, _)| e != i);
                let fault = stack.last().map_or(SessionIdFault::Sent, |&(_, f)| f);
                self.server(&server).set_session_id_fault(fault);
                vec![Action::SessionId { server, fault }]
            }
            FaultEvent::DiscoverChange { .. } => {
                let stack = self.discover.entry(server.clone()).or_default();
                stack.retain(|&(e, _)| e != i);
                let change = stack.last().map(|&(_, c)| c);
                self.server(&server).set_discover_change(change);
                vec![Action::DiscoverChange {
                    server,
                    ttl_ms: change.map(|c| c.ttl_ms),
                }]
            }
            FaultEvent::StickinessSwitch { balancer, .. } => {
                let Some((before, stack)) = self.policies.get_mut(balancer) else {
                    return vec![skipped("the switch never started")];
                };
                stack.retain(|&(e, _)| e != i);
                let to = stack.last().map_or(*before, |&(_, p)| p);
                let b = self.balancer(balancer).clone();
                let from = b.policy();
                if from == to {
                    return vec![skipped("the balancer already routes so")];
                }
                b.set_policy(to);
                vec![Action::Policy {
                    balancer: balancer.clone(),
                    from,
                    to,
                }]
            }
            // Nothing else has an end.
            _ => Vec::new(),
        }
    }

    fn push_latency(&mut self, sim: &mut Sim<'_>, i: usize, link: Link, l: Latency) -> Vec<Action> {
        self.latency.entry(link.clone()).or_default().push((i, l));
        set_latency(sim, &link, l)
    }

    fn arm(&mut self, server: String, fault: AnswerFault, count: u32) -> Vec<Action> {
        self.server(&server).arm_answer_fault(fault, count);
        vec![Action::AnswerFault {
            server,
            fault,
            count,
        }]
    }
}

fn skipped(why: &str) -> Action {
    Action::Skipped {
        why: why.to_owned(),
    }
}

/// Moves a link from one blocked state to another (`None`: healthy).
fn relink(
    sim: &mut Sim<'_>,
    link: &Link,
    before: Option<Block>,
    after: Option<Block>,
) -> Vec<Action> {
    let (worker, server) = (link.0.as_str(), link.1.as_str());
    if before == after {
        return vec![skipped("the link is already so")];
    }
    let mut actions = Vec::new();
    // Undo the old state first: turmoil does not combine hold and
    // partition on one link.
    match before {
        Some(Block::Hold) => sim.release(worker, server),
        Some(Block::Partition) => sim.repair(worker, server),
        None => {}
    }
    let (w, s) = (worker.to_owned(), server.to_owned());
    match after {
        Some(Block::Hold) => {
            sim.hold(worker, server);
            actions.push(Action::Hold {
                worker: w,
                server: s,
            });
        }
        Some(Block::Partition) => {
            sim.partition(worker, server);
            actions.push(Action::Partition {
                worker: w,
                server: s,
            });
        }
        None => actions.push(Action::Heal {
            worker: w,
            server: s,
        }),
    }
    actions
}

/// Sets the latency range of a link.
fn set_latency(sim: &mut Sim<'_>, link: &Link, l: Latency) -> Vec<Action> {
    let (worker, server) = (link.0.as_str(), link.1.as_str());
    // `set_link_latency` sets both ends of the range; then the top.
    sim.set_link_latency(worker, server, Duration::from_millis(l.min_ms));
    sim.set_link_max_message_latency(worker, server, Duration::from_millis(l.max_ms));
    vec![Action::Latency {
        worker: worker.to_owned(),
        server: server.to_owned(),
        min_ms: l.min_ms,
        max_ms: l.max_ms,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> FaultSpace {
        FaultSpace::new(["w1", "w2"], ["s1", "s2"])
    }

    /// Every kind, drawn with the default limits, follow-ups and
    /// first-armed faults on: every number in its range.
    #[test]
    fn generated_plans_pass_the_value_checks() {
        let mut space = space().with_balancers(["b"]).only(FaultKind::ALL);
        space.events = 40;
        space.follow_pct = 50;
        space.initialize_first_pct = 50;
        for seed in 0..200 {
            let plan = FaultPlan::generate(seed, &space);
            assert_eq!(
                plan.check_values(),
                Ok(()),
                "seed {seed}: {}",
                plan.to_json()
            );
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in FaultKind::ALL {
            assert_eq!(k.as_str().parse::<FaultKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        let e = "nope".parse::<FaultKind>().unwrap_err();
        assert!(e.to_string().contains("connection_reset"), "{e}");
    }

    #[test]
    fn the_same_seed_draws_the_same_plan() {
        let a = FaultPlan::generate(7, &space());
        assert_eq!(a, FaultPlan::generate(7, &space()));
        assert_ne!(a, FaultPlan::generate(8, &space()));
        assert_eq!(a.len(), 6);
        assert!(a.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(a.events.iter().all(|s| (100..5_000).contains(&s.at_ms)));
        let back: FaultPlan = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(back, a);
    }

    /// Plans drawn before the kinds named only by scenarios were added
    /// are drawn the same way still: adding a kind (or a field of
    /// [`FaultSpace`] with a default) must not move any existing draw. The
    /// digest is of the plans of 48 seeds over the default kinds, with
    /// follow-ups and initialize-first arming half the time.
    #[test]
    fn existing_plans_are_drawn_as_they_always_were() {
        use sha2::{Digest, Sha256};
        let space = FaultSpace {
            follow_pct: 50,
            initialize_first_pct: 50,
            ..space()
        };
        let mut h = Sha256::new();
        for seed in 0..48 {
            h.update(FaultPlan::generate(seed, &space).to_json().as_bytes());
        }
        let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            digest,
            "1b2b5ef2cb511b538695891ed28868dc5a81acf5abf79a26f6dbb668e5ee092e"
        );
    }

    #[test]
    fn only_enabled_kinds_with_targets_are_drawn() {
        let only = space().only([FaultKind::Crash, FaultKind::Hold]);
        for seed in 0..20 {
            let kinds = FaultPlan::generate(seed, &only).kinds();
            assert!(kinds.is_subset(&[FaultKind::Crash, FaultKind::Hold].into()));
        }
        let no_workers = FaultSpace::new(Vec::<String>::new(), ["s"]);
        assert!(no_workers.drawable().iter().all(|k| !k.is_link_fault()));
        assert!(FaultPlan::generate(1, &space().only([])).is_empty());
        assert!(
            FaultPlan::generate(1, &FaultSpace::default()).is_empty(),
            "no servers"
        );
    }

    /// The kinds declared after the default fifteen, that scenarios name.
    const NAMED: [FaultKind; 5] = [
        FaultKind::HeaderStrip,
        FaultKind::DiscoverChange,
        FaultKind::ModernStreamCut,
        FaultKind::InputRounds,
        FaultKind::StickinessSwitch,
    ];

    #[test]
    fn stateless_and_balancer_kinds_are_drawn_only_where_named_and_targeted() {
        let named: BTreeSet<FaultKind> = NAMED.into();
        assert!(NAMED.iter().all(|k| !FaultKind::DEFAULT.contains(k)));
        assert_eq!(FaultKind::ALL[FaultKind::ALL.len() - NAMED.len()..], NAMED);
        let drawn = |space: &FaultSpace| -> BTreeSet<FaultKind> {
            (0..48)
                .flat_map(|seed| FaultPlan::generate(seed, space).kinds())
                .collect()
        };
        // A default space never draws them, balancers or not.
        assert!(drawn(&space().with_balancers(["b"])).is_disjoint(&named));
        // Named: all but the balancer's without a balancer...
        let only = space().only(NAMED);
        let mut without = named.clone();
        without.remove(&FaultKind::StickinessSwitch);
        assert_eq!(drawn(&only), without);
        assert!(!only.drawable().contains(&FaultKind::StickinessSwitch));
        // ...and every one with balancers, each within its ranges.
        let with = only.with_balancers(["b1", "b2"]);
        assert_eq!(drawn(&with), named);
        for seed in 0..48 {
            for s in FaultPlan::generate(seed, &with).events {
                match s.event {
                    FaultEvent::HeaderStrip { count, .. }
                    | FaultEvent::ModernStreamCut { count, .. } => {
                        assert!((1..=3).contains(&count), "{s:?}")
                    }
                    FaultEvent::InputRounds { count, rounds, .. } => {
                        assert!(
                            (1..=3).contains(&count) && (1..=3).contains(&rounds),
                            "{s:?}"
                        )
                    }
                    FaultEvent::DiscoverChange {
                        ttl_ms, span_ms, ..
                    } => {
                        assert!(ttl_ms <= 500 && (50..=1_000).contains(&span_ms), "{s:?}")
                    }
                    FaultEvent::StickinessSwitch {
                        ref balancer,
                        pick,
                        span_ms,
                    } => {
                        assert!(["b1", "b2"].contains(&balancer.as_str()), "{s:?}");
                        assert!(pick < 2 && (50..=1_000).contains(&span_ms), "{s:?}");
                        assert_eq!(s.event.server(), None);
                        assert_eq!(s.event.host(), balancer);
                    }
                    _ => panic!("not named: {s:?}"),
                }
            }
        }
        let a = FaultPlan::generate(9, &with);
        assert_eq!(a, FaultPlan::generate(9, &with));
        assert_ne!(a, FaultPlan::generate(10, &with));
        let back: FaultPlan = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn stateless_and_balancer_events_are_plain_serde_values() {
        let s = || "s".to_owned();
        let events = [
            FaultEvent::HeaderStrip {
                server: s(),
                count: 2,
            },
            FaultEvent::DiscoverChange {
                server: s(),
                ttl_ms: 120,
                span_ms: 300,
            },
            FaultEvent::ModernStreamCut {
                server: s(),
                count: 1,
            },
            FaultEvent::InputRounds {
                server: s(),
                count: 2,
                rounds: 3,
            },
            FaultEvent::StickinessSwitch {
                balancer: "b".into(),
                pick: 1,
                span_ms: 400,
            },
        ];
        for (event, kind) in events.into_iter().zip(NAMED) {
            assert_eq!(event.kind(), kind);
            let scheduled = Scheduled { at_ms: 5, event };
            let v = serde_json::to_value(&scheduled).unwrap();
            assert_eq!(v["fault"], kind.as_str(), "{v}");
            assert_eq!(v["at_ms"], 5);
            let back: Scheduled = serde_json::from_value(v).unwrap();
            assert_eq!(back, scheduled);
        }
        let v = serde_json::json!({"at_ms": 1, "fault": "stickiness_switch",
            "balancer": "b", "pick": 0, "span_ms": 9});
        let e: Scheduled = serde_json::from_value(v).unwrap();
        assert_eq!(e.event.span_ms(), Some(9));
        assert_eq!(e.event.balancer(), Some("b"));
    }

    #[test]
    fn an_unknown_balancer_is_refused() {
        let plan = FaultPlan::new(vec![Scheduled {
            at_ms: 0,
            event: FaultEvent::StickinessSwitch {
                balancer: "lb".into(),
                pick: 0,
                span_ms: 10,
            },
        }]);
        let servers = || [("s".to_owned(), Server::new(Default::default()))].into();
        let e = Applier::new(&plan, servers(), ["w"], Latency::default()).err();
        assert_eq!(
            e,
            Some(PlanError::UnknownBalancer {
                event: 0,
                name: "lb".into()
            })
        );
        assert!(e.unwrap().to_string().contains("balancer \"lb\""));
        let balancers = [(
            "lb".to_owned(),
            Balancer::new(vec!["s".into()], Policy::RoundRobin, 1),
        )]
        .into();
        let a = Applier::with_balancers(&plan, servers(), balancers, ["w"], Latency::default());
        assert!(a.is_ok());
    }

    /// Every follow-up lands where some earlier event has its effect.
    #[test]
    fn follow_ups_land_after_their_lead() {
        let space = FaultSpace {
            follow_pct: 100,
            follow_gap_ms: 40,
            ..space().only([FaultKind::Bounce, FaultKind::ServerErrors])
        };
        for seed in 0..20 {
            let plan = FaultPlan::generate(seed, &space);
            assert_eq!(plan.len(), 6);
            let first = plan.events[0].at_ms;
            assert!((100..5_000).contains(&first), "{plan:?}");
            // Each event but the first is within 40 ms of an earlier one
            // (bounces and 5xx bursts have their effect at once).
            for (i, e) in plan.events.iter().enumerate().skip(1) {
                let near = plan.events[..i]
                    .iter()
                    .any(|l| (l.at_ms..=l.at_ms + 40).contains(&e.at_ms));
                assert!(near, "seed {seed}: {e:?} follows nothing in {plan:?}");
            }
        }
    }

    /// A fault on `initialize` that follows a crash is armed while the
    /// server is down; a crash that follows one comes after its restart.
    #[test]
    fn follow_ups_of_a_crash_meet_the_re_initializations() {
        let space = FaultSpace {
            events: 2,
            follow_pct: 100,
            ..space().only([FaultKind::Crash, FaultKind::SlowInitialize])
        };
        let mut seen = BTreeSet::new();
        for seed in 0..64 {
            let plan = FaultPlan::generate(seed, &space);
            let (lead, next) = (&plan.events[0], &plan.events[1]);
            let FaultEvent::Crash { down_ms, .. } = lead.event else {
                continue;
            };
            let restart = lead.at_ms + down_ms;
            match next.event.kind() {
                FaultKind::SlowInitialize => {
                    assert!((lead.at_ms..=restart).contains(&next.at_ms), "{plan:?}");
                }
                _ => assert!((restart..=restart + 300).contains(&next.at_ms), "{plan:?}"),
            }
            seen.insert(next.event.kind());
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    #[test]
    fn initialize_faults_can_be_armed_first() {
        let first = FaultSpace {
            initialize_first_pct: 100,
            ..space().only([FaultKind::SlowInitialize, FaultKind::Bounce])
        };
        for seed in 0..10 {
            for e in FaultPlan::generate(seed, &first).events {
                let on_initialize = e.event.kind() == FaultKind::SlowInitialize;
                assert_eq!(e.at_ms == 0, on_initialize, "{e:?}");
            }
        }
        // Switched off, nothing is drawn for it: the plan is unchanged.
        let off = FaultSpace {
            initialize_first_pct: 0,
            follow_gap_ms: 1,
            ..first
        };
        let plain = space().only([FaultKind::SlowInitialize, FaultKind::Bounce]);
        assert_eq!(FaultPlan::generate(3, &off), FaultPlan::generate(3, &plain));
    }

    #[test]
    fn the_plan_stream_is_not_the_servers() {
        // The server's stream for the same u64 is stream 0: different
        // numbers.
        let mut fault = ChaCha8Rng::seed_from_u64(3);
        fault.set_stream(FAULT_STREAM);
        let mut server = ChaCha8Rng::seed_from_u64(3);
        let a: [u64; 4] = std::array::from_fn(|_| fault.random());
        let b: [u64; 4] = std::array::from_fn(|_| server.random());
        assert_ne!(a, b);
    }

    #[test]
    fn ends_come_before_starts_at_the_same_time() {
        let plan = FaultPlan::new(vec![
            Scheduled {
                at_ms: 100,
                event: FaultEvent::Bounce { server: "s".into() },
            },
            Scheduled {
                at_ms: 0,
                event: FaultEvent::Crash {
                    server: "s".into(),
                    down_ms: 100,
                },
            },
        ]);
        assert_eq!(plan.end_ms(), 100);
        let servers = [("s".to_owned(), Server::new(Default::default()))].into();
        let a = Applier::new(&plan, servers, Vec::<String>::new(), Latency::default()).unwrap();
        let order: Vec<_> = a.due.iter().map(|d| (d.at_ms, d.start, d.event)).collect();
        assert_eq!(order, [(0, true, 0), (100, false, 0), (100, true, 1)]);
    }

    #[test]
    fn unknown_hosts_are_refused() {
        let plan = FaultPlan::new(vec![Scheduled {
            at_ms: 0,
            event: FaultEvent::Hold {
                worker: "w9".into(),
                server: "s".into(),
                span_ms: 1,
            },
        }]);
        let servers = || [("s".to_owned(), Server::new(Default::default()))].into();
        let e = Applier::new(&plan, servers(), ["w1"], Latency::default()).err();
        assert_eq!(
            e,
            Some(PlanError::UnknownWorker {
                event: 0,
                name: "w9".into()
            })
        );
        let e = Applier::new(&plan, BTreeMap::new(), ["w9"], Latency::default()).err();
        assert!(matches!(e, Some(PlanError::UnknownServer { .. })));
        assert!(Applier::new(&plan, servers(), ["w9"], Latency::default()).is_ok());
    }
}
