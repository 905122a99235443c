//! The JSON API under `/api/`: everything `mailstead` manages from the command line, for
//! super admins, domain admins, mailbox admins and every user for themselves (MUM's roles;
//! the policy is `mailstead_directory::access`, asked by every route, never restated here).
//!
//! # Layout
//! - `auth`: sessions, the [`auth::Authenticated`] extractor (cookie or bearer token), CSRF.
//! - `error`: [`error::ApiError`] (the one error body) and [`error::ApiJson`] (bodies).
//! - `session`: log in, log out, who am I, my own settings.
//!
//! Every change goes through the directory's `manage` functions (one transaction, audited
//! with the principal and the client's address, the change counter bumped), so the mail
//! services see it within their change poll.

pub mod auth;
pub mod error;
mod session;

use std::sync::Arc;

use axum::Router;
use mailstead_auth::Authenticator;
use mailstead_queue::Queue;

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

/// The `/api/` routes.
pub(crate) fn router() -> Router<Arc<HttpContext>> {
    Router::new().merge(session::routes())
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
