//! Mailstead's management operations: what the `mailstead` CLI (and later the admin API) does
//! that is more than one directory call, and how its answers are shown.
//!
//! # Layout
//! - `input`: checks and parsers for values an administrator types (the password policy,
//!   quotas, limits, alias expiry).
//! - `dkim`: making DKIM key pairs and the DNS records that publish them.
//! - `passwd_file`: reading a Dovecot passwd-file into mailbox records.
//! - `import`: the two imports (passwd-file, MUM database) as a plan of steps, a dry run that
//!   only reports it, and apply.
//! - `output`: tables and detail views for humans; JSON for scripts.
//!
//! # Boundaries
//! This crate issues no SQL: every read and write goes through
//! [`mailstead_directory::Directory`], so every change is validated and audited there. It reads
//! no configuration and no environment; the binary hands it what it needs.
//!
//! # Security
//! A passwd-file and a MUM database are input from elsewhere: nothing here panics on them, and
//! password hashes are carried through untouched and never printed.

#![forbid(unsafe_code)]

pub mod dkim;
pub mod import;
pub mod input;
pub mod output;
pub mod passwd_file;

use mailstead_directory::DirectoryError;

/// Everything that can go wrong in a management operation. Messages are lowercase sentences
/// that say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A value typed by the administrator is unusable (a quota, a duration, a password).
    #[error("{0}")]
    Usage(String),
    /// An input file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A line of an input file is malformed. `line` counts from 1; for a line continued with
    /// a backslash it is the first physical line.
    #[error("{path}, line {line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
    /// The database an import reads from failed; `label` names it (URL without password).
    #[error("source database {label}: {source}")]
    Source {
        label: String,
        #[source]
        source: DirectoryError,
    },
    /// The source database answers, but not with MUM's tables.
    #[error(
        "source database {label} cannot be read as MUM's: {source}; give the URL of the database MUM uses"
    )]
    NotMum {
        label: String,
        #[source]
        source: DirectoryError,
    },
    /// The directory refused or failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// An import stopped half-way because the target database failed (not because of one
    /// record, which is reported and skipped). Re-running it resumes: what was done is then
    /// reported as existing.
    #[error(
        "import stopped at {step}: {source}; {done} changes were made before it; fix the cause and run the import again (what was done is then reported as existing)"
    )]
    Apply {
        step: String,
        done: usize,
        #[source]
        source: DirectoryError,
    },
    /// Hashing a new password failed (the OS random generator, in practice).
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// Making a DKIM key failed (the OS random generator, in practice).
    #[error("cannot make the DKIM key: {0}")]
    Dkim(String),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}
