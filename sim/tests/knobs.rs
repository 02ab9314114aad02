//! Every knob of the world is drawn (issue 15, 1b).
//!
//! A behaviour of the manager, the transport or the simulated server that no
//! schedule ever switches on is a path no law is checked along: a slip there
//! leaves every trace hash as it was. So every field of [`SessionConfig`],
//! [`HttpConfig`] and [`ServerConfig`], every [`FaultKind`], the links'
//! latency and the balancer either has a range the schedules draw from, or
//! a reason here why not. The config structs are destructured with every
//! field named, so a new field does not compile until it is drawn or
//! listed as not drawn.
//!
//! `cargo test -p mcp-sim --test knobs -- --nocapture` prints the table:
//! each knob, the values the default test seeds (what `cargo test` runs,
//! [`Scenario::default_seeds`]) give it, and the share of those seeds that
//! set it to something other than its default.

use std::collections::{BTreeMap, BTreeSet};

use mcp_session::transport::HttpConfig;
use mcp_session::{ConfigError, Mode, SessionConfig};
use mcp_sim::balancer::Policy;
use mcp_sim::faults::FaultKind;
use mcp_sim::scenarios::Scenario;
use mcp_sim::schedule::{Schedule, MAX_NOTIFICATIONS, MAX_SPLIT_CHUNKS};
use mcp_sim::server::ServerConfig;
use mcp_sim::topology::Latency;

/// Why a knob is not drawn: it must stay at its default in every seed.
type Reason = &'static str;

/// One knob's row.
#[derive(Default)]
struct Row {
    /// `None`: drawn; `Some(why)`: not drawn, and why.
    not_drawn: Option<Reason>,
    /// The values seen.
    values: BTreeSet<String>,
    /// Seeds that set it to something other than its default.
    set: usize,
}

/// The rows, by knob name, in the order first seen.
#[derive(Default)]
struct Table {
    order: Vec<&'static str>,
    rows: BTreeMap<&'static str, Row>,
    seeds: usize,
}

impl Table {
    fn row(&mut self, knob: &'static str) -> &mut Row {
        if !self.rows.contains_key(knob) {
            self.order.push(knob);
        }
        self.rows.entry(knob).or_default()
    }

    /// A drawn knob's value in one seed, and whether it is not the default.
    fn drawn(&mut self, knob: &'static str, value: impl std::fmt::Debug, set: bool) {
        let row = self.row(knob);
        row.values.insert(format!("{value:?}"));
        row.set += usize::from(set);
    }

    /// A knob not drawn, and why; whether it is (wrongly) not the default.
    fn not_drawn(
        &mut self,
        knob: &'static str,
        why: Reason,
        value: impl std::fmt::Debug,
        set: bool,
    ) {
        let row = self.row(knob);
        row.not_drawn = Some(why);
        row.values.insert(format!("{value:?}"));
        row.set += usize::from(set);
    }

    /// Every knob of one schedule.
    fn add(&mut self, s: &Schedule) {
        self.seeds += 1;
        self.session(&s.session);
        self.http(&s.http);
        self.server(&s.server);
        let Latency { min_ms, max_ms } = s.latency;
        let ld = Latency::default();
        self.drawn("latency.min_ms", min_ms, min_ms != ld.min_ms);
        self.drawn("latency.max_ms", max_ms, max_ms != ld.max_ms);
        match s.balancer {
            Some(b) => {
                self.drawn("balancer.instances", b.instances, true);
                self.drawn("balancer.policy", b.policy, b.policy != Policy::default());
            }
            None => {
                self.drawn("balancer.instances", "none", false);
                self.drawn("balancer.policy", "none", false);
            }
        }
        let kinds = s.faults.kinds();
        for kind in FaultKind::ALL {
            let on = kinds.contains(&kind);
            self.drawn(fault_knob(kind), if on { "on" } else { "off" }, on);
        }
    }

    fn session(&mut self, c: &SessionConfig) {
        let d = SessionConfig::default();
        let SessionConfig {
            mode,
            pool_size,
            ttl_ms,
            max_idle_ms,
            churn_interval_ms,
            churn_interval_ops,
            era,
            modern_protocol_versions,
            protocol_version,
            protocol_version_policy,
            acquire_timeout_ms,
        } = c;
        self.drawn("session.mode (by scenario)", mode, *mode != d.mode);
        self.drawn("session.pool_size", pool_size, *pool_size != d.pool_size);
        self.drawn("session.ttl_ms", ttl_ms, *ttl_ms != d.ttl_ms);
        self.drawn(
            "session.max_idle_ms",
            max_idle_ms,
            *max_idle_ms != d.max_idle_ms,
        );
        self.drawn(
            "session.churn_interval_ms",
            churn_interval_ms,
            *churn_interval_ms != d.churn_interval_ms,
        );
        self.drawn(
            "session.churn_interval_ops",
            churn_interval_ops,
            *churn_interval_ops != d.churn_interval_ops,
        );
        let both = *churn_interval_ms > 0 && *churn_interval_ops > 0;
        self.not_drawn(
            "session.churn_interval_ms + _ops both set",
            "not a valid config: SessionConfig::validate refuses it (ChurnBothSet)",
            both,
            both,
        );
        self.drawn("session.era", era, *era != d.era);
        self.not_drawn(
            "session.modern_protocol_versions",
            "the library speaks one stateless revision (2026-07-28): the list can only be it",
            modern_protocol_versions,
            *modern_protocol_versions != d.modern_protocol_versions,
        );
        self.drawn(
            "session.protocol_version",
            protocol_version,
            *protocol_version != d.protocol_version,
        );
        self.drawn(
            "session.protocol_version_policy",
            protocol_version_policy,
            *protocol_version_policy != d.protocol_version_policy,
        );
        // Only pool mode reads it.
        self.drawn(
            "session.acquire_timeout_ms (pool)",
            acquire_timeout_ms,
            *mode == Mode::Pool && *acquire_timeout_ms != d.acquire_timeout_ms,
        );
    }

    fn http(&mut self, c: &HttpConfig) {
        let d = HttpConfig::default();
        let HttpConfig {
            url,
            connect_timeout_ms,
            request_timeout_ms,
            close_timeout_ms,
            max_body_bytes,
            session_400_is_expired,
            max_resumes,
        } = c;
        self.not_drawn(
            "http.url",
            "an address, not a behaviour: the topology points it at the server host",
            url,
            *url != d.url,
        );
        self.drawn(
            "http.connect_timeout_ms",
            connect_timeout_ms,
            *connect_timeout_ms != d.connect_timeout_ms,
        );
        self.drawn(
            "http.request_timeout_ms",
            request_timeout_ms,
            *request_timeout_ms != d.request_timeout_ms,
        );
        self.drawn(
            "http.close_timeout_ms",
            close_timeout_ms,
            *close_timeout_ms != d.close_timeout_ms,
        );
        self.drawn(
            "http.max_body_bytes",
            max_body_bytes,
            *max_body_bytes != d.max_body_bytes,
        );
        self.drawn(
            "http.session_400_is_expired",
            session_400_is_expired,
            *session_400_is_expired != d.session_400_is_expired,
        );
        self.drawn(
            "http.max_resumes",
            max_resumes,
            *max_resumes != d.max_resumes,
        );
    }

    fn server(&mut self, c: &ServerConfig) {
        let d = ServerConfig::default();
        let ServerConfig {
            seed,
            path,
            sse_ratio,
            notifications_before_response,
            split_chunks,
            session_ttl,
            session_idle,
            max_sessions,
            answer_400_for_unknown_session,
            max_body_bytes,
            header_read_timeout,
            body_read_timeout,
            max_connections,
            localhost_only,
            conformance_tools,
            era,
            discover_ttl_ms,
            sse_priming,
        } = c;
        self.drawn("server.seed (the schedule's)", seed, *seed != d.seed);
        self.not_drawn(
            "server.path",
            "an address, not a behaviour: the client's URL names it",
            path,
            *path != d.path,
        );
        self.drawn("server.sse_ratio", sse_ratio, *sse_ratio != d.sse_ratio);
        self.drawn(
            "server.notifications_before_response",
            notifications_before_response,
            *notifications_before_response != d.notifications_before_response,
        );
        self.drawn(
            "server.split_chunks",
            split_chunks,
            *split_chunks != d.split_chunks,
        );
        self.drawn(
            "server.session_ttl",
            session_ttl,
            *session_ttl != d.session_ttl,
        );
        self.drawn(
            "server.session_idle",
            session_idle,
            *session_idle != d.session_idle,
        );
        self.drawn(
            "server.max_sessions",
            max_sessions,
            *max_sessions != d.max_sessions,
        );
        self.drawn(
            "server.answer_400_for_unknown_session",
            answer_400_for_unknown_session,
            *answer_400_for_unknown_session != d.answer_400_for_unknown_session,
        );
        self.not_drawn(
            "server.max_body_bytes",
            "requests are under 1 KiB: a cap below would refuse every request (413; server tests)",
            max_body_bytes,
            *max_body_bytes != d.max_body_bytes,
        );
        self.not_drawn(
            "server.header_read_timeout",
            "simulated clients never stall mid-request: a hardening of `serve` (serve tests)",
            header_read_timeout,
            *header_read_timeout != d.header_read_timeout,
        );
        self.not_drawn(
            "server.body_read_timeout",
            "simulated clients never stall mid-body: a hardening of `serve` (serve tests)",
            body_read_timeout,
            *body_read_timeout != d.body_read_timeout,
        );
        self.not_drawn(
            "server.max_connections",
            "keep-alive clients hold connections: a cap stalls the rest until timeouts (serve tests)",
            max_connections,
            *max_connections != d.max_connections,
        );
        self.not_drawn(
            "server.localhost_only",
            "simulated hosts have names (`server`): it would refuse every request with 403",
            localhost_only,
            *localhost_only != d.localhost_only,
        );
        self.not_drawn(
            "server.conformance_tools",
            "adds tools the VUs never call: no behaviour a schedule can reach",
            conformance_tools,
            *conformance_tools != d.conformance_tools,
        );
        self.drawn("server.era", era, *era != d.era);
        self.drawn(
            "server.discover_ttl_ms",
            discover_ttl_ms,
            *discover_ttl_ms != d.discover_ttl_ms,
        );
        self.drawn(
            "server.sse_priming",
            sse_priming,
            *sse_priming != d.sse_priming,
        );
    }

    fn print(&self) {
        println!(
            "{:<46} {:>6}  values seen ({} default seeds)",
            "knob", "set", self.seeds
        );
        for knob in &self.order {
            let row = &self.rows[knob];
            let values: Vec<&str> = row.values.iter().map(String::as_str).collect();
            let mut shown = values
                .iter()
                .take(8)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            if values.len() > 8 {
                shown.push_str(&format!(", ... ({} values)", values.len()));
            }
            match row.not_drawn {
                None => println!(
                    "{knob:<46} {:>5.1}%  {shown}",
                    100.0 * row.set as f64 / self.seeds as f64
                ),
                Some(why) => println!("{knob:<46} {:>6}  not drawn: {why}", "-"),
            }
        }
    }
}

/// The row name of a fault kind (a new kind must be named here).
fn fault_knob(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Crash => "fault.crash",
        FaultKind::Bounce => "fault.bounce",
        FaultKind::Partition => "fault.partition",
        FaultKind::Hold => "fault.hold",
        FaultKind::LatencyRange => "fault.latency_range",
        FaultKind::LatencySpike => "fault.latency_spike",
        FaultKind::EarlyExpiry => "fault.early_expiry",
        FaultKind::ServerErrors => "fault.server_errors",
        FaultKind::MalformedJson => "fault.malformed_json",
        FaultKind::TruncatedSse => "fault.truncated_sse",
        FaultKind::SlowInitialize => "fault.slow_initialize",
        FaultKind::VersionMismatch => "fault.version_mismatch",
        FaultKind::MissingSessionId => "fault.missing_session_id",
        FaultKind::InvalidSessionId => "fault.invalid_session_id",
        FaultKind::ConnectionReset => "fault.connection_reset",
        FaultKind::EraUpgrade => "fault.era_upgrade",
        FaultKind::EraDowngrade => "fault.era_downgrade",
        FaultKind::VersionTrap => "fault.version_trap",
        FaultKind::HeaderStrip => "fault.header_strip",
        FaultKind::DiscoverChange => "fault.discover_change",
        FaultKind::ModernStreamCut => "fault.modern_stream_cut",
        FaultKind::InputRounds => "fault.input_rounds",
        FaultKind::StickinessSwitch => "fault.stickiness_switch",
    }
}

/// The schedules of every scenario over its default test seeds.
fn default_schedules() -> Vec<Schedule> {
    Scenario::all()
        .iter()
        .flat_map(|s| (0..s.default_seeds()).map(move |seed| Schedule::generate(s, seed)))
        .collect()
}

#[test]
fn every_knob_is_drawn_by_some_default_seeds() {
    let mut table = Table::default();
    for s in default_schedules() {
        table.add(&s);
    }
    table.print();
    let mut never = Vec::new();
    let mut wrongly = Vec::new();
    for knob in &table.order {
        let row = &table.rows[knob];
        match row.not_drawn {
            None if row.set == 0 || row.values.len() < 2 => never.push(*knob),
            None => {}
            Some(_) if row.set > 0 => wrongly.push(*knob),
            Some(_) => {}
        }
    }
    assert!(
        never.is_empty(),
        "drawn knobs no default seed sets (or that take one value): {never:?}"
    );
    assert!(
        wrongly.is_empty(),
        "knobs listed as not drawn that some seed sets: {wrongly:?}"
    );
}

/// Both churn limits at once is refused by the manager's validation, which
/// is why no schedule sets both (the table's row says so).
#[test]
fn both_churn_limits_are_not_a_valid_config() {
    let both = SessionConfig {
        churn_interval_ms: 100,
        churn_interval_ops: 3,
        ..SessionConfig::with_mode(Mode::Churn)
    };
    assert!(matches!(
        both.validate(),
        Err(ConfigError::ChurnBothSet { ms: 100, ops: 3 })
    ));
}

/// The drawn knobs stay in their bounds, and every schedule is runnable.
#[test]
fn drawn_knobs_stay_in_bounds() {
    for scenario in Scenario::all() {
        for seed in 0..200 {
            let s = Schedule::generate(&scenario, seed);
            let at = format!("{} {seed}", scenario.name);
            assert_eq!(s.validate(), Ok(()), "{at}");
            s.session.validate().expect(&at);
            assert!(s.server.split_chunks <= MAX_SPLIT_CHUNKS, "{at}");
            assert!(
                s.server.notifications_before_response <= MAX_NOTIFICATIONS,
                "{at}"
            );
            // A server that answers the TypeScript SDK's 400 meets a client
            // that takes it for a 404.
            if s.server.answer_400_for_unknown_session {
                assert!(s.http.session_400_is_expired, "{at}");
            }
            // A version mismatch answers another revision than asked for.
            for e in &s.faults.events {
                if let mcp_sim::faults::FaultEvent::VersionMismatch { version, .. } = &e.event {
                    assert_ne!(version, &s.session.protocol_version, "{at}");
                }
            }
            // A slow initialize outlasts the request timeout.
            for e in &s.faults.events {
                if let mcp_sim::faults::FaultEvent::SlowInitialize { delay_ms, .. } = &e.event {
                    assert!(*delay_ms > s.http.request_timeout_ms, "{at}");
                }
            }
        }
    }
}
