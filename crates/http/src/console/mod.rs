//! The web console under `/console/`: server-rendered HTML pages that work without
//! JavaScript, for the same people and with the same rights as the JSON API.
//!
//! # One set of rules
//! The console is a client of the API inside the process: every read and every change is a
//! request to the API's own router ([`Console::api`]) carrying the user's session, so the
//! access policy, the validation of every field and the audit trail are the API's, never
//! restated here. The console adds only what a browser needs: pages, forms and their errors
//! shown next to the field with the form refilled, and the quota usage read from the Maildir.
//! The policy (`mailstead_directory::access::Principal`) is asked directly only to decide
//! which links and forms a page shows.
//!
//! # Sessions and CSRF
//! Logging in goes through `POST /api/session` (the shared authenticator and its failure
//! penalty; the cookie is `HttpOnly`, `SameSite=Strict`, `Secure` over TLS). Every form
//! carries a token derived from the session ([`csrf_token`]) that is checked on every POST
//! ([`CsrfForm`]), on top of the API's `Origin` rule, which every console POST passes too.
//!
//! # Layout
//! - `view`: the one page layout and the form pieces (maud).
//! - `pages`: the handlers, one group per page.
//! - `charts`: the size and traffic charts as images, for those who may see them.
//! - `style.css`: the stylesheet, served with a long cache under a versioned URL.

mod charts;
mod pages;
mod view;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tower::ServiceExt as _;

use crate::HttpContext;
use crate::api::auth::{self, Authenticated, ClientInfo, SESSION_COOKIE, Via};

/// The largest API answer the console reads (a full queue listing is the biggest).
const MAX_API_ANSWER_BYTES: usize = 16 * 1024 * 1024;

pub(crate) fn router() -> Router<Arc<HttpContext>> {
    use pages as p;
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(p::dashboard))
        .route(view::STYLE_PATH, get(p::style))
        .route("/console/login", get(p::login_page).post(p::log_in))
        .route("/console/logout", post(p::log_out))
        .route("/console/domains", get(p::domains).post(p::add_domain))
        .route(
            "/console/domains/{domain}",
            get(p::domain).post(p::update_domain),
        )
        .route("/console/mailboxes", get(p::mailboxes).post(p::add_mailbox))
        .route(
            "/console/mailboxes/{address}",
            get(p::mailbox).post(p::update_mailbox),
        )
        .route(
            "/console/mailboxes/{address}/password",
            post(p::set_mailbox_password),
        )
        .route(
            "/console/mailboxes/{address}/remove",
            post(p::remove_mailbox),
        )
        .route("/console/domains/{domain}/remove", post(p::remove_domain))
        .route("/console/aliases", get(p::aliases).post(p::add_alias))
        .route("/console/aliases/{address}/remove", post(p::remove_alias))
        .route("/console/account", get(p::account).post(p::update_account))
        .route("/console/account/password", post(p::change_own_password))
        .route("/console/charts/size.svg", get(charts::size))
        .route("/console/charts/traffic.svg", get(charts::traffic))
        .route("/console/audit", get(p::audit))
        .route("/console/queue", get(p::queue))
        .route("/console/queue/{id}/retry", post(p::retry_queued))
        .route("/console/queue/{id}/remove", post(p::remove_queued))
        .route("/console/{*rest}", axum::routing::any(p::no_such_page))
}

/// What the API refused, as the console shows it: next to `field` when it names one of the
/// form's fields, above the form otherwise.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
}

impl Problem {
    fn new(status: StatusCode, message: impl Into<String>) -> Problem {
        Problem {
            status,
            field: None,
            message: message.into(),
        }
    }

    /// Reads the API's error body (`{"error": {"field", "message"}}`).
    fn from_answer(status: StatusCode, body: &Value) -> Problem {
        let error = &body["error"];
        Problem {
            status,
            field: error["field"].as_str().map(str::to_owned),
            message: error["message"]
                .as_str()
                .unwrap_or("the server refused the request")
                .to_owned(),
        }
    }
}

/// The key the CSRF tokens are derived with: random per process, like the sessions it
/// protects (which end at restart too).
fn csrf_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

fn csrf_mac(session: &str) -> Hmac<Sha256> {
    // An HMAC key may have any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(csrf_key())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(session.as_bytes());
    mac
}

/// The CSRF token of a session: HMAC-SHA256 of its id under the process key, so no state is
/// kept and a token is worth nothing for any other session.
pub(crate) fn csrf_token(session: &str) -> String {
    URL_SAFE_NO_PAD.encode(csrf_mac(session).finalize().into_bytes())
}

/// Whether `token` is the session's (compared in constant time).
fn csrf_valid(session: &str, token: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|bytes| csrf_mac(session).verify_slice(&bytes).is_ok())
}

/// A logged-in console request: who, their session, and what an API call on their behalf
/// must carry.
pub(crate) struct Console {
    pub ctx: Arc<HttpContext>,
    pub auth: Authenticated,
    session: String,
    pub csrf: String,
    host: Option<HeaderValue>,
    origin: Option<HeaderValue>,
}

/// Sends the browser to the login page (a missing or ended session).
fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

impl FromRequestParts<Arc<HttpContext>> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<HttpContext>,
    ) -> Result<Self, Self::Rejection> {
        let Some(session) = auth::session_id(&parts.headers).map(str::to_owned) else {
            return Err(to_login());
        };
        // The console is for browsers: a bearer token is not a console login.
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(view::error_page(&Problem::new(
                StatusCode::BAD_REQUEST,
                "the console is used with a login, not a token",
            )));
        }
        let auth = match Authenticated::from_request_parts(parts, ctx).await {
            Ok(auth) if auth.via == Via::Session => auth,
            Ok(_) => return Err(to_login()),
            Err(err) if err.status == StatusCode::UNAUTHORIZED => return Err(to_login()),
            Err(err) => {
                return Err(view::error_page(&Problem {
                    status: err.status,
                    field: err.field,
                    message: err.message,
                }));
            }
        };
        Ok(Console {
            ctx: Arc::clone(ctx),
            auth,
            csrf: csrf_token(&session),
            session,
            host: parts.headers.get(header::HOST).cloned(),
            origin: parts.headers.get(header::ORIGIN).cloned(),
        })
    }
}

impl Console {
    /// Asks the API, as this user: `path` with its query, and a JSON body for changes. The
    /// answer's JSON (`Null` for `204`), or what the API refused.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Problem> {
        let mut headers = HeaderMap::new();
        if let Ok(cookie) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={}", self.session)) {
            headers.insert(header::COOKIE, cookie);
        }
        if let Some(host) = &self.host {
            headers.insert(header::HOST, host.clone());
        }
        // A change reaches here only as a console POST, whose Origin the API rule already
        // accepted; it goes on unchanged.
        if let Some(origin) = &self.origin {
            headers.insert(header::ORIGIN, origin.clone());
        }
        let (status, answer, _) =
            dispatch(&self.ctx, self.auth.client, method, path, headers, body).await?;
        if status.is_success() {
            Ok(answer)
        } else {
            Err(Problem::from_answer(status, &answer))
        }
    }
}

/// Sends one request through the API's router and reads its answer: status, JSON body
/// (`Null` when empty) and headers. tower's `oneshot` does the sending: tower is the service
/// layer axum is built on (already in the build), and a router is a tower service.
async fn dispatch(
    ctx: &Arc<HttpContext>,
    client: ClientInfo,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Option<Value>,
) -> Result<(StatusCode, Value, HeaderMap), Problem> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(request_headers) = builder.headers_mut() {
        request_headers.extend(headers);
    }
    let request_body = match body {
        Some(value) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    let mut request = builder
        .body(request_body)
        .map_err(|err| Problem::new(StatusCode::BAD_REQUEST, err.to_string()))?;
    request.extensions_mut().insert(client);
    // Built once: a router's routes are shared, so a clone per request is cheap.
    static API: OnceLock<Router<Arc<HttpContext>>> = OnceLock::new();
    let router = API
        .get_or_init(crate::api::router)
        .clone()
        .with_state(Arc::clone(ctx));
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_API_ANSWER_BYTES)
        .await
        .map_err(|err| Problem::new(StatusCode::BAD_GATEWAY, err.to_string()))?;
    let answer = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok((parts.status, answer, parts.headers))
}

/// A form's fields, after its CSRF token was checked against the session's: every console
/// POST takes one, so no change can skip the check.
pub(crate) struct CsrfForm(pub Fields);

/// A submitted form: each name's last value, as sent (a password keeps its spaces).
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields(pub BTreeMap<String, String>);

impl Fields {
    /// The field's value; empty when it was not sent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }

    /// The value trimmed, `None` when blank.
    pub fn text(&self, name: &str) -> Option<String> {
        let value = self.get(name).trim();
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// A checkbox: sent (any value) means checked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

impl FromRequest<Arc<HttpContext>> for CsrfForm {
    type Rejection = Response;

    async fn from_request(
        request: Request,
        ctx: &Arc<HttpContext>,
    ) -> Result<Self, Self::Rejection> {
        let session = auth::session_id(request.headers()).map(str::to_owned);
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(request, ctx)
            .await
            .map_err(|rejection| {
                view::error_page(&Problem::new(rejection.status(), rejection.body_text()))
            })?;
        let fields = Fields(pairs.into_iter().collect());
        let valid = session
            .as_deref()
            .is_some_and(|session| csrf_valid(session, fields.get("csrf")));
        if !valid {
            return Err(view::error_page(&Problem::new(
                StatusCode::FORBIDDEN,
                "this form did not come from your console session (missing or wrong CSRF \
                 token); reload the page and try again",
            )));
        }
        Ok(CsrfForm(fields))
    }
}

/// A path segment with everything but unreserved characters and `@` percent-encoded: the
/// few lines this takes are not worth a crate.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string from pairs, each value percent-encoded; empty values left out.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", segment(value)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let token = csrf_token("session-a");
        assert!(csrf_valid("session-a", &token));
        assert!(!csrf_valid("session-b", &token));
        assert!(!csrf_valid("session-a", ""));
        assert!(!csrf_valid("session-a", "not base64 !"));
    }

    #[test]
    fn segments_and_queries_are_encoded() {
        assert_eq!(segment("bob@example.com"), "bob@example.com");
        assert_eq!(segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(query(&[("q", "x y"), ("page", "")]), "?q=x%20y");
        assert_eq!(query(&[("page", "")]), "");
    }
}
