//! Tools that ask the client in the middle of a call (`test_sampling`,
//! `test_elicitation` and the SEP-1034/SEP-1330 elicitation fixtures),
//! driven by a hand-written HTTP/1.1 client: POST `tools/call`, read the
//! server's request off the call's SSE stream, POST the response on the
//! same session (another connection), read the call's result off the
//! stream.
//!
//! On loopback TCP (tokio) for the plain exchanges, and inside turmoil
//! for everything that depends on time (the timeout when the client never
//! answers), where the wait is simulated time, exact and instant. The
//! stateless era asks for the same input through MRTR instead.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use mcp_sim::server::{Server, ServerConfig, ServerEra, ServerEvent, Stamped};

// ---------------------------------------------------------- a raw client --

/// One HTTP/1.1 connection, read as the answer arrives.
struct Conn<S> {
    io: S,
    buf: Vec<u8>,
}

/// An answer's head: the status, the lower-cased head, whether the body
/// is chunked, and its `content-length`.
struct Head {
    status: u16,
    text: String,
    chunked: bool,
    length: usize,
}

impl Head {
    /// A header's value (name lower-case), if present.
    fn header(&self, name: &str) -> Option<String> {
        self.text.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(io: S) -> Self {
        Conn {
            io,
            buf: Vec::new(),
        }
    }

    /// Sends a POST of `body` to `/mcp`, on `session` if given.
    async fn post(&mut self, session: Option<&str>, body: &Value) {
        let body = body.to_string();
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
             content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
             content-length: {}\r\n",
            body.len()
        );
        if let Some(s) = session {
            req.push_str(&format!(
                "mcp-session-id: {s}\r\nmcp-protocol-version: 2025-11-25\r\n"
            ));
        }
        req.push_str("\r\n");
        req.push_str(&body);
        self.io.write_all(req.as_bytes()).await.expect("write");
    }

    /// Reads more bytes; panics if the connection closed.
    async fn more(&mut self) {
        let mut b = [0u8; 4096];
        let n = self.io.read(&mut b).await.expect("read");
        assert!(
            n > 0,
            "closed early: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.buf.extend_from_slice(&b[..n]);
    }

    async fn head(&mut self) -> Head {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&self.buf[..i]).to_ascii_lowercase();
                self.buf.drain(..i + 4);
                let mut head = Head {
                    status: text[9..12].parse().expect("a status"),
                    chunked: text.contains("transfer-encoding: chunked"),
                    length: 0,
                    text,
                };
                head.length = head
                    .header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                return head;
            }
            self.more().await;
        }
    }

    /// The next chunk's data (`None`: the last chunk).
    async fn chunk(&mut self) -> Option<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&self.buf[..i]).trim(), 16)
                        .expect("a chunk size");
                if self.buf.len() >= i + 2 + size + 2 {
                    let data = String::from_utf8_lossy(&self.buf[i + 2..i + 2 + size]).into_owned();
                    self.buf.drain(..i + 2 + size + 2);
                    return (size > 0).then_some(data);
                }
            }
            self.more().await;
        }
    }

    /// A whole answer: its head and body.
    async fn answer(&mut self) -> (Head, String) {
        let head = self.head().await;
        let mut body = String::new();
        if head.chunked {
            while let Some(data) = self.chunk().await {
                body.push_str(&data);
            }
        } else {
            while self.buf.len() < head.length {
                self.more().await;
            }
            body = String::from_utf8_lossy(&self.buf[..head.length]).into_owned();
        }
        (head, body)
    }

    /// Reads an SSE body until its next JSON-RPC message (skipping the
    /// priming event and notifications when `skip_notes`).
    async fn message(&mut self, pending: &mut String, skip_notes: bool) -> Value {
        loop {
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if data.trim().is_empty() {
                    continue;
                }
                let msg: Value = serde_json::from_str(&data).expect("an SSE message");
                if skip_notes && msg.get("method").is_some() && msg.get("id").is_none() {
                    continue;
                }
                return msg;
            }
            match self.chunk().await {
                Some(data) => pending.push_str(&data),
                None => panic!("the stream ended; left: {pending:?}"),
            }
        }
    }
}

/// The JSON-RPC message of an answer body (JSON, or the last SSE data).
fn message(head: &Head, body: &str) -> Value {
    let text = if head.text.contains("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .rfind(|d| !d.trim().is_empty())
            .unwrap_or("")
    } else {
        body
    };
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// How a client reaches the server.
trait Dial {
    type Io: AsyncRead + AsyncWrite + Unpin;
    async fn dial(&self) -> Conn<Self::Io>;
}

struct Loopback(SocketAddr);

impl Dial for Loopback {
    type Io = tokio::net::TcpStream;
    async fn dial(&self) -> Conn<Self::Io> {
        Conn::new(
            tokio::net::TcpStream::connect(self.0)
                .await
                .expect("connect"),
        )
    }
}

struct Turmoil;

impl Dial for Turmoil {
    type Io = turmoil::net::TcpStream;
    async fn dial(&self) -> Conn<Self::Io> {
        Conn::new(
            turmoil::net::TcpStream::connect(("server", 8080))
                .await
                .expect("connect"),
        )
    }
}

/// One whole exchange on a fresh connection.
async fn exchange<D: Dial>(d: &D, session: Option<&str>, body: Value) -> (Head, String) {
    let mut c = d.dial().await;
    c.post(session, &body).await;
    c.answer().await
}

/// `initialize` (declaring `capabilities`) and `notifications/initialized`:
/// the session id.
async fn open<D: Dial>(d: &D, capabilities: Value) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": capabilities,
        "clientInfo": {"name": "raw", "version": "0"}}});
    let (head, _) = exchange(d, None, init).await;
    assert_eq!(head.status, 200, "{}", head.text);
    let session = head.header("mcp-session-id").expect("a session id");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (head, _) = exchange(d, Some(&session), note).await;
    assert_eq!(head.status, 202);
    session
}

/// The capabilities the conformance suite's client declares.
fn both() -> Value {
    json!({"sampling": {}, "elicitation": {}})
}

/// A `tools/call` of `tool` with `arguments`, id `id`.
fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

/// A call that asks the client: the open stream (head read), what is left
/// of its body, and the server's request.
async fn ask<D: Dial>(
    d: &D,
    session: &str,
    id: u64,
    tool: &str,
    arguments: Value,
) -> (Conn<D::Io>, String, Value) {
    let mut stream = d.dial().await;
    stream.post(Some(session), &call(id, tool, arguments)).await;
    let head = stream.head().await;
    assert_eq!(head.status, 200, "{}", head.text);
    assert!(head.text.contains("text/event-stream"), "{}", head.text);
    let mut pending = String::new();
    let request = stream.message(&mut pending, true).await;
    (stream, pending, request)
}

/// POSTs the client's response `msg` on `session`; returns the status.
async fn respond<D: Dial>(d: &D, session: &str, msg: Value) -> u16 {
    exchange(d, Some(session), msg).await.0.status
}

fn text(result: &Value) -> &str {
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
}

fn events(server: &Server) -> Vec<ServerEvent> {
    server.events().into_iter().map(|s| s.event).collect()
}

// -------------------------------------------------------------- loopback --

/// A conformance server (`serve`'s settings) on an ephemeral loopback
/// port.
async fn loopback(era: ServerEra) -> (Server, Loopback, tokio::task::JoinHandle<()>) {
    let server = Server::new(ServerConfig {
        seed: 1,
        sse_ratio: 0.5,
        notifications_before_response: 1,
        split_chunks: 3,
        conformance_tools: true,
        sse_priming: true,
        era,
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
    (server, Loopback(addr), serving)
}

#[tokio::test]
async fn sampling_asks_on_the_calls_stream_and_quotes_the_answer() {
    let (server, d, serving) = loopback(ServerEra::Dual).await;
    let session = open(&d, both()).await;
    let (mut stream, mut pending, request) = ask(
        &d,
        &session,
        7,
        "test_sampling",
        json!({"prompt": "What is the capital of France?"}),
    )
    .await;
    assert_eq!(request["method"], "sampling/createMessage");
    assert_eq!(request["id"], 1, "ids count per session from 1: {request}");
    assert_eq!(
        request["params"]["messages"][0]["content"]["text"],
        "What is the capital of France?"
    );
    assert_eq!(request["params"]["maxTokens"], 100);
    let answer = json!({"jsonrpc": "2.0", "id": 1, "result": {"role": "assistant",
        "content": {"type": "text", "text": "Paris"}, "model": "test-model", "stopReason": "endTurn"}});
    assert_eq!(respond(&d, &session, answer).await, 202);
    let result = stream.message(&mut pending, true).await;
    assert_eq!(result["id"], 7);
    assert_eq!(text(&result), "LLM response: Paris");
    assert!(result["result"].get("isError").is_none(), "{result}");
    assert_eq!(
        stream.chunk().await,
        None,
        "the stream ends with the result"
    );

    // A second request on the session takes the next id.
    let (_stream, _, again) = ask(&d, &session, 8, "test_sampling", json!({"prompt": "?"})).await;
    assert_eq!(again["id"], 2);

    let ev = events(&server);
    assert!(ev.contains(&ServerEvent::ClientRequestSent {
        session: session.clone(),
        id: 1,
        method: "sampling/createMessage".into(),
        tool: "test_sampling".into(),
    }));
    assert!(ev.contains(&ServerEvent::ClientRequestAnswered {
        session: session.clone(),
        id: 1,
        error: None,
    }));
    serving.abort();
}

#[tokio::test]
async fn the_elicitation_tools_send_their_forms_and_quote_the_answer() {
    let (_server, d, serving) = loopback(ServerEra::Legacy).await;
    let session = open(&d, both()).await;
    let cases = [
        (
            "test_elicitation",
            json!({"message": "Please provide your information"}),
            json!({"username": "testuser", "email": "test@example.com"}),
            "User response: action=accept, content=",
        ),
        (
            "test_elicitation_sep1034_defaults",
            json!({}),
            json!({"name": "Jane Smith", "age": 25, "score": 88, "status": "inactive", "verified": false}),
            "Elicitation completed: action=accept, content=",
        ),
        (
            "test_elicitation_sep1330_enums",
            json!({}),
            json!({"untitledSingle": "option1", "titledSingle": "value1", "legacyEnum": "opt1",
                   "untitledMulti": ["option1", "option2"], "titledMulti": ["value1", "value2"]}),
            "Elicitation completed: action=accept, content=",
        ),
    ];
    for (n, (tool, args, content, lead)) in cases.into_iter().enumerate() {
        let call_id = 10 + n as u64;
        let (mut stream, mut pending, request) = ask(&d, &session, call_id, tool, args).await;
        assert_eq!(request["method"], "elicitation/create", "{tool}");
        let schema = &request["params"]["requestedSchema"];
        assert_eq!(schema["type"], "object", "{tool}");
        let props = &schema["properties"];
        match tool {
            "test_elicitation" => {
                assert_eq!(
                    request["params"]["message"],
                    "Please provide your information"
                );
                assert_eq!(schema["required"], json!(["username", "email"]));
            }
            "test_elicitation_sep1034_defaults" => {
                assert_eq!(props["name"]["default"], "John Doe");
                assert_eq!(props["age"]["default"], 30);
                assert_eq!(props["score"]["default"], 95.5);
                assert_eq!(props["status"]["default"], "active");
                assert_eq!(props["verified"]["default"], true);
            }
            _ => {
                assert!(props["untitledSingle"]["enum"].is_array());
                assert!(props["titledSingle"]["oneOf"].is_array());
                assert!(props["legacyEnum"]["enumNames"].is_array());
                assert_eq!(props["untitledMulti"]["type"], "array");
                assert!(props["titledMulti"]["items"]["anyOf"].is_array());
            }
        }
        let id = request["id"].clone();
        let answer = json!({"jsonrpc": "2.0", "id": id,
                            "result": {"action": "accept", "content": content}});
        assert_eq!(respond(&d, &session, answer).await, 202);
        let result = stream.message(&mut pending, true).await;
        assert_eq!(result["id"], call_id);
        assert_eq!(text(&result), format!("{lead}{content}"), "{tool}");
    }
    serving.abort();
}

#[tokio::test]
async fn a_client_without_the_capability_gets_an_error_result_and_no_request() {
    let (server, d, serving) = loopback(ServerEra::Legacy).await;
    let session = open(&d, json!({"elicitation": {}})).await;
    let (head, body) = exchange(
        &d,
        Some(&session),
        call(3, "test_sampling", json!({"prompt": "p"})),
    )
    .await;
    let result = message(&head, &body);
    assert_eq!(result["result"]["isError"], true, "{result}");
    assert!(text(&result).contains("sampling capability"), "{result}");
    // A missing argument is invalid params.
    let (head, body) = exchange(&d, Some(&session), call(4, "test_elicitation", json!({}))).await;
    assert_eq!(message(&head, &body)["error"]["code"], -32602);
    assert!(!events(&server)
        .iter()
        .any(|e| matches!(e, ServerEvent::ClientRequestSent { .. })));
    serving.abort();
}

/// Sends the bytes of a whole request; the answer's JSON-RPC message.
async fn raw(d: &Loopback, request: String) -> Value {
    let mut c = d.dial().await;
    c.io.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = c.answer().await;
    message(&head, &body)
}

#[tokio::test]
async fn the_stateless_era_asks_through_an_input_required_result() {
    let (server, d, serving) = loopback(ServerEra::Dual).await;
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
                      "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"}});
    let post = |id: u64, extra: Value| {
        let mut params = json!({"name": "test_elicitation",
                                "arguments": {"message": "Who are you?"}, "_meta": meta});
        if let (Value::Object(p), Value::Object(e)) = (&mut params, extra) {
            p.extend(e);
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
            .to_string();
        format!(
            "POST /mcp HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
             content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
             mcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\n\
             mcp-name: test_elicitation\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let first = raw(&d, post(1, json!({}))).await;
    let r = &first["result"];
    assert_eq!(r["resultType"], "input_required", "{first}");
    assert_eq!(
        r["inputRequests"]["elicitation"]["method"],
        "elicitation/create"
    );
    let retry = json!({"inputResponses": {"elicitation":
        {"action": "accept", "content": {"username": "u", "email": "e"}}}});
    let done = raw(&d, post(2, retry)).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(
        text(&done).starts_with("User response: action=accept"),
        "{done}"
    );
    assert!(!events(&server)
        .iter()
        .any(|e| matches!(e, ServerEvent::ClientRequestSent { .. })));
    serving.abort();
}

// --------------------------------------------------------------- turmoil --

/// A turmoil world serving a conformance server on `server:8080`, whose
/// requests to clients wait `timeout`; `client` runs as host `client`.
/// Returns the server's log.
fn in_turmoil<F, Fut>(seed: u64, timeout: Duration, client: F) -> Vec<Stamped>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = turmoil::Result> + 'static,
{
    let server = Server::new(ServerConfig {
        seed,
        sse_ratio: 0.5,
        conformance_tools: true,
        ..ServerConfig::default()
    });
    server.set_client_request_timeout(timeout);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120))
        .build();
    let handle = server.clone();
    sim.host("server", move || {
        let server = handle.clone();
        async move {
            let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 8080)).await?;
            server.serve(listener).await?;
            Ok(())
        }
    });
    sim.client("client", client());
    sim.run().expect("the simulation");
    server.events()
}

#[test]
fn a_client_that_never_answers_times_the_call_out_on_simulated_time() {
    let log = in_turmoil(5, Duration::from_secs(30), || async {
        let d = Turmoil;
        let session = open(&d, both()).await;
        let asked_at = tokio::time::Instant::now();
        let (mut stream, mut pending, request) =
            ask(&d, &session, 1, "test_sampling", json!({"prompt": "p"})).await;
        let result = stream.message(&mut pending, true).await;
        let waited = asked_at.elapsed();
        assert!(
            waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
            "{waited:?}"
        );
        assert_eq!(result["result"]["isError"], true, "{result}");
        assert!(text(&result).contains("within 30000 ms"), "{result}");
        // Too late: accepted, matched to nothing.
        let late = json!({"jsonrpc": "2.0", "id": request["id"], "result": {
            "role": "assistant", "content": {"type": "text", "text": "late"}, "model": "m"}});
        assert_eq!(respond(&d, &session, late).await, 202);
        Ok(())
    });
    let timed_out = log
        .iter()
        .find(|s| matches!(s.event, ServerEvent::ClientRequestTimedOut { .. }))
        .expect("a timeout");
    let sent = log
        .iter()
        .find(|s| matches!(s.event, ServerEvent::ClientRequestSent { .. }))
        .expect("a request");
    assert_eq!(timed_out.at_ms - sent.at_ms, 30_000, "{log:#?}");
    assert!(matches!(
        &timed_out.event,
        ServerEvent::ClientRequestTimedOut {
            id: 1,
            waited_ms: 30_000,
            ..
        }
    ));
    assert!(log.iter().any(|s| matches!(
        &s.event,
        ServerEvent::ClientResponseUnmatched { id, .. } if id == "1"
    )));
    assert!(!log
        .iter()
        .any(|s| matches!(s.event, ServerEvent::ClientRequestAnswered { .. })));
}

/// The wrong-id exchange: a response with another id, one with the id as
/// a string, then the right one.
async fn wrong_then_right() -> turmoil::Result {
    let d = Turmoil;
    let session = open(&d, both()).await;
    let (mut stream, mut pending, request) =
        ask(&d, &session, 1, "test_elicitation", json!({"message": "m"})).await;
    assert_eq!(request["id"], 1);
    let answer = |id: Value| {
        json!({"jsonrpc": "2.0", "id": id, "result": {"action": "accept",
               "content": {"username": "u", "email": "e"}}})
    };
    assert_eq!(respond(&d, &session, answer(json!(2))).await, 202);
    assert_eq!(respond(&d, &session, answer(json!("1"))).await, 202);
    // Still waiting a second later: nothing came on the stream.
    let waiting =
        tokio::time::timeout(Duration::from_secs(1), stream.message(&mut pending, true)).await;
    assert!(waiting.is_err(), "{waiting:?}");
    assert_eq!(respond(&d, &session, answer(json!(1))).await, 202);
    let result = stream.message(&mut pending, true).await;
    assert!(
        text(&result).starts_with("User response: action=accept"),
        "{result}"
    );
    Ok(())
}

#[test]
fn a_response_with_a_wrong_id_is_unmatched_and_the_call_keeps_waiting() {
    let log = in_turmoil(6, Duration::from_secs(30), wrong_then_right);
    let unmatched: Vec<&str> = log
        .iter()
        .filter_map(|s| match &s.event {
            ServerEvent::ClientResponseUnmatched { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(unmatched, ["2", "\"1\""]);
    assert!(log.iter().any(|s| matches!(
        &s.event,
        ServerEvent::ClientRequestAnswered {
            id: 1,
            error: None,
            ..
        }
    )));
    assert!(!log
        .iter()
        .any(|s| matches!(s.event, ServerEvent::ClientRequestTimedOut { .. })));
}

#[test]
fn a_client_error_ends_the_call_with_an_error_result() {
    let log = in_turmoil(7, Duration::from_secs(30), || async {
        let d = Turmoil;
        let session = open(&d, both()).await;
        let (mut stream, mut pending, request) =
            ask(&d, &session, 1, "test_sampling", json!({"prompt": "p"})).await;
        let refusal = json!({"jsonrpc": "2.0", "id": request["id"],
                             "error": {"code": -1, "message": "User rejected sampling request"}});
        assert_eq!(respond(&d, &session, refusal).await, 202);
        let result = stream.message(&mut pending, true).await;
        assert_eq!(result["result"]["isError"], true, "{result}");
        assert!(text(&result).contains("User rejected"), "{result}");
        Ok(())
    });
    assert!(log.iter().any(|s| matches!(
        &s.event,
        ServerEvent::ClientRequestAnswered {
            error: Some(-1),
            ..
        }
    )));
}

#[test]
fn the_same_seed_gives_the_same_log() {
    let run = || {
        let log = in_turmoil(8, Duration::from_secs(30), wrong_then_right);
        serde_json::to_string(&log).unwrap()
    };
    assert_eq!(run(), run());
}
