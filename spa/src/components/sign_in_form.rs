//! Paste a token, check it with `GET /v1/me`, keep it. One of the sign-in options (`sign_in_options`).

use std::rc::Rc;

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::ErrorKind;
use crate::session::{SessionAction, check_token, use_session};

#[derive(Properties, PartialEq)]
pub struct SignInFormProps {
    #[prop_or_default]
    pub submit_label: Option<AttrValue>,
    /// Put the focus in the token box at once (not when single sign-on is the first choice).
    #[prop_or(true)]
    pub autofocus: bool,
}

#[function_component(SignInForm)]
pub fn sign_in_form(p: &SignInFormProps) -> Html {
    let session = use_session();
    let token = use_state(String::new);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let input = use_node_ref();
    {
        let input = input.clone();
        use_effect_with(p.autofocus, move |focus| {
            if let Some(i) = input.cast::<HtmlInputElement>().filter(|_| *focus) {
                let _ = i.focus();
            }
        });
    }
    let oninput = {
        let token = token.clone();
        Callback::from(move |e: InputEvent| {
            let el: HtmlInputElement = e.target_unchecked_into();
            token.set(el.value());
        })
    };
    let onsubmit = {
        let (token, error, busy, session) = (token.clone(), error.clone(), busy.clone(), session.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            // Tolerate a pasted "Bearer " prefix and stray whitespace.
            let t = token.trim().trim_start_matches("Bearer ").trim().to_string();
            if t.is_empty() {
                error.set(Some("Paste a token first.".into()));
                return;
            }
            if *busy {
                return;
            }
            busy.set(true);
            let (error, busy, session) = (error.clone(), busy.clone(), session.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match check_token(&t).await {
                    Ok(me) => {
                        crate::oidc::forget();
                        error.set(None);
                        session.dispatch(SessionAction::SignedIn { token: Rc::from(t), me });
                    }
                    Err(e) => error.set(Some(match e.kind() {
                        ErrorKind::Unauthorized => format!("That token was not accepted: {}", e.message),
                        ErrorKind::Network => "The server could not be reached. Retry in a moment.".into(),
                        _ => e.message,
                    })),
                }
                busy.set(false);
            });
        })
    };
    html! {
        <form class="sign-in" {onsubmit}>
            <label for="token">{ "Access token" }</label>
            <input id="token" ref={input} type="password" autocomplete="off" spellcheck="false"
                value={(*token).clone()} {oninput} placeholder="eyJhbGciOi…"
                aria-describedby="token-help" aria-invalid={error.is_some().to_string()} />
            <p id="token-help" class="hint">
                { "A token from your administrator, or one printed by " }<code>{ "anvil serve --demo" }</code>{ "." }
            </p>
            if let Some(e) = &*error { <p class="field-error" role="alert">{ e }</p> }
            <button type="submit" class="primary" disabled={*busy}>
                { p.submit_label.clone().unwrap_or(AttrValue::Static("Sign in")) }
            </button>
        </form>
    }
}
