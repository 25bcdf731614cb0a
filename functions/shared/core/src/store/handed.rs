//! The leases this process handed out and has not yet seen submitted, shared by both adapters: their sample
//! and schema, so that their submit validates without reading them back and is one write. An assignment's
//! sample, schema version and labeler never change, so an entry can only be missing, never wrong; a miss
//! (another instance made the claim, the process restarted, the entry was evicted) costs one read. Bounded:
//! at most one live lease per labeler and queue, so a few thousand entries cover every labeler of an
//! instance.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use anvil_types::Claim;
use uuid::Uuid;

use crate::domain::{Subject, TenantId};

const HANDED_MAX: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct HandedLeases(Mutex<Handed>);

impl HandedLeases {
    /// Remembers a claim answered to this tenant's labeler.
    pub(crate) fn remember(&self, tenant: &TenantId, c: &Claim) {
        self.lock().remember(tenant, c);
    }

    /// Takes the claim of assignment `id` if this process handed it to this tenant's labeler.
    pub(crate) fn take(&self, tenant: &TenantId, labeler: &Subject, id: Uuid) -> Option<Claim> {
        self.lock().take(tenant, labeler, id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Handed> {
        // a panic while holding this lock cannot leave an entry half-written: use the map as it is
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct Handed {
    claims: HashMap<Uuid, (TenantId, Claim)>,
    order: VecDeque<Uuid>,
}

impl Handed {
    fn remember(&mut self, tenant: &TenantId, c: &Claim) {
        let id = c.assignment.id;
        if self.claims.contains_key(&id) {
            return;
        }
        while self.claims.len() >= HANDED_MAX {
            match self.order.pop_front() {
                Some(old) => {
                    self.claims.remove(&old);
                }
                None => break,
            }
        }
        if self.order.len() >= 2 * HANDED_MAX {
            // ids whose entry was taken by their submit
            let claims = &self.claims;
            self.order.retain(|x| claims.contains_key(x));
        }
        self.order.push_back(id);
        self.claims.insert(id, (tenant.clone(), c.clone()));
    }

    fn take(&mut self, tenant: &TenantId, labeler: &Subject, id: Uuid) -> Option<Claim> {
        match self.claims.get(&id) {
            Some((t, c)) if t == tenant && c.assignment.labeler == labeler.as_str() => {
                self.claims.remove(&id).map(|(_, c)| c)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::new_id;
    use anvil_types::{Assignment, AssignmentState, Sample};

    fn claim(labeler: &str) -> Claim {
        let now = time::OffsetDateTime::now_utc();
        Claim {
            assignment: Assignment {
                id: new_id(),
                queue_id: new_id(),
                sample_id: new_id(),
                labeler: labeler.into(),
                state: AssignmentState::Leased,
                version: 1,
                schema_version: 1,
                leased_at: now,
                expires_at: now,
                release_reason: None,
            },
            sample: Sample {
                id: new_id(),
                queue_id: new_id(),
                external_id: "x".into(),
                payload: serde_json::json!({"text": "t"}),
                priority: 0,
            },
            schema: serde_json::from_value(
                serde_json::json!({"fields": [{"name": "ok", "kind": "boolean"}]}),
            )
            .unwrap(),
            server_time: now,
        }
    }

    #[test]
    fn a_handed_claim_is_found_only_by_its_tenant_and_labeler_and_only_once() {
        let mut h = Handed::default();
        let (acme, globex) = (TenantId::parse("acme").unwrap(), TenantId::parse("globex").unwrap());
        let (alice, bob) = (Subject::parse("alice").unwrap(), Subject::parse("bob").unwrap());
        let c = claim("alice");
        h.remember(&acme, &c);
        assert!(h.take(&globex, &alice, c.assignment.id).is_none(), "another tenant");
        assert!(h.take(&acme, &bob, c.assignment.id).is_none(), "another labeler");
        assert_eq!(h.take(&acme, &alice, c.assignment.id).unwrap().sample, c.sample);
        assert!(h.take(&acme, &alice, c.assignment.id).is_none(), "taken once");
    }

    #[test]
    fn the_memory_stays_bounded() {
        let mut h = Handed::default();
        let acme = TenantId::parse("acme").unwrap();
        let alice = Subject::parse("alice").unwrap();
        let first = claim("alice");
        h.remember(&acme, &first);
        for i in 0..3 * HANDED_MAX {
            let c = claim("alice");
            h.remember(&acme, &c);
            if i % 2 == 0 {
                h.take(&acme, &alice, c.assignment.id);
            }
            assert!(h.claims.len() <= HANDED_MAX && h.order.len() <= 2 * HANDED_MAX + 1);
        }
        assert!(h.take(&acme, &alice, first.assignment.id).is_none(), "the oldest entry was evicted");
    }
}
