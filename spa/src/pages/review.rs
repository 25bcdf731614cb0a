//! Review (auditor, admin): browse a queue's labels a page at a time, open one sample to see its k labels
//! side by side (fields where they disagree are marked), and accept or reject each with a comment. `Q` (or
//! the "Quality" link) opens the queue's quality report.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use anvil_types::{Label, Queue, QueueStats, Review, Role, Verdict};
use serde_json::Value;
use uuid::Uuid;
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{Api, ApiError, assignments, labels, queues};
use crate::app::Route;
use crate::components::label_view::LabelView;
use crate::components::notice::{ApiProblem, Loading, Notice, describe};
use crate::components::shortcuts::{PAGE_HINT, REVIEW_KEYS, Shortcuts, sheet_key, use_page_keys};
use crate::components::stats::Progress;
use crate::model::{FieldValue, Schema};
use crate::session::{use_api, use_session};

const PAGE_SIZE: u32 = 50;

#[derive(Debug, Clone, PartialEq)]
struct Focus {
    sample_id: Uuid,
    external_id: String,
    labels: Option<Result<Vec<Label>, ApiError>>,
    /// The sample's payload and the schema its labels were made with (from the first label's assignment).
    sample: Option<Rc<Value>>,
    schema: Option<Rc<Schema>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct State {
    queue: Option<Rc<Queue>>,
    stats: Option<Rc<QueueStats>>,
    items: Vec<Label>,
    next_cursor: Option<String>,
    loaded: bool,
    loading: bool,
    error: Option<ApiError>,
    focus: Option<Focus>,
    comments: HashMap<Uuid, String>,
    review_errors: HashMap<Uuid, String>,
    busy: HashSet<Uuid>,
}

enum Action {
    Queue(Queue),
    Stats(QueueStats),
    PageLoading,
    Page(Result<(Vec<Label>, Option<String>), ApiError>, bool),
    Open(Uuid, String),
    Close,
    FocusLabels(Uuid, Result<Vec<Label>, ApiError>),
    FocusSample(Uuid, Value, Value),
    Comment(Uuid, String),
    Reviewing(Uuid),
    Reviewed(Uuid, Result<Review, ApiError>),
}

impl Reducible for State {
    type Action = Action;
    fn reduce(self: Rc<Self>, a: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match a {
            Action::Queue(q) => s.queue = Some(Rc::new(q)),
            Action::Stats(st) => s.stats = Some(Rc::new(st)),
            Action::PageLoading => {
                s.loading = true;
                s.error = None;
            }
            Action::Page(Ok((items, next)), append) => {
                if append {
                    s.items.extend(items);
                } else {
                    s.items = items;
                }
                s.next_cursor = next;
                s.loading = false;
                s.loaded = true;
            }
            Action::Page(Err(e), _) => {
                s.loading = false;
                s.error = Some(e);
            }
            Action::Open(sample_id, external_id) => {
                s.focus = Some(Focus { sample_id, external_id, labels: None, sample: None, schema: None })
            }
            Action::Close => s.focus = None,
            Action::FocusLabels(id, r) => {
                if let Some(f) = s.focus.as_mut().filter(|f| f.sample_id == id) {
                    f.labels = Some(r);
                }
            }
            Action::FocusSample(id, payload, schema) => {
                if let Some(f) = s.focus.as_mut().filter(|f| f.sample_id == id) {
                    f.sample = Some(Rc::new(payload));
                    f.schema = Some(Rc::new(Schema::from_json(&schema)));
                }
            }
            Action::Comment(id, c) => {
                s.comments.insert(id, c);
                s.review_errors.remove(&id);
            }
            Action::Reviewing(id) => {
                s.busy.insert(id);
                s.review_errors.remove(&id);
            }
            Action::Reviewed(id, r) => {
                s.busy.remove(&id);
                match r {
                    Ok(review) => {
                        s.comments.remove(&id);
                        let add = |l: &mut Label| {
                            if l.id == id {
                                l.reviews.push(review.clone());
                            }
                        };
                        s.items.iter_mut().for_each(add);
                        if let Some(Ok(ls)) = s.focus.as_mut().and_then(|f| f.labels.as_mut()) {
                            ls.iter_mut().for_each(add);
                        }
                    }
                    Err(e) => {
                        let msg = e
                            .details
                            .iter()
                            .find(|d| d.pointer == "/comment")
                            .map(|d| format!("Comment: {}", d.message))
                            .unwrap_or_else(|| describe(&e));
                        s.review_errors.insert(id, msg);
                    }
                }
            }
        }
        Rc::new(s)
    }
}

#[derive(Properties, PartialEq)]
pub struct ReviewPageProps {
    pub id: Uuid,
}

fn load_page(api: &Api, state: &UseReducerHandle<State>, queue: Uuid, cursor: Option<String>) {
    let (api, state) = (api.clone(), state.clone());
    state.dispatch(Action::PageLoading);
    wasm_bindgen_futures::spawn_local(async move {
        let append = cursor.is_some();
        let r = labels::list(&api, queue, cursor.as_deref(), PAGE_SIZE, None)
            .await
            .map(|p| (p.items, p.next_cursor));
        state.dispatch(Action::Page(r, append));
    });
}

fn open_sample(
    api: &Api,
    state: &UseReducerHandle<State>,
    queue: Uuid,
    sample_id: Uuid,
    external_id: String,
) {
    let (api, state) = (api.clone(), state.clone());
    state.dispatch(Action::Open(sample_id, external_id));
    wasm_bindgen_futures::spawn_local(async move {
        let r = labels::list(&api, queue, None, anvil_types::MAX_PAGE_SIZE, Some(sample_id))
            .await
            .map(|p| p.items);
        let first = r.as_ref().ok().and_then(|ls| ls.first().map(|l| l.assignment_id));
        state.dispatch(Action::FocusLabels(sample_id, r));
        if let Some(a) = first
            && let Ok(c) = assignments::get(&api, a).await
        {
            state.dispatch(Action::FocusSample(sample_id, c.sample.payload, c.schema));
        }
    });
}

#[function_component(ReviewPage)]
pub fn review_page(p: &ReviewPageProps) -> Html {
    let queue_id = p.id;
    let session = use_session();
    let api = use_api();
    let state = use_reducer(State::default);
    let allowed = session.role() >= Some(Role::Auditor);
    let help = use_state(|| false);
    {
        let (help, navigator) = (help.clone(), use_navigator());
        use_page_keys(Callback::from(move |key: String| {
            page_key(&key, &help, navigator.as_ref(), queue_id, allowed)
        }));
    }
    {
        let (api, state) = (api.clone(), state.clone());
        use_effect_with(queue_id, move |id| {
            if let Some(api) = api.filter(|_| allowed) {
                let id = *id;
                load_page(&api, &state, id, None);
                wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(q) = queues::get(&api, id).await {
                        state.dispatch(Action::Queue(q));
                    }
                    if let Ok(st) = queues::stats(&api, id).await {
                        state.dispatch(Action::Stats(st));
                    }
                });
            }
        });
    }
    if !allowed {
        return html! {
            <Notice title="Auditors only">
                <p>{ "Reviewing labels needs the auditor or admin role." }</p>
                <Link<Route> to={Route::Home}>{ "Back to the queues" }</Link<Route>>
            </Notice>
        };
    }
    let Some(api) = api else { return html! {} };
    let schema: Rc<Schema> =
        state.queue.as_ref().map(|q| Rc::new(Schema::from_schema(&q.schema))).unwrap_or_default();
    let title = state.queue.as_ref().map(|q| q.name.clone()).unwrap_or_default();
    let toggle_help = {
        let help = help.clone();
        Callback::from(move |()| help.set(!*help))
    };

    let body = if let Some(f) = &state.focus {
        focus_view(&api, &state, f, &schema)
    } else {
        list_view(&api, &state, queue_id, &schema)
    };
    html! {
        <section class="review-page">
            <div class="page-head">
                <div>
                    <h1>{ format!("Review · {title}") }</h1>
                    if let Some(st) = &state.stats {
                        <Progress done={st.completed_samples} total={st.total_samples} label="samples complete" />
                    }
                </div>
                <div class="actions">
                    <Link<Route> to={Route::Quality { id: queue_id }} classes="button">
                        { "Quality " }<kbd>{ "Q" }</kbd></Link<Route>>
                    <Link<Route> to={Route::Home} classes="button quiet">{ "All queues" }</Link<Route>>
                    <button type="button" class="quiet" onclick={toggle_help.reform(|_: MouseEvent| ())}>
                        { "Shortcuts " }<kbd>{ "?" }</kbd></button>
                </div>
            </div>
            { body }
            if *help {
                <Shortcuts keys={REVIEW_KEYS} hint={PAGE_HINT} on_close={toggle_help.clone()} />
            }
        </section>
    }
}

/// The review page's keys ([`REVIEW_KEYS`]); answers whether the key was used.
fn page_key(
    key: &str,
    help: &UseStateHandle<bool>,
    nav: Option<&Navigator>,
    queue: Uuid,
    allowed: bool,
) -> bool {
    if !allowed {
        return false;
    }
    if let Some(used) = sheet_key(key, help) {
        return used;
    }
    match (key, nav) {
        ("q" | "Q", Some(n)) => n.push(&Route::Quality { id: queue }),
        _ => return false,
    }
    true
}

fn verdict_badge(l: &Label) -> Html {
    match l.reviews.last() {
        Some(r) => {
            html! { <span class={classes!("verdict", r.verdict.as_str())}>{ r.verdict.as_str() }{ "ed" }</span> }
        }
        None => html! { <span class="verdict">{ "not reviewed" }</span> },
    }
}

fn summary(schema: &Schema, payload: &Value) -> String {
    schema
        .fields
        .iter()
        .filter_map(|f| {
            let v = payload.get(&f.name)?;
            let shown = match FieldValue::from_json(&f.kind, Some(v)) {
                FieldValue::Choice(Some(c)) => c,
                FieldValue::Multi(m) if !m.is_empty() => m.join("+"),
                FieldValue::Bool(Some(b)) => if b { "yes" } else { "no" }.into(),
                FieldValue::Rating(Some(r)) => format!("{r}★"),
                FieldValue::Spans(s) if !s.is_empty() => {
                    format!("{} span{}", s.len(), if s.len() == 1 { "" } else { "s" })
                }
                FieldValue::Text(t) | FieldValue::Number(t) | FieldValue::Date(t) | FieldValue::Json(t)
                    if !t.is_empty() =>
                {
                    t
                }
                _ => return None,
            };
            Some(format!("{}: {shown}", f.name))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn list_view(api: &Api, state: &UseReducerHandle<State>, queue: Uuid, schema: &Rc<Schema>) -> Html {
    if let Some(e) = &state.error {
        let (api, st) = (api.clone(), state.clone());
        let cursor = state.next_cursor.clone().filter(|_| state.loaded);
        return html! {
            <ApiProblem error={e.clone()} on_retry={Callback::from(move |_| load_page(&api, &st, queue, cursor.clone()))} />
        };
    }
    if !state.loaded {
        return html! { <Loading /> };
    }
    if state.items.is_empty() {
        return html! { <p class="empty">{ "No labels in this queue yet." }</p> };
    }
    let more = state.next_cursor.clone().map(|c| {
        let (api, st) = (api.clone(), state.clone());
        Callback::from(move |_| load_page(&api, &st, queue, Some(c.clone())))
    });
    html! {
        <>
            <table class="table labels-table">
                <thead><tr>
                    <th scope="col">{ "Sample" }</th><th scope="col">{ "Labeler" }</th>
                    <th scope="col">{ "Answer" }</th><th scope="col">{ "Review" }</th><th scope="col"><span class="hint">{ "Open" }</span></th>
                </tr></thead>
                <tbody>
                    { for state.items.iter().map(|l| {
                        let open = {
                            let (api, st, sid, ext) = (api.clone(), state.clone(), l.sample_id, l.external_id.clone());
                            Callback::from(move |_| open_sample(&api, &st, queue, sid, ext.clone()))
                        };
                        html! {
                            <tr data-label={l.id.to_string()} data-sample={l.external_id.clone()}>
                                <td><code>{ &l.external_id }</code></td>
                                <td>{ &l.labeler }</td>
                                <td class="summary-cell" title={l.payload.to_string()}>{ summary(schema, &l.payload) }</td>
                                <td>{ verdict_badge(l) }</td>
                                <td><button type="button" onclick={open}
                                    aria-label={format!("Compare the labels of {}", l.external_id)}>{ "Compare" }</button></td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            <div class="actions list-foot">
                <span class="hint">{ format!("{} label{} shown", state.items.len(), if state.items.len() == 1 { "" } else { "s" }) }</span>
                if let Some(onclick) = more {
                    <button type="button" {onclick} disabled={state.loading}>{ "Load more" }</button>
                }
            </div>
        </>
    }
}

fn focus_view(api: &Api, state: &UseReducerHandle<State>, f: &Focus, queue_schema: &Rc<Schema>) -> Html {
    let close = {
        let st = state.clone();
        Callback::from(move |_| st.dispatch(Action::Close))
    };
    let schema = f.schema.clone().unwrap_or_else(|| queue_schema.clone());
    let text = f.sample.as_ref().and_then(|s| s.get("text").and_then(Value::as_str).map(str::to_string));
    let body = match &f.labels {
        None => html! { <Loading /> },
        Some(Err(e)) => html! { <ApiProblem error={e.clone()} /> },
        Some(Ok(ls)) => {
            let differs: Rc<HashSet<String>> = Rc::new(
                schema
                    .fields
                    .iter()
                    .filter(|fl| {
                        let vals: HashSet<String> = ls
                            .iter()
                            .map(|l| l.payload.get(&fl.name).map(Value::to_string).unwrap_or_default())
                            .collect();
                        vals.len() > 1
                    })
                    .map(|fl| fl.name.clone())
                    .collect(),
            );
            html! {
                <>
                    if ls.len() > 1 {
                        <p class="hint">{ if differs.is_empty() { "All labels agree.".to_string() } else {
                            format!("The labels disagree on: {}.", schema.fields.iter().filter(|fl| differs.contains(&fl.name))
                                .map(|fl| fl.title.as_str()).collect::<Vec<_>>().join(", ")) } }</p>
                    }
                    <div class="compare">
                        { for ls.iter().map(|l| label_card(api, state, l, &schema, f.sample.clone(), &differs)) }
                    </div>
                </>
            }
        }
    };
    html! {
        <div class="focus" data-focus={f.external_id.clone()}>
            <div class="panel">
                <div class="page-head">
                    <h2>{ format!("Sample {}", f.external_id) }</h2>
                    <button type="button" onclick={close}>{ "Back to all labels" }</button>
                </div>
                if let Some(t) = text { <p class="sample-text">{ t }</p> }
            </div>
            { body }
        </div>
    }
}

fn label_card(
    api: &Api,
    state: &UseReducerHandle<State>,
    l: &Label,
    schema: &Rc<Schema>,
    sample: Option<Rc<Value>>,
    differs: &Rc<HashSet<String>>,
) -> Html {
    let id = l.id;
    let comment = state.comments.get(&id).cloned().unwrap_or_default();
    let busy = state.busy.contains(&id);
    let send = |verdict: Verdict| {
        let (api, st, comment) = (api.clone(), state.clone(), comment.clone());
        Callback::from(move |_| {
            if verdict == Verdict::Reject && comment.trim().is_empty() {
                st.dispatch(Action::Reviewed(
                    id,
                    Err(ApiError {
                        status: 422,
                        code: "validation_failed".into(),
                        message: "say why the label is rejected".into(),
                        details: vec![anvil_types::FieldError::new(
                            "/comment",
                            "say why the label is rejected",
                        )],
                    }),
                ));
                return;
            }
            st.dispatch(Action::Reviewing(id));
            let (api, st, comment) = (api.clone(), st.clone(), comment.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let r = labels::review(&api, id, verdict, &comment).await;
                st.dispatch(Action::Reviewed(id, r));
            });
        })
    };
    let oninput = {
        let st = state.clone();
        Callback::from(move |e: InputEvent| {
            let el: HtmlTextAreaElement = e.target_unchecked_into();
            st.dispatch(Action::Comment(id, el.value()));
        })
    };
    let cid = format!("comment-{id}");
    html! {
        <article class="label-card" data-label={id.to_string()} data-labeler={l.labeler.clone()}>
            <header>
                <h3>{ &l.labeler }</h3>
                { verdict_badge(l) }
            </header>
            <LabelView schema={schema.clone()} payload={l.payload.clone()} {sample} differs={differs.clone()} />
            if !l.reviews.is_empty() {
                <ul class="reviews">
                    { for l.reviews.iter().map(|r| html! {
                        <li><span class={classes!("verdict", r.verdict.as_str())}>{ r.verdict.as_str() }</span>
                            { format!(" by {}", r.reviewer) }
                            if !r.comment.is_empty() { { ": " }<q>{ &r.comment }</q> }
                        </li>
                    }) }
                </ul>
            }
            <div class="review-form">
                <label for={cid.clone()}>{ "Comment " }<span class="optional">{ "(needed to reject)" }</span></label>
                <textarea id={cid} rows="2" value={comment.clone()} {oninput} />
                if let Some(e) = state.review_errors.get(&id) { <p class="field-error" role="alert">{ e }</p> }
                <div class="actions">
                    <button type="button" class="primary" disabled={busy} onclick={send(Verdict::Accept)}>{ "Accept" }</button>
                    <button type="button" disabled={busy} onclick={send(Verdict::Reject)}>{ "Reject" }</button>
                </div>
            </div>
        </article>
    }
}
