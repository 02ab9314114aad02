//! JSON-RPC 2.0 and the few MCP message shapes the client needs: requests
//! it sends, and how to read whatever comes back (a response to us, or a
//! notification / server request to skip).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::transport::{
    CallResult, Cause, InitializeParams, Initialized, Operation, TransportError,
};

/// `clientInfo` of `initialize`.
pub(crate) fn client_info(p: &InitializeParams) -> Value {
    json!({ "name": p.client_name, "version": p.client_version })
}

/// A JSON-RPC error object. `message` and `data` are read leniently: a
/// server's error is reported, not judged.
#[derive(Deserialize, Debug, Default)]
pub(crate) struct ErrorObject {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// The typed error for this JSON-RPC error, answered with HTTP
    /// `status`: the 2026-07-28 codes get their own kinds, the rest are
    /// [`TransportError::JsonRpc`] (or, for a 400, `BadRequest`).
    pub fn into_error(self, status: u16) -> TransportError {
        let data = self.data.unwrap_or(Value::Null);
        match self.code {
            -32020 => TransportError::HeaderMismatch {
                status,
                message: self.message,
            },
            -32021 => TransportError::MissingCapability {
                required: data
                    .get("requiredCapabilities")
                    .cloned()
                    .unwrap_or(Value::Null),
                message: self.message,
            },
            -32022 => TransportError::UnsupportedVersion {
                requested: data
                    .get("requested")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                supported: data
                    .get("supported")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                offered: Vec::new(),
            },
            -32601 => TransportError::MethodNotFound {
                method: match data {
                    Value::String(m) => m,
                    _ => self.message,
                },
                status,
            },
            code if status == 400 => TransportError::BadRequest {
                code: Some(code),
                message: self.message,
            },
            code => TransportError::JsonRpc {
                code,
                message: self.message,
            },
        }
    }
}

/// The error object of a JSON-RPC error body, if the body is one.
pub(crate) fn error_object(body: &[u8]) -> Option<ErrorObject> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorObject,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
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
    /// Kept as raw JSON: a load tester rarely reads results.
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// What one incoming message means for a request with id `want`.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// The response to our request: its result, or its error.
    Response(Result<CallResult, TransportError>),
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
    let msg: Message =
        serde_json::from_value(value).map_err(|e| TransportError::MalformedJson {
            message: format!("not a JSON-RPC message: {e}"),
            source: Some(Cause::new(e)),
        })?;
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
    let value: Value = serde_json::from_slice(bytes).map_err(not_json)?;
    classify(value, want)
}

/// [`TransportError::MalformedJson`] for a body the JSON parser refused.
pub(crate) fn not_json(e: serde_json::Error) -> TransportError {
    TransportError::MalformedJson {
        message: e.to_string(),
        source: Some(Cause::new(e)),
    }
}

/// What a parsed message means for request `want`.
fn incoming(msg: Message, want: u64) -> Incoming {
    if msg.method.is_some() || msg.id != Some(Value::from(want)) {
        return Incoming::Other;
    }
    Incoming::Response(match (msg.result, msg.error) {
        (_, Some(e)) => Err(e.into_error(200)),
        (Some(r), None) => CallResult::from_raw(r),
        (None, None) => Err(TransportError::malformed_json(
            "response has neither result nor error",
        )),
    })
}

/// Parses an `InitializeResult`.
pub(crate) fn initialized(
    result: &CallResult,
    session_id: Option<String>,
) -> Result<Initialized, TransportError> {
    let version = result
        .member("protocolVersion")
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| {
            TransportError::malformed_json("InitializeResult without protocolVersion")
        })?;
    Ok(Initialized {
        protocol_version: version,
        session_id,
    })
}

/// A `tools/call` result with `isError: true` is a failed call, though a
/// successful JSON-RPC exchange: turn it into an error with its text.
pub(crate) fn check_tool_result(
    op: &Operation,
    result: CallResult,
) -> Result<CallResult, TransportError> {
    if matches!(op, Operation::ToolsCall { .. }) && result.is_error() {
        return Err(TransportError::ToolError {
            message: result.text(),
        });
    }
    Ok(result)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_our_response_and_skips_the_rest() {
        let r = classify(json!({"jsonrpc":"2.0","id":3,"result":{"ok":1}}), 3).unwrap();
        assert_eq!(r, ok(json!({"ok":1})));
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
            Incoming::Response(Err(TransportError::MethodNotFound {
                method: "nope".into(),
                status: 200,
            }))
        );
        let e = classify(
            json!({"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"boom"}}),
            3,
        );
        assert_eq!(
            e.unwrap(),
            Incoming::Response(Err(TransportError::JsonRpc {
                code: -32603,
                message: "boom".into()
            }))
        );
        let batch = classify(
            json!([{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":3,"result":1}]),
            3,
        );
        assert_eq!(batch.unwrap(), ok(json!(1)));
        assert!(matches!(
            classify(json!(17), 3),
            Err(TransportError::MalformedJson { .. })
        ));
    }

    fn ok(v: Value) -> Incoming {
        Incoming::Response(Ok(CallResult::from_value(&v)))
    }

    #[test]
    fn modern_error_codes_are_typed() {
        let e = |v: Value, status| {
            serde_json::from_value::<ErrorObject>(v)
                .unwrap()
                .into_error(status)
        };
        assert_eq!(
            e(json!({"code":-32020,"message":"m"}), 400),
            TransportError::HeaderMismatch {
                status: 400,
                message: "m".into()
            }
        );
        assert_eq!(
            e(
                json!({"code":-32021,"message":"m","data":{"requiredCapabilities":{"sampling":{}}}}),
                400
            ),
            TransportError::MissingCapability {
                required: json!({"sampling":{}}),
                message: "m".into()
            }
        );
        assert_eq!(
            e(
                json!({"code":-32022,"message":"m","data":{"supported":["2026-07-28",5],"requested":"1900-01-01"}}),
                400
            ),
            TransportError::UnsupportedVersion {
                requested: "1900-01-01".into(),
                supported: vec!["2026-07-28".into()],
                offered: vec![],
            }
        );
        assert_eq!(
            e(
                json!({"code":-32601,"message":"Method not found","data":"ping"}),
                404
            ),
            TransportError::MethodNotFound {
                method: "ping".into(),
                status: 404
            }
        );
        assert_eq!(
            e(
                json!({"code":-32000,"message":"Bad Request: Server not initialized"}),
                400
            ),
            TransportError::BadRequest {
                code: Some(-32000),
                message: "Bad Request: Server not initialized".into()
            }
        );
        assert!(error_object(b"").is_none());
        assert!(error_object(br#"{"error":{"message":"no code"}}"#).is_none());
    }

    #[test]
    fn tool_errors_and_quirks() {
        let op = Operation::ToolsCall {
            name: "fail".into(),
            arguments: json!({}),
        };
        let r = check_tool_result(
            &op,
            CallResult::from_value(
                &json!({"isError":true,"content":[{"type":"text","text":"boom"}]}),
            ),
        );
        assert_eq!(
            r,
            Err(TransportError::ToolError {
                message: "boom".into()
            })
        );
        assert!(check_tool_result(&op, CallResult::from_value(&json!({"content":[]}))).is_ok());
        assert!(check_tool_result(
            &Operation::Ping,
            CallResult::from_value(&json!({"isError":true}))
        )
        .is_ok());
        let ts = br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#;
        assert!(is_no_valid_session(ts));
        assert!(!is_no_valid_session(
            b"{\"error\":{\"code\":-32600,\"message\":\"x\"}}"
        ));
        assert!(!is_no_valid_session(b"garbage"));
        assert_eq!(
            error_object(ts).map(|e| e.message).as_deref(),
            Some("Bad Request: No valid session ID provided")
        );
    }
}
