//! `mailstead report [--since 24h] [--json] [--mail-to ADDRESS]`: what pflogsumm makes of
//! Postfix's log, from Mailstead's own event log (`<data_dir>/events/`): totals, the top
//! senders, recipients and their domains, rejections by reason, bounces, and failed logins by
//! address. Reads the files, so it works with or without the server running; `--mail-to`
//! hands the text to the server's own SMTP listener on loopback, like a nightly
//! `pflogsumm | mail postmaster`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use mail_builder::MessageBuilder;
use time::OffsetDateTime;
use time::macros::format_description;

use mailstead_events::{Count, Report};
use mailstead_net::LogSafe;

use crate::cli::exit::CliError;
use crate::cli::{Ctx, emit};
use crate::config::parse_duration;

/// How many entries each top list shows (pflogsumm's default).
const TOP: usize = 10;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The period, ending now: like 24h, 7d or 30m
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    since: Duration,
    /// Mail the text report to ADDRESS (a mailbox hosted here: it goes through this server's
    /// SMTP listener on loopback, which relays nothing)
    #[arg(long, value_name = "ADDRESS")]
    mail_to: Option<String>,
}

pub async fn run(ctx: &Ctx, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let until = mailstead_events::unix_seconds(SystemTime::now()) + 1;
    let since = until - i64::try_from(args.since.as_secs()).unwrap_or(i64::MAX / 2);
    let dir = ctx.config.events_dir();
    let report = {
        let reading = dir.clone();
        tokio::task::spawn_blocking(move || mailstead_events::report(&reading, since, until, TOP))
            .await
            .map_err(|err| CliError::Io {
                what: "cannot read the event log".to_owned(),
                source: std::io::Error::other(err),
            })?
            .map_err(|source| CliError::Io {
                what: format!("cannot read the event log in {}", dir.display()),
                source,
            })?
    };
    let text = report_text(&report, ctx.config.hostname());
    match args.mail_to {
        None => ctx.show(&report, || text)?,
        Some(address) => {
            mail_report(ctx, &address, &text, &report).await?;
            emit(&format!("mailed the report to {address}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends the text to `address` through the first SMTP listener (its wildcard address taken as
/// loopback), from the null sender: a report never bounces back to anyone.
async fn mail_report(ctx: &Ctx, address: &str, text: &str, report: &Report) -> anyhow::Result<()> {
    let config = &ctx.config;
    let Some(listen) = config.smtp.listen.first() else {
        return Err(CliError::Config(
            "--mail-to needs an SMTP listener (smtp.listen) to hand the report to".to_owned(),
        )
        .into());
    };
    let mut target: std::net::SocketAddr = listen
        .parse()
        .map_err(|_| CliError::Config(format!("smtp.listen {listen:?} is not an address")))?;
    if target.ip().is_unspecified() {
        target.set_ip(if target.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let hostname = config.hostname();
    let subject = format!(
        "Mailstead report for {hostname}: {} received, {} rejected",
        report.totals.received, report.totals.rejected
    );
    let body = MessageBuilder::new()
        .from(("Mailstead", format!("postmaster@{hostname}").as_str()))
        .to(address)
        .subject(subject)
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(text)
        .write_to_vec()
        .map_err(|source| CliError::Io {
            what: "cannot build the report message".to_owned(),
            source,
        })?;
    let failed = |err: mail_send::Error| CliError::Io {
        what: format!("cannot mail the report through {target}"),
        source: std::io::Error::other(err.to_string()),
    };
    let builder = mail_send::SmtpClientBuilder::new(target.ip().to_string(), target.port())
        .map_err(|err| CliError::Config(format!("cannot make an SMTP client: {err}")))?
        .helo_host(hostname)
        .timeout(Duration::from_secs(60));
    let mut client = builder.connect_plain().await.map_err(failed)?;
    client
        .send(mail_send::smtp::message::Message::new(
            "",
            [address],
            body.as_slice(),
        ))
        .await
        .map_err(failed)?;
    let _ = client.quit().await;
    Ok(())
}

fn time_of(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|at| {
            at.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// A name from the log as the text shows it: as it is, unless it holds what could break a
/// line or a terminal (then quoted and escaped).
fn shown(name: &str) -> String {
    if name
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        LogSafe(name).to_string()
    } else {
        name.to_owned()
    }
}

fn section(out: &mut String, title: &str, counts: &[Count]) {
    out.push_str(&format!(
        "\n{title}\n{}\n",
        "-".repeat(title.chars().count())
    ));
    if counts.is_empty() {
        out.push_str("  none\n");
    }
    for count in counts {
        out.push_str(&format!("{:>8}   {}\n", count.count, shown(&count.name)));
    }
}

/// The report as text, in pflogsumm's shape.
pub fn report_text(report: &Report, hostname: &str) -> String {
    let totals = &report.totals;
    let mut out = format!(
        "Mailstead report for {hostname}\n{} to {}\n\nGrand Totals\n------------\n",
        time_of(report.since),
        time_of(report.until)
    );
    for (count, what) in [
        (totals.received, "received"),
        (totals.delivered, "delivered (local mailboxes)"),
        (totals.sent, "sent (remote servers)"),
        (totals.deferred, "deferred"),
        (totals.bounced, "bounced"),
        (totals.rejected, "rejected"),
        (totals.auth_failures, "failed logins"),
    ] {
        out.push_str(&format!("{count:>8}   {what}\n"));
    }
    out.push_str(&format!("{:>8}   bytes received\n", totals.bytes_received));
    section(&mut out, "Senders by message count", &report.top_senders);
    section(
        &mut out,
        "Recipients by message count",
        &report.top_recipients,
    );
    section(
        &mut out,
        "Sending domains by message count",
        &report.top_sender_domains,
    );
    section(
        &mut out,
        "Recipient domains by message count",
        &report.top_recipient_domains,
    );
    section(&mut out, "Rejections by reason", &report.rejections);
    section(&mut out, "Bounces by reason", &report.bounces);
    section(&mut out, "Failed logins by address", &report.auth_failures);
    if report.unreadable_lines > 0 {
        out.push_str(&format!(
            "\n({} unreadable lines in the event log were skipped)\n",
            report.unreadable_lines
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_address_stays_on_its_line() {
        assert_eq!(shown("a@x.org"), "a@x.org");
        assert_eq!(shown("a\r\nb@x.org"), "\"a\\r\\nb@x.org\"");
    }
}
