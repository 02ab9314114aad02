//! The canonical bytes of a trace event, written by hand.
//!
//! A trace's hash is taken over one JSON object per event (see
//! [`crate::trace`]): exactly what `serde_json::to_writer` makes of a
//! [`TraceEvent`] (its line's fields in order, absent options and an empty
//! `detail` left out, a `detail` object's members in key order, strings
//! escaped as serde_json escapes them). Every run hashes every event of its
//! trace, so this module writes those same bytes directly: no serializer
//! state, and a string with nothing to escape (nearly every one) copied in a
//! single step. The unit tests hold it to serde_json byte for byte.

use serde_json::Value;

use crate::trace::TraceEvent;

/// Appends `e`'s canonical JSON (no newline) to `out`.
pub fn write_event(out: &mut Vec<u8>, e: &TraceEvent) {
    let p = e.kind.parts();
    out.extend_from_slice(b"{\"t_ms\":");
    write_u64(out, e.t_ms);
    out.extend_from_slice(b",\"host\":");
    write_str(out, &e.host);
    out.extend_from_slice(b",\"source\":\"");
    out.extend_from_slice(p.source.as_str().as_bytes());
    out.extend_from_slice(b"\",\"event\":");
    write_str(out, &p.name);
    if let Some(session) = p.session {
        out.extend_from_slice(b",\"session\":");
        write_str(out, session);
    }
    if let Some(vu) = p.vu {
        out.extend_from_slice(b",\"vu\":");
        write_u64(out, vu);
    }
    if !p.detail.is_empty() {
        out.extend_from_slice(b",\"detail\":");
        write_object(out, p.detail.iter());
    }
    out.push(b'}');
}

/// A JSON object of `members` (already in key order), compact.
fn write_object<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a str, &'a Value)>) {
    out.push(b'{');
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// A JSON value as serde_json writes it (compact).
fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match n.as_u64() {
            Some(u) => write_u64(out, u),
            // Negative and fractional numbers: serde_json's own writer
            // (writing a number into a Vec cannot fail).
            None => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
        },
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => write_object(out, members.iter().map(|(k, v)| (k.as_str(), v))),
    }
}

/// An unsigned integer in decimal.
fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

/// The bytes serde_json escapes in a string: control characters, `"` and
/// `\`. A table, so that scanning a string is one lookup per byte.
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A JSON string: quoted, and escaped as serde_json escapes (`"`, `\` and
/// control characters) when it needs it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| ESCAPED[usize::from(b)]) {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::detail::Detail;
    use crate::trace::{Kind, RawRecord, Source};

    fn canonical(e: &TraceEvent) -> String {
        let mut out = Vec::new();
        write_event(&mut out, e);
        String::from_utf8(out).unwrap()
    }

    /// An event of every shape a line can have (kept as written: the
    /// typed kinds write their lines the same way, see `crate::trace`'s
    /// tests).
    fn event(session: Option<&str>, vu: Option<u64>, detail: Value) -> TraceEvent {
        let detail = Detail::try_from(detail).expect("a detail is an object");
        TraceEvent {
            t_ms: 1234,
            host: "worker-1".into(),
            kind: Kind::Other(RawRecord {
                source: Source::Manager,
                name: "acquire_ok".into(),
                session: session.map(str::to_owned),
                vu,
                detail,
            }),
        }
    }

    #[test]
    fn every_shape_is_written_as_serde_json_writes_it() {
        let odd = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} us \u{1f} sp \u{20} del \u{7f} é 😀 </";
        let cases = [
            event(None, None, Value::Null),
            event(
                Some("srv-1"),
                Some(7),
                json!({"clock_ms": 3, "created": true}),
            ),
            event(
                Some(odd),
                Some(0),
                json!({odd: odd, "a": [1, -2, 2.5, null, false]}),
            ),
            event(
                None,
                Some(u64::MAX),
                json!({"nested": {"z": {}, "a": [], "m": [{"k": "v"}]}, "neg": i64::MIN}),
            ),
            event(Some(""), None, json!({})),
            event(None, None, json!({"list": [1, "x"]})),
            event(
                None,
                None,
                json!({"s": "just a string", "f": 0.1, "t": true}),
            ),
        ];
        for (i, e) in cases.iter().enumerate() {
            let mut e = e.clone();
            if let Kind::Other(r) = &mut e.kind {
                r.source = [Source::Manager, Source::Server, Source::Vu, Source::Fault][i % 4];
            }
            e.host = if i % 2 == 0 {
                odd.into()
            } else {
                "server".into()
            };
            assert_eq!(canonical(&e), serde_json::to_string(&e).unwrap(), "{e:?}");
        }
    }
}
