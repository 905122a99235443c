//! Content-Transfer-Encodings undone (BINARY) and the decoded text SEARCH BODY/TEXT match.

use super::*;

pub(super) fn decode_transfer(
    raw: &[u8],
    part: &Part,
    body: &[u8],
) -> Result<Vec<u8>, UnknownEncoding> {
    let Some(encoding) = transfer_encoding(raw, &part.header) else {
        // A Content-Transfer-Encoding that is not one token cannot be decoded (Dovecot).
        return match fields(raw, &part.header)
            .find(|f| f.name.eq_ignore_ascii_case(b"content-transfer-encoding"))
        {
            Some(field) => Err(UnknownEncoding(lossy(trim(&unfold(field.value))))),
            None => Ok(body.to_vec()),
        };
    };
    match encoding.to_ascii_lowercase().as_str() {
        "7bit" | "8bit" | "binary" => Ok(body.to_vec()),
        "base64" => Ok(decode_base64(body)),
        "quoted-printable" => Ok(decode_quoted_printable(body)),
        _ => Err(UnknownEncoding(encoding)),
    }
}

/// The body of `part` for BINARY. A multipart or message/rfc822 keeps its structure with
/// every part below it decoded and relabelled `Content-Transfer-Encoding: binary`, as
/// Dovecot does.
pub(super) fn write_binary_body(
    raw: &[u8],
    added_crs: &[usize],
    part: &Part,
    out: &mut Vec<u8>,
) -> Result<(), UnknownEncoding> {
    let bytes = |range: Range<usize>| raw.get(range).unwrap_or_default();
    match &part.kind {
        Kind::Leaf
            if transfer_encoding(raw, &part.header)
                .is_some_and(|encoding| encoding.eq_ignore_ascii_case("binary")) =>
        {
            // RFC 3516: binary content comes back byte for byte, its bare LFs included.
            let mut pos = part.body.start;
            let first = added_crs.partition_point(|&at| at < part.body.start);
            for &at in added_crs
                .iter()
                .skip(first)
                .take_while(|&&at| at < part.body.end)
            {
                out.extend_from_slice(bytes(pos..at));
                pos = at + 1;
            }
            out.extend_from_slice(bytes(pos..part.body.end.max(pos)));
        }
        Kind::Leaf => {
            let body = bytes(part.body.clone());
            out.extend_from_slice(&decode_transfer(raw, part, body)?);
        }
        Kind::Multipart(children) => {
            let mut pos = part.body.start;
            for child in children {
                let start = child.header.range.start.max(pos);
                out.extend_from_slice(bytes(pos..start));
                pos = write_binary_entity(raw, added_crs, child, out)?.max(pos);
            }
            out.extend_from_slice(bytes(pos..part.body.end.max(pos)));
        }
        Kind::Message(inner) => {
            let pos = write_binary_entity(raw, added_crs, inner, out)?.max(part.body.start);
            out.extend_from_slice(bytes(pos..part.body.end.max(pos)));
        }
    }
    Ok(())
}

/// Header and BINARY body of `part`; returns where the part ends in `raw`.
pub(super) fn write_binary_entity(
    raw: &[u8],
    added_crs: &[usize],
    part: &Part,
    out: &mut Vec<u8>,
) -> Result<usize, UnknownEncoding> {
    let bytes = |range: Range<usize>| raw.get(range).unwrap_or_default();
    let header = &part.header;
    let decoded = matches!(part.kind, Kind::Leaf)
        && transfer_encoding(raw, header).is_some_and(|e| {
            e.eq_ignore_ascii_case("base64") || e.eq_ignore_ascii_case("quoted-printable")
        });
    if decoded {
        // Dovecot drops the old field and adds the new one after the last field.
        let fields_end = header
            .spans
            .iter()
            .map(|&(.., end)| end)
            .chain(header.junk.iter().map(|r| r.end))
            .max()
            .unwrap_or(header.range.start);
        let mut pos = header.range.start;
        for &(start, colon, end) in &header.spans {
            if trim(bytes(start..colon)).eq_ignore_ascii_case(b"content-transfer-encoding") {
                out.extend_from_slice(bytes(pos..start));
                pos = end;
            }
        }
        out.extend_from_slice(bytes(pos..fields_end.max(pos)));
        if out.last().is_some_and(|&b| b != b'\n') {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
        out.extend_from_slice(bytes(fields_end.max(pos)..header.range.end));
    } else {
        out.extend_from_slice(bytes(header.range.clone()));
    }
    let gap_start = header.range.end.min(part.body.start);
    out.extend_from_slice(bytes(gap_start..part.body.start));
    write_binary_body(raw, added_crs, part, out)?;
    Ok(part.body.end.max(header.range.end))
}

/// Lenient base64: characters outside the alphabet are skipped, decoding stops at `=`.
pub(super) fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &byte in input {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Quoted-printable: `=XX`, soft line breaks, trailing whitespace on lines dropped; invalid
/// escapes kept as written.
pub(super) fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|&b| b == b'\n') {
        let (content, ending): (&[u8], &[u8]) = if let Some(c) = line.strip_suffix(b"\r\n") {
            (c, b"\r\n")
        } else if let Some(c) = line.strip_suffix(b"\n") {
            (c, b"\n")
        } else {
            (line, b"")
        };
        let content_end = content
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let content = content.get(..content_end).unwrap_or_default();
        let mut i = 0;
        let mut soft_break = false;
        while let Some(&byte) = content.get(i) {
            if byte == b'=' {
                if i + 1 == content.len() {
                    soft_break = true;
                    break;
                }
                let high = content.get(i + 1).and_then(|&b| hex_value(b));
                let low = content.get(i + 2).and_then(|&b| hex_value(b));
                if let (Some(high), Some(low)) = (high, low) {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
            }
            out.push(byte);
            i += 1;
        }
        if !soft_break {
            out.extend_from_slice(ending);
        }
    }
    out
}

pub(super) fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Whether a text/* part (or, for TEXT, an embedded message's header) anywhere below `part`
/// contains `needle` (already lower-cased).
/// The decoded, lower-cased text of every text/* part under `part` and, `with_headers`, the
/// decoded header fields of the messages attached under it.
pub(super) fn collect_texts(raw: &[u8], part: &Part, with_headers: bool, out: &mut Vec<String>) {
    match &part.kind {
        Kind::Multipart(children) => {
            for child in children {
                collect_texts(raw, child, with_headers, out);
            }
        }
        Kind::Message(inner) => {
            if with_headers {
                out.extend(fields(raw, &inner.header).map(|f| decode_header_value(f.value)));
            }
            collect_texts(raw, inner, with_headers, out);
        }
        Kind::Leaf if part.content_type.kind == "text" => {
            let body = raw.get(part.body.clone()).unwrap_or_default();
            let decoded = decode_transfer(raw, part, body).unwrap_or_else(|_| body.to_vec());
            let text = match part
                .content_type
                .param("charset")
                .and_then(|c| mail_parser::decoders::charsets::map::charset_decoder(c))
            {
                Some(decoder) => decoder(&decoded),
                None => String::from_utf8_lossy(&decoded).into_owned(),
            };
            out.push(text.to_lowercase());
        }
        Kind::Leaf => {}
    }
}
