//! The trace of a run: every manager event, every server event, every
//! fault the fault plan applied and whatever the VUs report, one
//! [`TraceEvent`] per line, in simulated time.
//!
//! # Events
//!
//! An event is typed ([`Kind`]): a manager's [`ManagerEvent`], a server's
//! own [`ServerEvent`], a VU's [`VuEvent`] or the fault applier's
//! [`crate::faults::Action`], one variant per kind of event with its
//! fields, which the laws ([`crate::audit`](mod@crate::audit)) match on.
//! Its line is its serde form (see [`Kind`]'s module, `trace/kind.rs`,
//! for how a kind makes the line's `event`, `session`, `vu` and
//! `detail`); a line of no kind this build knows is kept as it is
//! ([`RawRecord`]). A [`TraceBuilder`] writes a trace by hand.
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
//!   own reading is kept as [`ManagerRecord::clock_ms`] (`detail.clock_ms`
//!   in the line; an `acquire_wait`'s deadline, on the same clock, is its
//!   `deadline_ms`), so laws that compare manager instants compare like
//!   with like;
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
//! [`Trace::to_jsonl`] writes one JSON object per event and `\n` after each:
//! `t_ms`, `host`, `source`, `event`, `session`, `vu`, `detail` in that
//! order (absent options left out, `detail` omitted when empty, its fields
//! in key order), integers and strings only. [`Trace::hash`] is the hex
//! BLAKE3 of those bytes: two runs of a seed are equal exactly when their
//! hashes are.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use mcp_session::{Event, EventSink};

use crate::faults::Applied;
use crate::server::{ServerEvent, Stamped};

mod builder;
mod fields;
mod kind;
mod server;

// An event's detail fields; its module, `detail.rs`, is private.
pub use crate::detail::Detail;
pub use builder::TraceBuilder;
pub use kind::{FaultRecord, Kind, ManagerEvent, ManagerRecord, RawRecord, VuEvent, VuRecord};

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

/// One event of the trace: when, where, and what ([`Kind`]: typed, one
/// variant per source and per event kind). Its JSON is the trace line
/// (see [`kind`](Kind) for how a kind's fields make the line's
/// `event`, `session`, `vu` and `detail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Simulated milliseconds since the simulation's start.
    pub t_ms: u64,
    /// The host it happened on (worker or server; for a fault, the server
    /// or balancer it acted on, empty for none), shared by the events of a
    /// host.
    pub host: Arc<str>,
    /// What happened.
    pub kind: Kind,
}

impl Default for TraceEvent {
    /// An empty manager line (time 0, no host, no name): what a report
    /// shows where it must show an event and the trace has none.
    fn default() -> Self {
        TraceEvent {
            t_ms: 0,
            host: "".into(),
            kind: Kind::Other(RawRecord {
                source: Source::Manager,
                name: String::new(),
                session: None,
                vu: None,
                detail: Detail::new(),
            }),
        }
    }
}

/// A trace line as written: what [`TraceEvent`] is read from.
#[derive(Deserialize)]
struct Line {
    t_ms: u64,
    host: Arc<str>,
    source: Source,
    event: String,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    vu: Option<u64>,
    #[serde(default)]
    detail: Detail,
}

impl TraceEvent {
    /// Who reported it.
    pub fn source(&self) -> Source {
        self.kind.source()
    }

    /// Its name (`acquire_ok`, `session_created`, ...): the line's `event`.
    pub fn name(&self) -> Cow<'_, str> {
        self.kind.parts().name
    }

    /// The session concerned, if any.
    pub fn session(&self) -> Option<&str> {
        self.kind.session()
    }

    /// The VU concerned, if any.
    pub fn vu(&self) -> Option<u64> {
        self.kind.vu()
    }

    /// Its fields beyond time, host, source, name, session and VU: the
    /// line's `detail`.
    pub fn detail(&self) -> Detail {
        self.kind.parts().detail.into_owned()
    }

    /// The manager's clock reading of a manager event, else `t_ms`.
    pub fn clock_ms(&self) -> u64 {
        match &self.kind {
            Kind::Manager(m) => m.clock_ms,
            _ => self.t_ms,
        }
    }

    /// The manager event, if it is one.
    pub fn manager(&self) -> Option<&ManagerRecord> {
        match &self.kind {
            Kind::Manager(m) => Some(m),
            _ => None,
        }
    }

    /// The server event, if it is one.
    pub fn server(&self) -> Option<&ServerEvent> {
        match &self.kind {
            Kind::Server(s) => Some(s),
            _ => None,
        }
    }

    /// Converts a manager event of host `host`, stamped at `t_ms`, with
    /// the manager's clock reading (see [`ManagerEvent::from_library`]; a
    /// kind added to the library since is kept as its serde form).
    pub fn from_manager(host: &Arc<str>, t_ms: u64, e: &Event) -> TraceEvent {
        let (vu, session, clock_ms) = (e.vu.map(|v| v.0), e.session.clone(), e.at.as_millis());
        let kind = match ManagerEvent::from_library(&e.kind) {
            Some(event) => Kind::Manager(ManagerRecord {
                vu,
                session,
                clock_ms,
                event,
            }),
            None => {
                let mut v = serde_json::to_value(&e.kind).unwrap_or(Value::Null);
                let (name, mut detail) = split_tag(&mut v);
                detail.insert("clock_ms", clock_ms);
                Kind::Other(RawRecord {
                    source: Source::Manager,
                    name,
                    session,
                    vu,
                    detail,
                })
            }
        };
        TraceEvent {
            t_ms,
            host: Arc::clone(host),
            kind,
        }
    }

    /// Converts a server event of host `host`; `origin_ms` is the
    /// simulated time of the server's start.
    pub fn from_server(host: &Arc<str>, origin_ms: u64, s: &Stamped) -> TraceEvent {
        TraceEvent {
            t_ms: origin_ms + s.at_ms,
            host: Arc::clone(host),
            kind: Kind::Server(Box::new(s.event.clone())),
        }
    }

    /// Converts what the fault applier did: the host is the server (or the
    /// balancer) it acted on (for a link, the server end; empty for a
    /// skipped event), stamped when it was applied.
    pub fn from_fault(a: &Applied) -> TraceEvent {
        let record = FaultRecord {
            plan_event: a.event as u64,
            action: a.action.clone(),
        };
        TraceEvent {
            t_ms: a.at_ms,
            host: record.host().into(),
            kind: Kind::Fault(record),
        }
    }

    /// One aligned line for a human: time, host, source, VU, session,
    /// event, detail.
    pub fn line(&self) -> String {
        let parts = self.kind.parts();
        let vu = parts
            .vu
            .map_or_else(|| "-".to_owned(), |v| format!("vu-{v}"));
        let detail = if parts.detail.is_empty() {
            String::new()
        } else {
            // Serializing a detail into a string cannot fail.
            serde_json::to_string(&*parts.detail).unwrap_or_default()
        };
        format!(
            "{:>8}ms  {:<10} {:<7} {:<6} {:<12} {:<22} {}",
            self.t_ms,
            self.host,
            parts.source.as_str(),
            vu,
            parts.session.unwrap_or("-"),
            parts.name,
            detail
        )
        .trim_end()
        .to_owned()
    }
}

impl Line {
    /// The line's typed event (see [`Kind`]), or the line as it is.
    fn into_event(self) -> TraceEvent {
        let line = self;
        let raw = RawRecord {
            source: line.source,
            name: line.event,
            session: line.session,
            vu: line.vu,
            detail: line.detail,
        };
        TraceEvent {
            t_ms: line.t_ms,
            kind: Kind::parse(&line.host, raw),
            host: line.host,
        }
    }
}

impl Serialize for TraceEvent {
    /// The trace line: `t_ms`, `host`, `source`, `event`, then `session`,
    /// `vu` and `detail` where there are.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.kind.parts();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("t_ms", &self.t_ms)?;
        map.serialize_entry("host", &*self.host)?;
        map.serialize_entry("source", &p.source)?;
        map.serialize_entry("event", &*p.name)?;
        if let Some(session) = p.session {
            map.serialize_entry("session", session)?;
        }
        if let Some(vu) = p.vu {
            map.serialize_entry("vu", &vu)?;
        }
        if !p.detail.is_empty() {
            map.serialize_entry("detail", &*p.detail)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TraceEvent {
    /// A trace line (see [`Kind`] for what it becomes).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Line::deserialize(deserializer).map(Line::into_event)
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

    /// Records a VU's own event, on `session` if it had one, stamped with
    /// the simulated time (0 outside a simulation).
    pub fn record_vu(&self, vu: u64, session: Option<&str>, event: VuEvent) {
        let e = TraceEvent {
            t_ms: Self::now_ms().unwrap_or(self.origin_ms),
            host: Arc::clone(&self.host),
            kind: Kind::Vu(VuRecord {
                vu,
                session: session.map(str::to_owned),
                event,
            }),
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
            t.push_server_log(host, log);
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
            t.push_server_log(host, log);
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

    /// Appends server host `host`'s log, started at simulated time 0,
    /// moving its events.
    fn push_server_log(&mut self, host: &str, log: Vec<Stamped>) {
        let host: Arc<str> = host.into();
        self.events.extend(log.into_iter().map(|s| TraceEvent {
            t_ms: s.at_ms,
            host: Arc::clone(&host),
            kind: Kind::Server(Box::new(s.event)),
        }));
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
            let Kind::Server(event) = &mut e.kind else {
                continue;
            };
            if let Some(s) = event.session_mut() {
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
        self.events.push(TraceEvent {
            t_ms,
            host: host.into(),
            kind: Kind::Server(Box::new(event)),
        });
    }

    /// Orders the events by `t_ms`, fault events first within a
    /// millisecond (a fault is applied between two steps of the
    /// simulation, before the hosts run at that time); otherwise stable:
    /// ties keep their order.
    pub fn sort(&mut self) {
        self.events
            .sort_by_key(|e| (e.t_ms, u8::from(!matches!(e.kind, Kind::Fault(_)))));
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

    use mcp_session::{CloseReason, EventKind, Instant};

    use super::*;
    use crate::faults::Action;

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

    /// The conversion by way of the library kind's serde form.
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

    /// A manager event of every kind, converted for the trace.
    fn converted(kind: &EventKind) -> TraceEvent {
        let e = Event {
            at: Instant::ZERO + Duration::from_millis(250),
            vu: Some(7.into()),
            session: Some("s-1".into()),
            kind: kind.clone(),
        };
        TraceEvent::from_manager(&Arc::from("worker-1"), 251, &e)
    }

    #[test]
    fn manager_events_are_the_serde_form_of_every_kind() {
        for kind in every_kind() {
            let t = converted(&kind);
            assert!(matches!(t.kind, Kind::Manager(_)), "{kind:?}");
            let mut detail = t.detail();
            assert_eq!(detail.remove("clock_ms"), Some(Value::from(250)));
            assert_eq!(
                (t.name().into_owned(), detail.to_value()),
                through_serde(&kind),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn every_kind_reads_back_as_itself() {
        let host: Arc<str> = Arc::from("server");
        let mut events: Vec<TraceEvent> = every_kind().iter().map(converted).collect();
        events.extend(
            server_events()
                .into_iter()
                .map(|event| TraceEvent::from_server(&host, 5, &Stamped { at_ms: 2, event })),
        );
        for action in fault_actions() {
            events.push(TraceEvent::from_fault(&Applied {
                at_ms: 3,
                event: 2,
                action,
            }));
        }
        for (session, event) in vu_events() {
            let recorder = TraceRecorder::new("worker-2");
            recorder.record_vu(4, session, event);
            events.extend(recorder.take_events());
        }
        for e in events {
            let line = serde_json::to_string(&e).unwrap();
            let back: TraceEvent = serde_json::from_str(&line).unwrap();
            assert!(!matches!(back.kind, Kind::Other(_)), "{line}");
            assert_eq!(back, e, "{line}");
        }
    }

    /// A line that is no typed event stays as it was: an unknown name, a
    /// field missing, one too many, one of another type, a fault whose
    /// host is not its server.
    #[test]
    fn a_line_of_no_known_shape_is_kept_as_it_is() {
        let lines = [
            r#"{"t_ms":1,"host":"w","source":"manager","event":"teleported","vu":1,"detail":{"clock_ms":1}}"#,
            r#"{"t_ms":1,"host":"w","source":"manager","event":"acquire_ok","vu":1,"detail":{"clock_ms":1,"created":true}}"#,
            r#"{"t_ms":1,"host":"w","source":"manager","event":"acquire_start","vu":1}"#,
            r#"{"t_ms":1,"host":"w","source":"manager","event":"released","vu":1,"detail":{"clock_ms":1,"why":"x"}}"#,
            r#"{"t_ms":1,"host":"w","source":"manager","event":"acquire_timeout","detail":{"clock_ms":1,"waited_ms":"long"}}"#,
            r#"{"t_ms":1,"host":"w","source":"manager","event":"operation_end","detail":{"clock_ms":1,"method":"ping"}}"#,
            r#"{"t_ms":1,"host":"s","source":"server","event":"session_created","session":"s1"}"#,
            r#"{"t_ms":1,"host":"s","source":"fault","event":"crash","detail":{"plan_event":0,"server":"t"}}"#,
            r#"{"t_ms":1,"host":"w","source":"vu","event":"vu_error","detail":{"error":"x","step":1}}"#,
        ];
        for line in lines {
            let e: TraceEvent = serde_json::from_str(line).unwrap();
            assert!(matches!(e.kind, Kind::Other(_)), "{line}: {e:?}");
            assert_eq!(serde_json::to_string(&e).unwrap(), line);
            let mut bytes = Vec::new();
            crate::canonical::write_event(&mut bytes, &e);
            assert_eq!(String::from_utf8(bytes).unwrap(), line);
        }
    }

    /// A fault action of a few shapes: a host fault, a link fault, an
    /// expiry (its session), a balancer's switch, a skipped event.
    fn fault_actions() -> Vec<Action> {
        use crate::balancer::Policy;
        vec![
            Action::Crash {
                server: "server".into(),
            },
            Action::Partition {
                worker: "worker-1".into(),
                server: "server".into(),
            },
            Action::Expire {
                server: "server".into(),
                session: "srv-1".into(),
            },
            Action::Policy {
                balancer: "lb".into(),
                from: Policy::Sticky,
                to: Policy::Random,
            },
            Action::Skipped {
                why: "no session".into(),
            },
        ]
    }

    /// VU events with and without their optional fields.
    fn vu_events() -> Vec<(Option<&'static str>, VuEvent)> {
        vec![
            (
                Some("srv-1"),
                VuEvent::Answer {
                    digest: "0123".into(),
                    step: 2,
                    id: Some(4),
                },
            ),
            (
                None,
                VuEvent::Error {
                    step: 0,
                    error: "connect".into(),
                    id: None,
                    cause: Some("connect".into()),
                    status: None,
                    code: None,
                },
            ),
            (
                Some("srv-2"),
                VuEvent::Error {
                    step: 1,
                    error: "operation".into(),
                    id: Some(3),
                    cause: Some("json_rpc".into()),
                    status: Some(200),
                    code: Some(-32601),
                },
            ),
        ]
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    /// Server events of many shapes: every exchange's, and some others.
    fn server_events() -> Vec<ServerEvent> {
        let mut events = requests();
        events.extend(answers());
        events.extend(wire_logs());
        events.extend([
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
        ]);
        events
    }

    /// Requests with every optional field, and with none.
    fn requests() -> Vec<ServerEvent> {
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
        ]
    }

    /// Answers: legacy ones (with a session or none, an error, a fault)
    /// and stateless ones (an MRTR state, a fault).
    fn answers() -> Vec<ServerEvent> {
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
        let (plain, sse) = (Format::Json, Format::Sse);
        use serde_json::json;
        vec![
            answered(Some("srv-1"), plain, None, None),
            answered(None, sse, Some(-32601), None),
            answered(Some("srv-2"), sse, None, Some(AnswerFault::Truncated)),
            stateless(plain, None, 7, json!("a"), Some(json!("tool:1.sig"))),
            stateless(sse, None, 8, json!(3), None),
            stateless(sse, Some(AnswerFault::Reset), 9, json!(4), None),
        ]
    }

    /// Wire logs of stateless requests, with every field and with none.
    fn wire_logs() -> Vec<ServerEvent> {
        vec![
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
            assert_eq!(event.name(), name);
            let host = Arc::from("server");
            let t = TraceEvent::from_server(&host, 5, &Stamped { at_ms: 2, event });
            assert_eq!(
                (
                    t.name().into_owned(),
                    t.session().map(str::to_owned),
                    t.detail().to_value()
                ),
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
