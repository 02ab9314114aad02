//! **Test double.** An in-memory [`Connector`] whose server is a few maps and
//! whose behaviour is scripted: latency on the injected clock, failures of the
//! next N connects / initializes / initialized notifications / operations,
//! the protocol version it answers, stateless mode, sessions that expire on
//! the "server" (404), a server restart, and which eras it speaks (legacy
//! only by default; [`ScriptedConnector::set_eras`]).
//!
//! It records what its server saw (sessions initialized, DELETEs, operations
//! per session), so tests can check the manager's counters against the other
//! side. It is not a network transport and never touches a socket.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::{
    Answer, CallResult, CloseOutcome, Connection, Connector, InitializeParams, Initialized,
    InputResponses, ModernParams, Operation, TransportError,
};
use crate::clock::Clock;
use crate::sync::lock;

/// The scripted test double. Clones share one script and one server.
#[derive(Clone)]
pub struct ScriptedConnector {
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<Server>>,
}

#[derive(Default)]
struct Server {
    latency: Duration,
    initialize_latency: Duration,
    answer_version: Option<String>,
    stateless: bool,
    fail_connects: u32,
    fail_initializes: u32,
    fail_initialized: u32,
    fail_operations: u32,
    fail_closes: u32,
    speaks_legacy: bool,
    speaks_modern: bool,
    discover_ttl_ms: u64,
    probes: u64,
    next_id: u64,
    connects: u64,
    live: BTreeSet<String>,
    initialized: Vec<String>,
    deleted: Vec<String>,
    operations: BTreeMap<String, u64>,
    operation_log: Vec<(String, String)>,
}

impl ScriptedConnector {
    /// A server that answers everything at once, with session ids `s-1`,
    /// `s-2`, ... and the requested protocol version.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        ScriptedConnector {
            clock,
            state: Arc::new(Mutex::new(Server {
                speaks_legacy: true,
                ..Server::default()
            })),
        }
    }

    /// Which eras the server speaks. Legacy-only (the default) answers a
    /// modern request as the TypeScript SDK 1.x does (400 -32000 "Server
    /// not initialized"); modern-only answers `initialize` with 404 -32601.
    pub fn set_eras(&self, legacy: bool, modern: bool) {
        self.with(|s| {
            s.speaks_legacy = legacy;
            s.speaks_modern = modern;
        });
    }

    /// `ttlMs` of the server's `server/discover` results (default 0).
    pub fn set_discover_ttl(&self, ms: u64) {
        self.with(|s| s.discover_ttl_ms = ms);
    }

    /// `server/discover` requests received so far.
    pub fn discover_probes(&self) -> u64 {
        self.with(|s| s.probes)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Server) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// Every request (connect, initialize, notification, operation, close)
    /// takes `d` of clock time.
    pub fn set_latency(&self, d: Duration) {
        self.with(|s| s.latency = d);
    }

    /// `initialize` takes `d` of clock time (instead of the latency).
    pub fn set_initialize_latency(&self, d: Duration) {
        self.with(|s| s.initialize_latency = d);
    }

    /// Answer `initialize` with `version` instead of echoing the request.
    pub fn answer_version(&self, version: Option<&str>) {
        self.with(|s| s.answer_version = version.map(str::to_owned));
    }

    /// A stateless server issues no session id.
    pub fn set_stateless(&self, stateless: bool) {
        self.with(|s| s.stateless = stateless);
    }

    /// The next `n` connects fail.
    pub fn fail_next_connects(&self, n: u32) {
        self.with(|s| s.fail_connects = n);
    }

    /// The next `n` `initialize` requests fail with HTTP 500.
    pub fn fail_next_initializes(&self, n: u32) {
        self.with(|s| s.fail_initializes = n);
    }

    /// The next `n` initialized notifications fail with HTTP 500 (the
    /// server has already created the session).
    pub fn fail_next_initialized(&self, n: u32) {
        self.with(|s| s.fail_initialized = n);
    }

    /// The next `n` operations fail with a JSON-RPC error.
    pub fn fail_next_operations(&self, n: u32) {
        self.with(|s| s.fail_operations = n);
    }

    /// The next `n` closes (DELETE) fail with HTTP 503; the server keeps
    /// those sessions.
    pub fn fail_next_closes(&self, n: u32) {
        self.with(|s| s.fail_closes = n);
    }

    /// The server forgets session `id`: later requests on it get 404.
    pub fn expire(&self, id: &str) {
        self.with(|s| s.live.remove(id));
    }

    /// The server restarts: every session is lost.
    pub fn restart(&self) {
        self.with(|s| s.live.clear());
    }

    /// Connects attempted so far.
    pub fn connects(&self) -> u64 {
        self.with(|s| s.connects)
    }

    /// Session ids the server initialized, in order.
    pub fn initialized(&self) -> Vec<String> {
        self.with(|s| s.initialized.clone())
    }

    /// Session ids the client closed (DELETE), in order.
    pub fn deleted(&self) -> Vec<String> {
        self.with(|s| s.deleted.clone())
    }

    /// Session ids the server still holds.
    pub fn live(&self) -> Vec<String> {
        self.with(|s| s.live.iter().cloned().collect())
    }

    /// Operations the server received for `id`.
    pub fn operations_on(&self, id: &str) -> u64 {
        self.with(|s| s.operations.get(id).copied().unwrap_or(0))
    }

    /// Every operation received, as (session id, method), in order.
    pub fn operation_log(&self) -> Vec<(String, String)> {
        self.with(|s| s.operation_log.clone())
    }

    async fn delay(&self, d: Duration) {
        if !d.is_zero() {
            self.clock.sleep_until(self.clock.now() + d).await;
        }
    }

    fn latency(&self) -> Duration {
        self.with(|s| s.latency)
    }
}

impl Connector for ScriptedConnector {
    type Connection = ScriptedConnection;

    async fn connect(&self) -> Result<ScriptedConnection, TransportError> {
        self.delay(self.latency()).await;
        self.with(|s| {
            s.connects += 1;
            if s.fail_connects > 0 {
                s.fail_connects -= 1;
                return Err(TransportError::connect("connection refused (scripted)"));
            }
            Ok(())
        })?;
        Ok(ScriptedConnection {
            server: self.clone(),
            session: Mutex::new(None),
            modern: Mutex::new(None),
        })
    }
}

/// A connection of [`ScriptedConnector`].
pub struct ScriptedConnection {
    server: ScriptedConnector,
    session: Mutex<Option<String>>,
    /// The stateless-era revision in use, once switched to that era.
    modern: Mutex<Option<String>>,
}

impl ScriptedConnection {
    fn session(&self) -> Option<String> {
        lock(&self.session).clone()
    }

    /// Checks the session header like a Streamable HTTP server would.
    fn check_session(s: &Server, id: &Option<String>) -> Result<(), TransportError> {
        match id {
            Some(id) if !s.live.contains(id) => Err(TransportError::SessionNotFound),
            None if !s.stateless => Err(TransportError::BadRequest {
                code: None,
                message: "missing Mcp-Session-Id".into(),
            }),
            _ => Ok(()),
        }
    }
}

impl ScriptedConnection {
    /// Counts and logs an operation under `key`, and fails it if a failure
    /// is armed.
    fn record_operation(s: &mut Server, key: String, op: &Operation) -> Result<(), TransportError> {
        *s.operations.entry(key.clone()).or_default() += 1;
        s.operation_log.push((key, op.method().to_owned()));
        if s.fail_operations > 0 {
            s.fail_operations -= 1;
            return Err(TransportError::JsonRpc {
                code: -32603,
                message: "scripted failure".into(),
            });
        }
        Ok(())
    }

    /// A stateless-era request, answered as a dual or modern server would
    /// (or, if the server speaks only the legacy era, as the TypeScript
    /// SDK 1.x does).
    fn modern_answer(
        s: &mut Server,
        version: &str,
        op: &Operation,
        input: Option<&InputResponses>,
    ) -> Result<Value, TransportError> {
        if !s.speaks_modern {
            return Err(TransportError::BadRequest {
                code: Some(-32000),
                message: "Bad Request: Server not initialized".into(),
            });
        }
        if version != "2026-07-28" {
            return Err(TransportError::UnsupportedVersion {
                requested: version.to_owned(),
                supported: vec!["2026-07-28".into()],
                offered: Vec::new(),
            });
        }
        if *op == Operation::Discover {
            s.probes += 1;
            return Ok(json!({
                "supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                "resultType": "complete", "ttlMs": s.discover_ttl_ms, "cacheScope": "private",
            }));
        }
        Self::record_operation(s, "(modern)".to_owned(), op)?;
        Ok(match input {
            Some(i) => json!({"method": op.method(), "resultType": "complete",
                "inputResponses": i.input_responses, "requestState": i.request_state()}),
            None => json!({ "method": op.method(), "resultType": "complete" }),
        })
    }
}

impl Connection for ScriptedConnection {
    async fn initialize(&self, params: &InitializeParams) -> Result<Initialized, TransportError> {
        let d = self.server.with(|s| {
            if s.initialize_latency.is_zero() {
                s.latency
            } else {
                s.initialize_latency
            }
        });
        self.server.delay(d).await;
        let init = self.server.with(|s| {
            if !s.speaks_legacy {
                return Err(TransportError::MethodNotFound {
                    method: "initialize".into(),
                    status: 404,
                });
            }
            if s.fail_initializes > 0 {
                s.fail_initializes -= 1;
                return Err(TransportError::ServerError { status: 500 });
            }
            s.next_id += 1;
            let id = format!("s-{}", s.next_id);
            s.initialized.push(id.clone());
            let session_id = if s.stateless {
                None
            } else {
                s.live.insert(id.clone());
                Some(id)
            };
            Ok(Initialized {
                protocol_version: s
                    .answer_version
                    .clone()
                    .unwrap_or_else(|| params.protocol_version.clone()),
                session_id,
            })
        })?;
        *lock(&self.session) = init.session_id.clone();
        Ok(init)
    }

    async fn notify_initialized(&self) -> Result<(), TransportError> {
        self.server.delay(self.server.latency()).await;
        let id = self.session();
        self.server.with(|s| {
            Self::check_session(s, &id)?;
            if s.fail_initialized > 0 {
                s.fail_initialized -= 1;
                return Err(TransportError::ServerError { status: 500 });
            }
            Ok(())
        })
    }

    fn use_modern(&self, params: Option<&ModernParams>) {
        *lock(&self.session) = None;
        *lock(&self.modern) = params.map(|p| p.protocol_version.clone());
    }

    fn modern_version(&self) -> Option<String> {
        lock(&self.modern).clone()
    }

    async fn request(
        &self,
        op: &Operation,
        input: Option<&InputResponses>,
    ) -> Result<Answer, TransportError> {
        let modern = self.modern_version();
        if modern.is_some() && *op == Operation::Ping {
            return Err(TransportError::NotInModernEra { method: "ping" });
        }
        self.server.delay(self.server.latency()).await;
        if let Some(version) = modern {
            return self
                .server
                .with(|s| Self::modern_answer(s, &version, op, input))
                .map(|v| Answer::new(CallResult::from_value(&v)));
        }
        let id = self.session();
        self.server
            .with(|s| {
                Self::check_session(s, &id)?;
                let key = id.clone().unwrap_or_else(|| "(stateless)".into());
                Self::record_operation(s, key, op)?;
                Ok(json!({ "method": op.method() }))
            })
            .map(|v| Answer::new(CallResult::from_value(&v)))
    }

    async fn close(&self) -> Result<CloseOutcome, TransportError> {
        self.server.delay(self.server.latency()).await;
        if self.modern_version().is_some() {
            return Ok(CloseOutcome::Stateless);
        }
        match self.session() {
            Some(id) => self.server.with(|s| {
                if s.fail_closes > 0 {
                    s.fail_closes -= 1;
                    return Err(TransportError::ServerError { status: 503 });
                }
                s.deleted.push(id.clone());
                Ok(match s.live.remove(&id) {
                    true => CloseOutcome::Deleted,
                    false => CloseOutcome::AlreadyGone,
                })
            }),
            None => Ok(CloseOutcome::NoSessionId),
        }
    }
}
