//! `subscriptions/listen` (MCP 2026-07-28): long-lived SSE streams that
//! carry list-changed notifications.
//!
//! A listen request opens a stream whose first event is
//! `notifications/subscriptions/acknowledged` (with `_meta` subscriptionId
//! = the request's id, and the subset of the requested filter the server
//! honours: the three list-changed kinds, not resource subscriptions).
//! The stream stays open; a mutation (the `test_trigger_*` tools) sends
//! the matching `notifications/*/list_changed` to every stream whose
//! filter asked for it, tagged with its subscriptionId. A stream ends when
//! the client goes away (the body is dropped with the connection; the
//! next announcement or keep-alive finds it closed and forgets it).
//!
//! Only a client that sends `subscriptions/listen` gets one, so a
//! simulation that never does is not held open by it.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::encode;

/// The `_meta` key of a listen stream's notifications.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The list-changed kinds: the filter key and the notification method.
pub const KINDS: [(&str, &str); 3] = [
    ("toolsListChanged", "notifications/tools/list_changed"),
    ("promptsListChanged", "notifications/prompts/list_changed"),
    (
        "resourcesListChanged",
        "notifications/resources/list_changed",
    ),
];

/// How often an open stream gets an SSE comment, so a stream whose client
/// went away is noticed even when nothing changes.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// One open stream.
#[derive(Debug)]
struct Stream {
    /// The listen request's id.
    id: Value,
    /// The filter keys honoured (of [`KINDS`]).
    kinds: Vec<&'static str>,
    tx: UnboundedSender<Bytes>,
}

/// The open listen streams of one server.
#[derive(Debug, Default)]
pub struct Listeners {
    streams: Vec<Stream>,
}

impl Listeners {
    /// Opens a stream for the listen request `id` with `params`: the
    /// acknowledgement (the stream's first bytes) and the receiver of the
    /// rest.
    pub fn open(&mut self, id: &Value, params: &Value) -> (Bytes, UnboundedReceiver<Bytes>) {
        let asked = params.get("notifications").and_then(Value::as_object);
        let kinds: Vec<&'static str> = KINDS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| asked.and_then(|a| a.get(*k)).and_then(Value::as_bool) == Some(true))
            .collect();
        let honoured: Map<String, Value> = kinds
            .iter()
            .map(|k| ((*k).to_owned(), true.into()))
            .collect();
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
            "params": {"_meta": {SUBSCRIPTION_ID: id}, "notifications": honoured}});
        let (tx, rx) = unbounded_channel();
        keep_alive(tx.clone());
        // Streams whose client went away are forgotten here too, not only
        // when something is announced: a client that opens stream after
        // stream and drops each would otherwise grow the list without
        // bound while nothing changes.
        self.streams.retain(|s| !s.tx.is_closed());
        self.streams.push(Stream {
            id: id.clone(),
            kinds,
            tx,
        });
        (Bytes::from(encode::sse_plain_event(&ack)), rx)
    }

    /// Sends the notification of `kind` (a filter key of [`KINDS`]) to
    /// every open stream that asked for it; forgets closed streams.
    /// Returns how many got it.
    pub fn announce(&mut self, kind: &str) -> usize {
        let method = KINDS.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m);
        self.streams.retain(|s| !s.tx.is_closed());
        let Some(method) = method else {
            return 0;
        };
        let mut sent = 0;
        for s in self.streams.iter().filter(|s| s.kinds.contains(&kind)) {
            let note = json!({"jsonrpc": "2.0", "method": method,
                "params": {"_meta": {SUBSCRIPTION_ID: s.id}}});
            if s.tx
                .send(Bytes::from(encode::sse_plain_event(&note)))
                .is_ok()
            {
                sent += 1;
            }
        }
        sent
    }

    /// How many streams are held, closed ones included (what memory the
    /// list takes; [`Listeners::len`] counts the open ones).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.streams.len()
    }

    /// How many streams are open (closed ones are forgotten first).
    #[cfg(test)]
    pub fn len(&mut self) -> usize {
        self.streams.retain(|s| !s.tx.is_closed());
        self.streams.len()
    }
}

/// Sends an SSE comment on `tx` every [`KEEP_ALIVE`] until the stream is
/// gone (on a tokio runtime; elsewhere, nothing).
fn keep_alive(tx: UnboundedSender<Bytes>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        loop {
            // Biased, as every select here: a closed stream ends the task
            // before another keep-alive is due.
            tokio::select! {
                biased;
                () = tx.closed() => return,
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_filter_is_honoured_and_closed_streams_forgotten() {
        let mut l = Listeners::default();
        let (ack, mut tools) = l.open(
            &json!(7),
            &json!({"notifications": {"toolsListChanged": true}}),
        );
        let ack = String::from_utf8(ack.to_vec()).unwrap();
        assert!(
            ack.contains("notifications/subscriptions/acknowledged"),
            "{ack}"
        );
        assert!(
            ack.contains(r#""io.modelcontextprotocol/subscriptionId":7"#),
            "{ack}"
        );
        let (_, prompts) = l.open(
            &json!("p"),
            &json!({"notifications": {"promptsListChanged": true}}),
        );
        assert_eq!(l.announce("toolsListChanged"), 1);
        let got = String::from_utf8(tools.recv().await.unwrap().to_vec()).unwrap();
        assert!(
            got.contains("notifications/tools/list_changed") && got.contains(":7"),
            "{got}"
        );
        drop(prompts);
        assert_eq!(l.len(), 1);
        assert_eq!(l.announce("promptsListChanged"), 0);
    }
}
