//! The signed-in session: the bearer token (kept in localStorage) and who it says we are (`GET /v1/me`).
//!
//! [`SessionProvider`] holds it in a reducer and shares it through a context; pages read it with
//! [`use_session`] and get an API client bound to it with [`use_api`]. When any call answers 401 the
//! session turns `Expired`: the app shows "sign in again" over the current page, which stays mounted so a
//! labeler's unsent input survives the new sign-in.

use std::rc::Rc;

use anvil_types::{Me, Role};
use gloo_storage::{LocalStorage, Storage};
use yew::prelude::*;

use crate::api::{self, Api, ApiError, ErrorKind};
use crate::components::notice::ApiProblem;

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
    SignedIn { token: Rc<str>, me: Me },
    SignOut,
    Expire,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub state: SessionState,
}

impl Reducible for Session {
    type Action = SessionAction;

    fn reduce(self: Rc<Self>, action: SessionAction) -> Rc<Self> {
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
            SessionAction::Expire => match &self.state {
                SessionState::Active { token, me } => {
                    SessionState::Expired { token: token.clone(), me: me.clone() }
                }
                _ => return self,
            },
        };
        Rc::new(Session { state })
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
    let session = use_reducer(|| Session { state: SessionState::Loading });
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
