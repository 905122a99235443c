//! The questions the servers ask, asked by hand: `resolve`, `auth test`, `may-send`; and
//! `audit`, what was changed.

use std::net::{IpAddr, Ipv6Addr};
use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::output::{self, AuthAnswer, MaySendAnswer};
use mailstead_auth::{AuthOutcome, Authenticator, LoginAttempt, Service};
use mailstead_directory::Directory;
use mailstead_directory::resolve::Resolution;

use crate::cli::exit;
use crate::cli::{Ctx, auth_options, password};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Would this login and password be accepted? Asks for the password (or reads it from
    /// stdin when piped); exit 1 when refused
    Test { address: String },
}

/// `mailstead resolve ADDRESS…`: the decision for each address and the steps behind it.
/// Exit 0 whatever the decisions: this explains, it does not test.
pub async fn resolve(ctx: &Ctx, addresses: &[String]) -> anyhow::Result<ExitCode> {
    // All addresses are checked before any lookup, so a typo fails the whole command at once.
    let parsed = addresses
        .iter()
        .map(|address| Directory::parse_address(address))
        .collect::<Result<Vec<_>, _>>()?;
    let directory = ctx.directory().await?;
    let mut resolutions = Vec::with_capacity(parsed.len());
    for address in &parsed {
        resolutions.push(directory.resolve_address(address).await?);
    }
    // serde has no `Arc` support without its `rc` feature; references serialise the same.
    let resolutions: Vec<&Resolution> = resolutions.iter().map(AsRef::as_ref).collect();
    ctx.show(&resolutions, || {
        resolutions
            .iter()
            .map(|resolution| output::resolution(resolution))
            .collect()
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn auth(ctx: &Ctx, command: AuthCommand) -> anyhow::Result<ExitCode> {
    let AuthCommand::Test { address } = command;
    let login = Directory::parse_address(&address)?.to_string();
    let directory = ctx.directory().await?;
    let password = password::read_existing(&login)?;
    // The CLI asks the login service like any protocol does; its penalty lives only as long
    // as this process, and its delays are the first ones (a wrong password waits a second).
    let auth = Authenticator::new(directory.clone(), auth_options(&ctx.config));
    let outcome = auth
        .log_in(LoginAttempt {
            service: Service::Cli,
            client: IpAddr::V6(Ipv6Addr::LOCALHOST),
            login: &login,
            password: &password,
        })
        .await?;
    let reason = match outcome {
        AuthOutcome::Accepted(_) => None,
        AuthOutcome::Refused(refusal) => Some(refusal.describe()),
    };
    let answer = AuthAnswer::new(&login, reason);
    ctx.show(&answer, || answer.text())?;
    Ok(if answer.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::NO)
    })
}

pub async fn may_send(ctx: &Ctx, login: &str, from: &str) -> anyhow::Result<ExitCode> {
    let login = Directory::parse_address(login)?.to_string();
    let directory = ctx.directory().await?;
    let allowed = directory.may_send_as(&login, from).await?;
    let answer = MaySendAnswer {
        login,
        from: from.trim().to_owned(),
        allowed,
    };
    ctx.show(&answer, || answer.text())?;
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::NO)
    })
}

pub async fn audit(ctx: &Ctx, limit: u32) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    let entries = directory.audit_log(i64::from(limit)).await?;
    ctx.show(&entries, || output::audit(&entries))?;
    Ok(ExitCode::SUCCESS)
}
