//! API tokens for scripts and the provincial system: created with an expiry (shown once),
//! listed, revoked one by one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::reply::Response;

use super::api::{Done, created, ok};
use super::table::Ctx;
use crate::error::Result;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    name: Option<String>,
    /// `province`: a token that reads only `GET /api/v1/province` (for provincial
    /// systems; province-wide admins).
    #[serde(default)]
    #[schemars(regex(pattern = "^province$"))]
    scope: Option<String>,
    /// Days until it stops working (1-730; 90 by default).
    #[serde(default)]
    #[schemars(range(min = 1, max = 730))]
    expires_days: Option<u32>,
}

/// A new API token: shown this once, kept only as a hash.
#[derive(Serialize, JsonSchema)]
pub struct TokenCreated {
    pub token: String,
}

pub async fn create_token(c: Ctx<'_>, body: TokenRequest) -> Result<Response> {
    let name = body.name.as_deref().unwrap_or("api");
    let token = c
        .cms
        .create_api_token(c.p()?, name, body.scope.as_deref(), body.expires_days)
        .await?;
    created(&TokenCreated { token })
}

pub async fn tokens(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.api_tokens(c.p()?).await?)
}

pub async fn revoke_token(c: Ctx<'_>) -> Result<Response> {
    c.cms.revoke_api_token(c.p()?, c.req.id(0)?).await?;
    ok(&Done { ok: true })
}
