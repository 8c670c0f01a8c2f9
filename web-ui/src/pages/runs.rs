//! The runs pages.

use axum::Router;

use crate::state::AppState;

/// The routes of these pages.
pub fn router() -> Router<AppState> {
    Router::new()
}
