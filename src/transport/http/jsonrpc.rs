//! JSON-RPC 2.0 and the few MCP message shapes the client needs: requests
//! it sends, and how to read whatever comes back (a response to us, or a
//! notification / server request to skip).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::transport::{InitializeParams, Initialized, Operation, TransportError};

/// An outgoing request or notification (`id: None`).
#[derive(Serialize)]
pub(crate) struct Outgoing<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<Value>,
}

impl<'a> Outgoing<'a> {
    pub fn request(id: u64, method: &'a str, params: Option<Value>) -> Self {
        Outgoing {
            jsonrpc: "2.0",
            id: Some(id),
            method,
            params,
        }
    }

    pub fn notification(method: &'a str) -> Self {
        Outgoing {
            jsonrpc: "2.0",
            id: None,
            method,
            params: None,
        }
    }

    pub fn to_bytes(&self) -> bytes::Bytes {
        // Serializing these plain structs cannot fail.
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

/// `initialize` params as MCP defines them.
pub(crate) fn initialize_params(p: &InitializeParams) -> Value {
    json!({
        "protocolVersion": p.protocol_version,
        "capabilities": {},
        "clientInfo": { "name": p.client_name, "version": p.client_version },
    })
}

/// The params of an operation (`None` when it takes none).
pub(crate) fn operation_params(op: &Operation) -> Option<Value> {
    fn cursor(c: &Option<String>) -> Option<Value> {
        Some(match c {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        })
    }
    match op {
        Operation::Ping => None,
        Operation::ToolsList { cursor: c }
        | Operation::ResourcesList { cursor: c }
        | Operation::PromptsList { cursor: c } => cursor(c),
        Operation::ToolsCall { name, arguments } | Operation::PromptsGet { name, arguments } => {
            Some(json!({ "name": name, "arguments": arguments }))
        }
        Operation::ResourcesRead { uri } => Some(json!({ "uri": uri })),
    }
}

#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
    message: String,
}

/// Any JSON-RPC message, loosely: enough to tell a response from the rest.
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    /// `Some` whenever the member is present, `null` included (a valid
    /// result): a plain `Option` would read `"result": null` as absent.
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// What one incoming message means for a request with id `want`.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// The response to our request: its result, or its error.
    Response(Result<Value, TransportError>),
    /// A notification, a server request, or a response to someone else:
    /// not what we wait for.
    Other,
}

/// Reads one JSON-RPC message (or a batch) and picks out the response to
/// request `want`.
pub(crate) fn classify(value: Value, want: u64) -> Result<Incoming, TransportError> {
    if let Value::Array(batch) = value {
        for v in batch {
            if let Incoming::Response(r) = classify(v, want)? {
                return Ok(Incoming::Response(r));
            }
        }
        return Ok(Incoming::Other);
    }
    let msg: Message = serde_json::from_value(value)
        .map_err(|e| TransportError::MalformedJson(format!("not a JSON-RPC message: {e}")))?;
    Ok(incoming(msg, want))
}

/// [`classify`] of a message's bytes, as `classify(serde_json::from_slice(bytes)?, want)`
/// would give (a body that is not JSON: [`TransportError::MalformedJson`]
/// with the parser's message) but parsed once: a single JSON object goes
/// straight into [`Message`], and only a batch, a duplicated member or a
/// message of the wrong shape takes the way through [`Value`] (for the
/// same answer or error as before).
pub(crate) fn classify_slice(bytes: &[u8], want: u64) -> Result<Incoming, TransportError> {
    // Only an object: serde would also read a struct from a JSON array,
    // which here is a batch.
    let object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if object {
        if let Ok(msg) = serde_json::from_slice::<Message>(bytes) {
            return Ok(incoming(msg, want));
        }
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| TransportError::MalformedJson(e.to_string()))?;
    classify(value, want)
}

/// What a parsed message means for request `want`.
fn incoming(msg: Message, want: u64) -> Incoming {
    if msg.method.is_some() || msg.id != Some(Value::from(want)) {
        return Incoming::Other;
    }
    Incoming::Response(match (msg.result, msg.error) {
        (_, Some(e)) => Err(TransportError::JsonRpc {
            code: e.code,
            message: e.message,
        }),
        (Some(r), None) => Ok(r),
        (None, None) => Err(TransportError::MalformedJson(
            "response has neither result nor error".into(),
        )),
    })
}

/// Parses an `InitializeResult`.
pub(crate) fn initialized(
    result: &Value,
    session_id: Option<String>,
) -> Result<Initialized, TransportError> {
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            TransportError::MalformedJson("InitializeResult without protocolVersion".into())
        })?;
    Ok(Initialized {
        protocol_version: version.to_owned(),
        session_id,
    })
}

/// A `tools/call` result with `isError: true` is a failed call, though a
/// successful JSON-RPC exchange: turn it into an error with its text.
pub(crate) fn check_tool_result(op: &Operation, result: Value) -> Result<Value, TransportError> {
    let is_error = matches!(op, Operation::ToolsCall { .. })
        && result.get("isError").and_then(Value::as_bool) == Some(true);
    if !is_error {
        return Ok(result);
    }
    let text = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    Err(TransportError::ToolError { message: text })
}

/// The TypeScript SDK's answer to an unknown session: HTTP 400 with JSON-RPC
/// error -32000 "Bad Request: No valid session ID provided".
pub(crate) fn is_no_valid_session(body: &[u8]) -> bool {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let err = obj.get("error").and_then(Value::as_object);
    let code = err.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let message = err.and_then(|e| e.get("message")).and_then(Value::as_str);
    code == Some(-32000) && message.is_some_and(|m| m.contains("No valid session ID"))
}

/// The message of a JSON-RPC error body, if the body is one.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let v: Map<String, Value> = serde_json::from_slice(body).ok()?;
    v.get("error")?.get("message")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_our_response_and_skips_the_rest() {
        let r = classify(json!({"jsonrpc":"2.0","id":3,"result":{"ok":1}}), 3).unwrap();
        assert_eq!(r, Incoming::Response(Ok(json!({"ok":1}))));
        let n = classify(
            json!({"jsonrpc":"2.0","method":"notifications/progress"}),
            3,
        )
        .unwrap();
        assert_eq!(n, Incoming::Other);
        let req = classify(
            json!({"jsonrpc":"2.0","id":3,"method":"sampling/createMessage"}),
            3,
        );
        assert_eq!(
            req.unwrap(),
            Incoming::Other,
            "a server request with our id is not our response"
        );
        let other = classify(json!({"jsonrpc":"2.0","id":4,"result":{}}), 3).unwrap();
        assert_eq!(other, Incoming::Other);
        let e = classify(
            json!({"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}}),
            3,
        );
        assert_eq!(
            e.unwrap(),
            Incoming::Response(Err(TransportError::JsonRpc {
                code: -32601,
                message: "nope".into()
            }))
        );
        let batch = classify(
            json!([{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":3,"result":1}]),
            3,
        );
        assert_eq!(batch.unwrap(), Incoming::Response(Ok(json!(1))));
        assert!(matches!(
            classify(json!(17), 3),
            Err(TransportError::MalformedJson(_))
        ));
    }

    #[test]
    fn tool_errors_and_quirks() {
        let op = Operation::ToolsCall {
            name: "fail".into(),
            arguments: json!({}),
        };
        let r = check_tool_result(
            &op,
            json!({"isError":true,"content":[{"type":"text","text":"boom"}]}),
        );
        assert_eq!(
            r,
            Err(TransportError::ToolError {
                message: "boom".into()
            })
        );
        assert!(check_tool_result(&op, json!({"content":[]})).is_ok());
        assert!(check_tool_result(&Operation::Ping, json!({"isError":true})).is_ok());
        let ts = br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#;
        assert!(is_no_valid_session(ts));
        assert!(!is_no_valid_session(
            b"{\"error\":{\"code\":-32600,\"message\":\"x\"}}"
        ));
        assert!(!is_no_valid_session(b"garbage"));
        assert_eq!(
            error_message(ts).as_deref(),
            Some("Bad Request: No valid session ID provided")
        );
    }
}
