//! The top bar: where you are, who you are, sign out.

use anvil_types::Role;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;
use crate::session::{self, use_session};

#[function_component(Header)]
pub fn header() -> Html {
    let session = use_session();
    let Some(me) = session.me().cloned() else {
        return html! {};
    };
    let sign_out = {
        let session = session.clone();
        Callback::from(move |_| session::sign_out(&session))
    };
    html! {
        <header class="top">
            <nav aria-label="Main">
                <Link<Route> to={Route::Home} classes="brand">{ "Anvil" }</Link<Route>>
                <Link<Route> to={Route::Home}>{ "Queues" }</Link<Route>>
                if me.role >= Role::Admin {
                    <Link<Route> to={Route::Admin}>{ "Admin" }</Link<Route>>
                }
            </nav>
            <div class="who">
                <span class="subject">{ &me.subject }</span>
                <span class="role">{ me.role.as_str() }</span>
                <span class="tenant" title="tenant">{ &me.tenant_id }</span>
                <button type="button" class="link" onclick={sign_out}>{ "Sign out" }</button>
            </div>
        </header>
    }
}
