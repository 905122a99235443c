//! Message files: reading them without following links, moving them (RENAME INBOX).

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

pub(super) use crate::maildir::open_message_file;

pub(super) fn read_message_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut open_message_file(path)?, &mut bytes)?;
    Ok(bytes)
}

/// The CRLF size of a stored file without `W=` in its name, by the store's one size rule.
pub(super) fn count_vsize(path: &Path) -> io::Result<u64> {
    let bytes = read_message_file(path)?;
    Ok(crate::form::Sizes::of_stored(&bytes).vsize())
}
