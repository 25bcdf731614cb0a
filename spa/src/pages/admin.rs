//! Admin home: every queue of the tenant with its progress, and the way to create one.

use std::collections::HashMap;
use std::rc::Rc;

use anvil_types::{Queue, QueueStats, Role};
use uuid::Uuid;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{ApiError, queues};
use crate::app::Route;
use crate::components::notice::{ApiProblem, Loading, Notice};
use crate::components::ops::OpsPanel;
use crate::components::stats::Progress;
use crate::session::{use_api, use_session};

#[derive(Default, PartialEq)]
struct State {
    queues: Option<Result<Vec<Queue>, ApiError>>,
    stats: HashMap<Uuid, QueueStats>,
}

enum Action {
    Loaded(Result<Vec<Queue>, ApiError>),
    Stats(QueueStats),
}

impl Reducible for State {
    type Action = Action;
    fn reduce(self: Rc<Self>, a: Action) -> Rc<Self> {
        let mut stats = self.stats.clone();
        let mut queues = self.queues.clone();
        match a {
            Action::Loaded(r) => queues = Some(r),
            Action::Stats(s) => {
                stats.insert(s.queue_id, s);
            }
        }
        Rc::new(State { queues, stats })
    }
}

#[function_component(AdminPage)]
pub fn admin_page() -> Html {
    let session = use_session();
    let api = use_api();
    let state = use_reducer(State::default);
    {
        let state = state.clone();
        use_effect_with(api.clone(), move |api| {
            if let Some(api) = api.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let r = queues::list(&api).await;
                    let ids: Vec<Uuid> =
                        r.as_ref().map(|qs| qs.iter().map(|q| q.id).collect()).unwrap_or_default();
                    state.dispatch(Action::Loaded(r));
                    for id in ids {
                        if let Ok(s) = queues::stats(&api, id).await {
                            state.dispatch(Action::Stats(s));
                        }
                    }
                });
            }
        });
    }
    if session.role() < Some(Role::Admin) {
        return html! { <Notice title="Admins only"><p>{ "This page needs the admin role." }</p></Notice> };
    }
    let body = match &state.queues {
        None => html! { <Loading /> },
        Some(Err(e)) => html! { <ApiProblem error={e.clone()} /> },
        Some(Ok(qs)) if qs.is_empty() => html! { <p class="empty">{ "No queues yet." }</p> },
        Some(Ok(qs)) => html! {
            <table class="table">
                <thead><tr>
                    <th scope="col">{ "Queue" }</th><th scope="col">{ "State" }</th><th scope="col">{ "Samples" }</th>
                    <th scope="col">{ "Progress" }</th><th scope="col">{ "Labels" }</th><th scope="col"><span class="hint">{ "Open" }</span></th>
                </tr></thead>
                <tbody>
                    { for qs.iter().map(|q| {
                        let st = state.stats.get(&q.id);
                        html! {
                            <tr data-queue={q.id.to_string()}>
                                <td>{ &q.name }</td>
                                <td><span class={classes!("badge", q.state.as_str())}>{ q.state.as_str() }</span></td>
                                <td>{ q.sample_count }</td>
                                <td>if let Some(s) = st {
                                    <Progress done={s.completed_samples} total={s.total_samples} label="complete" />
                                }</td>
                                <td>{ st.map(|s| s.submitted.to_string()).unwrap_or_default() }</td>
                                <td><Link<Route> to={Route::AdminQueue { id: q.id }} classes="button">{ "Manage" }</Link<Route>></td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    html! {
        <section>
            <div class="page-head">
                <h1>{ "Admin" }</h1>
                <Link<Route> to={Route::NewQueue} classes="button primary">{ "New queue" }</Link<Route>>
            </div>
            { body }
            <OpsPanel />
        </section>
    }
}
