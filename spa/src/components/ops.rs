//! The tenant's background work at a glance (`GET /v1/admin/ops/summary`): jobs waiting, running, failing or
//! dead, leases past their expiry, exports being written.

use anvil_types::OpsSummary;
use yew::prelude::*;

use crate::api::{ApiError, ops};
use crate::components::notice::{ApiProblem, Loading};
use crate::session::use_api;

/// `0 s`, `42 s`, `3 min`, `2 h 5 min`.
fn age(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[function_component(OpsPanel)]
pub fn ops_panel() -> Html {
    let api = use_api();
    let summary = use_state(|| None::<Result<OpsSummary, ApiError>>);
    let refresh = use_state(|| 0u32);
    {
        let summary = summary.clone();
        use_effect_with((api.clone(), *refresh), move |(api, _)| {
            if let Some(api) = api.clone() {
                wasm_bindgen_futures::spawn_local(async move { summary.set(Some(ops::summary(&api).await)) });
            }
        });
    }
    let reload = {
        let refresh = refresh.clone();
        Callback::from(move |_: ()| refresh.set(*refresh + 1))
    };
    let body = match &*summary {
        None => html! { <Loading /> },
        Some(Err(e)) => html! { <ApiProblem error={e.clone()} on_retry={reload.clone()} /> },
        Some(Ok(s)) => {
            let cards = [
                ("Jobs waiting", "pending", s.pending_jobs.to_string(), false),
                ("Ready to run", "available", s.available_jobs.to_string(), false),
                ("Running", "running", s.running_jobs.to_string(), false),
                (
                    "Oldest waiting",
                    "oldest",
                    age(s.oldest_pending_age_secs),
                    s.oldest_pending_age_secs >= 300,
                ),
                ("Retrying", "failed", s.failed_jobs.to_string(), s.failed_jobs > 0),
                ("Gave up", "dead", s.dead_jobs.to_string(), s.dead_jobs > 0),
                ("Expired leases", "expired-leases", s.expired_leases.to_string(), false),
                ("Exports running", "exports-running", s.exports_running.to_string(), false),
            ];
            html! {
                <dl class="cards">
                    { for cards.iter().map(|(k, key, v, warn)| html! {
                        <div data-ops={*key} class={classes!(warn.then_some("warn"))}><dt>{ *k }</dt><dd>{ v }</dd></div>
                    }) }
                </dl>
            }
        }
    };
    html! {
        <section class="panel ops" data-section="ops" aria-labelledby="ops-title">
            <div class="page-head">
                <h2 id="ops-title">{ "Operations" }</h2>
                <button type="button" class="quiet" onclick={reload.reform(|_| ())}>{ "Refresh" }</button>
            </div>
            <p class="hint">{ "Background jobs of this tenant: exports, imports and lease sweeps." }</p>
            { body }
        </section>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_plainly() {
        assert_eq!(super::age(0), "0 s");
        assert_eq!(super::age(59), "59 s");
        assert_eq!(super::age(180), "3 min");
        assert_eq!(super::age(7500), "2 h 5 min");
    }
}
