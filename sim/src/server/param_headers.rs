//! `Mcp-Param-{Name}` headers (MCP 2026-07-28, SEP-2243): the last rung
//! of the stateless era's validation ladder, before dispatch.
//!
//! A tool argument whose `inputSchema` property carries
//! `"x-mcp-header": "{Name}"` is mirrored by the client in the header
//! `Mcp-Param-{Name}` when the argument is present and not null, and
//! omitted otherwise; a value that is not header-safe comes as the
//! sentinel `=?base64?<base64 of UTF-8>?=` (anything without both markers
//! is literal). The server decodes it and compares it with the body:
//! strings as they are, integers numerically, booleans as `true`/`false`.
//! A header missing while the argument is in the body, one given twice, or
//! given for an absent argument, a value that is not visible ASCII, a
//! sentinel that is not canonical base64 of UTF-8, and a mismatch are all
//! refused: HTTP 400 with -32020 (HeaderMismatch).
//!
//! Only the conformance fixtures have such arguments (`test_param_header`),
//! so the check runs only with them: the simulation's server is
//! unchanged.

use hyper::HeaderMap;
use serde_json::Value;

use super::{fixtures, ServerConfig};

/// Why the `Mcp-Param-*` headers of a stateless-era request do not match
/// its body, if they do not.
pub(crate) fn mismatch(
    cfg: &ServerConfig,
    method: &str,
    params: &Value,
    headers: &HeaderMap,
) -> Option<String> {
    if !cfg.conformance_tools || method != "tools/call" {
        return None;
    }
    let name = params.get("name").and_then(Value::as_str)?;
    let tools = fixtures::tools();
    let tool = tools.iter().find(|t| t["name"] == name)?;
    let properties = tool.pointer("/inputSchema/properties")?.as_object()?;
    let args = params.get("arguments").and_then(Value::as_object);
    for (arg, schema) in properties {
        let Some(suffix) = schema.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let header = format!("mcp-param-{}", suffix.to_ascii_lowercase());
        let mut given = headers.get_all(header.as_str()).iter();
        let body = args.and_then(|a| a.get(arg)).filter(|v| !v.is_null());
        let why = match (body, given.next(), given.next()) {
            (_, Some(_), Some(_)) => format!("Mcp-Param-{suffix} appears more than once"),
            (None, None, _) => continue,
            (None, Some(_), _) => {
                format!("Mcp-Param-{suffix} is given but argument {arg} is absent")
            }
            (Some(_), None, _) => {
                format!("Mcp-Param-{suffix} is missing but argument {arg} is in the body")
            }
            (Some(want), Some(value), None) => {
                let Ok(text) = value.to_str() else {
                    return Some(format!("Mcp-Param-{suffix} has characters not allowed"));
                };
                let Some(got) = mcp_session::transport::decode_header_value(text.trim()) else {
                    return Some(format!("Mcp-Param-{suffix} is not valid base64 of UTF-8"));
                };
                if matches(want, &got) {
                    continue;
                }
                format!("Mcp-Param-{suffix} does not match argument {arg}")
            }
        };
        return Some(why);
    }
    None
}

/// Whether header text `got` renders body value `want`.
fn matches(want: &Value, got: &str) -> bool {
    match want {
        Value::String(s) => s == got,
        Value::Bool(b) => got == if *b { "true" } else { "false" },
        Value::Number(n) => match (n.as_f64(), got.parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use serde_json::json;

    fn check(region: Option<Value>, header: &[&str]) -> Option<String> {
        let cfg = ServerConfig {
            conformance_tools: true,
            ..ServerConfig::default()
        };
        let mut headers = HeaderMap::new();
        for h in header {
            headers.append("Mcp-Param-Region", HeaderValue::from_str(h).unwrap());
        }
        let mut params = json!({"name": "test_param_header", "arguments": {}});
        if let Some(r) = region {
            params["arguments"]["region"] = r;
        }
        mismatch(&cfg, "tools/call", &params, &headers)
    }

    #[test]
    fn the_suites_cases() {
        let hello = Some(json!("Hello"));
        assert_eq!(check(hello.clone(), &["=?base64?SGVsbG8=?="]), None);
        assert_eq!(check(hello.clone(), &["  Hello "]), None);
        assert!(check(hello.clone(), &["=?base64?SGVsbG8?="]).is_some());
        assert!(check(hello.clone(), &["=?base64?SGVs!!!bG8=?="]).is_some());
        assert!(check(hello.clone(), &[]).is_some());
        assert!(check(hello.clone(), &["Hello", "Hello"]).is_some());
        assert!(check(hello, &["Goodbye"]).is_some());
        let literal = Some(json!("SGVsbG8="));
        assert_eq!(check(literal, &["SGVsbG8="]), None);
        let unclosed = Some(json!("=?base64?SGVsbG8="));
        assert_eq!(check(unclosed, &["=?base64?SGVsbG8="]), None);
        assert_eq!(check(None, &[]), None);
        assert_eq!(check(Some(Value::Null), &[]), None);
        assert!(check(None, &["Hello"]).is_some());
    }

    #[test]
    fn values_render_by_type() {
        assert!(matches(&json!(42), "42.0"));
        assert!(matches(&json!(true), "true"));
        assert!(!matches(&json!(false), "False"));
        assert!(!matches(&json!({}), "{}"));
    }

    #[test]
    fn other_tools_and_the_simulations_server_are_not_checked() {
        let mut headers = HeaderMap::new();
        headers.append("Mcp-Param-Region", HeaderValue::from_static("x"));
        let params = json!({"name": "echo", "arguments": {"text": "hi"}});
        let on = ServerConfig {
            conformance_tools: true,
            ..ServerConfig::default()
        };
        assert_eq!(mismatch(&on, "tools/call", &params, &headers), None);
        let p = json!({"name": "test_param_header", "arguments": {}});
        assert_eq!(
            mismatch(&ServerConfig::default(), "tools/call", &p, &headers),
            None
        );
    }
}
