//! Per-request mode: every acquire initializes a new session; release closes
//! it (reason `released`). Sessions in flight are in the manager's registry
//! like any other, so `close()` closes them too (the reference could not).

use std::collections::BTreeSet;

use crate::error::SessionError;
use crate::eviction::Entry;
use crate::lease::Lease;
use crate::manager::{Inner, Sess, State};
use crate::modes::Return;
use crate::observe::VuId;
use crate::transport::Connector;

/// Per-request state: which VUs' next session replaces an invalidated one.
#[derive(Debug, Default)]
pub(crate) struct PerRequest {
    pub replace: BTreeSet<VuId>,
}

pub(crate) async fn acquire<C: Connector>(
    inner: &Inner<C>,
    vu: VuId,
) -> Result<Lease<C>, SessionError> {
    let cell = inner.create_session(vu).await?;
    let now = inner.clock.now();
    let mut st = inner.lock();
    inner.hand_out(&mut st, vu, Entry::new(cell, now), true, 0)
}

pub(crate) fn give_back<C: Connector>(
    inner: &Inner<C>,
    st: &mut State<C::Connection>,
    vu: VuId,
    entry: Entry<Sess<C::Connection>>,
    how: Return,
) {
    if how == Return::Invalidate && !st.closed {
        if let super::ModeData::PerRequest(p) = &mut st.modes {
            p.replace.insert(vu);
        }
    }
    inner.begin_close(st, &entry.item, how.close_reason(), Some(vu));
}
