//! Which era of MCP a manager speaks to its server, decided without I/O.
//!
//! The 2026-07-28 revision has no handshake: a client learns whether a
//! server is modern by sending a modern request (`server/discover`) and
//! reading the answer. This module is that decision, as pure functions and
//! one small state machine ([`EraState`]) that the manager consults under
//! its lock before making a session and tells what each probe answered:
//!
//! - [`judge_probe`]: the spec's HTTP backward-compatibility table. A 2xx
//!   `DiscoverResult` naming a revision we offer is a modern server. A
//!   recognised modern error (-32020, -32021, -32022) is a modern server
//!   too — fix the request or renegotiate, **never** fall back on those.
//!   A failure of the network or of the server (connect, timeout, 5xx, a
//!   broken body) is no verdict at all, and neither is a refusal that says
//!   nothing about the era: 401 and 403 (not authorized), 408 (request
//!   timeout), 429 (too many requests) — the acquire fails with it and the
//!   next one probes again, so a dual server shedding load does not make
//!   the client legacy for good. Anything else a server *answers* (400
//!   `-32000 "Server not initialized"`, an empty 400, a 404 or 405, a
//!   JSON-RPC error in a 200) is a legacy server: `initialize`.
//! - [`newest_mutual`]: the revision to retry with after -32022.
//! - [`EraState`]: the per-manager verdict, the cached discover result
//!   and its freshness (`ttlMs`), and when to probe again — after a legacy
//!   session is lost (the server may have been upgraded), after a modern
//!   request is answered as a legacy server answers (downgraded), and when
//!   a legacy `initialize` is answered with a modern error.

use std::time::Duration;

use serde::Serialize;

use crate::clock::Instant;
use crate::config::{is_modern_version, Era};
use crate::transport::{CallResult, Discovery, TransportError};

/// The era a session (in the stateless era: a client context) speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEra {
    /// 2025-11-25 and before: `initialize`, `Mcp-Session-Id`, DELETE.
    Legacy,
    /// 2026-07-28: every request carries its envelope; no session.
    Modern,
}

impl SessionEra {
    /// `legacy` or `modern`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEra::Legacy => "legacy",
            SessionEra::Modern => "modern",
        }
    }
}

impl std::fmt::Display for SessionEra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the answer to a modern probe says about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judged {
    /// A modern server: its discover result.
    Modern(Discovery),
    /// Not a modern server: fall back to `initialize`. The text says what
    /// it answered.
    Legacy(String),
    /// No verdict: the request failed, or the server is modern and refused
    /// it for a reason falling back would not fix.
    Fail(TransportError),
}

/// The newest revision in both `offered` and `supported` (revision dates
/// sort as strings).
pub fn newest_mutual(offered: &[String], supported: &[String]) -> Option<String> {
    offered
        .iter()
        .filter(|v| supported.contains(v))
        .max()
        .cloned()
}

/// Whether `e` is one of the errors only a 2026-07-28 server sends: a
/// modern server answered, so falling back to `initialize` is wrong.
pub fn is_modern_error(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::HeaderMismatch { .. }
            | TransportError::MissingCapability { .. }
            | TransportError::UnsupportedVersion { .. }
    )
}

/// Judges the answer to a modern probe (`server/discover`) sent at a
/// revision from `offered` (the module docs give the table).
pub fn judge_probe(answer: Result<&CallResult, &TransportError>, offered: &[String]) -> Judged {
    let e = match answer {
        Ok(result) => return judge_result(result, offered),
        Err(e) => e,
    };
    use TransportError as T;
    match e {
        _ if is_modern_error(e) => Judged::Fail(e.clone()),
        T::BadRequest { code, message } => Judged::Legacy(match code {
            Some(c) => format!("HTTP 400 with JSON-RPC error {c} {message:?}"),
            None => "HTTP 400 without a JSON-RPC error".into(),
        }),
        T::MethodNotFound { status, .. } => Judged::Legacy(format!(
            "HTTP {status} method not found for server/discover"
        )),
        // Request timeout, too many requests: transient refusals any
        // server may answer, of either era. (401 and 403 are
        // `Unauthorized`, 5xx `ServerError`: no verdict either, below.)
        T::Http { status: 408 | 429 } => Judged::Fail(e.clone()),
        T::Http { status } if (400..500).contains(status) => {
            Judged::Legacy(format!("HTTP {status} without a modern error"))
        }
        T::JsonRpc { code, message } => {
            Judged::Legacy(format!("JSON-RPC error {code} {message:?}"))
        }
        // A 404 that the transport read as a lost session cannot answer a
        // request without one; should a connector say so, it is legacy.
        T::SessionNotFound => Judged::Legacy("HTTP 404".into()),
        _ => Judged::Fail(e.clone()),
    }
}

fn judge_result(result: &CallResult, offered: &[String]) -> Judged {
    let Some(d) = result.discovery() else {
        return Judged::Legacy("a result that is not a DiscoverResult".into());
    };
    if newest_mutual(offered, &d.supported_versions).is_some() {
        return Judged::Modern(d);
    }
    if d.supported_versions.iter().any(|v| is_modern_version(v)) {
        // A modern server with no revision in common: a real
        // incompatibility, not a reason to fall back.
        return Judged::Fail(TransportError::UnsupportedVersion {
            requested: offered.iter().max().cloned().unwrap_or_default(),
            supported: d.supported_versions,
            offered: offered.to_vec(),
        });
    }
    Judged::Legacy(format!(
        "a DiscoverResult listing only legacy revisions {:?}",
        d.supported_versions
    ))
}

/// Whether a modern request's failure means the server no longer speaks
/// the stateless era: it answered as a legacy server answers a request
/// without a session (a 400 or 404 that is none of the stateless era's own
/// errors).
pub fn answered_as_legacy(e: &TransportError) -> bool {
    use TransportError as T;
    match e {
        // The stateless era's own 400 for a well-formed request: invalid
        // params (also "resource not found"). Its -32700 and -32600 answer
        // bodies that are not one JSON-RPC request, which this client never
        // sends; a legacy server answers -32600 "Missing session ID" (the
        // Python SDK 1.x) to a request without a session.
        T::BadRequest { code, .. } => *code != Some(-32602),
        T::Http { status } => *status == 404,
        T::SessionNotFound => true,
        _ => false,
    }
}

/// Whether a legacy `initialize`'s failure says the server is modern (a
/// modern error, or a 404 method-not-found for `initialize`).
pub fn initialize_says_modern(e: &TransportError) -> bool {
    is_modern_error(e) || matches!(e, TransportError::MethodNotFound { status: 404, .. })
}

/// What the manager knows of its server's era.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Unknown,
    Modern,
    Legacy,
}

/// What to do to make the next session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// `initialize`, as before 2026-07-28.
    Legacy,
    /// A modern context at `version`, no request needed: the cached
    /// discover result is fresh.
    Modern {
        /// The revision to send.
        version: String,
    },
    /// Send `server/discover` at `version` and judge the answer.
    Probe {
        /// The revision to send.
        version: String,
        /// Why the era is probed again, when it had a verdict.
        reprobe: Option<&'static str>,
    },
}

/// What a probe's answer decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Make a modern context.
    Modern,
    /// Fall back: `initialize` on the same connection.
    FallBack(String),
    /// Fail the session's creation with this error.
    Fail(TransportError),
}

/// A discover result and until when it may be used.
#[derive(Clone, Debug)]
struct Cached {
    discovery: Discovery,
    fresh_until: Instant,
}

/// The per-manager era verdict and discover cache. Pure: every method
/// takes the time it needs.
#[derive(Clone, Debug)]
pub struct EraState {
    setting: Era,
    offered: Vec<String>,
    verdict: Verdict,
    /// The modern revision to send (the newest offered, until a -32022
    /// moves it).
    version: String,
    cached: Option<Cached>,
    /// Why the verdict is doubted, making the next creation probe again.
    doubt: Option<&'static str>,
}

impl EraState {
    /// The state of a new manager with era `setting`, offering `offered`.
    pub fn new(setting: Era, offered: &[String]) -> Self {
        EraState {
            setting,
            offered: offered.to_vec(),
            verdict: match setting {
                Era::Legacy => Verdict::Legacy,
                _ => Verdict::Unknown,
            },
            version: offered.iter().max().cloned().unwrap_or_default(),
            cached: None,
            doubt: None,
        }
    }

    /// The modern revisions offered.
    pub fn offered(&self) -> &[String] {
        &self.offered
    }

    /// The era decided so far (`None` before the first verdict).
    pub fn current(&self) -> Option<SessionEra> {
        match self.verdict {
            Verdict::Unknown => None,
            Verdict::Modern => Some(SessionEra::Modern),
            Verdict::Legacy => Some(SessionEra::Legacy),
        }
    }

    /// The modern revision sent now.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The cached discover result, if still fresh at `now`.
    pub fn discovery(&self, now: Instant) -> Option<&Discovery> {
        self.cached
            .as_ref()
            .filter(|c| now < c.fresh_until)
            .map(|c| &c.discovery)
    }

    /// How to make the next session at `now`.
    pub fn plan(&self, now: Instant) -> Plan {
        let probe = |reprobe| Plan::Probe {
            version: self.version.clone(),
            reprobe,
        };
        match (self.setting, self.verdict) {
            (Era::Legacy, _) => Plan::Legacy,
            (Era::Auto, Verdict::Legacy) => match self.doubt {
                None => Plan::Legacy,
                why => probe(why),
            },
            (_, Verdict::Modern) if self.doubt.is_none() && self.discovery(now).is_some() => {
                Plan::Modern {
                    version: self.version.clone(),
                }
            }
            (_, Verdict::Modern) => probe(self.doubt),
            (_, _) => probe(self.doubt),
        }
    }

    /// Records what the probe sent at `sent` answered (judged), at `now`.
    pub fn probed(&mut self, judged: Judged, sent: &str, now: Instant) -> Decision {
        match judged {
            Judged::Modern(d) => {
                self.verdict = Verdict::Modern;
                self.doubt = None;
                // The revision sent, if the server lists it; else the
                // newest mutual one (there is one, or it was not modern).
                self.version = if d.supported_versions.iter().any(|v| v == sent) {
                    sent.to_owned()
                } else {
                    newest_mutual(&self.offered, &d.supported_versions)
                        .unwrap_or_else(|| sent.to_owned())
                };
                self.store(d, now);
                Decision::Modern
            }
            Judged::Legacy(why) if self.setting == Era::Auto => {
                self.verdict = Verdict::Legacy;
                self.doubt = None;
                self.cached = None;
                Decision::FallBack(why)
            }
            Judged::Legacy(why) => Decision::Fail(TransportError::NotModern {
                version: sent.to_owned(),
                answer: why,
            }),
            Judged::Fail(e) => Decision::Fail(e),
        }
    }

    /// A discover result answered at `now` (a probe's, or a VU's
    /// `server/discover` operation): cached for its `ttlMs`.
    pub fn store(&mut self, d: Discovery, now: Instant) {
        let fresh_until = now + Duration::from_millis(d.ttl_ms.min(crate::config::MAX_DURATION_MS));
        self.cached = Some(Cached {
            discovery: d,
            fresh_until,
        });
    }

    /// A request was retried at `to` after -32022: new contexts use it.
    pub fn renegotiated(&mut self, to: &str) {
        if self.offered.iter().any(|v| v == to) {
            self.version = to.to_owned();
        }
    }

    /// A legacy session was lost (404): in `auto`, the server may have
    /// been upgraded, so the next creation probes again. Returns whether
    /// that doubt is new.
    pub fn legacy_session_lost(&mut self) -> bool {
        self.doubt_if(Verdict::Legacy, "a legacy session was lost")
    }

    /// A legacy session's request was answered with an error only a
    /// stateless-era server sends (-32020..-32022): the server was
    /// upgraded to a modern-only one; the next creation probes again.
    pub fn legacy_answered_as_modern(&mut self) -> bool {
        self.doubt_if(
            Verdict::Legacy,
            "a legacy request was answered with a modern error",
        )
    }

    /// A modern request was answered as a legacy server answers: the
    /// server changed era; the next creation probes again.
    pub fn modern_answered_as_legacy(&mut self) -> bool {
        self.cached = None;
        self.doubt_if(Verdict::Modern, "a modern request was answered as legacy")
    }

    /// A legacy `initialize` was answered with a modern error: in `auto`,
    /// probe again at once. Returns whether to.
    pub fn initialize_refused_as_modern(&mut self) -> bool {
        if self.setting != Era::Auto {
            return false;
        }
        self.verdict = Verdict::Unknown;
        self.doubt = None;
        true
    }

    fn doubt_if(&mut self, verdict: Verdict, why: &'static str) -> bool {
        if self.setting != Era::Auto || self.verdict != verdict || self.doubt.is_some() {
            return false;
        }
        self.doubt = Some(why);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offered() -> Vec<String> {
        vec!["2026-07-28".into()]
    }

    fn ok(v: serde_json::Value) -> Judged {
        judge_probe(Ok(&CallResult::from_value(&v)), &offered())
    }

    fn err(e: TransportError) -> Judged {
        judge_probe(Err(&e), &offered())
    }

    fn is_legacy(j: &Judged) -> bool {
        matches!(j, Judged::Legacy(_))
    }

    fn is_fail(j: &Judged) -> bool {
        matches!(j, Judged::Fail(_))
    }

    /// Every row of the reference's §4.2 and of its probe table (§8.1) for
    /// the first modern request, as the client must read it. One piece on
    /// purpose: the rows read top to bottom as the reference's tables do;
    /// split up, neighbouring rows that differ in one status would sit in
    /// different functions.
    #[test]
    fn the_fallback_table() {
        // 2xx modern result → modern (Python stateful, stateless, JSON).
        let d = ok(json!({"supportedVersions":["2026-07-28"],"capabilities":{},
            "resultType":"complete","ttlMs":0,"cacheScope":"private"}));
        assert!(matches!(d, Judged::Modern(_)), "{d:?}");
        // The conformance mock's shape (serverInfo at the top level).
        let d = ok(json!({"supportedVersions":["2026-07-28"],"capabilities":{},
            "serverInfo":{"name":"m","version":"1"}}));
        assert!(matches!(d, Judged::Modern(_)), "{d:?}");
        // A DiscoverResult listing only legacy revisions → legacy.
        assert!(is_legacy(&ok(json!({"supportedVersions":["2025-11-25"]}))));
        // Modern revisions, none of ours → incompatible, no fallback.
        assert!(matches!(
            ok(json!({"supportedVersions":["2027-01-01"]})),
            Judged::Fail(TransportError::UnsupportedVersion { .. })
        ));
        // A result that is not a DiscoverResult → legacy.
        assert!(is_legacy(&ok(json!({}))));
        // 400 + the three modern errors → modern server: never fall back.
        for e in [
            TransportError::HeaderMismatch {
                status: 400,
                message: "x".into(),
            },
            TransportError::MissingCapability {
                required: json!({"sampling":{}}),
                message: "x".into(),
            },
            TransportError::UnsupportedVersion {
                requested: "2026-07-28".into(),
                supported: vec!["2099-01-01".into()],
                offered: offered(),
            },
        ] {
            assert!(is_fail(&err(e.clone())), "{e:?}");
            assert!(is_modern_error(&e));
        }
        // TS SDK 1.x: 400 -32000 "Server not initialized", id null → legacy.
        assert!(is_legacy(&err(TransportError::BadRequest {
            code: Some(-32000),
            message: "Bad Request: Server not initialized".into()
        })));
        // An empty 400 → legacy.
        assert!(is_legacy(&err(TransportError::BadRequest {
            code: None,
            message: String::new()
        })));
        // Python stateful without headers: 400 -32600 Missing session ID.
        assert!(is_legacy(&err(TransportError::BadRequest {
            code: Some(-32600),
            message: "Bad Request: Missing session ID".into()
        })));
        // A 404 without a modern body, a 405, a 406, a 410, a 415 → legacy.
        for status in [404, 405, 406, 410, 415] {
            assert!(is_legacy(&err(TransportError::Http { status })), "{status}");
        }
        // 404 -32601 for server/discover, and -32601 in a legacy 200 SSE
        // answer → legacy (the method every modern server has is missing).
        for status in [404, 200] {
            assert!(is_legacy(&err(TransportError::MethodNotFound {
                method: "server/discover".into(),
                status
            })));
        }
        assert!(is_legacy(&err(TransportError::JsonRpc {
            code: -32603,
            message: "x".into()
        })));
        // Failures of the network or server are no verdict.
        for e in [
            TransportError::connect("refused"),
            TransportError::Timeout {
                what: "server/discover".into(),
                after_ms: 5,
            },
            TransportError::closed("reset"),
            TransportError::ServerError { status: 500 },
            TransportError::ServerError { status: 502 },
            TransportError::ServerError { status: 503 },
            TransportError::ServerError { status: 504 },
            TransportError::malformed_json("x"),
            TransportError::ContentType { got: None },
        ] {
            assert!(is_fail(&err(e.clone())), "{e:?}");
        }
        // Nor are refusals that say nothing about the era: not authorized
        // (401, 403), request timeout (408), too many requests (429). A
        // dual server shedding load with 429 must not make the client
        // legacy for good.
        for e in [
            TransportError::Unauthorized { status: 401 },
            TransportError::Unauthorized { status: 403 },
            TransportError::Http { status: 408 },
            TransportError::Http { status: 429 },
        ] {
            assert!(is_fail(&err(e.clone())), "{e:?}");
        }
    }

    #[test]
    fn newest_mutual_version() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            newest_mutual(&s(&["2026-07-28"]), &s(&["2026-07-28"])).as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(
            newest_mutual(
                &s(&["2026-07-28", "2027-01-01"]),
                &s(&["2027-01-01", "2026-07-28", "2025-11-25"])
            )
            .as_deref(),
            Some("2027-01-01")
        );
        assert_eq!(
            newest_mutual(&s(&["2026-07-28"]), &s(&["2025-11-25"])),
            None
        );
        assert_eq!(newest_mutual(&s(&["2026-07-28"]), &[]), None);
    }

    #[test]
    fn legacy_answers_to_modern_requests() {
        assert!(answered_as_legacy(&TransportError::BadRequest {
            code: Some(-32000),
            message: "Bad Request: Server not initialized".into()
        }));
        assert!(answered_as_legacy(&TransportError::BadRequest {
            code: None,
            message: String::new()
        }));
        assert!(answered_as_legacy(&TransportError::Http { status: 404 }));
        assert!(!answered_as_legacy(&TransportError::BadRequest {
            code: Some(-32602),
            message: "Unknown resource".into()
        }));
        // The Python SDK 1.x (FastMCP) to a request without a session.
        assert!(answered_as_legacy(&TransportError::BadRequest {
            code: Some(-32600),
            message: "Bad Request: Missing session ID".into()
        }));
        assert!(!answered_as_legacy(&TransportError::MethodNotFound {
            method: "ping".into(),
            status: 404
        }));
        assert!(!answered_as_legacy(&TransportError::ServerError {
            status: 500
        }));
        assert!(initialize_says_modern(&TransportError::MethodNotFound {
            method: "initialize".into(),
            status: 404
        }));
        assert!(!initialize_says_modern(&TransportError::MethodNotFound {
            method: "initialize".into(),
            status: 200
        }));
    }

    fn discovery(ttl_ms: u64) -> Discovery {
        CallResult::from_value(&json!({"supportedVersions":["2026-07-28"],"ttlMs": ttl_ms}))
            .discovery()
            .unwrap()
    }

    #[test]
    fn auto_probes_first_then_follows_its_verdict() {
        let t0 = Instant::ZERO;
        let mut s = EraState::new(Era::Auto, &offered());
        assert_eq!(s.current(), None);
        let Plan::Probe { version, reprobe } = s.plan(t0) else {
            panic!("the first request of a manager is a probe")
        };
        assert_eq!((version.as_str(), reprobe), ("2026-07-28", None));
        // A fresh discover result makes contexts without a request...
        let judged = Judged::Modern(discovery(1_000));
        assert_eq!(s.probed(judged, "2026-07-28", t0), Decision::Modern);
        assert_eq!(
            s.plan(t0 + Duration::from_millis(999)),
            Plan::Modern {
                version: "2026-07-28".into()
            }
        );
        // ...until it is stale: then each new context probes.
        let later = t0 + Duration::from_millis(1_000);
        assert!(s.discovery(later).is_none());
        assert!(matches!(s.plan(later), Plan::Probe { reprobe: None, .. }));
        // A modern request answered as legacy: probe again, with a reason.
        assert!(s.modern_answered_as_legacy());
        assert!(!s.modern_answered_as_legacy(), "one doubt at a time");
        assert!(matches!(
            s.plan(t0),
            Plan::Probe {
                reprobe: Some(_),
                ..
            }
        ));
        // The server now answers as legacy: fall back.
        let d = s.probed(Judged::Legacy("400".into()), "2026-07-28", later);
        assert!(matches!(d, Decision::FallBack(_)));
        assert_eq!(s.current(), Some(SessionEra::Legacy));
        assert_eq!(s.plan(later), Plan::Legacy);
        // A lost legacy session makes the next creation probe (upgrade?).
        assert!(s.legacy_session_lost());
        assert!(matches!(
            s.plan(later),
            Plan::Probe {
                reprobe: Some(_),
                ..
            }
        ));
        let d = s.probed(Judged::Modern(discovery(0)), "2026-07-28", later);
        assert_eq!(d, Decision::Modern);
        assert_eq!(s.current(), Some(SessionEra::Modern));
        // ttlMs 0: stale at once.
        assert!(matches!(s.plan(later), Plan::Probe { .. }));
    }

    #[test]
    fn modern_never_falls_back_and_legacy_never_probes() {
        let t0 = Instant::ZERO;
        let mut m = EraState::new(Era::Modern, &offered());
        let d = m.probed(Judged::Legacy("HTTP 400".into()), "2026-07-28", t0);
        assert!(matches!(
            d,
            Decision::Fail(TransportError::NotModern { ref version, .. }) if version == "2026-07-28"
        ));
        assert!(!m.legacy_session_lost());
        assert!(!m.initialize_refused_as_modern());
        let mut a = EraState::new(Era::Auto, &offered());
        let e = TransportError::HeaderMismatch {
            status: 400,
            message: "x".into(),
        };
        assert_eq!(
            a.probed(Judged::Fail(e.clone()), "2026-07-28", t0),
            Decision::Fail(e)
        );
        assert_eq!(a.current(), None, "a modern error decides nothing");
        let l = EraState::new(Era::Legacy, &offered());
        assert_eq!(l.plan(t0), Plan::Legacy);
        assert_eq!(l.current(), Some(SessionEra::Legacy));
    }

    #[test]
    fn renegotiation_moves_the_version_only_within_the_offer() {
        let offered = vec!["2026-07-28".to_string()];
        let mut s = EraState::new(Era::Auto, &offered);
        s.renegotiated("2099-01-01");
        assert_eq!(s.version(), "2026-07-28");
        s.renegotiated("2026-07-28");
        assert_eq!(s.version(), "2026-07-28");
    }
}
