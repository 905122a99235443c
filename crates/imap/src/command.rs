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
        message: AppendMessage,
        /// RFC 6855 `UTF8 (~{n}...)`: the message may have UTF-8 headers; allowed once
        /// UTF8=ACCEPT is enabled.
        utf8: bool,
    },
    /// RFC 3502 MULTIAPPEND: an APPEND of more than one message, all or nothing. Only the
    /// last may be `Streamed` (more may follow it on the connection: see `cmd/append.rs`).
    MultiAppend {
        mailbox: String,
        messages: Vec<AppendItem>,
    },
    /// RFC 8508 REPLACE and UID REPLACE: `message` appended to `mailbox`, then the selected
    /// folder's message `target` (a sequence number, or a UID with `uid`) expunged.
    Replace {
        uid: bool,
        target: u32,
        mailbox: String,
        message: AppendItem,
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
    /// RFC 5267 `CANCELUPDATE "tag" ...`: the tags of searches whose updates stop.
    CancelUpdate(Vec<String>),
    Search(SearchCommand),
    /// SORT and UID SORT (RFC 5256, 5957, ESORT's RETURN of RFC 5267).
    Sort(SortCommand),
    /// THREAD and UID THREAD (RFC 5256).
    Thread(ThreadCommand),
    Fetch(FetchCommand),
    Store(StoreCommand),
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
    /// RFC 4978 `COMPRESS mechanism`.
    Compress(String),
    /// RFC 5465 `NOTIFY NONE` (`None`) or `NOTIFY SET ...`.
    Notify(Option<NotifySet>),
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },

    /// RFC 4314 `SETACL mailbox identifier rights` (`+`/`-` prefixes kept in `rights`).
    SetAcl {
        mailbox: String,
        identifier: String,
        rights: String,
    },
    DeleteAcl {
        mailbox: String,
        identifier: String,
    },
    GetAcl(String),
    ListRights {
        mailbox: String,
        identifier: String,
    },
    MyRights(String),
}

/// RFC 5465 `NOTIFY SET [STATUS] (filter events) ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySet {
    /// `STATUS`: tell the current state of every watched mailbox now.
    pub status: bool,
    pub groups: Vec<NotifyGroup>,
}

/// One `(filter events)` of NOTIFY SET; `events` empty for `NONE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyGroup {
    pub filter: NotifyFilter,
    pub events: Vec<NotifyEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// The mailboxes and everything below them.
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyEvent {
    /// `fetch`: the client listed fetch attributes to send with each new message.
    MessageNew {
        fetch: bool,
    },
    MessageExpunge,
    FlagChange,
    MailboxName,
    SubscriptionChange,
    /// An event this server does not report (AnnotationChange, the METADATA ones, or an
    /// extension's), upper-cased as sent.
    Other(String),
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
    /// RFC 8474 MAILBOXID.
    MailboxId,
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

/// `1:4,7,9:*`, held in a bounded form whatever the client wrote (`1:*,1:*,...` is one
/// range): ranges between numbers are sorted and merged; ranges that involve `*`, whose value
/// only the mailbox knows, are kept as at most two (`n:*` with the smallest and the largest
/// `n`: their union covers every other one, since each contains `*`). The session resolves `*`
/// against the mailbox's largest sequence number or UID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceSet {
    /// Number ranges (low <= high) ascending and disjoint, then at most two ranges with `*`.
    ranges: Vec<SeqRange>,
    /// RFC 5182 `$`: the session's saved search result stands for the set (`ranges` is empty).
    saved_result: bool,
}

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
    /// The set of `ranges` as written (`a:b` and `b:a` are the same), in its bounded form.
    pub fn new(ranges: impl IntoIterator<Item = SeqRange>) -> SequenceSet {
        let mut numbers: Vec<(u32, u32)> = Vec::new();
        // The smallest and largest `n` of the `n:*` ranges; `*:*` alone is `Some(None)`.
        let mut star: Option<Option<(u32, u32)>> = None;
        for range in ranges {
            match (range.start, range.end) {
                (SeqNumber::Value(a), SeqNumber::Value(b)) => numbers.push((a.min(b), a.max(b))),
                (SeqNumber::Value(n), SeqNumber::Largest)
                | (SeqNumber::Largest, SeqNumber::Value(n)) => {
                    star = Some(Some(match star.flatten() {
                        Some((low, high)) => (low.min(n), high.max(n)),
                        None => (n, n),
                    }));
                }
                (SeqNumber::Largest, SeqNumber::Largest) => star = Some(star.flatten()),
            }
        }
        let mut ranges: Vec<SeqRange> = merge(numbers)
            .into_iter()
            .map(|(low, high)| SeqRange {
                start: SeqNumber::Value(low),
                end: SeqNumber::Value(high),
            })
            .collect();
        match star {
            None => {}
            Some(None) => ranges.push(SeqRange {
                start: SeqNumber::Largest,
                end: SeqNumber::Largest,
            }),
            Some(Some((low, high))) => {
                let mut ends = vec![low];
                if high != low {
                    ends.push(high);
                }
                ranges.extend(ends.into_iter().map(|n| SeqRange {
                    start: SeqNumber::Value(n),
                    end: SeqNumber::Largest,
                }));
            }
        }
        SequenceSet {
            ranges,
            saved_result: false,
        }
    }

    /// RFC 5182 `$`: the messages the last `SEARCH RETURN (SAVE)` found. Its ranges are empty:
    /// a command that does not ask the session for the saved result finds nothing in it.
    pub fn saved_result() -> SequenceSet {
        SequenceSet {
            ranges: Vec::new(),
            saved_result: true,
        }
    }

    /// Whether the set is `$`, whose messages only the session knows.
    pub fn is_saved_result(&self) -> bool {
        self.saved_result
    }

    /// The ranges of the bounded form (see [`SequenceSet`]).
    pub fn ranges(&self) -> &[SeqRange] {
        &self.ranges
    }

    /// The numbers in the set with `*` meaning `largest`, as ascending disjoint ranges.
    pub fn resolve(&self, largest: u32) -> Vec<(u32, u32)> {
        merge(
            self.ranges
                .iter()
                .map(|range| {
                    let a = range.start.resolve(largest);
                    let b = range.end.resolve(largest);
                    (a.min(b), a.max(b))
                })
                .collect(),
        )
    }

    /// Whether `n` is in the set, with `*` meaning `largest`; a binary search.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        let numbers = self
            .ranges
            .iter()
            .rposition(|range| range.start != SeqNumber::Largest && range.end != SeqNumber::Largest)
            .map_or(0, |last| last + 1);
        let (numbers, stars) = self.ranges.split_at(numbers);
        let in_star = stars.iter().any(|range| {
            let a = range.start.resolve(largest);
            let b = range.end.resolve(largest);
            a.min(b) <= n && n <= a.max(b)
        });
        let after = numbers.partition_point(|range| range.end.resolve(largest) < n);
        in_star
            || numbers
                .get(after)
                .is_some_and(|range| range.start.resolve(largest) <= n)
    }
}

/// Sorts ranges and merges those that overlap or touch.
fn merge(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (low, high) in ranges {
        match merged.last_mut() {
            Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
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
    /// RFC 8514 SAVEDATE.
    SaveDate,
    /// RFC 8474 EMAILID.
    EmailId,
    /// RFC 8474 THREADID (always NIL: messages are not threaded in the store).
    ThreadId,
    /// RFC 8970 PREVIEW; `PREVIEW (LAZY)`.
    Preview {
        lazy: bool,
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
    /// `CHARSET x`, upper-cased; the parser has decoded the search strings with it, and the
    /// session refuses a charset `parser::search_charset` does not know.
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
    /// `PARTIAL first:last` (RFC 5267 4.4): the results at these 1-based positions.
    Partial(u32, u32),
    /// RFC 5182: keep the result for `$`.
    Save,
    /// RFC 5267: report changes to the result (ADDTO, REMOVEFROM) until CANCELUPDATE.
    Update,
    /// RFC 5267: a hint that the search will be repeated; accepted and ignored.
    Context,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortCommand {
    pub uid: bool,
    /// The sort keys, most significant first (at least one).
    pub keys: Vec<SortCriterion>,
    /// Upper-cased; the session refuses one `parser::search_charset` does not know.
    pub charset: String,
    pub criteria: SearchKey,
    /// ESORT `RETURN (...)`: `None` for a plain SORT, `Some(vec![])` for `RETURN ()`.
    pub return_options: Option<Vec<SearchReturn>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// RFC 5256 sort keys and RFC 5957's DISPLAYFROM and DISPLAYTO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadCommand {
    pub uid: bool,
    pub algorithm: ThreadAlgorithm,
    /// Upper-cased; the session refuses one `parser::search_charset` does not know.
    pub charset: String,
    pub criteria: SearchKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
    /// REFERENCES without grouping by subject, threads in the order of their newest message
    /// (draft-ietf-morg-inthread, as Dovecot implements it).
    Refs,
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
    /// RFC 8514 SAVEDBEFORE, SAVEDON, SAVEDSINCE, SAVEDATESUPPORTED.
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    SaveDateSupported,
    /// RFC 8474 EMAILID, THREADID.
    EmailId(String),
    ThreadId(String),
    /// RFC 5032 `OLDER n`: INTERNALDATE more than `n` seconds ago.
    Older(u32),
    /// RFC 5032 `YOUNGER n`: INTERNALDATE at most `n` seconds ago.
    Younger(u32),
}

#[cfg(test)]
mod tests {
    use super::*;
    use SeqNumber::{Largest, Value};

    fn range(start: SeqNumber, end: SeqNumber) -> SeqRange {
        SeqRange { start, end }
    }

    #[test]
    fn sets_stay_small_however_they_are_written() {
        // `1:*` sixteen thousand times, as fits in one 64 KiB line.
        let set = SequenceSet::new(std::iter::repeat_n(range(Value(1), Largest), 16_000));
        assert_eq!(set.ranges(), &[range(Value(1), Largest)]);
        assert_eq!(set.resolve(5000), vec![(1, 5000)]);
        // Overlapping, touching, reversed and starred ranges.
        let set = SequenceSet::new([
            range(Value(9), Value(7)),
            range(Value(1), Value(3)),
            range(Value(4), Value(4)),
            range(Value(2), Value(5)),
            range(Largest, Value(20)),
            range(Largest, Largest),
            range(Value(12), Largest),
            range(Value(30), Largest),
        ]);
        assert_eq!(
            set.ranges(),
            &[
                range(Value(1), Value(5)),
                range(Value(7), Value(9)),
                range(Value(12), Largest),
                range(Value(30), Largest),
            ]
        );
        assert_eq!(set.resolve(15), vec![(1, 5), (7, 9), (12, 30)]);
        assert_eq!(set.resolve(100), vec![(1, 5), (7, 9), (12, 100)]);
        assert!(set.contains(8, 15) && set.contains(30, 15) && set.contains(13, 100));
        assert!(!set.contains(6, 15) && !set.contains(10, 15) && !set.contains(31, 15));
        let star = SequenceSet::new([range(Largest, Largest), range(Largest, Largest)]);
        assert_eq!(star.ranges(), &[range(Largest, Largest)]);
        assert!(star.contains(4, 4) && !star.contains(3, 4));
    }
}

/// One message of an APPEND, MULTIAPPEND or REPLACE with its own flags and date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendItem {
    pub flags: Vec<Flag>,
    pub date: Option<OffsetDateTime>,
    pub message: AppendMessage,
    /// RFC 6855 `UTF8 (~{n}...)`: allowed once UTF8=ACCEPT is enabled.
    pub utf8: bool,
}

/// APPEND's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendMessage {
    /// Received with the command, as sent (CRLF line endings).
    Inline(Vec<u8>),
    /// Too large to buffer: its bytes follow the command's head on the connection and go
    /// to the spool as they arrive.
    Streamed { size: u64, synchronizing: bool },
    /// RFC 4469 CATENATE: the message made of these parts, in order.
    Catenate(Vec<CatenatePart>),
}

/// One part of a CATENATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatenatePart {
    /// `TEXT literal`: bytes as sent.
    Text(Vec<u8>),
    /// `URL "..."`: a message or part of one in this account (RFC 5092 relative IMAP URL).
    Url(String),
    /// A `TEXT` literal too large to buffer, still on its way: always the last part the
    /// command's head carries; its bytes and the parts after it are read as they arrive
    /// (`parser::parse_catenate_rest`).
    Streamed { size: u64, synchronizing: bool },
}

impl CatenatePart {
    /// The bytes the command itself brings for this part (a URL's come from the store).
    pub fn announced_size(&self) -> u64 {
        match self {
            CatenatePart::Text(bytes) => bytes.len() as u64,
            CatenatePart::Streamed { size, .. } => *size,
            CatenatePart::Url(_) => 0,
        }
    }
}
