//! Route group `operations`: the tenant's background work at a glance (admin).

use anvil_types::OpsSummary;

use super::{Api, ApiError};

pub async fn summary(api: &Api) -> Result<OpsSummary, ApiError> {
    api.get("/v1/admin/ops/summary").await
}
