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
