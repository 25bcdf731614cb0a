//! Sign in by pasting a token.

use yew::prelude::*;

use crate::components::sign_in_form::SignInForm;

#[function_component(SignInPage)]
pub fn sign_in_page() -> Html {
    html! {
        <main class="page narrow sign-in-page" id="main">
            <h1 class="brand-title">{ "Anvil" }</h1>
            <p class="lede">{ "Human data labeling. Sign in to pick up where you left off." }</p>
            <SignInForm />
        </main>
    }
}
