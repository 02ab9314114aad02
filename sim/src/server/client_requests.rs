//! Requests from the server to the client in the middle of a tool call:
//! the conformance suite's `test_sampling`, `test_elicitation`,
//! `test_elicitation_sep1034_defaults` and `test_elicitation_sep1330_enums`
//! (served only with
//! [`ServerConfig::conformance_tools`](super::ServerConfig::conformance_tools)).
//!
//! # Legacy era (2025-11-25, sessions)
//!
//! The call is answered with an SSE stream whatever the seed draws (and
//! without drawing: the seeded stream of formats and cuts is not moved by
//! these tools; nor are their answers cut into pieces, preceded by the
//! configured notices, or spoiled by armed answer faults). The stream opens with the priming event (when
//! [`ServerConfig::sse_priming`](super::ServerConfig::sse_priming) is on)
//! and the server's request — `sampling/createMessage` or
//! `elicitation/create`, its id counted per session from 1 — then waits.
//! The client answers with a POST of a JSON-RPC response on the same
//! session (answered 202, as every response is); the response whose id
//! matches wakes the waiting call, whose result event then ends the
//! stream. The wait is bounded by a timeout on the server's clock
//! ([`DEFAULT_CLIENT_REQUEST_TIMEOUT_MS`], or [`Server::set_client_request_timeout`]):
//! when it runs out, the call ends with an `isError` result and a later
//! response is unmatched. A response whose id matches nothing the session
//! waits on is logged and otherwise ignored. A client that did not declare
//! the capability (`sampling`, `elicitation`) in `initialize` gets an
//! `isError` result at once, and no request.
//!
//! The waiting is done by the answer's body itself
//! ([`Chunked::then`]): inside the connection's future, in the server's
//! task, on tokio time (simulated time under turmoil), with a biased
//! `select!` (an answer that is there when the timeout fires wins). A
//! client that goes away drops the body and the wait with it.
//!
//! # Stateless era (2026-07-28)
//!
//! A server must not send requests on a stateless stream; the same tools
//! ask through a multi-round-trip result instead (as [`super::mrtr`]'s do):
//! `resultType: "input_required"` with one input request (key `sampling`
//! or `elicitation`), or -32021 if the request's `clientCapabilities` lack
//! the capability; the retry carrying `inputResponses` completes with the
//! same result the legacy era builds.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use hyper::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

use super::encode::{self, Chunked, Format};
use super::events::ServerEvent;
use super::fixtures::{Reply, RpcError};
use super::handler::{Answer, Body, Decision, Rpc};
use super::{millis, mrtr, Server, ServerConfig, State, SSE_RETRY_MS};

/// How long a tool call waits for the client's response by default, in
/// milliseconds of the server's clock.
pub const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS: u64 = 10_000;

/// JSON-RPC Invalid params.
const INVALID_PARAMS: i64 = -32602;

/// What the client answered: its result, or its error's code and message.
type ClientReply = Result<Value, (i64, String)>;

/// One session's side of the exchange.
#[derive(Debug, Default)]
struct Peer {
    /// Whether `initialize` declared the `sampling` capability.
    sampling: bool,
    /// Whether `initialize` declared the `elicitation` capability.
    elicitation: bool,
    /// The id of the last request sent to this client.
    issued: u64,
    /// The requests waiting for an answer, by id.
    waiting: BTreeMap<u64, oneshot::Sender<ClientReply>>,
}

/// The server's requests to its clients: each session's declared
/// capabilities, id counter and waiting calls (kept only with the
/// conformance fixtures, for the live sessions).
#[derive(Debug)]
pub(crate) struct ClientRequests {
    peers: BTreeMap<String, Peer>,
    timeout_ms: u64,
}

impl Default for ClientRequests {
    fn default() -> Self {
        ClientRequests {
            peers: BTreeMap::new(),
            timeout_ms: DEFAULT_CLIENT_REQUEST_TIMEOUT_MS,
        }
    }
}

impl ClientRequests {
    /// How many sessions have a peer entry, and how many calls wait in
    /// all of them (abandoned ones included): what the table holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> (usize, usize) {
        let waiting = self.peers.values().map(|p| p.waiting.len()).sum();
        (self.peers.len(), waiting)
    }
}

/// What a tool asks the client for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sampling,
    Elicitation,
}

impl Kind {
    /// The request's method.
    fn method(self) -> &'static str {
        match self {
            Kind::Sampling => "sampling/createMessage",
            Kind::Elicitation => "elicitation/create",
        }
    }

    /// The client capability it needs (also the stateless era's input
    /// key).
    fn capability(self) -> &'static str {
        match self {
            Kind::Sampling => "sampling",
            Kind::Elicitation => "elicitation",
        }
    }
}

/// A tool's request to the client: its kind and params.
#[derive(Clone, Debug, PartialEq)]
struct Ask {
    kind: Kind,
    params: Value,
}

/// The tools of this module, as `tools/list` describes them.
pub fn tools() -> Vec<Value> {
    let schema = |properties: Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required});
    let tool = |name: &str, description: &str, input: Value| json!({"name": name, "description": description, "inputSchema": input});
    vec![
        tool(
            "test_sampling",
            "Asks the client's model to answer a prompt (sampling/createMessage).",
            schema(
                json!({"prompt": {"type": "string", "description": "The prompt to send to the LLM"}}),
                &["prompt"],
            ),
        ),
        tool(
            "test_elicitation",
            "Asks the user for a username and an email (elicitation/create).",
            schema(
                json!({"message": {"type": "string", "description": "The message to show the user"}}),
                &["message"],
            ),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Elicits a form whose every primitive field has a default (SEP-1034).",
            schema(json!({}), &[]),
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Elicits a form with the five enum schema variants (SEP-1330).",
            schema(json!({}), &[]),
        ),
    ]
}

/// `elicitation/create` params: `message` and a form of `properties`.
fn form(message: &str, properties: Value, required: &[&str]) -> Value {
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    json!({"message": message, "requestedSchema": schema})
}

/// The titled options `{const, title}` of `pairs`.
fn titled(pairs: &[(&str, &str)]) -> Value {
    pairs
        .iter()
        .map(|(c, t)| json!({"const": c, "title": t}))
        .collect()
}

/// What tool `name` asks the client with `args` (`None`: not one of this
/// module's tools; `Err`: a required argument is missing).
fn ask(name: &str, args: &Map<String, Value>) -> Option<Result<Ask, String>> {
    let string = |key: &str| {
        args.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name}: argument {key} (a string) is required"))
    };
    let elicit = |params| {
        Ok(Ask {
            kind: Kind::Elicitation,
            params,
        })
    };
    let asked = match name {
        "test_sampling" => string("prompt").map(|prompt| Ask {
            kind: Kind::Sampling,
            params: json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": 100,
            }),
        }),
        "test_elicitation" => string("message").and_then(|message| {
            elicit(form(
                message,
                json!({
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"},
                }),
                &["username", "email"],
            ))
        }),
        "test_elicitation_sep1034_defaults" => elicit(form(
            "Please review and update the form fields with defaults",
            json!({
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {"type": "string", "description": "User status",
                           "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Verification status", "default": true},
            }),
            &[],
        )),
        "test_elicitation_sep1330_enums" => elicit(form(
            "Please select options from the enum fields",
            json!({
                "untitledSingle": {"type": "string", "description": "Select one option",
                                   "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "description": "Select one option with titles",
                                 "oneOf": titled(&[("value1", "First Option"),
                                                   ("value2", "Second Option"),
                                                   ("value3", "Third Option")])},
                "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                               "enum": ["opt1", "opt2", "opt3"],
                               "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "description": "Select multiple options",
                                  "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                                "items": {"anyOf": titled(&[("value1", "First Choice"),
                                                            ("value2", "Second Choice"),
                                                            ("value3", "Third Choice")])}},
            }),
            &[],
        )),
        _ => return None,
    };
    Some(asked)
}

/// A `tools/call` result with one text, an error result if `is_error`.
fn text_result(text: &str, is_error: bool) -> Value {
    let mut r = json!({"content": [{"type": "text", "text": text}]});
    if is_error {
        r["isError"] = Value::Bool(true);
    }
    r
}

/// The result of tool `name` once the client answered `reply` (a
/// `CreateMessageResult` or an `ElicitResult`).
fn completed(name: &str, kind: Kind, reply: &Value) -> Value {
    match kind {
        Kind::Sampling => {
            let content = reply.get("content").unwrap_or(&Value::Null);
            let said = match content.get("text").and_then(Value::as_str) {
                Some(text) => text.to_owned(),
                None => content.to_string(),
            };
            text_result(&format!("LLM response: {said}"), false)
        }
        Kind::Elicitation => {
            let action = reply
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let content = reply.get("content").unwrap_or(&Value::Null);
            let lead = if name == "test_elicitation" {
                "User response"
            } else {
                "Elicitation completed"
            };
            text_result(
                &format!("{lead}: action={action}, content={content}"),
                false,
            )
        }
    }
}

/// The arguments of a `tools/call`'s `params` (empty if absent).
fn arguments(params: &Value) -> Map<String, Value> {
    params
        .get("arguments")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Remembers what the client of `session` declared in `initialize`
/// (`params`), and forgets the sessions that are no longer live (their
/// waiting calls end). Only with the conformance fixtures.
pub(crate) fn remember(st: &mut State, cfg: &ServerConfig, session: &str, params: &Value) {
    if !cfg.conformance_tools {
        return;
    }
    let caps = params.get("capabilities");
    let has = |k: &str| caps.and_then(|c| c.get(k)).is_some_and(|v| !v.is_null());
    let peer = Peer {
        sampling: has("sampling"),
        elicitation: has("elicitation"),
        ..Peer::default()
    };
    let live = &st.sessions;
    let peers = &mut st.client_requests.peers;
    peers.retain(|id, _| live.get(id).is_some());
    peers.insert(session.to_owned(), peer);
}

/// A legacy-era `tools/call` of one of this module's tools (`None`: not
/// one of them, or the fixtures are off): the answer that sends the
/// client the tool's request and waits for its response, or at once an
/// error (a missing argument: -32602; a capability the client did not
/// declare: an `isError` result).
pub(crate) fn call(
    st: &mut State,
    cfg: &ServerConfig,
    now: u64,
    session: &str,
    id: &Value,
    params: &Value,
) -> Option<Decision> {
    if !cfg.conformance_tools {
        return None;
    }
    let name = params.get("name").and_then(Value::as_str)?;
    let ask = match ask(name, &arguments(params))? {
        Ok(ask) => ask,
        Err(why) => return Some(answer_now(session, id, Err((INVALID_PARAMS, why)))),
    };
    let peer = st
        .client_requests
        .peers
        .entry(session.to_owned())
        .or_default();
    let declared = match ask.kind {
        Kind::Sampling => peer.sampling,
        Kind::Elicitation => peer.elicitation,
    };
    if !declared {
        let why = format!(
            "{name}: the client did not declare the {} capability",
            ask.kind.capability()
        );
        return Some(answer_now(session, id, Ok(text_result(&why, true))));
    }
    let waiting = send(st, now, session, id, name, ask);
    Some(Decision::Now(Answer {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: Body::AwaitClient(waiting),
    }))
}

/// The `tools/call` (request `id` on `session`) answered at once with
/// `outcome`, without asking the client anything.
fn answer_now(session: &str, id: &Value, outcome: Result<Value, (i64, String)>) -> Decision {
    let rpc = Rpc::plain(
        Some(session.to_owned()),
        "tools/call".into(),
        id.clone(),
        outcome,
    );
    Decision::Now(Answer {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: Body::Rpc(rpc),
    })
}

/// Issues the tool `name`'s request (`ask`) to the client of `session`,
/// under the session's next id, and logs it: what the answer's body needs
/// to send it and wait for the response to the call `id`.
fn send(st: &mut State, now: u64, session: &str, id: &Value, name: &str, ask: Ask) -> Waiting {
    let timeout_ms = st.client_requests.timeout_ms;
    let peer = st
        .client_requests
        .peers
        .entry(session.to_owned())
        .or_default();
    // Calls whose client went away (their answer's body, and with it the
    // receiver, dropped before the response or the timeout) are forgotten
    // here: otherwise a client that calls and disconnects, again and
    // again, grows the session's table without bound.
    peer.waiting.retain(|_, tx| !tx.is_closed());
    peer.issued += 1;
    let server_id = peer.issued;
    let (tx, rx) = oneshot::channel();
    peer.waiting.insert(server_id, tx);
    st.record(
        now,
        ServerEvent::ClientRequestSent {
            session: session.to_owned(),
            id: server_id,
            method: ask.kind.method().to_owned(),
            tool: name.to_owned(),
        },
    );
    let request = json!({
        "jsonrpc": "2.0",
        "id": server_id,
        "method": ask.kind.method(),
        "params": ask.params,
    });
    Waiting {
        session: session.to_owned(),
        call_id: id.clone(),
        tool: name.to_owned(),
        kind: ask.kind,
        server_id,
        request,
        rx,
        timeout: Duration::from_millis(timeout_ms),
    }
}

/// Hands a JSON-RPC response the client POSTed on `session` (`body`, a
/// message already classified as a response) to the tool call waiting for
/// it, or logs it as unmatched. Only with the conformance fixtures.
pub(crate) fn deliver(st: &mut State, cfg: &ServerConfig, now: u64, session: &str, body: &[u8]) {
    if !cfg.conformance_tools {
        return;
    }
    let msg: Value = serde_json::from_slice(body).unwrap_or_default();
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let waiting = id.as_u64().and_then(|n| {
        let peer = st.client_requests.peers.get_mut(session)?;
        Some((n, peer.waiting.remove(&n)?))
    });
    let unmatched = |st: &mut State| {
        st.record(
            now,
            ServerEvent::ClientResponseUnmatched {
                session: session.to_owned(),
                id: id.to_string(),
            },
        );
    };
    let Some((n, tx)) = waiting else {
        return unmatched(st);
    };
    let reply = match msg.get("error") {
        Some(e) => Err((
            e.get("code").and_then(Value::as_i64).unwrap_or(0),
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )),
        None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
    };
    let error = reply.as_ref().err().map(|e| e.0);
    if tx.send(reply).is_err() {
        // The call stopped waiting (its client went away).
        return unmatched(st);
    }
    st.record(
        now,
        ServerEvent::ClientRequestAnswered {
            session: session.to_owned(),
            id: n,
            error,
        },
    );
}

/// A legacy-era tool call waiting for the client: what its answer's body
/// needs to send the request, wait, and finish.
#[derive(Debug)]
pub(crate) struct Waiting {
    session: String,
    /// The `tools/call` request's id.
    call_id: Value,
    tool: String,
    kind: Kind,
    /// The id of the request sent to the client.
    server_id: u64,
    /// The request sent to the client.
    request: Value,
    rx: oneshot::Receiver<ClientReply>,
    timeout: Duration,
}

impl Server {
    /// Requests sent to clients from now on wait `timeout` for the answer
    /// (of the server's clock: simulated time in simulation) before their
    /// tool call ends with an error result. Default
    /// [`DEFAULT_CLIENT_REQUEST_TIMEOUT_MS`].
    pub fn set_client_request_timeout(&self, timeout: Duration) {
        let mut st = self.lock();
        let now = st.now();
        let timeout_ms = millis(timeout);
        st.client_requests.timeout_ms = timeout_ms;
        st.record(now, ServerEvent::ClientRequestTimeoutSet { timeout_ms });
    }

    /// The SSE body of a waiting call: the priming event (if configured)
    /// and the request now, the result when the client has answered or
    /// the timeout has run out.
    pub(super) fn await_client(&self, w: Waiting) -> Chunked {
        let first = {
            let mut st = self.lock();
            let mut out = String::new();
            if self.inner.cfg.sse_priming {
                out.push_str(&encode::sse_priming(st.next_event_id, SSE_RETRY_MS));
                st.next_event_id += 1;
            }
            out.push_str(&encode::sse_event(st.next_event_id, &w.request));
            st.next_event_id += 1;
            Bytes::from(out)
        };
        let server = self.clone();
        let rest = stream::once(async move { server.finish_call(w).await }).boxed();
        Chunked::then(vec![first], rest)
    }

    /// Waits for the client's answer to `w`'s request (or the timeout),
    /// then builds the call's result event.
    async fn finish_call(&self, w: Waiting) -> Bytes {
        let Waiting {
            session,
            call_id,
            tool,
            kind,
            server_id,
            request: _,
            mut rx,
            timeout,
        } = w;
        let got = tokio::select! {
            biased;
            reply = &mut rx => Some(reply.ok()),
            () = tokio::time::sleep(timeout) => None,
        };
        let mut st = self.lock();
        let now = st.now();
        let method = kind.method();
        let result = match got {
            Some(Some(Ok(reply))) => completed(&tool, kind, &reply),
            Some(Some(Err((code, message)))) => text_result(
                &format!("{tool}: the client answered {method} with error {code}: {message}"),
                true,
            ),
            Some(None) => text_result(
                &format!("{tool}: the session ended before the client answered {method}"),
                true,
            ),
            None => {
                if let Some(peer) = st.client_requests.peers.get_mut(&session) {
                    peer.waiting.remove(&server_id);
                }
                let waited_ms = millis(timeout);
                st.record(
                    now,
                    ServerEvent::ClientRequestTimedOut {
                        session: session.clone(),
                        id: server_id,
                        waited_ms,
                    },
                );
                text_result(
                    &format!(
                        "{tool}: no response to {method} (id {server_id}) within {waited_ms} ms"
                    ),
                    true,
                )
            }
        };
        let digest = Some(super::events::digest(&result));
        let rpc = Rpc::plain(Some(session), "tools/call".into(), call_id, Ok(result));
        let data = rpc.to_bytes();
        let event = encode::sse_data_event(st.next_event_id, &String::from_utf8_lossy(&data));
        st.next_event_id += 1;
        st.record(
            now,
            ServerEvent::Answered {
                session: rpc.session,
                method: rpc.method,
                format: Format::Sse,
                pieces: 2,
                error: None,
                fault: None,
                request: None,
                id: Some(rpc.id.clone()),
                input_required: false,
                request_state: None,
                digest,
            },
        );
        Bytes::from(event)
    }
}

/// A stateless-era `tools/call` of one of this module's tools (`None`:
/// not one of them): `input_required` asking the client (or -32021
/// without the capability), and the completed result once
/// `inputResponses` carries the answer.
pub(crate) fn call_stateless(name: &str, params: &Value) -> Option<Reply> {
    let ask = match ask(name, &arguments(params))? {
        Ok(ask) => ask,
        Err(why) => return Some(Reply::err(RpcError::invalid(why))),
    };
    let key = ask.kind.capability();
    match params.get("inputResponses") {
        None => {}
        Some(Value::Object(responses)) => {
            if let Some(reply) = responses.get(key).filter(|r| r.is_object()) {
                return Some(Reply::ok(completed(name, ask.kind, reply)));
            }
        }
        Some(_) => {
            return Some(Reply::err(RpcError::invalid(
                "inputResponses must be an object",
            )))
        }
    }
    let declared = params
        .pointer("/_meta/io.modelcontextprotocol~1clientCapabilities")
        .and_then(|c| c.get(key))
        .is_some_and(|v| !v.is_null());
    if !declared {
        return Some(mrtr::missing_capability(&[key]));
    }
    let request = json!({"method": ask.kind.method(), "params": ask.params});
    Some(Reply::ok(json!({
        "resultType": "input_required",
        "inputRequests": {key: request},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn each_tool_asks_what_its_scenario_checks() {
        let s = ask("test_sampling", &args(json!({"prompt": "p"})))
            .unwrap()
            .unwrap();
        assert_eq!(s.kind, Kind::Sampling);
        assert_eq!(s.params["messages"][0]["content"]["text"], "p");
        assert_eq!(s.params["maxTokens"], 100);
        let e = ask("test_elicitation", &args(json!({"message": "m"})))
            .unwrap()
            .unwrap();
        assert_eq!(e.params["message"], "m");
        assert_eq!(
            e.params["requestedSchema"]["required"],
            json!(["username", "email"])
        );
        let d = ask("test_elicitation_sep1034_defaults", &Map::new())
            .unwrap()
            .unwrap();
        let p = &d.params["requestedSchema"]["properties"];
        assert_eq!(
            (
                &p["name"]["default"],
                &p["age"]["default"],
                &p["score"]["default"]
            ),
            (&json!("John Doe"), &json!(30), &json!(95.5))
        );
        assert_eq!(
            (&p["status"]["default"], &p["verified"]["default"]),
            (&json!("active"), &json!(true))
        );
        let n = ask("test_elicitation_sep1330_enums", &Map::new())
            .unwrap()
            .unwrap();
        let p = &n.params["requestedSchema"]["properties"];
        assert!(p["untitledSingle"].get("oneOf").is_none());
        assert_eq!(p["titledSingle"]["oneOf"][0]["title"], "First Option");
        assert_eq!(p["legacyEnum"]["enumNames"].as_array().unwrap().len(), 3);
        assert_eq!(p["untitledMulti"]["items"]["type"], "string");
        assert_eq!(p["titledMulti"]["items"]["anyOf"][2]["const"], "value3");
        assert!(ask("test_sampling", &Map::new()).unwrap().is_err());
        assert!(ask("echo", &Map::new()).is_none());
        let listed: Vec<Value> = tools().iter().map(|t| t["name"].clone()).collect();
        assert_eq!(listed.len(), 4);
    }

    #[test]
    fn results_quote_the_clients_answer() {
        let said =
            json!({"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "m"});
        assert_eq!(
            completed("test_sampling", Kind::Sampling, &said)["content"][0]["text"],
            "LLM response: hi"
        );
        let form = json!({"action": "accept", "content": {"username": "u"}});
        assert_eq!(
            completed("test_elicitation", Kind::Elicitation, &form)["content"][0]["text"],
            r#"User response: action=accept, content={"username":"u"}"#
        );
        let declined = json!({"action": "decline"});
        assert_eq!(
            completed(
                "test_elicitation_sep1330_enums",
                Kind::Elicitation,
                &declined
            )["content"][0]["text"],
            "Elicitation completed: action=decline, content=null"
        );
    }

    #[test]
    fn the_stateless_era_asks_through_mrtr() {
        let caps = |c: Value| json!({"io.modelcontextprotocol/clientCapabilities": c});
        let first = json!({"name": "test_sampling", "arguments": {"prompt": "p"},
                           "_meta": caps(json!({"sampling": {}}))});
        let r = call_stateless("test_sampling", &first)
            .unwrap()
            .outcome
            .unwrap();
        assert_eq!(r["resultType"], "input_required");
        assert_eq!(
            r["inputRequests"]["sampling"]["method"],
            "sampling/createMessage"
        );
        let mut retry = first.clone();
        retry["inputResponses"] =
            json!({"sampling": {"role": "assistant", "content": {"type": "text", "text": "ok"}}});
        let r = call_stateless("test_sampling", &retry)
            .unwrap()
            .outcome
            .unwrap();
        assert_eq!(r["content"][0]["text"], "LLM response: ok");
        let without = json!({"name": "test_elicitation", "arguments": {"message": "m"},
                             "_meta": caps(json!({"sampling": {}}))});
        let e = call_stateless("test_elicitation", &without)
            .unwrap()
            .outcome
            .unwrap_err();
        assert_eq!(e.code, mrtr::MISSING_REQUIRED_CLIENT_CAPABILITY);
        assert!(call_stateless("echo", &without).is_none());
    }
}
