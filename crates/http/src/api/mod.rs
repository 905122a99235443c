//! The JSON API under `/api/`: everything `mailstead` manages from the command line, for
//! super admins, domain admins, mailbox admins and every user for themselves (MUM's roles;
//! the policy is `mailstead_directory::access`, asked by every route, never restated here).
//!
//! # Layout
//! - `auth`: sessions, the [`auth::Authenticated`] extractor (cookie or bearer token), CSRF.
//! - `error`: [`error::ApiError`] (the one error body) and [`error::ApiJson`] (bodies).
//! - `session`: log in, log out, who am I, my own settings.
//! - `directory`: domains, mailboxes, aliases, admin grants.
//! - `server`: alias domains, TLS policies, transports, DKIM keys, audit log, queue, resolve.
//! - `openapi`: the OpenAPI document served at `/api/openapi.json`.
//!
//! [`operations`] is the one table the router is built from; a test holds it and the OpenAPI
//! document to each other, so neither can name an operation the other lacks.
//!
//! Every change goes through the directory's `manage` functions (one transaction, audited
//! with the principal and the client's address, the change counter bumped), so the mail
//! services see it within their change poll.

pub mod auth;
mod directory;
pub mod error;
mod openapi;
mod server;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use mailstead_admin::AdminError;
use mailstead_auth::Authenticator;
use mailstead_directory::manage::{
    DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, PageRequest, Sort, Visibility,
};
use mailstead_queue::Queue;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::HttpContext;

pub use auth::{Authenticated, ClientInfo, Sessions, Via, same_origin};
pub use error::{ApiError, ApiJson};

/// What the API needs beyond the listener's context.
pub struct ApiContext {
    /// Logins, with the failure penalty shared with IMAP, POP3 and submission.
    pub authenticator: Authenticator,
    pub sessions: Sessions,
    /// The running server's outbound queue; `None` where there is none (its routes answer
    /// 503).
    pub queue: Option<Queue>,
}

impl ApiContext {
    pub fn new(authenticator: Authenticator, queue: Option<Queue>) -> ApiContext {
        ApiContext {
            authenticator,
            sessions: Sessions::default(),
            queue,
        }
    }
}

type Route = (&'static str, &'static str, MethodRouter<Arc<HttpContext>>);

/// Every API operation: method, path (axum's and OpenAPI's `{param}` syntax), handler.
fn table() -> Vec<Route> {
    use directory as dir;
    vec![
        ("GET", "/api/openapi.json", get(openapi::document)),
        ("GET", "/api/session", get(session::current_session)),
        (
            "POST",
            "/api/session",
            // Before login a client gets a few KB, not the 64 KiB of an authenticated body.
            post(session::log_in).layer(DefaultBodyLimit::max(LOGIN_BODY_BYTES)),
        ),
        ("DELETE", "/api/session", delete(session::log_out)),
        ("GET", "/api/me", get(session::me)),
        ("PATCH", "/api/me", patch(session::update_me)),
        ("PUT", "/api/me/password", put(session::change_password)),
        ("GET", "/api/domains", get(dir::list_domains)),
        ("POST", "/api/domains", post(dir::add_domain)),
        ("GET", "/api/domains/{domain}", get(dir::get_domain)),
        ("PATCH", "/api/domains/{domain}", patch(dir::update_domain)),
        (
            "DELETE",
            "/api/domains/{domain}",
            delete(dir::remove_domain),
        ),
        (
            "GET",
            "/api/domains/{domain}/admins",
            get(dir::list_domain_admins),
        ),
        (
            "POST",
            "/api/domains/{domain}/admins",
            post(dir::add_domain_admin),
        ),
        (
            "DELETE",
            "/api/domains/{domain}/admins/{admin}",
            delete(dir::remove_domain_admin),
        ),
        ("GET", "/api/mailboxes", get(dir::list_mailboxes)),
        ("POST", "/api/mailboxes", post(dir::add_mailbox)),
        ("GET", "/api/mailboxes/{address}", get(dir::get_mailbox)),
        (
            "PATCH",
            "/api/mailboxes/{address}",
            patch(dir::update_mailbox),
        ),
        (
            "DELETE",
            "/api/mailboxes/{address}",
            delete(dir::remove_mailbox),
        ),
        (
            "PUT",
            "/api/mailboxes/{address}/password",
            put(dir::set_mailbox_password),
        ),
        (
            "GET",
            "/api/mailboxes/{address}/admins",
            get(dir::list_mailbox_admins),
        ),
        (
            "POST",
            "/api/mailboxes/{address}/admins",
            post(dir::add_mailbox_admin),
        ),
        (
            "DELETE",
            "/api/mailboxes/{address}/admins/{admin}",
            delete(dir::remove_mailbox_admin),
        ),
        ("GET", "/api/aliases", get(dir::list_aliases)),
        ("POST", "/api/aliases", post(dir::add_alias)),
        ("GET", "/api/aliases/{address}", get(dir::get_alias)),
        ("PATCH", "/api/aliases/{address}", patch(dir::update_alias)),
        (
            "DELETE",
            "/api/aliases/{address}",
            delete(dir::remove_alias),
        ),
        (
            "POST",
            "/api/aliases/{address}/recipients",
            post(dir::add_recipients),
        ),
        (
            "DELETE",
            "/api/aliases/{address}/recipients/{recipient}",
            delete(dir::remove_recipient),
        ),
        (
            "POST",
            "/api/aliases/{address}/senders",
            post(dir::add_sender),
        ),
        (
            "DELETE",
            "/api/aliases/{address}/senders/{mailbox}",
            delete(dir::remove_sender),
        ),
        ("GET", "/api/alias-domains", get(server::list_alias_domains)),
        ("POST", "/api/alias-domains", post(server::add_alias_domain)),
        (
            "DELETE",
            "/api/alias-domains/{domain}",
            delete(server::remove_alias_domain),
        ),
        ("GET", "/api/tls-policies", get(server::list_tls_policies)),
        ("POST", "/api/tls-policies", post(server::add_tls_policy)),
        (
            "GET",
            "/api/tls-policies/{domain}",
            get(server::get_tls_policy),
        ),
        (
            "PATCH",
            "/api/tls-policies/{domain}",
            patch(server::update_tls_policy),
        ),
        (
            "DELETE",
            "/api/tls-policies/{domain}",
            delete(server::remove_tls_policy),
        ),
        ("GET", "/api/transports", get(server::list_transports)),
        ("POST", "/api/transports", post(server::add_transport)),
        (
            "GET",
            "/api/transports/{domain}",
            get(server::get_transport),
        ),
        (
            "PATCH",
            "/api/transports/{domain}",
            patch(server::update_transport),
        ),
        (
            "DELETE",
            "/api/transports/{domain}",
            delete(server::remove_transport),
        ),
        ("GET", "/api/dkim-keys", get(server::list_dkim_keys)),
        ("POST", "/api/dkim-keys", post(server::generate_dkim_key)),
        (
            "DELETE",
            "/api/dkim-keys/{domain}/{selector}",
            delete(server::remove_dkim_key),
        ),
        ("GET", "/api/audit", get(server::audit_log)),
        ("GET", "/api/resolve", get(server::resolve)),
        ("GET", "/api/queue", get(server::list_queue)),
        ("GET", "/api/queue/{id}", get(server::show_queued)),
        ("DELETE", "/api/queue/{id}", delete(server::remove_queued)),
        ("POST", "/api/queue/{id}/retry", post(server::retry_queued)),
    ]
}

/// Every API operation as (method, path), for the OpenAPI check.
pub fn operations() -> Vec<(&'static str, &'static str)> {
    table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The `/api/` routes; any other path under `/api/` gets a JSON 404.
pub(crate) fn router() -> Router<Arc<HttpContext>> {
    let routes = table()
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        });
    routes
        .route("/api", axum::routing::any(no_such_path))
        .route("/api/{*rest}", axum::routing::any(no_such_path))
}

async fn no_such_path() -> Response {
    ApiError::not_found("no such API path; see /api/openapi.json").into_response()
}

/// Query parameters with errors in the API's shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()).on("query")
            })
    }
}

/// The longest `q` filter.
const MAX_FILTER_CHARS: usize = 255;

/// `?limit=&offset=&q=&domain=&sort=` of every list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub q: Option<String>,
    pub domain: Option<String>,
    pub sort: Option<String>,
}

impl ListParams {
    fn page_request(self, visibility: Visibility) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
        if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(
                "limit",
                format!("limit must be 1 to {MAX_PAGE_LIMIT}"),
            ));
        }
        let offset = self.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::bad_request("offset", "offset must be 0 or more"));
        }
        if self
            .q
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_FILTER_CHARS)
        {
            return Err(ApiError::bad_request(
                "q",
                format!("a filter is at most {MAX_FILTER_CHARS} characters"),
            ));
        }
        let sort = match self.sort.as_deref() {
            None => Sort::default(),
            Some(text) => {
                Sort::parse(text).map_err(|err| ApiError::bad_request("sort", err.to_string()))?
            }
        };
        let domain = match self.domain {
            Some(domain) => Some(
                mailstead_directory::address::normalize_domain(&domain)
                    .map_err(|err| ApiError::bad_request("domain", err.to_string()))?,
            ),
            None => None,
        };
        Ok(PageRequest {
            limit,
            offset,
            q: self.q,
            domain,
            sort,
            visibility,
        })
    }
}

/// An administrator's value the admin crate's parsers refused, as a 422 on `field`.
fn usage(field: &str, err: AdminError) -> ApiError {
    match err {
        AdminError::Usage(message) => ApiError::unprocessable(field, message),
        other => ApiError::unavailable(&other),
    }
}

/// Checks a new password against the policy and hashes it off the I/O threads.
async fn hash_password(field: &str, password: &str) -> Result<String, ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::unprocessable(
            field,
            format!("a password is at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let owned = password.to_owned();
    tokio::task::spawn_blocking(move || mailstead_admin::input::hash_new_password(&owned))
        .await
        .map_err(|err| ApiError::unavailable(&err))?
        .map_err(|err| usage(field, err))
}

/// A field that may be absent (leave it), `null` (clear it) or a value (set it):
/// `Option<Option<T>>` with `#[serde(default, with = "nullable")]`.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// An alternative address must be an address (MUM's `email` rule); empty clears it.
fn checked_alternative_email(
    value: Option<Option<String>>,
) -> Result<Option<Option<String>>, ApiError> {
    match value {
        Some(Some(text)) if text.trim().is_empty() => Ok(Some(None)),
        Some(Some(text)) => mailstead_directory::Directory::parse_address(&text)
            .map(|address| Some(Some(address.to_string())))
            .map_err(|err| ApiError::unprocessable("alternative_email", err.to_string())),
        other => Ok(other),
    }
}

/// The longest password accepted, as at login: more is refused before any hashing.
const MAX_PASSWORD_BYTES: usize = 1024;

/// The largest login body: an address and a password of at most 1 KiB each, in JSON.
const LOGIN_BODY_BYTES: usize = 4 * 1024;

/// Checks a new password against the policy, hashes it off the I/O threads, stores it, and
/// ends every session of the mailbox (its user logs in again with the new password).
async fn set_password(
    ctx: &HttpContext,
    auth: &Authenticated,
    address: &str,
    password: &str,
) -> Result<(), ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::unprocessable(
            "new_password",
            format!("a password is at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let owned = password.to_owned();
    let hashed =
        tokio::task::spawn_blocking(move || mailstead_admin::input::hash_new_password(&owned))
            .await
            .map_err(|err| ApiError::unavailable(&err))?;
    let hash = hashed.map_err(|err| match err {
        mailstead_admin::AdminError::Usage(message) => {
            ApiError::unprocessable("new_password", message)
        }
        other => ApiError::unavailable(&other),
    })?;
    ctx.directory
        .set_password(&auth.actor, address, &hash)
        .await?;
    ctx.api.sessions.end_all_of(address);
    Ok(())
}
