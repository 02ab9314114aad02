//! The bytes of a request, in both eras.
//!
//! Legacy (2025-11-25 and before): a JSON-RPC request whose `params` are
//! the operation's, after `initialize`; the session travels in headers.
//! Modern (2026-07-28): the same request with `params._meta` carrying the
//! protocol version, the client's capabilities and its identity, and the
//! routing headers `MCP-Protocol-Version`, `Mcp-Method` and (for
//! `tools/call`, `prompts/get`, `resources/read`) `Mcp-Name`.
//!
//! The body is written straight into one buffer — the `_meta` object is
//! serialized once per connection and copied in — rather than built as a
//! `serde_json::Value` tree per request: the request is on every
//! exchange's path, and a modern one must cost no more than a legacy one.

use base64::Engine as _;
use hyper::header::HeaderValue;
use serde::Serialize;
use serde_json::Value;

use crate::transport::{InputResponses, Operation, TransportError};

/// The `_meta` keys of the 2026-07-28 request envelope.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The client's capabilities, per request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// The client's `Implementation` (name, version).
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// The `_meta` object of every modern request: its JSON text, made once.
pub(crate) fn meta_json(
    version: &str,
    capabilities: &Value,
    client_name: &str,
    client_version: &str,
) -> String {
    #[derive(Serialize)]
    struct Info<'a> {
        name: &'a str,
        version: &'a str,
    }
    #[derive(Serialize)]
    struct Meta<'a> {
        #[serde(rename = "io.modelcontextprotocol/protocolVersion")]
        version: &'a str,
        #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
        capabilities: &'a Value,
        #[serde(rename = "io.modelcontextprotocol/clientInfo")]
        info: Info<'a>,
    }
    let meta = Meta {
        version,
        capabilities,
        info: Info {
            name: client_name,
            version: client_version,
        },
    };
    // Plain structs of strings and a Value: serializing cannot fail.
    serde_json::to_string(&meta).unwrap_or_default()
}

/// Writes a JSON-RPC message into `buf`: `{"jsonrpc":"2.0","id":…,
/// "method":…,"params":{…}}`, the params members in this order: the
/// operation's own, then the MRTR retry's, then `_meta`.
pub(crate) struct Body {
    buf: Vec<u8>,
    params_open: bool,
}

impl Body {
    /// A request with `id` for `method`, with room for `extra` bytes of
    /// params beyond the usual (the stateless era's `_meta`).
    pub fn request(id: u64, method: &str, extra: usize) -> Body {
        let mut buf = Vec::with_capacity(256 + extra);
        buf.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        buf.extend_from_slice(itoa(id).as_bytes());
        buf.extend_from_slice(br#","method":"#);
        push_json(&mut buf, method);
        Body {
            buf,
            params_open: false,
        }
    }

    /// A notification (no id) for `method`.
    pub fn notification(method: &str) -> Body {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(br#"{"jsonrpc":"2.0","method":"#);
        push_json(&mut buf, method);
        Body {
            buf,
            params_open: false,
        }
    }

    /// Opens `params` (an empty object if nothing follows).
    pub fn params(&mut self) -> &mut Self {
        if !self.params_open {
            self.buf.extend_from_slice(br#","params":{"#);
            self.params_open = true;
        }
        self
    }

    fn key(&mut self, key: &str) {
        self.params();
        if self.buf.last() != Some(&b'{') {
            self.buf.push(b',');
        }
        push_json(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// Adds a member to `params`.
    pub fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        self.key(key);
        push_json(&mut self.buf, value);
        self
    }

    /// Adds a member whose value is JSON text already.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(json.as_bytes());
        self
    }

    /// The operation's params (legacy shapes: list requests always have a
    /// params object, `ping` none).
    pub fn operation(&mut self, op: &Operation) -> &mut Self {
        match op {
            Operation::Ping => {}
            Operation::Discover => {
                self.params();
            }
            Operation::ToolsList { cursor }
            | Operation::ResourcesList { cursor }
            | Operation::PromptsList { cursor } => {
                self.params();
                if let Some(c) = cursor {
                    self.field("cursor", c);
                }
            }
            Operation::ToolsCall { name, arguments }
            | Operation::PromptsGet { name, arguments } => {
                self.field("name", name).field("arguments", arguments);
            }
            Operation::ResourcesRead { uri } => {
                self.field("uri", uri);
            }
        }
        self
    }

    /// The MRTR retry's `inputResponses` and exact `requestState`.
    pub fn input(&mut self, input: &InputResponses) -> &mut Self {
        self.field("inputResponses", &input.input_responses);
        if let Some(state) = input.request_state_raw() {
            self.raw("requestState", state.get());
        }
        self
    }

    /// The bytes, closed.
    pub fn finish(mut self) -> bytes::Bytes {
        if self.params_open {
            self.buf.push(b'}');
        }
        self.buf.push(b'}');
        self.buf.into()
    }
}

fn push_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
    // Strings, numbers and Values always serialize; a failure would leave
    // the buffer as it was, and the server would answer a parse error.
    let _ = serde_json::to_writer(&mut *buf, v);
}

fn itoa(n: u64) -> String {
    n.to_string()
}

/// Whether `v` can be sent as a header value as it is: printable ASCII
/// (space allowed inside), no leading or trailing space, and not already
/// shaped like the base64 sentinel.
pub(crate) fn header_safe(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| (0x20..=0x7e).contains(c))
        && b[0] != b' '
        && b[b.len() - 1] != b' '
        && !looks_like_sentinel(v)
}

fn looks_like_sentinel(v: &str) -> bool {
    const OPEN: &str = "=?base64?";
    v.len() >= OPEN.len() + 2
        && v.as_bytes()[..OPEN.len()].eq_ignore_ascii_case(OPEN.as_bytes())
        && v.ends_with("?=")
}

/// The header value for `v`: itself when header-safe, else
/// `=?base64?<base64 of the UTF-8 bytes>?=` (also for an empty value).
pub(crate) fn header_value(v: &str) -> Result<HeaderValue, TransportError> {
    let made = if header_safe(v) {
        HeaderValue::from_str(v)
    } else {
        HeaderValue::from_str(&format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.as_bytes())
        ))
    };
    made.map_err(|_| TransportError::Protocol(format!("cannot send {v:?} as a header value")))
}

/// Decodes a header value that may be a base64 sentinel (for tests and
/// the simulated server's checks).
pub fn decode_header_value(v: &str) -> Option<String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(v.to_owned()),
    }
}

/// `Mcp-Name` for an operation: the tool or prompt name, or the resource
/// URI; `None` for methods that take no such header.
pub(crate) fn mcp_name(op: &Operation) -> Option<&str> {
    match op {
        Operation::ToolsCall { name, .. } | Operation::PromptsGet { name, .. } => Some(name),
        Operation::ResourcesRead { uri } => Some(uri),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parsed(b: Body) -> Value {
        serde_json::from_slice(&b.finish()).unwrap()
    }

    #[test]
    fn legacy_bodies_keep_their_shapes() {
        let mut b = Body::request(7, "ping", 0);
        b.operation(&Operation::Ping);
        assert_eq!(
            &b.finish()[..],
            br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#
        );
        let mut b = Body::request(1, "tools/list", 0);
        b.operation(&Operation::ToolsList { cursor: None });
        assert_eq!(
            &b.finish()[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#
        );
        let mut b = Body::request(2, "tools/call", 0);
        b.operation(&Operation::ToolsCall {
            name: "echo".into(),
            arguments: json!({"message": "a\"b"}),
        });
        assert_eq!(
            parsed(b),
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
                   "params":{"name":"echo","arguments":{"message":"a\"b"}}})
        );
        assert_eq!(
            &Body::notification("notifications/initialized").finish()[..],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        );
    }

    #[test]
    fn modern_body_carries_meta_and_mrtr() {
        let meta = meta_json("2026-07-28", &json!({}), "c", "1");
        let mut b = Body::request(3, "server/discover", 0);
        b.operation(&Operation::Discover).raw("_meta", &meta);
        assert_eq!(
            parsed(b),
            json!({"jsonrpc":"2.0","id":3,"method":"server/discover","params":{"_meta":{
                META_PROTOCOL_VERSION: "2026-07-28",
                META_CLIENT_CAPABILITIES: {},
                META_CLIENT_INFO: {"name":"c","version":"1"}}}})
        );
        let text = r#"{"resultType":"input_required","requestState":"s\u00e9"}"#;
        let r = crate::transport::CallResult::from_raw(
            serde_json::value::RawValue::from_string(text.into()).unwrap(),
        )
        .unwrap();
        let retry = r.input_required().unwrap().respond(json!({"k":1}));
        let mut b = Body::request(4, "tools/call", 0);
        b.operation(&Operation::ToolsCall {
            name: "t".into(),
            arguments: json!({}),
        })
        .input(&retry)
        .raw("_meta", &meta);
        let bytes = b.finish();
        let s = std::str::from_utf8(&bytes).unwrap();
        assert!(s.contains(r#""requestState":"s\u00e9""#), "{s}");
        let v: Value = serde_json::from_str(s).unwrap();
        assert_eq!(v["params"]["inputResponses"], json!({"k":1}));
        assert_eq!(v["params"]["_meta"][META_PROTOCOL_VERSION], "2026-07-28");
    }

    #[test]
    fn header_values_and_the_base64_sentinel() {
        assert_eq!(header_value("echo").unwrap(), "echo");
        assert_eq!(header_value("a b").unwrap(), "a b");
        for (v, want) in [
            ("héllo", "=?base64?aMOpbGxv?="),
            (" lead", "=?base64?IGxlYWQ=?="),
            ("trail ", "=?base64?dHJhaWwg?="),
            ("a\nb", "=?base64?YQpi?="),
            ("", "=?base64??="),
            ("=?base64?eA==?=", "=?base64?PT9iYXNlNjQ/ZUE9PT89?="),
        ] {
            assert_eq!(header_value(v).unwrap(), want, "{v:?}");
            assert_eq!(decode_header_value(want).as_deref(), Some(v));
        }
        assert_eq!(
            mcp_name(&Operation::ResourcesRead {
                uri: "test://x".into()
            }),
            Some("test://x")
        );
        assert_eq!(mcp_name(&Operation::ToolsList { cursor: None }), None);
    }

    proptest! {
        /// Any string becomes a legal header value that decodes back to it.
        #[test]
        fn every_name_round_trips(v in any::<String>()) {
            let h = header_value(&v).unwrap();
            let text = h.to_str().unwrap();
            prop_assert!(text.bytes().all(|c| (0x20..=0x7e).contains(&c)));
            prop_assert_eq!(decode_header_value(text), Some(v.clone()));
            prop_assert_eq!(text == v, header_safe(&v));
        }

        /// The body is valid JSON whose params hold the operation's members
        /// and the `_meta`, whatever the strings.
        #[test]
        fn bodies_are_json(id in any::<u64>(), name in any::<String>(), uri in any::<String>()) {
            let meta = meta_json("2026-07-28", &json!({}), &name, "v");
            for op in [
                Operation::ToolsCall { name: name.clone(), arguments: json!({"x": name}) },
                Operation::ResourcesRead { uri: uri.clone() },
            ] {
                let mut b = Body::request(id, op.method(), meta.len());
                b.operation(&op).raw("_meta", &meta);
                let v: Value = serde_json::from_slice(&b.finish()).unwrap();
                prop_assert_eq!(&v["id"], &json!(id));
                prop_assert_eq!(&v["params"]["_meta"][META_CLIENT_INFO]["name"], &json!(name));
            }
        }
    }
}
