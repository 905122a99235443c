//! Logging in and out, who am I, and what every user may change of their own mailbox: name,
//! alternative address, password.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailstead_auth::{AuthOutcome, LoginAttempt, Service};
use mailstead_directory::access::{MailboxField, Principal};
use mailstead_directory::manage::MailboxUpdate;
use mailstead_directory::model::Mailbox;
use serde::{Deserialize, Serialize};

use crate::HttpContext;
use crate::api::auth::{self, Authenticated, ClientInfo, Via};
use crate::api::error::{ApiError, ApiJson};

type Ctx = State<Arc<HttpContext>>;

/// `POST /api/session`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub address: String,
    pub password: String,
}

/// Who is logged in, with their roles.
#[derive(Serialize)]
pub struct SessionView {
    pub principal: Principal,
    /// `session` or `token`.
    pub via: &'static str,
    /// Whether the console should show admin pages.
    pub admin: bool,
}

fn session_view(auth: &Authenticated) -> SessionView {
    SessionView {
        principal: auth.principal.clone(),
        via: match auth.via {
            Via::Session => "session",
            Via::Token => "token",
        },
        admin: auth.principal.is_admin(),
    }
}

/// Logs a mailbox in through the shared authenticator (its failure penalty applies: repeated
/// wrong passwords are slowed, then refused with 429) and sets the session cookie.
pub(super) async fn log_in(
    State(ctx): Ctx,
    client: Option<Extension<ClientInfo>>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let client = client.map_or(
        ClientInfo {
            ip: std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            tls: false,
        },
        |Extension(client)| client,
    );
    let outcome = ctx
        .api
        .authenticator
        .log_in(LoginAttempt {
            service: Service::Http,
            client: client.ip,
            login: &request.address,
            password: request.password.as_bytes(),
        })
        .await
        .map_err(|err| ApiError::unavailable(&err))?;
    let account = match outcome {
        AuthOutcome::Accepted(account) => account,
        AuthOutcome::Refused(refusal) if refusal.is_temporary() => {
            return Err(ApiError {
                retry_after: Some(60),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed logins; wait and try again",
                )
            });
        }
        AuthOutcome::Refused(_) => {
            return Err(ApiError::unauthorized("wrong address or password").on("password"));
        }
    };
    let address = account.address.to_string();
    let principal = ctx
        .directory
        .principal_for_login(&address)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the mailbox can no longer log in"))?;
    let id = ctx.api.sessions.start(&address);
    let view = SessionView {
        admin: principal.is_admin(),
        principal,
        via: "session",
    };
    let mut response = (StatusCode::OK, Json(view)).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth::session_cookie(&id, client.tls));
    Ok(response)
}

pub(super) async fn current_session(auth: Authenticated) -> Json<SessionView> {
    Json(session_view(&auth))
}

/// Ends the session of the cookie sent (whether or not it is still alive).
pub(super) async fn log_out(
    State(ctx): Ctx,
    client: Option<Extension<ClientInfo>>,
    headers: HeaderMap,
) -> Response {
    let tls = client.is_some_and(|Extension(client)| client.tls);
    if let Some(id) = auth::session_id(&headers) {
        ctx.api.sessions.end(id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth::cleared_cookie(tls));
    response
}

/// The caller's own mailbox; 404 for a token that stands for no mailbox.
pub(super) async fn me(State(ctx): Ctx, auth: Authenticated) -> Result<Json<Mailbox>, ApiError> {
    let own = own_address(&auth)?;
    Ok(Json(ctx.directory.get_mailbox(&own).await?))
}

fn own_address(auth: &Authenticated) -> Result<String, ApiError> {
    auth.principal.own_address.clone().ok_or_else(|| {
        ApiError::not_found("this token stands for no mailbox; use a user: token or log in")
    })
}

/// `PATCH /api/me`: what every user may change of their own mailbox.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnUpdate {
    #[serde(default, with = "super::nullable")]
    pub name: Option<Option<String>>,
    #[serde(default, with = "super::nullable")]
    pub alternative_email: Option<Option<String>>,
}

pub(super) async fn update_me(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(update): ApiJson<OwnUpdate>,
) -> Result<Json<Mailbox>, ApiError> {
    let own = own_address(&auth)?;
    let address = mailstead_directory::Directory::parse_address(&own)?;
    auth.require(
        auth.principal
            .may_change_mailbox(&address, MailboxField::Name),
    )?;
    let update = MailboxUpdate {
        name: update.name,
        alternative_email: super::checked_alternative_email(update.alternative_email)?,
        ..MailboxUpdate::default()
    };
    Ok(Json(
        ctx.directory
            .update_mailbox(&auth.actor, &own, update)
            .await?,
    ))
}

/// `PUT /api/me/password`: the current password again, and the new one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the caller's own password. With a session the current password is asked again
/// (through the authenticator, so guesses are penalised as logins are); other sessions of the
/// mailbox end.
pub(super) async fn change_password(
    State(ctx): Ctx,
    auth: Authenticated,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let own = own_address(&auth)?;
    let outcome = ctx
        .api
        .authenticator
        .log_in(LoginAttempt {
            service: Service::Http,
            client: auth.client.ip,
            login: &own,
            password: change.current_password.as_bytes(),
        })
        .await
        .map_err(|err| ApiError::unavailable(&err))?;
    match outcome {
        AuthOutcome::Accepted(_) => {}
        AuthOutcome::Refused(refusal) if refusal.is_temporary() => {
            return Err(ApiError {
                retry_after: Some(60),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed logins; wait and try again",
                )
            });
        }
        AuthOutcome::Refused(_) => {
            return Err(
                ApiError::new(StatusCode::FORBIDDEN, "the current password is not right")
                    .on("current_password"),
            );
        }
    }
    super::set_password(&ctx, &auth, &own, &change.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}
