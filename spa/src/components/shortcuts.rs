//! The shortcut sheet (`?`).

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ShortcutsProps {
    pub on_close: Callback<()>,
}

const KEYS: &[(&str, &str)] = &[
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
                <p class="hint">{ "Shortcuts pause while you type in a text box; Esc leaves it." }</p>
                <table class="keys">
                    <tbody>
                        { for KEYS.iter().map(|(k, what)| html! {
                            <tr><th scope="row"><kbd>{ *k }</kbd></th><td>{ *what }</td></tr>
                        }) }
                    </tbody>
                </table>
                <button type="button" ref={close} onclick={p.on_close.reform(|_| ())}>{ "Close" }</button>
            </div>
        </div>
    }
}
