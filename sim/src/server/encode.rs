//! How an answer goes on the wire: one JSON body, or a Server-Sent Events
//! stream, cut into chunks.
//!
//! A Streamable HTTP server may answer a POSTed request either way, and a
//! client must handle both, including an SSE stream that carries
//! notifications before the response and bytes that arrive in arbitrary
//! pieces (a line, or a JSON value, cut in the middle). The choice and the
//! cut points come from the server's seeded random stream, so every shape is
//! exercised and every run of a seed produces the same bytes in the same
//! pieces.
//!
//! [`Chunked`] is the body type of every response. It hands hyper one piece
//! at a time and yields to the scheduler between pieces, so hyper flushes
//! each piece as its own write instead of coalescing the whole body: the
//! pieces become separate segments on the (simulated or real) network.
//! It can also end in an error after its pieces ([`Chunked::reset_after`]),
//! which makes hyper abort the connection mid-body: the client sees the
//! connection die halfway through an answer.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use hyper::body::{Body, Frame, SizeHint};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// The media type of an answer to a JSON-RPC request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `application/json`: the response as one JSON value.
    Json,
    /// `text/event-stream`: events, the response in the last one.
    Sse,
}

impl Format {
    /// The snake_case name (its serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Sse => "sse",
        }
    }

    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Sse => "text/event-stream",
        }
    }

    /// Draws the format of one answer: SSE with probability `sse_ratio`
    /// (clamped to 0..=1). Always takes one draw from `rng`, so the stream
    /// stays aligned whatever the ratio.
    pub fn draw(rng: &mut ChaCha8Rng, sse_ratio: f64) -> Format {
        let x: f64 = rng.random();
        if x < sse_ratio.clamp(0.0, 1.0) {
            Format::Sse
        } else {
            Format::Json
        }
    }
}

/// A JSON value's bytes.
pub fn json(msg: &Value) -> Bytes {
    // Serializing a `Value` cannot fail.
    Bytes::from(serde_json::to_vec(msg).unwrap_or_default())
}

/// One SSE event carrying `msg`, with event id `id`.
pub fn sse_event(id: u64, msg: &Value) -> String {
    sse_data_event(id, &msg.to_string())
}

/// One SSE event whose data is `data` (one line), with event id `id`.
pub fn sse_data_event(id: u64, data: &str) -> String {
    format!("id: {id}\nevent: message\ndata: {data}\n\n")
}

/// The priming event that opens a resumable SSE stream (2025-11-25): an
/// event id, the reconnection delay `retry_ms`, and empty data.
pub fn sse_priming(id: u64, retry_ms: u64) -> String {
    format!("id: {id}\nretry: {retry_ms}\ndata: \n\n")
}

/// One SSE event carrying `msg`, without an event id (the stateless era's
/// streams are not resumable).
pub fn sse_plain_event(msg: &Value) -> String {
    sse_message(None, &msg.to_string())
}

/// One SSE event whose data is `data` (one line): with event id `id` (a
/// legacy-era stream, resumable from it), or without any (`None`: the
/// stateless era has no event ids, spec §6).
pub fn sse_message(id: Option<u64>, data: &str) -> String {
    match id {
        Some(id) => sse_data_event(id, data),
        None => format!("event: message\ndata: {data}\n\n"),
    }
}

/// An SSE stream body: `before` (notifications) then `response`, one event
/// each, with consecutive ids from `first_id`.
pub fn sse(before: &[Value], response: &Value, first_id: u64) -> Bytes {
    let mut out = String::new();
    for (id, msg) in (first_id..).zip(before.iter().chain(std::iter::once(response))) {
        out.push_str(&sse_event(id, msg));
    }
    Bytes::from(out)
}

/// Cuts `len` bytes into at most `pieces` pieces at points drawn from `rng`:
/// the sorted, distinct cut offsets (each in `1..len`). Takes exactly
/// `pieces - 1` draws when there is anything to cut.
pub fn draw_cuts(rng: &mut ChaCha8Rng, len: usize, pieces: u32) -> Vec<usize> {
    if len < 2 || pieces < 2 {
        return Vec::new();
    }
    // No more cuts than the body has places to cut: a huge `pieces` (a
    // schedule file, a config) must not allocate for cuts that would all
    // collapse into the same offsets anyway.
    let pieces = usize::try_from(pieces).unwrap_or(usize::MAX).min(len);
    let mut cuts: Vec<usize> = (1..pieces).map(|_| rng.random_range(1..len)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// `body` cut at `cuts` (sorted offsets inside it).
pub fn split(body: &Bytes, cuts: &[usize]) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for &at in cuts.iter().filter(|&&at| at > 0 && at < body.len()) {
        if at > from {
            out.push(body.slice(from..at));
            from = at;
        }
    }
    if from < body.len() {
        out.push(body.slice(from..));
    }
    out
}

/// The message cut `at` its middle: never valid JSON when `msg` is an
/// object or an array (a proper prefix of one lacks its closing bracket).
pub fn malformed(msg: &Value) -> Bytes {
    malformed_bytes(json(msg))
}

/// [`malformed`] of a message already serialized (`whole`).
pub fn malformed_bytes(whole: Bytes) -> Bytes {
    let mut at = whole.len() / 2;
    while at > 0 && std::str::from_utf8(&whole[..at]).is_err() {
        at -= 1;
    }
    whole.slice(..at.max(1).min(whole.len()))
}

/// The error a [`Chunked`] body ends with when it is cut off on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("response aborted on purpose (injected connection reset)")]
pub struct Aborted;

/// A response body sent as a sequence of pieces, each flushed on its own.
#[derive(Debug, Default)]
pub struct Chunked {
    pieces: VecDeque<Bytes>,
    /// Whether the next poll yields before handing out a piece.
    yield_next: bool,
    /// The total length, when announced (`Content-Length`); `None` sends the
    /// body with chunked transfer encoding, as streams usually are.
    exact: Option<u64>,
    /// Whether the body fails with [`Aborted`] after its pieces.
    abort: bool,
    /// More pieces to come after `pieces`, as they are sent (a stream that
    /// stays open, [`Chunked::open`]); the body ends when every sender is
    /// gone.
    tail: Option<UnboundedReceiver<Bytes>>,
    /// More pieces to come after `pieces`, as a stream polled by the body
    /// itself (so inside the connection's task): [`Chunked::then`].
    later: Option<Later>,
}

/// The pieces a [`Chunked`] body sends after its first ones, as a stream
/// polled by the body itself.
pub struct Later(BoxStream<'static, Bytes>);

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Later(..)")
    }
}

impl Chunked {
    /// An empty body.
    pub fn empty() -> Self {
        Chunked {
            exact: Some(0),
            ..Chunked::default()
        }
    }

    /// A body of `pieces`, with a `Content-Length` if `announce_length`.
    pub fn new(pieces: Vec<Bytes>, announce_length: bool) -> Self {
        let total: usize = pieces.iter().map(Bytes::len).sum();
        Chunked {
            pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect(),
            yield_next: false,
            exact: announce_length.then_some(total as u64),
            abort: false,
            tail: None,
            later: None,
        }
    }

    /// A stream that sends `first`, then whatever arrives on `tail`, and
    /// ends when `tail`'s senders are all dropped (or the client goes
    /// away, which drops the body).
    pub fn open(first: Vec<Bytes>, tail: UnboundedReceiver<Bytes>) -> Self {
        Chunked {
            tail: Some(tail),
            ..Chunked::new(first, false)
        }
    }

    /// A stream that sends `first`, then each piece `rest` yields, and
    /// ends with `rest`. `rest` is polled by the body, so whatever it waits
    /// for is waited for inside the connection's task (no task of its own);
    /// if the client goes away, the body and `rest` are dropped.
    pub fn then(first: Vec<Bytes>, rest: BoxStream<'static, Bytes>) -> Self {
        Chunked {
            later: Some(Later(rest)),
            ..Chunked::new(first, false)
        }
    }

    /// A body of one piece, with a `Content-Length`.
    pub fn whole(body: Bytes) -> Self {
        Chunked::new(vec![body], true)
    }

    /// A body that sends `pieces` and then fails, so hyper aborts the
    /// connection: an answer cut off by a reset. `announced` is the
    /// `Content-Length` to promise (the whole answer's, which the pieces
    /// fall short of), or `None` for chunked transfer encoding.
    pub fn reset_after(pieces: Vec<Bytes>, announced: Option<u64>) -> Self {
        Chunked {
            pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect(),
            yield_next: false,
            exact: announced,
            abort: true,
            tail: None,
            later: None,
        }
    }
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        if self.pieces.is_empty() && !self.abort {
            if let Some(later) = self.later.as_mut() {
                return match later.0.poll_next_unpin(cx) {
                    Poll::Ready(Some(piece)) => Poll::Ready(Some(Ok(Frame::data(piece)))),
                    Poll::Ready(None) => {
                        self.later = None;
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                };
            }
            let Some(tail) = self.tail.as_mut() else {
                return Poll::Ready(None);
            };
            return match tail.poll_recv(cx) {
                Poll::Ready(Some(piece)) => Poll::Ready(Some(Ok(Frame::data(piece)))),
                Poll::Ready(None) => {
                    self.tail = None;
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            };
        }
        if self.yield_next {
            // Pending makes hyper write out what it has before asking for
            // more; waking at once means no time passes.
            self.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let Some(piece) = self.pieces.pop_front() else {
            // Everything before the cut went out (the yield above flushed
            // it); now the connection dies.
            self.abort = false;
            return Poll::Ready(Some(Err(Aborted)));
        };
        self.yield_next = !self.pieces.is_empty() || self.abort;
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty() && !self.abort && self.tail.is_none() && self.later.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn a_huge_piece_count_makes_no_more_cuts_than_the_body_has_places() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cuts = draw_cuts(&mut rng, 40, u32::MAX);
        assert!(!cuts.is_empty() && cuts.len() < 40, "{cuts:?}");
        assert!(cuts.iter().all(|&c| (1..40).contains(&c)), "{cuts:?}");
    }

    #[test]
    fn sse_events_carry_ids_and_end_with_the_response() {
        let n = json!({"jsonrpc":"2.0","method":"notifications/message"});
        let r = json!({"jsonrpc":"2.0","id":1,"result":{}});
        let body = sse(std::slice::from_ref(&n), &r, 7);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            format!("id: 7\nevent: message\ndata: {n}\n\nid: 8\nevent: message\ndata: {r}\n\n")
        );
    }

    #[test]
    fn stateless_events_have_no_id() {
        let r = json!({"jsonrpc":"2.0","id":1,"result":{}});
        assert_eq!(
            sse_plain_event(&r),
            format!("event: message\ndata: {r}\n\n")
        );
        assert_eq!(sse_message(None, "x"), "event: message\ndata: x\n\n");
        assert_eq!(sse_message(Some(4), "x"), sse_data_event(4, "x"));
    }

    #[test]
    fn cuts_reassemble_to_the_body() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let body = Bytes::from_static(b"0123456789abcdef");
        for pieces in 0..20 {
            let cuts = draw_cuts(&mut rng, body.len(), pieces);
            assert!(cuts.len() < pieces.max(1) as usize);
            let parts = split(&body, &cuts);
            assert_eq!(parts.len(), cuts.len() + 1);
            assert_eq!(parts.concat(), body.to_vec());
            assert!(parts.iter().all(|p| !p.is_empty()));
        }
        assert_eq!(split(&Bytes::new(), &[]), Vec::<Bytes>::new());
    }

    #[test]
    fn malformed_is_never_json() {
        for msg in [
            json!({"jsonrpc":"2.0","id":1,"result":{}}),
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"héllo wörld"}]}}),
            json!({}),
        ] {
            let bad = malformed(&msg);
            assert!(!bad.is_empty());
            assert!(serde_json::from_slice::<Value>(&bad).is_err(), "{bad:?}");
            assert!(std::str::from_utf8(&bad).is_ok());
        }
    }

    #[test]
    fn a_reset_body_sends_its_pieces_then_fails() {
        let mut body = Chunked::reset_after(
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")],
            Some(10),
        );
        assert_eq!(body.size_hint().exact(), Some(10));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut got = Vec::new();
        loop {
            assert!(!body.is_end_stream());
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Pending => continue,
                Poll::Ready(Some(Ok(f))) => got.push(f.into_data().unwrap()),
                Poll::Ready(Some(Err(Aborted))) => break,
                Poll::Ready(None) => panic!("ended without the error"),
            }
        }
        assert_eq!(got.concat(), b"abcd");
        assert!(body.is_end_stream());
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn the_same_seed_draws_the_same_shapes() {
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..32)
                .map(|_| (Format::draw(&mut rng, 0.5), draw_cuts(&mut rng, 100, 4)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert!((0..100).all(|_| Format::draw(&mut rng, 0.0) == Format::Json));
        assert!((0..100).all(|_| Format::draw(&mut rng, 1.0) == Format::Sse));
    }
}
