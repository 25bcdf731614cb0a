//! The signed-in session: the bearer token (kept in localStorage) and who it says we are (`GET /v1/me`).
//!
//! [`SessionProvider`] holds it in a reducer and shares it through a context; pages read it with
//! [`use_session`] and get an API client bound to it with [`use_api`]. When any call answers 401 the
//! session turns `Expired`: the app shows "sign in again" over the current page, which stays mounted so a
//! labeler's unsent input survives the new sign-in.
//!
//! A page load on the OpenID provider's callback path finishes that sign-in first (`oidc::finish`) and
//! goes back to where the sign-in started; a failure shows the sign-in page with the reason.

use std::rc::Rc;

use anvil_types::{Me, Role};
use gloo_storage::{LocalStorage, Storage};
use yew::prelude::*;
use yew_router::history::{BrowserHistory, History};

use crate::api::{self, Api, ApiError, ErrorKind};
use crate::components::notice::ApiProblem;
use crate::oidc;

const TOKEN_KEY: &str = "anvil.token";

#[derive(Debug, Clone, PartialEq)]
pub enum SessionState {
    /// Checking a stored token.
    Loading,
    SignedOut,
    Active {
        token: Rc<str>,
        me: Rc<Me>,
    },
    /// The API answered 401; `me` is who was signed in.
    Expired {
        token: Rc<str>,
        me: Rc<Me>,
    },
    /// The stored token could not be checked: the server did not answer.
    Unreachable(ApiError),
}

pub enum SessionAction {
    Checking,
    Unreachable(ApiError),
    SignedIn {
        token: Rc<str>,
        me: Me,
    },
    SignOut,
    /// A sign-in at the OpenID provider failed: signed out, with the reason for the sign-in page.
    SignInFailed(String),
    Expire,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub state: SessionState,
    /// Why the last single sign-on did not work (shown on the sign-in page).
    pub problem: Option<Rc<str>>,
}

impl Reducible for Session {
    type Action = SessionAction;

    fn reduce(self: Rc<Self>, action: SessionAction) -> Rc<Self> {
        let mut problem = None;
        let state = match action {
            SessionAction::Checking => SessionState::Loading,
            SessionAction::Unreachable(e) => SessionState::Unreachable(e),
            SessionAction::SignedIn { token, me } => {
                let _ = LocalStorage::set(TOKEN_KEY, token.as_ref());
                SessionState::Active { token, me: Rc::new(me) }
            }
            SessionAction::SignOut => {
                LocalStorage::delete(TOKEN_KEY);
                SessionState::SignedOut
            }
            SessionAction::SignInFailed(why) => {
                LocalStorage::delete(TOKEN_KEY);
                problem = Some(Rc::from(why));
                SessionState::SignedOut
            }
            SessionAction::Expire => match &self.state {
                SessionState::Active { token, me } => {
                    SessionState::Expired { token: token.clone(), me: me.clone() }
                }
                _ => return self,
            },
        };
        Rc::new(Session { state, problem })
    }
}

impl Session {
    pub fn me(&self) -> Option<&Me> {
        match &self.state {
            SessionState::Active { me, .. } | SessionState::Expired { me, .. } => Some(me),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        self.me().map(|m| m.role)
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state, SessionState::Active { .. })
    }
}

pub type SessionHandle = UseReducerHandle<Session>;

/// Signs out; a session from the OpenID provider also ends there (its end-session page, when it has one,
/// sends the browser back to the app).
pub fn sign_out(session: &SessionHandle) {
    let end_session = oidc::end_session_url();
    session.dispatch(SessionAction::SignOut);
    if let Some(url) = end_session {
        oidc::go(&url);
    }
}

/// Finishes a sign-in at the OpenID provider on its callback path, then replaces the callback address with
/// the app path the sign-in started from (or `/`).
async fn finish_oidc(session: SessionHandle) {
    let Some(cfg) = api::runtime().oidc.clone() else {
        BrowserHistory::new().replace("/");
        session.dispatch(SessionAction::SignOut);
        return;
    };
    let outcome = match oidc::finish(&cfg).await {
        Ok(signed) => match check_token(&signed.access_token).await {
            Ok(me) => Ok((signed, me)),
            Err(e) => Err(format!(
                "You signed in at the identity provider, but Anvil did not accept its token: {}",
                e.message
            )),
        },
        Err(why) => Err(why),
    };
    match outcome {
        Ok((signed, me)) => {
            // only a path of this app (sessionStorage is ours, but a path is all history may take anyway)
            let back = &signed.return_to;
            let back = if back.starts_with('/') && !back.starts_with("//") { back.as_str() } else { "/" };
            BrowserHistory::new().replace(back);
            session.dispatch(SessionAction::SignedIn { token: Rc::from(signed.access_token), me });
        }
        Err(why) => {
            BrowserHistory::new().replace("/");
            session.dispatch(SessionAction::SignInFailed(why));
        }
    }
}

/// Checks a token with `GET /v1/me` without touching the current session.
pub async fn check_token(token: &str) -> Result<Me, ApiError> {
    let probe = Api::new(Rc::from(token), Callback::noop());
    api::me::me(&probe).await
}

#[derive(Properties, PartialEq)]
pub struct SessionProviderProps {
    pub children: Children,
}

#[function_component(SessionProvider)]
pub fn session_provider(props: &SessionProviderProps) -> Html {
    let session = use_reducer(|| Session { state: SessionState::Loading, problem: None });
    // Bumped by "retry" when the server could not be reached at start.
    let attempt = use_state(|| 0u32);
    {
        let session = session.clone();
        use_effect_with(*attempt, move |n| {
            let first = *n == 0;
            wasm_bindgen_futures::spawn_local(async move {
                if first {
                    api::load_runtime_config().await;
                }
                if oidc::is_callback() {
                    if oidc::pending() {
                        finish_oidc(session).await;
                        return;
                    }
                    // a reload of the callback address after the sign-in: the stored token decides
                    BrowserHistory::new().replace("/");
                }
                let stored: Option<String> = LocalStorage::get(TOKEN_KEY).ok();
                match stored {
                    Some(token) if !token.is_empty() => match check_token(&token).await {
                        Ok(me) => session.dispatch(SessionAction::SignedIn { token: Rc::from(token), me }),
                        // Only a refused token is forgotten; an unreachable server keeps it for a retry.
                        Err(e) if e.kind() == ErrorKind::Unauthorized => {
                            session.dispatch(SessionAction::SignOut)
                        }
                        Err(e) => session.dispatch(SessionAction::Unreachable(e)),
                    },
                    _ => session.dispatch(SessionAction::SignOut),
                }
            });
        });
    }
    if let SessionState::Unreachable(e) = &session.state {
        let retry = {
            let (session, attempt) = (session.clone(), attempt.clone());
            Callback::from(move |_| {
                session.dispatch(SessionAction::Checking);
                attempt.set(*attempt + 1);
            })
        };
        return html! {
            <main class="page narrow" id="main">
                <h1>{ "Anvil" }</h1>
                <ApiProblem error={e.clone()} on_retry={retry} />
            </main>
        };
    }
    html! {
        <ContextProvider<SessionHandle> context={session}>
            { props.children.clone() }
        </ContextProvider<SessionHandle>>
    }
}

#[hook]
pub fn use_session() -> SessionHandle {
    use_context::<SessionHandle>().expect("use_session inside SessionProvider")
}

/// An API client for the current token; every 401 it meets expires the session.
#[hook]
pub fn use_api() -> Option<Api> {
    let session = use_session();
    let expire = {
        let session = session.clone();
        use_callback((), move |_: (), _| session.dispatch(SessionAction::Expire))
    };
    match &session.state {
        SessionState::Active { token, .. } | SessionState::Expired { token, .. } => {
            Some(Api::new(token.clone(), expire))
        }
        _ => None,
    }
}
