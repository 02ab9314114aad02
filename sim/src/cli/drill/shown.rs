//! Text that came from a server, made safe to print on a terminal.
//!
//! A server's error message, version string or tool text is whatever the
//! server sent: escape sequences that would move the cursor or recolour
//! the terminal, newlines that would break a one-line report, megabytes
//! that would bury it. [`shown`] puts it on one line, escapes every
//! control character, and keeps at most [`MAX_SHOWN`] characters, saying
//! how many bytes it cut. The JSON report keeps the text whole (serde
//! escapes it).

use std::fmt::Write as _;

/// The most characters of server text printed in one place.
pub const MAX_SHOWN: usize = 300;

/// The most characters of a whole one-line message (ours, with server
/// text inside it).
pub const MAX_LINE: usize = 2_000;

/// `s` on one line (line breaks and surrounding blanks folded into one
/// space), control characters escaped (`\u{1b}`), cut after
/// [`MAX_SHOWN`] characters with `… [N bytes cut]`.
pub fn shown(s: &str) -> String {
    shown_within(s, MAX_SHOWN)
}

/// [`shown`] for a whole message line: cut after [`MAX_LINE`] characters.
pub fn shown_long(s: &str) -> String {
    shown_within(s, MAX_LINE)
}

/// [`shown`], cut after `max` characters.
fn shown_within(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 32));
    let mut chars = 0;
    let mut cut_at = None;
    let folded = s
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let mut offset_in_s = 0;
    'parts: for (i, part) in folded.enumerate() {
        // Where this part starts in `s`, to count the bytes left out.
        let start = s[offset_in_s..]
            .find(part)
            .map_or(offset_in_s, |p| p + offset_in_s);
        if i > 0 {
            out.push(' ');
        }
        for (at, c) in part.char_indices() {
            if chars == max {
                cut_at = Some(start + at);
                break 'parts;
            }
            if c.is_control() {
                let _ = write!(out, "{}", c.escape_unicode());
            } else {
                out.push(c);
            }
            chars += 1;
        }
        offset_in_s = start + part.len();
    }
    if let Some(at) = cut_at {
        let _ = write!(out, "… [{} bytes cut]", s.len() - at);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(
            shown("bad \u{1b}[2Jthing\u{7}"),
            "bad \\u{1b}[2Jthing\\u{7}"
        );
    }

    #[test]
    fn lines_fold_into_one() {
        assert_eq!(shown("  one\r\n two \n\nthree "), "one two three");
    }

    #[test]
    fn long_text_is_cut_and_says_how_much() {
        let s = "x".repeat(3_000_000);
        let out = shown(&s);
        assert!(out.starts_with(&"x".repeat(MAX_SHOWN)), "{}", &out[..20]);
        assert!(
            out.ends_with(&format!("[{} bytes cut]", 3_000_000 - MAX_SHOWN)),
            "{}",
            &out[MAX_SHOWN..]
        );
        assert!(out.len() < MAX_SHOWN + 40);
    }

    #[test]
    fn multibyte_text_is_cut_on_a_character() {
        let s = "é".repeat(MAX_SHOWN + 5);
        let out = shown(&s);
        assert!(out.ends_with("… [10 bytes cut]"), "{out}");
    }

    #[test]
    fn short_plain_text_is_unchanged() {
        assert_eq!(shown("HTTP 500: oops"), "HTTP 500: oops");
    }
}
