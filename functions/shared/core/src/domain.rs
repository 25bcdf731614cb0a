//! Validated newtypes: a value of one of these types has passed its `parse`, so services and adapters never
//! re-check it.

use anvil_types::{CreateQueue, FieldError, NewSample, PatchQueue};

use crate::schema::{check_sample_payload, check_schema};

fn ident_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@' | '|'))
}

/// A tenant id, as carried by the verified token: 1..=64 characters of `[A-Za-z0-9_.:@|-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Option<Self> {
        ident_ok(s, 64).then(|| Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The acting user (the token's `sub`): 1..=255 printable characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    pub fn parse(s: &str) -> Option<Self> {
        (!s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control)).then(|| Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_name(name: &str, ptr: &str, errs: &mut Vec<FieldError>) {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) || n != name {
        errs.push(FieldError::new(
            ptr,
            "1..=100 characters, no leading/trailing spaces or control characters",
        ));
    }
}

fn check_description(d: &str, ptr: &str, errs: &mut Vec<FieldError>) {
    if d.chars().count() > 5000 {
        errs.push(FieldError::new(ptr, "at most 5000 characters"));
    }
}

fn check_lease(secs: i32, ptr: &str, errs: &mut Vec<FieldError>) {
    if !(10..=86_400).contains(&secs) {
        errs.push(FieldError::new(ptr, "must be 10..=86400 seconds"));
    }
}

/// Checks a queue creation request; returns every problem at once.
pub fn check_create_queue(q: &CreateQueue) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    check_name(&q.name, "/name", &mut errs);
    check_description(&q.description, "/description", &mut errs);
    if !(1..=50).contains(&q.overlap) {
        errs.push(FieldError::new("/overlap", "must be 1..=50"));
    }
    check_lease(q.lease_seconds, "/lease_seconds", &mut errs);
    errs.extend(check_schema(&q.schema, "/schema"));
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

pub fn check_patch_queue(q: &PatchQueue) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if let Some(n) = &q.name {
        check_name(n, "/name", &mut errs);
    }
    if let Some(d) = &q.description {
        check_description(d, "/description", &mut errs);
    }
    if let Some(l) = q.lease_seconds {
        check_lease(l, "/lease_seconds", &mut errs);
    }
    if let Some(s) = &q.schema {
        errs.extend(check_schema(s, "/schema"));
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Largest accepted serialized sample payload.
pub const MAX_SAMPLE_PAYLOAD_BYTES: usize = 256 * 1024;

pub fn check_samples(samples: &[NewSample]) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if samples.is_empty() {
        errs.push(FieldError::new("/samples", "at least one sample"));
    }
    if samples.len() > anvil_types::MAX_SAMPLES_PER_BATCH {
        errs.push(FieldError::new(
            "/samples",
            format!(
                "at most {} samples per call; use an import for more",
                anvil_types::MAX_SAMPLES_PER_BATCH
            ),
        ));
        return Err(errs);
    }
    let mut seen = std::collections::HashSet::new();
    for (i, s) in samples.iter().enumerate() {
        let id = &s.external_id;
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
            errs.push(FieldError::new(format!("/samples/{i}/external_id"), "1..=255 characters"));
        } else if !seen.insert(id.as_str()) {
            errs.push(FieldError::new(format!("/samples/{i}/external_id"), "appears twice in this batch"));
        }
        if let Some(e) = check_sample_payload(&s.payload, &format!("/samples/{i}/payload")) {
            errs.push(e);
        } else if s.payload.to_string().len() > MAX_SAMPLE_PAYLOAD_BYTES {
            errs.push(FieldError::new(format!("/samples/{i}/payload"), "larger than 256 KiB"));
        }
        if !(-1_000_000..=1_000_000).contains(&s.priority) {
            errs.push(FieldError::new(format!("/samples/{i}/priority"), "must be -1000000..=1000000"));
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// A release reason: 1..=500 characters.
pub fn check_reason(reason: &str) -> Result<(), Vec<FieldError>> {
    let n = reason.trim().chars().count();
    if n == 0 || reason.chars().count() > 500 {
        return Err(vec![FieldError::new("/reason", "give a reason of 1..=500 characters")]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_short_identifiers() {
        assert!(TenantId::parse("acme-01").is_some());
        assert!(TenantId::parse("").is_none());
        assert!(TenantId::parse("a b").is_none());
        assert!(TenantId::parse(&"x".repeat(65)).is_none());
    }

    #[test]
    fn subjects_reject_control_characters() {
        assert!(Subject::parse("alice@example.com").is_some());
        assert!(Subject::parse("bad\nname").is_none());
        assert!(Subject::parse("").is_none());
    }

    #[test]
    fn a_release_needs_a_reason() {
        assert!(check_reason("  ").is_err());
        assert!(check_reason("blurry image").is_ok());
    }
}
