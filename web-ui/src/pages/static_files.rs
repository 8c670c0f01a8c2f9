//! `/static/{file}`: the embedded stylesheet and scripts ([`crate::assets`]), with an ETag so a
//! browser revalidates cheaply and never keeps a file from an older build.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::assets;
use crate::problem::ApiError;
use crate::state::AppState;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(serve))
}

async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (body, mime) = assets::get(&file).ok_or_else(|| ApiError::NotFound {
        entity: "static file",
        key: file.clone(),
    })?;
    let digest = Sha256::digest(body);
    let etag = format!(
        "\"{}\"",
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let etag_value =
        HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(format!("etag: {e}")))?;
    let cache = HeaderValue::from_static("no-cache");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response())
}
