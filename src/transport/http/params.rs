//! `Mcp-Param-{Name}` headers (2026-07-28, SEP-2243): a tool whose
//! `inputSchema` marks an argument with `"x-mcp-header": "{Name}"` wants
//! that argument mirrored into a header, so that gateways can route on it
//! without reading the body.
//!
//! The client learns the annotations from `tools/list` answers (per
//! connector, that is per origin: every context of a manager shares them)
//! and adds the headers to each `tools/call` of an annotated tool: the
//! argument's value rendered as text (a string as it is, an integer in
//! decimal, a boolean as `true`/`false`), base64-sentinel encoded when it is
//! not header-safe, and left out when the argument is absent or `null`.
//! A tool whose annotations are invalid (an empty or non-token name, a type
//! other than string, integer or boolean, a name used twice, a property not
//! reachable through plain `properties`) gets no headers at all.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::envelope::header_value;
use crate::transport::CallResult;

/// One annotated argument of a tool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParamHeader {
    /// `mcp-param-{name}`, lower-cased.
    pub header: HeaderName,
    /// The property names from the arguments object down to the value.
    pub path: Vec<String>,
}

/// What a `tools/list` said of a tool's annotations.
#[derive(Clone, Debug)]
pub(crate) enum Annotated {
    /// Valid: these arguments go into headers.
    Headers(Arc<Vec<ParamHeader>>),
    /// Invalid: the tool was dropped from the list, and is not called.
    Invalid,
}

/// Tool name → its annotations (only tools that have some, valid or not).
pub(crate) type ToolHeaders = BTreeMap<String, Annotated>;

/// `result` (a `tools/list` result) without the tools named in `drop`.
pub(crate) fn without_tools(result: &CallResult, drop: &[String]) -> CallResult {
    let mut v = result.to_value();
    if let Some(Value::Array(tools)) = v.get_mut("tools") {
        tools.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_none_or(|n| !drop.iter().any(|d| d == n))
        });
    }
    CallResult::from_value(&v)
}

/// Reads a `tools/list` result and returns the annotations of its tools
/// (`None` when the result mentions no annotation at all, which is nearly
/// always: the text is searched before anything is parsed).
pub(crate) fn learn(result: &CallResult) -> Option<Vec<(String, Option<Vec<ParamHeader>>)>> {
    if !result.raw().contains("x-mcp-header") {
        return None;
    }
    #[derive(Deserialize)]
    struct Tool {
        name: String,
        #[serde(rename = "inputSchema", default)]
        input_schema: Value,
    }
    let tools: Vec<Tool> = serde_json::from_value(result.member("tools")?).ok()?;
    Some(
        tools
            .into_iter()
            .map(|t| {
                let headers = annotations(&t.input_schema);
                (t.name, headers)
            })
            .collect(),
    )
}

/// The annotated arguments of one input schema; `None` if any annotation
/// is invalid (the tool then gets no headers).
pub(crate) fn annotations(schema: &Value) -> Option<Vec<ParamHeader>> {
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out)?;
    let mut seen = std::collections::BTreeSet::new();
    for h in &out {
        if !seen.insert(h.header.as_str().to_owned()) {
            return None;
        }
    }
    Some(out)
}

fn walk(schema: &Value, path: &mut Vec<String>, out: &mut Vec<ParamHeader>) -> Option<()> {
    if let Some(name) = schema.get("x-mcp-header") {
        if path.is_empty() {
            return None; // the arguments object itself
        }
        let name = name.as_str().filter(|n| is_token(n))?;
        let ty = schema.get("type").and_then(Value::as_str);
        if !matches!(ty, Some("string" | "integer" | "boolean")) {
            return None;
        }
        let header = HeaderName::from_bytes(format!("mcp-param-{name}").as_bytes()).ok()?;
        out.push(ParamHeader {
            header,
            path: path.clone(),
        });
    }
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (key, sub) in props {
            path.push(key.clone());
            walk(sub, path, out)?;
            path.pop();
        }
    }
    // An annotation under a composition keyword is not reachable through
    // plain `properties`: invalid.
    for key in [
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "items",
        "additionalProperties",
    ] {
        if schema
            .get(key)
            .is_some_and(|v| v.to_string().contains("x-mcp-header"))
        {
            return None;
        }
    }
    Some(())
}

/// An RFC 9110 token: one or more of `!#$%&'*+-.^_`|~`, digits, letters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The headers of one call: each annotated argument present and not null.
pub(crate) fn headers_for(
    params: &[ParamHeader],
    arguments: &Value,
) -> Vec<(HeaderName, HeaderValue)> {
    params
        .iter()
        .filter_map(|p| {
            let mut v = arguments;
            for key in &p.path {
                v = v.get(key)?;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => i.to_string(),
                    (_, Some(u), _) => u.to_string(),
                    (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                        format!("{}", f as i64)
                    }
                    _ => n.to_string(),
                },
                _ => return None,
            };
            Some((p.header.clone(), header_value(&text).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(hs: &[ParamHeader]) -> Vec<(&str, Vec<&str>)> {
        hs.iter()
            .map(|h| {
                (
                    h.header.as_str(),
                    h.path.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn annotations_are_found_through_plain_properties() {
        let schema = json!({"type":"object","properties":{
            "region": {"type":"string","x-mcp-header":"Region"},
            "opts": {"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"N"}}},
            "plain": {"type":"string"}
        }});
        assert_eq!(
            names(&annotations(&schema).unwrap()),
            [
                ("mcp-param-n", vec!["opts", "n"]),
                ("mcp-param-region", vec!["region"])
            ]
        );
    }

    #[test]
    fn invalid_annotations_drop_the_tool() {
        for bad in [
            json!({"properties":{"a":{"type":"string","x-mcp-header":""}}}),
            json!({"properties":{"a":{"type":"string","x-mcp-header":"has space"}}}),
            json!({"properties":{"a":{"type":"number","x-mcp-header":"A"}}}),
            json!({"properties":{"a":{"type":"object","x-mcp-header":"A"}}}),
            json!({"properties":{"a":{"type":"string","x-mcp-header":"A"},
                                 "b":{"type":"string","x-mcp-header":"a"}}}),
            json!({"anyOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]}),
            json!({"type":"object","x-mcp-header":"Whole"}),
        ] {
            assert_eq!(annotations(&bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_rendered_and_encoded() {
        let schema = json!({"properties":{
            "s": {"type":"string","x-mcp-header":"S"},
            "i": {"type":"integer","x-mcp-header":"I"},
            "b": {"type":"boolean","x-mcp-header":"B"},
            "u": {"type":"string","x-mcp-header":"U"},
            "z": {"type":"string","x-mcp-header":"Z"}
        }});
        let hs = annotations(&schema).unwrap();
        let got = headers_for(&hs, &json!({"s":"héllo","i":42.0,"b":true,"z":null}));
        let got: Vec<(String, String)> = got
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("mcp-param-b".to_owned(), "true".to_owned()),
                ("mcp-param-i".to_owned(), "42".to_owned()),
                ("mcp-param-s".to_owned(), "=?base64?aMOpbGxv?=".to_owned()),
            ]
        );
    }

    #[test]
    fn learning_skips_results_without_annotations() {
        let plain = CallResult::from_value(&json!({"tools":[{"name":"echo","inputSchema":{}}]}));
        assert!(learn(&plain).is_none());
        let annotated = CallResult::from_value(&json!({"tools":[
            {"name":"t","inputSchema":{"properties":{"r":{"type":"string","x-mcp-header":"R"}}}},
            {"name":"bad","inputSchema":{"properties":{"r":{"type":"array","x-mcp-header":"R"}}}}
        ]}));
        let learned = learn(&annotated).unwrap();
        assert_eq!(learned.len(), 2);
        assert_eq!(learned[0].0, "t");
        assert_eq!(learned[0].1.as_ref().map(Vec::len), Some(1));
        assert_eq!(learned[1], ("bad".to_owned(), None));
        let kept = without_tools(&annotated, &["bad".to_owned()]).to_value();
        assert_eq!(kept["tools"].as_array().map(Vec::len), Some(1));
        assert_eq!(kept["tools"][0]["name"], "t");
    }
}
