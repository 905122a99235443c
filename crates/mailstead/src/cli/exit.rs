//! Exit statuses (sysexits.h) and which error gets which.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | done; a "yes" answer |
//! | 1 | a "no" answer: `auth test` refused, `may-send` no |
//! | 64 | usage: bad arguments or values, malformed addresses, short passwords, bad input lines |
//! | 65 | data: not found, already exists, a limit reached, an import that skipped records, an import source that is not MUM's |
//! | 66 | an input file cannot be read |
//! | 69 | the database cannot be reached or fails |
//! | 70 | a bug or an impossible state |
//! | 73 | the data directory cannot be created |
//! | 74 | an I/O error (standard input, output) |
//! | 78 | configuration: the config file, the certificate, a schema needing `db migrate` |

use mailstead_admin::AdminError;
use mailstead_directory::DirectoryError;

use crate::config::ConfigError;
use crate::tls::TlsError;

pub const NO: u8 = 1;
pub const USAGE: u8 = 64;
pub const DATA: u8 = 65;
pub const NO_INPUT: u8 = 66;
pub const UNAVAILABLE: u8 = 69;
pub const SOFTWARE: u8 = 70;
pub const CANT_CREATE: u8 = 73;
pub const IO: u8 = 74;
pub const CONFIG: u8 = 78;

/// Errors of the binary itself, each with its status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input that clap cannot check: two password prompts that differ, no password on
    /// stdin, an update without changes.
    #[error("{0}")]
    Usage(String),
    #[error("cannot create {path}: {source}")]
    CantCreate {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The configuration cannot be acted on as it stands (an account that is root's).
    #[error("{0}")]
    Config(String),
}

/// The status for an error that ends a command.
pub fn code_for(err: &anyhow::Error) -> u8 {
    if let Some(err) = err.downcast_ref::<CliError>() {
        return match err {
            CliError::Usage(_) => USAGE,
            CliError::CantCreate { .. } => CANT_CREATE,
            CliError::Io { .. } => IO,
            CliError::Config(_) => CONFIG,
        };
    }
    if let Some(err) = err.downcast_ref::<AdminError>() {
        return admin_code(err);
    }
    if let Some(err) = err.downcast_ref::<DirectoryError>() {
        return directory_code(err);
    }
    if let Some(err) = err.downcast_ref::<mailstead_auth::AuthError>() {
        return match err {
            mailstead_auth::AuthError::Directory(err) => directory_code(err),
            mailstead_auth::AuthError::StoredPassword { .. } => DATA,
            mailstead_auth::AuthError::Unavailable => SOFTWARE,
        };
    }
    if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<TlsError>().is_some() {
        return CONFIG;
    }
    if err.downcast_ref::<std::io::Error>().is_some() {
        return IO;
    }
    SOFTWARE
}

fn admin_code(err: &AdminError) -> u8 {
    match err {
        AdminError::Usage(_) | AdminError::Parse { .. } => USAGE,
        AdminError::Read { .. } => NO_INPUT,
        AdminError::NotMum { .. } => DATA,
        // The source URL came from the command line, so a bad one is a usage error.
        AdminError::Source {
            source: DirectoryError::BadUrl(_),
            ..
        } => USAGE,
        AdminError::Source { source, .. } | AdminError::Apply { source, .. } => {
            directory_code(source)
        }
        AdminError::Directory(err) => directory_code(err),
        AdminError::Hash(_) | AdminError::Json(_) | AdminError::Dkim(_) => SOFTWARE,
    }
}

fn directory_code(err: &DirectoryError) -> u8 {
    match err {
        DirectoryError::Address(_) | DirectoryError::Invalid(_) => USAGE,
        DirectoryError::NotFound(_)
        | DirectoryError::Conflict(_)
        | DirectoryError::LimitExceeded(_)
        | DirectoryError::StoredPassword { .. } => DATA,
        DirectoryError::Connect { .. } | DirectoryError::Sql(_) | DirectoryError::Migrate(_) => {
            UNAVAILABLE
        }
        DirectoryError::Io { .. } => CANT_CREATE,
        DirectoryError::BadUrl(_)
        | DirectoryError::SchemaTooNew { .. }
        | DirectoryError::SchemaTooOld { .. } => CONFIG,
    }
}
