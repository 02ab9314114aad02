//! The cause laws ([`mcp_sim::cause_laws`]) on hand-written traces: for
//! each law, a trace that breaks it (caught, named, at the first violating
//! event) and traces a correct client produces under the same conditions
//! (the cause in the trace, the 404 answer lost on the way, a request in
//! the very millisecond of the error, a session id the server never sent).

use serde_json::{json, Value};

use mcp_sim::audit::{audit, AuditConfig, AuditReport};
use mcp_sim::detail::Detail;
use mcp_sim::trace::{Source, Trace, TraceEvent};

const W: &str = "worker";
const S: &str = "server";
const LEGACY: &str = "2025-11-25";

fn detail(v: Value) -> Detail {
    Detail::try_from(v).expect("an object or null")
}

/// A manager event of worker `W` at `t`.
fn m(t: u64, vu: u64, session: &str, event: &'static str, d: Value) -> TraceEvent {
    let mut d = detail(d);
    d.insert("clock_ms", t);
    TraceEvent {
        t_ms: t,
        host: W.into(),
        source: Source::Manager,
        event: event.into(),
        session: (!session.is_empty()).then(|| session.to_owned()),
        vu: (vu > 0).then_some(vu),
        detail: d,
    }
}

/// A VU event of worker `W` at `t`.
fn vu(t: u64, vu: u64, session: &str, event: &'static str, d: Value) -> TraceEvent {
    TraceEvent {
        t_ms: t,
        host: W.into(),
        source: Source::Vu,
        event: event.into(),
        session: (!session.is_empty()).then(|| session.to_owned()),
        vu: Some(vu),
        detail: detail(d),
    }
}

/// A server event on `S` at `t`.
fn s(t: u64, session: &str, event: &'static str, d: Value) -> TraceEvent {
    TraceEvent {
        t_ms: t,
        host: S.into(),
        source: Source::Server,
        event: event.into(),
        session: (!session.is_empty()).then(|| session.to_owned()),
        vu: None,
        detail: detail(d),
    }
}

/// A fault action on `S` at `t`.
fn fault(t: u64, action: &'static str, d: Value) -> TraceEvent {
    TraceEvent {
        t_ms: t,
        host: S.into(),
        source: Source::Fault,
        event: action.into(),
        session: None,
        vu: None,
        detail: detail(d),
    }
}

/// A legacy session `sid` made for vu 1 from 0 to 3, then an operation
/// of that VU starting at 10 (its `acquire_start` and `operation_start`).
fn session_then_op(sid: &str) -> Vec<TraceEvent> {
    vec![
        m(0, 1, "", "acquire_start", json!({})),
        s(
            1,
            sid,
            "session_created",
            json!({"requested": LEGACY, "answered": LEGACY, "id_header": "sent", "from": W}),
        ),
        m(2, 1, sid, "created", json!({"era": "legacy"})),
        s(
            2,
            sid,
            "notification",
            json!({"method": "notifications/initialized", "from": W, "header_version": LEGACY}),
        ),
        m(
            3,
            1,
            sid,
            "acquire_ok",
            json!({"created": true, "reconnect": false, "waited_ms": 0}),
        ),
        m(3, 1, sid, "released", json!({})),
        m(10, 1, "", "acquire_start", json!({})),
        m(
            10,
            1,
            sid,
            "acquire_ok",
            json!({"created": false, "reconnect": false, "waited_ms": 0}),
        ),
        m(
            10,
            1,
            sid,
            "operation_start",
            json!({"method": "tools/call"}),
        ),
    ]
}

/// A request on `sid` from `W`, as the server logs it.
fn request(t: u64, sid: &str) -> TraceEvent {
    s(
        t,
        sid,
        "request",
        json!({"method": "tools/call", "tool": "echo", "from": W, "header_version": LEGACY}),
    )
}

fn run(events: &[TraceEvent]) -> AuditReport {
    audit(&Trace::new(events.to_vec()), &AuditConfig::default())
}

/// Asserts `events` break `law` first at `index`, with a message that
/// contains `says`.
fn breaks(law: &str, events: &[TraceEvent], index: usize, says: &str) {
    let r = run(events);
    let v = r
        .violation(law)
        .unwrap_or_else(|| panic!("{law} not broken: {:#?}", r.violations));
    assert_eq!(v.event_index, index, "{law}: {v:#?}");
    assert!(v.message.contains(says), "{law}: {}", v.message);
}

/// Asserts `events` do not break `law`, and that it was checked.
fn passes(law: &str, events: &[TraceEvent]) {
    let r = run(events);
    assert!(r.violation(law).is_none(), "{law}: {:#?}", r.violations);
    assert!(
        r.checks.get(law).copied().unwrap_or(0) > 0,
        "{law} unchecked"
    );
}

// ------------------------------------------------------ failure_explained --

/// An operation that failed on a malformed body no fault spoiled: the
/// client choked on something the server sent right (an SSE priming event
/// it did not skip, a notification it took for the answer).
#[test]
fn failure_explained_a_malformed_answer_nobody_spoiled() {
    let mut t = session_then_op("srv-1");
    t.push(request(11, "srv-1"));
    t.push(s(
        11,
        "srv-1",
        "answered",
        json!({"method": "tools/call", "format": "sse", "pieces": 1, "digest": "d1"}),
    ));
    t.push(m(
        12,
        1,
        "srv-1",
        "operation_end",
        json!({"method": "tools/call", "error": "operation"}),
    ));
    t.push(vu(
        12,
        1,
        "srv-1",
        "vu_error",
        json!({"error": "operation", "cause": "malformed_json", "step": 1}),
    ));
    breaks("failure_explained", &t, 12, "malformed_json");
    // The same failure, the answer spoiled on purpose: explained.
    t[10] = with(t[10].clone(), "fault", json!("malformed"));
    passes("failure_explained", &t);
}

#[test]
fn failure_explained_a_5xx_needs_an_injected_failure() {
    let mut t = session_then_op("srv-1");
    t.push(vu(
        12,
        1,
        "srv-1",
        "vu_error",
        json!({"error": "operation", "cause": "server_error", "status": 500, "step": 1}),
    ));
    breaks("failure_explained", &t, 9, "HTTP 500");
    // Another status injected explains nothing.
    t.insert(
        9,
        s(11, "", "injected", json!({"http": "POST", "status": 503})),
    );
    breaks("failure_explained", &t, 10, "HTTP 500");
    t[9] = s(11, "", "injected", json!({"http": "POST", "status": 500}));
    passes("failure_explained", &t);
}

#[test]
fn failure_explained_a_lost_session_needs_the_servers_404() {
    let mut t = session_then_op("srv-1");
    t.push(m(
        12,
        1,
        "srv-1",
        "operation_end",
        json!({"method": "tools/call", "error": "session_expired"}),
    ));
    t.push(m(12, 1, "srv-1", "invalidated", json!({})));
    t.push(vu(
        12,
        1,
        "srv-1",
        "vu_error",
        json!({"error": "session_expired", "step": 1}),
    ));
    breaks("failure_explained", &t, 11, "session_expired");
    // A 404 for another session explains nothing; for this one it does.
    let gone = |sid: &str| {
        s(
            11,
            sid,
            "unknown_session",
            json!({"http": "POST", "method": "tools/call", "status": 404, "from": W, "header_version": LEGACY}),
        )
    };
    t.insert(9, gone("srv-9"));
    breaks("failure_explained", &t, 12, "session_expired");
    t[9] = gone("srv-1");
    passes("failure_explained", &t);
}

/// A reset connection is explained by a network fault applied before it
/// (a bounce breaks the connections it finds), or by a reset answer.
#[test]
fn failure_explained_a_closed_connection_needs_a_fault() {
    let mut t = session_then_op("srv-1");
    t.push(vu(
        12,
        1,
        "srv-1",
        "vu_error",
        json!({"error": "operation", "cause": "closed", "step": 1}),
    ));
    breaks("failure_explained", &t, 9, "closed");
    let mut bounced = t.clone();
    bounced.insert(6, fault(5, "bounce", json!({"plan_event": 0})));
    passes("failure_explained", &bounced);
    // A partition of another worker's link explains nothing.
    let mut other = t.clone();
    other.insert(
        6,
        fault(
            5,
            "partition",
            json!({"worker": "worker-9", "plan_event": 0}),
        ),
    );
    breaks("failure_explained", &other, 10, "closed");
    t.insert(
        9,
        s(
            11,
            "srv-1",
            "answered",
            json!({"method": "tools/call", "format": "json", "pieces": 1, "fault": "reset"}),
        ),
    );
    passes("failure_explained", &t);
}

/// Deadlines and the client's own state explain themselves.
#[test]
fn failure_explained_deadlines_and_the_clients_own_state() {
    for error in ["pool_timeout", "manager_closed", "session_closed"] {
        let mut t = session_then_op("srv-1");
        t.push(vu(
            12,
            1,
            "",
            "vu_error",
            json!({"error": error, "step": 1}),
        ));
        passes("failure_explained", &t);
    }
}

fn with(mut e: TraceEvent, key: &'static str, value: Value) -> TraceEvent {
    e.detail.insert(key, value);
    e
}

// -------------------------------------------------- legacy_headers_present --

/// A client that sends the session headers on only some requests: its
/// `notifications/initialized` reaches the server without a session id.
#[test]
fn legacy_headers_present_a_request_without_its_session_id() {
    let mut t = session_then_op("srv-1");
    t[3] = s(
        2,
        "",
        "missing_session",
        json!({"http": "POST", "method": "notifications/initialized", "from": W, "header_version": LEGACY}),
    );
    breaks("legacy_headers_present", &t, 3, "no Mcp-Session-Id");
    // A stateless-era probe sent to a legacy server carries no session id
    // either, and is right to.
    let mut probe = session_then_op("srv-1");
    probe.insert(1, s(0, "", "missing_session", json!({"http": "POST", "method": "server/discover", "from": W, "header_version": "2026-07-28"})));
    passes("legacy_headers_present", &probe);
}

/// A client never sent a session id (the `initialize` answer omitted it,
/// a `session_id` fault) speaks to a server it takes for stateless.
#[test]
fn legacy_headers_present_not_after_an_initialize_without_an_id() {
    let mut t = session_then_op("srv-1");
    t[1] = with(t[1].clone(), "id_header", json!("omitted"));
    t[3] = s(
        2,
        "",
        "missing_session",
        json!({"http": "POST", "method": "notifications/initialized", "from": W, "header_version": LEGACY}),
    );
    passes("legacy_headers_present", &t);
}

#[test]
fn legacy_headers_present_a_request_without_its_version_header() {
    let mut t = session_then_op("srv-1");
    t.push(s(
        11,
        "srv-1",
        "request",
        json!({"method": "tools/call", "from": W}),
    ));
    breaks("legacy_headers_present", &t, 9, "no MCP-Protocol-Version");
    // Before 2025-06-18 there is no such header.
    t[1] = with(t[1].clone(), "answered", json!("2025-03-26"));
    passes("legacy_headers_present", &t);
}

// -------------------------------------------- no_request_after_expiry_seen --

/// The 404 answered for srv-1, read by the VU (an HTTP 404 error: a
/// client that no longer takes 404 for an expired session), then srv-1
/// used again.
fn reused_after_404(cause: Value) -> Vec<TraceEvent> {
    let mut t = session_then_op("srv-1");
    t.push(s(11, "srv-1", "unknown_session", json!({"http": "POST", "method": "tools/call", "status": 404, "from": W, "header_version": LEGACY})));
    t.push(m(
        12,
        1,
        "srv-1",
        "operation_end",
        json!({"method": "tools/call", "error": "operation"}),
    ));
    t.push(m(12, 1, "srv-1", "released", json!({})));
    t.push(vu(12, 1, "srv-1", "vu_error", cause));
    t.push(m(20, 1, "", "acquire_start", json!({})));
    t.push(m(
        20,
        1,
        "srv-1",
        "acquire_ok",
        json!({"created": false, "reconnect": false, "waited_ms": 0}),
    ));
    t.push(m(
        20,
        1,
        "srv-1",
        "operation_start",
        json!({"method": "ping"}),
    ));
    t.push(s(
        21,
        "srv-1",
        "request",
        json!({"method": "ping", "from": W, "header_version": LEGACY}),
    ));
    t
}

#[test]
fn no_request_after_expiry_seen_a_session_used_after_its_404() {
    let t =
        reused_after_404(json!({"error": "operation", "cause": "http", "status": 404, "step": 1}));
    breaks(
        "no_request_after_expiry_seen",
        &t,
        16,
        "read that it was gone",
    );
    let t = reused_after_404(json!({"error": "session_expired", "step": 1}));
    breaks("no_request_after_expiry_seen", &t, 16, "ping on srv-1");
}

/// The 404 never reached the VU (it timed out first): it does not know,
/// and may use the session again; and a request in the very millisecond
/// of the error is not "after" it.
#[test]
fn no_request_after_expiry_seen_only_once_the_vu_read_it() {
    let mut t = reused_after_404(json!({"error": "operation", "cause": "timeout", "step": 1}));
    t.insert(6, fault(5, "hold", json!({"worker": W, "plan_event": 0})));
    passes("no_request_after_expiry_seen", &t);
    let mut t = reused_after_404(json!({"error": "session_expired", "step": 1}));
    t.truncate(13);
    t.push(s(
        12,
        "srv-1",
        "request",
        json!({"method": "ping", "from": W, "header_version": LEGACY}),
    ));
    passes("no_request_after_expiry_seen", &t);
}

// -------------------------------------------------- answer_delivered_intact --

#[test]
fn answer_delivered_intact_a_result_no_server_sent() {
    let mut t = session_then_op("srv-1");
    t.push(request(11, "srv-1"));
    t.push(s(
        11,
        "srv-1",
        "answered",
        json!({"method": "tools/call", "format": "sse", "pieces": 1, "digest": "1111"}),
    ));
    t.push(m(
        12,
        1,
        "srv-1",
        "operation_end",
        json!({"method": "tools/call", "error": null}),
    ));
    t.push(m(12, 1, "srv-1", "released", json!({})));
    // The VU took a notification of the stream for the answer.
    t.push(vu(
        12,
        1,
        "srv-1",
        "vu_answer",
        json!({"digest": "2222", "step": 1}),
    ));
    breaks("answer_delivered_intact", &t, 13, "digest 2222");
    t[13] = vu(
        12,
        1,
        "srv-1",
        "vu_answer",
        json!({"digest": "1111", "step": 1}),
    );
    passes("answer_delivered_intact", &t);
    // The answer was sent before this step began: not this step's.
    let mut early = t.clone();
    early[10] = s(
        9,
        "srv-1",
        "answered",
        json!({"method": "tools/call", "format": "sse", "pieces": 1, "digest": "1111"}),
    );
    early.swap(9, 10);
    early.sort_by_key(|e| e.t_ms);
    let i = early.iter().position(|e| e.event == "vu_answer").unwrap();
    breaks("answer_delivered_intact", &early, i, "no server answered");
}
