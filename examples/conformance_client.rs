//! A small MCP client for the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`), built on this crate: a [`Manager`]
//! in reuse mode over the Streamable HTTP [`HttpConnector`] on real TCP.
//!
//! The suite starts a scenario's server, then runs
//! `<command> <server URL>` with `MCP_CONFORMANCE_SCENARIO` set, and checks
//! what the server saw. So this program takes the server URL as its last
//! argument and picks its flow from that variable:
//!
//! - `initialize`: acquire a session (`initialize`, then
//!   `notifications/initialized`), release it, close the manager.
//! - anything else (`tools_call`, `sse-retry`, unknown scenarios): acquire,
//!   `tools/list` (all pages), call every listed tool, release, close. Tool
//!   arguments are made up from each tool's `inputSchema` (one value per
//!   required property; `{}` when there are none): `tools_call` offers
//!   `add_numbers(a, b)` and checks the client sent two numbers; `sse-retry`
//!   offers `test_reconnection`, answers the call with an SSE stream that it
//!   closes after a priming event (`id:` and `retry: 500`), and checks that
//!   the client resumes with GET and `Last-Event-ID`, no sooner than `retry`.
//!
//! `MCP_CONFORMANCE_PROTOCOL_VERSION` (set by the suite) is the protocol
//! revision asked for. Exits 0 on success; on failure prints one line to
//! stderr and exits 1. Run it through `scripts/conformance.sh`.

use std::process::ExitCode;
use std::sync::Arc;

use mcp_session::config::DEFAULT_PROTOCOL_VERSION;
use mcp_session::transport::{HttpConfig, HttpConnector, Operation, TcpDialer};
use mcp_session::{Clock, Manager, ManagerBuilder, Mode, SessionConfig, TokioClock, VersionPolicy};
use serde_json::{json, Map, Value};

type Error = Box<dyn std::error::Error>;
type Conn = HttpConnector<TcpDialer>;

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
    let config = SessionConfig {
        protocol_version: std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
            .unwrap_or_else(|_| DEFAULT_PROTOCOL_VERSION.to_owned()),
        protocol_version_policy: VersionPolicy::Supported,
        ..SessionConfig::with_mode(Mode::Reuse)
    };
    let manager = ManagerBuilder::new(config)
        .clock(clock)
        .client_info("mcp-session-conformance", env!("CARGO_PKG_VERSION"))
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
    let clock = manager.clock().clone();
    let mut lease = manager.acquire(1).await?;
    let info = lease.info();
    let mut summary = format!("session {} (protocol {})", info.id, info.protocol_version);
    if scenario != "initialize" {
        let tools = list_tools(&mut lease).await?;
        summary.push_str(&format!(", {} tool(s)", tools.len()));
        for tool in &tools {
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or("tools/list: a tool without a name")?;
            let arguments = arguments_for(tool.get("inputSchema"));
            let start = clock.now();
            let result = lease
                .call(&Operation::ToolsCall {
                    name: name.to_owned(),
                    arguments: arguments.clone(),
                })
                .await
                .map_err(|e| format!("tools/call {name} {arguments}: {e}"))?;
            let took = (clock.now() - start).as_millis();
            summary.push_str(&format!(
                ", {name}({arguments}) -> {:?} in {took}ms",
                text_of(&result.to_value())
            ));
        }
    }
    lease.release();
    Ok(summary)
}

/// Every tool the server lists, following `nextCursor`.
async fn list_tools(lease: &mut mcp_session::Lease<Conn>) -> Result<Vec<Value>, Error> {
    let mut tools = Vec::new();
    let mut cursor = None;
    // Bounded: a server that keeps returning cursors cannot loop us forever.
    for _ in 0..100 {
        let page = lease
            .call(&Operation::ToolsList { cursor })
            .await?
            .to_value();
        let listed = page
            .get("tools")
            .and_then(Value::as_array)
            .ok_or("tools/list: result without a tools array")?;
        tools.extend(listed.iter().cloned());
        cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            return Ok(tools);
        }
    }
    Err("tools/list: more than 100 pages".into())
}

/// Arguments for a tool: a plain value for every required property of its
/// input schema (numbers 2, 3, 4, ... in order), or `{}`.
fn arguments_for(schema: Option<&Value>) -> Value {
    let mut args = Map::new();
    let Some(schema) = schema else {
        return Value::Object(args);
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut next_number = 2;
    for name in required {
        let ty = properties
            .and_then(|p| p.get(name))
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
        args.insert(name.to_owned(), value);
    }
    Value::Object(args)
}

/// The text content of a tool result, joined.
fn text_of(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}
