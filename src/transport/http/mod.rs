//! MCP's Streamable HTTP transport, on hyper's HTTP/1.1 client connection
//! over any [`Dialer`].
//!
//! One HTTP/1.1 connection per MCP session, kept alive across requests and
//! dialed again when the server has closed it. Every request is a POST of
//! one JSON-RPC message with `Accept: application/json, text/event-stream`.
//! Answers come as one JSON body or as an SSE stream.
//!
//! Legacy era: after `initialize` every request carries `Mcp-Session-Id`
//! and (for revisions that define it) `MCP-Protocol-Version`; an SSE stream
//! that ends before the answer is resumed with GET and `Last-Event-ID`;
//! closing sends DELETE.
//!
//! Stateless era (2026-07-28, after [`Connection::use_modern`]): every
//! request carries `params._meta` and the headers `MCP-Protocol-Version`,
//! `Mcp-Method` and, where the method names something, `Mcp-Name`; never a
//! session id, `ping`, GET or DELETE. A -32022 answer is retried once at
//! the newest revision both sides speak. An SSE stream that ends before
//! the answer is a lost request ([`TransportError::StreamLost`]): this era
//! has no resumption.
//!
//! All waiting is bounded on the injected [`Clock`]: connect, each request
//! (including SSE resumption), and close.

mod envelope;
#[cfg(test)]
mod fuzz;
mod jsonrpc;
mod params;
#[cfg(test)]
mod props;
mod response;

pub use envelope::{
    decode_header_value, META_CLIENT_CAPABILITIES, META_CLIENT_INFO, META_PROTOCOL_VERSION,
};

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use self::envelope::Body;
use self::response::{Expect, Reply};
use super::{
    Answer, CallResult, CloseOutcome, Connection, Connector, Dialer, InitializeParams, Initialized,
    InputResponses, ModernParams, Operation, TransportError, VersionRetry,
};
use crate::clock::Clock;
use crate::sync::lock;

/// The first protocol revision that defines the `MCP-Protocol-Version`
/// request header.
const FIRST_VERSION_WITH_HEADER: &str = "2025-06-18";

/// Settings of the HTTP transport.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The MCP endpoint, e.g. `http://127.0.0.1:8080/mcp` (plain HTTP).
    pub url: String,
    /// Bound on opening a connection (dial + HTTP handshake). Default 5000.
    pub connect_timeout_ms: u64,
    /// Bound on one request, from sending it to its answer (including SSE
    /// resumption). Default 30000.
    pub request_timeout_ms: u64,
    /// Bound on the DELETE that closes a session. Default 5000.
    pub close_timeout_ms: u64,
    /// Largest response body accepted, in bytes. Default 4 MiB.
    pub max_body_bytes: usize,
    /// Treat HTTP 400 with JSON-RPC error -32000 "No valid session ID" (the
    /// TypeScript SDK's answer to an unknown session) as a 404, so sessions
    /// are re-initialized after a restart of such a server. Default true.
    pub session_400_is_expired: bool,
    /// How many times an SSE stream that ended early is resumed with GET
    /// `Last-Event-ID`. Default 3.
    pub max_resumes: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            url: String::new(),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            close_timeout_ms: 5_000,
            max_body_bytes: 4 * 1024 * 1024,
            session_400_is_expired: true,
            max_resumes: 3,
        }
    }
}

impl HttpConfig {
    /// The defaults, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        HttpConfig {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// Where requests go, from the URL.
#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
    authority: HeaderValue,
    path: Uri,
}

impl Target {
    fn parse(url: &str) -> Result<Target, TransportError> {
        // Every error below shows the URL without its credentials, if it
        // has any: a password must not reach a report or a log.
        let shown = without_userinfo(url);
        let bad = |why: &str| TransportError::InvalidUrl(format!("{shown:?}: {why}"));
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported (plain http only)")),
            Some(other) => return Err(bad(&format!("unsupported scheme {other:?}"))),
            None => return Err(bad("no scheme (expected http://host:port/path)")),
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            // Never echo the URL here: it holds the password.
            return Err(TransportError::InvalidUrl(
                "credentials in the URL (user:password@host) are not supported: \
                 they would be sent in the Host header; give the URL without them"
                    .into(),
            ));
        }
        let port = match port_text(authority.as_str()) {
            None => 80,
            Some(p) => match p.parse::<u32>() {
                Ok(n @ 1..=65_535) => n as u16,
                _ => return Err(bad(&format!("port {p:?} is not in 1-65535"))),
            },
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        Ok(Target {
            host: host.to_owned(),
            port,
            authority: HeaderValue::from_str(authority.as_str()).map_err(|_| bad("bad host"))?,
            path: path.parse().map_err(|_| bad("bad path"))?,
        })
    }
}

/// `url` with any `user:password@` in its authority replaced by `***@`.
fn without_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]).into(),
        None => url.into(),
    }
}

/// The port part of an authority (`host:port`, `[v6]:port`), as written:
/// `None` when there is none, `Some("")` for a bare colon.
fn port_text(authority: &str) -> Option<&str> {
    let after_host = match authority.rfind(']') {
        Some(end) => &authority[end + 1..],
        None => authority,
    };
    after_host.rfind(':').map(|i| &after_host[i + 1..])
}

struct Shared<D> {
    dialer: D,
    cfg: HttpConfig,
    target: Target,
    clock: Arc<dyn Clock>,
    /// `Mcp-Param-*` annotations learned from `tools/list` answers: per
    /// connector, that is per origin, shared by all its contexts.
    tool_headers: Mutex<params::ToolHeaders>,
    /// Whether `tool_headers` ever held anything (most servers annotate
    /// nothing: then a call does not look).
    any_tool_headers: std::sync::atomic::AtomicBool,
}

/// The Streamable HTTP [`Connector`], over any [`Dialer`].
pub struct HttpConnector<D: Dialer> {
    shared: Arc<Shared<D>>,
}

impl<D: Dialer> Clone for HttpConnector<D> {
    fn clone(&self) -> Self {
        HttpConnector {
            shared: self.shared.clone(),
        }
    }
}

impl<D: Dialer> HttpConnector<D> {
    /// A connector to `cfg.url` through `dialer`, timing out on `clock`.
    /// Fails with [`TransportError::InvalidUrl`] if the URL is not a plain
    /// `http://host[:port][/path]`.
    pub fn new(dialer: D, cfg: HttpConfig, clock: Arc<dyn Clock>) -> Result<Self, TransportError> {
        let target = Target::parse(&cfg.url)?;
        Ok(HttpConnector {
            shared: Arc::new(Shared {
                dialer,
                cfg,
                target,
                clock,
                tool_headers: Mutex::default(),
                any_tool_headers: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The transport settings.
    pub fn config(&self) -> &HttpConfig {
        &self.shared.cfg
    }
}

/// [`TransportError::Connect`] with `message`, caused by `error`.
fn connect_failed(
    message: String,
    error: impl std::error::Error + Send + Sync + 'static,
) -> TransportError {
    TransportError::Connect {
        message,
        source: Some(super::Cause::new(error)),
    }
}

/// Runs `fut` for at most `limit` of clock time.
async fn within<T>(
    clock: &dyn Clock,
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    let deadline = clock.now() + limit;
    tokio::select! {
        biased;
        r = fut => r,
        _ = clock.sleep_until(deadline) => Err(TransportError::Timeout {
            what: what.to_owned(),
            after_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

impl<D: Dialer> Shared<D> {
    /// Dials and handshakes a new HTTP/1.1 connection, within the connect
    /// timeout; its connection task is spawned.
    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let limit = Duration::from_millis(self.cfg.connect_timeout_ms);
        within(&*self.clock, limit, "connect", async {
            let t = &self.target;
            let stream = self.dialer.dial(&t.host, t.port).await.map_err(|e| {
                let message = format!("{}:{}: {:?}: {e}", t.host, t.port, e.kind());
                connect_failed(message, e)
            })?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| connect_failed(format!("HTTP handshake: {e}"), e))?;
            tokio::spawn(async move {
                // Ends when the server closes or every sender is dropped;
                // errors surface on the request that was in flight.
                let _ = conn.await;
            });
            Ok(sender)
        })
        .await
    }
}

impl<D: Dialer> Connector for HttpConnector<D> {
    type Connection = HttpConnection<D>;

    async fn connect(&self) -> Result<HttpConnection<D>, TransportError> {
        let sender = self.shared.open().await?;
        Ok(HttpConnection {
            shared: self.shared.clone(),
            sender: tokio::sync::Mutex::new(Some(sender)),
            session: Mutex::new(SessionHeaders::default()),
            next_id: AtomicU64::new(0),
            sent: AtomicU64::new(NOT_SENT),
            in_flight: AtomicUsize::new(0),
            name_header: Mutex::new(None),
        })
    }
}

/// Headers every request after `initialize` carries (legacy era), or the
/// envelope of every request (stateless era).
#[derive(Clone, Debug, Default)]
struct SessionHeaders {
    id: Option<HeaderValue>,
    version: Option<HeaderValue>,
    modern: Option<Arc<ModernWire>>,
    /// The server answered 404 for `id`: the session is gone there, and
    /// [`Connection::close`] sends no DELETE for it.
    gone: bool,
}

/// What a stateless-era request carries, made once per revision.
#[derive(Debug)]
struct ModernWire {
    params: ModernParams,
    version: String,
    header: HeaderValue,
    /// The `_meta` object's JSON text.
    meta: String,
}

impl ModernWire {
    fn new(params: &ModernParams, version: &str) -> ModernWire {
        ModernWire {
            params: params.clone(),
            version: version.to_owned(),
            // Revision dates are always header-safe; an odd one is sent
            // as the server would see it in `_meta` anyway.
            header: HeaderValue::from_str(version)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            meta: envelope::meta_json(
                version,
                &params.capabilities,
                &params.client_name,
                &params.client_version,
            ),
        }
    }
}

/// The routing headers of a stateless-era request.
struct Route<'a> {
    wire: &'a ModernWire,
    method: &'static str,
    name: Option<HeaderValue>,
    /// `Mcp-Param-*` headers of a `tools/call`.
    params: Vec<(HeaderName, HeaderValue)>,
}

/// One MCP session over Streamable HTTP.
pub struct HttpConnection<D: Dialer> {
    shared: Arc<Shared<D>>,
    /// The keep-alive connection; `None` or closed means dial again.
    sender: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
    session: Mutex<SessionHeaders>,
    next_id: AtomicU64,
    /// The id of the last request put on the wire since the latest
    /// [`Connection::request`] began ([`NOT_SENT`]: none).
    sent: AtomicU64,
    /// Requests between their POST and the end of their answer (an SSE
    /// body is read after `sender` is unlocked, and keeps the connection).
    in_flight: AtomicUsize,
    /// The last `Mcp-Name` value made, by the name it was made of: a load
    /// test calls the same tool again and again.
    name_header: Mutex<Option<(String, HeaderValue)>>,
}

/// Counts a request in flight for as long as it lives (dropped on return,
/// on error, on timeout, or when the caller drops the future).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// [`HttpConnection::sent`] when no request was sent.
const NOT_SENT: u64 = u64::MAX;

/// A request to send.
struct Outbound<'a> {
    method: Method,
    /// The JSON-RPC id of a request (none for a notification, GET or
    /// DELETE).
    id: Option<u64>,
    body: Option<Bytes>,
    last_event_id: Option<&'a str>,
    /// Set for a stateless-era request: its routing headers replace the
    /// session's.
    route: Option<&'a Route<'a>>,
}

impl<D: Dialer> HttpConnection<D> {
    /// The request `out` on this session. Built in place rather than with
    /// `Request::builder()`, whose by-value chain moves the whole request
    /// head at every header and parses every name and value again: this
    /// runs for every request. Same headers, same order.
    fn build_request(&self, out: &Outbound<'_>) -> Result<Request<Full<Bytes>>, TransportError> {
        let t = &self.shared.target;
        let mut req = Request::new(Full::new(out.body.clone().unwrap_or_default()));
        *req.method_mut() = out.method.clone();
        *req.uri_mut() = t.path.clone();
        let headers = req.headers_mut();
        // Room for every header either era sends, so the map never grows.
        headers.reserve(8);
        headers.append(HOST, t.authority.clone());
        match out.method {
            Method::POST => {
                headers.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.append(
                    ACCEPT,
                    HeaderValue::from_static("application/json, text/event-stream"),
                );
            }
            Method::GET => {
                headers.append(ACCEPT, HeaderValue::from_static("text/event-stream"));
            }
            _ => {}
        }
        if let Some(id) = out.last_event_id {
            let v = HeaderValue::from_str(id)
                .map_err(|_| TransportError::Protocol(format!("unusable SSE event id {id:?}")))?;
            headers.append(HeaderName::from_static("last-event-id"), v);
        }
        if let Some(route) = out.route {
            headers.append(
                HeaderName::from_static("mcp-protocol-version"),
                route.wire.header.clone(),
            );
            headers.append(
                HeaderName::from_static("mcp-method"),
                HeaderValue::from_static(route.method),
            );
            if let Some(name) = &route.name {
                headers.append(HeaderName::from_static("mcp-name"), name.clone());
            }
            for (name, value) in &route.params {
                headers.append(name.clone(), value.clone());
            }
            return Ok(req);
        }
        let session = lock(&self.session).clone();
        if let Some(id) = session.id {
            headers.append(HeaderName::from_static("mcp-session-id"), id);
        }
        if let Some(v) = session.version {
            headers.append(HeaderName::from_static("mcp-protocol-version"), v);
        }
        Ok(req)
    }

    /// Sends one request on the keep-alive connection, dialing again if the
    /// server closed it, and returns the response head and body.
    async fn exchange(
        &self,
        out: &Outbound<'_>,
    ) -> Result<Response<hyper::body::Incoming>, TransportError> {
        let mut slot = self.sender.lock().await;
        let reusable = match slot.as_mut() {
            Some(s) => !s.is_closed() && s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *slot = Some(self.shared.open().await?);
        }
        let Some(sender) = slot.as_mut() else {
            unreachable!("set just above")
        };
        let closed = |e: hyper::Error| TransportError::closed_by(e);
        let req = self.build_request(out)?;
        // From here on the request may reach the server.
        if let Some(id) = out.id {
            self.sent.store(id, Ordering::Relaxed);
        }
        match sender.send_request(req).await {
            // The server closed the idle keep-alive connection just before
            // this request (its close had not been read yet): hyper cancels a
            // request it never wrote. Nothing reached the server, so send it
            // once more on a new connection.
            Err(e) if reusable && e.is_canceled() => {
                let sender = slot.insert(self.shared.open().await?);
                sender
                    .send_request(self.build_request(out)?)
                    .await
                    .map_err(closed)
            }
            r => r.map_err(closed),
        }
    }

    fn expect(&self, id: Option<u64>) -> Expect {
        let cfg = &self.shared.cfg;
        Expect {
            id,
            had_session: lock(&self.session).id.is_some(),
            quirk_400: cfg.session_400_is_expired,
            max_body: cfg.max_body_bytes,
        }
    }

    /// POSTs one message and reads its answer, resuming an SSE stream that
    /// ends early, all within the request timeout. Returns the answer and
    /// the `Mcp-Session-Id` header of the first response.
    async fn post(
        &self,
        what: &str,
        id: Option<u64>,
        body: Bytes,
        route: Option<&Route<'_>>,
    ) -> Result<(Reply, Option<HeaderValue>), TransportError> {
        let cfg = &self.shared.cfg;
        let clock = &*self.shared.clock;
        let expect = self.expect(id);
        let _in_flight = InFlight::enter(&self.in_flight);
        within(
            clock,
            Duration::from_millis(cfg.request_timeout_ms),
            what,
            async {
                let post = Outbound {
                    method: Method::POST,
                    id,
                    body: Some(body),
                    last_event_id: None,
                    route,
                };
                let (parts, body) = self.exchange(&post).await?.into_parts();
                let session_id = parts.headers.get("mcp-session-id").cloned();
                let mut reply = response::read(parts.status, &parts.headers, body, expect).await?;
                if route.is_some() {
                    if let Reply::Ended { .. } = reply {
                        return Err(TransportError::StreamLost);
                    }
                    return Ok((reply, None));
                }
                let mut resumes = 0;
                // Like an EventSource, the last event id and the last
                // `retry:` outlive one stream: a resumed stream that ends
                // without new ones is resumed again from the same id, after
                // the same wait.
                let (mut last_id, mut wait) = (None, None);
                while let Reply::Ended {
                    last_event_id,
                    retry,
                } = reply
                {
                    last_id = last_event_id.or(last_id);
                    wait = retry.or(wait);
                    let Some(last) = last_id.as_deref().filter(|_| resumes < cfg.max_resumes)
                    else {
                        return Err(TransportError::closed(format!(
                            "SSE stream ended before the response ({resumes} resumption(s))"
                        )));
                    };
                    resumes += 1;
                    if let Some(wait) = wait {
                        clock.sleep_until(clock.now() + wait).await;
                    }
                    let get = Outbound {
                        method: Method::GET,
                        id: None,
                        body: None,
                        last_event_id: Some(last),
                        route: None,
                    };
                    let (parts, body) = self.exchange(&get).await?.into_parts();
                    if parts.status == hyper::StatusCode::METHOD_NOT_ALLOWED {
                        // The spec's answer of a server without GET streams:
                        // the failure is the stream that ended early, not
                        // the GET.
                        return Err(TransportError::closed(format!(
                            "SSE stream ended before the response; resumption refused \
                             (GET answered 405) after {resumes} attempt(s)"
                        )));
                    }
                    reply = response::read(parts.status, &parts.headers, body, expect).await?;
                }
                Ok((reply, session_id))
            },
        )
        .await
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn result(reply: Reply) -> Result<CallResult, TransportError> {
        match reply {
            Reply::Result(v) => Ok(v),
            other => Err(TransportError::Protocol(format!(
                "expected a response, got {other:?}"
            ))),
        }
    }

    /// One stateless-era request with `wire`'s envelope.
    async fn modern_call(
        &self,
        wire: &ModernWire,
        op: &Operation,
        input: Option<&InputResponses>,
    ) -> Result<CallResult, TransportError> {
        let id = self.next_id();
        let method = op.method();
        let mut body = Body::request(id, method, wire.meta.len());
        body.operation(op);
        if let Some(input) = input {
            body.input(input);
        }
        body.raw("_meta", &wire.meta);
        let route = Route {
            wire,
            method,
            name: envelope::mcp_name(op)
                .map(|n| self.name_header(n))
                .transpose()?,
            params: self.param_headers(op)?,
        };
        let (reply, _) = self
            .post(method, Some(id), body.finish(), Some(&route))
            .await?;
        let mut result = Self::result(reply)?;
        if let Operation::ToolsList { .. } = op {
            result = self.learn_tool_headers(result);
        }
        jsonrpc::check_tool_result(op, result)
    }

    /// The `Mcp-Name` header value for `name` (the base64 sentinel when it
    /// is not header-safe), made once for a name called again and again.
    fn name_header(&self, name: &str) -> Result<HeaderValue, TransportError> {
        let mut cached = lock(&self.name_header);
        if let Some((n, v)) = cached.as_ref() {
            if n == name {
                return Ok(v.clone());
            }
        }
        let v = envelope::header_value(name)?;
        *cached = Some((name.to_owned(), v.clone()));
        Ok(v)
    }

    /// The `Mcp-Param-*` headers of a `tools/call`, from the annotations
    /// learned so far; an error for a tool dropped for invalid ones.
    fn param_headers(
        &self,
        op: &Operation,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, TransportError> {
        let Operation::ToolsCall { name, arguments } = op else {
            return Ok(Vec::new());
        };
        if !self.shared.any_tool_headers.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let annotated = lock(&self.shared.tool_headers).get(name).cloned();
        match annotated {
            None => Ok(Vec::new()),
            Some(params::Annotated::Headers(p)) => Ok(params::headers_for(&p, arguments)),
            Some(params::Annotated::Invalid) => {
                Err(TransportError::InvalidTool { name: name.clone() })
            }
        }
    }

    /// Keeps the `x-mcp-header` annotations of a `tools/list` answer, and
    /// returns the answer without the tools whose annotations are invalid:
    /// the spec has clients drop them (and warn), and a `tools/call` of one
    /// is then refused without being sent.
    fn learn_tool_headers(&self, result: CallResult) -> CallResult {
        let Some(learned) = params::learn(&result) else {
            return result;
        };
        let mut invalid = Vec::new();
        {
            let mut known = lock(&self.shared.tool_headers);
            self.shared.any_tool_headers.store(true, Ordering::Release);
            for (tool, headers) in learned {
                match headers {
                    Some(h) if !h.is_empty() => {
                        known.insert(tool, params::Annotated::Headers(Arc::new(h)));
                    }
                    Some(_) => {
                        known.remove(&tool);
                    }
                    None => {
                        tracing::warn!(
                            tool = tool.as_str(),
                            "tools/list: dropped a tool with an invalid x-mcp-header annotation"
                        );
                        known.insert(tool.clone(), params::Annotated::Invalid);
                        invalid.push(tool);
                    }
                }
            }
        }
        if invalid.is_empty() {
            return result;
        }
        params::without_tools(&result, &invalid)
    }

    /// A stateless-era request; after -32022, once more at the newest
    /// revision both sides speak (even the same one: a server may refuse a
    /// revision it supports once, as the conformance suite's does).
    async fn modern_request(
        &self,
        wire: Arc<ModernWire>,
        op: &Operation,
        input: Option<&InputResponses>,
    ) -> Result<Answer, TransportError> {
        if let Operation::Ping = op {
            return Err(TransportError::NotInModernEra { method: "ping" });
        }
        let supported = match self.modern_call(&wire, op, input).await {
            Err(TransportError::UnsupportedVersion { supported, .. }) => supported,
            other => return other.map(Answer::new),
        };
        let offered = &wire.params.offered;
        let Some(to) = crate::era::newest_mutual(offered, &supported) else {
            return Err(TransportError::UnsupportedVersion {
                requested: wire.version.clone(),
                supported,
                offered: offered.clone(),
            });
        };
        let next = Arc::new(ModernWire::new(&wire.params, &to));
        lock(&self.session).modern = Some(next.clone());
        let result = match self.modern_call(&next, op, input).await {
            Err(TransportError::UnsupportedVersion { supported, .. }) => {
                Err(TransportError::UnsupportedVersion {
                    requested: to.clone(),
                    supported,
                    offered: offered.clone(),
                })
            }
            other => other,
        }?;
        Ok(Answer {
            result,
            renegotiated: Some(VersionRetry {
                from: wire.version.clone(),
                to,
            }),
        })
    }
}

/// Checks an `Mcp-Session-Id`: 1 to 128 visible ASCII characters.
fn valid_session_id(v: &HeaderValue) -> Result<String, TransportError> {
    let bytes = v.as_bytes();
    let ok = (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
    match (ok, v.to_str()) {
        (true, Ok(s)) => Ok(s.to_owned()),
        _ => Err(TransportError::InvalidSessionId {
            got: String::from_utf8_lossy(bytes).into_owned(),
        }),
    }
}

impl<D: Dialer> Connection for HttpConnection<D> {
    async fn initialize(&self, params: &InitializeParams) -> Result<Initialized, TransportError> {
        let id = self.next_id();
        let mut body = Body::request(id, "initialize", 0);
        body.field("protocolVersion", &params.protocol_version)
            .field("capabilities", &Value::Object(Default::default()))
            .field("clientInfo", &jsonrpc::client_info(params));
        let (reply, header) = self
            .post("initialize", Some(id), body.finish(), None)
            .await?;
        let result = Self::result(reply)?;
        // The session id counts only on a successful initialize (error
        // responses may carry one too).
        let session_id = header.as_ref().map(valid_session_id).transpose()?;
        let init = jsonrpc::initialized(&result, session_id)?;
        let mut s = lock(&self.session);
        s.id = header;
        s.gone = false;
        if init.protocol_version.as_str() >= FIRST_VERSION_WITH_HEADER {
            s.version = HeaderValue::from_str(&init.protocol_version).ok();
        }
        Ok(init)
    }

    async fn notify_initialized(&self) -> Result<(), TransportError> {
        let body = Body::notification("notifications/initialized").finish();
        self.post("notifications/initialized", None, body, None)
            .await
            .map(|_| ())
    }

    fn use_modern(&self, params: Option<&ModernParams>) {
        let mut s = lock(&self.session);
        s.id = None;
        s.version = None;
        s.modern = params.map(|p| Arc::new(ModernWire::new(p, &p.protocol_version)));
    }

    fn modern_version(&self) -> Option<String> {
        lock(&self.session)
            .modern
            .as_ref()
            .map(|w| w.version.clone())
    }

    async fn request(
        &self,
        op: &Operation,
        input: Option<&InputResponses>,
    ) -> Result<Answer, TransportError> {
        self.sent.store(NOT_SENT, Ordering::Relaxed);
        let modern = lock(&self.session).modern.clone();
        if let Some(wire) = modern {
            return self.modern_request(wire, op, input).await;
        }
        if input.is_some() {
            return Err(TransportError::Protocol(
                "input responses (MRTR) exist only in the stateless era".into(),
            ));
        }
        let id = self.next_id();
        let mut body = Body::request(id, op.method(), 0);
        body.operation(op);
        let posted = self.post(op.method(), Some(id), body.finish(), None).await;
        if let Err(TransportError::SessionNotFound) = &posted {
            lock(&self.session).gone = true;
        }
        let (reply, _) = posted?;
        jsonrpc::check_tool_result(op, Self::result(reply)?).map(Answer::new)
    }

    fn last_request_id(&self) -> Option<u64> {
        Some(self.sent.load(Ordering::Relaxed)).filter(|&id| id != NOT_SENT)
    }

    async fn close(&self) -> Result<CloseOutcome, TransportError> {
        {
            // The stateless era, a stateless server, or a session the server
            // already declared gone (404): nothing to end there.
            let s = lock(&self.session);
            if s.modern.is_some() {
                return Ok(CloseOutcome::Stateless);
            }
            if s.gone {
                return Ok(CloseOutcome::AlreadyGone);
            }
            if s.id.is_none() {
                return Ok(CloseOutcome::NoSessionId);
            }
        }
        let limit = Duration::from_millis(self.shared.cfg.close_timeout_ms);
        within(&*self.shared.clock, limit, "DELETE", async {
            let delete = Outbound {
                method: Method::DELETE,
                id: None,
                body: None,
                last_event_id: None,
                route: None,
            };
            // Never wait behind a request in flight (an SSE stream can last):
            // use the keep-alive connection only if it is free: no request
            // is sending or still reading its answer (an SSE body is read
            // after the lock is released, and hyper sends nothing else on
            // the connection until it ends). The probe's guard is dropped at
            // the end of this statement: held across the match below,
            // `exchange` would wait on it until the timeout.
            let free = self.in_flight.load(Ordering::SeqCst) == 0 && self.sender.try_lock().is_ok();
            let response = if free {
                self.exchange(&delete).await?
            } else {
                let mut fresh = self.shared.open().await?;
                fresh
                    .send_request(self.build_request(&delete)?)
                    .await
                    .map_err(TransportError::closed_by)?
            };
            match response.status().as_u16() {
                // 405: the server does not let clients end sessions; 404: it
                // already forgot it. Either way the session is over for us.
                200..=299 => Ok(CloseOutcome::Deleted),
                404 => Ok(CloseOutcome::AlreadyGone),
                // The TypeScript SDK's 400 for a session it forgot is its
                // 404, as for every other request (`session_400_is_expired`);
                // it was reported as a failed close.
                400 if self.shared.cfg.session_400_is_expired => {
                    let body = response::read_all(response.into_body(), 64 * 1024)
                        .await
                        .unwrap_or_default();
                    if jsonrpc::is_no_valid_session(&body) {
                        Ok(CloseOutcome::AlreadyGone)
                    } else {
                        Err(TransportError::Http { status: 400 })
                    }
                }
                405 => Ok(CloseOutcome::NotAllowed),
                s @ 500..=599 => Err(TransportError::ServerError { status: s }),
                s => Err(TransportError::Http { status: s }),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8931/mcp?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.to_string().as_str()),
            ("127.0.0.1", 8931, "/mcp?x=1")
        );
        assert_eq!(t.authority, "127.0.0.1:8931");
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        let t = Target::parse("http://[::1]:65535/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 65535));
        for bad in [
            "https://x/mcp",
            "ftp://x",
            "127.0.0.1:80/mcp",
            "",
            "http://",
            "http://127.0.0.1:99999/mcp",
            "http://127.0.0.1:0/mcp",
            "http://127.0.0.1:65536/mcp",
            "http://[::1]:0/",
            "http://127.0.0.1:/mcp",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(TransportError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_echoing_them() {
        for url in ["http://user:secret@host/mcp", "http://secret@host:8080/"] {
            let Err(TransportError::InvalidUrl(why)) = Target::parse(url) else {
                panic!("{url} accepted");
            };
            assert!(why.contains("credentials"), "{why}");
            assert!(!why.contains("secret"), "the password is echoed: {why}");
        }
    }

    /// A URL refused for another reason (scheme, port, syntax) is shown
    /// with its credentials blanked out too.
    #[test]
    fn other_url_errors_do_not_echo_credentials_either() {
        for url in [
            "ftp://user:secret@host/mcp",
            "https://user:secret@host/mcp",
            "http://user:secret@host:99999/mcp",
            "http://user:secret@ho st/mcp",
        ] {
            let Err(TransportError::InvalidUrl(why)) = Target::parse(url) else {
                panic!("{url} accepted");
            };
            assert!(!why.contains("secret"), "the password is echoed: {why}");
        }
        assert_eq!(without_userinfo("http://a:b@h:1/p@q"), "http://***@h:1/p@q");
        assert_eq!(without_userinfo("http://h/p@q"), "http://h/p@q");
    }

    #[test]
    fn session_ids() {
        assert_eq!(
            valid_session_id(&HeaderValue::from_static("abc-123")).unwrap(),
            "abc-123"
        );
        for bad in ["", "a b", &"x".repeat(129)] {
            let v = HeaderValue::from_str(bad).unwrap();
            assert!(
                matches!(
                    valid_session_id(&v),
                    Err(TransportError::InvalidSessionId { .. })
                ),
                "{bad:?}"
            );
        }
        let v = HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
        assert!(valid_session_id(&v).is_err());
    }

    /// A loopback server answering each request with `answer(n, method)`
    /// (`n`: how many came before it), recording the methods it saw;
    /// its port and the record.
    async fn recording_server(
        answer: fn(usize, &Method) -> hyper::http::Result<Response<Full<Bytes>>>,
    ) -> (u16, Arc<Mutex<Vec<Method>>>) {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::<Method>::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let n = {
                        let mut log = lock(&log);
                        log.push(req.method().clone());
                        log.len() - 1
                    };
                    let resp = answer(n, req.method());
                    async move { resp }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        (port, seen)
    }

    /// The answer to `initialize` that opens session `s1`.
    fn initialize_s1() -> hyper::http::Result<Response<Full<Bytes>>> {
        let init = br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"t","version":"1"}}}"#;
        Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .header("mcp-session-id", "s1")
            .body(Full::new(Bytes::from_static(init)))
    }

    /// A connection to `port` with session `s1` initialized.
    async fn initialized(port: u16) -> HttpConnection<super::super::TcpDialer> {
        let cfg = HttpConfig {
            close_timeout_ms: 2_000,
            ..HttpConfig::new(format!("http://127.0.0.1:{port}/mcp"))
        };
        let clock = Arc::new(crate::TokioClock::new());
        let conn = HttpConnector::new(super::super::TcpDialer, cfg, clock)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let params = InitializeParams {
            protocol_version: "2025-11-25".into(),
            client_name: "t".into(),
            client_version: "1".into(),
        };
        let init = conn.initialize(&params).await.unwrap();
        assert_eq!(init.session_id.as_deref(), Some("s1"));
        conn
    }

    /// `close` on an idle session sends its DELETE on the keep-alive
    /// connection and returns at once (it once waited on its own lock until
    /// the close timeout, and the DELETE was never sent).
    #[tokio::test]
    async fn close_sends_delete_without_waiting_for_the_timeout() {
        let (port, seen) = recording_server(|_, method| match *method {
            Method::DELETE => Response::builder().status(405).body(Full::default()),
            _ => initialize_s1(),
        })
        .await;
        let conn = initialized(port).await;
        assert_eq!(conn.close().await, Ok(CloseOutcome::NotAllowed));
        assert_eq!(*lock(&seen), [Method::POST, Method::DELETE]);
    }

    /// A session the server answered 404 for is gone there: closing it
    /// sends no DELETE for the dead id.
    #[tokio::test]
    async fn no_delete_for_a_session_the_server_declared_gone() {
        let (port, seen) = recording_server(|n, _| match n {
            0 => initialize_s1(),
            _ => Response::builder().status(404).body(Full::default()),
        })
        .await;
        let conn = initialized(port).await;
        let r = Connection::request(&conn, &Operation::Ping, None).await;
        assert_eq!(r.err(), Some(TransportError::SessionNotFound));
        assert_eq!(conn.close().await, Ok(CloseOutcome::AlreadyGone));
        assert_eq!(*lock(&seen), [Method::POST, Method::POST]);
    }

    /// A DELETE the TypeScript SDK answers with its 400 "No valid session
    /// ID" found the session already gone, as a 404 would (it was counted
    /// as a failed close; the simulation's drawn
    /// `answer_400_for_unknown_session` showed it).
    #[tokio::test]
    async fn a_delete_answered_the_typescript_400_finds_the_session_gone() {
        let (port, seen) = recording_server(|n, _| match n {
            0 => initialize_s1(),
            _ => Response::builder()
                .status(400)
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#,
                ))),
        })
        .await;
        let conn = initialized(port).await;
        assert_eq!(conn.close().await, Ok(CloseOutcome::AlreadyGone));
        assert_eq!(*lock(&seen), [Method::POST, Method::DELETE]);
    }
}
