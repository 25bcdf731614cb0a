//! A queue's exports, for its admin: request one (JSON Lines or CSV, optionally only one labeler's labels or
//! one schema version), watch it go from pending to succeeded (the list is polled every second while any
//! export is unfinished, and not at all otherwise), and download it through its signed link.
//!
//! The list of exports carries no links; each finished export's link is fetched once (`GET /v1/exports/{id}`)
//! and shown as a plain anchor (no bearer needed: the signature is the grant). A link that has expired by the
//! time it is clicked is replaced by a fresh one first.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use anvil_types::{CreateExport, Export, ExportFilter, FileFormat, TaskState};
use gloo_timers::future::TimeoutFuture;
use uuid::Uuid;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::{self, ApiError, exports};
use crate::components::notice::{ApiProblem, Loading, Notice, describe};
use crate::format;
use crate::session::use_api;

/// How often the list is asked again while an export is pending or running.
const POLL_MS: u32 = 1_000;
/// Links of at most this many finished exports are fetched up front (the newest).
const LINKS_AHEAD: usize = 20;
/// A link closer than this to its expiry is renewed before use.
const LINK_MARGIN_SECS: i64 = 10;

/// A signed download link and when it stops working (unix seconds).
#[derive(Debug, Clone, PartialEq)]
struct SignedLink {
    url: String,
    expires: i64,
}

impl SignedLink {
    fn from_export(e: &Export) -> Option<Self> {
        let url = e.download_url.as_deref()?;
        let expires = e.download_expires_at.map_or(i64::MAX, |t| t.unix_timestamp());
        Some(Self { url: api::resolve(url), expires })
    }

    fn fresh(&self) -> bool {
        self.expires - now_secs() > LINK_MARGIN_SECS
    }
}

fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

fn unfinished(e: &Export) -> bool {
    matches!(e.state, TaskState::Pending | TaskState::Running)
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    items: Option<Result<Vec<Export>, ApiError>>,
    links: HashMap<Uuid, SignedLink>,
    link_errors: HashMap<Uuid, ApiError>,
    /// Bumped to load the list again (a poll, a new export, Retry).
    tick: u32,
    format: FileFormat,
    labeler: String,
    schema_version: String,
    requesting: bool,
    request_error: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            items: None,
            links: HashMap::new(),
            link_errors: HashMap::new(),
            tick: 0,
            format: FileFormat::Jsonl,
            labeler: String::new(),
            schema_version: String::new(),
            requesting: false,
            request_error: None,
        }
    }
}

enum Action {
    Loaded(Result<Vec<Export>, ApiError>),
    Link(Uuid, SignedLink),
    LinkFailed(Uuid, ApiError),
    Reload,
    Format(FileFormat),
    Labeler(String),
    SchemaVersion(String),
    Requesting,
    Requested(Result<Export, String>),
}

impl Reducible for State {
    type Action = Action;
    fn reduce(self: Rc<Self>, a: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match a {
            Action::Loaded(r) => {
                // keep showing the last good list when one poll fails
                if r.is_ok() || !matches!(s.items, Some(Ok(_))) {
                    s.items = Some(r);
                }
            }
            Action::Link(id, l) => {
                s.link_errors.remove(&id);
                s.links.insert(id, l);
            }
            Action::LinkFailed(id, e) => {
                s.link_errors.insert(id, e);
            }
            Action::Reload => s.tick = s.tick.wrapping_add(1),
            Action::Format(f) => s.format = f,
            Action::Labeler(l) => s.labeler = l,
            Action::SchemaVersion(v) => s.schema_version = v,
            Action::Requesting => {
                s.requesting = true;
                s.request_error = None;
            }
            Action::Requested(r) => {
                s.requesting = false;
                match r {
                    Ok(e) => {
                        if let Some(Ok(items)) = &mut s.items {
                            items.retain(|x| x.id != e.id);
                            items.insert(0, e);
                        }
                        s.tick = s.tick.wrapping_add(1);
                    }
                    Err(m) => s.request_error = Some(m),
                }
            }
        }
        Rc::new(s)
    }
}

#[derive(Properties, PartialEq)]
pub struct ExportsProps {
    pub queue: Uuid,
}

#[function_component(ExportsSection)]
pub fn exports_section(p: &ExportsProps) -> Html {
    let api = use_api();
    let st = use_reducer(State::default);
    {
        let st = st.clone();
        use_effect_with((api.clone(), p.queue, st.tick), move |(api, queue, _)| {
            // set to false when the tick moves on or the section goes away: that run stops polling
            let alive = Rc::new(Cell::new(true));
            if let Some(api) = api.clone() {
                let (queue, alive) = (*queue, alive.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    let r = exports::list(&api, queue).await;
                    if !alive.get() {
                        return;
                    }
                    let (active, need_links) = match &r {
                        Ok(items) => (
                            items.iter().any(unfinished),
                            items
                                .iter()
                                .filter(|e| e.state == TaskState::Succeeded)
                                .take(LINKS_AHEAD)
                                .filter(|e| !st.links.get(&e.id).is_some_and(SignedLink::fresh))
                                .map(|e| e.id)
                                .collect::<Vec<_>>(),
                        ),
                        Err(_) => (false, Vec::new()),
                    };
                    st.dispatch(Action::Loaded(r));
                    for id in need_links {
                        match exports::get(&api, id).await {
                            Ok(e) => {
                                if let Some(l) = SignedLink::from_export(&e) {
                                    st.dispatch(Action::Link(id, l));
                                }
                            }
                            Err(e) => st.dispatch(Action::LinkFailed(id, e)),
                        }
                    }
                    if active {
                        TimeoutFuture::new(POLL_MS).await;
                        if alive.get() {
                            st.dispatch(Action::Reload);
                        }
                    }
                });
            }
            move || alive.set(false)
        });
    }

    let on_format = {
        let st = st.clone();
        Callback::from(move |e: Event| {
            let el: HtmlSelectElement = e.target_unchecked_into();
            st.dispatch(Action::Format(FileFormat::parse(&el.value()).unwrap_or(FileFormat::Jsonl)));
        })
    };
    let on_labeler = {
        let st = st.clone();
        Callback::from(move |e: InputEvent| {
            let el: HtmlInputElement = e.target_unchecked_into();
            st.dispatch(Action::Labeler(el.value()));
        })
    };
    let on_version = {
        let st = st.clone();
        Callback::from(move |e: InputEvent| {
            let el: HtmlInputElement = e.target_unchecked_into();
            st.dispatch(Action::SchemaVersion(el.value()));
        })
    };
    let onsubmit = {
        let (st, api, queue) = (st.clone(), api.clone(), p.queue);
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if st.requesting {
                return;
            }
            let schema_version = match st.schema_version.trim() {
                "" => None,
                v => match v.parse::<i32>() {
                    Ok(n) if n >= 1 => Some(n),
                    _ => {
                        st.dispatch(Action::Requested(Err(
                            "The schema version is a whole number from 1, or empty for every version.".into(),
                        )));
                        return;
                    }
                },
            };
            let labeler = Some(st.labeler.trim().to_string()).filter(|l| !l.is_empty());
            let req = CreateExport {
                format: st.format,
                filter: ExportFilter { labeler, schema_version },
                mode: Default::default(),
            };
            let Some(api) = api.clone() else { return };
            let st = st.clone();
            st.dispatch(Action::Requesting);
            wasm_bindgen_futures::spawn_local(async move {
                let r = exports::create(&api, queue, &req).await.map_err(|e| {
                    let details: Vec<String> =
                        e.details.iter().map(|d| format!("{} {}", d.pointer, d.message)).collect();
                    if details.is_empty() {
                        describe(&e)
                    } else {
                        format!("{} ({})", describe(&e), details.join("; "))
                    }
                });
                st.dispatch(Action::Requested(r));
            });
        })
    };
    let reload = {
        let st = st.clone();
        Callback::from(move |_: ()| st.dispatch(Action::Reload))
    };

    let list = match &st.items {
        None => html! { <Loading /> },
        Some(Err(e)) => html! { <ApiProblem error={e.clone()} on_retry={reload.clone()} /> },
        Some(Ok(items)) if items.is_empty() => {
            html! { <p class="empty">{ "No exports yet." }</p> }
        }
        Some(Ok(items)) => html! {
            <div class="table-wrap">
                <table class="table exports">
                    <caption class="visually-hidden">{ "Exports of this queue, newest first" }</caption>
                    <thead><tr>
                        <th scope="col">{ "Requested" }</th><th scope="col">{ "Format" }</th>
                        <th scope="col">{ "State" }</th><th scope="col">{ "Rows" }</th>
                        <th scope="col">{ "Size" }</th><th scope="col">{ "SHA-256" }</th>
                        <th scope="col"><span class="hint">{ "File" }</span></th>
                    </tr></thead>
                    <tbody>
                        { for items.iter().map(|e| html! {
                            <ExportRow key={e.id.to_string()} export={e.clone()}
                                link={st.links.get(&e.id).cloned()} link_error={st.link_errors.get(&e.id).cloned()}
                                dispatch={st.dispatcher()} />
                        }) }
                    </tbody>
                </table>
            </div>
        },
    };
    let watching = matches!(&st.items, Some(Ok(items)) if items.iter().any(unfinished));

    html! {
        <div class="panel" data-section="exports">
            <div class="page-head">
                <h2 id="exports-title">{ "Exports" }</h2>
                <button type="button" class="quiet" onclick={reload.reform(|_| ())}>{ "Refresh" }</button>
            </div>
            <form class="inline-form" onsubmit={onsubmit} aria-labelledby="exports-title">
                <div>
                    <label for="export-format">{ "Export format" }</label>
                    <select id="export-format" onchange={on_format}>
                        <option value="jsonl" selected={st.format == FileFormat::Jsonl}>{ "JSON Lines" }</option>
                        <option value="csv" selected={st.format == FileFormat::Csv}>{ "CSV" }</option>
                    </select>
                </div>
                <div>
                    <label for="export-labeler">{ "Only this labeler" }</label>
                    <input id="export-labeler" type="text" value={st.labeler.clone()} oninput={on_labeler}
                        placeholder="every labeler" autocomplete="off" spellcheck="false" />
                </div>
                <div>
                    <label for="export-schema-version">{ "Only schema version" }</label>
                    <input id="export-schema-version" type="number" min="1" step="1" inputmode="numeric"
                        value={st.schema_version.clone()} oninput={on_version} placeholder="every version" />
                </div>
                <button type="submit" class="primary" disabled={st.requesting}>{ "Request export" }</button>
            </form>
            if let Some(m) = &st.request_error { <Notice><p>{ m }</p></Notice> }
            <p class="hint" role="status">
                { if watching { "Writing… this list refreshes every second until every export has finished." }
                  else { "Labels submitted up to the moment of the request are in an export." } }
            </p>
            { list }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ExportRowProps {
    export: Export,
    link: Option<SignedLink>,
    link_error: Option<ApiError>,
    dispatch: UseReducerDispatcher<State>,
}

#[function_component(ExportRow)]
fn export_row(p: &ExportRowProps) -> Html {
    let api = use_api();
    let e = &p.export;
    let fmt = match e.format {
        FileFormat::Jsonl => "JSON Lines",
        FileFormat::Csv => "CSV",
    };
    let mut filter = Vec::new();
    if let Some(l) = &e.filter.labeler {
        filter.push(format!("labeler {l}"));
    }
    if let Some(v) = e.filter.schema_version {
        filter.push(format!("schema v{v}"));
    }
    // Follows the shown link while it is fresh; otherwise asks for a fresh one and then goes there.
    let onclick = {
        let (link, st, id) = (p.link.clone(), p.dispatch.clone(), e.id);
        Callback::from(move |ev: MouseEvent| {
            if link.as_ref().is_some_and(SignedLink::fresh) {
                return;
            }
            ev.prevent_default();
            let Some(api) = api.clone() else { return };
            let st = st.clone();
            wasm_bindgen_futures::spawn_local(async move {
                match exports::get(&api, id).await {
                    Ok(e) => {
                        if let Some(l) = SignedLink::from_export(&e) {
                            if let Some(w) = web_sys::window() {
                                let _ = w.location().assign(&l.url);
                            }
                            st.dispatch(Action::Link(id, l));
                        }
                    }
                    Err(err) => st.dispatch(Action::LinkFailed(id, err)),
                }
            });
        })
    };
    let label = format!("Download the {fmt} export of {}", format::utc(e.created_at));
    let file = match e.state {
        TaskState::Succeeded => html! {
            <>
                if let Some(l) = &p.link {
                    <a class="button" href={l.url.clone()} download="" aria-label={label} data-download={e.id.to_string()}
                        onclick={onclick}>{ "Download" }</a>
                } else {
                    <button type="button" aria-label={label} data-download={e.id.to_string()} onclick={onclick}>
                        { "Download" }</button>
                }
                if let Some(err) = &p.link_error { <p class="field-error" role="alert">{ describe(err) }</p> }
            </>
        },
        TaskState::Failed => html! {
            <span class="field-error">{ e.error.clone().unwrap_or_else(|| "failed".into()) }</span>
        },
        _ => html! { <span class="hint">{ "…" }</span> },
    };
    html! {
        <tr data-export={e.id.to_string()} data-export-state={e.state.as_str()} data-export-format={e.format.as_str()}>
            <td class="nowrap">{ format::utc(e.created_at) }</td>
            <td>{ fmt }if !filter.is_empty() { <div class="hint">{ filter.join(" · ") }</div> }</td>
            <td><span class={classes!("badge", e.state.as_str())}>{ e.state.as_str() }</span></td>
            <td data-export-rows="">{ e.rows.map(|r| r.to_string()).unwrap_or_default() }</td>
            <td class="num">{ e.bytes.map(format::bytes).unwrap_or_default() }</td>
            <td>if let Some(h) = &e.sha256 { <code title={h.clone()}>{ format::short_hash(h) }</code> }</td>
            <td>{ file }</td>
        </tr>
    }
}
