//! The server's session table: pure state, no I/O, no clock.
//!
//! Every method that depends on time takes `now` (milliseconds since the
//! server's start) from the caller. That keeps the table trivially
//! deterministic and testable step by step, and it lets the serving code
//! decide what "now" is (simulated time under turmoil, tokio time for real).
//!
//! Expiry is checked, not scheduled: [`Sessions::expire_due`] removes every
//! session whose deadline has passed, and the server calls it before it
//! handles each request. A session is therefore expired *at* its deadline
//! (not a millisecond after), the same rule the client library's evictor
//! follows, and an expiry is observed (and logged) exactly when it can make a
//! difference to a client: when a request arrives.
//!
//! Ids come from a per-table counter: `srv-1`, `srv-2`, … They are never
//! reused, not even after [`Sessions::clear`]: a real server's random ids
//! would not collide across a restart either, and a reused id would let a
//! client's stale session silently come back to life.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The prefix of every session id this server issues.
pub const ID_PREFIX: &str = "srv-";

/// Why a session ended without a DELETE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryReason {
    /// Its time to live, counted from creation, ran out.
    Ttl,
    /// It was not used for the idle limit.
    Idle,
    /// It was expired on purpose, ahead of any limit (a fault).
    Early,
}

/// Server-side limits of the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Time to live from creation, in ms (`None`: forever).
    pub ttl_ms: Option<u64>,
    /// Longest time between two uses, in ms (`None`: forever).
    pub idle_ms: Option<u64>,
    /// Most sessions alive at once (`None`: unbounded).
    pub max_sessions: Option<usize>,
}

/// One live session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEntry {
    /// When `initialize` created it.
    pub created_ms: u64,
    /// When a request last named it.
    pub last_used_ms: u64,
    /// The protocol revision answered in `initialize`.
    pub protocol_version: String,
    /// Whether `notifications/initialized` has arrived.
    pub initialized: bool,
}

/// `initialize` found the table full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    /// The limit that was reached.
    pub max: usize,
}

/// The session table.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    limits: Limits,
    /// The number of the last id issued.
    issued: u64,
    live: BTreeMap<u64, SessionEntry>,
    /// `(deadline, number)` of every live session that has one: expiry
    /// finds the due ones without scanning the table.
    deadlines: BTreeSet<(u64, u64)>,
}

impl Sessions {
    /// An empty table with `limits`.
    pub fn new(limits: Limits) -> Self {
        Sessions {
            limits,
            ..Sessions::default()
        }
    }

    /// The table's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Creates a session at `now` that speaks `protocol_version` and
    /// returns its id, or fails if the table is full.
    pub fn create(&mut self, now: u64, protocol_version: String) -> Result<String, Full> {
        if let Some(max) = self.limits.max_sessions {
            if self.live.len() >= max {
                return Err(Full { max });
            }
        }
        self.issued += 1;
        let n = self.issued;
        let entry = SessionEntry {
            created_ms: now,
            last_used_ms: now,
            protocol_version,
            initialized: false,
        };
        if let Some(d) = self.deadline(&entry) {
            self.deadlines.insert((d, n));
        }
        self.live.insert(n, entry);
        Ok(format_id(n))
    }

    /// The live session `id`, if there is one.
    pub fn get(&self, id: &str) -> Option<&SessionEntry> {
        self.live.get(&parse_id(id)?)
    }

    /// Records a use of session `id` at `now` (which moves its idle
    /// deadline). Returns `false` if the session is unknown.
    pub fn touch(&mut self, id: &str, now: u64) -> bool {
        let Some(n) = parse_id(id) else {
            return false;
        };
        let Some(entry) = self.live.get(&n) else {
            return false;
        };
        let old = self.deadline(entry);
        let mut updated = entry.clone();
        updated.last_used_ms = updated.last_used_ms.max(now);
        let new = self.deadline(&updated);
        if old != new {
            if let Some(d) = old {
                self.deadlines.remove(&(d, n));
            }
            if let Some(d) = new {
                self.deadlines.insert((d, n));
            }
        }
        self.live.insert(n, updated);
        true
    }

    /// Marks session `id` as having sent `notifications/initialized`.
    pub fn mark_initialized(&mut self, id: &str) {
        if let Some(entry) = parse_id(id).and_then(|n| self.live.get_mut(&n)) {
            entry.initialized = true;
        }
    }

    /// Ends session `id` (a DELETE, or an early expiry). Returns `false` if
    /// it was not live.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(n) = parse_id(id) else {
            return false;
        };
        let Some(entry) = self.live.remove(&n) else {
            return false;
        };
        if let Some(d) = self.deadline(&entry) {
            self.deadlines.remove(&(d, n));
        }
        true
    }

    /// Removes every session whose deadline is at or before `now`, and
    /// returns them (id and reason) in deadline order.
    pub fn expire_due(&mut self, now: u64) -> Vec<(String, ExpiryReason)> {
        let mut out = Vec::new();
        while let Some(&(d, n)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(entry) = self.live.remove(&n) else {
                continue;
            };
            let ttl_due = self
                .limits
                .ttl_ms
                .is_some_and(|ttl| entry.created_ms.saturating_add(ttl) <= now);
            let reason = if ttl_due {
                ExpiryReason::Ttl
            } else {
                ExpiryReason::Idle
            };
            out.push((format_id(n), reason));
        }
        out
    }

    /// Forgets every session (a restart that loses its state). Returns how
    /// many there were. The id counter keeps counting.
    pub fn clear(&mut self) -> usize {
        let n = self.live.len();
        self.live.clear();
        self.deadlines.clear();
        n
    }

    /// The ids of the live sessions, oldest first.
    pub fn ids(&self) -> Vec<String> {
        self.live.keys().map(|&n| format_id(n)).collect()
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The earlier of the session's TTL and idle deadlines.
    fn deadline(&self, e: &SessionEntry) -> Option<u64> {
        let ttl = self.limits.ttl_ms.map(|t| e.created_ms.saturating_add(t));
        let idle = self
            .limits
            .idle_ms
            .map(|t| e.last_used_ms.saturating_add(t));
        match (ttl, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `srv-<n>`.
fn format_id(n: u64) -> String {
    format!("{ID_PREFIX}{n}")
}

/// The number of an id this server could have issued (`srv-<n>`, written
/// exactly as issued: no sign, no leading zero).
fn parse_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix(ID_PREFIX)?;
    let n: u64 = digits.parse().ok()?;
    (format!("{n}") == digits && n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ttl: Option<u64>, idle: Option<u64>, max: Option<usize>) -> Sessions {
        Sessions::new(Limits {
            ttl_ms: ttl,
            idle_ms: idle,
            max_sessions: max,
        })
    }

    #[test]
    fn ids_count_up_and_are_never_reused() {
        let mut t = table(None, None, None);
        assert_eq!(t.create(0, "v".into()).unwrap(), "srv-1");
        assert_eq!(t.create(0, "v".into()).unwrap(), "srv-2");
        assert!(t.remove("srv-1"));
        assert!(!t.remove("srv-1"), "a second DELETE finds nothing");
        assert_eq!(t.clear(), 1);
        assert_eq!(t.create(0, "v".into()).unwrap(), "srv-3");
        for foreign in ["srv-01", "srv-+3", "srv-", "srv-0", "3", "SRV-3", "srv-3 "] {
            assert!(t.get(foreign).is_none(), "{foreign:?}");
        }
        assert_eq!(t.ids(), ["srv-3"]);
    }

    #[test]
    fn max_sessions_refuses_creation_until_one_ends() {
        let mut t = table(None, None, Some(2));
        t.create(0, "v".into()).unwrap();
        t.create(0, "v".into()).unwrap();
        assert_eq!(t.create(0, "v".into()), Err(Full { max: 2 }));
        t.remove("srv-1");
        assert_eq!(t.create(0, "v".into()).unwrap(), "srv-3");
    }

    #[test]
    fn idle_expiry_before_at_and_after_the_deadline() {
        let mut t = table(None, Some(100), None);
        let id = t.create(0, "v".into()).unwrap();
        assert!(t.touch(&id, 50));
        assert!(t.expire_due(149).is_empty(), "1ms before");
        assert_eq!(t.expire_due(150), [(id.clone(), ExpiryReason::Idle)]);
        assert!(t.get(&id).is_none());
        assert!(!t.touch(&id, 151), "after: unknown");
    }

    #[test]
    fn ttl_counts_from_creation_whatever_the_use() {
        let mut t = table(Some(300), Some(200), None);
        let id = t.create(0, "v".into()).unwrap();
        t.touch(&id, 150);
        t.touch(&id, 290);
        assert!(t.expire_due(299).is_empty());
        assert_eq!(t.expire_due(300), [(id, ExpiryReason::Ttl)]);
        assert!(t.is_empty());
    }

    #[test]
    fn expiry_comes_in_deadline_order() {
        let mut t = table(None, Some(10), None);
        let a = t.create(0, "v".into()).unwrap();
        let b = t.create(1, "v".into()).unwrap();
        t.touch(&a, 5);
        assert_eq!(
            t.expire_due(100),
            [(b, ExpiryReason::Idle), (a, ExpiryReason::Idle)]
        );
    }
}
