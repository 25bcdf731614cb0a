//! A queue's gold (check) samples, for its admin: how the queue uses them (the share of claims that are gold,
//! an optional accuracy floor, the labelers exempt from it), adding gold items by pasting JSON Lines, and the
//! list of them with their answers and labels so far.
//!
//! The settings form shows the rate and the floor as percentages (`crate::gold` converts); Save sends
//! `PUT …/gold/settings` and puts the server's 422 messages next to the fields they name. A paste is read line
//! by line before anything is sent, and the server's `/items/N/...` pointers come back as line numbers.

use std::rc::Rc;

use anvil_types::{AddGold, GoldItem, GoldSettings};
use uuid::Uuid;
use web_sys::{HtmlInputElement, HtmlTextAreaElement, KeyboardEvent};
use yew::prelude::*;

use crate::api::{ApiError, ErrorKind, gold as gold_api};
use crate::components::notice::{ApiProblem, Loading, Notice, describe};
use crate::gold::{
    GoldBatch, ItemProblem, MAX_GOLD_PER_BATCH, SettingsErrors, SettingsField, SettingsForm, item_problems,
    named_id, parse_gold_jsonl, percent_to_share, rate_in_words, settings_errors,
};
use crate::session::use_api;

/// The id of the section's heading, which `G` on the admin queue page focuses.
pub const GOLD_HEADING_ID: &str = "gold-title";

#[derive(Properties, PartialEq)]
pub struct GoldSectionProps {
    pub queue: Uuid,
}

#[function_component(GoldSection)]
pub fn gold_section(p: &GoldSectionProps) -> Html {
    // Bumped after a paste was added: the list reloads.
    let version = use_state(|| 0u32);
    let on_added = {
        let version = version.clone();
        Callback::from(move |()| version.set(*version + 1))
    };
    html! {
        <section class="panel gold" id="gold" data-section="gold" aria-labelledby={GOLD_HEADING_ID}>
            <h2 id={GOLD_HEADING_ID} tabindex="-1">{ "Gold (check items)" }</h2>
            <p class="hint">{ "Gold items are samples whose answers you know. Labelers get them now and then among \
                the other samples (nothing tells them apart) and each at most once; their answers are scored, not \
                exported. The quality page shows each labeler's gold accuracy." }</p>
            <SettingsSection queue={p.queue} />
            <PasteSection queue={p.queue} {on_added} />
            <ItemsSection queue={p.queue} version={*version} />
        </section>
    }
}

// ---------------------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
struct Settings {
    loaded: Option<Result<(), ApiError>>,
    /// What the server has.
    saved: GoldSettings,
    form: SettingsForm,
    new_exempt: String,
    errors: SettingsErrors,
    busy: bool,
    /// The last save went through (until the next edit).
    done: bool,
    /// A failure that is not about one field.
    failure: Option<String>,
}

enum SettingsAction {
    Loaded(Result<GoldSettings, ApiError>),
    Rate(String),
    Floor(bool),
    MinAccuracy(String),
    After(String),
    NewExempt(String),
    AddExempt,
    RemoveExempt(usize),
    LocalInvalid(SettingsErrors),
    Saving,
    Saved(GoldSettings),
    Failed(ApiError),
}

impl Reducible for Settings {
    type Action = SettingsAction;
    fn reduce(self: Rc<Self>, a: SettingsAction) -> Rc<Self> {
        let mut s = (*self).clone();
        let edited = |s: &mut Settings, at: SettingsField| {
            s.done = false;
            s.errors.remove(&at);
        };
        match a {
            SettingsAction::Loaded(Ok(g)) => {
                s.form = SettingsForm::from_settings(&g);
                s.saved = g;
                s.loaded = Some(Ok(()));
            }
            SettingsAction::Loaded(Err(e)) => s.loaded = Some(Err(e)),
            SettingsAction::Rate(v) => {
                s.form.rate = v;
                edited(&mut s, SettingsField::Rate);
            }
            SettingsAction::Floor(on) => {
                s.form.floor = on;
                edited(&mut s, SettingsField::MinAccuracy);
                edited(&mut s, SettingsField::After);
            }
            SettingsAction::MinAccuracy(v) => {
                s.form.min_accuracy = v;
                edited(&mut s, SettingsField::MinAccuracy);
            }
            SettingsAction::After(v) => {
                s.form.after = v;
                edited(&mut s, SettingsField::After);
            }
            SettingsAction::NewExempt(v) => {
                s.new_exempt = v;
                edited(&mut s, SettingsField::NewExempt);
            }
            SettingsAction::AddExempt => {
                s.done = false;
                match s.form.add_exempt(&s.new_exempt) {
                    Ok(()) => {
                        s.new_exempt.clear();
                        s.errors.remove(&SettingsField::NewExempt);
                    }
                    Err(m) => {
                        s.errors.insert(SettingsField::NewExempt, m);
                    }
                }
            }
            SettingsAction::RemoveExempt(i) => {
                s.done = false;
                s.form.remove_exempt(i);
                // the indexes moved: their messages no longer point at the right names
                s.errors.retain(|k, _| !matches!(k, SettingsField::Exempt(_)));
            }
            SettingsAction::LocalInvalid(errs) => {
                s.errors = errs;
                s.done = false;
                s.failure = None;
            }
            SettingsAction::Saving => {
                s.busy = true;
                s.done = false;
                s.failure = None;
                s.errors.retain(|k, _| *k == SettingsField::NewExempt);
            }
            SettingsAction::Saved(g) => {
                s.busy = false;
                s.done = true;
                s.form = SettingsForm::from_settings(&g);
                s.saved = g;
            }
            SettingsAction::Failed(e) => {
                s.busy = false;
                if e.kind() == ErrorKind::Invalid && !e.details.is_empty() {
                    s.errors = settings_errors(&e.details);
                    s.failure = Some("Not saved: the server refused the values marked above.".into());
                } else {
                    s.failure = Some(format!("Not saved: {}", describe(&e)));
                }
            }
        }
        Rc::new(s)
    }
}

#[derive(Properties, PartialEq)]
struct QueueProps {
    queue: Uuid,
}

/// One text input of the form with its label, hint and the problem the form or the server found with it.
fn text_field(
    id: &str,
    label: &str,
    value: &str,
    hint: Html,
    error: Option<&String>,
    error_key: &str,
    oninput: Callback<InputEvent>,
) -> Html {
    let help = format!("{id}-help");
    let err = format!("{id}-error");
    let described = if error.is_some() { format!("{help} {err}") } else { help.clone() };
    html! {
        <div>
            <label for={id.to_string()}>{ label }</label>
            <input id={id.to_string()} type="text" inputmode="decimal" autocomplete="off" spellcheck="false"
                value={value.to_string()} {oninput} aria-describedby={described}
                aria-invalid={error.is_some().then_some("true")} />
            <p class="hint" id={help}>{ hint }</p>
            if let Some(m) = error {
                <p class="field-error" id={err} data-error-for={error_key.to_string()}>{ m }</p>
            }
        </div>
    }
}

#[function_component(SettingsSection)]
fn settings_section(p: &QueueProps) -> Html {
    let api = use_api();
    let st = use_reducer(Settings::default);
    let add_input = use_node_ref();
    {
        let st = st.clone();
        use_effect_with((api.clone(), p.queue), move |(api, queue)| {
            if let Some(api) = api.clone() {
                let queue = *queue;
                wasm_bindgen_futures::spawn_local(async move {
                    st.dispatch(SettingsAction::Loaded(gold_api::gold_settings(&api, queue).await));
                });
            }
        });
    }
    match &st.loaded {
        None => return html! { <Loading /> },
        Some(Err(e)) => return html! { <ApiProblem error={e.clone()} /> },
        Some(Ok(())) => {}
    }
    let text = |f: fn(String) -> SettingsAction| {
        let st = st.clone();
        Callback::from(move |e: InputEvent| {
            let el: HtmlInputElement = e.target_unchecked_into();
            st.dispatch(f(el.value()));
        })
    };
    let on_floor = {
        let st = st.clone();
        Callback::from(move |e: Event| {
            let el: HtmlInputElement = e.target_unchecked_into();
            st.dispatch(SettingsAction::Floor(el.checked()));
        })
    };
    let add = {
        let st = st.clone();
        Callback::from(move |_: MouseEvent| st.dispatch(SettingsAction::AddExempt))
    };
    // Enter in the add box adds the name (and does not save the form).
    let add_on_enter = {
        let st = st.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" {
                e.prevent_default();
                st.dispatch(SettingsAction::AddExempt);
            }
        })
    };
    let onsubmit = {
        let (st, api, queue) = (st.clone(), api.clone(), p.queue);
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if st.busy {
                return;
            }
            let req = match st.form.to_settings() {
                Ok(r) => r,
                Err(errs) => {
                    st.dispatch(SettingsAction::LocalInvalid(errs));
                    return;
                }
            };
            let Some(api) = api.clone() else { return };
            let st = st.clone();
            st.dispatch(SettingsAction::Saving);
            wasm_bindgen_futures::spawn_local(async move {
                match gold_api::put_gold_settings(&api, queue, &req).await {
                    Ok(g) => st.dispatch(SettingsAction::Saved(g)),
                    Err(e) => st.dispatch(SettingsAction::Failed(e)),
                }
            });
        })
    };
    let f = &st.form;
    let err = |k: SettingsField| st.errors.get(&k);
    let rate_words = match percent_to_share(&f.rate) {
        Ok(r) => format!("Now: {}. ", rate_in_words(r)),
        Err(_) => String::new(),
    };
    let dirty = *f != SettingsForm::from_settings(&st.saved);
    html! {
        <form class="gold-settings" {onsubmit} aria-labelledby="gold-settings-title">
            <h3 id="gold-settings-title">{ "How the queue uses gold" }</h3>
            <div class="form-grid">
                { text_field("gold-rate", "Gold share of claims (%)", &f.rate,
                    html! { <><span data-rate-words="">{ rate_words }</span>
                        { "0 turns gold off; at most 50 % (one claim in 2)." }</> },
                    err(SettingsField::Rate), "rate", text(SettingsAction::Rate)) }
            </div>
            <label class="check">
                <input type="checkbox" id="gold-floor" checked={f.floor} onchange={on_floor} />
                { "Stop labelers whose gold accuracy is under a floor" }
            </label>
            if f.floor {
                <div class="form-grid gold-floor">
                    { text_field("gold-min-accuracy", "Minimum gold accuracy (%)", &f.min_accuracy,
                        html! { "Over the answer fields of the gold items a labeler has labeled; 0 to 100 %." },
                        err(SettingsField::MinAccuracy), "min_accuracy", text(SettingsAction::MinAccuracy)) }
                    { text_field("gold-after", "After this many gold items", &f.after,
                        html! { "The floor applies once a labeler has labeled this many gold items (1 or more)." },
                        err(SettingsField::After), "after", text(SettingsAction::After)) }
                </div>
            }
            <fieldset class="exempt">
                <legend>{ "Exempt from the floor" }</legend>
                if f.exempt.is_empty() {
                    <p class="empty">{ "Nobody is exempt." }</p>
                } else {
                    <ul class="exempt-list">
                        { for f.exempt.iter().enumerate().map(|(i, who)| {
                            let remove = {
                                let (st, add_input) = (st.clone(), add_input.clone());
                                Callback::from(move |_: MouseEvent| {
                                    st.dispatch(SettingsAction::RemoveExempt(i));
                                    // the button goes away with its row: the focus waits in the add box
                                    if let Some(el) = add_input.cast::<HtmlInputElement>() {
                                        let _ = el.focus();
                                    }
                                })
                            };
                            html! {
                                <li data-exempt={who.clone()}>
                                    <span class="mono">{ who }</span>
                                    <button type="button" class="quiet" onclick={remove}
                                        aria-label={format!("Remove {who} from the exempt list")}>{ "Remove" }</button>
                                    if let Some(m) = err(SettingsField::Exempt(i)) {
                                        <span class="field-error" data-error-for={format!("exempt-{i}")}>{ m }</span>
                                    }
                                </li>
                            }
                        }) }
                    </ul>
                }
                <div class="inline-form">
                    <div>
                        <label for="gold-exempt-new">{ "Labeler to exempt" }</label>
                        <input id="gold-exempt-new" type="text" ref={add_input} autocomplete="off" spellcheck="false"
                            value={st.new_exempt.clone()} oninput={text(SettingsAction::NewExempt)}
                            onkeydown={add_on_enter} placeholder="their name, as the quality page lists it"
                            aria-describedby="gold-exempt-help" />
                    </div>
                    <button type="button" onclick={add}>{ "Add to exempt" }</button>
                </div>
                <p class="hint" id="gold-exempt-help">{ "Enter adds the name; Save applies the list." }</p>
                if let Some(m) = err(SettingsField::NewExempt) {
                    <p class="field-error" data-error-for="new-exempt">{ m }</p>
                }
            </fieldset>
            if let Some(m) = err(SettingsField::Form) {
                <p class="field-error" data-error-for="form">{ m }</p>
            }
            if let Some(m) = &st.failure { <Notice><p data-gold-settings-failure="">{ m }</p></Notice> }
            <div class="actions">
                <button type="submit" class="primary" disabled={st.busy}>{ "Save gold settings" }</button>
                if dirty && !st.busy { <span class="hint">{ "Unsaved changes" }</span> }
                if st.done && !dirty { <span class="hint saved" role="status" data-gold-saved="">{ "Saved." }</span> }
            </div>
        </form>
    }
}

// ---------------------------------------------------------------------------------------------------------
// Pasting gold items
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
struct Paste {
    text: String,
    /// Lines that cannot be read (1-based); nothing was sent.
    bad_lines: Vec<(usize, String)>,
    /// The server refused a batch: what it said, by line.
    refused: Option<(String, Vec<ItemProblem>)>,
    progress: Option<String>,
    result: Option<(i64, i64)>,
    error: Option<String>,
    busy: bool,
}

enum PasteAction {
    Text(String),
    Bad(Vec<(usize, String)>),
    Start,
    Progress(String),
    Done(i64, i64),
    Refused(String, Vec<ItemProblem>),
    Failed(String),
}

impl Reducible for Paste {
    type Action = PasteAction;
    fn reduce(self: Rc<Self>, a: PasteAction) -> Rc<Self> {
        let mut s = (*self).clone();
        match a {
            PasteAction::Text(t) => {
                s.text = t;
                s.bad_lines.clear();
            }
            PasteAction::Bad(b) => {
                s.bad_lines = b;
                s.refused = None;
                s.result = None;
                s.error = None;
            }
            PasteAction::Start => {
                s.busy = true;
                s.bad_lines.clear();
                s.refused = None;
                s.result = None;
                s.error = None;
            }
            PasteAction::Progress(p) => s.progress = Some(p),
            PasteAction::Done(created, updated) => {
                s.busy = false;
                s.progress = None;
                s.result = Some((created, updated));
                s.text.clear();
            }
            PasteAction::Refused(title, problems) => {
                s.busy = false;
                s.progress = None;
                s.refused = Some((title, problems));
            }
            PasteAction::Failed(e) => {
                s.busy = false;
                s.progress = None;
                s.error = Some(e);
            }
        }
        Rc::new(s)
    }
}

#[derive(Properties, PartialEq)]
struct PasteProps {
    queue: Uuid,
    on_added: Callback<()>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What to say when the server refuses batch `first..first + len` of a paste.
fn refusal(e: &ApiError, batch: &GoldBatch, first: usize, len: usize) -> PasteAction {
    let lines = &batch.lines[first..first + len];
    let before = if first == 0 {
        "nothing was added".to_string()
    } else {
        format!(
            "the {} before them were added; sending the same lines again is safe",
            plural(first, "item", "items")
        )
    };
    let problems = if e.kind() == ErrorKind::Invalid && !e.details.is_empty() {
        item_problems(&e.details, lines)
    } else if e.code == "not_gold" {
        let line = named_id(&e.message).and_then(|id| batch.line_of(id));
        vec![ItemProblem { line, at: "external_id".into(), message: e.message.clone() }]
    } else {
        return PasteAction::Failed(format!("{} ({before}).", describe(e)));
    };
    let mut refused_lines: Vec<usize> = problems.iter().filter_map(|p| p.line).collect();
    refused_lines.dedup();
    let what = if refused_lines.is_empty() {
        "The server refused these gold items".to_string()
    } else {
        format!("The server refused {}", plural(refused_lines.len(), "line", "lines"))
    };
    PasteAction::Refused(format!("{what}; {before}"), problems)
}

#[function_component(PasteSection)]
fn paste_section(p: &PasteProps) -> Html {
    let api = use_api();
    let st = use_reducer(Paste::default);
    let oninput = {
        let st = st.clone();
        Callback::from(move |e: InputEvent| {
            let el: HtmlTextAreaElement = e.target_unchecked_into();
            st.dispatch(PasteAction::Text(el.value()));
        })
    };
    let onsubmit = {
        let (st, queue, on_added) = (st.clone(), p.queue, p.on_added.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if st.busy {
                return;
            }
            let batch = match parse_gold_jsonl(&st.text) {
                Ok(b) if b.items.is_empty() => {
                    st.dispatch(PasteAction::Failed("Paste at least one gold item.".into()));
                    return;
                }
                Ok(b) => b,
                Err(bad) => {
                    st.dispatch(PasteAction::Bad(bad));
                    return;
                }
            };
            let Some(api) = api.clone() else { return };
            let (st, on_added) = (st.clone(), on_added.clone());
            st.dispatch(PasteAction::Start);
            wasm_bindgen_futures::spawn_local(async move {
                let total = batch.items.len();
                let (mut created, mut updated) = (0, 0);
                for (n, chunk) in batch.items.chunks(MAX_GOLD_PER_BATCH).enumerate() {
                    let first = n * MAX_GOLD_PER_BATCH;
                    if total > MAX_GOLD_PER_BATCH {
                        st.dispatch(PasteAction::Progress(format!(
                            "Adding gold items {}–{} of {total}…",
                            first + 1,
                            first + chunk.len()
                        )));
                    }
                    match gold_api::add_gold(&api, queue, &AddGold { items: chunk.to_vec() }).await {
                        Ok(r) => {
                            created += r.created;
                            updated += r.updated;
                        }
                        Err(e) => {
                            st.dispatch(refusal(&e, &batch, first, chunk.len()));
                            if first > 0 {
                                on_added.emit(());
                            }
                            return;
                        }
                    }
                }
                st.dispatch(PasteAction::Done(created, updated));
                on_added.emit(());
            });
        })
    };
    html! {
        <form class="gold-paste" {onsubmit} aria-labelledby="gold-paste-title">
            <h3 id="gold-paste-title">{ "Add gold items" }</h3>
            <label for="gold-jsonl">{ "Gold items as JSON Lines, one per line" }</label>
            <p class="hint" id="gold-jsonl-help">
                <code>{ r#"{"external_id": "gold-1", "payload": {"text": "…"}, "answer": {"sentiment": "positive"}}"# }</code>
                { " · the answer names the fields it knows (only those are scored) · an external_id that is already \
                    gold gets the new answer, its payload stays" }
            </p>
            <textarea id="gold-jsonl" class="mono" rows="6" spellcheck="false" value={st.text.clone()} {oninput}
                aria-describedby="gold-jsonl-help" />
            if !st.bad_lines.is_empty() {
                <Notice title={format!("{} cannot be read; nothing was sent",
                    plural(st.bad_lines.len(), "line", "lines"))}>
                    <ul class="errors-list" data-gold-bad-lines="">
                        { for st.bad_lines.iter().take(20).map(|(n, m)| html! {
                            <li data-line={n.to_string()}>{ format!("line {n}: {m}") }</li>
                        }) }
                    </ul>
                </Notice>
            }
            if let Some((title, problems)) = &st.refused {
                <Notice title={title.clone()}>
                    <ul class="errors-list" data-gold-problems="">
                        { for problems.iter().take(20).map(|pr| {
                            let place = match (pr.line, pr.at.is_empty()) {
                                (Some(n), true) => format!("line {n}"),
                                (Some(n), false) => format!("line {n}, {}", pr.at),
                                (None, _) => pr.at.clone(),
                            };
                            html! {
                                <li data-line={pr.line.map(|n| n.to_string())}>
                                    <span class="where">{ place }</span>{ ": " }{ &pr.message }
                                </li>
                            }
                        }) }
                    </ul>
                </Notice>
            }
            if let Some(e) = &st.error { <Notice><p>{ e }</p></Notice> }
            if let Some(pr) = &st.progress { <p class="hint" role="status">{ pr }</p> }
            if let Some((c, u)) = st.result {
                <Notice tone="info">
                    <p data-gold-result="" data-created={c.to_string()} data-updated={u.to_string()}>
                        { format!("Added {}{}.", plural(c as usize, "new gold item", "new gold items"),
                            if u > 0 { format!("; {} got a new answer", plural(u as usize, "existing one", "existing ones")) }
                            else { String::new() }) }
                    </p>
                </Notice>
            }
            <div class="actions">
                <button type="submit" class="primary" disabled={st.busy}>{ "Add gold items" }</button>
            </div>
        </form>
    }
}

// ---------------------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------------------

#[derive(Properties, PartialEq)]
struct ItemsProps {
    queue: Uuid,
    version: u32,
}

#[function_component(ItemsSection)]
fn items_section(p: &ItemsProps) -> Html {
    let api = use_api();
    let items = use_state(|| None::<Result<Rc<Vec<GoldItem>>, ApiError>>);
    let refresh = use_state(|| 0u32);
    {
        let items = items.clone();
        use_effect_with((api.clone(), p.queue, p.version, *refresh), move |(api, queue, _, _)| {
            if let Some(api) = api.clone() {
                let queue = *queue;
                wasm_bindgen_futures::spawn_local(async move {
                    items.set(Some(gold_api::list_gold(&api, queue).await.map(|l| Rc::new(l.items))));
                });
            }
        });
    }
    let reload = {
        let refresh = refresh.clone();
        Callback::from(move |_: ()| refresh.set(*refresh + 1))
    };
    let body = match &*items {
        None => html! { <Loading /> },
        Some(Err(e)) => html! { <ApiProblem error={e.clone()} on_retry={reload.clone()} /> },
        Some(Ok(list)) if list.is_empty() => html! { <p class="empty">{ "No gold items yet." }</p> },
        Some(Ok(list)) => html! {
            <div class="table-wrap">
                <table class="table gold-items">
                    <caption class="visually-hidden">{ "Gold items of this queue" }</caption>
                    <thead><tr>
                        <th scope="col">{ "External id" }</th><th scope="col">{ "Answer" }</th>
                        <th scope="col" class="num">{ "Labels so far" }</th>
                    </tr></thead>
                    <tbody>
                        { for list.iter().map(|g| html! {
                            <tr key={g.sample_id.to_string()} data-gold={g.external_id.clone()}>
                                <td class="mono">{ &g.external_id }</td>
                                <td class="mono answer" data-answer="">
                                    { serde_json::to_string(&g.answer).unwrap_or_default() }</td>
                                <td class="num" data-labels="">{ g.labels }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </div>
        },
    };
    let count = match &*items {
        Some(Ok(list)) => format!(" ({})", list.len()),
        _ => String::new(),
    };
    html! {
        <div class="gold-list">
            <div class="page-head">
                <h3>{ format!("Gold items{count}") }</h3>
                <button type="button" class="quiet" onclick={reload.reform(|_: MouseEvent| ())}>{ "Refresh" }</button>
            </div>
            { body }
        </div>
    }
}
