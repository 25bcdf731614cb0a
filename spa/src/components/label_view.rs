//! A submitted label, read-only: one line per schema field.

use std::collections::HashSet;
use std::rc::Rc;

use anvil_types::FieldKind;
use serde_json::Value;
use yew::prelude::*;

use crate::model::{FieldValue, Kind, Schema, slice_chars, span_source};

#[derive(Properties, PartialEq)]
pub struct LabelViewProps {
    pub schema: Rc<Schema>,
    pub payload: Value,
    /// The sample's payload, to quote the text of spans.
    #[prop_or_default]
    pub sample: Option<Rc<Value>>,
    /// Fields on which the labels of this sample disagree.
    #[prop_or_default]
    pub differs: Rc<HashSet<String>>,
}

#[function_component(LabelView)]
pub fn label_view(p: &LabelViewProps) -> Html {
    let mut names: Vec<&str> = p.schema.fields.iter().map(|f| f.name.as_str()).collect();
    // Keys the schema does not know (an older version) still show.
    if let Some(o) = p.payload.as_object() {
        for k in o.keys() {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    html! {
        <dl class="label-view">
            { for names.into_iter().map(|name| {
                let spec = p.schema.fields.iter().find(|f| f.name == name);
                let title = spec.map(|f| f.title.clone()).unwrap_or_else(|| name.to_string());
                let raw = p.payload.get(name);
                let shown = match spec {
                    Some(f) => show(&f.kind, raw, p.sample.as_deref()),
                    None => html! { <code>{ raw.map(Value::to_string).unwrap_or_default() }</code> },
                };
                let class = classes!(p.differs.contains(name).then_some("differs"));
                html! {
                    <div {class} data-field={name.to_string()}>
                        <dt>{ title }</dt>
                        <dd>{ shown }</dd>
                    </div>
                }
            }) }
        </dl>
    }
}

fn show(kind: &Kind, raw: Option<&Value>, sample: Option<&Value>) -> Html {
    let none = || html! { <span class="none">{ "—" }</span> };
    match FieldValue::from_json(kind, raw) {
        FieldValue::Choice(Some(c)) => html! { c },
        FieldValue::Multi(v) if !v.is_empty() => html! { v.join(", ") },
        FieldValue::Multi(_) => html! { <span class="none">{ "none" }</span> },
        FieldValue::Bool(Some(b)) => html! { { if b { "yes" } else { "no" } } },
        FieldValue::Number(s) | FieldValue::Text(s) | FieldValue::Date(s) | FieldValue::Json(s)
            if !s.is_empty() =>
        {
            html! { s }
        }
        FieldValue::Rating(Some(r)) => {
            let max = match kind {
                Kind::Known(FieldKind::Rating { max }) => *max,
                _ => r,
            };
            html! { <span aria-label={format!("{r} of {max}")}>{ format!("{}{} ", "★".repeat(r as usize),
            "☆".repeat(max.saturating_sub(r) as usize)) }{ format!("{r}/{max}") }</span> }
        }
        FieldValue::Spans(spans) if !spans.is_empty() => {
            let text = match kind {
                Kind::Known(FieldKind::Span { source, .. }) => sample.and_then(|s| span_source(s, source)),
                _ => None,
            };
            html! {
                <ul class="span-list">
                    { for spans.iter().map(|s| html! {
                        <li>
                            <span class="tag-chip">{ &s.label }</span>
                            <q>{ text.map(|t| slice_chars(t, s.start as usize, s.end as usize))
                                .unwrap_or_else(|| format!("{}–{}", s.start, s.end)) }</q>
                        </li>
                    }) }
                </ul>
            }
        }
        FieldValue::Spans(_) => html! { <span class="none">{ "no spans" }</span> },
        _ => none(),
    }
}
