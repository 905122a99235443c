//! Access control lists (RFC 4314) in Dovecot's `vfile` format, so ACL files written for
//! Dovecot's `acl` plugin keep their meaning.
//!
//! # Files
//!
//! - `dovecot-acl` in a folder's Maildir directory: one `IDENTIFIER RIGHTS` per line, a
//!   negative entry as `-IDENTIFIER RIGHTS`; `#` starts a comment. SETACL and DELETEACL
//!   rewrite it whole (temporary file, fsync, rename).
//! - A global ACL path (Dovecot's `acl = vfile:PATH`): a directory holds one file per
//!   mailbox, named by the mailbox name (`PATH/.DEFAULT` inside a directory of that name
//!   when the name is a directory); a plain file holds `MAILBOX-PATTERN IDENTIFIER RIGHTS`
//!   lines (`*` and `?` wildcards), as Dovecot 2.2.11+ reads it.
//!
//! # Evaluation (as Dovecot's `acl_object_rebuild_cache`)
//!
//! Entries are sorted: the folder's own first, then the global ones (directory or file
//! alike); within each, by
//! identifier type in the order `anyone`, `authenticated`, `group`, `owner`, `user`,
//! `group-override`. Entries naming the same identifier are merged. Walking that order, each
//! entry that applies to the user replaces the rights so far when its type (or its
//! local/global side) differs from the previous applying entry, and adds to them when it is
//! another group (or group-override) of the same type. Positive and negative rights are
//! kept apart; an entry with only negative rights leaves the positive ones as they are, and
//! the reverse. The first global entry clears the negative rights the folder's file gave,
//! so a folder's file cannot take away what the administrator granted. The result is the
//! positive rights minus the negative ones.
//!
//! The owner of a private folder starts with every right and skips the folder's `anyone`,
//! `authenticated` and `group` entries (global ones still apply). With no entry at all the
//! owner has every right and anyone else none, so a public folder without an ACL gives
//! nobody anything.
//!
//! The global ACLs therefore win over the folder's file wherever one of their entries applies
//! to the user: they are applied last (`tests/acl_files.rs` checks this against Dovecot 2.3).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The per-folder ACL file's name, as Dovecot names it.
pub const ACL_FILE: &str = "dovecot-acl";

/// ACL files larger than this are refused rather than read (Dovecot has no limit; a real
/// one is a few hundred bytes).
const MAX_ACL_FILE_BYTES: u64 = 1 << 20;

/// The most entries SETACL may leave in one folder's file.
pub const MAX_ACL_ENTRIES: usize = 1000;

/// The longest identifier SETACL accepts, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 512;

/// A set of RFC 4314 rights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights(u16);

/// The rights in the order Dovecot writes them, with their letters.
const LETTERS: [(char, Rights); 11] = [
    ('l', Rights::LOOKUP),
    ('r', Rights::READ),
    ('w', Rights::WRITE),
    ('s', Rights::WRITE_SEEN),
    ('t', Rights::WRITE_DELETED),
    ('i', Rights::INSERT),
    ('p', Rights::POST),
    ('e', Rights::EXPUNGE),
    ('k', Rights::CREATE),
    ('x', Rights::DELETE),
    ('a', Rights::ADMIN),
];

impl Rights {
    /// `l`: the folder is visible to LIST and LSUB.
    pub const LOOKUP: Rights = Rights(1);
    /// `r`: SELECT, EXAMINE, STATUS, FETCH, SEARCH, COPY from.
    pub const READ: Rights = Rights(1 << 1);
    /// `w`: flags other than `\Seen` and `\Deleted` are kept.
    pub const WRITE: Rights = Rights(1 << 2);
    /// `s`: `\Seen` is kept.
    pub const WRITE_SEEN: Rights = Rights(1 << 3);
    /// `t`: `\Deleted` is kept.
    pub const WRITE_DELETED: Rights = Rights(1 << 4);
    /// `i`: APPEND, COPY and MOVE into the folder.
    pub const INSERT: Rights = Rights(1 << 5);
    /// `p`: mail may be submitted to the folder (Sieve, `+folder` addresses).
    pub const POST: Rights = Rights(1 << 6);
    /// `e`: EXPUNGE.
    pub const EXPUNGE: Rights = Rights(1 << 7);
    /// `k`: CREATE below the folder, RENAME to below it.
    pub const CREATE: Rights = Rights(1 << 8);
    /// `x`: DELETE, RENAME from.
    pub const DELETE: Rights = Rights(1 << 9);
    /// `a`: SETACL, DELETEACL, GETACL, LISTRIGHTS.
    pub const ADMIN: Rights = Rights(1 << 10);
    /// Every right.
    pub const ALL: Rights = Rights((1 << 11) - 1);

    /// The RFC 2086 `c` right (RFC 4314 section 2.1.1): create and delete folders.
    pub const OBSOLETE_CREATE: Rights = Rights(Rights::CREATE.0 | Rights::DELETE.0);
    /// The RFC 2086 `d` right: `\Deleted` and EXPUNGE.
    pub const OBSOLETE_DELETE: Rights = Rights(Rights::WRITE_DELETED.0 | Rights::EXPUNGE.0);

    pub const fn empty() -> Rights {
        Rights(0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether any of `other`'s rights is here.
    pub fn intersects(self, other: Rights) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// Rights as an IMAP client writes them (RFC 4314 `rights`): the letters above, and the
    /// obsolete `c` and `d`, which stand for their members. Order and repeats do not matter.
    ///
    /// # Errors
    ///
    /// The first letter that is not a right.
    pub fn parse_imap(letters: &str) -> Result<Rights, char> {
        let mut rights = Rights::empty();
        for letter in letters.chars() {
            rights = rights.union(match letter {
                'c' => Rights::OBSOLETE_CREATE,
                'd' => Rights::OBSOLETE_DELETE,
                _ => match LETTERS.iter().find(|(l, _)| *l == letter) {
                    Some((_, right)) => *right,
                    None => return Err(letter),
                },
            });
        }
        Ok(rights)
    }

    /// Rights as an IMAP response shows them: the letters, then `c` and `d` when any of
    /// their members is there (RFC 4314 section 2.1.1 asks servers to add them).
    pub fn to_imap(self) -> String {
        let mut out = self.to_string();
        if self.intersects(Rights::OBSOLETE_CREATE) {
            out.push('c');
        }
        if self.intersects(Rights::OBSOLETE_DELETE) {
            out.push('d');
        }
        out
    }

    /// Rights as a `dovecot-acl` line holds them: letters, then optionally `:` and named
    /// rights (Dovecot's own extension; names are accepted and ignored here).
    fn parse_vfile(text: &str) -> Result<Rights, AclError> {
        let letters = text.split_once(':').map_or(text, |(letters, _)| letters);
        let mut rights = Rights::empty();
        for letter in letters.chars().filter(|c| *c != ' ') {
            match LETTERS.iter().find(|(l, _)| *l == letter) {
                Some((_, right)) => rights = rights.union(*right),
                None => return Err(AclError::Syntax(format!("unknown ACL right '{letter}'"))),
            }
        }
        Ok(rights)
    }
}

impl fmt::Display for Rights {
    /// The letters in Dovecot's order (`lrwstipekxa`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (letter, right) in LETTERS {
            if self.contains(right) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// Who an ACL entry is for. The declaration order is Dovecot's evaluation order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identifier {
    Anyone,
    Authenticated,
    Group(String),
    Owner,
    User(String),
    /// A group whose rights override the user's own entry.
    GroupOverride(String),
}

impl Identifier {
    /// Parses the `vfile` form: `anyone` (or `anonymous`), `authenticated`, `owner`,
    /// `user=NAME`, `group=NAME`, `group-override=NAME`.
    pub fn parse_vfile(text: &str) -> Option<Identifier> {
        match text {
            "anyone" | "anonymous" => return Some(Identifier::Anyone),
            "authenticated" => return Some(Identifier::Authenticated),
            "owner" => return Some(Identifier::Owner),
            _ => {}
        }
        let (kind, name) = text.split_once('=')?;
        if name.is_empty() {
            return None;
        }
        let name = name.to_owned();
        match kind {
            "user" => Some(Identifier::User(name)),
            "group" => Some(Identifier::Group(name)),
            "group-override" => Some(Identifier::GroupOverride(name)),
            _ => None,
        }
    }

    /// Parses the IMAP form (as Dovecot's `imap_acl` reads it): `anyone`, `authenticated`,
    /// `owner`, `$GROUP`, `!$GROUP` (group-override), else a user name. Spaces, quotes and
    /// control characters are refused: a `vfile` line could not hold them unquoted.
    pub fn parse_imap(text: &str) -> Option<Identifier> {
        if text.is_empty()
            || text.len() > MAX_IDENTIFIER_BYTES
            || text.chars().any(|c| c.is_control() || c == ' ' || c == '"')
        {
            return None;
        }
        Some(match text {
            "anyone" => Identifier::Anyone,
            "authenticated" => Identifier::Authenticated,
            "owner" => Identifier::Owner,
            _ => {
                if let Some(group) = text.strip_prefix("!$") {
                    Identifier::GroupOverride(non_empty(group)?)
                } else if let Some(group) = text.strip_prefix('$') {
                    Identifier::Group(non_empty(group)?)
                } else {
                    Identifier::User(text.to_owned())
                }
            }
        })
    }

    /// The IMAP form, for GETACL.
    pub fn to_imap(&self) -> String {
        match self {
            Identifier::Anyone => "anyone".to_owned(),
            Identifier::Authenticated => "authenticated".to_owned(),
            Identifier::Owner => "owner".to_owned(),
            Identifier::User(name) => name.clone(),
            Identifier::Group(name) => format!("${name}"),
            Identifier::GroupOverride(name) => format!("!${name}"),
        }
    }

    fn applies_to(&self, who: &Requester<'_>) -> bool {
        match self {
            Identifier::Anyone | Identifier::Authenticated => true,
            Identifier::Owner => who.is_owner,
            Identifier::User(name) => name == who.user,
            Identifier::Group(name) | Identifier::GroupOverride(name) => {
                who.groups.iter().any(|group| group == name)
            }
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Identifier::Anyone => 0,
            Identifier::Authenticated => 1,
            Identifier::Group(_) => 2,
            Identifier::Owner => 3,
            Identifier::User(_) => 4,
            Identifier::GroupOverride(_) => 5,
        }
    }
}

fn non_empty(name: &str) -> Option<String> {
    (!name.is_empty()).then(|| name.to_owned())
}

impl fmt::Display for Identifier {
    /// The `vfile` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identifier::Anyone => f.write_str("anyone"),
            Identifier::Authenticated => f.write_str("authenticated"),
            Identifier::Owner => f.write_str("owner"),
            Identifier::User(name) => write!(f, "user={name}"),
            Identifier::Group(name) => write!(f, "group={name}"),
            Identifier::GroupOverride(name) => write!(f, "group-override={name}"),
        }
    }
}

/// One identifier's rights in one file: positive, negative, or both (a file may hold both
/// `user=x lr` and `-user=x w`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclEntry {
    pub identifier: Identifier,
    /// `None`: the file has no positive line for this identifier.
    pub rights: Option<Rights>,
    /// `None`: the file has no negative line for this identifier.
    pub negative: Option<Rights>,
}

/// Who asks for their rights.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    /// The login name, as `user=` entries name it (`alice@example.org`).
    pub user: &'a str,
    /// The user's ACL groups (Dovecot's `acl_groups`).
    pub groups: &'a [String],
    /// Whether the folder is the user's own (private namespace).
    pub is_owner: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("ACL syntax: {0}")]
    Syntax(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: ACL file larger than 1 MiB", path.display())]
    TooLarge { path: PathBuf },
    #[error("too many ACL entries")]
    TooManyEntries,
}

/// Parses a `dovecot-acl` file. Entries for the same identifier are merged.
///
/// # Errors
///
/// `Syntax` naming the first bad line, as Dovecot refuses the whole file.
pub fn parse_acl_file(text: &str) -> Result<Vec<AclEntry>, AclError> {
    let mut entries: Vec<AclEntry> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (identifier, negative, rights) =
            parse_line(line).map_err(|err| AclError::Syntax(format!("line {}: {err}", n + 1)))?;
        merge_entry(&mut entries, identifier, negative, rights);
    }
    Ok(entries)
}

/// `IDENTIFIER RIGHTS`, `-IDENTIFIER RIGHTS`, or a quoted identifier.
fn parse_line(line: &str) -> Result<(Identifier, bool, Rights), String> {
    let (id, rest) = match line.strip_prefix('"') {
        Some(quoted) => {
            let (id, rest) = unquote(quoted).ok_or("invalid quoted identifier")?;
            (id, rest.strip_prefix(' ').unwrap_or(rest))
        }
        None => match line.split_once(' ') {
            Some((id, rest)) => (id.to_owned(), rest),
            None => (line.to_owned(), ""),
        },
    };
    let (negative, id) = match id.strip_prefix('-') {
        Some(id) => (true, id),
        None => (false, id.as_str()),
    };
    let identifier = Identifier::parse_vfile(id).ok_or_else(|| format!("unknown ID '{id}'"))?;
    let rights = Rights::parse_vfile(rest).map_err(|err| err.to_string())?;
    Ok((identifier, negative, rights))
}

/// The rest of a `"..."` string with `\` escapes, and what follows the closing quote.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            _ => out.push(c),
        }
    }
    None
}

fn merge_entry(
    entries: &mut Vec<AclEntry>,
    identifier: Identifier,
    negative: bool,
    rights: Rights,
) {
    let entry = match entries.iter_mut().find(|e| e.identifier == identifier) {
        Some(entry) => entry,
        None => {
            entries.push(AclEntry {
                identifier,
                rights: None,
                negative: None,
            });
            let last = entries.len() - 1;
            &mut entries[last]
        }
    };
    let slot = if negative {
        &mut entry.negative
    } else {
        &mut entry.rights
    };
    *slot = Some(slot.unwrap_or_default().union(rights));
}

/// Writes entries as a `dovecot-acl` file (positive line, then negative line).
pub fn write_acl_file(entries: &[AclEntry]) -> String {
    let mut out = String::new();
    for entry in entries {
        if let Some(rights) = entry.rights {
            out.push_str(&format!("{} {rights}\n", entry.identifier));
        }
        if let Some(negative) = entry.negative {
            out.push_str(&format!("-{} {negative}\n", entry.identifier));
        }
    }
    out
}

/// One line of a global ACL file: a mailbox pattern and an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalAclLine {
    pub pattern: String,
    pub identifier: Identifier,
    pub negative: bool,
    pub rights: Rights,
}

/// Parses a global ACL file (`MAILBOX-PATTERN IDENTIFIER RIGHTS` per line; the pattern may
/// be quoted).
///
/// # Errors
///
/// `Syntax` naming the first bad line.
pub fn parse_global_file(text: &str) -> Result<Vec<GlobalAclLine>, AclError> {
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let syntax = |err: String| AclError::Syntax(format!("line {}: {err}", n + 1));
        let (pattern, rest) = match line.strip_prefix('"') {
            Some(quoted) => {
                let (pattern, rest) =
                    unquote(quoted).ok_or_else(|| syntax("missing '\"'".to_owned()))?;
                let rest = rest
                    .strip_prefix(' ')
                    .ok_or_else(|| syntax("expecting space after '\"'".to_owned()))?;
                (pattern, rest)
            }
            None => match line.split_once(' ') {
                Some(("", _)) => return Err(syntax("empty ACL pattern".to_owned())),
                Some((pattern, rest)) => (pattern.to_owned(), rest),
                None => return Err(syntax("missing ACL rights".to_owned())),
            },
        };
        let (identifier, negative, rights) = parse_line(rest).map_err(syntax)?;
        lines.push(GlobalAclLine {
            pattern,
            identifier,
            negative,
            rights,
        });
    }
    Ok(lines)
}

/// `*` matches any run of characters, `?` one character (Dovecot's `wildcard_match`).
pub fn wildcard_match(name: &str, pattern: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never recursive.
    let (mut n, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            n += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// The entries of a global ACL file for one mailbox name.
pub fn global_entries_for(lines: &[GlobalAclLine], mailbox: &str) -> Vec<AclEntry> {
    let mut entries = Vec::new();
    for line in lines.iter().filter(|l| wildcard_match(mailbox, &l.pattern)) {
        merge_entry(
            &mut entries,
            line.identifier.clone(),
            line.negative,
            line.rights,
        );
    }
    entries
}

/// The rights `who` has, from the folder's entries (`local`) and the global ones
/// (`global`), evaluated as Dovecot does (see the
/// module documentation).
pub fn evaluate(local: &[AclEntry], global: &[AclEntry], who: &Requester<'_>) -> Rights {
    let mut all: Vec<(bool, &AclEntry)> = local
        .iter()
        .map(|e| (false, e))
        .chain(global.iter().map(|e| (true, e)))
        .collect();
    all.sort_by(|(g1, e1), (g2, e2)| (g1, &e1.identifier).cmp(&(g2, &e2.identifier)));

    // Dovecot's default for a folder without entries: the owner has everything.
    let mut positive = if who.is_owner {
        Rights::ALL
    } else {
        Rights::empty()
    };
    let mut negative = Rights::empty();
    let mut start = 0;
    if who.is_owner {
        // The owner skips the folder's anyone/authenticated/group entries.
        start = all
            .iter()
            .position(|(global, e)| *global || e.identifier.kind() >= Identifier::Owner.kind())
            .unwrap_or(all.len());
    }
    let mut previous: Option<(bool, u8)> = None;
    let mut first_global = true;
    for (global, entry) in &all[start..] {
        if !entry.identifier.applies_to(who) {
            continue;
        }
        let kind = (*global, entry.identifier.kind());
        let replace = previous != Some(kind);
        previous = Some(kind);
        if let Some(rights) = entry.rights {
            positive = if replace {
                rights
            } else {
                positive.union(rights)
            };
        }
        if *global && first_global {
            first_global = false;
            negative = entry.negative.unwrap_or_default();
        } else if let Some(rights) = entry.negative {
            negative = if replace {
                rights
            } else {
                negative.union(rights)
            };
        }
    }
    positive.without(negative)
}

/// Where the global ACLs are (`acl = vfile:PATH` in Dovecot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobalAcl {
    /// One file per mailbox name. `%d` in the path is the user's domain.
    Directory(String),
    /// One file of `MAILBOX-PATTERN IDENTIFIER RIGHTS` lines.
    File(PathBuf),
}

impl GlobalAcl {
    /// Reads Dovecot's setting value: `vfile:PATH[:cache_secs=N]` or a bare path. A path
    /// that is a plain file is a global file; anything else (a directory, a path with
    /// `%d`, a path that does not exist yet) a directory, as Dovecot decides at start-up.
    pub fn from_setting(value: &str) -> Option<GlobalAcl> {
        if value == "vfile" {
            return None;
        }
        let value = value.strip_prefix("vfile:").unwrap_or(value);
        let path = value.split(':').next().unwrap_or_default();
        if path.is_empty() {
            return None;
        }
        if !path.contains('%') && fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return Some(GlobalAcl::File(PathBuf::from(path)));
        }
        Some(GlobalAcl::Directory(path.to_owned()))
    }

    /// The global entries for `mailbox` of a user in `domain`.
    ///
    /// # Errors
    ///
    /// `Io` or `Syntax`: the caller refuses access (Dovecot fails the lookup too).
    pub fn entries(
        &self,
        cache: &AclCache,
        mailbox: &str,
        domain: &str,
    ) -> Result<Vec<AclEntry>, AclError> {
        match self {
            GlobalAcl::File(path) => {
                let lines = cache.global_file(path)?;
                Ok(global_entries_for(&lines, mailbox))
            }
            GlobalAcl::Directory(template) => {
                // The mailbox name reaches a path: it has been through the store's name
                // check, and `..` levels are refused again here.
                if mailbox
                    .split('/')
                    .any(|level| level == ".." || level == "." || level.is_empty())
                {
                    return Ok(Vec::new());
                }
                let dir = PathBuf::from(template.replace("%d", domain));
                let mut path = dir.join(mailbox);
                if path.is_dir() {
                    path = path.join(".DEFAULT");
                }
                cache.acl_file(&path)
            }
        }
    }
}

/// Parsed ACL files, re-read when their modification time or size changes (a `stat` per
/// lookup instead of Dovecot's `cache_secs`, so a SETACL is seen at once by every session).
#[derive(Debug, Default)]
pub struct AclCache {
    files: Mutex<std::collections::HashMap<PathBuf, Cached<Vec<AclEntry>>>>,
    globals: Mutex<std::collections::HashMap<PathBuf, Cached<Vec<GlobalAclLine>>>>,
}

#[derive(Debug, Clone)]
struct Cached<T> {
    stamp: (SystemTime, u64),
    value: std::sync::Arc<T>,
}

/// The most files the cache keeps before it starts over.
const MAX_CACHED_FILES: usize = 10_000;

impl AclCache {
    /// The entries of a `dovecot-acl` file; none when it does not exist.
    ///
    /// # Errors
    ///
    /// `Io`, `TooLarge`, `Syntax`.
    pub fn acl_file(&self, path: &Path) -> Result<Vec<AclEntry>, AclError> {
        match self.cached(&self.files, path, parse_acl_file)? {
            Some(entries) => Ok((*entries).clone()),
            None => Ok(Vec::new()),
        }
    }

    fn global_file(&self, path: &Path) -> Result<std::sync::Arc<Vec<GlobalAclLine>>, AclError> {
        Ok(self
            .cached(&self.globals, path, parse_global_file)?
            .unwrap_or_default())
    }

    fn cached<T>(
        &self,
        map: &Mutex<std::collections::HashMap<PathBuf, Cached<T>>>,
        path: &Path,
        parse: fn(&str) -> Result<T, AclError>,
    ) -> Result<Option<std::sync::Arc<T>>, AclError> {
        let io_err = |source| AclError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) if err.raw_os_error() == Some(20) => return Ok(None), // ENOTDIR
            Err(err) => return Err(io_err(err)),
        };
        if meta.len() > MAX_ACL_FILE_BYTES {
            return Err(AclError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let stamp = (meta.modified().map_err(io_err)?, meta.len());
        if let Some(hit) = crate::mailbox::lock(map).get(path)
            && hit.stamp == stamp
        {
            return Ok(Some(std::sync::Arc::clone(&hit.value)));
        }
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_err(err)),
        };
        let value = std::sync::Arc::new(parse(&text)?);
        let mut map = crate::mailbox::lock(map);
        if map.len() >= MAX_CACHED_FILES {
            map.clear();
        }
        map.insert(
            path.to_path_buf(),
            Cached {
                stamp,
                value: std::sync::Arc::clone(&value),
            },
        );
        Ok(Some(value))
    }
}

/// The ACL configuration and its cache: what a server holds to answer "which rights does
/// this user have on this folder?".
#[derive(Debug, Default)]
pub struct Acls {
    global: Option<GlobalAcl>,
    cache: AclCache,
}

impl Acls {
    pub fn new(global: Option<GlobalAcl>) -> Acls {
        Acls {
            global,
            cache: AclCache::default(),
        }
    }

    /// The entries of the folder's own `dovecot-acl`.
    ///
    /// # Errors
    ///
    /// `Io`, `TooLarge`, `Syntax`.
    pub fn folder_entries(&self, folder_dir: &Path) -> Result<Vec<AclEntry>, AclError> {
        self.cache.acl_file(&folder_dir.join(ACL_FILE))
    }

    /// The rights of `who` on the folder `mailbox` (its name for the global ACLs) kept in
    /// `folder_dir`, for a user of `domain` (`%d` of a global directory).
    ///
    /// # Errors
    ///
    /// `Io`, `TooLarge`, `Syntax`: the caller should grant nothing, as Dovecot does.
    pub fn rights(
        &self,
        folder_dir: &Path,
        mailbox: &str,
        domain: &str,
        who: &Requester<'_>,
    ) -> Result<Rights, AclError> {
        let local = self.folder_entries(folder_dir)?;
        let global = match &self.global {
            Some(global) => global.entries(&self.cache, mailbox, domain)?,
            None => Vec::new(),
        };
        Ok(evaluate(&local, &global, who))
    }
}

/// Changes one identifier's positive rights in the folder's `dovecot-acl` (`negative`: its
/// `-identifier` line instead): `change` gets the rights there now and returns the new ones
/// (`None` removes the line). The file is rewritten atomically; a file left empty is
/// removed. Returns the entries now in the file.
///
/// # Errors
///
/// `Io`, `Syntax` (the file there cannot be read), `TooManyEntries`.
pub fn modify_acl_file(
    folder_dir: &Path,
    identifier: &Identifier,
    negative: bool,
    change: impl FnOnce(Option<Rights>) -> Option<Rights>,
) -> Result<Vec<AclEntry>, AclError> {
    let path = folder_dir.join(ACL_FILE);
    let mut entries = match fs::read_to_string(&path) {
        Ok(text) => parse_acl_file(&text)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(AclError::Io { path, source }),
    };
    let position = entries.iter().position(|e| &e.identifier == identifier);
    let current = position.and_then(|i| {
        if negative {
            entries[i].negative
        } else {
            entries[i].rights
        }
    });
    let new = change(current);
    if new == current {
        return Ok(entries);
    }
    match position {
        Some(i) if negative => entries[i].negative = new,
        Some(i) => entries[i].rights = new,
        None => {
            if entries.len() >= MAX_ACL_ENTRIES {
                return Err(AclError::TooManyEntries);
            }
            entries.push(AclEntry {
                identifier: identifier.clone(),
                rights: if negative { None } else { new },
                negative: if negative { new } else { None },
            });
        }
    }
    entries.retain(|e| e.rights.is_some() || e.negative.is_some());
    let io_err = |path: &Path, source| AclError::Io {
        path: path.to_path_buf(),
        source,
    };
    if entries.is_empty() {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(io_err(&path, source)),
        }
        crate::sync_dir(folder_dir).map_err(|source| io_err(folder_dir, source))?;
        return Ok(entries);
    }
    crate::mailbox::write_atomic(&path, write_acl_file(&entries).as_bytes())
        .map_err(|err| io_err(&path, io::Error::other(err.to_string())))?;
    Ok(entries)
}

/// Which users have given whom the `l` right on some folder: what LIST `Shared/%` shows
/// without reading every account's ACL files (Dovecot keeps a dictionary for this too).
/// One file per grantee (a login, or `anyone` for `anyone` and `authenticated`) in `dir`,
/// one owner per line; SETACL adds to it. Entries are hints: a listing still checks the
/// owner's ACLs, so an owner who took the right back is simply not shown.
#[derive(Debug)]
pub struct SharedIndex {
    dir: PathBuf,
    /// Serialises this process's read-modify-write of one grantee's file.
    lock: Mutex<()>,
}

/// The grantee file of `anyone` and `authenticated`.
const ANYONE: &str = "anyone";

/// The most owners one grantee's file lists.
const MAX_SHARED_OWNERS: usize = 10_000;

impl SharedIndex {
    pub fn new(dir: PathBuf) -> SharedIndex {
        SharedIndex {
            dir,
            lock: Mutex::new(()),
        }
    }

    /// Notes that `owner` gave `identifier` the `l` right on some folder.
    ///
    /// # Errors
    ///
    /// `Io`.
    pub fn add(&self, identifier: &Identifier, owner: &str) -> Result<(), AclError> {
        let grantee = match identifier {
            Identifier::User(user) => user.as_str(),
            Identifier::Anyone | Identifier::Authenticated => ANYONE,
            // Groups are not known here; their members find the owner through `anyone`'s
            // file, and the listing checks the ACLs.
            Identifier::Group(_) | Identifier::GroupOverride(_) => ANYONE,
            Identifier::Owner => return Ok(()),
        };
        let _guard = crate::mailbox::lock(&self.lock);
        let path = self.dir.join(file_name(grantee));
        let mut owners = self.read(&path)?;
        if owners.iter().any(|o| o == owner) || owners.len() >= MAX_SHARED_OWNERS {
            return Ok(());
        }
        owners.push(owner.to_owned());
        let io_err = |source| AclError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(io_err)?;
        let mut text = owners.join("\n");
        text.push('\n');
        crate::mailbox::write_atomic(&path, text.as_bytes())
            .map_err(|err| io_err(io::Error::other(err.to_string())))
    }

    /// Notes every identifier given `l` by the `dovecot-acl` files of `owner`'s folders (in
    /// `folder_dirs`): ACL files written by hand or by Dovecot make the owner show in LIST
    /// too, once this has run (at start-up). Returns how many grants were noted.
    ///
    /// # Errors
    ///
    /// `Io` when the index cannot be written; an unreadable ACL file is skipped.
    pub fn record_owner(
        &self,
        owner: &str,
        folder_dirs: impl IntoIterator<Item = PathBuf>,
    ) -> Result<usize, AclError> {
        let mut noted = 0;
        for dir in folder_dirs {
            let Ok(text) = fs::read_to_string(dir.join(ACL_FILE)) else {
                continue;
            };
            let Ok(entries) = parse_acl_file(&text) else {
                continue;
            };
            for entry in entries {
                if entry.rights.is_some_and(|r| r.contains(Rights::LOOKUP)) {
                    self.add(&entry.identifier, owner)?;
                    noted += 1;
                }
            }
        }
        Ok(noted)
    }

    /// The owners who may have shared a folder with `user`.
    ///
    /// # Errors
    ///
    /// `Io`.
    pub fn owners_for(&self, user: &str) -> Result<Vec<String>, AclError> {
        let mut owners = self.read(&self.dir.join(file_name(user)))?;
        for owner in self.read(&self.dir.join(file_name(ANYONE)))? {
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
        owners.retain(|owner| owner != user);
        owners.sort();
        Ok(owners)
    }

    fn read(&self, path: &Path) -> Result<Vec<String>, AclError> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(AclError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// A grantee as a file name: letters, digits and `@._-` kept, anything else `%XX`, so no
/// name can climb out of the directory or hide as a dot file.
fn file_name(grantee: &str) -> String {
    let mut out = String::new();
    for (i, byte) in grantee.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'@' | b'_' | b'-')
            || (byte == b'.' && i > 0);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn who<'a>(user: &'a str, groups: &'a [String], is_owner: bool) -> Requester<'a> {
        Requester {
            user,
            groups,
            is_owner,
        }
    }

    #[test]
    fn rights_parse_and_format() {
        let rights = Rights::parse_imap("rl").unwrap();
        assert_eq!(rights.to_string(), "lr");
        assert_eq!(Rights::parse_imap("c").unwrap().to_string(), "kx");
        assert_eq!(Rights::parse_imap("d").unwrap().to_string(), "te");
        assert_eq!(Rights::parse_imap("lrz"), Err('z'));
        assert_eq!(Rights::ALL.to_string(), "lrwstipekxa");
        assert_eq!(Rights::ALL.to_imap(), "lrwstipekxacd");
        assert_eq!(Rights::parse_imap("lrs").unwrap().to_imap(), "lrs");
    }

    #[test]
    fn identifiers_round_trip() {
        for text in [
            "anyone",
            "authenticated",
            "owner",
            "user=a@b",
            "group=G",
            "group-override=G",
        ] {
            assert_eq!(Identifier::parse_vfile(text).unwrap().to_string(), text);
        }
        assert_eq!(Identifier::parse_vfile("user="), None);
        assert_eq!(Identifier::parse_vfile("robot=x"), None);
        assert_eq!(
            Identifier::parse_imap("$Admins"),
            Some(Identifier::Group("Admins".into()))
        );
        assert_eq!(
            Identifier::parse_imap("!$Admins"),
            Some(Identifier::GroupOverride("Admins".into()))
        );
        assert_eq!(Identifier::parse_imap("$"), None);
        assert_eq!(Identifier::parse_imap("two words"), None);
        assert_eq!(Identifier::parse_imap("line\nbreak"), None);
    }

    #[test]
    fn file_parses_merges_and_refuses_bad_lines() {
        let entries =
            parse_acl_file("# comment\nuser=a lr\n-user=a w\nuser=a s\n\"anyone\" l\n").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].rights.unwrap().to_string(), "lrs");
        assert_eq!(entries[0].negative.unwrap().to_string(), "w");
        assert!(parse_acl_file("user=a lrz\n").is_err());
        assert!(parse_acl_file("nobody lr\n").is_err());
        // Named rights after ':' are Dovecot's extension; the letters still count.
        let named = parse_acl_file("user=a lr :x-custom\n").unwrap();
        assert_eq!(named[0].rights.unwrap().to_string(), "lr");
    }

    #[test]
    fn evaluation_follows_dovecot_order() {
        let none: [String; 0] = [];
        let staff = ["staff".to_owned()];
        let acl = parse_acl_file(
            "anyone l\nauthenticated lr\ngroup=staff lrw\nuser=bob lrs\n-user=carol r\n",
        )
        .unwrap();
        // A user entry replaces the group's rights.
        assert_eq!(
            evaluate(&acl, &[], &who("bob", &staff, false)).to_string(),
            "lrs"
        );
        // The group replaces authenticated.
        assert_eq!(
            evaluate(&acl, &[], &who("dave", &staff, false)).to_string(),
            "lrw"
        );
        // A negative-only user entry keeps the positive rights and takes `r` away.
        assert_eq!(
            evaluate(&acl, &[], &who("carol", &none, false)).to_string(),
            "l"
        );
        // The owner ignores anyone/authenticated/group and keeps everything.
        assert_eq!(
            evaluate(&acl, &[], &who("alice", &staff, true)),
            Rights::ALL
        );
    }

    #[test]
    fn group_override_and_merged_groups() {
        let groups = ["a".to_owned(), "b".to_owned()];
        let acl = parse_acl_file("group=a l\ngroup=b r\nuser=u i\ngroup-override=a s\n").unwrap();
        assert_eq!(
            evaluate(&acl, &[], &who("v", &groups, false)).to_string(),
            "s"
        );
        let acl = parse_acl_file("group=a l\ngroup=b r\n").unwrap();
        assert_eq!(
            evaluate(&acl, &[], &who("v", &groups, false)).to_string(),
            "lr"
        );
    }

    #[test]
    fn owner_entry_and_defaults() {
        let none: [String; 0] = [];
        let acl = parse_acl_file("owner lr\n").unwrap();
        assert_eq!(
            evaluate(&acl, &[], &who("me", &none, true)).to_string(),
            "lr"
        );
        assert_eq!(evaluate(&[], &[], &who("me", &none, true)), Rights::ALL);
        assert!(evaluate(&[], &[], &who("me", &none, false)).is_empty());
    }

    #[test]
    fn global_directory_wins_and_clears_local_negatives() {
        let none: [String; 0] = [];
        let local = parse_acl_file("user=bob lrwi\n-anyone w\n").unwrap();
        let global = parse_acl_file("anyone lr\n").unwrap();
        // The global `anyone` comes last and replaces bob's own entry.
        assert_eq!(
            evaluate(&local, &global, &who("bob", &none, false)).to_string(),
            "lr"
        );
        // Global anyone applies even to the owner.
        assert_eq!(
            evaluate(&[], &global, &who("me", &none, true)).to_string(),
            "lr"
        );
        let global_neg = parse_acl_file("user=bob l\n").unwrap();
        let local_neg = parse_acl_file("-user=bob l\nuser=bob r\n").unwrap();
        assert_eq!(
            evaluate(&local_neg, &global_neg, &who("bob", &none, false)).to_string(),
            "l"
        );
    }

    #[test]
    fn global_file_patterns() {
        let lines = parse_global_file(
            "Public/* group=staff lr\n\"Shared Box\" anyone l\nINBOX owner lrwstipekxa\n",
        )
        .unwrap();
        let entries = global_entries_for(&lines, "Public/News");
        assert_eq!(entries.len(), 1);
        assert_eq!(global_entries_for(&lines, "Shared Box").len(), 1);
        assert!(global_entries_for(&lines, "Publicity").is_empty());
        assert!(parse_global_file("justone\n").is_err());
        assert!(wildcard_match("a/b/c", "a/*"));
        assert!(wildcard_match("abc", "a?c"));
        assert!(!wildcard_match("abcd", "a?c"));
        assert!(wildcard_match("x", "*"));
    }

    #[test]
    fn shared_index_lists_owners() {
        let dir = tempfile::tempdir().unwrap();
        let index = SharedIndex::new(dir.path().join("shared"));
        index
            .add(&Identifier::User("bob@x".into()), "alice@x")
            .unwrap();
        index
            .add(&Identifier::User("bob@x".into()), "alice@x")
            .unwrap();
        index.add(&Identifier::Anyone, "carol@x").unwrap();
        index
            .add(&Identifier::User("../evil".into()), "mallory@x")
            .unwrap();
        assert_eq!(index.owners_for("bob@x").unwrap(), ["alice@x", "carol@x"]);
        assert_eq!(index.owners_for("carol@x").unwrap(), Vec::<String>::new());
        assert!(dir.path().join("shared/%2E.%2Fevil").exists());
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn update_writes_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let bob = Identifier::User("bob".into());
        let set = |rights| move |_| rights;
        let entries = modify_acl_file(dir.path(), &bob, false, set(Some(Rights::LOOKUP))).unwrap();
        assert_eq!(entries.len(), 1);
        let text = fs::read_to_string(dir.path().join(ACL_FILE)).unwrap();
        assert_eq!(text, "user=bob l\n");
        modify_acl_file(dir.path(), &bob, true, set(Some(Rights::READ))).unwrap();
        let text = fs::read_to_string(dir.path().join(ACL_FILE)).unwrap();
        assert_eq!(text, "user=bob l\n-user=bob r\n");
        modify_acl_file(dir.path(), &bob, false, |now| {
            now.map(|r| r.union(Rights::READ))
        })
        .unwrap();
        let text = fs::read_to_string(dir.path().join(ACL_FILE)).unwrap();
        assert_eq!(text, "user=bob lr\n-user=bob r\n");
        modify_acl_file(dir.path(), &bob, false, set(None)).unwrap();
        modify_acl_file(dir.path(), &bob, true, set(None)).unwrap();
        assert!(!dir.path().join(ACL_FILE).exists());
    }
}
