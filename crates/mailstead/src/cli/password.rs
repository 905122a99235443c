//! Reading passwords. Never from the command line, where every user can read them in the
//! process list and shells keep them in history: from the terminal without echo (asked twice
//! for a new one), or, when standard input is not a terminal, as its first line, so scripts
//! can pipe one in.

use std::io::{BufRead, IsTerminal};

use mailstead_admin::input;

use crate::cli::exit::CliError;

/// A new password for `address`, checked against the policy (at least 8 characters).
///
/// # Errors
/// [`CliError::Usage`] when the two entries differ or nothing was given; the admin crate's
/// policy error for a short password.
pub fn read_new(address: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = prompt(&format!("new password for {address}: "))?;
        // Refuse a short one before asking for it again.
        input::check_new_password(&first)?;
        let second = prompt("repeat it: ")?;
        if first != second {
            return Err(CliError::Usage(
                "the two passwords differ; nothing was changed".to_owned(),
            )
            .into());
        }
        first
    } else {
        let line = read_stdin_line()?;
        String::from_utf8(line).map_err(|_| {
            CliError::Usage("the password on standard input is not UTF-8".to_owned())
        })?
    };
    input::check_new_password(&password)?;
    Ok(password)
}

/// A password to test, as bytes (no policy: an old short password must be testable).
///
/// # Errors
/// [`CliError::Usage`] when nothing was given, [`CliError::Io`] when reading fails.
pub fn read_existing(address: &str) -> anyhow::Result<Vec<u8>> {
    if std::io::stdin().is_terminal() {
        return Ok(prompt(&format!("password for {address}: "))?.into_bytes());
    }
    read_stdin_line()
}

fn prompt(text: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(text).map_err(|source| {
        CliError::Io {
            what: "cannot read the password from the terminal".to_owned(),
            source,
        }
        .into()
    })
}

/// The first line of standard input without its line ending. Spaces are kept: they may be
/// part of the password.
fn read_stdin_line() -> anyhow::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n_read = std::io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|source| CliError::Io {
            what: "cannot read the password from standard input".to_owned(),
            source,
        })?;
    if n_read == 0 {
        return Err(CliError::Usage(
            "no password on standard input; pipe it in as one line, or run this in a terminal to be asked"
                .to_owned(),
        )
        .into());
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}
