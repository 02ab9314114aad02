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
//! - answer every N-th request with that failure, for as long as it is on
//!   (a steadily flaky server rather than a burst),
//! - spoil the next N JSON-RPC answers on the wire ([`AnswerFault`]): a
//!   malformed JSON body, an SSE stream that ends before the response, a
//!   connection torn down halfway through the body,
//! - answer the next N `initialize` requests only after a delay,
//! - answer `initialize` with a given protocol revision, whatever was asked,
//! - refuse the next N stateless-era requests with -32022 although their
//!   revision is served,
//! - speak other eras than the config's (an upgrade or a downgrade),
//! - omit or garble the `Mcp-Session-Id` header of `initialize` answers,
//! - strip `Mcp-Method` and `Mcp-Name` from the next N stateless-era
//!   requests, as a proxy in front of the server might (`strip_routing`),
//! - answer `server/discover` with another `ttlMs` and changed
//!   capabilities ([`DiscoverChange`]),
//! - send the next N stateless-era answers as SSE streams cut before the
//!   response (a lost request in that era, which has no resumption),
//! - answer the next N stateless-era `tools/call` requests
//!   `input_required` for a few rounds before the tool runs (see
//!   `mrtr::with_input_rounds`),
//! - and, as methods on the handle rather than switches here, expire one
//!   session early and forget every session.
//!
//! Every switch is consumed or read at a fixed point of the request path,
//! and none of them draws from the server's random stream: a fault changes
//! what one answer looks like, never the draws that shape the answers after
//! it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::events::ServerEvent;
use super::modern::ServerEra;
use super::State;

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

/// How a JSON-RPC answer (status 200, JSON or SSE) is spoiled on the wire.
///
/// Each one models a real failure a client must survive with a typed error
/// and without hanging; where the answer is cut is fixed (the middle of the
/// response), not drawn, so arming one never shifts the server's random
/// stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFault {
    /// The response message is cut in half: not valid JSON (in a JSON
    /// body, or in the `data` of the SSE event that carries it).
    Malformed,
    /// The answer goes out as SSE (whatever the drawn format), and the
    /// stream ends cleanly halfway through the response event: the
    /// notifications before it arrive, the response never does.
    Truncated,
    /// Half of the answer's bytes go out, then the server aborts the
    /// connection (no end of body: a JSON body falls short of its
    /// `Content-Length`, an SSE stream lacks its last chunk).
    Reset,
}

impl AnswerFault {
    /// Every fault, in the order [`Hooks::take_answer_fault`] takes them.
    pub const ALL: [AnswerFault; 3] = [
        AnswerFault::Reset,
        AnswerFault::Truncated,
        AnswerFault::Malformed,
    ];
}

/// What `server/discover` answers while a discover change is in force:
/// `ttlMs` is this one (not the config's), and the capabilities are
/// changed (see [`DiscoverChange::apply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DiscoverChange {
    /// The `ttlMs` answered.
    pub ttl_ms: u64,
}

/// The capability a changed `server/discover` result adds under
/// `experimental` (besides flipping `tools.listChanged`).
pub const CHANGED_CAPABILITY: &str = "io.github.mcp-sim/discover-change";

impl DiscoverChange {
    /// Changes a `server/discover` result: `ttlMs` set to this change's,
    /// `capabilities.tools.listChanged` flipped (set when absent), and
    /// [`CHANGED_CAPABILITY`] added under `capabilities.experimental`. A
    /// result that is not an object is left as it is.
    pub fn apply(&self, result: &mut Value) {
        let Value::Object(map) = result else {
            return;
        };
        map.insert("ttlMs".into(), self.ttl_ms.into());
        let caps = map.entry("capabilities").or_insert_with(|| json!({}));
        if !caps.is_object() {
            *caps = json!({});
        }
        let Value::Object(caps) = caps else {
            return;
        };
        let tools = caps.entry("tools").or_insert_with(|| json!({}));
        if !tools.is_object() {
            *tools = json!({});
        }
        if let Value::Object(tools) = tools {
            let was = tools
                .get("listChanged")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            tools.insert("listChanged".into(), (!was).into());
        }
        let experimental = caps.entry("experimental").or_insert_with(|| json!({}));
        if !experimental.is_object() {
            *experimental = json!({});
        }
        if let Value::Object(experimental) = experimental {
            experimental.insert(CHANGED_CAPABILITY.into(), json!({}));
        }
    }
}

/// The current settings of every switch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// Requests still to be answered with `fail_status`.
    pub fail_next: u32,
    /// The status injected failures get.
    pub fail_status: u16,
    /// Every this many requests, one is answered with `fail_status` (the
    /// N-th, the 2N-th, ...); 0: off. Counts every HTTP request the server
    /// sees while it is on, whatever its answer.
    #[serde(default)]
    pub fail_every: u32,
    /// Requests counted towards `fail_every` since it was last set.
    #[serde(default)]
    pub fail_every_seen: u64,
    /// JSON-RPC answers still to be sent malformed.
    #[serde(default)]
    pub malformed_next: u32,
    /// JSON-RPC answers still to be sent as a truncated SSE stream.
    #[serde(default)]
    pub truncated_next: u32,
    /// JSON-RPC answers still to be cut off by a connection reset.
    #[serde(default)]
    pub reset_next: u32,
    /// `initialize` requests still to be answered late.
    #[serde(default)]
    pub slow_initialize_next: u32,
    /// How late, in milliseconds of (simulated) time.
    #[serde(default)]
    pub slow_initialize_ms: u64,
    /// The protocol revision `initialize` answers, if forced.
    pub protocol_version: Option<String>,
    /// What `initialize` answers put in `Mcp-Session-Id`.
    pub session_id: SessionIdFault,
    /// Stateless-era requests still to be refused with -32022 although
    /// their revision is served (the conformance suite's trap: a client
    /// must retry once at a revision from `supported`, even the same one).
    #[serde(default)]
    pub refuse_version_next: u32,
    /// The eras the server speaks now, overriding
    /// [`ServerConfig::era`](super::ServerConfig::era) when set: an
    /// upgrade or a downgrade applied while the simulation runs (see
    /// [`Server::set_era`](super::Server::set_era)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub era: Option<ServerEra>,
    /// Stateless-era requests still to lose their `Mcp-Method` and
    /// `Mcp-Name` headers on the way in (a proxy that strips them): the
    /// ladder then refuses them with -32020.
    #[serde(default)]
    pub strip_routing_next: u32,
    /// What `server/discover` answers instead of the config's `ttlMs` and
    /// capabilities, while set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discover_change: Option<DiscoverChange>,
    /// Stateless-era JSON-RPC answers still to be sent as an SSE stream cut
    /// before the response ([`AnswerFault::Truncated`], on stateless-era
    /// answers only).
    #[serde(default)]
    pub stream_cut_next: u32,
    /// Stateless-era `tools/call` requests still to be answered
    /// `input_required` first.
    #[serde(default)]
    pub input_rounds_next: u32,
    /// How many `input_required` rounds each of them gets (at least 1).
    #[serde(default)]
    pub input_rounds: u32,
}

impl Hooks {
    /// Takes one injected failure, if any is armed: its status. Called
    /// once per request: an armed burst (`fail_next`) goes first, and every
    /// request counts towards `fail_every`.
    pub fn take_failure(&mut self) -> Option<u16> {
        let periodic = self.fail_every > 0 && {
            self.fail_every_seen += 1;
            self.fail_every_seen % u64::from(self.fail_every) == 0
        };
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return Some(self.fail_status);
        }
        periodic.then_some(self.fail_status)
    }

    /// The counter of answers still to be spoiled by `fault`.
    pub fn answer_fault_count(&mut self, fault: AnswerFault) -> &mut u32 {
        match fault {
            AnswerFault::Malformed => &mut self.malformed_next,
            AnswerFault::Truncated => &mut self.truncated_next,
            AnswerFault::Reset => &mut self.reset_next,
        }
    }

    /// Takes one armed answer fault, if any, for the JSON-RPC answer being
    /// sent. One answer gets at most one fault; with several armed, a reset
    /// goes first, then a truncation, then a malformed body.
    pub fn take_answer_fault(&mut self) -> Option<AnswerFault> {
        AnswerFault::ALL.into_iter().find(|&fault| {
            let n = self.answer_fault_count(fault);
            let armed = *n > 0;
            if armed {
                *n -= 1;
            }
            armed
        })
    }

    /// Takes one armed answer fault for a JSON-RPC answer of the stateless
    /// era (`stateless`) or the legacy one: those of
    /// [`Hooks::take_answer_fault`] first, then, for a stateless-era
    /// answer, an armed stream cut (as [`AnswerFault::Truncated`]).
    pub fn take_answer_fault_for(&mut self, stateless: bool) -> Option<AnswerFault> {
        if let Some(fault) = self.take_answer_fault() {
            return Some(fault);
        }
        if stateless && self.stream_cut_next > 0 {
            self.stream_cut_next -= 1;
            return Some(AnswerFault::Truncated);
        }
        None
    }

    /// Takes one armed stripping of the routing headers, if any.
    pub fn take_strip_routing(&mut self) -> bool {
        if self.strip_routing_next == 0 {
            return false;
        }
        self.strip_routing_next -= 1;
        true
    }

    /// Takes one armed `input_required` series, if any: how many rounds.
    pub fn take_input_rounds(&mut self) -> Option<u32> {
        if self.input_rounds_next == 0 {
            return None;
        }
        self.input_rounds_next -= 1;
        Some(self.input_rounds.max(1))
    }

    /// Takes one armed -32022 refusal of a served revision, if any.
    pub fn take_refuse_version(&mut self) -> bool {
        if self.refuse_version_next == 0 {
            return false;
        }
        self.refuse_version_next -= 1;
        true
    }

    /// Takes one armed slow `initialize`, if any: how long to wait (ms)
    /// before answering.
    pub fn take_slow_initialize(&mut self) -> Option<u64> {
        if self.slow_initialize_next == 0 {
            return None;
        }
        self.slow_initialize_next -= 1;
        Some(self.slow_initialize_ms)
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

/// The routing headers (`Mcp-Method`, `Mcp-Name`) of a stateless-era
/// request as the server gets them at the ladder's header check: gone if
/// a stripping is armed (one is taken, and the request is logged as
/// [`ServerEvent::RoutingHeadersStripped`]: the client sent what it sent,
/// a proxy took them off), else as they came.
pub(crate) fn strip_routing<'h>(
    st: &mut State,
    now: u64,
    method: &str,
    method_header: Option<&'h [u8]>,
    name_header: Option<&'h [u8]>,
) -> (Option<&'h [u8]>, Option<&'h [u8]>) {
    if !st.hooks.take_strip_routing() {
        return (method_header, name_header);
    }
    st.record(
        now,
        ServerEvent::RoutingHeadersStripped {
            method: method.to_owned(),
        },
    );
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_request_fails_and_a_burst_goes_first() {
        let mut h = Hooks {
            fail_status: 503,
            fail_every: 3,
            ..Hooks::default()
        };
        let got: Vec<_> = (0..7).map(|_| h.take_failure()).collect();
        assert_eq!(got, [None, None, Some(503), None, None, Some(503), None]);
        h.fail_next = 1;
        assert_eq!(h.take_failure(), Some(503), "the burst");
        assert_eq!(h.take_failure(), Some(503), "the 9th request");
        h.fail_every = 0;
        assert_eq!((0..4).filter_map(|_| h.take_failure()).count(), 0);
    }

    #[test]
    fn answer_faults_are_taken_one_per_answer_reset_first() {
        let mut h = Hooks::default();
        assert_eq!(h.take_answer_fault(), None);
        *h.answer_fault_count(AnswerFault::Malformed) = 1;
        *h.answer_fault_count(AnswerFault::Reset) = 2;
        *h.answer_fault_count(AnswerFault::Truncated) = 1;
        let taken: Vec<_> = std::iter::from_fn(|| h.take_answer_fault()).collect();
        assert_eq!(
            taken,
            [
                AnswerFault::Reset,
                AnswerFault::Reset,
                AnswerFault::Truncated,
                AnswerFault::Malformed
            ]
        );
        assert_eq!(h, Hooks::default());
    }

    #[test]
    fn stream_cuts_take_stateless_answers_only_after_the_other_faults() {
        let mut h = Hooks {
            stream_cut_next: 1,
            malformed_next: 1,
            ..Hooks::default()
        };
        assert_eq!(h.take_answer_fault_for(false), Some(AnswerFault::Malformed));
        assert_eq!(h.take_answer_fault_for(false), None, "legacy: no cut");
        assert_eq!(h.take_answer_fault_for(true), Some(AnswerFault::Truncated));
        assert_eq!(h.take_answer_fault_for(true), None);
    }

    #[test]
    fn strips_and_input_rounds_count_down() {
        let mut h = Hooks {
            strip_routing_next: 1,
            input_rounds_next: 2,
            input_rounds: 0,
            ..Hooks::default()
        };
        assert!(h.take_strip_routing());
        assert!(!h.take_strip_routing());
        assert_eq!(h.take_input_rounds(), Some(1), "at least one round");
        assert_eq!(h.take_input_rounds(), Some(1));
        assert_eq!(h.take_input_rounds(), None);
    }

    #[test]
    fn a_discover_change_sets_the_ttl_and_changes_the_capabilities() {
        let change = DiscoverChange { ttl_ms: 120 };
        let mut r = json!({"supportedVersions": ["2026-07-28"], "ttlMs": 0,
            "capabilities": {"tools": {"listChanged": false}}});
        change.apply(&mut r);
        assert_eq!(r["ttlMs"], 120);
        assert_eq!(r["capabilities"]["tools"]["listChanged"], true);
        assert!(r["capabilities"]["experimental"][CHANGED_CAPABILITY].is_object());
        // Whatever the shape, no panic.
        for mut odd in [
            json!([]),
            json!({"capabilities": 3}),
            json!({"capabilities": {"tools": 1, "experimental": []}}),
        ] {
            change.apply(&mut odd);
        }
    }

    #[test]
    fn slow_initialize_counts_down() {
        let mut h = Hooks {
            slow_initialize_next: 2,
            slow_initialize_ms: 700,
            ..Hooks::default()
        };
        assert_eq!(h.take_slow_initialize(), Some(700));
        assert_eq!(h.take_slow_initialize(), Some(700));
        assert_eq!(h.take_slow_initialize(), None);
    }
}
