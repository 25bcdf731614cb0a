//! One queue, for its admin: its state (pause/resume), its progress, adding samples, its schema.
//!
//! The page is a column of independent sections, each a component given the queue and told to reload it when
//! it changes something: progress, pasting a small batch of samples, importing a large file, exports, gold
//! (check) samples, the schema. `Q` (or the "Quality" link) opens the queue's quality report, `R` its review,
//! `G` (or the "Gold" button) moves the focus to the Gold section.

use std::rc::Rc;

use anvil_types::{AddSamples, MAX_SAMPLES_PER_BATCH, PatchQueue, Queue, QueueState, QueueStats, Role};
use uuid::Uuid;
use wasm_bindgen::JsCast;
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{ApiError, queues};
use crate::app::Route;
use crate::components::exports::ExportsSection;
use crate::components::gold::{GOLD_HEADING_ID, GoldSection};
use crate::components::imports::ImportSection;
use crate::components::notice::{ApiProblem, Loading, Notice, describe};
use crate::components::shortcuts::{ADMIN_QUEUE_KEYS, PAGE_HINT, Shortcuts, sheet_key, use_page_keys};
use crate::components::stats::StatsPanel;
use crate::model::parse_jsonl;
use crate::session::{use_api, use_session};

#[derive(Properties, PartialEq)]
pub struct AdminQueueProps {
    pub id: Uuid,
}

#[function_component(AdminQueuePage)]
pub fn admin_queue_page(p: &AdminQueueProps) -> Html {
    let session = use_session();
    let api = use_api();
    let queue = use_state(|| None::<Result<Rc<Queue>, ApiError>>);
    // Bumped by sections that change the queue; reloads the queue and its stats.
    let version = use_state(|| 0u32);
    {
        let queue = queue.clone();
        use_effect_with((api.clone(), p.id, *version), move |(api, id, _)| {
            if let Some(api) = api.clone() {
                let id = *id;
                wasm_bindgen_futures::spawn_local(async move {
                    queue.set(Some(queues::get(&api, id).await.map(Rc::new)));
                });
            }
        });
    }
    let admin = session.role() >= Some(Role::Admin);
    let help = use_state(|| false);
    {
        let (help, navigator, id) = (help.clone(), use_navigator(), p.id);
        use_page_keys(Callback::from(move |key: String| {
            if !admin {
                return false;
            }
            if let Some(used) = sheet_key(&key, &help) {
                return used;
            }
            match (key.as_str(), &navigator) {
                ("q" | "Q", Some(n)) => n.push(&Route::Quality { id }),
                ("r" | "R", Some(n)) => n.push(&Route::Review { id }),
                ("g" | "G", _) => focus_gold(),
                _ => return false,
            }
            true
        }));
    }
    if !admin {
        return html! { <Notice title="Admins only"><p>{ "Managing queues needs the admin role." }</p></Notice> };
    }
    let changed = {
        let version = version.clone();
        Callback::from(move |_| version.set(*version + 1))
    };
    let toggle_help = {
        let help = help.clone();
        Callback::from(move |()| help.set(!*help))
    };
    let q = match &*queue {
        None => return html! { <Loading /> },
        Some(Err(e)) => return html! { <ApiProblem error={e.clone()} /> },
        Some(Ok(q)) => q.clone(),
    };
    html! {
        <section class="admin-queue" data-queue={q.id.to_string()}>
            <div class="page-head">
                <div>
                    <h1>{ &q.name }<span class={classes!("badge", q.state.as_str())} data-queue-state={q.state.as_str()}>
                        { q.state.as_str() }</span></h1>
                    if !q.description.is_empty() { <p class="desc">{ &q.description }</p> }
                    <p class="meta">{ format!("{} samples · {} label{} per sample · lease {} s · schema v{}",
                        q.sample_count, q.overlap, if q.overlap == 1 { "" } else { "s" }, q.lease_seconds, q.schema_version) }</p>
                </div>
                <div class="actions">
                    <StateToggle queue={q.clone()} on_changed={changed.clone()} />
                    <Link<Route> to={Route::Review { id: q.id }} classes="button">{ "Review labels" }</Link<Route>>
                    <Link<Route> to={Route::Quality { id: q.id }} classes="button">
                        { "Quality " }<kbd>{ "Q" }</kbd></Link<Route>>
                    <Link<Route> to={Route::Label { id: q.id }} classes="button">{ "Label" }</Link<Route>>
                    <button type="button" onclick={Callback::from(|_: MouseEvent| focus_gold())}>
                        { "Gold " }<kbd>{ "G" }</kbd></button>
                    <button type="button" class="quiet" onclick={toggle_help.reform(|_: MouseEvent| ())}>
                        { "Shortcuts " }<kbd>{ "?" }</kbd></button>
                </div>
            </div>
            if *help {
                <Shortcuts keys={ADMIN_QUEUE_KEYS} hint={PAGE_HINT} on_close={toggle_help.clone()} />
            }
            <StatsSection id={q.id} version={*version} />
            <SamplesSection id={q.id} on_changed={changed.clone()} />
            <ImportSection queue={q.id} on_changed={changed} />
            <ExportsSection queue={q.id} />
            <GoldSection queue={q.id} />
            <div class="panel">
                <details>
                    <summary>{ format!("Schema (version {})", q.schema_version) }</summary>
                    <pre class="mono">{ serde_json::to_string_pretty(&q.schema).unwrap_or_default() }</pre>
                </details>
            </div>
        </section>
    }
}

/// Scrolls to the Gold section and gives its heading the focus (Tab goes on into its form).
fn focus_gold() {
    let Some(el) =
        web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(GOLD_HEADING_ID))
    else {
        return;
    };
    el.scroll_into_view();
    if let Some(h) = el.dyn_ref::<web_sys::HtmlElement>() {
        let _ = h.focus();
    }
}

#[derive(Properties, PartialEq)]
struct SectionProps {
    queue: Rc<Queue>,
    on_changed: Callback<()>,
}

/// Pause / resume.
#[function_component(StateToggle)]
fn state_toggle(p: &SectionProps) -> Html {
    let api = use_api();
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let target = match p.queue.state {
        QueueState::Active => QueueState::Paused,
        _ => QueueState::Active,
    };
    let onclick = {
        let (error, busy, on_changed, id) = (error.clone(), busy.clone(), p.on_changed.clone(), p.queue.id);
        Callback::from(move |_| {
            let Some(api) = api.clone() else { return };
            let (error, busy, on_changed) = (error.clone(), busy.clone(), on_changed.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                let req = PatchQueue { state: Some(target), ..PatchQueue::default() };
                match queues::patch(&api, id, &req).await {
                    Ok(_) => {
                        error.set(None);
                        on_changed.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    let label = match (p.queue.state, target) {
        (QueueState::Archived, _) => "Unarchive",
        (_, QueueState::Paused) => "Pause queue",
        _ => "Resume queue",
    };
    html! {
        <>
            <button type="button" {onclick} disabled={*busy}>{ label }</button>
            if let Some(e) = &*error { <p class="field-error" role="alert">{ describe(e) }</p> }
        </>
    }
}

#[derive(Properties, PartialEq)]
struct StatsSectionProps {
    id: Uuid,
    version: u32,
}

#[function_component(StatsSection)]
fn stats_section(p: &StatsSectionProps) -> Html {
    let api = use_api();
    let stats = use_state(|| None::<Result<QueueStats, ApiError>>);
    let refresh = use_state(|| 0u32);
    {
        let stats = stats.clone();
        use_effect_with((api.clone(), p.id, p.version, *refresh), move |(api, id, _, _)| {
            if let Some(api) = api.clone() {
                let id = *id;
                wasm_bindgen_futures::spawn_local(
                    async move { stats.set(Some(queues::stats(&api, id).await)) },
                );
            }
        });
    }
    let onclick = {
        let refresh = refresh.clone();
        Callback::from(move |_| refresh.set(*refresh + 1))
    };
    html! {
        <div class="panel" data-section="stats">
            <div class="page-head">
                <h2>{ "Progress" }</h2>
                <button type="button" class="quiet" {onclick}>{ "Refresh" }</button>
            </div>
            { match &*stats {
                None => html! { <Loading /> },
                Some(Err(e)) => html! { <ApiProblem error={e.clone()} /> },
                Some(Ok(s)) => html! { <StatsPanel stats={s.clone()} /> },
            } }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct SamplesSectionProps {
    id: Uuid,
    on_changed: Callback<()>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Import {
    text: String,
    /// Lines that are not valid samples (1-based).
    bad_lines: Vec<(usize, String)>,
    /// "Adding 1000 of 2500…" while sending.
    progress: Option<String>,
    result: Option<(i64, i64)>,
    error: Option<String>,
    busy: bool,
}

enum ImportAction {
    Text(String),
    Bad(Vec<(usize, String)>),
    Start,
    Progress(String),
    Done(i64, i64),
    Failed(String),
}

impl Reducible for Import {
    type Action = ImportAction;
    fn reduce(self: Rc<Self>, a: ImportAction) -> Rc<Self> {
        let mut s = (*self).clone();
        match a {
            ImportAction::Text(t) => {
                s.text = t;
                s.bad_lines.clear();
            }
            ImportAction::Bad(b) => s.bad_lines = b,
            ImportAction::Start => {
                s.busy = true;
                s.result = None;
                s.error = None;
                s.bad_lines.clear();
            }
            ImportAction::Progress(p) => s.progress = Some(p),
            ImportAction::Done(created, existing) => {
                s.busy = false;
                s.progress = None;
                s.result = Some((created, existing));
                s.text.clear();
            }
            ImportAction::Failed(e) => {
                s.busy = false;
                s.progress = None;
                s.error = Some(e);
            }
        }
        Rc::new(s)
    }
}

/// Paste JSON Lines; sent in batches of at most [`MAX_SAMPLES_PER_BATCH`] (idempotent by external_id, so a
/// failed import can simply be sent again).
#[function_component(SamplesSection)]
fn samples_section(p: &SamplesSectionProps) -> Html {
    let api = use_api();
    let st = use_reducer(Import::default);
    let oninput = {
        let st = st.clone();
        Callback::from(move |e: InputEvent| {
            let el: HtmlTextAreaElement = e.target_unchecked_into();
            st.dispatch(ImportAction::Text(el.value()));
        })
    };
    let onsubmit = {
        let (st, id, on_changed) = (st.clone(), p.id, p.on_changed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if st.busy {
                return;
            }
            let samples = match parse_jsonl(&st.text) {
                Ok(s) if s.is_empty() => {
                    st.dispatch(ImportAction::Failed("Paste at least one sample.".into()));
                    return;
                }
                Ok(s) => s,
                Err(bad) => {
                    st.dispatch(ImportAction::Bad(bad));
                    return;
                }
            };
            let Some(api) = api.clone() else { return };
            let (st, on_changed) = (st.clone(), on_changed.clone());
            st.dispatch(ImportAction::Start);
            wasm_bindgen_futures::spawn_local(async move {
                let total = samples.len();
                let (mut created, mut existing) = (0, 0);
                for (n, chunk) in samples.chunks(MAX_SAMPLES_PER_BATCH).enumerate() {
                    let first = n * MAX_SAMPLES_PER_BATCH;
                    st.dispatch(ImportAction::Progress(format!(
                        "Adding samples {}–{} of {total}…",
                        first + 1,
                        first + chunk.len()
                    )));
                    let req = AddSamples { samples: chunk.to_vec() };
                    match queues::add_samples(&api, id, &req).await {
                        Ok(r) => {
                            created += r.created;
                            existing += r.existing;
                        }
                        Err(e) => {
                            let details: Vec<String> = e
                                .details
                                .iter()
                                .take(10)
                                .map(|d| format!("{} {}", d.pointer, d.message))
                                .collect();
                            st.dispatch(ImportAction::Failed(format!(
                                "Stopped at samples {}–{}: {}{}. The {first} before them were added; sending the \
                                 same lines again is safe.",
                                first + 1,
                                first + chunk.len(),
                                describe(&e),
                                if details.is_empty() { String::new() } else { format!(" ({})", details.join("; ")) }
                            )));
                            on_changed.emit(());
                            return;
                        }
                    }
                }
                st.dispatch(ImportAction::Done(created, existing));
                on_changed.emit(());
            });
        })
    };
    html! {
        <form class="panel" data-section="samples" {onsubmit}>
            <h2>{ "Add samples" }</h2>
            <label for="samples-jsonl">{ "JSON Lines, one sample per line" }</label>
            <p class="hint" id="samples-help">
                <code>{ r#"{"external_id": "r-1", "payload": {"text": "…"}, "priority": 0}"# }</code>
                { " · an external_id already in the queue is left as it is" }
            </p>
            <textarea id="samples-jsonl" class="mono" rows="8" spellcheck="false" value={st.text.clone()} {oninput}
                aria-describedby="samples-help" />
            if !st.bad_lines.is_empty() {
                <Notice title={format!("{} line{} cannot be read; nothing was sent", st.bad_lines.len(),
                    if st.bad_lines.len() == 1 { "" } else { "s" })}>
                    <ul class="errors-list">
                        { for st.bad_lines.iter().take(20).map(|(n, m)| html! { <li>{ format!("line {n}: {m}") }</li> }) }
                    </ul>
                </Notice>
            }
            if let Some(e) = &st.error { <Notice><p>{ e }</p></Notice> }
            if let Some(pr) = &st.progress { <p class="hint" role="status">{ pr }</p> }
            if let Some((c, x)) = st.result {
                <Notice tone="info"><p data-import-result="">{ format!("Added {c} new sample{}{}.", if c == 1 { "" } else { "s" },
                    if x > 0 { format!("; {x} were already there") } else { String::new() }) }</p></Notice>
            }
            <div class="actions">
                <button type="submit" class="primary" disabled={st.busy}>{ "Add samples" }</button>
            </div>
        </form>
    }
}
