//! A text with its tagged spans highlighted and the current selection marked: the surface for span fields.
//! Select with the mouse (a drag selects a range, a click selects the word or the tagged span under it) or
//! with the keyboard (the page moves the cursor). Offsets are chars, as the server counts them; each
//! rendered segment carries its char offset in `data-o`, so a DOM selection maps back exactly.

use std::rc::Rc;

use anvil_types::schema::Span;
use wasm_bindgen::JsCast;
use web_sys::{Element, Node};
use yew::prelude::*;

use crate::components::fields::Edit;
use crate::model::{Cursor, slice_chars, utf16_to_chars, words};

#[derive(Properties, PartialEq)]
pub struct SpanTextProps {
    pub field: usize,
    pub text: Rc<str>,
    pub spans: Vec<Span>,
    pub labels: Vec<String>,
    pub cursor: Option<Cursor>,
    pub active: bool,
    pub on_edit: Callback<Edit>,
    #[prop_or_default]
    pub large: bool,
}

struct Segment {
    start: usize,
    end: usize,
    /// Indexes (into the props' spans) of the spans covering this segment.
    covering: Vec<usize>,
    selected: bool,
}

fn segments(len: usize, spans: &[Span], cursor: Option<(usize, usize)>) -> Vec<Segment> {
    let mut points = vec![0, len];
    for s in spans {
        points.push((s.start as usize).min(len));
        points.push((s.end as usize).min(len));
    }
    if let Some((a, b)) = cursor {
        points.push(a.min(len));
        points.push(b.min(len));
    }
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| {
            let (start, end) = (w[0], w[1]);
            Segment {
                start,
                end,
                covering: spans
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| (s.start as usize) <= start && (s.end as usize) >= end)
                    .map(|(i, _)| i)
                    .collect(),
                selected: cursor.is_some_and(|(a, b)| a <= start && end <= b && a < b),
            }
        })
        .collect()
}

/// The char offset of a DOM selection point inside the rendered text.
fn char_offset(node: &Node, offset: u32, text_len: usize) -> Option<usize> {
    let at = |el: &Element| -> Option<(usize, String)> {
        let seg = el.closest("[data-o]").ok()??;
        let o = seg.get_attribute("data-o")?.parse().ok()?;
        Some((o, seg.text_content().unwrap_or_default()))
    };
    if node.node_type() == Node::TEXT_NODE {
        let (o, seg_text) = at(&node.parent_element()?)?;
        return Some(o + utf16_to_chars(&seg_text, offset));
    }
    let el: &Element = node.dyn_ref()?;
    if let Some((o, seg_text)) = el.get_attribute("data-o").and_then(|_| at(el)) {
        return Some(if offset == 0 { o } else { o + seg_text.chars().count() });
    }
    // The container itself: `offset` counts its children.
    let children = el.children();
    match children.item(offset) {
        Some(child) => at(&child).map(|(o, _)| o),
        None => Some(text_len),
    }
}

#[function_component(SpanText)]
pub fn span_text(p: &SpanTextProps) -> Html {
    let container = use_node_ref();
    let text: &str = &p.text;
    let len = text.chars().count();
    let cursor = p.cursor.map(|c| c.range());
    let onmouseup = {
        let container = container.clone();
        let on_edit = p.on_edit.clone();
        let field = p.field;
        let text = p.text.clone();
        let spans = p.spans.clone();
        Callback::from(move |_: MouseEvent| {
            let (Some(root), Some(win)) = (container.get(), web_sys::window()) else {
                return;
            };
            let Ok(Some(sel)) = win.get_selection() else {
                return;
            };
            let len = text.chars().count();
            let point = |n: Option<Node>, off: u32| -> Option<usize> {
                let n = n?;
                root.contains(Some(&n)).then(|| char_offset(&n, off, len))?
            };
            let a = point(sel.anchor_node(), sel.anchor_offset());
            let f = point(sel.focus_node(), sel.focus_offset());
            let range = match (a, f) {
                (Some(a), Some(f)) if a != f => {
                    // Trim the spaces a sloppy drag picks up at either end.
                    let (mut s, mut e) = (a.min(f), a.max(f));
                    let chars: Vec<char> = text.chars().collect();
                    while s < e && chars[s].is_whitespace() {
                        s += 1;
                    }
                    while e > s && chars[e - 1].is_whitespace() {
                        e -= 1;
                    }
                    (s < e).then_some((s, e))
                }
                (Some(a), _) => spans
                    .iter()
                    .find(|s| (s.start as usize) <= a && a < s.end as usize)
                    .map(|s| (s.start as usize, s.end as usize))
                    .or_else(|| words(&text).into_iter().find(|&(s, e)| s <= a && a < e)),
                _ => None,
            };
            if let Some((s, e)) = range {
                let _ = sel.remove_all_ranges();
                on_edit.emit(Edit::SpanSelect(field, s, e));
            } else {
                on_edit.emit(Edit::Activate(field));
            }
        })
    };
    let class = classes!("span-text", p.large.then_some("large"), p.active.then_some("active"));
    html! {
        <div {class} ref={container} {onmouseup} data-span-field={p.field.to_string()}>
            { for segments(len, &p.spans, cursor).into_iter().map(|seg| {
                let chunk = slice_chars(text, seg.start, seg.end);
                let sel = seg.selected.then_some("sel");
                if let Some(&first) = seg.covering.first() {
                    let s = &p.spans[first];
                    let idx = p.labels.iter().position(|l| *l == s.label).unwrap_or(0);
                    let ends = seg.covering.iter().any(|&i| p.spans[i].end as usize == seg.end);
                    let label = seg.covering.iter()
                        .filter(|&&i| p.spans[i].end as usize == seg.end)
                        .map(|&i| p.spans[i].label.as_str()).collect::<Vec<_>>().join(" ");
                    html! {
                        <mark class={classes!("tag", format!("tag-{}", idx % 6), ends.then_some("tag-end"), sel,
                                (seg.covering.len() > 1).then_some("multi"))}
                            data-o={seg.start.to_string()} data-label={label}>{ chunk }</mark>
                    }
                } else {
                    html! { <span class={classes!(sel)} data-o={seg.start.to_string()}>{ chunk }</span> }
                }
            }) }
        </div>
    }
}
