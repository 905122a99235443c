//! The OpenAPI 3.1 document of the API, served at `/api/openapi.json`.
//!
//! Written by hand (`openapi.json` beside this file) rather than generated: a generator
//! (utoipa) would need its derive on every directory type and an annotation on every
//! handler, tying the directory crate to a web concern. A test holds the document and
//! [`super::operations`] (the table the router is built from) to each other, and schemathesis
//! checks the running server against it.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The document as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub(super) async fn document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_names_exactly_the_routed_operations() {
        let document: serde_json::Value =
            serde_json::from_str(DOCUMENT).expect("the document is JSON");
        let mut documented = BTreeSet::new();
        let paths = document["paths"].as_object().expect("paths");
        for (path, item) in paths {
            for method in item.as_object().expect("a path item").keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = super::super::operations()
            .into_iter()
            .map(|(method, path)| (method.to_owned(), path.to_owned()))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routed, not documented: {undocumented:?}"
        );
        assert!(unrouted.is_empty(), "documented, not routed: {unrouted:?}");
    }
}
