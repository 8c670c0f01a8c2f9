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

/// A numeric id in the path (`/api/v1/runs/{id}`): a positive decimal integer written plainly,
/// without sign, leading zero, fraction or exponent, of at most [`PathId::MAX_DIGITS`] digits
/// (so within `i64`). `1898.0` or `+1898` is refused, not read as 1898: the OpenAPI document
/// states this rule as [`PathId::pattern`], which the API's conformance test checks value by
/// value against this parser.
#[derive(Clone, Copy, Debug)]
pub struct PathId(pub i64);

impl PathId {
    /// Most digits of an id (every 18-digit number fits an `i64`).
    pub const MAX_DIGITS: usize = 18;

    /// The largest id: [`PathId::MAX_DIGITS`] nines.
    pub const MAX_ID: i64 = 999_999_999_999_999_999;

    /// The rule as an ECMA-262 regular expression for the document.
    pub fn pattern() -> String {
        format!("^[1-9][0-9]{{0,{}}}$", Self::MAX_DIGITS - 1)
    }

    /// Parses a path segment.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let plain = (1..=Self::MAX_DIGITS).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_digit())
            && !text.starts_with('0');
        match text.parse::<i64>() {
            Ok(id) if plain => Ok(Self(id)),
            _ => Err(ApiError::invalid(
                "id",
                format!(
                    "{:?} is not an id (a positive whole number of at most {} digits, written plainly)",
                    text.chars().take(40).collect::<String>(),
                    Self::MAX_DIGITS
                ),
            )),
        }
    }
}

impl FromRequestParts<AppState> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(text)) => Self::parse(&text),
            Err(rejection) => Err(path_rejection(&rejection)),
        }
    }
}

/// An optional whole number in a JSON body: an integer, or a number without fraction (`3.0`,
/// which JSON Schema's `integer` includes, so the document's `integer` is what the server reads);
/// `2.5`, a string or a value beyond `u32` is refused. For `#[serde(default, deserialize_with)]`.
pub fn optional_whole_u32<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|x| x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(x))
            .map(|x| x as u64)
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "{number} is not a whole number from 0 to {}",
                u32::MAX
            ))
        })
}

/// An id in a JSON body (`lot_id`): a positive whole number of at most [`PathId::MAX_DIGITS`]
/// digits, as in a path, written as an integer or as a number without fraction (`15.0`, which
/// JSON Schema's `integer` includes); `15.5`, `0`, `-3`, `1e30` or a string is refused. The
/// document states it as [`crate::api::input_schemas::body_id`]. For
/// `#[serde(deserialize_with)]`.
pub fn body_id<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|x| x.fract() == 0.0 && (1.0..=PathId::MAX_ID as f64).contains(x))
            .map(|x| x as i64)
    });
    whole
        .filter(|id| (1..=PathId::MAX_ID).contains(id))
        .ok_or_else(|| {
            D::Error::custom(format!(
                "{number} is not an id (a positive whole number of at most {} digits)",
                PathId::MAX_DIGITS
            ))
        })
}

/// An optional whole number in a query string (`limit=5`, or `limit=5.0`, which a client that
/// holds the document's `integer` as a floating-point number writes); a fraction, an exponent
/// beyond `u32`, text or an empty value is refused. For `#[serde(default, deserialize_with)]`.
pub fn optional_whole_u32_text<'de, D>(deserializer: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    use serde::de::Error;
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = text.parse::<u32>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|x| x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(x))
            .map(|x| x as u32)
    });
    whole.map(Some).ok_or_else(|| {
        D::Error::custom(format!(
            "{:?} is not a whole number from 0 to {}",
            text.chars().take(40).collect::<String>(),
            u32::MAX
        ))
    })
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
