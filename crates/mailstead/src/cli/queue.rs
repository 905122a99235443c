//! `mailstead queue …`: the outbound queue, like `mailq`, `postqueue` and `postsuper`.
//! While the server runs, the commands go to it (the queue's control socket); otherwise they
//! work on the queue's files directly.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use mailstead_queue::control::{Request, Response};
use mailstead_queue::{Envelope, RecipientState};

use crate::cli::Ctx;
use crate::cli::exit::CliError;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Every queued message with its recipients and their last answer (like mailq)
    List,
    /// One message in full
    Show { id: String },
    /// Try messages now (postqueue -i)
    Retry {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Keep messages from being tried until released (postsuper -h)
    Hold {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Release held messages and try them now (postsuper -H)
    Release {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Delete messages without a bounce (postsuper -d): by id, everything from one sender, or all
    Remove {
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        /// Every message from this envelope sender
        #[arg(long, value_name = "ADDRESS", conflicts_with = "all")]
        sender: Option<String>,
        /// Every message in the queue
        #[arg(long)]
        all: bool,
    },
    /// Try every message not held now (postqueue -f)
    Flush,
}

pub async fn run(ctx: &Ctx, command: QueueCommand) -> anyhow::Result<ExitCode> {
    let request = match command {
        QueueCommand::List => Request::List,
        QueueCommand::Show { id } => Request::Show { id },
        QueueCommand::Retry { ids } => Request::Retry { ids },
        QueueCommand::Hold { ids } => Request::Hold { ids },
        QueueCommand::Release { ids } => Request::Release { ids },
        QueueCommand::Flush => Request::Flush,
        QueueCommand::Remove { ids, sender, all } => {
            if ids.is_empty() && sender.is_none() && !all {
                return Err(CliError::Usage(
                    "say what to remove: queue ids, --sender ADDRESS or --all".to_owned(),
                )
                .into());
            }
            if all {
                return remove_all(ctx).await;
            }
            Request::Remove { ids, sender }
        }
    };
    let listing = matches!(request, Request::List | Request::Show { .. });
    let response = ask(ctx, &request).await?;
    if !response.ok {
        return Err(CliError::Usage(response.error.unwrap_or_else(|| "failed".to_owned())).into());
    }
    if listing {
        ctx.show(&response.messages, || text_listing(&response.messages))?;
    } else {
        ctx.show(&response, || {
            format!("{} message(s) changed\n", response.changed)
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove_all(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let listed = ask(ctx, &Request::List).await?;
    let ids = listed
        .messages
        .into_iter()
        .map(|message| message.id)
        .collect();
    let response = ask(ctx, &Request::Remove { ids, sender: None }).await?;
    ctx.show(&response, || {
        format!("{} message(s) removed\n", response.changed)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The running server answers, or (none running) the queue opened here does.
async fn ask(ctx: &Ctx, request: &Request) -> anyhow::Result<Response> {
    let dir = ctx.config.data_dir().join("queue");
    if let Some(response) = mailstead_queue::control::request(&dir, request).await? {
        return Ok(response);
    }
    if !dir.exists() {
        return Ok(Response {
            ok: true,
            error: None,
            messages: Vec::new(),
            changed: 0,
        });
    }
    let directory = ctx.directory().await?;
    let store =
        mailstead_store::Store::new(ctx.config.hostname(), ctx.config.data_dir().join("spool"))?;
    let outbound = mailstead_queue::Outbound::new(mailstead_queue::OutboundConfig {
        hostname: ctx.config.hostname().to_owned(),
        name_servers: Vec::new(),
        trust_ad_bit: false,
        relay_host: None,
        relay_auth: None,
        extra_roots: Vec::new(),
        smtp_port: 25,
        connect_timeout: std::time::Duration::from_secs(1),
        command_timeout: std::time::Duration::from_secs(1),
        max_connections_per_destination: 1,
        max_connections: 1,
        idle_connection_time: std::time::Duration::from_secs(1),
    })
    .map_err(|err| CliError::Config(err.to_string()))?;
    let queue = mailstead_queue::Queue::open(
        mailstead_queue::QueueConfig::new(dir, ctx.config.hostname().to_owned()),
        directory,
        store,
        Arc::new(outbound),
    )?;
    Ok(queue.handle(request.clone()).await)
}

fn when(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|date| {
            date.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// mailq's shape: one block per message, a line per recipient.
fn text_listing(messages: &[Envelope]) -> String {
    if messages.is_empty() {
        return "queue is empty\n".to_owned();
    }
    let mut out = String::new();
    for message in messages {
        let sender = if message.sender.is_empty() {
            "<>"
        } else {
            &message.sender
        };
        out.push_str(&format!(
            "{}{}  {}  {}\n",
            message.id,
            if message.held { "!" } else { "" },
            when(message.arrived),
            sender
        ));
        for recipient in &message.recipients {
            let state = match recipient.state {
                RecipientState::Pending => format!(
                    "pending, attempt {} next {}",
                    recipient.attempts,
                    when(recipient.next_attempt)
                ),
                RecipientState::Delivered => "delivered".to_owned(),
                RecipientState::Failed => "failed".to_owned(),
            };
            out.push_str(&format!("    {}  ({state})\n", recipient.address));
            if let Some(diagnostic) = &recipient.diagnostic {
                out.push_str(&format!("        {diagnostic}\n"));
            }
        }
    }
    let held = messages.iter().filter(|message| message.held).count();
    out.push_str(&format!(
        "-- {} message(s), {held} held (marked !)\n",
        messages.len()
    ));
    out
}
