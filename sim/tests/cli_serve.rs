//! The `mcp-sim` binary, run as a user runs it: usage errors end with exit
//! status 2 and a message naming the bad value, and `serve` prints its
//! listening line and answers MCP over loopback (then it is killed).
//! Nothing here listens anywhere but 127.0.0.1.

use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use mcp_session::transport::{
    Connection, Connector, HttpConfig, HttpConnector, InitializeParams, Operation, TcpDialer,
};
use mcp_session::{Clock, TokioClock};

mod common;

use common::{usage_error, Serve};

#[test]
fn unknown_fault_profile_is_one_line_naming_it_and_the_accepted() {
    let stderr = usage_error(
        &["serve", "--port", "0", "--faults", "chaos"],
        &["'chaos'", "none", "flaky", "expire"],
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn bad_port_is_a_usage_error() {
    usage_error(&["serve", "--port", "70000"], &["70000", "--port"]);
    usage_error(&["serve", "--port", "http"], &["'http'", "--port"]);
    usage_error(&["serve"], &["--port"]);
}

#[test]
fn non_loopback_host_is_refused() {
    for host in ["0.0.0.0", "192.168.1.10", "::", "example.com"] {
        let stderr = usage_error(
            &["serve", "--port", "0", "--host", host],
            &[&format!("'{host}'"), "loopback"],
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn numeric_options_out_of_range_are_usage_errors() {
    for (flag, value, range) in [
        ("--split-chunks", "4294967295", "0..=64"),
        ("--notifications", "1000000", "0..=100"),
        ("--max-sessions", "0", "1..=1000000"),
        ("--session-ttl-ms", "0", "1..="),
        ("--session-idle-ms", "0", "1..="),
    ] {
        usage_error(
            &["serve", "--port", "0", flag, value],
            &[flag, &format!("'{value}'"), range],
        );
    }
}

#[test]
fn other_usage_errors_exit_2() {
    usage_error(&["serve", "--port", "0", "--sse-ratio", "2"], &["'2'"]);
    usage_error(&["bogus"], &["'bogus'"]);
    usage_error(&[], &["Usage"]);
}

/// `serve --port 0`: the listening line names the port the OS chose, and
/// the library's own client initializes, lists and calls tools there.
#[tokio::test]
async fn serve_prints_its_address_and_answers_initialize() {
    let Serve { url, mut child } = Serve::start(&["--seed", "3"]).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.ends_with("/mcp"), "{url}");
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    assert_ne!(authority, "127.0.0.1:0", "the chosen port is printed");

    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let http = HttpConfig {
        connect_timeout_ms: 5_000,
        request_timeout_ms: 5_000,
        close_timeout_ms: 5_000,
        ..HttpConfig::new(url.clone())
    };
    let connector = HttpConnector::new(TcpDialer, http, clock).expect("valid URL");
    let conn = connector.connect().await.expect("connect");
    let init = conn
        .initialize(&InitializeParams {
            protocol_version: "2025-06-18".into(),
            client_name: "cli_serve".into(),
            client_version: "0".into(),
        })
        .await
        .expect("initialize");
    assert_eq!(init.protocol_version, "2025-06-18");
    assert_eq!(init.session_id.as_deref(), Some("srv-1"));
    conn.notify_initialized().await.expect("initialized");
    let list = conn
        .request(&Operation::ToolsList { cursor: None }, None)
        .await
        .expect("tools/list")
        .result
        .to_value();
    let names: Vec<&str> = list["tools"]
        .as_array()
        .expect("a tools array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    assert!(names.contains(&"test_simple_text"), "{names:?}");
    let text = conn
        .request(
            &Operation::ToolsCall {
                name: "test_simple_text".into(),
                arguments: json!({}),
            },
            None,
        )
        .await
        .expect("tools/call")
        .result
        .to_value();
    assert_eq!(
        text["content"][0]["text"],
        "This is a simple text response for testing."
    );
    conn.close().await.expect("DELETE");

    // DNS rebinding protection: another host's name in Host is refused.
    let mut stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .expect("connect");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nhost: evil.example.com\r\norigin: http://evil.example.com\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 403 "), "{raw}");

    child.kill().await.expect("kill mcp-sim serve");
}

/// Opens a raw connection to `url`'s host and port.
async fn raw(url: &str) -> tokio::net::TcpStream {
    let authority = url.trim_start_matches("http://").trim_end_matches("/mcp");
    tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect")
}

/// Sends one request on a fresh connection and returns the status line.
async fn status_of(url: &str, request: &str) -> String {
    let mut s = raw(url).await;
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

fn post(headers: &str, body: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n{headers}\r\n{body}"
    )
}

/// More idle, half-sent and never-finished connections than the limit:
/// the stalled ones are closed by the header and body timeouts, and the
/// server goes on answering.
#[tokio::test]
async fn stalled_connections_beyond_the_limit_do_not_stop_the_server() {
    let Serve { url, mut child } = Serve::start(&[
        "--max-connections",
        "4",
        "--header-timeout-ms",
        "300",
        "--body-timeout-ms",
        "300",
    ])
    .await;
    let mut held = Vec::new();
    for i in 0..8 {
        let mut s = raw(&url).await;
        match i % 3 {
            // Idle: says nothing.
            0 => {}
            // Half its headers.
            1 => s
                .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127")
                .await
                .expect("write"),
            // Headers promising a body that never comes.
            _ => s
                .write_all(post("Content-Length: 100\r\n", "{").as_bytes())
                .await
                .expect("write"),
        }
        held.push(s);
    }
    let line = status_of(
        &url,
        &post(&format!("Content-Length: {}\r\n", INIT.len()), INIT),
    )
    .await;
    assert!(line.contains("200"), "{line}");
    drop(held);
    child.kill().await.expect("kill serve");
}

/// A body declared larger than the limit is refused with 413 at once; a
/// broken chunked body is 400, not "too large".
#[tokio::test]
async fn oversized_bodies_are_413_and_malformed_ones_400() {
    let Serve { url, mut child } = Serve::start(&[]).await;
    let line = status_of(&url, &post("Content-Length: 1000000000\r\n", "")).await;
    assert!(line.contains("413"), "{line}");
    let line = status_of(
        &url,
        &post(
            "Transfer-Encoding: chunked\r\n",
            "zz\r\nnot hex\r\n0\r\n\r\n",
        ),
    )
    .await;
    assert!(line.contains("400"), "{line}");
    child.kill().await.expect("kill serve");
}
