//! What a VU does: runs its program of [`Step`]s against its worker's
//! session manager, one acquire, operation and release per call step,
//! and records every step that ended in an error as a `vu_error` trace
//! event (the error's kind, the step's index and, for an error of the
//! transport, what it saw: `cause`, `status`, `code`), and every call that
//! got a result as a `vu_answer` (the step and the result's digest); both
//! name the JSON-RPC `id` of the request the call sent last, when it sent
//! one, so the audit can find the server's side of that very exchange.
//!
//! A stateless-era server may answer a call `input_required` (MRTR): the
//! VU then answers what it asks with canned responses ([`canned`]) and
//! sends the call again on the same lease
//! ([`mcp_session::Lease::call_with_input`]: a new request id, the exact
//! `requestState`), for at most [`MAX_INPUT_ROUNDS`] rounds. A failed
//! retry is the step's error like any other; a call still asking for
//! input after the last round is the error `input_rounds_exceeded`. A
//! legacy server never answers `input_required`, so a legacy run does
//! exactly what it did. `mcp-sim drill` answers input rounds with the same
//! [`call`], so a drill and a simulated VU complete them alike.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::{json, Map, Value};

use mcp_session::transport::{CallResult, Connector, InputRequired, Operation, TransportError};
use mcp_session::{ErrorKind, Lease, SessionEra, SessionError};

use crate::schedule::{Op, Step};
use crate::server::events::digest;
use crate::topology::Vu;
use crate::trace::{TraceRecorder, VuEvent};

/// The most `input_required` rounds a VU answers for one call.
pub const MAX_INPUT_ROUNDS: u32 = 4;

/// The `vu_error` kind of a call still asking for input after
/// [`MAX_INPUT_ROUNDS`] rounds.
pub const INPUT_ROUNDS_EXCEEDED: &str = "input_rounds_exceeded";

/// Canned responses to what an `input_required` result asks, by key: an
/// elicitation is accepted with every requested property filled (a string
/// `"mcp-sim"`, a boolean `true`, a number 0), a sampling request gets a
/// short assistant text, a roots request an empty list; anything else an
/// empty object. A result that asks nothing (a state-only retry) gets an
/// empty object.
pub fn canned(input: &InputRequired) -> Value {
    let Value::Object(requests) = &input.input_requests else {
        return json!({});
    };
    let answers: Map<String, Value> = requests
        .iter()
        .map(|(key, request)| {
            let answer = match request.get("method").and_then(Value::as_str) {
                Some("elicitation/create") => {
                    let properties = request
                        .pointer("/params/requestedSchema/properties")
                        .and_then(Value::as_object);
                    let content: Map<String, Value> = properties
                        .into_iter()
                        .flatten()
                        .map(|(name, schema)| {
                            let v = match schema.get("type").and_then(Value::as_str) {
                                Some("boolean") => json!(true),
                                Some("number" | "integer") => json!(0),
                                _ => json!("mcp-sim"),
                            };
                            (name.clone(), v)
                        })
                        .collect();
                    json!({"action": "accept", "content": content})
                }
                Some("sampling/createMessage") => json!({
                    "role": "assistant",
                    "content": {"type": "text", "text": "mcp-sim"},
                    "model": "mcp-sim",
                }),
                Some("roots/list") => json!({"roots": []}),
                _ => json!({}),
            };
            (key.clone(), answer)
        })
        .collect();
    Value::Object(answers)
}

/// Why a call failed: the library's error, or input asked for too long.
#[derive(Debug)]
pub enum CallFailure {
    /// The library's error, of the first request or of a retry.
    Session(SessionError),
    /// The result was still `input_required` after [`MAX_INPUT_ROUNDS`]
    /// rounds (the `vu_error` kind [`INPUT_ROUNDS_EXCEEDED`]).
    InputRoundsExceeded,
}

/// Runs `op` on `lease`, answering `input_required` results with
/// [`canned`] responses ([`Lease::call_with_input`]: a new request id, the
/// exact `requestState`) for up to [`MAX_INPUT_ROUNDS`] rounds. Returns
/// the final result — `Ok` only when it is complete — and how many input
/// rounds were answered (retries sent), whatever the outcome.
pub async fn call<C: Connector>(
    lease: &mut Lease<C>,
    op: &Operation,
) -> (Result<CallResult, CallFailure>, u32) {
    let mut rounds = 0;
    let mut result = match lease.call(op).await {
        Ok(result) => result,
        Err(e) => return (Err(CallFailure::Session(e)), rounds),
    };
    while let Some(input) = result.input_required() {
        if rounds == MAX_INPUT_ROUNDS {
            return (Err(CallFailure::InputRoundsExceeded), rounds);
        }
        rounds += 1;
        let responses = input.respond(canned(&input));
        result = match lease.call_with_input(op, &responses).await {
            Ok(result) => result,
            Err(e) => return (Err(CallFailure::Session(e)), rounds),
        };
    }
    (Ok(result), rounds)
}

/// The operation of a step.
///
/// The stateless era has no `ping`: on a modern context a ping step lists
/// the tools instead, the cheapest request that era has which leaves the
/// client's discover cache alone (`server/discover` would refresh it).
fn operation(op: &Op, era: SessionEra, worker: &str, vu: u64, step: usize) -> Operation {
    match op {
        Op::Ping if era == SessionEra::Modern => Operation::ToolsList { cursor: None },
        Op::Ping => Operation::Ping,
        Op::Echo => Operation::ToolsCall {
            name: "echo".into(),
            arguments: json!({ "text": format!("{worker}/{vu}/{step}") }),
        },
        Op::Slow { ms } => Operation::ToolsCall {
            name: "slow".into(),
            arguments: json!({ "ms": ms }),
        },
    }
}

/// The `vu_error` event of a step that failed with `error`, of request
/// `id` (see [`answer`]).
fn vu_error(step: usize, error: &'static str, id: Option<u64>) -> VuEvent {
    VuEvent::Error {
        step: step as u64,
        error: Cow::Borrowed(error),
        id,
        cause: None,
        status: None,
        code: None,
    }
}

/// The `vu_error` event for the library's error `e`: the step, the
/// error's kind and, for an error of the transport, what the transport
/// saw (`cause`: [`transport_cause`], with the HTTP `status` or the
/// JSON-RPC `code` where there is one), and the JSON-RPC `id` of the
/// request that failed when one was sent: what [`crate::cause_laws`]
/// matches against the causes in the trace.
fn session_error(step: usize, e: &SessionError, id: Option<u64>) -> VuEvent {
    let transport = transport_error(&e.kind).map(transport_cause);
    VuEvent::Error {
        step: step as u64,
        error: Cow::Borrowed(e.kind_name()),
        id,
        cause: transport.map(|(cause, _, _)| Cow::Borrowed(cause)),
        status: transport.and_then(|(_, status, _)| status),
        code: transport.and_then(|(_, _, code)| code),
    }
}

/// The transport's error inside a library error, if there is one.
fn transport_error(kind: &ErrorKind) -> Option<&TransportError> {
    match kind {
        ErrorKind::Connect(t)
        | ErrorKind::Initialize(t)
        | ErrorKind::InitializedNotification(t)
        | ErrorKind::Operation(t)
        | ErrorKind::Discover(t)
        | ErrorKind::EraChanged(t) => Some(t),
        _ => None,
    }
}

/// A transport error's class (snake_case), with the HTTP status and the
/// JSON-RPC error code it carries, where it carries one.
pub fn transport_cause(t: &TransportError) -> (&'static str, Option<u16>, Option<i64>) {
    use TransportError as T;
    match t {
        T::Connect { .. } => ("connect", None, None),
        T::Timeout { .. } => ("timeout", None, None),
        T::SessionNotFound => ("session_not_found", None, None),
        T::BadRequest { code, .. } => ("bad_request", Some(400), *code),
        T::HeaderMismatch { status, .. } => ("header_mismatch", Some(*status), Some(-32020)),
        T::MissingCapability { .. } => ("missing_capability", None, Some(-32021)),
        T::UnsupportedVersion { .. } => ("unsupported_version", None, Some(-32022)),
        T::MethodNotFound { status, .. } => ("method_not_found", Some(*status), Some(-32601)),
        T::NotModern { .. } => ("not_modern", None, None),
        T::EraChanged { .. } => ("era_changed", None, None),
        T::StreamLost => ("stream_lost", None, None),
        T::InvalidTool { .. } => ("invalid_tool", None, None),
        T::NotInModernEra { .. } => ("not_in_modern_era", None, None),
        T::Unauthorized { status } => ("unauthorized", Some(*status), None),
        T::ServerError { status } => ("server_error", Some(*status), None),
        T::Http { status } => ("http", Some(*status), None),
        T::Redirect { status, .. } => ("redirect", Some(*status), None),
        T::JsonRpc { code, .. } => ("json_rpc", None, Some(*code)),
        T::ToolError { .. } => ("tool_error", None, None),
        T::Closed { .. } => ("closed", None, None),
        T::ContentType { .. } => ("content_type", None, None),
        T::BodyTooLarge { .. } => ("body_too_large", None, None),
        T::MalformedJson { .. } => ("malformed_json", None, None),
        T::MalformedSse { .. } => ("malformed_sse", None, None),
        T::InvalidSessionId { .. } => ("invalid_session_id", None, None),
        T::InvalidUrl(_) => ("invalid_url", None, None),
        T::Protocol(_) => ("protocol", None, None),
        _ => ("other", None, None),
    }
}

/// The `vu_answer` event of a step whose call got `result`: the step, the
/// [`digest`] of the result and the JSON-RPC `id` of the request it
/// answers, where it sent one: the id of the request the step's call sent
/// last ([`mcp_session::Lease::last_request_id`]: after an MRTR round or a
/// -32022 retry, the last one's). With the lease's session (in the
/// stateless era: its worker) it names the exchange, as the server logs
/// it (`answered`, `injected`, `request`): what [`crate::cause_laws`]
/// matches exactly.
fn answer(step: usize, result: &CallResult, id: Option<u64>) -> VuEvent {
    VuEvent::Answer {
        digest: digest(&result.to_value()),
        step: step as u64,
        id,
    }
}

/// One call step: acquire, the operation (with its input rounds), then
/// release or invalidate; records its `vu_answer` or `vu_error`. Returns
/// whether it failed, and whether the manager is closed (the VU stops).
async fn call_step(vu: &Vu, op: &Op, i: usize, recorder: &TraceRecorder) -> (bool, bool) {
    let mut lease = match vu.manager.acquire(vu.id).await {
        Ok(lease) => lease,
        Err(e) => {
            recorder.record_vu(vu.id, None, session_error(i, &e, None));
            return (true, matches!(e.kind, ErrorKind::ManagerClosed));
        }
    };
    let era = lease.info().era;
    let (r, _rounds) = call(&mut lease, &operation(op, era, &vu.worker, vu.id, i)).await;
    let lease_id = lease.id().to_owned();
    let id = lease.last_request_id();
    match &r {
        Err(CallFailure::Session(e)) if e.should_invalidate() => lease.invalidate(),
        _ => lease.release(),
    }
    let (session, event) = match r {
        Ok(result) => (Some(lease_id), answer(i, &result, id)),
        Err(CallFailure::Session(e)) => {
            let event = session_error(i, &e, id);
            (e.session, event)
        }
        Err(CallFailure::InputRoundsExceeded) => {
            (Some(lease_id), vu_error(i, INPUT_ROUNDS_EXCEEDED, id))
        }
    };
    let failed = matches!(event, VuEvent::Error { .. });
    recorder.record_vu(vu.id, session.as_deref(), event);
    (failed, false)
}

/// Runs one VU's program; returns how many steps ended in an error. Stops
/// early once the manager is closed.
pub async fn run_vu(vu: Vu, steps: Vec<Step>, recorder: TraceRecorder) -> u32 {
    let mut errors = 0;
    let think = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Call { op, think_ms } => {
                let (failed, closed) = call_step(&vu, op, i, &recorder).await;
                errors += u32::from(failed);
                if closed {
                    break;
                }
                think(*think_ms).await;
            }
            Step::CancelAcquire { after_ms, think_ms } => {
                let closed = tokio::select! {
                    biased;
                    r = vu.manager.acquire(vu.id) => match r {
                        Ok(lease) => {
                            lease.release();
                            false
                        }
                        Err(e) => matches!(e.kind, ErrorKind::ManagerClosed),
                    },
                    () = think(*after_ms) => false,
                };
                if closed {
                    break;
                }
                think(*think_ms).await;
            }
            Step::CloseManager => vu.manager.close().await,
            // Test hooks of the liveness budget (never drawn).
            Step::SpinForever => loop {
                tokio::task::yield_now().await;
            },
            Step::SleepForever => loop {
                think(1_000).await;
            },
            Step::SpinOnClock => {
                let clock = vu.clock.clone();
                tokio::spawn(async move {
                    loop {
                        clock.sleep_until(clock.now()).await;
                    }
                });
                loop {
                    think(1_000).await;
                }
            }
        }
    }
    errors
}
