//! The console's charts: the size-over-time and traffic pictures of `/stats/*.svg`, drawn by
//! the same handlers, for a logged-in user who may read what they show. Pages embed them as
//! images (the stylesheet's policy allows `img-src 'self'`; an SVG shown as an image runs
//! nothing), so a page renders at once and each chart is read only when shown.
//!
//! Who sees what: a mailbox's size whoever may read the mailbox, a domain's whoever may read
//! the domain; the whole server's size and its mail traffic are super admins' only.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mailstead_directory::address::Address;

use super::{Console, Problem, view};

fn forbidden() -> Response {
    view::error_page(&Problem::new(
        StatusCode::FORBIDDEN,
        "you may not see this chart",
    ))
}

/// `?mailbox=ADDRESS`, `?domain=DOMAIN` or neither (the whole server), with `days`.
pub(super) async fn size(
    console: Console,
    Query(mut params): Query<HashMap<String, String>>,
) -> Response {
    let principal = &console.auth.principal;
    let allowed = match (params.get("mailbox"), params.get("domain")) {
        (Some(address), None) => match Address::parse(address) {
            Ok(address) if principal.may_read_mailbox(&address) => {
                // The normalised form is what the policy allowed; look that one up.
                params.insert("mailbox".to_owned(), address.to_string());
                true
            }
            _ => false,
        },
        (None, Some(domain)) => principal.may_read_domain(domain),
        (None, None) => principal.may_manage_server(),
        // Both: the stats handler answers 400.
        (Some(_), Some(_)) => true,
    };
    if !allowed {
        return forbidden();
    }
    crate::stats::size(State(console.ctx), Query(params)).await
}

/// `?period=day|week`: the server's mail per hour.
pub(super) async fn traffic(
    console: Console,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !console.auth.principal.may_manage_server() {
        return forbidden();
    }
    crate::stats::traffic(State(console.ctx), Query(params)).await
}
