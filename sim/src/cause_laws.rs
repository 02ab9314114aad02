//! The laws that explain failures, and the server-side laws of the legacy
//! wire, checked from a [`Trace`] alone: a failure is not a violation, but
//! a failure nothing in the trace explains is, and so is a request the
//! server should never have seen, or an answer the VU got that no server
//! sent. [`crate::audit::audit`] runs these with its own laws.
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
//!   result;
//! - every JSON-RPC answer a server sent is an `answered` with the digest
//!   of its result (or its error `code`) and the fault that spoiled it, if
//!   one did; the server's refusals (`unknown_session`, `missing_session`,
//!   `injected`, `session_limit`, `stateless_refused`, ...) name the client
//!   host they answered (`from`) where the server knows it;
//! - the fault plan's actions are `fault` events (crash, restart, bounce,
//!   partition, hold, heal, latency, era, ...), stamped when applied.
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
//!   redeploy bounces the server), `stickiness` switch or link fault
//!   (`partition`, `hold`, `heal`, `latency`) on the failure's worker or on
//!   any server, applied at or before the failure's end (its effects
//!   outlive it: a connection a bounce broke fails when it is next used):
//!   explains `connect`, `closed`, `timeout`, `stream_lost`,
//!   `malformed_sse`, `body_too_large`, and a 5xx (a balancer answers 502
//!   for an instance it cannot reach);
//! - **a spoiled answer** — an `answered` with a `fault` in the window (on
//!   any server): `reset` or `truncated` explain `closed`, `stream_lost`,
//!   `malformed_sse` and `timeout` (a cut stream's resumption); `malformed`
//!   explains `malformed_json` and `protocol`;
//! - **an answer the server chose** — `unknown_session` for the failure's
//!   session (or, without one, for its worker) in the window explains
//!   `session_expired`, `session_not_found` and an HTTP 404 or 400;
//!   `injected` with the failure's status, or `session_limit` for a 503,
//!   explains `server_error`; an `answered` with the failure's JSON-RPC
//!   code explains `json_rpc`; a `stateless_refused` or
//!   `routing_headers_stripped` in the window explains `bad_request`,
//!   `header_mismatch`, `unsupported_version` and `missing_capability`; a
//!   slow answer (`delayed`, a `slow` tool, a request sent to the client)
//!   in the window explains `timeout`;
//! - **a server personality fault** — applied at or before the failure's
//!   end: `version` explains `version_negotiation`; `session_id` explains
//!   `invalid_session_id`, and a `bad_request` (a client that never got a
//!   session id sends none); `era`, `version_trap`, `header_strip`,
//!   `discover_change` explain the stateless era's refusals and
//!   `era_changed`, `not_modern`, `method_not_found`, `discover`.
//!
//! Conservative where the trace cannot tell: an era change, a discover
//! failure or a method the stateless era lacks is also explained by a
//! server that never spoke that era (no `era` fault, but a legacy-only
//! server answers `server/discover` with an error): such failures are
//! explained whenever a server answered a stateless-era request as a
//! legacy server does (`missing_session` or an `answered` error to a
//! request carrying a modern `MCP-Protocol-Version`) in the window.
//!
//! # The laws, as checked
//!
//! - `failure_explained`: every `vu_error` has a cause (above) in its
//!   window; a `close_failed` without one is reported by `clean_close`,
//!   which excuses only the explained ones.
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
//! - `answer_delivered_intact`: every `vu_answer`'s digest is the digest
//!   of a result a server answered in its window (an answer spoiled on
//!   purpose never reaches a VU as a result).

use std::collections::{BTreeMap, BTreeSet};

use crate::audit::AuditConfig;
use crate::server::modern::HANDSHAKE_PROTOCOL_VERSIONS;
use crate::trace::{Source, Trace, TraceEvent};

/// The first revision that defines the `MCP-Protocol-Version` header.
const FIRST_VERSION_WITH_HEADER: &str = "2025-06-18";

/// The fault actions that disturb the network or a host.
const NETWORK_FAULTS: [&str; 9] = [
    "crash",
    "restart",
    "bounce",
    "partition",
    "hold",
    "heal",
    "latency",
    "era",
    "stickiness",
];

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

/// The causes the trace holds, indexed for the window queries.
#[derive(Default)]
struct Causes<'a> {
    /// Fault actions: (time, action, server host, worker if a link fault).
    faults: Vec<(u64, &'a str, &'a str, Option<&'a str>)>,
    /// Server events, in order: (time, index).
    server: Vec<(u64, &'a TraceEvent)>,
}

impl<'a> Causes<'a> {
    /// The first network fault touching `worker` (a link fault of its, or
    /// any host fault) at or before `t`.
    fn network(&self, worker: &str, t: u64) -> bool {
        self.faults.iter().any(|(at, action, _, w)| {
            *at <= t && NETWORK_FAULTS.contains(action) && w.is_none_or(|w| w == worker)
        })
    }

    /// A fault action named one of `actions` at or before `t`.
    fn fault(&self, actions: &[&str], t: u64) -> bool {
        self.faults
            .iter()
            .any(|(at, action, _, _)| *at <= t && actions.contains(action))
    }

    /// The server events in `from..=to`.
    fn server_in(&self, from: u64, to: u64) -> impl Iterator<Item = &'a TraceEvent> + '_ {
        let start = self.server.partition_point(|(t, _)| *t < from);
        self.server[start..]
            .iter()
            .take_while(move |(t, _)| *t <= to)
            .map(|(_, e)| *e)
    }

    /// A server event in `from..=to` for which `f` holds.
    fn any_in(&self, from: u64, to: u64, f: impl Fn(&TraceEvent) -> bool) -> bool {
        self.server_in(from, to).any(f)
    }
}

/// Whether a server event's session is `sid` (a client's id, qualified by
/// a balancer, or as minted).
fn same_session(e: &TraceEvent, sid: &str) -> bool {
    e.session.as_deref().is_some_and(|s| {
        s == sid
            || (!s.contains('@')
                && sid.strip_suffix(&*e.host).and_then(|r| r.strip_suffix('@')) == Some(s))
    })
}

/// Whether an `MCP-Protocol-Version` header value makes a request a legacy
/// one: none, or a handshake revision.
fn legacy_header(v: Option<&str>) -> bool {
    v.is_none_or(|v| HANDSHAKE_PROTOCOL_VERSIONS.contains(&v))
}

/// A server answered a stateless-era request as a legacy-only server does,
/// in the window.
fn legacy_answer_to_modern(c: &Causes<'_>, from: u64, to: u64) -> bool {
    c.any_in(from, to, |e| {
        (e.event == "missing_session" && !legacy_header(e.str("header_version")))
            || (e.event == "answered"
                && e.u64("request").is_none()
                && e.detail.get("error").is_some())
            || e.event == "stateless_refused"
    })
}

/// Why a failure of kind `error` (with transport `cause`, `status`,
/// `code`) of `worker`, on `session`, in `from..=to` is explained, if it
/// is.
#[allow(clippy::too_many_arguments)]
fn explained(
    c: &Causes<'_>,
    worker: &str,
    session: Option<&str>,
    error: &str,
    cause: Option<&str>,
    status: Option<u64>,
    code: Option<i64>,
    from: u64,
    to: u64,
) -> bool {
    let from_worker = |e: &TraceEvent| e.str("from").is_none_or(|f| f == worker);
    let gone = || {
        c.any_in(from, to, |e| {
            e.event == "unknown_session"
                && from_worker(e)
                && session.is_none_or(|s| same_session(e, s))
        })
    };
    let spoiled = |faults: &[&str]| {
        c.any_in(from, to, |e| {
            e.event == "answered" && e.str("fault").is_some_and(|f| faults.contains(&f))
        })
    };
    let network = || c.network(worker, to);
    let refused = || {
        c.any_in(from, to, |e| {
            e.event == "stateless_refused" || e.event == "routing_headers_stripped"
        })
    };
    let era = || {
        c.fault(
            &["era", "version_trap", "header_strip", "discover_change"],
            to,
        ) || legacy_answer_to_modern(c, from, to)
    };
    match error {
        "manager_closed"
        | "vu_busy"
        | "pool_timeout"
        | "pool_exhausted"
        | "session_closed"
        | "invalid_config"
        | "no_runtime"
        | "input_rounds_exceeded" => return true,
        "session_expired" => return gone(),
        "version_negotiation" => return c.fault(&["version"], to),
        _ => {}
    }
    match cause {
        // An error kind of the library without a transport error (none
        // today but the ones above): nothing to match it against.
        None => true,
        Some("session_not_found") => gone(),
        Some("connect" | "closed" | "stream_lost" | "malformed_sse" | "body_too_large") => {
            network() || spoiled(&["reset", "truncated"])
        }
        Some("timeout") => {
            network()
                || spoiled(&["reset", "truncated"])
                || c.any_in(from, to, |e| {
                    matches!(
                        &*e.event,
                        "delayed" | "client_request_sent" | "client_request_timed_out"
                    ) || e.str("tool") == Some("slow")
                })
        }
        Some("server_error") => {
            network()
                || c.any_in(from, to, |e| {
                    (e.event == "injected" && e.u64("status") == status)
                        || (e.event == "session_limit" && status == Some(503) && from_worker(e))
                })
        }
        Some("malformed_json" | "protocol") => spoiled(&["malformed"]),
        Some("json_rpc") => c.any_in(from, to, |e| {
            e.event == "answered"
                && e.detail.get("error").and_then(serde_json::Value::as_i64) == code
        }),
        Some("http") if matches!(status, Some(404 | 400)) => gone() || era() || network(),
        Some("bad_request") => gone() || refused() || era() || c.fault(&["session_id"], to),
        Some("header_mismatch" | "unsupported_version" | "missing_capability") => {
            refused() || era()
        }
        Some(
            "era_changed" | "not_modern" | "method_not_found" | "not_in_modern_era"
            | "invalid_tool",
        ) => era() || refused(),
        Some("invalid_session_id") => c.fault(&["session_id"], to),
        Some(_) => network() || era(),
    }
}

/// Checks the cause laws over `trace` (see the module docs).
pub fn check(trace: &Trace, _cfg: &AuditConfig) -> Findings {
    let mut out = Findings::default();
    let mut causes = Causes::default();
    for e in &trace.events {
        match e.source {
            Source::Fault => causes
                .faults
                .push((e.t_ms, &e.event, &e.host, e.str("worker"))),
            Source::Server => causes.server.push((e.t_ms, e)),
            _ => {}
        }
    }
    let has_server = !causes.server.is_empty();
    let has_digests = causes
        .server
        .iter()
        .any(|(_, e)| e.event == "answered" && e.detail.get("digest").is_some());
    // Each (worker, VU)'s latest acquire_start time.
    let mut started: BTreeMap<(&str, u64), u64> = BTreeMap::new();
    // Each (worker, session)'s latest `closed` time.
    let mut closed: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    // Sessions whose VU read that they are gone: (worker, session) → the
    // index where it did.
    let mut seen_gone: BTreeMap<(&str, &str), (usize, u64)> = BTreeMap::new();
    // Negotiated revisions, by session id as the server logged it.
    let mut negotiated: BTreeMap<String, &str> = BTreeMap::new();
    // Workers that were sent an `initialize` answer without a usable id.
    let mut idless: BTreeSet<&str> = BTreeSet::new();
    for (i, e) in trace.events.iter().enumerate() {
        let host = &*e.host;
        match e.source {
            Source::Manager => match &*e.event {
                "acquire_start" => {
                    if let Some(vu) = e.vu {
                        started.insert((host, vu), e.t_ms);
                    }
                }
                "closed" => {
                    if let Some(s) = e.session.as_deref() {
                        closed.insert((host, s), e.t_ms);
                    }
                }
                "close_failed" if has_server => {
                    let Some(sid) = e.session.as_deref() else {
                        continue;
                    };
                    let from = closed.get(&(host, sid)).copied().unwrap_or(0);
                    let ok = causes.network(host, e.t_ms)
                        || causes.any_in(from, e.t_ms, |s| {
                            s.event == "injected"
                                || (s.event == "unknown_session" && same_session(s, sid))
                        });
                    if !ok {
                        out.unexplained_close
                            .insert((host.to_owned(), sid.to_owned()));
                    }
                }
                _ => {}
            },
            Source::Vu if has_server => {
                let Some(vu) = e.vu else { continue };
                let from = started.get(&(host, vu)).copied().unwrap_or(0);
                match &*e.event {
                    "vu_error" => {
                        let error = e.str("error").unwrap_or_default();
                        let cause = e.str("cause");
                        let status = e.u64("status");
                        let code = e.detail.get("code").and_then(serde_json::Value::as_i64);
                        let session = e.session.as_deref();
                        out.check("failure_explained");
                        if !explained(
                            &causes, host, session, error, cause, status, code, from, e.t_ms,
                        ) {
                            let what = match (cause, status, code) {
                                (Some(c), Some(s), _) => format!("{error} ({c}, HTTP {s})"),
                                (Some(c), None, Some(k)) => format!("{error} ({c}, code {k})"),
                                (Some(c), None, None) => format!("{error} ({c})"),
                                (None, ..) => error.to_owned(),
                            };
                            out.fail(
                                "failure_explained",
                                i,
                                format!(
                                    "vu-{vu} of {host} failed with {what}{}; nothing in the trace from {from} to {} ms explains it",
                                    session.map(|s| format!(" on {s}")).unwrap_or_default(),
                                    e.t_ms
                                ),
                            );
                        }
                        // The VU read the answer that its session is gone.
                        let read_gone = error == "session_expired"
                            || matches!(cause, Some("session_not_found"))
                            || (matches!(cause, Some("http" | "bad_request"))
                                && matches!(status, Some(404 | 400)));
                        if let (true, Some(sid)) = (read_gone, session) {
                            let answered = causes.any_in(from, e.t_ms, |s| {
                                s.event == "unknown_session"
                                    && same_session(s, sid)
                                    && s.str("from").is_none_or(|f| f == host)
                            });
                            if answered {
                                seen_gone.entry((host, sid)).or_insert((i, e.t_ms));
                            }
                        }
                    }
                    "vu_answer" if has_digests => {
                        let Some(digest) = e.str("digest") else {
                            continue;
                        };
                        out.check("answer_delivered_intact");
                        let sent = causes.any_in(from, e.t_ms, |s| {
                            s.event == "answered"
                                && s.str("fault").is_none()
                                && s.str("digest") == Some(digest)
                        });
                        if !sent {
                            out.fail(
                                "answer_delivered_intact",
                                i,
                                format!(
                                    "vu-{vu} of {host} got a result (digest {digest}){} that no server answered from {from} to {} ms",
                                    e.session.as_deref().map(|s| format!(" on {s}")).unwrap_or_default(),
                                    e.t_ms
                                ),
                            );
                        }
                    }
                    _ => {}
                }
            }
            Source::Server => {
                let sid = e.session.as_deref();
                let from = e.str("from");
                let header = e.str("header_version");
                match &*e.event {
                    "session_created" => {
                        if let Some(s) = sid {
                            let answered = e.str("answered").unwrap_or_default();
                            negotiated.insert(s.to_owned(), answered);
                            if let Some(f) = from {
                                // A fresh session of this id: any earlier
                                // one of the same id is another session.
                                seen_gone.remove(&(f, s));
                                if e.str("id_header").is_some_and(|h| h != "sent") {
                                    idless.insert(f);
                                }
                            }
                        }
                    }
                    "missing_session" => {
                        let Some(f) = from else { continue };
                        if !legacy_header(header) {
                            continue;
                        }
                        out.check("legacy_headers_present");
                        if !idless.contains(f) {
                            out.fail(
                                "legacy_headers_present",
                                i,
                                format!(
                                    "a legacy {}{} from {f} carried no Mcp-Session-Id",
                                    e.str("http").unwrap_or("request"),
                                    e.str("method").map(|m| format!(" {m}")).unwrap_or_default()
                                ),
                            );
                        }
                    }
                    "request" | "notification" | "deleted" | "unknown_session" | "rejected" => {
                        let (Some(s), Some(f)) = (sid, from) else {
                            continue;
                        };
                        if e.event != "unknown_session" && e.event != "rejected" {
                            let bare = s.split('@').next().unwrap_or(s);
                            let version =
                                negotiated.get(s).or_else(|| negotiated.get(bare)).copied();
                            if let Some(v) = version {
                                out.check("legacy_headers_present");
                                if v >= FIRST_VERSION_WITH_HEADER && header.is_none() {
                                    out.fail(
                                        "legacy_headers_present",
                                        i,
                                        format!(
                                            "a {} on {s} (negotiated {v}) from {f} carried no MCP-Protocol-Version",
                                            e.event
                                        ),
                                    );
                                }
                            }
                        }
                        out.check("no_request_after_expiry_seen");
                        // Strictly later: within the millisecond the VU
                        // read the answer, the trace's order of worker and
                        // server events is not causal (the 404 itself may
                        // be listed after the VU's error).
                        let after = seen_gone
                            .get(&(f, s))
                            .filter(|(_, t)| e.t_ms > *t)
                            .map(|(at, _)| *at);
                        if let Some(at) = after {
                            out.fail(
                                "no_request_after_expiry_seen",
                                i,
                                format!(
                                    "{} on {s} from {f} reached {host}, after the client read that it was gone (event #{at})",
                                    match &*e.event {
                                        "request" | "notification" => e
                                            .str("method")
                                            .map_or_else(|| e.event.to_string(), str::to_owned),
                                        "deleted" => "DELETE".to_owned(),
                                        other => e
                                            .str("method")
                                            .or_else(|| e.str("http"))
                                            .unwrap_or(other)
                                            .to_owned(),
                                    }
                                ),
                            );
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for law in LAWS {
        out.checks.entry(law).or_default();
    }
    out
}

/// The laws of this module, in report order.
pub const LAWS: [&str; 4] = [
    "failure_explained",
    "legacy_headers_present",
    "no_request_after_expiry_seen",
    "answer_delivered_intact",
];
