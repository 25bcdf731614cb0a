//! The sign-in page: single sign-on, a pasted token, or a demo person (see `components::sign_in_options`).

use yew::prelude::*;

use crate::components::sign_in_options::SignInOptions;
use crate::session::use_session;

#[function_component(SignInPage)]
pub fn sign_in_page() -> Html {
    let session = use_session();
    html! {
        <main class="page narrow sign-in-page" id="main">
            <h1 class="brand-title">{ "Anvil" }</h1>
            <p class="lede">{ "Human data labeling. Sign in to pick up where you left off." }</p>
            if let Some(why) = &session.problem {
                <p class="field-error sign-in-problem" role="alert">{ why.to_string() }</p>
            }
            <SignInOptions />
        </main>
    }
}
