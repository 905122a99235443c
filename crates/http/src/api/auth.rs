//! Who sent a request: a session cookie (after `POST /api/session` with a mailbox's address
//! and password) or `Authorization: Bearer <token>`; and the CSRF rule for cookies.
//!
//! Sessions live in memory only ([`Sessions`]): bounded, expiring after `SESSION_IDLE` without
//! use and `SESSION_LIFETIME` in all, gone at restart (users log in again). The cookie is
//! `HttpOnly`, `SameSite=Strict`, and `Secure` when served over TLS. A session names a mailbox
//! only: its roles are read again on every request, so a revoked right or a deactivated
//! mailbox counts at once.
//!
//! CSRF: a cookie-authenticated request that changes something (any method but GET, HEAD,
//! OPTIONS) must carry an `Origin` equal to the server's own origin ([`same_origin`]).
//! Browsers send `Origin` on every such request and a page cannot forge it; token requests
//! carry no ambient credential and need no check.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailstead_directory::access::{Actor, Principal};
use mailstead_directory::manage::MAX_TOKEN_LEN;

use crate::HttpContext;
use crate::api::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mailstead_session";
/// A session unused this long is gone.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A session is gone this long after login, used or not.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The most sessions kept; a new login beyond it ends the longest-idle one.
pub const MAX_SESSIONS: usize = 10_000;

/// The connection a request came on, put in each request's extensions by the listener.
#[derive(Clone, Copy, Debug)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// Served over TLS.
    pub tls: bool,
}

impl ClientInfo {
    /// When the listener put none (a router called directly in a test): loopback, plain.
    fn of(parts: &Parts) -> ClientInfo {
        parts
            .extensions
            .get::<ClientInfo>()
            .copied()
            .unwrap_or(ClientInfo {
                ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                tls: false,
            })
    }
}

/// How a request authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Session,
    Token,
}

struct Session {
    address: String,
    created: Instant,
    last_seen: Instant,
}

/// The logged-in sessions of this process.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `address` and returns its id (256 random bits, base64url).
    pub fn start(&self, address: &str) -> String {
        let id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, session| alive(session, now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.last_seen)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                address: address.to_owned(),
                created: now,
                last_seen: now,
            },
        );
        id
    }

    /// The address of a live session, marking it used.
    pub fn address(&self, id: &str) -> Option<String> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if !alive(session, now) {
            sessions.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.address.clone())
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Ends every session of `address` (its password changed, or it was removed).
    pub fn end_all_of(&self, address: &str) {
        self.lock().retain(|_, session| session.address != address);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

fn alive(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < SESSION_IDLE
        && now.duration_since(session.created) < SESSION_LIFETIME
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(id: &str, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that ends it.
pub fn cleared_cookie(tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session id the request's cookies carry.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// The CSRF rule: `Origin` names this server as the request reached it (scheme from the
/// listener, host and port from `Host`).
pub fn same_origin(headers: &HeaderMap, tls: bool) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let scheme = if tls { "https" } else { "http" };
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// An authenticated request: who, as the policy sees them, and the actor its changes are
/// audited under (`source` is `http <client address> session|token`).
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub principal: Principal,
    pub actor: Actor,
    pub via: Via,
    pub client: ClientInfo,
}

impl Authenticated {
    /// `Ok` when `allowed`, else 403.
    pub fn require(&self, allowed: bool) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<Result<&str, ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let token = value
        .to_str()
        .ok()
        .and_then(|text| {
            let (scheme, token) = text.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty() && token.len() <= MAX_TOKEN_LEN);
    Some(token.ok_or_else(|| {
        ApiError::unauthorized("expected Authorization: Bearer <token>").on("Authorization")
    }))
}

impl FromRequestParts<Arc<HttpContext>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<HttpContext>,
    ) -> Result<Self, Self::Rejection> {
        let client = ClientInfo::of(parts);
        if let Some(token) = bearer(&parts.headers) {
            let principal = ctx
                .directory
                .principal_for_token(token?)
                .await?
                .ok_or_else(|| {
                    ApiError::unauthorized("unknown, revoked or expired token").on("Authorization")
                })?;
            let actor = Actor::new(principal.actor_name(), format!("http {} token", client.ip));
            return Ok(Authenticated {
                principal,
                actor,
                via: Via::Token,
                client,
            });
        }
        let Some(id) = session_id(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "log in with POST /api/session or send Authorization: Bearer <token>",
            ));
        };
        let Some(address) = ctx.api.sessions.address(id) else {
            return Err(ApiError::unauthorized(
                "the session has ended; log in again",
            ));
        };
        if changes_state(&parts.method) && !same_origin(&parts.headers, client.tls) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "a change made with a session cookie must come from this server's own pages (Origin)",
            )
            .on("Origin"));
        }
        let Some(principal) = ctx.directory.principal_for_login(&address).await? else {
            ctx.api.sessions.end(id);
            return Err(ApiError::unauthorized("the mailbox can no longer log in"));
        };
        let actor = Actor::new(
            principal.actor_name(),
            format!("http {} session", client.ip),
        );
        Ok(Authenticated {
            principal,
            actor,
            via: Via::Session,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::default();
        let id = sessions.start("alice@example.com");
        assert_eq!(sessions.address(&id).as_deref(), Some("alice@example.com"));
        assert_eq!(sessions.address("forged"), None);
        sessions.end_all_of("alice@example.com");
        assert_eq!(sessions.address(&id), None);
        assert!(sessions.is_empty());
    }

    #[test]
    fn the_cookie_is_found_among_others_and_origin_must_match() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mailstead_session=abc; b=2"),
        );
        assert_eq!(session_id(&headers), Some("abc"));
        headers.insert(header::HOST, HeaderValue::from_static("mail.example:8080"));
        assert!(!same_origin(&headers, false));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://mail.example:8080"),
        );
        assert!(same_origin(&headers, false));
        assert!(!same_origin(&headers, true));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers, false));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_tls() {
        let cookie = session_cookie("abc", true);
        let text = cookie.to_str().expect("ascii");
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        assert!(text.ends_with("; Secure"));
        assert!(
            !session_cookie("abc", false)
                .to_str()
                .expect("ascii")
                .contains("Secure")
        );
    }
}
