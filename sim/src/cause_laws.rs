//! The laws that explain failures, and the server-side laws of the legacy
//! wire, checked from a [`Trace`] alone: a failure is not a violation, but
//! a failure nothing in the trace explains is, and so is a request the
//! server should never have seen, or an answer the VU got that the server
//! did not send for that request. [`crate::audit::audit`] runs these with
//! its own laws.
//!
//! # What the trace records for them
//!
//! - every VU step that failed is a `vu_error` (source `vu`) with the
//!   library's error kind (`error`) and, for an error of the transport,
//!   what the transport saw: `cause` (its class: `timeout`, `closed`,
//!   `server_error`, `malformed_json`, ...; see
//!   [`crate::vu::transport_cause`]), the HTTP `status` and the JSON-RPC
//!   `code` where it has one; every call that got a result is a
//!   `vu_answer` with the [`digest`](crate::server::events::digest) of that
//!   result. Both carry the JSON-RPC `id` of the request the call sent
//!   last ([`mcp_session::Lease::last_request_id`]) when it sent one;
//! - every JSON-RPC answer a server sent is an `answered` with the `id` it
//!   answers, the digest of its result (or its error `code`) and the fault
//!   that spoiled it, if one did (`malformed`, `truncated`, `reset`: a
//!   stateless-era stream cut is `truncated`); a request answered with an
//!   injected HTTP failure is an `injected` with the request's `id`, its
//!   session and its client host (`from`); a legacy `request` names its
//!   `id`; the server's refusals (`unknown_session`, `missing_session`,
//!   `session_limit`, `stateless_refused`, ...) name the client host they
//!   answered (`from`) where the server knows it;
//! - the fault plan's actions are `fault` events (crash, restart, bounce,
//!   partition, hold, heal, latency, era, ...), stamped when applied.
//!
//! # The exchange of a failure or an answer
//!
//! The client counts JSON-RPC ids per connection, so an id names a request
//! only together with its session: a VU's `vu_error` or `vu_answer` with
//! an `id` on session `S` of worker `W` belongs to the exchange
//! `(W, S, id)`, and a server event belongs to it when it carries that id
//! and names `S` (a balancer's qualified id matches the bare one the
//! instance minted) or, naming no session, came from `W`; a legacy SSE
//! resumption (a GET with `Last-Event-ID`, which has no id of its own) on
//! `S` belongs to the exchange it resumes, the one under way. In the stateless
//! era the server knows no session: a stateless answer's client host is its
//! request's (`stateless_wire`, by number), and the ladder's events
//! (`stateless_refused`, `routing_headers_stripped`, `stateless_request`)
//! belong to the request whose wire log they follow; there, two contexts of
//! one worker that send the same id in the same window cannot be told
//! apart, and either's answer matches.
//!
//! # The window of a failure
//!
//! A VU's step is one acquire, one operation, one release: a `vu_error` or
//! `vu_answer` at `t` belongs to the VU's latest `acquire_start` on its
//! worker, at `t0`; its window is `t0..=t`. A failed DELETE (`close_failed`)
//! has the window from its session's `closed` to the failure.
//!
//! # What counts as a cause
//!
//! - **the client's own state or a deadline** — explains `manager_closed`,
//!   `vu_busy`, `pool_timeout`, `pool_exhausted`, `session_closed` (the
//!   client closed the session first), `invalid_config`, `no_runtime` and
//!   `input_rounds_exceeded` (the VU's own bound);
//! - **a network fault** — any `crash`, `restart`, `bounce`, `era` (a
//!   redeploy bounces the server) or link fault (`partition`, `hold`,
//!   `heal`, `latency`; not a balancer's `policy` switch, which moves no
//!   stream and breaks no connection) on the failure's worker or on
//!   any server, applied at or before the failure's end (its effects
//!   outlive it: a connection a bounce broke fails when it is next used):
//!   explains `connect`, `closed`, `timeout`, `stream_lost`,
//!   `malformed_sse`, `body_too_large`, and a 5xx (a balancer answers 502
//!   for an instance it cannot reach). These stay matched by time: they
//!   touch links and hosts, not one exchange, and a request they lost
//!   never reached a server to be logged;
//! - **a fault on the failure's exchange** — attributed by request id
//!   (above) when the `vu_error` has one: the fault on *its* request
//!   explains it, one on another request in the window does not. A
//!   spoiled answer (an `answered` with a `fault`): `reset` or `truncated`
//!   explain `closed`, `stream_lost`, `malformed_sse` and `timeout` (a cut
//!   stream's resumption); `malformed` explains `malformed_json` and
//!   `protocol`. An `injected` failure with the failure's status explains
//!   `server_error`; an `answered` with the failure's JSON-RPC code
//!   explains `json_rpc`; a `stateless_refused` or
//!   `routing_headers_stripped` explains `bad_request`, `header_mismatch`,
//!   `unsupported_version` and `missing_capability`; a call of the `slow`
//!   tool explains `timeout`;
//! - **an answer the server chose for the session** — `unknown_session`
//!   for the failure's session (or, without one, for its worker) in the
//!   window explains `session_expired`, `session_not_found` and an HTTP
//!   404 or 400; a request the server sent the client on that session's
//!   stream (`client_request_sent`, `client_request_timed_out`) explains
//!   `timeout`;
//! - **a server personality fault** — applied at or before the failure's
//!   end: `version` explains `version_negotiation`; `session_id` explains
//!   `invalid_session_id`, and a `bad_request` (a client that never got a
//!   session id sends none); `era`, `version_trap`, `header_strip`,
//!   `discover_change` explain the stateless era's refusals and
//!   `era_changed`, `not_modern`, `method_not_found`, `discover`.
//!
//! **Where no id can be known** — a failed acquire (its `initialize`, its
//! era probe, a session limit, a slow `initialize`), a call refused before
//! it sent anything, a trace recorded before ids were — the per-exchange
//! causes above are matched as before ids: anywhere in the failure's
//! window, on any server (`delayed` and `session_limit` too, from the
//! failure's worker for the latter).
//!
//! Conservative where the trace cannot tell: an era change, a discover
//! failure or a method the stateless era lacks is also explained by a
//! server that never spoke that era (no `era` fault, but a legacy-only
//! server answers `server/discover` with an error): such failures are
//! explained whenever a server answered a stateless-era request as a
//! legacy server does (`missing_session` or an `answered` error to a
//! request carrying a modern `MCP-Protocol-Version`), or refused one, in
//! the window. Which era a server speaks is its personality, not a fault
//! of one exchange, so this stays matched by time; it also explains the
//! refusals above, which are therefore no stricter than before ids.
//!
//! # The laws, as checked
//!
//! - `failure_explained`: every `vu_error` has a cause (above) in its
//!   window; a `close_failed` without one is reported by `clean_close`,
//!   which excuses only the explained ones (an `injected` failure on that
//!   session's DELETE, a 404 for that session, or a network fault).
//! - `legacy_headers_present`: a legacy request (no `MCP-Protocol-Version`
//!   or a handshake revision) other than `initialize` never reaches a server
//!   without `Mcp-Session-Id` (`missing_session` from a worker) unless that
//!   worker was sent an `initialize` answer without one (a `session_id`
//!   fault: it then speaks to a server it takes for stateless); and every
//!   request naming a session whose negotiated revision is 2025-06-18 or
//!   later carries an `MCP-Protocol-Version`.
//! - `no_request_after_expiry_seen`: once a VU got the answer that its
//!   session is gone (a server logged `unknown_session` for it, from its
//!   worker, in the window of a `vu_error` on that session whose error says
//!   the VU read that answer: `session_expired`, `session_not_found`, an
//!   HTTP 404 or 400), no request, notification, DELETE or GET naming that
//!   session reaches a server from that worker in a later millisecond
//!   (within one millisecond the trace's order of worker and server events
//!   is not causal).
//! - `answer_delivered_intact`: every `vu_answer` with an `id` carries the
//!   digest of the result a server answered, unspoiled, for that very
//!   exchange (that id, on that session, or from that worker in the
//!   stateless era) in its window: the same digest answered for another
//!   request is a violation, and so is an answer spoiled on purpose. Only
//!   a `vu_answer` without an `id` (no id can be known) is matched by
//!   digest alone: some server answered it, unspoiled, in its window.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::audit::AuditConfig;
use crate::faults::Action;
use crate::server::modern::HANDSHAKE_PROTOCOL_VERSIONS;
use crate::server::{AnswerFault, ServerEvent};
use crate::trace::{FaultRecord, Kind, ManagerEvent, ManagerRecord, Trace, VuEvent, VuRecord};

/// The first revision that defines the `MCP-Protocol-Version` header.
const FIRST_VERSION_WITH_HEADER: &str = "2025-06-18";

/// Whether a fault action disturbs the network or a host: a crash, a
/// restart, a bounce, a redeploy (`era`: it bounces the server) or a link
/// fault (partition, hold, heal, latency). A balancer's policy switch
/// (`policy`) is not one: the name these laws listed for it,
/// `stickiness`, was never an action's, so it never counted.
fn is_network(a: &Action) -> bool {
    matches!(
        a,
        Action::Crash { .. }
            | Action::Restart { .. }
            | Action::Bounce { .. }
            | Action::Partition { .. }
            | Action::Hold { .. }
            | Action::Heal { .. }
            | Action::Latency { .. }
            | Action::Era { .. }
    )
}

/// Whether a fault action changes what era a server speaks or how it
/// answers the stateless era: a redeploy, -32022 refusals, stripped
/// routing headers, a changed discover result.
fn is_era_change(a: &Action) -> bool {
    matches!(
        a,
        Action::Era { .. }
            | Action::VersionTrap { .. }
            | Action::HeaderStrip { .. }
            | Action::DiscoverChange { .. }
    )
}

/// Whether a server event is logged while the stateless-era ladder decides
/// a request: it belongs to the `stateless_wire` just before it on its
/// host.
fn on_the_ladder(e: &ServerEvent) -> bool {
    matches!(
        e,
        ServerEvent::StatelessRefused { .. }
            | ServerEvent::RoutingHeadersStripped { .. }
            | ServerEvent::StatelessRequest { .. }
    )
}

/// What the cause laws found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Each law, with how many times it was checked.
    pub checks: BTreeMap<&'static str, u64>,
    /// The first violation of each broken law: its event's index, and what
    /// went wrong.
    pub first: BTreeMap<&'static str, (usize, String)>,
    /// The `close_failed` events no cause explains, by (worker, session).
    pub unexplained_close: BTreeSet<(String, String)>,
}

impl Findings {
    fn check(&mut self, law: &'static str) {
        *self.checks.entry(law).or_default() += 1;
    }

    fn fail(&mut self, law: &'static str, index: usize, message: String) {
        self.first.entry(law).or_insert((index, message));
    }
}

/// A server event, with the exchange it belongs to where it has one.
struct Served<'a> {
    t: u64,
    /// The server (or balancer instance) that logged it.
    host: &'a str,
    e: &'a ServerEvent,
    /// The JSON-RPC id of the request it logs, answers or refused.
    id: Option<u64>,
    /// That request's client host.
    from: Option<&'a str>,
}

impl Served<'_> {
    /// Whether its session is `sid` (a client's id, qualified by a
    /// balancer, or as minted).
    fn on(&self, sid: &str) -> bool {
        self.e.session().is_some_and(|s| {
            s == sid
                || (!s.contains('@')
                    && sid
                        .strip_suffix(self.host)
                        .and_then(|r| r.strip_suffix('@'))
                        == Some(s))
        })
    }

    /// Whether it came from worker `worker`, or from a client the server
    /// does not name.
    fn may_come_from(&self, worker: &str) -> bool {
        self.e.client_host().is_none_or(|w| w == worker)
    }

    /// Whether it is about a legacy SSE resumption: a GET naming a
    /// session. It carries no JSON-RPC id, and belongs to the exchange
    /// whose stream it resumes: on a legacy session one call is under way
    /// at a time (its lease's holder's), so within a failure's window a
    /// GET on its session resumes its request.
    fn resumption(&self) -> bool {
        self.e.session().is_some() && self.e.http() == Some("GET")
    }
}

/// One exchange as a VU names it (see the module docs).
#[derive(Clone, Copy)]
struct Exchange<'a> {
    worker: &'a str,
    session: Option<&'a str>,
    id: u64,
}

impl<'a> Exchange<'a> {
    /// The exchange a `vu_error` or `vu_answer` of worker `worker` names,
    /// if it has an id.
    fn of(worker: &'a str, v: &'a VuRecord, id: Option<u64>) -> Option<Exchange<'a>> {
        Some(Exchange {
            worker,
            session: v.session.as_deref(),
            id: id?,
        })
    }

    /// Whether server event `s` belongs to this exchange.
    fn touches(&self, s: &Served<'_>) -> bool {
        (s.id == Some(self.id) || (s.id.is_none() && s.resumption()))
            && match s.e.session() {
                Some(_) => self.session.is_some_and(|sid| s.on(sid)),
                None => s.from == Some(self.worker),
            }
    }
}

/// The causes the trace holds, indexed for the window queries.
#[derive(Default)]
struct Causes<'a> {
    /// Fault actions, with their time.
    faults: Vec<(u64, &'a FaultRecord)>,
    /// Server events, in order.
    server: Vec<Served<'a>>,
}

/// A stateless-era request's JSON-RPC id and client host.
type Wire<'a> = (Option<u64>, Option<&'a str>);

impl<'a> Causes<'a> {
    /// The fault actions and the server events of `trace`, each server
    /// event with its exchange.
    fn of(trace: &'a Trace) -> Causes<'a> {
        let mut c = Causes::default();
        // Each stateless-era request's (id, from) by (host, number), and
        // each host's latest one.
        let mut wires: BTreeMap<(&str, u64), Wire<'a>> = BTreeMap::new();
        let mut latest: BTreeMap<&str, Wire<'a>> = BTreeMap::new();
        for e in &trace.events {
            match &e.kind {
                Kind::Fault(f) => c.faults.push((e.t_ms, f)),
                Kind::Server(s) => {
                    let host = &*e.host;
                    let own = (s.request_id().and_then(Value::as_u64), s.client_host());
                    let (id, from) = match &**s {
                        ServerEvent::StatelessWire { request, .. } => {
                            wires.insert((host, *request), own);
                            latest.insert(host, own);
                            own
                        }
                        ServerEvent::Answered { request, .. } => {
                            let wire = request.and_then(|n| wires.get(&(host, n)));
                            (own.0, wire.and_then(|w| w.1).or(own.1))
                        }
                        ladder if on_the_ladder(ladder) => {
                            latest.get(host).copied().unwrap_or_default()
                        }
                        _ => own,
                    };
                    c.server.push(Served {
                        t: e.t_ms,
                        host,
                        e: s,
                        id,
                        from,
                    });
                }
                _ => {}
            }
        }
        c
    }

    /// A network fault touching `worker` (a link fault of its, or any host
    /// fault) at or before `t`.
    fn network(&self, worker: &str, t: u64) -> bool {
        self.faults.iter().any(|(at, f)| {
            *at <= t && is_network(&f.action) && f.worker().is_none_or(|w| w == worker)
        })
    }

    /// A fault action for which `which` holds at or before `t`.
    fn fault(&self, which: impl Fn(&Action) -> bool, t: u64) -> bool {
        self.faults
            .iter()
            .any(|(at, f)| *at <= t && which(&f.action))
    }

    /// The server events in `from..=to`.
    fn served_in(&self, from: u64, to: u64) -> impl Iterator<Item = &Served<'a>> + '_ {
        let start = self.server.partition_point(|s| s.t < from);
        self.server[start..].iter().take_while(move |s| s.t <= to)
    }

    /// A server event in `from..=to` for which `f` holds.
    fn any_in(&self, from: u64, to: u64, f: impl Fn(&Served<'_>) -> bool) -> bool {
        self.served_in(from, to).any(f)
    }

    /// A server event of the failure's exchange for which `f` holds; with
    /// no exchange known, one anywhere in its window.
    fn on_exchange(&self, x: &Failure<'_>, f: impl Fn(&Served<'_>) -> bool) -> bool {
        match &x.exchange {
            Some(ex) => self.served_in(x.from, x.to).any(|s| ex.touches(s) && f(s)),
            None => self.any_in(x.from, x.to, f),
        }
    }
}

/// Whether an `MCP-Protocol-Version` header value makes a request a legacy
/// one: none, or a handshake revision.
fn legacy_header(v: Option<&str>) -> bool {
    v.is_none_or(|v| HANDSHAKE_PROTOCOL_VERSIONS.contains(&v))
}

/// A server answered a stateless-era request as a legacy-only server does,
/// in the window.
fn legacy_answer_to_modern(c: &Causes<'_>, from: u64, to: u64) -> bool {
    c.any_in(from, to, |s| match s.e {
        ServerEvent::MissingSession { header_version, .. } => {
            !legacy_header(header_version.as_deref())
        }
        ServerEvent::Answered { request, error, .. } => request.is_none() && error.is_some(),
        ServerEvent::StatelessRefused { .. } => true,
        _ => false,
    })
}

/// A failed VU step, as its `vu_error` tells it.
struct Failure<'a> {
    worker: &'a str,
    session: Option<&'a str>,
    /// The library's error kind.
    error: &'a str,
    /// What the transport saw, with its HTTP status and JSON-RPC code.
    cause: Option<&'a str>,
    status: Option<u16>,
    code: Option<i64>,
    /// The window.
    from: u64,
    to: u64,
    /// The request that failed, when the VU knows its id.
    exchange: Option<Exchange<'a>>,
}

/// The fields of a `vu_error`.
struct VuErrorFields<'a> {
    error: &'a str,
    id: Option<u64>,
    cause: Option<&'a str>,
    status: Option<u16>,
    code: Option<i64>,
}

impl<'a> Failure<'a> {
    /// The failure a `vu_error` (`fields`) of VU `v` on worker `worker`
    /// at `to` tells, in the window from `from`.
    fn of(worker: &'a str, v: &'a VuRecord, fields: VuErrorFields<'a>, window: (u64, u64)) -> Self {
        Failure {
            worker,
            session: v.session.as_deref(),
            error: fields.error,
            cause: fields.cause,
            status: fields.status,
            code: fields.code,
            from: window.0,
            to: window.1,
            exchange: Exchange::of(worker, v, fields.id),
        }
    }

    /// The failure in a few words: its kind, cause, status or code, id.
    fn what(&self) -> String {
        let error = self.error;
        let mut what = match (self.cause, self.status, self.code) {
            (Some(c), Some(s), _) => format!("{error} ({c}, HTTP {s})"),
            (Some(c), None, Some(k)) => format!("{error} ({c}, code {k})"),
            (Some(c), None, None) => format!("{error} ({c})"),
            (None, ..) => error.to_owned(),
        };
        if let Some(x) = &self.exchange {
            what.push_str(&format!(" of request {}", x.id));
        }
        what
    }

    /// Whether the VU read the answer that its session is gone.
    fn read_gone(&self) -> bool {
        self.error == "session_expired"
            || matches!(self.cause, Some("session_not_found"))
            || (matches!(self.cause, Some("http" | "bad_request"))
                && matches!(self.status, Some(404 | 400)))
    }
}

/// Whether failure `f` is explained (see the module docs).
fn explained(c: &Causes<'_>, f: &Failure<'_>) -> bool {
    match f.error {
        "manager_closed"
        | "vu_busy"
        | "pool_timeout"
        | "pool_exhausted"
        | "session_closed"
        | "invalid_config"
        | "no_runtime"
        | "input_rounds_exceeded" => true,
        "session_expired" => gone(c, f),
        "version_negotiation" => c.fault(|a| matches!(a, Action::Version { .. }), f.to),
        _ => explained_by_cause(c, f),
    }
}

/// A 404 (or the TypeScript SDK's 400) for the failure's session, or
/// without one, for its worker, in its window.
fn gone(c: &Causes<'_>, f: &Failure<'_>) -> bool {
    c.any_in(f.from, f.to, |s| {
        matches!(s.e, ServerEvent::UnknownSession { .. })
            && s.may_come_from(f.worker)
            && f.session.is_none_or(|sid| s.on(sid))
    })
}

/// An answer spoiled by one of `faults` on the failure's exchange.
fn spoiled(c: &Causes<'_>, f: &Failure<'_>, faults: &[AnswerFault]) -> bool {
    c.on_exchange(
        f,
        |s| matches!(s.e, ServerEvent::Answered { fault: Some(k), .. } if faults.contains(k)),
    )
}

/// A slow answer: the `slow` tool called on the failure's exchange, a
/// request the server sent the client on its session's stream, or (with
/// no exchange known) a slow `initialize`.
fn slow(c: &Causes<'_>, f: &Failure<'_>) -> bool {
    c.on_exchange(f, |s| {
        s.e.tool() == Some("slow")
            || (f.exchange.is_none() && matches!(s.e, ServerEvent::Delayed { .. }))
    }) || c.any_in(f.from, f.to, |s| {
        matches!(
            s.e,
            ServerEvent::ClientRequestSent { .. } | ServerEvent::ClientRequestTimedOut { .. }
        ) && (f.exchange.is_none() || f.session.is_some_and(|sid| s.on(sid)))
    })
}

/// [`explained`] for a failure of the transport, by its `cause`.
fn explained_by_cause(c: &Causes<'_>, f: &Failure<'_>) -> bool {
    const CUT: [AnswerFault; 2] = [AnswerFault::Reset, AnswerFault::Truncated];
    let network = || c.network(f.worker, f.to);
    let refused = || {
        c.on_exchange(f, |s| {
            matches!(
                s.e,
                ServerEvent::StatelessRefused { .. } | ServerEvent::RoutingHeadersStripped { .. }
            )
        })
    };
    let era = || c.fault(is_era_change, f.to) || legacy_answer_to_modern(c, f.from, f.to);
    let session_id = || c.fault(|a| matches!(a, Action::SessionId { .. }), f.to);
    match f.cause {
        // An error kind of the library without a transport error (none
        // today but the ones `explained` takes): nothing to match it
        // against.
        None => true,
        Some("session_not_found") => gone(c, f),
        Some("connect" | "closed" | "stream_lost" | "malformed_sse" | "body_too_large") => {
            network() || spoiled(c, f, &CUT)
        }
        Some("timeout") => network() || spoiled(c, f, &CUT) || slow(c, f),
        Some("server_error") => network() || server_error(c, f),
        Some("malformed_json" | "protocol") => spoiled(c, f, &[AnswerFault::Malformed]),
        Some("json_rpc") => c.on_exchange(
            f,
            |s| matches!(s.e, ServerEvent::Answered { error, .. } if *error == f.code),
        ),
        Some("http") if matches!(f.status, Some(404 | 400)) => gone(c, f) || era() || network(),
        Some("bad_request") => gone(c, f) || refused() || era() || session_id(),
        Some("header_mismatch" | "unsupported_version" | "missing_capability") => {
            refused() || era()
        }
        Some(
            "era_changed" | "not_modern" | "method_not_found" | "not_in_modern_era"
            | "invalid_tool",
        ) => era() || refused(),
        Some("invalid_session_id") => session_id(),
        Some(_) => network() || era(),
    }
}

/// A 5xx on the failure's exchange: an injected failure of its status, or
/// (a 503) the server's session limit, for its worker.
fn server_error(c: &Causes<'_>, f: &Failure<'_>) -> bool {
    c.on_exchange(f, |s| match s.e {
        ServerEvent::Injected { status, .. } => Some(*status) == f.status,
        ServerEvent::SessionLimit { .. } => f.status == Some(503) && s.may_come_from(f.worker),
        _ => false,
    })
}

/// Checks the cause laws over `trace` (see the module docs).
pub fn check(trace: &Trace, _cfg: &AuditConfig) -> Findings {
    let causes = Causes::of(trace);
    let has_server = !causes.server.is_empty();
    let has_digests = causes.server.iter().any(|s| {
        matches!(
            s.e,
            ServerEvent::Answered {
                digest: Some(_),
                ..
            }
        )
    });
    let mut walk = Walk {
        causes,
        has_server,
        has_digests,
        out: Findings::default(),
        started: BTreeMap::new(),
        closed: BTreeMap::new(),
        seen_gone: BTreeMap::new(),
        negotiated: BTreeMap::new(),
        idless: BTreeSet::new(),
    };
    for (i, e) in trace.events.iter().enumerate() {
        match &e.kind {
            Kind::Manager(m) => walk.manager(&e.host, e.t_ms, m),
            Kind::Vu(v) if has_server => walk.vu(i, &e.host, e.t_ms, v),
            Kind::Server(s) => walk.server(i, &e.host, e.t_ms, s),
            _ => {}
        }
    }
    let mut out = walk.out;
    for law in LAWS {
        out.checks.entry(law).or_default();
    }
    out
}

/// The state of one pass over a trace.
struct Walk<'a> {
    causes: Causes<'a>,
    /// Whether the trace has a server's side at all.
    has_server: bool,
    /// Whether its servers logged the digests of their answers.
    has_digests: bool,
    out: Findings,
    /// Each (worker, VU)'s latest acquire_start time.
    started: BTreeMap<(&'a str, u64), u64>,
    /// Each (worker, session)'s latest `closed` time.
    closed: BTreeMap<(&'a str, &'a str), u64>,
    /// Sessions whose VU read that they are gone: (worker, session) → the
    /// index and time where it did.
    seen_gone: BTreeMap<(&'a str, &'a str), (usize, u64)>,
    /// Negotiated revisions, by session id as the server logged it.
    negotiated: BTreeMap<&'a str, &'a str>,
    /// Workers that were sent an `initialize` answer without a usable id.
    idless: BTreeSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn manager(&mut self, host: &'a str, t: u64, m: &'a ManagerRecord) {
        match (&m.event, m.vu, m.session.as_deref()) {
            (ManagerEvent::AcquireStart, Some(vu), _) => {
                self.started.insert((host, vu), t);
            }
            (ManagerEvent::Closed { .. }, _, Some(s)) => {
                self.closed.insert((host, s), t);
            }
            (ManagerEvent::CloseFailed { .. }, _, Some(sid)) if self.has_server => {
                self.close_failed(host, t, sid);
            }
            _ => {}
        }
    }

    /// A failed DELETE of session `sid` of worker `host` at `t`: unexplained
    /// unless a cause in the trace explains it.
    fn close_failed(&mut self, host: &'a str, t: u64, sid: &'a str) {
        let from = self.closed.get(&(host, sid)).copied().unwrap_or(0);
        // The DELETE's own exchange: its session (it has no id); an answer
        // naming none, by its client host where known.
        let on_delete = |s: &Served<'_>| match s.e.session() {
            Some(_) => s.on(sid),
            None => s.may_come_from(host),
        };
        let ok = self.causes.network(host, t)
            || self.causes.any_in(from, t, |s| {
                matches!(
                    s.e,
                    ServerEvent::Injected { .. } | ServerEvent::UnknownSession { .. }
                ) && on_delete(s)
            });
        if !ok {
            self.out
                .unexplained_close
                .insert((host.to_owned(), sid.to_owned()));
        }
    }

    fn vu(&mut self, i: usize, host: &'a str, t: u64, v: &'a VuRecord) {
        let from = self.started.get(&(host, v.vu)).copied().unwrap_or(0);
        match &v.event {
            VuEvent::Error {
                error,
                id,
                cause,
                status,
                code,
                ..
            } => {
                let fields = VuErrorFields {
                    error,
                    id: *id,
                    cause: cause.as_deref(),
                    status: *status,
                    code: *code,
                };
                let f = Failure::of(host, v, fields, (from, t));
                self.vu_error(i, v.vu, &f);
            }
            VuEvent::Answer { digest, id, .. } if self.has_digests => {
                self.vu_answer(i, (host, t, v), digest, *id, from);
            }
            VuEvent::Answer { .. } => {}
        }
    }

    fn vu_error(&mut self, i: usize, vu: u64, f: &Failure<'a>) {
        self.out.check("failure_explained");
        if !explained(&self.causes, f) {
            self.out.fail(
                "failure_explained",
                i,
                format!(
                    "vu-{vu} of {} failed with {}{}; nothing in the trace from {} to {} ms explains it",
                    f.worker,
                    f.what(),
                    on(f.session),
                    f.from,
                    f.to
                ),
            );
        }
        let (true, Some(sid)) = (f.read_gone(), f.session) else {
            return;
        };
        let answered = self.causes.any_in(f.from, f.to, |s| {
            matches!(s.e, ServerEvent::UnknownSession { .. })
                && s.on(sid)
                && s.may_come_from(f.worker)
        });
        if answered {
            self.seen_gone.entry((f.worker, sid)).or_insert((i, f.to));
        }
    }

    /// `answer_delivered_intact` for a `vu_answer` (of worker, at time, of
    /// VU) with result `digest`, of request `id`, in the window from
    /// `from`.
    fn vu_answer(
        &mut self,
        i: usize,
        (host, t, v): (&'a str, u64, &'a VuRecord),
        digest: &str,
        id: Option<u64>,
        from: u64,
    ) {
        const LAW: &str = "answer_delivered_intact";
        self.out.check(LAW);
        let intact = |s: &Served<'_>| {
            matches!(
                s.e,
                ServerEvent::Answered { fault: None, digest: Some(d), .. } if d == digest
            )
        };
        let who = format!("vu-{} of {host} got a result (digest {digest})", v.vu);
        let why = match Exchange::of(host, v, id) {
            None => {
                if self.causes.served_in(from, t).any(intact) {
                    return;
                }
                format!("{who}{} that no server answered", on(v.session.as_deref()))
            }
            Some(x) => {
                let mine: Vec<&Served<'_>> = self
                    .causes
                    .served_in(from, t)
                    .filter(|s| matches!(s.e, ServerEvent::Answered { .. }) && x.touches(s))
                    .collect();
                if mine.iter().any(|s| intact(s)) {
                    return;
                }
                let other = self
                    .causes
                    .served_in(from, t)
                    .find(|s| intact(s))
                    .map(answered_elsewhere)
                    .unwrap_or_default();
                format!(
                    "{who} for request {}{}, but the server {}{other}",
                    x.id,
                    on(x.session),
                    sent(mine.first().copied())
                )
            }
        };
        self.out
            .fail(LAW, i, format!("{why} from {from} to {t} ms"));
    }

    fn server(&mut self, i: usize, host: &'a str, t: u64, e: &'a ServerEvent) {
        let from = e.client_host();
        match e {
            ServerEvent::SessionCreated {
                session,
                answered,
                id_header,
                ..
            } => {
                self.negotiated.insert(session, answered);
                if let Some(f) = from {
                    // A fresh session of this id: any earlier one of the
                    // same id is another session.
                    self.seen_gone.remove(&(f, session.as_str()));
                    if *id_header != crate::server::hooks::SessionIdFault::Sent {
                        self.idless.insert(f);
                    }
                }
            }
            ServerEvent::MissingSession { .. } => self.missing_session(i, e),
            ServerEvent::Request { .. }
            | ServerEvent::Notification { .. }
            | ServerEvent::Deleted { .. }
            | ServerEvent::UnknownSession { .. }
            | ServerEvent::Rejected { .. } => {
                if let (Some(s), Some(f)) = (e.session(), from) {
                    self.on_session(i, (host, t, e), s, f);
                }
            }
            _ => {}
        }
    }

    /// `legacy_headers_present` for a request without a session id.
    fn missing_session(&mut self, i: usize, e: &ServerEvent) {
        let Some(f) = e.client_host() else { return };
        if !legacy_header(e.header_version()) {
            return;
        }
        self.out.check("legacy_headers_present");
        if !self.idless.contains(f) {
            self.out.fail(
                "legacy_headers_present",
                i,
                format!(
                    "a legacy {}{} from {f} carried no Mcp-Session-Id",
                    e.http().unwrap_or("request"),
                    e.method().map(|m| format!(" {m}")).unwrap_or_default()
                ),
            );
        }
    }

    /// A message (server event `e` of `host` at `t`) naming session `s`
    /// from worker `f`: its version header (`legacy_headers_present`) and
    /// whether the client had read that the session is gone
    /// (`no_request_after_expiry_seen`).
    fn on_session(&mut self, i: usize, (host, t, e): (&str, u64, &ServerEvent), s: &str, f: &str) {
        let refusal = matches!(
            e,
            ServerEvent::UnknownSession { .. } | ServerEvent::Rejected { .. }
        );
        if !refusal {
            self.header_for_session(i, e, s, f);
        }
        self.out.check("no_request_after_expiry_seen");
        // Strictly later: within the millisecond the VU read the answer,
        // the trace's order of worker and server events is not causal (the
        // 404 itself may be listed after the VU's error).
        let after = self
            .seen_gone
            .get(&(f, s))
            .filter(|(_, gone)| t > *gone)
            .map(|(at, _)| *at);
        if let Some(at) = after {
            let what = match e {
                ServerEvent::Request { method, .. } | ServerEvent::Notification { method, .. } => {
                    method.clone()
                }
                ServerEvent::Deleted { .. } => "DELETE".to_owned(),
                _ => e
                    .method()
                    .or_else(|| e.http())
                    .map_or_else(|| e.name(), str::to_owned),
            };
            self.out.fail(
                "no_request_after_expiry_seen",
                i,
                format!(
                    "{what} on {s} from {f} reached {host}, after the client read that it was gone (event #{at})"
                ),
            );
        }
    }

    /// `legacy_headers_present` of a request, notification or DELETE
    /// naming session `s`: from 2025-06-18 on, it carries its version.
    fn header_for_session(&mut self, i: usize, e: &ServerEvent, s: &str, f: &str) {
        let bare = s.split('@').next().unwrap_or(s);
        let version = self
            .negotiated
            .get(s)
            .or_else(|| self.negotiated.get(bare))
            .copied();
        let Some(v) = version else { return };
        self.out.check("legacy_headers_present");
        if v >= FIRST_VERSION_WITH_HEADER && e.header_version().is_none() {
            self.out.fail(
                "legacy_headers_present",
                i,
                format!(
                    "a {} on {s} (negotiated {v}) from {f} carried no MCP-Protocol-Version",
                    e.name()
                ),
            );
        }
    }
}

/// What the server did with a VU's request, by its answer (if any).
fn sent(answer: Option<&Served<'_>>) -> String {
    match answer.map(|s| s.e) {
        Some(ServerEvent::Answered { fault, digest, .. }) => match (fault, digest) {
            (Some(fault), _) => format!("answered it spoiled ({})", fault_name(*fault)),
            (None, Some(d)) => format!("answered it with digest {d}"),
            (None, None) => "answered it with an error".to_owned(),
        },
        _ => "never answered it".to_owned(),
    }
}

/// Where else a digest was answered: "; that digest answered ...".
fn answered_elsewhere(s: &Served<'_>) -> String {
    let whose = match (s.e.session(), s.from) {
        (Some(sid), _) => format!(" on {sid}"),
        (None, Some(w)) => format!(" from {w}"),
        (None, None) => String::new(),
    };
    match s.id {
        Some(id) => format!("; that digest answered request {id}{whose}"),
        None => format!("; that digest answered another request{whose}"),
    }
}

/// An answer fault's name, as the trace writes it.
fn fault_name(f: AnswerFault) -> &'static str {
    match f {
        AnswerFault::Malformed => "malformed",
        AnswerFault::Truncated => "truncated",
        AnswerFault::Reset => "reset",
    }
}

/// " on SESSION", or nothing.
fn on(session: Option<&str>) -> String {
    session.map(|s| format!(" on {s}")).unwrap_or_default()
}

/// The laws of this module, in report order.
pub const LAWS: [&str; 4] = [
    "failure_explained",
    "legacy_headers_present",
    "no_request_after_expiry_seen",
    "answer_delivered_intact",
];
