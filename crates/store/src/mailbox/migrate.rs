//! A one-time rename of folder directories that Mailstead before this version named with
//! its modified UTF-7 name encoded a second time (`Entw&APw-rfe` as `Entw&-APw-rfe`, `x&-y`
//! as `x&--y`), so they become the directories Dovecot uses for the same names.
//!
//! A level is renamed when decoding it once gives a different, valid modified UTF-7 name:
//! what the double encoding made. A directory Dovecot made decodes to non-ASCII
//! (`Entw&APw-rfe`) or to something that is not modified UTF-7 (`A&-B` gives `A&B`), and is
//! left alone. An existing directory is never replaced.

use std::fs;
use std::path::Path;

use super::{DEFAULTS_MARKER, FolderLayout, MailboxError, write_atomic};
use crate::maildir;

/// Written once the account's directories are checked.
const MARKER: &str = "mailstead-names";

pub(super) fn run_once(root: &Path, layout: FolderLayout) -> Result<(), MailboxError> {
    let marker = root.join(MARKER);
    if marker.exists() {
        return Ok(());
    }
    // Only an account an earlier Mailstead opened can hold such names.
    if root.join(DEFAULTS_MARKER).exists() {
        let plus_plus = layout == FolderLayout::MaildirPlusPlus;
        let mut found = maildir::folder_dirs(root, plus_plus, !plus_plus)
            .map_err(|err| MailboxError::io(root, err))?;
        // Deepest first: renaming a LAYOUT=fs parent would move its children's paths.
        found.sort_by_key(|(levels, _)| std::cmp::Reverse(levels.len()));
        for (levels, dir) in found {
            let Some(last) = levels.last() else { continue };
            let new_name = if plus_plus {
                let renamed: Vec<String> = last
                    .split('.')
                    .map(|level| undouble(level).unwrap_or_else(|| level.to_owned()))
                    .collect();
                format!(".{}", renamed.join("."))
            } else {
                match undouble(last) {
                    Some(level) => level,
                    None => continue,
                }
            };
            let target = dir.with_file_name(&new_name);
            if target == dir || fs::symlink_metadata(&target).is_ok() {
                continue;
            }
            if let Err(err) = fs::rename(&dir, &target) {
                return Err(MailboxError::io(&dir, err));
            }
        }
    }
    write_atomic(&marker, b"1\n")
}

/// The level's name before the second encoding, when it was encoded twice.
fn undouble(level: &str) -> Option<String> {
    if !level.contains('&') {
        return None;
    }
    let once = mutf7_decode(level)?;
    (once != level && once.is_ascii() && mutf7_decode(&once).is_some()).then_some(once)
}

/// Decodes modified UTF-7; `None` when it is not valid (the name is then shown as it is).
pub(crate) fn mutf7_decode(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(pos) = rest.find('&') {
        out.push_str(rest.get(..pos)?);
        let after = rest.get(pos + 1..)?;
        let end = after.find('-')?;
        let encoded = after.get(..end)?;
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = base64_modified_decode(encoded)?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = after.get(end + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn base64_modified_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let value = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_double_encodings_are_undone() {
        assert_eq!(undouble("Entw&-APw-rfe").as_deref(), Some("Entw&APw-rfe"));
        assert_eq!(undouble("x&--y").as_deref(), Some("x&-y"));
        // As Dovecot names them.
        assert_eq!(undouble("Entw&APw-rfe"), None);
        assert_eq!(undouble("A&-B"), None);
        assert_eq!(undouble("plain"), None);
    }
}
