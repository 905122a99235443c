//! The `mailstead` binary: the mail server (`mailstead serve`) and its management commands.
//!
//! This file only parses the command line, starts the async runtime and turns the outcome
//! into an exit code; the commands live in `cli`, configuration in `config`, certificates in
//! `tls`.

#![forbid(unsafe_code)]

mod cli;
mod config;
mod privileges;
mod sizes;
mod tls;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// jemalloc rather than glibc's malloc: glibc keeps what a thread freed in that thread's arena,
/// so a burst of work on many threads (the blocking pool, hashing, large literals) left the
/// server holding its peak memory for good; jemalloc's background thread gives pages unused
/// for a second back to the system (`.cargo/config.toml` sets the decay).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Before anything can create a file: the database, keys and mail are private.
    privileges::set_umask();
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(err) => return usage_error(&err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mailstead: cannot start the async runtime: {err}");
            return ExitCode::from(cli::exit::SOFTWARE);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(err) => {
            // Every error type of ours carries its cause in its own message, so only the top
            // is printed (`{:#}` would repeat each cause).
            eprintln!("mailstead: {err}");
            ExitCode::from(cli::exit::code_for(&err))
        }
    }
}

/// Help and version go to stdout with status 0; anything else clap refuses is a usage error
/// (64, not clap's 2), printed like our other errors.
fn usage_error(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Nothing useful can be done if stdout is gone.
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", err.render());
            ExitCode::from(cli::exit::USAGE)
        }
        _ => {
            let text = err.render().to_string();
            eprint!(
                "mailstead: {}",
                text.strip_prefix("error: ").unwrap_or(&text)
            );
            ExitCode::from(cli::exit::USAGE)
        }
    }
}
