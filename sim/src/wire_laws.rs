//! The laws of the client's wire behaviour, and the goals of the
//! stateless era, checked from a [`Trace`] alone: the server's wire log
//! (see [`crate::server::events`]) says what each request carried as it
//! arrived and which client host sent it (`from`); the manager's events say
//! what the client decided. [`crate::audit::audit`] runs these with its own
//! laws and reports them together.
//!
//! Server events without `from` (a trace recorded before the wire log, a
//! server outside a simulation) cannot be attributed to a worker and are
//! passed by, by every law that needs to know who sent a request. Session
//! ids are matched by value: an id a server logs without an `@` is taken as
//! `<id>@<that server>`, the form a load balancer qualifies ids in, so an
//! id minted by one instance and named on another is the same id.
//!
//! # The laws, as checked
//!
//! - `modern_envelope_agrees`: every stateless-era request (one whose body
//!   carries a `_meta` revision, or that carries no session id and an
//!   `MCP-Protocol-Version` that is not a handshake revision) carries
//!   `MCP-Protocol-Version` equal to its `_meta` revision, `Mcp-Method`
//!   equal to its method, `Mcp-Name` equal to the tool, prompt or URI its
//!   body names (for `tools/call`, `prompts/get`, `resources/read`), and
//!   no `Mcp-Session-Id`.
//! - `no_legacy_wire_after_modern`: once a worker's manager has chosen the
//!   stateless era (`era_probed` with verdict `modern`, or the config's
//!   `era = modern`: then from the start), until it doubts it (`era_changed`,
//!   or an `era_probed` with a `reprobe` reason or verdict `legacy`), no
//!   legacy traffic *starts* from that worker: no `initialize`, and no
//!   request, `ping`, GET or DELETE naming a session (or, without a session
//!   id, at all) that the worker did not set up before. The rule for
//!   requests in flight: a legacy session's set-up is legitimate when its
//!   `initialize` reached the server outside such a window, or inside one
//!   while an acquire of the worker was under way that had started before
//!   the window opened (its plan may predate the verdict: every plan made
//!   inside the window is a stateless context or a probe, and a probe falls
//!   back only after an `era_probed` with verdict `legacy`, which closes the
//!   window). A legitimately set-up session keeps its legacy wire — its
//!   requests, resumption GETs, its DELETE — inside the window; a request
//!   without a session id is legitimate there only if the worker has a
//!   legitimately set-up session whose id never reached it (the server
//!   omitted the header). Attributed to the worker by `from`.
//! - `one_retry_per_refusal`: a VU sends at most one `version_retried` per
//!   operation (between its `operation_start` and `operation_end`) or per
//!   probe (before its `era_probed`); and, where the trace has the wire
//!   log, a worker's `version_retried` events are no more than the -32022
//!   refusals of its requests.
//! - `legacy_version_after_fallback`: every legacy request naming a session
//!   (a request, a notification, a DELETE, a resumption GET, a 404 for an
//!   unknown session, a legacy request routed to the stateless era)
//!   carries the `MCP-Protocol-Version` its server answered at that
//!   session's `initialize` (for a revision older than 2025-06-18, which
//!   has no such header: none, or that one).
//! - `mrtr_retry_exact`: a request carrying a `requestState` carries one a
//!   server issued in an `input_required` answer, from the same worker,
//!   naming the same method and tool (prompt, URI) as the request that got
//!   it, with another JSON-RPC id; each issued state is carried by at most
//!   one request, not counting requests refused with -32022 (their retry
//!   carries it again). A state issued to several requests (a server may
//!   sign only the tool and round) may be carried once per issue; a retry
//!   takes the issue whose request id is the closest below its own.
//! - `discover_fresh`: a manager makes a stateless-era context (`created`
//!   with era `modern`) only on a fresh discover result: its VU's own
//!   probe just before (the VU's previous event is an `era_probed` with
//!   verdict `modern`), or the manager's latest such probe, no `era_changed`
//!   or legacy verdict since, with `created.clock_ms < probe.clock_ms +
//!   ttl_ms` (an absent `ttl_ms` is 0). A `server/discover` operation that
//!   succeeded on a stateless context also refreshes the cache, with a ttl
//!   the trace does not carry: until the next probe the law passes
//!   creations by.
//! - `era_counters_match`: each worker's final metrics' era counters equal
//!   the trace's: `discover_probes` the `era_probed` events,
//!   `fallbacks_to_legacy` those with verdict `legacy`, `era_reprobes`
//!   those with a `reprobe` reason, `version_retries` the `version_retried`
//!   events, `era_changes` the `era_changed` events, and each era's
//!   `created` the `created` events of that era (one without an era
//!   predates the stateless era: legacy).
//!
//! # The goals
//!
//! - `discover_refreshed`: a manager probed again with verdict `modern` and
//!   no `reprobe` reason while its earlier modern verdict held: its cached
//!   discover result had gone stale.
//! - `mrtr_completed`: a request carrying a server-issued `requestState`
//!   was answered with a complete result (no error, not `input_required`,
//!   not spoiled).
//! - `legacy_session_broken_by_balancer`: an instance answered a session
//!   minted by another instance as unknown (`unknown_session` on host X
//!   for an id qualified `@Y`, Y ≠ X), and the VU that held it later got a
//!   new session created.
//! - `lost_modern_stream`: a stateless answer was cut on purpose (an answer
//!   fault other than a malformed body) and an operation of the same method
//!   that was under way on that worker when it was cut ended in an error.

use std::collections::{BTreeMap, BTreeSet};

use mcp_session::{Era, SessionMetrics};
use serde_json::Value;

use crate::audit::AuditConfig;
use crate::server::hooks::SessionIdFault;
use crate::server::modern::HANDSHAKE_PROTOCOL_VERSIONS;
use crate::server::{AnswerFault, ServerEvent};
use crate::trace::{Kind, ManagerEvent, ManagerRecord, Trace};

/// The first revision that defines the `MCP-Protocol-Version` header.
const FIRST_VERSION_WITH_HEADER: &str = "2025-06-18";

/// The methods whose `Mcp-Name` must name what the body names.
const NAMED: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];

/// What the wire laws found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Each law, with how many times it was checked.
    pub checks: BTreeMap<&'static str, u64>,
    /// The first violation of each broken law: its event's index, and what
    /// went wrong.
    pub first: BTreeMap<&'static str, (usize, String)>,
    /// Each goal, with how often it was reached.
    pub goals: BTreeMap<&'static str, u64>,
}

impl Findings {
    fn check(&mut self, law: &'static str) {
        *self.checks.entry(law).or_default() += 1;
    }

    fn fail(&mut self, law: &'static str, index: usize, message: String) {
        self.first.entry(law).or_insert((index, message));
    }

    fn goal(&mut self, goal: &'static str) {
        *self.goals.entry(goal).or_default() += 1;
    }
}

/// Checks the wire laws over `trace` (see the module docs).
pub fn check(trace: &Trace, cfg: &AuditConfig) -> Findings {
    let mut a = Wire::new(trace, cfg);
    a.link();
    for (i, e) in trace.events.iter().enumerate() {
        match &e.kind {
            Kind::Manager(m) => a.manager(i, &e.host, m),
            Kind::Server(s) => a.server(i, &e.host, s),
            _ => {}
        }
    }
    a.finish();
    a.out
}

/// A session id as the laws match it: qualified with the server that
/// logged it, unless it is already.
fn key(host: &str, session: &str) -> String {
    if session.contains('@') {
        session.to_owned()
    } else {
        format!("{session}@{host}")
    }
}

/// What a request is, for a message: its JSON-RPC method, else its HTTP
/// method, else the event's name.
fn what(e: &ServerEvent) -> String {
    e.method()
        .or(e.http())
        .map_or_else(|| e.name(), str::to_owned)
}

/// The fields of a `stateless_wire` event (see
/// [`ServerEvent::StatelessWire`]), by reference.
#[derive(Clone, Copy)]
struct WireLog<'a> {
    from: Option<&'a str>,
    http: &'a str,
    id: Option<&'a Value>,
    method: Option<&'a str>,
    meta_version: Option<&'a str>,
    header_version: Option<&'a str>,
    header_method: Option<&'a str>,
    header_name: Option<&'a str>,
    name: Option<&'a str>,
    session: Option<&'a str>,
    request_state: Option<&'a Value>,
}

impl<'a> WireLog<'a> {
    /// The wire log `e` is, if it is one.
    fn of(e: &'a ServerEvent) -> Option<WireLog<'a>> {
        let ServerEvent::StatelessWire {
            from,
            http,
            id,
            method,
            meta_version,
            header_version,
            header_method,
            header_name,
            name,
            session,
            request_state,
            ..
        } = e
        else {
            return None;
        };
        Some(WireLog {
            from: from.as_deref(),
            http,
            id: id.as_ref(),
            method: method.as_deref(),
            meta_version: meta_version.as_deref(),
            header_version: header_version.as_deref(),
            header_method: header_method.as_deref(),
            header_name: header_name.as_deref(),
            name: name.as_deref(),
            session: session.as_deref(),
            request_state: request_state.as_ref(),
        })
    }

    /// Whether it shows a request the client sent in the stateless era
    /// (see `modern_envelope_agrees`).
    fn is_modern(&self) -> bool {
        self.meta_version.is_some()
            || (self.session.is_none()
                && self
                    .header_version
                    .is_some_and(|v| !HANDSHAKE_PROTOCOL_VERSIONS.contains(&v)))
    }
}

/// A value for a message: quoted, or `none`.
fn shown(v: Option<&str>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
}

/// What the link pass learned of one `stateless_wire` event.
#[derive(Clone, Copy, Debug, Default)]
struct Linked {
    /// The JSON-RPC error code of the refusal the ladder logged for it.
    refused: Option<i64>,
    /// The index of its `answered` event.
    answer: Option<usize>,
}

/// An issued `requestState`: the request that got it.
struct Credit<'a> {
    index: usize,
    id: Option<&'a Value>,
    method: Option<&'a str>,
    name: Option<&'a str>,
    from: Option<&'a str>,
}

/// What a worker has done, as the laws follow it.
#[derive(Default)]
struct Worker<'a> {
    /// The index of the event that opened the current modern window.
    window: Option<usize>,
    /// Each VU's acquire under way: the index of its `acquire_start`.
    acquires: BTreeMap<u64, usize>,
    /// Legacy sessions (by key) whose set-up reached a server from this
    /// worker, and whether it was legitimate.
    legit: BTreeMap<String, bool>,
    /// Legitimately set-up sessions whose id the server never sent.
    idless: u64,
    /// The latest modern probe's clock and ttl, while its verdict holds.
    cache: Option<(u64, u64)>,
    /// A discover operation refreshed the cache, with a ttl unknown.
    refreshed: bool,
    /// VUs whose latest event is an `era_probed` with verdict `modern`.
    probed: BTreeSet<u64>,
    /// The stateless-era contexts made.
    contexts: BTreeSet<&'a str>,
    /// Retries since each VU's last boundary (operation, probe, acquire).
    retries: BTreeMap<u64, u32>,
    /// Operations under way: the `operation_start`'s index and method.
    ops: BTreeMap<u64, (usize, &'a str)>,
    /// Stateless answers cut on purpose: the answer's index and method.
    cuts: Vec<(usize, &'a str)>,
    /// Counts for `one_retry_per_refusal` and `era_counters_match`.
    version_retried: u64,
    refusals_32022: u64,
    probes: u64,
    fallbacks: u64,
    reprobes: u64,
    era_changes: u64,
    created_legacy: u64,
    created_modern: u64,
    last_index: usize,
}

struct Wire<'a> {
    trace: &'a Trace,
    cfg: &'a AuditConfig,
    out: Findings,
    /// The link pass's findings, by `stateless_wire` event index.
    linked: BTreeMap<usize, Linked>,
    /// Each stateless answer's wire log: `answered` index to
    /// `stateless_wire` index.
    answer_wire: BTreeMap<usize, usize>,
    /// The revision each session's `initialize` was answered, by key.
    answered: BTreeMap<String, &'a str>,
    /// Whether any `stateless_wire` event names its client.
    wire_log: bool,
    workers: BTreeMap<&'a str, Worker<'a>>,
    /// Issued request states (their JSON text), not yet used.
    credits: BTreeMap<String, Vec<Credit<'a>>>,
    /// Request states seen used.
    used: BTreeSet<String>,
    /// Who holds each session now: worker and VU.
    holders: BTreeMap<&'a str, (&'a str, u64)>,
    /// VUs whose session another instance answered as unknown: worker,
    /// VU, and that event's index.
    broken: Vec<(&'a str, u64, usize)>,
}

impl<'a> Wire<'a> {
    fn new(trace: &'a Trace, cfg: &'a AuditConfig) -> Self {
        Wire {
            trace,
            cfg,
            out: Findings::default(),
            linked: BTreeMap::new(),
            answer_wire: BTreeMap::new(),
            answered: BTreeMap::new(),
            wire_log: false,
            workers: BTreeMap::new(),
            credits: BTreeMap::new(),
            used: BTreeSet::new(),
            holders: BTreeMap::new(),
            broken: Vec::new(),
        }
    }

    fn worker(&mut self, host: &'a str) -> &mut Worker<'a> {
        self.workers.entry(host).or_default()
    }

    /// Links each stateless request's wire log to its refusal (the ladder
    /// logs it right after the wire log, before the next request's: the
    /// host's last `stateless_wire`) and to its answer (by number), and
    /// collects each session's answered revision.
    fn link(&mut self) {
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        let mut by_number: BTreeMap<(&str, u64), usize> = BTreeMap::new();
        for (i, e) in self.trace.events.iter().enumerate() {
            let Kind::Server(s) = &e.kind else {
                continue;
            };
            let host = &*e.host;
            match &**s {
                ServerEvent::StatelessWire { request, from, .. } => {
                    self.wire_log |= from.is_some();
                    last.insert(host, i);
                    by_number.insert((host, *request), i);
                    self.linked.insert(i, Linked::default());
                }
                ServerEvent::StatelessRefused { code, .. } => {
                    if let Some(l) = last.get(host).and_then(|w| self.linked.get_mut(w)) {
                        if l.refused.is_none() {
                            l.refused = *code;
                        }
                    }
                }
                ServerEvent::Answered { request, .. } => {
                    let wire = request.and_then(|n| by_number.get(&(host, n)));
                    if let Some(&w) = wire {
                        if let Some(l) = self.linked.get_mut(&w) {
                            l.answer = Some(i);
                        }
                        self.answer_wire.insert(i, w);
                    }
                }
                ServerEvent::SessionCreated {
                    session, answered, ..
                } => {
                    self.answered.insert(key(host, session), answered);
                }
                _ => {}
            }
        }
    }

    /// One manager event of worker `host`.
    fn manager(&mut self, i: usize, host: &'a str, m: &'a ManagerRecord) {
        let vu = m.vu.unwrap_or(0);
        let mut probed_modern = false;
        match &m.event {
            ManagerEvent::AcquireStart => {
                let w = self.worker(host);
                w.acquires.insert(vu, i);
                w.retries.insert(vu, 0);
            }
            ManagerEvent::AcquireOk { .. } => {
                self.worker(host).acquires.remove(&vu);
                if let Some(sid) = m.session.as_deref() {
                    self.holders.insert(sid, (host, vu));
                }
            }
            ManagerEvent::AcquireError { .. }
            | ManagerEvent::AcquireTimeout { .. }
            | ManagerEvent::AcquireCancelled { .. } => {
                self.worker(host).acquires.remove(&vu);
            }
            ManagerEvent::EraProbed {
                verdict,
                reprobe,
                ttl_ms,
                ..
            } => {
                let probe = (verdict.as_ref(), reprobe.is_some(), ttl_ms.unwrap_or(0));
                probed_modern = self.era_probed(i, (host, vu, m.clock_ms), probe);
            }
            ManagerEvent::EraChanged => {
                let w = self.worker(host);
                w.era_changes += 1;
                w.window = None;
                w.cache = None;
                w.refreshed = false;
            }
            ManagerEvent::VersionRetried { .. } => self.version_retried(i, host, vu),
            ManagerEvent::OperationStart { method } => {
                let w = self.worker(host);
                w.retries.insert(vu, 0);
                w.ops.insert(vu, (i, &**method));
            }
            ManagerEvent::OperationEnd { method, error } => {
                self.operation_end(host, m, method, error.is_some());
            }
            ManagerEvent::Created { era } => {
                let modern = era.as_deref() == Some("modern");
                self.created(i, (host, vu, m.clock_ms), m.session.as_deref(), modern);
            }
            _ => {}
        }
        let w = self.worker(host);
        w.last_index = i;
        if m.vu.is_some() {
            if probed_modern {
                w.probed.insert(vu);
            } else {
                w.probed.remove(&vu);
            }
        }
    }

    /// A `version_retried` of `vu`: one per operation or probe.
    fn version_retried(&mut self, i: usize, host: &'a str, vu: u64) {
        let w = self.worker(host);
        w.version_retried += 1;
        let n = w.retries.entry(vu).or_default();
        *n += 1;
        let n = *n;
        self.out.check("one_retry_per_refusal");
        if n > 1 {
            self.out.fail(
                "one_retry_per_refusal",
                i,
                format!("vu-{vu} of {host} retried {n} times after -32022 in one operation"),
            );
        }
    }

    /// An `era_probed` (of worker, VU, at clock) with its verdict, whether
    /// it is a reprobe, and its ttl: the modern window, the discover cache,
    /// the counters. Returns whether its verdict is `modern`.
    fn era_probed(
        &mut self,
        i: usize,
        (host, vu, clock): (&'a str, u64, u64),
        (verdict, reprobe, ttl): (&str, bool, u64),
    ) -> bool {
        let w = self.worker(host);
        w.probes += 1;
        w.retries.insert(vu, 0);
        if reprobe {
            w.reprobes += 1;
        }
        let mut refreshed = false;
        match verdict {
            "modern" => {
                // Probed again while the verdict held, its discover result
                // stale by now.
                refreshed = !reprobe
                    && w.cache
                        .is_some_and(|(at, ttl)| clock >= at.saturating_add(ttl));
                if w.window.is_none() || reprobe {
                    w.window = Some(i);
                }
                w.cache = Some((clock, ttl));
                w.refreshed = false;
            }
            "legacy" => {
                w.fallbacks += 1;
                w.window = None;
                w.cache = None;
                w.refreshed = false;
            }
            _ if reprobe => w.window = None,
            _ => {}
        }
        if refreshed {
            self.out.goal("discover_refreshed");
        }
        verdict == "modern"
    }

    /// An operation of `m`'s VU (`method`) ended, `failed` or not: a stream
    /// cut under way, and a discover that refreshed the cache.
    fn operation_end(&mut self, host: &'a str, m: &ManagerRecord, method: &str, failed: bool) {
        let vu = m.vu.unwrap_or(0);
        let w = self.worker(host);
        w.retries.insert(vu, 0);
        let op = w.ops.remove(&vu);
        if let Some((start, method)) = op {
            if failed {
                let cut = w
                    .cuts
                    .iter()
                    .position(|(at, m)| *at > start && *m == method);
                if let Some(c) = cut {
                    w.cuts.remove(c);
                    self.out.goal("lost_modern_stream");
                }
            }
        }
        let w = self.worker(host);
        let on_context = m.session.as_deref().is_some_and(|s| w.contexts.contains(s));
        if method == "server/discover" && !failed && on_context {
            w.refreshed = true;
        }
    }

    /// A session (`modern`: a stateless-era context) created for a VU (of
    /// worker, VU, at clock): a balancer's broken session replaced, the
    /// counters, and a context made only on a fresh discover result.
    fn created(
        &mut self,
        i: usize,
        (host, vu, clock): (&'a str, u64, u64),
        sid: Option<&'a str>,
        modern: bool,
    ) {
        if let Some(sid) = sid {
            self.holders.insert(sid, (host, vu));
        }
        let before = self.broken.len();
        self.broken
            .retain(|(w, v, at)| !(*w == host && *v == vu && *at < i));
        for _ in self.broken.len()..before {
            self.out.goal("legacy_session_broken_by_balancer");
        }
        let w = self.worker(host);
        w.retries.insert(vu, 0);
        if !modern {
            w.created_legacy += 1;
            return;
        }
        w.created_modern += 1;
        if let Some(sid) = sid {
            w.contexts.insert(sid);
        }
        let own_probe = w.probed.contains(&vu);
        let fresh = w
            .cache
            .is_some_and(|(at, ttl)| clock < at.saturating_add(ttl));
        let refreshed = w.refreshed;
        let cache = w.cache;
        self.out.check("discover_fresh");
        if !(own_probe || fresh || refreshed) {
            let why = match cache {
                Some((at, ttl)) => format!(
                    "the discover result of {at}ms was fresh for {ttl}ms (until {}ms)",
                    at.saturating_add(ttl)
                ),
                None => "no modern verdict held".to_owned(),
            };
            self.out.fail(
                "discover_fresh",
                i,
                format!(
                    "vu-{vu} of {host} made stateless context {} at {clock}ms without a probe: {why}",
                    sid.unwrap_or("?")
                ),
            );
        }
    }

    /// One server event of `host`.
    fn server(&mut self, i: usize, host: &'a str, e: &'a ServerEvent) {
        let from = e.client_host();
        match e {
            ServerEvent::StatelessWire { .. } => {
                if let Some(wire) = WireLog::of(e) {
                    self.stateless_wire(i, host, e, wire);
                }
            }
            ServerEvent::Answered { .. } => self.answered(i, e),
            ServerEvent::SessionCreated {
                session, id_header, ..
            } => {
                let omitted = *id_header == SessionIdFault::Omitted;
                let minted = Some((key(host, session), omitted));
                if let Some(w) = from {
                    self.initialize(i, host, w, minted);
                }
            }
            ServerEvent::SessionLimit { .. } => {
                if let Some(w) = from {
                    self.initialize(i, host, w, None);
                }
            }
            ServerEvent::Request { .. }
            | ServerEvent::Notification { .. }
            | ServerEvent::Deleted { .. }
            | ServerEvent::UnknownSession { .. }
            | ServerEvent::Rejected { .. } => self.legacy_message(i, host, e),
            ServerEvent::MissingSession { header_version, .. } => {
                let Some(w) = from else { return };
                let sent_modern = header_version
                    .as_deref()
                    .is_some_and(|v| !HANDSHAKE_PROTOCOL_VERSIONS.contains(&v));
                if sent_modern {
                    // A stateless-era request a legacy server refused (its
                    // wire log is checked as such).
                    if self.window(w).is_some() {
                        self.out.check("no_legacy_wire_after_modern");
                    }
                } else {
                    self.idless(i, host, e, w);
                }
            }
            _ => {}
        }
    }

    /// A legacy request, notification, DELETE, 404 or refusal.
    fn legacy_message(&mut self, i: usize, host: &'a str, e: &'a ServerEvent) {
        if matches!(e, ServerEvent::UnknownSession { .. }) {
            self.unknown_session(i, host, e);
        }
        let Some(w) = e.client_host() else { return };
        match e.session() {
            Some(sid) => {
                self.legacy_version(i, host, e, sid);
                self.on_session(i, host, e, w, sid);
            }
            None if e.http().is_some_and(|h| h == "GET" || h == "DELETE") => {
                self.idless(i, host, e, w);
            }
            None => {}
        }
    }

    /// A request's wire log (event `e` of `host`, its fields `wire`).
    fn stateless_wire(&mut self, i: usize, host: &'a str, e: &'a ServerEvent, wire: WireLog<'a>) {
        let linked = self.linked.get(&i).copied().unwrap_or_default();
        let request = wire.id.is_some() && wire.method.is_some();
        let modern = wire.is_modern();
        if request && modern && wire.http == "POST" {
            self.envelope(i, &wire);
        }
        if let Some(w) = wire.from {
            if linked.refused == Some(-32022) {
                self.worker(w).refusals_32022 += 1;
            }
        }
        if request {
            self.out.check("mrtr_retry_exact");
        }
        if let Some(state) = wire.request_state {
            self.mrtr_retry(i, &wire, state, linked);
        }
        if let (Some(sid), false) = (wire.session, modern) {
            self.legacy_version(i, host, e, sid);
        }
        let Some(w) = wire.from else { return };
        if wire.method == Some("initialize") {
            self.initialize(i, host, w, None);
        } else if let Some(sid) = wire.session {
            self.on_session(i, host, e, w, sid);
        } else if wire.method == Some("ping") || wire.http == "GET" || wire.http == "DELETE" {
            self.idless(i, host, e, w);
        } else if self.window(w).is_some() {
            // A stateless request in the window: checked, and fine.
            self.out.check("no_legacy_wire_after_modern");
        }
    }

    /// `modern_envelope_agrees` for one stateless-era request.
    fn envelope(&mut self, i: usize, e: &WireLog<'_>) {
        const LAW: &str = "modern_envelope_agrees";
        self.out.check(LAW);
        let method = e.method.unwrap_or("");
        let id = e.id.map(Value::to_string).unwrap_or_default();
        let who = match e.from {
            Some(w) => format!("{method} (id {id}) from {w}"),
            None => format!("{method} (id {id})"),
        };
        let (meta, header) = (e.meta_version, e.header_version);
        let wrong = if header.is_none() {
            Some("carries no MCP-Protocol-Version header".to_owned())
        } else if header != meta {
            Some(format!(
                "carries MCP-Protocol-Version {} but _meta protocolVersion {}",
                shown(header),
                shown(meta)
            ))
        } else if e.header_method != Some(method) {
            Some(format!("carries Mcp-Method {}", shown(e.header_method)))
        } else if NAMED.contains(&method) && (e.name.is_none() || e.header_name != e.name) {
            Some(format!(
                "carries Mcp-Name {} for {}",
                shown(e.header_name),
                shown(e.name)
            ))
        } else {
            e.session.map(|s| format!("carries Mcp-Session-Id {s}"))
        };
        if let Some(wrong) = wrong {
            self.out.fail(LAW, i, format!("{who} {wrong}"));
        }
    }

    /// `legacy_version_after_fallback` for a legacy request (event `e` of
    /// `host`) naming `sid`.
    fn legacy_version(&mut self, i: usize, host: &str, e: &ServerEvent, sid: &str) {
        if e.client_host().is_none() {
            return;
        }
        let Some(&answered) = self.answered.get(&key(host, sid)) else {
            return;
        };
        const LAW: &str = "legacy_version_after_fallback";
        self.out.check(LAW);
        let header = e.header_version();
        let ok = if answered >= FIRST_VERSION_WITH_HEADER {
            header == Some(answered)
        } else {
            header.is_none() || header == Some(answered)
        };
        if !ok {
            self.out.fail(
                LAW,
                i,
                format!(
                    "{} on {sid} carries MCP-Protocol-Version {}; its initialize was \
                     answered {answered}",
                    what(e),
                    shown(header)
                ),
            );
        }
    }

    /// The modern window of worker `w` at this point: the index of the
    /// event that opened it (0 for a manager configured `era = modern`).
    fn window(&mut self, w: &'a str) -> Option<usize> {
        if self.cfg.era == Some(Era::Modern) {
            return Some(0);
        }
        self.worker(w).window
    }

    /// An `initialize` from worker `w` reached server `host` (minting
    /// `minted`, with whether its id was omitted): legitimate outside a
    /// window, or with an acquire under way since before the window opened.
    fn initialize(&mut self, i: usize, host: &str, w: &'a str, minted: Option<(String, bool)>) {
        const LAW: &str = "no_legacy_wire_after_modern";
        let window = self.window(w);
        let worker = self.worker(w);
        let legit = match window {
            None => true,
            Some(o) => worker.acquires.values().any(|&a| a < o),
        };
        if let Some((k, omitted)) = minted {
            worker.legit.insert(k, legit);
            if legit && omitted {
                worker.idless += 1;
            }
        }
        let Some(o) = window else { return };
        self.out.check(LAW);
        if !legit {
            self.out.fail(
                LAW,
                i,
                format!(
                    "an initialize from {w} reached {host} after its manager chose the stateless \
                     era (event #{o}), with no acquire of {w} under way since before that"
                ),
            );
        }
    }

    /// A legacy request (event `e` of `host`) from worker `w` naming
    /// session `sid`.
    fn on_session(&mut self, i: usize, host: &str, e: &ServerEvent, w: &'a str, sid: &str) {
        const LAW: &str = "no_legacy_wire_after_modern";
        let Some(o) = self.window(w) else { return };
        self.out.check(LAW);
        let k = key(host, sid);
        if self.worker(w).legit.get(&k) != Some(&true) {
            self.out.fail(
                LAW,
                i,
                format!(
                    "{} naming {sid} reached {host} from {w} after its manager chose the \
                     stateless era (event #{o}); {w} did not set {sid} up before",
                    what(e)
                ),
            );
        }
    }

    /// A legacy request (event `e` of `host`) from worker `w` without a
    /// session id (a `ping`, a GET or DELETE, anything answered "missing
    /// session").
    fn idless(&mut self, i: usize, host: &str, e: &ServerEvent, w: &'a str) {
        const LAW: &str = "no_legacy_wire_after_modern";
        let Some(o) = self.window(w) else { return };
        self.out.check(LAW);
        if self.worker(w).idless == 0 {
            self.out.fail(
                LAW,
                i,
                format!(
                    "{} without a session id reached {host} from {w} after its manager chose \
                     the stateless era (event #{o})",
                    what(e)
                ),
            );
        }
    }

    /// A stateless answer (event `i`): a `requestState` issued, or a
    /// stream cut.
    fn answered(&mut self, i: usize, e: &'a ServerEvent) {
        let ServerEvent::Answered {
            input_required,
            request_state,
            fault,
            ..
        } = e
        else {
            return;
        };
        // The answer's wire log: linked by number in `link`.
        let wire = self.answer_wire.get(&i);
        let wire = wire
            .and_then(|&w| self.trace.events.get(w))
            .and_then(|w| w.server())
            .and_then(WireLog::of);
        let Some(wire) = wire else {
            return;
        };
        if let (true, Some(state)) = (*input_required, request_state) {
            let credit = Credit {
                index: i,
                id: wire.id,
                method: wire.method,
                name: wire.name,
                from: wire.from,
            };
            self.credits
                .entry(state.to_string())
                .or_default()
                .push(credit);
        }
        let cut = fault.is_some_and(|f| f != AnswerFault::Malformed);
        if let (true, Some(w), Some(method)) = (cut, wire.from, wire.method) {
            self.worker(w).cuts.push((i, method));
        }
    }

    /// `mrtr_retry_exact` for a request (its wire log `e`) carrying `state`.
    fn mrtr_retry(&mut self, i: usize, e: &WireLog<'a>, state: &Value, linked: Linked) {
        const LAW: &str = "mrtr_retry_exact";
        let k = state.to_string();
        let (id, method, name, from) = (e.id, e.method, e.name, e.from);
        let credits = self.credits.get_mut(&k).filter(|c| !c.is_empty());
        let Some(credits) = credits else {
            let why = if self.used.contains(&k) {
                "was already carried by the retry it was issued for"
            } else {
                "was never issued by a server"
            };
            self.out.fail(
                LAW,
                i,
                format!("a request carries requestState {k}, which {why}"),
            );
            return;
        };
        let Some(p) = credit_of(credits, e) else {
            let c = &credits[0];
            let why = if c.from != from {
                format!("comes from {from:?}, the state went to {:?}", c.from)
            } else if c.method != method || c.name != name {
                format!(
                    "names {method:?} {name:?}, the state was issued for {:?} {:?}",
                    c.method, c.name
                )
            } else {
                format!("reuses the id {id:?} of the request that got it")
            };
            let at = c.index;
            self.out.fail(
                LAW,
                i,
                format!("a retry carrying requestState {k} (issued at event #{at}) {why}"),
            );
            return;
        };
        if linked.refused == Some(-32022) {
            // Refused before the state was looked at: the retry at the
            // next revision carries it again.
            return;
        }
        credits.remove(p);
        self.used.insert(k);
        let complete = linked
            .answer
            .and_then(|a| self.trace.events.get(a))
            .and_then(|a| a.server())
            .is_some_and(|a| {
                matches!(
                    a,
                    ServerEvent::Answered {
                        error: None,
                        input_required: false,
                        fault: None,
                        ..
                    }
                )
            });
        if complete {
            self.out.goal("mrtr_completed");
        }
    }

    /// An instance (`host`) answered a session another instance minted as
    /// unknown: its holder is expected to make a new one.
    fn unknown_session(&mut self, i: usize, host: &str, e: &ServerEvent) {
        let Some(sid) = e.session() else {
            return;
        };
        let minted_elsewhere = sid
            .rsplit_once('@')
            .is_some_and(|(_, minter)| minter != host);
        if !minted_elsewhere {
            return;
        }
        if let Some(&(w, vu)) = self.holders.get(sid) {
            self.broken.push((w, vu, i));
        }
    }

    fn finish(&mut self) {
        let last = self.trace.events.len().saturating_sub(1);
        let workers = std::mem::take(&mut self.workers);
        for (host, w) in workers.iter().filter(|_| self.wire_log) {
            self.out.check("one_retry_per_refusal");
            if w.version_retried > w.refusals_32022 {
                self.out.fail(
                    "one_retry_per_refusal",
                    w.last_index,
                    format!(
                        "{host} retried {} request(s) after -32022, but only {} of its \
                         requests were refused with -32022",
                        w.version_retried, w.refusals_32022
                    ),
                );
            }
        }
        for (host, m) in &self.cfg.metrics {
            let w = workers.get(host.as_str());
            let at = w.map_or(last, |w| w.last_index);
            self.counters(host, m, w, at);
        }
        self.workers = workers;
    }

    /// `era_counters_match` for worker `host` with final metrics `m`.
    fn counters(&mut self, host: &str, m: &SessionMetrics, w: Option<&Worker<'_>>, at: usize) {
        let count = |f: fn(&Worker<'_>) -> u64| w.map_or(0, f);
        let e = &m.eras;
        let pairs = [
            (
                "discover_probes",
                e.discover_probes,
                "era_probed events",
                count(|w| w.probes),
            ),
            (
                "fallbacks_to_legacy",
                e.fallbacks_to_legacy,
                "legacy verdicts",
                count(|w| w.fallbacks),
            ),
            (
                "era_reprobes",
                e.era_reprobes,
                "reprobes",
                count(|w| w.reprobes),
            ),
            (
                "version_retries",
                e.version_retries,
                "version_retried events",
                count(|w| w.version_retried),
            ),
            (
                "era_changes",
                e.era_changes,
                "era_changed events",
                count(|w| w.era_changes),
            ),
            (
                "legacy.created",
                e.legacy.created,
                "legacy created events",
                count(|w| w.created_legacy),
            ),
            (
                "modern.created",
                e.modern.created,
                "modern created events",
                count(|w| w.created_modern),
            ),
        ];
        for (counter, value, what, seen) in pairs {
            self.out.check("era_counters_match");
            if value != seen {
                self.out.fail(
                    "era_counters_match",
                    at,
                    format!("{host}: metrics eras.{counter} = {value} but {seen} {what}"),
                );
            }
        }
    }
}

/// Which of the requests issued a state a retry (its wire log `e`) takes
/// up, if one fits: several requests may have been issued the same state
/// (a server may sign only the tool and round), and the one taken is the
/// latest before it by id (a client numbers a connection's requests
/// upward, so the retry's own round is the closest below it), leaving the
/// others to theirs.
fn credit_of(credits: &[Credit<'_>], e: &WireLog<'_>) -> Option<usize> {
    let id = e.id;
    let fits = |c: &Credit<'_>| c.from == e.from && c.method == e.method && c.name == e.name;
    let below = |c: &Credit<'_>| match (c.id.and_then(Value::as_u64), id.and_then(Value::as_u64)) {
        (Some(theirs), Some(mine)) => theirs < mine,
        _ => false,
    };
    credits
        .iter()
        .enumerate()
        .filter(|(_, c)| fits(c) && c.id != id)
        .max_by_key(|(n, c)| {
            (
                below(c),
                c.id.and_then(Value::as_u64).filter(|_| below(c)),
                std::cmp::Reverse(*n),
            )
        })
        .map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_keyed_by_their_minting_server() {
        assert_eq!(key("server-1", "srv-3"), "srv-3@server-1");
        assert_eq!(key("server-0", "srv-3@server-1"), "srv-3@server-1");
    }
}
