//! The wire laws and the stateless era's goals ([`mcp_sim::wire_laws`]) on
//! hand-written traces: for each law, traces that break it (caught, named,
//! at the first violating event) and traces a correct client produces that
//! must pass (requests in flight across a verdict, sessions set up before
//! it, a -32022 refusal between an MRTR round and its retry, ...); each
//! goal reached, and not reached where it must not be.
//!
//! The stories are written with a [`TraceBuilder`] (and the [`Steps`] they
//! repeat); an event whose fields a test varies one by one is made alone
//! and edited as the trace line it is ([`with`]), and the server's one-off
//! events are written as trace lines.

use serde_json::{json, Value};

use mcp_session::{Era, SessionConfig, SessionMetrics};
use mcp_sim::audit::{audit, AuditConfig, AuditReport, GOALS, LAWS};
use mcp_sim::server::{ServerEvent, SessionIdFault};
use mcp_sim::trace::{Kind, Trace, TraceBuilder, TraceEvent};

const W: &str = "worker";
const S: &str = "server";
const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

/// The typed event of a trace line (it must be one).
fn line(v: Value) -> TraceEvent {
    let e: TraceEvent = serde_json::from_value(v.clone()).expect("a trace line");
    assert!(!matches!(e.kind, Kind::Other(_)), "no typed event: {v}");
    e
}

/// A server event on `host` at `t`.
fn on(host: &str, t: u64, session: &str, event: &'static str, detail: Value) -> TraceEvent {
    let mut v =
        json!({"t_ms": t, "host": host, "source": "server", "event": event, "detail": detail});
    if !session.is_empty() {
        v["session"] = json!(session);
    }
    line(v)
}

/// A server event on `S`.
fn s(t: u64, session: &str, event: &'static str, detail: Value) -> TraceEvent {
    on(S, t, session, event, detail)
}

/// `e`, its line changed by `f`.
fn edited(e: &TraceEvent, f: impl FnOnce(&mut Value)) -> TraceEvent {
    let mut v = serde_json::to_value(e).unwrap();
    f(&mut v);
    line(v)
}

/// `e` with detail field `key` set (`null` removes it).
fn with(e: TraceEvent, key: &'static str, value: Value) -> TraceEvent {
    edited(&e, |v| {
        if value.is_null() {
            if let Some(d) = v["detail"].as_object_mut() {
                d.remove(key);
            }
        } else {
            v["detail"][key] = value;
        }
    })
}

/// A trace from time `t` on (worker `W`, server `S`, no VU yet).
fn at(t: u64) -> TraceBuilder {
    let mut b = TraceBuilder::new();
    b.at(t);
    b
}

/// The last event `b` wrote: one event, to edit or to put in a story.
fn one(b: &TraceBuilder) -> TraceEvent {
    b.last().expect("an event")
}

/// The wire log of a correct stateless request from `W` at `t`: number
/// `n`, id `id`, `method` (naming `name` for the methods that name
/// something).
fn wire(t: u64, n: u64, id: u64, method: &str, name: Option<&str>) -> TraceEvent {
    one(at(t).stateless_wire(n, id, method, name))
}

/// The answer at `t` to stateless request `n` (id `id`, a `tools/call`).
fn answer(t: u64, n: u64, id: u64) -> TraceEvent {
    one(at(t).answered(n, id, "tools/call"))
}

/// An MRTR retry at `t`: request `n`, id `id`, tool `tool`, carrying
/// state `state`.
fn retry(t: u64, n: u64, id: u64, tool: &str, state: &str) -> TraceEvent {
    one(at(t).mrtr_retry(n, id, tool, state))
}

/// The steps these stories write again and again, each at the builder's
/// time and for its VU; the server's events are logged for client host
/// `W`.
trait Steps {
    /// A probe (no reprobe reason) found the stateless era, its result
    /// fresh for `ttl_ms` if it said so.
    fn probed_modern(&mut self, ttl_ms: Option<u64>) -> &mut Self;
    /// Stateless-era context `ctx` was created.
    fn context(&mut self, ctx: &str) -> &mut Self;
    /// An acquire got context `ctx`, created for it.
    fn new_context(&mut self, ctx: &str) -> &mut Self;
    /// An acquire got legacy session `sid`, created for it.
    fn new_session(&mut self, sid: &str) -> &mut Self;
    /// A legacy `initialize` from `W` minted `sid`, answered `version`.
    fn minted(&mut self, sid: &str, version: &str) -> &mut Self;
    /// A legacy request from `W` on `sid` with version header `header`.
    fn legacy_request(&mut self, sid: &str, method: &str, header: Option<&str>) -> &mut Self;
    /// A POST of `method` from `W` with no session id (version header
    /// `header`), refused by a legacy server.
    fn missing_session(&mut self, method: &str, header: Option<&str>) -> &mut Self;
}

impl Steps for TraceBuilder {
    fn probed_modern(&mut self, ttl_ms: Option<u64>) -> &mut Self {
        self.era_probed("modern", None, ttl_ms)
    }

    fn context(&mut self, ctx: &str) -> &mut Self {
        self.created_in(ctx, "modern")
    }

    fn new_context(&mut self, ctx: &str) -> &mut Self {
        self.context(ctx).acquire_created(ctx)
    }

    fn new_session(&mut self, sid: &str) -> &mut Self {
        self.created(sid).acquire_created(sid)
    }

    fn minted(&mut self, sid: &str, version: &str) -> &mut Self {
        self.server_event(ServerEvent::SessionCreated {
            session: sid.to_owned(),
            requested: version.to_owned(),
            answered: version.to_owned(),
            id_header: SessionIdFault::Sent,
            from: Some(W.to_owned()),
            header_version: None,
        })
    }

    fn legacy_request(&mut self, sid: &str, method: &str, header: Option<&str>) -> &mut Self {
        self.server_event(ServerEvent::Request {
            session: sid.to_owned(),
            method: method.to_owned(),
            tool: None,
            from: Some(W.to_owned()),
            header_version: header.map(str::to_owned),
            id: None,
        })
    }

    fn missing_session(&mut self, method: &str, header: Option<&str>) -> &mut Self {
        self.server_event(ServerEvent::MissingSession {
            http: "POST".to_owned(),
            method: Some(method.to_owned()),
            from: Some(W.to_owned()),
            header_version: header.map(str::to_owned),
        })
    }
}

fn run(events: &[TraceEvent], cfg: &AuditConfig) -> AuditReport {
    audit(&Trace::new(events.to_vec()), cfg)
}

/// Asserts `events` break `law` first at `index` with a message naming
/// `says`, and break no other law (but the cause laws, which see some of
/// the same requests from the server's side: a legacy request without its
/// headers is `legacy_headers_present`'s too; `tests/cause_laws.rs` holds
/// them).
fn breaks(law: &str, events: &[TraceEvent], cfg: &AuditConfig, index: usize, says: &str) {
    let r = run(events, cfg);
    let v = r
        .violation(law)
        .unwrap_or_else(|| panic!("{law} not broken: {:#?}", r.violations));
    assert_eq!(v.event_index, index, "{law}: {v:#?}");
    assert!(v.message.contains(says), "{law}: {:?}", v.message);
    let others: Vec<&str> = r
        .violations
        .iter()
        .map(|v| v.law.as_str())
        .filter(|l| *l != law && !mcp_sim::cause_laws::LAWS.contains(l))
        .collect();
    assert!(others.is_empty(), "{law}: also broken: {:#?}", r.violations);
}

fn assert_clean(events: &[TraceEvent], cfg: &AuditConfig) -> AuditReport {
    let r = run(events, cfg);
    assert!(r.is_clean(), "{:#?}", r.violations);
    r
}

fn any() -> AuditConfig {
    AuditConfig::default()
}

// ------------------------------------------------ a clean stateless run --

/// vu 1 probes (modern, fresh for 100 ms) and makes a context; it calls
/// `echo` (refused once with -32022 and retried), then an MRTR tool twice
/// (input required with a state, then the retry completes); vu 2 makes a
/// context on the fresh discover result and lists tools.
fn clean_modern() -> Vec<TraceEvent> {
    const CALL: &str = "tools/call";
    let mut b = TraceBuilder::new();
    b.at(0).vu(1).acquire_start();
    b.at(1).stateless_wire(1, 0, "server/discover", None);
    b.answered(1, 0, "server/discover");
    b.at(2).probed_modern(Some(100)).new_context("ctx-1");
    b.at(3).operation_start("ctx-1", CALL);
    b.at(4).stateless_wire(2, 1, CALL, Some("echo"));
    b.version_refused();
    b.at(5).stateless_wire(3, 2, CALL, Some("echo"));
    b.answered(3, 2, CALL);
    b.at(6).version_retried(Some("ctx-1"));
    b.operation_end("ctx-1", CALL, None);
    b.at(7).operation_start("ctx-1", CALL);
    b.at(8).stateless_wire(4, 3, CALL, Some("mrtr"));
    b.input_required(4, 3, "mrtr:1.x");
    b.at(9).operation_end("ctx-1", CALL, None);
    b.at(10).operation_start("ctx-1", CALL);
    b.at(11).mrtr_retry(5, 4, "mrtr", "mrtr:1.x");
    b.answered(5, 4, CALL);
    b.at(12).operation_end("ctx-1", CALL, None);
    b.at(13).released("ctx-1");
    b.at(50).vu(2).acquire_start().new_context("ctx-2");
    b.at(51).operation_start("ctx-2", "tools/list");
    b.at(52).stateless_wire(6, 0, "tools/list", None);
    b.answered(6, 0, "tools/list");
    b.at(53).operation_end("ctx-2", "tools/list", None);
    b.at(54).released("ctx-2");
    b.build()
}

/// The metrics a manager reports for [`clean_modern`].
fn clean_modern_metrics() -> SessionMetrics {
    let mut m = SessionMetrics {
        total_created: 2,
        live_sessions: 2,
        idle_sessions: 2,
        ..SessionMetrics::default()
    };
    m.eras.discover_probes = 1;
    m.eras.version_retries = 1;
    m.eras.modern.created = 2;
    m.eras.modern.live = 2;
    m
}

#[test]
fn a_clean_stateless_run_passes_and_checks_every_wire_law() {
    let cfg = any().with_metrics([(W.to_owned(), clean_modern_metrics())].into());
    let r = assert_clean(&clean_modern(), &cfg);
    for law in [
        "modern_envelope_agrees",
        "no_legacy_wire_after_modern",
        "one_retry_per_refusal",
        "mrtr_retry_exact",
        "discover_fresh",
        "era_counters_match",
    ] {
        assert!(r.checks[law] > 0, "{law} never checked: {:?}", r.checks);
    }
    assert_eq!(r.goals["mrtr_completed"], 1);
    assert_eq!(r.goals.len(), GOALS.len());
    assert_eq!(r.checks.len(), LAWS.len());
    // The legacy side: a session set up across a modern verdict.
    let legacy = assert_clean(&in_flight_across_the_verdict(), &any());
    assert!(legacy.checks["legacy_version_after_fallback"] > 0);
}

// ------------------------------------------------ modern_envelope_agrees --

#[test]
fn modern_envelope_agrees_each_header_must_match() {
    const LAW: &str = "modern_envelope_agrees";
    let call = || wire(1, 1, 7, "tools/call", Some("echo"));
    let cases = [
        (
            with(call(), "header_version", Value::Null),
            "no MCP-Protocol-Version",
        ),
        (
            with(call(), "header_version", json!("2099-01-01")),
            "MCP-Protocol-Version \"2099-01-01\" but _meta",
        ),
        (
            with(call(), "header_method", json!("tools/list")),
            "Mcp-Method",
        ),
        (with(call(), "header_method", Value::Null), "Mcp-Method"),
        (with(call(), "header_name", json!("ech0")), "Mcp-Name"),
        (with(call(), "header_name", Value::Null), "Mcp-Name"),
        (
            with(
                wire(1, 1, 7, "resources/read", None),
                "name",
                json!("test://a"),
            ),
            "Mcp-Name",
        ),
    ];
    for (e, says) in cases {
        breaks(LAW, &[e], &any(), 0, says);
    }
    let stray = edited(&call(), |v| v["session"] = json!("srv-1"));
    breaks(LAW, &[stray], &any(), 0, "Mcp-Session-Id srv-1");
    // The first bad request of several is the one named.
    let bad = with(
        wire(2, 2, 2, "tools/list", None),
        "header_method",
        json!("x"),
    );
    let t = vec![wire(1, 1, 1, "tools/list", None), bad];
    breaks(LAW, &t, &any(), 1, "(id 2) from worker");
}

#[test]
fn modern_envelope_agrees_passes_agreeing_and_legacy_requests_by() {
    let mut t = TraceBuilder::new();
    t.at(1).stateless_wire(1, 1, "tools/call", Some("echo"));
    t.at(2).stateless_wire(2, 2, "prompts/get", Some("p"));
    // A legacy session's request routed to the stateless era (a
    // modern-only server): not a stateless request.
    t.event(s(
        3,
        "srv-1",
        "stateless_wire",
        json!({"request": 3, "from": W, "http": "POST", "id": 5, "method": "ping",
               "header_version": LEGACY}),
    ));
    // A notification has no id: not a request.
    t.event(with(
        wire(4, 4, 0, "notifications/x", None),
        "id",
        Value::Null,
    ));
    let r = assert_clean(&t.build(), &any());
    assert_eq!(r.checks["modern_envelope_agrees"], 2);
}

// ------------------------------------------- no_legacy_wire_after_modern --

/// The first events of [`in_flight_across_the_verdict`]: vu 2 begins an
/// acquire (a legacy plan, the verdict still legacy); vu 1 re-probes, the
/// verdict turns modern (event 3), and vu 1 gets a context (events 0 to
/// 5).
fn verdict_turns_modern() -> TraceBuilder {
    let mut b = TraceBuilder::new();
    b.at(0).vu(1).era_probed("legacy", None, None);
    b.at(1).vu(2).acquire_start();
    b.at(2).vu(1).acquire_start();
    let why = "a legacy session was lost";
    b.at(3).era_probed("modern", Some(why), Some(0));
    b.new_context("ctx-1");
    b
}

/// vu 2 begins an acquire (a legacy plan, the verdict still legacy); vu 1
/// re-probes and the verdict turns modern (event 3); vu 2's initialize
/// arrives after that and its session is used and closed; vu 1's context
/// calls a tool.
fn in_flight_across_the_verdict() -> Vec<TraceEvent> {
    let mut b = verdict_turns_modern();
    b.at(4).minted("srv-7", LEGACY);
    b.event(s(
        5,
        "srv-7",
        "notification",
        json!({"method": "notifications/initialized", "from": W, "header_version": LEGACY}),
    ));
    b.at(5).vu(2).new_session("srv-7");
    b.at(6).legacy_request("srv-7", "ping", Some(LEGACY));
    b.at(7).stateless_wire(9, 1, "tools/call", Some("echo"));
    b.event(s(
        8,
        "srv-7",
        "rejected",
        json!({"http": "GET", "status": 405, "why": "no standalone SSE stream",
               "from": W, "header_version": LEGACY}),
    ));
    let deleted = json!({"from": W, "header_version": LEGACY});
    b.event(s(9, "srv-7", "deleted", deleted));
    b.build()
}

#[test]
fn no_legacy_wire_after_modern_a_session_set_up_in_flight_keeps_its_wire() {
    let r = assert_clean(&in_flight_across_the_verdict(), &any());
    assert!(
        r.checks["no_legacy_wire_after_modern"] >= 6,
        "{:?}",
        r.checks
    );
}

/// The verdict turns modern (event 3) and vu 2's acquire, begun before
/// it, fails (event 6): what follows is planned after the verdict.
fn modern_then_failed() -> TraceBuilder {
    let mut b = verdict_turns_modern();
    b.at(4).vu(2).acquire_error("connect");
    b
}

/// [`modern_then_failed`], then vu 3 begins an acquire (event 7): an
/// initialize arriving now was planned after the verdict.
fn planned_after_the_verdict(arrives: TraceEvent) -> Vec<TraceEvent> {
    let mut b = modern_then_failed();
    b.vu(3).acquire_start().event(arrives);
    b.at(6).acquire_error("connect");
    b.build()
}

#[test]
fn no_legacy_wire_after_modern_an_initialize_planned_after_the_verdict() {
    const LAW: &str = "no_legacy_wire_after_modern";
    let t = planned_after_the_verdict(one(at(5).minted("srv-7", LEGACY)));
    breaks(
        LAW,
        &t,
        &any(),
        8,
        "an initialize from worker reached server",
    );
    // An initialize refused by a modern-only server is an initialize too.
    let initialize = wire(5, 3, 0, "initialize", None);
    let refused = with(
        with(initialize, "meta_version", Value::Null),
        "header_version",
        Value::Null,
    );
    breaks(
        LAW,
        &planned_after_the_verdict(refused),
        &any(),
        8,
        "an initialize",
    );
}

#[test]
fn no_legacy_wire_after_modern_requests_on_sessions_not_set_up_before() {
    const LAW: &str = "no_legacy_wire_after_modern";
    // The verdict turns modern at event 3; vu 2's acquire then fails.
    let base = modern_then_failed;
    // A session this worker never set up.
    let mut t = base();
    t.at(6).legacy_request("srv-1", "tools/call", Some(LEGACY));
    breaks(LAW, &t.build(), &any(), 7, "tools/call naming srv-1");
    // A stateless request a legacy server refused for want of a session
    // is not legacy wire (its wire log says what the client sent).
    let mut t = base();
    t.at(6).stateless_wire(4, 3, "tools/call", Some("echo"));
    t.missing_session("tools/call", Some(MODERN));
    assert_clean(&t.build(), &any());
    // A ping without a session id (nothing id-less was set up).
    let mut t = base();
    t.at(6).missing_session("ping", None);
    breaks(LAW, &t.build(), &any(), 7, "ping without a session id");
    // A ping or a DELETE routed to the stateless era.
    let mut t = base();
    t.at(6).stateless_wire(4, 3, "ping", None);
    breaks(LAW, &t.build(), &any(), 7, "ping without a session id");
    let mut t = base();
    let delete = json!({"request": 4, "from": W, "http": "DELETE"});
    t.event(s(6, "", "stateless_wire", delete));
    breaks(LAW, &t.build(), &any(), 7, "DELETE without a session id");
    // A session another worker set up, before the verdict.
    let mut t = base().build();
    let other = with(
        one(at(1).minted("srv-8", LEGACY)),
        "from",
        json!("worker-2"),
    );
    t.insert(1, other);
    t.push(one(at(5).legacy_request("srv-8", "ping", Some(LEGACY))));
    breaks(LAW, &t, &any(), 8, "worker did not set srv-8 up");
}

#[test]
fn no_legacy_wire_after_modern_an_idless_session_and_closed_windows_pass() {
    // A session set up before the verdict whose id the server omitted:
    // its requests carry no id, and pass.
    let mut t = TraceBuilder::new();
    t.at(0).vu(2).acquire_start();
    let omitted = one(at(1).minted("srv-3", LEGACY));
    t.event(with(omitted, "id_header", json!("omitted")));
    t.at(2).new_session("local-1");
    t.at(3).vu(1).probed_modern(None);
    t.at(4).missing_session("ping", None);
    assert_clean(&t.build(), &any());
    // era_changed closes the window: the fallback's initialize is fine.
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).probed_modern(None);
    t.at(1).era_changed("ctx-1");
    t.at(2).acquire_start();
    let why = "a modern request was answered as legacy";
    t.at(3).era_probed("legacy", Some(why), None);
    t.at(4).minted("srv-1", LEGACY);
    t.at(5).new_session("srv-1");
    t.at(6).legacy_request("srv-1", "ping", Some(LEGACY));
    assert_clean(&t.build(), &any());
    // Events the server logged without `from` are not attributed.
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).probed_modern(None);
    t.at(1).session_created("srv-1");
    t.event(s(2, "srv-1", "request", json!({"method": "ping"})));
    assert_clean(&t.build(), &any());
}

#[test]
fn no_legacy_wire_after_modern_a_modern_only_manager_never_initializes() {
    let cfg = AuditConfig::for_session(&SessionConfig {
        era: Era::Modern,
        ..SessionConfig::default()
    });
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start();
    t.at(1).minted("srv-1", LEGACY);
    t.at(2).acquire_error("initialize");
    let t = t.build();
    breaks(
        "no_legacy_wire_after_modern",
        &t,
        &cfg,
        1,
        "an initialize from worker",
    );
    assert_clean(&t, &any());
}

// ------------------------------------------------- one_retry_per_refusal --

#[test]
fn one_retry_per_refusal_twice_in_one_operation() {
    const LAW: &str = "one_retry_per_refusal";
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).operation_start("ctx-1", "tools/call");
    t.at(1).version_retried(Some("ctx-1"));
    t.at(2).version_retried(Some("ctx-1"));
    t.at(3).operation_end("ctx-1", "tools/call", None);
    breaks(LAW, &t.build(), &any(), 2, "retried 2 times");
    // One per operation, and one per probe, is fine.
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start();
    t.at(1).version_retried(None).probed_modern(None);
    t.new_context("ctx-1");
    t.at(2).operation_start("ctx-1", "tools/call");
    t.at(3).version_retried(Some("ctx-1"));
    t.at(4).operation_end("ctx-1", "tools/call", None);
    assert_clean(&t.build(), &any());
}

#[test]
fn one_retry_per_refusal_a_retry_no_refusal_asked_for() {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).operation_start("ctx-1", "tools/call");
    t.at(1).stateless_wire(1, 1, "tools/call", Some("echo"));
    // Refused, but not with -32022.
    let refused = json!({"status": 400, "code": -32020, "why": "x"});
    t.event(s(1, "", "stateless_refused", refused));
    t.at(2).version_retried(Some("ctx-1"));
    t.at(3).operation_end("ctx-1", "tools/call", None);
    let t = t.build();
    breaks(
        "one_retry_per_refusal",
        &t,
        &any(),
        4,
        "only 0 of its requests were refused",
    );
    let mut fine = t.clone();
    fine[2] = one(at(1).version_refused());
    assert_clean(&fine, &any());
}

// ----------------------------------------- legacy_version_after_fallback --

#[test]
fn legacy_version_after_fallback() {
    const LAW: &str = "legacy_version_after_fallback";
    let mut fallback = TraceBuilder::new();
    fallback.at(0).vu(1).era_probed("legacy", None, None);
    fallback.at(1).minted("srv-1", LEGACY);
    // Then a call on srv-1 with version header `header`.
    let call = |header: Option<&str>| {
        let mut t = fallback.clone();
        t.at(2).legacy_request("srv-1", "tools/call", header);
        t.build()
    };
    breaks(
        LAW,
        &call(Some(MODERN)),
        &any(),
        2,
        "carries MCP-Protocol-Version \"2026-07-28\"",
    );
    breaks(
        LAW,
        &call(None),
        &any(),
        2,
        "its initialize was answered 2025-11-25",
    );
    // A revision older than the header: none, or that one.
    let mut t = TraceBuilder::new();
    t.at(1).minted("srv-2", "2025-03-26");
    t.at(2).legacy_request("srv-2", "ping", None);
    t.at(3).legacy_request("srv-2", "ping", Some("2025-03-26"));
    t.at(4).legacy_request("srv-2", "ping", Some(LEGACY));
    breaks(LAW, &t.build(), &any(), 3, "answered 2025-03-26");
    // Behind a balancer: the id another instance minted, named on this
    // one, is matched by value.
    let mut t = TraceBuilder::new();
    t.server("server-0").at(1).minted("srv-1@server-0", LEGACY);
    t.event(on(
        "server-1",
        2,
        "srv-1@server-0",
        "unknown_session",
        json!({"http": "POST", "status": 404, "from": W, "header_version": LEGACY}),
    ));
    t.event(on(
        "server-0",
        3,
        "srv-1",
        "deleted",
        json!({"from": W, "header_version": "2025-06-18"}),
    ));
    let t4 = t.build();
    breaks(LAW, &t4, &any(), 2, "deleted on srv-1");
    let r = assert_clean(&t4[..2], &any());
    assert_eq!(r.checks[LAW], 1);
}

// ------------------------------------------------------ mrtr_retry_exact --

/// Request 1 (id 1, tool `t`) is answered input_required with state `s`.
fn mrtr_round() -> TraceBuilder {
    let mut b = TraceBuilder::new();
    b.at(1).stateless_wire(1, 1, "tools/call", Some("t"));
    b.input_required(1, 1, "s");
    b
}

#[test]
fn mrtr_retry_exact_each_way_to_get_it_wrong() {
    const LAW: &str = "mrtr_retry_exact";
    let cases: Vec<(TraceEvent, &str)> = vec![
        (retry(2, 2, 2, "t", "forged"), "never issued"),
        (retry(2, 2, 1, "t", "s"), "reuses the id"),
        (retry(2, 2, 2, "u", "s"), "the state was issued for"),
        (
            with(retry(2, 2, 2, "t", "s"), "from", json!("worker-2")),
            "comes from",
        ),
    ];
    for (bad, says) in cases {
        let mut t = mrtr_round();
        t.event(bad);
        breaks(LAW, &t.build(), &any(), 2, says);
    }
    // Used twice.
    let mut t = mrtr_round();
    t.at(2).mrtr_retry(2, 2, "t", "s");
    t.at(3).mrtr_retry(3, 3, "t", "s");
    breaks(LAW, &t.build(), &any(), 3, "already carried");
}

#[test]
fn mrtr_retry_exact_a_refused_retry_is_sent_again_and_completes() {
    let mut t = mrtr_round();
    t.at(2).mrtr_retry(2, 2, "t", "s").version_refused();
    t.at(3).mrtr_retry(3, 3, "t", "s");
    t.answered(3, 3, "tools/call");
    let r = assert_clean(&t.build(), &any());
    assert_eq!(r.goals["mrtr_completed"], 1);
    // Two VUs given the same state, each retrying once.
    let mut t = mrtr_round();
    t.at(2).stateless_wire(2, 1, "tools/call", Some("t"));
    t.input_required(2, 1, "s");
    t.at(3).mrtr_retry(3, 2, "t", "s");
    t.event(with(answer(3, 3, 2), "error", json!(-32602)));
    t.at(4).mrtr_retry(4, 2, "t", "s");
    t.input_required(4, 2, "s2");
    let r = assert_clean(&t.build(), &any());
    assert_eq!(r.goals["mrtr_completed"], 0, "no complete answer");
    // Two connections of one worker given the same state (signed for the
    // tool and round only): request 6 on one, 5 on the other; their
    // retries come as 7, then 6. Each retry takes its own round's state.
    let mut t = TraceBuilder::new();
    t.at(1).stateless_wire(1, 6, "tools/call", Some("t"));
    t.input_required(1, 6, "s");
    t.at(2).stateless_wire(2, 5, "tools/call", Some("t"));
    t.input_required(2, 5, "s");
    t.at(3).mrtr_retry(3, 7, "t", "s");
    t.at(4).mrtr_retry(4, 6, "t", "s");
    assert_clean(&t.build(), &any());
}

// ---------------------------------------------------------- discover_fresh --

#[test]
fn discover_fresh() {
    const LAW: &str = "discover_fresh";
    let base = || {
        let mut b = TraceBuilder::new();
        b.at(0).vu(1).probed_modern(Some(100));
        b.context("ctx-1");
        b
    };
    let mut t = base();
    t.at(99).vu(2).context("ctx-2");
    assert_clean(&t.build(), &any());
    let mut t = base();
    t.at(100).vu(2).context("ctx-2");
    breaks(LAW, &t.build(), &any(), 2, "fresh for 100ms (until 100ms)");
    // After an era change the cache is gone.
    let mut t = base();
    t.at(10).era_changed("ctx-1");
    t.at(11).vu(2).context("ctx-2");
    breaks(LAW, &t.build(), &any(), 3, "no modern verdict held");
    // The VU's own probe just before: fresh, whatever the ttl.
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).probed_modern(None).context("ctx-1");
    t.at(5).vu(2).version_retried(None);
    t.probed_modern(None).context("ctx-2");
    assert_clean(&t.build(), &any());
    // A probe not just before the creation (another event of the VU's
    // between) does not count.
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).probed_modern(None);
    t.version_retried(None);
    t.at(1).context("ctx-1");
    breaks(LAW, &t.build(), &any(), 2, "without a probe");
}

// ------------------------------------------------------ era_counters_match --

#[test]
fn era_counters_match() {
    const LAW: &str = "era_counters_match";
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).era_probed("legacy", None, None);
    t.at(1).created("srv-1");
    t.at(2).era_changed("srv-1");
    let why = "a legacy request was answered with a modern error";
    t.at(3).era_probed("modern", Some(why), None);
    t.context("ctx-2");
    let t = t.build();
    let mut good = SessionMetrics {
        total_created: 2,
        ..SessionMetrics::default()
    };
    good.eras.discover_probes = 2;
    good.eras.fallbacks_to_legacy = 1;
    good.eras.era_reprobes = 1;
    good.eras.era_changes = 1;
    good.eras.legacy.created = 1;
    good.eras.modern.created = 1;
    let cfg = |m: SessionMetrics| any().with_metrics([(W.to_owned(), m)].into());
    let r = assert_clean(&t, &cfg(good));
    assert_eq!(r.checks[LAW], 7);
    let mut bad = good;
    bad.eras.modern.created = 0;
    breaks(LAW, &t, &cfg(bad), 4, "eras.modern.created = 0 but 1");
    let mut bad = good;
    bad.eras.version_retries = 1;
    breaks(LAW, &t, &cfg(bad), 4, "eras.version_retries = 1 but 0");
}

// ------------------------------------------------------------------ goals --

#[test]
fn discover_refreshed_only_once_stale() {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).probed_modern(Some(10)).context("ctx-1");
    // Concurrent with the first: the result is still fresh.
    t.at(5).vu(2).probed_modern(Some(10)).context("ctx-2");
    t.at(20).vu(1).probed_modern(Some(10)).context("ctx-3");
    // A re-probe with a reason is not a refresh.
    t.at(40).era_changed("ctx-3");
    let why = "a modern request was answered as legacy";
    t.at(41).era_probed("modern", Some(why), Some(10));
    t.context("ctx-4");
    let r = assert_clean(&t.build(), &any());
    assert_eq!(r.goals["discover_refreshed"], 1);
}

#[test]
fn legacy_session_broken_by_balancer() {
    const S1: &str = "srv-1@server-0";
    const S2: &str = "srv-2@server-2";
    // vu 1 gets S1 (minted by server-0) and gives it back; vu 2 takes it,
    // `instance` does not know it, vu 2 invalidates it and reconnects to
    // S2.
    let t = |instance: &str| {
        let mut t = TraceBuilder::new();
        t.at(0).vu(1).acquire_start();
        t.server("server-0").session_created(S1).new_session(S1);
        t.at(1).released(S1);
        t.at(2).vu(2).acquire_start().acquire_ok(S1);
        let unknown = json!({"http": "POST", "status": 404});
        t.event(on(instance, 3, S1, "unknown_session", unknown));
        t.at(4).invalidated(S1);
        t.at(5).acquire_start();
        t.server("server-2").session_created(S2);
        t.created(S2).acquire_recreated(S2);
        t.build()
    };
    let r = assert_clean(&t("server-1"), &any());
    assert_eq!(r.goals["legacy_session_broken_by_balancer"], 1);
    // The minting instance forgot it (a restart): not the balancer's doing.
    let r = assert_clean(&t("server-0"), &any());
    assert_eq!(r.goals["legacy_session_broken_by_balancer"], 0);
}

#[test]
fn lost_modern_stream() {
    let t = |fault: &str, error: Option<&str>| {
        let sse = with(answer(1, 1, 1), "format", json!("sse"));
        let mut t = TraceBuilder::new();
        t.at(0).vu(1).operation_start("ctx-1", "tools/call");
        t.at(1).stateless_wire(1, 1, "tools/call", Some("echo"));
        t.event(with(sse, "fault", json!(fault)));
        t.at(2).operation_end("ctx-1", "tools/call", error);
        t.build()
    };
    let goal = |events: Vec<TraceEvent>| run(&events, &any()).goals["lost_modern_stream"];
    assert_eq!(goal(t("truncated", Some("operation"))), 1);
    assert_eq!(goal(t("reset", Some("operation"))), 1);
    assert_eq!(goal(t("malformed", Some("operation"))), 0, "not a cut");
    assert_eq!(goal(t("truncated", None)), 0, "the operation succeeded");
}

// ------------------------------------------------------ robustness --

/// A server line on `S` at `t`, typed or not.
fn loose(t: u64, session: &str, event: &'static str, detail: Value) -> TraceEvent {
    let mut v = json!({"t_ms": t, "host": S, "source": "server", "event": event, "detail": detail});
    if !session.is_empty() {
        v["session"] = json!(session);
    }
    serde_json::from_value(v).expect("a trace line")
}

/// A manager line of `W` at `t` (its clock too), no VU nor session, typed
/// or not.
fn loose_m(t: u64, event: &'static str, mut detail: Value) -> TraceEvent {
    detail["clock_ms"] = json!(t);
    let v = json!({"t_ms": t, "host": W, "source": "manager", "event": event, "detail": detail});
    serde_json::from_value(v).expect("a trace line")
}

/// Traces with odd shapes: fields missing or of another type (kept as the
/// lines they are, which the laws pass by), events out of any order a run
/// makes. No law may panic on them.
#[test]
fn odd_traces_do_not_panic() {
    let mut odd = vec![
        loose(
            0,
            "",
            "answered",
            json!({"request": "x", "input_required": 1}),
        ),
        loose(
            0,
            "",
            "answered",
            json!({"request": 99, "input_required": true}),
        ),
        loose(0, "", "stateless_refused", json!({"code": "x"})),
        loose(
            0,
            "",
            "stateless_wire",
            json!({"request_state": [1], "id": {}}),
        ),
        loose(0, "x@", "unknown_session", json!({})),
        loose(0, "@", "session_created", json!({"answered": 5, "from": 3})),
        loose_m(0, "era_probed", json!({"verdict": 1, "ttl_ms": "x"})),
        loose_m(0, "created", json!({"era": []})),
        loose_m(0, "version_retried", Value::Null),
        loose_m(0, "operation_end", json!({"error": 1})),
    ];
    odd.extend(clean_modern());
    odd.extend(in_flight_across_the_verdict());
    let cfg = any().with_metrics([(W.to_owned(), SessionMetrics::default())].into());
    for n in 0..odd.len() {
        let _ = run(&odd[n..], &cfg);
        let mut rev = odd[..n].to_vec();
        rev.reverse();
        let _ = run(&rev, &cfg);
    }
}
