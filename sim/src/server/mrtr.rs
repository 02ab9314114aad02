//! Multi-round-trip requests (MCP 2026-07-28, SEP-2322): the conformance
//! suite's `test_input_required_result_*` tools and prompt, and the
//! stateless era's other diagnostic tools (`test_missing_capability`,
//! `test_streaming_elicitation`, `test_logging_tool`).
//!
//! A tool that needs input answers `resultType: "input_required"` with
//! `inputRequests` (only of kinds the client declared in this request's
//! `clientCapabilities`) and, for some tools, a `requestState`; the client
//! retries with a new id, `inputResponses` and the same `requestState`.
//! The state is `<tool>:<round>.<signature>`, the signature a keyed
//! SHA-256 (key: the server's seed), so a tampered state is refused with
//! -32602. Missing responses are asked for again, not refused.
//!
//! The same machinery serves a fault: a series of input rounds armed on
//! the server ([`super::Server::ask_input_rounds_next`]) makes the next
//! fresh `tools/call` requests, whatever the tool, answer `input_required`
//! for a few rounds before the tool runs ([`with_input_rounds`]).

use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::events::ServerEvent;
use super::fixtures::{Reply, RpcError};
use super::State;

/// The `_meta` key of the client's capabilities.
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// MissingRequiredClientCapability.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;

/// The tools of this module, as `tools/list` describes them.
pub fn tools() -> Vec<Value> {
    let none = json!({"type": "object", "properties": {}, "required": []});
    [
        ("test_input_required_result_elicitation", "Asks for the user's name (MRTR elicitation)."),
        ("test_input_required_result_sampling", "Asks the client's model a question (MRTR sampling)."),
        ("test_input_required_result_list_roots", "Asks for the client's roots (MRTR roots/list)."),
        ("test_input_required_result_request_state", "MRTR with a requestState that must come back."),
        ("test_input_required_result_multiple_inputs", "MRTR with elicitation, sampling and roots at once."),
        ("test_input_required_result_multi_round", "MRTR over two rounds with an evolving requestState."),
        ("test_input_required_result_tampered_state", "MRTR whose signed requestState is checked."),
        ("test_input_required_result_capabilities", "MRTR asking only for what the client declared."),
        ("test_missing_capability", "Needs the sampling capability: -32021 without it."),
        ("test_streaming_elicitation", "Asks for input through MRTR, never by a server request."),
        ("test_logging_tool", "Logs only when the request's _meta carries a logLevel."),
        ("test_trigger_tool_change", "Announces a tools list change on subscriptions/listen streams."),
        ("test_trigger_prompt_change", "Announces a prompts list change on subscriptions/listen streams."),
        ("test_trigger_resource_change", "Announces a resources list change on subscriptions/listen streams."),
    ]
    .iter()
    .map(|(name, description)| json!({"name": name, "description": description, "inputSchema": none}))
    .collect()
}

/// An input request of `kind`: `elicit` (with the message and the one
/// string or boolean property asked for), `sample` or `roots`.
fn elicit(message: &str, property: &str, kind: &str) -> Value {
    json!({"method": "elicitation/create", "params": {"message": message, "requestedSchema": {
        "type": "object", "properties": {property: {"type": kind}}, "required": [property]}}})
}

fn sample(text: &str, max_tokens: u32) -> Value {
    json!({"method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
        "maxTokens": max_tokens}})
}

fn roots() -> Value {
    json!({"method": "roots/list", "params": {}})
}

/// The client capability an input request needs.
fn needs(request: &Value) -> &'static str {
    match request["method"].as_str() {
        Some("sampling/createMessage") => "sampling",
        Some("roots/list") => "roots",
        _ => "elicitation",
    }
}

/// The signed request state of `tool` at `round`.
pub fn sign(key: u64, tool: &str, round: u32) -> String {
    let payload = format!("{tool}:{round}");
    let mut h = Sha256::new();
    h.update(key.to_be_bytes());
    h.update(payload.as_bytes());
    let sig: String = h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{payload}.{sig}")
}

/// The round a request state names, if it is a state this server signed
/// for `tool`.
pub fn verify(key: u64, tool: &str, state: &str) -> Option<u32> {
    let (payload, _) = state.rsplit_once('.')?;
    let round = payload
        .strip_prefix(tool)?
        .strip_prefix(':')?
        .parse()
        .ok()?;
    (sign(key, tool, round) == state).then_some(round)
}

/// An `input_required` result asking `requests` (keyed), with `state`.
fn input_required(requests: Vec<(&str, Value)>, state: Option<String>) -> Reply {
    let map: Map<String, Value> = requests
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut r = json!({"resultType": "input_required", "inputRequests": map});
    if let Some(s) = state {
        r["requestState"] = s.into();
    }
    Reply::ok(r)
}

/// A complete `tools/call` result with one text.
fn text(t: &str) -> Reply {
    Reply::ok(json!({"content": [{"type": "text", "text": t}]}))
}

/// -32021 naming the capabilities that are missing.
pub fn missing_capability(caps: &[&str]) -> Reply {
    let required: Map<String, Value> = caps.iter().map(|c| ((*c).to_owned(), json!({}))).collect();
    Reply::err(RpcError {
        code: MISSING_REQUIRED_CLIENT_CAPABILITY,
        message: format!("Missing required client capability: {}", caps.join(", ")),
        data: Some(json!({ "requiredCapabilities": required })),
        status: 400,
    })
}

/// What one MRTR call brings: the client's capabilities, its
/// `inputResponses` (`Err` when present but not an object) and its state.
struct Call<'a> {
    caps: Map<String, Value>,
    responses: Result<Option<&'a Map<String, Value>>, ()>,
    state: Option<&'a str>,
}

impl<'a> Call<'a> {
    fn of(params: &'a Value) -> Call<'a> {
        let caps = params
            .pointer(&format!("/_meta/{}", META_CAPABILITIES.replace('/', "~1")))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let responses = match params.get("inputResponses") {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(()),
        };
        let state = params.get("requestState").and_then(Value::as_str);
        Call {
            caps,
            responses,
            state,
        }
    }

    /// The object response under `key`, if the client gave one.
    fn response(&self, key: &str) -> Option<&'a Map<String, Value>> {
        self.responses.ok().flatten()?.get(key)?.as_object()
    }

    fn has(&self, cap: &str) -> bool {
        self.caps.contains_key(cap)
    }
}

/// Asks for `requests` unless the client declared none of what they
/// need; each is kept only if its capability was declared.
fn ask(call: &Call<'_>, requests: Vec<(&str, Value)>, state: Option<String>) -> Reply {
    let missing: Vec<&str> = requests
        .iter()
        .map(|(_, r)| needs(r))
        .filter(|c| !call.has(c))
        .collect();
    let kept: Vec<(&str, Value)> = requests
        .into_iter()
        .filter(|(_, r)| call.has(needs(r)))
        .collect();
    if kept.is_empty() {
        let mut missing = missing;
        missing.dedup();
        return missing_capability(&missing);
    }
    input_required(kept, state)
}

/// Calls MRTR or diagnostic tool `name` (`None`: not one of them). `key`
/// signs request states.
pub fn call_tool(name: &str, params: &Value, key: u64) -> Option<Reply> {
    let call = Call::of(params);
    if call.responses.is_err() {
        return Some(Reply::err(RpcError::invalid(
            "inputResponses must be an object",
        )));
    }
    let reply = match name {
        "test_input_required_result_elicitation" | "test_streaming_elicitation" => {
            match call.response("user_name") {
                Some(r) => {
                    let who = r
                        .get("content")
                        .and_then(|c| c.get("name"))
                        .and_then(Value::as_str);
                    text(&format!("Hello, {}!", who.unwrap_or("stranger")))
                }
                None => ask(
                    &call,
                    vec![("user_name", elicit("What is your name?", "name", "string"))],
                    None,
                ),
            }
        }
        "test_input_required_result_sampling" => match call.response("capital_question") {
            Some(r) => {
                let said = r
                    .get("content")
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str);
                text(&format!("The model said: {}", said.unwrap_or("")))
            }
            None => ask(
                &call,
                vec![(
                    "capital_question",
                    sample("What is the capital of France?", 100),
                )],
                None,
            ),
        },
        "test_input_required_result_list_roots" => match call.response("client_roots") {
            Some(r) => {
                let uris: Vec<&str> = r
                    .get("roots")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| x["uri"].as_str()).collect())
                    .unwrap_or_default();
                text(&format!("Roots: {}", uris.join(", ")))
            }
            None => ask(&call, vec![("client_roots", roots())], None),
        },
        "test_input_required_result_capabilities" => ask(
            &call,
            vec![
                ("user_name", elicit("What is your name?", "name", "string")),
                (
                    "capital_question",
                    sample("What is the capital of France?", 100),
                ),
                ("client_roots", roots()),
            ],
            None,
        ),
        "test_missing_capability" => {
            if call.has("sampling") {
                text("the sampling capability is declared")
            } else {
                missing_capability(&["sampling"])
            }
        }
        "test_logging_tool" => text("test_logging_tool executed"),
        _ => return stateful(name, &call, key),
    };
    Some(reply)
}

/// The tools whose `requestState` matters.
fn stateful(name: &str, call: &Call<'_>, key: u64) -> Option<Reply> {
    let confirm = || elicit("Please confirm", "ok", "boolean");
    let requests: Vec<(&str, Value)> = match name {
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            vec![("confirm", confirm())]
        }
        "test_input_required_result_multiple_inputs" => vec![
            ("user_name", elicit("What is your name?", "name", "string")),
            ("greeting", sample("Generate a greeting", 50)),
            ("client_roots", roots()),
        ],
        "test_input_required_result_multi_round" => vec![(
            "step1",
            elicit("Step 1: What is your name?", "name", "string"),
        )],
        _ => return None,
    };
    let round = match call.state {
        None => 0,
        Some(s) => match verify(key, name, s) {
            Some(r) => r,
            None => {
                return Some(Reply::err(RpcError::invalid(
                    "requestState failed its integrity check",
                )))
            }
        },
    };
    let answered = |keys: &[&str]| keys.iter().all(|k| call.response(k).is_some());
    let keys: Vec<&str> = requests.iter().map(|(k, _)| *k).collect();
    let reply = match (name, round) {
        (_, 0) => ask(call, requests, Some(sign(key, name, 1))),
        ("test_input_required_result_multi_round", 1) if answered(&["step1"]) => ask(
            call,
            vec![(
                "step2",
                elicit("Step 2: What is your favorite color?", "color", "string"),
            )],
            Some(sign(key, name, 2)),
        ),
        ("test_input_required_result_multi_round", 2) if answered(&["step2"]) => {
            text("multi-round complete: state-ok")
        }
        ("test_input_required_result_multi_round", 2) => ask(
            call,
            vec![(
                "step2",
                elicit("Step 2: What is your favorite color?", "color", "string"),
            )],
            Some(sign(key, name, 2)),
        ),
        (_, 1) if answered(&keys) => text("All input received: state-ok"),
        _ => ask(call, requests, Some(sign(key, name, round))),
    };
    Some(reply)
}

/// The key input-round states are signed with: one constant, not a
/// server's seed, so that every instance of a balanced server verifies
/// the states any other one signed ("rounds" in ASCII).
const ROUNDS_KEY: u64 = 0x726f_756e_6473;

/// What an input-round state's signed payload starts with (then the tool,
/// `:`, and the rounds left).
const ROUNDS_PREFIX: &str = "rounds/";

/// The key of the one input request of an input round.
const ROUNDS_INPUT: &str = "continue";

/// Answers a stateless-era request, in the rounds of an armed series of
/// input rounds when it is a `tools/call` they take: `answer` gives the
/// answer otherwise (with the parameters it is to read).
///
/// - A fresh call (no `requestState`, no `inputResponses`) takes a series
///   if one is armed: it is answered `input_required` with the state
///   `rounds/<tool>:<left>.<signature>`, `left` the rounds still to come
///   after this one.
/// - A retry with such a state: refused with -32602 if the signature is
///   wrong; asked again (the same state) if the round asked for an input
///   the retry does not answer; with `left` 0, answered by `answer`, the
///   state and the responses taken off (the tool runs as if called
///   afresh); else answered `input_required` again, one round fewer left.
/// - Anything else (another method, another server's or tool's state) is
///   `answer`'s.
///
/// A round asks for one boolean elicitation when the request declares the
/// `elicitation` capability, and for nothing (a state-only result, which
/// the spec allows) otherwise. Each `input_required` answer is logged as
/// [`ServerEvent::InputRequested`].
pub(crate) fn with_input_rounds(
    st: &mut State,
    now: u64,
    method: &str,
    params: &Value,
    answer: impl FnOnce(&mut State, &Value) -> (Reply, Option<Duration>),
) -> (Reply, Option<Duration>) {
    if method != "tools/call" {
        return answer(st, params);
    }
    let tool = params.get("name").and_then(Value::as_str).unwrap_or("");
    let signed_as = format!("{ROUNDS_PREFIX}{tool}");
    let call = Call::of(params);
    let left = match params.get("requestState") {
        None if params.get("inputResponses").is_none() => match st.hooks.take_input_rounds() {
            Some(rounds) => return ask_round(st, now, &call, tool, &signed_as, rounds - 1),
            None => return answer(st, params),
        },
        Some(Value::String(state)) if state.starts_with(ROUNDS_PREFIX) => {
            match verify(ROUNDS_KEY, &signed_as, state) {
                Some(left) => left,
                None => {
                    let e = RpcError::invalid("requestState failed its integrity check");
                    return (Reply::err(e), None);
                }
            }
        }
        _ => return answer(st, params),
    };
    if call.has("elicitation") && call.response(ROUNDS_INPUT).is_none() {
        // The round's question was not answered: ask it again.
        return ask_round(st, now, &call, tool, &signed_as, left);
    }
    if left > 0 {
        return ask_round(st, now, &call, tool, &signed_as, left - 1);
    }
    let mut afresh = params.clone();
    if let Value::Object(map) = &mut afresh {
        map.remove("requestState");
        map.remove("inputResponses");
    }
    answer(st, &afresh)
}

/// One `input_required` answer of a series, `left` rounds still to come
/// after it.
fn ask_round(
    st: &mut State,
    now: u64,
    call: &Call<'_>,
    tool: &str,
    signed_as: &str,
    left: u32,
) -> (Reply, Option<Duration>) {
    st.record(
        now,
        ServerEvent::InputRequested {
            tool: tool.to_owned(),
            left,
        },
    );
    let requests = if call.has("elicitation") {
        let question = format!("Continue? ({left} more round(s) after this one)");
        vec![(ROUNDS_INPUT, elicit(&question, "ok", "boolean"))]
    } else {
        Vec::new()
    };
    let reply = input_required(requests, Some(sign(ROUNDS_KEY, signed_as, left)));
    (reply, None)
}

/// `prompts/get` of the MRTR prompt (`None`: another prompt).
pub fn get_prompt(name: &str, params: &Value) -> Option<Reply> {
    if name != "test_input_required_result_prompt" {
        return None;
    }
    let call = Call::of(params);
    if call.responses.is_err() {
        return Some(Reply::err(RpcError::invalid(
            "inputResponses must be an object",
        )));
    }
    let reply = match call.response("user_context") {
        Some(r) => {
            let context = r
                .get("content")
                .and_then(|c| c.get("context"))
                .and_then(Value::as_str)
                .unwrap_or("");
            Reply::ok(json!({"messages": [{"role": "user", "content": {
                "type": "text", "text": format!("Prompt with context: {context}")}}]}))
        }
        None => ask(
            &call,
            vec![(
                "user_context",
                elicit("What context should the prompt use?", "context", "string"),
            )],
            None,
        ),
    };
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(extra: Value) -> Value {
        let mut p = json!({"name": "x", "arguments": {}, "_meta": {
            "io.modelcontextprotocol/clientCapabilities": {"sampling": {}, "elicitation": {}, "roots": {}}}});
        if let (Value::Object(p), Value::Object(e)) = (&mut p, extra) {
            p.extend(e);
        }
        p
    }

    #[test]
    fn states_are_signed_and_checked() {
        let s = sign(7, "t", 1);
        assert_eq!(verify(7, "t", &s), Some(1));
        assert_eq!(verify(7, "t", &format!("{s}-TAMPERED")), None);
        assert_eq!(verify(8, "t", &s), None);
        assert_eq!(verify(7, "u", &s), None);
    }

    #[test]
    fn a_request_state_round_trip_completes_with_state_ok() {
        let tool = "test_input_required_result_request_state";
        let r1 = call_tool(tool, &params(json!({})), 1)
            .unwrap()
            .outcome
            .unwrap();
        assert_eq!(r1["resultType"], "input_required");
        let state = r1["requestState"].as_str().unwrap().to_owned();
        let retry = params(
            json!({"inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}},
                                  "requestState": state}),
        );
        let r2 = call_tool(tool, &retry, 1).unwrap().outcome.unwrap();
        assert!(r2["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("state-ok"));
        let tampered =
            params(json!({"inputResponses": {}, "requestState": format!("{state}-TAMPERED")}));
        assert_eq!(
            call_tool(tool, &tampered, 1)
                .unwrap()
                .outcome
                .unwrap_err()
                .code,
            -32602
        );
    }

    /// A state of `rounds` for tool `t` with `left` rounds to come.
    fn rounds_state(t: &str, left: u32) -> String {
        sign(ROUNDS_KEY, &format!("{ROUNDS_PREFIX}{t}"), left)
    }

    fn run_rounds(st: &mut State, params: &Value) -> Result<Value, i64> {
        let (reply, _) = with_input_rounds(st, 0, "tools/call", params, |_, p| {
            // The tool sees neither the state nor the responses.
            assert!(p.get("requestState").is_none() && p.get("inputResponses").is_none());
            (text("done"), None)
        });
        reply.outcome.map_err(|e| e.code)
    }

    #[test]
    fn input_rounds_ask_then_let_the_tool_run() {
        let server = super::super::Server::new(Default::default());
        server.ask_input_rounds_next(1, 2);
        let mut st = server.lock();
        let fresh = json!({"name": "echo", "arguments": {"text": "x"}});
        let r1 = run_rounds(&mut st, &fresh).unwrap();
        assert_eq!(r1["resultType"], "input_required");
        assert_eq!(r1["requestState"], rounds_state("echo", 1));
        assert_eq!(r1["inputRequests"], json!({}), "no capability: state only");
        let retry = |state: &Value| {
            let mut p = fresh.clone();
            p["requestState"] = state.clone();
            p["inputResponses"] = json!({});
            p
        };
        let r2 = run_rounds(&mut st, &retry(&r1["requestState"])).unwrap();
        assert_eq!(r2["requestState"], rounds_state("echo", 0));
        let r3 = run_rounds(&mut st, &retry(&r2["requestState"])).unwrap();
        assert_eq!(r3["content"][0]["text"], "done");
        // The series was the only one armed: the next call runs at once.
        assert_eq!(
            run_rounds(&mut st, &fresh).unwrap()["content"][0]["text"],
            "done"
        );
        // A tampered state, or another tool's, is refused.
        let tampered = json!(format!("{}x", rounds_state("echo", 0)));
        assert_eq!(run_rounds(&mut st, &retry(&tampered)), Err(-32602));
        let other = json!(rounds_state("slow", 0));
        assert_eq!(run_rounds(&mut st, &retry(&other)), Err(-32602));
        let asked: Vec<u32> = st
            .events
            .iter()
            .filter_map(|e| match &e.event {
                ServerEvent::InputRequested { left, .. } => Some(*left),
                _ => None,
            })
            .collect();
        assert_eq!(asked, [1, 0]);
    }

    #[test]
    fn an_input_round_asked_with_elicitation_waits_for_its_answer() {
        let server = super::super::Server::new(Default::default());
        server.ask_input_rounds_next(1, 1);
        let mut st = server.lock();
        let p = params(json!({}));
        let r1 = run_rounds(&mut st, &p).unwrap();
        assert!(r1["inputRequests"][ROUNDS_INPUT].is_object());
        let mut retry = p.clone();
        retry["requestState"] = r1["requestState"].clone();
        retry["inputResponses"] = json!({});
        let again = run_rounds(&mut st, &retry).unwrap();
        assert_eq!(again["requestState"], r1["requestState"], "asked again");
        retry["inputResponses"] =
            json!({ROUNDS_INPUT: {"action": "accept", "content": {"ok": true}}});
        assert_eq!(
            run_rounds(&mut st, &retry).unwrap()["content"][0]["text"],
            "done"
        );
    }

    #[test]
    fn only_declared_capabilities_are_asked_for() {
        let p = json!({"_meta": {"io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}});
        let r = call_tool("test_input_required_result_capabilities", &p, 1)
            .unwrap()
            .outcome
            .unwrap();
        let keys: Vec<&String> = r["inputRequests"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["capital_question"]);
        let e = call_tool("test_missing_capability", &json!({}), 1)
            .unwrap()
            .outcome
            .unwrap_err();
        assert_eq!(e.code, -32021);
        assert_eq!(
            e.data.unwrap()["requiredCapabilities"],
            json!({"sampling": {}})
        );
    }
}
