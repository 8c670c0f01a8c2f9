//! The account page (`GET /account`) and its password form (`POST /account/password`): any
//! signed-in person changes their own password through `Operations::change_own_password`
//! (current password re-entered and throttled, the new one twice). A success ends every session
//! of the account, this one included, and lands on the sign-in page saying so; a refusal shows
//! the page again with the problem in words (no password is ever sent back). After a lab admin's
//! password reset this page is the only one that opens (`PageRejection::ChangePassword`) and
//! says why; the temporary password is the current one to re-enter.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use serde::Deserialize;

use operations::OperationError;
use operations::account::PasswordChange;

use super::{PageError, PageForm, PageResult, PageUser};
use crate::state::AppState;
use crate::views::{AccountPage, paths};

/// The routes of this page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ACCOUNT, get(show))
        .route(paths::ACCOUNT_PASSWORD, post(change_password))
}

/// `GET /account`.
async fn show(State(state): State<AppState>, user: PageUser) -> PageResult {
    let mut layout = user.layout(&state, "Your account", paths::ACCOUNT);
    // A forced change: nothing else is reachable until it is done, so no navigation.
    layout.navigation_hidden = user.user.password_change_required;
    Ok(AccountPage {
        layout,
        error: None,
        must_change: user.user.password_change_required,
    }
    .into_response())
}

/// The password form's fields.
#[derive(Default, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_again: String,
}

/// `POST /account/password`.
async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    form: PageForm<PasswordForm>,
) -> PageResult {
    let PageForm { user, form } = form;
    let change = PasswordChange {
        current: form.current_password,
        new: form.new_password,
        repeated: form.new_password_again,
    };
    let mut layout = user.layout(&state, "Your account", paths::ACCOUNT);
    layout.navigation_hidden = user.user.password_change_required;
    match state
        .ops
        .change_own_password(&user.requester(), client.ip(), &change)
        .await
    {
        Ok(()) => Ok(
            Redirect::to(&format!("{}?reason=password-changed", paths::SIGN_IN)).into_response(),
        ),
        Err(OperationError::Invalid { field, reason }) => {
            let what = match field {
                "current_password" => "Current password",
                "new_password_again" => "New password again",
                _ => "New password",
            };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                AccountPage {
                    layout,
                    error: Some(format!("{what}: {reason}.")),
                    must_change: user.user.password_change_required,
                },
            )
                .into_response())
        }
        Err(other) => Err(PageError::from(other).within(layout)),
    }
}
