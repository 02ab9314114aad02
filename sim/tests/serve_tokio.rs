//! The same simulated server on real loopback TCP (`tokio::net::TcpListener`
//! on 127.0.0.1, an ephemeral port), as `mcp-sim serve` runs it, against the
//! library's real client over `TcpDialer`. Nothing leaves the machine.

use std::sync::Arc;

use serde_json::json;

use mcp_session::transport::{HttpConfig, HttpConnector, Operation, TcpDialer};
use mcp_session::{Clock, ManagerBuilder, Mode, SessionConfig, TokioClock};
use mcp_sim::server::{Server, ServerConfig, ServerEvent};

#[tokio::test]
async fn one_lifecycle_over_loopback_tcp() {
    let server = Server::new(ServerConfig {
        seed: 1,
        sse_ratio: 0.5,
        notifications_before_response: 1,
        split_chunks: 3,
        ..ServerConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener).await }
    });

    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let http = HttpConfig {
        connect_timeout_ms: 2_000,
        request_timeout_ms: 2_000,
        close_timeout_ms: 2_000,
        ..HttpConfig::new(format!("http://{addr}/mcp"))
    };
    let connector = HttpConnector::new(TcpDialer, http, clock.clone()).expect("valid URL");
    let m = ManagerBuilder::new(SessionConfig::with_mode(Mode::Reuse))
        .clock(clock)
        .start(connector)
        .expect("valid config");

    let mut lease = m.acquire(1).await.expect("acquire");
    assert_eq!(lease.info().protocol_version, "2025-11-25");
    let list = lease
        .call(&Operation::ToolsList { cursor: None })
        .await
        .expect("tools/list")
        .to_value();
    assert_eq!(list["tools"].as_array().map(Vec::len), Some(4), "{list}");
    let r = lease
        .call(&Operation::ToolsCall {
            name: "echo".into(),
            arguments: json!({ "text": "over loopback" }),
        })
        .await
        .expect("tools/call");
    assert_eq!(r.text(), "over loopback");
    // The default era, `auto`, probed first and fell back: the simulated
    // server speaks only the legacy era.
    assert_eq!(m.era(), Some(mcp_session::SessionEra::Legacy));
    let eras = m.metrics().eras;
    assert_eq!((eras.discover_probes, eras.fallbacks_to_legacy), (1, 1));
    let id = lease.id().to_owned();
    lease.release();
    m.close().await;

    assert_eq!(m.metrics().total_created, 1);
    let events: Vec<ServerEvent> = server.events().into_iter().map(|s| s.event).collect();
    // Outside a simulation a request names no client host.
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Deleted {
        session,
        from: None,
        ..
    } if *session == id)));
    assert!(server.live_sessions().is_empty(), "{events:#?}");
    serving.abort();
}

/// One raw HTTP/1.1 exchange on a fresh connection (`connection: close`,
/// read to the end): the status, the head, and the body.
async fn exchange(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().expect("a status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

const POST: [(&str, &str); 2] = [
    ("content-type", "application/json"),
    ("accept", "application/json, text/event-stream"),
];

fn init(version: &str) -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}},
    })
    .to_string()
}

fn body_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// The Streamable HTTP rules, one raw request each, over loopback.
#[tokio::test]
async fn protocol_rules_over_raw_http() {
    let server = Server::new(ServerConfig {
        seed: 4,
        sse_ratio: 0.0,
        max_sessions: Some(2),
        ..ServerConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener).await }
    });
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;

    // Version negotiation: a revision it speaks comes back; another gets
    // the latest. Each initialize makes a session.
    let (status, head, body) = exchange(addr, "POST", "/mcp", &POST, &init("2024-11-05")).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("mcp-session-id: srv-1\r\n"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        !head.contains("\r\ndate:"),
        "no Date from the real clock: {head}"
    );
    assert_eq!(body_json(&body)["result"]["protocolVersion"], "2024-11-05");
    let (_, head, body) = exchange(addr, "POST", "/mcp", &POST, &init("1999-01-01")).await;
    assert!(head.contains("mcp-session-id: srv-2\r\n"), "{head}");
    assert_eq!(body_json(&body)["result"]["protocolVersion"], "2025-11-25");
    // max_sessions = 2: the third initialize is refused.
    let (status, _, _) = exchange(addr, "POST", "/mcp", &POST, &init("2025-11-25")).await;
    assert_eq!(status, 503);

    let s1 = [POST[0], POST[1], ("mcp-session-id", "srv-1")];
    let (status, _, body) = exchange(addr, "POST", "/mcp", &s1, ping).await;
    assert_eq!(
        (status, body_json(&body)["result"].clone()),
        (200, json!({}))
    );
    let unknown = r#"{"jsonrpc":"2.0","id":3,"method":"resources/list"}"#;
    let (_, _, body) = exchange(addr, "POST", "/mcp", &s1, unknown).await;
    assert_eq!(body_json(&body)["error"]["code"], -32601);
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (status, _, body) = exchange(addr, "POST", "/mcp", &s1, note).await;
    assert_eq!((status, body.as_str()), (202, ""));
    let bad_version = [s1[0], s1[1], s1[2], ("mcp-protocol-version", "1999-01-01")];
    let (status, _, _) = exchange(addr, "POST", "/mcp", &bad_version, ping).await;
    assert_eq!(status, 400);

    // Refusals at the HTTP level.
    let (status, head, _) =
        exchange(addr, "GET", "/mcp", &[("accept", "text/event-stream")], "").await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: post, delete"), "{head}");
    let (status, _, _) = exchange(addr, "POST", "/mcp", &POST, ping).await;
    assert_eq!(status, 400, "no session id");
    let json_only = [POST[0], ("accept", "application/json"), s1[2]];
    let (status, _, _) = exchange(addr, "POST", "/mcp", &json_only, ping).await;
    assert_eq!(status, 406);
    let text = [("content-type", "text/plain"), POST[1], s1[2]];
    let (status, _, _) = exchange(addr, "POST", "/mcp", &text, ping).await;
    assert_eq!(status, 415);
    let (status, _, body) = exchange(addr, "POST", "/mcp", &s1, "{oops").await;
    assert_eq!(
        (status, body_json(&body)["error"]["code"].clone()),
        (400, json!(-32700))
    );
    let (status, _, _) = exchange(addr, "POST", "/other", &s1, ping).await;
    assert_eq!(status, 404);

    // DELETE ends the session; then it is unknown.
    let (status, _, _) = exchange(addr, "DELETE", "/mcp", &[s1[2]], "").await;
    assert_eq!(status, 200);
    let (status, _, _) = exchange(addr, "DELETE", "/mcp", &[s1[2]], "").await;
    assert_eq!(status, 404);
    let (status, _, _) = exchange(addr, "POST", "/mcp", &s1, ping).await;
    assert_eq!(status, 404);
    assert_eq!(server.live_sessions(), ["srv-2"]);
    serving.abort();
}
