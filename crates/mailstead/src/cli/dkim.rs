//! `mailstead dkim …`: the keys that sign mail from hosted domains, and the DNS records that
//! publish them.

use std::process::ExitCode;

use clap::Subcommand;

use mailstead_admin::dkim::{self, DEFAULT_RSA_BITS};
use mailstead_admin::output::{self, DkimKeyView};
use mailstead_directory::DirectoryError;
use mailstead_directory::address::normalize_domain;
use mailstead_directory::model::DkimAlgorithm;

use crate::cli::values;
use crate::cli::{Ctx, actor};

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Make and store a key for DOMAIN, and print the DNS TXT record to publish
    Generate {
        domain: String,
        /// The selector; default: s + this UTC year and month, like s202612
        #[arg(long)]
        selector: Option<String>,
        /// ed25519 or rsa
        #[arg(long, default_value = "ed25519", value_parser = values::dkim_algorithm)]
        algorithm: DkimAlgorithm,
        /// RSA key size: a multiple of 8 from 2048 to 4096
        #[arg(long, default_value_t = DEFAULT_RSA_BITS)]
        bits: usize,
    },
    /// List keys and their DNS records (never the private keys)
    List,
    /// Remove DOMAIN's key with SELECTOR, or all of DOMAIN's keys
    Remove {
        domain: String,
        #[arg(long)]
        selector: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, command: DkimCommand) -> anyhow::Result<ExitCode> {
    let directory = ctx.directory().await?;
    match command {
        DkimCommand::Generate {
            domain,
            selector,
            algorithm,
            bits,
        } => {
            let selector = selector.unwrap_or_else(dkim::default_selector);
            // An unknown domain is said before a slow RSA key is made for nothing.
            directory.get_domain(&domain).await?;
            let key = dkim::generate(algorithm, bits)?;
            let info = directory
                .add_dkim_key(
                    &actor(),
                    &domain,
                    &selector,
                    algorithm,
                    &key.private_key_pem,
                    &key.public_key_b64,
                )
                .await?;
            let view = DkimKeyView::new(info);
            ctx.show(&view, || {
                format!(
                    "added DKIM key {} for {}; publish this DNS record before mail is signed with it:\n{}\n",
                    view.key.selector, view.key.domain, view.dns_record
                )
            })?;
        }
        DkimCommand::List => {
            let keys: Vec<DkimKeyView> = directory
                .list_dkim_keys()
                .await?
                .into_iter()
                .map(DkimKeyView::new)
                .collect();
            ctx.show(&keys, || output::dkim_keys(&keys))?;
        }
        DkimCommand::Remove { domain, selector } => {
            let domain = normalize_domain(&domain).map_err(DirectoryError::from)?;
            let removed = directory
                .remove_dkim_key(&actor(), &domain, selector.as_deref())
                .await?;
            let json = serde_json::json!({
                "removed": "dkim-key",
                "subject": domain,
                "selector": selector,
                "count": removed,
            });
            ctx.show(&json, || match &selector {
                Some(selector) => format!("removed DKIM key {selector} of {domain}\n"),
                None => format!("removed {removed} DKIM keys of {domain}\n"),
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
