//! The [`Manager`]: validates the config, starts the deadline timer, and dispatches
//! acquire / give-back to the mode; owns what every mode shares (the
//! registry of live sessions, metrics, events, session creation and
//! closing).
//!
//! Concurrency model: one `std::sync::Mutex` around all state, never held
//! across an `.await`. Every decision is made under it; all I/O (connect,
//! initialize, operations, close) happens outside it. Closing a session is
//! decided (and counted, and reported) under the lock and carried out by a
//! spawned task, so releasing never blocks and nothing does I/O in `Drop`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{millis, Clock, Instant, TokioClock};
use crate::config::{Mode, SessionConfig};
use crate::era::{self, Decision, EraState, Plan, SessionEra};
use crate::error::{ErrorKind, Op, SessionError};
use crate::eviction::{run_deadline_timer, Deadlines, Entry, HasDeadlines};
use crate::lease::Lease;
use crate::metrics::{CloseReason, SessionMetrics};
use crate::mode_core::Return;
use crate::modes::{self, Core, Wait, Wakers};
use crate::observe::{Event, EventKind, EventSink, NoopSink, VuId};
use crate::session::{LiveSession, SessionState};
use crate::sync::lock;
use crate::transport::{
    Answer, CallResult, Connection, Connector, Discovery, InitializeParams, Initialized,
    ModernParams, Operation, TransportError, VersionRetry,
};

/// A live session as the manager's state holds it.
pub(crate) type SessionRef<X> = Arc<LiveSession<X>>;

/// Hands out MCP sessions to virtual users in one of four modes.
///
/// Cheap to clone: clones share one manager. Build one with
/// [`Manager::builder`] (or [`Manager::start`] for the defaults), from inside
/// a tokio runtime (or a turmoil host).
pub struct Manager<C: Connector> {
    inner: Arc<Inner<C>>,
}

impl<C: Connector> Clone for Manager<C> {
    fn clone(&self) -> Self {
        Manager {
            inner: self.inner.clone(),
        }
    }
}

/// Builds a [`Manager`]: config, clock, event sink, client name.
pub struct ManagerBuilder {
    config: SessionConfig,
    clock: Option<Arc<dyn Clock>>,
    sink: Arc<dyn EventSink>,
    client_name: String,
    client_version: String,
    capabilities: serde_json::Value,
}

impl ManagerBuilder {
    /// A builder for a manager with `config`; the connector type is fixed
    /// at [`ManagerBuilder::start`].
    pub fn new(config: SessionConfig) -> Self {
        ManagerBuilder {
            config,
            clock: None,
            sink: Arc::new(NoopSink),
            client_name: "mcp-session".into(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            capabilities: serde_json::Value::Object(Default::default()),
        }
    }

    /// Uses `clock` instead of a [`TokioClock`] created at start.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Reports every state change to `sink` (default: nowhere).
    pub fn events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = sink;
        self
    }

    /// `clientInfo` sent in `initialize` and in every stateless-era
    /// request's `_meta` (default `mcp-session` and this crate's version).
    pub fn client_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.client_name = name.into();
        self.client_version = version.into();
        self
    }

    /// `clientCapabilities` sent in every stateless-era request's `_meta`
    /// (default `{}`: none of the optional ones). A server may only ask
    /// (MRTR) for input whose capability the request declared.
    pub fn client_capabilities(mut self, capabilities: serde_json::Value) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Validates the config and starts the manager (and its deadline timer task)
    /// over `connector`.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] naming the bad field, or with
    /// [`ErrorKind::NoRuntime`] outside a tokio runtime.
    pub fn start<C: Connector>(self, connector: C) -> Result<Manager<C>, SessionError> {
        self.config.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| SessionError::new(Op::Create, ErrorKind::NoRuntime))?;
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(TokioClock::new()) as Arc<dyn Clock>);
        let cfg = self.config;
        let deadlines = Deadlines {
            ttl: cfg.ttl(),
            max_idle: cfg.max_idle(),
        };
        let wake = Arc::new(Notify::new());
        let modes = modes::core_for(&cfg, deadlines);
        let era = EraState::new(cfg.era, &cfg.modern_protocol_versions);
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            modern: ModernParams {
                protocol_version: era.version().to_owned(),
                offered: cfg.modern_protocol_versions.clone(),
                capabilities: self.capabilities,
                client_name: self.client_name.clone(),
                client_version: self.client_version.clone(),
            },
            init: InitializeParams {
                protocol_version: cfg.protocol_version.clone(),
                client_name: self.client_name,
                client_version: self.client_version,
            },
            deadlines,
            cfg,
            connector,
            clock: clock.clone(),
            sink_enabled: self.sink.enabled(),
            sink: self.sink,
            state: Mutex::new(State::new(modes, era)),
            timer_wake: wake.clone(),
            quiet: Notify::new(),
        });
        runtime.spawn(run_deadline_timer(Arc::downgrade(&inner), clock, wake));
        Ok(Manager { inner })
    }
}

impl<C: Connector> Manager<C> {
    /// A builder for a manager with `config` (the same as
    /// [`ManagerBuilder::new`], which needs no type annotation).
    pub fn builder(config: SessionConfig) -> ManagerBuilder {
        ManagerBuilder::new(config)
    }

    /// Starts a manager with `config` over `connector`, on a
    /// [`TokioClock`] and without an event sink.
    pub fn start(config: SessionConfig, connector: C) -> Result<Self, SessionError> {
        ManagerBuilder::new(config).start(connector)
    }

    /// A session for `vu`. In pool mode this waits (FIFO) up to
    /// `acquire_timeout_ms` for an idle session or a free slot.
    ///
    /// One lease per VU in reuse and churn mode: while `vu` holds its
    /// lease, a second acquire fails with [`ErrorKind::VuBusy`] (the Go
    /// reference handed back the same session); concurrent work for one
    /// user takes one VU id per task ([`Lease#one-lease-per-vu`]). Keep the
    /// lease: `let _ = manager.acquire(1).await;` drops it, and dropping a
    /// lease closes its session at once.
    ///
    /// Cancel-safe: dropping the future at any point leaves no waiter, no
    /// reserved slot and no half-made session behind. A wait ended that way
    /// (say, by `tokio::time::timeout` around this call) is counted as a
    /// cancelled wait (`acquire_wait.cancelled`), not as a pool timeout:
    /// to give one call a shorter wait, use [`Manager::acquire_within`].
    pub async fn acquire(&self, vu: impl Into<VuId>) -> Result<Lease<C>, SessionError> {
        let limit = self.inner.cfg.acquire_timeout();
        self.inner.acquire(vu.into(), Wait::Upto(limit)).await
    }

    /// Like [`Manager::acquire`], but in pool mode this call waits at most
    /// `limit` (or `acquire_timeout_ms`, if that is shorter) — a per-call
    /// deadline, as a Go caller passes a context deadline. When it passes,
    /// the acquire fails with [`ErrorKind::PoolTimeout`] and is counted as
    /// one (`pool_timeouts`), exactly as the config's timeout is. Waiters
    /// are still served first come, first served; one whose own limit runs
    /// out leaves the queue without holding up the others.
    ///
    /// The limit bounds the wait for capacity; making a new session is
    /// bounded by the transport's own timeouts. The other modes never
    /// wait, so there it changes nothing.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use mcp_session::{ErrorKind, Manager, SessionConfig, TokioClock};
    /// # use mcp_session::transport::scripted::ScriptedConnector;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let server = ScriptedConnector::new(Arc::new(TokioClock::new()));
    /// let manager = Manager::start(SessionConfig::pool(1), server).unwrap();
    /// let held = manager.acquire(1).await.unwrap(); // the only session
    /// let e = manager
    ///     .acquire_within(2, Duration::from_millis(50))
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(e.kind, ErrorKind::PoolTimeout { .. }));
    /// assert_eq!(manager.metrics().pool_timeouts, 1);
    /// # drop(held); manager.close().await; }
    /// ```
    pub async fn acquire_within(
        &self,
        vu: impl Into<VuId>,
        limit: Duration,
    ) -> Result<Lease<C>, SessionError> {
        let limit = limit.min(self.inner.cfg.acquire_timeout());
        self.inner.acquire(vu.into(), Wait::Upto(limit)).await
    }

    /// Like [`Manager::acquire`], but in pool mode fails at once with
    /// [`ErrorKind::PoolExhausted`] instead of waiting.
    pub async fn try_acquire(&self, vu: impl Into<VuId>) -> Result<Lease<C>, SessionError> {
        self.inner.acquire(vu.into(), Wait::No).await
    }

    /// Closes the manager: pending acquires fail with manager-closed, every
    /// session (idle, leased, in creation) is closed, and this returns once
    /// the transport closes (DELETEs) and in-flight creations have finished.
    /// Idempotent: a second call waits for the same and returns.
    pub async fn close(&self) {
        self.inner.close().await
    }

    /// A snapshot of the metrics.
    pub fn metrics(&self) -> SessionMetrics {
        let st = self.inner.lock();
        let mut m = st.metrics;
        m.active_sessions = st.leased;
        m.live_sessions = st.live.len() as u64;
        m.idle_sessions = st.core.idle_count() as u64;
        for cell in st.live.values() {
            m.eras.of_mut(cell.era).live += 1;
        }
        m
    }

    /// The config the manager runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.cfg
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.inner.cfg.mode
    }

    /// Whether [`Manager::close`] has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// The manager's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The era the manager found its server speaks (`None` before the
    /// first session, or while a doubted verdict waits for its re-probe).
    pub fn era(&self) -> Option<SessionEra> {
        self.inner.lock().era.current()
    }

    /// The era and protocol revision of the session created last: what
    /// the manager negotiated with its server (`None` before the first).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.inner.lock().negotiated.clone()
    }

    /// The server's `server/discover` result, while it is fresh (its
    /// `ttlMs` has not passed since it was answered).
    pub fn discovery(&self) -> Option<Discovery> {
        let now = self.inner.clock.now();
        self.inner.lock().era.discovery(now).cloned()
    }

    /// Checks the pool's internal invariant (pool mode; `Ok` otherwise).
    /// For tests and audits.
    pub fn check_invariants(&self) -> Result<(), String> {
        let st = self.inner.lock();
        st.core.check_invariants()
    }
}

/// What a manager negotiated with its server: the era and revision of the
/// session it created last.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Negotiated {
    /// The era.
    pub era: SessionEra,
    /// The protocol revision.
    pub version: String,
}

/// The shared part of a manager.
pub(crate) struct Inner<C: Connector> {
    me: Weak<Inner<C>>,
    pub cfg: SessionConfig,
    pub deadlines: Deadlines,
    pub init: InitializeParams,
    /// The stateless-era envelope (its version is set per context).
    modern: ModernParams,
    pub connector: C,
    pub clock: Arc<dyn Clock>,
    sink: Arc<dyn EventSink>,
    sink_enabled: bool,
    state: Mutex<State<C::Connection>>,
    timer_wake: Arc<Notify>,
    /// Notified when no close and no creation is in flight.
    quiet: Notify,
}

/// Everything behind the manager's lock.
pub(crate) struct State<X> {
    pub closed: bool,
    close_reported: bool,
    /// The deadline the deadline timer last said it sleeps until (`None`: no
    /// deadline). A release wakes it only for an earlier one.
    timer_next: Option<Instant>,
    next_key: u64,
    pub metrics: SessionMetrics,
    /// Every session initialized and not yet closed, by key.
    live: BTreeMap<u64, SessionRef<X>>,
    /// Sessions leased to VUs.
    pub leased: u64,
    /// Session closes decided but not yet carried out.
    closing: u64,
    /// Session creations under way.
    creating: u64,
    /// The mode's decisions.
    pub core: Core<X>,
    /// The wakers of tasks parked waiting for the core's grant.
    pub wakers: Wakers,
    /// The server's era, as far as the manager knows it.
    pub era: EraState,
    /// Era and revision of the session created last.
    negotiated: Option<Negotiated>,
}

impl<X> State<X> {
    fn new(core: Core<X>, era: EraState) -> Self {
        State {
            era,
            negotiated: None,
            closed: false,
            close_reported: false,
            timer_next: None,
            next_key: 0,
            metrics: SessionMetrics::default(),
            live: BTreeMap::new(),
            leased: 0,
            closing: 0,
            creating: 0,
            core,
            wakers: Wakers::default(),
        }
    }
}

impl<C: Connector> Inner<C> {
    pub fn lock(&self) -> MutexGuard<'_, State<C::Connection>> {
        lock(&self.state)
    }

    pub fn arc(&self) -> Arc<Inner<C>> {
        // `self` is borrowed from an `Arc`, so the upgrade cannot fail while
        // this method runs.
        self.me.upgrade().expect("Inner is always owned by an Arc")
    }

    /// Reports an event. Call with the state lock held, so that events are
    /// in the order of the state changes.
    pub fn emit(&self, vu: Option<VuId>, session: Option<&str>, kind: EventKind) {
        if !self.sink_enabled {
            return;
        }
        self.sink.record(&Event {
            at: self.clock.now(),
            vu,
            session: session.map(str::to_owned),
            kind,
        });
    }

    /// A new deadline for the deadline timer (an idle session's or a waiter's):
    /// wakes it if the deadline is earlier than the one it sleeps until.
    pub fn deadline_added(&self, st: &mut State<C::Connection>, d: Instant) {
        if st.timer_next.is_none_or(|n| d < n) {
            st.timer_next = Some(d);
            self.wake_timer();
        }
    }

    /// Wakes the deadline timer to look at its deadlines again (the manager closed,
    /// or a grant handed back may have made a session idle).
    pub fn wake_timer(&self) {
        self.timer_wake.notify_one();
    }

    async fn acquire(&self, vu: VuId, wait: Wait) -> Result<Lease<C>, SessionError> {
        let r = modes::acquire(self, vu, wait).await;
        if let Err(e) = &r {
            let _st = self.lock();
            let kind = match e.kind {
                ErrorKind::PoolTimeout { waited } => EventKind::AcquireTimeout {
                    waited_ms: millis(waited),
                },
                _ => EventKind::AcquireError {
                    error: e.kind_name(),
                },
            };
            self.emit(Some(vu), e.session.as_deref(), kind);
        }
        r
    }

    /// Makes a new session for `vu`: connect, then, as the era state
    /// plans it, either `initialize` + version check +
    /// `notifications/initialized` (legacy era), or a stateless-era
    /// context — with a `server/discover` first when the era is unknown,
    /// doubted, or its discover result is stale (and a fallback to
    /// `initialize` when the probe finds a legacy server). The session is
    /// counted as created (and registered, so `close()` reaches it) as soon
    /// as the server has initialized it (or the context is made); if a later
    /// step fails or the future is dropped, it is closed with reason
    /// `failed`.
    pub async fn create_session(
        &self,
        vu: VuId,
    ) -> Result<SessionRef<C::Connection>, SessionError> {
        let _creating = CreatingGuard::new(self);
        let err = |kind| SessionError::new(Op::Acquire, kind);
        let conn = self
            .connector
            .connect()
            .await
            .map_err(|e| err(ErrorKind::Connect(e)))?;
        let made = self.open_era(&conn, vu).await?;
        let cell = {
            let mut st = self.lock();
            st.next_key += 1;
            let key = st.next_key;
            let (id, era, version) = match made {
                // Stateless servers issue no id: a per-manager counter makes
                // one, so ids never depend on what else ran in the process.
                Made::Legacy(init) => (
                    init.session_id.unwrap_or_else(|| format!("local-{key}")),
                    SessionEra::Legacy,
                    init.protocol_version,
                ),
                Made::Modern { version } => (format!("ctx-{key}"), SessionEra::Modern, version),
            };
            st.negotiated = Some(Negotiated {
                era,
                version: version.clone(),
            });
            let cell = Arc::new(LiveSession::new(key, id, era, version, conn));
            st.live.insert(key, cell.clone());
            st.metrics.record_created(era);
            self.emit(Some(vu), Some(&cell.id), EventKind::Created { era });
            if st.closed {
                self.begin_close(&mut st, &cell, CloseReason::Shutdown, Some(vu));
                return Err(err(ErrorKind::ManagerClosed).with_session(&cell.id));
            }
            cell
        };
        if cell.era == SessionEra::Modern {
            // A context needs nothing more: no handshake to complete.
            return Ok(cell);
        }
        let half_made = HalfMade {
            inner: self,
            cell: Some(cell.clone()),
            vu,
        };
        let policy = self.cfg.protocol_version_policy;
        if !policy.accepts(&self.cfg.protocol_version, &cell.protocol_version) {
            return Err(err(ErrorKind::VersionNegotiation {
                requested: self.cfg.protocol_version.clone(),
                answered: cell.protocol_version.clone(),
                policy,
            })
            .with_session(&cell.id));
        }
        cell.conn
            .notify_initialized()
            .await
            .map_err(|e| err(ErrorKind::InitializedNotification(e)).with_session(&cell.id))?;
        if cell.closed().is_some() {
            // The manager closed while the notification was in flight.
            return Err(err(ErrorKind::ManagerClosed).with_session(&cell.id));
        }
        half_made.disarm();
        Ok(cell)
    }

    /// The stateless-era envelope at `version`.
    fn modern_params(&self, version: &str) -> ModernParams {
        ModernParams {
            protocol_version: version.to_owned(),
            ..self.modern.clone()
        }
    }

    /// Sets `conn` up in the era the era state plans: `initialize` on it,
    /// or make it a stateless-era context (probing first if need be).
    async fn open_era(&self, conn: &C::Connection, vu: VuId) -> Result<Made, SessionError> {
        let plan = {
            let st = self.lock();
            st.era.plan(self.clock.now())
        };
        let (version, reprobe) = match plan {
            Plan::Modern { version } => {
                conn.use_modern(Some(&self.modern_params(&version)));
                return Ok(Made::Modern { version });
            }
            Plan::Probe { version, reprobe } => (version, reprobe),
            Plan::Legacy => match conn.initialize(&self.init).await {
                Ok(init) => return Ok(Made::Legacy(init)),
                // An `auto` manager whose legacy server now refuses
                // `initialize` as a modern server does: probe at once.
                Err(e) if era::initialize_says_modern(&e) => {
                    let mut st = self.lock();
                    if !st.era.initialize_refused_as_modern() {
                        return Err(SessionError::new(Op::Acquire, ErrorKind::Initialize(e)));
                    }
                    let version = st.era.version().to_owned();
                    (version, Some("initialize was answered with a modern error"))
                }
                Err(e) => return Err(SessionError::new(Op::Acquire, ErrorKind::Initialize(e))),
            },
        };
        self.probe(conn, vu, &version, reprobe).await
    }

    /// Sends `server/discover` at `version` on `conn` and acts on the
    /// verdict: a modern context, a fallback to `initialize`, or an error.
    async fn probe(
        &self,
        conn: &C::Connection,
        vu: VuId,
        version: &str,
        reprobe: Option<&'static str>,
    ) -> Result<Made, SessionError> {
        conn.use_modern(Some(&self.modern_params(version)));
        let answer = conn.request(&Operation::Discover, None).await;
        let sent = conn.modern_version().unwrap_or_else(|| version.to_owned());
        let decision = {
            let mut st = self.lock();
            let m = &mut st.metrics.eras;
            m.discover_probes += 1;
            if reprobe.is_some() {
                m.era_reprobes += 1;
            }
            if let Ok(Answer {
                renegotiated: Some(r),
                ..
            }) = &answer
            {
                self.version_retried(&mut st, vu, None, r);
            }
            let judged = era::judge_probe(answer.as_ref().map(|a| &a.result), st.era.offered());
            let now = self.clock.now();
            let decision = st.era.probed(judged, &sent, now);
            let ttl_ms = match decision {
                Decision::Modern => st
                    .era
                    .discovery(now)
                    .map(|d| d.ttl_ms.min(crate::config::MAX_DURATION_MS)),
                _ => None,
            };
            let (verdict, said) = match &decision {
                Decision::Modern => ("modern", None),
                Decision::FallBack(why) => ("legacy", Some(why.clone())),
                Decision::Fail(e) => ("failed", Some(e.to_string())),
            };
            if verdict == "legacy" {
                st.metrics.eras.fallbacks_to_legacy += 1;
            }
            self.emit(
                Some(vu),
                None,
                EventKind::EraProbed {
                    version: sent.clone(),
                    verdict,
                    reprobe,
                    answer: said,
                    ttl_ms,
                },
            );
            match decision {
                Decision::Modern => Ok(st.era.version().to_owned()),
                other => Err(other),
            }
        };
        match decision {
            Ok(version) => {
                if version != sent {
                    conn.use_modern(Some(&self.modern_params(&version)));
                }
                Ok(Made::Modern { version })
            }
            Err(Decision::FallBack(_)) => {
                conn.use_modern(None);
                let init = conn
                    .initialize(&self.init)
                    .await
                    .map_err(|e| SessionError::new(Op::Acquire, ErrorKind::Initialize(e)))?;
                Ok(Made::Legacy(init))
            }
            Err(Decision::Fail(e)) => Err(SessionError::new(Op::Acquire, ErrorKind::Discover(e))),
            Err(Decision::Modern) => unreachable!("handled above"),
        }
    }

    /// A request was retried after -32022: counted, reported, and the
    /// revision kept for new contexts (call with the lock held).
    pub fn version_retried(
        &self,
        st: &mut State<C::Connection>,
        vu: VuId,
        session: Option<&str>,
        r: &VersionRetry,
    ) {
        st.metrics.eras.version_retries += 1;
        st.era.renegotiated(&r.to);
        self.emit(
            Some(vu),
            session,
            EventKind::VersionRetried {
                from: r.from.clone(),
                to: r.to.clone(),
            },
        );
    }

    /// An operation's answer that needs no lock: a plain result (no
    /// version retry, not a discover result to store) while no event sink
    /// listens. Anything else comes back as `Err`, for
    /// [`Inner::operation_ended`] under the lock. The two must agree: what
    /// passes here is exactly what `operation_ended` would return untouched.
    pub fn settle_quietly(
        &self,
        cell: &SessionRef<C::Connection>,
        op: &Operation,
        answer: Result<Answer, TransportError>,
    ) -> Result<CallResult, Result<Answer, TransportError>> {
        match answer {
            Ok(a)
                if !self.sink_enabled
                    && a.renegotiated.is_none()
                    && !(*op == Operation::Discover && cell.era == SessionEra::Modern) =>
            {
                Ok(a.result)
            }
            other => Err(other),
        }
    }

    /// What an operation's answer tells the era state (call with the lock
    /// held): a retry after -32022, a fresh discover result, a lost legacy
    /// session, a modern request answered as legacy. Returns the result,
    /// or the error kind of a failed operation.
    pub fn operation_ended(
        &self,
        st: &mut State<C::Connection>,
        vu: VuId,
        cell: &SessionRef<C::Connection>,
        op: &Operation,
        answer: Result<Answer, TransportError>,
    ) -> Result<CallResult, ErrorKind> {
        let e = match answer {
            Ok(a) => {
                if let Some(r) = &a.renegotiated {
                    self.version_retried(st, vu, Some(&cell.id), r);
                }
                if *op == Operation::Discover && cell.era == SessionEra::Modern {
                    if let Some(d) = a.result.discovery() {
                        st.era.store(d, self.clock.now());
                    }
                }
                return Ok(a.result);
            }
            Err(e) => e,
        };
        Err(match (e, cell.era) {
            (TransportError::SessionNotFound, SessionEra::Legacy) => {
                st.era.legacy_session_lost();
                ErrorKind::SessionExpired
            }
            // A legacy session answered with a modern-only error: the
            // server now speaks only the stateless era; the session is gone.
            (e, SessionEra::Legacy) if era::is_modern_error(&e) => {
                st.era.legacy_answered_as_modern();
                st.metrics.eras.era_changes += 1;
                self.emit(Some(vu), Some(&cell.id), EventKind::EraChanged);
                ErrorKind::EraChanged(e)
            }
            (e, SessionEra::Modern) if era::answered_as_legacy(&e) => {
                st.era.modern_answered_as_legacy();
                st.metrics.eras.era_changes += 1;
                self.emit(Some(vu), Some(&cell.id), EventKind::EraChanged);
                ErrorKind::EraChanged(e)
            }
            (TransportError::SessionNotFound, _) => ErrorKind::SessionExpired,
            (e, _) => ErrorKind::Operation(e),
        })
    }

    /// Decides that `cell` is closed for `reason`: counts it, reports it,
    /// forgets it, and spawns the transport close. A no-op if it was already
    /// closed, so racing paths count each session once.
    pub fn begin_close(
        &self,
        st: &mut State<C::Connection>,
        cell: &SessionRef<C::Connection>,
        reason: CloseReason,
        vu: Option<VuId>,
    ) {
        if !cell.mark_closed(reason) {
            return;
        }
        st.metrics.record_close(reason, cell.era);
        st.live.remove(&cell.key);
        self.emit(vu, Some(&cell.id), EventKind::Closed { reason });
        // Without a runtime (a lease that outlived it) nothing can carry the
        // close out: dropping the connection is all that is left.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            st.closing += 1;
            let (me, cell) = (self.arc(), cell.clone());
            rt.spawn(async move {
                // A failed DELETE changes nothing for the client: the session
                // is closed on our side either way. It is reported, so an
                // audit can tell a refused or unreachable close from a leak.
                let result = cell.conn.close().await;
                let mut st = me.lock();
                st.metrics
                    .server_closes
                    .record(result.as_ref().ok().copied());
                if let Err(e) = result {
                    me.emit(
                        None,
                        Some(&cell.id),
                        EventKind::CloseFailed {
                            error: e.to_string(),
                        },
                    );
                }
                st.closing -= 1;
                me.notify_if_quiet(&st);
            });
        }
    }

    fn notify_if_quiet(&self, st: &State<C::Connection>) {
        if st.closing == 0 && st.creating == 0 {
            self.quiet.notify_waiters();
        }
    }

    /// Takes a lease's session back: released, invalidated, or dropped
    /// (a lease never says [`Return::Closed`]: the shell finds that out).
    pub fn give_back(&self, vu: VuId, entry: Entry<SessionRef<C::Connection>>, how: Return) {
        let now = self.clock.now();
        // A released session may go idle, with a new eviction deadline. The
        // deadline timer is woken only if that is earlier than the one it sleeps
        // until (rare: deadlines mostly grow), not on every release.
        let deadline = match how {
            Return::Release => self.deadlines.next_at(entry.created_at, now),
            Return::Invalidate | Return::Drop | Return::Closed => None,
        };
        let mut st = self.lock();
        st.leased = st.leased.saturating_sub(1);
        self.emit(
            Some(vu),
            Some(&entry.item.id),
            match how {
                Return::Release | Return::Closed => EventKind::Released,
                Return::Invalidate => EventKind::Invalidated,
                Return::Drop => EventKind::LeaseDropped,
            },
        );
        if how == Return::Release {
            // Kept, or handed straight to a waiter (then active again), or
            // closed below (then it ends expired or closed from idle).
            entry.item.set_state(SessionState::Idle);
        }
        modes::give_back(self, &mut st, vu, entry, how, now);
        if let Some(d) = deadline {
            self.deadline_added(&mut st, d);
        }
    }

    /// Hands `entry` to `vu` as a lease (call with the lock held).
    pub fn hand_out(
        &self,
        st: &mut State<C::Connection>,
        vu: VuId,
        entry: Entry<SessionRef<C::Connection>>,
        created: bool,
        waited_ms: u64,
    ) -> Result<Lease<C>, SessionError> {
        if st.closed {
            // close() ran between the session's creation and now.
            self.begin_close(st, &entry.item, CloseReason::Shutdown, Some(vu));
            return Err(SessionError::new(Op::Acquire, ErrorKind::ManagerClosed)
                .with_session(&entry.item.id));
        }
        st.leased += 1;
        entry.item.set_state(SessionState::Active);
        let reconnect = created && st.core.take_replacement(vu);
        if reconnect {
            st.metrics.record_reconnect(entry.item.era);
        }
        self.emit(
            Some(vu),
            Some(&entry.item.id),
            EventKind::AcquireOk {
                created,
                reconnect,
                waited_ms,
            },
        );
        Ok(Lease::new(self.arc(), vu, entry))
    }

    async fn close(&self) {
        {
            let mut st = self.lock();
            if !st.closed {
                st.closed = true;
                self.emit(None, None, EventKind::ManagerClosing);
                modes::close(&mut st);
                let live: Vec<_> = st.live.values().cloned().collect();
                for cell in live {
                    self.begin_close(&mut st, &cell, CloseReason::Shutdown, None);
                }
            }
        }
        self.wake_timer();
        loop {
            let quiet = self.quiet.notified();
            tokio::pin!(quiet);
            quiet.as_mut().enable();
            {
                let st = self.lock();
                if st.closing == 0 && st.creating == 0 {
                    break;
                }
            }
            quiet.await;
        }
        let mut st = self.lock();
        if !st.close_reported {
            st.close_reported = true;
            self.emit(None, None, EventKind::ManagerClosed);
        }
    }
}

impl<C: Connector> HasDeadlines for Inner<C> {
    fn next_deadline(&self) -> Result<Option<Instant>, ()> {
        let mut st = self.lock();
        if st.closed {
            return Err(());
        }
        let next = st.core.next_wakeup();
        st.timer_next = next;
        Ok(next)
    }

    fn deadlines_due(&self, now: Instant) {
        let mut st = self.lock();
        if !st.closed {
            modes::deadlines_due(self, &mut st, now);
        }
    }
}

impl<C: Connector> Drop for Inner<C> {
    fn drop(&mut self) {
        // Let the deadline timer see that its manager is gone.
        self.timer_wake.notify_one();
    }
}

/// Counts a creation in flight, so `close()` waits for it.
struct CreatingGuard<'a, C: Connector> {
    inner: &'a Inner<C>,
}

impl<'a, C: Connector> CreatingGuard<'a, C> {
    fn new(inner: &'a Inner<C>) -> Self {
        inner.lock().creating += 1;
        CreatingGuard { inner }
    }
}

impl<C: Connector> Drop for CreatingGuard<'_, C> {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.creating -= 1;
        self.inner.notify_if_quiet(&st);
    }
}

/// A session the server initialized but the client has not finished making.
/// Unless disarmed, dropping it (an error, or the acquire being cancelled)
/// closes the session with reason `failed`.
struct HalfMade<'a, C: Connector> {
    inner: &'a Inner<C>,
    cell: Option<SessionRef<C::Connection>>,
    vu: VuId,
}

impl<C: Connector> HalfMade<'_, C> {
    fn disarm(mut self) {
        self.cell = None;
    }
}

impl<C: Connector> Drop for HalfMade<'_, C> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            let mut st = self.inner.lock();
            self.inner
                .begin_close(&mut st, &cell, CloseReason::Failed, Some(self.vu));
        }
    }
}

/// How a connection was set up: a legacy session, or a stateless context.
enum Made {
    Legacy(Initialized),
    Modern { version: String },
}
