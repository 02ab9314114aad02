//! The [`Manager`]: validates the config, starts the evictor, and dispatches
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

use tokio::sync::Notify;

use crate::clock::{lock, Clock, Instant, TokioClock};
use crate::config::{Mode, SessionConfig};
use crate::error::{ErrorKind, Op, SessionError};
use crate::eviction::{run_evictor, Deadlines, Entry, Evictable};
use crate::lease::Lease;
use crate::metrics::{CloseReason, SessionMetrics};
use crate::modes::{self, ModeData, Return};
use crate::observe::{Event, EventKind, EventSink, NoopSink, VuId};
use crate::session::{Cell, SessionState};
use crate::transport::{Connection, Connector, InitializeParams};

/// A live session as the manager's state holds it.
pub(crate) type Sess<X> = Arc<Cell<X>>;

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

    /// `clientInfo` sent in `initialize` (default `mcp-session` and this
    /// crate's version).
    pub fn client_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.client_name = name.into();
        self.client_version = version.into();
        self
    }

    /// Validates the config and starts the manager (and its evictor task)
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
        let modes = ModeData::new(&cfg, deadlines);
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
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
            state: Mutex::new(State::new(modes)),
            evictor_wake: wake.clone(),
            quiet: Notify::new(),
        });
        runtime.spawn(run_evictor(Arc::downgrade(&inner), clock, wake));
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
    /// Cancel-safe: dropping the future at any point leaves no waiter, no
    /// reserved slot and no half-made session behind.
    pub async fn acquire(&self, vu: impl Into<VuId>) -> Result<Lease<C>, SessionError> {
        self.inner.acquire(vu.into(), true).await
    }

    /// Like [`Manager::acquire`], but in pool mode fails at once with
    /// [`ErrorKind::PoolExhausted`] instead of waiting.
    pub async fn try_acquire(&self, vu: impl Into<VuId>) -> Result<Lease<C>, SessionError> {
        self.inner.acquire(vu.into(), false).await
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
        m.idle_sessions = st.modes.idle_count();
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

    /// Checks the pool's internal invariant (pool mode; `Ok` otherwise).
    /// For tests and audits.
    pub fn check_invariants(&self) -> Result<(), String> {
        let st = self.inner.lock();
        st.modes.check_invariants()
    }
}

/// The shared part of a manager.
pub(crate) struct Inner<C: Connector> {
    me: Weak<Inner<C>>,
    pub cfg: SessionConfig,
    pub deadlines: Deadlines,
    pub init: InitializeParams,
    pub connector: C,
    pub clock: Arc<dyn Clock>,
    sink: Arc<dyn EventSink>,
    sink_enabled: bool,
    state: Mutex<State<C::Connection>>,
    evictor_wake: Arc<Notify>,
    /// Notified when no close and no creation is in flight.
    quiet: Notify,
}

/// Everything behind the manager's lock.
pub(crate) struct State<X> {
    pub closed: bool,
    close_reported: bool,
    /// The deadline the evictor last said it sleeps until (`None`: no
    /// deadline). A release wakes it only for an earlier one.
    evictor_next: Option<Instant>,
    next_key: u64,
    pub metrics: SessionMetrics,
    /// Every session initialized and not yet closed, by key.
    live: BTreeMap<u64, Sess<X>>,
    /// Sessions leased to VUs.
    pub leased: u64,
    /// Session closes decided but not yet carried out.
    closing: u64,
    /// Session creations under way.
    creating: u64,
    pub modes: modes::ModeData<X>,
}

impl<X> State<X> {
    fn new(modes: modes::ModeData<X>) -> Self {
        State {
            closed: false,
            close_reported: false,
            evictor_next: None,
            next_key: 0,
            metrics: SessionMetrics::default(),
            live: BTreeMap::new(),
            leased: 0,
            closing: 0,
            creating: 0,
            modes,
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

    /// A new deadline for the evictor (an idle session's or a waiter's):
    /// wakes it if the deadline is earlier than the one it sleeps until.
    pub fn deadline_added(&self, st: &mut State<C::Connection>, d: Instant) {
        if st.evictor_next.is_none_or(|n| d < n) {
            st.evictor_next = Some(d);
            self.wake_evictor();
        }
    }

    /// Wakes the evictor to look at its deadlines again (the manager closed,
    /// or a grant handed back may have made a session idle).
    pub fn wake_evictor(&self) {
        self.evictor_wake.notify_one();
    }

    async fn acquire(&self, vu: VuId, wait: bool) -> Result<Lease<C>, SessionError> {
        // Pool mode reports the start and sees `closed` under its own lock
        // (the core is closed with the manager), saving a lock round trip.
        if self.cfg.mode != Mode::Pool {
            let st = self.lock();
            self.emit(Some(vu), None, EventKind::AcquireStart);
            if st.closed {
                drop(st);
                return Err(self.acquire_failed(vu, ErrorKind::ManagerClosed));
            }
        }
        // Pool acquires report their own cancellation (waiting or creating);
        // for the other modes a dropped acquire was creating a session.
        let mut cancelled = CancelWatch {
            inner: self,
            vu,
            armed: self.cfg.mode != Mode::Pool,
        };
        let r = match self.cfg.mode {
            Mode::Pool => modes::pool::acquire(self, vu, wait).await,
            Mode::Reuse | Mode::Churn => modes::reuse::acquire(self, vu).await,
            Mode::PerRequest => modes::per_request::acquire(self, vu).await,
        };
        cancelled.armed = false;
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

    /// An acquire error (reported by the caller of the mode's acquire).
    pub fn acquire_failed(&self, vu: VuId, kind: ErrorKind) -> SessionError {
        let e = SessionError::new(Op::Acquire, kind);
        let _st = self.lock();
        self.emit(
            Some(vu),
            None,
            EventKind::AcquireError {
                error: e.kind_name(),
            },
        );
        e
    }

    /// Makes a new session for `vu`: connect, `initialize`, version check,
    /// `notifications/initialized`. The session is counted as created (and
    /// registered, so `close()` reaches it) as soon as the server has
    /// initialized it; if a later step fails or the future is dropped, it is
    /// closed with reason `failed`.
    pub async fn create_session(&self, vu: VuId) -> Result<Sess<C::Connection>, SessionError> {
        let _creating = CreatingGuard::new(self);
        let err = |kind| SessionError::new(Op::Acquire, kind);
        let conn = self
            .connector
            .connect()
            .await
            .map_err(|e| err(ErrorKind::Connect(e)))?;
        let init = conn
            .initialize(&self.init)
            .await
            .map_err(|e| err(ErrorKind::Initialize(e)))?;
        let cell = {
            let mut st = self.lock();
            st.next_key += 1;
            let key = st.next_key;
            // Stateless servers issue no id: a per-manager counter makes one,
            // so ids never depend on what else ran in the process.
            let id = init.session_id.unwrap_or_else(|| format!("local-{key}"));
            let cell = Arc::new(Cell::new(key, id, init.protocol_version, conn));
            st.live.insert(key, cell.clone());
            st.metrics.total_created += 1;
            self.emit(Some(vu), Some(&cell.id), EventKind::Created);
            if st.closed {
                self.begin_close(&mut st, &cell, CloseReason::Shutdown, Some(vu));
                return Err(err(ErrorKind::ManagerClosed).with_session(&cell.id));
            }
            cell
        };
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

    /// Decides that `cell` is closed for `reason`: counts it, reports it,
    /// forgets it, and spawns the transport close. A no-op if it was already
    /// closed, so racing paths count each session once.
    pub fn begin_close(
        &self,
        st: &mut State<C::Connection>,
        cell: &Sess<C::Connection>,
        reason: CloseReason,
        vu: Option<VuId>,
    ) {
        if !cell.mark_closed(reason) {
            return;
        }
        st.metrics.record_close(reason);
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

    /// Takes a lease's session back: released, invalidated, or dropped.
    pub fn give_back(&self, vu: VuId, entry: Entry<Sess<C::Connection>>, how: Return) {
        let now = self.clock.now();
        // A released session may go idle, with a new eviction deadline. The
        // evictor is woken only if that is earlier than the one it sleeps
        // until (rare: deadlines mostly grow), not on every release.
        let deadline = match how {
            Return::Release => self.deadlines.next_at(entry.created_at, now),
            Return::Invalidate | Return::Drop => None,
        };
        let mut st = self.lock();
        st.leased = st.leased.saturating_sub(1);
        self.emit(
            Some(vu),
            Some(&entry.item.id),
            match how {
                Return::Release => EventKind::Released,
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
        entry: Entry<Sess<C::Connection>>,
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
        let reconnect = created && st.modes.take_replacement(vu);
        if reconnect {
            st.metrics.reconnects += 1;
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
                st.modes.close();
                let live: Vec<_> = st.live.values().cloned().collect();
                for cell in live {
                    self.begin_close(&mut st, &cell, CloseReason::Shutdown, None);
                }
            }
        }
        self.wake_evictor();
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

impl<C: Connector> Evictable for Inner<C> {
    fn next_deadline(&self) -> Result<Option<Instant>, ()> {
        let mut st = self.lock();
        if st.closed {
            return Err(());
        }
        let next = st.modes.next_deadline();
        st.evictor_next = next;
        Ok(next)
    }

    fn evict_due(&self, now: Instant) {
        let mut st = self.lock();
        if !st.closed {
            modes::evict_due(self, &mut st, now);
        }
    }
}

impl<C: Connector> Drop for Inner<C> {
    fn drop(&mut self) {
        // Let the evictor see that its manager is gone.
        self.evictor_wake.notify_one();
    }
}

/// Reports an acquire whose future was dropped before it ended (so every
/// `AcquireStart` in a trace has an end).
struct CancelWatch<'a, C: Connector> {
    inner: &'a Inner<C>,
    vu: VuId,
    armed: bool,
}

impl<C: Connector> Drop for CancelWatch<'_, C> {
    fn drop(&mut self) {
        if self.armed {
            let _st = self.inner.lock();
            self.inner.emit(
                Some(self.vu),
                None,
                EventKind::AcquireCancelled { waiting: false },
            );
        }
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
    cell: Option<Sess<C::Connection>>,
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

/// Whole milliseconds of `d`, saturating.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
