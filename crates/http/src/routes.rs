//! The router: what each path answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailstead_directory::{Directory, DirectoryError};
use serde_json::json;
use tower_http::timeout::TimeoutLayer;
use tracing::warn;

use crate::{HttpContext, MAX_BODY_BYTES, api, autoconfig, console};

/// How long `/readyz` waits for the database before calling it not ready.
const READINESS_QUERY_TIMEOUT: Duration = Duration::from_secs(3);

type Ctx = State<Arc<HttpContext>>;

pub(crate) fn router(ctx: Arc<HttpContext>) -> Router {
    let timeout = ctx.limits.request_timeout;
    // What only `[http] metrics_allow` may read.
    let monitoring = Router::new()
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/stats/traffic.svg", get(crate::stats::traffic))
        .route("/stats/size.svg", get(crate::stats::size))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&ctx),
            crate::monitoring_access::allowed_only,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(monitoring)
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird),
        )
        // Outlook asks with either spelling.
        .route("/autodiscover/autodiscover.xml", post(outlook))
        .route("/Autodiscover/Autodiscover.xml", post(outlook))
        .route("/.well-known/mta-sts.txt", get(mta_sts))
        .route("/mobileconfig", get(crate::mobileconfig::download))
        .merge(api::router())
        .merge(console::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(ctx)
}

pub(crate) fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<String>,
) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

pub(crate) fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "no such domain here\n",
    )
}

pub(crate) fn unavailable() -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        "the directory cannot be reached; try again later\n",
    )
}

/// The process answers.
async fn healthz() -> Response {
    text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
}

/// The database answers a query and every listener is serving; otherwise 503 and a JSON body
/// naming what is not ready.
async fn readyz(State(ctx): Ctx) -> Response {
    let mut not_ready = Vec::new();
    // Within the request's own timeout, so a hanging database gets 503, not 408.
    let wait = READINESS_QUERY_TIMEOUT.min(ctx.limits.request_timeout / 2);
    match tokio::time::timeout(wait, ctx.directory.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            warn!(cause = %err, "not ready: the directory's database does not answer");
            not_ready.push("directory".to_owned());
        }
        Err(_) => {
            warn!("not ready: the directory's database did not answer within {wait:?}");
            not_ready.push("directory".to_owned());
        }
    }
    for listener in ctx.readiness.not_serving() {
        not_ready.push(format!("listener {listener}"));
    }
    let (status, body) = if not_ready.is_empty() {
        (StatusCode::OK, json!({ "ready": true, "not_ready": [] }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "ready": false, "not_ready": not_ready }),
        )
    };
    text(status, "application/json", format!("{body}\n"))
}

async fn metrics() -> Response {
    text(
        StatusCode::OK,
        mailstead_metrics::CONTENT_TYPE,
        mailstead_metrics::render(),
    )
}

/// Whether `domain` is hosted here and active: its name as the directory spells it, `None`
/// for any other domain, `Err` when the directory cannot say.
async fn hosted_domain(directory: &Directory, domain: &str) -> Result<Option<String>, Response> {
    match directory.get_domain(domain).await {
        Ok(found) if found.active => Ok(Some(found.domain)),
        Ok(_) | Err(DirectoryError::NotFound(_) | DirectoryError::Address(_)) => Ok(None),
        Err(err) => {
            warn!(cause = %err, "autoconfiguration: cannot look up a domain");
            Err(unavailable())
        }
    }
}

/// The domain of an address as a client typed it; `None` without one.
fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|d| !d.is_empty())
}

/// The host a request was sent to, without the port.
fn request_host(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    Some(host.trim_end_matches('.'))
}

/// Thunderbird's autoconfig (`?emailaddress=` gives the domain; without it, the host the
/// request went to, `autoconfig.<domain>` or the domain itself).
async fn thunderbird(
    State(ctx): Ctx,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let domain = match query.get("emailaddress") {
        Some(address) => domain_of(address),
        None => request_host(&headers).map(|host| host.strip_prefix("autoconfig.").unwrap_or(host)),
    };
    let Some(domain) = domain else {
        return not_found();
    };
    match hosted_domain(&ctx.directory, domain).await {
        Ok(Some(domain)) => text(
            StatusCode::OK,
            "application/xml; charset=utf-8",
            autoconfig::thunderbird(&domain, &ctx.hostname, &ctx.services),
        ),
        Ok(None) => not_found(),
        Err(response) => response,
    }
}

/// Outlook's POX autodiscover: the request names the address.
async fn outlook(State(ctx): Ctx, body: String) -> Response {
    let Some(address) = autoconfig::requested_address(&body) else {
        return text(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "expected an Autodiscover request with an EMailAddress\n",
        );
    };
    let Ok(address) = Directory::parse_address(&address) else {
        return not_found();
    };
    let address = address.to_string();
    let Some(domain) = domain_of(&address) else {
        return not_found();
    };
    match hosted_domain(&ctx.directory, domain).await {
        Ok(Some(_)) => text(
            StatusCode::OK,
            "application/xml; charset=utf-8",
            autoconfig::outlook(&address, &ctx.hostname, &ctx.services),
        ),
        Ok(None) => not_found(),
        Err(response) => response,
    }
}

/// RFC 8461's policy file, fetched from `mta-sts.<domain>`.
async fn mta_sts(State(ctx): Ctx, headers: HeaderMap) -> Response {
    let Some(domain) = request_host(&headers).and_then(|host| host.strip_prefix("mta-sts.")) else {
        return not_found();
    };
    match hosted_domain(&ctx.directory, domain).await {
        Ok(Some(_)) => text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            ctx.mta_sts.policy(&ctx.hostname),
        ),
        Ok(None) => not_found(),
        Err(response) => response,
    }
}
