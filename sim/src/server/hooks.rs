//! Run-time switches that make the server misbehave on purpose.
//!
//! These are the hooks a fault plan pulls, not the plan itself: each is a
//! plain value on the shared [`Server`](super::Server) handle that a test or
//! a scheduled fault event flips while the simulation runs (set from any
//! host, since the handle is shared), and that the request path reads. What
//! turmoil already does (crash, bounce, partition, latency) is not repeated
//! here; what only the server can do is:
//!
//! - answer the next N requests with an HTTP failure (500, 503, ...),
//! - answer `initialize` with a given protocol revision, whatever was asked,
//! - omit or garble the `Mcp-Session-Id` header of `initialize` answers,
//! - and, as methods on the handle rather than switches here, expire one
//!   session early and forget every session.

use serde::{Deserialize, Serialize};

/// What the `Mcp-Session-Id` header of an `initialize` answer carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionIdFault {
    /// The session's id, as the protocol says.
    #[default]
    Sent,
    /// No header at all (the client sees a stateless server, while the
    /// server created a session it will never hear of again).
    Omitted,
    /// A value a client must reject: the id with a space and a suffix (not
    /// "visible ASCII only").
    Garbled,
}

/// The current settings of every switch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Requests still to be answered with `fail_status`.
    pub fail_next: u32,
    /// The status injected failures get.
    pub fail_status: u16,
    /// The protocol revision `initialize` answers, if forced.
    pub protocol_version: Option<String>,
    /// What `initialize` answers put in `Mcp-Session-Id`.
    pub session_id: SessionIdFault,
}

impl Hooks {
    /// Takes one injected failure, if any is armed: its status.
    pub fn take_failure(&mut self) -> Option<u16> {
        if self.fail_next == 0 {
            return None;
        }
        self.fail_next -= 1;
        Some(self.fail_status)
    }

    /// The header value for session `id` under the current fault, or `None`
    /// for no header.
    pub fn session_id_header(&self, id: &str) -> Option<String> {
        match self.session_id {
            SessionIdFault::Sent => Some(id.to_owned()),
            SessionIdFault::Omitted => None,
            SessionIdFault::Garbled => Some(format!("{id} garbled")),
        }
    }
}
