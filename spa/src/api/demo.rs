//! `GET /v1/demo/identities`: the demo's people with fresh tokens (only `anvil serve --demo` on a loopback
//! address answers it). Asked without a token: it is how one gets a token.

use anvil_types::DemoIdentities;
use gloo_net::http::Request;

use super::{ApiError, url};

pub async fn identities() -> Result<DemoIdentities, ApiError> {
    let res = Request::get(&url("/v1/demo/identities"))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(ApiError::network)?;
    let status = res.status();
    let text = res.text().await.map_err(ApiError::network)?;
    if !(200..300).contains(&status) {
        return Err(ApiError::from_answer(status, &res.status_text(), &text));
    }
    serde_json::from_str(&text).map_err(|e| ApiError::decode(status, e))
}
