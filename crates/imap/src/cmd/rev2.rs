//! IMAP4rev2 (RFC 9051) next to IMAP4rev1, and UTF8=ACCEPT (RFC 6855).
//!
//! A session speaks rev1 until the client sends `ENABLE IMAP4rev2`; from then on these
//! answers differ, each checked against `Session::imap4rev2` where it is written (RFC 9051
//! Appendix E):
//! - no `\Recent` flag and no `RECENT` response: the session's recent list stays empty
//!   (`select.rs`, `Session::apply_snapshot`), and STATUS RECENT counts 0 (`mailbox.rs`);
//! - SEARCH without RETURN answers ESEARCH, as `RETURN (ALL)` would (`search.rs`);
//! - SELECT/EXAMINE of another mailbox says `[CLOSED]` first, as with QRESYNC, sends no
//!   `[UNSEEN n]`, and sends the mailbox's LIST (RFC 9051 6.3.2; `select.rs`,
//!   `mailbox.rs`'s `own_list_line`);
//! - every unsolicited FETCH carries the UID (`Session::apply_snapshot`);
//! - DELETE of a mailbox with children is `[HASCHILDREN]` (`mailbox.rs`);
//! - mailbox names are UTF-8 both ways, as after `ENABLE UTF8=ACCEPT` (below).
//!
//! Unchanged under rev2: LIST-EXTENDED and LIST-STATUS, which rev2 makes part of the base,
//! are served to every session; LSUB, CHECK and the RFC822.* FETCH items, which rev2
//! deprecates or drops, still answer (a rev2 client does not send them); LITERAL- is
//! covered by LITERAL+ (advertised): non-synchronizing literals of any size the limits
//! allow are taken, so the 4096 bytes LITERAL- promises are too, before login as well.
//!
//! Mailbox names stay modified UTF-7 inside the session and the store (the directory names
//! Dovecot uses): [`names_to_store`] turns the names of a command into that form before it
//! runs, and [`shown_name`] turns names back into UTF-8 where a response carries one
//! (`cmd/mailbox.rs`'s `client_name`, the one place names are shown).
//! LIST and LSUB patterns are not turned: names are matched in UTF-8, as the client wrote
//! the pattern.
//!
//! UTF-8 names are sent as quoted strings where the bytes allow it (`wire::mailbox`), not
//! literals. A name a CREATE or RENAME gives is made NFC (RFC 9051 5.1, Net-Unicode) and the
//! client told so by a LIST with `OLDNAME`; a SELECT by another form of a name finds the NFC
//! folder, and its LIST carries `OLDNAME` too. Folders already named otherwise (made by
//! another program) are found by their exact name first.
//!
//! After `ENABLE UTF8=ACCEPT` a SEARCH with CHARSET is refused (RFC 6855 3) and APPEND takes
//! the `UTF8 (~{n}...)` form.

use std::borrow::Cow;

use unicode_normalization::{UnicodeNormalization, is_nfc};

use crate::command::{Command, NotifyFilter};
use crate::session::Session;
use crate::utf7;

impl Session {
    /// Mailbox names are UTF-8 on the wire (IMAP4rev2 or UTF8=ACCEPT enabled).
    pub(crate) fn utf8_names(&self) -> bool {
        self.imap4rev2 || self.utf8_accept
    }
}

/// A modified UTF-7 name in UTF-8 when `utf8`; a name that does not decode (made by another
/// program) is shown as it is.
pub(crate) fn shown_name(name: &str, utf8: bool) -> Cow<'_, str> {
    if !utf8 || !name.contains('&') && name.is_ascii() {
        return Cow::Borrowed(name);
    }
    match utf7::decode(name) {
        Ok(decoded) => Cow::Owned(decoded),
        Err(_) => Cow::Borrowed(name),
    }
}

/// The Net-Unicode (NFC, RFC 5198) form of a store name (modified UTF-7), when it differs:
/// RFC 9051 5.1 wants new names normalized. `None` for a name already in NFC, or one that
/// does not decode.
pub(crate) fn nfc_name(name: &str) -> Option<String> {
    let decoded = utf7::decode(name).ok()?;
    if is_nfc(&decoded) {
        return None;
    }
    Some(utf7::encode(&decoded.nfc().collect::<String>()))
}

/// Turns the UTF-8 mailbox names of a command into modified UTF-7 (LIST and LSUB patterns
/// excepted, see the module comment).
pub(crate) fn names_to_store(command: &mut Command) {
    let name = match command {
        Command::Select(select) | Command::Examine(select) => &mut select.mailbox,
        Command::Create { mailbox, .. }
        | Command::Delete(mailbox)
        | Command::Subscribe(mailbox)
        | Command::Unsubscribe(mailbox)
        | Command::Status { mailbox, .. }
        | Command::Append { mailbox, .. }
        | Command::MultiAppend { mailbox, .. }
        | Command::Replace { mailbox, .. }
        | Command::GetQuotaRoot(mailbox)
        | Command::Copy { mailbox, .. }
        | Command::Move { mailbox, .. }
        | Command::SetAcl { mailbox, .. }
        | Command::DeleteAcl { mailbox, .. }
        | Command::GetAcl(mailbox)
        | Command::ListRights { mailbox, .. }
        | Command::MyRights(mailbox) => mailbox,
        Command::Rename { from, to } => {
            *from = utf7::encode(from);
            to
        }
        Command::Notify(Some(set)) => {
            for group in &mut set.groups {
                if let NotifyFilter::Subtree(names) | NotifyFilter::Mailboxes(names) =
                    &mut group.filter
                {
                    for name in names {
                        *name = utf7::encode(name);
                    }
                }
            }
            return;
        }
        _ => return,
    };
    *name = utf7::encode(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_to_utf7_and_back() {
        let mut command = Command::Rename {
            from: "Entwürfe".into(),
            to: "A&B/日本".into(),
        };
        names_to_store(&mut command);
        assert_eq!(
            command,
            Command::Rename {
                from: "Entw&APw-rfe".into(),
                to: "A&-B/&ZeVnLA-".into(),
            }
        );
        assert_eq!(shown_name("Entw&APw-rfe", true), "Entwürfe");
        assert_eq!(shown_name("Entw&APw-rfe", false), "Entw&APw-rfe");
        assert_eq!(shown_name("A&-B", true), "A&B");
        assert_eq!(shown_name("Bad&name", true), "Bad&name");
    }

    #[test]
    fn names_are_normalized_to_nfc() {
        // "Café" with a combining acute accent (NFD) becomes the precomposed é.
        let decomposed = utf7::encode("Cafe\u{301}");
        assert_eq!(nfc_name(&decomposed), Some(utf7::encode("Caf\u{e9}")));
        assert_eq!(nfc_name(&utf7::encode("Caf\u{e9}")), None);
        assert_eq!(nfc_name("INBOX"), None);
        assert_eq!(nfc_name("Bad&name"), None);
    }
}
