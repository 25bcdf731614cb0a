//! The labeling form's fields: one component per field kind, all behind [`Field`]. Fields never hold state
//! of their own; every change is an [`Edit`] sent to the page, which owns the values (and the keyboard).

use std::rc::Rc;

use anvil_types::FieldKind;
use anvil_types::schema::Span;
use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::components::span_text::SpanText;
use crate::model::{Cursor, FieldSpec, FieldValue, Kind, slice_chars};

/// A change to the form, from a click, a key or typing.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Replace a typed field's value.
    Set(usize, FieldValue),
    /// Option `n` (0-based) of a field: pick a choice, toggle a multi-choice, answer yes/no, rate n+1,
    /// or tag the current span selection with label n.
    Pick(usize, usize),
    /// Make a field the active one (it takes the number keys).
    Activate(usize),
    /// A range of a span field's text selected with the mouse (chars).
    SpanSelect(usize, usize, usize),
    /// Remove span `n` of a span field.
    SpanRemove(usize, usize),
}

/// The key that picks option `i` (0-based): 1..9, then 0 for the tenth.
pub fn option_key(i: usize) -> Option<char> {
    match i {
        0..=8 => char::from_digit(i as u32 + 1, 10),
        9 => Some('0'),
        _ => None,
    }
}

#[derive(Properties, PartialEq)]
pub struct FieldProps {
    pub index: usize,
    pub spec: Rc<FieldSpec>,
    pub value: FieldValue,
    pub active: bool,
    #[prop_or_default]
    pub error: Option<String>,
    /// The text a span field annotates.
    #[prop_or_default]
    pub span_text: Option<Rc<str>>,
    /// Whether that text is shown inside the field (when the sample view above does not show it).
    #[prop_or_default]
    pub inline_canvas: bool,
    /// The span field's keyboard selection.
    #[prop_or_default]
    pub cursor: Option<Cursor>,
    pub on_edit: Callback<Edit>,
}

#[function_component(Field)]
pub fn field(p: &FieldProps) -> Html {
    let i = p.index;
    let title_id = format!("field-{i}-title");
    let activate = {
        let on_edit = p.on_edit.clone();
        let active = p.active;
        Callback::from(move |_: ()| {
            if !active {
                on_edit.emit(Edit::Activate(i))
            }
        })
    };
    let body = match (&p.spec.kind, &p.value) {
        (Kind::Known(FieldKind::SingleChoice { options }), FieldValue::Choice(v)) => {
            choice_buttons(i, options, |o| v.as_deref() == Some(o), &p.on_edit, &title_id, "radiogroup")
        }
        (Kind::Known(FieldKind::MultiChoice { options, .. }), FieldValue::Multi(v)) => {
            choice_buttons(i, options, |o| v.iter().any(|x| x == o), &p.on_edit, &title_id, "group")
        }
        (Kind::Known(FieldKind::Boolean), FieldValue::Bool(v)) => {
            let opts = ["Yes".to_string(), "No".to_string()];
            choice_buttons(i, &opts, |o| *v == Some(o == "Yes"), &p.on_edit, &title_id, "radiogroup")
        }
        (Kind::Known(FieldKind::Rating { max }), FieldValue::Rating(v)) => {
            rating(i, *max, *v, &p.on_edit, &title_id)
        }
        (Kind::Known(FieldKind::Number { min, max, step }), FieldValue::Number(s)) => {
            let on_edit = p.on_edit.clone();
            let oninput = Callback::from(move |e: InputEvent| {
                let el: HtmlInputElement = e.target_unchecked_into();
                on_edit.emit(Edit::Set(i, FieldValue::Number(el.value())));
            });
            html! {
                <input id={format!("field-{i}-input")} type="number" class="typed" value={s.clone()} {oninput}
                    min={min.map(|m| m.to_string())} max={max.map(|m| m.to_string())}
                    step={step.map(|m| m.to_string()).unwrap_or_else(|| "any".into())}
                    aria-labelledby={title_id.clone()} />
            }
        }
        (Kind::Known(FieldKind::Text { max_len, multiline, .. }), FieldValue::Text(s)) => {
            let on_edit = p.on_edit.clone();
            let maxlength = max_len.map(|m| m.to_string());
            if *multiline {
                let oninput = Callback::from(move |e: InputEvent| {
                    let el: HtmlTextAreaElement = e.target_unchecked_into();
                    on_edit.emit(Edit::Set(i, FieldValue::Text(el.value())));
                });
                html! { <textarea id={format!("field-{i}-input")} class="typed" rows="3" value={s.clone()} {oninput}
                {maxlength} aria-labelledby={title_id.clone()} /> }
            } else {
                let oninput = Callback::from(move |e: InputEvent| {
                    let el: HtmlInputElement = e.target_unchecked_into();
                    on_edit.emit(Edit::Set(i, FieldValue::Text(el.value())));
                });
                html! { <input id={format!("field-{i}-input")} type="text" class="typed" value={s.clone()} {oninput}
                {maxlength} autocomplete="off" aria-labelledby={title_id.clone()} /> }
            }
        }
        (Kind::Known(FieldKind::Date), FieldValue::Date(s)) => {
            let on_edit = p.on_edit.clone();
            let oninput = Callback::from(move |e: InputEvent| {
                let el: HtmlInputElement = e.target_unchecked_into();
                on_edit.emit(Edit::Set(i, FieldValue::Date(el.value())));
            });
            html! { <input id={format!("field-{i}-input")} type="date" class="typed" value={s.clone()} {oninput}
            aria-labelledby={title_id.clone()} /> }
        }
        (Kind::Known(FieldKind::Span { labels, .. }), FieldValue::Spans(spans)) => {
            let canvas = match (&p.span_text, p.inline_canvas) {
                (Some(t), true) => html! {
                    <SpanText field={i} text={t.clone()} spans={spans.clone()} labels={labels.clone()}
                        cursor={p.cursor} active={p.active} on_edit={p.on_edit.clone()} />
                },
                _ => html! {},
            };
            span_field(i, labels, spans, p.span_text.as_deref(), canvas, &p.on_edit, &title_id)
        }
        (_, FieldValue::Json(s)) => {
            let on_edit = p.on_edit.clone();
            let oninput = Callback::from(move |e: InputEvent| {
                let el: HtmlTextAreaElement = e.target_unchecked_into();
                on_edit.emit(Edit::Set(i, FieldValue::Json(el.value())));
            });
            html! {
                <>
                    <p class="hint">{ format!("This field's kind ({}) has no editor here yet: enter its value as JSON.",
                        p.spec.kind_name()) }</p>
                    <textarea id={format!("field-{i}-input")} class="typed mono" rows="4" value={s.clone()} {oninput}
                        spellcheck="false" aria-labelledby={title_id.clone()} />
                </>
            }
        }
        _ => html! { <p class="hint">{ "This field cannot be shown." }</p> },
    };
    let class = classes!("field", p.active.then_some("active"), p.error.is_some().then_some("invalid"));
    html! {
        <section {class} data-field-index={i.to_string()} data-field={p.spec.name.clone()}
            onmousedown={activate.reform(|_: MouseEvent| ())} onfocusin={activate.reform(|_: FocusEvent| ())}
            role="group" aria-labelledby={title_id.clone()}>
            <h3 id={title_id}>
                { &p.spec.title }
                if !p.spec.required { <span class="optional">{ " optional" }</span> }
            </h3>
            { body }
            if let Some(e) = &p.error {
                <p class="field-error" role="alert">{ e }</p>
            }
        </section>
    }
}

fn choice_buttons(
    i: usize,
    options: &[String],
    selected: impl Fn(&str) -> bool,
    on_edit: &Callback<Edit>,
    title_id: &str,
    role: &'static str,
) -> Html {
    html! {
        <div class="options" {role} aria-labelledby={title_id.to_string()}>
            { for options.iter().enumerate().map(|(n, o)| {
                let on = selected(o);
                let on_edit = on_edit.clone();
                let onclick = Callback::from(move |_| on_edit.emit(Edit::Pick(i, n)));
                html! {
                    <button type="button" class={classes!("option", on.then_some("on"))} aria-pressed={on.to_string()}
                        {onclick}>
                        if let Some(k) = option_key(n) { <kbd>{ k }</kbd> }
                        { o }
                    </button>
                }
            }) }
        </div>
    }
}

fn rating(i: usize, max: u32, value: Option<u32>, on_edit: &Callback<Edit>, title_id: &str) -> Html {
    html! {
        <div class="options rating" role="radiogroup" aria-labelledby={title_id.to_string()}>
            { for (1..=max).map(|r| {
                let on = value.is_some_and(|v| r <= v);
                let on_edit = on_edit.clone();
                let onclick = Callback::from(move |_| on_edit.emit(Edit::Pick(i, r as usize - 1)));
                html! {
                    <button type="button" class={classes!("option", "star", on.then_some("on"))}
                        aria-pressed={(value == Some(r)).to_string()} aria-label={format!("{r} of {max}")} {onclick}>
                        <span aria-hidden="true">{ if on { "★" } else { "☆" } }</span>
                        if let Some(k) = option_key(r as usize - 1) { <kbd>{ k }</kbd> }
                    </button>
                }
            }) }
        </div>
    }
}

fn span_field(
    i: usize,
    labels: &[String],
    spans: &[Span],
    text: Option<&str>,
    canvas: Html,
    on_edit: &Callback<Edit>,
    title_id: &str,
) -> Html {
    html! {
        <>
            <div class="options" role="group" aria-labelledby={title_id.to_string()}>
                { for labels.iter().enumerate().map(|(n, l)| {
                    let on_edit = on_edit.clone();
                    let onclick = Callback::from(move |_| on_edit.emit(Edit::Pick(i, n)));
                    html! {
                        <button type="button" class={classes!("option", "tag-button", format!("tag-{}", n % 6))} {onclick}
                            title="Tag the selected text">
                            if let Some(k) = option_key(n) { <kbd>{ k }</kbd> }
                            { l }
                        </button>
                    }
                }) }
            </div>
            { canvas }
            if spans.is_empty() {
                <p class="hint">{ "No spans yet. Select text, then press a label's number." }</p>
            } else {
                <ul class="span-list">
                    { for spans.iter().enumerate().map(|(n, s)| {
                        let on_edit = on_edit.clone();
                        let onclick = Callback::from(move |_| on_edit.emit(Edit::SpanRemove(i, n)));
                        let idx = labels.iter().position(|l| *l == s.label).unwrap_or(0);
                        let quoted = text.map(|t| slice_chars(t, s.start as usize, s.end as usize))
                            .unwrap_or_else(|| format!("{}–{}", s.start, s.end));
                        html! {
                            <li>
                                <span class={classes!("tag-chip", format!("tag-{}", idx % 6))}>{ &s.label }</span>
                                <q>{ quoted }</q>
                                <button type="button" class="link" {onclick}
                                    aria-label={format!("Remove span {} {}", s.label, n + 1)}>{ "remove" }</button>
                            </li>
                        }
                    }) }
                </ul>
            }
        </>
    }
}
