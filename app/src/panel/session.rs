//! The officer's session: who is signed in (their account and role), the API token kept in
//! this tab (none when Cloudflare Access signed them in), signing out when the edge refuses
//! the credentials, and the one way sections fetch as the officer.

use std::future::Future;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;
use valle_shared::lending::officers::{Me, Permission};
use valle_shared::Lang;

use super::dashboard::{POLL_MS, TOKEN_KEY};
use crate::chrome::ui;
use crate::client::{officer_get, ClientError};

/// A fetch's state as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Load<T> {
    Loading,
    Ready(T),
    Failed(ClientError),
}

impl<T> From<Result<T, ClientError>> for Load<T> {
    fn from(result: Result<T, ClientError>) -> Load<T> {
        match result {
            Ok(found) => Load::Ready(found),
            Err(error) => Load::Failed(error),
        }
    }
}

fn session_storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

pub(super) fn stored_token() -> Option<String> {
    session_storage()
        .and_then(|storage| storage.get_item(TOKEN_KEY).ok().flatten())
        .filter(|token| !token.is_empty())
}

pub(super) fn remember_token(token: Option<&str>) {
    if let Some(storage) = session_storage() {
        let _ = match token {
            Some(token) => storage.set_item(TOKEN_KEY, token),
            None => storage.remove_item(TOKEN_KEY),
        };
    }
}

/// Polling stops while the tab is hidden: nobody is looking, and the edge is spared.
fn tab_visible() -> bool {
    document().visibility_state() == web_sys::VisibilityState::Visible
}

/// Who is signed in, and how to sign out (with a reason to show, if any).
#[derive(Clone, Copy)]
pub(super) struct Session {
    /// The API token typed in this tab; empty when Access signed the officer in.
    pub token: RwSignal<Option<String>>,
    /// The signed-in account, as `GET /api/v1/me` answered.
    pub me: RwSignal<Option<Me>>,
    /// Why the officer was signed out, shown on the sign-in form.
    pub notice: RwSignal<Option<(&'static str, &'static str)>>,
}

impl Session {
    fn token(&self) -> String {
        self.token.get_untracked().unwrap_or_default()
    }

    /// Whether the signed-in account's role allows `permission` (reactive).
    pub(super) fn may(&self, permission: Permission) -> bool {
        self.me.with(|me| {
            me.as_ref()
                .is_some_and(|me| me.permissions.contains(&permission))
        })
    }

    pub(super) fn sign_out(&self, notice: Option<(&'static str, &'static str)>) {
        remember_token(None);
        self.notice.set(notice);
        self.token.set(None);
        self.me.set(None);
    }

    /// Every failed fetch goes through here: a refused token ends the session.
    fn check<T>(&self, result: &Result<T, ClientError>) {
        if result.as_ref().is_err_and(ClientError::is_unauthorized) {
            self.sign_out(Some((
                "Sus credenciales ya no son válidas. Vuelva a entrar.",
                "Your credentials are no longer valid. Please sign in again.",
            )));
        }
    }

    /// Runs `request` with the officer's token in the background and hands its result to
    /// `then`; a refused token ends the session first. Every section fetches through here.
    pub(super) fn fetch<T, F>(
        self,
        request: impl FnOnce(String) -> F + 'static,
        then: impl FnOnce(Result<T, ClientError>) + 'static,
    ) where
        T: 'static,
        F: Future<Output = Result<T, ClientError>> + 'static,
    {
        let token = self.token();
        spawn_local(async move {
            let result = request(token).await;
            self.check(&result);
            then(result);
        });
    }
}

/// Numbers the requests of one view (a list, a report) as its filters change, so that an
/// answer to a request a newer one has replaced is dropped instead of shown over it.
#[derive(Clone, Copy)]
struct Latest(StoredValue<u64>);

impl Latest {
    fn new() -> Latest {
        Latest(StoredValue::new(0))
    }

    /// A new request: from now on only its answer is current.
    fn begin(self) -> u64 {
        self.0.update_value(|number| *number += 1);
        self.0.get_value()
    }

    fn is_current(self, number: u64) -> bool {
        self.0.get_value() == number
    }
}

impl Session {
    /// Keeps `into` loaded with the officer `GET` of `path`: it fetches again whenever a
    /// signal `path` reads changes, and drops an answer a newer request has overtaken.
    pub(super) fn follow<T>(self, into: RwSignal<Load<T>>, path: impl Fn() -> String + 'static)
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let latest = Latest::new();
        Effect::new(move |_| {
            let path = path();
            into.set(Load::Loading);
            let number = latest.begin();
            self.fetch(
                |token| async move { officer_get::<T>(&path, &token).await },
                move |result| {
                    if latest.is_current(number) {
                        into.try_set(result.into());
                    }
                },
            );
        });
    }
}

/// The signed-in officer's session, as [`super::Panel`] provides it.
pub(super) fn use_session() -> Session {
    expect_context::<Session>()
}

/// Calls `tick` every [`POLL_MS`] while the tab is visible, until the component goes.
pub(super) fn poll(tick: impl Fn() + 'static) {
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if tab_visible() {
                tick();
            }
        },
        Duration::from_millis(POLL_MS),
    ) {
        on_cleanup(move || handle.clear());
    }
}

/// Loading and error lines shared by every section.
pub(super) fn status_line<T>(load: &Load<T>, lang: Lang) -> impl IntoView {
    match load {
        Load::Loading => Some(
            view! { <p class="muted" data-testid="loading" role="status">{ui(lang, "Cargando…", "Loading…")}</p> }
                .into_any(),
        ),
        Load::Failed(error) => Some(
            view! {
                <p class="answer error" role="alert" data-testid="load-error" data-code=error.code().as_str()>
                    {ui(lang, "No se pudieron cargar los datos: ", "Could not load the data: ")}
                    {error.code().as_str()}
                </p>
            }
            .into_any(),
        ),
        Load::Ready(_) => None,
    }
}
