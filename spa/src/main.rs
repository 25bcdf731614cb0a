//! Anvil's labeling app: a Yew single-page app compiled to wasm32 and served by `anvil serve`.
//!
//! `app` holds the routes; `pages/` one component per route; `components/` reusable pieces; `api/` the HTTP
//! client (one file per route group over a single `request()`); `session` the signed-in session (a context
//! provider and hooks); `oidc` the sign-in at an OpenID provider (code flow + PKCE); `model` the labeling
//! form's logic, free of UI; `gold` the gold samples' forms and numbers, free of UI; `format` and `agreement`
//! how numbers are shown.

mod agreement;
mod api;
mod app;
mod components;
mod format;
mod gold;
mod model;
mod oidc;
mod pages;
mod session;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
