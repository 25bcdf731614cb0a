//! A queue's progress (`GET /v1/queues/{id}/stats`).

use anvil_types::QueueStats;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct ProgressProps {
    pub done: i64,
    pub total: i64,
    pub label: AttrValue,
}

/// A progress bar with its numbers in words.
#[function_component(Progress)]
pub fn progress(p: &ProgressProps) -> Html {
    let pct = if p.total > 0 { p.done * 100 / p.total } else { 0 };
    html! {
        <div class="progress">
            <progress value={p.done.to_string()} max={p.total.max(1).to_string()} aria-label={p.label.clone()}></progress>
            <span>{ format!("{} of {} {} ({pct}%)", p.done, p.total, p.label) }</span>
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct StatsProps {
    pub stats: QueueStats,
}

#[function_component(StatsPanel)]
pub fn stats_panel(p: &StatsProps) -> Html {
    let s = &p.stats;
    let cards = [
        ("Samples", s.total_samples),
        ("Complete", s.completed_samples),
        ("Remaining", s.remaining_samples),
        ("Labels", s.submitted),
        ("Being labeled", s.leased),
        ("Expired leases", s.expired_unreclaimed),
    ];
    html! {
        <div class="stats">
            <Progress done={s.completed_samples} total={s.total_samples} label="samples complete" />
            <dl class="cards">
                { for cards.iter().map(|(k, v)| html! {
                    <div data-stat={k.to_lowercase().replace(' ', "-")}><dt>{ *k }</dt><dd>{ v }</dd></div>
                }) }
            </dl>
            if !s.per_labeler.is_empty() {
                <table class="table">
                    <caption>{ format!("Per labeler ({} labels per sample)", s.overlap) }</caption>
                    <thead><tr><th scope="col">{ "Labeler" }</th><th scope="col">{ "Submitted" }</th>
                        <th scope="col">{ "Working" }</th><th scope="col">{ "Skipped" }</th></tr></thead>
                    <tbody>
                        { for s.per_labeler.iter().map(|l| html! {
                            <tr><td>{ &l.labeler }</td><td>{ l.submitted }</td><td>{ l.leased }</td><td>{ l.released }</td></tr>
                        }) }
                    </tbody>
                </table>
            }
        </div>
    }
}
