//! What an operation answered: the JSON-RPC `result`, kept as the raw JSON
//! text the server sent and read only when asked.
//!
//! A load tester rarely looks inside a result, so [`CallResult`] does not
//! build a `serde_json::Value` tree for every answer: it keeps the bytes
//! (validated as JSON once, while the response was read) and parses the
//! piece an accessor asks for. The 2026-07-28 additions live here too: the
//! `resultType` of every result (absent = `complete`), the
//! `input_required` outcome of a multi-round-trip request (MRTR) with its
//! `inputRequests` and opaque `requestState`, and the [`Discovery`] that
//! `server/discover` answers.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::TransportError;

/// The result of one operation, as raw JSON with typed accessors.
#[derive(Clone, Debug)]
pub struct CallResult {
    raw: Box<RawValue>,
    /// `resultType` and `isError`, read once when the result came.
    kind: ResultType,
    is_error: bool,
}

/// Equal when they hold the same JSON (the same text, or texts that parse
/// to the same value: spacing and escapes aside).
impl PartialEq for CallResult {
    fn eq(&self, other: &Self) -> bool {
        self.raw.get() == other.raw.get() || self.to_value() == other.to_value()
    }
}

impl Eq for CallResult {}

/// The raw JSON text.
impl std::fmt::Display for CallResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.raw.get())
    }
}

/// `result.resultType`: how a 2026-07-28 result is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResultType {
    /// The request is done; also what an absent `resultType` (any legacy
    /// server) means.
    Complete,
    /// The server needs input from the client first (MRTR): see
    /// [`CallResult::input_required`].
    InputRequired,
}

/// The members of a result the client itself looks at, read without
/// building the rest.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "resultType", default, borrow)]
    result_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
}

impl CallResult {
    /// A result from its raw JSON text. Checks the `resultType` (an
    /// unknown value is invalid, as the spec requires) so that every
    /// `CallResult` a caller sees has a known one.
    pub(crate) fn from_raw(raw: Box<RawValue>) -> Result<CallResult, TransportError> {
        let (kind, is_error) = head(raw.get())?;
        Ok(CallResult {
            raw,
            kind,
            is_error,
        })
    }

    /// A result from a JSON value (for test doubles). An unknown
    /// `resultType` reads as complete here.
    pub fn from_value(v: &Value) -> CallResult {
        // A Value always serializes to valid JSON.
        let raw = serde_json::value::to_raw_value(v).unwrap_or_else(|_| empty_object());
        let (kind, is_error) = head(raw.get()).unwrap_or((ResultType::Complete, false));
        CallResult {
            raw,
            kind,
            is_error,
        }
    }

    /// The JSON text if the result is an object.
    fn object(&self) -> Option<&str> {
        object(self.raw.get())
    }

    /// The result's JSON text, exactly as the server sent it.
    pub fn raw(&self) -> &str {
        self.raw.get()
    }

    /// The whole result parsed into a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.raw.get()).unwrap_or(Value::Null)
    }

    /// `resultType`; absent means [`ResultType::Complete`].
    pub fn result_type(&self) -> ResultType {
        self.kind
    }

    /// `isError` of a `tools/call` result (absent: `false`).
    pub fn is_error(&self) -> bool {
        self.is_error
    }

    /// One top-level member of the result, parsed.
    pub fn member(&self, name: &str) -> Option<Value> {
        #[derive(Deserialize)]
        struct Members<'a>(
            #[serde(borrow)] std::collections::BTreeMap<std::borrow::Cow<'a, str>, &'a RawValue>,
        );
        let m: Members<'_> = serde_json::from_str(self.object()?).ok()?;
        let raw = m.0.get(name)?;
        serde_json::from_str(raw.get()).ok()
    }

    /// `content` of a `tools/call` or `prompts/get` result.
    pub fn content(&self) -> Option<Vec<Value>> {
        match self.member("content")? {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The texts of the `content` items of type `text`, joined by newlines.
    pub fn text(&self) -> String {
        self.content()
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `structuredContent` of a `tools/call` result.
    pub fn structured_content(&self) -> Option<Value> {
        self.member("structuredContent")
    }

    /// The MRTR request of an `input_required` result: what the server
    /// asks for, and the state to send back. `None` for a complete result.
    pub fn input_required(&self) -> Option<InputRequired> {
        if self.result_type() != ResultType::InputRequired {
            return None;
        }
        #[derive(Deserialize)]
        struct Mrtr {
            #[serde(rename = "inputRequests", default)]
            input_requests: Option<Value>,
            #[serde(rename = "requestState", default)]
            request_state: Option<Box<RawValue>>,
        }
        let m: Mrtr = serde_json::from_str(self.object()?).ok()?;
        Some(InputRequired {
            input_requests: m
                .input_requests
                .unwrap_or_else(|| Value::Object(Default::default())),
            request_state: m.request_state,
        })
    }

    /// The result read as a `server/discover` answer (`None` when it lacks
    /// `supportedVersions`).
    pub fn discovery(&self) -> Option<Discovery> {
        serde_json::from_str(self.object()?).ok()
    }

    /// `ttlMs` of a cacheable result: absent or negative is 0 (stale at once).
    pub fn ttl_ms(&self) -> u64 {
        self.member("ttlMs").map_or(0, |v| ttl_from(&v))
    }
}

/// `text` if it is a JSON object. (serde would also read a struct from an
/// array, member by position.)
fn object(text: &str) -> Option<&str> {
    text.trim_start().starts_with('{').then_some(text)
}

/// `resultType` and `isError` of a result's JSON text, read without
/// building the rest; members a result lacks read as complete and not an
/// error (any legacy server's results), so do results that are not
/// objects. An unknown `resultType` is invalid, as the spec requires.
fn head(text: &str) -> Result<(ResultType, bool), TransportError> {
    if plainly_complete(text) {
        return Ok((ResultType::Complete, false));
    }
    let Some(head) = object(text).and_then(|t| serde_json::from_str::<Head<'_>>(t).ok()) else {
        return Ok((ResultType::Complete, false));
    };
    let kind = match head.result_type.as_deref() {
        None | Some("complete") => ResultType::Complete,
        Some("input_required") => ResultType::InputRequired,
        Some(other) => {
            return Err(TransportError::Protocol(format!(
                "unknown resultType {other:?} (expected complete or input_required)"
            )))
        }
    };
    Ok((kind, head.is_error == Some(true)))
}

/// Whether `text` is, without parsing it, a complete result that is not an
/// error: every `"resultType"` in it (at most one) is written
/// `"resultType":"complete"`, every `"isError"` is written
/// `"isError":false`, and no key can hide behind an escape. A quoted
/// string followed by `:` can only be an object key, so whether such a key
/// is the result's own or a nested object's, the answer is the same: the
/// top-level member is absent or says the same. Anything else is parsed.
/// This is the answer of nearly every result, in both eras, read at the
/// cost of a substring search instead of a second pass over the JSON.
fn plainly_complete(text: &str) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: a finder's setup costs more than a search of a result.
    static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\u"));
    static RESULT_TYPE: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new(b"\"resultType\""));
    static IS_ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"isError\""));
    fn all_followed_by(b: &[u8], key: &Finder<'_>, by: &[u8]) -> Option<usize> {
        let mut n = 0;
        for at in key.find_iter(b) {
            if !b[at + key.needle().len()..].starts_with(by) {
                return None;
            }
            n += 1;
        }
        Some(n)
    }
    let b = text.as_bytes();
    ESCAPE.find(b).is_none()
        && all_followed_by(b, &RESULT_TYPE, b":\"complete\"").is_some_and(|n| n <= 1)
        && all_followed_by(b, &IS_ERROR, b":false").is_some()
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is JSON"))
}

fn ttl_from(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f > 0.0).map(|f| f as u64))
        .unwrap_or(0)
}

/// What an `input_required` result asks of the client (SEP-2322, MRTR).
#[derive(Clone, Debug)]
pub struct InputRequired {
    /// `inputRequests`: key → `{method, params}` of an elicitation,
    /// sampling or roots request (an empty object when absent).
    pub input_requests: Value,
    /// `requestState`, byte for byte as the server sent it (`None` when it
    /// sent none). Opaque: never parsed, never changed.
    request_state: Option<Box<RawValue>>,
}

impl PartialEq for InputRequired {
    fn eq(&self, other: &Self) -> bool {
        self.input_requests == other.input_requests
            && self.request_state.as_ref().map(|r| r.get())
                == other.request_state.as_ref().map(|r| r.get())
    }
}

impl InputRequired {
    /// The keys of `inputRequests`, in the server's order of keys (sorted).
    pub fn keys(&self) -> Vec<String> {
        match &self.input_requests {
            Value::Object(m) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// `requestState` as the server sent it (its JSON text), if any.
    pub fn request_state(&self) -> Option<&str> {
        self.request_state.as_ref().map(|r| r.get())
    }

    /// The retry of the original request that answers these input
    /// requests: `input_responses` (key → result) and the exact
    /// `requestState`. Send it with [`crate::Lease::call_with_input`]; it
    /// gets a new JSON-RPC id like every request.
    pub fn respond(&self, input_responses: Value) -> InputResponses {
        InputResponses {
            input_responses,
            request_state: self.request_state.clone(),
        }
    }
}

/// The MRTR part of a retried request: `inputResponses` and the
/// `requestState` copied from the `input_required` result.
#[derive(Clone, Debug)]
pub struct InputResponses {
    /// `inputResponses`: key → the client's answer to that input request.
    pub input_responses: Value,
    request_state: Option<Box<RawValue>>,
}

impl InputResponses {
    /// `requestState` to send back (its JSON text), if the server gave one.
    pub fn request_state(&self) -> Option<&str> {
        self.request_state.as_ref().map(|r| r.get())
    }

    pub(crate) fn request_state_raw(&self) -> Option<&RawValue> {
        self.request_state.as_deref()
    }
}

/// A `server/discover` result: what the 2026-07-28 era has instead of the
/// `initialize` answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Discovery {
    /// `supportedVersions`: the revisions the server speaks.
    #[serde(rename = "supportedVersions")]
    pub supported_versions: Vec<String>,
    /// `capabilities` (a `ServerCapabilities` object).
    #[serde(default)]
    pub capabilities: Value,
    /// `instructions`, if any.
    #[serde(default)]
    pub instructions: Option<String>,
    /// `ttlMs`: how long the result stays fresh; absent or negative = 0.
    #[serde(rename = "ttlMs", default, deserialize_with = "lenient_ttl")]
    pub ttl_ms: u64,
    /// `cacheScope`: `public` or `private`, if given.
    #[serde(rename = "cacheScope", default)]
    pub cache_scope: Option<String>,
}

fn lenient_ttl<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(ttl_from(&Value::deserialize(d)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(v: Value) -> CallResult {
        CallResult::from_raw(serde_json::value::to_raw_value(&v).unwrap()).unwrap()
    }

    #[test]
    fn absent_result_type_is_complete_and_unknown_is_invalid() {
        assert_eq!(
            result(json!({"tools":[]})).result_type(),
            ResultType::Complete
        );
        assert_eq!(
            result(json!({"resultType":"complete"})).result_type(),
            ResultType::Complete
        );
        assert_eq!(result(json!(null)).result_type(), ResultType::Complete);
        // An array is not read member by position.
        assert_eq!(
            result(json!(["later", true])).result_type(),
            ResultType::Complete
        );
        assert!(!result(json!(["later", true])).is_error());
        assert!(result(json!([["2026-07-28"]])).discovery().is_none());
        let raw = serde_json::value::to_raw_value(&json!({"resultType":"later"})).unwrap();
        assert!(matches!(
            CallResult::from_raw(raw),
            Err(TransportError::Protocol(m)) if m.contains("later")
        ));
    }

    #[test]
    fn the_plain_case_is_read_without_parsing_and_the_rest_is_parsed() {
        for (text, complete, error) in [
            (
                r#"{"content":[],"isError":false,"resultType":"complete"}"#,
                true,
                false,
            ),
            (r#"{"tools":[]}"#, true, false),
            (r#"{"isError": true}"#, true, true),
            (r#"{"isError":true}"#, true, true),
            (r#"{"resultType" : "input_required"}"#, false, false),
            (
                r#"{"resultType":"complete","x":{"resultType":"complete"}}"#,
                true,
                false,
            ),
            (
                r#"{"structuredContent":{"isError":false},"isError":true}"#,
                true,
                true,
            ),
        ] {
            let r = CallResult::from_raw(RawValue::from_string(text.into()).unwrap()).unwrap();
            assert_eq!(r.result_type() == ResultType::Complete, complete, "{text}");
            assert_eq!(r.is_error(), error, "{text}");
        }
        // Escapes are parsed, so an unknown resultType is never missed.
        let escaped = r#"{"result\u0054ype":"later"}"#;
        assert!(CallResult::from_raw(RawValue::from_string(escaped.into()).unwrap()).is_err());
        assert!(plainly_complete(r#"{"isError":false}"#));
        assert!(!plainly_complete(r#"{"isError" :false}"#));
    }

    #[test]
    fn accessors_read_lazily() {
        let r = result(json!({
            "content":[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}],
            "isError": true, "structuredContent": {"n": 1}
        }));
        assert!(r.is_error());
        assert_eq!(r.text(), "a\nb");
        assert_eq!(r.structured_content(), Some(json!({"n":1})));
        assert_eq!(r.content().map(|c| c.len()), Some(3));
        assert!(r.input_required().is_none());
        assert_eq!(r.to_value()["structuredContent"]["n"], 1);
    }

    #[test]
    fn input_required_keeps_the_exact_state() {
        let text = r#"{"resultType":"input_required","inputRequests":{"k":{"method":"elicitation/create"}},"requestState":"a\u0041\"b"}"#;
        let r = CallResult::from_raw(RawValue::from_string(text.into()).unwrap()).unwrap();
        let ir = r.input_required().unwrap();
        assert_eq!(ir.keys(), ["k"]);
        assert_eq!(ir.request_state(), Some(r#""a\u0041\"b""#));
        let resp = ir.respond(json!({"k": {"action":"accept"}}));
        assert_eq!(resp.request_state(), Some(r#""a\u0041\"b""#));
        let none = result(json!({"resultType":"input_required","inputRequests":{}}));
        assert_eq!(none.input_required().unwrap().request_state(), None);
    }

    #[test]
    fn discovery_and_ttl() {
        let r = result(json!({
            "supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},
            "ttlMs": 1500, "cacheScope":"private","resultType":"complete"
        }));
        let d = r.discovery().unwrap();
        assert_eq!(d.supported_versions, ["2026-07-28"]);
        assert_eq!((d.ttl_ms, r.ttl_ms()), (1500, 1500));
        for (ttl, want) in [(json!(-5), 0), (json!("x"), 0), (json!(2.0), 2)] {
            let r = result(json!({"supportedVersions":[],"ttlMs": ttl}));
            assert_eq!(r.discovery().unwrap().ttl_ms, want);
        }
        assert!(result(json!({"tools":[]})).discovery().is_none());
    }
}
