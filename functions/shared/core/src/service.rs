//! Services: the rules of each use case (who may do it, what input is valid), over the store port.
//! Handlers call these and only map HTTP; the store enforces what must hold under concurrency.

use std::sync::Arc;
use std::time::Duration;

use anvil_types::{
    AddGold, AddGoldResult, Decide, FinalLabel, FinalList, FinalMethod, FinalQuery, FinalSettings,
};
use anvil_types::{
    AddSamples, AddSamplesResult, Assignment, Claim, CreateQueue, CreateToken, CreatedToken, Label,
    LabelListQuery, PatchQueue, Queue, QueueStats, ReleaseAssignment, Review, ReviewLabel, Role, SubmitLabel,
    TokenInfo,
};
use anvil_types::{CreateExport, CreateImport, Export, Import, OpsSummary, TaskState};
use anvil_types::{GoldList, GoldSettings};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{JwtVerifier, PAT_PREFIX, Principal, new_pat, pat_hash};
use crate::blob::{BlobStore, FsBlobStore};
use crate::domain::{Subject, TenantId, check_create_queue, check_patch_queue, check_reason, check_samples};
use crate::error::{Error, Result};
use crate::quality::dawid_skene::{DsBuilder, DsClasses};
use crate::quality::final_label::{Decision, check_final_settings, decide as decide_final};
use crate::quality::gold::{GoldCache, GoldTally, check_gold, check_gold_settings, draw};
use crate::schema::validate_label;
#[cfg(feature = "aws")]
use crate::sqs::SqsDispatcher;
use crate::store::{LabelFilter, NewToken, Store, Submitted, TaskStore};

/// Most samples one page of `GET /v1/queues/{id}/final` reads (filtered pages may hold fewer items).
pub const FINAL_SCAN: u32 = 5_000;

/// Most gold samples listed by `GET /v1/queues/{id}/gold`.
pub const MAX_GOLD_LISTED: u32 = 10_000;

/// Everything a request needs, built once per process.
#[derive(Clone)]
pub struct Anvil {
    pub store: Arc<dyn Store>,
    pub jwt: Arc<JwtVerifier>,
    /// Exports, imports and jobs; `None` where a process serves no such routes.
    pub background: Option<Background>,
    /// Gold settings and labelers' standing, as the claim reads them (quality/gold.rs).
    pub gold: Arc<GoldCache>,
}

/// The ports of background work and their settings.
#[derive(Clone)]
pub struct Background {
    pub tasks: Arc<dyn TaskStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// The local directory store when that is the blob store (its signed URLs are served by Anvil itself).
    pub local: Option<FsBlobStore>,
    /// Default lifetime of an export's download URL.
    pub download_ttl: Duration,
    /// Lifetime of an import's upload URL.
    pub upload_ttl: Duration,
    /// Hands new jobs to SQS right after they are committed (AWS shape); `None` where workers poll.
    pub dispatcher: Option<Dispatcher>,
}

/// What hands committed jobs to SQS: the SQS dispatcher, or, in a build without the `aws` feature, a type
/// with no values (the field stays, so code that builds a [`Background`] compiles with or without it).
#[cfg(feature = "aws")]
pub type Dispatcher = SqsDispatcher;
/// What hands committed jobs to SQS (this build has no AWS support: no value exists).
#[cfg(not(feature = "aws"))]
#[derive(Debug, Clone)]
pub enum Dispatcher {}

impl Background {
    /// Best effort: a job not sent now is sent by the periodic sweep.
    async fn dispatch(&self) {
        #[cfg(feature = "aws")]
        if let Some(d) = &self.dispatcher
            && let Err(e) = d.dispatch_once(10).await
        {
            tracing::warn!(error = %e, "could not hand the job to SQS now; the sweep will");
        }
        #[cfg(not(feature = "aws"))]
        if let Some(d) = &self.dispatcher {
            match *d {}
        }
    }
}

/// Longest lifetime of a download URL: 7 days (also S3's limit for presigned URLs).
pub const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl std::fmt::Debug for Anvil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anvil").field("store", &self.store.backend()).field("jwt", &self.jwt).finish()
    }
}

impl Anvil {
    pub fn new(store: Arc<dyn Store>, jwt: Arc<JwtVerifier>) -> Self {
        Self { store, jwt, background: None, gold: Arc::default() }
    }

    pub fn with_background(mut self, bg: Background) -> Self {
        self.background = Some(bg);
        self
    }

    fn bg(&self) -> Result<&Background> {
        self.background.as_ref().ok_or(Error::Unavailable("export and import service"))
    }

    /// Verifies a bearer credential: a personal access token or a JWT.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if let Some(rest) = bearer.strip_prefix(PAT_PREFIX) {
            if rest.len() != 64 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Unauthorized("invalid or expired token".into()));
            }
            let rec = self.store.find_token(&pat_hash(bearer)).await?;
            return match rec {
                Some(r) if r.revoked_at.is_none() && r.expires_at > OffsetDateTime::now_utc() => {
                    Ok(Principal {
                        tenant: r.tenant,
                        subject: r.subject,
                        role: r.role,
                        method: crate::auth::AuthMethod::Pat,
                    })
                }
                _ => Err(Error::Unauthorized("invalid, expired or revoked token".into())),
            };
        }
        self.jwt.verify(bearer).await
    }

    // ---- queues (admin; labelers and auditors may read them to pick their work)

    pub async fn create_queue(&self, p: &Principal, req: &CreateQueue) -> Result<Queue> {
        p.require(Role::Admin)?;
        check_create_queue(req).map_err(Error::Validation)?;
        self.store.create_queue(&p.tenant, &p.subject, req).await
    }

    pub async fn list_queues(&self, p: &Principal) -> Result<Vec<Queue>> {
        let all = self.store.list_queues(&p.tenant).await?;
        // Labelers see the queues they can work in; archived ones only matter to auditors and admins.
        Ok(if p.role == Role::Labeler {
            all.into_iter().filter(|q| q.state != anvil_types::QueueState::Archived).collect()
        } else {
            all
        })
    }

    pub async fn get_queue(&self, p: &Principal, id: Uuid) -> Result<Queue> {
        self.store.get_queue(&p.tenant, id).await
    }

    pub async fn patch_queue(&self, p: &Principal, id: Uuid, req: &PatchQueue) -> Result<Queue> {
        p.require(Role::Admin)?;
        check_patch_queue(req).map_err(Error::Validation)?;
        self.store.patch_queue(&p.tenant, &p.subject, id, req).await
    }

    pub async fn queue_stats(&self, p: &Principal, id: Uuid) -> Result<QueueStats> {
        p.require(Role::Auditor)?;
        self.store.queue_stats(&p.tenant, id).await
    }

    /// How far the labels of a queue agree, per field and per labeler (auditor, admin). Computed from the
    /// stored labels on each call, in one streamed read of the queue's labels.
    pub async fn queue_quality(&self, p: &Principal, id: Uuid) -> Result<anvil_types::QualityReport> {
        p.require(Role::Auditor)?;
        let q = self.store.get_queue(&p.tenant, id).await?;
        let rejected = rejected_set(self.store.as_ref(), &p.tenant, id).await?;
        let mut c = crate::quality::Collector::new(&q.schema);
        let with_samples = c.needs_samples();
        self.store
            .quality_scan(&p.tenant, id, with_samples, &mut |row| {
                if !rejected.contains(&row.label_id) {
                    c.add(&row);
                }
            })
            .await?;
        let settings = self.store.gold_settings(&p.tenant, id).await?;
        for g in self.store.gold_labels(&p.tenant, id, None).await? {
            c.add_gold(&g.labeler, &g.payload, &g.answer);
        }
        Ok(c.report(q.id, q.overlap, q.schema_version, &settings))
    }

    pub async fn add_samples(
        &self,
        p: &Principal,
        queue: Uuid,
        req: &AddSamples,
    ) -> Result<AddSamplesResult> {
        p.require(Role::Admin)?;
        check_samples(&req.samples).map_err(Error::Validation)?;
        self.store.add_samples(&p.tenant, &p.subject, queue, &req.samples).await
    }

    // ---- assignments: every role can label (admins and auditors label too, under their own subject)

    /// The labeler's live lease, or a new one: on a queue with gold samples, a gold sample they have not
    /// seen at the queue's rate (nothing tells them it is gold), else the next ordinary sample. A labeler
    /// under the queue's gold floor gets a 403 `below_gold_floor` instead.
    pub async fn claim(&self, p: &Principal, queue: Uuid) -> Result<Option<Claim>> {
        let gold = self.gold_policy(p, queue).await?;
        if let Some(g) = &gold {
            if g.floor.is_some() && self.below_gold_floor(p, queue, g).await? {
                let f = g.floor.as_ref().map(|f| (f.min_accuracy, f.after)).unwrap_or_default();
                return Err(Error::Denied {
                    code: "below_gold_floor",
                    message: format!(
                        "your accuracy on this queue's check items is under its floor of {:.0} % (after {} items): \
                         it hands you no more samples; an admin can exempt you",
                        f.0 * 100.0,
                        f.1
                    ),
                });
            }
            if draw(g.rate)
                && let Some(c) = self.store.claim_gold(&p.tenant, &p.subject, queue).await?
            {
                self.gold.gold_lease(c.assignment.id);
                return Ok(Some(c));
            }
        }
        self.store.claim(&p.tenant, &p.subject, queue).await
    }

    /// The queue's gold settings when it uses gold (a rate or a floor), from the cache when fresh.
    async fn gold_policy(&self, p: &Principal, queue: Uuid) -> Result<Option<Arc<GoldSettings>>> {
        let s = match self.gold.settings(&p.tenant, queue) {
            Some(s) => s,
            None => match self.store.gold_settings(&p.tenant, queue).await {
                Ok(s) => {
                    let s = Arc::new(s);
                    self.gold.keep_settings(&p.tenant, queue, s.clone());
                    s
                }
                // An unknown queue: the ordinary claim answers it.
                Err(Error::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        Ok((s.rate > 0.0 || s.floor.is_some()).then_some(s))
    }

    async fn below_gold_floor(&self, p: &Principal, queue: Uuid, g: &GoldSettings) -> Result<bool> {
        if let Some(b) = self.gold.standing(&p.tenant, queue, p.subject.as_str()) {
            return Ok(b);
        }
        let q = self.store.get_queue(&p.tenant, queue).await?;
        let mut tally = GoldTally::default();
        for l in self.store.gold_labels(&p.tenant, queue, Some(&p.subject)).await? {
            tally.add(&q.schema, &l.payload, &l.answer);
        }
        let below = tally.below_floor(g, p.subject.as_str());
        self.gold.keep_standing(&p.tenant, queue, p.subject.as_str(), below);
        Ok(below)
    }

    pub async fn final_settings(&self, p: &Principal, queue: Uuid) -> Result<FinalSettings> {
        p.require(Role::Auditor)?;
        self.store.final_settings(&p.tenant, queue).await
    }

    /// Sets how the queue decides final answers (admin); rules are checked against its current schema.
    pub async fn put_final_settings(
        &self,
        p: &Principal,
        queue: Uuid,
        s: &FinalSettings,
    ) -> Result<FinalSettings> {
        p.require(Role::Admin)?;
        let q = self.store.get_queue(&p.tenant, queue).await?;
        check_final_settings(&q.schema, s).map_err(Error::Validation)?;
        self.store.put_final_settings(&p.tenant, &p.subject, queue, s).await
    }

    /// Final answers of the queue's samples in sample order (auditor, admin); `status` keeps only `final`,
    /// `adjudication` (the adjudication list) or `incomplete` ones. A page reads at most
    /// [`FINAL_SCAN`] samples: a filtered page may hold fewer than `limit` items and still have a cursor.
    pub async fn list_final(&self, p: &Principal, queue: Uuid, query: &FinalQuery) -> Result<FinalList> {
        p.require(Role::Auditor)?;
        let limit = query.limit.unwrap_or(100).clamp(1, 1000);
        if let Some(s) = &query.status
            && !["final", "adjudication", "incomplete"].contains(&s.as_str())
        {
            return Err(Error::BadRequest("status must be final, adjudication or incomplete".into()));
        }
        let after = match &query.cursor {
            Some(c) => {
                Some(Uuid::parse_str(c).map_err(|_| Error::BadRequest("not a cursor of this list".into()))?)
            }
            None => None,
        };
        let q = self.store.get_queue(&p.tenant, queue).await?;
        let settings = self.store.final_settings(&p.tenant, queue).await?;
        let rejected = rejected_set(self.store.as_ref(), &p.tenant, queue).await?;
        let ds = ds_classes(self.store.as_ref(), &p.tenant, &q, &settings, &rejected).await?;
        let page_size = limit.max(200);
        let mut items = Vec::new();
        let mut cursor = after;
        let mut scanned = 0u32;
        let mut more = true;
        while items.len() < limit as usize && scanned < FINAL_SCAN {
            let page = self.store.final_samples(&p.tenant, queue, cursor, None, page_size, &rejected).await?;
            more = page.len() == page_size as usize;
            for s in &page {
                scanned += 1;
                cursor = Some(s.sample_id);
                let f = decide_final(&q.schema, &settings, q.overlap, s, &|fi| ds.value(fi, s.sample_id));
                if query.status.as_ref().is_none_or(|st| *st == f.status) {
                    items.push(f);
                    if items.len() == limit as usize {
                        break;
                    }
                }
            }
            if !more {
                break;
            }
        }
        let next_cursor =
            (more || items.len() == limit as usize).then(|| cursor.map(|c| c.to_string())).flatten();
        Ok(FinalList { items, next_cursor })
    }

    /// An auditor's final answer for a sample waiting for adjudication: one of its labels (`label_id`) or
    /// an answer they write (checked against the schema). 409 `not_waiting` when the sample does not wait
    /// (decided, final without one, or not all its labels in).
    pub async fn adjudicate(
        &self,
        p: &Principal,
        queue: Uuid,
        sample: Uuid,
        req: &Decide,
    ) -> Result<FinalLabel> {
        p.require(Role::Auditor)?;
        let q = self.store.get_queue(&p.tenant, queue).await?;
        let settings = self.store.final_settings(&p.tenant, queue).await?;
        let rejected = rejected_set(self.store.as_ref(), &p.tenant, queue).await?;
        let Some(s) =
            self.store.final_samples(&p.tenant, queue, None, Some(sample), 1, &rejected).await?.pop()
        else {
            return Err(Error::NotFound("sample"));
        };
        let ds = ds_classes(self.store.as_ref(), &p.tenant, &q, &settings, &rejected).await?;
        let current = decide_final(&q.schema, &settings, q.overlap, &s, &|fi| ds.value(fi, s.sample_id));
        if current.status != "adjudication" {
            return Err(Error::conflict(
                "not_waiting",
                format!("the sample is not waiting for adjudication (it is {})", current.status),
            ));
        }
        let (answer, label) = match (&req.label_id, &req.answer) {
            (Some(id), None) => match s.labels.iter().find(|l| l.label_id == *id) {
                Some(l) => (l.payload.clone(), Some(*id)),
                None => return Err(Error::invalid("/label_id", "not one of this sample's labels")),
            },
            (None, Some(a)) => {
                let errs: Vec<anvil_types::FieldError> = validate_label(&q.schema, &s.payload, a)
                    .into_iter()
                    .map(|e| {
                        let rest = e.pointer.strip_prefix("/payload").unwrap_or(&e.pointer).to_string();
                        anvil_types::FieldError::new(format!("/answer{rest}"), e.message)
                    })
                    .collect();
                if !errs.is_empty() {
                    return Err(Error::Validation(errs));
                }
                (a.clone(), None)
            }
            _ => return Err(Error::invalid("", "give exactly one of label_id and answer")),
        };
        if !self.store.record_decision(&p.tenant, &p.subject, queue, sample, &answer, label).await? {
            return Err(Error::conflict("not_waiting", "another auditor decided this sample first"));
        }
        let mut decided = s;
        decided.decision = Some(Decision { answer, decided_by: p.subject.as_str().to_string() });
        Ok(decide_final(&q.schema, &settings, q.overlap, &decided, &|_| None))
    }

    /// Adds gold samples with their known answers (admin); each answer is checked against the queue's
    /// current schema, field by field.
    pub async fn add_gold(&self, p: &Principal, queue: Uuid, req: &AddGold) -> Result<AddGoldResult> {
        p.require(Role::Admin)?;
        let q = self.store.get_queue(&p.tenant, queue).await?;
        check_gold(&q.schema, &req.items).map_err(Error::Validation)?;
        let out = self.store.add_gold(&p.tenant, &p.subject, queue, &req.items).await?;
        self.gold.forget_queue(&p.tenant, queue);
        Ok(out)
    }

    /// The queue's gold samples with their answers (auditor, admin).
    pub async fn list_gold(&self, p: &Principal, queue: Uuid) -> Result<GoldList> {
        p.require(Role::Auditor)?;
        Ok(GoldList { items: self.store.list_gold(&p.tenant, queue, MAX_GOLD_LISTED).await? })
    }

    pub async fn gold_settings(&self, p: &Principal, queue: Uuid) -> Result<GoldSettings> {
        p.require(Role::Auditor)?;
        self.store.gold_settings(&p.tenant, queue).await
    }

    pub async fn put_gold_settings(
        &self,
        p: &Principal,
        queue: Uuid,
        s: &GoldSettings,
    ) -> Result<GoldSettings> {
        p.require(Role::Admin)?;
        check_gold_settings(s).map_err(Error::Validation)?;
        let out = self.store.put_gold_settings(&p.tenant, &p.subject, queue, s).await?;
        self.gold.forget_queue(&p.tenant, queue);
        Ok(out)
    }

    pub async fn get_assignment(&self, p: &Principal, id: Uuid) -> Result<Claim> {
        let own = (p.role == Role::Labeler).then_some(&p.subject);
        self.store.get_assignment(&p.tenant, id, own).await
    }

    pub async fn heartbeat(&self, p: &Principal, id: Uuid) -> Result<Assignment> {
        self.store.heartbeat(&p.tenant, &p.subject, id).await
    }

    pub async fn release(&self, p: &Principal, id: Uuid, req: &ReleaseAssignment) -> Result<Assignment> {
        check_reason(&req.reason).map_err(Error::Validation)?;
        self.store.release(&p.tenant, &p.subject, id, req.reason.trim()).await
    }

    // ---- labels

    pub async fn submit(&self, p: &Principal, req: &SubmitLabel) -> Result<Submitted> {
        let out = self
            .store
            .submit(&p.tenant, &p.subject, req.assignment_id, &req.payload, &validate_label)
            .await?;
        // A gold label changes the labeler's standing: read it again at their next claim.
        if let Submitted::Created(l) = &out {
            self.gold.submitted(&p.tenant, l.queue_id, p.subject.as_str(), l.assignment_id);
        }
        Ok(out)
    }

    pub async fn get_label(&self, p: &Principal, id: Uuid) -> Result<Label> {
        let l = self.store.get_label(&p.tenant, id).await?;
        // A labeler reads only its own labels; another's is as good as absent.
        if p.role == Role::Labeler && l.labeler != p.subject.as_str() {
            return Err(Error::NotFound("label"));
        }
        Ok(l)
    }

    /// A page of a queue's labels and the cursor of the next page.
    pub async fn list_labels(
        &self,
        p: &Principal,
        queue: Uuid,
        q: &LabelListQuery,
    ) -> Result<(Vec<Label>, Option<String>)> {
        let limit = q.limit.unwrap_or(anvil_types::DEFAULT_PAGE_SIZE);
        if limit == 0 || limit > anvil_types::MAX_PAGE_SIZE {
            return Err(Error::BadRequest(format!("limit must be 1..={}", anvil_types::MAX_PAGE_SIZE)));
        }
        let after = match &q.cursor {
            Some(c) => Some(decode_cursor(c)?),
            None => None,
        };
        let labeler =
            if p.role == Role::Labeler { Some(p.subject.as_str().to_string()) } else { q.labeler.clone() };
        let f = LabelFilter { sample_id: q.sample_id, labeler, after, limit: limit + 1 };
        let mut items = self.store.list_labels(&p.tenant, queue, &f).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|l| encode_cursor(l.id))
        } else {
            None
        };
        Ok((items, next))
    }

    pub async fn review(&self, p: &Principal, label: Uuid, req: &ReviewLabel) -> Result<Review> {
        p.require(Role::Auditor)?;
        if req.comment.chars().count() > 5000 {
            return Err(Error::invalid("/comment", "at most 5000 characters"));
        }
        if req.verdict == anvil_types::Verdict::Reject && req.comment.trim().is_empty() {
            return Err(Error::invalid("/comment", "say why the label is rejected"));
        }
        self.store.review(&p.tenant, &p.subject, label, req.verdict, req.comment.trim()).await
    }

    // ---- personal access tokens (admin)

    pub async fn create_token(&self, p: &Principal, req: &CreateToken) -> Result<CreatedToken> {
        p.require(Role::Admin)?;
        let mut errs = Vec::new();
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            errs.push(anvil_types::FieldError::new("/name", "1..=100 characters"));
        }
        let days = req.expires_in_days.unwrap_or(90);
        if !(1..=3650).contains(&days) {
            errs.push(anvil_types::FieldError::new("/expires_in_days", "must be 1..=3650"));
        }
        let subject = req.subject.clone().unwrap_or_else(|| format!("pat:{name}"));
        if Subject::parse(&subject).is_none() {
            errs.push(anvil_types::FieldError::new("/subject", "1..=255 characters, no control characters"));
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let token = new_pat()?;
        let new = NewToken {
            name: name.to_string(),
            role: req.role,
            subject,
            hash: pat_hash(&token),
            expires_at: OffsetDateTime::now_utc() + Duration::from_secs(86_400 * days.unsigned_abs()),
        };
        let info = self.store.create_token(&p.tenant, &p.subject, &new).await?;
        Ok(CreatedToken { token, info })
    }

    pub async fn list_tokens(&self, p: &Principal) -> Result<Vec<TokenInfo>> {
        p.require(Role::Admin)?;
        self.store.list_tokens(&p.tenant).await
    }

    pub async fn revoke_token(&self, p: &Principal, id: Uuid) -> Result<TokenInfo> {
        p.require(Role::Admin)?;
        self.store.revoke_token(&p.tenant, &p.subject, id).await
    }
}

impl Anvil {
    // ---- exports, imports, operations (admin)

    pub async fn create_export(&self, p: &Principal, queue: Uuid, req: &CreateExport) -> Result<Export> {
        p.require(Role::Admin)?;
        if let Some(l) = &req.filter.labeler
            && (l.is_empty() || l.len() > 255)
        {
            return Err(Error::invalid("/filter/labeler", "1..=255 characters"));
        }
        if let Some(v) = req.filter.schema_version
            && v < 1
        {
            return Err(Error::invalid("/filter/schema_version", "must be 1 or more"));
        }
        if req.mode == anvil_types::ExportMode::Final && req.filter != anvil_types::ExportFilter::default() {
            return Err(Error::invalid(
                "/filter",
                "a final export has one row per sample: filters apply to labels mode",
            ));
        }
        let bg = self.bg()?;
        let e = bg.tasks.create_export(&p.tenant, &p.subject, queue, req).await?.export;
        bg.dispatch().await;
        Ok(e)
    }

    /// An export; when it succeeded, with a download URL valid for `ttl` (default from configuration).
    pub async fn get_export(&self, p: &Principal, id: Uuid, ttl: Option<Duration>) -> Result<Export> {
        p.require(Role::Admin)?;
        let bg = self.bg()?;
        let ttl = ttl.unwrap_or(bg.download_ttl);
        if ttl < Duration::from_secs(60) || ttl > MAX_URL_TTL {
            return Err(Error::BadRequest("ttl_secs must be 60..=604800".into()));
        }
        let rec = bg.tasks.get_export(&p.tenant, id).await?;
        let mut e = rec.export;
        if e.state == TaskState::Succeeded {
            let name = format!("anvil-export-{}.{}", e.id.simple(), e.format.as_str());
            e.download_url = Some(bg.blobs.download_url(&rec.object_key, ttl, &name).await?);
            e.download_expires_at = Some(OffsetDateTime::now_utc() + ttl);
        }
        Ok(e)
    }

    pub async fn list_exports(&self, p: &Principal, queue: Uuid) -> Result<Vec<Export>> {
        p.require(Role::Admin)?;
        Ok(self.bg()?.tasks.list_exports(&p.tenant, queue).await?.into_iter().map(|r| r.export).collect())
    }

    /// Creates an import and a signed URL to upload its file to.
    pub async fn create_import(&self, p: &Principal, queue: Uuid, req: &CreateImport) -> Result<Import> {
        p.require(Role::Admin)?;
        let bg = self.bg()?;
        let rec = bg.tasks.create_import(&p.tenant, &p.subject, queue, req.format).await?;
        let mut i = rec.import;
        i.upload_url = Some(bg.blobs.upload_url(&rec.object_key, bg.upload_ttl).await?);
        i.upload_expires_at = Some(OffsetDateTime::now_utc() + bg.upload_ttl);
        Ok(i)
    }

    pub async fn start_import(&self, p: &Principal, id: Uuid) -> Result<Import> {
        p.require(Role::Admin)?;
        let bg = self.bg()?;
        let i = bg.tasks.start_import(&p.tenant, &p.subject, id).await?.import;
        bg.dispatch().await;
        Ok(i)
    }

    pub async fn get_import(&self, p: &Principal, id: Uuid) -> Result<Import> {
        p.require(Role::Admin)?;
        Ok(self.bg()?.tasks.get_import(&p.tenant, id).await?.import)
    }

    pub async fn ops_summary(&self, p: &Principal) -> Result<OpsSummary> {
        p.require(Role::Admin)?;
        self.bg()?.tasks.ops_summary(&p.tenant).await
    }
}

fn encode_cursor(id: Uuid) -> String {
    id.simple().to_string()
}

fn decode_cursor(c: &str) -> Result<Uuid> {
    Uuid::try_parse(c).map_err(|_| Error::BadRequest("invalid cursor".into()))
}

/// The queue's labels whose latest review rejects them, as a set (read once per report, list or export).
pub async fn rejected_set(
    store: &dyn Store,
    t: &TenantId,
    queue: Uuid,
) -> Result<std::collections::HashSet<Uuid>> {
    Ok(store.rejected_labels(t, queue).await?.into_iter().collect())
}

/// Dawid–Skene over the queue's nominal fields when the queue decides by it (gold samples anchor it); empty
/// otherwise. One streamed read of the queue's labels, those in `rejected` left out.
pub async fn ds_classes(
    store: &dyn Store,
    t: &TenantId,
    q: &Queue,
    settings: &FinalSettings,
    rejected: &std::collections::HashSet<Uuid>,
) -> Result<DsClasses> {
    if settings.method != FinalMethod::DawidSkene {
        return Ok(DsClasses::default());
    }
    let mut b = DsBuilder::new(&q.schema);
    store
        .quality_scan(t, q.id, false, &mut |row| {
            if !rejected.contains(&row.label_id) {
                b.add(row.sample_id, &row.labeler, &row.payload, None);
            }
        })
        .await?;
    for g in store.gold_labels(t, q.id, None).await? {
        b.add(g.sample_id, &g.labeler, &g.payload, Some(&g.answer));
    }
    Ok(b.estimate())
}
