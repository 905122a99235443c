//! Recipient resolution: what happens to mail for an address.
//!
//! The order, for `user+ext@domain`:
//! 1. The domain: a hosted domain, or an alias domain mapped to its target; neither is "not
//!    hosted" (a relay question for SMTP); an inactive domain is refused.
//! 2. The exact address as an alias, then as a mailbox; then, with the recipient delimiter
//!    split off, `user@domain` as an alias, then as a mailbox; last the catch-all `@domain`.
//!    Exact matches always come before the catch-all, so a catch-all never swallows a mailbox
//!    (the bug Postfix's lookup order invites, fixed there with self-aliases).
//! 3. Aliases expand recursively, breadth first, each address once (a loop guard), with
//!    Postfix's limits on nesting and on the number of addresses. An alias listing its own
//!    address delivers to the mailbox of that name (Postfix's way to stop expansion).
//! 4. Each final mailbox and each external address is delivered once.
//!
//! Choices where Postfix and MUM are silent or unhelpful:
//! - An inactive or expired alias refuses mail (`AliasInactive`); it does not fall through to
//!   the catch-all, because a deactivated temporary alias exists to stop mail.
//! - A member of an alias that is unusable (unknown user in a hosted domain, inactive, or a
//!   send-only mailbox) is skipped, logged and shown in the trace; if nothing deliverable is
//!   left, the address is refused rather than accepted and lost.
//! - The extension of `user+ext` is kept for the mailbox it reached directly (for folder
//!   delivery later); it is not propagated through aliases.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::address::Address;
use crate::lookup::{self, AliasRow, MailboxRow};
use crate::model::{MailboxLocation, Quota};
use crate::{Directory, DirectoryError};

/// The delivery decision for one address, with the steps that led to it.
#[derive(Clone, Debug, Serialize)]
pub struct Resolution {
    #[serde(serialize_with = "crate::resolve::serialize_address")]
    pub address: Address,
    pub outcome: Outcome,
    /// Human-readable steps, for `mailstead resolve` and logs.
    pub trace: Vec<String>,
    /// Unix second at which this answer stops being true (an alias's `deactivate_at`).
    #[serde(skip)]
    pub(crate) valid_until: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision", content = "recipients")]
pub enum Outcome {
    /// Deliver to these, each once. Never empty.
    Deliver(Vec<Recipient>),
    /// Refuse the address.
    Reject(Rejection),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Recipient {
    /// A mailbox of ours.
    Local(LocalRecipient),
    /// An address elsewhere, for the outbound queue.
    External {
        #[serde(serialize_with = "crate::resolve::serialize_address")]
        address: Address,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalRecipient {
    pub mailbox_id: i64,
    #[serde(serialize_with = "crate::resolve::serialize_address")]
    pub address: Address,
    /// The `ext` of `user+ext@domain` when the address reached this mailbox directly.
    pub detail: Option<String>,
    pub location: MailboxLocation,
    pub quota: Quota,
}

/// Why an address is refused. SMTP maps these to reply codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Not a domain of ours: a relay question, not an unknown user.
    NotHosted,
    DomainInactive,
    UnknownUser,
    MailboxInactive,
    /// The mailbox only sends (MUM's `send_only`); MUM's recipient-access map rejects it.
    SendOnly,
    /// The alias is deactivated or past its `deactivate_at`.
    AliasInactive,
    /// More nesting or addresses than the configured limits.
    ExpansionLimit,
    /// An alias whose members are all unusable.
    NoDeliverableRecipients,
}

impl Rejection {
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::NotHosted => "not a domain hosted here",
            Rejection::DomainInactive => "the domain is deactivated",
            Rejection::UnknownUser => "no such mailbox or alias",
            Rejection::MailboxInactive => "the mailbox is deactivated",
            Rejection::SendOnly => "the mailbox is send-only and receives no mail",
            Rejection::AliasInactive => "the alias is deactivated or expired",
            Rejection::ExpansionLimit => "alias expansion exceeds the configured limits",
            Rejection::NoDeliverableRecipients => "the alias has no deliverable recipient",
        }
    }
}

pub(crate) fn serialize_address<S: serde::Serializer>(
    address: &Address,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(address)
}

/// What one address is, before expansion.
enum Step {
    NotHosted,
    Refused(Rejection),
    Mailbox(MailboxRow, Option<String>),
    Alias(Address, AliasRow),
}

impl Directory {
    /// The delivery decision for `address`, cached.
    ///
    /// # Errors
    /// A malformed address ([`DirectoryError::Address`]) or a database failure. An unknown or
    /// refused address is not an error: it is an [`Outcome::Reject`].
    pub async fn resolve(&self, address: &str) -> Result<Arc<Resolution>, DirectoryError> {
        let address = Address::parse(address)?;
        self.resolve_address(&address).await
    }

    /// [`Directory::resolve`] for an address already parsed.
    ///
    /// # Errors
    /// Database failures.
    pub async fn resolve_address(
        &self,
        address: &Address,
    ) -> Result<Arc<Resolution>, DirectoryError> {
        let key = address.to_string();
        let now = unix_now();
        if let Some(hit) = self.inner.caches.resolutions.get(&key)
            && hit.valid_until.is_none_or(|until| until > now)
        {
            return Ok(hit);
        }
        let ticket = self.inner.caches.resolutions.ticket();
        let resolution = Arc::new(self.resolve_uncached(address, now).await?);
        self.inner
            .caches
            .resolutions
            .insert(key, Arc::clone(&resolution), ticket);
        Ok(resolution)
    }

    /// Resolution straight from the database; the cache stores what this returns.
    pub(crate) async fn resolve_uncached(
        &self,
        address: &Address,
        now: i64,
    ) -> Result<Resolution, DirectoryError> {
        let mut expansion = Expansion {
            trace: Vec::new(),
            valid_until: None,
            now,
        };
        let outcome = self.expand(address, &mut expansion).await?;
        Ok(Resolution {
            address: address.clone(),
            outcome,
            trace: expansion.trace,
            valid_until: expansion.valid_until,
        })
    }

    async fn expand(
        &self,
        top: &Address,
        expansion: &mut Expansion,
    ) -> Result<Outcome, DirectoryError> {
        let options = &self.inner.options;
        let mut queue: VecDeque<(Address, usize)> = VecDeque::from([(top.clone(), 0)]);
        let mut visited: HashSet<Address> = HashSet::new();
        let mut mailboxes_seen: HashSet<i64> = HashSet::new();
        let mut recipients: Vec<Recipient> = Vec::new();
        let mut n_addresses = 1usize;

        while let Some((address, depth)) = queue.pop_front() {
            if !visited.insert(address.clone()) {
                expansion.note(format!("{address} was already expanded; skipped"));
                continue;
            }
            let step = self.classify(&address, expansion).await?;
            let is_top = depth == 0;
            match step {
                Step::NotHosted if is_top => return Ok(Outcome::Reject(Rejection::NotHosted)),
                Step::NotHosted => {
                    expansion.note(format!("{address} is external"));
                    if !recipients
                        .iter()
                        .any(|r| matches!(r, Recipient::External { address: a } if *a == address))
                    {
                        recipients.push(Recipient::External { address });
                    }
                }
                Step::Refused(rejection) if is_top => return Ok(Outcome::Reject(rejection)),
                Step::Refused(rejection) => {
                    tracing::warn!(%address, top = %top, reason = rejection.describe(), "alias member skipped");
                    expansion.note(format!("{address} skipped: {}", rejection.describe()));
                }
                Step::Mailbox(mailbox, detail) => {
                    if mailboxes_seen.insert(mailbox.id) {
                        recipients.push(local_recipient(mailbox, detail));
                    }
                }
                Step::Alias(alias_address, alias) => {
                    if depth + 1 > options.recursion_limit {
                        expansion.note(format!(
                            "{alias_address} nests deeper than recursion_limit {}",
                            options.recursion_limit
                        ));
                        return Ok(Outcome::Reject(Rejection::ExpansionLimit));
                    }
                    for member in &alias.recipients {
                        let member = match Address::parse(member) {
                            Ok(member) => member,
                            Err(err) => {
                                expansion.note(format!(
                                    "recipient {member:?} of {alias_address} skipped: {err}"
                                ));
                                continue;
                            }
                        };
                        if member == alias_address {
                            // Postfix: an alias naming itself delivers to the mailbox of that name.
                            self.deliver_to_own_mailbox(
                                &member,
                                expansion,
                                &mut mailboxes_seen,
                                &mut recipients,
                            )
                            .await?;
                            continue;
                        }
                        n_addresses += 1;
                        if n_addresses > options.expansion_limit {
                            expansion.note(format!(
                                "{top} expands to more than expansion_limit {} addresses",
                                options.expansion_limit
                            ));
                            return Ok(Outcome::Reject(Rejection::ExpansionLimit));
                        }
                        queue.push_back((member, depth + 1));
                    }
                }
            }
        }
        if recipients.is_empty() {
            expansion.note(format!("{top} has no deliverable recipient"));
            return Ok(Outcome::Reject(Rejection::NoDeliverableRecipients));
        }
        Ok(Outcome::Deliver(recipients))
    }

    async fn deliver_to_own_mailbox(
        &self,
        address: &Address,
        expansion: &mut Expansion,
        mailboxes_seen: &mut HashSet<i64>,
        recipients: &mut Vec<Recipient>,
    ) -> Result<(), DirectoryError> {
        match lookup::mailbox_by_address(&self.inner.db, address).await? {
            Some(mailbox) => match mailbox_refusal(&mailbox) {
                Some(rejection) => {
                    expansion.note(format!("{address} skipped: {}", rejection.describe()));
                }
                None => {
                    expansion.note(format!("{address} lists itself: its own mailbox"));
                    if mailboxes_seen.insert(mailbox.id) {
                        recipients.push(local_recipient(mailbox, None));
                    }
                }
            },
            None => expansion.note(format!(
                "{address} lists itself but has no mailbox; skipped"
            )),
        }
        Ok(())
    }

    /// Finds what one address is (steps 1 and 2 of the module comment).
    async fn classify(
        &self,
        address: &Address,
        expansion: &mut Expansion,
    ) -> Result<Step, DirectoryError> {
        let db = &self.inner.db;
        let extension = address.split_extension(&self.inner.options.recipient_delimiter);
        let base = extension.as_ref().map(|(base, _)| base.local_part());
        let mut found =
            lookup::candidates(db, address.domain(), address.local_part(), base).await?;
        let domain = match found.domain.take() {
            Some(domain) => domain,
            None => match lookup::alias_domain_target(db, address.domain()).await? {
                Some((target, active)) => {
                    if !active {
                        expansion.note(format!(
                            "{} is a deactivated alias domain",
                            address.domain()
                        ));
                        return Ok(Step::Refused(Rejection::DomainInactive));
                    }
                    expansion.note(format!(
                        "{} is an alias domain of {target}",
                        address.domain()
                    ));
                    found = lookup::candidates(db, &target, address.local_part(), base).await?;
                    match found.domain.take() {
                        Some(domain) => domain,
                        None => return Ok(Step::NotHosted),
                    }
                }
                None => {
                    expansion.note(format!("{} is not hosted here", address.domain()));
                    return Ok(Step::NotHosted);
                }
            },
        };
        if !domain.active {
            expansion.note(format!("{} is deactivated", domain.domain));
            return Ok(Step::Refused(Rejection::DomainInactive));
        }
        let address = address.with_domain(&domain.domain);

        let mut candidates = vec![(address.clone(), None)];
        if let Some((base, extension)) = extension {
            candidates.push((base.with_domain(&domain.domain), Some(extension)));
        }
        for (candidate, extension) in candidates {
            if let Some(alias) = found.aliases.remove(candidate.local_part()) {
                return Ok(self.alias_step(candidate, alias, expansion));
            }
            if let Some(mailbox) = found.mailboxes.remove(candidate.local_part()) {
                if let Some(rejection) = mailbox_refusal(&mailbox) {
                    expansion.note(format!(
                        "{candidate} is a mailbox: {}",
                        rejection.describe()
                    ));
                    return Ok(Step::Refused(rejection));
                }
                expansion.note(format!(
                    "{candidate} is a mailbox (quota {})",
                    mailbox.effective_quota()
                ));
                return Ok(Step::Mailbox(mailbox, extension));
            }
        }
        if let Some(alias) = found.aliases.remove("") {
            let catch_all = Address::from_normalized("", &domain.domain);
            expansion.note(format!(
                "{address} matched no mailbox or alias; the catch-all @{} applies",
                domain.domain
            ));
            return Ok(self.alias_step(catch_all, alias, expansion));
        }
        expansion.note(format!(
            "{address} is no mailbox or alias of {}",
            domain.domain
        ));
        Ok(Step::Refused(Rejection::UnknownUser))
    }

    fn alias_step(&self, address: Address, alias: AliasRow, expansion: &mut Expansion) -> Step {
        let shown = if address.local_part().is_empty() {
            format!("@{}", address.domain())
        } else {
            address.to_string()
        };
        if !alias.active {
            expansion.note(format!("{shown} is a deactivated alias"));
            return Step::Refused(Rejection::AliasInactive);
        }
        if let Some(at) = alias.deactivate_at {
            if at <= expansion.now {
                expansion.note(format!("{shown} is an alias that expired"));
                return Step::Refused(Rejection::AliasInactive);
            }
            expansion.valid_until = Some(expansion.valid_until.map_or(at, |until| until.min(at)));
        }
        expansion.note(format!(
            "{shown} is an alias for {}",
            if alias.recipients.is_empty() {
                "nobody".to_owned()
            } else {
                alias.recipients.join(", ")
            }
        ));
        Step::Alias(address, alias)
    }
}

struct Expansion {
    trace: Vec<String>,
    valid_until: Option<i64>,
    now: i64,
}

impl Expansion {
    fn note(&mut self, line: String) {
        self.trace.push(line);
    }
}

fn mailbox_refusal(mailbox: &MailboxRow) -> Option<Rejection> {
    if !mailbox.active {
        return Some(Rejection::MailboxInactive);
    }
    if mailbox.send_only {
        return Some(Rejection::SendOnly);
    }
    None
}

fn local_recipient(mailbox: MailboxRow, detail: Option<String>) -> Recipient {
    let quota = mailbox.effective_quota();
    Recipient::Local(LocalRecipient {
        mailbox_id: mailbox.id,
        address: mailbox.address,
        detail,
        location: mailbox.location,
        quota,
    })
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
