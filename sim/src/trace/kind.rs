//! What a trace event is, typed: one enum per source, one variant per
//! event kind, each with its fields.
//!
//! - a manager's events are [`ManagerEvent`]s (the library's
//!   [`EventKind`], with the manager's clock reading, owned so that a
//!   parsed trace holds them too);
//! - a server's are the server's own [`ServerEvent`]s;
//! - a VU's are [`VuEvent`]s;
//! - the fault applier's are its [`Action`]s.
//!
//! # The line
//!
//! A trace line is `t_ms`, `host`, `source`, `event` (the kind's name),
//! `session`, `vu` and `detail` (the other fields). For every kind the name
//! and the detail are the event's serde form (see [`super::fields`]): its
//! tag, and its other fields, with these moved out to the line:
//!
//! - a manager event's session and VU are the library event's; its detail
//!   adds `clock_ms`, the manager's clock reading;
//! - a server event's `session` field is the line's session;
//! - a fault's `server` (or `balancer`) is the line's host, an early
//!   expiry's `session` the line's session, and its detail adds
//!   `plan_event`, the index of the plan event it belongs to.
//!
//! A parsed line becomes the typed event whose line it is exactly (the
//! same name, session, VU and detail, and for a fault the same host); any
//! other line (a kind this build does not know, a field missing or of
//! another type, one too many) is kept as it is, a [`RawRecord`], which
//! writes the same bytes back and which the laws pass by.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use mcp_session::EventKind;

use super::fields::fields;
use super::Source;
use crate::detail::Detail;
use crate::faults::Action;
use crate::server::ServerEvent;

/// What happened, by who reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A worker's session manager reported it (its `EventSink`).
    Manager(ManagerRecord),
    /// A simulated MCP server logged it (boxed: the largest kind).
    Server(Box<ServerEvent>),
    /// A VU program reported it.
    Vu(VuRecord),
    /// The fault applier did it.
    Fault(FaultRecord),
    /// A line of a parsed trace that is no typed event (see the module
    /// docs), kept as it was.
    Other(RawRecord),
}

/// A manager event, as the trace holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerRecord {
    /// The VU concerned, if any.
    pub vu: Option<u64>,
    /// The session concerned, if any.
    pub session: Option<String>,
    /// The manager's clock reading (ms since the manager started).
    pub clock_ms: u64,
    /// What happened.
    pub event: ManagerEvent,
}

/// What a manager reported: the library's [`EventKind`], its names owned
/// (a parsed trace holds them too) and the pool wait's deadline read on the
/// manager's clock. Its serde form is the trace line's name and detail
/// (the detail with `clock_ms` added).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ManagerEvent {
    /// An acquire began.
    AcquireStart,
    /// The acquire joined the pool's waiter queue.
    AcquireWait {
        /// Its place in the queue (0: the head).
        position: u64,
        /// When it times out (manager clock, ms).
        deadline_ms: u64,
    },
    /// The acquire got a session.
    AcquireOk {
        /// A session created for it (not reused).
        created: bool,
        /// Created to replace an invalidated one.
        reconnect: bool,
        /// How long it waited in the pool's queue.
        waited_ms: u64,
    },
    /// A queued acquire timed out.
    AcquireTimeout {
        /// How long it waited.
        waited_ms: u64,
    },
    /// The acquire failed.
    AcquireError {
        /// The error's kind (the library's `kind_name`).
        error: Cow<'static, str>,
    },
    /// The acquire was dropped before it ended.
    AcquireCancelled {
        /// While queued (else while creating a session).
        waiting: bool,
    },
    /// The pool handed capacity to a waiter: a session (the event's), or a
    /// free slot.
    WaiterGranted {
        /// A slot (to create a session in), not a session.
        slot: bool,
    },
    /// An acquire took a free slot to create a session in.
    SlotReserved,
    /// A reserved slot was given back (its create failed or was dropped).
    SlotFreed,
    /// A session (a stateless-era context) was created.
    Created {
        /// `legacy` or `modern`; absent in traces recorded before the
        /// stateless era (legacy, then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        era: Option<Cow<'static, str>>,
    },
    /// A `server/discover` probe decided the era.
    EraProbed {
        /// The revision probed.
        version: String,
        /// `modern`, `legacy` or `failed`.
        verdict: Cow<'static, str>,
        /// Why the era was probed again, for a probe after the first.
        reprobe: Option<Cow<'static, str>>,
        /// What the server answered, when it did not answer as the
        /// stateless era does.
        answer: Option<String>,
        /// The discover result's `ttlMs`, for a modern verdict.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    /// A request refused with -32022 was sent again at another revision.
    VersionRetried {
        /// The revision refused.
        from: String,
        /// The revision sent now.
        to: String,
    },
    /// The manager doubts the era it chose (a server changed era).
    EraChanged,
    /// An operation began on the session.
    OperationStart {
        /// The JSON-RPC method.
        method: Cow<'static, str>,
    },
    /// The operation ended.
    OperationEnd {
        /// The JSON-RPC method.
        method: Cow<'static, str>,
        /// The error's kind, if it failed.
        error: Option<Cow<'static, str>>,
    },
    /// The VU gave its lease back.
    Released,
    /// The VU invalidated its lease.
    Invalidated,
    /// A lease was dropped without being given back.
    LeaseDropped,
    /// The session was closed.
    Closed {
        /// Why (the library's `CloseReason` name).
        reason: Cow<'static, str>,
    },
    /// The session's transport close (its DELETE) failed.
    CloseFailed {
        /// What went wrong.
        error: String,
    },
    /// The manager began to close.
    ManagerClosing,
    /// The manager is closed.
    ManagerClosed,
}

impl ManagerEvent {
    /// The library's event kind, as the trace holds it; `None` for a kind
    /// added to the library since (its enum is non-exhaustive).
    pub fn from_library(kind: &EventKind) -> Option<ManagerEvent> {
        use ManagerEvent as M;
        Some(match kind {
            EventKind::AcquireStart => M::AcquireStart,
            EventKind::AcquireWait { position, deadline } => M::AcquireWait {
                position: *position as u64,
                deadline_ms: deadline.as_millis(),
            },
            EventKind::AcquireOk {
                created,
                reconnect,
                waited_ms,
            } => M::AcquireOk {
                created: *created,
                reconnect: *reconnect,
                waited_ms: *waited_ms,
            },
            EventKind::AcquireTimeout { waited_ms } => M::AcquireTimeout {
                waited_ms: *waited_ms,
            },
            EventKind::AcquireError { error } => M::AcquireError {
                error: Cow::Borrowed(error),
            },
            EventKind::AcquireCancelled { waiting } => M::AcquireCancelled { waiting: *waiting },
            EventKind::WaiterGranted { slot } => M::WaiterGranted { slot: *slot },
            EventKind::SlotReserved => M::SlotReserved,
            EventKind::SlotFreed => M::SlotFreed,
            EventKind::Created { era } => M::Created {
                era: Some(Cow::Borrowed(era.as_str())),
            },
            EventKind::EraProbed { .. } => return era_probed(kind),
            EventKind::VersionRetried { from, to } => M::VersionRetried {
                from: from.clone(),
                to: to.clone(),
            },
            EventKind::EraChanged => M::EraChanged,
            EventKind::OperationStart { method } => M::OperationStart {
                method: Cow::Borrowed(method),
            },
            EventKind::OperationEnd { method, error } => M::OperationEnd {
                method: Cow::Borrowed(method),
                error: error.map(Cow::Borrowed),
            },
            EventKind::Released => M::Released,
            EventKind::Invalidated => M::Invalidated,
            EventKind::LeaseDropped => M::LeaseDropped,
            EventKind::Closed { reason } => M::Closed {
                reason: Cow::Borrowed(reason.as_str()),
            },
            EventKind::CloseFailed { error } => M::CloseFailed {
                error: error.clone(),
            },
            EventKind::ManagerClosing => M::ManagerClosing,
            EventKind::ManagerClosed => M::ManagerClosed,
            _ => return None,
        })
    }
}

/// [`ManagerEvent::from_library`] of an `era_probed`.
fn era_probed(kind: &EventKind) -> Option<ManagerEvent> {
    let EventKind::EraProbed {
        version,
        verdict,
        reprobe,
        answer,
        ttl_ms,
    } = kind
    else {
        return None;
    };
    Some(ManagerEvent::EraProbed {
        version: version.clone(),
        verdict: Cow::Borrowed(verdict),
        reprobe: reprobe.map(Cow::Borrowed),
        answer: answer.clone(),
        ttl_ms: *ttl_ms,
    })
}

/// A VU's event, as the trace holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VuRecord {
    /// The VU.
    pub vu: u64,
    /// The session its step ran on, if it had one.
    pub session: Option<String>,
    /// What happened.
    pub event: VuEvent,
}

/// What a VU program reported of one step of its program (see
/// [`crate::vu`] and [`crate::cause_laws`], which reads them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum VuEvent {
    /// A call got a result.
    #[serde(rename = "vu_answer")]
    Answer {
        /// The [`digest`](crate::server::events::digest) of the result.
        digest: String,
        /// The step's index in the VU's program.
        step: u64,
        /// The JSON-RPC id of the request the call sent last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// A step failed.
    #[serde(rename = "vu_error")]
    Error {
        /// The step's index in the VU's program.
        step: u64,
        /// The library's error kind (or the VU's own:
        /// `input_rounds_exceeded`).
        error: Cow<'static, str>,
        /// The JSON-RPC id of the request that failed, if one was sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// For an error of the transport: its class
        /// ([`crate::vu::transport_cause`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<Cow<'static, str>>,
        /// The HTTP status the transport saw, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// The JSON-RPC error code the transport saw, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i64>,
    },
}

/// What the fault applier did, as the trace holds it (its host is the
/// event's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// The index of the plan event it belongs to.
    pub plan_event: u64,
    /// What it did.
    pub action: Action,
}

impl FaultRecord {
    /// The host it acted on: the server (the balancer), or none.
    pub fn host(&self) -> String {
        let d = fields(&self.action, &[]).unwrap_or_default();
        let host = d.get("server").or_else(|| d.get("balancer"));
        host.and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    /// The session of an early expiry.
    pub fn session(&self) -> Option<&str> {
        match &self.action {
            Action::Expire { session, .. } => Some(session),
            _ => None,
        }
    }

    /// The worker end of a link fault.
    pub fn worker(&self) -> Option<&str> {
        match &self.action {
            Action::Partition { worker, .. }
            | Action::Hold { worker, .. }
            | Action::Heal { worker, .. }
            | Action::Latency { worker, .. } => Some(worker),
            _ => None,
        }
    }
}

/// A trace line that is no typed event, as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRecord {
    /// Who reported it.
    pub source: Source,
    /// Its name.
    pub name: String,
    /// Its session.
    pub session: Option<String>,
    /// Its VU.
    pub vu: Option<u64>,
    /// Its other fields.
    pub detail: Detail,
}

/// An event's line but for time and host: what the canonical bytes and the
/// JSON are written from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parts<'a> {
    pub source: Source,
    pub name: Cow<'a, str>,
    pub session: Option<&'a str>,
    pub vu: Option<u64>,
    pub detail: Cow<'a, Detail>,
}

impl Kind {
    /// Who reported it.
    pub fn source(&self) -> Source {
        match self {
            Kind::Manager(_) => Source::Manager,
            Kind::Server(_) => Source::Server,
            Kind::Vu(_) => Source::Vu,
            Kind::Fault(_) => Source::Fault,
            Kind::Other(r) => r.source,
        }
    }

    /// The session concerned, if any.
    pub fn session(&self) -> Option<&str> {
        match self {
            Kind::Manager(m) => m.session.as_deref(),
            Kind::Server(s) => s.session(),
            Kind::Vu(v) => v.session.as_deref(),
            Kind::Fault(f) => f.session(),
            Kind::Other(r) => r.session.as_deref(),
        }
    }

    /// The VU concerned, if any.
    pub fn vu(&self) -> Option<u64> {
        match self {
            Kind::Manager(m) => m.vu,
            Kind::Vu(v) => Some(v.vu),
            Kind::Other(r) => r.vu,
            Kind::Server(_) | Kind::Fault(_) => None,
        }
    }

    /// The line's source, name, session, VU and detail (see the module
    /// docs).
    pub(crate) fn parts(&self) -> Parts<'_> {
        let (name, detail) = match self {
            Kind::Manager(m) => {
                let (name, mut d) = tagged_fields(&m.event, "event", &[]);
                d.insert("clock_ms", m.clock_ms);
                (name, d)
            }
            Kind::Server(s) => tagged_fields(&**s, "event", &["session"]),
            Kind::Vu(v) => tagged_fields(&v.event, "event", &[]),
            Kind::Fault(f) => {
                let skip = ["server", "balancer", "session"];
                let (name, mut d) = tagged_fields(&f.action, "action", &skip);
                d.insert("plan_event", f.plan_event);
                (name, d)
            }
            Kind::Other(r) => {
                return Parts {
                    source: r.source,
                    name: Cow::Borrowed(&r.name),
                    session: r.session.as_deref(),
                    vu: r.vu,
                    detail: Cow::Borrowed(&r.detail),
                }
            }
        };
        Parts {
            source: self.source(),
            name: Cow::Owned(name),
            session: self.session(),
            vu: self.vu(),
            detail: Cow::Owned(detail),
        }
    }

    /// The kind of a line of host `host` (see the module docs): the typed
    /// event whose line it is, else the line as it is.
    pub(crate) fn parse(host: &str, raw: RawRecord) -> Kind {
        let typed = match raw.source {
            Source::Manager => parse_manager(&raw),
            Source::Server => {
                let extra = [("session", raw.session.as_deref())];
                from_tagged::<ServerEvent>("event", &raw.name, &raw.detail, &extra)
                    .map(|s| Kind::Server(Box::new(s)))
            }
            Source::Vu => raw.vu.and_then(|vu| {
                let event = from_tagged("event", &raw.name, &raw.detail, &[])?;
                Some(Kind::Vu(VuRecord {
                    vu,
                    session: raw.session.clone(),
                    event,
                }))
            }),
            Source::Fault => parse_fault(host, &raw),
        };
        let same =
            |k: &Kind| k.parts() == raw.parts() && !matches!(k, Kind::Fault(f) if f.host() != host);
        match typed {
            Some(k) if same(&k) => k,
            _ => Kind::Other(raw),
        }
    }
}

impl RawRecord {
    /// Its line's parts.
    fn parts(&self) -> Parts<'_> {
        Parts {
            source: self.source,
            name: Cow::Borrowed(&self.name),
            session: self.session.as_deref(),
            vu: self.vu,
            detail: Cow::Borrowed(&self.detail),
        }
    }
}

/// A manager line's typed event: its detail less `clock_ms`.
fn parse_manager(raw: &RawRecord) -> Option<Kind> {
    let mut detail = raw.detail.clone();
    let clock_ms = detail.remove("clock_ms")?.as_u64()?;
    let event = from_tagged("event", &raw.name, &detail, &[])?;
    Some(Kind::Manager(ManagerRecord {
        vu: raw.vu,
        session: raw.session.clone(),
        clock_ms,
        event,
    }))
}

/// A fault line's typed action: its detail less `plan_event`, its host as
/// the action's server (or balancer), its session as an expiry's.
fn parse_fault(host: &str, raw: &RawRecord) -> Option<Kind> {
    let mut detail = raw.detail.clone();
    let plan_event = detail.remove("plan_event")?.as_u64()?;
    let extra = [
        ("server", Some(host)),
        ("balancer", Some(host)),
        ("session", raw.session.as_deref()),
    ];
    let action = from_tagged("action", &raw.name, &detail, &extra)?;
    Some(Kind::Fault(FaultRecord { plan_event, action }))
}

/// The fields of a typed event's serde form, its tag (`tag`) taken out as
/// its name, `skip` left out.
fn tagged_fields<T: Serialize + ?Sized>(value: &T, tag: &str, skip: &[&str]) -> (String, Detail) {
    let mut d = fields(value, skip).unwrap_or_default();
    let name = match d.remove(tag) {
        Some(Value::String(name)) => name,
        _ => "unknown".to_owned(),
    };
    (name, d)
}

/// The typed event whose serde form is tag `tag` = `name`, the fields of
/// `detail` and the `extra` fields that are there.
fn from_tagged<T: DeserializeOwned>(
    tag: &str,
    name: &str,
    detail: &Detail,
    extra: &[(&str, Option<&str>)],
) -> Option<T> {
    let mut map = Map::new();
    for (k, v) in detail.iter() {
        map.insert(k.to_owned(), v.clone());
    }
    for (k, v) in extra {
        if let Some(v) = v {
            map.insert((*k).to_owned(), Value::from(*v));
        }
    }
    map.insert(tag.to_owned(), Value::from(name));
    serde_json::from_value(Value::Object(map)).ok()
}
