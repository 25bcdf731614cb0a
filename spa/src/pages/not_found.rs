//! Unknown addresses.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::app::Route;

#[function_component(NotFoundPage)]
pub fn not_found_page() -> Html {
    html! {
        <section class="narrow">
            <h1>{ "Nothing here" }</h1>
            <p>{ "This address does not lead anywhere in Anvil." }</p>
            <Link<Route> to={Route::Home}>{ "Back to the queues" }</Link<Route>>
        </section>
    }
}
