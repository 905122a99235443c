//! Bytes of one command (as framed by `framing`, literals inline) to a [`Tagged`] command.
//!
//! Hand-written rather than built on imap-codec: imap-codec is an alpha, and its CONDSTORE /
//! QRESYNC support is marked unfinished and left out of its fuzzing, while Mailstead relies on
//! both. A recursive-descent parser over a byte cursor is small enough to own, and it is
//! fuzzed (`fuzz/fuzz_targets/imap_command.rs`).
//!
//! Robustness rules: no panics on any input (no indexing, only `get`), allocation bounded by
//! the input's size, recursion bounded by [`MAX_DEPTH`] (search keys are the only recursive
//! path), and what a command makes the session do bounded here, once: search keys, list items,
//! sequence set ranges, LIST pattern length. Keywords are case-insensitive;
//! strings are kept as sent (mailbox names, `INBOX` included, stay in modified UTF-7).

use base64::Engine;
use encoding_rs::{Encoding, UTF_8};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::command::{
    AppendItem, AppendMessage, CatenatePart, Command, FetchAttribute, FetchCommand, Flag,
    ListCommand, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet, Partial, QresyncParams,
    SearchCommand, SearchKey, SearchReturn, Section, SectionText, SelectCommand, SeqNumber,
    SeqRange, SequenceSet, SortCommand, SortCriterion, SortKey, StatusItem, StoreCommand,
    StoreOperation, Tagged, ThreadAlgorithm, ThreadCommand,
};
use crate::wire::{is_astring_char, is_atom_char};

/// Nesting limit for search keys (parentheses, NOT, OR): deep enough for any real client,
/// shallow enough that the stack cannot overflow (parsing, evaluating and dropping them).
pub const MAX_DEPTH: usize = 32;
/// Search keys in one SEARCH, every level counted: each is evaluated for every message.
pub const MAX_SEARCH_KEYS: usize = 1000;
/// Longest LIST/LSUB reference, and longest pattern (all of a LIST's patterns together), in
/// bytes: each is matched against every folder.
pub const MAX_PATTERN: usize = 1024;
/// Items in one parenthesised list (FETCH attributes, flags, header fields, options), in
/// ENABLE and in a STORE flag list.
pub const MAX_LIST_ITEMS: usize = 256;
/// RFC 2971 3.3: at most 30 field-value pairs, values of at most 1024 bytes.
pub const MAX_ID_FIELDS: usize = 30;
const MAX_ID_VALUE: usize = 1024;
/// Ranges of one sequence set once merged (a 64 KiB line holds about 13,000 distinct ones).
pub const MAX_SET_RANGES: usize = 16_384;

/// A command that could not be parsed; the session answers `<tag> BAD <message>`, or
/// `* BAD <message>` when no tag could be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

type Result<T> = std::result::Result<T, String>;

/// Parses one command, with its CRLF (or LF, or nothing) at the end.
pub fn parse_command(input: &[u8]) -> std::result::Result<Tagged, ParseError> {
    let mut p = Parser::new(input);
    let tag = p
        .tag()
        .map_err(|message| ParseError { tag: None, message })?;
    let with_tag = |message: String| ParseError {
        tag: Some(tag.clone()),
        message,
    };
    if p.at_end() {
        return Err(with_tag("Missing command".into()));
    }
    let command = p
        .sp()
        .and_then(|()| p.command())
        .and_then(|command| p.end().map(|()| command))
        .map_err(with_tag)?;
    Ok(Tagged { tag, command })
}

/// Parses the head of an APPEND (MULTIAPPEND) or REPLACE whose last message is streamed
/// (`Frame::Stream`): the command up to and including that literal's announcement and its
/// line end, nothing after. Messages before it (MULTIAPPEND) are inline.
pub fn parse_append_head(head: &[u8]) -> std::result::Result<Tagged, ParseError> {
    let mut p = Parser::new(head);
    let tag = p
        .tag()
        .map_err(|message| ParseError { tag: None, message })?;
    let command = p
        .sp()
        .and_then(|()| p.streamed_append_head())
        .map_err(|message| ParseError {
            tag: Some(tag.clone()),
            message,
        })?;
    Ok(Tagged { tag, command })
}

/// A section as RFC 5092's `;SECTION=` names it (`1.2`, `HEADER`, `1.MIME`), without the
/// brackets; `None` when it is not one.
pub fn parse_section(text: &str) -> Option<Section> {
    let bracketed = format!("[{text}]");
    let mut p = Parser::new(bracketed.as_bytes());
    let section = p.section().ok()?;
    p.at_end().then_some(section)
}

/// Most messages one MULTIAPPEND may carry.
pub const MAX_APPEND_MESSAGES: usize = 1000;

/// One message is a plain APPEND, more a MULTIAPPEND.
fn append_command(mailbox: String, mut messages: Vec<AppendItem>) -> Command {
    if messages.len() == 1
        && let Some(AppendItem {
            flags,
            date,
            message,
            utf8,
        }) = messages.pop()
    {
        return Command::Append {
            mailbox,
            flags,
            date,
            message,
            utf8,
        };
    }
    Command::MultiAppend { mailbox, messages }
}

/// The flags, date and literal announcement of the next message after a streamed one
/// (MULTIAPPEND): `rest` is the line that followed its literal, which either ends the command
/// (`Ok(None)`) or announces one more literal. `after_utf8`: the streamed literal was
/// RFC 6855's `UTF8 (~{n}`, so the line starts with its `)`.
pub fn parse_append_rest(
    rest: &[u8],
    after_utf8: bool,
) -> std::result::Result<Option<NextMessage>, String> {
    let rest = match (after_utf8, rest.strip_prefix(b")")) {
        (false, _) => rest,
        (true, Some(rest)) => rest,
        (true, None) => return Err("Expected ) after the UTF8 literal".into()),
    };
    if matches!(rest, b"\r\n" | b"\n") {
        return Ok(None);
    }
    let mut p = Parser::new(rest);
    p.sp()?;
    p.skip_extra_spaces_between_messages(true);
    let (flags, date) = p.append_options()?;
    let utf8 = p.append_utf8_open()?;
    let (size, synchronizing) = p.literal_announcement(true)?;
    if !p.rest().is_empty() {
        return Err("Unexpected extra arguments".into());
    }
    Ok(Some(NextMessage {
        flags,
        date,
        size,
        synchronizing,
        utf8,
    }))
}

/// The line after a streamed CATENATE TEXT literal: the URL parts on it, then either one
/// more TEXT literal announced at its end or the `)` that ends the CATENATE. `parts_before`
/// counts the parts already taken, for the list bound.
pub fn parse_catenate_rest(
    rest: &[u8],
    parts_before: usize,
) -> std::result::Result<CatenateRest, String> {
    let mut p = Parser::new(rest);
    let mut urls = Vec::new();
    loop {
        if p.eat(b')') {
            return Ok(CatenateRest {
                urls,
                next: CatenateNext::End(p.rest().to_vec()),
            });
        }
        p.sp()?;
        if parts_before + urls.len() >= MAX_LIST_ITEMS {
            return Err("Too many items in the CATENATE parts".into());
        }
        let kind = p.atom()?.to_ascii_uppercase();
        p.sp()?;
        match kind.as_str() {
            // A URL sent as a literal would be a literal after a streamed one: not taken.
            "URL" if p.peek() != Some(b'{') => urls.push(p.astring("URL")?),
            "TEXT" => {
                let (size, synchronizing) = p.literal_announcement(true)?;
                if !p.rest().is_empty() {
                    return Err("Unexpected extra arguments".into());
                }
                return Ok(CatenateRest {
                    urls,
                    next: CatenateNext::Text {
                        size,
                        synchronizing,
                    },
                });
            }
            _ => return Err(format!("Unknown CATENATE part {}", printable(&kind))),
        }
    }
}

/// What [`parse_catenate_rest`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatenateRest {
    /// The URL parts, in order.
    pub urls: Vec<String>,
    pub next: CatenateNext,
}

/// How a line inside a streamed CATENATE ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatenateNext {
    /// With one more TEXT literal, streamed next.
    Text { size: u64, synchronizing: bool },
    /// With the `)`: the rest of the command line after it, as [`parse_append_rest`] takes.
    End(Vec<u8>),
}

/// A message announced after a streamed one ([`parse_append_rest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextMessage {
    pub flags: Vec<Flag>,
    pub date: Option<OffsetDateTime>,
    /// Its literal's size, and whether the client waits for a continuation.
    pub size: u64,
    pub synchronizing: bool,
    /// Announced as RFC 6855 `UTF8 (~{n}`.
    pub utf8: bool,
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    /// Search keys read so far (bounded by [`MAX_SEARCH_KEYS`]).
    search_keys: usize,
    /// How SEARCH strings are read after `CHARSET x` other than UTF-8 (`None`: strict UTF-8).
    search_decoder: Option<&'static Encoding>,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8]) -> Parser<'a> {
        Parser {
            input,
            pos: 0,
            search_keys: 0,
            search_decoder: None,
        }
    }
}

/// The decoder for a SEARCH `CHARSET`, by any of its WHATWG labels (`ISO-8859-1`,
/// `windows-1252`, `KOI8-R`, `Shift_JIS`, ...); `None` for one we do not know, which the
/// session answers `NO [BADCHARSET]`.
pub fn search_charset(name: &str) -> Option<&'static Encoding> {
    Encoding::for_label(name.as_bytes())
}

fn is_tag_char(byte: u8) -> bool {
    is_astring_char(byte) && byte != b'+'
}

/// Characters of a LIST pattern: ASTRING-CHAR plus the wildcards.
fn is_list_char(byte: u8) -> bool {
    is_astring_char(byte) || byte == b'%' || byte == b'*'
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.input.get(self.pos + offset).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<()> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!("Expected {what}"))
        }
    }

    fn sp(&mut self) -> Result<()> {
        if self.eat(b' ') {
            Ok(())
        } else if self.at_end() {
            Err("Missing arguments".into())
        } else {
            Err("Expected a space".into())
        }
    }

    /// At CRLF, LF or the end of the input.
    fn at_end(&self) -> bool {
        matches!(self.rest(), [] | [b'\n'] | [b'\r', b'\n'])
    }

    fn end(&self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err("Unexpected extra arguments".into())
        }
    }

    /// Bytes while `pred` holds.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let rest = self.rest();
        let len = rest.iter().position(|&b| !pred(b)).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }

    fn tag(&mut self) -> Result<String> {
        if self.at_end() {
            return Err("Empty command line".into());
        }
        let tag = self.take_while(is_tag_char);
        if tag.is_empty() || !matches!(self.peek(), Some(b' ') | None | Some(b'\r' | b'\n')) {
            return Err("Invalid tag".into());
        }
        Ok(ascii(tag))
    }

    /// An atom (ATOM-CHARs), e.g. a keyword.
    fn atom(&mut self) -> Result<&'a str> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            return Err("Expected an atom".into());
        }
        // ATOM-CHARs are ASCII.
        std::str::from_utf8(atom).map_err(|_| "Expected an atom".to_string())
    }

    /// A keyword, compared case-insensitively, or an error naming what was expected.
    fn keyword(&mut self, keyword: &str) -> Result<()> {
        let start = self.pos;
        match self.atom() {
            Ok(atom) if atom.eq_ignore_ascii_case(keyword) => Ok(()),
            _ => {
                self.pos = start;
                Err(format!("Expected {keyword}"))
            }
        }
    }

    /// Whether the next atom is `keyword` (consumed if so).
    fn try_keyword(&mut self, keyword: &str) -> bool {
        let start = self.pos;
        match self.atom() {
            Ok(atom) if atom.eq_ignore_ascii_case(keyword) => true,
            _ => {
                self.pos = start;
                false
            }
        }
    }

    fn number64(&mut self, what: &str) -> Result<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(format!("Expected {what}"));
        }
        digits
            .iter()
            .try_fold(0u64, |acc, &d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
            .ok_or_else(|| format!("Invalid {what}: too large"))
    }

    fn number(&mut self, what: &str) -> Result<u32> {
        let n = self.number64(what)?;
        u32::try_from(n).map_err(|_| format!("Invalid {what}: too large"))
    }

    fn nz_number(&mut self, what: &str) -> Result<u32> {
        match self.number(what)? {
            0 => Err(format!("Invalid {what}: zero")),
            n => Ok(n),
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return Err("Unterminated quoted string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    match self.peek_at(1) {
                        Some(byte @ (b'"' | b'\\')) => out.push(byte),
                        _ => return Err("Invalid escape in quoted string".into()),
                    }
                    self.pos += 2;
                }
                Some(0) => return Err("NUL in quoted string".into()),
                Some(byte) => {
                    out.push(byte);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}`, `{n+}` and, when `binary`, `~{n}`, with the CRLF and the n bytes.
    fn literal(&mut self, binary: bool) -> Result<&'a [u8]> {
        let (size, _) = self.literal_announcement(binary)?;
        let size = usize::try_from(size).map_err(|_| "Literal too big".to_string())?;
        let rest = self.rest();
        let bytes = rest
            .get(..size)
            .ok_or_else(|| "Literal runs past the end of the command".to_string())?;
        // CHAR8 has no NUL; APPEND's message (`binary`) is stored as sent either way.
        if !binary && bytes.contains(&0) {
            return Err("NUL in literal".into());
        }
        self.pos += size;
        Ok(bytes)
    }

    /// The `{n}`, `{n+}` (or, when `binary`, `~{n}`) before a literal's bytes, with its line
    /// end: the size and whether it is synchronizing.
    fn literal_announcement(&mut self, binary: bool) -> Result<(u64, bool)> {
        if binary {
            self.eat(b'~');
        }
        self.expect(b'{', "a literal")?;
        let size = self.number64("literal size")?;
        let synchronizing = !self.eat(b'+');
        self.expect(b'}', "} after the literal size")?;
        self.eat(b'\r');
        self.expect(b'\n', "a line end after the literal size")?;
        Ok((size, synchronizing))
    }

    /// string = quoted / literal, as UTF-8.
    fn string(&mut self) -> Result<String> {
        let bytes = match self.peek() {
            Some(b'"') => self.quoted()?,
            Some(b'{') => self.literal(false)?.to_vec(),
            _ => return Err("Expected a string".into()),
        };
        utf8(bytes)
    }

    /// astring = 1*ASTRING-CHAR / string.
    fn astring(&mut self, what: &str) -> Result<String> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    Err(format!("Missing {what}"))
                } else {
                    Ok(ascii(atom))
                }
            }
        }
    }

    /// nstring = NIL / string.
    fn nstring(&mut self) -> Result<Option<String>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string().map(Some),
            _ if self.try_keyword("NIL") => Ok(None),
            _ => Err("Expected a string or NIL".into()),
        }
    }

    fn mailbox(&mut self) -> Result<String> {
        self.astring("mailbox name")
    }

    /// list-mailbox = 1*list-char / string, at most [`MAX_PATTERN`] bytes.
    fn list_mailbox(&mut self) -> Result<String> {
        let pattern = match self.peek() {
            Some(b'"' | b'{') => self.string()?,
            _ => {
                let pattern = self.take_while(is_list_char);
                if pattern.is_empty() {
                    return Err("Missing mailbox pattern".into());
                }
                ascii(pattern)
            }
        };
        bounded_pattern(pattern)
    }

    /// The reference name of LIST and LSUB, at most [`MAX_PATTERN`] bytes.
    fn list_reference(&mut self) -> Result<String> {
        let reference = self.mailbox()?;
        bounded_pattern(reference)
    }

    /// `(` item *(SP item) `)`; an empty list only when `allow_empty`.
    fn paren_list<T>(
        &mut self,
        what: &str,
        allow_empty: bool,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.expect(b'(', &format!("( to open the {what}"))?;
        let mut items = Vec::new();
        if self.eat(b')') {
            if allow_empty {
                return Ok(items);
            }
            return Err(format!("Empty {what}"));
        }
        loop {
            if items.len() >= MAX_LIST_ITEMS {
                return Err(format!("Too many items in the {what}"));
            }
            items.push(item(self)?);
            if self.eat(b')') {
                return Ok(items);
            }
            if !self.eat(b' ') {
                return Err(format!("Expected a space or ) in the {what}"));
            }
        }
    }

    fn seq_number(&mut self) -> Result<SeqNumber> {
        if self.eat(b'*') {
            Ok(SeqNumber::Largest)
        } else {
            self.nz_number("sequence number").map(SeqNumber::Value)
        }
    }

    fn sequence_set(&mut self) -> Result<SequenceSet> {
        if !matches!(self.peek(), Some(b'0'..=b'9' | b'*')) {
            return Err("Missing sequence set".into());
        }
        let mut ranges = Vec::new();
        loop {
            let start = self
                .seq_number()
                .map_err(|e| format!("Invalid sequence set: {e}"))?;
            let end = if self.eat(b':') {
                self.seq_number()
                    .map_err(|e| format!("Invalid sequence set: {e}"))?
            } else {
                start
            };
            ranges.push(SeqRange { start, end });
            // Merged as it grows, so that memory follows the set, not how it is written.
            if ranges.len() >= 2 * MAX_SET_RANGES {
                ranges = bounded_set(ranges)?.ranges().to_vec();
            }
            if !self.eat(b',') {
                break;
            }
        }
        // `1:2x` or `1,` are not sets.
        if self.peek().is_some_and(|b| is_atom_char(b) && b != b']') {
            return Err("Invalid sequence set".into());
        }
        bounded_set(ranges)
    }

    /// A sequence set, or RFC 5182's `$` (the saved search result), which stands alone.
    fn message_set(&mut self) -> Result<SequenceSet> {
        if !self.eat(b'$') {
            return self.sequence_set();
        }
        if self.peek().is_some_and(|b| is_atom_char(b) && b != b']') {
            return Err("Invalid sequence set: $ stands alone".into());
        }
        Ok(SequenceSet::saved_result())
    }

    /// `1-Feb-2024`, bare or quoted.
    fn date(&mut self) -> Result<Date> {
        let quoted = self.eat(b'"');
        let day = self.take_while(|b| b.is_ascii_digit());
        let date = parse_date_parts(day, self).ok_or_else(|| "Invalid date".to_string())?;
        if quoted && !self.eat(b'"') {
            return Err("Invalid date".into());
        }
        Ok(date)
    }

    /// `"21-Nov-2026 18:00:00 +0000"` (the day may be ` 1` or `01`).
    fn date_time(&mut self) -> Result<OffsetDateTime> {
        self.expect(b'"', "a date-time")?;
        let parsed = self.date_time_inner();
        let value = parsed.ok_or_else(|| "Invalid date-time".to_string())?;
        if !self.eat(b'"') {
            return Err("Invalid date-time".into());
        }
        Ok(value)
    }

    fn date_time_inner(&mut self) -> Option<OffsetDateTime> {
        self.eat(b' ');
        let day = self.take_while(|b| b.is_ascii_digit());
        let date = parse_date_parts(day, self)?;
        let two = |p: &mut Self| -> Option<u8> {
            let digits = p.rest().get(..2)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            p.pos += 2;
            digits
                .iter()
                .try_fold(0u8, |acc, &d| Some(acc * 10 + (d - b'0')))
        };
        if !self.eat(b' ') {
            return None;
        }
        let hour = two(self)?;
        self.eat(b':').then_some(())?;
        let minute = two(self)?;
        self.eat(b':').then_some(())?;
        let second = two(self)?;
        self.eat(b' ').then_some(())?;
        let sign: i8 = match self.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.pos += 1;
        let zone_hours = two(self)?;
        let zone_minutes = two(self)?;
        if zone_hours > 23 || zone_minutes > 59 {
            return None;
        }
        let offset = UtcOffset::from_hms(
            sign * i8::try_from(zone_hours).ok()?,
            sign * i8::try_from(zone_minutes).ok()?,
            0,
        )
        .ok()?;
        let time = Time::from_hms(hour, minute, second).ok()?;
        Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
    }

    fn command(&mut self) -> Result<Command> {
        let name = self.atom().map_err(|_| "Missing command".to_string())?;
        let upper = name.to_ascii_uppercase();
        Ok(match upper.as_str() {
            "CAPABILITY" => Command::Capability,
            "NOOP" => Command::Noop,
            "LOGOUT" => Command::Logout,
            "STARTTLS" => Command::StartTls,
            "NAMESPACE" => Command::Namespace,
            "IDLE" => Command::Idle,
            "CHECK" => Command::Check,
            "CLOSE" => Command::Close,
            "UNSELECT" => Command::Unselect,
            "NOTIFY" => {
                self.sp()?;
                Command::Notify(self.notify()?)
            }
            "COMPRESS" => {
                self.sp()?;
                Command::Compress(self.atom()?.to_ascii_uppercase())
            }
            "EXPUNGE" => Command::Expunge,
            "CANCELUPDATE" => {
                let mut tags = Vec::new();
                while self.eat(b' ') {
                    if tags.len() >= MAX_LIST_ITEMS {
                        return Err("Too many tags to CANCELUPDATE".into());
                    }
                    tags.push(utf8(self.quoted()?)?);
                }
                if tags.is_empty() {
                    return Err("CANCELUPDATE needs the tags of the searches".into());
                }
                Command::CancelUpdate(tags)
            }
            "ID" => {
                self.sp()?;
                self.id()?
            }
            "LOGIN" => {
                self.sp()?;
                let user = self.astring("user name")?;
                self.sp()?;
                let password = self.astring("password")?;
                Command::Login { user, password }
            }
            "AUTHENTICATE" => {
                self.sp()?;
                self.authenticate()?
            }
            "ENABLE" => {
                self.sp()?;
                let mut capabilities = vec![self.atom()?.to_ascii_uppercase()];
                while self.eat(b' ') {
                    if capabilities.len() >= MAX_LIST_ITEMS {
                        return Err("Too many capabilities to ENABLE".into());
                    }
                    capabilities.push(self.atom()?.to_ascii_uppercase());
                }
                Command::Enable(capabilities)
            }
            "SELECT" => Command::Select(self.select()?),
            "EXAMINE" => Command::Examine(self.select()?),
            "CREATE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let special_use = if self.eat(b' ') {
                    self.create_params()?
                } else {
                    Vec::new()
                };
                Command::Create {
                    mailbox,
                    special_use,
                }
            }
            "DELETE" => {
                self.sp()?;
                Command::Delete(self.mailbox()?)
            }
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                let to = self.mailbox()?;
                Command::Rename { from, to }
            }
            "SUBSCRIBE" => {
                self.sp()?;
                Command::Subscribe(self.mailbox()?)
            }
            "UNSUBSCRIBE" => {
                self.sp()?;
                Command::Unsubscribe(self.mailbox()?)
            }
            "LIST" => Command::List(self.list()?),
            "LSUB" => {
                self.sp()?;
                let reference = self.list_reference()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                Command::Lsub { reference, pattern }
            }
            "STATUS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let items = self.paren_list("status items", false, Self::status_item)?;
                Command::Status { mailbox, items }
            }
            "APPEND" => self.append()?,
            "REPLACE" => self.replace(false)?,
            "GETQUOTA" => {
                self.sp()?;
                Command::GetQuota(self.astring("quota root")?)
            }
            "GETQUOTAROOT" => {
                self.sp()?;
                Command::GetQuotaRoot(self.mailbox()?)
            }
            "SETQUOTA" => {
                self.sp()?;
                let root = self.astring("quota root")?;
                self.sp()?;
                self.paren_list("quota limits", true, |p| {
                    p.atom()?;
                    p.sp()?;
                    p.number64("quota limit")
                })?;
                Command::SetQuota(root)
            }
            "SETACL" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let identifier = self.astring("identifier")?;
                self.sp()?;
                let rights = self.astring("rights")?;
                Command::SetAcl {
                    mailbox,
                    identifier,
                    rights,
                }
            }
            "DELETEACL" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let identifier = self.astring("identifier")?;
                Command::DeleteAcl {
                    mailbox,
                    identifier,
                }
            }
            "GETACL" => {
                self.sp()?;
                Command::GetAcl(self.mailbox()?)
            }
            "LISTRIGHTS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let identifier = self.astring("identifier")?;
                Command::ListRights {
                    mailbox,
                    identifier,
                }
            }
            "MYRIGHTS" => {
                self.sp()?;
                Command::MyRights(self.mailbox()?)
            }
            "SEARCH" => Command::Search(self.search(false)?),
            "SORT" => Command::Sort(self.sort(false)?),
            "THREAD" => Command::Thread(self.thread(false)?),
            "FETCH" => Command::Fetch(self.fetch(false)?),
            "STORE" => Command::Store(self.store(false)?),
            "COPY" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                Command::Copy {
                    uid: false,
                    set,
                    mailbox,
                }
            }
            "MOVE" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                Command::Move {
                    uid: false,
                    set,
                    mailbox,
                }
            }
            "UID" => {
                self.sp()?;
                let sub = self
                    .atom()
                    .map_err(|_| "Missing command after UID".to_string())?
                    .to_ascii_uppercase();
                match sub.as_str() {
                    "FETCH" => Command::Fetch(self.fetch(true)?),
                    "STORE" => Command::Store(self.store(true)?),
                    "SEARCH" => Command::Search(self.search(true)?),
                    "SORT" => Command::Sort(self.sort(true)?),
                    "THREAD" => Command::Thread(self.thread(true)?),
                    "COPY" => {
                        let (set, mailbox) = self.set_and_mailbox()?;
                        Command::Copy {
                            uid: true,
                            set,
                            mailbox,
                        }
                    }
                    "MOVE" => {
                        let (set, mailbox) = self.set_and_mailbox()?;
                        Command::Move {
                            uid: true,
                            set,
                            mailbox,
                        }
                    }
                    "EXPUNGE" => {
                        self.sp()?;
                        Command::UidExpunge(self.message_set()?)
                    }
                    "REPLACE" => self.replace(true)?,
                    _ => return Err(format!("Unknown command UID {}", printable(&sub))),
                }
            }
            _ => return Err(format!("Unknown command {}", printable(name))),
        })
    }

    fn id(&mut self) -> Result<Command> {
        if self.try_keyword("NIL") {
            return Ok(Command::Id(None));
        }
        let mut fields = Vec::new();
        self.expect(b'(', "NIL or ( after ID")?;
        if self.eat(b')') {
            return Ok(Command::Id(Some(fields)));
        }
        loop {
            if fields.len() >= MAX_ID_FIELDS {
                return Err(format!("More than {MAX_ID_FIELDS} ID fields"));
            }
            let name = self.string()?;
            self.sp()?;
            let value = self.nstring()?;
            if name.len() > MAX_ID_VALUE || value.as_ref().is_some_and(|v| v.len() > MAX_ID_VALUE) {
                return Err("ID field too long".into());
            }
            fields.push((name, value));
            if self.eat(b')') {
                return Ok(Command::Id(Some(fields)));
            }
            self.expect(b' ', "a space or ) in the ID list")?;
        }
    }

    fn authenticate(&mut self) -> Result<Command> {
        let mechanism = self
            .atom()
            .map_err(|_| "Missing SASL mechanism".to_string())?
            .to_ascii_uppercase();
        let initial_response = if self.eat(b' ') {
            if self.eat(b'=') {
                Some(Vec::new())
            } else {
                let encoded = self
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                if encoded.is_empty() {
                    return Err("Invalid initial response".into());
                }
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| "Invalid base64 in initial response".to_string())?;
                Some(decoded)
            }
        } else {
            None
        };
        Ok(Command::Authenticate {
            mechanism,
            initial_response,
        })
    }

    fn select(&mut self) -> Result<SelectCommand> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut select = SelectCommand {
            mailbox,
            condstore: false,
            qresync: None,
        };
        if self.eat(b' ') {
            self.paren_list("SELECT parameters", true, |p| {
                let name = p.atom()?.to_ascii_uppercase();
                match name.as_str() {
                    "CONDSTORE" => select.condstore = true,
                    "QRESYNC" => {
                        p.sp()?;
                        select.qresync = Some(p.qresync()?);
                    }
                    _ => return Err(format!("Unknown SELECT parameter {}", printable(&name))),
                }
                Ok(())
            })?;
        }
        Ok(select)
    }

    /// `(uidvalidity modseq [known-uids] [(seq-match uid-match)])`.
    fn qresync(&mut self) -> Result<QresyncParams> {
        self.expect(b'(', "( after QRESYNC")?;
        let uid_validity = self.nz_number("UIDVALIDITY")?;
        self.sp()?;
        let modseq = self.number64("mod-sequence")?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.sequence_set()?);
                if !self.eat(b' ') {
                    self.expect(b')', ") to close QRESYNC")?;
                    return Ok(QresyncParams {
                        uid_validity,
                        modseq,
                        known_uids,
                        seq_match,
                    });
                }
            }
            self.expect(b'(', "( for the QRESYNC sequence match data")?;
            let seqs = self.sequence_set()?;
            self.sp()?;
            let uids = self.sequence_set()?;
            self.expect(b')', ") to close the sequence match data")?;
            seq_match = Some((seqs, uids));
        }
        self.expect(b')', ") to close QRESYNC")?;
        Ok(QresyncParams {
            uid_validity,
            modseq,
            known_uids,
            seq_match,
        })
    }

    /// RFC 4466 create parameters; only RFC 6154 `USE (...)` is known.
    fn create_params(&mut self) -> Result<Vec<String>> {
        let mut special_use = Vec::new();
        self.paren_list("CREATE parameters", false, |p| {
            let name = p.atom()?.to_ascii_uppercase();
            if name != "USE" {
                return Err(format!("Unknown CREATE parameter {}", printable(&name)));
            }
            p.sp()?;
            let attributes = p.paren_list("USE attributes", false, |p| {
                p.expect(b'\\', "a special-use attribute")?;
                Ok(p.atom()?.to_string())
            })?;
            special_use.extend(attributes);
            Ok(())
        })?;
        Ok(special_use)
    }

    fn list(&mut self) -> Result<ListCommand> {
        self.sp()?;
        let mut list = ListCommand::default();
        if self.peek() == Some(b'(') {
            self.paren_list("LIST selection options", true, |p| {
                let option = p.atom()?.to_ascii_uppercase();
                match option.as_str() {
                    "SUBSCRIBED" => list.subscribed = true,
                    "SPECIAL-USE" => list.special_use_only = true,
                    "RECURSIVEMATCH" => list.recursive_match = true,
                    // We have no remote mailboxes: REMOTE changes nothing.
                    "REMOTE" => {}
                    _ => {
                        return Err(format!(
                            "Unknown LIST selection option {}",
                            printable(&option)
                        ));
                    }
                }
                Ok(())
            })?;
            // RFC 5258 3: RECURSIVEMATCH alone is an error.
            if list.recursive_match && !list.subscribed && !list.special_use_only {
                return Err("RECURSIVEMATCH needs another selection option".into());
            }
            self.sp()?;
        }
        list.reference = self.list_reference()?;
        self.sp()?;
        list.patterns = if self.peek() == Some(b'(') {
            self.paren_list("mailbox patterns", false, Self::list_mailbox)?
        } else {
            vec![self.list_mailbox()?]
        };
        // Every pattern is matched against every folder: the bound is on them all together.
        let total: usize = list.patterns.iter().map(String::len).sum();
        if total > MAX_PATTERN {
            return Err(format!(
                "Mailbox patterns longer than {MAX_PATTERN} bytes in all"
            ));
        }
        if self.eat(b' ') {
            self.keyword("RETURN")?;
            self.sp()?;
            self.paren_list("LIST return options", true, |p| {
                let option = p.atom()?.to_ascii_uppercase();
                match option.as_str() {
                    "SUBSCRIBED" => list.return_subscribed = true,
                    "CHILDREN" => list.return_children = true,
                    "SPECIAL-USE" => list.return_special_use = true,
                    "STATUS" => {
                        p.sp()?;
                        let items = p.paren_list("status items", false, Self::status_item)?;
                        list.return_status = Some(items);
                    }
                    _ => return Err(format!("Unknown LIST return option {}", printable(&option))),
                }
                Ok(())
            })?;
        }
        Ok(list)
    }

    fn status_item(&mut self) -> Result<StatusItem> {
        let item = self.atom()?.to_ascii_uppercase();
        Ok(match item.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "SIZE" => StatusItem::Size,
            "DELETED" => StatusItem::Deleted,
            "MAILBOXID" => StatusItem::MailboxId,
            _ => return Err(format!("Unknown status item {}", printable(&item))),
        })
    }

    fn flag(&mut self) -> Result<Flag> {
        if self.eat(b'\\') {
            let name = self.atom().map_err(|_| "Invalid flag".to_string())?;
            let flag = match name.to_ascii_uppercase().as_str() {
                "SEEN" => Flag::Seen,
                "ANSWERED" => Flag::Answered,
                "FLAGGED" => Flag::Flagged,
                "DELETED" => Flag::Deleted,
                "DRAFT" => Flag::Draft,
                "RECENT" => Flag::Recent,
                _ => Flag::Extension(name.to_string()),
            };
            Ok(flag)
        } else {
            let name = self.atom().map_err(|_| "Invalid flag".to_string())?;
            Ok(Flag::Keyword(name.to_string()))
        }
    }

    fn flag_list(&mut self) -> Result<Vec<Flag>> {
        self.paren_list("flag list", true, Self::flag)
    }

    fn append(&mut self) -> Result<Command> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        loop {
            self.sp()?;
            self.skip_extra_spaces_between_messages(!messages.is_empty());
            let (flags, date) = self.append_options()?;
            let (message, utf8) = self.append_message()?;
            messages.push(AppendItem {
                flags,
                date,
                message,
                utf8,
            });
            if self.at_end() || self.peek() != Some(b' ') {
                break;
            }
            if messages.len() >= MAX_APPEND_MESSAGES {
                return Err(format!(
                    "More than {MAX_APPEND_MESSAGES} messages in one APPEND"
                ));
            }
        }
        Ok(append_command(mailbox, messages))
    }

    /// Spaces after the one that separates two MULTIAPPEND messages. imapclient sends two
    /// before a message with neither flags nor a date; Dovecot accepts them, so we do too.
    fn skip_extra_spaces_between_messages(&mut self, after_a_message: bool) {
        if after_a_message {
            while self.eat(b' ') {}
        }
    }

    /// RFC 6855 `UTF8 (` before APPEND's message, which must then be a `~{n}` literal
    /// followed by `)`; whether it was there.
    fn append_utf8_open(&mut self) -> Result<bool> {
        if !self.try_keyword("UTF8") {
            return Ok(false);
        }
        self.sp()?;
        self.expect(b'(', "( after UTF8")?;
        if self.peek() != Some(b'~') {
            return Err("Expected a literal8 after UTF8 (".into());
        }
        Ok(true)
    }

    /// NOTIFY's arguments (RFC 5465 8): `NONE`, or `SET [STATUS] (filter events) ...`.
    fn notify(&mut self) -> Result<Option<NotifySet>> {
        if self.try_keyword("NONE") {
            return Ok(None);
        }
        self.keyword("SET")?;
        self.sp()?;
        let status = self.try_keyword("STATUS");
        if status {
            self.sp()?;
        }
        let mut groups = Vec::new();
        loop {
            if groups.len() >= MAX_LIST_ITEMS {
                return Err("Too many NOTIFY event groups".into());
            }
            self.expect(b'(', "( to open a NOTIFY event group")?;
            let filter = self.notify_filter()?;
            self.sp()?;
            let events = if self.try_keyword("NONE") {
                Vec::new()
            } else {
                self.paren_list("NOTIFY events", false, Self::notify_event)?
            };
            self.expect(b')', ") to close the NOTIFY event group")?;
            groups.push(NotifyGroup { filter, events });
            if !self.eat(b' ') {
                return Ok(Some(NotifySet { status, groups }));
            }
        }
    }

    fn notify_filter(&mut self) -> Result<NotifyFilter> {
        let name = self.atom()?.to_ascii_uppercase();
        Ok(match name.as_str() {
            "SELECTED" => NotifyFilter::Selected,
            "SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
            "INBOXES" => NotifyFilter::Inboxes,
            "PERSONAL" => NotifyFilter::Personal,
            "SUBSCRIBED" => NotifyFilter::Subscribed,
            "SUBTREE" | "MAILBOXES" => {
                self.sp()?;
                let mailboxes = if self.peek() == Some(b'(') {
                    self.paren_list("mailboxes", false, Self::mailbox)?
                } else {
                    vec![self.mailbox()?]
                };
                if name == "SUBTREE" {
                    NotifyFilter::Subtree(mailboxes)
                } else {
                    NotifyFilter::Mailboxes(mailboxes)
                }
            }
            _ => return Err(format!("Unknown NOTIFY filter {name}")),
        })
    }

    fn notify_event(&mut self) -> Result<NotifyEvent> {
        let name = self.atom()?.to_ascii_uppercase();
        Ok(match name.as_str() {
            "MESSAGENEW" => {
                // The fetch attributes are read only to be refused: balanced parentheses
                // within the line, whatever is inside.
                let fetch = self.peek() == Some(b' ') && self.peek_at(1) == Some(b'(');
                if fetch {
                    self.pos += 1;
                    let mut depth = 0usize;
                    loop {
                        match self.peek() {
                            Some(b'(') => depth += 1,
                            Some(b')') => depth = depth.saturating_sub(1),
                            None | Some(b'\r' | b'\n') => {
                                return Err("Unterminated MessageNew fetch attributes".into());
                            }
                            Some(_) => {}
                        }
                        self.pos += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                }
                NotifyEvent::MessageNew { fetch }
            }
            "MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
            "FLAGCHANGE" => NotifyEvent::FlagChange,
            "MAILBOXNAME" => NotifyEvent::MailboxName,
            "SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
            _ => NotifyEvent::Other(name),
        })
    }

    /// `[UID] REPLACE n mailbox message`, the rest after `REPLACE`.
    fn replace(&mut self, uid: bool) -> Result<Command> {
        self.sp()?;
        let target = self.nz_number("message number")?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let (flags, date) = self.append_options()?;
        let (message, utf8) = self.append_message()?;
        Ok(Command::Replace {
            uid,
            target,
            mailbox,
            message: AppendItem {
                flags,
                date,
                message,
                utf8,
            },
        })
    }

    /// The head of a command whose last literal is streamed (see [`parse_append_head`]).
    fn streamed_append_head(&mut self) -> Result<Command> {
        let name = self.atom()?.to_ascii_uppercase();
        let replace_uid = match name.as_str() {
            "APPEND" => None,
            "REPLACE" => Some(false),
            "UID" => {
                self.sp()?;
                if !self.atom()?.eq_ignore_ascii_case("REPLACE") {
                    return Err("Expected APPEND or REPLACE".into());
                }
                Some(true)
            }
            _ => return Err("Expected APPEND or REPLACE".into()),
        };
        let target = match replace_uid {
            Some(_) => {
                self.sp()?;
                Some(self.nz_number("message number")?)
            }
            None => None,
        };
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut messages = Vec::new();
        loop {
            self.sp()?;
            self.skip_extra_spaces_between_messages(!messages.is_empty());
            let (flags, date) = self.append_options()?;
            let start = self.pos;
            let utf8 = self.append_utf8_open()?;
            let (message, utf8) = if !utf8 && self.try_keyword("CATENATE") {
                (AppendMessage::Catenate(self.catenate_in_head()?), false)
            } else {
                let (size, synchronizing) = self.literal_announcement(true)?;
                if self.rest().is_empty() {
                    let streamed = AppendMessage::Streamed {
                        size,
                        synchronizing,
                    };
                    (streamed, utf8)
                } else {
                    self.pos = start;
                    self.append_message()?
                }
            };
            let last = match &message {
                AppendMessage::Streamed { .. } => true,
                AppendMessage::Catenate(parts) => {
                    matches!(parts.last(), Some(CatenatePart::Streamed { .. }))
                }
                AppendMessage::Inline(_) => false,
            };
            messages.push(AppendItem {
                flags,
                date,
                message,
                utf8,
            });
            if last {
                break;
            }
            if replace_uid.is_some() {
                return Err("Unexpected extra arguments".into());
            }
            if messages.len() >= MAX_APPEND_MESSAGES {
                return Err(format!(
                    "More than {MAX_APPEND_MESSAGES} messages in one APPEND"
                ));
            }
            if self.peek() != Some(b' ') {
                return Err("Unexpected extra arguments".into());
            }
        }
        Ok(match (replace_uid, target) {
            (Some(uid), Some(target)) => Command::Replace {
                uid,
                target,
                mailbox,
                message: messages.pop().ok_or("Missing message literal")?,
            },
            _ => append_command(mailbox, messages),
        })
    }

    /// The parts of a `CATENATE (` in a head whose last literal is streamed: up to the `)`,
    /// or up to that literal, a TEXT part taken as [`CatenatePart::Streamed`].
    fn catenate_in_head(&mut self) -> Result<Vec<CatenatePart>> {
        self.sp()?;
        self.expect(b'(', "( to open the CATENATE parts")?;
        let mut parts = Vec::new();
        loop {
            if parts.len() >= MAX_LIST_ITEMS {
                return Err("Too many items in the CATENATE parts".into());
            }
            let kind = self.atom()?.to_ascii_uppercase();
            self.sp()?;
            match kind.as_str() {
                "URL" => parts.push(CatenatePart::Url(self.astring("URL")?)),
                "TEXT" => {
                    let start = self.pos;
                    let (size, synchronizing) = self.literal_announcement(true)?;
                    if self.rest().is_empty() {
                        parts.push(CatenatePart::Streamed {
                            size,
                            synchronizing,
                        });
                        return Ok(parts);
                    }
                    self.pos = start;
                    parts.push(CatenatePart::Text(self.literal(true)?.to_vec()));
                }
                _ => return Err(format!("Unknown CATENATE part {}", printable(&kind))),
            }
            if self.eat(b')') {
                return Ok(parts);
            }
            if !self.eat(b' ') {
                return Err("Expected a space or ) in the CATENATE parts".into());
            }
        }
    }

    /// What comes before each APPEND message: flags and date, both optional.
    fn append_options(&mut self) -> Result<(Vec<Flag>, Option<OffsetDateTime>)> {
        let flags = if self.peek() == Some(b'(') {
            let flags = self.flag_list()?;
            self.sp()?;
            flags
        } else {
            Vec::new()
        };
        let date = if self.peek() == Some(b'"') {
            let date = self.date_time()?;
            self.sp()?;
            Some(date)
        } else {
            None
        };
        let catenate = self
            .rest()
            .get(..9)
            .is_some_and(|word| word.eq_ignore_ascii_case(b"CATENATE "));
        let utf8 = self
            .rest()
            .get(..5)
            .is_some_and(|word| word.eq_ignore_ascii_case(b"UTF8 "));
        if !catenate && !utf8 && !matches!(self.peek(), Some(b'{' | b'~')) {
            return Err("Missing message literal".into());
        }
        Ok((flags, date))
    }

    /// An APPEND message: a literal, or RFC 4469 `CATENATE (TEXT literal / URL url ...)`.
    /// Also whether it came as RFC 6855 `UTF8 (literal8)`.
    fn append_message(&mut self) -> Result<(AppendMessage, bool)> {
        if self.append_utf8_open()? {
            let message = self.literal(true)?.to_vec();
            self.expect(b')', ") after the UTF8 literal")?;
            return Ok((AppendMessage::Inline(message), true));
        }
        if !self.try_keyword("CATENATE") {
            return Ok((AppendMessage::Inline(self.literal(true)?.to_vec()), false));
        }
        self.sp()?;
        let parts = self.paren_list("CATENATE parts", false, |p| {
            let kind = p.atom()?.to_ascii_uppercase();
            p.sp()?;
            match kind.as_str() {
                "TEXT" => Ok(CatenatePart::Text(p.literal(true)?.to_vec())),
                "URL" => Ok(CatenatePart::Url(p.astring("URL")?)),
                _ => Err(format!("Unknown CATENATE part {}", printable(&kind))),
            }
        })?;
        Ok((AppendMessage::Catenate(parts), false))
    }

    fn set_and_mailbox(&mut self) -> Result<(SequenceSet, String)> {
        self.sp()?;
        let set = self.message_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok((set, mailbox))
    }

    fn search(&mut self, uid: bool) -> Result<SearchCommand> {
        self.sp()?;
        let mut return_options = None;
        if self.try_keyword("RETURN") {
            self.sp()?;
            return_options = Some(self.search_return_options("SEARCH", true)?);
            self.sp()?;
        }
        let mut charset = None;
        if self.try_keyword("CHARSET") {
            self.sp()?;
            charset = Some(self.search_charset_name()?);
            self.sp()?;
        }
        let criteria = self.search_criteria()?;
        Ok(SearchCommand {
            uid,
            charset,
            criteria,
            return_options,
        })
    }

    /// `(option ...)` of SEARCH's or SORT's `RETURN`: ESEARCH's, SEARCHRES's SAVE, CONTEXT's UPDATE,
    /// CONTEXT and, where `partial`, PARTIAL (one PARTIAL or ALL at most, RFC 5267 4.4).
    fn search_return_options(&mut self, command: &str, partial: bool) -> Result<Vec<SearchReturn>> {
        let options = self.paren_list(&format!("{command} return options"), true, |p| {
            let option = p.atom()?.to_ascii_uppercase();
            Ok(match option.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "SAVE" => SearchReturn::Save,
                "UPDATE" => SearchReturn::Update,
                "CONTEXT" => SearchReturn::Context,
                "PARTIAL" if partial => {
                    p.sp()?;
                    let first = p.nz_number("PARTIAL range")?;
                    p.expect(b':', ": in the PARTIAL range")?;
                    let last = p.nz_number("PARTIAL range")?;
                    SearchReturn::Partial(first.min(last), first.max(last))
                }
                _ => {
                    return Err(format!(
                        "Unknown {command} return option {}",
                        printable(&option)
                    ));
                }
            })
        })?;
        let ranges = options
            .iter()
            .filter(|option| matches!(option, SearchReturn::All | SearchReturn::Partial(..)))
            .count();
        if ranges > 1 {
            return Err("At most one of PARTIAL and ALL may be asked for".into());
        }
        Ok(options)
    }

    /// The charset name of SEARCH, SORT and THREAD, upper-cased; the search strings after it
    /// are decoded with it (an unknown one's leniently: the session refuses the command).
    fn search_charset_name(&mut self) -> Result<String> {
        let name = self.astring("charset")?.to_ascii_uppercase();
        self.search_decoder = match search_charset(&name) {
            Some(encoding) if encoding == UTF_8 => None,
            Some(encoding) => Some(encoding),
            None => Some(UTF_8),
        };
        Ok(name)
    }

    /// One or more search keys to the end, ANDed.
    fn search_criteria(&mut self) -> Result<SearchKey> {
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        Ok(if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        })
    }

    /// `SORT [RETURN (...)] (keys) charset criteria` (RFC 5256, 5267, 5957).
    fn sort(&mut self, uid: bool) -> Result<SortCommand> {
        self.sp()?;
        let mut return_options = None;
        if self.try_keyword("RETURN") {
            self.sp()?;
            return_options = Some(self.search_return_options("SORT", true)?);
            self.sp()?;
        }
        let mut reverse = false;
        let keys = self.paren_list("sort criteria", false, |p| {
            let name = p.atom()?.to_ascii_uppercase();
            let key = match name.as_str() {
                "REVERSE" if !reverse => {
                    reverse = true;
                    return Ok(None);
                }
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                _ => return Err(format!("Unknown sort key {}", printable(&name))),
            };
            let criterion = SortCriterion { reverse, key };
            reverse = false;
            Ok(Some(criterion))
        });
        // REVERSE is an item of its own that applies to the next one.
        let keys: Vec<SortCriterion> = keys?.into_iter().flatten().collect();
        if reverse || keys.is_empty() {
            return Err("REVERSE without a sort key".into());
        }
        self.sp()?;
        let charset = self.search_charset_name()?;
        self.sp()?;
        let criteria = self.search_criteria()?;
        Ok(SortCommand {
            uid,
            keys,
            charset,
            criteria,
            return_options,
        })
    }

    /// `THREAD algorithm charset criteria` (RFC 5256).
    fn thread(&mut self, uid: bool) -> Result<ThreadCommand> {
        self.sp()?;
        let name = self.atom()?.to_ascii_uppercase();
        let algorithm = match name.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            "REFS" => ThreadAlgorithm::Refs,
            _ => return Err(format!("Unknown thread algorithm {}", printable(&name))),
        };
        self.sp()?;
        let charset = self.search_charset_name()?;
        self.sp()?;
        let criteria = self.search_criteria()?;
        Ok(ThreadCommand {
            uid,
            algorithm,
            charset,
            criteria,
        })
    }

    fn search_key(&mut self, depth: usize) -> Result<SearchKey> {
        if depth >= MAX_DEPTH {
            return Err(format!(
                "Search criteria nested more than {MAX_DEPTH} levels deep"
            ));
        }
        self.search_keys += 1;
        if self.search_keys > MAX_SEARCH_KEYS {
            return Err(format!("More than {MAX_SEARCH_KEYS} search keys"));
        }
        match self.peek() {
            Some(b'(') => {
                let keys =
                    self.paren_list("search criteria", false, |p| p.search_key(depth + 1))?;
                return Ok(SearchKey::And(keys));
            }
            Some(b'0'..=b'9' | b'*' | b'$') => return self.message_set().map(SearchKey::Sequence),
            _ => {}
        }
        let name = self
            .atom()
            .map_err(|_| "Missing search key".to_string())?
            .to_ascii_uppercase();
        Ok(match name.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "RECENT" => SearchKey::Recent,
            "SEEN" => SearchKey::Seen,
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNSEEN" => SearchKey::Unseen,
            "BCC" => SearchKey::Bcc(self.search_string()?),
            "BODY" => SearchKey::Body(self.search_string()?),
            "CC" => SearchKey::Cc(self.search_string()?),
            "FROM" => SearchKey::From(self.search_string()?),
            "SUBJECT" => SearchKey::Subject(self.search_string()?),
            "TEXT" => SearchKey::Text(self.search_string()?),
            "TO" => SearchKey::To(self.search_string()?),
            "HEADER" => {
                let field = self.search_string()?;
                SearchKey::Header(field, self.search_string()?)
            }
            "KEYWORD" => {
                self.sp()?;
                SearchKey::Keyword(self.atom()?.to_string())
            }
            "UNKEYWORD" => {
                self.sp()?;
                SearchKey::Unkeyword(self.atom()?.to_string())
            }
            "BEFORE" => SearchKey::Before(self.search_date()?),
            "ON" => SearchKey::On(self.search_date()?),
            "SINCE" => SearchKey::Since(self.search_date()?),
            "SENTBEFORE" => SearchKey::SentBefore(self.search_date()?),
            "SENTON" => SearchKey::SentOn(self.search_date()?),
            "SENTSINCE" => SearchKey::SentSince(self.search_date()?),
            "LARGER" => {
                self.sp()?;
                SearchKey::Larger(self.number64("size")?)
            }
            "SMALLER" => {
                self.sp()?;
                SearchKey::Smaller(self.number64("size")?)
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.message_set()?)
            }
            "NOT" => {
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key(depth + 1)?))
            }
            "OR" => {
                self.sp()?;
                let left = self.search_key(depth + 1)?;
                self.sp()?;
                let right = self.search_key(depth + 1)?;
                SearchKey::Or(Box::new(left), Box::new(right))
            }
            "MODSEQ" => {
                self.sp()?;
                // Optional `entry-name entry-type`: ignored, as Dovecot does.
                if self.peek() == Some(b'"') {
                    self.quoted()?;
                    self.sp()?;
                    let kind = self.atom()?.to_ascii_uppercase();
                    if !matches!(kind.as_str(), "PRIV" | "SHARED" | "ALL") {
                        return Err("Invalid MODSEQ entry type".into());
                    }
                    self.sp()?;
                }
                SearchKey::ModSeq(self.number64("mod-sequence")?)
            }
            "SAVEDBEFORE" => SearchKey::SavedBefore(self.search_date()?),
            "SAVEDON" => SearchKey::SavedOn(self.search_date()?),
            "SAVEDSINCE" => SearchKey::SavedSince(self.search_date()?),
            "SAVEDATESUPPORTED" => SearchKey::SaveDateSupported,
            "EMAILID" => {
                self.sp()?;
                SearchKey::EmailId(self.atom()?.to_string())
            }
            "THREADID" => {
                self.sp()?;
                SearchKey::ThreadId(self.atom()?.to_string())
            }
            "OLDER" => {
                self.sp()?;
                SearchKey::Older(self.nz_number("interval")?)
            }
            "YOUNGER" => {
                self.sp()?;
                SearchKey::Younger(self.nz_number("interval")?)
            }
            _ => return Err(format!("Unknown search key {}", printable(&name))),
        })
    }

    fn search_string(&mut self) -> Result<String> {
        self.sp()?;
        let Some(decoder) = self.search_decoder else {
            return self.astring("search string");
        };
        let bytes = match self.peek() {
            Some(b'"') => self.quoted()?,
            Some(b'{') => self.literal(false)?.to_vec(),
            _ => self.astring("search string")?.into_bytes(),
        };
        Ok(decoder.decode_without_bom_handling(&bytes).0.into_owned())
    }

    fn search_date(&mut self) -> Result<Date> {
        self.sp()?;
        self.date()
    }

    fn fetch(&mut self, uid: bool) -> Result<FetchCommand> {
        self.sp()?;
        let set = self.message_set()?;
        self.sp()?;
        let attributes = if self.peek() == Some(b'(') {
            self.paren_list("FETCH attributes", false, Self::fetch_attribute)?
        } else {
            let start = self.pos;
            let name = self
                .atom()
                .map_err(|_| "Missing FETCH attributes".to_string())?;
            let base = [
                FetchAttribute::Flags,
                FetchAttribute::InternalDate,
                FetchAttribute::Rfc822Size,
            ];
            match name.to_ascii_uppercase().as_str() {
                "FAST" => base.to_vec(),
                "ALL" => [&base[..], &[FetchAttribute::Envelope]].concat(),
                "FULL" => [&base[..], &[FetchAttribute::Envelope, FetchAttribute::Body]].concat(),
                _ => {
                    self.pos = start;
                    vec![self.fetch_attribute()?]
                }
            }
        };
        let mut fetch = FetchCommand {
            uid,
            set,
            attributes,
            changed_since: None,
            vanished: false,
        };
        if self.eat(b' ') {
            self.paren_list("FETCH modifiers", false, |p| {
                let name = p.atom()?.to_ascii_uppercase();
                match name.as_str() {
                    "CHANGEDSINCE" => {
                        p.sp()?;
                        fetch.changed_since = Some(p.number64("mod-sequence")?);
                    }
                    "VANISHED" => fetch.vanished = true,
                    _ => return Err(format!("Unknown FETCH modifier {}", printable(&name))),
                }
                Ok(())
            })?;
            // RFC 7162 3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
            if fetch.vanished && (!uid || fetch.changed_since.is_none()) {
                return Err("VANISHED needs UID FETCH and CHANGEDSINCE".into());
            }
        }
        Ok(fetch)
    }

    fn fetch_attribute(&mut self) -> Result<FetchAttribute> {
        let name = self
            .take_while(|b| is_atom_char(b) && b != b'[' && b != b'<')
            .to_ascii_uppercase();
        let name = ascii(&name);
        Ok(match name.as_str() {
            "FLAGS" => FetchAttribute::Flags,
            "INTERNALDATE" => FetchAttribute::InternalDate,
            "RFC822.SIZE" => FetchAttribute::Rfc822Size,
            "ENVELOPE" => FetchAttribute::Envelope,
            "BODYSTRUCTURE" => FetchAttribute::BodyStructure,
            "UID" => FetchAttribute::Uid,
            "MODSEQ" => FetchAttribute::ModSeq,
            "RFC822" => FetchAttribute::Rfc822,
            "RFC822.HEADER" => FetchAttribute::Rfc822Header,
            "RFC822.TEXT" => FetchAttribute::Rfc822Text,
            "BODY" if self.peek() != Some(b'[') => FetchAttribute::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchAttribute::BodySection {
                    peek: name == "BODY.PEEK",
                    section,
                    partial,
                }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.binary_section()?;
                let partial = self.partial()?;
                FetchAttribute::Binary {
                    peek: name == "BINARY.PEEK",
                    part,
                    partial,
                }
            }
            "BINARY.SIZE" => FetchAttribute::BinarySize {
                part: self.binary_section()?,
            },
            "SAVEDATE" => FetchAttribute::SaveDate,
            "EMAILID" => FetchAttribute::EmailId,
            "THREADID" => FetchAttribute::ThreadId,
            "PREVIEW" => FetchAttribute::Preview {
                lazy: self.preview_modifiers()?,
            },
            "" => return Err("Missing FETCH attribute".into()),
            _ => return Err(format!("Unknown FETCH attribute {}", printable(&name))),
        })
    }

    /// RFC 8970: `PREVIEW (LAZY)`; whether LAZY was given.
    fn preview_modifiers(&mut self) -> Result<bool> {
        let start = self.pos;
        if !(self.eat(b' ') && self.peek() == Some(b'(')) {
            self.pos = start;
            return Ok(false);
        }
        let modifiers = self.paren_list("PREVIEW modifiers", false, |p| {
            let name = p.atom()?.to_ascii_uppercase();
            if name == "LAZY" {
                Ok(())
            } else {
                Err(format!("Unknown PREVIEW modifier {}", printable(&name)))
            }
        })?;
        Ok(!modifiers.is_empty())
    }

    /// `[` [part *("." part)] ["." text] | text `]`.
    fn section(&mut self) -> Result<Section> {
        self.expect(b'[', "[ to open the section")?;
        let mut section = Section::default();
        let mut need_text = false;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            section.part.push(self.nz_number("section part")?);
            if !self.eat(b'.') {
                break;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                need_text = true;
                break;
            }
        }
        if self.peek() != Some(b']') || need_text {
            let text = self
                .take_while(|b| b.is_ascii_alphabetic() || b == b'.')
                .to_ascii_uppercase();
            section.text = Some(match text.as_slice() {
                b"HEADER" => SectionText::Header,
                b"TEXT" => SectionText::Text,
                b"MIME" if !section.part.is_empty() => SectionText::Mime,
                b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    let fields = self.paren_list("header field list", false, |p| {
                        p.astring("header field name")
                    })?;
                    SectionText::HeaderFields {
                        not: text.ends_with(b".NOT"),
                        fields,
                    }
                }
                _ => return Err("Invalid section".into()),
            });
        }
        self.expect(b']', "] to close the section")?;
        Ok(section)
    }

    fn binary_section(&mut self) -> Result<Vec<u32>> {
        self.expect(b'[', "[ to open the section")?;
        let mut part = Vec::new();
        if !self.eat(b']') {
            loop {
                part.push(self.nz_number("section part")?);
                if self.eat(b']') {
                    break;
                }
                self.expect(b'.', ". or ] in the section")?;
            }
        }
        Ok(part)
    }

    /// `<offset.count>`.
    fn partial(&mut self) -> Result<Option<Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number("partial offset")?;
        self.expect(b'.', ". in the partial range")?;
        let count = self.nz_number("partial length")?;
        self.expect(b'>', "> to close the partial range")?;
        Ok(Some(Partial { offset, count }))
    }

    fn store(&mut self, uid: bool) -> Result<StoreCommand> {
        self.sp()?;
        let set = self.message_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.peek() == Some(b'(') {
            self.paren_list("STORE modifiers", false, |p| {
                let name = p.atom()?.to_ascii_uppercase();
                if name != "UNCHANGEDSINCE" {
                    return Err(format!("Unknown STORE modifier {}", printable(&name)));
                }
                p.sp()?;
                unchanged_since = Some(p.number64("mod-sequence")?);
                Ok(())
            })?;
            self.sp()?;
        }
        let item = self
            .atom()
            .map_err(|_| "Missing STORE data item".to_string())?
            .to_ascii_uppercase();
        let (operation, silent) = match item.as_str() {
            "FLAGS" => (StoreOperation::Replace, false),
            "FLAGS.SILENT" => (StoreOperation::Replace, true),
            "+FLAGS" => (StoreOperation::Add, false),
            "+FLAGS.SILENT" => (StoreOperation::Add, true),
            "-FLAGS" => (StoreOperation::Remove, false),
            "-FLAGS.SILENT" => (StoreOperation::Remove, true),
            _ => return Err(format!("Unknown STORE data item {}", printable(&item))),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                if flags.len() >= MAX_LIST_ITEMS {
                    return Err("Too many flags".into());
                }
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(StoreCommand {
            uid,
            set,
            operation,
            silent,
            flags,
            unchanged_since,
        })
    }
}

/// The rest of a date after its day digits: `-Mon-yyyy`.
fn parse_date_parts(day: &[u8], p: &mut Parser<'_>) -> Option<Date> {
    if day.is_empty() || day.len() > 2 {
        return None;
    }
    let day = day.iter().fold(0u8, |acc, &d| acc * 10 + (d - b'0'));
    p.eat(b'-').then_some(())?;
    let month = p.rest().get(..3)?;
    let month = match month.to_ascii_lowercase().as_slice() {
        b"jan" => Month::January,
        b"feb" => Month::February,
        b"mar" => Month::March,
        b"apr" => Month::April,
        b"may" => Month::May,
        b"jun" => Month::June,
        b"jul" => Month::July,
        b"aug" => Month::August,
        b"sep" => Month::September,
        b"oct" => Month::October,
        b"nov" => Month::November,
        b"dec" => Month::December,
        _ => return None,
    };
    p.pos += 3;
    p.eat(b'-').then_some(())?;
    let year = p.rest().get(..4)?;
    if !year.iter().all(u8::is_ascii_digit) {
        return None;
    }
    p.pos += 4;
    let year = year
        .iter()
        .fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
    Date::from_calendar_date(year, month, day).ok()
}

/// Bytes known to be ASCII (atoms, tags) as a String.
fn bounded_pattern(pattern: String) -> Result<String> {
    if pattern.len() > MAX_PATTERN {
        return Err(format!("Mailbox pattern longer than {MAX_PATTERN} bytes"));
    }
    Ok(pattern)
}

fn bounded_set(ranges: Vec<SeqRange>) -> Result<SequenceSet> {
    let set = SequenceSet::new(ranges);
    if set.ranges().len() > MAX_SET_RANGES {
        return Err(format!(
            "Sequence set with more than {MAX_SET_RANGES} ranges"
        ));
    }
    Ok(set)
}

fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| "String is not valid UTF-8".to_string())
}

/// A client's word for an error message: short, so a response line stays sane.
fn printable(word: &str) -> String {
    word.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn ok(input: &str) -> Command {
        let line = format!("{input}\r\n");
        match parse_command(line.as_bytes()) {
            Ok(tagged) => {
                assert_eq!(tagged.tag, "a1");
                tagged.command
            }
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    fn err(input: &str) -> String {
        let line = format!("{input}\r\n");
        match parse_command(line.as_bytes()) {
            Ok(tagged) => panic!("{input:?} parsed as {tagged:?}"),
            Err(e) => e.message,
        }
    }

    fn set(ranges: &[(u32, u32)]) -> SequenceSet {
        let n = |v| {
            if v == 0 {
                SeqNumber::Largest
            } else {
                SeqNumber::Value(v)
            }
        };
        SequenceSet::new(ranges.iter().map(|&(a, b)| SeqRange {
            start: n(a),
            end: n(b),
        }))
    }

    #[test]
    fn simple_commands_any_case() {
        assert_eq!(ok("a1 capability"), Command::Capability);
        assert_eq!(ok("a1 NoOp"), Command::Noop);
        assert_eq!(ok("a1 LOGOUT"), Command::Logout);
        assert_eq!(ok("a1 STARTTLS"), Command::StartTls);
        assert_eq!(ok("a1 NAMESPACE"), Command::Namespace);
        assert_eq!(
            ok("a1 SETACL INBOX bob +lr"),
            Command::SetAcl {
                mailbox: "INBOX".into(),
                identifier: "bob".into(),
                rights: "+lr".into()
            }
        );
        assert_eq!(
            ok("a1 DELETEACL \"Work\" \"$staff\""),
            Command::DeleteAcl {
                mailbox: "Work".into(),
                identifier: "$staff".into()
            }
        );
        assert_eq!(ok("a1 GETACL INBOX"), Command::GetAcl("INBOX".into()));
        assert_eq!(ok("a1 MYRIGHTS INBOX"), Command::MyRights("INBOX".into()));
        assert_eq!(
            ok("a1 LISTRIGHTS INBOX anyone"),
            Command::ListRights {
                mailbox: "INBOX".into(),
                identifier: "anyone".into()
            }
        );
        assert_eq!(ok("a1 idle"), Command::Idle);
        assert_eq!(ok("a1 CHECK"), Command::Check);
        assert_eq!(ok("a1 CLOSE"), Command::Close);
        assert_eq!(ok("a1 UNSELECT"), Command::Unselect);
        assert_eq!(ok("a1 EXPUNGE"), Command::Expunge);
        // Bare LF and no line end at all are accepted too.
        assert!(parse_command(b"a1 NOOP\n").is_ok());
        assert!(parse_command(b"a1 NOOP").is_ok());
    }

    #[test]
    fn tags_and_errors_without_tag() {
        let e = parse_command(b"\r\n").unwrap_err();
        assert_eq!((e.tag, e.message.as_str()), (None, "Empty command line"));
        let e = parse_command(b"a+b NOOP\r\n").unwrap_err();
        assert_eq!(e.tag, None);
        let e = parse_command(b"(x NOOP\r\n").unwrap_err();
        assert_eq!(e.tag, None);
        let e = parse_command(b"a1\r\n").unwrap_err();
        assert_eq!(
            (e.tag.as_deref(), e.message.as_str()),
            (Some("a1"), "Missing command")
        );
        let e = parse_command(b"A.1] FOO\r\n").unwrap_err();
        assert_eq!(e.tag.as_deref(), Some("A.1]"));
        assert_eq!(e.message, "Unknown command FOO");
        assert_eq!(err("a1 UID FOO 1"), "Unknown command UID FOO");
        assert_eq!(err("a1 NOOP extra"), "Unexpected extra arguments");
        assert_eq!(err("a1 LOGOUT "), "Unexpected extra arguments");
        assert_eq!(err("a1  NOOP"), "Missing command");
    }

    #[test]
    fn login_strings() {
        assert_eq!(
            ok(r#"a1 LOGIN user@example.com "p \"q\" \\ r""#),
            Command::Login {
                user: "user@example.com".into(),
                password: r#"p "q" \ r"#.into()
            }
        );
        assert_eq!(
            ok("a1 login {4}\r\nu se {3+}\r\np\"w"),
            Command::Login {
                user: "u se".into(),
                password: "p\"w".into()
            }
        );
        assert_eq!(
            ok("a1 LOGIN \"\" \"\""),
            Command::Login {
                user: String::new(),
                password: String::new()
            }
        );
        assert_eq!(
            ok("a1 LOGIN \"jos\u{e9}\" x"),
            Command::Login {
                user: "jos\u{e9}".into(),
                password: "x".into()
            }
        );
        assert_eq!(err("a1 LOGIN user"), "Missing arguments");
        assert_eq!(err("a1 LOGIN \"user x"), "Unterminated quoted string");
        assert_eq!(
            err("a1 LOGIN \"a\\b\" x"),
            "Invalid escape in quoted string"
        );
        assert_eq!(
            err("a1 LOGIN {10}\r\nabc x"),
            "Literal runs past the end of the command"
        );
        assert_eq!(err("a1 LOGIN {2}\r\na\0 x"), "NUL in literal");
        assert_eq!(err("a1 LOGIN u (x)"), "Missing password");
        assert!(parse_command(b"a1 LOGIN \"\xff\" x\r\n").is_err());
    }

    #[test]
    fn authenticate_with_and_without_initial_response() {
        assert_eq!(
            ok("a1 AUTHENTICATE plain"),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: None
            }
        );
        assert_eq!(
            ok("a1 AUTHENTICATE PLAIN AHVzZXIAcGFzcw=="),
            Command::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(b"\0user\0pass".to_vec())
            }
        );
        assert_eq!(
            ok("a1 AUTHENTICATE EXTERNAL ="),
            Command::Authenticate {
                mechanism: "EXTERNAL".into(),
                initial_response: Some(vec![])
            }
        );
        assert_eq!(
            err("a1 AUTHENTICATE PLAIN AHV*"),
            "Invalid base64 in initial response"
        );
        assert_eq!(
            err("a1 AUTHENTICATE PLAIN =x"),
            "Unexpected extra arguments"
        );
        assert_eq!(
            err("a1 AUTHENTICATE PLAIN AHVzZ"),
            "Invalid base64 in initial response"
        );
        assert_eq!(err("a1 AUTHENTICATE"), "Missing arguments");
    }

    #[test]
    fn id_and_enable() {
        assert_eq!(ok("a1 ID NIL"), Command::Id(None));
        assert_eq!(
            ok(r#"a1 ID ("name" "Thunderbird" "version" NIL)"#),
            Command::Id(Some(vec![
                ("name".into(), Some("Thunderbird".into())),
                ("version".into(), None)
            ]))
        );
        assert_eq!(ok("a1 ID ()"), Command::Id(Some(vec![])));
        assert_eq!(err("a1 ID (\"name\")"), "Expected a space");
        assert_eq!(
            ok("a1 ENABLE condstore QRESYNC"),
            Command::Enable(vec!["CONDSTORE".into(), "QRESYNC".into()])
        );
        assert_eq!(err("a1 ENABLE"), "Missing arguments");
    }

    #[test]
    fn select_and_examine() {
        let plain = |mailbox: &str| SelectCommand {
            mailbox: mailbox.into(),
            condstore: false,
            qresync: None,
        };
        assert_eq!(ok("a1 SELECT inbox"), Command::Select(plain("inbox")));
        assert_eq!(
            ok("a1 EXAMINE \"Sent Items\""),
            Command::Examine(plain("Sent Items"))
        );
        assert_eq!(
            ok("a1 SELECT INBOX (CONDSTORE)"),
            Command::Select(SelectCommand {
                condstore: true,
                ..plain("INBOX")
            })
        );
        assert_eq!(
            ok("a1 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            Command::Select(SelectCommand {
                qresync: Some(QresyncParams {
                    uid_validity: 67890007,
                    modseq: 20050715194045000,
                    known_uids: Some(set(&[(41, 41), (43, 211), (214, 541)])),
                    seq_match: None,
                }),
                ..plain("INBOX")
            })
        );
        assert_eq!(
            ok("a1 SELECT INBOX (QRESYNC (1 2 1:100 (1,5 10,50)) CONDSTORE)"),
            Command::Select(SelectCommand {
                condstore: true,
                qresync: Some(QresyncParams {
                    uid_validity: 1,
                    modseq: 2,
                    known_uids: Some(set(&[(1, 100)])),
                    seq_match: Some((set(&[(1, 1), (5, 5)]), set(&[(10, 10), (50, 50)]))),
                }),
                ..plain("INBOX")
            })
        );
        assert_eq!(
            ok("a1 SELECT INBOX (QRESYNC (1 2 (1 10)))"),
            Command::Select(SelectCommand {
                qresync: Some(QresyncParams {
                    uid_validity: 1,
                    modseq: 2,
                    known_uids: None,
                    seq_match: Some((set(&[(1, 1)]), set(&[(10, 10)]))),
                }),
                ..plain("INBOX")
            })
        );
        assert_eq!(
            ok("a1 SELECT INBOX (QRESYNC (1 2))"),
            Command::Select(SelectCommand {
                qresync: Some(QresyncParams {
                    uid_validity: 1,
                    modseq: 2,
                    known_uids: None,
                    seq_match: None,
                }),
                ..plain("INBOX")
            })
        );
        assert_eq!(err("a1 SELECT INBOX (FOO)"), "Unknown SELECT parameter FOO");
        assert_eq!(
            err("a1 SELECT INBOX (QRESYNC (0 2))"),
            "Invalid UIDVALIDITY: zero"
        );
        assert_eq!(err("a1 SELECT"), "Missing arguments");
    }

    #[test]
    fn notify_set_and_none() {
        assert_eq!(ok("a1 NOTIFY NONE"), Command::Notify(None));
        assert_eq!(
            ok(
                "a1 notify set status (selected (MessageNew MessageExpunge FlagChange)) \
                (SUBTREE (INBOX \"A b\") (MessageNew MessageExpunge)) (Mailboxes Sent NONE) \
                (PERSONAL (MailboxName SubscriptionChange AnnotationChange))"
            ),
            Command::Notify(Some(NotifySet {
                status: true,
                groups: vec![
                    NotifyGroup {
                        filter: NotifyFilter::Selected,
                        events: vec![
                            NotifyEvent::MessageNew { fetch: false },
                            NotifyEvent::MessageExpunge,
                            NotifyEvent::FlagChange
                        ],
                    },
                    NotifyGroup {
                        filter: NotifyFilter::Subtree(vec!["INBOX".into(), "A b".into()]),
                        events: vec![
                            NotifyEvent::MessageNew { fetch: false },
                            NotifyEvent::MessageExpunge
                        ],
                    },
                    NotifyGroup {
                        filter: NotifyFilter::Mailboxes(vec!["Sent".into()]),
                        events: vec![],
                    },
                    NotifyGroup {
                        filter: NotifyFilter::Personal,
                        events: vec![
                            NotifyEvent::MailboxName,
                            NotifyEvent::SubscriptionChange,
                            NotifyEvent::Other("ANNOTATIONCHANGE".into())
                        ],
                    },
                ],
            }))
        );
        assert_eq!(
            ok(
                "a1 NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From)]) MessageExpunge))"
            ),
            Command::Notify(Some(NotifySet {
                status: false,
                groups: vec![NotifyGroup {
                    filter: NotifyFilter::Selected,
                    events: vec![
                        NotifyEvent::MessageNew { fetch: true },
                        NotifyEvent::MessageExpunge
                    ],
                }],
            }))
        );
        for bad in [
            "a1 NOTIFY",
            "a1 NOTIFY SET",
            "a1 NOTIFY SET (SELECTED)",
            "a1 NOTIFY SET (ELSEWHERE (MessageNew))",
            "a1 NOTIFY SET (SELECTED (MessageNew (UID)",
            "a1 NOTIFY SET (SELECTED ())",
        ] {
            err(bad);
        }
    }

    #[test]
    fn append_utf8_literal() {
        assert_eq!(
            ok("a1 APPEND INBOX UTF8 (~{6}\r\nhällo)"),
            Command::Append {
                mailbox: "INBOX".into(),
                flags: vec![],
                date: None,
                message: AppendMessage::Inline("hällo".as_bytes().to_vec()),
                utf8: true,
            }
        );
        assert_eq!(
            err("a1 APPEND INBOX UTF8 ({5}\r\nhello)"),
            "Expected a literal8 after UTF8 ("
        );
        assert!(!err("a1 APPEND INBOX UTF8 (~{5}\r\nhello").is_empty());
        assert!(matches!(
            parse_append_head(b"a1 APPEND x UTF8 (~{70000+}\r\n").map(|t| t.command),
            Ok(Command::Append {
                utf8: true,
                message: AppendMessage::Streamed { size: 70000, .. },
                ..
            })
        ));
    }

    #[test]
    fn compress() {
        assert_eq!(
            ok("a1 compress deflate"),
            Command::Compress("DEFLATE".into())
        );
        err("a1 COMPRESS");
    }

    #[test]
    fn mailbox_management() {
        assert_eq!(
            ok("a1 CREATE Archive"),
            Command::Create {
                mailbox: "Archive".into(),
                special_use: vec![]
            }
        );
        assert_eq!(
            ok("a1 CREATE \"My Sent\" (USE (\\Sent \\Archive))"),
            Command::Create {
                mailbox: "My Sent".into(),
                special_use: vec!["Sent".into(), "Archive".into()]
            }
        );
        assert_eq!(err("a1 CREATE x (FOO)"), "Unknown CREATE parameter FOO");
        assert_eq!(
            ok("a1 DELETE &ZeVnLIqe-"),
            Command::Delete("&ZeVnLIqe-".into())
        );
        assert_eq!(
            ok("a1 RENAME a \"b c\""),
            Command::Rename {
                from: "a".into(),
                to: "b c".into()
            }
        );
        assert_eq!(
            ok("a1 SUBSCRIBE INBOX.x"),
            Command::Subscribe("INBOX.x".into())
        );
        assert_eq!(ok("a1 UNSUBSCRIBE x"), Command::Unsubscribe("x".into()));
        assert_eq!(
            ok("a1 LSUB \"\" *"),
            Command::Lsub {
                reference: String::new(),
                pattern: "*".into()
            }
        );
        assert_eq!(
            ok(
                "a1 STATUS INBOX (MESSAGES UIDNEXT uidvalidity UNSEEN RECENT HIGHESTMODSEQ SIZE DELETED)"
            ),
            Command::Status {
                mailbox: "INBOX".into(),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::Recent,
                    StatusItem::HighestModSeq,
                    StatusItem::Size,
                    StatusItem::Deleted
                ]
            }
        );
        assert_eq!(err("a1 STATUS INBOX ()"), "Empty status items");
        assert_eq!(err("a1 STATUS INBOX (FOO)"), "Unknown status item FOO");
    }

    #[test]
    fn list_forms() {
        assert_eq!(
            ok("a1 LIST \"\" %"),
            Command::List(ListCommand {
                patterns: vec!["%".into()],
                ..ListCommand::default()
            })
        );
        assert_eq!(
            ok(
                "a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"a\" \"b\" INBOX*) RETURN (CHILDREN special-use SUBSCRIBED STATUS (MESSAGES UNSEEN))"
            ),
            Command::List(ListCommand {
                reference: String::new(),
                patterns: vec!["a".into(), "b".into(), "INBOX*".into()],
                subscribed: true,
                recursive_match: true,
                return_children: true,
                return_special_use: true,
                return_subscribed: true,
                return_status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                ..ListCommand::default()
            })
        );
        assert_eq!(
            ok("a1 LIST (SPECIAL-USE) \"\" *"),
            Command::List(ListCommand {
                patterns: vec!["*".into()],
                special_use_only: true,
                ..ListCommand::default()
            })
        );
        assert_eq!(
            ok("a1 LIST () \"\" * RETURN ()"),
            Command::List(ListCommand {
                patterns: vec!["*".into()],
                ..ListCommand::default()
            })
        );
        assert_eq!(
            err("a1 LIST (RECURSIVEMATCH) \"\" *"),
            "RECURSIVEMATCH needs another selection option"
        );
        assert_eq!(err("a1 LIST \"\" * FOO (X)"), "Expected RETURN");
        assert_eq!(
            err("a1 LIST (BOGUS) \"\" *"),
            "Unknown LIST selection option BOGUS"
        );
        assert_eq!(err("a1 LIST \"\" ()"), "Empty mailbox patterns");
    }

    #[test]
    fn multiappend_catenate_and_replace_forms() {
        let item = |flags: Vec<Flag>, message: AppendMessage| AppendItem {
            flags,
            date: None,
            message,
            utf8: false,
        };
        assert_eq!(
            ok("a1 APPEND x (\\Seen) {1+}\r\na {2+}\r\nbc"),
            Command::MultiAppend {
                mailbox: "x".into(),
                messages: vec![
                    item(vec![Flag::Seen], AppendMessage::Inline(b"a".to_vec())),
                    item(vec![], AppendMessage::Inline(b"bc".to_vec())),
                ],
            }
        );
        assert_eq!(
            ok("a1 APPEND x CATENATE (URL \"/INBOX/;UID=1\" TEXT {2+}\r\nhi)"),
            Command::Append {
                mailbox: "x".into(),
                flags: vec![],
                date: None,
                message: AppendMessage::Catenate(vec![
                    CatenatePart::Url("/INBOX/;UID=1".into()),
                    CatenatePart::Text(b"hi".to_vec()),
                ]),
                utf8: false,
            }
        );
        assert_eq!(
            ok("a1 UID REPLACE 7 Drafts (\\Draft) {1+}\r\nz"),
            Command::Replace {
                uid: true,
                target: 7,
                mailbox: "Drafts".into(),
                message: item(vec![Flag::Draft], AppendMessage::Inline(b"z".to_vec())),
            }
        );
        assert_eq!(err("a1 APPEND x CATENATE ()"), "Empty CATENATE parts");
        assert_eq!(
            err("a1 APPEND x CATENATE (BODY {1+}\r\nz)"),
            "Unknown CATENATE part BODY"
        );
        assert_eq!(
            err("a1 REPLACE 0 x {1+}\r\nz"),
            "Invalid message number: zero"
        );
        assert_eq!(
            parse_append_rest(b" (\\Seen) {70000+}\r\n", false),
            Ok(Some(NextMessage {
                flags: vec![Flag::Seen],
                date: None,
                size: 70000,
                synchronizing: false,
                utf8: false,
            }))
        );
        assert_eq!(parse_append_rest(b"\r\n", false), Ok(None));
        assert!(parse_append_rest(b" {5}\r\nx", false).is_err());
        // After a streamed `UTF8 (~{n}` literal the line starts with its `)`.
        assert_eq!(parse_append_rest(b")\r\n", true), Ok(None));
        assert!(parse_append_rest(b"\r\n", true).is_err());
        assert_eq!(
            parse_append_rest(b") UTF8 (~{70000+}\r\n", true),
            Ok(Some(NextMessage {
                flags: vec![],
                date: None,
                size: 70000,
                synchronizing: false,
                utf8: true,
            }))
        );
        assert_eq!(
            parse_section("1.HEADER.FIELDS (SUBJECT)").map(|s| s.part),
            Some(vec![1])
        );
        assert_eq!(parse_section("1.BOGUS"), None);
    }

    #[test]
    fn streamed_catenate_heads_and_rest_lines() {
        let head = |text: &str| parse_append_head(text.as_bytes()).map(|tagged| tagged.command);
        assert_eq!(
            head("a1 APPEND x CATENATE (TEXT {2+}\r\nhi URL \"/INBOX/;UID=1\" TEXT {70000}\r\n"),
            Ok(Command::Append {
                mailbox: "x".into(),
                flags: vec![],
                date: None,
                message: AppendMessage::Catenate(vec![
                    CatenatePart::Text(b"hi".to_vec()),
                    CatenatePart::Url("/INBOX/;UID=1".into()),
                    CatenatePart::Streamed {
                        size: 70000,
                        synchronizing: true,
                    },
                ]),
                utf8: false,
            })
        );
        // A whole CATENATE before the streamed literal of the next message.
        assert!(matches!(
            head("a1 APPEND x CATENATE (URL \"/INBOX/;UID=1\") {70000+}\r\n"),
            Ok(Command::MultiAppend { messages, .. })
                if matches!(messages[0].message, AppendMessage::Catenate(_))
                    && messages[1].message
                        == AppendMessage::Streamed { size: 70000, synchronizing: false }
        ));
        assert_eq!(
            parse_catenate_rest(b" URL \"/INBOX/;UID=1\" TEXT {5+}\r\n", 2),
            Ok(CatenateRest {
                urls: vec!["/INBOX/;UID=1".into()],
                next: CatenateNext::Text {
                    size: 5,
                    synchronizing: false,
                },
            })
        );
        assert_eq!(
            parse_catenate_rest(b") (\\Seen) {5}\r\n", 2),
            Ok(CatenateRest {
                urls: vec![],
                next: CatenateNext::End(b" (\\Seen) {5}\r\n".to_vec()),
            })
        );
        assert!(parse_catenate_rest(b" URL {13}\r\n", 2).is_err());
        assert!(parse_catenate_rest(b" TEXT {5}\r\nhello)\r\n", 2).is_err());
        assert!(parse_catenate_rest(b" BODY x)\r\n", 2).is_err());
        assert!(parse_catenate_rest(b"\r\n", 2).is_err());
        assert!(parse_catenate_rest(b" URL x)\r\n", MAX_LIST_ITEMS).is_err());
    }

    #[test]
    fn append_forms() {
        assert_eq!(
            ok("a1 APPEND INBOX {5}\r\nhello"),
            Command::Append {
                mailbox: "INBOX".into(),
                flags: vec![],
                date: None,
                message: AppendMessage::Inline(b"hello".to_vec()),
                utf8: false
            }
        );
        assert_eq!(
            ok(
                "a1 APPEND Sent (\\Seen $Forwarded) \"21-Nov-2026 18:00:00 +0000\" {6+}\r\na\r\nb\r\n"
            ),
            Command::Append {
                mailbox: "Sent".into(),
                flags: vec![Flag::Seen, Flag::Keyword("$Forwarded".into())],
                date: Some(datetime!(2026-11-21 18:00:00 +0)),
                message: AppendMessage::Inline(b"a\r\nb\r\n".to_vec()),
                utf8: false
            }
        );
        assert_eq!(
            ok("a1 APPEND x () \" 1-Feb-2024 03:04:05 -0130\" ~{3}\r\na\0b"),
            Command::Append {
                mailbox: "x".into(),
                flags: vec![],
                date: Some(datetime!(2024-02-01 03:04:05 -1:30)),
                message: AppendMessage::Inline(b"a\0b".to_vec()),
                utf8: false
            }
        );
        assert_eq!(
            parse_append_head(b"a1 append Sent (\\Seen) {70000+}\r\n"),
            Ok(Tagged {
                tag: "a1".into(),
                command: Command::Append {
                    mailbox: "Sent".into(),
                    flags: vec![Flag::Seen],
                    date: None,
                    message: AppendMessage::Streamed {
                        size: 70000,
                        synchronizing: false
                    },
                    utf8: false
                }
            })
        );
        assert!(matches!(
            parse_append_head(b"a1 APPEND x ~{70000}\r\n").map(|t| t.command),
            Ok(Command::Append {
                message: AppendMessage::Streamed {
                    synchronizing: true,
                    ..
                },
                ..
            })
        ));
        for (head, message) in [
            (
                &b"a1 APPEND x hello {70000}\r\n"[..],
                "Missing message literal",
            ),
            (
                b"a1 APPEND {70000}\r\n",
                "Literal runs past the end of the command",
            ),
            (b"a1 LOGIN x {70000}\r\n", "Expected APPEND or REPLACE"),
            // Bytes after the announcement make it an inline literal, which this is not.
            (
                b"a1 APPEND x {70000}\r\nabc",
                "Literal runs past the end of the command",
            ),
            (
                b"a1 REPLACE 1 x {5+}\r\nabcde {70000}\r\n",
                "Unexpected extra arguments",
            ),
        ] {
            assert_eq!(
                parse_append_head(head),
                Err(ParseError {
                    tag: Some("a1".into()),
                    message: message.into()
                }),
                "{head:?}"
            );
        }
        assert_eq!(err("a1 APPEND x"), "Missing arguments");
        assert_eq!(err("a1 APPEND x (\\Seen)"), "Missing arguments");
        assert_eq!(err("a1 APPEND x \"hello\""), "Invalid date-time");
        assert_eq!(
            err("a1 APPEND x \"31-Feb-2024 00:00:00 +0000\" {1}\r\na"),
            "Invalid date-time"
        );
        assert_eq!(
            err("a1 APPEND x \"1-Feb-2024 24:00:00 +0000\" {1}\r\na"),
            "Invalid date-time"
        );
        assert_eq!(err("a1 APPEND x hello"), "Missing message literal");
        assert_eq!(err("a1 APPEND x {1}\r\nab"), "Unexpected extra arguments");
    }

    #[test]
    fn quota_commands() {
        assert_eq!(ok("a1 GETQUOTA \"\""), Command::GetQuota(String::new()));
        assert_eq!(
            ok("a1 GETQUOTAROOT INBOX"),
            Command::GetQuotaRoot("INBOX".into())
        );
        assert_eq!(
            ok("a1 SETQUOTA \"\" (STORAGE 512)"),
            Command::SetQuota(String::new())
        );
        assert_eq!(ok("a1 SETQUOTA x ()"), Command::SetQuota("x".into()));
        assert!(parse_command(b"a1 SETQUOTA x (STORAGE)\r\n").is_err());
    }

    #[test]
    fn sequence_sets() {
        let fetch_set = |input: &str| match ok(input) {
            Command::Fetch(f) => f.set,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fetch_set("a1 FETCH 1:4,7,9:* FLAGS"),
            set(&[(1, 4), (7, 7), (9, 0)])
        );
        assert_eq!(fetch_set("a1 FETCH * FLAGS"), set(&[(0, 0)]));
        assert_eq!(
            fetch_set("a1 FETCH 4294967295 FLAGS"),
            set(&[(u32::MAX, u32::MAX)])
        );
        assert_eq!(err("a1 FETCH FLAGS"), "Missing sequence set");
        assert_eq!(
            err("a1 FETCH 0 FLAGS"),
            "Invalid sequence set: Invalid sequence number: zero"
        );
        assert_eq!(
            err("a1 FETCH 1, FLAGS"),
            "Invalid sequence set: Expected sequence number"
        );
        assert_eq!(err("a1 FETCH 1x FLAGS"), "Invalid sequence set");
        assert!(err("a1 FETCH 4294967296 FLAGS").contains("too large"));
        assert_eq!(err("a1 COPY 1"), "Missing arguments");
    }

    #[test]
    fn fetch_attributes_and_macros() {
        let attrs = |input: &str| match ok(input) {
            Command::Fetch(f) => f.attributes,
            other => panic!("{other:?}"),
        };
        use FetchAttribute as A;
        assert_eq!(
            attrs("a1 FETCH 1 all"),
            vec![A::Flags, A::InternalDate, A::Rfc822Size, A::Envelope]
        );
        assert_eq!(
            attrs("a1 FETCH 1 FAST"),
            vec![A::Flags, A::InternalDate, A::Rfc822Size]
        );
        assert_eq!(
            attrs("a1 FETCH 1 FULL"),
            vec![
                A::Flags,
                A::InternalDate,
                A::Rfc822Size,
                A::Envelope,
                A::Body
            ]
        );
        assert_eq!(
            attrs(
                "a1 FETCH 1 (UID RFC822.SIZE FLAGS BODYSTRUCTURE ENVELOPE INTERNALDATE MODSEQ RFC822 RFC822.HEADER RFC822.TEXT BODY)"
            ),
            vec![
                A::Uid,
                A::Rfc822Size,
                A::Flags,
                A::BodyStructure,
                A::Envelope,
                A::InternalDate,
                A::ModSeq,
                A::Rfc822,
                A::Rfc822Header,
                A::Rfc822Text,
                A::Body
            ]
        );
        assert_eq!(
            attrs(
                "a1 FETCH 1 (BODY[] BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.2048> body[1.2.mime] BODY[2.TEXT] BODY[3] BODY[HEADER.FIELDS.NOT (X)])"
            ),
            vec![
                A::BodySection {
                    peek: false,
                    section: Section::default(),
                    partial: None
                },
                A::BodySection {
                    peek: true,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields {
                            not: false,
                            fields: vec!["From".into(), "To".into()]
                        })
                    },
                    partial: Some(Partial {
                        offset: 0,
                        count: 2048
                    })
                },
                A::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![1, 2],
                        text: Some(SectionText::Mime)
                    },
                    partial: None
                },
                A::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![2],
                        text: Some(SectionText::Text)
                    },
                    partial: None
                },
                A::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![3],
                        text: None
                    },
                    partial: None
                },
                A::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields {
                            not: true,
                            fields: vec!["X".into()]
                        })
                    },
                    partial: None
                },
            ]
        );
        assert_eq!(
            attrs("a1 FETCH 1 (BINARY[1.2]<5.10> BINARY.PEEK[] BINARY.SIZE[3])"),
            vec![
                A::Binary {
                    peek: false,
                    part: vec![1, 2],
                    partial: Some(Partial {
                        offset: 5,
                        count: 10
                    })
                },
                A::Binary {
                    peek: true,
                    part: vec![],
                    partial: None
                },
                A::BinarySize { part: vec![3] },
            ]
        );
        assert_eq!(attrs("a1 FETCH 1 BODY.PEEK[TEXT]").len(), 1);
        assert_eq!(err("a1 FETCH 1 (FLAGS ALL)"), "Unknown FETCH attribute ALL");
        assert_eq!(err("a1 FETCH 1 BODY[MIME]"), "Invalid section");
        assert_eq!(err("a1 FETCH 1 BODY[1.]"), "Invalid section");
        assert_eq!(err("a1 FETCH 1 BODY[0]"), "Invalid section part: zero");
        assert_eq!(
            err("a1 FETCH 1 BODY[]<0.0>"),
            "Invalid partial length: zero"
        );
        assert_eq!(
            err("a1 FETCH 1 BODY[TEXT"),
            "Expected ] to close the section"
        );
        assert_eq!(err("a1 FETCH 1 ()"), "Empty FETCH attributes");
        assert_eq!(err("a1 FETCH 1"), "Missing arguments");
        assert_eq!(err("a1 FETCH 1 BINARY[TEXT]"), "Expected section part");
    }

    #[test]
    fn fetch_modifiers() {
        match ok("a1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)") {
            Command::Fetch(f) => {
                assert!(f.uid && f.vanished);
                assert_eq!(f.changed_since, Some(12345));
                assert_eq!(f.attributes, vec![FetchAttribute::Flags]);
            }
            other => panic!("{other:?}"),
        }
        match ok("a1 FETCH 1 FLAGS (CHANGEDSINCE 7)") {
            Command::Fetch(f) => {
                assert!(!f.uid && !f.vanished);
                assert_eq!(f.changed_since, Some(7));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err("a1 FETCH 1 FLAGS (CHANGEDSINCE 7 VANISHED)"),
            "VANISHED needs UID FETCH and CHANGEDSINCE"
        );
        assert_eq!(
            err("a1 UID FETCH 1 FLAGS (VANISHED)"),
            "VANISHED needs UID FETCH and CHANGEDSINCE"
        );
        assert_eq!(err("a1 FETCH 1 FLAGS (FOO)"), "Unknown FETCH modifier FOO");
    }

    #[test]
    fn store_forms() {
        assert_eq!(
            ok("a1 UID STORE 1:3 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted $Junk)"),
            Command::Store(StoreCommand {
                uid: true,
                set: set(&[(1, 3)]),
                operation: StoreOperation::Add,
                silent: true,
                flags: vec![Flag::Deleted, Flag::Keyword("$Junk".into())],
                unchanged_since: Some(320162338),
            })
        );
        assert_eq!(
            ok("a1 STORE 2 -flags \\Seen \\Flagged"),
            Command::Store(StoreCommand {
                uid: false,
                set: set(&[(2, 2)]),
                operation: StoreOperation::Remove,
                silent: false,
                flags: vec![Flag::Seen, Flag::Flagged],
                unchanged_since: None,
            })
        );
        match ok("a1 STORE 1 FLAGS ()") {
            Command::Store(s) => {
                assert_eq!(s.operation, StoreOperation::Replace);
                assert!(s.flags.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match ok("a1 STORE 1 FLAGS (\\Answered \\Draft \\Recent \\Custom)") {
            Command::Store(s) => assert_eq!(
                s.flags,
                vec![
                    Flag::Answered,
                    Flag::Draft,
                    Flag::Recent,
                    Flag::Extension("Custom".into())
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err("a1 STORE 1 LABELS (x)"),
            "Unknown STORE data item LABELS"
        );
        assert_eq!(err("a1 STORE 1 +FLAGS"), "Missing arguments");
        assert_eq!(
            err("a1 STORE 1 (FOO 1) FLAGS x"),
            "Unknown STORE modifier FOO"
        );
    }

    #[test]
    fn copy_move_expunge() {
        assert_eq!(
            ok("a1 COPY 1:2 Trash"),
            Command::Copy {
                uid: false,
                set: set(&[(1, 2)]),
                mailbox: "Trash".into()
            }
        );
        assert_eq!(
            ok("a1 uid move 5,* \"Deleted Items\""),
            Command::Move {
                uid: true,
                set: set(&[(5, 5), (0, 0)]),
                mailbox: "Deleted Items".into()
            }
        );
        assert_eq!(
            ok("a1 UID COPY 7 x"),
            Command::Copy {
                uid: true,
                set: set(&[(7, 7)]),
                mailbox: "x".into()
            }
        );
        assert_eq!(
            ok("a1 MOVE 7 x"),
            Command::Move {
                uid: false,
                set: set(&[(7, 7)]),
                mailbox: "x".into()
            }
        );
        assert_eq!(
            ok("a1 UID EXPUNGE 3:5"),
            Command::UidExpunge(set(&[(3, 5)]))
        );
        assert_eq!(err("a1 UID EXPUNGE"), "Missing arguments");
    }

    fn search(input: &str) -> SearchCommand {
        match ok(input) {
            Command::Search(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn search_keys() {
        use SearchKey as K;
        let s = search("a1 SEARCH unseen");
        assert_eq!(
            (s.uid, s.charset, s.criteria, s.return_options),
            (false, None, K::Unseen, None)
        );
        let s = search(
            "a1 UID SEARCH CHARSET utf-8 OR (FROM bob SUBJECT \"hi there\") NOT TO {3}\r\nabc 1:5 UID 2,4 \
             SINCE 1-Feb-2024 BEFORE \"02-Mar-2024\" ON 1-jan-2000 SENTBEFORE 1-Feb-2024 SENTON 1-Feb-2024 \
             SENTSINCE 1-Feb-2024 LARGER 100 SMALLER 5000000000 HEADER X-Spam yes KEYWORD $Junk \
             UNKEYWORD $X BCC b CC c BODY d TEXT e MODSEQ 5 MODSEQ \"/flags/\\\\seen\" all 9",
        );
        assert!(s.uid);
        assert_eq!(s.charset.as_deref(), Some("UTF-8"));
        let d = date!(2024 - 02 - 01);
        assert_eq!(
            s.criteria,
            K::And(vec![
                K::Or(
                    Box::new(K::And(vec![
                        K::From("bob".into()),
                        K::Subject("hi there".into())
                    ])),
                    Box::new(K::Not(Box::new(K::To("abc".into()))))
                ),
                K::Sequence(set(&[(1, 5)])),
                K::Uid(set(&[(2, 2), (4, 4)])),
                K::Since(d),
                K::Before(date!(2024 - 03 - 02)),
                K::On(date!(2000 - 01 - 01)),
                K::SentBefore(d),
                K::SentOn(d),
                K::SentSince(d),
                K::Larger(100),
                K::Smaller(5_000_000_000),
                K::Header("X-Spam".into(), "yes".into()),
                K::Keyword("$Junk".into()),
                K::Unkeyword("$X".into()),
                K::Bcc("b".into()),
                K::Cc("c".into()),
                K::Body("d".into()),
                K::Text("e".into()),
                K::ModSeq(5),
                K::ModSeq(9),
            ])
        );
        let flags = search(
            "a1 SEARCH ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED *",
        );
        assert_eq!(
            flags.criteria,
            K::And(vec![
                K::All,
                K::Answered,
                K::Deleted,
                K::Draft,
                K::Flagged,
                K::New,
                K::Old,
                K::Recent,
                K::Seen,
                K::Unanswered,
                K::Undeleted,
                K::Undraft,
                K::Unflagged,
                K::Sequence(set(&[(0, 0)]))
            ])
        );
    }

    #[test]
    fn search_return_options() {
        let s = search("a1 SEARCH RETURN (MIN MAX COUNT ALL) CHARSET US-ASCII DELETED");
        assert_eq!(
            s.return_options,
            Some(vec![
                SearchReturn::Min,
                SearchReturn::Max,
                SearchReturn::Count,
                SearchReturn::All
            ])
        );
        assert_eq!(s.charset.as_deref(), Some("US-ASCII"));
        assert_eq!(
            search("a1 UID SEARCH RETURN () ALL").return_options,
            Some(vec![])
        );
        assert_eq!(
            err("a1 SEARCH RETURN (SOON) ALL"),
            "Unknown SEARCH return option SOON"
        );
    }

    /// RFC 5182 `$` and SAVE, RFC 5267 UPDATE, CONTEXT, PARTIAL and CANCELUPDATE, RFC 5032
    /// OLDER and YOUNGER.
    #[test]
    fn searchres_context_and_within_forms() {
        use SearchKey as K;
        let s = search("a1 UID SEARCH RETURN (save update context partial 10:3) $ OLDER 60");
        assert_eq!(
            s.return_options,
            Some(vec![
                SearchReturn::Save,
                SearchReturn::Update,
                SearchReturn::Context,
                SearchReturn::Partial(3, 10)
            ])
        );
        assert_eq!(
            s.criteria,
            K::And(vec![K::Sequence(SequenceSet::saved_result()), K::Older(60)])
        );
        assert_eq!(
            search("a1 SEARCH NOT UID $ YOUNGER 3600").criteria,
            K::And(vec![
                K::Not(Box::new(K::Uid(SequenceSet::saved_result()))),
                K::Younger(3600)
            ])
        );
        assert_eq!(err("a1 SEARCH OLDER 0"), "Invalid interval: zero");
        assert_eq!(
            err("a1 SEARCH RETURN (ALL PARTIAL 1:5) ALL"),
            "At most one of PARTIAL and ALL may be asked for"
        );
        assert_eq!(
            err("a1 SEARCH RETURN (PARTIAL 1:*) ALL"),
            "Expected PARTIAL range"
        );
        let Command::Fetch(fetch) = ok("a1 UID FETCH $ (FLAGS)") else {
            panic!("not a FETCH");
        };
        assert!(fetch.set.is_saved_result() && fetch.set.ranges().is_empty());
        assert!(!SequenceSet::new([]).is_saved_result());
        for command in [
            "STORE $ +FLAGS (\\Seen)",
            "COPY $ a",
            "UID MOVE $ a",
            "UID EXPUNGE $",
        ] {
            ok(&format!("a1 {command}"));
        }
        assert_eq!(
            err("a1 FETCH $,1 (FLAGS)"),
            "Invalid sequence set: $ stands alone"
        );
        assert_eq!(
            err("a1 FETCH 1,$ (FLAGS)"),
            "Invalid sequence set: Expected sequence number"
        );
        assert_eq!(
            ok("a1 CANCELUPDATE \"B01\" \"B02\""),
            Command::CancelUpdate(vec!["B01".into(), "B02".into()])
        );
        assert_eq!(
            err("a1 CANCELUPDATE"),
            "CANCELUPDATE needs the tags of the searches"
        );
        assert_eq!(err("a1 CANCELUPDATE B01"), "Expected a quoted string");
    }

    #[test]
    fn search_errors() {
        assert_eq!(err("a1 SEARCH"), "Missing arguments");
        assert_eq!(err("a1 SEARCH FOO"), "Unknown search key FOO");
        assert_eq!(err("a1 SEARCH SINCE 31-Feb-2024"), "Invalid date");
        assert_eq!(err("a1 SEARCH SINCE 1-Foo-2024"), "Invalid date");
        assert_eq!(err("a1 SEARCH SINCE 123-Feb-2024"), "Invalid date");
        assert_eq!(err("a1 SEARCH OR SEEN"), "Missing arguments");
        assert_eq!(err("a1 SEARCH ()"), "Empty search criteria");
        assert_eq!(
            err("a1 SEARCH (SEEN"),
            "Expected a space or ) in the search criteria"
        );
        assert_eq!(err("a1 SEARCH SEEN )"), "Missing search key");
        assert_eq!(err("a1 SEARCH SEEN)"), "Unexpected extra arguments");
        assert_eq!(err("a1 SEARCH CHARSET UTF-8"), "Missing arguments");
        let deep = format!("a1 SEARCH {}SEEN{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(
            err(&deep),
            "Search criteria nested more than 32 levels deep"
        );
        let deep_not = format!("a1 SEARCH {}SEEN", "NOT ".repeat(10_000));
        assert_eq!(
            err(&deep_not),
            "Search criteria nested more than 32 levels deep"
        );
        let deep_or = format!("a1 SEARCH {}SEEN", "OR SEEN ".repeat(40));
        assert_eq!(
            err(&deep_or),
            "Search criteria nested more than 32 levels deep"
        );
        let ok_depth = format!("a1 SEARCH {}SEEN{}", "(".repeat(31), ")".repeat(31));
        search(&ok_depth);
    }

    #[test]
    fn search_keys_are_counted_at_every_level() {
        let many = format!("a1 SEARCH{}", " NOT TEXT x".repeat(500));
        search(&many);
        let too_many = format!("a1 SEARCH{}", " NOT TEXT x".repeat(501));
        assert_eq!(err(&too_many), "More than 1000 search keys");
        let group = format!("({})", "SEEN ".repeat(200).trim_end());
        let nested = format!("a1 SEARCH {}", vec![group; 5].join(" "));
        assert_eq!(err(&nested), "More than 1000 search keys");
    }

    #[test]
    fn lists_patterns_and_sets_are_bounded() {
        let attributes = vec!["FLAGS"; 257].join(" ");
        assert_eq!(
            err(&format!("a1 FETCH 1 ({attributes})")),
            "Too many items in the FETCH attributes"
        );
        let fields = vec!["X"; 257].join(" ");
        assert!(err(&format!("a1 FETCH 1 BODY[HEADER.FIELDS ({fields})]")).starts_with("Too many"));
        assert_eq!(
            err(&format!("a1 STORE 1 +FLAGS {}", vec!["$a"; 257].join(" "))),
            "Too many flags"
        );
        assert_eq!(
            err(&format!("a1 ENABLE {}", vec!["X"; 257].join(" "))),
            "Too many capabilities to ENABLE"
        );
        let id = vec!["\"a\" \"b\""; 31].join(" ");
        assert_eq!(err(&format!("a1 ID ({id})")), "More than 30 ID fields");
        let pattern = "*".repeat(1025);
        assert_eq!(
            err(&format!("a1 LIST \"\" {pattern}")),
            "Mailbox pattern longer than 1024 bytes"
        );
        assert!(err(&format!("a1 LIST \"\" {{1025}}\r\n{pattern}")).starts_with("Mailbox pattern"));
        assert!(err(&format!("a1 LSUB \"{pattern}\" %")).starts_with("Mailbox pattern"));
        let patterns = vec!["%".repeat(600); 2].join(" ");
        assert_eq!(
            err(&format!("a1 LIST \"\" ({patterns})")),
            "Mailbox patterns longer than 1024 bytes in all"
        );
        match ok(&format!("a1 LIST \"\" {}", "%".repeat(1024))) {
            Command::List(list) => assert_eq!(list.patterns[0].len(), 1024),
            other => panic!("{other:?}"),
        }
        // `1:*` as many times as a 64 KiB line holds is one range.
        let line = format!("a1 FETCH {} FLAGS", vec!["1:*"; 16_000].join(","));
        match ok(&line) {
            Command::Fetch(fetch) => assert_eq!(fetch.set, set(&[(1, 0)])),
            other => panic!("{other:?}"),
        }
        let distinct: Vec<String> = (0..20_000).map(|n| (n * 2 + 1).to_string()).collect();
        assert_eq!(
            err(&format!("a1 FETCH {} FLAGS", distinct.join(","))),
            "Sequence set with more than 16384 ranges"
        );
    }

    /// Every prefix of every valid command, and every single-byte corruption of it, parses
    /// or fails without panicking.
    #[test]
    fn truncations_and_corruptions_never_panic() {
        let commands: &[&[u8]] = &[
            b"a1 UID FETCH 1:*,3 (BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.10> BINARY[1]<1.2> FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n",
            b"a1 SELECT INBOX (QRESYNC (1 2 1:100 (1,5 10,50)) CONDSTORE)\r\n",
            b"a1 APPEND x (\\Seen) \"21-Nov-2026 18:00:00 +0000\" ~{3}\r\na\0b\r\n",
            b"a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"a\" b) RETURN (STATUS (MESSAGES))\r\n",
            b"a1 SEARCH RETURN (MIN) CHARSET UTF-8 OR (FROM {3}\r\nbob SINCE 1-Feb-2024) NOT UID 1:* MODSEQ \"/x\" all 5\r\n",
            b"a1 STORE 1 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Seen)\r\n",
            b"a1 AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n",
            b"a1 ID (\"a\" NIL \"b\" \"c\")\r\n",
            b"a1 CREATE x (USE (\\Sent))\r\n",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for command in commands {
            assert!(
                parse_command(command).is_ok(),
                "{}",
                String::from_utf8_lossy(command)
            );
            for len in 0..command.len() {
                let _ = parse_command(&command[..len]);
            }
            for _ in 0..2000 {
                // xorshift: deterministic, no dependency.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut corrupted = command.to_vec();
                let at = (seed % corrupted.len() as u64) as usize;
                corrupted[at] = (seed >> 32) as u8;
                let _ = parse_command(&corrupted);
            }
        }
    }
}
