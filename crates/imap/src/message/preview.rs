//! RFC 8970 PREVIEW: the start of a message's first text part as a reader sees it.

use mail_parser::MessageParser;

use super::Message;

/// At most this many characters (RFC 8970 3: a preview should be no more than 200).
pub const PREVIEW_CHARS: usize = 200;
/// And never more than this many octets (RFC 8970 3: MUST NOT exceed 256).
const PREVIEW_OCTETS: usize = 256;
/// Only so much of a part's text is looked at: a preview of a huge message costs no more
/// than one of a small one once the part is decoded.
const SCAN_LIMIT: usize = 64 * 1024;

impl Message {
    /// The preview: the first text part (an HTML one when there is no plain text, its tags
    /// removed) with its transfer encoding and charset undone (mail-parser), whitespace and
    /// control characters collapsed to single spaces, cut to 200 characters and 256 octets.
    /// Empty when the message has no text.
    pub fn preview(&self) -> String {
        let parsed = MessageParser::default().parse(self.raw());
        let text = parsed
            .as_ref()
            .and_then(|message| message.body_text(0))
            .unwrap_or_default();
        collapse(&text)
    }
}

/// Whitespace runs to one space, control characters dropped, trimmed and cut.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(PREVIEW_OCTETS);
    let mut chars = 0;
    let mut pending_space = false;
    let end = text
        .char_indices()
        .map(|(at, _)| at)
        .find(|&at| at >= SCAN_LIMIT)
        .unwrap_or(text.len());
    for c in text.get(..end).unwrap_or_default().chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() || c == '\u{feff}' {
            continue;
        }
        let space = usize::from(pending_space);
        if chars + space + 1 > PREVIEW_CHARS || out.len() + space + c.len_utf8() > PREVIEW_OCTETS {
            break;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(message: &str) -> String {
        Message::parse(message.as_bytes()).preview()
    }

    #[test]
    fn plain_text_is_collapsed_and_cut() {
        assert_eq!(
            preview("Subject: x\r\n\r\n  Hello,\r\n\r\n\tworld  again \r\n"),
            "Hello, world again"
        );
        let long = "word ".repeat(100);
        let cut = preview(&format!("Subject: x\r\n\r\n{long}"));
        assert!(cut.chars().count() <= PREVIEW_CHARS, "{}", cut.len());
        assert!(cut.starts_with("word word") && !cut.ends_with(' '));
        // Many octets per character: the octet bound wins.
        let wide = "\u{20ac}".repeat(150);
        let cut = preview(&format!(
            "Content-Type: text/plain; charset=utf-8\r\n\r\n{wide}"
        ));
        assert!(
            cut.len() <= PREVIEW_OCTETS && cut.len() > 250,
            "{}",
            cut.len()
        );
        assert!(cut.chars().all(|c| c == '\u{20ac}'));
    }

    #[test]
    fn encodings_charsets_and_html_are_undone() {
        let qp_html = "Content-Type: text/html; charset=iso-8859-1\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\n\
            <html><body><p>Gr=FC=DFe <b>aus</b>\r\n<i>K=F6ln</i></p></body></html>\r\n";
        assert_eq!(preview(qp_html), "Grüße aus Köln");
        let base64 = "Content-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8sIHfDtnJsZCE=\r\n";
        assert_eq!(preview(base64), "Hello, wörld!");
        let alternative = "Content-Type: multipart/alternative; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nplain one\r\n\
            --b\r\nContent-Type: text/html\r\n\r\n<p>html one</p>\r\n--b--\r\n";
        assert_eq!(preview(alternative), "plain one");
        let attachment_only = "Content-Type: image/png\r\n\
            Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n";
        assert_eq!(preview(attachment_only), "");
        assert_eq!(preview(""), "");
    }
}
