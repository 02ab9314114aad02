//! The simulated server's eras on loopback TCP: the stateless era's
//! validation ladder rung by rung (raw HTTP/1.1), the dual server's
//! header routing, the legacy personality's answer to a modern request,
//! resources/prompts/completion and the MRTR fixtures in both eras, a
//! `subscriptions/listen` stream, and the library's real client in every
//! mode and era against every personality.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use mcp_session::transport::{HttpConfig, HttpConnector, Operation, TcpDialer};
use mcp_session::{Clock, Era, ManagerBuilder, Mode, SessionConfig, SessionEra, TokioClock};
use mcp_sim::server::{Server, ServerConfig, ServerEra};

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

/// A server of `era` (with the conformance fixtures if `fixtures`) on an
/// ephemeral loopback port.
async fn start(
    era: ServerEra,
    fixtures: bool,
) -> (Server, SocketAddr, tokio::task::JoinHandle<()>) {
    serve(ServerConfig {
        seed: 3,
        sse_ratio: 0.5,
        era,
        conformance_tools: fixtures,
        ..ServerConfig::default()
    })
    .await
}

/// A server with `config` on an ephemeral loopback port.
async fn serve(config: ServerConfig) -> (Server, SocketAddr, tokio::task::JoinHandle<()>) {
    let server = Server::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn({
        let server = server.clone();
        async move {
            let _ = server.serve(listener).await;
        }
    });
    (server, addr, serving)
}

/// An answer: status, lower-cased head, body.
struct Got {
    status: u16,
    head: String,
    body: String,
}

impl Got {
    /// The JSON-RPC message of the body (JSON, or the last SSE `data:`).
    fn msg(&self) -> Value {
        let text = match self
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .next_back()
        {
            Some(data) if self.head.contains("text/event-stream") => data,
            _ => self.body.as_str(),
        };
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    fn code(&self) -> i64 {
        self.msg()["error"]["code"].as_i64().unwrap_or_default()
    }
}

/// One raw HTTP/1.1 exchange on a fresh connection (read to the end).
async fn exchange(addr: SocketAddr, method: &str, headers: &[(&str, &str)], body: &str) -> Got {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} /mcp HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Got {
        status: head[9..12].parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body,
    }
}

/// A chunked body's data.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// The `_meta` envelope at `version`.
fn meta(version: &str) -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": version,
           "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
           "io.modelcontextprotocol/clientCapabilities": {"sampling": {}, "elicitation": {}, "roots": {}}})
}

/// A stateless-era request: body with `_meta`, and the standard headers.
async fn modern(addr: SocketAddr, id: i64, method: &str, params: Value) -> Got {
    modern_with(addr, id, method, params, &[]).await
}

/// [`modern`], with `extra` headers after the standard ones.
async fn modern_with(
    addr: SocketAddr,
    id: i64,
    method: &str,
    mut params: Value,
    extra: &[(&str, &str)],
) -> Got {
    if params.get("_meta").is_none() {
        params["_meta"] = meta(MODERN);
    }
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    let mut h = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", MODERN),
        ("mcp-method", method),
    ];
    if !name.is_empty() {
        h.push(("mcp-name", &name));
    }
    h.extend_from_slice(extra);
    exchange(addr, "POST", &h, &body).await
}

const ACCEPT_BOTH: (&str, &str) = ("accept", "application/json, text/event-stream");
const JSON_CT: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn the_ladder_rung_by_rung() {
    let (_server, addr, serving) = start(ServerEra::Modern, false).await;
    let v = ("mcp-protocol-version", MODERN);
    // 405 with Allow: POST, no body.
    let g = exchange(addr, "GET", &[v], "").await;
    assert_eq!((g.status, g.body.as_str()), (405, ""), "{}", g.head);
    assert!(g.head.contains("allow: post"), "{}", g.head);
    assert_eq!(exchange(addr, "DELETE", &[v], "").await.status, 405);
    // 406 without both media types.
    let g = exchange(
        addr,
        "POST",
        &[v, JSON_CT, ("accept", "application/json")],
        "{}",
    )
    .await;
    assert_eq!((g.status, g.body.as_str()), (406, ""));
    // 400 -32700, id null.
    let g = exchange(addr, "POST", &[v, JSON_CT, ACCEPT_BOTH], "{not json").await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32700, Value::Null)
    );
    // 202 for a notification.
    let note = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}"#;
    let g = exchange(addr, "POST", &[v, JSON_CT, ACCEPT_BOTH], note).await;
    assert_eq!((g.status, g.body.as_str()), (202, ""));
    // 400 -32602 for each missing _meta key; the id is echoed.
    for drop in [
        "io.modelcontextprotocol/protocolVersion",
        "io.modelcontextprotocol/clientCapabilities",
    ] {
        let mut m = meta(MODERN);
        m.as_object_mut().unwrap().remove(drop);
        let g = modern(addr, 11, "tools/list", json!({"_meta": m})).await;
        assert_eq!(
            (g.status, g.code(), g.msg()["id"].clone()),
            (400, -32602, json!(11)),
            "{drop}"
        );
    }
    let body =
        json!({"jsonrpc": "2.0", "id": 12, "method": "tools/list", "params": {}}).to_string();
    let g = exchange(
        addr,
        "POST",
        &[v, JSON_CT, ACCEPT_BOTH, ("mcp-method", "tools/list")],
        &body,
    )
    .await;
    assert_eq!((g.status, g.code()), (400, -32602));
    // Header 2026-07-28, body v999: -32020 before -32022.
    let g = modern(
        addr,
        13,
        "server/discover",
        json!({"_meta": meta("v999.0.0")}),
    )
    .await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32020, json!(13))
    );
    // Header and body v999: -32022 {supported, requested}.
    let body = json!({"jsonrpc": "2.0", "id": 14, "method": "server/discover",
                      "params": {"_meta": meta("v999.0.0")}})
    .to_string();
    let h = [
        JSON_CT,
        ACCEPT_BOTH,
        ("mcp-protocol-version", "v999.0.0"),
        ("mcp-method", "server/discover"),
    ];
    let g = exchange(addr, "POST", &h, &body).await;
    assert_eq!((g.status, g.code()), (400, -32022));
    assert_eq!(
        g.msg()["error"]["data"],
        json!({"supported": [MODERN], "requested": "v999.0.0"})
    );
    // A wrong Mcp-Method, a missing Mcp-Name: -32020.
    let body = json!({"jsonrpc": "2.0", "id": 15, "method": "tools/list", "params": {"_meta": meta(MODERN)}})
        .to_string();
    let g = exchange(
        addr,
        "POST",
        &[v, JSON_CT, ACCEPT_BOTH, ("mcp-method", "tools/call")],
        &body,
    )
    .await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32020, json!(15))
    );
    let body = json!({"jsonrpc": "2.0", "id": 16, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": meta(MODERN)}})
    .to_string();
    let g = exchange(
        addr,
        "POST",
        &[v, JSON_CT, ACCEPT_BOTH, ("mcp-method", "tools/call")],
        &body,
    )
    .await;
    assert_eq!((g.status, g.code()), (400, -32020));
    // 404 -32601, data = the method, for removed and unknown methods.
    for (id, method) in [
        (21, "ping"),
        (22, "initialize"),
        (23, "unknown/method"),
        (24, "logging/setLevel"),
    ] {
        let g = modern(addr, id, method, json!({})).await;
        assert_eq!(
            (g.status, g.code(), g.msg()["id"].clone()),
            (404, -32601, json!(id)),
            "{method}"
        );
        assert_eq!(g.msg()["error"]["data"], method);
    }
    // Not one request object — a batch, a posted response or error — is
    // 400 -32600 with `id: null`, whatever ids it carries.
    let request = json!({"jsonrpc": "2.0", "id": 17, "method": "tools/list",
                         "params": {"_meta": meta(MODERN)}});
    let h = [v, JSON_CT, ACCEPT_BOTH, ("mcp-method", "tools/list")];
    for body in [
        json!([request]),
        json!([request, {"jsonrpc": "2.0", "method": "notifications/cancelled"}]),
        json!({"jsonrpc": "2.0", "id": 18, "result": {}}),
        json!({"jsonrpc": "2.0", "id": 19, "error": {"code": -32000, "message": "no"}}),
    ] {
        let g = exchange(addr, "POST", &h, &body.to_string()).await;
        assert_eq!(
            (g.status, g.code(), g.msg()["id"].clone()),
            (400, -32600, Value::Null),
            "{body}"
        );
    }
    // A routing header given twice: 400 -32020, the id echoed.
    let body = request.to_string();
    let call = json!({"jsonrpc": "2.0", "id": 17, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": meta(MODERN)}})
    .to_string();
    let list = ("mcp-method", "tools/list");
    let cases = [
        ("mcp-protocol-version", vec![v, v, list], &body),
        ("mcp-method", vec![v, list, list], &body),
        (
            "mcp-name",
            vec![
                v,
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
                ("mcp-name", "echo"),
            ],
            &call,
        ),
    ];
    for (twice, mut h, body) in cases {
        h.extend([JSON_CT, ACCEPT_BOTH]);
        let g = exchange(addr, "POST", &h, body).await;
        assert_eq!(
            (g.status, g.code(), g.msg()["id"].clone()),
            (400, -32020, json!(17)),
            "{twice} twice: {}",
            g.body
        );
    }
    // A notification at a revision not served: 400 -32022, `id: null`,
    // `requested` the header's text. Without the version header (a
    // modern-only server takes it) or with it twice: 400 -32020, the
    // header rules of every POST — never `requested: null`.
    let h = [JSON_CT, ACCEPT_BOTH, ("mcp-protocol-version", "1900-01-01")];
    let g = exchange(addr, "POST", &h, note).await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32022, Value::Null)
    );
    assert_eq!(
        g.msg()["error"]["data"],
        json!({"supported": [MODERN], "requested": "1900-01-01"})
    );
    for h in [vec![JSON_CT, ACCEPT_BOTH], vec![v, v, JSON_CT, ACCEPT_BOTH]] {
        let g = exchange(addr, "POST", &h, note).await;
        assert_eq!(
            (g.status, g.code(), g.msg()["id"].clone()),
            (400, -32020, Value::Null),
            "{h:?}: {}",
            g.body
        );
        assert!(g.msg()["error"].get("data").is_none(), "{}", g.body);
    }
    // `Last-Event-ID` is ignored: the request is served afresh, in full.
    let g = modern_with(addr, 25, "tools/list", json!({}), &[("last-event-id", "3")]).await;
    assert_eq!(
        (g.status, g.msg()["id"].clone()),
        (200, json!(25)),
        "{}",
        g.body
    );
    assert!(g.msg()["result"]["tools"].is_array(), "{}", g.body);
    // A stray `Mcp-Session-Id` is ignored, and none is minted or echoed.
    let stray = [("mcp-session-id", "0123456789abcdef")];
    for (id, method) in [(26, "tools/list"), (27, "server/discover")] {
        let g = modern_with(addr, id, method, json!({}), &stray).await;
        assert_eq!(
            (g.status, g.msg()["id"].clone()),
            (200, json!(id)),
            "{}",
            g.body
        );
        assert!(!g.head.contains("mcp-session-id"), "{method}: {}", g.head);
    }
    // A served request: resultType, serverInfo, caching hints.
    let g = modern(addr, 30, "tools/list", json!({})).await;
    let r = &g.msg()["result"];
    assert_eq!(
        (g.status, &r["resultType"], &r["cacheScope"]),
        (200, &json!("complete"), &json!("private"))
    );
    assert_eq!(r["ttlMs"], 0);
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-sim"
    );
    serving.abort();
}

#[tokio::test]
async fn a_modern_only_server_refuses_initialize_naming_its_versions() {
    let (_server, addr, serving) = start(ServerEra::Modern, false).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}})
    .to_string();
    let g = exchange(addr, "POST", &[JSON_CT, ACCEPT_BOTH], &body).await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32022, json!(1))
    );
    assert_eq!(
        g.msg()["error"]["data"],
        json!({"supported": [MODERN], "requested": LEGACY})
    );
    // `requested` is a string even when the revision is missing or is not
    // one.
    for (version, requested) in [(None, ""), (Some(json!(20250618)), "20250618")] {
        let mut params = json!({"capabilities": {}, "clientInfo": {"name": "x", "version": "0"}});
        if let Some(v) = version {
            params["protocolVersion"] = v;
        }
        let body = json!({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": params})
            .to_string();
        let g = exchange(addr, "POST", &[JSON_CT, ACCEPT_BOTH], &body).await;
        assert_eq!((g.status, g.code()), (400, -32022), "{}", g.body);
        assert_eq!(
            g.msg()["error"]["data"]["requested"],
            requested,
            "{}",
            g.body
        );
    }
    serving.abort();
}

/// `initialize` on the legacy transport: the session id.
async fn legacy_session(addr: SocketAddr) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "x", "version": "0"}}})
    .to_string();
    let g = exchange(addr, "POST", &[JSON_CT, ACCEPT_BOTH], &body).await;
    assert_eq!(g.status, 200, "{}", g.body);
    let line = g
        .head
        .lines()
        .find(|l| l.starts_with("mcp-session-id:"))
        .expect("a session");
    line["mcp-session-id:".len()..].trim().to_owned()
}

/// A legacy request on `session`.
async fn legacy(addr: SocketAddr, session: &str, id: i64, method: &str, params: Value) -> Got {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
    let h = [
        JSON_CT,
        ACCEPT_BOTH,
        ("mcp-session-id", session),
        ("mcp-protocol-version", LEGACY),
    ];
    exchange(addr, "POST", &h, &body).await
}

#[tokio::test]
async fn a_dual_server_routes_by_the_version_header() {
    let (_server, addr, serving) = start(ServerEra::Dual, false).await;
    let session = legacy_session(addr).await;
    let g = modern(addr, 2, "tools/list", json!({})).await;
    assert_eq!(
        (g.status, &g.msg()["result"]["resultType"]),
        (200, &json!("complete"))
    );
    assert!(!g.head.contains("mcp-session-id"), "{}", g.head);
    // The legacy session still works beside it; ping is legacy-only.
    let g = legacy(addr, &session, 3, "ping", json!({})).await;
    assert_eq!((g.status, g.msg()["result"].clone()), (200, json!({})));
    let g = legacy(addr, &session, 4, "tools/list", json!({})).await;
    assert!(g.msg()["result"].get("resultType").is_none(), "{}", g.body);
    // initialize with the modern header goes to the modern era: 404.
    let g = modern(addr, 5, "initialize", json!({})).await;
    assert_eq!((g.status, g.code()), (404, -32601));
    // A modern request carrying the live legacy session's id is served
    // statelessly; the answer names no session.
    let g = modern_with(
        addr,
        6,
        "tools/list",
        json!({}),
        &[("mcp-session-id", &session)],
    )
    .await;
    assert_eq!(
        (g.status, &g.msg()["result"]["resultType"]),
        (200, &json!("complete"))
    );
    assert!(!g.head.contains("mcp-session-id"), "{}", g.head);
    // A notification whose version header comes twice (the first routes
    // it to the modern era): 400 -32020, not a -32022 with no `requested`.
    let note = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}"#;
    let v = ("mcp-protocol-version", MODERN);
    let g = exchange(addr, "POST", &[v, v, JSON_CT, ACCEPT_BOTH], note).await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32020, Value::Null),
        "{}",
        g.body
    );
    serving.abort();
}

#[tokio::test]
async fn a_legacy_server_answers_a_modern_request_as_typescript_does() {
    let (_server, addr, serving) = start(ServerEra::Legacy, true).await;
    let g = modern(addr, 1, "server/discover", json!({})).await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32000, Value::Null)
    );
    assert_eq!(
        g.msg()["error"]["message"],
        "Bad Request: Server not initialized"
    );
    serving.abort();
}

#[tokio::test]
async fn resources_prompts_and_completion_in_the_legacy_era() {
    let (_server, addr, serving) = start(ServerEra::Legacy, true).await;
    let s = legacy_session(addr).await;
    let r = legacy(addr, &s, 2, "resources/list", json!({})).await.msg();
    assert!(
        r["result"]["resources"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{r}"
    );
    let r = legacy(
        addr,
        &s,
        3,
        "resources/read",
        json!({"uri": "test://template/42/data"}),
    )
    .await
    .msg();
    assert!(
        r["result"]["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("42"),
        "{r}"
    );
    let g = legacy(addr, &s, 4, "resources/read", json!({"uri": "test://nope"})).await;
    assert_eq!((g.status, g.code()), (200, -32002));
    assert_eq!(g.msg()["error"]["data"]["uri"], "test://nope");
    let r = legacy(addr, &s, 5, "resources/templates/list", json!({}))
        .await
        .msg();
    assert_eq!(
        r["result"]["resourceTemplates"][0]["uriTemplate"],
        "test://template/{id}/data"
    );
    let r = legacy(
        addr,
        &s,
        6,
        "resources/subscribe",
        json!({"uri": "test://watched-resource"}),
    )
    .await
    .msg();
    assert_eq!(r["result"], json!({}));
    let r = legacy(
        addr,
        &s,
        7,
        "prompts/get",
        json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "A", "arg2": "B"}}),
    )
    .await
    .msg();
    assert_eq!(
        r["result"]["messages"][0]["content"]["text"],
        "Prompt with arguments: arg1='A', arg2='B'"
    );
    let r = legacy(addr, &s, 8, "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "test_prompt_with_arguments"}, "argument": {"name": "arg1", "value": "par"}})).await.msg();
    assert_eq!(
        r["result"]["completion"]["values"],
        json!(["paris", "park", "party"])
    );
    // Progress notifications come on an SSE answer before the result.
    let g = legacy(addr, &s, 9, "tools/call",
        json!({"name": "test_tool_with_progress", "arguments": {}, "_meta": {"progressToken": "t"}})).await;
    assert!(g.head.contains("text/event-stream"), "{}", g.head);
    assert_eq!(
        g.body.matches("notifications/progress").count(),
        3,
        "{}",
        g.body
    );
    serving.abort();
}

#[tokio::test]
async fn resources_prompts_completion_and_mrtr_in_the_stateless_era() {
    let (_server, addr, serving) = start(ServerEra::Dual, true).await;
    let g = modern(addr, 1, "server/discover", json!({})).await;
    let caps = &g.msg()["result"]["capabilities"];
    assert!(
        caps["resources"].is_object()
            && caps["prompts"].is_object()
            && caps["completions"].is_object(),
        "{caps}"
    );
    for method in ["resources/list", "resources/templates/list", "prompts/list"] {
        let r = modern(addr, 2, method, json!({})).await.msg();
        assert_eq!(
            (&r["result"]["ttlMs"], &r["result"]["cacheScope"]),
            (&json!(0), &json!("private")),
            "{method}"
        );
    }
    let r = modern(
        addr,
        3,
        "resources/read",
        json!({"uri": "test://static-text"}),
    )
    .await
    .msg();
    assert_eq!(r["result"]["cacheScope"], "private");
    let g = modern(addr, 4, "resources/read", json!({"uri": "test://nope"})).await;
    assert_eq!(
        (g.status, g.code(), g.msg()["id"].clone()),
        (400, -32602, json!(4))
    );
    assert_eq!(g.msg()["error"]["data"], json!({"uri": "test://nope"}));
    let g = modern(addr, 5, "prompts/get", json!({"name": "nope"})).await;
    assert_eq!((g.status, g.code()), (400, -32602));
    let r = modern(addr, 6, "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "a", "value": "te"}})).await.msg();
    assert_eq!(
        r["result"]["completion"]["values"],
        json!(["test", "testing", "tested"])
    );
    for (id, method) in [(7, "resources/subscribe"), (8, "resources/unsubscribe")] {
        let g = modern(addr, id, method, json!({"uri": "test://watched-resource"})).await;
        assert_eq!((g.status, g.code()), (404, -32601), "{method}");
    }
    // test_missing_capability without sampling: 400 -32021.
    let mut m = meta(MODERN);
    m["io.modelcontextprotocol/clientCapabilities"] = json!({});
    let g = modern(
        addr,
        9,
        "tools/call",
        json!({"name": "test_missing_capability", "arguments": {}, "_meta": m}),
    )
    .await;
    assert_eq!((g.status, g.code()), (400, -32021));
    assert_eq!(
        g.msg()["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );
    // MRTR: input_required with a requestState, then complete on the retry.
    let tool = "test_input_required_result_request_state";
    let r = modern(
        addr,
        10,
        "tools/call",
        json!({"name": tool, "arguments": {}}),
    )
    .await
    .msg();
    let r = &r["result"];
    assert_eq!(r["resultType"], "input_required");
    assert!(r.get("ttlMs").is_none(), "{r}");
    let state = r["requestState"].clone();
    let retry = json!({"name": tool, "arguments": {}, "requestState": state,
        "inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}}});
    let r = modern(addr, 11, "tools/call", retry.clone()).await.msg();
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("state-ok"),
        "{r}"
    );
    let mut tampered = retry;
    tampered["requestState"] = json!(format!("{}-TAMPERED", state.as_str().unwrap()));
    let g = modern(addr, 12, "tools/call", tampered).await;
    assert_eq!((g.status, g.code()), (400, -32602));
    serving.abort();
}

/// The wire log: each request routed to the stateless era is logged as it
/// arrived (headers, envelope, what it names, a session id, a
/// `requestState`), numbered, and its answer names that number with
/// whether it asked for input and the state it issued.
#[tokio::test]
async fn the_wire_log_records_what_each_stateless_request_carried() {
    use mcp_sim::server::ServerEvent;
    let (server, addr, serving) = start(ServerEra::Dual, true).await;
    let tool = "test_input_required_result_request_state";
    let r = modern(
        addr,
        10,
        "tools/call",
        json!({"name": tool, "arguments": {}}),
    )
    .await
    .msg();
    let state = r["result"]["requestState"].clone();
    assert!(state.is_string(), "{r}");
    // The retry, its name as the base64 sentinel and a stray session id.
    let body = json!({"jsonrpc": "2.0", "id": "r-11", "method": "tools/call", "params": {
        "name": tool, "arguments": {}, "requestState": state,
        "inputResponses": {"confirm": {"action": "accept", "content": {"ok": true}}},
        "_meta": meta(MODERN)}})
    .to_string();
    let sentinel = format!(
        "=?base64?{}?=",
        "dGVzdF9pbnB1dF9yZXF1aXJlZF9yZXN1bHRfcmVxdWVzdF9zdGF0ZQ=="
    );
    let h = [
        JSON_CT,
        ACCEPT_BOTH,
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", sentinel.as_str()),
        ("mcp-session-id", "stray"),
    ];
    assert_eq!(exchange(addr, "POST", &h, &body).await.status, 200);
    // A legacy request to the dual server is not a stateless one.
    let _ = exchange(addr, "DELETE", &[("mcp-session-id", "srv-9")], "").await;
    serving.abort();
    let events: Vec<ServerEvent> = server.events().into_iter().map(|s| s.event).collect();
    let wires: Vec<&ServerEvent> = events
        .iter()
        .filter(|e| matches!(e, ServerEvent::StatelessWire { .. }))
        .collect();
    assert_eq!(wires.len(), 2, "{events:#?}");
    let ServerEvent::StatelessWire {
        request: first,
        from,
        http,
        id,
        method,
        meta_version,
        header_version,
        header_method,
        header_name,
        name,
        session,
        request_state,
    } = wires[0].clone()
    else {
        unreachable!()
    };
    assert_eq!((first, from, http.as_str()), (1, None, "POST"));
    assert_eq!((id, request_state), (Some(json!(10)), None));
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        (method, meta_version, header_version, header_method),
        (
            some("tools/call"),
            some(MODERN),
            some(MODERN),
            some("tools/call")
        )
    );
    assert_eq!((header_name, name, session), (some(tool), some(tool), None));
    let ServerEvent::StatelessWire {
        request: second,
        id,
        header_name,
        session,
        request_state,
        ..
    } = wires[1].clone()
    else {
        unreachable!()
    };
    assert_eq!(second, 2);
    assert_eq!((id, header_name), (Some(json!("r-11")), some(tool)));
    assert_eq!(
        (session, request_state),
        (some("stray"), Some(state.clone()))
    );
    let answers: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Answered {
                request: Some(n),
                id,
                input_required,
                request_state,
                ..
            } => Some((*n, id.clone(), *input_required, request_state.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        [
            (1, Some(json!(10)), true, Some(state)),
            (2, Some(json!("r-11")), false, None)
        ]
    );
    // The DELETE went to the legacy era: its event names no client host
    // (a real TCP peer is not named) and the request number 3 is not
    // logged anywhere.
    assert!(events.iter().any(|e| matches!(e,
        ServerEvent::UnknownSession { session, from: None, .. } if session == "srv-9")));
    // The audit reads this log alone: the retry took the state the first
    // answer issued and completed; its stray session id breaks the
    // envelope law.
    use mcp_sim::audit::{audit, AuditConfig};
    let mut trace = mcp_sim::trace::Trace::default();
    trace.push_server("server", 0, &server.events());
    let r = audit(&trace, &AuditConfig::default());
    assert_eq!(r.goals["mrtr_completed"], 1, "{:#?}", r.violations);
    let v = r.violation("modern_envelope_agrees").expect("the stray id");
    assert!(v.message.contains("Mcp-Session-Id stray"), "{}", v.message);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
}

/// Reads from `stream` until `needle` has arrived; what was read.
async fn read_until(stream: &mut tokio::net::TcpStream, got: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !got.contains(needle) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("in time")
            .unwrap();
        assert!(n > 0, "closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn a_listen_stream_acknowledges_filters_and_ends_with_its_client() {
    let (_server, addr, serving) = start(ServerEra::Modern, true).await;
    let body = json!({"jsonrpc": "2.0", "id": 77, "method": "subscriptions/listen",
        "params": {"_meta": meta(MODERN), "notifications": {"toolsListChanged": true}}})
    .to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: {MODERN}\r\n\
         mcp-method: subscriptions/listen\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut got = String::new();
    read_until(&mut stream, &mut got, "acknowledged").await;
    assert!(
        got.contains(r#""io.modelcontextprotocol/subscriptionId":77"#),
        "{got}"
    );
    // A prompt change is filtered out; a tool change comes through.
    let r = modern(
        addr,
        1,
        "tools/call",
        json!({"name": "test_trigger_prompt_change", "arguments": {}}),
    )
    .await
    .msg();
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("0 stream"),
        "{r}"
    );
    let r = modern(
        addr,
        2,
        "tools/call",
        json!({"name": "test_trigger_tool_change", "arguments": {}}),
    )
    .await
    .msg();
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("1 stream"),
        "{r}"
    );
    read_until(&mut stream, &mut got, "notifications/tools/list_changed").await;
    assert!(!got.contains("prompts/list_changed"), "{got}");
    // The client goes away: the stream is forgotten.
    drop(stream);
    let mut forgotten = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let r = modern(
            addr,
            3,
            "tools/call",
            json!({"name": "test_trigger_tool_change", "arguments": {}}),
        )
        .await
        .msg();
        if r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("0 stream")
        {
            forgotten = true;
            break;
        }
    }
    assert!(forgotten, "the stream outlived its client");
    serving.abort();
}

#[tokio::test]
async fn legacy_sse_answers_are_primed_when_asked() {
    for priming in [false, true] {
        let server = Server::new(ServerConfig {
            sse_ratio: 1.0,
            sse_priming: priming,
            ..ServerConfig::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = tokio::spawn({
            let server = server.clone();
            async move {
                let _ = server.serve(listener).await;
            }
        });
        let s = legacy_session(addr).await;
        let g = legacy(addr, &s, 2, "tools/list", json!({})).await;
        assert_eq!(
            g.body.starts_with("id: ") && g.body.contains("\nretry: 1000\ndata: \n\n"),
            priming,
            "{}",
            g.body
        );
        assert!(g.msg()["result"]["tools"].is_array());
        serving.abort();
    }
}

/// The stateless era has no event ids and no resumption (spec §6): its
/// SSE answers — log notifications, then the response — carry no `id:`
/// line, even on a server that primes its legacy streams; the legacy
/// answers of the same dual server keep theirs, which resumption needs.
#[tokio::test]
async fn stateless_sse_answers_carry_no_event_ids() {
    let (_server, addr, serving) = serve(ServerConfig {
        era: ServerEra::Dual,
        sse_ratio: 1.0,
        sse_priming: true,
        notifications_before_response: 2,
        ..ServerConfig::default()
    })
    .await;
    let lines = |g: &Got, prefix: &str| g.body.lines().filter(|l| l.starts_with(prefix)).count();
    let mut m = meta(MODERN);
    m["io.modelcontextprotocol/logLevel"] = json!("info");
    for id in [2, 3] {
        let g = modern(addr, id, "tools/list", json!({"_meta": m})).await;
        assert!(g.head.contains("text/event-stream"), "{}", g.head);
        assert_eq!(
            lines(&g, "data: "),
            3,
            "two log messages, then the response: {}",
            g.body
        );
        assert_eq!(lines(&g, "event: message"), 3, "{}", g.body);
        assert_eq!(lines(&g, "id:") + lines(&g, "retry:"), 0, "{}", g.body);
        assert_eq!(g.msg()["id"], id);
    }
    let s = legacy_session(addr).await;
    let g = legacy(addr, &s, 4, "tools/list", json!({})).await;
    assert!(g.head.contains("text/event-stream"), "{}", g.head);
    assert_eq!(lines(&g, "id: "), lines(&g, "data:"), "{}", g.body);
    assert!(lines(&g, "id: ") >= 2, "{}", g.body);
    serving.abort();
}

/// The real client, every mode, against `era` with `client` era: the era
/// it lands in, or `None` when acquiring fails.
async fn drive(server_era: ServerEra, mode: Mode, client: Era) -> Option<SessionEra> {
    let (_server, addr, serving) = start(server_era, true).await;
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    let http = HttpConfig {
        connect_timeout_ms: 2_000,
        request_timeout_ms: 2_000,
        close_timeout_ms: 2_000,
        ..HttpConfig::new(format!("http://{addr}/mcp"))
    };
    let connector = HttpConnector::new(TcpDialer, http, clock.clone()).unwrap();
    let base = match mode {
        Mode::Pool => SessionConfig::pool(2),
        mode => SessionConfig::with_mode(mode),
    };
    let m = ManagerBuilder::new(SessionConfig {
        era: client,
        ..base
    })
    .clock(clock)
    .start(connector)
    .unwrap();
    let era = match m.acquire(1).await {
        Err(_) => None,
        Ok(mut lease) => {
            let era = lease.info().era;
            let at = format!("{server_era:?} {mode} {client}");
            let r = lease
                .call(&Operation::ToolsCall {
                    name: "echo".into(),
                    arguments: json!({"text": at}),
                })
                .await
                .expect("tools/call");
            assert_eq!(r.text(), at);
            let r = lease
                .call(&Operation::ResourcesRead {
                    uri: "test://static-text".into(),
                })
                .await
                .expect("resources/read");
            assert!(r.to_value()["contents"][0]["text"].is_string(), "{at}");
            let r = lease
                .call(&Operation::PromptsGet {
                    name: "test_simple_prompt".into(),
                    arguments: json!({}),
                })
                .await
                .expect("prompts/get");
            assert!(r.to_value()["messages"].is_array(), "{at}");
            lease.release();
            Some(era)
        }
    };
    m.close().await;
    serving.abort();
    era
}

#[tokio::test]
async fn the_real_client_in_every_mode_and_era_against_every_personality() {
    use ServerEra as S;
    let pairings = [
        (S::Legacy, Era::Auto, Some(SessionEra::Legacy)),
        (S::Legacy, Era::Legacy, Some(SessionEra::Legacy)),
        (S::Legacy, Era::Modern, None),
        (S::Dual, Era::Auto, Some(SessionEra::Modern)),
        (S::Dual, Era::Legacy, Some(SessionEra::Legacy)),
        (S::Dual, Era::Modern, Some(SessionEra::Modern)),
        (S::Modern, Era::Auto, Some(SessionEra::Modern)),
        (S::Modern, Era::Legacy, None),
        (S::Modern, Era::Modern, Some(SessionEra::Modern)),
    ];
    for (server, client, want) in pairings {
        for mode in Mode::ALL {
            assert_eq!(
                drive(server, mode, client).await,
                want,
                "{server:?} {mode} {client}"
            );
        }
    }
}
