//! What only super admins manage: alias domains, TLS policies, transports, DKIM keys, the
//! audit log and the queue; and `resolve` (admins of the address's domain).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mailstead_admin::output::DkimKeyView;
use mailstead_admin::{dkim, output};
use mailstead_directory::Directory;
use mailstead_directory::manage::{NewTlsPolicy, Page, TlsPolicyUpdate, TransportUpdate};
use mailstead_directory::model::{
    AliasDomain, AuditEntry, DkimAlgorithm, TlsPolicy, TlsPolicyKind, Transport,
};
use mailstead_queue::control::Request as QueueRequest;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::HttpContext;
use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, ApiJson};
use crate::api::{ApiQuery, ListParams, nullable, usage};

type Ctx = State<Arc<HttpContext>>;

fn super_only(auth: &Authenticated) -> Result<(), ApiError> {
    auth.require(auth.principal.may_manage_server())
}

// ---- alias domains ----

pub(super) async fn list_alias_domains(
    State(ctx): Ctx,
    auth: Authenticated,
) -> Result<Json<Vec<AliasDomain>>, ApiError> {
    let all = ctx.directory.list_alias_domains().await?;
    Ok(Json(
        all.into_iter()
            .filter(|alias| auth.principal.may_read_domain(&alias.target))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAliasDomainBody {
    domain: String,
    /// The hosted domain it receives as.
    target: String,
    description: Option<String>,
}

pub(super) async fn add_alias_domain(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewAliasDomainBody>,
) -> Result<(StatusCode, Json<AliasDomain>), ApiError> {
    super_only(&auth)?;
    let added = ctx
        .directory
        .add_alias_domain(&auth.actor, &body.domain, &body.target, body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub(super) async fn remove_alias_domain(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    super_only(&auth)?;
    ctx.directory
        .remove_alias_domain(&auth.actor, &domain)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- TLS policies ----

fn tls_kind(text: &str) -> Result<TlsPolicyKind, ApiError> {
    TlsPolicyKind::parse(text).map_err(|message| ApiError::unprocessable("policy", message))
}

pub(super) async fn list_tls_policies(
    State(ctx): Ctx,
    auth: Authenticated,
) -> Result<Json<Vec<TlsPolicy>>, ApiError> {
    super_only(&auth)?;
    Ok(Json(ctx.directory.list_tls_policies().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTlsPolicyBody {
    domain: String,
    policy: String,
    params: Option<String>,
    description: Option<String>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

pub(super) async fn add_tls_policy(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewTlsPolicyBody>,
) -> Result<(StatusCode, Json<TlsPolicy>), ApiError> {
    super_only(&auth)?;
    let new = NewTlsPolicy {
        domain: body.domain,
        policy: tls_kind(&body.policy)?,
        params: body.params,
        description: body.description,
        active: body.active,
    };
    let added = ctx.directory.add_tls_policy(&auth.actor, new).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub(super) async fn get_tls_policy(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
) -> Result<Json<TlsPolicy>, ApiError> {
    super_only(&auth)?;
    Ok(Json(ctx.directory.get_tls_policy(&domain).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsPolicyUpdateBody {
    policy: Option<String>,
    #[serde(default, with = "nullable")]
    params: Option<Option<String>>,
    #[serde(default, with = "nullable")]
    description: Option<Option<String>>,
    active: Option<bool>,
}

pub(super) async fn update_tls_policy(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
    ApiJson(body): ApiJson<TlsPolicyUpdateBody>,
) -> Result<Json<TlsPolicy>, ApiError> {
    super_only(&auth)?;
    let update = TlsPolicyUpdate {
        policy: body.policy.as_deref().map(tls_kind).transpose()?,
        params: body.params,
        description: body.description,
        active: body.active,
    };
    Ok(Json(
        ctx.directory
            .update_tls_policy(&auth.actor, &domain, update)
            .await?,
    ))
}

pub(super) async fn remove_tls_policy(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    super_only(&auth)?;
    ctx.directory
        .remove_tls_policy(&auth.actor, &domain)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- transports ----

pub(super) async fn list_transports(
    State(ctx): Ctx,
    auth: Authenticated,
) -> Result<Json<Vec<Transport>>, ApiError> {
    super_only(&auth)?;
    Ok(Json(ctx.directory.list_transports().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTransportBody {
    domain: String,
    /// Postfix's syntax: `smtp:[host]:port`, `lmtp:host:port`.
    next_hop: String,
    description: Option<String>,
}

pub(super) async fn add_transport(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewTransportBody>,
) -> Result<(StatusCode, Json<Transport>), ApiError> {
    super_only(&auth)?;
    let added = ctx
        .directory
        .add_transport(
            &auth.actor,
            &body.domain,
            &body.next_hop,
            body.description.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub(super) async fn get_transport(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
) -> Result<Json<Transport>, ApiError> {
    super_only(&auth)?;
    Ok(Json(ctx.directory.get_transport(&domain).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransportUpdateBody {
    next_hop: Option<String>,
    #[serde(default, with = "nullable")]
    description: Option<Option<String>>,
    active: Option<bool>,
}

pub(super) async fn update_transport(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
    ApiJson(body): ApiJson<TransportUpdateBody>,
) -> Result<Json<Transport>, ApiError> {
    super_only(&auth)?;
    let update = TransportUpdate {
        next_hop: body.next_hop,
        description: body.description,
        active: body.active,
    };
    Ok(Json(
        ctx.directory
            .update_transport(&auth.actor, &domain, update)
            .await?,
    ))
}

pub(super) async fn remove_transport(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    super_only(&auth)?;
    ctx.directory.remove_transport(&auth.actor, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- DKIM keys ----

pub(super) async fn list_dkim_keys(
    State(ctx): Ctx,
    auth: Authenticated,
) -> Result<Json<Vec<DkimKeyView>>, ApiError> {
    let keys = ctx.directory.list_dkim_keys().await?;
    Ok(Json(
        keys.into_iter()
            .filter(|key| auth.principal.may_read_domain(&key.domain))
            .map(DkimKeyView::new)
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDkimKeyBody {
    domain: String,
    /// `sYYYYMM` by default.
    selector: Option<String>,
    /// `ed25519` (default) or `rsa`.
    algorithm: Option<String>,
    /// RSA only: 1024 to 4096 (2048 by default).
    bits: Option<usize>,
}

/// Makes a key pair for a hosted domain and stores it; the answer holds the DNS record to
/// publish.
pub(super) async fn generate_dkim_key(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewDkimKeyBody>,
) -> Result<(StatusCode, Json<DkimKeyView>), ApiError> {
    super_only(&auth)?;
    let algorithm = match body.algorithm.as_deref() {
        None => DkimAlgorithm::Ed25519,
        Some(text) => DkimAlgorithm::parse(text)
            .map_err(|message| ApiError::unprocessable("algorithm", message))?,
    };
    let bits = body.bits.unwrap_or(2048);
    if algorithm == DkimAlgorithm::Rsa && !(1024..=4096).contains(&bits) {
        return Err(ApiError::unprocessable(
            "bits",
            "an RSA key has 1024 to 4096 bits",
        ));
    }
    // An unknown domain is said before a key is made for nothing.
    ctx.directory
        .get_domain(&body.domain)
        .await
        .map_err(|err| ApiError::from(err).on("domain"))?;
    let selector = body.selector.unwrap_or_else(dkim::default_selector);
    let key = tokio::task::spawn_blocking(move || dkim::generate(algorithm, bits))
        .await
        .map_err(|err| ApiError::unavailable(&err))?
        .map_err(|err| usage("algorithm", err))?;
    let info = ctx
        .directory
        .add_dkim_key(
            &auth.actor,
            &body.domain,
            &selector,
            algorithm,
            &key.private_key_pem,
            &key.public_key_b64,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(DkimKeyView::new(info))))
}

pub(super) async fn remove_dkim_key(
    State(ctx): Ctx,
    auth: Authenticated,
    Path((domain, selector)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    super_only(&auth)?;
    ctx.directory
        .remove_dkim_key(&auth.actor, &domain, Some(&selector))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- the audit log ----

pub(super) async fn audit_log(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    super_only(&auth)?;
    let request = params.page_request(mailstead_directory::manage::Visibility::everything())?;
    Ok(Json(ctx.directory.page_audit_log(&request).await?))
}

// ---- resolve ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveParams {
    address: String,
}

#[derive(Serialize)]
pub(super) struct ResolveView {
    resolution: Value,
    /// As `mailstead resolve` prints it.
    text: String,
}

pub(super) async fn resolve(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiQuery(params): ApiQuery<ResolveParams>,
) -> Result<Json<ResolveView>, ApiError> {
    let address = Directory::parse_address(&params.address)
        .map_err(|err| ApiError::from(err).on("address"))?;
    auth.require(auth.principal.may_resolve(address.domain()))?;
    let resolution = ctx.directory.resolve_address(&address).await?;
    Ok(Json(ResolveView {
        resolution: serde_json::to_value(&*resolution).unwrap_or(Value::Null),
        text: output::resolution(&resolution),
    }))
}

// ---- the queue ----

async fn queue_request(
    ctx: &HttpContext,
    request: QueueRequest,
) -> Result<mailstead_queue::control::Response, ApiError> {
    let Some(queue) = &ctx.api.queue else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server runs no outbound queue",
        ));
    };
    let response = queue.handle(request).await;
    if response.ok {
        Ok(response)
    } else {
        let message = response.error.unwrap_or_default();
        // The queue's errors are about the id asked for ("no message …").
        Err(ApiError::not_found(message).on("id"))
    }
}

pub(super) async fn list_queue(
    State(ctx): Ctx,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    super_only(&auth)?;
    let response = queue_request(&ctx, QueueRequest::List).await?;
    Ok(Json(json!({ "messages": response.messages })))
}

pub(super) async fn show_queued(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    super_only(&auth)?;
    let response = queue_request(&ctx, QueueRequest::Show { id }).await?;
    Ok(Json(
        response
            .messages
            .into_iter()
            .next()
            .map_or(Value::Null, |message| json!(message)),
    ))
}

pub(super) async fn retry_queued(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super_only(&auth)?;
    queue_request(&ctx, QueueRequest::Retry { ids: vec![id] }).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn remove_queued(
    State(ctx): Ctx,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super_only(&auth)?;
    queue_request(
        &ctx,
        QueueRequest::Remove {
            ids: vec![id],
            sender: None,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
