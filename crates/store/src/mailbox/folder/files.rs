//! Message files: the stored form, opening without following links, copying.

use super::*;

/// Creates `dir` with `cur/`, `new/`, `tmp/` if missing.
pub(crate) fn ensure_maildir(dir: &Path) -> Result<(), MailboxError> {
    maildir::ensure_maildir(dir).map_err(MailboxError::from)
}

/// RENAME INBOX: every message file of `from` goes into `to` (which gets new UIDs).
pub(crate) fn move_all_files(from: &Path, to: &Path) -> Result<(), MailboxError> {
    for sub in ["cur", "new"] {
        let source = from.join(sub);
        for name in names_in(&source)? {
            let target = to.join(sub).join(&name);
            match fs::rename(source.join(&name), &target) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(MailboxError::io(&target, err)),
            }
        }
    }
    Ok(())
}

/// CRLF to LF, as Dovecot stores with `mail_save_crlf = no`; returns (bytes, CRLF size).
pub(super) fn to_stored(message: &[u8]) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(message.len());
    let mut iter = message.iter().peekable();
    while let Some(&b) = iter.next() {
        if b == b'\r' && iter.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    let lines = out.iter().filter(|&&b| b == b'\n').count() as u64;
    let vsize = out.len() as u64 + lines;
    (out, vsize)
}

/// Opens a message file that is a regular file, never through a symbolic link: the file
/// opened must be the one `lstat` saw, so a link swapped in between is caught too.
pub(super) fn open_message_file(path: &Path) -> io::Result<File> {
    let seen = fs::symlink_metadata(path)?;
    let not_regular = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file (symbolic links are not followed)",
        )
    };
    if !seen.file_type().is_file() {
        return Err(not_regular());
    }
    let file = File::open(path)?;
    let opened = file.metadata()?;
    if (opened.dev(), opened.ino()) != (seen.dev(), seen.ino()) {
        return Err(not_regular());
    }
    Ok(file)
}

pub(super) fn read_message_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut open_message_file(path)?, &mut bytes)?;
    Ok(bytes)
}

/// The CRLF size of a stored file without `W=` in its name.
pub(super) fn count_vsize(path: &Path) -> Option<u64> {
    let bytes = read_message_file(path).ok()?;
    let lf = bytes.iter().filter(|&&b| b == b'\n').count();
    let crlf = bytes.windows(2).filter(|w| w == b"\r\n").count();
    Some((bytes.len() + lf - crlf) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_and_vsize() {
        let (stored, vsize) = to_stored(b"a\r\nb\r\n\r\nc");
        assert_eq!(stored, b"a\nb\n\nc");
        assert_eq!(vsize, 9);
        let (stored, vsize) = to_stored(b"bare\nlf\r");
        assert_eq!(stored, b"bare\nlf\r");
        assert_eq!(vsize, 9);
    }
}
