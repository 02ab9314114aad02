//! The server's wire log: what a request carried as it arrived, read
//! before the request is decided (and before any fault hook could alter
//! it), so that the audit can check the client's wire behaviour from the
//! trace alone (see [`super::events`]).
//!
//! A stateless-era request (routed there, or sent as one) is logged whole
//! ([`stateless`]); legacy-era
//! events take `from` and the `MCP-Protocol-Version` header from
//! [`header`]. Reading the body here is a second, partial parse of it
//! (only the members logged): the ladder reads it again for its own
//! purposes, which keeps this log independent of how the ladder decides.

use std::borrow::Cow;

use hyper::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::events::ServerEvent;
use super::handler::Req;
use super::State;

/// A header's values as text (invalid UTF-8 replaced), each trimmed, joined
/// with `, ` when there are several; `None` when it is absent.
pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    header_with(headers, name, |v| v.to_owned())
}

/// [`header`], each value passed through `f`.
fn header_with(headers: &HeaderMap, name: &str, f: impl Fn(&str) -> String) -> Option<String> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    let mut out = f(String::from_utf8_lossy(first.as_bytes()).trim());
    for v in all {
        out.push_str(", ");
        out.push_str(&f(String::from_utf8_lossy(v.as_bytes()).trim()));
    }
    Some(out)
}

/// The members of a request body the wire log records.
#[derive(Deserialize, Default)]
struct Body<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize, Default)]
struct Params {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    uri: Option<Value>,
    #[serde(default, rename = "requestState")]
    request_state: Option<Value>,
    #[serde(default, rename = "_meta")]
    meta: Option<Meta>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default, rename = "io.modelcontextprotocol/protocolVersion")]
    version: Option<Value>,
}

/// What a stateless-era request names for `Mcp-Name` to match: the tool,
/// the prompt or the URI, for the methods that have one.
fn named(method: Option<&str>, params: &Params) -> Option<String> {
    let v = match method? {
        "tools/call" | "prompts/get" => params.name.as_ref(),
        "resources/read" => params.uri.as_ref(),
        _ => None,
    };
    v.and_then(Value::as_str).map(str::to_owned)
}

/// The `Mcp-Name` value as the client meant it: the base64 sentinel
/// decoded (left as sent if it does not decode).
fn decoded(v: &str) -> String {
    mcp_session::transport::decode_header_value(v).unwrap_or_else(|| v.to_owned())
}

/// Logs `req`, routed to the stateless era or sent as one, as request
/// number `request`.
pub(crate) fn stateless(st: &mut State, now: u64, request: u64, req: &Req<'_>) {
    // A body that is not an object of the usual shape logs what the
    // headers say and nothing of the body (serde would read an array as
    // the struct's members in order: a batch is not read).
    let object = req
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    let body: Body<'_> = object
        .then(|| serde_json::from_slice(req.body).ok())
        .flatten()
        .unwrap_or_default();
    let params = body.params.unwrap_or_default();
    let method = body.method.map(Cow::into_owned);
    let name = named(method.as_deref(), &params);
    let meta_version = params
        .meta
        .as_ref()
        .and_then(|m| m.version.as_ref())
        .and_then(Value::as_str)
        .map(str::to_owned);
    st.record(
        now,
        ServerEvent::StatelessWire {
            request,
            from: req.from.map(str::to_owned),
            http: req.method.as_str().to_owned(),
            id: body.id,
            method,
            meta_version,
            header_version: header(req.headers, "mcp-protocol-version"),
            header_method: header(req.headers, "mcp-method"),
            header_name: header_with(req.headers, "mcp-name", decoded),
            name,
            session: header(req.headers, "mcp-session-id"),
            request_state: params.request_state,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use serde_json::json;

    #[test]
    fn headers_are_trimmed_and_joined() {
        let mut h = HeaderMap::new();
        assert_eq!(header(&h, "mcp-method"), None);
        h.append("mcp-method", HeaderValue::from_static(" tools/list "));
        assert_eq!(header(&h, "mcp-method").as_deref(), Some("tools/list"));
        h.append("mcp-method", HeaderValue::from_static("ping"));
        assert_eq!(
            header(&h, "mcp-method").as_deref(),
            Some("tools/list, ping")
        );
        h.append("mcp-name", HeaderValue::from_static("=?base64?ZWNobw==?="));
        h.append("mcp-name", HeaderValue::from_static("=?base64?!!?="));
        assert_eq!(
            header_with(&h, "mcp-name", decoded).as_deref(),
            Some("echo, =?base64?!!?=")
        );
    }

    #[test]
    fn the_body_members_logged() {
        let text = json!({"jsonrpc": "2.0", "id": 4, "method": "resources/read", "params": {
            "uri": "test://a", "name": "ignored", "requestState": "s1",
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}})
        .to_string();
        let b: Body<'_> = serde_json::from_slice(text.as_bytes()).unwrap();
        let p = b.params.unwrap();
        assert_eq!(b.id, Some(json!(4)));
        assert_eq!(named(b.method.as_deref(), &p).as_deref(), Some("test://a"));
        assert_eq!(p.request_state, Some(json!("s1")));
        assert_eq!(p.meta.and_then(|m| m.version), Some(json!("2026-07-28")));
        for junk in [&b"{"[..], b"{\"params\": 3}", b"\"x\""] {
            assert!(serde_json::from_slice::<Body<'_>>(junk).is_err());
        }
    }
}
