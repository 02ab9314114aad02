//! The trace of a run: every manager event, every server event, every
//! fault the fault plan applied and whatever the VUs report, one
//! [`TraceEvent`] per line, in simulated time.
//!
//! # Time
//!
//! Each event carries `t_ms`, milliseconds of turmoil simulated time since
//! the simulation's start, so events of different hosts line up:
//!
//! - a manager [`Event`]'s `at` is read from the manager's clock, whose
//!   origin is the moment the manager started. [`TraceRecorder::record`]
//!   runs inside the worker host (the manager emits its events there), so it
//!   stamps the event with [`turmoil::sim_elapsed`] at record time; only
//!   outside a simulation (a lease dropped after the runtime, a unit test)
//!   does it fall back to `at` plus the recorder's `origin_ms`. The manager's
//!   own reading is kept in `detail.clock_ms` (and an `acquire_wait`'s
//!   deadline, on the same clock, in `detail.deadline_ms`), so laws that
//!   compare manager instants compare like with like;
//! - a server's [`Stamped`] event counts from the server's start (its first
//!   time read, at simulated time 0 in a topology world); [`Trace::push_server`]
//!   adds an `origin_ms` offset for servers that started later;
//! - a fault the [`crate::faults::Applier`] applied ([`Applied`]) is stamped
//!   with the simulated time it was applied at, between two steps of the
//!   simulation: before anything the hosts did in that millisecond, so
//!   [`Trace::sort`] puts fault events first within their millisecond.
//!
//! # Canonical form
//!
//! [`Trace::to_jsonl`] writes one JSON object per event and `\n` after each,
//! fields in declaration order (absent options left out, `detail` omitted
//! when empty), integers and strings only. [`Trace::hash`] is the hex BLAKE3
//! of those bytes: two runs of a seed are equal exactly when their hashes are.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use mcp_session::observe::{Event, EventKind, EventSink};

use crate::detail::Detail;
use crate::faults::Applied;
use crate::server::{ServerEvent, Stamped};

/// Who reported an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A worker's session manager (its `EventSink`).
    Manager,
    /// A simulated MCP server (its event log).
    Server,
    /// A VU program.
    Vu,
    /// The fault applier (a crash, a partition, ...: [`Applied`]).
    Fault,
}

impl Source {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Manager => "manager",
            Source::Server => "server",
            Source::Vu => "vu",
            Source::Fault => "fault",
        }
    }
}

/// One event of the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Simulated milliseconds since the simulation's start.
    pub t_ms: u64,
    /// The host it happened on (worker or server), shared by the events of
    /// a host.
    pub host: Arc<str>,
    /// Who reported it.
    pub source: Source,
    /// The event's name (`acquire_ok`, `session_created`, ...): static
    /// for the events a run records, owned for a parsed trace.
    pub event: Cow<'static, str>,
    /// The session concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The VU concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vu: Option<u64>,
    /// The rest of the event's fields (a JSON object, left out when empty).
    #[serde(default, skip_serializing_if = "Detail::is_empty")]
    pub detail: Detail,
}

impl TraceEvent {
    /// A detail field as an unsigned integer.
    pub fn u64(&self, field: &str) -> Option<u64> {
        self.detail.get(field).and_then(Value::as_u64)
    }

    /// A detail field as a boolean.
    pub fn bool(&self, field: &str) -> Option<bool> {
        self.detail.get(field).and_then(Value::as_bool)
    }

    /// A detail field as a string.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.detail.get(field).and_then(Value::as_str)
    }

    /// Whether this is the manager event `name` (snake_case).
    pub fn is(&self, name: &str) -> bool {
        self.source == Source::Manager && self.event == name
    }

    /// The manager's clock reading of a manager event (`detail.clock_ms`),
    /// else `t_ms`.
    pub fn clock_ms(&self) -> u64 {
        self.u64("clock_ms").unwrap_or(self.t_ms)
    }

    /// Converts a manager event of host `host`, stamped at `t_ms`: the
    /// event's serde form (tag `event` as the name, its fields as the
    /// detail), an `acquire_wait`'s `deadline` as `deadline_ms`, plus
    /// `clock_ms`, the manager's clock reading.
    pub fn from_manager(host: &Arc<str>, t_ms: u64, e: &Event) -> TraceEvent {
        let (name, mut detail) = match manager_fields(&e.kind) {
            Some((name, detail)) => (Cow::Borrowed(name), detail),
            None => {
                // A kind added to the library since `manager_fields` was
                // written: its serde form, as for every kind.
                let mut v = serde_json::to_value(&e.kind).unwrap_or(Value::Null);
                let (name, detail) = split_tag(&mut v);
                (Cow::Owned(name), detail)
            }
        };
        detail.insert("clock_ms", e.at.as_millis());
        TraceEvent {
            t_ms,
            host: Arc::clone(host),
            source: Source::Manager,
            event: name,
            session: e.session.clone(),
            vu: e.vu.map(|v| v.0),
            detail,
        }
    }

    /// Converts a server event of host `host`; `origin_ms` is the
    /// simulated time of the server's start. The event's serde form: tag
    /// `event` as the name, a `session` string as the event's session, the
    /// other fields as the detail (empty when there are none).
    pub fn from_server(host: &Arc<str>, origin_ms: u64, s: &Stamped) -> TraceEvent {
        let (name, session, detail) = match server_fields(&s.event) {
            Some((name, session, detail)) => (Cow::Borrowed(name), session, detail),
            None => {
                let mut v = serde_json::to_value(&s.event).unwrap_or(Value::Null);
                let (name, mut detail) = split_tag(&mut v);
                let session = take_string(&mut detail, "session");
                (Cow::Owned(name), session, detail)
            }
        };
        TraceEvent {
            t_ms: origin_ms + s.at_ms,
            host: Arc::clone(host),
            source: Source::Server,
            event: name,
            session,
            vu: None,
            detail,
        }
    }

    /// Converts what the fault applier did: the event is the action's name
    /// (`crash`, `restart`, `bounce`, `partition`, `heal`, `expire`,
    /// `skipped`, ...), the host is the server (or the balancer) it acted on (for a link, the
    /// server end; the worker is in `detail.worker`; empty for a skipped
    /// event, whose `detail.why` says why), an early expiry's
    /// session is the event's session, and `detail.plan_event` is the index
    /// of the plan event it belongs to.
    pub fn from_fault(a: &Applied) -> TraceEvent {
        let mut v = serde_json::to_value(&a.action).unwrap_or(Value::Null);
        let mut map = match v.take() {
            Value::Object(m) => Detail::from(m),
            _ => Detail::new(),
        };
        let name = match map.remove("action") {
            Some(Value::String(s)) => s,
            _ => "unknown".to_owned(),
        };
        let host = take_string(&mut map, "server")
            .or_else(|| take_string(&mut map, "balancer"))
            .unwrap_or_default();
        let session = take_string(&mut map, "session");
        map.insert("plan_event", a.event as u64);
        TraceEvent {
            t_ms: a.at_ms,
            host: host.into(),
            source: Source::Fault,
            event: Cow::Owned(name),
            session,
            vu: None,
            detail: map,
        }
    }

    /// One aligned line for a human: time, host, source, VU, session,
    /// event, detail.
    pub fn line(&self) -> String {
        let vu = self
            .vu
            .map_or_else(|| "-".to_owned(), |v| format!("vu-{v}"));
        let detail = if self.detail.is_empty() {
            String::new()
        } else {
            // Serializing a detail into a string cannot fail.
            serde_json::to_string(&self.detail).unwrap_or_default()
        };
        format!(
            "{:>8}ms  {:<10} {:<7} {:<6} {:<12} {:<22} {}",
            self.t_ms,
            self.host,
            self.source.as_str(),
            vu,
            self.session.as_deref().unwrap_or("-"),
            self.event,
            detail
        )
        .trim_end()
        .to_owned()
    }
}

/// A manager event kind's name and detail fields, built directly: what its
/// serde form gives (see [`TraceEvent::from_manager`]) without building a
/// tagged `Value` and taking it apart on every event. `None` for a kind this
/// function does not know (the library's enum is non-exhaustive).
fn manager_fields(kind: &EventKind) -> Option<(&'static str, Detail)> {
    // Room for the fields and `clock_ms`.
    let mut d = Detail::with_capacity(4);
    let name = match kind {
        EventKind::AcquireStart => "acquire_start",
        EventKind::AcquireWait { position, deadline } => {
            d.insert("position", *position as u64);
            d.insert("deadline_ms", deadline.as_millis());
            "acquire_wait"
        }
        EventKind::AcquireOk {
            created,
            reconnect,
            waited_ms,
        } => {
            d.insert("created", *created);
            d.insert("reconnect", *reconnect);
            d.insert("waited_ms", *waited_ms);
            "acquire_ok"
        }
        EventKind::AcquireTimeout { waited_ms } => {
            d.insert("waited_ms", *waited_ms);
            "acquire_timeout"
        }
        EventKind::AcquireError { error } => {
            d.insert("error", *error);
            "acquire_error"
        }
        EventKind::AcquireCancelled { waiting } => {
            d.insert("waiting", *waiting);
            "acquire_cancelled"
        }
        EventKind::WaiterGranted { slot } => {
            d.insert("slot", *slot);
            "waiter_granted"
        }
        EventKind::SlotReserved => "slot_reserved",
        EventKind::SlotFreed => "slot_freed",
        EventKind::Created { era } => {
            d.insert("era", era.as_str());
            "created"
        }
        EventKind::EraProbed {
            version,
            verdict,
            reprobe,
            answer,
            ttl_ms,
        } => {
            d.insert("version", version.as_str());
            d.insert("verdict", *verdict);
            d.insert("reprobe", reprobe.map_or(Value::Null, Value::from));
            d.insert("answer", answer.as_deref().map_or(Value::Null, Value::from));
            if let Some(ttl) = ttl_ms {
                d.insert("ttl_ms", *ttl);
            }
            "era_probed"
        }
        EventKind::VersionRetried { from, to } => {
            d.insert("from", from.as_str());
            d.insert("to", to.as_str());
            "version_retried"
        }
        EventKind::EraChanged => "era_changed",
        EventKind::OperationStart { method } => {
            d.insert("method", *method);
            "operation_start"
        }
        EventKind::OperationEnd { method, error } => {
            d.insert("method", *method);
            d.insert("error", error.map_or(Value::Null, Value::from));
            "operation_end"
        }
        EventKind::Released => "released",
        EventKind::Invalidated => "invalidated",
        EventKind::LeaseDropped => "lease_dropped",
        EventKind::Closed { reason } => {
            d.insert("reason", reason.as_str());
            "closed"
        }
        EventKind::CloseFailed { error } => {
            d.insert("error", error.as_str());
            "close_failed"
        }
        EventKind::ManagerClosing => "manager_closing",
        EventKind::ManagerClosed => "manager_closed",
        _ => return None,
    };
    Some((name, d))
}

/// A server event split for the trace: name, session, detail.
type ServerFields = (&'static str, Option<String>, Detail);

/// The server events of every exchange (a request, its answer, a
/// notification, a DELETE), split as [`TraceEvent::from_server`] splits
/// their serde form, built directly; `None` for the rest, which take the
/// serde way.
///
/// One piece on purpose: a table, one arm per event, each listing its
/// fields in declaration order (the serde order it must agree with, which
/// `server_events_convert_as_their_serde_form` checks); split, the
/// table would be harder to hold against the enum.
fn server_fields(event: &ServerEvent) -> Option<ServerFields> {
    let mut d = Detail::new();
    fn opt(d: &mut Detail, key: &'static str, v: &Option<String>) {
        if let Some(v) = v {
            d.insert(key, v.as_str());
        }
    }
    fn opt_value(d: &mut Detail, key: &'static str, v: &Option<Value>) {
        if let Some(v) = v {
            d.insert(key, v.clone());
        }
    }
    let (name, session) = match event {
        ServerEvent::Request {
            session,
            method,
            tool,
            from,
            header_version,
            id,
        } => {
            d.insert("method", method.as_str());
            opt(&mut d, "tool", tool);
            opt(&mut d, "from", from);
            opt(&mut d, "header_version", header_version);
            opt_value(&mut d, "id", id);
            ("request", Some(session))
        }
        ServerEvent::Answered {
            session,
            method,
            format,
            pieces,
            error,
            fault: None,
            request,
            id,
            input_required,
            request_state,
            digest,
        } => {
            d.insert("method", method.as_str());
            d.insert("format", format.as_str());
            d.insert("pieces", *pieces as u64);
            if let Some(code) = error {
                d.insert("error", *code);
            }
            if let Some(n) = request {
                d.insert("request", *n);
            }
            opt_value(&mut d, "id", id);
            if *input_required {
                d.insert("input_required", true);
            }
            opt_value(&mut d, "request_state", request_state);
            opt(&mut d, "digest", digest);
            ("answered", session.as_ref())
        }
        ServerEvent::StatelessWire {
            request,
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
        } => {
            d.insert("request", *request);
            opt(&mut d, "from", from);
            d.insert("http", http.as_str());
            opt_value(&mut d, "id", id);
            opt(&mut d, "method", method);
            opt(&mut d, "meta_version", meta_version);
            opt(&mut d, "header_version", header_version);
            opt(&mut d, "header_method", header_method);
            opt(&mut d, "header_name", header_name);
            opt(&mut d, "name", name);
            opt_value(&mut d, "request_state", request_state);
            ("stateless_wire", session.as_ref())
        }
        ServerEvent::Notification {
            session,
            method,
            from,
            header_version,
        } => {
            d.insert("method", method.as_str());
            opt(&mut d, "from", from);
            opt(&mut d, "header_version", header_version);
            ("notification", Some(session))
        }
        ServerEvent::ClientResponse { session } => ("client_response", Some(session)),
        ServerEvent::Deleted {
            session,
            from,
            header_version,
        } => {
            opt(&mut d, "from", from);
            opt(&mut d, "header_version", header_version);
            ("deleted", Some(session))
        }
        _ => return None,
    };
    Some((name, session.cloned(), d))
}

/// Takes member `key` out of `map` if it is a string; any other value stays.
fn take_string(map: &mut Detail, key: &str) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            map.insert(key.to_owned(), other);
            None
        }
        None => None,
    }
}

/// Splits a serde-tagged value (`{"event": name, ...}`) into its name and
/// the remaining fields.
fn split_tag(v: &mut Value) -> (String, Detail) {
    let mut map = match v.take() {
        Value::Object(m) => Detail::from(m),
        _ => Detail::new(),
    };
    let name = match map.remove("event") {
        Some(Value::String(s)) => s,
        _ => "unknown".to_owned(),
    };
    (name, map)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records one worker host's events: install it as the manager's
/// [`EventSink`] (see [`crate::topology::Topology::event_sink`]); VU
/// programs may add their own with [`TraceRecorder::record_vu`]. Clones
/// share one log.
#[derive(Clone, Debug)]
pub struct TraceRecorder {
    host: Arc<str>,
    origin_ms: u64,
    events: Arc<Mutex<Vec<TraceEvent>>>,
}

impl TraceRecorder {
    /// A recorder for worker host `host`, whose manager starts at simulated
    /// time 0.
    pub fn new(host: impl Into<Arc<str>>) -> Self {
        Self::with_origin(host, 0)
    }

    /// A recorder for a manager started at simulated `origin_ms` (used only
    /// when an event is recorded outside the simulation).
    pub fn with_origin(host: impl Into<Arc<str>>, origin_ms: u64) -> Self {
        TraceRecorder {
            host: host.into(),
            origin_ms,
            events: Arc::default(),
        }
    }

    /// The host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Simulated ms now, if inside a simulation.
    fn now_ms() -> Option<u64> {
        turmoil::sim_elapsed().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Records a VU's own event (`detail`: its fields, empty for none),
    /// stamped with the simulated time (0 outside a simulation).
    pub fn record_vu(&self, vu: u64, event: &'static str, session: Option<&str>, detail: Detail) {
        let e = TraceEvent {
            t_ms: Self::now_ms().unwrap_or(self.origin_ms),
            host: Arc::clone(&self.host),
            source: Source::Vu,
            event: Cow::Borrowed(event),
            session: session.map(str::to_owned),
            vu: Some(vu),
            detail,
        };
        lock(&self.events).push(e);
    }

    /// A copy of the events so far, in recording order.
    pub fn events(&self) -> Vec<TraceEvent> {
        lock(&self.events).clone()
    }

    /// The events so far, in recording order, moved out of the log (which
    /// is left empty): what [`TraceRecorder::events`] returns, without the
    /// copy, for a caller done with the recorder.
    pub fn take_events(&self) -> Vec<TraceEvent> {
        std::mem::take(&mut *lock(&self.events))
    }
}

impl EventSink for TraceRecorder {
    fn record(&self, event: &Event) {
        let t_ms = Self::now_ms().unwrap_or(self.origin_ms + event.at.as_millis());
        let e = TraceEvent::from_manager(&self.host, t_ms, event);
        lock(&self.events).push(e);
    }
}

/// A whole trace: events in order of simulated time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The events.
    pub events: Vec<TraceEvent>,
}

/// How many bytes of canonical lines [`Trace::hash`] hashes at a time.
const HASH_BLOCK: usize = 64 * 1024;

/// A line of a JSONL trace that did not parse.
#[derive(Debug, thiserror::Error)]
#[error("trace line {line}: {source}")]
pub struct ParseError {
    /// The line number, from 1.
    pub line: usize,
    /// Why.
    #[source]
    pub source: serde_json::Error,
}

impl Trace {
    /// A trace of these events, as given.
    pub fn new(events: Vec<TraceEvent>) -> Self {
        Trace { events }
    }

    /// Merges the recorders' events (recorders in the order given) and the
    /// servers' logs (`(host, events)` in the order given, starting at
    /// simulated time 0), then orders everything by `t_ms`, keeping each
    /// source's own order and, within a millisecond, the order of the
    /// inputs.
    pub fn collect<'a>(
        recorders: impl IntoIterator<Item = &'a TraceRecorder>,
        servers: impl IntoIterator<Item = (&'a str, Vec<Stamped>)>,
    ) -> Trace {
        let mut t = Trace::default();
        for r in recorders {
            t.events.extend(r.events());
        }
        for (host, log) in servers {
            t.push_server(host, 0, &log);
        }
        t.sort();
        t
    }

    /// [`Trace::collect`], moving the recorders' events out of them
    /// ([`TraceRecorder::take_events`]) instead of copying them: for a
    /// caller done with the recorders. Same trace.
    pub fn collect_taken<'a>(
        recorders: impl IntoIterator<Item = &'a TraceRecorder>,
        servers: impl IntoIterator<Item = (&'a str, Vec<Stamped>)>,
    ) -> Trace {
        let mut t = Trace::default();
        for r in recorders {
            let events = r.take_events();
            if t.events.is_empty() {
                t.events = events;
            } else {
                t.events.extend(events);
            }
        }
        for (host, log) in servers {
            t.push_server(host, 0, &log);
        }
        t.sort();
        t
    }

    /// Appends server host `host`'s log, started at simulated `origin_ms`
    /// (call [`Trace::sort`] after appending).
    pub fn push_server(&mut self, host: &str, origin_ms: u64, log: &[Stamped]) {
        let host: Arc<str> = host.into();
        self.events.extend(
            log.iter()
                .map(|s| TraceEvent::from_server(&host, origin_ms, s)),
        );
    }

    /// Qualifies the session ids of every server event with the host that
    /// logged it (`srv-3` on `server-1` becomes `srv-3@server-1`), as a
    /// [`crate::balancer::Balancer`] qualifies them for its clients, so
    /// that the ids of a balanced run's instances, minted from the same
    /// counter, do not collide and match the clients' own. An id already
    /// qualified (one the balancer sent to an instance that did not mint
    /// it) is left as it is.
    pub fn qualify_server_sessions(&mut self) {
        for e in &mut self.events {
            if e.source != Source::Server {
                continue;
            }
            if let Some(s) = &mut e.session {
                if !s.contains('@') {
                    s.push('@');
                    s.push_str(&e.host);
                }
            }
        }
    }

    /// Appends what the fault applier did (call [`Trace::sort`] after
    /// appending).
    pub fn push_faults(&mut self, log: &[Applied]) {
        self.events.extend(log.iter().map(TraceEvent::from_fault));
    }

    /// Appends one server event.
    pub fn push_server_event(&mut self, host: &str, t_ms: u64, event: ServerEvent) {
        let s = Stamped { at_ms: t_ms, event };
        self.events
            .push(TraceEvent::from_server(&host.into(), 0, &s));
    }

    /// Orders the events by `t_ms`, fault events first within a
    /// millisecond (a fault is applied between two steps of the
    /// simulation, before the hosts run at that time); otherwise stable:
    /// ties keep their order.
    pub fn sort(&mut self) {
        self.events
            .sort_by_key(|e| (e.t_ms, u8::from(e.source != Source::Fault)));
    }

    /// The canonical bytes: one JSON object per line, `\n` after each.
    pub fn to_jsonl(&self) -> String {
        let mut out = Vec::new();
        self.each_line(|line| out.extend_from_slice(line));
        // serde_json writes UTF-8 only.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Calls `f` with each event's canonical line (its JSON, then `\n`),
    /// written into one reused buffer.
    fn each_line(&self, mut f: impl FnMut(&[u8])) {
        let mut buf = Vec::with_capacity(256);
        for e in &self.events {
            buf.clear();
            crate::canonical::write_event(&mut buf, e);
            buf.push(b'\n');
            f(&buf);
        }
    }

    /// Parses what [`Trace::to_jsonl`] wrote (blank lines are skipped).
    pub fn from_jsonl(text: &str) -> Result<Trace, ParseError> {
        let mut events = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let e = serde_json::from_str(line).map_err(|source| ParseError {
                line: i + 1,
                source,
            })?;
            events.push(e);
        }
        Ok(Trace { events })
    }

    /// Hex BLAKE3 of [`Trace::to_jsonl`]. The lines are gathered into
    /// blocks of 64 KiB before they are hashed: BLAKE3 is
    /// several times faster on large inputs than on one short line at a
    /// time, and the digest is the same either way.
    pub fn hash(&self) -> String {
        let mut hasher = blake3::Hasher::new();
        let mut block = Vec::with_capacity(HASH_BLOCK + 1024);
        self.each_line(|line| {
            block.extend_from_slice(line);
            if block.len() >= HASH_BLOCK {
                hasher.update(&block);
                block.clear();
            }
        });
        hasher.update(&block);
        hasher.finalize().to_hex().to_string()
    }

    /// The human timeline: one aligned line per event.
    pub fn timeline(&self) -> String {
        self.timeline_range(0, self.events.len())
    }

    /// The timeline of events `from..to` (clamped), each line prefixed by
    /// its index.
    pub fn timeline_range(&self, from: usize, to: usize) -> String {
        let to = to.min(self.events.len());
        let mut out = String::new();
        for (i, e) in self.events.iter().enumerate().take(to).skip(from) {
            let _ = writeln!(out, "#{i:<5} {}", e.line());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mcp_session::clock::Instant;
    use mcp_session::metrics::CloseReason;

    use super::*;

    /// Every kind of manager event, each field set to something telling.
    fn every_kind() -> Vec<EventKind> {
        let at = |ms| Instant::ZERO + Duration::from_millis(ms);
        let mut kinds = vec![
            EventKind::AcquireStart,
            EventKind::AcquireWait {
                position: 3,
                deadline: at(1234),
            },
            EventKind::AcquireOk {
                created: true,
                reconnect: false,
                waited_ms: 17,
            },
            EventKind::AcquireTimeout { waited_ms: 40 },
            EventKind::AcquireError {
                error: "version_negotiation",
            },
            EventKind::AcquireCancelled { waiting: true },
            EventKind::WaiterGranted { slot: false },
            EventKind::SlotReserved,
            EventKind::SlotFreed,
            EventKind::Created {
                era: mcp_session::SessionEra::Legacy,
            },
            EventKind::Created {
                era: mcp_session::SessionEra::Modern,
            },
            EventKind::EraProbed {
                version: "2026-07-28".into(),
                verdict: "legacy",
                reprobe: Some("a legacy session was lost"),
                answer: Some("HTTP 400 \"x\"".into()),
                ttl_ms: None,
            },
            EventKind::EraProbed {
                version: "2026-07-28".into(),
                verdict: "modern",
                reprobe: None,
                answer: None,
                ttl_ms: Some(60_000),
            },
            EventKind::VersionRetried {
                from: "2026-07-28".into(),
                to: "2026-07-28".into(),
            },
            EventKind::EraChanged,
            EventKind::OperationStart {
                method: "tools/call",
            },
            EventKind::OperationEnd {
                method: "ping",
                error: None,
            },
            EventKind::OperationEnd {
                method: "ping",
                error: Some("session_not_found"),
            },
            EventKind::Released,
            EventKind::Invalidated,
            EventKind::LeaseDropped,
            EventKind::CloseFailed {
                error: "refused \"x\"".into(),
            },
            EventKind::ManagerClosing,
            EventKind::ManagerClosed,
        ];
        kinds.extend(CloseReason::ALL.map(|reason| EventKind::Closed { reason }));
        kinds
    }

    /// The conversion by way of the kind's serde form (how every event was
    /// converted before `manager_fields`).
    fn through_serde(kind: &EventKind) -> (String, Value) {
        let (name, mut detail) = serde_form(serde_json::to_value(kind).unwrap());
        if let EventKind::AcquireWait { deadline, .. } = kind {
            detail.remove("deadline");
            detail.insert("deadline_ms".into(), deadline.as_millis().into());
        }
        (name, object_or_null(detail))
    }

    /// A tagged serde value's name and other members, taken apart with
    /// serde_json's own map (not `split_tag`).
    fn serde_form(v: Value) -> (String, serde_json::Map<String, Value>) {
        let Value::Object(mut map) = v else {
            panic!("a tagged enum serializes as an object: {v}")
        };
        let Some(Value::String(name)) = map.remove("event") else {
            panic!("no `event` tag in {map:?}")
        };
        (name, map)
    }

    /// The detail a trace event shows: the object, or null when empty.
    fn object_or_null(map: serde_json::Map<String, Value>) -> Value {
        if map.is_empty() {
            Value::Null
        } else {
            Value::Object(map)
        }
    }

    #[test]
    fn manager_fields_are_the_serde_form_of_every_kind() {
        for kind in every_kind() {
            let (name, detail) = manager_fields(&kind).expect("a known kind");
            assert_eq!(
                (name.to_owned(), detail.to_value()),
                through_serde(&kind),
                "{kind:?}"
            );
        }
    }

    /// Server events of every shape `server_fields` builds, and some it
    /// leaves to serde.
    fn server_events() -> Vec<ServerEvent> {
        use crate::server::encode::Format;
        use crate::server::AnswerFault;
        let stateless =
            |format, fault, request, id: Value, state: Option<Value>| ServerEvent::Answered {
                session: None,
                method: "tools/call".into(),
                format,
                pieces: 3,
                error: None,
                fault,
                request: Some(request),
                id: Some(id),
                input_required: state.is_some(),
                request_state: state,
                digest: Some("0123456789abcdef".into()),
            };
        let answered = |session: Option<&str>, format, error, fault| ServerEvent::Answered {
            session: session.map(str::to_owned),
            method: "tools/call".into(),
            format,
            pieces: 3,
            error,
            fault,
            request: None,
            id: None,
            input_required: false,
            request_state: None,
            digest: None,
        };
        let some = |s: &str| Some(s.to_owned());
        vec![
            ServerEvent::Request {
                session: "srv-1".into(),
                method: "tools/call".into(),
                tool: Some("echo".into()),
                from: some("worker-1"),
                header_version: some("2025-11-25"),
                id: Some(serde_json::json!(3)),
            },
            ServerEvent::Request {
                session: "srv-1".into(),
                method: "ping".into(),
                tool: None,
                from: None,
                header_version: None,
                id: None,
            },
            answered(Some("srv-1"), Format::Json, None, None),
            answered(None, Format::Sse, Some(-32601), None),
            answered(
                Some("srv-2"),
                Format::Sse,
                None,
                Some(AnswerFault::Truncated),
            ),
            stateless(
                Format::Json,
                None,
                7,
                serde_json::json!("a"),
                Some(serde_json::json!("tool:1.sig")),
            ),
            stateless(Format::Sse, None, 8, serde_json::json!(3), None),
            stateless(
                Format::Sse,
                Some(AnswerFault::Reset),
                9,
                serde_json::json!(4),
                None,
            ),
            ServerEvent::StatelessWire {
                request: 7,
                from: some("worker-1"),
                http: "POST".into(),
                id: Some(serde_json::json!(2)),
                method: some("tools/call"),
                meta_version: some("2026-07-28"),
                header_version: some("2026-07-28"),
                header_method: some("tools/call"),
                header_name: some("echo"),
                name: some("echo"),
                session: some("srv-9"),
                request_state: Some(serde_json::json!({"odd": [1]})),
            },
            ServerEvent::StatelessWire {
                request: 1,
                from: None,
                http: "GET".into(),
                id: None,
                method: None,
                meta_version: None,
                header_version: None,
                header_method: None,
                header_name: None,
                name: None,
                session: None,
                request_state: None,
            },
            ServerEvent::Notification {
                session: "srv-1".into(),
                method: "notifications/initialized".into(),
                from: some("worker-2"),
                header_version: None,
            },
            ServerEvent::ClientResponse {
                session: "srv-\"3".into(),
            },
            ServerEvent::Deleted {
                session: "srv-1".into(),
                from: some("worker-1"),
                header_version: some("2025-06-18"),
            },
            ServerEvent::Deleted {
                session: "srv-1".into(),
                from: None,
                header_version: None,
            },
            ServerEvent::Injected {
                http: "POST".into(),
                status: 503,
                id: Some(serde_json::json!(5)),
                session: some("srv-1"),
                from: some("worker-1"),
            },
            ServerEvent::Started { run: 2 },
            ServerEvent::SessionsCleared { dropped: 0 },
        ]
    }

    #[test]
    fn server_events_convert_as_their_serde_form() {
        for event in server_events() {
            let (name, mut detail) = serde_form(serde_json::to_value(&event).unwrap());
            let session = match detail.remove("session") {
                Some(Value::String(id)) => Some(id),
                _ => None,
            };
            let detail = object_or_null(detail);
            let host = Arc::from("server");
            let t = TraceEvent::from_server(&host, 5, &Stamped { at_ms: 2, event });
            assert_eq!(
                (t.event.into_owned(), t.session, t.detail.to_value()),
                (name, session, detail)
            );
            assert_eq!(t.t_ms, 7);
        }
    }

    #[test]
    fn a_manager_event_carries_its_clock_reading() {
        let e = Event {
            at: Instant::ZERO + Duration::from_millis(250),
            vu: Some(7.into()),
            session: Some("s-1".into()),
            kind: EventKind::AcquireTimeout { waited_ms: 40 },
        };
        let t = TraceEvent::from_manager(&Arc::from("worker-1"), 251, &e);
        let line = serde_json::to_string(&t).unwrap();
        assert_eq!(
            line,
            r#"{"t_ms":251,"host":"worker-1","source":"manager","event":"acquire_timeout","session":"s-1","vu":7,"detail":{"clock_ms":250,"waited_ms":40}}"#
        );
    }
}
