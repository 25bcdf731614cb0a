//! The queues the signed-in user can work in, with progress where the role may see it.

use std::collections::HashMap;
use std::rc::Rc;

use anvil_types::{Queue, QueueState, QueueStats, Role};
use uuid::Uuid;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{ApiError, queues};
use crate::app::Route;
use crate::components::notice::{ApiProblem, Loading};
use crate::components::stats::Progress;
use crate::pages::label::session_tally;
use crate::session::{use_api, use_session};

#[derive(Default, PartialEq)]
struct State {
    queues: Option<Result<Vec<Queue>, ApiError>>,
    stats: HashMap<Uuid, QueueStats>,
    reload: u32,
}

enum Action {
    Loaded(Result<Vec<Queue>, ApiError>),
    Stats(QueueStats),
    Reload,
}

impl Reducible for State {
    type Action = Action;
    fn reduce(self: Rc<Self>, a: Action) -> Rc<Self> {
        let mut s = State { queues: self.queues.clone(), stats: self.stats.clone(), reload: self.reload };
        match a {
            Action::Loaded(r) => s.queues = Some(r),
            Action::Stats(st) => {
                s.stats.insert(st.queue_id, st);
            }
            Action::Reload => {
                s.queues = None;
                s.reload += 1;
            }
        }
        Rc::new(s)
    }
}

#[function_component(QueuesPage)]
pub fn queues_page() -> Html {
    let session = use_session();
    let role = session.role().unwrap_or(Role::Labeler);
    let api = use_api();
    let state = use_reducer(State::default);
    {
        let state = state.clone();
        use_effect_with((api.clone(), state.reload), move |(api, _)| {
            if let Some(api) = api.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let r = queues::list(&api).await;
                    let ids: Vec<Uuid> =
                        r.as_ref().map(|qs| qs.iter().map(|q| q.id).collect()).unwrap_or_default();
                    state.dispatch(Action::Loaded(r));
                    if role >= Role::Auditor {
                        for id in ids {
                            if let Ok(st) = queues::stats(&api, id).await {
                                state.dispatch(Action::Stats(st));
                            }
                        }
                    }
                });
            }
        });
    }
    let body = match &state.queues {
        None => html! { <Loading /> },
        Some(Err(e)) => {
            let state = state.clone();
            html! { <ApiProblem error={e.clone()} on_retry={Callback::from(move |_| state.dispatch(Action::Reload))} /> }
        }
        Some(Ok(qs)) if qs.is_empty() => html! {
            <p class="empty">
                { "No queues yet." }
                if role >= Role::Admin { { " " }<Link<Route> to={Route::NewQueue}>{ "Create the first one" }</Link<Route>> }
            </p>
        },
        Some(Ok(qs)) => html! {
            <ul class="queue-list">
                { for qs.iter().map(|q| queue_card(q, state.stats.get(&q.id), role)) }
            </ul>
        },
    };
    html! {
        <section>
            <div class="page-head">
                <h1>{ "Queues" }</h1>
                if role >= Role::Admin { <Link<Route> to={Route::NewQueue} classes="button">{ "New queue" }</Link<Route>> }
            </div>
            { body }
        </section>
    }
}

fn queue_card(q: &Queue, stats: Option<&QueueStats>, role: Role) -> Html {
    let (labeled, skipped) = session_tally(q.id);
    let active = q.state == QueueState::Active;
    html! {
        <li class="queue-card" data-queue={q.id.to_string()}>
            <div class="queue-main">
                <h2>{ &q.name }
                    if !active { <span class={classes!("badge", q.state.as_str())}>{ q.state.as_str() }</span> }
                </h2>
                if !q.description.is_empty() { <p class="desc">{ &q.description }</p> }
                <p class="meta">
                    { format!("{} samples · {} label{} per sample", q.sample_count, q.overlap,
                        if q.overlap == 1 { "" } else { "s" }) }
                    if labeled + skipped > 0 {
                        { format!(" · you: {labeled} labeled, {skipped} skipped this session") }
                    }
                </p>
                if let Some(s) = stats {
                    <Progress done={s.completed_samples} total={s.total_samples} label="samples complete" />
                }
            </div>
            <div class="actions">
                if active {
                    <Link<Route> to={Route::Label { id: q.id }} classes="button primary">{ "Start labeling" }</Link<Route>>
                } else {
                    <span class="hint">{ "Paused: nothing to label right now" }</span>
                }
                if role >= Role::Auditor {
                    <Link<Route> to={Route::Review { id: q.id }} classes="button">{ "Review labels" }</Link<Route>>
                }
                if role >= Role::Admin {
                    <Link<Route> to={Route::AdminQueue { id: q.id }} classes="button">{ "Manage" }</Link<Route>>
                }
            </div>
        </li>
    }
}
