//! Every way to sign in, for the sign-in page and the "session expired" dialog: single sign-on at the
//! OpenID provider (when `/config.json` names one), a pasted token, and one click as one of the demo's
//! people (only `anvil serve --demo` on a loopback address offers them).

use std::rc::Rc;

use anvil_types::DemoIdentity;
use web_sys::HtmlElement;
use yew::prelude::*;

use crate::api::{self, ErrorKind};
use crate::components::sign_in_form::SignInForm;
use crate::oidc::{self, OidcConfig};
use crate::session::{SessionAction, check_token, use_session};

#[derive(Properties, PartialEq)]
pub struct SignInOptionsProps {
    /// In the "session expired" dialog: the buttons say "again", and a sign-in at the provider comes back
    /// to this page.
    #[prop_or_default]
    pub again: bool,
}

#[function_component(SignInOptions)]
pub fn sign_in_options(p: &SignInOptionsProps) -> Html {
    let cfg = api::runtime();
    let submit_label = AttrValue::Static(if p.again { "Sign in again" } else { "Sign in" });
    html! {
        <div class="sign-in-options">
            if let Some(oidc) = cfg.oidc.clone() {
                <SingleSignOn {oidc} again={p.again} />
                <p class="or" aria-hidden="true">{ "or" }</p>
            }
            <SignInForm {submit_label} autofocus={cfg.oidc.is_none()} />
            if cfg.demo {
                <DemoPeople again={p.again} />
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct SingleSignOnProps {
    oidc: OidcConfig,
    again: bool,
}

/// "Sign in with single sign-on": off to the provider, back on the callback path.
#[function_component(SingleSignOn)]
fn single_sign_on(p: &SingleSignOnProps) -> Html {
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let button = use_node_ref();
    {
        let button = button.clone();
        use_effect_with((), move |_| {
            if let Some(b) = button.cast::<HtmlElement>() {
                let _ = b.focus();
            }
        });
    }
    let onclick = {
        let (busy, error, cfg) = (busy.clone(), error.clone(), p.oidc.clone());
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            busy.set(true);
            let (busy, error, cfg) = (busy.clone(), error.clone(), cfg.clone());
            wasm_bindgen_futures::spawn_local(async move {
                // On success the browser is on its way to the provider; nothing more to show here.
                if let Err(why) = oidc::start(&cfg, &oidc::here()).await {
                    error.set(Some(why));
                    busy.set(false);
                }
            });
        })
    };
    let provider = p.oidc.issuer.trim_start_matches("https://").trim_start_matches("http://");
    html! {
        <div class="sso">
            <button type="button" class="primary" ref={button} {onclick} disabled={*busy}
                aria-describedby="sso-help">
                { if p.again { "Sign in again with single sign-on" } else { "Sign in with single sign-on" } }
            </button>
            <p id="sso-help" class="hint">{ "Your organisation's account, at " }<code>{ provider }</code>{ "." }</p>
            if let Some(e) = &*error { <p class="field-error" role="alert">{ e }</p> }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct DemoPeopleProps {
    again: bool,
}

/// One button per demo person; each click asks the server for a fresh token.
#[function_component(DemoPeople)]
fn demo_people(p: &DemoPeopleProps) -> Html {
    let session = use_session();
    let people = use_state(|| None::<Rc<Vec<DemoIdentity>>>);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let say = |e: api::ApiError| match e.kind() {
        ErrorKind::Network => "The server could not be reached. Retry in a moment.".to_string(),
        _ => e.message,
    };
    {
        let (people, error) = (people.clone(), error.clone());
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match api::demo::identities().await {
                    Ok(d) => people.set(Some(Rc::new(d.identities))),
                    Err(e) => error.set(Some(say(e))),
                }
            });
        });
    }
    let sign_in_as = {
        let (session, error, busy) = (session.clone(), error.clone(), busy.clone());
        Callback::from(move |name: AttrValue| {
            if *busy {
                return;
            }
            busy.set(true);
            let (session, error, busy) = (session.clone(), error.clone(), busy.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let token = match api::demo::identities().await {
                    Ok(d) => d.identities.into_iter().find(|i| i.name == name.as_str()).map(|i| i.token),
                    Err(e) => {
                        error.set(Some(say(e)));
                        busy.set(false);
                        return;
                    }
                };
                let Some(token) = token else {
                    error.set(Some(format!("The demo has no {name} any more.")));
                    busy.set(false);
                    return;
                };
                match check_token(&token).await {
                    Ok(me) => {
                        oidc::forget();
                        error.set(None);
                        session.dispatch(SessionAction::SignedIn { token: Rc::from(token), me });
                    }
                    Err(e) => error.set(Some(say(e))),
                }
                busy.set(false);
            });
        })
    };
    let heading = if p.again { "Or continue as a demo person" } else { "Or try the demo as" };
    html! {
        <section class="demo-sign-in" aria-labelledby="demo-title">
            <h2 id="demo-title">{ heading }</h2>
            if let Some(list) = &*people {
                <ul class="demo-people">
                    { for list.iter().map(|person| {
                        let name = AttrValue::from(person.name.clone());
                        let role_id = format!("demo-role-{}", person.name);
                        let onclick = {
                            let (sign_in_as, name) = (sign_in_as.clone(), name.clone());
                            Callback::from(move |_: MouseEvent| sign_in_as.emit(name.clone()))
                        };
                        html! {
                            <li key={person.name.clone()}>
                                <button type="button" {onclick} disabled={*busy}
                                    aria-describedby={role_id.clone()}>
                                    { format!("Sign in as {}", person.name) }
                                </button>
                                <span id={role_id} class="hint">{ person.role.as_str() }</span>
                            </li>
                        }
                    }) }
                </ul>
                <p class="hint">{ "Each button gets a fresh token, valid for an hour." }</p>
            } else if error.is_none() {
                <p class="hint">{ "Loading the demo's people…" }</p>
            }
            if let Some(e) = &*error { <p class="field-error" role="alert">{ e }</p> }
        </section>
    }
}
