//! What a drill counts: operations ok, failed (by error kind) and
//! cancelled, the `input_required` rounds answered, and latency
//! histograms. Each VU keeps its own [`Stats`]
//! (no lock per operation); they are merged at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use mcp_session::transport::TransportError;
use mcp_session::{ErrorKind, SessionError};
use mcp_sim::vu::{CallFailure, INPUT_ROUNDS_EXCEEDED, MAX_INPUT_ROUNDS};

/// Latencies above this (one hour, in nanoseconds) are recorded as this.
const MAX_NANOS: u64 = 3_600_000_000_000;

/// Significant figures the histograms keep (0.1 % resolution).
const SIGFIG: u8 = 3;

/// A latency histogram in nanoseconds, growing as values need.
#[derive(Debug, Clone)]
pub(crate) struct Latency {
    hist: Histogram<u64>,
}

/// Percentiles of a [`Latency`], in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// How many values were recorded.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Result<Self, String> {
        Histogram::new(SIGFIG)
            .map(|hist| Latency { hist })
            .map_err(|e| format!("cannot make a latency histogram: {e:?}"))
    }

    /// Records `d` (at most an hour).
    pub fn record(&mut self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos())
            .unwrap_or(u64::MAX)
            .min(MAX_NANOS);
        // The histogram resizes itself up to MAX_NANOS, so this cannot
        // fail; were it to, one sample would be lost, nothing worse.
        let _ = self.hist.record(nanos);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Both resize as needed: adding cannot fail (see `record`).
        let _ = self.hist.add(&other.hist);
    }

    /// How many values were recorded.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// Percentiles in milliseconds, `None` when nothing was recorded.
    pub fn summary(&self) -> Option<Summary> {
        if self.hist.is_empty() {
            return None;
        }
        let ms = |nanos: u64| nanos as f64 / 1_000_000.0;
        Some(Summary {
            count: self.hist.len(),
            mean: self.hist.mean() / 1_000_000.0,
            p50: ms(self.hist.value_at_quantile(0.50)),
            p95: ms(self.hist.value_at_quantile(0.95)),
            p99: ms(self.hist.value_at_quantile(0.99)),
            max: ms(self.hist.max()),
        })
    }
}

/// How often one kind of error happened, and what one of them said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorCount {
    /// How many operations failed with it.
    pub count: u64,
    /// The message of the first one.
    pub example: String,
}

/// One VU's counts (or, merged, the whole drill's).
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// Operations that succeeded: their final result was complete.
    pub ok: u64,
    /// Operations that failed (at acquire or at the call).
    pub failed: u64,
    /// Operations cancelled at the end of the grace period.
    pub cancelled: u64,
    /// `input_required` (MRTR) rounds answered: the retries sent, by
    /// operations that ended ok or failed.
    pub input_rounds: u64,
    /// Failures by [`error_kind`].
    pub errors: BTreeMap<String, ErrorCount>,
    /// Acquire + operation, of the successful ones.
    pub total: Latency,
    /// Acquire alone, of the successful operations.
    pub acquire: Latency,
    /// The operation alone (acquire excluded), of the successful ones.
    pub call: Latency,
}

impl Stats {
    /// Nothing counted yet.
    pub fn new() -> Result<Self, String> {
        Ok(Stats {
            ok: 0,
            failed: 0,
            cancelled: 0,
            input_rounds: 0,
            errors: BTreeMap::new(),
            total: Latency::new()?,
            acquire: Latency::new()?,
            call: Latency::new()?,
        })
    }

    /// A successful operation: its acquire and call times.
    pub fn succeeded(&mut self, acquire: Duration, call: Duration) {
        self.ok += 1;
        self.acquire.record(acquire);
        self.call.record(call);
        self.total.record(acquire + call);
    }

    /// A failed operation.
    pub fn failed(&mut self, e: &SessionError) {
        self.failure(error_kind(e), || e.to_string());
    }

    /// A failed call: the library's error, or a result still
    /// `input_required` after the last round answered (kind
    /// `input_rounds_exceeded`).
    pub fn failed_call(&mut self, f: &CallFailure) {
        match f {
            CallFailure::Session(e) => self.failed(e),
            CallFailure::InputRoundsExceeded => {
                self.failure(INPUT_ROUNDS_EXCEEDED.to_owned(), || {
                    format!(
                        "still input_required after {MAX_INPUT_ROUNDS} rounds of input (MRTR), \
                         the most the drill answers"
                    )
                });
            }
        }
    }

    /// One more failure of `kind`; `example` is kept if it is the first.
    fn failure(&mut self, kind: String, example: impl FnOnce() -> String) {
        self.failed += 1;
        self.errors
            .entry(kind)
            .and_modify(|c| c.count += 1)
            .or_insert_with(|| ErrorCount {
                count: 1,
                example: example(),
            });
    }

    /// An operation still in flight at the end, cancelled after it had
    /// waited `waited`, longer than the request timeout: a failure (kind
    /// `stuck`), not a cancellation — the server never answered it in time.
    pub fn stuck(&mut self, waited: Duration) {
        self.failure("stuck".to_owned(), || {
            format!(
                "no answer after {} ms (past the request timeout), cancelled at the end",
                waited.as_millis()
            )
        });
    }

    /// Adds `other`'s counts to these (the example of a kind stays the
    /// first one seen).
    pub fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.input_rounds += other.input_rounds;
        for (kind, c) in other.errors {
            self.errors
                .entry(kind)
                .and_modify(|mine| mine.count += c.count)
                .or_insert(c);
        }
        self.total.merge(&other.total);
        self.acquire.merge(&other.acquire);
        self.call.merge(&other.call);
    }
}

/// The kind a failure is counted under: the session error's kind name,
/// and for transport failures also the transport's (`pool_timeout`,
/// `session_expired`, `operation:server_error`, `connect:timeout`,
/// `discover:not_modern`, `era_changed:bad_request`, ...).
pub(crate) fn error_kind(e: &SessionError) -> String {
    match &e.kind {
        ErrorKind::Connect(t)
        | ErrorKind::Initialize(t)
        | ErrorKind::InitializedNotification(t)
        | ErrorKind::Operation(t)
        | ErrorKind::Discover(t)
        | ErrorKind::EraChanged(t) => format!("{}:{}", e.kind_name(), transport_kind(t)),
        _ => e.kind_name().to_owned(),
    }
}

/// A short name for a transport failure.
pub(crate) fn transport_kind(t: &TransportError) -> &'static str {
    match t {
        TransportError::Connect { .. } => "connect",
        TransportError::Timeout { .. } => "timeout",
        TransportError::SessionNotFound => "session_not_found",
        TransportError::BadRequest { .. } => "bad_request",
        TransportError::HeaderMismatch { .. } => "header_mismatch",
        TransportError::MissingCapability { .. } => "missing_capability",
        TransportError::UnsupportedVersion { .. } => "unsupported_version",
        TransportError::MethodNotFound { .. } => "method_not_found",
        TransportError::NotModern { .. } => "not_modern",
        TransportError::EraChanged { .. } => "era_changed",
        TransportError::StreamLost => "stream_lost",
        TransportError::NotInModernEra { .. } => "not_in_modern_era",
        TransportError::Unauthorized { .. } => "unauthorized",
        TransportError::ServerError { .. } => "server_error",
        TransportError::Http { .. } => "http_status",
        TransportError::Redirect { .. } => "redirect",
        TransportError::JsonRpc { .. } => "jsonrpc_error",
        TransportError::ToolError { .. } => "tool_error",
        TransportError::Closed { .. } => "closed",
        TransportError::ContentType { .. } => "content_type",
        TransportError::BodyTooLarge { .. } => "body_too_large",
        TransportError::MalformedJson { .. } => "malformed_json",
        TransportError::MalformedSse { .. } => "malformed_sse",
        TransportError::InvalidSessionId { .. } => "invalid_session_id",
        TransportError::InvalidUrl(_) => "invalid_url",
        TransportError::Protocol(_) => "protocol",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_session::Op;

    #[test]
    fn an_operation_stuck_past_its_timeout_is_a_failure_not_a_cancellation() {
        let mut s = Stats::new().unwrap();
        s.stuck(Duration::from_millis(31_500));
        s.stuck(Duration::from_millis(40_000));
        assert_eq!((s.ok, s.failed, s.cancelled), (0, 2, 0));
        let stuck = &s.errors["stuck"];
        assert_eq!(stuck.count, 2);
        assert!(stuck.example.contains("31500 ms"), "{}", stuck.example);
    }

    #[test]
    fn latencies_give_percentiles_in_milliseconds() {
        let mut l = Latency::new().expect("histogram");
        assert_eq!(l.summary(), None);
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary().expect("values");
        assert_eq!(s.count, 100);
        assert!((s.p50 - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99 - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max - 100.0).abs() < 0.1, "{s:?}");
        // Huge values are capped, not lost.
        l.record(Duration::from_secs(10 * 3600));
        assert_eq!(l.count(), 101);
    }

    #[test]
    fn failures_are_counted_by_kind_with_the_first_example() {
        let mut a = Stats::new().expect("stats");
        let e503 = SessionError::new(
            Op::Use,
            ErrorKind::Operation(TransportError::ServerError { status: 503 }),
        )
        .with_session("s1");
        a.failed(&e503);
        a.failed(&SessionError::new(
            Op::Acquire,
            ErrorKind::PoolTimeout {
                waited: Duration::from_millis(5),
            },
        ));
        let mut b = Stats::new().expect("stats");
        b.failed(&e503.clone().with_session("s2"));
        b.succeeded(Duration::from_micros(10), Duration::from_micros(90));
        b.failed_call(&CallFailure::InputRoundsExceeded);
        (a.input_rounds, b.input_rounds) = (2, 4);
        a.merge(b);
        assert_eq!((a.ok, a.failed, a.input_rounds), (1, 4, 6));
        let kinds: Vec<_> = a.errors.keys().cloned().collect();
        assert_eq!(
            kinds,
            [
                "input_rounds_exceeded",
                "operation:server_error",
                "pool_timeout"
            ]
        );
        let c = &a.errors["operation:server_error"];
        assert_eq!(c.count, 2);
        assert!(c.example.contains("session s1"), "{}", c.example);
        assert_eq!(a.total.count(), 1);
    }

    #[test]
    fn era_failures_have_their_own_names() {
        let kind = |k| error_kind(&SessionError::new(Op::Use, k));
        assert_eq!(
            kind(ErrorKind::Discover(TransportError::NotModern {
                version: "2026-07-28".into(),
                answer: "HTTP 400".into(),
            })),
            "discover:not_modern"
        );
        assert_eq!(
            kind(ErrorKind::EraChanged(TransportError::BadRequest {
                code: Some(-32000),
                message: "Server not initialized".into(),
            })),
            "era_changed:bad_request"
        );
        assert_eq!(
            kind(ErrorKind::Operation(TransportError::NotInModernEra {
                method: "ping"
            })),
            "operation:not_in_modern_era"
        );
        let named = [
            TransportError::HeaderMismatch {
                status: 400,
                message: String::new(),
            },
            TransportError::MissingCapability {
                required: serde_json::json!({"sampling": {}}),
                message: String::new(),
            },
            TransportError::UnsupportedVersion {
                requested: "2026-07-28".into(),
                supported: vec![],
                offered: vec![],
            },
            TransportError::MethodNotFound {
                method: "ping".into(),
                status: 404,
            },
            TransportError::EraChanged {
                answer: String::new(),
            },
            TransportError::StreamLost,
        ];
        for t in &named {
            assert_ne!(transport_kind(t), "other", "{t:?}");
        }
    }
}
