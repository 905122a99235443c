//! Who may read `/metrics`, `/readyz` and the `/stats/*.svg` charts (`[http] metrics_allow`):
//! they tell the world how busy the server is and which parts are down, so by default only
//! loopback asks; anyone else gets `403`. The client's address is the accepted connection's
//! (`ClientInfo`, which the server puts on every request), never a header a client can write.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::HttpContext;
use crate::api::ClientInfo;
use crate::routes::text;

/// Passes a request from an allowed network on; answers any other `403`. A request without a
/// known address (none reaches the router that way) is refused.
pub(crate) async fn allowed_only(
    State(ctx): State<Arc<HttpContext>>,
    request: Request,
    next: Next,
) -> Response {
    let allowed = request
        .extensions()
        .get::<ClientInfo>()
        .is_some_and(|client| ctx.metrics_allow.iter().any(|net| net.contains(client.ip)));
    if !allowed {
        return text(
            StatusCode::FORBIDDEN,
            "text/plain; charset=utf-8",
            "not allowed from this address (see [http] metrics_allow)\n",
        );
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use mailstead_auth::Network;

    #[test]
    fn the_default_is_loopback() {
        // `[http] metrics_allow`'s default.
        let allow: Vec<Network> = ["127.0.0.0/8", "::1"]
            .iter()
            .map(|network| network.parse().unwrap())
            .collect();
        let allowed = |ip: &str| allow.iter().any(|net| net.contains(ip.parse().unwrap()));
        assert!(allowed("127.0.0.1"));
        assert!(allowed("127.0.0.2"));
        assert!(allowed("::1"));
        assert!(allowed("::ffff:127.0.0.1"));
        assert!(!allowed("192.0.2.1"));
        assert!(!allowed("2001:db8::1"));
    }
}
