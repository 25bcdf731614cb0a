//! The labeling view: one sample at a time, keyboard first.
//!
//! The loop: claim (`POST /v1/queues/{id}/assignments/next`) → label → submit (`POST /v1/labels`) → claim the
//! next one as soon as the submit has answered (asking earlier would return the same live lease). While a
//! sample is open, heartbeats keep its lease every `lease_seconds / 3` as long as the labeler is active. Nothing
//! typed is ever dropped silently: a failed submit keeps the answers on screen with Retry, a lost lease says
//! so, and answers of a sample given up after a problem are kept in case it comes back.
//!
//! All page state lives in one reducer ([`State`]); [`Ctl`] runs the API calls and feeds their answers back
//! as actions. Keys are read by one window listener so they work wherever focus is, except while typing.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use anvil_types::schema::Span;
use anvil_types::{FieldKind, Queue, QueueStats, Role};
use gloo_events::{EventListener, EventListenerOptions};
use gloo_storage::{SessionStorage, Storage};
use serde_json::Value;
use uuid::Uuid;
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement, HtmlInputElement, KeyboardEvent};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::assignments::{self, Claim};
use crate::api::{Api, ApiError, ErrorKind, labels, queues};
use crate::app::Route;
use crate::components::fields::{Edit, Field};
use crate::components::notice::{ApiProblem, Loading, Notice, describe};
use crate::components::shortcuts::{Shortcuts, typing_target};
use crate::components::span_text::SpanText;
use crate::components::stats::Progress;
use crate::gold::BELOW_FLOOR;
use crate::model::{
    Cursor, CursorMove, FieldValue, Kind, Schema, add_span, build_payload, remove_spans, span_source,
};
use crate::session::{use_api, use_session};

// ---------------------------------------------------------------------------------------------------------
// The session tally: labels and skips in this browser tab, per queue.
// ---------------------------------------------------------------------------------------------------------

fn tally_key(queue: Uuid) -> String {
    format!("anvil.tally.{queue}")
}

/// (labeled, skipped) in this tab's session for a queue.
pub fn session_tally(queue: Uuid) -> (u32, u32) {
    SessionStorage::get(tally_key(queue)).unwrap_or((0, 0))
}

fn save_tally(queue: Uuid, labeled: u32, skipped: u32) {
    let _ = SessionStorage::set(tally_key(queue), (labeled, skipped));
}

// Drafts: the answers of the open sample, saved on every change so that a reload, a lost lease or a detour to
// another page never loses them; restored when the same sample is opened again, dropped once it is saved or
// skipped.

fn draft_key(sample: Uuid) -> String {
    format!("anvil.draft.{sample}")
}

fn load_draft(sample: Uuid) -> Option<Vec<FieldValue>> {
    SessionStorage::get(draft_key(sample)).ok()
}

fn save_draft(sample: Uuid, values: &[FieldValue]) {
    let _ = SessionStorage::set(draft_key(sample), values);
}

fn drop_draft(sample: Uuid) {
    SessionStorage::delete(draft_key(sample));
}

// ---------------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    Idle,
    Submitting,
    Skipping,
    /// Saved or skipped; the next sample is on its way.
    Advancing,
}

/// Something went wrong with the open sample; the answers stay on screen.
#[derive(Debug, Clone, PartialEq)]
enum Problem {
    /// The lease is gone (expired, released, or the assignment vanished).
    LeaseLost(String),
    /// A different label was already submitted for this assignment.
    Conflict(String),
    /// The submit did not get through (network, server, session); Retry sends the same answers again.
    NotSent(String),
    /// The server refused the answers for a reason not tied to one field.
    Invalid(String),
    SkipFailed(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    claim: Rc<Claim>,
    schema: Rc<Schema>,
    values: Vec<FieldValue>,
    /// The field the number keys act on.
    active: usize,
    /// The keyboard selection of each span field.
    cursors: Vec<Option<Cursor>>,
    /// Problems by field index, from the server's pointers or local parsing.
    errors: BTreeMap<usize, String>,
    problem: Option<Problem>,
    busy: Busy,
}

impl Item {
    fn new(claim: Claim) -> Item {
        let schema = Schema::from_json(&claim.schema);
        let values = match load_draft(claim.sample.id) {
            Some(v)
                if v.len() == schema.fields.len()
                    && v.iter().zip(&schema.fields).all(|(v, f)| v.fits(&f.kind)) =>
            {
                v
            }
            _ => schema.fields.iter().map(|f| FieldValue::empty(&f.kind)).collect(),
        };
        Item {
            cursors: vec![None; schema.fields.len()],
            values,
            schema: Rc::new(schema),
            claim: Rc::new(claim),
            active: 0,
            errors: BTreeMap::new(),
            problem: None,
            busy: Busy::Idle,
        }
    }

    /// The text a span field annotates.
    fn span_text(&self, field: usize) -> Option<&str> {
        match &self.schema.fields.get(field)?.kind {
            Kind::Known(FieldKind::Span { source, .. }) => span_source(&self.claim.sample.payload, source),
            _ => None,
        }
    }

    /// The span field whose selection the large sample text shows: the active one if it annotates
    /// `payload.text`, else the first that does.
    fn text_owner(&self) -> Option<usize> {
        let on_text = |f: &crate::model::FieldSpec| matches!(&f.kind, Kind::Known(FieldKind::Span { source, .. }) if source == "text");
        self.claim.sample.payload.get("text").and_then(Value::as_str)?;
        if self.schema.fields.get(self.active).is_some_and(on_text) {
            return Some(self.active);
        }
        self.schema.fields.iter().position(on_text)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Work {
    Loading,
    Ready(Box<Item>),
    /// 204: nothing left for this labeler (or the queue is paused).
    Done,
    /// 403 `below_gold_floor`: the labeler's gold accuracy is under the queue's floor; the server's words.
    /// Final for this visit: nothing asks again by itself.
    BelowFloor(String),
    Failed(ApiError),
}

#[derive(Debug, Clone, PartialEq)]
enum Overlay {
    None,
    Help,
    Skip { reason: String, error: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    queue_id: Uuid,
    queue: Option<Rc<Queue>>,
    queue_error: Option<ApiError>,
    stats: Option<Rc<QueueStats>>,
    work: Work,
    labeled: u32,
    skipped: u32,
    overlay: Overlay,
    /// External id of the last sample saved, for a quiet confirmation.
    saved: Option<String>,
    /// Bumped whenever the keyboard moves to a field, so focus follows (typed fields take the focus).
    focus_seq: u32,
}

pub enum Action {
    Queue(Result<Queue, ApiError>),
    Stats(QueueStats),
    Claiming,
    Claimed(Option<Claim>),
    ClaimFailed(ApiError),
    Edit(Edit),
    Move(isize),
    Cursor(CursorMove),
    RemoveAtCursor,
    Clear,
    LocalInvalid(BTreeMap<usize, String>),
    SubmitStart,
    // Answers about one assignment carry its id: a late answer must not land on the next sample.
    SubmitOk(Uuid, String),
    SubmitFailed(Uuid, ApiError),
    SkipOpen,
    SkipReason(String),
    SkipNeedsReason,
    SkipStart,
    SkipOk(Uuid),
    SkipFailed(Uuid, ApiError),
    LeaseLost(Uuid, String),
    /// Give up the open sample after a problem (its draft stays, in case it comes back); load the next.
    StashAndAdvance,
    ToggleHelp,
    CloseOverlay,
}

const SKIP_REASONS: [&str; 4] = ["Unreadable", "Not sure", "Not relevant", "Offensive or unsafe"];

impl Reducible for State {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::Queue(Ok(q)) => s.queue = Some(Rc::new(q)),
            Action::Queue(Err(e)) => s.queue_error = Some(e),
            Action::Stats(st) => s.stats = Some(Rc::new(st)),
            Action::Claiming => match &mut s.work {
                Work::Ready(item) => item.busy = Busy::Advancing,
                w => *w = Work::Loading,
            },
            Action::Claimed(Some(c)) => {
                s.work = Work::Ready(Box::new(Item::new(c)));
                s.overlay = Overlay::None;
                s.focus_seq += 1;
            }
            Action::Claimed(None) => {
                s.work = Work::Done;
                s.overlay = Overlay::None;
            }
            Action::ClaimFailed(e) if e.code == BELOW_FLOOR => {
                s.work = Work::BelowFloor(e.message);
                s.overlay = Overlay::None;
            }
            Action::ClaimFailed(e) => s.work = Work::Failed(e),
            Action::ToggleHelp => {
                s.overlay = match s.overlay {
                    Overlay::Help => Overlay::None,
                    _ => Overlay::Help,
                }
            }
            Action::CloseOverlay => {
                s.overlay = Overlay::None;
                s.focus_seq += 1;
            }
            Action::SkipOpen => {
                if matches!(&s.work, Work::Ready(i) if i.busy == Busy::Idle) {
                    s.overlay = Overlay::Skip { reason: String::new(), error: None };
                }
            }
            Action::SkipReason(r) => {
                if let Overlay::Skip { reason, error } = &mut s.overlay {
                    *reason = r;
                    *error = None;
                }
            }
            Action::SkipNeedsReason => {
                if let Overlay::Skip { error, .. } = &mut s.overlay {
                    *error = Some("Say briefly why (or pick a reason below).".into());
                }
            }
            Action::StashAndAdvance => {
                if let Work::Ready(item) = &mut s.work {
                    item.busy = Busy::Advancing;
                    item.problem = None;
                }
            }
            other => {
                let Work::Ready(item) = &mut s.work else {
                    return self;
                };
                let about = match &other {
                    Action::SubmitOk(id, _)
                    | Action::SubmitFailed(id, _)
                    | Action::SkipOk(id)
                    | Action::SkipFailed(id, _)
                    | Action::LeaseLost(id, _) => Some(*id),
                    _ => None,
                };
                if about.is_some_and(|id| id != item.claim.assignment.id) {
                    return self;
                }
                match other {
                    Action::Edit(e) => {
                        if item.busy != Busy::Idle {
                            return self;
                        }
                        if edit(item, e) {
                            s.focus_seq += 1;
                        }
                    }
                    Action::Move(d) => {
                        let n = item.schema.fields.len();
                        if n > 0 {
                            item.active = (item.active as isize + d).clamp(0, n as isize - 1) as usize;
                            s.focus_seq += 1;
                        }
                    }
                    Action::Cursor(m) => {
                        let i = item.active;
                        if let Some(text) = item.span_text(i).map(str::to_string) {
                            item.cursors[i] = Cursor::moved(item.cursors[i], &text, m);
                        }
                    }
                    Action::RemoveAtCursor => {
                        let i = item.active;
                        if let (Some(c), FieldValue::Spans(spans)) = (item.cursors[i], &item.values[i]) {
                            let (a, b) = c.range();
                            item.values[i] = FieldValue::Spans(remove_spans(spans, a, b));
                        }
                    }
                    Action::Clear => {
                        item.values = item.schema.fields.iter().map(|f| FieldValue::empty(&f.kind)).collect();
                        item.cursors = vec![None; item.values.len()];
                        item.errors.clear();
                        if matches!(item.problem, Some(Problem::Invalid(_))) {
                            item.problem = None;
                        }
                        item.active = 0;
                        s.focus_seq += 1;
                    }
                    Action::LocalInvalid(errs) => {
                        item.errors = errs;
                    }
                    Action::SubmitStart => {
                        item.busy = Busy::Submitting;
                        item.problem = None;
                        item.errors.clear();
                    }
                    Action::SubmitOk(_, ext) => {
                        s.labeled += 1;
                        save_tally(s.queue_id, s.labeled, s.skipped);
                        drop_draft(item.claim.sample.id);
                        item.busy = Busy::Advancing;
                        s.saved = Some(ext);
                    }
                    Action::SubmitFailed(_, e) => {
                        item.busy = Busy::Idle;
                        submit_failed(item, e);
                    }
                    Action::SkipStart => {
                        item.busy = Busy::Skipping;
                        item.problem = None;
                        s.overlay = Overlay::None;
                    }
                    Action::SkipOk(_) => {
                        drop_draft(item.claim.sample.id);
                        s.skipped += 1;
                        save_tally(s.queue_id, s.labeled, s.skipped);
                        item.busy = Busy::Advancing;
                        s.saved = None;
                    }
                    Action::SkipFailed(_, e) => {
                        item.busy = Busy::Idle;
                        item.problem = Some(match e.kind() {
                            ErrorKind::Conflict | ErrorKind::NotFound => Problem::LeaseLost(e.message),
                            _ => Problem::SkipFailed(describe(&e)),
                        });
                    }
                    Action::LeaseLost(_, msg) => {
                        if item.busy == Busy::Idle && item.problem.is_none() {
                            item.problem = Some(Problem::LeaseLost(msg));
                        }
                    }
                    _ => return self,
                }
            }
        }
        Rc::new(s)
    }
}

/// Applies an edit to the open item; true when the keyboard focus should move (auto-advance).
fn edit(item: &mut Item, e: Edit) -> bool {
    let n_fields = item.schema.fields.len();
    let mut advance = false;
    match e {
        Edit::Set(i, v) if i < n_fields => {
            item.values[i] = v;
            item.errors.remove(&i);
        }
        Edit::Activate(i) if i < n_fields => item.active = i,
        Edit::SpanSelect(i, a, b) if i < n_fields => {
            item.cursors[i] = Some(Cursor { anchor: a, focus: b });
            item.active = i;
        }
        Edit::SpanRemove(i, n) if i < n_fields => {
            if let FieldValue::Spans(spans) = &mut item.values[i]
                && n < spans.len()
            {
                spans.remove(n);
            }
        }
        Edit::Pick(i, n) if i < n_fields => {
            item.active = i;
            let kind = item.schema.fields[i].kind.clone();
            let cursor = item.cursors[i];
            let v = &mut item.values[i];
            match (&kind, v) {
                (Kind::Known(FieldKind::SingleChoice { options }), FieldValue::Choice(c)) => {
                    if let Some(o) = options.get(n) {
                        *c = Some(o.clone());
                        advance = true;
                    }
                }
                (Kind::Known(FieldKind::MultiChoice { options, .. }), FieldValue::Multi(sel)) => {
                    if let Some(o) = options.get(n) {
                        let on = !sel.contains(o);
                        // keep the schema's order so equal answers are equal JSON
                        *sel = options
                            .iter()
                            .filter(|x| if *x == o { on } else { sel.contains(x) })
                            .cloned()
                            .collect();
                    }
                }
                (Kind::Known(FieldKind::Boolean), FieldValue::Bool(b)) => {
                    if n < 2 {
                        *b = Some(n == 0);
                        advance = true;
                    }
                }
                (Kind::Known(FieldKind::Rating { max }), FieldValue::Rating(r)) => {
                    if (n as u32) < *max {
                        *r = Some(n as u32 + 1);
                        advance = true;
                    }
                }
                (Kind::Known(FieldKind::Span { labels, allow_overlap, .. }), FieldValue::Spans(spans)) => {
                    if let (Some(label), Some(c)) = (labels.get(n), cursor.filter(|c| !c.is_empty())) {
                        let (a, b) = c.range();
                        let span = Span { start: a as u32, end: b as u32, label: label.clone() };
                        *spans = add_span(spans, span, *allow_overlap);
                    }
                }
                _ => return false,
            }
            item.errors.remove(&i);
            if advance && i + 1 < n_fields {
                item.active = i + 1;
            } else {
                advance = false;
            }
        }
        _ => {}
    }
    advance
}

fn submit_failed(item: &mut Item, e: ApiError) {
    match e.kind() {
        ErrorKind::Invalid if !e.details.is_empty() => {
            let mut general = Vec::new();
            for d in &e.details {
                match item.schema.field_of_pointer(&d.pointer) {
                    Some(i) => {
                        let sub = d
                            .pointer
                            .splitn(4, '/')
                            .nth(3)
                            .map(|rest| format!(" (at {rest})"))
                            .unwrap_or_default();
                        let msg = format!("{}{sub}", d.message);
                        item.errors
                            .entry(i)
                            .and_modify(|m| {
                                m.push_str("; ");
                                m.push_str(&msg)
                            })
                            .or_insert(msg);
                    }
                    None => general.push(format!("{}: {}", d.pointer, d.message)),
                }
            }
            if !general.is_empty() {
                item.problem = Some(Problem::Invalid(general.join("; ")));
            }
            if let Some(&first) = item.errors.keys().next() {
                item.active = first;
            }
        }
        ErrorKind::Invalid => item.problem = Some(Problem::Invalid(e.message)),
        ErrorKind::Conflict if e.code == "label_conflict" || e.code == "already_submitted" => {
            item.problem = Some(Problem::Conflict(e.message))
        }
        ErrorKind::Conflict if e.code == "lease_changed" => item.problem = Some(Problem::NotSent(e.message)),
        ErrorKind::Conflict | ErrorKind::NotFound => item.problem = Some(Problem::LeaseLost(e.message)),
        _ => item.problem = Some(Problem::NotSent(describe(&e))),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Controller: the API calls of the loop.
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Ctl {
    api: Option<Api>,
    state: UseReducerHandle<State>,
    role: Role,
}

impl Ctl {
    fn queue(&self) -> Uuid {
        self.state.clone().queue_id
    }

    /// Claims the next sample (the open one, if any, stays visible until it arrives).
    fn claim_next(&self) {
        let Some(api) = self.api.clone() else { return };
        let state = self.state.clone();
        let queue = self.queue();
        state.dispatch(Action::Claiming);
        wasm_bindgen_futures::spawn_local(async move {
            match assignments::next(&api, queue).await {
                Ok(c) => state.dispatch(Action::Claimed(c)),
                Err(e) => state.dispatch(Action::ClaimFailed(e)),
            }
        });
    }

    fn refresh_stats(&self) {
        if self.role < Role::Auditor {
            return;
        }
        let Some(api) = self.api.clone() else { return };
        let state = self.state.clone();
        let queue = self.queue();
        wasm_bindgen_futures::spawn_local(async move {
            if let Ok(st) = queues::stats(&api, queue).await {
                state.dispatch(Action::Stats(st));
            }
        });
    }

    fn submit(&self) {
        let Some(api) = self.api.clone() else { return };
        let snap = self.state.clone();
        let Work::Ready(item) = &snap.work else { return };
        if item.busy != Busy::Idle || snap.overlay != Overlay::None {
            return;
        }
        let payload = match build_payload(&item.schema, &item.values) {
            Ok(p) => p,
            Err(errs) => {
                self.state.dispatch(Action::LocalInvalid(errs));
                return;
            }
        };
        let id = item.claim.assignment.id;
        let ext = item.claim.sample.external_id.clone();
        self.state.dispatch(Action::SubmitStart);
        let ctl = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match labels::submit(&api, id, payload).await {
                Ok(_) => {
                    ctl.state.dispatch(Action::SubmitOk(id, ext));
                    // Only now: asking before the submit answered would return this same lease.
                    ctl.claim_next();
                    ctl.refresh_stats();
                }
                Err(e) => ctl.state.dispatch(Action::SubmitFailed(id, e)),
            }
        });
    }

    fn skip(&self, reason: String) {
        let Some(api) = self.api.clone() else { return };
        let snap = self.state.clone();
        let Work::Ready(item) = &snap.work else { return };
        if item.busy != Busy::Idle {
            return;
        }
        let reason = reason.trim().to_string();
        if reason.is_empty() {
            self.state.dispatch(Action::SkipNeedsReason);
            return;
        }
        let id = item.claim.assignment.id;
        self.state.dispatch(Action::SkipStart);
        let ctl = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            match assignments::release(&api, id, &reason).await {
                Ok(_) => {
                    ctl.state.dispatch(Action::SkipOk(id));
                    ctl.claim_next();
                    ctl.refresh_stats();
                }
                Err(e) => ctl.state.dispatch(Action::SkipFailed(id, e)),
            }
        });
    }

    /// After a problem: keep the answers (in case the sample comes back) and move on.
    fn take_next(&self) {
        self.state.dispatch(Action::StashAndAdvance);
        self.claim_next();
    }

    fn heartbeat(&self) {
        let Some(api) = self.api.clone() else { return };
        let snap = self.state.clone();
        let Work::Ready(item) = &snap.work else { return };
        if item.busy != Busy::Idle || item.problem.is_some() {
            return;
        }
        let id = item.claim.assignment.id;
        let state = self.state.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = assignments::heartbeat(&api, id).await
                && matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound)
            {
                state.dispatch(Action::LeaseLost(id, e.message));
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------------

fn on_key(e: &KeyboardEvent, ctl: &Ctl, session_active: bool) {
    if !session_active || e.default_prevented() || e.is_composing() {
        return;
    }
    let key = e.key();
    let target: Option<Element> = e.target().and_then(|t| t.dyn_into::<Element>().ok());
    let snap = ctl.state.clone();
    let d = |a: Action| ctl.state.dispatch(a);
    let stop = || e.prevent_default();
    match &snap.overlay {
        Overlay::Help => {
            if key == "Escape" || key == "?" {
                stop();
                d(Action::CloseOverlay);
            }
            return;
        }
        Overlay::Skip { .. } => {
            if key == "Escape" {
                stop();
                d(Action::CloseOverlay);
            }
            return;
        }
        Overlay::None => {}
    }
    let Work::Ready(item) = &snap.work else {
        if key == "?" && !target.as_ref().is_some_and(typing_target) {
            stop();
            d(Action::ToggleHelp);
        }
        return;
    };
    let in_fields = target.as_ref().and_then(|t| t.closest(".fields").ok().flatten()).is_some();
    if let Some(t) = target.as_ref().filter(|t| typing_target(t)) {
        if !in_fields {
            return;
        }
        let tag = t.tag_name().to_ascii_lowercase();
        let single_line_text = tag == "input" && t.get_attribute("type").as_deref() == Some("text");
        match key.as_str() {
            "Escape" => {
                stop();
                if let Some(h) = t.dyn_ref::<HtmlElement>() {
                    let _ = h.blur();
                }
            }
            "Enter" if tag != "textarea" || e.ctrl_key() || e.meta_key() => {
                stop();
                ctl.submit();
            }
            "ArrowUp" | "ArrowDown" if single_line_text => {
                stop();
                d(Action::Move(if key == "ArrowUp" { -1 } else { 1 }));
            }
            _ => {}
        }
        return;
    }
    let arrows = matches!(key.as_str(), "ArrowLeft" | "ArrowRight");
    if (e.ctrl_key() && !arrows) || e.meta_key() || e.alt_key() {
        return; // the browser's and the system's own shortcuts
    }
    let active_is_span = matches!(
        item.schema.fields.get(item.active).map(|f| &f.kind),
        Some(Kind::Known(FieldKind::Span { .. }))
    );
    match key.as_str() {
        "Enter" => {
            // Enter on a toolbar button or link does what it says; anywhere else it submits.
            let on_control = target.as_ref().is_some_and(|t| {
                matches!(t.tag_name().to_ascii_lowercase().as_str(), "button" | "a" | "summary")
            });
            if on_control && !in_fields {
                return;
            }
            stop();
            ctl.submit();
        }
        "Escape" => {
            stop();
            d(Action::Clear);
        }
        "?" => {
            stop();
            d(Action::ToggleHelp);
        }
        "s" | "S" => {
            stop();
            d(Action::SkipOpen);
        }
        "ArrowUp" | "ArrowDown" => {
            stop();
            d(Action::Move(if key == "ArrowUp" { -1 } else { 1 }));
        }
        "ArrowLeft" | "ArrowRight" if active_is_span => {
            stop();
            let right = key == "ArrowRight";
            let m = match (e.ctrl_key(), e.shift_key(), right) {
                (false, false, true) => CursorMove::NextWord,
                (false, false, false) => CursorMove::PrevWord,
                (false, true, true) => CursorMove::GrowWord,
                (false, true, false) => CursorMove::ShrinkWord,
                (true, false, true) => CursorMove::EndRight,
                (true, false, false) => CursorMove::EndLeft,
                (true, true, true) => CursorMove::StartRight,
                (true, true, false) => CursorMove::StartLeft,
            };
            d(Action::Cursor(m));
        }
        "Backspace" | "Delete" if active_is_span => {
            stop();
            d(Action::RemoveAtCursor);
        }
        "y" | "Y" | "n" | "N"
            if matches!(
                item.schema.fields.get(item.active).map(|f| &f.kind),
                Some(Kind::Known(FieldKind::Boolean))
            ) =>
        {
            stop();
            let n = usize::from(key.eq_ignore_ascii_case("n"));
            d(Action::Edit(Edit::Pick(item.active, n)));
        }
        k if k.len() == 1 && k.as_bytes()[0].is_ascii_digit() => {
            stop();
            let digit = (k.as_bytes()[0] - b'0') as usize;
            let n = if digit == 0 { 9 } else { digit - 1 };
            d(Action::Edit(Edit::Pick(item.active, n)));
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------------------

#[derive(Properties, PartialEq)]
pub struct LabelPageProps {
    pub id: Uuid,
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

#[function_component(LabelPage)]
pub fn label_page(p: &LabelPageProps) -> Html {
    let queue_id = p.id;
    let session = use_session();
    let role = session.role().unwrap_or(Role::Labeler);
    let api = use_api();
    let state = use_reducer(move || {
        let (labeled, skipped) = session_tally(queue_id);
        State {
            queue_id,
            queue: None,
            queue_error: None,
            stats: None,
            work: Work::Loading,
            labeled,
            skipped,
            overlay: Overlay::None,
            saved: None,
            focus_seq: 0,
        }
    });
    let ctl = Ctl { api: api.clone(), state: state.clone(), role };
    // The window listeners live as long as the page; they read the latest controller from here.
    let latest: Rc<RefCell<Ctl>> = use_mut_ref(|| ctl.clone());
    *latest.borrow_mut() = ctl.clone();
    let session_ok = use_mut_ref(|| true);
    *session_ok.borrow_mut() = session.is_active();
    let last_activity = use_mut_ref(now_ms);

    // Load the queue and the first sample.
    {
        let ctl = ctl.clone();
        use_effect_with(queue_id, move |id| {
            if let Some(api) = ctl.api.clone() {
                let (state, id, role) = (ctl.state.clone(), *id, ctl.role);
                wasm_bindgen_futures::spawn_local(async move {
                    state.dispatch(Action::Queue(queues::get(&api, id).await));
                    if role >= Role::Auditor
                        && let Ok(st) = queues::stats(&api, id).await
                    {
                        state.dispatch(Action::Stats(st));
                    }
                });
            }
            ctl.claim_next();
        });
    }

    // Keys, and activity (for heartbeats) anywhere in the window.
    {
        let latest = latest.clone();
        let session_ok = session_ok.clone();
        let last_activity = last_activity.clone();
        use_effect_with((), move |_| {
            let win = web_sys::window().expect("a window");
            let keys = {
                let last_activity = last_activity.clone();
                let latest = latest.clone();
                // Not passive: shortcuts must be able to cancel the browser's default action (typing, scrolling).
                let opts = EventListenerOptions::enable_prevent_default();
                EventListener::new_with_options(&win, "keydown", opts, move |ev| {
                    let Some(e) = ev.dyn_ref::<KeyboardEvent>() else {
                        return;
                    };
                    let ctl = latest.borrow().clone();
                    note_activity(&last_activity, &ctl);
                    on_key(e, &ctl, *session_ok.borrow());
                })
            };
            let pointer = {
                let latest = latest.clone();
                EventListener::new(&win, "pointerdown", move |_| {
                    let ctl = latest.borrow().clone();
                    note_activity(&last_activity, &ctl);
                })
            };
            move || drop((keys, pointer))
        });
    }

    // Heartbeats every lease/3 while the labeler has been active within the lease.
    let (assignment_id, lease_secs) = match (&state.work, &state.queue) {
        (Work::Ready(i), q) => {
            (Some(i.claim.assignment.id), q.as_ref().map(|q| q.lease_seconds).unwrap_or(300))
        }
        _ => (None, 300),
    };
    {
        let latest = latest.clone();
        let last_activity = last_activity.clone();
        use_effect_with((assignment_id, lease_secs), move |(id, lease)| {
            let period = (*lease as u32 * 1000 / 3).max(3000);
            let lease_ms = *lease as f64 * 1000.0;
            let interval = id.map(|_| {
                gloo_timers::callback::Interval::new(period, move || {
                    if now_ms() - *last_activity.borrow() < lease_ms {
                        latest.borrow().clone().heartbeat();
                    }
                })
            });
            move || drop(interval)
        });
    }

    // Keep a draft of the answers as they change.
    {
        let draft = match &state.work {
            Work::Ready(i) if i.busy != Busy::Advancing => Some((i.claim.sample.id, i.values.clone())),
            _ => None,
        };
        use_effect_with(draft, |draft| {
            if let Some((sample, values)) = draft {
                let empty = values
                    .iter()
                    .all(|v| v.to_json().ok().flatten().is_none_or(|j| j == serde_json::json!([])));
                if empty {
                    drop_draft(*sample);
                } else {
                    save_draft(*sample, values);
                }
            }
        });
    }

    // Focus follows the keyboard: a typed field takes the focus, any other field gives it back to the page.
    {
        let active = match &state.work {
            Work::Ready(i) => Some((i.active, i.schema.fields.get(i.active).is_some_and(|f| f.is_typed()))),
            _ => None,
        };
        use_effect_with(state.focus_seq, move |_| {
            let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
                return;
            };
            let Some((i, typed)) = active else { return };
            if typed {
                if let Some(el) = doc.get_element_by_id(&format!("field-{i}-input"))
                    && let Some(h) = el.dyn_ref::<HtmlElement>()
                {
                    let _ = h.focus();
                    if let Some(input) = el.dyn_ref::<HtmlInputElement>() {
                        input.select();
                    }
                }
            } else if let Some(el) = doc.active_element()
                && typing_target(&el)
                && el.closest(".fields").ok().flatten().is_some()
                && let Some(h) = el.dyn_ref::<HtmlElement>()
            {
                let _ = h.blur();
            }
            if let Some(el) = doc.query_selector(&format!("[data-field-index=\"{i}\"]")).ok().flatten() {
                let opts = web_sys::ScrollIntoViewOptions::new();
                opts.set_block(web_sys::ScrollLogicalPosition::Nearest);
                el.scroll_into_view_with_scroll_into_view_options(&opts);
            }
        });
    }

    render(&state, &ctl)
}

fn note_activity(last: &Rc<RefCell<f64>>, ctl: &Ctl) {
    let now = now_ms();
    let before = std::mem::replace(&mut *last.borrow_mut(), now);
    // Back after a long pause: check the lease right away, before more work goes into a lost sample.
    let lease_ms =
        ctl.state.clone().queue.as_ref().map(|q| q.lease_seconds as f64 * 1000.0).unwrap_or(300_000.0);
    if now - before > lease_ms / 3.0 {
        ctl.heartbeat();
    }
}

fn render(state: &UseReducerHandle<State>, ctl: &Ctl) -> Html {
    let s: &State = state;
    let queue_name = s.queue.as_ref().map(|q| q.name.clone()).unwrap_or_default();
    let header = html! {
        <div class="label-bar">
            <div class="label-title">
                <h1>{ if queue_name.is_empty() { "Labeling".to_string() } else { queue_name.clone() } }</h1>
                { progress_line(s) }
            </div>
            <p class="tally" aria-live="polite">
                <span data-tally="labeled">{ s.labeled }</span>{ " labeled · " }
                <span data-tally="skipped">{ s.skipped }</span>{ " skipped this session" }
                if let Some(ext) = &s.saved { <span class="saved">{ format!(" · saved {ext}") }</span> }
            </p>
            <button type="button" class="quiet" onclick={act(state).reform(|_| Action::ToggleHelp)}>
                { "Shortcuts " }<kbd>{ "?" }</kbd>
            </button>
        </div>
    };
    let overlay = match &s.overlay {
        Overlay::None => html! {},
        Overlay::Help => html! { <Shortcuts on_close={act(state).reform(|_| Action::CloseOverlay)} /> },
        Overlay::Skip { reason, error } => skip_dialog(state, ctl, reason, error.as_deref()),
    };
    let body = match &s.work {
        Work::Loading => html! { <Loading /> },
        Work::Failed(e) => {
            let ctl = ctl.clone();
            html! { <ApiProblem error={e.clone()} on_retry={Callback::from(move |_| ctl.claim_next())} /> }
        }
        Work::Done => {
            let ctl = ctl.clone();
            html! {
                <section class="done" data-state="done">
                    <h2>{ "All done here" }</h2>
                    <p>{ format!("Nothing is left for you in {} right now (every sample has its labels, or the \
                        queue is paused). You labeled {} and skipped {} in this session.",
                        if queue_name.is_empty() { "this queue" } else { &queue_name }, s.labeled, s.skipped) }</p>
                    <div class="actions">
                        <button type="button" onclick={Callback::from(move |_| ctl.claim_next())}>{ "Check again" }</button>
                        <Link<Route> to={Route::Home} classes="button">{ "Back to the queues" }</Link<Route>>
                    </div>
                </section>
            }
        }
        Work::BelowFloor(message) => html! {
            <section class="below-floor" data-state="below-floor">
                <Notice title="You get no more samples from this queue for now" tone="warn">
                    <p data-below-floor="">{ capitalized(message) }</p>
                    <p>{ "Your answers on the queue's check items were scored against their known answers. Talk to                         the queue's admin: they can look at your answers and exempt you from the floor." }</p>
                    <p>{ format!("You labeled {} and skipped {} in this session; all of that is saved.", s.labeled, s.skipped) }</p>
                    <Link<Route> to={Route::Home} classes="button">{ "Back to the queues" }</Link<Route>>
                </Notice>
            </section>
        },
        Work::Ready(item) => ready(state, ctl, item),
    };
    let data_state = match &s.work {
        Work::Loading => "loading",
        Work::Failed(_) => "failed",
        Work::Done => "done",
        Work::BelowFloor(_) => "below-floor",
        Work::Ready(i) => match i.busy {
            Busy::Idle => "ready",
            Busy::Submitting => "submitting",
            Busy::Skipping => "skipping",
            Busy::Advancing => "advancing",
        },
    };
    html! {
        <div class="label-page" data-state={data_state}>
            { header }
            if let Some(e) = &s.queue_error { <ApiProblem error={e.clone()} /> }
            { body }
            { overlay }
        </div>
    }
}

/// The server's sentence with a capital first letter (its messages start in lower case).
fn capitalized(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn progress_line(s: &State) -> Html {
    match (&s.stats, &s.queue) {
        (Some(st), _) => html! {
            <Progress done={st.completed_samples} total={st.total_samples} label="samples complete" />
        },
        (None, Some(q)) => html! {
            <p class="meta">{ format!("{} samples in this queue · {} label{} per sample", q.sample_count, q.overlap,
                if q.overlap == 1 { "" } else { "s" }) }</p>
        },
        _ => html! {},
    }
}

fn ready(state: &UseReducerHandle<State>, ctl: &Ctl, item: &Item) -> Html {
    let sample = &item.claim.sample;
    let payload = &sample.payload;
    let on_edit = act(state).reform(Action::Edit);
    let owner = item.text_owner();
    let text = payload.get("text").and_then(Value::as_str);
    let span_sources: Vec<&str> = item
        .schema
        .fields
        .iter()
        .filter_map(|f| match &f.kind {
            Kind::Known(FieldKind::Span { source, .. }) => Some(source.as_str()),
            _ => None,
        })
        .collect();

    let main_text = match (text, owner) {
        (Some(t), Some(o)) => {
            let (labels, spans) = match (&item.schema.fields[o].kind, &item.values[o]) {
                (Kind::Known(FieldKind::Span { labels, .. }), FieldValue::Spans(sp)) => {
                    (labels.clone(), sp.clone())
                }
                _ => (Vec::new(), Vec::new()),
            };
            html! {
                <SpanText field={o} text={Rc::<str>::from(t)} {spans} {labels} cursor={item.cursors[o]}
                    active={item.active == o} on_edit={on_edit.clone()} large=true />
            }
        }
        (Some(t), None) => html! { <p class="sample-text">{ t }</p> },
        _ => html! {},
    };
    let meta: Vec<(&String, &Value)> = payload
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "text" | "image_url" | "audio_url")
                        && !span_sources.contains(&k.as_str())
                })
                .collect()
        })
        .unwrap_or_default();
    let busy = item.busy != Busy::Idle;

    let fields = item.schema.fields.iter().enumerate().map(|(i, f)| {
        let span_text = item.span_text(i).map(Rc::<str>::from);
        let inline_canvas = span_text.is_some() && owner != Some(i) && !is_text_source(f);
        html! {
            <Field index={i} spec={Rc::new(f.clone())} value={item.values[i].clone()} active={item.active == i}
                error={item.errors.get(&i).cloned()} {span_text} {inline_canvas} cursor={item.cursors[i]}
                on_edit={on_edit.clone()} />
        }
    });

    let onsubmit = {
        let ctl = ctl.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            ctl.submit();
        })
    };
    let skip = act(state).reform(|_| Action::SkipOpen);
    let clear = act(state).reform(|_| Action::Clear);

    html! {
        <>
            { problem_banner(ctl, item) }
            <div class="label-grid" data-sample={sample.external_id.clone()} data-assignment={item.claim.assignment.id.to_string()}>
                <article class="sample" aria-label={format!("Sample {}", sample.external_id)}>
                    <p class="sample-id">{ &sample.external_id }</p>
                    { main_text }
                    if let Some(url) = payload.get("image_url").and_then(Value::as_str) {
                        <img class="sample-image" src={url.to_string()} alt={format!("Image of sample {}", sample.external_id)} />
                    }
                    if let Some(url) = payload.get("audio_url").and_then(Value::as_str) {
                        <audio class="sample-audio" controls=true src={url.to_string()}></audio>
                    }
                    if !meta.is_empty() {
                        <dl class="meta-list">
                            { for meta.iter().map(|(k, v)| html! {
                                <div><dt>{ k.as_str() }</dt><dd>{ v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()) }</dd></div>
                            }) }
                        </dl>
                    }
                </article>
                <form class="fields" {onsubmit} aria-label="Label" novalidate=true>
                    if !item.schema.instructions.is_empty() {
                        <details class="instructions">
                            <summary>{ "Instructions" }</summary>
                            <p>{ &item.schema.instructions }</p>
                        </details>
                    }
                    { for fields }
                    <div class="form-actions">
                        <button type="submit" class="primary" disabled={busy}>
                            { match item.busy { Busy::Submitting => "Saving…", Busy::Advancing => "Next…", _ => "Submit" } }
                            { " " }<kbd>{ "Enter" }</kbd>
                        </button>
                        <button type="button" onclick={skip} disabled={busy}>{ "Skip " }<kbd>{ "S" }</kbd></button>
                        <button type="button" class="quiet" onclick={clear} disabled={busy}>{ "Clear " }<kbd>{ "Esc" }</kbd></button>
                    </div>
                </form>
            </div>
        </>
    }
}

/// A callback that dispatches an action.
fn act(state: &UseReducerHandle<State>) -> Callback<Action> {
    state.dispatcher().to_callback()
}

fn is_text_source(f: &crate::model::FieldSpec) -> bool {
    matches!(&f.kind, Kind::Known(FieldKind::Span { source, .. }) if source == "text")
}

/// A server message as the start of a sentence.
fn sentence(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn problem_banner(ctl: &Ctl, item: &Item) -> Html {
    let Some(p) = &item.problem else {
        return html! {};
    };
    let retry = {
        let ctl = ctl.clone();
        Callback::from(move |_| ctl.submit())
    };
    let next = {
        let ctl = ctl.clone();
        Callback::from(move |_| ctl.take_next())
    };
    let (title, text, can_retry) = match p {
        Problem::LeaseLost(m) => (
            "This sample is no longer yours",
            format!(
                "{}. Your answers are still here: retry, or take the next sample (they are kept in case this \
                one comes back).",
                sentence(m)
            ),
            true,
        ),
        Problem::Conflict(m) => {
            ("Not saved", format!("{}. Your answers are still here.", sentence(m)), false)
        }
        Problem::NotSent(m) => ("Not saved yet", format!("{m} Your answers are kept."), true),
        Problem::Invalid(m) => ("Not saved", sentence(m), false),
        Problem::SkipFailed(m) => ("Skip did not go through", sentence(m), false),
    };
    html! {
        <div data-problem={match p { Problem::LeaseLost(_) => "lease", Problem::Conflict(_) => "conflict",
            Problem::NotSent(_) => "not-sent", Problem::Invalid(_) => "invalid", Problem::SkipFailed(_) => "skip" }}>
            <Notice title={title} tone="warn">
                <p>{ text }</p>
                <div class="actions">
                    if can_retry { <button type="button" class="primary" onclick={retry}>{ "Retry submit" }</button> }
                    <button type="button" onclick={next}>{ "Take the next sample" }</button>
                </div>
            </Notice>
        </div>
    }
}

fn skip_dialog(state: &UseReducerHandle<State>, ctl: &Ctl, reason: &str, error: Option<&str>) -> Html {
    let on_skip = {
        let ctl = ctl.clone();
        Callback::from(move |r: String| ctl.skip(r))
    };
    html! {
        <SkipDialog reason={reason.to_string()} error={error.map(str::to_string)} {on_skip}
            on_input={act(state).reform(Action::SkipReason)} on_close={act(state).reform(|_| Action::CloseOverlay)} />
    }
}

#[derive(Properties, PartialEq)]
struct SkipDialogProps {
    reason: String,
    error: Option<String>,
    on_skip: Callback<String>,
    on_input: Callback<String>,
    on_close: Callback<()>,
}

#[function_component(SkipDialog)]
fn skip_dialog_view(p: &SkipDialogProps) -> Html {
    let input = use_node_ref();
    {
        let input = input.clone();
        use_effect_with((), move |_| {
            if let Some(i) = input.cast::<HtmlInputElement>() {
                let _ = i.focus();
            }
        });
    }
    let onsubmit = {
        let (on_skip, reason) = (p.on_skip.clone(), p.reason.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            on_skip.emit(reason.clone());
        })
    };
    let oninput = p.on_input.reform(|e: InputEvent| {
        let el: HtmlInputElement = e.target_unchecked_into();
        el.value()
    });
    html! {
        <div class="overlay">
            <form class="dialog" role="dialog" aria-modal="true" aria-labelledby="skip-title" {onsubmit} data-dialog="skip">
                <h2 id="skip-title">{ "Skip this sample" }</h2>
                <label for="skip-reason">{ "Why? The reason is kept with the sample." }</label>
                <input id="skip-reason" ref={input} type="text" autocomplete="off" value={p.reason.clone()} {oninput}
                    maxlength="500" aria-invalid={p.error.is_some().to_string()} />
                if let Some(e) = &p.error { <p class="field-error" role="alert">{ e }</p> }
                <div class="options">
                    { for SKIP_REASONS.iter().map(|r| {
                        let on_skip = p.on_skip.clone();
                        let onclick = Callback::from(move |_| on_skip.emit(r.to_string()));
                        html! { <button type="button" class="option" {onclick}>{ *r }</button> }
                    }) }
                </div>
                <div class="actions">
                    <button type="submit" class="primary">{ "Skip" }</button>
                    <button type="button" class="quiet" onclick={p.on_close.reform(|_| ())}>
                        { "Cancel " }<kbd>{ "Esc" }</kbd>
                    </button>
                </div>
            </form>
        </div>
    }
}
