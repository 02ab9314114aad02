//! The `Forwarded` request header (RFC 7239): how the simulated load
//! balancer tells a server instance which client a request came from.
//!
//! Behind a balancer a server's TCP peer is the balancer, so the client
//! host the server logs (`from`, see [`crate::server::ServerEvent`]) must
//! travel in the request: the balancer appends one element `for=<client>`
//! ([`append_for`]), and the server reads the `for` of the first element
//! ([`first_for`]), the one the proxy nearest the client wrote. A name
//! that is not an RFC 7230 token (a simulated host name always is) is sent
//! as a quoted string; a client the balancer cannot name is `for=unknown`,
//! which reads back as no name.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// The header's name.
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Whether `b` is an RFC 7230 `tchar` (a character of a token).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `for=` parameter naming `client` (`unknown` for `None`), as a token
/// or, when it is not one, a quoted string.
pub fn for_element(client: Option<&str>) -> String {
    match client {
        None => "for=unknown".to_owned(),
        Some(name) if !name.is_empty() && name.bytes().all(is_tchar) => format!("for={name}"),
        Some(name) => {
            let mut quoted = String::with_capacity(name.len() + 6);
            quoted.push_str("for=\"");
            for c in name.chars() {
                if c == '"' || c == '\\' {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            quoted.push('"');
            quoted
        }
    }
}

/// Appends the element `for=<client>` to `headers` (after any `Forwarded`
/// the request already carried: the nearest proxy's element comes last).
/// A name that cannot go in a header value is sent as `unknown`.
pub fn append_for(headers: &mut HeaderMap, client: Option<&str>) {
    let value = HeaderValue::from_str(&for_element(client))
        .unwrap_or_else(|_| HeaderValue::from_static("for=unknown"));
    headers.append(FORWARDED, value);
}

/// The client the first `Forwarded` element names in its `for` parameter
/// (quotes and escapes removed), if there is one and it is not `unknown`.
pub fn first_for(headers: &HeaderMap) -> Option<String> {
    let first = headers.get(FORWARDED)?.to_str().ok()?;
    let element = first_element(first);
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let node = unquote(value.trim());
        (!node.is_empty() && !node.eq_ignore_ascii_case("unknown")).then_some(node)
    })
}

/// The first comma-separated element of a `Forwarded` value (a comma
/// inside a quoted string does not end it).
fn first_element(value: &str) -> &str {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => return &value[..i],
            _ => {}
        }
    }
    value
}

/// A token as it is, or a quoted string's content.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_host_name_goes_as_a_token_and_comes_back() {
        let mut h = HeaderMap::new();
        append_for(&mut h, Some("worker-1"));
        assert_eq!(h.get(FORWARDED).unwrap(), "for=worker-1");
        assert_eq!(first_for(&h).as_deref(), Some("worker-1"));
    }

    #[test]
    fn other_names_are_quoted_and_unknown_is_no_name() {
        assert_eq!(for_element(Some("a b\"c")), r#"for="a b\"c""#);
        assert_eq!(for_element(Some("")), r#"for="""#);
        let mut h = HeaderMap::new();
        append_for(&mut h, Some("a b\"c"));
        assert_eq!(first_for(&h).as_deref(), Some("a b\"c"));
        let mut h = HeaderMap::new();
        append_for(&mut h, None);
        assert_eq!(first_for(&h), None);
        assert_eq!(first_for(&HeaderMap::new()), None);
    }

    #[test]
    fn the_first_element_names_the_client() {
        let h = headers(&["for=client;proto=http, for=proxy-1", "for=proxy-2"]);
        assert_eq!(first_for(&h).as_deref(), Some("client"));
        let h = headers(&[r#"proto=http;For="[2001:db8::1]:4711", for=x"#]);
        assert_eq!(first_for(&h).as_deref(), Some("[2001:db8::1]:4711"));
        let h = headers(&[r#"for="a,b", for=c"#]);
        assert_eq!(first_for(&h).as_deref(), Some("a,b"));
        let h = headers(&["by=balancer, for=late"]);
        assert_eq!(first_for(&h), None, "the first element has no for");
        for junk in ["for", "for=", "=x", r#"for=""#, ";;,"] {
            let _ = first_for(&headers(&[junk]));
        }
        assert_eq!(first_for(&headers(&[r#"for=""#])).as_deref(), Some("\""));
    }
}
