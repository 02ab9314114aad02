//! The cause laws ([`mcp_sim::cause_laws`]) on hand-written traces: for
//! each law, a trace that breaks it (caught, named, at the first violating
//! event) and traces a correct client produces under the same conditions
//! (the cause in the trace, the 404 answer lost on the way, a request in
//! the very millisecond of the error, a session id the server never sent).
//! Where the VU names the JSON-RPC id of its request, the match is exact:
//! the digest answered for another request, or a fault on another
//! request in the same window, breaks the law that matching by time alone
//! (what an event without an id gets) lets through.
//!
//! The manager's side of each story is written with a [`TraceBuilder`];
//! the server's and the VU's events, whose fields these tests vary one by
//! one, as the trace lines they are.

use serde_json::{json, Value};

use mcp_sim::audit::{audit, AuditConfig, AuditReport};
use mcp_sim::faults::Action;
use mcp_sim::trace::{Kind, Trace, TraceBuilder, TraceEvent};

const W: &str = "worker";
const S: &str = "server";
const LEGACY: &str = "2025-11-25";

/// The typed event of a trace line (it must be one).
fn line(v: Value) -> TraceEvent {
    let e: TraceEvent = serde_json::from_value(v.clone()).expect("a trace line");
    assert!(!matches!(e.kind, Kind::Other(_)), "no typed event: {v}");
    e
}

/// A line of `host` at `t` from `source`, on `session` ("": none), by `vu`
/// (0: none).
fn event(
    t: u64,
    host: &str,
    source: &str,
    (session, vu): (&str, u64),
    event: &str,
    d: Value,
) -> TraceEvent {
    let mut v = json!({"t_ms": t, "host": host, "source": source, "event": event, "detail": d});
    if !session.is_empty() {
        v["session"] = json!(session);
    }
    if vu > 0 {
        v["vu"] = json!(vu);
    }
    line(v)
}

/// vu 1's `vu_error` at `t`, on `session` ("": none).
fn failed(t: u64, session: &str, d: Value) -> TraceEvent {
    event(t, W, "vu", (session, 1), "vu_error", d)
}

/// vu 1's `vu_answer` at `t`, on `session`.
fn got(t: u64, session: &str, d: Value) -> TraceEvent {
    event(t, W, "vu", (session, 1), "vu_answer", d)
}

/// A server event on `S` at `t`.
fn s(t: u64, session: &str, name: &'static str, d: Value) -> TraceEvent {
    event(t, S, "server", (session, 0), name, d)
}

/// `e`, its line changed by `f`.
fn edited(e: &TraceEvent, f: impl FnOnce(&mut Value)) -> TraceEvent {
    let mut v = serde_json::to_value(e).unwrap();
    f(&mut v);
    line(v)
}

/// `e` with detail field `key` set to `value`.
fn with(e: TraceEvent, key: &'static str, value: Value) -> TraceEvent {
    edited(&e, |v| v["detail"][key] = value)
}

/// A link fault of worker `W` at `t` that holds its messages.
fn held(t: u64) -> TraceEvent {
    let mut b = TraceBuilder::new();
    b.at(t).fault(Action::Hold {
        worker: W.into(),
        server: S.into(),
    });
    b.last().expect("the fault")
}

/// A legacy session `sid` made for vu 1 from 0 to 3, then an operation
/// of that VU starting at 10 (its `acquire_start` and `operation_start`):
/// events 0 to 8.
fn session_then_op(sid: &str) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    t.at(0).vu(1).acquire_start();
    t.event(s(
        1,
        sid,
        "session_created",
        json!({"requested": LEGACY, "answered": LEGACY, "id_header": "sent", "from": W}),
    ));
    t.at(2).created(sid);
    t.event(s(
        2,
        sid,
        "notification",
        json!({"method": "notifications/initialized", "from": W, "header_version": LEGACY}),
    ));
    t.at(3).acquire_created(sid).released(sid);
    t.at(10).acquire_start().acquire_ok(sid);
    t.operation_start(sid, "tools/call");
    t
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
    let mut b = session_then_op("srv-1");
    b.event(request(11, "srv-1"));
    b.event(s(
        11,
        "srv-1",
        "answered",
        json!({"method": "tools/call", "format": "sse", "pieces": 1, "digest": "d1"}),
    ));
    b.at(12)
        .operation_end("srv-1", "tools/call", Some("operation"));
    b.event(failed(
        12,
        "srv-1",
        json!({"error": "operation", "cause": "malformed_json", "step": 1}),
    ));
    let mut t = b.build();
    breaks("failure_explained", &t, 12, "malformed_json");
    // The same failure, the answer spoiled on purpose: explained.
    t[10] = with(t[10].clone(), "fault", json!("malformed"));
    passes("failure_explained", &t);
}

#[test]
fn failure_explained_a_5xx_needs_an_injected_failure() {
    let mut b = session_then_op("srv-1");
    b.event(failed(
        12,
        "srv-1",
        json!({"error": "operation", "cause": "server_error", "status": 500, "step": 1}),
    ));
    let mut t = b.build();
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
    let mut b = session_then_op("srv-1");
    b.at(12)
        .operation_end("srv-1", "tools/call", Some("session_expired"))
        .invalidated("srv-1");
    b.event(failed(
        12,
        "srv-1",
        json!({"error": "session_expired", "step": 1}),
    ));
    let mut t = b.build();
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
    let mut b = session_then_op("srv-1");
    b.event(failed(
        12,
        "srv-1",
        json!({"error": "operation", "cause": "closed", "step": 1}),
    ));
    let mut t = b.build();
    breaks("failure_explained", &t, 9, "closed");
    let fault = |action| {
        let mut f = TraceBuilder::new();
        f.at(5).fault(action);
        f.last().expect("the fault")
    };
    let mut bounced = t.clone();
    bounced.insert(6, fault(Action::Bounce { server: S.into() }));
    passes("failure_explained", &bounced);
    // A partition of another worker's link explains nothing.
    let mut other = t.clone();
    let partition = Action::Partition {
        worker: "worker-9".into(),
        server: S.into(),
    };
    other.insert(6, fault(partition));
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
        let mut b = session_then_op("srv-1");
        b.event(failed(12, "", json!({"error": error, "step": 1})));
        passes("failure_explained", &b.build());
    }
}

// -------------------------------------------------- legacy_headers_present --

/// A client that sends the session headers on only some requests: its
/// `notifications/initialized` reaches the server without a session id.
#[test]
fn legacy_headers_present_a_request_without_its_session_id() {
    let mut t = session_then_op("srv-1").build();
    t[3] = s(
        2,
        "",
        "missing_session",
        json!({"http": "POST", "method": "notifications/initialized", "from": W, "header_version": LEGACY}),
    );
    breaks("legacy_headers_present", &t, 3, "no Mcp-Session-Id");
    // A stateless-era probe sent to a legacy server carries no session id
    // either, and is right to.
    let mut probe = session_then_op("srv-1").build();
    probe.insert(1, s(0, "", "missing_session", json!({"http": "POST", "method": "server/discover", "from": W, "header_version": "2026-07-28"})));
    passes("legacy_headers_present", &probe);
}

/// A client never sent a session id (the `initialize` answer omitted it,
/// a `session_id` fault) speaks to a server it takes for stateless.
#[test]
fn legacy_headers_present_not_after_an_initialize_without_an_id() {
    let mut t = session_then_op("srv-1").build();
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
    let mut b = session_then_op("srv-1");
    b.event(s(
        11,
        "srv-1",
        "request",
        json!({"method": "tools/call", "from": W}),
    ));
    let mut t = b.build();
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
    t.event(s(11, "srv-1", "unknown_session", json!({"http": "POST", "method": "tools/call", "status": 404, "from": W, "header_version": LEGACY})));
    t.at(12)
        .operation_end("srv-1", "tools/call", Some("operation"))
        .released("srv-1");
    t.event(failed(12, "srv-1", cause));
    t.at(20).acquire_start().acquire_ok("srv-1");
    t.operation_start("srv-1", "ping");
    t.event(s(
        21,
        "srv-1",
        "request",
        json!({"method": "ping", "from": W, "header_version": LEGACY}),
    ));
    t.build()
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
    t.insert(6, held(5));
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
    let mut b = session_then_op("srv-1");
    b.event(request(11, "srv-1"));
    b.event(s(
        11,
        "srv-1",
        "answered",
        json!({"method": "tools/call", "format": "sse", "pieces": 1, "digest": "1111"}),
    ));
    b.at(12)
        .operation_end("srv-1", "tools/call", None)
        .released("srv-1");
    // The VU took a notification of the stream for the answer.
    b.event(got(12, "srv-1", json!({"digest": "2222", "step": 1})));
    let mut t = b.build();
    breaks("answer_delivered_intact", &t, 13, "digest 2222");
    t[13] = got(12, "srv-1", json!({"digest": "1111", "step": 1}));
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
    let i = early.iter().position(|e| e.name() == "vu_answer").unwrap();
    breaks("answer_delivered_intact", &early, i, "no server answered");
}

// ------------------------------------------- exact matching by request id --

/// The server's answer to request `id` on `sid` (legacy era), with `digest`.
fn answered(t: u64, sid: &str, id: u64, digest: &str) -> TraceEvent {
    s(
        t,
        sid,
        "answered",
        json!({"method": "tools/call", "format": "json", "pieces": 1, "id": id, "digest": digest}),
    )
}

/// A stateless-era request number `n` with JSON-RPC `id` from `from`, as
/// the server's wire log has it.
fn wire(t: u64, n: u64, id: u64, from: &str) -> TraceEvent {
    s(
        t,
        "",
        "stateless_wire",
        json!({"request": n, "from": from, "http": "POST", "id": id, "method": "tools/call",
               "meta_version": "2026-07-28", "header_version": "2026-07-28",
               "header_method": "tools/call", "header_name": "echo", "name": "echo"}),
    )
}

/// The stateless-era answer to request number `n` (JSON-RPC `id`).
fn stateless_answer(t: u64, n: u64, id: u64, digest: &str) -> TraceEvent {
    s(
        t,
        "",
        "answered",
        json!({"method": "tools/call", "format": "json", "pieces": 1, "request": n, "id": id, "digest": digest}),
    )
}

/// A stateless-era operation of vu 1 on context `ctx-1`, starting at 10
/// (events 0 to 2).
fn modern_op() -> TraceBuilder {
    let mut t = TraceBuilder::new();
    t.at(10).vu(1).acquire_start().acquire_ok("ctx-1");
    t.operation_start("ctx-1", "tools/call");
    t
}

/// VU event `e` without its `id`: as a VU that could not know it logs it.
fn without_id(e: &TraceEvent) -> TraceEvent {
    edited(e, |v| {
        if let Some(d) = v["detail"].as_object_mut() {
            d.remove("id");
        }
    })
}

/// The result of another request of the session (id 4), answered in the
/// same window, is not the answer to request 3: matching by digest alone
/// (all a VU without an id can be checked by) lets it through.
#[test]
fn answer_delivered_intact_the_digest_of_another_request() {
    let mut b = session_then_op("srv-1");
    b.event(with(request(11, "srv-1"), "id", json!(3)));
    b.event(answered(11, "srv-1", 3, "1111"));
    b.event(answered(11, "srv-1", 4, "2222"));
    b.at(12).operation_end("srv-1", "tools/call", None);
    b.event(got(
        12,
        "srv-1",
        json!({"digest": "2222", "step": 1, "id": 3}),
    ));
    let mut t = b.build();
    breaks(
        "answer_delivered_intact",
        &t,
        13,
        "for request 3 on srv-1, but the server answered it with digest 1111; \
         that digest answered request 4 on srv-1",
    );
    let mut idless = t.clone();
    idless[13] = without_id(&t[13]);
    passes("answer_delivered_intact", &idless);
    // Its own answer.
    t[13] = with(t[13].clone(), "digest", json!("1111"));
    passes("answer_delivered_intact", &t);
    // The same id on another session is another exchange.
    let mut other = t.clone();
    other[10] = answered(11, "srv-2", 3, "1111");
    breaks(
        "answer_delivered_intact",
        &other,
        13,
        "never answered it; that digest answered request 3 on srv-2",
    );
    // An answer spoiled on purpose never reaches a VU as a result.
    let mut spoiled = t.clone();
    spoiled[10] = with(t[10].clone(), "fault", json!("malformed"));
    breaks(
        "answer_delivered_intact",
        &spoiled,
        13,
        "answered it spoiled (malformed)",
    );
}

/// The stateless era has no session on the server: the exchange is the
/// request's id from the VU's worker (its wire log names the worker).
#[test]
fn answer_delivered_intact_the_answer_to_another_workers_request() {
    let mut b = modern_op();
    b.event(wire(11, 5, 3, "worker-9"));
    b.event(stateless_answer(11, 5, 3, "1111"));
    b.event(wire(11, 6, 3, W));
    b.event(stateless_answer(11, 6, 3, "2222"));
    b.event(got(
        12,
        "ctx-1",
        json!({"digest": "1111", "step": 1, "id": 3}),
    ));
    let mut t = b.build();
    breaks(
        "answer_delivered_intact",
        &t,
        7,
        "answered it with digest 2222; that digest answered request 3 from worker-9",
    );
    t[7] = with(t[7].clone(), "digest", json!("2222"));
    passes("answer_delivered_intact", &t);
}

/// A spoiled answer explains the failure of its own request only: not one
/// of another request of the session, nor the same id on another session.
#[test]
fn failure_explained_a_spoiled_answer_of_another_request() {
    let malformed =
        |sid, id, digest| with(answered(11, sid, id, digest), "fault", json!("malformed"));
    let mut b = session_then_op("srv-1");
    b.event(with(request(11, "srv-1"), "id", json!(3)));
    b.event(malformed("srv-1", 4, "4444"));
    b.event(malformed("srv-2", 3, "3333"));
    b.event(failed(
        12,
        "srv-1",
        json!({"error": "operation", "cause": "malformed_json", "step": 1, "id": 3}),
    ));
    let mut t = b.build();
    breaks(
        "failure_explained",
        &t,
        12,
        "malformed_json) of request 3 on srv-1",
    );
    // Without an id (none can be known) the window alone is matched.
    let mut idless = t.clone();
    idless[12] = without_id(&t[12]);
    passes("failure_explained", &idless);
    t.insert(12, malformed("srv-1", 3, "3333"));
    passes("failure_explained", &t);
}

/// An injected 5xx explains the failure of the request it answered: in
/// the stateless era, the one with that id from the VU's worker; in the
/// legacy era, the one with that id on the VU's session, or the one whose
/// cut stream a GET on that session resumes.
#[test]
fn failure_explained_an_injected_failure_of_another_request() {
    let injected = |id: u64, from: &str| {
        s(
            11,
            "",
            "injected",
            json!({"http": "POST", "status": 503, "id": id, "from": from}),
        )
    };
    let mut b = modern_op();
    b.event(wire(11, 5, 3, "worker-9"));
    b.event(injected(3, "worker-9"));
    b.event(wire(11, 6, 4, W));
    b.event(injected(4, W));
    b.event(wire(11, 7, 3, W));
    b.event(failed(
        12,
        "ctx-1",
        json!({"error": "operation", "cause": "server_error", "status": 503, "step": 1, "id": 3}),
    ));
    let mut t = b.build();
    breaks("failure_explained", &t, 8, "HTTP 503) of request 3");
    t.insert(8, injected(3, W));
    passes("failure_explained", &t);
    // A legacy request's injected failure names its session.
    let mut b = session_then_op("srv-1");
    b.event(s(
        11,
        "srv-2",
        "injected",
        json!({"http": "POST", "status": 500, "id": 3, "from": W}),
    ));
    b.event(failed(
        12,
        "srv-1",
        json!({"error": "operation", "cause": "server_error", "status": 500, "step": 1, "id": 3}),
    ));
    let mut t = b.build();
    breaks(
        "failure_explained",
        &t,
        10,
        "HTTP 500) of request 3 on srv-1",
    );
    let mut resumed = t.clone();
    t[9] = edited(&t[9], |v| v["session"] = json!("srv-1"));
    passes("failure_explained", &t);
    // A resumption (GET, no id) of a cut stream, failed on purpose: it
    // belongs to the exchange it resumes, on its session.
    resumed[9] = s(
        11,
        "srv-2",
        "injected",
        json!({"http": "GET", "status": 500, "from": W}),
    );
    resumed.insert(
        9,
        with(
            answered(11, "srv-1", 3, "3333"),
            "fault",
            json!("truncated"),
        ),
    );
    breaks("failure_explained", &resumed, 11, "HTTP 500) of request 3");
    resumed[10] = edited(&resumed[10], |v| v["session"] = json!("srv-1"));
    passes("failure_explained", &resumed);
}

/// A timeout is explained by the `slow` tool on its own request, or by a
/// network fault (a link fault stays matched by time: it touches the
/// link, not one exchange).
#[test]
fn failure_explained_a_timeout_needs_its_own_slow_call_or_a_link_fault() {
    let mut b = session_then_op("srv-1");
    b.event(with(
        with(request(11, "srv-2"), "tool", json!("slow")),
        "id",
        json!(3),
    ));
    b.event(failed(
        15,
        "srv-1",
        json!({"error": "operation", "cause": "timeout", "step": 1, "id": 3}),
    ));
    let mut t = b.build();
    breaks("failure_explained", &t, 10, "timeout) of request 3");
    let mut held_then = t.clone();
    held_then.insert(9, held(11));
    passes("failure_explained", &held_then);
    t[9] = edited(&t[9], |v| v["session"] = json!("srv-1"));
    passes("failure_explained", &t);
}
