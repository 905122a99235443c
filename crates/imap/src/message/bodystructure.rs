//! BODY and BODYSTRUCTURE, written as Dovecot writes them.

use super::*;

/// Dovecot's `imap_bodystructure_is_plain_7bit` for the top part: text/plain, at most
/// `charset=us-ascii`, 7bit, and none of the other MIME fields.
pub(super) fn is_plain_7bit(raw: &[u8], root: &Part) -> bool {
    let ct = &root.content_type;
    let header = &root.header;
    let has =
        |name: &str| fields(raw, header).any(|f| f.name.eq_ignore_ascii_case(name.as_bytes()));
    matches!(root.kind, Kind::Leaf)
        && ct.is("text", "plain")
        && match ct.params.as_slice() {
            [] => true,
            [(name, value)] => {
                name.eq_ignore_ascii_case(b"charset") && value.eq_ignore_ascii_case(b"us-ascii")
            }
            _ => false,
        }
        && transfer_encoding(raw, header).is_none_or(|e| e.eq_ignore_ascii_case("7bit"))
        && !has("content-id")
        && !has("content-description")
        && !has("content-md5")
        && !has("content-disposition")
        && !has("content-language")
        && !has("content-location")
}

pub(super) fn write_body(raw: &[u8], part: &Part, out: &mut Vec<u8>, extensible: bool) {
    let header = &part.header;
    out.push(b'(');
    if let Kind::Multipart(children) = &part.kind {
        if children.is_empty() {
            // The grammar needs a part: an empty text/plain as Dovecot writes it.
            out.extend_from_slice(
                b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0",
            );
            if extensible {
                out.extend_from_slice(b" NIL NIL NIL NIL");
            }
            out.push(b')');
        }
        for child in children {
            write_body(raw, child, out, extensible);
        }
        out.push(b' ');
        let subtype = part
            .content_type
            .written
            .as_ref()
            .map_or(&b"x-unknown"[..], |(_, s)| s.as_slice());
        string(out, subtype);
        if extensible {
            out.push(b' ');
            write_params(out, &part.content_type.params);
            write_extension(raw, header, out);
        }
        out.push(b')');
        return;
    }

    let ct = &part.content_type;
    let (kind, subtype) = match (&part.kind, &ct.written) {
        // Dovecot spells an embedded message in lower case whatever the header says.
        (Kind::Message(_), _) => (&b"message"[..], &b"rfc822"[..]),
        (_, Some((kind, subtype))) => (kind.as_slice(), subtype.as_slice()),
        (_, None) => (ct.kind.as_bytes(), ct.subtype.as_bytes()),
    };
    string(out, kind);
    out.push(b' ');
    string(out, subtype);
    out.push(b' ');
    if ct.kind == "text" && ct.param("charset").is_none() {
        // Text without a charset is us-ascii (RFC 2045 5.2); Dovecot adds it last.
        let mut params = ct.params.clone();
        params.push((b"charset".to_vec(), b"us-ascii".to_vec()));
        write_params(out, &params);
    } else {
        write_params(out, &ct.params);
    }
    out.push(b' ');
    nstring(out, first_value(raw, header, "content-id").as_deref());
    out.push(b' ');
    nstring(
        out,
        first_value(raw, header, "content-description").as_deref(),
    );
    out.push(b' ');
    let encoding = transfer_encoding(raw, header);
    string(out, encoding.as_deref().unwrap_or("7bit").as_bytes());
    out.push(b' ');
    let body = raw.get(part.body.clone()).unwrap_or_default();
    out.extend_from_slice(body.len().to_string().as_bytes());
    let lines = || body.iter().filter(|&&b| b == b'\n').count().to_string();
    match &part.kind {
        Kind::Message(inner) => {
            out.push(b' ');
            write_envelope(raw, &inner.header, out);
            out.push(b' ');
            write_body(raw, inner, out, extensible);
            out.push(b' ');
            out.extend_from_slice(lines().as_bytes());
        }
        _ if ct.kind == "text" => {
            out.push(b' ');
            out.extend_from_slice(lines().as_bytes());
        }
        _ => {}
    }
    if extensible {
        out.push(b' ');
        nstring(out, first_value(raw, header, "content-md5").as_deref());
        write_extension(raw, header, out);
    }
    out.push(b')');
}

pub(super) fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, &no_nul(name.clone()));
        out.push(b' ');
        string(out, &no_nul(value.clone()));
    }
    out.push(b')');
}

/// ` disposition language location`.
pub(super) fn write_extension(raw: &[u8], header: &Header, out: &mut Vec<u8>) {
    out.push(b' ');
    let disposition = first_value(raw, header, "content-disposition").and_then(|value| {
        let tokens = mime_tokens(&value);
        match tokens.split_first() {
            Some((MimeToken::Word(kind), rest)) => Some((kind.clone(), parse_params(rest))),
            _ => None,
        }
    });
    match disposition {
        Some((kind, params)) => {
            out.push(b'(');
            string(out, &kind);
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    let languages: Vec<Vec<u8>> = first_value(raw, header, "content-language")
        .map(|value| {
            mime_tokens(&value)
                .into_iter()
                .filter_map(|t| match t {
                    MimeToken::Word(w) | MimeToken::Quoted(w) => Some(w),
                    MimeToken::Special(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match languages.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        // Dovecot writes a list even for one language; both forms are valid.
        many => {
            out.push(b'(');
            for (i, language) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, language);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring(out, first_value(raw, header, "content-location").as_deref());
}
