//! The commands a client can send, as the parser hands them to the session.
//!
//! These types are the contract between `parser` (bytes to `Command`) and `session`/`cmd`
//! (what each command does). They carry no wire syntax: strings are decoded (quoted strings
//! unescaped, literals taken as they are), macros (`ALL`, `FAST`, `FULL`) are expanded, and
//! mailbox names are kept exactly as sent (modified UTF-7, the form Dovecot also uses on disk).

use time::{Date, OffsetDateTime};

/// One command line (with its literals) from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    // Any state.
    Capability,
    Noop,
    Logout,
    /// RFC 2971: `ID NIL` or `ID ("name" "value" ...)`.
    Id(Option<Vec<(String, Option<String>)>>),

    // Not authenticated.
    StartTls,
    Login {
        user: String,
        password: String,
    },
    /// The initial response (SASL-IR) is base64-decoded; `=` gives `Some(vec![])`.
    Authenticate {
        mechanism: String,
        initial_response: Option<Vec<u8>>,
    },

    // Authenticated.
    Enable(Vec<String>),
    Select(SelectCommand),
    Examine(SelectCommand),
    Create {
        mailbox: String,
        /// RFC 6154 `CREATE name (USE (\Sent))`: the attributes, without the backslash.
        special_use: Vec<String>,
    },
    Delete(String),
    Rename {
        from: String,
        to: String,
    },
    Subscribe(String),
    Unsubscribe(String),
    List(ListCommand),
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: String,
        flags: Vec<Flag>,
        date: Option<OffsetDateTime>,
        /// The message as sent (CRLF line endings).
        message: Vec<u8>,
    },
    Idle,
    GetQuota(String),
    GetQuotaRoot(String),
    /// Parsed so that it can be refused cleanly: quotas are set in the directory.
    SetQuota(String),

    // Selected.
    Check,
    Close,
    Unselect,
    Expunge,
    /// `UID EXPUNGE set` (UIDPLUS).
    UidExpunge(SequenceSet),
    Search(SearchCommand),
    Fetch(FetchCommand),
    Store(StoreCommand),
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectCommand {
    pub mailbox: String,
    /// `(CONDSTORE)` parameter.
    pub condstore: bool,
    /// `(QRESYNC (uidvalidity modseq [known-uids [(seq-match uid-match)]]))`.
    pub qresync: Option<QresyncParams>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QresyncParams {
    pub uid_validity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
    /// Known sequence numbers and the UIDs they had.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// RFC 3501 LIST with the RFC 5258 (LIST-EXTENDED), RFC 6154 and RFC 5819 options that clients
/// send; a plain `LIST ref pattern` has every option off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListCommand {
    pub reference: String,
    pub patterns: Vec<String>,
    /// Selection options.
    pub subscribed: bool,
    pub special_use_only: bool,
    pub recursive_match: bool,
    /// Return options.
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    /// `RETURN (STATUS (...))` (LIST-STATUS).
    pub return_status: Option<Vec<StatusItem>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    HighestModSeq,
    /// RFC 8438 STATUS=SIZE.
    Size,
    /// RFC 9051 DELETED.
    Deleted,
}

/// A message flag as a client names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// `\Recent`: may appear in SEARCH but cannot be stored.
    Recent,
    /// An atom without backslash, e.g. `$Forwarded`, `$Junk`.
    Keyword(String),
    /// An unknown `\Something`: refused by STORE and APPEND.
    Extension(String),
}

/// `1:4,7,9:*`. Ranges are kept as sent; `*` is resolved by the session against the
/// mailbox's largest sequence number or UID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<SeqRange>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    pub start: SeqNumber,
    pub end: SeqNumber,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqNumber {
    Value(u32),
    /// `*`: the largest number in use.
    Largest,
}

impl SequenceSet {
    /// Whether `n` is in the set, with `*` meaning `largest`. `a:b` and `b:a` are the same.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|range| {
            let start = range.start.resolve(largest);
            let end = range.end.resolve(largest);
            let (low, high) = if start <= end {
                (start, end)
            } else {
                (end, start)
            };
            low <= n && n <= high
        })
    }
}

impl SeqNumber {
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNumber::Value(n) => n,
            SeqNumber::Largest => largest,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchCommand {
    pub uid: bool,
    pub set: SequenceSet,
    /// Macros expanded; `UID` is added by the session for UID FETCH.
    pub attributes: Vec<FetchAttribute>,
    /// CONDSTORE `(CHANGEDSINCE n)`.
    pub changed_since: Option<u64>,
    /// QRESYNC `(VANISHED)`; only valid with UID FETCH and CHANGEDSINCE.
    pub vanished: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchAttribute {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    /// `RFC822`: `BODY[]`, sets \Seen.
    Rfc822,
    /// `RFC822.HEADER`: `BODY.PEEK[HEADER]`.
    Rfc822Header,
    /// `RFC822.TEXT`: `BODY[TEXT]`, sets \Seen.
    Rfc822Text,
    /// `BODY[section]<partial>` and `BODY.PEEK[...]`.
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// RFC 3516 `BINARY[part]<partial>` and `BINARY.PEEK`.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    BinarySize {
        part: Vec<u32>,
    },
}

/// `<offset.count>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partial {
    pub offset: u32,
    pub count: u32,
}

/// `BODY[1.2.HEADER.FIELDS (From To)]`: a part path (empty = the whole message) and what of
/// it. `BODY[1.2]` has `text: None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// Field names as sent (compared case-insensitively).
    HeaderFields {
        not: bool,
        fields: Vec<String>,
    },
    Text,
    Mime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOperation {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCommand {
    pub uid: bool,
    pub set: SequenceSet,
    pub operation: StoreOperation,
    /// `.SILENT`
    pub silent: bool,
    pub flags: Vec<Flag>,
    /// CONDSTORE `(UNCHANGEDSINCE n)`.
    pub unchanged_since: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchCommand {
    pub uid: bool,
    /// `CHARSET x`, upper-cased; the session accepts UTF-8 and US-ASCII.
    pub charset: Option<String>,
    /// The criteria, ANDed: one `SearchKey::And` for several keys.
    pub criteria: SearchKey,
    /// ESEARCH `RETURN (...)`: `None` for a plain SEARCH, `Some(vec![])` for `RETURN ()`
    /// (which means `ALL`).
    pub return_options: Option<Vec<SearchReturn>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
}

/// Every RFC 3501 search key, plus CONDSTORE's `MODSEQ`. Strings are as sent (the charset is
/// checked by the session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    Header(String, String),
    Keyword(String),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// A bare sequence set.
    Sequence(SequenceSet),
    /// A parenthesised list, or the top level with several keys.
    And(Vec<SearchKey>),
    /// `MODSEQ [entry-name entry-type] n`: the entry is ignored, as Dovecot does.
    ModSeq(u64),
}
