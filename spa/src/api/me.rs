//! `GET /v1/me`: who a token says its bearer is.

use anvil_types::Me;

use super::{Api, ApiError};

pub async fn me(api: &Api) -> Result<Me, ApiError> {
    api.get("/v1/me").await
}
