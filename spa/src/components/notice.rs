//! Plain messages: problems (with what to do next) and calm notes.

use yew::prelude::*;

use crate::api::{ApiError, ErrorKind};

#[derive(Properties, PartialEq)]
pub struct NoticeProps {
    #[prop_or_default]
    pub title: Option<AttrValue>,
    pub children: Children,
    /// `error` (default), `warn` or `info`.
    #[prop_or(AttrValue::Static("error"))]
    pub tone: AttrValue,
}

#[function_component(Notice)]
pub fn notice(p: &NoticeProps) -> Html {
    let role = if p.tone == "info" { "status" } else { "alert" };
    html! {
        <div class={classes!("notice", p.tone.to_string())} {role}>
            if let Some(t) = &p.title { <strong>{ t }</strong> }
            { p.children.clone() }
        </div>
    }
}

/// A sentence for an API failure that says what happened in the user's terms.
pub fn describe(e: &ApiError) -> String {
    match e.kind() {
        ErrorKind::Network => "The server could not be reached. Check the connection and retry.".into(),
        ErrorKind::Unauthorized => "Your session has expired. Sign in again, then retry.".into(),
        ErrorKind::Forbidden => format!("Your role does not allow this: {}", e.message),
        ErrorKind::NotFound => format!("Not found: {}", e.message),
        ErrorKind::Unavailable => {
            format!("The server is busy or unavailable ({}). Retry shortly.", e.message)
        }
        _ => e.message.clone(),
    }
}

#[derive(Properties, PartialEq)]
pub struct ApiProblemProps {
    pub error: ApiError,
    #[prop_or_default]
    pub on_retry: Option<Callback<()>>,
}

/// An API failure with an optional Retry button.
#[function_component(ApiProblem)]
pub fn api_problem(p: &ApiProblemProps) -> Html {
    html! {
        <Notice>
            <p>{ describe(&p.error) }</p>
            if !p.error.details.is_empty() {
                <ul>
                    { for p.error.details.iter().map(|d| html! { <li><code>{ &d.pointer }</code>{ " " }{ &d.message }</li> }) }
                </ul>
            }
            if let Some(r) = &p.on_retry {
                <button type="button" onclick={r.reform(|_| ())}>{ "Retry" }</button>
            }
        </Notice>
    }
}

/// A quiet "loading" line (no spinner: most answers come in a few milliseconds).
#[function_component(Loading)]
pub fn loading() -> Html {
    html! { <p class="loading" role="status">{ "Loading…" }</p> }
}
