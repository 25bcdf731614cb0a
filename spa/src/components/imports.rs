//! Import a large sample file (JSON Lines or CSV) into a queue, for its admin: create the import, PUT the file
//! to its signed upload URL (the browser streams the `File`; the wasm never holds its bytes), start it, and
//! poll it every second until it has finished; then the counts and every invalid line with its reason.

use std::cell::Cell;
use std::rc::Rc;

use anvil_types::{CreateImport, FileFormat, Import, TaskState};
use gloo_timers::future::TimeoutFuture;
use uuid::Uuid;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::{self, ApiError, imports};
use crate::components::notice::{Notice, describe};
use crate::format;
use crate::session::use_api;

const POLL_MS: u32 = 1_000;
/// Invalid lines listed on the page (the server keeps the first 1000).
const SHOWN_ERRORS: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Uploading { name: String, size: i64 },
    Starting,
    Running(Import),
    Finished(Import),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    format: FileFormat,
    /// The chosen file's name and size, for the hint under the input.
    chosen: Option<(String, i64)>,
    phase: Phase,
}

enum Action {
    Chosen(Option<(String, i64)>),
    Format(FileFormat),
    Phase(Phase),
}

impl Reducible for State {
    type Action = Action;
    fn reduce(self: Rc<Self>, a: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match a {
            Action::Chosen(c) => {
                // the format follows the file's name; the select can still override it
                if let Some((name, _)) = &c {
                    s.format = guess_format(name).unwrap_or(s.format);
                }
                s.chosen = c;
            }
            Action::Format(f) => s.format = f,
            Action::Phase(p) => s.phase = p,
        }
        Rc::new(s)
    }
}

/// `.csv` is CSV; `.jsonl`, `.ndjson`, `.json` are JSON Lines; anything else keeps the chosen format.
fn guess_format(name: &str) -> Option<FileFormat> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(FileFormat::Csv),
        "jsonl" | "ndjson" | "json" => Some(FileFormat::Jsonl),
        _ => None,
    }
}

fn failure(e: &ApiError) -> String {
    let details: Vec<String> = e.details.iter().map(|d| format!("{} {}", d.pointer, d.message)).collect();
    if details.is_empty() { describe(e) } else { format!("{} ({})", describe(e), details.join("; ")) }
}

fn busy(p: &Phase) -> bool {
    matches!(p, Phase::Uploading { .. } | Phase::Starting | Phase::Running(_))
}

#[derive(Properties, PartialEq)]
pub struct ImportProps {
    pub queue: Uuid,
    /// Told when an import has finished (the queue's sample count changed).
    pub on_changed: Callback<()>,
}

#[function_component(ImportSection)]
pub fn import_section(p: &ImportProps) -> Html {
    let api = use_api();
    let st = use_reducer(|| State { format: FileFormat::Jsonl, chosen: None, phase: Phase::Idle });
    let input = use_node_ref();
    // false once the section is gone: a running poll stops
    let alive = use_memo((), |_| Rc::new(Cell::new(true)));
    {
        let alive = alive.clone();
        use_effect_with((), move |_| move || alive.set(false));
    }

    let onchange = {
        let st = st.clone();
        Callback::from(move |e: Event| {
            let el: HtmlInputElement = e.target_unchecked_into();
            let chosen = el.files().and_then(|fs| fs.get(0)).map(|f| (f.name(), f.size() as i64));
            st.dispatch(Action::Chosen(chosen));
        })
    };
    let on_format = {
        let st = st.clone();
        Callback::from(move |e: Event| {
            let el: HtmlSelectElement = e.target_unchecked_into();
            st.dispatch(Action::Format(FileFormat::parse(&el.value()).unwrap_or(FileFormat::Jsonl)));
        })
    };
    let onsubmit = {
        let (st, input, queue, on_changed) = (st.clone(), input.clone(), p.queue, p.on_changed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if busy(&st.phase) {
                return;
            }
            let file = input.cast::<HtmlInputElement>().and_then(|el| el.files()).and_then(|fs| fs.get(0));
            let Some(file) = file else {
                st.dispatch(Action::Phase(Phase::Failed("Choose a file first.".into())));
                return;
            };
            let Some(api) = api.clone() else { return };
            let (st, alive, on_changed, format) =
                (st.clone(), (*alive).clone(), on_changed.clone(), st.format);
            wasm_bindgen_futures::spawn_local(async move {
                let phase = |p| st.dispatch(Action::Phase(p));
                phase(Phase::Uploading { name: file.name(), size: file.size() as i64 });
                let created = match imports::create(&api, queue, &CreateImport { format }).await {
                    Ok(i) => i,
                    Err(e) => {
                        return phase(Phase::Failed(format!(
                            "The import could not be created: {}",
                            failure(&e)
                        )));
                    }
                };
                let Some(url) = created.upload_url.as_deref() else {
                    return phase(Phase::Failed("The server gave no upload address for this import.".into()));
                };
                if let Err(e) = api::upload(url, &file).await {
                    return phase(Phase::Failed(format!(
                        "The upload failed: {}. Nothing was imported.",
                        failure(&e)
                    )));
                }
                phase(Phase::Starting);
                let mut current = match imports::start(&api, created.id).await {
                    Ok(i) => i,
                    Err(e) => {
                        return phase(Phase::Failed(format!("The import could not start: {}", failure(&e))));
                    }
                };
                loop {
                    if !alive.get() {
                        return;
                    }
                    if matches!(current.state, TaskState::Succeeded | TaskState::Failed) {
                        phase(Phase::Finished(current));
                        on_changed.emit(());
                        return;
                    }
                    phase(Phase::Running(current.clone()));
                    TimeoutFuture::new(POLL_MS).await;
                    match imports::get(&api, created.id).await {
                        Ok(i) => current = i,
                        // a failed poll is not a failed import: say so and keep asking
                        Err(e) if e.kind() == crate::api::ErrorKind::Network => {}
                        Err(e) => {
                            return phase(Phase::Failed(format!(
                                "The import's progress could not be read: {}",
                                failure(&e)
                            )));
                        }
                    }
                }
            });
        })
    };

    let status = match &st.phase {
        Phase::Idle => html! {},
        Phase::Uploading { name, size } => {
            html! { <p class="hint" role="status">{ format!("Uploading {name} ({})…", format::bytes(*size)) }</p> }
        }
        Phase::Starting => html! { <p class="hint" role="status">{ "Uploaded; starting the import…" }</p> },
        Phase::Running(i) => html! {
            <>
                <p class="hint" role="status">{ "Importing… (checked every second)" }</p>
                <ImportResult import={i.clone()} />
            </>
        },
        Phase::Finished(i) => html! { <ImportResult import={i.clone()} /> },
        Phase::Failed(m) => html! { <Notice><p>{ m }</p></Notice> },
    };
    html! {
        <form class="panel" data-section="import" onsubmit={onsubmit} aria-labelledby="import-title">
            <h2 id="import-title">{ "Import a file" }</h2>
            <p class="hint" id="import-help">
                { "For large batches: JSON Lines (one " }<code>{ r#"{"external_id", "payload", "priority"?}"# }</code>
                { " per line) or CSV (a header with external_id, optional priority; the other columns become the \
                   payload). An external_id already in the queue is left as it is; invalid lines are listed." }
            </p>
            <div class="inline-form">
                <div>
                    <label for="import-file">{ "File to import" }</label>
                    <input id="import-file" type="file" ref={input} onchange={onchange}
                        accept=".jsonl,.ndjson,.json,.csv,application/x-ndjson,text/csv" aria-describedby="import-help" />
                </div>
                <div>
                    <label for="import-format">{ "File format" }</label>
                    <select id="import-format" onchange={on_format}>
                        <option value="jsonl" selected={st.format == FileFormat::Jsonl}>{ "JSON Lines" }</option>
                        <option value="csv" selected={st.format == FileFormat::Csv}>{ "CSV" }</option>
                    </select>
                </div>
                <button type="submit" class="primary" disabled={busy(&st.phase)}>{ "Upload and import" }</button>
            </div>
            if let Some((name, size)) = &st.chosen {
                <p class="hint">{ format!("{name} · {}", format::bytes(*size)) }</p>
            }
            { status }
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct ImportResultProps {
    import: Import,
}

#[function_component(ImportResult)]
fn import_result(p: &ImportResultProps) -> Html {
    let i = &p.import;
    let cards = [
        ("Created", "created", i.rows_created),
        ("Already there", "existing", i.rows_existing),
        ("Failed", "failed", i.rows_failed),
    ];
    let tone = if i.state == TaskState::Failed || i.rows_failed > 0 { "warn" } else { "info" };
    let done = matches!(i.state, TaskState::Succeeded | TaskState::Failed);
    html! {
        <div class="import-result" data-import={i.id.to_string()} data-import-state={i.state.as_str()}>
            if done {
                <Notice tone={tone} title={match i.state {
                    TaskState::Failed => "The import failed",
                    _ if i.rows_failed > 0 => "Imported, with invalid lines",
                    _ => "Imported",
                }}>
                    if let Some(e) = &i.error { <p>{ e }</p> }
                    <p>{ format!("{} created, {} already there, {} failed.", i.rows_created, i.rows_existing, i.rows_failed) }</p>
                </Notice>
            }
            <dl class="cards">
                { for cards.iter().map(|(k, key, v)| html! {
                    <div data-import-count={*key}><dt>{ *k }</dt><dd>{ v }</dd></div>
                }) }
            </dl>
            if !i.errors.is_empty() {
                <div class="table-wrap">
                    <table class="table import-errors">
                        <caption>{
                            if (i.errors.len() as i64) < i.rows_failed || i.errors.len() > SHOWN_ERRORS {
                                format!("Invalid lines (the first {} of {})", i.errors.len().min(SHOWN_ERRORS), i.rows_failed)
                            } else {
                                "Invalid lines".to_string()
                            }
                        }</caption>
                        <thead><tr><th scope="col">{ "Line" }</th><th scope="col">{ "Reason" }</th></tr></thead>
                        <tbody>
                            { for i.errors.iter().take(SHOWN_ERRORS).map(|e| html! {
                                <tr data-error-line={e.line.to_string()}><td>{ e.line }</td><td>{ &e.reason }</td></tr>
                            }) }
                        </tbody>
                    </table>
                </div>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(guess_format("reviews.CSV"), Some(FileFormat::Csv));
        assert_eq!(guess_format("a.b.jsonl"), Some(FileFormat::Jsonl));
        assert_eq!(guess_format("dump.ndjson"), Some(FileFormat::Jsonl));
        assert_eq!(guess_format("notes.txt"), None);
        assert_eq!(guess_format("noext"), None);
    }
}
