//! Traces written by hand, tersely: for the tests of the laws, and for
//! anyone who wants to see what a law says of a story.
//!
//! A [`TraceBuilder`] keeps a cursor — the time, the VU, the worker and
//! the server hosts — and each event method appends one typed event there,
//! with the fields a run records (a manager event's clock reading is its
//! time). Its methods take and return `&mut self`, so one line of a test
//! can write a few events at one instant:
//!
//! ```
//! use mcp_sim::audit::{audit, AuditConfig};
//! use mcp_sim::trace::TraceBuilder;
//!
//! // A pool of one: vu 1 creates s1, pings, gives it back; the manager
//! // closes and the server sees the DELETE.
//! let mut b = TraceBuilder::new();
//! b.at(0).vu(1).acquire_start().slot_reserved();
//! b.at(1).session_created("s1");
//! b.at(2).created("s1").acquire_created("s1");
//! b.at(3).initialized("s1");
//! b.at(5).operation_start("s1", "ping");
//! b.at(6).operation_end("s1", "ping", None);
//! b.at(7).released("s1");
//! b.at(9).no_vu().manager_closing().closed("s1", "shutdown");
//! b.at(10).deleted("s1");
//! b.at(11).manager_closed();
//! let trace = b.trace();
//! assert_eq!(trace.events[4].name(), "acquire_ok");
//! assert!(audit(&trace, &AuditConfig::pool(1, 1000)).is_clean());
//! ```
//!
//! Manager and VU events happen on the worker host (`worker` unless
//! [`TraceBuilder::worker`] names another), server events on the server
//! host (`server`, or [`TraceBuilder::server`]), a fault on the host its
//! action names. The stateless era's server events (a request's wire
//! log, its answer, a -32022 refusal) are written as a correct client and
//! server make them, the client host they name being the worker host; a
//! test that breaks a law edits the one field it is about. Events the
//! shortcuts do not cover are appended whole:
//! [`TraceBuilder::manager`], [`TraceBuilder::server_event`],
//! [`TraceBuilder::vu_event`], [`TraceBuilder::fault`]; an event made some
//! other way (a parsed line) with [`TraceBuilder::event`].

use std::borrow::Cow;
use std::sync::Arc;

use super::{FaultRecord, Kind, ManagerEvent, ManagerRecord, Trace, TraceEvent, VuEvent, VuRecord};
use crate::faults::Action;
use crate::server::encode::Format;
use crate::server::hooks::SessionIdFault;
use crate::server::ServerEvent;

/// The protocol revision a builder's `session_created` answers.
const LEGACY_VERSION: &str = "2025-11-25";
/// The stateless era's revision, which the era events name.
const MODERN_VERSION: &str = "2026-07-28";

/// Writes a trace event by event (see the module docs).
#[derive(Clone, Debug)]
pub struct TraceBuilder {
    events: Vec<TraceEvent>,
    t_ms: u64,
    vu: Option<u64>,
    worker: Arc<str>,
    server: Arc<str>,
}

impl Default for TraceBuilder {
    fn default() -> Self {
        TraceBuilder::new()
    }
}

impl From<TraceBuilder> for Vec<TraceEvent> {
    fn from(b: TraceBuilder) -> Self {
        b.events
    }
}

impl TraceBuilder {
    /// An empty trace; the cursor at time 0, no VU, worker host `worker`,
    /// server host `server`.
    pub fn new() -> Self {
        TraceBuilder {
            events: Vec::new(),
            t_ms: 0,
            vu: None,
            worker: "worker".into(),
            server: "server".into(),
        }
    }

    /// The events so far, in the order written.
    pub fn build(&self) -> Vec<TraceEvent> {
        self.events.clone()
    }

    /// The events so far as a [`Trace`] (in the order written: call
    /// [`Trace::sort`] for a trace written out of order).
    pub fn trace(&self) -> Trace {
        Trace::new(self.build())
    }

    /// The last event written, if any: one event, for a test to put in
    /// place of another.
    pub fn last(&self) -> Option<TraceEvent> {
        self.events.last().cloned()
    }

    /// The events so far.
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    // ------------------------------------------------------------ cursor --

    /// The next events happen at `t_ms` (simulated ms; a manager event's
    /// clock reading too).
    pub fn at(&mut self, t_ms: u64) -> &mut Self {
        self.t_ms = t_ms;
        self
    }

    /// The next manager and VU events are VU `vu`'s.
    pub fn vu(&mut self, vu: u64) -> &mut Self {
        self.vu = Some(vu);
        self
    }

    /// The next manager events concern no VU.
    pub fn no_vu(&mut self) -> &mut Self {
        self.vu = None;
        self
    }

    /// The next manager and VU events happen on worker host `host`.
    pub fn worker(&mut self, host: &str) -> &mut Self {
        self.worker = host.into();
        self
    }

    /// The next server events happen on server host `host`.
    pub fn server(&mut self, host: &str) -> &mut Self {
        self.server = host.into();
        self
    }

    // ------------------------------------------------------- whole events --

    /// Appends manager event `event`, on `session` if it names one.
    pub fn manager(&mut self, session: Option<&str>, event: ManagerEvent) -> &mut Self {
        let record = ManagerRecord {
            vu: self.vu,
            session: session.map(str::to_owned),
            clock_ms: self.t_ms,
            event,
        };
        let host = Arc::clone(&self.worker);
        self.push(host, Kind::Manager(record));
        self
    }

    /// Appends server event `event`.
    pub fn server_event(&mut self, event: ServerEvent) -> &mut Self {
        let host = Arc::clone(&self.server);
        self.push(host, Kind::Server(Box::new(event)));
        self
    }

    /// Appends the current VU's event `event`, on `session` if its step
    /// had one (no VU chosen: VU 0).
    pub fn vu_event(&mut self, session: Option<&str>, event: VuEvent) -> &mut Self {
        let record = VuRecord {
            vu: self.vu.unwrap_or(0),
            session: session.map(str::to_owned),
            event,
        };
        let host = Arc::clone(&self.worker);
        self.push(host, Kind::Vu(record));
        self
    }

    /// Appends `event` as it is (its own time and host): a line written
    /// some other way, in the middle of a story.
    pub fn event(&mut self, event: TraceEvent) -> &mut Self {
        self.events.push(event);
        self
    }

    /// Appends fault action `action`, of plan event 0.
    pub fn fault(&mut self, action: Action) -> &mut Self {
        let record = FaultRecord {
            plan_event: 0,
            action,
        };
        let host = record.host().into();
        self.push(host, Kind::Fault(record));
        self
    }

    fn push(&mut self, host: Arc<str>, kind: Kind) {
        self.events.push(TraceEvent {
            t_ms: self.t_ms,
            host,
            kind,
        });
    }

    // ---------------------------------------------------- manager events --

    /// An acquire began.
    pub fn acquire_start(&mut self) -> &mut Self {
        self.manager(None, ManagerEvent::AcquireStart)
    }

    /// The acquire joined the pool's queue (at its head) until
    /// `deadline_ms`.
    pub fn acquire_wait(&mut self, deadline_ms: u64) -> &mut Self {
        let event = ManagerEvent::AcquireWait {
            position: 0,
            deadline_ms,
        };
        self.manager(None, event)
    }

    /// The acquire got `session`, one it did not create (idle, kept, or
    /// granted to it).
    pub fn acquire_ok(&mut self, session: &str) -> &mut Self {
        self.handed(session, false, false)
    }

    /// The acquire got `session`, created for it.
    pub fn acquire_created(&mut self, session: &str) -> &mut Self {
        self.handed(session, true, false)
    }

    /// The acquire got `session`, created to replace an invalidated one
    /// (a reconnect).
    pub fn acquire_recreated(&mut self, session: &str) -> &mut Self {
        self.handed(session, true, true)
    }

    fn handed(&mut self, session: &str, created: bool, reconnect: bool) -> &mut Self {
        let event = ManagerEvent::AcquireOk {
            created,
            reconnect,
            waited_ms: 0,
        };
        self.manager(Some(session), event)
    }

    /// The queued acquire timed out after `waited_ms`.
    pub fn acquire_timeout(&mut self, waited_ms: u64) -> &mut Self {
        self.manager(None, ManagerEvent::AcquireTimeout { waited_ms })
    }

    /// The acquire failed with the library's error kind `error`.
    pub fn acquire_error(&mut self, error: &str) -> &mut Self {
        let error = Cow::Owned(error.to_owned());
        self.manager(None, ManagerEvent::AcquireError { error })
    }

    /// The acquire was dropped: while queued (`waiting`), or while creating
    /// a session.
    pub fn acquire_cancelled(&mut self, waiting: bool) -> &mut Self {
        self.manager(None, ManagerEvent::AcquireCancelled { waiting })
    }

    /// The pool granted `session` to the (queued) acquire.
    pub fn waiter_granted(&mut self, session: &str) -> &mut Self {
        self.manager(Some(session), ManagerEvent::WaiterGranted { slot: false })
    }

    /// The pool granted a free slot to the (queued) acquire.
    pub fn waiter_granted_slot(&mut self) -> &mut Self {
        self.manager(None, ManagerEvent::WaiterGranted { slot: true })
    }

    /// The acquire took a free slot to create a session in.
    pub fn slot_reserved(&mut self) -> &mut Self {
        self.manager(None, ManagerEvent::SlotReserved)
    }

    /// The reserved slot was given back.
    pub fn slot_freed(&mut self) -> &mut Self {
        self.manager(None, ManagerEvent::SlotFreed)
    }

    /// Legacy session `session` was created.
    pub fn created(&mut self, session: &str) -> &mut Self {
        self.created_in(session, "legacy")
    }

    /// Session (or stateless-era context) `session` of era `era`
    /// (`legacy`, `modern`) was created.
    pub fn created_in(&mut self, session: &str, era: &str) -> &mut Self {
        let era = Some(Cow::Owned(era.to_owned()));
        self.manager(Some(session), ManagerEvent::Created { era })
    }

    /// An operation (`method`) began on `session`.
    pub fn operation_start(&mut self, session: &str, method: &str) -> &mut Self {
        let method = Cow::Owned(method.to_owned());
        self.manager(Some(session), ManagerEvent::OperationStart { method })
    }

    /// The operation (`method`) on `session` ended, failed with `error` if
    /// it did.
    pub fn operation_end(&mut self, session: &str, method: &str, error: Option<&str>) -> &mut Self {
        let event = ManagerEvent::OperationEnd {
            method: Cow::Owned(method.to_owned()),
            error: error.map(|e| Cow::Owned(e.to_owned())),
        };
        self.manager(Some(session), event)
    }

    /// The VU gave `session` back.
    pub fn released(&mut self, session: &str) -> &mut Self {
        self.manager(Some(session), ManagerEvent::Released)
    }

    /// The VU invalidated its lease of `session`.
    pub fn invalidated(&mut self, session: &str) -> &mut Self {
        self.manager(Some(session), ManagerEvent::Invalidated)
    }

    /// The lease of `session` was dropped without being given back.
    pub fn lease_dropped(&mut self, session: &str) -> &mut Self {
        self.manager(Some(session), ManagerEvent::LeaseDropped)
    }

    /// `session` was closed for `reason` (a `CloseReason` name).
    pub fn closed(&mut self, session: &str, reason: &str) -> &mut Self {
        let reason = Cow::Owned(reason.to_owned());
        self.manager(Some(session), ManagerEvent::Closed { reason })
    }

    /// `session`'s DELETE failed with `error`.
    pub fn close_failed(&mut self, session: &str, error: &str) -> &mut Self {
        let error = error.to_owned();
        self.manager(Some(session), ManagerEvent::CloseFailed { error })
    }

    /// The manager began to close.
    pub fn manager_closing(&mut self) -> &mut Self {
        self.manager(None, ManagerEvent::ManagerClosing)
    }

    /// The manager is closed.
    pub fn manager_closed(&mut self) -> &mut Self {
        self.manager(None, ManagerEvent::ManagerClosed)
    }

    /// An era probe (`server/discover` at revision 2026-07-28, no session)
    /// ended with `verdict` (`modern`, `legacy`, `failed`): the first
    /// probe, or one again for the `reprobe` reason; a modern result fresh
    /// for `ttl_ms` if it said so. The server answered as the stateless
    /// era does (no answer recorded).
    pub fn era_probed(
        &mut self,
        verdict: &str,
        reprobe: Option<&str>,
        ttl_ms: Option<u64>,
    ) -> &mut Self {
        let event = ManagerEvent::EraProbed {
            version: MODERN_VERSION.to_owned(),
            verdict: Cow::Owned(verdict.to_owned()),
            reprobe: reprobe.map(|r| Cow::Owned(r.to_owned())),
            answer: None,
            ttl_ms,
        };
        self.manager(None, event)
    }

    /// A request refused with -32022 was sent again, at revision
    /// 2026-07-28 both times: an operation's on `session`, a probe's on
    /// none.
    pub fn version_retried(&mut self, session: Option<&str>) -> &mut Self {
        let event = ManagerEvent::VersionRetried {
            from: MODERN_VERSION.to_owned(),
            to: MODERN_VERSION.to_owned(),
        };
        self.manager(session, event)
    }

    /// The manager doubts the era it chose, on `session`.
    pub fn era_changed(&mut self, session: &str) -> &mut Self {
        self.manager(Some(session), ManagerEvent::EraChanged)
    }

    // ----------------------------------------------------- server events --

    /// The server took an `initialize` and created `session` (revision
    /// 2025-11-25 asked and answered, its id sent, no client host logged).
    pub fn session_created(&mut self, session: &str) -> &mut Self {
        self.server_event(ServerEvent::SessionCreated {
            session: session.to_owned(),
            requested: LEGACY_VERSION.to_owned(),
            answered: LEGACY_VERSION.to_owned(),
            id_header: SessionIdFault::Sent,
            from: None,
            header_version: None,
        })
    }

    /// The server took notification `method` on `session`.
    pub fn notification(&mut self, session: &str, method: &str) -> &mut Self {
        self.server_event(ServerEvent::Notification {
            session: session.to_owned(),
            method: method.to_owned(),
            from: None,
            header_version: None,
        })
    }

    /// The server took `session`'s `notifications/initialized`.
    pub fn initialized(&mut self, session: &str) -> &mut Self {
        self.notification(session, "notifications/initialized")
    }

    /// A DELETE ended `session` on the server.
    pub fn deleted(&mut self, session: &str) -> &mut Self {
        self.server_event(ServerEvent::Deleted {
            session: session.to_owned(),
            from: None,
            header_version: None,
        })
    }

    /// The server held an answer to `method` on `session` back for
    /// `delay_ms`.
    pub fn delayed(&mut self, session: &str, method: &str, delay_ms: u64) -> &mut Self {
        self.server_event(ServerEvent::Delayed {
            session: Some(session.to_owned()),
            method: method.to_owned(),
            delay_ms,
        })
    }

    /// The server answered a request (`http`) with an injected `status`.
    pub fn injected(&mut self, http: &str, status: u16) -> &mut Self {
        self.server_event(ServerEvent::Injected {
            http: http.to_owned(),
            status,
            id: None,
            session: None,
            from: None,
        })
    }

    // ----------------------------------------- stateless-era server events --

    /// The server logged its `request`-th request as it arrived: a
    /// stateless-era POST from the worker host, JSON-RPC request `id`
    /// calling `method`, in the envelope a correct client sends (revision
    /// 2026-07-28 in `_meta` and `MCP-Protocol-Version`, `method` in
    /// `Mcp-Method`, and for a method that names something, `name` in the
    /// body and in `Mcp-Name`).
    pub fn stateless_wire(
        &mut self,
        request: u64,
        id: u64,
        method: &str,
        name: Option<&str>,
    ) -> &mut Self {
        let event = self.wire_log(request, id, method, name, None);
        self.server_event(event)
    }

    /// An MRTR retry: [`TraceBuilder::stateless_wire`] of a `tools/call`
    /// of `tool` that carries `state` as its `requestState`.
    pub fn mrtr_retry(&mut self, request: u64, id: u64, tool: &str, state: &str) -> &mut Self {
        let state = Some(state.into());
        let event = self.wire_log(request, id, "tools/call", Some(tool), state);
        self.server_event(event)
    }

    fn wire_log(
        &self,
        request: u64,
        id: u64,
        method: &str,
        name: Option<&str>,
        request_state: Option<serde_json::Value>,
    ) -> ServerEvent {
        ServerEvent::StatelessWire {
            request,
            from: Some(self.worker.to_string()),
            http: "POST".to_owned(),
            id: Some(id.into()),
            method: Some(method.to_owned()),
            meta_version: Some(MODERN_VERSION.to_owned()),
            header_version: Some(MODERN_VERSION.to_owned()),
            header_method: Some(method.to_owned()),
            header_name: name.map(str::to_owned),
            name: name.map(str::to_owned),
            session: None,
            request_state,
        }
    }

    /// The server answered its `request`-th request (a stateless one, id
    /// `id`, calling `method`) with a result, as one JSON body.
    pub fn answered(&mut self, request: u64, id: u64, method: &str) -> &mut Self {
        let event = Self::answer(request, id, method, None);
        self.server_event(event)
    }

    /// [`TraceBuilder::answered`] for a `tools/call` whose result is
    /// `input_required` (an MRTR round), issuing `state`.
    pub fn input_required(&mut self, request: u64, id: u64, state: &str) -> &mut Self {
        let event = Self::answer(request, id, "tools/call", Some(state));
        self.server_event(event)
    }

    fn answer(request: u64, id: u64, method: &str, state: Option<&str>) -> ServerEvent {
        ServerEvent::Answered {
            session: None,
            method: method.to_owned(),
            format: Format::Json,
            pieces: 1,
            error: None,
            fault: None,
            request: Some(request),
            id: Some(id.into()),
            input_required: state.is_some(),
            request_state: state.map(Into::into),
            digest: None,
        }
    }

    /// The server refused the stateless request it logged last with
    /// -32022 (HTTP 400): a revision it does not serve.
    pub fn version_refused(&mut self) -> &mut Self {
        self.server_event(ServerEvent::StatelessRefused {
            status: 400,
            code: Some(-32022),
            why: "Unsupported protocol version".to_owned(),
        })
    }
}
