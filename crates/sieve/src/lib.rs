//! Sieve mail filtering (RFC 5228 and the extensions Roundcube and hand-written scripts use):
//! script text, a message and its envelope in, a list of actions out.
//!
//! SUMMARY: `compile` checks a script the way Pigeonhole's `sievec` does and returns a `Script`;
//! `evaluate` runs it against one message; `evaluate_sequence` runs global-before scripts, the
//! user's script and global-after scripts as Pigeonhole's `sieve_before`/`sieve_after` do.
//!
//! STANDARDS: RFC 5228 (core), 5229 (variables), 5230 and 6131 (vacation, vacation-seconds),
//! 5231 (relational), 5232 (imap4flags), 5233 (subaddress), 5173 (body), 5260 (date, index),
//! 5293 (editheader), 5429 (reject, ereject), 5490 (mailbox), 3894 (copy), 4790 (i;octet),
//! 4790/5228 (i;ascii-casemap), 4790 (i;ascii-numeric), draft-ietf-sieve-regex, and RFC 5228's
//! encoded-character.
//!
//! SECURITY: scripts arrive from users over ManageSieve and messages from anyone over SMTP.
//! Nothing here does I/O: the crate reads no clock, no file and no network; time, the mailbox
//! list and the user's addresses come in through `Input`. Every cost is bounded by `Limits`:
//! script size and nesting at compile time; steps, actions, redirects and variables at run time;
//! `:regex` patterns compile with a size limit and the `regex` crate's linear-time engine.
//!
//! Why this crate exists: the maintained Sieve interpreters in the Rust ecosystem are AGPL
//! (sieve-rs), which the project's MIT/Apache-2.0 licence cannot take in; this one is written
//! from the RFCs.
//!
//! # Layout
//! - `lexer.rs`: tokens (strings, `text:` blocks, numbers with K/M/G, tags, comments).
//! - `parse.rs`: the generic command/test tree of RFC 5228 section 8.
//! - `validate.rs`: the table of commands and tests per extension; all compile errors.
//! - `eval.rs`: the interpreter and the action list rules (implicit keep, duplicates, conflicts).
//! - `message.rs`: header, address, body and date access on the message.
//! - `matcher.rs`: comparators and match types (:is :contains :matches :regex :count :value).
//! - `date.rs`: civil date arithmetic for the date and currentdate tests.

#![forbid(unsafe_code)]

mod date;
mod eval;
mod lexer;
mod matcher;
mod message;
mod parse;
mod validate;

use std::fmt;
use std::sync::Arc;

/// Limits on what a script may cost. Default: max_script_bytes 1 MiB (Pigeonhole's
/// sieve_max_script_size), max_actions 32, max_redirects 4, max_steps 1_000_000 (CPU budget:
/// evaluation steps, each test/command/match counts), max_variables 128, max_variable_bytes 4096,
/// max_nesting 32, max_header_edits 32.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest script source accepted by `compile`.
    pub max_script_bytes: usize,
    /// Most actions one evaluation may produce (Pigeonhole's sieve_max_actions).
    pub max_actions: usize,
    /// Most redirects one evaluation may produce (Pigeonhole's sieve_max_redirects).
    pub max_redirects: usize,
    /// CPU budget: commands, tests and single string comparisons each count one step.
    pub max_steps: u64,
    /// Most distinct variables a script may set.
    pub max_variables: usize,
    /// Longest value a variable may hold; longer values are truncated (RFC 5229 section 6).
    pub max_variable_bytes: usize,
    /// Deepest nesting of blocks and tests.
    pub max_nesting: usize,
    /// Most addheader/deleteheader edits one evaluation may make.
    pub max_header_edits: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_script_bytes: 1024 * 1024,
            max_actions: 32,
            max_redirects: 4,
            max_steps: 1_000_000,
            max_variables: 128,
            max_variable_bytes: 4096,
            max_nesting: 32,
            max_header_edits: 32,
        }
    }
}

/// A compiled script: cheap to clone (Arc inside), Send + Sync.
#[derive(Clone, Debug)]
pub struct Script {
    inner: Arc<validate::Program>,
}

/// A script that does not compile: where and why, in words a user can act on.
/// Display: "line 3: unknown command 'filein'" (several errors joined by "\n").
#[derive(Debug, thiserror::Error)]
pub struct CompileError {
    pub errors: Vec<Diagnostic>,
}

/// One compile error: the script line it is on (1-based) and what is wrong.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "line {}: {}", diagnostic.line, diagnostic.message)?;
        }
        Ok(())
    }
}

/// Compiles a script: syntax, required extensions, argument types and counts, and the compile
/// time limits (size, nesting).
///
/// # Errors
/// `CompileError` with every problem found, each with its line.
pub fn compile(source: &str, limits: &Limits) -> Result<Script, CompileError> {
    if source.len() > limits.max_script_bytes {
        return Err(CompileError {
            errors: vec![Diagnostic {
                line: 1,
                message: format!(
                    "script is too large (max {} bytes)",
                    limits.max_script_bytes
                ),
            }],
        });
    }
    let commands = parse::parse(source, limits.max_nesting).map_err(|diagnostic| CompileError {
        errors: vec![diagnostic],
    })?;
    let program = validate::validate(commands).map_err(|errors| CompileError { errors })?;
    Ok(Script {
        inner: Arc::new(program),
    })
}

/// Extensions the interpreter implements, as ManageSieve's SIEVE capability lists them
/// (space separated in that capability).
pub fn extensions() -> &'static [&'static str] {
    validate::EXTENSIONS
}

/// What evaluation needs to know besides the message.
pub struct Envelope<'a> {
    /// MAIL FROM, "" for the null sender.
    pub from: &'a str,
    /// The final recipient (the mailbox's address), as `envelope "to"` sees it.
    pub to: &'a str,
    /// The address as given in RCPT TO before alias expansion, if different.
    pub original_to: Option<&'a str>,
}

/// Everything one evaluation reads.
pub struct Input<'a> {
    pub envelope: Envelope<'a>,
    /// The whole message, header and body; LF or CRLF line endings both accepted.
    pub message: &'a [u8],
    /// "now" for the date/currentdate tests: unix seconds and the zone offset in seconds.
    pub now: i64,
    pub zone_offset: i32,
    /// The user's own addresses (mailbox address + aliases if known): vacation's `:addresses`
    /// default and the "is the user a direct recipient" check.
    pub own_addresses: &'a [String],
    /// For the `mailboxexists` test (RFC 5490) and `fileinto :create` decisions.
    pub mailbox_exists: &'a dyn Fn(&str) -> bool,
}

/// One thing to do with the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Deliver to INBOX (explicit keep, or the implicit keep), with these IMAP flags
    /// (imap4flags; empty = none).
    Keep { flags: Vec<String> },
    /// Deliver to this folder (name as written in the script), creating it when `create`.
    FileInto {
        mailbox: String,
        flags: Vec<String>,
        create: bool,
    },
    /// Send the message on to `address` (a syntactically valid address).
    Redirect { address: String },
    /// Refuse the message with this reason. `extended` = ereject (reject at SMTP level
    /// preferred); reject = send an MDN-style refusal. Cancels the implicit keep.
    Reject { reason: String, extended: bool },
    /// Discard: no delivery at all (only cancels the implicit keep; kept for the log).
    Discard,
    /// Auto-reply, only produced when RFC 5230's checks pass. The per-sender "once per period"
    /// memory is the caller's, keyed by (handle, sender).
    Vacation(Vacation),
}

/// A vacation reply to send (RFC 5230, RFC 6131).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vacation {
    /// To whom: the envelope sender.
    pub to: String,
    /// :handle, or a digest of reason+subject+from+mime when absent (as RFC 5230 suggests).
    pub handle: String,
    /// :days (default 7) or :seconds, in seconds, before any clamp (the caller clamps).
    pub period_seconds: u64,
    /// :from, if given.
    pub from: Option<String>,
    /// :subject, default "Auto: " + the original subject.
    pub subject: String,
    /// The reason text (with `mime`, a whole MIME entity with its own headers).
    pub reason: String,
    pub mime: bool,
    /// The original Message-ID, for In-Reply-To/References.
    pub in_reply_to: Option<String>,
}

/// The result of running a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// In order; the implicit keep, when it applies, is included as a final `Keep`.
    /// `copy` (RFC 3894) is already applied: `fileinto :copy` does not cancel the keep.
    pub actions: Vec<Action>,
    /// Set when editheader changed the header: the whole new header section, CRLF line endings,
    /// ending with the empty line. The body is the original message's body, unchanged. Every
    /// action applies to this final edited message (Pigeonhole applies edits made before each
    /// action; scripts rarely edit after filing, and one message per delivery is simpler).
    pub header: Option<Vec<u8>>,
}

/// A script that compiles can still fail at run time (limits, bad regex built from variables,
/// conflicting actions): the caller then delivers to INBOX and tells the user.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("too many actions")]
    TooManyActions,
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("script exceeded its CPU budget")]
    StepLimit,
    #[error("line {line}: {message}")]
    Failed { line: usize, message: String },
}

/// Runs one script on one message.
///
/// # Errors
/// `RuntimeError` when a limit is hit or the actions conflict (reject with keep or fileinto);
/// the caller keeps the message in INBOX.
pub fn evaluate(
    script: &Script,
    input: &Input<'_>,
    limits: &Limits,
) -> Result<Outcome, RuntimeError> {
    eval::evaluate_sequence(&[script], input, limits)
}

/// Runs scripts in order the way Pigeonhole runs `sieve_before`, the user's script and
/// `sieve_after`:
/// - each script has its own variables; the message, its header edits and the IMAP flags
///   carry over;
/// - actions accumulate over the scripts (duplicates collapse across scripts too);
/// - the next script runs only while the implicit keep is still in force after a script, i.e.
///   the script neither executed `stop` nor cancelled the keep (fileinto, redirect, discard,
///   reject); an explicit `keep` leaves the keep in force, so the next script runs;
/// - the implicit keep, when still in force after the last script that ran, is one final
///   `Keep`.
///
/// # Errors
/// As `evaluate`; a failure in any script fails the whole sequence.
pub fn evaluate_sequence(
    scripts: &[&Script],
    input: &Input<'_>,
    limits: &Limits,
) -> Result<Outcome, RuntimeError> {
    eval::evaluate_sequence(scripts, input, limits)
}
