//! The charts as pages of their own, for the networks of `[http] metrics_allow` (what
//! `/metrics` tells a Prometheus server, drawn): `GET /stats/traffic.svg?period=day|week`,
//! mail per hour from the event log, and `GET /stats/size.svg?mailbox=ADDRESS` or
//! `?domain=DOMAIN` (neither: the whole server), size over the last `days` (default 30) from
//! `size_measurements`. The web console draws the same with the same functions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailstead_directory::DirectoryError;
use mailstead_directory::sizes::Measurable;
use tracing::warn;

use crate::HttpContext;
use crate::charts::{size_chart, traffic_chart};
use crate::routes::{text, unavailable};

const SVG: &str = "image/svg+xml";

fn svg(body: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(SVG)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn bad_request(why: &str) -> Response {
    text(
        StatusCode::BAD_REQUEST,
        "text/plain; charset=utf-8",
        format!("{why}\n"),
    )
}

fn now() -> i64 {
    mailstead_events::unix_seconds(SystemTime::now())
}

/// Mail per hour over the last day (`period=day`, the default) or week.
pub(crate) async fn traffic(
    State(ctx): State<Arc<HttpContext>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (hours, title) = match query.get("period").map(String::as_str) {
        None | Some("day") => (24, "Mail per hour, last day"),
        Some("week") => (24 * 7, "Mail per hour, last week"),
        Some(_) => return bad_request("period is day or week"),
    };
    let until = now() + 1;
    let since = until - hours * 3600;
    let dir = ctx.events_dir.clone();
    let read = tokio::task::spawn_blocking(move || mailstead_events::hourly(&dir, since, until));
    match read.await {
        Ok(Ok(buckets)) => svg(traffic_chart(title, &buckets)),
        Ok(Err(err)) => {
            warn!(cause = %err, "cannot read the event log");
            unavailable()
        }
        Err(err) => {
            warn!(cause = %err, "cannot read the event log");
            unavailable()
        }
    }
}

/// Size over time of a mailbox, a domain or the server.
pub(crate) async fn size(
    State(ctx): State<Arc<HttpContext>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let days: i64 = match query.get("days").map(|days| days.parse::<i64>()) {
        None => 30,
        Some(Ok(days)) if (1..=3660).contains(&days) => days,
        Some(_) => return bad_request("days is a whole number from 1 to 3660"),
    };
    let directory = &ctx.directory;
    let found = match (query.get("mailbox"), query.get("domain")) {
        (Some(address), None) => directory
            .get_mailbox(address)
            .await
            .map(|mailbox| (Measurable::Mailbox(mailbox.id), mailbox.address.to_string())),
        (None, Some(domain)) => directory
            .get_domain(domain)
            .await
            .map(|domain| (Measurable::Domain(domain.id), domain.domain)),
        (None, None) => Ok((Measurable::Root, "all mailboxes".to_owned())),
        (Some(_), Some(_)) => return bad_request("give mailbox or domain, not both"),
    };
    let (measurable, label) = match found {
        Ok(found) => found,
        Err(DirectoryError::NotFound(_) | DirectoryError::Address(_)) => {
            return text(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "no such mailbox or domain here\n",
            );
        }
        Err(err) => {
            warn!(cause = %err, "stats: cannot look up a mailbox or domain");
            return unavailable();
        }
    };
    match directory
        .size_series(measurable, now() - days * 86_400)
        .await
    {
        Ok(samples) => svg(size_chart(
            &format!("Size of {label}, last {days} days"),
            &label,
            &samples,
        )),
        Err(err) => {
            warn!(cause = %err, "stats: cannot read the size history");
            unavailable()
        }
    }
}
