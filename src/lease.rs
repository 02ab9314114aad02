//! A [`Lease`]: one VU's hold on one session.
//!
//! Giving a lease back consumes it ([`Lease::release`],
//! [`Lease::invalidate`]), so releasing twice, or releasing after
//! invalidating — the reference's defects 1 and 2 — do not compile:
//!
//! ```compile_fail,E0382
//! # use mcp_session::*;
//! # async fn f(m: Manager<transport::scripted::ScriptedConnector>) {
//! let lease = m.acquire(1).await.unwrap();
//! lease.release();
//! lease.release(); // error[E0382]: use of moved value: `lease`
//! # }
//! ```
//!
//! ```compile_fail,E0382
//! # use mcp_session::*;
//! # async fn f(m: Manager<transport::scripted::ScriptedConnector>) {
//! let lease = m.acquire(1).await.unwrap();
//! lease.invalidate();
//! lease.release(); // error[E0382]: use of moved value: `lease`
//! # }
//! ```
//!
//! A lease that is dropped without either (say, its task was cancelled
//! mid-operation) is given back as dropped: its session's state is unknown,
//! so it is closed rather than reused, in the background. A lease left
//! unused as a statement's value is a `#[must_use]` warning:
//!
//! ```compile_fail
//! #![deny(unused_must_use)]
//! # use mcp_session::*;
//! # async fn f(m: Manager<transport::scripted::ScriptedConnector>) {
//! m.acquire(1).await.unwrap(); // error: unused `Lease` that must be used
//! # }
//! ```

use std::sync::Arc;

use crate::error::{ErrorKind, Op, SessionError};
use crate::eviction::Entry;
#[cfg(doc)]
use crate::manager::Manager;
use crate::manager::{Inner, SessionRef};
use crate::mode_core::Return;
use crate::observe::{EventKind, VuId};
use crate::session::SessionInfo;
use crate::transport::{CallResult, Connection, Connector, InputResponses, Operation};

/// One VU's hold on one session. Run operations with [`Lease::call`], then
/// [`Lease::release`] it — or [`Lease::invalidate`] it when the server said
/// the session is gone.
///
/// # One lease per VU
///
/// In `reuse` and `churn` mode a VU has one session, and holds at most one
/// lease on it at a time: a second [`Manager::acquire`] by a VU that still
/// holds its lease fails with [`ErrorKind::VuBusy`]. The Go reference
/// (mcpdrill) handed back the same session instead, so two operations of
/// one VU could use it concurrently and give it back twice — the double
/// release this crate makes impossible. A lease runs one operation at a
/// time ([`Lease::call`] takes `&mut self`); to run operations of one user
/// concurrently, give each concurrent task its own VU id, and so its own
/// lease and session. (`pool` and `per_request` mode hand a VU as many
/// leases as it asks for, each on its own session.)
///
/// ```
/// use std::sync::Arc;
/// use mcp_session::{ErrorKind, Manager, SessionConfig, TokioClock};
/// use mcp_session::transport::{scripted::ScriptedConnector, Operation};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_session::SessionError> {
/// let server = ScriptedConnector::new(Arc::new(TokioClock::new()));
/// let manager = Manager::start(SessionConfig::default(), server)?; // reuse mode
///
/// let lease = manager.acquire(1).await?;
/// let again = manager.acquire(1).await.unwrap_err();    // Go: the same session
/// assert!(again.is_vu_busy());
/// assert_eq!(again.kind, ErrorKind::VuBusy);
/// lease.release();
///
/// // Concurrent work for one user: one VU id per concurrent task.
/// let work = |vu: u64| {
///     let manager = &manager;
///     async move {
///         let mut lease = manager.acquire(vu).await?;
///         let result = lease.call(&Operation::Ping).await;
///         lease.release();
///         result.map(|_| ())
///     }
/// };
/// let (a, b) = tokio::join!(work(1), work(2));
/// a?;
/// b?;
/// assert_eq!(manager.metrics().total_created, 2); // a session per VU
/// manager.close().await;
/// # Ok(()) }
/// ```
///
/// # Dropping a lease
///
/// `let _ = manager.acquire(1).await;` drops the lease on the spot, and
/// with it the session: it is closed (reason `dropped`), not kept for the
/// VU. Keep the lease in a named binding for as long as the work lasts, and
/// end it with [`Lease::release`] or [`Lease::invalidate`]. `Lease` is
/// `#[must_use]`, so a lease left unused as a statement's value is a
/// warning; `let _ =` silences any `#[must_use]`, so it cannot be caught.
#[must_use = "dropping a Lease closes its session at once (reason `dropped`); \
              keep it, run `call`, then `release` or `invalidate` it"]
pub struct Lease<C: Connector> {
    inner: Arc<Inner<C>>,
    vu: VuId,
    /// `None` only after the lease was given back (then it is gone too).
    entry: Option<Entry<SessionRef<C::Connection>>>,
    /// What [`Lease::last_request_id`] returns.
    last_request: Option<u64>,
}

impl<C: Connector> Lease<C> {
    pub(crate) fn new(
        inner: Arc<Inner<C>>,
        vu: VuId,
        entry: Entry<SessionRef<C::Connection>>,
    ) -> Self {
        Lease {
            inner,
            vu,
            entry: Some(entry),
            last_request: None,
        }
    }

    fn entry(&self) -> &Entry<SessionRef<C::Connection>> {
        self.entry
            .as_ref()
            .expect("a lease holds its entry until it is consumed")
    }

    /// The session id (the server's `Mcp-Session-Id`, or `local-N`).
    pub fn id(&self) -> &str {
        &self.entry().item.id
    }

    /// The VU holding the lease.
    pub fn vu(&self) -> VuId {
        self.vu
    }

    /// A snapshot of the session.
    pub fn info(&self) -> SessionInfo {
        let e = self.entry();
        let mut info = e.item.info(e, self.vu, &self.inner.deadlines);
        // A stateless-era context moves to another revision after -32022.
        if let Some(now) = e.item.conn.modern_version() {
            info.protocol_version = now;
        }
        info
    }

    /// Runs `op` on the session and returns its JSON-RPC result, kept as
    /// raw JSON and read lazily ([`CallResult`]).
    ///
    /// Fails with [`ErrorKind::SessionClosed`] (and sends nothing) if the
    /// manager has closed the session, with [`ErrorKind::SessionExpired`]
    /// when the server no longer knows it and [`ErrorKind::EraChanged`]
    /// when a stateless-era server now answers as a legacy one (invalidate
    /// the lease then: [`SessionError::should_invalidate`]), and with
    /// [`ErrorKind::Operation`] for any other failure.
    ///
    /// In the stateless era a result may be `input_required`
    /// ([`CallResult::input_required`]): answer it with
    /// [`Lease::call_with_input`].
    pub async fn call(&mut self, op: &Operation) -> Result<CallResult, SessionError> {
        self.send(op, None).await
    }

    /// Retries `op` after an `input_required` result (MRTR): the same
    /// request, with a new JSON-RPC id, `inputResponses` and the exact
    /// `requestState` of `input` ([`crate::transport::InputRequired::respond`]).
    /// Nothing of `input` reaches any other request.
    pub async fn call_with_input(
        &mut self,
        op: &Operation,
        input: &InputResponses,
    ) -> Result<CallResult, SessionError> {
        self.send(op, Some(input)).await
    }

    /// The JSON-RPC id of the request the latest [`Lease::call`] or
    /// [`Lease::call_with_input`] sent on this session (after a -32022
    /// retry, the retry's), whether it succeeded or failed: the id a
    /// server logs for the exchange, so a test harness can match the
    /// answer it got, or the failure, with what the server did for that
    /// request. `None` before the first call and when the latest sent
    /// nothing (the session was closed, the request was refused before
    /// sending, no connection could be opened, or the transport has no
    /// JSON-RPC ids: [`Connection::last_request_id`]). Ids are counted
    /// per connection: they name a request only together with the
    /// session.
    pub fn last_request_id(&self) -> Option<u64> {
        self.last_request
    }

    async fn send(
        &mut self,
        op: &Operation,
        input: Option<&InputResponses>,
    ) -> Result<CallResult, SessionError> {
        self.last_request = None;
        let (vu, inner) = (self.vu, self.inner.clone());
        let Some(entry) = self.entry.as_mut() else {
            return Err(SessionError::new(Op::Use, ErrorKind::SessionClosed));
        };
        let cell = entry.item.clone();
        let method = op.method();
        // The check and the report are one step under the session's own
        // lock, so the start is reported before the session's close or not
        // at all — without the manager's lock.
        let started = cell.if_open(|| {
            inner.emit(
                Some(vu),
                Some(&cell.id),
                EventKind::OperationStart { method },
            )
        });
        if !started {
            return Err(SessionError::new(Op::Use, ErrorKind::SessionClosed).with_session(&cell.id));
        }
        entry.ops += 1;
        let answer = cell.conn.request(op, input).await;
        self.last_request = cell.conn.last_request_id();
        // One round trip to the manager's lock, and none for a plain result
        // nobody records: such an answer changes nothing the manager keeps.
        let answer = match inner.settle_quietly(&cell, op, answer) {
            Ok(result) => return Ok(result),
            Err(answer) => answer,
        };
        let mut st = inner.lock();
        let result = inner
            .operation_ended(&mut st, vu, &cell, op, answer)
            .map_err(|kind| SessionError::new(Op::Use, kind).with_session(&cell.id));
        inner.emit(
            Some(vu),
            Some(&cell.id),
            EventKind::OperationEnd {
                method,
                error: result.as_ref().err().map(SessionError::kind_name),
            },
        );
        drop(st);
        result
    }

    /// Gives the session back for reuse (in per-request mode: closes it).
    /// A session past its TTL, or spent by churn, is closed instead.
    pub fn release(mut self) {
        self.give_back(Return::Release);
    }

    /// Gives the session back as lost by the server (after a 404, or an
    /// era change): it is closed, and the next session made for this VU
    /// (in pool mode: for the pool) counts as a reconnect.
    pub fn invalidate(mut self) {
        self.give_back(Return::Invalidate);
    }

    fn give_back(&mut self, how: Return) {
        if let Some(entry) = self.entry.take() {
            self.inner.give_back(self.vu, entry, how);
        }
    }
}

impl<C: Connector> Drop for Lease<C> {
    fn drop(&mut self) {
        self.give_back(Return::Drop);
    }
}

impl<C: Connector> std::fmt::Debug for Lease<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("vu", &self.vu)
            .field("session", &self.entry.as_ref().map(|e| &e.item.id))
            .finish()
    }
}
