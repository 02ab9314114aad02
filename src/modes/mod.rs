//! The four modes. Each file holds one mode's state and its acquire and
//! give-back; this file dispatches between them.
//!
//! - [`reuse`]: one session per VU (its table also serves churn);
//! - [`churn`]: the churn policy layered on reuse;
//! - [`per_request`]: a fresh session per acquire;
//! - [`pool`]: the async shell around the sans-IO [`crate::pool::core`].

pub(crate) mod churn;
pub(crate) mod per_request;
pub(crate) mod pool;
pub(crate) mod reuse;

use crate::clock::Instant;
use crate::config::{Mode, SessionConfig};
use crate::eviction::{Deadlines, Entry};
use crate::manager::{Inner, Sess, State};
use crate::metrics::CloseReason;
use crate::observe::VuId;
use crate::transport::Connector;

/// How a lease comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Return {
    /// `Lease::release`: the session is fine.
    Release,
    /// `Lease::invalidate`: the server lost the session (404).
    Invalidate,
    /// The lease was dropped unreturned.
    Drop,
}

impl Return {
    /// The close reason when the session is not kept.
    pub fn close_reason(self) -> CloseReason {
        match self {
            Return::Release => CloseReason::Released,
            Return::Invalidate => CloseReason::Invalidated,
            Return::Drop => CloseReason::Dropped,
        }
    }
}

/// The mode's mutable state, behind the manager's lock.
pub(crate) enum ModeData<X> {
    PerRequest(per_request::PerRequest),
    Pool(pool::PoolData<X>),
    /// Reuse and churn: one session per VU.
    PerVu(reuse::VuTable<Sess<X>>),
}

impl<X> ModeData<X> {
    pub fn new(cfg: &SessionConfig, deadlines: Deadlines) -> Self {
        match cfg.mode {
            Mode::PerRequest => ModeData::PerRequest(Default::default()),
            Mode::Pool => ModeData::Pool(pool::PoolData::new(cfg.pool_size, deadlines)),
            Mode::Reuse => ModeData::PerVu(reuse::VuTable::new(deadlines, churn::Churn::Never)),
            Mode::Churn => ModeData::PerVu(reuse::VuTable::new(
                deadlines,
                churn::Churn::from_config(cfg),
            )),
        }
    }

    /// Open sessions not leased.
    pub fn idle_count(&self) -> u64 {
        match self {
            ModeData::PerRequest(_) => 0,
            ModeData::Pool(p) => p.core.idle().len() as u64,
            ModeData::PerVu(t) => t.idle_count() as u64,
        }
    }

    /// Whether a session created now for `vu` replaces one invalidated after
    /// a 404 (and if so, consumes that debt).
    pub fn take_replacement(&mut self, vu: VuId) -> bool {
        match self {
            ModeData::PerRequest(p) => p.replace.remove(&vu),
            ModeData::Pool(p) => {
                let owed = p.replace > 0;
                p.replace = p.replace.saturating_sub(1);
                owed
            }
            ModeData::PerVu(t) => t.take_replacement(vu),
        }
    }

    /// The earliest eviction deadline of an idle session.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self {
            ModeData::PerRequest(_) => None,
            ModeData::Pool(p) => p.core.next_wakeup(),
            ModeData::PerVu(t) => t.next_deadline(),
        }
    }

    /// Shuts the mode's state: waiters are dropped (their acquires fail with
    /// manager-closed), idle tables emptied. The manager closes the sessions.
    pub fn close(&mut self) {
        match self {
            ModeData::PerRequest(_) => {}
            ModeData::Pool(p) => p.close(),
            ModeData::PerVu(t) => t.clear(),
        }
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        match self {
            ModeData::Pool(p) => p.core.check_invariants(),
            _ => Ok(()),
        }
    }
}

/// A lease's session comes back (lock held).
pub(crate) fn give_back<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    vu: VuId,
    entry: Entry<Sess<C::Connection>>,
    how: Return,
    now: Instant,
) {
    match &mut st.modes {
        ModeData::PerRequest(_) => per_request::give_back(inner, st, vu, entry, how),
        ModeData::Pool(_) => pool::give_back(inner, st, vu, entry, how, now),
        ModeData::PerVu(_) => reuse::give_back(inner, st, vu, entry, how, now),
    }
}

/// The evictor's deadline came (lock held).
pub(crate) fn evict_due<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    now: Instant,
) {
    match &mut st.modes {
        ModeData::PerRequest(_) => {}
        ModeData::Pool(p) => {
            // Pool timeouts first: an expired waiter is woken and takes
            // its timeout.
            let timed_out = p.core.expire_waiters(now);
            pool::apply(inner, st, timed_out, None);
            let ModeData::Pool(p) = &mut st.modes else {
                unreachable!("checked above")
            };
            let fx = p.core.evict(now);
            pool::apply(inner, st, fx, None);
        }
        ModeData::PerVu(t) => {
            for (vu, cell, reason) in t.evict(now) {
                inner.begin_close(st, &cell, reason, Some(vu));
            }
        }
    }
}
