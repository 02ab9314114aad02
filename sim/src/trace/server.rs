//! What the laws read of a [`ServerEvent`] whatever its kind: the fields
//! several kinds share (the session named, the client host, the JSON-RPC
//! and HTTP methods, the version header, the tool), each the field of that
//! name of any kind that has one, as the trace line's `session` and
//! `detail` show them. A law that treats several kinds alike (every
//! message naming a session, every refusal from a worker) reads them here;
//! one about a single kind matches that variant.
//!
//! (An inherent `impl` of the server's enum, kept beside the trace that
//! needs it: the server itself never reads its log.)

use serde_json::Value;

use super::fields::fields;
use crate::server::ServerEvent;

/// `$on_string` for the kinds whose `session` is a string, `$on_option`
/// for those where it is optional, `None` for the rest.
macro_rules! match_session {
    ($event:expr, $s:ident => $on_string:expr, $o:ident => $on_option:expr) => {
        match $event {
            ServerEvent::SessionCreated { session: $s, .. }
            | ServerEvent::Request { session: $s, .. }
            | ServerEvent::Notification { session: $s, .. }
            | ServerEvent::ClientResponse { session: $s }
            | ServerEvent::Deleted { session: $s, .. }
            | ServerEvent::UnknownSession { session: $s, .. }
            | ServerEvent::Expired { session: $s, .. }
            | ServerEvent::ClientRequestSent { session: $s, .. }
            | ServerEvent::ClientRequestAnswered { session: $s, .. }
            | ServerEvent::ClientRequestTimedOut { session: $s, .. }
            | ServerEvent::ClientResponseUnmatched { session: $s, .. } => $on_string,
            ServerEvent::Answered { session: $o, .. }
            | ServerEvent::StatelessWire { session: $o, .. }
            | ServerEvent::Rejected { session: $o, .. }
            | ServerEvent::Injected { session: $o, .. }
            | ServerEvent::Delayed { session: $o, .. } => $on_option,
            _ => None,
        }
    };
}

impl ServerEvent {
    /// Its name (its trace line's `event`: `request`, `answered`, ...).
    pub fn name(&self) -> String {
        match fields(self, &[]).and_then(|mut d| d.remove("event")) {
            Some(Value::String(name)) => name,
            _ => String::new(),
        }
    }

    /// The session it names (its `session` field), if any.
    pub fn session(&self) -> Option<&str> {
        match_session!(self, s => Some(s.as_str()), o => o.as_deref())
    }

    /// The session it names, to change (a balanced run qualifies it with
    /// the instance that logged it).
    pub fn session_mut(&mut self) -> Option<&mut String> {
        match_session!(self, s => Some(s), o => o.as_mut())
    }

    /// The client host it came from (`from`), where the server knows it.
    pub fn client_host(&self) -> Option<&str> {
        match self {
            ServerEvent::SessionCreated { from, .. }
            | ServerEvent::SessionLimit { from, .. }
            | ServerEvent::Request { from, .. }
            | ServerEvent::StatelessWire { from, .. }
            | ServerEvent::Notification { from, .. }
            | ServerEvent::Deleted { from, .. }
            | ServerEvent::UnknownSession { from, .. }
            | ServerEvent::MissingSession { from, .. }
            | ServerEvent::Rejected { from, .. }
            | ServerEvent::Injected { from, .. } => from.as_deref(),
            _ => None,
        }
    }

    /// The JSON-RPC method it names (`method`), if any.
    pub fn method(&self) -> Option<&str> {
        match self {
            ServerEvent::Request { method, .. }
            | ServerEvent::Answered { method, .. }
            | ServerEvent::StatelessRequest { method, .. }
            | ServerEvent::StatelessNotification { method }
            | ServerEvent::Notification { method, .. }
            | ServerEvent::Delayed { method, .. }
            | ServerEvent::RoutingHeadersStripped { method }
            | ServerEvent::ClientRequestSent { method, .. } => Some(method),
            ServerEvent::StatelessWire { method, .. }
            | ServerEvent::UnknownSession { method, .. }
            | ServerEvent::MissingSession { method, .. } => method.as_deref(),
            _ => None,
        }
    }

    /// The HTTP method of the request it logs (`http`), where it names it.
    pub fn http(&self) -> Option<&str> {
        match self {
            ServerEvent::StatelessWire { http, .. }
            | ServerEvent::UnknownSession { http, .. }
            | ServerEvent::MissingSession { http, .. }
            | ServerEvent::Rejected { http, .. }
            | ServerEvent::Injected { http, .. } => Some(http),
            _ => None,
        }
    }

    /// The `MCP-Protocol-Version` header the request carried
    /// (`header_version`), where it logs one.
    pub fn header_version(&self) -> Option<&str> {
        match self {
            ServerEvent::SessionCreated { header_version, .. }
            | ServerEvent::Request { header_version, .. }
            | ServerEvent::StatelessWire { header_version, .. }
            | ServerEvent::Notification { header_version, .. }
            | ServerEvent::Deleted { header_version, .. }
            | ServerEvent::UnknownSession { header_version, .. }
            | ServerEvent::MissingSession { header_version, .. }
            | ServerEvent::Rejected { header_version, .. } => header_version.as_deref(),
            _ => None,
        }
    }

    /// The tool it names (`tool`), if any.
    pub fn tool(&self) -> Option<&str> {
        match self {
            ServerEvent::Request { tool, .. } | ServerEvent::StatelessRequest { tool, .. } => {
                tool.as_deref()
            }
            ServerEvent::InputRequested { tool, .. }
            | ServerEvent::ClientRequestSent { tool, .. } => Some(tool),
            _ => None,
        }
    }

    /// The JSON-RPC id of the client's request it logs, answers or refused
    /// (`id`): of a `request`, an `answered`, an `injected` or a
    /// `stateless_wire` (the others carry none, or the server's own
    /// requests' ids).
    pub fn request_id(&self) -> Option<&Value> {
        match self {
            ServerEvent::Request { id, .. }
            | ServerEvent::Answered { id, .. }
            | ServerEvent::Injected { id, .. }
            | ServerEvent::StatelessWire { id, .. } => id.as_ref(),
            _ => None,
        }
    }
}
