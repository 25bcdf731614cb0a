//! Routes and the app shell. Every route needs a session: without one the sign-in page shows instead (and the
//! address stays, so signing in lands where the link pointed). When the API answers 401 the "sign in again"
//! dialog covers the page without unmounting it, so nothing typed is lost.

use uuid::Uuid;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::header::Header;
use crate::components::notice::Loading;
use crate::components::sign_in_options::SignInOptions;
use crate::pages;
use crate::session::{self, SessionProvider, SessionState, use_session};

#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Route {
    /// The queues you can work in.
    #[at("/")]
    Home,
    /// Label a queue's samples, one after another.
    #[at("/queues/:id/label")]
    Label { id: Uuid },
    /// Browse and review a queue's labels (auditor, admin).
    #[at("/queues/:id/review")]
    Review { id: Uuid },
    /// How far a queue's labels agree, per field and per labeler (auditor, admin).
    #[at("/queues/:id/quality")]
    Quality { id: Uuid },
    /// Queues with their progress; create one (admin).
    #[at("/admin")]
    Admin,
    #[at("/admin/new")]
    NewQueue,
    /// One queue: stats, pause/resume, samples (admin).
    #[at("/admin/queues/:id")]
    AdminQueue { id: Uuid },
    #[not_found]
    #[at("/404")]
    NotFound,
}

fn switch(route: Route) -> Html {
    match route {
        Route::Home => html! { <pages::queues::QueuesPage /> },
        // keyed by queue: another queue is a fresh page, not this one's state with new props
        Route::Label { id } => html! { <pages::label::LabelPage key={id.to_string()} {id} /> },
        Route::Review { id } => html! { <pages::review::ReviewPage key={id.to_string()} {id} /> },
        Route::Quality { id } => html! { <pages::quality::QualityPage key={id.to_string()} {id} /> },
        Route::Admin => html! { <pages::admin::AdminPage /> },
        Route::NewQueue => html! { <pages::new_queue::NewQueuePage /> },
        Route::AdminQueue { id } => html! { <pages::admin_queue::AdminQueuePage {id} /> },
        Route::NotFound => html! { <pages::not_found::NotFoundPage /> },
    }
}

#[function_component(App)]
pub fn app() -> Html {
    html! {
        <BrowserRouter>
            <SessionProvider>
                <Shell />
            </SessionProvider>
        </BrowserRouter>
    }
}

#[function_component(Shell)]
fn shell() -> Html {
    let session = use_session();
    match &session.state {
        SessionState::Loading | SessionState::Unreachable(_) => {
            html! { <main class="page"><Loading /></main> }
        }
        SessionState::SignedOut => html! { <pages::sign_in::SignInPage /> },
        SessionState::Active { .. } | SessionState::Expired { .. } => html! {
            <>
                <Header />
                <main class="page" id="main">
                    <Switch<Route> render={switch} />
                </main>
                if let SessionState::Expired { me, .. } = &session.state {
                    <SessionExpired subject={me.subject.clone()} />
                }
            </>
        },
    }
}

#[derive(Properties, PartialEq)]
struct SessionExpiredProps {
    subject: AttrValue,
}

/// "Your session has expired": over the page, which stays as it was underneath.
#[function_component(SessionExpired)]
fn session_expired(p: &SessionExpiredProps) -> Html {
    let session = use_session();
    let sign_out = Callback::from(move |_| session::sign_out(&session));
    html! {
        <div class="overlay">
            <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="expired-title"
                aria-describedby="expired-text" data-dialog="expired">
                <h2 id="expired-title">{ "Session expired" }</h2>
                <p id="expired-text">
                    { format!("The server no longer accepts the token of {}. Sign in again to carry on: \
                        this page and anything you entered stay as they are.", p.subject) }
                </p>
                <SignInOptions again=true />
                <button type="button" class="link" onclick={sign_out}>{ "Sign out instead" }</button>
            </div>
        </div>
    }
}
