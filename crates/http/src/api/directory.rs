//! Domains, mailboxes and aliases (with recipients and senders), and MUM's admin grants.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailstead_admin::input;
use mailstead_directory::Directory;
use mailstead_directory::access::{MailboxField, Visible};
use mailstead_directory::address::AliasAddress;
use mailstead_directory::manage::{
    AdminGrant, AliasUpdate, DomainUpdate, MailboxUpdate, NewAlias, NewDomain, NewMailbox, Page,
    Visibility,
};
use mailstead_directory::model::{Alias, Domain, Mailbox, Quota};
use serde::Deserialize;

use crate::HttpContext;
use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, ApiJson};
use crate::api::{ApiQuery, ListParams, checked_alternative_email, nullable, usage};

type Ctx = State<Arc<HttpContext>>;

/// What lists show this principal.
fn visibility(auth: &Authenticated) -> Visibility {
    let principal = &auth.principal;
    match principal.visible_domains() {
        Visible::All => Visibility::everything(),
        Visible::Domains(domains) => Visibility {
            all: false,
            domains: domains.into_iter().collect(),
            mailboxes: principal
                .admin_mailboxes
                .iter()
                .cloned()
                .chain(principal.own_address.clone())
                .collect(),
            member: principal.own_address.clone(),
        },
    }
}

fn parse_quota(field: &str, text: Option<String>) -> Result<Option<Quota>, ApiError> {
    match text {
        None => Ok(None),
        Some(text) => input::parse_quota_or_inherit(&text).map_err(|err| usage(field, err)),
    }
}

fn parse_quota_change(
    field: &str,
    value: Option<Option<String>>,
) -> Result<Option<Option<Quota>>, ApiError> {
    value.map(|text| parse_quota(field, text)).transpose()
}

fn parse_max_quota(value: Option<String>) -> Result<Option<i64>, ApiError> {
    match value {
        None => Ok(None),
        Some(text) => input::parse_max_quota_gib(&text).map_err(|err| usage("max_quota", err)),
    }
}

fn check_limit(field: &str, value: Option<i64>) -> Result<Option<i64>, ApiError> {
    match value {
        Some(n) if n < 0 => Err(ApiError::unprocessable(
            field,
            format!("{field} must be 0 or more, or null for no limit"),
        )),
        other => Ok(other),
    }
}

// ---- domains ----

pub(super) async fn list_domains(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Domain>>, ApiError> {
    let request = params.page_request(visibility(&auth))?;
    Ok(Json(ctx.directory.page_domains(&request).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDomainBody {
    domain: String,
    description: Option<String>,
    /// The default quota of its mailboxes (`2G`, `500M`, `0` unlimited); null: none.
    quota: Option<String>,
    max_quota: Option<String>,
    max_aliases: Option<i64>,
    max_mailboxes: Option<i64>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

pub(super) async fn add_domain(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewDomainBody>,
) -> Result<(StatusCode, Json<Domain>), ApiError> {
    auth.require(auth.principal.may_manage_server())?;
    let new = NewDomain {
        domain: body.domain,
        description: body.description,
        quota: parse_quota("quota", body.quota)?,
        max_quota_gib: parse_max_quota(body.max_quota)?,
        max_aliases: check_limit("max_aliases", body.max_aliases)?,
        max_mailboxes: check_limit("max_mailboxes", body.max_mailboxes)?,
        active: body.active,
        homedir: None,
    };
    let domain = ctx
        .directory
        .add_domain(&auth.actor, new)
        .await
        .map_err(|err| ApiError::from(err).on("domain"))?;
    Ok((StatusCode::CREATED, Json(domain)))
}

pub(super) async fn get_domain(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
) -> Result<Json<Domain>, ApiError> {
    let found = ctx.directory.get_domain(&domain).await?;
    auth.require(auth.principal.may_read_domain(&found.domain))?;
    Ok(Json(found))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DomainUpdateBody {
    #[serde(default, with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, with = "nullable")]
    quota: Option<Option<String>>,
    #[serde(default, with = "nullable")]
    max_quota: Option<Option<String>>,
    #[serde(default, with = "nullable")]
    max_aliases: Option<Option<i64>>,
    #[serde(default, with = "nullable")]
    max_mailboxes: Option<Option<i64>>,
    active: Option<bool>,
}

pub(super) async fn update_domain(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
    ApiJson(body): ApiJson<DomainUpdateBody>,
) -> Result<Json<Domain>, ApiError> {
    auth.require(auth.principal.may_manage_server())?;
    let update = DomainUpdate {
        description: body.description,
        quota: parse_quota_change("quota", body.quota)?,
        max_quota_gib: body.max_quota.map(parse_max_quota).transpose()?,
        max_aliases: body
            .max_aliases
            .map(|n| check_limit("max_aliases", n))
            .transpose()?,
        max_mailboxes: body
            .max_mailboxes
            .map(|n| check_limit("max_mailboxes", n))
            .transpose()?,
        active: body.active,
    };
    Ok(Json(
        ctx.directory
            .update_domain(&auth.actor, &domain, update)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveParams {
    /// Remove a domain with its mailboxes and aliases.
    #[serde(default)]
    force: bool,
}

pub(super) async fn remove_domain(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
    ApiQuery(params): ApiQuery<RemoveParams>,
) -> Result<StatusCode, ApiError> {
    auth.require(auth.principal.may_manage_server())?;
    ctx.directory
        .remove_domain(&auth.actor, &domain, params.force)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- admin grants ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantBody {
    /// The mailbox given the right.
    admin: String,
}

pub(super) async fn list_domain_admins(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
) -> Result<Json<Vec<AdminGrant>>, ApiError> {
    let found = ctx.directory.get_domain(&domain).await?;
    auth.require(auth.principal.may_read_domain(&found.domain))?;
    Ok(Json(
        ctx.directory
            .list_domain_admins(Some(&found.domain))
            .await?,
    ))
}

pub(super) async fn add_domain_admin(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<StatusCode, ApiError> {
    auth.require(auth.principal.may_manage_server())?;
    ctx.directory
        .add_domain_admin(&auth.actor, &body.admin, &domain)
        .await
        .map_err(|err| ApiError::from(err).on("admin"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn remove_domain_admin(
    State(ctx): Ctx,
    auth: Authenticated,
    Path((domain, admin)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.require(auth.principal.may_manage_server())?;
    ctx.directory
        .remove_domain_admin(&auth.actor, &admin, &domain)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn list_mailbox_admins(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
) -> Result<Json<Vec<AdminGrant>>, ApiError> {
    let mailbox = ctx.directory.get_mailbox(&address).await?;
    auth.require(auth.principal.may_read_mailbox(&mailbox.address))?;
    let shown = mailbox.address.to_string();
    let grants = ctx.directory.list_mailbox_admins().await?;
    Ok(Json(
        grants
            .into_iter()
            .filter(|grant| grant.manages == shown)
            .collect(),
    ))
}

pub(super) async fn add_mailbox_admin(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<StatusCode, ApiError> {
    auth.require(auth.principal.may_manage_server())?;
    ctx.directory
        .add_mailbox_admin(&auth.actor, &body.admin, &address)
        .await
        .map_err(|err| ApiError::from(err).on("admin"))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn remove_mailbox_admin(
    State(ctx): Ctx,
    auth: Authenticated,
    Path((address, admin)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.require(auth.principal.may_manage_server())?;
    ctx.directory
        .remove_mailbox_admin(&auth.actor, &admin, &address)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- mailboxes ----

pub(super) async fn list_mailboxes(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Mailbox>>, ApiError> {
    let request = params.page_request(visibility(&auth))?;
    Ok(Json(ctx.directory.page_mailboxes(&request).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewMailboxBody {
    address: String,
    password: String,
    name: Option<String>,
    alternative_email: Option<String>,
    /// `2G`, `500M`, `0` (unlimited); null inherits the domain's.
    quota: Option<String>,
    #[serde(default)]
    send_only: bool,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default)]
    is_super_admin: bool,
}

pub(super) async fn add_mailbox(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewMailboxBody>,
) -> Result<(StatusCode, Json<Mailbox>), ApiError> {
    let address =
        Directory::parse_address(&body.address).map_err(|err| ApiError::from(err).on("address"))?;
    auth.require(auth.principal.may_manage_domain_contents(address.domain()))?;
    if body.is_super_admin {
        auth.require(
            auth.principal
                .may_change_mailbox(&address, MailboxField::IsSuperAdmin),
        )?;
    }
    let password_hash = super::hash_password("password", &body.password).await?;
    let new = NewMailbox {
        address: address.to_string(),
        password_hash,
        name: body.name,
        alternative_email: checked_alternative_email(Some(body.alternative_email))?.flatten(),
        quota: parse_quota("quota", body.quota)?,
        send_only: body.send_only,
        active: body.active,
        is_super_admin: body.is_super_admin,
        homedir: None,
        maildir: None,
    };
    let mailbox = ctx
        .directory
        .add_mailbox(&auth.actor, new)
        .await
        .map_err(|err| ApiError::from(err).on("address"))?;
    Ok((StatusCode::CREATED, Json(mailbox)))
}

/// Reads a mailbox for `auth`: 404 when it does not exist, 403 when it is not theirs to see.
async fn readable_mailbox(
    ctx: &HttpContext,
    auth: &Authenticated,
    address: &str,
) -> Result<Mailbox, ApiError> {
    let parsed = Directory::parse_address(address)?;
    if !auth.principal.may_read_mailbox(&parsed) {
        return Err(ApiError::forbidden());
    }
    Ok(ctx.directory.get_mailbox(address).await?)
}

pub(super) async fn get_mailbox(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
) -> Result<Json<Mailbox>, ApiError> {
    Ok(Json(readable_mailbox(&ctx, &auth, &address).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MailboxUpdateBody {
    #[serde(default, with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, with = "nullable")]
    alternative_email: Option<Option<String>>,
    #[serde(default, with = "nullable")]
    quota: Option<Option<String>>,
    send_only: Option<bool>,
    active: Option<bool>,
    is_super_admin: Option<bool>,
}

pub(super) async fn update_mailbox(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<MailboxUpdateBody>,
) -> Result<Json<Mailbox>, ApiError> {
    let mailbox = readable_mailbox(&ctx, &auth, &address).await?;
    let asked = [
        (MailboxField::Name, body.name.is_some()),
        (
            MailboxField::AlternativeEmail,
            body.alternative_email.is_some(),
        ),
        (MailboxField::Quota, body.quota.is_some()),
        (MailboxField::SendOnly, body.send_only.is_some()),
        (MailboxField::Active, body.active.is_some()),
        (MailboxField::IsSuperAdmin, body.is_super_admin.is_some()),
    ];
    for (field, present) in asked {
        if present && !auth.principal.may_change_mailbox(&mailbox.address, field) {
            return Err(ApiError::forbidden().on(field.name()));
        }
    }
    let update = MailboxUpdate {
        name: body.name,
        alternative_email: checked_alternative_email(body.alternative_email)?,
        quota: parse_quota_change("quota", body.quota)?,
        send_only: body.send_only,
        active: body.active,
        is_super_admin: body.is_super_admin,
    };
    let shown = mailbox.address.to_string();
    let updated = ctx
        .directory
        .update_mailbox(&auth.actor, &shown, update)
        .await?;
    if body.active == Some(false) {
        ctx.api.sessions.end_all_of(&shown);
    }
    Ok(Json(updated))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPasswordBody {
    new_password: String,
}

/// An admin sets a mailbox's password (a user changes their own with `/api/me/password`).
pub(super) async fn set_mailbox_password(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<NewPasswordBody>,
) -> Result<StatusCode, ApiError> {
    let mailbox = readable_mailbox(&ctx, &auth, &address).await?;
    auth.require(
        auth.principal
            .may_change_mailbox(&mailbox.address, MailboxField::Password),
    )?;
    super::set_password(
        &ctx,
        &auth,
        &mailbox.address.to_string(),
        &body.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn remove_mailbox(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    let parsed = Directory::parse_address(&address)?;
    auth.require(auth.principal.may_manage_domain_contents(parsed.domain()))?;
    let shown = parsed.to_string();
    ctx.directory.remove_mailbox(&auth.actor, &shown).await?;
    ctx.api.sessions.end_all_of(&shown);
    Ok(StatusCode::NO_CONTENT)
}

// ---- aliases ----

pub(super) async fn list_aliases(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<Alias>>, ApiError> {
    let request = params.page_request(visibility(&auth))?;
    Ok(Json(ctx.directory.page_aliases(&request).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAliasBody {
    /// `name@domain`, or `@domain` for a catch-all.
    address: String,
    description: Option<String>,
    #[serde(default)]
    recipients: Vec<String>,
    /// Mailboxes that may send as the alias.
    #[serde(default)]
    senders: Vec<String>,
    #[serde(default = "yes")]
    active: bool,
    /// Unix seconds at which it stops working.
    deactivate_at: Option<i64>,
}

fn alias_domain_of(address: &str, field: &str) -> Result<AliasAddress, ApiError> {
    AliasAddress::parse(address).map_err(|err| ApiError::unprocessable(field, err.to_string()))
}

pub(super) async fn add_alias(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewAliasBody>,
) -> Result<(StatusCode, Json<Alias>), ApiError> {
    let address = alias_domain_of(&body.address, "address")?;
    auth.require(auth.principal.may_manage_domain_contents(address.domain()))?;
    let new = NewAlias {
        address: address.to_string(),
        description: body.description,
        recipients: body.recipients,
        senders: body.senders,
        active: body.active,
        deactivate_at: body.deactivate_at,
    };
    let alias = ctx.directory.add_alias(&auth.actor, new).await?;
    Ok((StatusCode::CREATED, Json(alias)))
}

async fn readable_alias(
    ctx: &HttpContext,
    auth: &Authenticated,
    address: &str,
) -> Result<Alias, ApiError> {
    let alias = ctx.directory.get_alias(address).await?;
    auth.require(
        auth.principal
            .may_read_alias(&alias.address, &alias.recipients, &alias.senders),
    )?;
    Ok(alias)
}

pub(super) async fn get_alias(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
) -> Result<Json<Alias>, ApiError> {
    Ok(Json(readable_alias(&ctx, &auth, &address).await?))
}

/// Checks that `auth` may change the alias at `address` (after checking it may see it, so a
/// stranger gets 403 for every alias and learns nothing from 404s of other domains).
fn changeable(auth: &Authenticated, address: &str) -> Result<AliasAddress, ApiError> {
    let parsed = alias_domain_of(address, "address")?;
    auth.require(auth.principal.may_manage_domain_contents(parsed.domain()))?;
    Ok(parsed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AliasUpdateBody {
    #[serde(default, with = "nullable")]
    description: Option<Option<String>>,
    active: Option<bool>,
    #[serde(default, with = "nullable")]
    deactivate_at: Option<Option<i64>>,
}

pub(super) async fn update_alias(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<AliasUpdateBody>,
) -> Result<Json<Alias>, ApiError> {
    let parsed = changeable(&auth, &address)?;
    let update = AliasUpdate {
        description: body.description,
        active: body.active,
        deactivate_at: body.deactivate_at,
    };
    Ok(Json(
        ctx.directory
            .update_alias(&auth.actor, &parsed.to_string(), update)
            .await?,
    ))
}

pub(super) async fn remove_alias(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    let parsed = changeable(&auth, &address)?;
    ctx.directory
        .remove_alias(&auth.actor, &parsed.to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecipientsBody {
    recipients: Vec<String>,
}

pub(super) async fn add_recipients(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<RecipientsBody>,
) -> Result<Json<Alias>, ApiError> {
    let parsed = changeable(&auth, &address)?;
    Ok(Json(
        ctx.directory
            .add_alias_recipients(&auth.actor, &parsed.to_string(), &body.recipients)
            .await
            .map_err(|err| ApiError::from(err).on("recipients"))?,
    ))
}

pub(super) async fn remove_recipient(
    State(ctx): Ctx,
    auth: Authenticated,
    Path((address, recipient)): Path<(String, String)>,
) -> Result<Json<Alias>, ApiError> {
    let parsed = changeable(&auth, &address)?;
    Ok(Json(
        ctx.directory
            .remove_alias_recipients(&auth.actor, &parsed.to_string(), &[recipient])
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SenderBody {
    mailbox: String,
}

pub(super) async fn add_sender(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(address): Path<String>,
    ApiJson(body): ApiJson<SenderBody>,
) -> Result<Json<Alias>, ApiError> {
    let parsed = changeable(&auth, &address)?;
    Ok(Json(
        ctx.directory
            .add_sender(&auth.actor, &parsed.to_string(), &body.mailbox)
            .await
            .map_err(|err| ApiError::from(err).on("mailbox"))?,
    ))
}

pub(super) async fn remove_sender(
    State(ctx): Ctx,
    auth: Authenticated,
    Path((address, mailbox)): Path<(String, String)>,
) -> Result<Json<Alias>, ApiError> {
    let parsed = changeable(&auth, &address)?;
    Ok(Json(
        ctx.directory
            .remove_sender(&auth.actor, &parsed.to_string(), &mailbox)
            .await?,
    ))
}
