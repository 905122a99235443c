//! The API's one error shape, `{"error": {"field": …, "message": …}}`, and the one map from
//! the directory's error kinds to HTTP statuses.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailstead_directory::DirectoryError;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

/// A refused or failed request: the status, the field at fault (when one is), and what to do.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Names the field at fault.
    pub fn on(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message).on(field)
    }

    pub fn unprocessable(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).on(field)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// Authenticated, but this principal may not do that.
    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "your role does not allow this; ask a super admin",
        )
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// The server cannot answer now (database down); the cause goes to the log only.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> ApiError {
        warn!(cause = %cause, "API request failed");
        ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the directory cannot be reached; try again later",
            )
        }
    }
}

impl From<DirectoryError> for ApiError {
    fn from(err: DirectoryError) -> ApiError {
        match err {
            DirectoryError::Address(problem) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, problem.to_string())
            }
            DirectoryError::Invalid(message) | DirectoryError::LimitExceeded(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
            }
            DirectoryError::NotFound(message) => ApiError::new(StatusCode::NOT_FOUND, message),
            DirectoryError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message),
            other => ApiError::unavailable(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "field": self.field, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mailstead\""),
            );
        }
        response
    }
}

/// A JSON request body whose errors are API errors naming the field: a wrong type, a missing
/// or unknown field (bodies are `deny_unknown_fields`), malformed JSON, a body over the limit
/// (`413`) or not declared as JSON (`415`).
///
/// serde_path_to_error (by serde's author, MIT/Apache, already under axum) gives the path of
/// the field that failed, which serde_json's own error does not.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|media| {
                let media = media.trim();
                media.eq_ignore_ascii_case("application/json")
                    || (media.starts_with("application/") && media.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as Content-Type: application/json",
            )
            .on("Content-Type"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), rejection.body_text()))?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let message = err.into_inner().to_string();
            // The path of an unknown field may stop at its object; the message names it.
            let unknown = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| name.to_owned());
            let field = match (unknown, path.as_str()) {
                (Some(name), ".") => name,
                (None, ".") => "body".to_owned(),
                _ => path,
            };
            ApiError::bad_request(&field, message)
        })?;
        deserializer
            .end()
            .map_err(|err| ApiError::bad_request("body", err.to_string()))?;
        Ok(ApiJson(value))
    }
}
