//! The shortcut sheet (`?`), the keys of each page, and the window listener of the pages other than labeling.
//!
//! Conventions: one letter per action, the same letter for the same thing on every page (`Q` the quality
//! report, `R` the review page, `G` the gold section), `?` shows or hides the sheet, `Esc` closes it. Keys pause while a text box has
//! the focus and leave Ctrl/Alt/⌘ combinations to the browser. The labeling page reads its own keys
//! (`pages::label`); its list is [`LABEL_KEYS`], and no letter below means something else there.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_events::{EventListener, EventListenerOptions};
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement, KeyboardEvent};
use yew::prelude::*;

use crate::session::use_session;

/// The keys of one page: (key, what it does).
pub type Keys = &'static [(&'static str, &'static str)];

#[derive(Properties, PartialEq)]
pub struct ShortcutsProps {
    pub on_close: Callback<()>,
    /// The page's keys (the labeling page's by default).
    #[prop_or(LABEL_KEYS)]
    pub keys: Keys,
    #[prop_or(AttrValue::Static("Shortcuts pause while you type in a text box; Esc leaves it."))]
    pub hint: AttrValue,
}

/// The labeling page.
pub const LABEL_KEYS: Keys = &[
    (
        "1 … 9, 0",
        "Pick option 1…10 of the active field (toggle for multi-choice; rate; Yes/No; tag the selected text)",
    ),
    ("Y / N", "Yes / No on a yes-or-no field"),
    ("↑ / ↓", "Previous / next field"),
    ("Enter", "Submit the label (also from a text box)"),
    ("S", "Skip this sample, with a reason"),
    ("Esc", "Leave a text box; otherwise clear this sample's answers"),
    ("← / →", "Spans: select the previous / next word"),
    ("Shift + ← / →", "Spans: shrink / grow the selection by a word"),
    ("Ctrl + ← / →", "Spans: move the selection's end by one character"),
    ("Ctrl + Shift + ← / →", "Spans: move the selection's start by one character"),
    ("Delete / Backspace", "Spans: remove the spans under the selection"),
    ("?", "Show or hide this sheet"),
];

/// Said on the sheet of the pages that use [`use_page_keys`].
pub const PAGE_HINT: &str = "Shortcuts pause while you type in a text box.";

/// The review page.
pub const REVIEW_KEYS: Keys = &[
    ("Q", "Open the queue's quality report (agreement per field and per labeler)"),
    ("?", "Show or hide this sheet"),
    ("Esc", "Close this sheet"),
];

/// The admin page of a queue.
pub const ADMIN_QUEUE_KEYS: Keys = &[
    ("Q", "Open the queue's quality report"),
    ("R", "Review the queue's labels"),
    ("G", "Jump to the Gold section (check items: rate, accuracy floor, exempt labelers, adding items)"),
    ("Tab", "After G: on through the Gold fields; Enter in \"Labeler to exempt\" adds the name"),
    ("?", "Show or hide this sheet"),
    ("Esc", "Close this sheet"),
];

/// The quality report of a queue.
pub const QUALITY_KEYS: Keys = &[
    ("Tab", "Move to the next field row or column header"),
    ("Enter / Space", "On a field: show or hide its measures, pairs and matrix; on a header: sort by it"),
    ("R", "Back to reviewing the queue's labels"),
    ("?", "Show or hide this sheet"),
    ("Esc", "Close this sheet; otherwise hide every field's details"),
];

/// The sheet's own keys on a page using [`use_page_keys`]: while it is open only `Esc` and `?` count (both
/// close it); while it is closed `?` opens it. `None`: the key is the page's to use; else whether it was used.
pub fn sheet_key(key: &str, open: &UseStateHandle<bool>) -> Option<bool> {
    if **open {
        let close = key == "Escape" || key == "?";
        if close {
            open.set(false);
        }
        return Some(close);
    }
    (key == "?").then(|| {
        open.set(true);
        true
    })
}

/// Whether an element takes typed text (shortcuts stay off there).
pub fn typing_target(el: &Element) -> bool {
    match el.tag_name().to_ascii_lowercase().as_str() {
        "textarea" | "select" => true,
        "input" => !matches!(
            el.get_attribute("type").unwrap_or_default().as_str(),
            "button" | "checkbox" | "radio" | "submit" | "reset"
        ),
        _ => el.dyn_ref::<HtmlElement>().is_some_and(|h| h.is_content_editable()),
    }
}

/// Reads the keys of a page from one window listener, so they work wherever the focus is, except while typing
/// in a text box, with Ctrl/Alt/⌘ held, or while the session has expired (its dialog covers the page).
/// `on_key` gets the key (`KeyboardEvent.key`) and answers whether it used it (then its default is cancelled).
#[hook]
pub fn use_page_keys(on_key: Callback<String, bool>) {
    let session = use_session();
    let latest = use_mut_ref(|| (on_key.clone(), false));
    *latest.borrow_mut() = (on_key, session.is_active());
    use_effect_with((), move |_| {
        let latest: Rc<RefCell<(Callback<String, bool>, bool)>> = latest;
        let listener = web_sys::window().map(|win| {
            // Not passive: a used key cancels the browser's default (scrolling on Space, find-as-you-type).
            let opts = EventListenerOptions::enable_prevent_default();
            EventListener::new_with_options(&win, "keydown", opts, move |ev| {
                let Some(e) = ev.dyn_ref::<KeyboardEvent>() else { return };
                if e.default_prevented() || e.is_composing() || e.ctrl_key() || e.meta_key() || e.alt_key() {
                    return;
                }
                let target = e.target().and_then(|t| t.dyn_into::<Element>().ok());
                if target.as_ref().is_some_and(typing_target) {
                    return;
                }
                let (on_key, active) = latest.borrow().clone();
                if active && on_key.emit(e.key()) {
                    e.prevent_default();
                }
            })
        });
        move || drop(listener)
    });
}

#[function_component(Shortcuts)]
pub fn shortcuts(p: &ShortcutsProps) -> Html {
    let close = use_node_ref();
    {
        let close = close.clone();
        use_effect_with((), move |_| {
            if let Some(b) = close.cast::<web_sys::HtmlElement>() {
                let _ = b.focus();
            }
        });
    }
    html! {
        <div class="overlay">
            <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="shortcuts-title">
                <h2 id="shortcuts-title">{ "Keyboard shortcuts" }</h2>
                <p class="hint">{ p.hint.clone() }</p>
                <table class="keys">
                    <tbody>
                        { for p.keys.iter().map(|(k, what)| html! {
                            <tr><th scope="row"><kbd>{ *k }</kbd></th><td>{ *what }</td></tr>
                        }) }
                    </tbody>
                </table>
                <button type="button" ref={close} onclick={p.on_close.reform(|_| ())}>{ "Close" }</button>
            </div>
        </div>
    }
}
