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

use crate::api::{self, Api, ApiError};

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
}

pub enum SessionAction {
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
    {
        let session = session.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                api::load_runtime_config().await;
                let stored: Option<String> = LocalStorage::get(TOKEN_KEY).ok();
                match stored {
                    Some(token) if !token.is_empty() => match check_token(&token).await {
                        Ok(me) => session.dispatch(SessionAction::SignedIn { token: Rc::from(token), me }),
                        // A stored token that no longer works: start from the sign-in page.
                        Err(_) => session.dispatch(SessionAction::SignOut),
                    },
                    _ => session.dispatch(SessionAction::SignOut),
                }
            });
        });
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
