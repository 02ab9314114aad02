//! Reading a Streamable HTTP response: the status, the content type, and the
//! body as one JSON message or as a Server-Sent Events stream that carries
//! the response somewhere among notifications and server requests.
//!
//! Everything here works on any `http_body::Body`, so the property tests can
//! feed it arbitrary bytes in arbitrary chunks; whatever comes in, the result
//! is a value or a typed [`TransportError`], never a panic.

use std::time::Duration;

use super::jsonrpc::{self, Incoming};
use crate::transport::{CallResult, Cause, TransportError};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body::Body;
use http_body_util::BodyExt;
use hyper::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use hyper::StatusCode;

/// What a response carried.
#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    /// The result of our request.
    Result(CallResult),
    /// A notification was accepted (202 and no body to read).
    Accepted,
    /// An SSE stream ended before our response: resumable from
    /// `last_event_id` (if the server gave ids), no sooner than `retry`.
    Ended {
        last_event_id: Option<String>,
        retry: Option<Duration>,
    },
}

/// How to read a response, and what the request carried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expect {
    /// The JSON-RPC id we wait for; `None` for a notification.
    pub id: Option<u64>,
    /// Whether the request carried an `Mcp-Session-Id` (a 404 then means
    /// the session is gone).
    pub had_session: bool,
    /// Treat the TypeScript SDK's 400 "No valid session ID" as a 404.
    pub quirk_400: bool,
    /// Body size cap in bytes.
    pub max_body: usize,
}

/// Why a body could not be read: too big, or the transport failed.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Read(Cause),
}

impl BodyError {
    fn into_transport(self) -> TransportError {
        match self {
            BodyError::TooLarge(limit) => TransportError::BodyTooLarge { limit },
            BodyError::Read(cause) => TransportError::Closed {
                message: cause.to_string(),
                source: Some(cause),
            },
        }
    }
}

/// The body's data as a stream of chunks, failing once more than `max`
/// bytes have come.
fn capped<B>(
    body: B,
    max: usize,
) -> impl futures_util::Stream<Item = Result<Bytes, BodyError>> + Send
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    futures_util::stream::unfold(
        (body, 0usize, false),
        move |(mut body, seen, done)| async move {
            if done {
                return None;
            }
            loop {
                match body.frame().await {
                    None => return None,
                    Some(Err(e)) => {
                        return Some((Err(BodyError::Read(Cause::new(e))), (body, seen, true)))
                    }
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        let seen = seen + data.len();
                        if seen > max {
                            return Some((Err(BodyError::TooLarge(max)), (body, seen, true)));
                        }
                        return Some((Ok(data), (body, seen, false)));
                    }
                }
            }
        },
    )
}

/// The whole of `body`, up to `max` bytes.
pub(crate) async fn read_all<B>(body: B, max: usize) -> Result<Vec<u8>, TransportError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut out = Vec::new();
    let mut chunks = std::pin::pin!(capped(body, max));
    while let Some(chunk) = chunks.next().await {
        out.extend_from_slice(&chunk.map_err(BodyError::into_transport)?);
    }
    Ok(out)
}

/// Reads a response to a request described by `expect`.
pub(crate) async fn read<B>(
    status: StatusCode,
    headers: &HeaderMap,
    body: B,
    expect: Expect,
) -> Result<Reply, TransportError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let body = match check_status(status, headers, body, expect).await? {
        Status::Done(reply) => return Ok(reply),
        Status::Read(body) => body,
    };
    let Some(want) = expect.id else {
        return Ok(Reply::Accepted);
    };
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match ctype.as_deref() {
        Some("application/json") => {
            let bytes = read_all(body, expect.max_body).await?;
            match jsonrpc::classify_slice(&bytes, want)? {
                Incoming::Response(r) => r.map(Reply::Result),
                Incoming::Other => Err(TransportError::Protocol(
                    "JSON body does not hold the response to the request".into(),
                )),
            }
        }
        Some("text/event-stream") => scan_sse(body, want, expect.max_body).await,
        other => Err(TransportError::ContentType {
            got: other.map(str::to_owned),
        }),
    }
}

/// After the status: nothing more to read, or a body to read.
enum Status<B> {
    Done(Reply),
    Read(B),
}

/// Maps the status to an error (reading a small body where the error needs
/// it), or says whether there is a body to read.
async fn check_status<B>(
    status: StatusCode,
    headers: &HeaderMap,
    body: B,
    expect: Expect,
) -> Result<Status<B>, TransportError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let code = status.as_u16();
    match code {
        // A notification: 202 is the rule; any other success is accepted
        // too (some servers answer 200 or 204).
        200..=299 if expect.id.is_none() => Ok(Status::Done(Reply::Accepted)),
        200 => Ok(Status::Read(body)),
        201..=299 => Err(TransportError::Http { status: code }),
        300..=399 => Err(TransportError::Redirect {
            status: code,
            location: headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }),
        404 if expect.had_session => Err(TransportError::SessionNotFound),
        400 | 404 => {
            // Small error bodies only: never read a huge body for a message.
            let bytes = read_all(body, expect.max_body.min(64 * 1024))
                .await
                .unwrap_or_default();
            if code == 400
                && expect.quirk_400
                && expect.had_session
                && jsonrpc::is_no_valid_session(&bytes)
            {
                return Err(TransportError::SessionNotFound);
            }
            // The stateless era answers its own errors with 400 (-32020,
            // -32021, -32022, -32602) and 404 (-32601): typed by code.
            Err(match (jsonrpc::error_object(&bytes), code) {
                (Some(e), 400) => e.into_error(400),
                (Some(e), _) if e.code == -32601 => e.into_error(404),
                (Some(e), _) if (-32022..=-32020).contains(&e.code) => e.into_error(404),
                (None, 400) => TransportError::BadRequest {
                    code: None,
                    message: String::new(),
                },
                _ => TransportError::Http { status: code },
            })
        }
        401 | 403 => Err(TransportError::Unauthorized { status: code }),
        500..=599 => Err(TransportError::ServerError { status: code }),
        _ => Err(TransportError::Http { status: code }),
    }
}

/// Scans an SSE stream for the response to request `want`, skipping
/// notifications, server requests and empty (priming) events.
async fn scan_sse<B>(body: B, want: u64, max: usize) -> Result<Reply, TransportError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let mut events = std::pin::pin!(sse_stream::SseStream::from_bytes_stream(capped(body, max)));
    let mut last_event_id = None;
    let mut retry = None;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| match e {
            sse_stream::Error::Body(inner) => match inner.downcast::<BodyError>() {
                Ok(b) => b.into_transport(),
                Err(other) => TransportError::Closed {
                    message: other.to_string(),
                    source: Some(Cause::from(other)),
                },
            },
            other => TransportError::MalformedSse {
                message: other.to_string(),
                source: Some(Cause::new(other)),
            },
        })?;
        if let Some(id) = event.id {
            last_event_id = (!id.is_empty()).then_some(id);
        }
        if let Some(ms) = event.retry {
            retry = Some(Duration::from_millis(ms));
        }
        let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
            continue;
        };
        if let Incoming::Response(r) = jsonrpc::classify_slice(data.as_bytes(), want)? {
            return r.map(Reply::Result);
        }
    }
    Ok(Reply::Ended {
        last_event_id,
        retry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;
    use serde_json::json;

    fn expect(id: Option<u64>) -> Expect {
        Expect {
            id,
            had_session: true,
            quirk_400: true,
            max_body: 1024,
        }
    }

    fn headers(ctype: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, ctype.parse().unwrap());
        h
    }

    fn chunked(
        parts: Vec<&'static str>,
    ) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Unpin>
    {
        StreamBody::new(futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes())))),
        ))
    }

    async fn run<B>(status: u16, ctype: &str, body: B, e: Expect) -> Result<Reply, TransportError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        read(
            StatusCode::from_u16(status).unwrap(),
            &headers(ctype),
            body,
            e,
        )
        .await
    }

    #[tokio::test]
    async fn json_and_sse_shapes() {
        let json_body = Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"result":{"a":1}}"#,
        ));
        assert_eq!(
            run(
                200,
                "application/json; charset=utf-8",
                json_body,
                expect(Some(1))
            )
            .await,
            Ok(Reply::Result(CallResult::from_value(&json!({"a":1}))))
        );
        // SSE with a priming event, a notification, CRLF line ends, split
        // across chunks mid-line.
        let sse = chunked(vec![
            "id: 0\r\ndata:\r\n\r\n",
            "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n",
            "id: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":",
            "1,\"result\":{\"ok\":true}}\r\n\r\n",
        ]);
        assert_eq!(
            run(200, "text/event-stream", sse, expect(Some(1))).await,
            Ok(Reply::Result(CallResult::from_value(&json!({"ok":true}))))
        );
        let ended = chunked(vec![
            "id: 5\nretry: 250\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n",
        ]);
        assert_eq!(
            run(200, "text/event-stream", ended, expect(Some(1))).await,
            Ok(Reply::Ended {
                last_event_id: Some("5".into()),
                retry: Some(Duration::from_millis(250))
            })
        );
    }

    // One piece on purpose: a table of status and body to typed outcome,
    // read top to bottom like the mapping it checks; split up, the rows
    // that differ by one status would sit in different functions.
    #[tokio::test]
    async fn statuses_and_bodies_map_to_typed_errors() {
        let empty = || Full::new(Bytes::new());
        assert_eq!(
            run(202, "", empty(), expect(None)).await,
            Ok(Reply::Accepted)
        );
        assert_eq!(
            run(404, "", empty(), expect(Some(1))).await,
            Err(TransportError::SessionNotFound)
        );
        let no_sess = Expect {
            had_session: false,
            ..expect(Some(1))
        };
        assert_eq!(
            run(404, "", empty(), no_sess).await,
            Err(TransportError::Http { status: 404 })
        );
        let modern_404 = || {
            Full::new(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found","data":"ping"}}"#,
            ))
        };
        assert_eq!(
            run(404, "application/json", modern_404(), no_sess).await,
            Err(TransportError::MethodNotFound {
                method: "ping".into(),
                status: 404
            })
        );
        let v32022 = Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"x","data":{"supported":["2026-07-28"],"requested":"1900-01-01"}}}"#,
        ));
        assert!(matches!(
            run(400, "application/json", v32022, no_sess).await,
            Err(TransportError::UnsupportedVersion { requested, supported, .. })
                if requested == "1900-01-01" && supported == ["2026-07-28"]
        ));
        let ts = Full::new(Bytes::from_static(br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#));
        assert_eq!(
            run(400, "application/json", ts.clone(), expect(Some(1))).await,
            Err(TransportError::SessionNotFound)
        );
        let off = Expect {
            quirk_400: false,
            ..expect(Some(1))
        };
        assert!(matches!(
            run(400, "application/json", ts, off).await,
            Err(TransportError::BadRequest { .. })
        ));
        assert_eq!(
            run(401, "", empty(), expect(Some(1))).await,
            Err(TransportError::Unauthorized { status: 401 })
        );
        assert_eq!(
            run(503, "", empty(), expect(Some(1))).await,
            Err(TransportError::ServerError { status: 503 })
        );
        assert!(matches!(
            run(307, "", empty(), expect(Some(1))).await,
            Err(TransportError::Redirect { status: 307, .. })
        ));
        assert_eq!(
            run(200, "text/html", empty(), expect(Some(1))).await,
            Err(TransportError::ContentType {
                got: Some("text/html".into())
            })
        );
        let bad = Full::new(Bytes::from_static(b"{not json"));
        assert!(matches!(
            run(200, "application/json", bad, expect(Some(1))).await,
            Err(TransportError::MalformedJson { .. })
        ));
        let big = Full::new(Bytes::from(vec![b' '; 2048]));
        assert_eq!(
            run(200, "application/json", big, expect(Some(1))).await,
            Err(TransportError::BodyTooLarge { limit: 1024 })
        );
        let big_sse = chunked(vec![
            ": padding padding padding padding padding padding\n";
            40
        ]);
        assert_eq!(
            run(200, "text/event-stream", big_sse, expect(Some(1))).await,
            Err(TransportError::BodyTooLarge { limit: 1024 })
        );
    }
}
