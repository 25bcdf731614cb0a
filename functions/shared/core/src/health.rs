//! Readiness probes: each dependency answers within a short timeout or the process is not ready.

use std::sync::Arc;

use async_trait::async_trait;

use crate::store::Store;

#[async_trait]
pub trait Probe: Send + Sync {
    /// Dependency name shown in `/health/ready` (e.g. `database`, `blobs`).
    fn name(&self) -> &'static str;
    /// Ok when the dependency answers; the error text is shown to operators (no secrets in it).
    async fn check(&self) -> Result<(), String>;
}

/// The store as a readiness probe.
pub struct StoreProbe(pub Arc<dyn Store>);

#[async_trait]
impl Probe for StoreProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| match e {
            crate::Error::Unavailable(_) => "database unreachable".to_string(),
            _ => "database query failed".to_string(),
        })
    }
}

/// The blob store (S3 or the local directory) as a readiness probe.
pub struct BlobProbe(pub Arc<dyn crate::blob::BlobStore>);

#[async_trait]
impl Probe for BlobProbe {
    fn name(&self) -> &'static str {
        "blobs"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|_| format!("{} blob store unreachable", self.0.kind()))
    }
}
