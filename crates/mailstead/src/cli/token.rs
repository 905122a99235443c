//! `mailstead token …`: API tokens. The secret is printed once at creation; only its digest
//! is stored.

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::{input, output};
use mailstead_directory::access::TokenScope;
use mailstead_directory::manage::NewToken;

use crate::cli::exit::CliError;
use crate::cli::{Ctx, actor};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for the HTTP API (printed once)
    Create {
        /// super, domain:DOMAIN (a domain admin of it) or user:ADDRESS (that user's own rights)
        #[arg(long)]
        scope: String,
        /// A label, like the program that will use it
        #[arg(long, default_value = "api")]
        name: String,
        /// Stop working after this long, like 90d or 12h (default: never)
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token: requests with it are refused from now on
    Revoke { id: i64 },
}

pub async fn run(ctx: &Ctx, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    match command {
        TokenCommand::Create {
            scope,
            name,
            expires,
        } => {
            let scope = TokenScope::parse(&scope)?;
            let expires_at = expires
                .map(|text| input::parse_expires_in(&text, input::unix_now()))
                .transpose()
                .map_err(|err| CliError::Usage(err.to_string()))?;
            let (token, secret) = directory
                .create_token(
                    &actor(),
                    NewToken {
                        name,
                        scope,
                        expires_at,
                    },
                )
                .await?;
            let json = serde_json::json!({ "token": token, "secret": secret });
            ctx.show(&json, || {
                format!(
                    "created token {} ({}, scope {}); it is shown only now:\n{secret}\n",
                    token.id, token.name, token.scope
                )
            })?;
        }
        TokenCommand::List => {
            let tokens = directory.list_tokens().await?;
            ctx.show(&tokens, || output::api_tokens(&tokens))?;
        }
        TokenCommand::Revoke { id } => {
            directory.revoke_token(&actor(), id).await?;
            let json = serde_json::json!({ "revoked": "token", "id": id });
            ctx.show(&json, || format!("revoked token {id}\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
