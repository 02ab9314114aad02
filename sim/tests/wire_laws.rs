//! The wire laws and the stateless era's goals ([`mcp_sim::wire_laws`]) on
//! hand-written traces: for each law, traces that break it (caught, named,
//! at the first violating event) and traces a correct client produces that
//! must pass (requests in flight across a verdict, sessions set up before
//! it, a -32022 refusal between an MRTR round and its retry, ...); each
//! goal reached, and not reached where it must not be.

use serde_json::{json, Value};

use mcp_session::{Era, SessionConfig, SessionMetrics};
use mcp_sim::audit::{audit, AuditConfig, AuditReport, GOALS, LAWS};
use mcp_sim::trace::{Kind, Trace, TraceEvent};

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

/// A manager event of worker `W` at `t` (its clock too).
fn m(t: u64, vu: u64, session: &str, event: &'static str, detail: Value) -> TraceEvent {
    let mut d = match detail {
        Value::Object(o) => o,
        _ => serde_json::Map::new(),
    };
    d.insert("clock_ms".into(), t.into());
    let mut v = json!({"t_ms": t, "host": W, "source": "manager", "event": event, "detail": d});
    if !session.is_empty() {
        v["session"] = json!(session);
    }
    if vu > 0 {
        v["vu"] = json!(vu);
    }
    line(v)
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

/// The wire log of a correct stateless request from `W`: number `n`, id
/// `id`, `method` (naming `name` for the methods that name something).
fn wire(t: u64, n: u64, id: u64, method: &str, name: Option<&str>) -> TraceEvent {
    let mut d = json!({
        "request": n, "from": W, "http": "POST", "id": id, "method": method,
        "meta_version": MODERN, "header_version": MODERN, "header_method": method,
    });
    if let Some(name) = name {
        d["name"] = name.into();
        d["header_name"] = name.into();
    }
    s(t, "", "stateless_wire", d)
}

/// The answer to stateless request `n` (id `id`).
fn answer(t: u64, n: u64, id: u64, extra: Value) -> TraceEvent {
    let mut d =
        json!({"method": "tools/call", "format": "json", "pieces": 1, "request": n, "id": id});
    if let (Value::Object(d), Value::Object(x)) = (&mut d, extra) {
        d.extend(x);
    }
    s(t, "", "answered", d)
}

/// A -32022 refusal (of the request logged just before on `S`).
fn refused_32022(t: u64) -> TraceEvent {
    s(
        t,
        "",
        "stateless_refused",
        json!({"status": 400, "code": -32022, "why": "Unsupported protocol version"}),
    )
}

/// An `era_probed` with `verdict`, a `reprobe` reason or none, a ttl.
fn probed(verdict: &str, reprobe: Option<&str>, ttl: Option<u64>) -> Value {
    let mut d = json!({"version": MODERN, "verdict": verdict, "reprobe": reprobe, "answer": null});
    if let Some(ttl) = ttl {
        d["ttl_ms"] = ttl.into();
    }
    d
}

fn era(e: &str) -> Value {
    json!({ "era": e })
}

fn op(method: &str) -> Value {
    json!({ "method": method })
}

fn op_end(method: &str, error: Option<&str>) -> Value {
    json!({ "method": method, "error": error })
}

/// A legacy `initialize` from `W` that minted `sid`, answered `version`.
fn created_on_server(t: u64, sid: &str, version: &str) -> TraceEvent {
    s(
        t,
        sid,
        "session_created",
        json!({"requested": version, "answered": version, "id_header": "sent", "from": W}),
    )
}

/// A legacy request from `W` on `sid` with version header `header`.
fn legacy_request(t: u64, sid: &str, method: &str, header: Option<&str>) -> TraceEvent {
    let mut d = json!({"method": method, "from": W});
    if let Some(h) = header {
        d["header_version"] = h.into();
    }
    s(t, sid, "request", d)
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
    vec![
        m(0, 1, "", "acquire_start", json!({})),
        wire(1, 1, 0, "server/discover", None),
        answer(1, 1, 0, json!({"method": "server/discover"})),
        m(2, 1, "", "era_probed", probed("modern", None, Some(100))),
        m(2, 1, "ctx-1", "created", era("modern")),
        m(
            2,
            1,
            "ctx-1",
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        m(3, 1, "ctx-1", "operation_start", op("tools/call")),
        wire(4, 2, 1, "tools/call", Some("echo")),
        refused_32022(4),
        wire(5, 3, 2, "tools/call", Some("echo")),
        answer(5, 3, 2, json!({})),
        m(
            6,
            1,
            "ctx-1",
            "version_retried",
            json!({"from": MODERN, "to": MODERN}),
        ),
        m(6, 1, "ctx-1", "operation_end", op_end("tools/call", None)),
        m(7, 1, "ctx-1", "operation_start", op("tools/call")),
        wire(8, 4, 3, "tools/call", Some("mrtr")),
        answer(
            8,
            4,
            3,
            json!({"input_required": true, "request_state": "mrtr:1.x"}),
        ),
        m(9, 1, "ctx-1", "operation_end", op_end("tools/call", None)),
        m(10, 1, "ctx-1", "operation_start", op("tools/call")),
        with(
            wire(11, 5, 4, "tools/call", Some("mrtr")),
            "request_state",
            json!("mrtr:1.x"),
        ),
        answer(11, 5, 4, json!({})),
        m(12, 1, "ctx-1", "operation_end", op_end("tools/call", None)),
        m(13, 1, "ctx-1", "released", json!({})),
        m(50, 2, "", "acquire_start", json!({})),
        m(50, 2, "ctx-2", "created", era("modern")),
        m(
            50,
            2,
            "ctx-2",
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        m(51, 2, "ctx-2", "operation_start", op("tools/list")),
        wire(52, 6, 0, "tools/list", None),
        answer(52, 6, 0, json!({"method": "tools/list"})),
        m(53, 2, "ctx-2", "operation_end", op_end("tools/list", None)),
        m(54, 2, "ctx-2", "released", json!({})),
    ]
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
    let t = vec![
        wire(1, 1, 1, "tools/list", None),
        with(
            wire(2, 2, 2, "tools/list", None),
            "header_method",
            json!("x"),
        ),
    ];
    breaks(LAW, &t, &any(), 1, "(id 2) from worker");
}

#[test]
fn modern_envelope_agrees_passes_agreeing_and_legacy_requests_by() {
    let legacy_on_modern = s(
        3,
        "srv-1",
        "stateless_wire",
        json!({"request": 3, "from": W, "http": "POST", "id": 5, "method": "ping",
               "header_version": LEGACY}),
    );
    let legacy_on_modern = edited(&legacy_on_modern, |v| v["session"] = json!("srv-1"));
    let t = vec![
        wire(1, 1, 1, "tools/call", Some("echo")),
        wire(2, 2, 2, "prompts/get", Some("p")),
        // A legacy session's request routed to the stateless era (a
        // modern-only server): not a stateless request.
        legacy_on_modern,
        // A notification has no id: not a request.
        with(wire(4, 4, 0, "notifications/x", None), "id", Value::Null),
    ];
    let r = assert_clean(&t, &any());
    assert_eq!(r.checks["modern_envelope_agrees"], 2);
}

// ------------------------------------------- no_legacy_wire_after_modern --

/// vu 2 begins an acquire (a legacy plan, the verdict still legacy); vu 1
/// re-probes and the verdict turns modern (event 3); vu 2's initialize
/// arrives after that and its session is used and closed; vu 1's context
/// calls a tool.
fn in_flight_across_the_verdict() -> Vec<TraceEvent> {
    vec![
        m(0, 1, "", "era_probed", probed("legacy", None, None)),
        m(1, 2, "", "acquire_start", json!({})),
        m(2, 1, "", "acquire_start", json!({})),
        m(
            3,
            1,
            "",
            "era_probed",
            probed("modern", Some("a legacy session was lost"), Some(0)),
        ),
        m(3, 1, "ctx-1", "created", era("modern")),
        m(
            3,
            1,
            "ctx-1",
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        created_on_server(4, "srv-7", LEGACY),
        s(
            5,
            "srv-7",
            "notification",
            json!({"method": "notifications/initialized", "from": W, "header_version": LEGACY}),
        ),
        m(5, 2, "srv-7", "created", era("legacy")),
        m(
            5,
            2,
            "srv-7",
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        legacy_request(6, "srv-7", "ping", Some(LEGACY)),
        wire(7, 9, 1, "tools/call", Some("echo")),
        s(
            8,
            "srv-7",
            "rejected",
            json!({"http": "GET", "status": 405, "why": "no standalone SSE stream",
                   "from": W, "header_version": LEGACY}),
        ),
        s(
            9,
            "srv-7",
            "deleted",
            json!({"from": W, "header_version": LEGACY}),
        ),
    ]
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
/// it, fails (event 6); vu 3 begins one after the verdict (event 7): an
/// initialize arriving now was planned after the verdict.
fn planned_after_the_verdict(arrives: TraceEvent) -> Vec<TraceEvent> {
    let mut t = in_flight_across_the_verdict()[..6].to_vec();
    t.push(m(4, 2, "", "acquire_error", json!({"error": "connect"})));
    t.push(m(4, 3, "", "acquire_start", json!({})));
    t.push(arrives);
    t.push(m(6, 3, "", "acquire_error", json!({"error": "connect"})));
    t
}

#[test]
fn no_legacy_wire_after_modern_an_initialize_planned_after_the_verdict() {
    const LAW: &str = "no_legacy_wire_after_modern";
    let t = planned_after_the_verdict(created_on_server(5, "srv-7", LEGACY));
    breaks(
        LAW,
        &t,
        &any(),
        8,
        "an initialize from worker reached server",
    );
    // An initialize refused by a modern-only server is an initialize too.
    let refused = with(
        with(
            wire(5, 3, 0, "initialize", None),
            "meta_version",
            Value::Null,
        ),
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
    let base = || {
        let mut t = in_flight_across_the_verdict()[..6].to_vec();
        t.push(m(4, 2, "", "acquire_error", json!({"error": "connect"})));
        t
    };
    // A session this worker never set up.
    let mut t = base();
    t.push(legacy_request(6, "srv-1", "tools/call", Some(LEGACY)));
    breaks(LAW, &t, &any(), 7, "tools/call naming srv-1");
    // A stateless request a legacy server refused for want of a session
    // is not legacy wire (its wire log says what the client sent).
    let mut t = base();
    t.push(wire(6, 4, 3, "tools/call", Some("echo")));
    t.push(s(
        6,
        "",
        "missing_session",
        json!({"http": "POST", "method": "tools/call", "from": W, "header_version": MODERN}),
    ));
    assert_clean(&t, &any());
    // A ping without a session id (nothing id-less was set up).
    let mut t = base();
    t.push(s(
        6,
        "",
        "missing_session",
        json!({"http": "POST", "method": "ping", "from": W}),
    ));
    breaks(LAW, &t, &any(), 7, "ping without a session id");
    // A ping or a DELETE routed to the stateless era.
    let mut t = base();
    t.push(wire(6, 4, 3, "ping", None));
    breaks(LAW, &t, &any(), 7, "ping without a session id");
    let mut t = base();
    t.push(s(
        6,
        "",
        "stateless_wire",
        json!({"request": 4, "from": W, "http": "DELETE"}),
    ));
    breaks(LAW, &t, &any(), 7, "DELETE without a session id");
    // A session another worker set up, before the verdict.
    let mut t = base();
    let other = with(
        created_on_server(1, "srv-8", LEGACY),
        "from",
        json!("worker-2"),
    );
    t.insert(1, other);
    t.push(legacy_request(5, "srv-8", "ping", Some(LEGACY)));
    breaks(LAW, &t, &any(), 8, "worker did not set srv-8 up");
}

#[test]
fn no_legacy_wire_after_modern_an_idless_session_and_closed_windows_pass() {
    // A session set up before the verdict whose id the server omitted:
    // its requests carry no id, and pass.
    let t = vec![
        m(0, 2, "", "acquire_start", json!({})),
        with(
            created_on_server(1, "srv-3", LEGACY),
            "id_header",
            json!("omitted"),
        ),
        m(2, 2, "local-1", "created", era("legacy")),
        m(
            2,
            2,
            "local-1",
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        m(3, 1, "", "era_probed", probed("modern", None, None)),
        s(
            4,
            "",
            "missing_session",
            json!({"http": "POST", "method": "ping", "from": W}),
        ),
    ];
    assert_clean(&t, &any());
    // era_changed closes the window: the fallback's initialize is fine.
    let t = vec![
        m(0, 1, "", "era_probed", probed("modern", None, None)),
        m(1, 1, "ctx-1", "era_changed", json!({})),
        m(2, 1, "", "acquire_start", json!({})),
        m(
            3,
            1,
            "",
            "era_probed",
            probed(
                "legacy",
                Some("a modern request was answered as legacy"),
                None,
            ),
        ),
        created_on_server(4, "srv-1", LEGACY),
        m(5, 1, "srv-1", "created", era("legacy")),
        m(
            5,
            1,
            "srv-1",
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        legacy_request(6, "srv-1", "ping", Some(LEGACY)),
    ];
    assert_clean(&t, &any());
    // Events the server logged without `from` are not attributed.
    let t = vec![
        m(0, 1, "", "era_probed", probed("modern", None, None)),
        s(
            1,
            "srv-1",
            "session_created",
            json!({"requested": LEGACY, "answered": LEGACY, "id_header": "sent"}),
        ),
        s(2, "srv-1", "request", json!({"method": "ping"})),
    ];
    assert_clean(&t, &any());
}

#[test]
fn no_legacy_wire_after_modern_a_modern_only_manager_never_initializes() {
    let cfg = AuditConfig::for_session(&SessionConfig {
        era: Era::Modern,
        ..SessionConfig::default()
    });
    let t = vec![
        m(0, 1, "", "acquire_start", json!({})),
        created_on_server(1, "srv-1", LEGACY),
        m(2, 1, "", "acquire_error", json!({"error": "initialize"})),
    ];
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
    let retried = || json!({"from": MODERN, "to": MODERN});
    let t = vec![
        m(0, 1, "ctx-1", "operation_start", op("tools/call")),
        m(1, 1, "ctx-1", "version_retried", retried()),
        m(2, 1, "ctx-1", "version_retried", retried()),
        m(3, 1, "ctx-1", "operation_end", op_end("tools/call", None)),
    ];
    breaks("one_retry_per_refusal", &t, &any(), 2, "retried 2 times");
    // One per operation, and one per probe, is fine.
    let t = vec![
        m(0, 1, "", "acquire_start", json!({})),
        m(1, 1, "", "version_retried", retried()),
        m(1, 1, "", "era_probed", probed("modern", None, None)),
        m(1, 1, "ctx-1", "created", era("modern")),
        m(
            1,
            1,
            "ctx-1",
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        m(2, 1, "ctx-1", "operation_start", op("tools/call")),
        m(3, 1, "ctx-1", "version_retried", retried()),
        m(4, 1, "ctx-1", "operation_end", op_end("tools/call", None)),
    ];
    assert_clean(&t, &any());
}

#[test]
fn one_retry_per_refusal_a_retry_no_refusal_asked_for() {
    let t = vec![
        m(0, 1, "ctx-1", "operation_start", op("tools/call")),
        wire(1, 1, 1, "tools/call", Some("echo")),
        // Refused, but not with -32022.
        s(
            1,
            "",
            "stateless_refused",
            json!({"status": 400, "code": -32020, "why": "x"}),
        ),
        m(
            2,
            1,
            "ctx-1",
            "version_retried",
            json!({"from": MODERN, "to": MODERN}),
        ),
        m(3, 1, "ctx-1", "operation_end", op_end("tools/call", None)),
    ];
    breaks(
        "one_retry_per_refusal",
        &t,
        &any(),
        4,
        "only 0 of its requests were refused",
    );
    let mut fine = t.clone();
    fine[2] = refused_32022(1);
    assert_clean(&fine, &any());
}

// ----------------------------------------- legacy_version_after_fallback --

#[test]
fn legacy_version_after_fallback() {
    const LAW: &str = "legacy_version_after_fallback";
    let t = vec![
        m(0, 1, "", "era_probed", probed("legacy", None, None)),
        created_on_server(1, "srv-1", LEGACY),
        legacy_request(2, "srv-1", "tools/call", Some(MODERN)),
    ];
    breaks(
        LAW,
        &t,
        &any(),
        2,
        "carries MCP-Protocol-Version \"2026-07-28\"",
    );
    let mut t2 = t.clone();
    t2[2] = legacy_request(2, "srv-1", "tools/call", None);
    breaks(
        LAW,
        &t2,
        &any(),
        2,
        "its initialize was answered 2025-11-25",
    );
    // A revision older than the header: none, or that one.
    let t3 = vec![
        created_on_server(1, "srv-2", "2025-03-26"),
        legacy_request(2, "srv-2", "ping", None),
        legacy_request(3, "srv-2", "ping", Some("2025-03-26")),
        legacy_request(4, "srv-2", "ping", Some(LEGACY)),
    ];
    breaks(LAW, &t3, &any(), 3, "answered 2025-03-26");
    // Behind a balancer: the id another instance minted, named on this
    // one, is matched by value.
    let t4 = vec![
        on(
            "server-0",
            1,
            "srv-1@server-0",
            "session_created",
            json!({"requested": LEGACY, "answered": LEGACY, "id_header": "sent", "from": W}),
        ),
        on(
            "server-1",
            2,
            "srv-1@server-0",
            "unknown_session",
            json!({"http": "POST", "status": 404, "from": W, "header_version": LEGACY}),
        ),
        on(
            "server-0",
            3,
            "srv-1",
            "deleted",
            json!({"from": W, "header_version": "2025-06-18"}),
        ),
    ];
    breaks(LAW, &t4, &any(), 2, "deleted on srv-1");
    let r = assert_clean(&t4[..2], &any());
    assert_eq!(r.checks[LAW], 1);
}

// ------------------------------------------------------ mrtr_retry_exact --

/// Request 1 (id 1, tool `t`) is answered input_required with state `s`.
fn mrtr_round() -> Vec<TraceEvent> {
    vec![
        wire(1, 1, 1, "tools/call", Some("t")),
        answer(
            1,
            1,
            1,
            json!({"input_required": true, "request_state": "s"}),
        ),
    ]
}

/// A retry: request `n`, id `id`, tool `tool`, carrying state `state`.
fn retry(t: u64, n: u64, id: u64, tool: &str, state: &str) -> TraceEvent {
    with(
        wire(t, n, id, "tools/call", Some(tool)),
        "request_state",
        json!(state),
    )
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
        t.push(bad);
        breaks(LAW, &t, &any(), 2, says);
    }
    // Used twice.
    let mut t = mrtr_round();
    t.push(retry(2, 2, 2, "t", "s"));
    t.push(retry(3, 3, 3, "t", "s"));
    breaks(LAW, &t, &any(), 3, "already carried");
}

#[test]
fn mrtr_retry_exact_a_refused_retry_is_sent_again_and_completes() {
    let mut t = mrtr_round();
    t.push(retry(2, 2, 2, "t", "s"));
    t.push(refused_32022(2));
    t.push(retry(3, 3, 3, "t", "s"));
    t.push(answer(3, 3, 3, json!({})));
    let r = assert_clean(&t, &any());
    assert_eq!(r.goals["mrtr_completed"], 1);
    // Two VUs given the same state, each retrying once.
    let mut t = mrtr_round();
    t.push(wire(2, 2, 1, "tools/call", Some("t")));
    t.push(answer(
        2,
        2,
        1,
        json!({"input_required": true, "request_state": "s"}),
    ));
    t.push(retry(3, 3, 2, "t", "s"));
    t.push(answer(3, 3, 2, json!({"error": -32602})));
    t.push(retry(4, 4, 2, "t", "s"));
    t.push(answer(
        4,
        4,
        2,
        json!({"input_required": true, "request_state": "s2"}),
    ));
    let r = assert_clean(&t, &any());
    assert_eq!(r.goals["mrtr_completed"], 0, "no complete answer");
    // Two connections of one worker given the same state (signed for the
    // tool and round only): request 6 on one, 5 on the other; their
    // retries come as 7, then 6. Each retry takes its own round's state.
    let t = vec![
        wire(1, 1, 6, "tools/call", Some("t")),
        answer(
            1,
            1,
            6,
            json!({"input_required": true, "request_state": "s"}),
        ),
        wire(2, 2, 5, "tools/call", Some("t")),
        answer(
            2,
            2,
            5,
            json!({"input_required": true, "request_state": "s"}),
        ),
        retry(3, 3, 7, "t", "s"),
        retry(4, 4, 6, "t", "s"),
    ];
    assert_clean(&t, &any());
}

// ---------------------------------------------------------- discover_fresh --

#[test]
fn discover_fresh() {
    const LAW: &str = "discover_fresh";
    let base = || {
        vec![
            m(0, 1, "", "era_probed", probed("modern", None, Some(100))),
            m(0, 1, "ctx-1", "created", era("modern")),
        ]
    };
    let mut t = base();
    t.push(m(99, 2, "ctx-2", "created", era("modern")));
    assert_clean(&t, &any());
    let mut t = base();
    t.push(m(100, 2, "ctx-2", "created", era("modern")));
    breaks(LAW, &t, &any(), 2, "fresh for 100ms (until 100ms)");
    // After an era change the cache is gone.
    let mut t = base();
    t.push(m(10, 1, "ctx-1", "era_changed", json!({})));
    t.push(m(11, 2, "ctx-2", "created", era("modern")));
    breaks(LAW, &t, &any(), 3, "no modern verdict held");
    // The VU's own probe just before: fresh, whatever the ttl.
    let t = vec![
        m(0, 1, "", "era_probed", probed("modern", None, None)),
        m(0, 1, "ctx-1", "created", era("modern")),
        m(
            5,
            2,
            "",
            "version_retried",
            json!({"from": MODERN, "to": MODERN}),
        ),
        m(5, 2, "", "era_probed", probed("modern", None, None)),
        m(5, 2, "ctx-2", "created", era("modern")),
    ];
    assert_clean(&t, &any());
    // A probe not just before the creation (another event of the VU's
    // between) does not count.
    let t = vec![
        m(0, 1, "", "era_probed", probed("modern", None, None)),
        m(
            0,
            1,
            "",
            "version_retried",
            json!({"from": MODERN, "to": MODERN}),
        ),
        m(1, 1, "ctx-1", "created", era("modern")),
    ];
    breaks(LAW, &t, &any(), 2, "without a probe");
}

// ------------------------------------------------------ era_counters_match --

#[test]
fn era_counters_match() {
    const LAW: &str = "era_counters_match";
    let t = vec![
        m(0, 1, "", "era_probed", probed("legacy", None, None)),
        m(1, 1, "srv-1", "created", era("legacy")),
        m(2, 1, "srv-1", "era_changed", json!({})),
        m(
            3,
            1,
            "",
            "era_probed",
            probed(
                "modern",
                Some("a legacy request was answered with a modern error"),
                None,
            ),
        ),
        m(3, 1, "ctx-2", "created", era("modern")),
    ];
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
    let t = vec![
        m(0, 1, "", "era_probed", probed("modern", None, Some(10))),
        m(0, 1, "ctx-1", "created", era("modern")),
        // Concurrent with the first: the result is still fresh.
        m(5, 2, "", "era_probed", probed("modern", None, Some(10))),
        m(5, 2, "ctx-2", "created", era("modern")),
        m(20, 1, "", "era_probed", probed("modern", None, Some(10))),
        m(20, 1, "ctx-3", "created", era("modern")),
        // A re-probe with a reason is not a refresh.
        m(40, 1, "ctx-3", "era_changed", json!({})),
        m(
            41,
            1,
            "",
            "era_probed",
            probed(
                "modern",
                Some("a modern request was answered as legacy"),
                Some(10),
            ),
        ),
        m(41, 1, "ctx-4", "created", era("modern")),
    ];
    let r = assert_clean(&t, &any());
    assert_eq!(r.goals["discover_refreshed"], 1);
}

/// What an instance's `session_created` carries (no client host named).
fn minted() -> Value {
    json!({"requested": LEGACY, "answered": LEGACY, "id_header": "sent"})
}

#[test]
fn legacy_session_broken_by_balancer() {
    const S1: &str = "srv-1@server-0";
    const S2: &str = "srv-2@server-2";
    let t = |instance: &str| {
        vec![
            m(0, 1, "", "acquire_start", json!({})),
            on("server-0", 0, S1, "session_created", minted()),
            m(0, 1, S1, "created", era("legacy")),
            m(
                0,
                1,
                S1,
                "acquire_ok",
                json!({"created": true, "reconnect": false, "waited_ms": 0}),
            ),
            m(1, 1, S1, "released", json!({})),
            m(2, 2, "", "acquire_start", json!({})),
            m(
                2,
                2,
                S1,
                "acquire_ok",
                json!({"created": false, "reconnect": false, "waited_ms": 0}),
            ),
            on(
                instance,
                3,
                S1,
                "unknown_session",
                json!({"http": "POST", "status": 404}),
            ),
            m(4, 2, S1, "invalidated", json!({})),
            m(5, 2, "", "acquire_start", json!({})),
            on("server-2", 5, S2, "session_created", minted()),
            m(5, 2, S2, "created", era("legacy")),
            m(
                5,
                2,
                S2,
                "acquire_ok",
                json!({"created": true, "reconnect": true, "waited_ms": 0}),
            ),
        ]
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
        vec![
            m(0, 1, "ctx-1", "operation_start", op("tools/call")),
            wire(1, 1, 1, "tools/call", Some("echo")),
            answer(1, 1, 1, json!({"format": "sse", "fault": fault})),
            m(2, 1, "ctx-1", "operation_end", op_end("tools/call", error)),
        ]
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
