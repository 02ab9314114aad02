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
use crate::server::modern::HANDSHAKE_PROTOCOL_VERSIONS;
use crate::trace::{Source, Trace, TraceEvent};

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
        match e.source {
            Source::Manager => a.manager(i, e),
            Source::Server => a.server(i, e),
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
            if e.source != Source::Server {
                continue;
            }
            let host = &*e.host;
            match &*e.event {
                "stateless_wire" => {
                    self.wire_log |= e.str("from").is_some();
                    last.insert(host, i);
                    if let Some(n) = e.u64("request") {
                        by_number.insert((host, n), i);
                    }
                    self.linked.insert(i, Linked::default());
                }
                "stateless_refused" => {
                    let code = e.detail.get("code").and_then(Value::as_i64);
                    if let Some(l) = last.get(host).and_then(|w| self.linked.get_mut(w)) {
                        if l.refused.is_none() {
                            l.refused = code;
                        }
                    }
                }
                "answered" => {
                    let wire = e.u64("request").and_then(|n| by_number.get(&(host, n)));
                    if let Some(&w) = wire {
                        if let Some(l) = self.linked.get_mut(&w) {
                            l.answer = Some(i);
                        }
                        self.answer_wire.insert(i, w);
                    }
                }
                "session_created" => {
                    if let (Some(sid), Some(v)) = (e.session.as_deref(), e.str("answered")) {
                        self.answered.insert(key(host, sid), v);
                    }
                }
                _ => {}
            }
        }
    }

    fn manager(&mut self, i: usize, e: &'a TraceEvent) {
        let host = &*e.host;
        let vu = e.vu.unwrap_or(0);
        let clock = e.clock_ms();
        let sid = e.session.as_deref();
        let mut probed_modern = false;
        match &*e.event {
            "acquire_start" => {
                let w = self.worker(host);
                w.acquires.insert(vu, i);
                w.retries.insert(vu, 0);
            }
            "acquire_ok" | "acquire_error" | "acquire_timeout" | "acquire_cancelled" => {
                self.worker(host).acquires.remove(&vu);
                if let (Some(sid), "acquire_ok") = (sid, &*e.event) {
                    self.holders.insert(sid, (host, vu));
                }
            }
            "era_probed" => probed_modern = self.era_probed(i, e, host, vu, clock),
            "era_changed" => {
                let w = self.worker(host);
                w.era_changes += 1;
                w.window = None;
                w.cache = None;
                w.refreshed = false;
            }
            "version_retried" => {
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
                        format!(
                            "vu-{vu} of {host} retried {n} times after -32022 in one operation"
                        ),
                    );
                }
            }
            "operation_start" => {
                let method = e.str("method").unwrap_or("");
                let w = self.worker(host);
                w.retries.insert(vu, 0);
                w.ops.insert(vu, (i, method));
            }
            "operation_end" => self.operation_end(e, host, vu, sid),
            "created" => self.created(i, e, host, vu, clock, sid),
            _ => {}
        }
        let w = self.worker(host);
        w.last_index = i;
        if e.vu.is_some() {
            if probed_modern {
                w.probed.insert(vu);
            } else {
                w.probed.remove(&vu);
            }
        }
    }

    /// An `era_probed`: the modern window, the discover cache, the
    /// counters. Returns whether its verdict is `modern`.
    fn era_probed(&mut self, i: usize, e: &TraceEvent, host: &'a str, vu: u64, clock: u64) -> bool {
        let verdict = e.str("verdict");
        let reprobe = e.detail.get("reprobe").is_some_and(|v| !v.is_null());
        let ttl = e.u64("ttl_ms").unwrap_or(0);
        let w = self.worker(host);
        w.probes += 1;
        w.retries.insert(vu, 0);
        if reprobe {
            w.reprobes += 1;
        }
        let mut refreshed = false;
        match verdict {
            Some("modern") => {
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
            Some("legacy") => {
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
        verdict == Some("modern")
    }

    fn operation_end(&mut self, e: &TraceEvent, host: &'a str, vu: u64, sid: Option<&str>) {
        let failed = e.detail.get("error").is_some_and(|v| !v.is_null());
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
        let on_context = sid.is_some_and(|s| w.contexts.contains(s));
        if e.str("method") == Some("server/discover") && !failed && on_context {
            w.refreshed = true;
        }
    }

    fn created(
        &mut self,
        i: usize,
        e: &TraceEvent,
        host: &'a str,
        vu: u64,
        clock: u64,
        sid: Option<&'a str>,
    ) {
        let modern = e.str("era") == Some("modern");
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

    fn server(&mut self, i: usize, e: &'a TraceEvent) {
        let from = e.str("from");
        match &*e.event {
            "stateless_wire" => self.stateless_wire(i, e, from),
            "answered" => self.answered(i, e),
            "session_created" => {
                let omitted = e.str("id_header") == Some("omitted");
                let minted = e.session.as_deref().map(|s| (key(&e.host, s), omitted));
                if let Some(w) = from {
                    self.initialize(i, e, w, minted);
                }
            }
            "session_limit" => {
                if let Some(w) = from {
                    self.initialize(i, e, w, None);
                }
            }
            "request" | "notification" | "deleted" | "unknown_session" | "rejected" => {
                if &*e.event == "unknown_session" {
                    self.unknown_session(i, e);
                }
                let Some(w) = from else { return };
                match e.session.as_deref() {
                    Some(sid) => {
                        self.legacy_version(i, e, sid);
                        self.on_session(i, e, w, sid);
                    }
                    None if e.str("http").is_some_and(|h| h == "GET" || h == "DELETE") => {
                        self.idless(i, e, w);
                    }
                    None => {}
                }
            }
            "missing_session" => {
                let Some(w) = from else { return };
                let sent_modern = e
                    .str("header_version")
                    .is_some_and(|v| !HANDSHAKE_PROTOCOL_VERSIONS.contains(&v));
                if sent_modern {
                    // A stateless-era request a legacy server refused (its
                    // wire log is checked as such).
                    if self.window(w).is_some() {
                        self.out.check("no_legacy_wire_after_modern");
                    }
                } else {
                    self.idless(i, e, w);
                }
            }
            _ => {}
        }
    }

    /// Whether a stateless-era request's wire log shows a request the
    /// client sent in the stateless era (see `modern_envelope_agrees`).
    fn is_modern(e: &TraceEvent) -> bool {
        e.str("meta_version").is_some()
            || (e.session.is_none()
                && e.str("header_version")
                    .is_some_and(|v| !HANDSHAKE_PROTOCOL_VERSIONS.contains(&v)))
    }

    fn stateless_wire(&mut self, i: usize, e: &'a TraceEvent, from: Option<&'a str>) {
        let linked = self.linked.get(&i).copied().unwrap_or_default();
        let method = e.str("method");
        let request = e.detail.get("id").is_some() && method.is_some();
        let modern = Self::is_modern(e);
        if request && modern && e.str("http") == Some("POST") {
            self.envelope(i, e);
        }
        if let Some(w) = from {
            if linked.refused == Some(-32022) {
                self.worker(w).refusals_32022 += 1;
            }
        }
        if request {
            self.out.check("mrtr_retry_exact");
        }
        if let Some(state) = e.detail.get("request_state") {
            self.mrtr_retry(i, e, state, linked);
        }
        if let Some(sid) = e.session.as_deref() {
            if !modern {
                self.legacy_version(i, e, sid);
            }
        }
        let Some(w) = from else { return };
        if method == Some("initialize") {
            self.initialize(i, e, w, None);
        } else if let Some(sid) = e.session.as_deref() {
            self.on_session(i, e, w, sid);
        } else if method == Some("ping")
            || e.str("http").is_some_and(|h| h == "GET" || h == "DELETE")
        {
            self.idless(i, e, w);
        } else if self.window(w).is_some() {
            // A stateless request in the window: checked, and fine.
            self.out.check("no_legacy_wire_after_modern");
        }
    }

    /// `modern_envelope_agrees` for one stateless-era request.
    fn envelope(&mut self, i: usize, e: &TraceEvent) {
        const LAW: &str = "modern_envelope_agrees";
        self.out.check(LAW);
        let method = e.str("method").unwrap_or("");
        let id = e.detail.get("id").map(Value::to_string).unwrap_or_default();
        let who = match e.str("from") {
            Some(w) => format!("{method} (id {id}) from {w}"),
            None => format!("{method} (id {id})"),
        };
        let (meta, header) = (e.str("meta_version"), e.str("header_version"));
        let wrong = if header.is_none() {
            Some("carries no MCP-Protocol-Version header".to_owned())
        } else if header != meta {
            Some(format!(
                "carries MCP-Protocol-Version {} but _meta protocolVersion {}",
                shown(header),
                shown(meta)
            ))
        } else if e.str("header_method") != Some(method) {
            Some(format!(
                "carries Mcp-Method {}",
                shown(e.str("header_method"))
            ))
        } else if NAMED.contains(&method)
            && (e.str("name").is_none() || e.str("header_name") != e.str("name"))
        {
            Some(format!(
                "carries Mcp-Name {} for {}",
                shown(e.str("header_name")),
                shown(e.str("name"))
            ))
        } else {
            e.session
                .as_deref()
                .map(|s| format!("carries Mcp-Session-Id {s}"))
        };
        if let Some(wrong) = wrong {
            self.out.fail(LAW, i, format!("{who} {wrong}"));
        }
    }

    /// `legacy_version_after_fallback` for a legacy request naming `sid`.
    fn legacy_version(&mut self, i: usize, e: &TraceEvent, sid: &str) {
        if e.str("from").is_none() {
            return;
        }
        let Some(&answered) = self.answered.get(&key(&e.host, sid)) else {
            return;
        };
        const LAW: &str = "legacy_version_after_fallback";
        self.out.check(LAW);
        let header = e.str("header_version");
        let ok = if answered >= FIRST_VERSION_WITH_HEADER {
            header == Some(answered)
        } else {
            header.is_none() || header == Some(answered)
        };
        if !ok {
            let what = e.str("method").or(e.str("http")).unwrap_or(&e.event);
            self.out.fail(
                LAW,
                i,
                format!(
                    "{what} on {sid} carries MCP-Protocol-Version {}; its initialize was \
                     answered {answered}",
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

    /// An `initialize` from worker `w` reached a server (minting `minted`,
    /// with whether its id was omitted): legitimate outside a window, or
    /// with an acquire under way since before the window opened.
    fn initialize(&mut self, i: usize, e: &TraceEvent, w: &'a str, minted: Option<(String, bool)>) {
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
                    "an initialize from {w} reached {} after its manager chose the stateless \
                     era (event #{o}), with no acquire of {w} under way since before that",
                    e.host
                ),
            );
        }
    }

    /// A legacy request from worker `w` naming session `sid`.
    fn on_session(&mut self, i: usize, e: &TraceEvent, w: &'a str, sid: &str) {
        const LAW: &str = "no_legacy_wire_after_modern";
        let Some(o) = self.window(w) else { return };
        self.out.check(LAW);
        let k = key(&e.host, sid);
        if self.worker(w).legit.get(&k) != Some(&true) {
            let what = e.str("method").or(e.str("http")).unwrap_or(&e.event);
            self.out.fail(
                LAW,
                i,
                format!(
                    "{what} naming {sid} reached {} from {w} after its manager chose the \
                     stateless era (event #{o}); {w} did not set {sid} up before",
                    e.host
                ),
            );
        }
    }

    /// A legacy request from worker `w` without a session id (a `ping`, a
    /// GET or DELETE, anything answered "missing session").
    fn idless(&mut self, i: usize, e: &TraceEvent, w: &'a str) {
        const LAW: &str = "no_legacy_wire_after_modern";
        let Some(o) = self.window(w) else { return };
        self.out.check(LAW);
        if self.worker(w).idless == 0 {
            let what = e.str("method").or(e.str("http")).unwrap_or(&e.event);
            self.out.fail(
                LAW,
                i,
                format!(
                    "{what} without a session id reached {} from {w} after its manager chose \
                     the stateless era (event #{o})",
                    e.host
                ),
            );
        }
    }

    /// A stateless answer: a `requestState` issued, or a stream cut.
    fn answered(&mut self, i: usize, e: &'a TraceEvent) {
        // The answer's wire log: linked by number in `link`.
        let wire = self.answer_wire.get(&i);
        let Some(wire) = wire.and_then(|&w| self.trace.events.get(w)) else {
            return;
        };
        if e.bool("input_required") == Some(true) {
            if let Some(state) = e.detail.get("request_state") {
                let credit = Credit {
                    index: i,
                    id: wire.detail.get("id"),
                    method: wire.str("method"),
                    name: wire.str("name"),
                    from: wire.str("from"),
                };
                self.credits
                    .entry(state.to_string())
                    .or_default()
                    .push(credit);
            }
        }
        let cut = e.str("fault").is_some_and(|f| f != "malformed");
        if let (true, Some(w), Some(method)) = (cut, wire.str("from"), wire.str("method")) {
            self.worker(w).cuts.push((i, method));
        }
    }

    /// `mrtr_retry_exact` for a request carrying `state`.
    fn mrtr_retry(&mut self, i: usize, e: &TraceEvent, state: &Value, linked: Linked) {
        const LAW: &str = "mrtr_retry_exact";
        let k = state.to_string();
        let (id, method, name, from) = (
            e.detail.get("id"),
            e.str("method"),
            e.str("name"),
            e.str("from"),
        );
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
        // Several requests may have been issued the same state (a server
        // may sign only the tool and round): any of them may be this
        // retry's, and the one taken is the latest before it by id (a
        // client numbers a connection's requests upward, so the retry's
        // own round is the closest below it), leaving the others to theirs.
        let fits = |c: &Credit<'_>| c.from == from && c.method == method && c.name == name;
        let below =
            |c: &Credit<'_>| match (c.id.and_then(Value::as_u64), id.and_then(Value::as_u64)) {
                (Some(theirs), Some(mine)) => theirs < mine,
                _ => false,
            };
        let matching = credits
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
            .map(|(n, _)| n);
        let Some(p) = matching else {
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
            .is_some_and(|a| {
                a.detail.get("error").is_none()
                    && a.bool("input_required") != Some(true)
                    && a.detail.get("fault").is_none()
            });
        if complete {
            self.out.goal("mrtr_completed");
        }
    }

    /// An instance answered a session another instance minted as unknown:
    /// its holder is expected to make a new one.
    fn unknown_session(&mut self, i: usize, e: &TraceEvent) {
        let Some(sid) = e.session.as_deref() else {
            return;
        };
        let minted_elsewhere = sid
            .rsplit_once('@')
            .is_some_and(|(_, minter)| minter != &*e.host);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_keyed_by_their_minting_server() {
        assert_eq!(key("server-1", "srv-3"), "srv-3@server-1");
        assert_eq!(key("server-0", "srv-3@server-1"), "srv-3@server-1");
    }
}
