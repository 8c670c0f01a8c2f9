//! Request extractors whose rejections are problem documents: a JSON body, a numeric path id, a
//! user name in the path and a query string. axum's own extractors answer plain text; these wrap them so that every
//! client error names what was wrong in `application/problem+json`.

use appliance::store::users::Username;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::state::AppState;

/// A JSON request body (`Content-Type: application/json`), deserialised into `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection, state.http.max_body_bytes)),
        }
    }
}

fn json_rejection(rejection: JsonRejection, limit_bytes: usize) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(error) => {
            // serde's message names the field ("missing field `mrn`", "unknown field ...",
            // "invalid type: string \"x\", expected f64 at line 1 column 12"); axum prefixes it.
            let text = error.body_text();
            let reason = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text)
                .to_owned();
            let field = reason
                .split('`')
                .nth(1)
                .filter(|_| reason.contains('`'))
                .map(str::to_owned)
                .or_else(|| {
                    reason
                        .split_once(':')
                        .map(|(path, _)| path.trim().to_owned())
                        .filter(|path| !path.contains(' '))
                })
                .unwrap_or_else(|| "body".to_owned());
            ApiError::invalid(field, reason)
        }
        JsonRejection::JsonSyntaxError(error) => ApiError::MalformedBody(error.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::BytesRejection(error) => {
            if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge { limit_bytes }
            } else {
                ApiError::MalformedBody(error.body_text())
            }
        }
        other => ApiError::MalformedBody(other.body_text()),
    }
}

/// A numeric id in the path (`/api/v1/runs/{id}`).
#[derive(Clone, Copy, Debug)]
pub struct PathId(pub i64);

impl FromRequestParts<AppState> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Path::<i64>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) if id > 0 => Ok(Self(id)),
            Ok(axum::extract::Path(id)) => Err(ApiError::invalid(
                "id",
                format!("{id} is not a positive id"),
            )),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

fn path_rejection(rejection: &PathRejection) -> ApiError {
    ApiError::invalid("id", format!("the path id {}", rejection.body_text()))
}

/// A query string deserialised into `T` (unknown parameters refused where `T` says so).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let reason = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text)
        .to_owned();
    let field = reason
        .split('`')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| "query".to_owned());
    ApiError::invalid(field, reason)
}

/// A user name in the path (`/api/v1/users/{username}/...`).
#[derive(Clone, Debug)]
pub struct PathUsername(pub Username);

impl FromRequestParts<AppState> for PathUsername {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(text)) => Ok(Self(Username::parse(&text)?)),
            Err(rejection) => Err(ApiError::invalid(
                "username",
                format!("the path's user name {}", rejection.body_text()),
            )),
        }
    }
}
