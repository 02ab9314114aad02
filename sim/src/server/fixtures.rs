//! The fixtures of the official conformance suite's server scenarios: the
//! `test_*` tools, the `test://` resources and template, the `test_*`
//! prompts and `completion/complete`, served in both eras when
//! [`ServerConfig::conformance_tools`](super::ServerConfig::conformance_tools)
//! is on (and never otherwise, so the simulation's own server is unchanged).
//!
//! Everything here is a pure function of the request: no state, no
//! randomness. Results are returned before the era's stamping (the
//! stateless era adds `resultType`, `_meta` and the caching hints).

use serde_json::{json, Map, Value};

/// A 1×1 red PNG, base64.
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV file with one 16-bit mono sample of silence, base64.
pub const WAV_BASE64: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==";

/// JSON-RPC Invalid params.
pub const INVALID_PARAMS: i64 = -32602;
/// The 2025-11-25 code for an unknown resource (moved to -32602 in
/// 2026-07-28).
pub const RESOURCE_NOT_FOUND_LEGACY: i64 = -32002;

/// A JSON-RPC error with optional `data`, and the HTTP status the
/// stateless era answers it with (the legacy era always answers 200).
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    /// The JSON-RPC code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// The `data` member, if any.
    pub data: Option<Value>,
    /// The stateless era's HTTP status for it.
    pub status: u16,
}

impl RpcError {
    /// A -32602 (HTTP 400 in the stateless era) with `message`.
    pub fn invalid(message: impl Into<String>) -> RpcError {
        RpcError {
            code: INVALID_PARAMS,
            message: message.into(),
            data: None,
            status: 400,
        }
    }
}

/// What a fixture answers: the outcome and the notifications to send
/// before it (which make the answer an SSE stream).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The result, or the error.
    pub outcome: Result<Value, RpcError>,
    /// Notifications sent before the response, in order.
    pub notes: Vec<Value>,
}

impl Reply {
    /// A result without notifications.
    pub fn ok(result: Value) -> Reply {
        Reply {
            outcome: Ok(result),
            notes: Vec::new(),
        }
    }

    /// An error without notifications.
    pub fn err(e: RpcError) -> Reply {
        Reply {
            outcome: Err(e),
            notes: Vec::new(),
        }
    }
}

/// An object schema with `properties` and `required`.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

/// The JSON Schema 2020-12 tool's input schema (scenario
/// `json-schema-2020-12`, keywords that must survive `tools/list`).
fn schema_2020_12() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {
            "street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"},
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false,
    })
}

/// The fixture tools both eras list, after the server's own (and
/// `test_simple_text`/`test_error_handling`, which the handler lists).
pub fn tools() -> Vec<Value> {
    let none = || object(json!({}), &[]);
    let tool = |name: &str, description: &str, schema: Value| json!({"name": name, "description": description, "inputSchema": schema});
    vec![
        tool("test_image_content", "Returns a 1x1 PNG image.", none()),
        tool("test_audio_content", "Returns a short WAV clip.", none()),
        tool(
            "test_embedded_resource",
            "Returns an embedded text resource.",
            none(),
        ),
        tool(
            "test_multiple_content_types",
            "Returns text, image and resource content.",
            none(),
        ),
        tool(
            "test_tool_with_logging",
            "Sends three log notifications, then answers.",
            none(),
        ),
        tool(
            "test_tool_with_progress",
            "Sends progress 0, 50, 100 of 100 when given a progressToken.",
            none(),
        ),
        tool(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            schema_2020_12(),
        ),
        tool(
            "test_param_header",
            "Echoes its region, which a stateless-era client mirrors in Mcp-Param-Region.",
            object(
                json!({"region": {"type": "string", "description": "A region name",
                                  "x-mcp-header": "Region"}}),
                &["region"],
            ),
        ),
    ]
    .into_iter()
    .chain(super::client_requests::tools())
    .collect()
}

/// The three `info` log notifications of `test_tool_with_logging`.
fn log_notes() -> Vec<Value> {
    [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]
    .iter()
    .map(|text| {
        json!({"jsonrpc": "2.0", "method": "notifications/message",
               "params": {"level": "info", "logger": "mcp-sim", "data": text}})
    })
    .collect()
}

/// The progress notifications for `token`: 0, 50 and 100 of 100.
fn progress_notes(token: &Value) -> Vec<Value> {
    [0, 50, 100]
        .iter()
        .map(|p| {
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": token, "progress": p, "total": 100}})
        })
        .collect()
}

/// A `tools/call` result of `content`.
fn content(items: Value) -> Value {
    json!({ "content": items })
}

/// Calls fixture tool `name` (`None` if it is not one). `params` are the
/// whole `tools/call` params (for `_meta.progressToken`); `logs` says
/// whether log notifications may be sent (legacy: always; stateless era:
/// only with `_meta` logLevel).
pub fn call_tool(name: &str, params: &Value, logs: bool) -> Option<Reply> {
    let image = json!({"type": "image", "data": PNG_BASE64, "mimeType": "image/png"});
    let reply = match name {
        "test_image_content" => Reply::ok(content(json!([image]))),
        "test_audio_content" => Reply::ok(content(json!([
            {"type": "audio", "data": WAV_BASE64, "mimeType": "audio/wav"}
        ]))),
        "test_embedded_resource" => Reply::ok(content(json!([{"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content."}}]))),
        "test_multiple_content_types" => Reply::ok(content(json!([
            {"type": "text", "text": "Multiple content types test:"},
            image,
            {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}},
        ]))),
        "test_tool_with_logging" => Reply {
            outcome: Ok(content(
                json!([{"type": "text", "text": "Tool with logging executed"}]),
            )),
            notes: if logs { log_notes() } else { Vec::new() },
        },
        "test_tool_with_progress" => {
            let token = params.pointer("/_meta/progressToken");
            Reply {
                outcome: Ok(content(
                    json!([{"type": "text", "text": "Tool with progress executed"}]),
                )),
                notes: token.map(progress_notes).unwrap_or_default(),
            }
        }
        "json_schema_2020_12_tool" => Reply::ok(content(
            json!([{"type": "text", "text": "JSON Schema 2020-12 tool called"}]),
        )),
        "test_param_header" => match params.pointer("/arguments/region").and_then(Value::as_str) {
            Some(region) => Reply::ok(content(
                json!([{"type": "text", "text": format!("region: {region}")}]),
            )),
            None => Reply::err(RpcError::invalid(
                "test_param_header: argument region (a string) is required",
            )),
        },
        _ => return None,
    };
    Some(reply)
}

/// The direct resources.
fn resources() -> Value {
    json!([
        {"uri": "test://static-text", "name": "static-text", "description": "A static text resource.", "mimeType": "text/plain"},
        {"uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource (a PNG).", "mimeType": "image/png"},
        {"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource to subscribe to.", "mimeType": "text/plain"},
    ])
}

/// The resource templates.
fn templates() -> Value {
    json!([{"uriTemplate": "test://template/{id}/data", "name": "template-data",
            "description": "Data for an id.", "mimeType": "application/json"}])
}

/// `resources/read` of `uri`; `modern` picks the not-found code.
fn read(uri: &str, modern: bool) -> Result<Value, RpcError> {
    let one = |mime: &str, key: &str, value: &str| {
        Ok(json!({"contents": [{"uri": uri, "mimeType": mime, key: value}]}))
    };
    match uri {
        "test://static-text" => one(
            "text/plain",
            "text",
            "This is the content of the static text resource.",
        ),
        "test://static-binary" => one("image/png", "blob", PNG_BASE64),
        "test://watched-resource" => one("text/plain", "text", "Watched resource content."),
        _ => {
            let id = uri
                .strip_prefix("test://template/")
                .and_then(|r| r.strip_suffix("/data"))
                .filter(|id| !id.is_empty() && !id.contains('/'));
            if let Some(id) = id {
                let text =
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
                return one("application/json", "text", &text.to_string());
            }
            Err(RpcError {
                code: if modern {
                    INVALID_PARAMS
                } else {
                    RESOURCE_NOT_FOUND_LEGACY
                },
                message: format!("Resource not found: {uri}"),
                data: Some(json!({ "uri": uri })),
                status: 400,
            })
        }
    }
}

/// The prompts (`prompts/list`).
fn prompts(modern: bool) -> Value {
    let arg = |name: &str, description: &str| json!({"name": name, "description": description, "required": true});
    let mut list = vec![
        json!({"name": "test_simple_prompt", "description": "A simple prompt without arguments."}),
        json!({"name": "test_prompt_with_arguments", "description": "A prompt with two arguments.",
               "arguments": [arg("arg1", "First test argument"), arg("arg2", "Second test argument")]}),
        json!({"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource.",
               "arguments": [arg("resourceUri", "URI of the resource to embed")]}),
        json!({"name": "test_prompt_with_image", "description": "A prompt with an image."}),
    ];
    if modern {
        list.push(json!({"name": "test_input_required_result_prompt",
                         "description": "A prompt that asks the client for context first (MRTR)."}));
    }
    Value::Array(list)
}

/// One `user` message of `content`.
fn user(content: Value) -> Value {
    json!({"role": "user", "content": content})
}

/// `prompts/get` of `name` with `args`.
fn get_prompt(name: &str, args: &Map<String, Value>) -> Result<Value, RpcError> {
    let text = |t: &str| json!({"type": "text", "text": t});
    let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("");
    let messages = match name {
        "test_simple_prompt" => vec![user(text("This is a simple prompt for testing."))],
        "test_prompt_with_arguments" => {
            let t = format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                arg("arg1"),
                arg("arg2")
            );
            vec![user(text(&t))]
        }
        "test_prompt_with_embedded_resource" => vec![
            user(
                json!({"type": "resource", "resource": {"uri": arg("resourceUri"),
                "mimeType": "text/plain", "text": "Embedded resource content for testing."}}),
            ),
            user(text("Please process the embedded resource above.")),
        ],
        "test_prompt_with_image" => vec![
            user(json!({"type": "image", "data": PNG_BASE64, "mimeType": "image/png"})),
            user(text("Please analyze the image above.")),
        ],
        other => {
            return Err(RpcError {
                code: INVALID_PARAMS,
                message: format!("Unknown prompt: {other}"),
                data: Some(json!({ "name": other })),
                status: 400,
            })
        }
    };
    Ok(json!({ "messages": messages }))
}

/// `completion/complete`: the values of a small list that start with the
/// argument's value.
fn complete(params: &Value) -> Result<Value, RpcError> {
    let Some(value) = params.pointer("/argument/value").and_then(Value::as_str) else {
        return Err(RpcError::invalid(
            "completion/complete: argument.value is required",
        ));
    };
    let words = ["paris", "park", "party", "test", "testing", "tested"];
    let values: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| w.starts_with(value))
        .collect();
    Ok(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
}

/// Answers a resources, prompts or completion request (`None`: not one of
/// these methods). `modern`: the stateless era (which has no
/// `resources/subscribe`, and another not-found code).
pub fn request(method: &str, params: &Value, modern: bool) -> Option<Result<Value, RpcError>> {
    let empty = Map::new();
    let outcome = match method {
        "resources/list" => Ok(json!({ "resources": resources() })),
        "resources/templates/list" => Ok(json!({ "resourceTemplates": templates() })),
        "resources/read" => match params.get("uri").and_then(Value::as_str) {
            Some(uri) => read(uri, modern),
            None => Err(RpcError::invalid("resources/read: uri is required")),
        },
        "resources/subscribe" | "resources/unsubscribe" if !modern => {
            match params.get("uri").and_then(Value::as_str) {
                Some(_) => Ok(json!({})),
                None => Err(RpcError::invalid(format!("{method}: uri is required"))),
            }
        }
        "prompts/list" => Ok(json!({ "prompts": prompts(modern) })),
        "prompts/get" => match params.get("name").and_then(Value::as_str) {
            Some(name) => {
                let args = params
                    .get("arguments")
                    .and_then(Value::as_object)
                    .unwrap_or(&empty);
                get_prompt(name, args)
            }
            None => Err(RpcError::invalid("prompts/get: name is required")),
        },
        "completion/complete" => complete(params),
        _ => return None,
    };
    Some(outcome)
}

/// The capabilities a server with the fixtures declares in `initialize`
/// (legacy era).
pub fn legacy_capabilities() -> Value {
    json!({
        "tools": {"listChanged": false},
        "logging": {},
        "resources": {"subscribe": true, "listChanged": false},
        "prompts": {"listChanged": false},
        "completions": {},
    })
}

/// The capabilities a server with the fixtures declares in
/// `server/discover` (stateless era: `listChanged` means "delivered on
/// `subscriptions/listen`").
pub fn modern_capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "resources": {"listChanged": true},
        "prompts": {"listChanged": true},
        "completions": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_substitutes_its_id_and_unknown_uris_are_errors() {
        let r = read("test://template/123/data", true).unwrap();
        assert!(r["contents"][0]["text"].as_str().unwrap().contains("123"));
        let e = read("test://nope", true).unwrap_err();
        assert_eq!(
            (e.code, e.data),
            (-32602, Some(json!({"uri": "test://nope"})))
        );
        assert_eq!(read("test://nope", false).unwrap_err().code, -32002);
    }

    #[test]
    fn prompts_substitute_arguments() {
        let args = json!({"arg1": "a1", "arg2": "b2"});
        let r = get_prompt("test_prompt_with_arguments", args.as_object().unwrap()).unwrap();
        let text = r["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(text.contains("a1") && text.contains("b2"));
        assert_eq!(get_prompt("nope", &Map::new()).unwrap_err().status, 400);
    }

    #[test]
    fn subscribe_is_legacy_only() {
        let p = json!({"uri": "test://watched-resource"});
        assert!(request("resources/subscribe", &p, false).is_some());
        assert!(request("resources/subscribe", &p, true).is_none());
    }
}
