//! The simulated MCP server: Streamable HTTP (revision 2025-11-25, and
//! the older revisions' clients), generic over its listener.
//!
//! What is tested against it must pass against real servers, so it follows
//! the spec where real servers do, and can be switched to the best-known
//! quirk where they do not (the TypeScript SDK's 400 for an unknown session).
//! The rules are in `handler.rs` (request → response decisions), what goes
//! on the wire in [`encode`], the session table in [`sessions`].
//!
//! # Shape
//!
//! A [`Server`] is a cheap, cloneable handle to one server's state: its
//! config, its session table, its seeded random stream, its run-time fault
//! switches ([`hooks`]) and its event log ([`events`]). [`Server::serve`]
//! accepts connections from any [`Listener`] (turmoil's in simulation,
//! tokio's on loopback) and serves each with hyper's HTTP/1.1 server in a
//! task of its own. Tests keep a clone of the handle outside the simulation
//! to flip switches and read the log.
//!
//! # Restarts
//!
//! turmoil's crash stops the host's software and closes its sockets; bounce
//! (or a restart after a crash) runs the host closure *again*. The handle
//! outlives both, so whether sessions survive a restart is the closure's
//! decision, made on purpose: call [`Server::forget_sessions`] at the top of
//! the closure to model a server that keeps sessions in memory (every
//! client then gets 404 for its old session), or leave it out to model one
//! with a shared session store. Session ids keep counting either way, as
//! random ids would not repeat.
//!
//! ```no_run
//! use mcp_sim::server::{Server, ServerConfig};
//!
//! let server = Server::new(ServerConfig { seed: 7, ..ServerConfig::default() });
//! let mut sim = turmoil::Builder::new().rng_seed(7).build();
//! let handle = server.clone();
//! sim.host("server", move || {
//!     let server = handle.clone();
//!     async move {
//!         server.forget_sessions(); // in-memory sessions: a restart loses them
//!         let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 8080)).await?;
//!         server.serve(listener).await?;
//!         Ok(())
//!     }
//! });
//! // ... sim.client(...), sim.run(), then read server.events()
//! ```
//!
//! # Determinism
//!
//! Nothing here reads the wall clock, spawns a thread, iterates a hash map
//! or draws from an unseeded generator: time is simulated time (see
//! [`Server::elapsed_ms`]), and every random choice
//! (JSON or SSE, where a body is cut) comes from one `ChaCha8Rng` seeded
//! with [`ServerConfig::seed`], drawn in the order answers are sent. The same
//! seed and the same client behaviour give the same event log, byte for
//! byte.

mod client_requests;
pub mod encode;
pub mod events;
mod fixtures;
#[cfg(test)]
mod fuzz_tests;
mod handler;
pub mod hooks;
mod listen;
pub mod modern;
mod mrtr;
mod param_headers;
pub mod sessions;
mod time;
mod wire;

use std::convert::Infallible;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::encode::{Chunked, Format};
use self::handler::{Answer, Body, Decision, Req, Rpc};
use self::sessions::{Limits, Sessions};
use self::time::Timebase;
use crate::listener::Listener;

pub use self::client_requests::DEFAULT_CLIENT_REQUEST_TIMEOUT_MS;
pub use self::events::{ServerEvent, Stamped};
pub use self::hooks::{AnswerFault, DiscoverChange, Hooks, SessionIdFault};
pub use self::modern::ServerEra;
pub use self::sessions::ExpiryReason;

/// The protocol revisions this server speaks, oldest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The `retry:` (milliseconds) of the priming event that opens a legacy SSE
/// answer when [`ServerConfig::sse_priming`] is on.
pub const SSE_RETRY_MS: u64 = 1000;

/// The revision answered to a client that asks for one this server does not
/// speak.
pub const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";

/// How the server behaves. A plain serde value (durations in milliseconds),
/// so a simulation schedule can carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Seed of the server's random stream (answer formats, body cuts).
    pub seed: u64,
    /// The MCP endpoint's path. Default `/mcp`.
    pub path: String,
    /// Share of answers sent as SSE rather than JSON, from 0 (all JSON) to
    /// 1 (all SSE). Default 0.5.
    pub sse_ratio: f64,
    /// `notifications/message` events sent before the response in an SSE
    /// answer. Default 0.
    pub notifications_before_response: u32,
    /// Answer bodies (JSON or SSE) are cut at seeded points into at most
    /// this many pieces, each written on its own. 0 or 1: one piece.
    /// Default 1.
    pub split_chunks: u32,
    /// Server-side session time to live, from creation (`None`: forever).
    #[serde(with = "opt_ms")]
    pub session_ttl: Option<Duration>,
    /// Server-side idle limit: a session not used for this long expires
    /// (`None`: never).
    #[serde(with = "opt_ms")]
    pub session_idle: Option<Duration>,
    /// Most live sessions; `initialize` beyond it gets 503 (`None`: no
    /// limit).
    pub max_sessions: Option<usize>,
    /// Answer requests for an unknown session with the TypeScript SDK's 400
    /// "Bad Request: No valid session ID provided" instead of 404.
    pub answer_400_for_unknown_session: bool,
    /// Largest request body read, in bytes (413 beyond). Default 1 MiB.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers before its
    /// connection is closed (`None`: no limit, the simulation's default,
    /// whose clients never stall halfway; `mcp-sim serve` sets one).
    #[serde(default, with = "opt_ms")]
    pub header_read_timeout: Option<Duration>,
    /// How long a client may take to send a request's body once its
    /// headers are in; beyond it the request is answered 408 (`None`: no
    /// limit; `mcp-sim serve` sets one).
    #[serde(default, with = "opt_ms")]
    pub body_read_timeout: Option<Duration>,
    /// Most connections served at once; further ones wait in the listen
    /// backlog until one ends (`None`: no limit; `mcp-sim serve` sets one).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Refuse with 403 any request whose `Host` or `Origin` header names a
    /// host other than `localhost`, 127.0.0.0/8 or `[::1]`: the DNS
    /// rebinding protection the spec requires of servers on localhost.
    /// Off by default, because simulated hosts have names (`server`);
    /// `mcp-sim serve` turns it on.
    pub localhost_only: bool,
    /// Also offer the tools the official conformance suite's server
    /// scenarios call by name, `test_simple_text` and
    /// `test_error_handling`. Off by default, so the simulation sees only
    /// the four tools of its own; `mcp-sim serve` turns it on.
    pub conformance_tools: bool,
    /// Which eras of MCP the server speaks: `legacy` (2025-11-25 and
    /// older), `dual` (also the stateless 2026-07-28 era, routed by the
    /// `MCP-Protocol-Version` header), `modern` (2026-07-28 only). Default
    /// `legacy`; `mcp-sim serve` defaults to `dual`.
    pub era: ServerEra,
    /// `ttlMs` of the stateless era's cacheable results (`server/discover`,
    /// `tools/list`). Default 0: stale at once, as the Python SDK answers.
    pub discover_ttl_ms: u64,
    /// Open every SSE answer of the legacy era with a priming event (an
    /// event id, `retry:` and empty data), as 2025-11-25 recommends, so a
    /// cut stream can be resumed. Off by default (it changes the bytes of
    /// every SSE answer, and so the simulation's traces); `mcp-sim serve`
    /// turns it on.
    pub sse_priming: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            seed: 0,
            path: "/mcp".into(),
            sse_ratio: 0.5,
            notifications_before_response: 0,
            split_chunks: 1,
            session_ttl: None,
            session_idle: None,
            max_sessions: None,
            answer_400_for_unknown_session: false,
            max_body_bytes: 1024 * 1024,
            header_read_timeout: None,
            body_read_timeout: None,
            max_connections: None,
            localhost_only: false,
            conformance_tools: false,
            era: ServerEra::Legacy,
            discover_ttl_ms: 0,
            sse_priming: false,
        }
    }
}

/// The headers of an SSE stream.
fn sse_headers(builder: hyper::http::response::Builder) -> hyper::http::response::Builder {
    builder
        .header(CONTENT_TYPE, Format::Sse.content_type())
        .header(CACHE_CONTROL, "no-cache")
}

/// `response` as an SSE stream, and where in it the response's event
/// starts: the priming event (legacy era, if configured), the answer's own
/// notifications, the configured log messages, then the response. In the
/// legacy era every event takes the server's next event id, so a cut
/// stream can be resumed; the stateless era has no event ids and no
/// resumption (spec §6): its events carry none, and take none.
fn sse_answer(st: &mut State, cfg: &ServerConfig, rpc: &Rpc, response: &[u8]) -> (Bytes, usize) {
    let mut out = String::new();
    if cfg.sse_priming && !rpc.stateless {
        out.push_str(&encode::sse_priming(st.next_event_id, SSE_RETRY_MS));
        st.next_event_id += 1;
    }
    let mut event_id = || {
        (!rpc.stateless).then(|| {
            st.next_event_id += 1;
            st.next_event_id - 1
        })
    };
    for note in &rpc.notes {
        out.push_str(&encode::sse_message(event_id(), &note.to_string()));
    }
    let n = if rpc.logs {
        cfg.notifications_before_response
    } else {
        0
    };
    for k in 1..=n {
        let note = json!({
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {
                "level": "info",
                "logger": "mcp-sim",
                "data": format!("{}: notice {k} of {n}", rpc.method),
            },
        });
        out.push_str(&encode::sse_message(event_id(), &note.to_string()));
    }
    let at = out.len();
    let data = String::from_utf8_lossy(response);
    out.push_str(&encode::sse_message(event_id(), &data));
    (Bytes::from(out), at)
}

/// The log entry of an answer sent as `format` in `pieces` pieces, with
/// `fault` applied. A stateless answer names its request, and the MRTR
/// state an `input_required` result issued.
fn answered(rpc: &Rpc, format: Format, pieces: usize, fault: Option<AnswerFault>) -> ServerEvent {
    let input = rpc
        .request
        .and_then(|_| rpc.outcome.as_ref().ok())
        .filter(|r| r.get("resultType").and_then(|t| t.as_str()) == Some("input_required"));
    ServerEvent::Answered {
        session: rpc.session.clone(),
        method: rpc.method.clone(),
        format,
        pieces,
        error: rpc.outcome.as_ref().err().map(|e| e.0),
        fault,
        request: rpc.request,
        id: Some(rpc.id.clone()),
        input_required: input.is_some(),
        request_state: input.and_then(|r| r.get("requestState")).cloned(),
        digest: rpc.outcome.as_ref().ok().map(events::digest),
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyError {
    /// Longer than `max_body_bytes` (declared or sent).
    TooLarge,
    /// Not a valid HTTP body (a broken chunked encoding, a connection cut
    /// mid-body).
    Malformed,
    /// Not all sent within `body_read_timeout`.
    TimedOut,
}

impl BodyError {
    /// The status to answer and why, in a few words.
    fn answer(self) -> (StatusCode, &'static str) {
        match self {
            BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            BodyError::Malformed => (StatusCode::BAD_REQUEST, "body malformed"),
            BodyError::TimedOut => (StatusCode::REQUEST_TIMEOUT, "body not sent in time"),
        }
    }
}

/// `Option<Duration>` as optional whole milliseconds.
mod opt_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A handle to one simulated MCP server. Clones share the server.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ServerConfig,
    state: Mutex<State>,
}

/// Everything that changes, behind one lock that is never held across an
/// `.await`.
pub(crate) struct State {
    pub sessions: Sessions,
    pub rng: ChaCha8Rng,
    pub hooks: Hooks,
    events: Vec<Stamped>,
    /// The next SSE event id of a legacy-era stream (unique across the
    /// server's life; the stateless era's events take none).
    next_event_id: u64,
    /// HTTP requests decided so far (across restarts: the handle's life).
    requests: u64,
    /// How many times `serve` has started.
    runs: u64,
    time: Timebase,
    /// The open `subscriptions/listen` streams.
    pub(crate) listeners: listen::Listeners,
    /// Requests sent to clients, and the tool calls waiting for them.
    client_requests: client_requests::ClientRequests,
}

impl State {
    /// Appends an event to the log.
    pub fn record(&mut self, at_ms: u64, event: ServerEvent) {
        self.events.push(Stamped { at_ms, event });
    }

    fn now(&mut self) -> u64 {
        self.time.now_ms()
    }

    /// Numbers a request: 1 for the first the server decides.
    pub fn next_request(&mut self) -> u64 {
        self.requests += 1;
        self.requests
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Server")
            .field("cfg", &self.inner.cfg)
            .field("live_sessions", &st.sessions.len())
            .field("events", &st.events.len())
            .field("hooks", &st.hooks)
            .finish()
    }
}

impl Server {
    /// A server with `cfg`. It serves nothing until [`Server::serve`].
    pub fn new(cfg: ServerConfig) -> Server {
        let limits = Limits {
            ttl_ms: cfg.session_ttl.map(millis),
            idle_ms: cfg.session_idle.map(millis),
            max_sessions: cfg.max_sessions,
        };
        let state = State {
            sessions: Sessions::new(limits),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            hooks: Hooks {
                fail_status: 503,
                ..Hooks::default()
            },
            events: Vec::new(),
            next_event_id: 1,
            requests: 0,
            runs: 0,
            time: Timebase::default(),
            listeners: listen::Listeners::default(),
            client_requests: client_requests::ClientRequests::default(),
        };
        Server {
            inner: Arc::new(Inner {
                cfg,
                state: Mutex::new(state),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock fails the simulation
        // anyway; the state itself stays consistent (every change is one
        // step), so carry on with it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The server's config.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.cfg
    }

    /// Serves MCP on `listener` until accepting fails, each connection in a
    /// spawned task (hyper HTTP/1.1, keep-alive, no `Date` header: it would
    /// come from the real clock).
    ///
    /// Each call is a new run of the server (logged as
    /// [`ServerEvent::Started`]); state carries over from the previous run
    /// unless [`Server::forget_sessions`] is called (see the module docs on
    /// restarts).
    pub async fn serve<L: Listener>(&self, listener: L) -> io::Result<()> {
        {
            let mut st = self.lock();
            st.runs += 1;
            let (now, run) = (st.now(), st.runs);
            st.record(now, ServerEvent::Started { run });
        }
        let mut http = http1::Builder::new();
        http.auto_date_header(false);
        if let Some(t) = self.inner.cfg.header_read_timeout {
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(t);
        }
        let max_conns = self.inner.cfg.max_connections.unwrap_or(usize::MAX);
        // Failed accepts in a row: a process out of file descriptors backs
        // off (10 ms, doubling, at most 1 s) and tries again, rather than
        // ending the server.
        let mut accept_failures: u32 = 0;
        // Every connection is driven here, inside this one task, rather than
        // spawned: a crash drops this task, and with it the connections in
        // the set's own (insertion-determined) order. Spawned tasks would be
        // dropped in tokio's task-id order, and task ids count across the
        // whole process, so a restart would depend on what ran before it.
        let mut conns = FuturesUnordered::new();
        loop {
            tokio::select! {
                biased;
                accepted = listener.accept(), if conns.len() < max_conns => {
                    let (stream, peer) = match accepted {
                        Ok(a) => {
                            accept_failures = 0;
                            a
                        }
                        Err(e) => {
                            accept_failures = accept_failures.saturating_add(1);
                            let wait = Duration::from_millis(10u64 << accept_failures.min(7))
                                .min(Duration::from_secs(1));
                            {
                                let mut st = self.lock();
                                let now = st.now();
                                let why = e.to_string();
                                st.record(now, ServerEvent::AcceptFailed { why, retry_ms: wait.as_millis() as u64 });
                            }
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    };
                    let server = self.clone();
                    // Named once per connection: the client host, in a
                    // simulation (see `events` on `from`).
                    let peer: Option<Arc<str>> = listener.peer_name(peer).map(Arc::from);
                    let service = service_fn(move |req| {
                        let (server, peer) = (server.clone(), peer.clone());
                        async move { Ok::<_, Infallible>(server.handle(req, peer.as_deref()).await) }
                    });
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    conns.push(async move {
                        // Ends when the client closes the connection (or it
                        // breaks: nothing to do about that on this side).
                        let _ = conn.await;
                    });
                }
                Some(()) = conns.next(), if !conns.is_empty() => {}
            }
        }
    }

    /// Handles one HTTP request from the host `peer` (the connection's,
    /// as the listener names it): the request's `from` is the client a
    /// load balancer names in `Forwarded`, else `peer`.
    async fn handle(&self, req: Request<Incoming>, peer: Option<&str>) -> Response<Chunked> {
        let (parts, body) = req.into_parts();
        self.handle_parts(parts, body, peer).await
    }

    /// [`Server::handle`] on a request's head and any body: reads the
    /// body (up to `max_body_bytes`, within `body_read_timeout`), decides,
    /// waits if the decision says so, and renders the answer. Generic over
    /// the body so that the fuzz tests feed it the very path hyper's
    /// requests take, without a connection.
    async fn handle_parts<B>(
        &self,
        parts: hyper::http::request::Parts,
        body: B,
        peer: Option<&str>,
    ) -> Response<Chunked>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let forwarded = crate::forwarded::first_for(&parts.headers);
        let from = forwarded.as_deref().or(peer);
        let body = match self.read_body(&parts.headers, body).await {
            Ok(b) => b,
            Err(e) => return self.reject(&parts, from, e),
        };
        let req = Req {
            method: &parts.method,
            path: parts.uri.path(),
            headers: &parts.headers,
            body: &body,
            from,
        };
        let decision = {
            let mut st = self.lock();
            let now = st.now();
            handler::decide(&mut st, &self.inner.cfg, now, &req)
        };
        let answer = match decision {
            Decision::Now(answer) => answer,
            Decision::After { wait, answer } => {
                tokio::time::sleep(wait).await;
                answer
            }
        };
        self.render(answer)
    }

    /// Reads a request's whole body: at most `max_body_bytes` (a larger
    /// declared `Content-Length` is refused before a byte is read), within
    /// `body_read_timeout` if one is set.
    async fn read_body<B>(&self, headers: &HeaderMap, body: B) -> Result<Bytes, BodyError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let max = self.inner.cfg.max_body_bytes;
        let declared = headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let read = async {
            if declared.is_some_and(|n| n > max as u64) {
                // Refused before a byte of it is read.
                return Err(BodyError::TooLarge);
            }
            match Limited::new(body, max).collect().await {
                Ok(b) => Ok(b.to_bytes()),
                Err(e)
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    Err(BodyError::TooLarge)
                }
                Err(_) => Err(BodyError::Malformed),
            }
        };
        match self.inner.cfg.body_read_timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .unwrap_or(Err(BodyError::TimedOut)),
            None => read.await,
        }
    }

    /// Answers a request whose body could not be read with the status
    /// that says why, logged as rejected (it never reaches the handler).
    fn reject(
        &self,
        parts: &hyper::http::request::Parts,
        from: Option<&str>,
        e: BodyError,
    ) -> Response<Chunked> {
        let (status, why) = e.answer();
        let mut st = self.lock();
        let now = st.now();
        st.record(
            now,
            ServerEvent::Rejected {
                http: parts.method.as_str().to_owned(),
                status: status.as_u16(),
                why: why.into(),
                from: from.map(str::to_owned),
                session: wire::header(&parts.headers, "mcp-session-id"),
                header_version: wire::header(&parts.headers, "mcp-protocol-version"),
            },
        );
        status_only(status)
    }

    /// Puts an answer on the wire: the answer's headers, then the content
    /// type its body calls for, then the body.
    fn render(&self, answer: Answer) -> Response<Chunked> {
        let mut builder = Response::builder().status(answer.status);
        for (name, value) in answer.headers {
            // A garbled session id is still a valid header value (visible
            // ASCII and spaces); anything else would be our bug.
            if let Ok(v) = HeaderValue::from_str(&value) {
                builder = builder.header(name, v);
            }
        }
        let body = match answer.body {
            Body::Empty => Chunked::empty(),
            Body::Json(v) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Chunked::whole(encode::json(&v))
            }
            Body::Stream(stream) => {
                builder = sse_headers(builder);
                stream
            }
            Body::AwaitClient(waiting) => {
                builder = sse_headers(builder);
                self.await_client(waiting)
            }
            Body::Rpc(rpc) => {
                let (format, body) = self.render_rpc(&rpc);
                builder = builder.header(CONTENT_TYPE, format.content_type());
                if format == Format::Sse {
                    builder = builder.header(CACHE_CONTROL, "no-cache");
                }
                body
            }
        };
        builder
            .body(body)
            .unwrap_or_else(|_| status_only(StatusCode::INTERNAL_SERVER_ERROR))
    }

    /// A JSON-RPC response's body: JSON or SSE as the seeded stream says
    /// (SSE whenever notifications precede it, or a truncation is armed),
    /// cut short by an armed answer fault, split into seeded pieces, and
    /// logged.
    ///
    /// The server's stream draws the format first, always (faulted or not,
    /// so that the stream stays aligned), then the cuts: one lock held
    /// throughout keeps the two draws of one answer together.
    fn render_rpc(&self, rpc: &Rpc) -> (Format, Chunked) {
        let cfg = &self.inner.cfg;
        let mut st = self.lock();
        let now = st.now();
        let drawn = Format::draw(&mut st.rng, cfg.sse_ratio);
        let fault = st.hooks.take_answer_fault_for(rpc.stateless);
        let format = match fault {
            Some(AnswerFault::Truncated) => Format::Sse,
            // Notifications before the response need a stream.
            _ if !rpc.notes.is_empty() => Format::Sse,
            _ => drawn,
        };
        let response = match fault {
            Some(AnswerFault::Malformed) => encode::malformed_bytes(rpc.to_bytes()),
            _ => rpc.to_bytes(),
        };
        let (whole, response_at) = match format {
            Format::Json => (response, 0),
            Format::Sse => sse_answer(&mut st, cfg, rpc, &response),
        };
        // What goes out: everything, or up to the middle of the
        // response (a truncated stream), or half of it all (a reset).
        let sent = match fault {
            Some(AnswerFault::Truncated) => {
                whole.slice(..response_at + (whole.len() - response_at) / 2)
            }
            Some(AnswerFault::Reset) => whole.slice(..(whole.len() / 2).max(1)),
            _ => whole.clone(),
        };
        let cuts = encode::draw_cuts(&mut st.rng, sent.len(), cfg.split_chunks);
        let pieces = encode::split(&sent, &cuts);
        st.record(now, answered(rpc, format, pieces.len(), fault));
        // A JSON body announces its length; a stream is sent with
        // chunked transfer encoding, as streams are.
        let json = format == Format::Json;
        let body = if fault == Some(AnswerFault::Reset) {
            Chunked::reset_after(pieces, json.then_some(whole.len() as u64))
        } else {
            Chunked::new(pieces, json)
        };
        (format, body)
    }

    /// The event log so far.
    pub fn events(&self) -> Vec<Stamped> {
        self.lock().events.clone()
    }

    /// The event log so far, moved out (the log is left empty): what
    /// [`Server::events`] returns, without the copy, for a caller done with
    /// the server.
    pub fn take_events(&self) -> Vec<Stamped> {
        std::mem::take(&mut self.lock().events)
    }

    /// The event log as JSON lines (one event per line): the canonical
    /// bytes two runs of a seed are compared by.
    pub fn events_json(&self) -> String {
        let st = self.lock();
        let mut out = String::new();
        for e in &st.events {
            // Serializing these plain values cannot fail.
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// The ids of the live sessions, oldest first.
    pub fn live_sessions(&self) -> Vec<String> {
        self.lock().sessions.ids()
    }

    /// Milliseconds of simulated time since the server's start (tokio time
    /// outside a simulation; 0 before it has started; read from outside
    /// the simulation's hosts, the last time the server read).
    pub fn elapsed_ms(&self) -> u64 {
        self.lock().now()
    }

    /// Forgets every session, as a restart of a server that keeps them in
    /// memory does; call it at the top of the host closure. Returns how
    /// many were dropped.
    pub fn forget_sessions(&self) -> usize {
        let mut st = self.lock();
        let now = st.now();
        let dropped = st.sessions.clear();
        st.record(now, ServerEvent::SessionsCleared { dropped });
        dropped
    }

    /// Expires session `id` now, ahead of any limit: the next request that
    /// names it gets 404 (or the 400 quirk). Returns `false` if it was not
    /// live.
    pub fn expire_session(&self, id: &str) -> bool {
        let mut st = self.lock();
        let now = st.now();
        let removed = st.sessions.remove(id);
        if removed {
            st.record(
                now,
                ServerEvent::Expired {
                    session: id.to_owned(),
                    reason: ExpiryReason::Early,
                },
            );
        }
        removed
    }

    /// Answers the next `count` HTTP requests (of any kind) with `status`
    /// (e.g. 500 or 503) and a JSON-RPC error body. `count` 0 disarms.
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.fail_next = count;
        st.hooks.fail_status = status;
        st.record(now, ServerEvent::FailuresArmed { count, status });
    }

    /// Answers every `every`-th HTTP request from now on (of any kind)
    /// with `status` and a JSON-RPC error body: a server that fails
    /// steadily rather than in one burst. `every` 0 turns it off. The count
    /// starts again at each call; a burst armed with [`Server::fail_next`]
    /// is answered first.
    pub fn fail_every(&self, every: u32, status: u16) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.fail_every = every;
        st.hooks.fail_every_seen = 0;
        st.hooks.fail_status = status;
        st.record(now, ServerEvent::PeriodicFailuresArmed { every, status });
    }

    /// Makes `initialize` answer `version` whatever the client asked
    /// (`None`: negotiate again).
    pub fn answer_protocol_version(&self, version: Option<&str>) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.protocol_version = version.map(str::to_owned);
        st.record(
            now,
            ServerEvent::VersionForced {
                version: version.map(str::to_owned),
            },
        );
    }

    /// Spoils the next `count` JSON-RPC answers with `fault` (`count` 0
    /// disarms it). Counts of different faults are kept apart; one answer
    /// takes at most one (see [`Hooks::take_answer_fault`]).
    pub fn arm_answer_fault(&self, fault: AnswerFault, count: u32) {
        let mut st = self.lock();
        let now = st.now();
        *st.hooks.answer_fault_count(fault) = count;
        st.record(now, ServerEvent::AnswerFaultsArmed { count, fault });
    }

    /// Answers the next `count` `initialize` requests `delay` late (of
    /// simulated time, in simulation): slower than a client's timeout, a
    /// session is created that the client never learns of. `count` 0
    /// disarms.
    pub fn slow_initialize(&self, count: u32, delay: Duration) {
        let mut st = self.lock();
        let now = st.now();
        let delay_ms = millis(delay);
        st.hooks.slow_initialize_next = count;
        st.hooks.slow_initialize_ms = delay_ms;
        st.record(now, ServerEvent::SlowInitializeArmed { count, delay_ms });
    }

    /// Tells the server how much simulated time has passed, for controls
    /// pulled from outside the simulation's hosts (between `sim.step()`s,
    /// where `turmoil::sim_elapsed` has no host to read): the events they
    /// log are then stamped with the simulation's time rather than the last
    /// time the server read it. `sim_elapsed` is `Sim::elapsed()`. A no-op
    /// for a server that reads tokio time (outside a simulation).
    pub fn advance_clock_to(&self, sim_elapsed: Duration) {
        self.lock().time.observe_sim(sim_elapsed);
    }

    /// Sets what `initialize` answers carry in `Mcp-Session-Id`.
    pub fn set_session_id_fault(&self, fault: SessionIdFault) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.session_id = fault;
        st.record(now, ServerEvent::SessionIdFaultSet { fault });
    }

    /// Makes the server speak `era` from now on, whatever its config says
    /// (an upgrade or a downgrade, as a redeploy does; bounce the host
    /// too, for the restart that forgets sessions). Requests already routed
    /// finish in the era they were routed to.
    pub fn set_era(&self, era: ServerEra) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.era = Some(era);
        st.record(now, ServerEvent::EraSet { era });
    }

    /// The eras the server speaks now: [`Server::set_era`]'s, else the
    /// config's.
    pub fn era(&self) -> ServerEra {
        self.lock().hooks.era.unwrap_or(self.inner.cfg.era)
    }

    /// Refuses the next `count` stateless-era requests with -32022
    /// although their revision is served (the conformance suite's trap: a
    /// client must retry once). `count` 0 disarms.
    pub fn refuse_version_next(&self, count: u32) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.refuse_version_next = count;
        st.record(now, ServerEvent::VersionRefusalsArmed { count });
    }

    /// Strips `Mcp-Method` and `Mcp-Name` from the next `count`
    /// stateless-era requests before the ladder checks them, as a proxy in
    /// front of the server might: they are refused with 400 -32020 (and
    /// logged as [`ServerEvent::RoutingHeadersStripped`]). Requests refused
    /// earlier on the ladder, and notifications, take none. `count` 0
    /// disarms.
    pub fn strip_routing_headers_next(&self, count: u32) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.strip_routing_next = count;
        st.record(now, ServerEvent::RoutingStripArmed { count });
    }

    /// Makes `server/discover` answer `change`'s `ttlMs` and changed
    /// capabilities ([`DiscoverChange::apply`]) from now on (`None`: the
    /// config's again).
    pub fn set_discover_change(&self, change: Option<DiscoverChange>) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.discover_change = change;
        let ttl_ms = change.map(|c| c.ttl_ms);
        st.record(now, ServerEvent::DiscoverChangeSet { ttl_ms });
    }

    /// Sends the next `count` stateless-era JSON-RPC answers as SSE
    /// streams cut before the response ([`AnswerFault::Truncated`], taken
    /// after any armed [`Server::arm_answer_fault`]): the request is lost,
    /// as the era has no resumption. Legacy answers take none. `count` 0
    /// disarms.
    pub fn cut_modern_streams_next(&self, count: u32) {
        let mut st = self.lock();
        let now = st.now();
        st.hooks.stream_cut_next = count;
        st.record(now, ServerEvent::StreamCutsArmed { count });
    }

    /// Answers the next `count` stateless-era `tools/call` requests (fresh
    /// ones: without `requestState` or `inputResponses`) `input_required`
    /// for `rounds` rounds (at least 1) before the tool runs. The
    /// `requestState` carries the rounds left, signed with a key every
    /// server shares, so any instance behind a balancer serves the retry.
    /// `count` 0 disarms.
    pub fn ask_input_rounds_next(&self, count: u32, rounds: u32) {
        let mut st = self.lock();
        let now = st.now();
        let rounds = rounds.max(1);
        st.hooks.input_rounds_next = count;
        st.hooks.input_rounds = rounds;
        st.record(now, ServerEvent::InputRoundsArmed { count, rounds });
    }

    /// The switches as they are now.
    pub fn hooks(&self) -> Hooks {
        self.lock().hooks.clone()
    }
}

/// An answer with a status and no body.
fn status_only(status: StatusCode) -> Response<Chunked> {
    let mut r = Response::new(Chunked::empty());
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

    /// An in-memory stream that records the size of every write.
    struct CountingIo {
        inner: DuplexStream,
        writes: Arc<Mutex<Vec<usize>>>,
    }

    impl AsyncRead for CountingIo {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountingIo {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = r {
                self.writes.lock().unwrap().push(n);
            }
            r
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// A listener that hands out one prepared connection, then waits
    /// forever: the server is generic over where connections come from.
    struct OneConnection(Mutex<Option<CountingIo>>);

    impl Listener for OneConnection {
        type Stream = CountingIo;

        async fn accept(&self) -> io::Result<(CountingIo, std::net::SocketAddr)> {
            let next = self.0.lock().unwrap().take();
            match next {
                Some(io) => Ok((io, ([127, 0, 0, 1], 1).into())),
                None => std::future::pending().await,
            }
        }
    }

    /// Each piece of a cut body leaves in a write of its own, so the client
    /// really receives it in pieces.
    #[tokio::test]
    async fn every_piece_is_a_write_of_its_own() {
        let server = Server::new(ServerConfig {
            seed: 1,
            sse_ratio: 1.0,
            notifications_before_response: 2,
            split_chunks: 6,
            ..ServerConfig::default()
        });
        let (mut client, inner) = tokio::io::duplex(1 << 16);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let io = CountingIo {
            inner,
            writes: writes.clone(),
        };
        let serving = tokio::spawn({
            let server = server.clone();
            async move { server.serve(OneConnection(Mutex::new(Some(io)))).await }
        });
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
        let request = format!(
            "POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             accept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"0\r\n\r\n") {
            let mut buf = [0u8; 4096];
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("mcp-session-id: srv-1\r\n"), "{text}");
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(!text.to_ascii_lowercase().contains("\r\ndate:"), "{text}");
        assert!(text.contains(r#""protocolVersion":"2025-06-18""#), "{text}");
        let pieces = server
            .events()
            .into_iter()
            .find_map(|s| match s.event {
                ServerEvent::Answered { pieces, .. } => Some(pieces),
                _ => None,
            })
            .unwrap();
        assert!(pieces > 2, "seed 1 cuts the body: {pieces}");
        // One write per piece (hyper sends the head with the first piece,
        // and the end of the stream with the last).
        assert!(
            writes.lock().unwrap().len() >= pieces,
            "{pieces}: {writes:?}"
        );
        serving.abort();
    }

    #[test]
    fn config_is_a_plain_serde_value_in_milliseconds() {
        let cfg = ServerConfig {
            session_ttl: Some(Duration::from_millis(1500)),
            max_sessions: Some(3),
            ..ServerConfig::default()
        };
        let v = serde_json::to_value(&cfg).unwrap();
        assert_eq!(v["session_ttl"], 1500);
        assert_eq!(v["session_idle"], Value::Null);
        let back: ServerConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, cfg);
        let partial: ServerConfig =
            serde_json::from_str(r#"{"seed": 4, "session_idle": 250}"#).unwrap();
        assert_eq!(partial.session_idle, Some(Duration::from_millis(250)));
        assert_eq!(partial.path, "/mcp");
        assert!(serde_json::from_str::<ServerConfig>(r#"{"sed": 4}"#).is_err());
    }
}
