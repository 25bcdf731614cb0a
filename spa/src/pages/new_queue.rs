//! Create a queue (admin): its settings and its label schema, edited as a form or as raw JSON. Problems the
//! server finds come back as JSON pointers and are shown next to the input they are about.

use std::collections::BTreeMap;
use std::rc::Rc;

use anvil_types::{AssignmentPolicy, CreateQueue, FieldError, FieldKind, LabelSchema, Role, SchemaField};
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{ApiError, queues};
use crate::app::Route;
use crate::components::notice::{Notice, describe};
use crate::session::{use_api, use_session};

const KINDS: [(&str, &str); 8] = [
    ("single_choice", "Single choice"),
    ("multi_choice", "Multiple choice"),
    ("boolean", "Yes / no"),
    ("number", "Number"),
    ("text", "Text"),
    ("rating", "Rating"),
    ("date", "Date"),
    ("span", "Spans in the text"),
];

/// One field of the schema as the form edits it (every input as typed).
#[derive(Debug, Clone, PartialEq)]
struct FieldDraft {
    name: String,
    title: String,
    kind: String,
    required: bool,
    /// Choices, or span labels: one per line (commas also split).
    options: String,
    min: String,
    max: String,
    step: String,
    max_len: String,
    pattern: String,
    multiline: bool,
    rating_max: String,
    source: String,
    allow_overlap: bool,
}

impl Default for FieldDraft {
    fn default() -> Self {
        FieldDraft {
            name: String::new(),
            title: String::new(),
            kind: "single_choice".into(),
            required: true,
            options: String::new(),
            min: String::new(),
            max: String::new(),
            step: String::new(),
            max_len: String::new(),
            pattern: String::new(),
            multiline: false,
            rating_max: "5".into(),
            source: "text".into(),
            allow_overlap: false,
        }
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(['\n', ',']).map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

fn num<T: std::str::FromStr>(s: &str, ptr: String, errs: &mut Vec<FieldError>) -> Option<T> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    match t.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            errs.push(FieldError::new(ptr, "not a number"));
            None
        }
    }
}

impl FieldDraft {
    fn to_field(&self, i: usize, errs: &mut Vec<FieldError>) -> SchemaField {
        let p = |k: &str| format!("/schema/fields/{i}/{k}");
        let kind = match self.kind.as_str() {
            "multi_choice" => FieldKind::MultiChoice {
                options: list(&self.options),
                min_selected: None,
                max_selected: None,
            },
            "boolean" => FieldKind::Boolean,
            "number" => FieldKind::Number {
                min: num(&self.min, p("min"), errs),
                max: num(&self.max, p("max"), errs),
                step: num(&self.step, p("step"), errs),
            },
            "text" => FieldKind::Text {
                max_len: num(&self.max_len, p("max_len"), errs),
                pattern: Some(self.pattern.trim().to_string()).filter(|s| !s.is_empty()),
                multiline: self.multiline,
            },
            "rating" => FieldKind::Rating { max: num(&self.rating_max, p("max"), errs).unwrap_or(5) },
            "date" => FieldKind::Date,
            "span" => FieldKind::Span {
                source: self.source.trim().to_string(),
                labels: list(&self.options),
                allow_overlap: self.allow_overlap,
            },
            _ => FieldKind::SingleChoice { options: list(&self.options) },
        };
        SchemaField {
            name: self.name.trim().to_string(),
            title: self.title.trim().to_string(),
            required: self.required,
            kind,
        }
    }

    fn from_field(f: &SchemaField) -> FieldDraft {
        let mut d = FieldDraft {
            name: f.name.clone(),
            title: f.title.clone(),
            kind: f.kind.name().to_string(),
            required: f.required,
            ..FieldDraft::default()
        };
        let s = |v: &Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        match &f.kind {
            FieldKind::SingleChoice { options } | FieldKind::MultiChoice { options, .. } => {
                d.options = options.join("\n")
            }
            FieldKind::Number { min, max, step } => {
                (d.min, d.max, d.step) = (s(min), s(max), s(step));
            }
            FieldKind::Text { max_len, pattern, multiline } => {
                d.max_len = max_len.map(|m| m.to_string()).unwrap_or_default();
                d.pattern = pattern.clone().unwrap_or_default();
                d.multiline = *multiline;
            }
            FieldKind::Rating { max } => d.rating_max = max.to_string(),
            FieldKind::Span { source, labels, allow_overlap } => {
                d.source = source.clone();
                d.options = labels.join("\n");
                d.allow_overlap = *allow_overlap;
            }
            FieldKind::Boolean | FieldKind::Date => {}
        }
        d
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Form,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
struct Form {
    name: String,
    description: String,
    overlap: String,
    lease: String,
    policy: AssignmentPolicy,
    instructions: String,
    fields: Vec<FieldDraft>,
    mode: Mode,
    json: String,
    /// Problems by JSON pointer (from the server, or found before sending).
    errors: Vec<FieldError>,
    message: Option<String>,
    busy: bool,
}

impl Default for Form {
    fn default() -> Self {
        Form {
            name: String::new(),
            description: String::new(),
            overlap: "1".into(),
            lease: "300".into(),
            policy: AssignmentPolicy::Priority,
            instructions: String::new(),
            fields: vec![FieldDraft::default()],
            mode: Mode::Form,
            json: String::new(),
            errors: Vec::new(),
            message: None,
            busy: false,
        }
    }
}

impl Form {
    /// The schema from whichever editor is showing.
    fn schema(&self) -> Result<LabelSchema, Vec<FieldError>> {
        match self.mode {
            Mode::Json => serde_json::from_str::<LabelSchema>(&self.json)
                .map_err(|e| vec![FieldError::new("/schema", format!("not a valid schema: {e}"))]),
            Mode::Form => {
                let mut errs = Vec::new();
                let fields = self.fields.iter().enumerate().map(|(i, d)| d.to_field(i, &mut errs)).collect();
                if errs.is_empty() {
                    Ok(LabelSchema { instructions: self.instructions.trim().to_string(), fields })
                } else {
                    Err(errs)
                }
            }
        }
    }

    fn request(&self) -> Result<CreateQueue, Vec<FieldError>> {
        let mut errs = Vec::new();
        let overlap = num::<i32>(&self.overlap, "/overlap".into(), &mut errs).unwrap_or(1);
        let lease = num::<i32>(&self.lease, "/lease_seconds".into(), &mut errs).unwrap_or(300);
        let schema = self.schema().map_err(|e| errs.extend(e));
        match schema {
            Ok(schema) if errs.is_empty() => Ok(CreateQueue {
                name: self.name.trim().to_string(),
                description: self.description.trim().to_string(),
                overlap,
                lease_seconds: lease,
                policy: self.policy,
                schema,
            }),
            _ => Err(errs),
        }
    }

    fn errors_at(&self, prefix: &str) -> Vec<&FieldError> {
        self.errors
            .iter()
            .filter(|e| e.pointer == prefix || e.pointer.starts_with(&format!("{prefix}/")))
            .collect()
    }
}

type Edit = Box<dyn FnOnce(&mut Form)>;

impl Reducible for Form {
    type Action = Edit;
    fn reduce(self: Rc<Self>, edit: Edit) -> Rc<Self> {
        let mut f = (*self).clone();
        edit(&mut f);
        Rc::new(f)
    }
}

/// The value of the input, textarea or select an event came from.
fn value_of(e: &Event) -> String {
    let t = e.target();
    if let Some(i) = t.as_ref().and_then(|t| t.dyn_ref::<HtmlInputElement>()) {
        if i.type_() == "checkbox" {
            return i.checked().to_string();
        }
        return i.value();
    }
    if let Some(a) = t.as_ref().and_then(|t| t.dyn_ref::<HtmlTextAreaElement>()) {
        return a.value();
    }
    t.as_ref().and_then(|t| t.dyn_ref::<HtmlSelectElement>()).map(|s| s.value()).unwrap_or_default()
}

fn on_value<E: AsRef<Event> + 'static>(
    form: &UseReducerHandle<Form>,
    f: impl Fn(&mut Form, String) + 'static,
) -> Callback<E> {
    let form = form.clone();
    let f = Rc::new(f);
    Callback::from(move |e: E| {
        let v = value_of(e.as_ref());
        let f = f.clone();
        form.dispatch(Box::new(move |x: &mut Form| f(x, v)));
    })
}

fn errors_html(errs: &[&FieldError]) -> Html {
    html! {
        { for errs.iter().map(|e| html! { <p class="field-error" role="alert">{ &e.message }
            if e.pointer.matches('/').count() > 1 { <span class="hint">{ format!(" ({})", e.pointer) }</span> }
        </p> }) }
    }
}

#[function_component(NewQueuePage)]
pub fn new_queue_page() -> Html {
    let session = use_session();
    let api = use_api();
    let nav = use_navigator();
    let form = use_reducer(Form::default);
    if session.role() < Some(Role::Admin) {
        return html! { <Notice title="Admins only"><p>{ "Creating queues needs the admin role." }</p></Notice> };
    }

    let onsubmit = {
        let form = form.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if form.busy {
                return;
            }
            let req = match form.request() {
                Ok(r) => r,
                Err(errs) => {
                    form.dispatch(Box::new(move |f: &mut Form| {
                        f.errors = errs;
                        f.message = Some("Fix the marked inputs first.".into());
                    }));
                    return;
                }
            };
            let Some(api) = api.clone() else { return };
            let (form, nav) = (form.clone(), nav.clone());
            form.dispatch(Box::new(|f: &mut Form| {
                f.busy = true;
                f.errors.clear();
                f.message = None;
            }));
            wasm_bindgen_futures::spawn_local(async move {
                match queues::create(&api, &req).await {
                    Ok(q) => {
                        if let Some(nav) = nav {
                            nav.push(&Route::AdminQueue { id: q.id });
                        }
                    }
                    Err(e) => form.dispatch(Box::new(move |f: &mut Form| failed(f, e))),
                }
            });
        })
    };

    let switch_to = |mode: Mode| {
        let form = form.clone();
        Callback::from(move |_| {
            form.dispatch(Box::new(move |f: &mut Form| {
                if f.mode == mode {
                    return;
                }
                match mode {
                    Mode::Json => match f.schema() {
                        Ok(s) => {
                            f.json = serde_json::to_string_pretty(&s).unwrap_or_default();
                            f.mode = Mode::Json;
                            f.errors.clear();
                        }
                        Err(errs) => f.errors = errs,
                    },
                    Mode::Form => match serde_json::from_str::<LabelSchema>(&f.json) {
                        Ok(s) => {
                            f.instructions = s.instructions.clone();
                            f.fields = s.fields.iter().map(FieldDraft::from_field).collect();
                            f.mode = Mode::Form;
                            f.errors.clear();
                        }
                        Err(e) => {
                            f.errors = vec![FieldError::new("/schema", format!("not a valid schema: {e}"))];
                        }
                    },
                }
            }))
        })
    };

    let general: Vec<&FieldError> = form
        .errors
        .iter()
        .filter(|e| {
            let near_input = ["/name", "/description", "/overlap", "/lease_seconds", "/policy"]
                .contains(&e.pointer.as_str());
            let near_field = form.mode == Mode::Form && e.pointer.starts_with("/schema/fields/");
            !(near_input || near_field)
        })
        .collect();

    html! {
        <section class="new-queue">
            <div class="page-head">
                <h1>{ "New queue" }</h1>
                <Link<Route> to={Route::Admin} classes="button quiet">{ "Cancel" }</Link<Route>>
            </div>
            <form {onsubmit} novalidate=true>
                <div class="panel">
                    <div class="form-grid">
                        <div>
                            <label for="q-name">{ "Queue name" }</label>
                            <input id="q-name" type="text" value={form.name.clone()} autocomplete="off"
                                oninput={on_value::<InputEvent>(&form, |f, v| f.name = v)} />
                            { errors_html(&form.errors_at("/name")) }
                        </div>
                        <div>
                            <label for="q-overlap">{ "Labels per sample" }</label>
                            <input id="q-overlap" type="number" min="1" max="50" value={form.overlap.clone()}
                                oninput={on_value::<InputEvent>(&form, |f, v| f.overlap = v)} />
                            { errors_html(&form.errors_at("/overlap")) }
                        </div>
                        <div>
                            <label for="q-lease">{ "Lease (seconds)" }</label>
                            <input id="q-lease" type="number" min="10" max="86400" value={form.lease.clone()}
                                oninput={on_value::<InputEvent>(&form, |f, v| f.lease = v)} />
                            { errors_html(&form.errors_at("/lease_seconds")) }
                        </div>
                        <div>
                            <label for="q-policy">{ "Order" }</label>
                            <select id="q-policy" onchange={on_value::<Event>(&form, |f, v| {
                                f.policy = AssignmentPolicy::parse(&v).unwrap_or_default()
                            })}>
                                <option value="priority" selected={form.policy == AssignmentPolicy::Priority}>{ "By priority, then as added" }</option>
                                <option value="random" selected={form.policy == AssignmentPolicy::Random}>{ "By priority, then random" }</option>
                            </select>
                        </div>
                        <div class="wide">
                            <label for="q-description">{ "Description" }</label>
                            <input id="q-description" type="text" value={form.description.clone()}
                                oninput={on_value::<InputEvent>(&form, |f, v| f.description = v)} />
                            { errors_html(&form.errors_at("/description")) }
                        </div>
                    </div>
                </div>
                <div class="panel">
                    <h2>{ "Label schema" }</h2>
                    <div class="tabs" role="group" aria-label="Schema editor">
                        <button type="button" aria-pressed={(form.mode == Mode::Form).to_string()} onclick={switch_to(Mode::Form)}>{ "Form" }</button>
                        <button type="button" aria-pressed={(form.mode == Mode::Json).to_string()} onclick={switch_to(Mode::Json)}>{ "Raw JSON" }</button>
                    </div>
                    if form.mode == Mode::Json {
                        <label for="q-schema-json">{ "Schema (JSON)" }</label>
                        <textarea id="q-schema-json" class="mono" rows="18" spellcheck="false" value={form.json.clone()}
                            oninput={on_value::<InputEvent>(&form, |f, v| f.json = v)} />
                    } else {
                        { schema_form(&form) }
                    }
                </div>
                if !general.is_empty() || form.message.is_some() {
                    <Notice title="Not created yet">
                        if let Some(m) = &form.message { <p>{ m }</p> }
                        <ul class="errors-list">
                            { for general.iter().map(|e| html! { <li><code>{ &e.pointer }</code>{ " " }{ &e.message }</li> }) }
                        </ul>
                    </Notice>
                }
                <div class="actions">
                    <button type="submit" class="primary" disabled={form.busy}>{ "Create queue" }</button>
                </div>
            </form>
        </section>
    }
}

fn failed(f: &mut Form, e: ApiError) {
    f.busy = false;
    if e.code == "name_taken" {
        f.errors = vec![FieldError::new("/name", e.message)];
    } else if e.details.is_empty() {
        f.message = Some(describe(&e));
    } else {
        f.errors = e.details;
        f.message = Some("The server found problems; they are marked below.".into());
    }
}

fn schema_form(form: &UseReducerHandle<Form>) -> Html {
    let add = {
        let form = form.clone();
        Callback::from(move |_| form.dispatch(Box::new(|f: &mut Form| f.fields.push(FieldDraft::default()))))
    };
    html! {
        <>
            <div class="form-field">
                <label for="q-instructions">{ "Instructions for labelers" }</label>
                <textarea id="q-instructions" rows="2" value={form.instructions.clone()}
                    oninput={on_value::<InputEvent>(form, |f, v| f.instructions = v)} />
            </div>
            { for form.fields.iter().enumerate().map(|(i, d)| field_row(form, i, d)) }
            { errors_html(&form.errors_at("/schema/fields").into_iter().filter(|e| e.pointer == "/schema/fields").collect::<Vec<_>>()) }
            <button type="button" onclick={add}>{ "Add field" }</button>
        </>
    }
}

fn field_row(form: &UseReducerHandle<Form>, i: usize, d: &FieldDraft) -> Html {
    let id = |k: &str| format!("f{i}-{k}");
    let set = move |g: fn(&mut FieldDraft, String)| {
        on_value::<InputEvent>(form, move |f, v| {
            if let Some(d) = f.fields.get_mut(i) {
                g(d, v)
            }
        })
    };
    let change = move |g: fn(&mut FieldDraft, String)| {
        on_value::<Event>(form, move |f, v| {
            if let Some(d) = f.fields.get_mut(i) {
                g(d, v)
            }
        })
    };
    let remove = {
        let form = form.clone();
        Callback::from(move |_| {
            form.dispatch(Box::new(move |f: &mut Form| {
                if i < f.fields.len() {
                    f.fields.remove(i);
                }
            }))
        })
    };
    let up = {
        let form = form.clone();
        Callback::from(move |_| {
            form.dispatch(Box::new(move |f: &mut Form| {
                if i > 0 && i < f.fields.len() {
                    f.fields.swap(i - 1, i);
                }
            }))
        })
    };
    let by_field: BTreeMap<String, Vec<&FieldError>> =
        form.errors_at(&format!("/schema/fields/{i}")).into_iter().fold(BTreeMap::new(), |mut m, e| {
            let k = e.pointer.rsplit('/').next().unwrap_or_default().to_string();
            m.entry(k).or_default().push(e);
            m
        });
    let all_errs: Vec<&FieldError> = by_field.values().flatten().copied().collect();
    let options_label = if d.kind == "span" { "Labels (one per line)" } else { "Options (one per line)" };
    html! {
        <fieldset class="field-row" data-field-row={i.to_string()}>
            <legend>{ format!("Field {}", i + 1) }</legend>
            <div class="form-grid">
                <div>
                    <label for={id("name")}>{ "Name" }</label>
                    <input id={id("name")} type="text" value={d.name.clone()} placeholder="sentiment" autocomplete="off"
                        oninput={set(|d, v| d.name = v)} />
                </div>
                <div>
                    <label for={id("title")}>{ "Title" }</label>
                    <input id={id("title")} type="text" value={d.title.clone()} placeholder="Sentiment"
                        oninput={set(|d, v| d.title = v)} />
                </div>
                <div>
                    <label for={id("kind")}>{ "Kind" }</label>
                    <select id={id("kind")} onchange={change(|d, v| d.kind = v)}>
                        { for KINDS.iter().map(|(k, t)| html! { <option value={*k} selected={d.kind == *k}>{ *t }</option> }) }
                    </select>
                </div>
                <div>
                    <label class="check"><input type="checkbox" checked={d.required}
                        onchange={change(|d, v| d.required = v == "true")} />{ "Required" }</label>
                </div>
                if matches!(d.kind.as_str(), "single_choice" | "multi_choice" | "span") {
                    <div class="wide">
                        <label for={id("options")}>{ options_label }</label>
                        <textarea id={id("options")} rows="3" value={d.options.clone()} oninput={set(|d, v| d.options = v)} />
                    </div>
                }
                if d.kind == "span" {
                    <div>
                        <label for={id("source")}>{ "Text to annotate (payload key)" }</label>
                        <input id={id("source")} type="text" value={d.source.clone()} oninput={set(|d, v| d.source = v)} />
                    </div>
                    <div>
                        <label class="check"><input type="checkbox" checked={d.allow_overlap}
                            onchange={change(|d, v| d.allow_overlap = v == "true")} />{ "Spans may overlap" }</label>
                    </div>
                }
                if d.kind == "number" {
                    <div><label for={id("min")}>{ "Minimum" }</label>
                        <input id={id("min")} type="number" step="any" value={d.min.clone()} oninput={set(|d, v| d.min = v)} /></div>
                    <div><label for={id("max")}>{ "Maximum" }</label>
                        <input id={id("max")} type="number" step="any" value={d.max.clone()} oninput={set(|d, v| d.max = v)} /></div>
                    <div><label for={id("step")}>{ "Step" }</label>
                        <input id={id("step")} type="number" step="any" value={d.step.clone()} oninput={set(|d, v| d.step = v)} /></div>
                }
                if d.kind == "text" {
                    <div><label for={id("max_len")}>{ "Max length" }</label>
                        <input id={id("max_len")} type="number" min="1" value={d.max_len.clone()} oninput={set(|d, v| d.max_len = v)} /></div>
                    <div><label for={id("pattern")}>{ "Pattern (regex)" }</label>
                        <input id={id("pattern")} type="text" value={d.pattern.clone()} oninput={set(|d, v| d.pattern = v)} /></div>
                    <div><label class="check"><input type="checkbox" checked={d.multiline}
                        onchange={change(|d, v| d.multiline = v == "true")} />{ "Several lines" }</label></div>
                }
                if d.kind == "rating" {
                    <div><label for={id("rmax")}>{ "Highest rating" }</label>
                        <input id={id("rmax")} type="number" min="2" max="10" value={d.rating_max.clone()}
                            oninput={set(|d, v| d.rating_max = v)} /></div>
                }
            </div>
            { errors_html(&all_errs) }
            <div class="actions">
                if i > 0 { <button type="button" class="quiet" onclick={up}>{ "Move up" }</button> }
                <button type="button" class="quiet" onclick={remove}>{ "Remove field" }</button>
            </div>
        </fieldset>
    }
}
