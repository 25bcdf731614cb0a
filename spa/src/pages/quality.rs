//! The quality report of a queue (auditor, admin): `GET /v1/queues/{id}/quality`.
//!
//! Counts first, then one row per field of the current schema: its headline measure in words, the value to
//! three decimals and what it means (or why there is none). A row opens (click, Enter or Space on its button)
//! to every measure of the field with its sample count, Cohen's κ per labeler pair, per-option agreement of a
//! multi-choice field, each labeler's shares on the field, and the coincidence matrix as a heat map. Last, the
//! labelers with their agreement with the others and with the majority, and their gold accuracy with a
//! "below floor" or "exempt" badge, sortable by any column. A role the
//! server refuses (403) gets a plain "not allowed".

use std::collections::HashSet;
use std::rc::Rc;

use anvil_types::{Confusion, FieldQuality, QualityReport, Queue, Role};
use uuid::Uuid;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::agreement::{
    self, LabelerColumn, LabelerSort, count, heat_class, kind_name, matrix_max, measure_name, percent, value3,
};
use crate::api::{ApiError, ErrorKind, queues};
use crate::app::Route;
use crate::components::notice::{ApiProblem, Loading, Notice};
use crate::components::shortcuts::{PAGE_HINT, QUALITY_KEYS, Shortcuts, sheet_key, use_page_keys};
use crate::gold::{gold_accuracy, gold_items, gold_standing};
use crate::session::{use_api, use_session};

#[derive(Properties, PartialEq)]
pub struct QualityPageProps {
    pub id: Uuid,
}

#[function_component(QualityPage)]
pub fn quality_page(p: &QualityPageProps) -> Html {
    let id = p.id;
    let session = use_session();
    let api = use_api();
    let report = use_state(|| None::<Result<Rc<QualityReport>, ApiError>>);
    let queue = use_state(|| None::<Rc<Queue>>);
    let reload = use_state(|| 0u32);
    let open = use_state(HashSet::<String>::new);
    let sort = use_state(LabelerSort::default);
    let help = use_state(|| false);
    let navigator = use_navigator();
    {
        let (report, queue) = (report.clone(), queue.clone());
        use_effect_with((api.clone(), id, *reload), move |(api, id, _)| {
            if let Some(api) = api.clone() {
                let id = *id;
                report.set(None);
                wasm_bindgen_futures::spawn_local(async move {
                    report.set(Some(queues::quality(&api, id).await.map(Rc::new)));
                    if let Ok(q) = queues::get(&api, id).await {
                        queue.set(Some(Rc::new(q)));
                    }
                });
            }
        });
    }
    let auditor = session.role() >= Some(Role::Auditor);
    {
        let (help, open) = (help.clone(), open.clone());
        use_page_keys(Callback::from(move |key: String| {
            if let Some(used) = sheet_key(&key, &help) {
                return used;
            }
            match key.as_str() {
                "r" | "R" if auditor => match &navigator {
                    Some(n) => n.push(&Route::Review { id }),
                    None => return false,
                },
                "Escape" if !open.is_empty() => open.set(HashSet::new()),
                _ => return false,
            }
            true
        }));
    }

    let title = queue.as_ref().map(|q| q.name.clone()).unwrap_or_default();
    let toggle_help = {
        let help = help.clone();
        Callback::from(move |()| help.set(!*help))
    };
    let body = match &*report {
        None => html! { <Loading /> },
        Some(Err(e)) if e.kind() == ErrorKind::Forbidden => html! {
            <Notice title="Not allowed">
                <p data-quality="forbidden">
                    { format!("The quality report of a queue is for auditors and admins; your role ({}) does not \
                        allow it.", session.role().map(|r| r.as_str()).unwrap_or("none")) }
                </p>
                <p class="hint">{ format!("The server said: {}", e.message) }</p>
                <Link<Route> to={Route::Home}>{ "Back to the queues" }</Link<Route>>
            </Notice>
        },
        Some(Err(e)) => {
            let reload = reload.clone();
            html! { <ApiProblem error={e.clone()} on_retry={Callback::from(move |_| reload.set(*reload + 1))} /> }
        }
        Some(Ok(r)) => report_view(r, &open, &sort),
    };
    let refresh = {
        let reload = reload.clone();
        Callback::from(move |_| reload.set(*reload + 1))
    };
    html! {
        <section class="quality-page" data-queue={id.to_string()}>
            <div class="page-head">
                <div>
                    <h1>{ if title.is_empty() { "Quality".to_string() } else { format!("Quality · {title}") } }</h1>
                    <p class="meta">{ "How far the labels agree, per field and per labeler. Labels rejected in \
                        review are left out." }</p>
                </div>
                <div class="actions">
                    if auditor {
                        <button type="button" class="quiet" onclick={refresh}>{ "Refresh" }</button>
                        <Link<Route> to={Route::Review { id }} classes="button">
                            { "Review labels " }<kbd>{ "R" }</kbd></Link<Route>>
                    }
                    if session.role() >= Some(Role::Admin) {
                        <Link<Route> to={Route::AdminQueue { id }} classes="button">{ "Manage" }</Link<Route>>
                    }
                    <button type="button" class="quiet" onclick={toggle_help.reform(|_: MouseEvent| ())}>
                        { "Shortcuts " }<kbd>{ "?" }</kbd></button>
                </div>
            </div>
            { body }
            if *help {
                <Shortcuts keys={QUALITY_KEYS} hint={PAGE_HINT} on_close={toggle_help.clone()} />
            }
        </section>
    }
}

fn report_view(
    r: &Rc<QualityReport>,
    open: &UseStateHandle<HashSet<String>>,
    sort: &UseStateHandle<LabelerSort>,
) -> Html {
    let cards = [
        ("labels", "Labels", r.labels.to_string()),
        ("samples", "Samples labeled", r.samples.to_string()),
        ("samples-multiply-labeled", "Samples with ≥ 2 labels", r.samples_multiply_labeled.to_string()),
        ("overlap", "Labels asked per sample", r.overlap.to_string()),
    ];
    html! {
        <>
            <dl class="cards quality-counts">
                { for cards.iter().map(|(key, name, v)| html! {
                    <div data-stat={*key}><dt>{ *name }</dt><dd>{ v }</dd></div>
                }) }
            </dl>
            <div class="panel" data-section="fields">
                <h2>{ format!("Fields (schema version {})", r.schema_version) }</h2>
                <p class="hint">{ "Agreement is measured on the samples with two or more labels. Krippendorff's α: \
                    1 is perfect, 0 no better than chance; ≥ 0.8 is reliable, ≥ 0.667 tentative. Open a field for \
                    every measure, the labeler pairs and the matrix of the values given together." }</p>
                <div class="table-wrap">
                    <table class="table quality-fields">
                        <thead><tr>
                            <th scope="col">{ "Field" }</th><th scope="col">{ "Kind" }</th>
                            <th scope="col">{ "Measure" }</th><th scope="col" class="num">{ "Value" }</th>
                            <th scope="col">{ "Reading" }</th>
                        </tr></thead>
                        { for r.fields.iter().enumerate().map(|(i, f)| field_rows(r, i, f, open)) }
                    </table>
                </div>
            </div>
            { labelers_view(r, sort) }
        </>
    }
}

fn field_rows(r: &QualityReport, i: usize, f: &FieldQuality, open: &UseStateHandle<HashSet<String>>) -> Html {
    let is_open = open.contains(&f.name);
    let toggle = {
        let (open, name) = (open.clone(), f.name.clone());
        Callback::from(move |_: MouseEvent| {
            let mut s = (*open).clone();
            if !s.remove(&name) {
                s.insert(name.clone());
            }
            open.set(s);
        })
    };
    let detail_id = format!("field-detail-{i}");
    let measure = f.measure.as_deref().map(measure_name).unwrap_or_else(|| "none".into());
    let reading = match (&f.value, &f.why) {
        (None, Some(why)) => html! { <span class="why" data-why="">{ why }</span> },
        _ => html! { <span class="reading">{ &f.reading }</span> },
    };
    // One <tbody> per field: its row and its details stay together.
    html! {
        <tbody class={classes!("field-group", is_open.then_some("open"))} data-field={f.name.clone()}>
            <tr class="field-row" onclick={toggle}>
                <th scope="row">
                    <button type="button" class="disclosure" aria-expanded={is_open.to_string()}
                        aria-controls={detail_id.clone()}>
                        <span class="chevron" aria-hidden="true">{ if is_open { "▾" } else { "▸" } }</span>
                        { &f.name }
                    </button>
                </th>
                <td>{ kind_name(&f.kind) }</td>
                <td data-measure={f.measure.clone().unwrap_or_default()}>{ measure }</td>
                <td class="num" data-value="">{ value3(f.value) }</td>
                <td>{ reading }</td>
            </tr>
            <tr class="field-detail" id={detail_id} hidden={!is_open}>
                <td colspan="5">
                    if is_open { { field_detail(r, f) } }
                </td>
            </tr>
        </tbody>
    }
}

fn field_detail(r: &QualityReport, f: &FieldQuality) -> Html {
    let headline = f.measure.as_deref();
    let per_labeler: Vec<_> = r
        .labelers
        .iter()
        .filter_map(|l| l.fields.iter().find(|x| x.field == f.name).map(|x| (l.labeler.as_str(), x)))
        .collect();
    html! {
        <div class="field-detail-body">
            if let Some(why) = f.why.as_ref().filter(|_| f.measure.is_none()) {
                <p class="why">{ why }</p>
            }
            if !f.measures.is_empty() {
                <table class="table measures">
                    <caption>{ "Measures" }</caption>
                    <thead><tr><th scope="col">{ "Measure" }</th><th scope="col" class="num">{ "Value" }</th>
                        <th scope="col" class="num">{ "Samples" }</th><th scope="col">{ "Note" }</th></tr></thead>
                    <tbody>
                        { for f.measures.iter().map(|m| html! {
                            <tr data-measure={m.name.clone()}>
                                <td>{ measure_name(&m.name) }
                                    if Some(m.name.as_str()) == headline { <span class="badge">{ "headline" }</span> }
                                </td>
                                <td class="num">{ value3(m.value) }</td>
                                <td class="num">{ m.samples }</td>
                                <td class="hint">{ m.note.clone().unwrap_or_default() }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
            if !f.pairs.is_empty() {
                <table class="table pairs">
                    <caption>{ "Cohen's κ per pair of labelers" }</caption>
                    <thead><tr><th scope="col">{ "Labeler" }</th><th scope="col">{ "Labeler" }</th>
                        <th scope="col" class="num">{ "Samples" }</th><th scope="col" class="num">{ "Cohen's κ" }</th>
                        <th scope="col" class="num">{ "Same value" }</th></tr></thead>
                    <tbody>
                        { for f.pairs.iter().map(|pa| html! {
                            <tr data-pair={format!("{}|{}", pa.a, pa.b)}>
                                <td>{ &pa.a }</td><td>{ &pa.b }</td><td class="num">{ pa.samples }</td>
                                <td class="num">{ value3(pa.cohen_kappa) }</td>
                                <td class="num">{ percent(Some(pa.percent_agreement)) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
            if !f.options.is_empty() {
                <table class="table options">
                    <caption>{ "Per option: agreement on \"selected or not\"" }</caption>
                    <thead><tr><th scope="col">{ "Option" }</th><th scope="col" class="num">{ "Fleiss' κ" }</th>
                        <th scope="col" class="num">{ "Krippendorff's α" }</th></tr></thead>
                    <tbody>
                        { for f.options.iter().map(|o| html! {
                            <tr data-option={o.option.clone()}>
                                <td>{ &o.option }</td><td class="num">{ value3(o.fleiss_kappa) }</td>
                                <td class="num">{ value3(o.krippendorff_alpha) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
            if !per_labeler.is_empty() {
                <table class="table field-labelers">
                    <caption>{ "Per labeler on this field" }</caption>
                    <thead><tr><th scope="col">{ "Labeler" }</th>
                        <th scope="col" class="num">{ "Agreement with others" }</th>
                        <th scope="col" class="num">{ "Agreement with majority" }</th></tr></thead>
                    <tbody>
                        { for per_labeler.iter().map(|(who, x)| html! {
                            <tr data-labeler={who.to_string()}>
                                <td>{ *who }</td><td class="num">{ percent(x.agreement_with_others) }</td>
                                <td class="num">{ percent(x.agreement_with_majority) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
            if let Some(c) = &f.confusion { { heat_map(&f.name, c) } }
        </div>
    }
}

/// The coincidence matrix as a table whose cells are shaded by their share of the largest count.
fn heat_map(field: &str, c: &Confusion) -> Html {
    let max = matrix_max(&c.counts);
    let title_id = format!("heatmap-{}", field.replace(|ch: char| !ch.is_ascii_alphanumeric(), "-"));
    html! {
        <div class="heatmap-wrap">
            <h3 id={title_id.clone()}>{ "Values given together (coincidence matrix)" }</h3>
            <table class="heatmap" data-heatmap={field.to_string()} aria-labelledby={title_id}>

                <thead><tr>
                    <td class="corner"></td>
                    { for c.values.iter().map(|v| html! { <th scope="col">{ v }</th> }) }
                </tr></thead>
                <tbody>
                    { for c.values.iter().enumerate().map(|(i, a)| html! {
                        <tr data-value={a.clone()}>
                            <th scope="row">{ a }</th>
                            { for c.values.iter().enumerate().map(|(j, b)| {
                                let n = c.counts.get(i).and_then(|row| row.get(j)).copied().unwrap_or(0.0);
                                html! {
                                    <td class={classes!("cell", heat_class(n, max), (i == j).then_some("diag"))}
                                        data-count={count(n)} title={format!("{a} and {b}: {}", count(n))}>
                                        { count(n) }
                                    </td>
                                }
                            }) }
                        </tr>
                    }) }
                </tbody>
            </table>
            <p class="hint">
                { "Krippendorff's coincidence matrix: each sample with two or more labels adds every pair of its \
                    values (weighing 1 in all), so the table is symmetric and the diagonal is agreement. Darker: more often." }
                if max <= 0.0 { { " No sample has two labels with a value here yet." } }
            </p>
        </div>
    }
}

fn labelers_view(r: &QualityReport, sort: &UseStateHandle<LabelerSort>) -> Html {
    let mut rows = r.labelers.clone();
    agreement::sort_labelers(&mut rows, **sort);
    html! {
        <div class="panel" data-section="labelers">
            <h2>{ "Labelers" }</h2>
            <p class="hint">{ "Over the choice and rating fields: with others, the share of pairs with another labeler \
                on the same sample that gave the same value; with majority, the share of values equal to the sample's \
                strict majority. Gold: the check items (known answers) each has labeled and the share of their \
                answer fields right; \"below floor\" gets no more samples from the queue until an admin exempts them. \
                Sort by any column header." }</p>
            if rows.is_empty() {
                <p class="empty">{ "No labels yet." }</p>
            } else {
                <table class="table labelers">
                    <thead><tr>
                        { for LabelerColumn::ALL.iter().map(|&col| {
                            let onclick = {
                                let sort = sort.clone();
                                Callback::from(move |_| sort.set(sort.toggled(col)))
                            };
                            let aria = sort.aria(col);
                            let arrow = match aria { "ascending" => "▲", "descending" => "▼", _ => "" };
                            html! {
                                <th scope="col" aria-sort={aria}
                                    class={classes!((col != LabelerColumn::Labeler).then_some("num"))}>
                                    <button type="button" class="sort" {onclick} data-sort={format!("{col:?}").to_lowercase()}>
                                        { col.title() }<span class="arrow" aria-hidden="true">{ arrow }</span>
                                    </button>
                                </th>
                            }
                        }) }
                    </tr></thead>
                    <tbody>
                        { for rows.iter().map(|l| html! {
                            <tr data-labeler={l.labeler.clone()}>
                                <td>{ &l.labeler }</td>
                                <td class="num">{ l.labels }</td>
                                <td class="num" data-share="others">{ percent(l.agreement_with_others) }</td>
                                <td class="num" data-share="majority">{ percent(l.agreement_with_majority) }</td>
                                <td class="num" data-gold="items">{ gold_items(l) }</td>
                                <td class="num" data-gold="accuracy">
                                    <span data-gold-accuracy="">{ percent(gold_accuracy(l)) }</span>
                                    if let Some((class, words)) = gold_standing(l) {
                                        <span class={classes!("badge", class)} data-gold-standing={class}>{ words }</span>
                                    }
                                </td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        </div>
    }
}
