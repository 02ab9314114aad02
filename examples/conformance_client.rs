//! A small MCP client for the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`), built on this crate: a [`Manager`]
//! in reuse mode over the Streamable HTTP [`HttpConnector`] on real TCP.
//!
//! The suite starts a scenario's server, then runs
//! `<command> <server URL>` with `MCP_CONFORMANCE_SCENARIO`,
//! `MCP_CONFORMANCE_PROTOCOL_VERSION` (the revision under test: the
//! `--spec-version` it was given, else the scenario's own) and, for some
//! scenarios, `MCP_CONFORMANCE_CONTEXT` (JSON) set, and checks what the
//! server saw. So this program takes the server URL as its last argument.
//!
//! The era is the library's default, `auto`: a `server/discover` probe
//! (retried once at `2026-07-28` when refused with -32022), then either
//! stateless 2026-07-28 requests or, when the server answers as a legacy
//! server, `initialize` at the requested legacy revision.
//! `CONFORMANCE_CLIENT_ERA=legacy|modern|auto` overrides it.
//!
//! What it does, per scenario:
//!
//! - `initialize`: acquire a session (`initialize` and
//!   `notifications/initialized`), release it, close the manager.
//! - every other scenario: acquire, `tools/list` (all pages), then call
//!   tools; in the stateless era also list and read every resource and list
//!   and get every prompt when the server's `server/discover` declares them
//!   (`http-standard-headers` checks `Mcp-Method` on each method and
//!   `Mcp-Name` on `tools/call`, `resources/read`, `prompts/get`). The tools
//!   called and their arguments:
//!   - the `toolCalls` of `MCP_CONFORMANCE_CONTEXT` when it has them
//!     (`http-custom-headers`: the library mirrors `x-mcp-header` arguments
//!     into `Mcp-Param-*` headers, learned from `tools/list`);
//!   - `json-schema-2020-12-preservation`: `json_schema_echo` with the
//!     `inputSchema` of `json_schema_2020_12_tool`, verbatim;
//!   - `json-schema-ref-no-deref`: none (its tool has no handler; the
//!     scenario checks that listing does not fetch a network `$ref`);
//!   - otherwise every listed tool, with one made-up value per required
//!     property of its `inputSchema` (`tools_call`: `add_numbers(a, b)`;
//!     `sse-retry`: `test_reconnection`, whose SSE answer is cut after a
//!     priming event and resumed with GET `Last-Event-ID`;
//!     `request-metadata`: none listed, the probe is refused once with
//!     -32022; `http-invalid-tool-headers`: every tool `tools/list`
//!     returns, where the scenario wants the tools with invalid
//!     `x-mcp-header` annotations left out — by the library, which reads
//!     the annotations).
//! - Multi round-trip requests (`sep-2322-client-request-state`): every
//!   call is sent once first; those answered `input_required` are then
//!   retried with [`mcp_session::Lease::call_with_input`] (a new id, the
//!   answers and the exact `requestState`), so calls made meanwhile (its
//!   `test_mrtr_unrelated`) must carry none of it. Elicitations are
//!   accepted with a value per requested property (the client declares
//!   only the `elicitation` capability); a result without `resultType` is
//!   complete.
//!
//! Exits 0 on success; on failure prints one line to stderr and exits 1.
//! Run it through `scripts/conformance.sh`.

use std::process::ExitCode;
use std::sync::Arc;

use mcp_session::transport::{HttpConfig, HttpConnector, InputRequired, Operation, TcpDialer};
use mcp_session::{
    is_modern_version, Clock, Era, Lease, Manager, ManagerBuilder, Mode, SessionConfig, SessionEra,
    TokioClock, VersionPolicy, DEFAULT_PROTOCOL_VERSION,
};
use serde_json::{json, Map, Value};

type Error = Box<dyn std::error::Error>;
type Conn = HttpConnector<TcpDialer>;

/// Bound on the rounds of one multi round-trip request.
const MAX_INPUT_ROUNDS: usize = 8;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("conformance_client: usage: conformance_client [...] <server URL>");
        return ExitCode::FAILURE;
    };
    match run(&scenario, &url).await {
        Ok(summary) => {
            println!("conformance_client: {scenario}: ok: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line, whatever the error's text holds.
            let line = e.to_string().replace('\n', " ");
            eprintln!("conformance_client: {scenario}: {line}");
            ExitCode::FAILURE
        }
    }
}

async fn run(scenario: &str, url: &str) -> Result<String, Error> {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let http = HttpConfig {
        // Fail with our own error well before the suite kills the client
        // (after 30 s).
        request_timeout_ms: 10_000,
        ..HttpConfig::new(url)
    };
    let connector = HttpConnector::new(TcpDialer, http, clock.clone())?;
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
        .unwrap_or_else(|_| DEFAULT_PROTOCOL_VERSION.to_owned());
    let era = match std::env::var("CONFORMANCE_CLIENT_ERA") {
        Ok(e) => e.parse::<Era>()?,
        Err(_) => Era::Auto,
    };
    let mut config = SessionConfig {
        era,
        protocol_version_policy: VersionPolicy::Supported,
        ..SessionConfig::with_mode(Mode::Reuse)
    };
    // The revision under test is offered first in its era; the other era
    // keeps the library's default.
    if is_modern_version(&version) {
        config.modern_protocol_versions = vec![version];
    } else {
        config.protocol_version = version;
    }
    let manager = ManagerBuilder::new(config)
        .clock(clock)
        .client_info("mcp-session-conformance", env!("CARGO_PKG_VERSION"))
        // The only input requests this client answers.
        .client_capabilities(json!({"elicitation": {}}))
        .start(connector)?;
    let outcome = flow(scenario, &manager).await;
    // Close in every case: the session is ended on the server (DELETE when
    // it issued a session id).
    let start = manager.clock().now();
    manager.close().await;
    let took = (manager.clock().now() - start).as_millis();
    let summary = format!("{}, closed in {took}ms", outcome?);
    let m = manager.metrics();
    if m.total_created != 1 || m.live_sessions != 0 {
        return Err(format!(
            "expected one session, created and closed; metrics: created {}, live {}",
            m.total_created, m.live_sessions
        )
        .into());
    }
    Ok(summary)
}

async fn flow(scenario: &str, manager: &Manager<Conn>) -> Result<String, Error> {
    let mut lease = manager.acquire(1).await?;
    let info = lease.info();
    let mut summary = format!(
        "{} session {} (protocol {})",
        info.era, info.id, info.protocol_version
    );
    if scenario != "initialize" {
        let tools = list_tools(&mut lease).await?;
        summary.push_str(&format!(", {} tool(s)", tools.len()));
        let calls = planned_calls(scenario, &tools)?
            .into_iter()
            .map(|(name, arguments)| Operation::ToolsCall { name, arguments })
            .collect();
        summary.push_str(&call_all(&mut lease, calls).await?);
        if info.era == SessionEra::Modern {
            summary.push_str(&resources_and_prompts(manager, &mut lease).await?);
        }
    }
    lease.release();
    Ok(summary)
}

/// Every tool the server lists, following `nextCursor`.
async fn list_tools(lease: &mut Lease<Conn>) -> Result<Vec<Value>, Error> {
    list_all(lease, "tools", |cursor| Operation::ToolsList { cursor }).await
}

/// Every item of a paginated list (`tools`, `resources`, `prompts`).
async fn list_all(
    lease: &mut Lease<Conn>,
    key: &str,
    op: impl Fn(Option<String>) -> Operation,
) -> Result<Vec<Value>, Error> {
    let mut items = Vec::new();
    let mut cursor = None;
    // Bounded: a server that keeps returning cursors cannot loop us forever.
    for _ in 0..100 {
        let op = op(cursor);
        let page = lease.call(&op).await?.to_value();
        let listed = page
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{}: result without a {key} array", op.method()))?;
        items.extend(listed.iter().cloned());
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            return Ok(items);
        }
    }
    Err(format!("{key}: more than 100 pages").into())
}

/// The tool calls of a scenario: `(name, arguments)`.
fn planned_calls(scenario: &str, tools: &[Value]) -> Result<Vec<(String, Value)>, Error> {
    let named = |tool: &Value| -> Result<String, Error> {
        Ok(tool
            .get("name")
            .and_then(Value::as_str)
            .ok_or("tools/list: a tool without a name")?
            .to_owned())
    };
    if let Some(calls) = context_tool_calls()? {
        return Ok(calls);
    }
    Ok(match scenario {
        "json-schema-ref-no-deref" => Vec::new(),
        "json-schema-2020-12-preservation" => {
            let focal = tools
                .iter()
                .find(|t| t.get("name") == Some(&json!("json_schema_2020_12_tool")))
                .and_then(|t| t.get("inputSchema"))
                .ok_or("tools/list: no json_schema_2020_12_tool with an inputSchema")?;
            vec![("json_schema_echo".to_owned(), json!({ "schema": focal }))]
        }
        _ => tools
            .iter()
            .map(|t| Ok((named(t)?, arguments_for(t.get("inputSchema")))))
            .collect::<Result<_, Error>>()?,
    })
}

/// `toolCalls` of `MCP_CONFORMANCE_CONTEXT` (`[{name, arguments}]`), if set.
fn context_tool_calls() -> Result<Option<Vec<(String, Value)>>, Error> {
    let Ok(text) = std::env::var("MCP_CONFORMANCE_CONTEXT") else {
        return Ok(None);
    };
    let context: Value = serde_json::from_str(&text)
        .map_err(|e| format!("MCP_CONFORMANCE_CONTEXT is not JSON: {e}"))?;
    let Some(calls) = context.get("toolCalls").and_then(Value::as_array) else {
        return Ok(None);
    };
    calls
        .iter()
        .map(|c| {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .ok_or("MCP_CONFORMANCE_CONTEXT: a tool call without a name")?;
            let arguments = c.get("arguments").cloned().unwrap_or_else(|| json!({}));
            Ok((name.to_owned(), arguments))
        })
        .collect::<Result<_, Error>>()
        .map(Some)
}

/// Sends every call once, then retries those answered `input_required`
/// with their answers, round after round, until all are complete.
/// Returns a summary of the results.
async fn call_all(lease: &mut Lease<Conn>, calls: Vec<Operation>) -> Result<String, Error> {
    let mut summary = String::new();
    let mut pending: Vec<(Operation, InputRequired)> = Vec::new();
    for op in calls {
        let result = lease.call(&op).await.map_err(|e| failed(&op, e))?;
        match result.input_required() {
            Some(asked) => pending.push((op, asked)),
            None => summary.push_str(&format!(", {} -> {:?}", describe(&op), result.text())),
        }
    }
    for round in 1..=MAX_INPUT_ROUNDS {
        for (op, asked) in std::mem::take(&mut pending) {
            let answers = asked.respond(answer_input_requests(&asked.input_requests)?);
            let result = lease
                .call_with_input(&op, &answers)
                .await
                .map_err(|e| failed(&op, e))?;
            match result.input_required() {
                Some(asked) => pending.push((op, asked)),
                None => summary.push_str(&format!(
                    ", {} -> {:?} after {round} input round(s)",
                    describe(&op),
                    result.text()
                )),
            }
        }
    }
    match pending.first() {
        None => Ok(summary),
        Some((op, _)) => Err(format!(
            "{}: still input_required after {MAX_INPUT_ROUNDS} rounds",
            describe(op)
        )
        .into()),
    }
}

fn describe(op: &Operation) -> String {
    match op {
        Operation::ToolsCall { name, arguments } => format!("{name}({arguments})"),
        other => other.method().to_owned(),
    }
}

fn failed(op: &Operation, e: mcp_session::SessionError) -> Error {
    format!("{} {}: {e}", op.method(), describe(op)).into()
}

/// The `inputResponses` for an `inputRequests` object: every elicitation
/// accepted, with a value for each property it asks for.
fn answer_input_requests(requests: &Value) -> Result<Value, Error> {
    let mut answers = Map::new();
    for (key, request) in requests.as_object().into_iter().flatten() {
        let method = request.get("method").and_then(Value::as_str);
        if method != Some("elicitation/create") {
            return Err(format!(
                "input request {key:?} is {method:?}; this client declared only elicitation"
            )
            .into());
        }
        let schema = request.get("params").and_then(|p| p.get("requestedSchema"));
        let content = values_for(schema, false);
        answers.insert(key.clone(), json!({"action": "accept", "content": content}));
    }
    Ok(Value::Object(answers))
}

/// Lists and reads every resource, lists and gets every prompt, when the
/// server's `server/discover` declares them.
async fn resources_and_prompts(
    manager: &Manager<Conn>,
    lease: &mut Lease<Conn>,
) -> Result<String, Error> {
    let capabilities = match manager.discovery() {
        Some(d) => d.capabilities,
        // Stale at once (`ttlMs: 0`): ask again.
        None => lease.call(&Operation::Discover).await?.to_value()["capabilities"].take(),
    };
    let mut summary = String::new();
    if capabilities.get("resources").is_some() {
        let resources = list_all(lease, "resources", |cursor| Operation::ResourcesList {
            cursor,
        })
        .await?;
        for uri in resources
            .iter()
            .filter_map(|r| r.get("uri").and_then(Value::as_str))
        {
            let op = Operation::ResourcesRead {
                uri: uri.to_owned(),
            };
            lease.call(&op).await.map_err(|e| failed(&op, e))?;
        }
        summary.push_str(&format!(", {} resource(s) read", resources.len()));
    }
    if capabilities.get("prompts").is_some() {
        let prompts =
            list_all(lease, "prompts", |cursor| Operation::PromptsList { cursor }).await?;
        for prompt in &prompts {
            let name = prompt
                .get("name")
                .and_then(Value::as_str)
                .ok_or("prompts/list: a prompt without a name")?;
            // Prompt arguments are strings: one per required argument.
            let arguments: Map<String, Value> = prompt
                .get("arguments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|a| a.get("required") == Some(&json!(true)))
                .filter_map(|a| a.get("name").and_then(Value::as_str))
                .map(|n| (n.to_owned(), json!("test")))
                .collect();
            let op = Operation::PromptsGet {
                name: name.to_owned(),
                arguments: Value::Object(arguments),
            };
            lease.call(&op).await.map_err(|e| failed(&op, e))?;
        }
        summary.push_str(&format!(", {} prompt(s) got", prompts.len()));
    }
    Ok(summary)
}

/// Arguments for a tool: a plain value for every required property of its
/// input schema (numbers 2, 3, 4, ... in order), or `{}`.
fn arguments_for(schema: Option<&Value>) -> Value {
    values_for(schema, true)
}

/// An object with a plain value for each property of `schema` (only the
/// required ones when `required_only`): numbers 2, 3, 4, ... in order,
/// `true`, `"test"` (or the first `enum` value), `{}`, `[]`, `null`.
fn values_for(schema: Option<&Value>, required_only: bool) -> Value {
    let mut values = Map::new();
    let Some(schema) = schema else {
        return Value::Object(values);
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let names: Vec<&str> = if required_only {
        schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    } else {
        properties
            .into_iter()
            .flat_map(|p| p.keys().map(String::as_str))
            .collect()
    };
    let mut next_number = 2;
    for name in names {
        let property = properties.and_then(|p| p.get(name));
        if let Some(first) = property
            .and_then(|p| p.get("enum"))
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            values.insert(name.to_owned(), first.clone());
            continue;
        }
        let ty = property
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value = match ty {
            "number" | "integer" => {
                next_number += 1;
                json!(next_number - 1)
            }
            "boolean" => json!(true),
            "object" => json!({}),
            "array" => json!([]),
            "null" => Value::Null,
            _ => json!("test"),
        };
        values.insert(name.to_owned(), value);
    }
    Value::Object(values)
}
