//! API handlers added with the review loop and operations: a new recording for an item,
//! archiving, hearing typed text before saving it, renaming villages, alerts, the
//! province's figures and `/metrics`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::http::{HeaderValue, header};
use warp::reply::Response;

use super::api::ok;
use super::schema::VillageKind;
use super::table::Ctx;
use super::{reply, upload};
use crate::error::Result;
use crate::tts;

/// The one part of a new recording (`multipart/form-data`), for the OpenAPI document.
#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
pub struct AudioForm {
    /// The audio file.
    #[schemars(extend("format" = "binary"))]
    file: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeechPreview {
    #[schemars(length(min = 1, max = 5000), regex(pattern = r"\S"))]
    text: String,
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z]{2,3}([-+][a-zA-Z0-9]+)*$"))]
    voice: Option<String>,
    /// Words per minute (150 by default).
    #[serde(default)]
    #[schemars(range(min = 80, max = 260))]
    speed: Option<u16>,
}

/// A voice the UI offers.
#[derive(Serialize, JsonSchema)]
pub struct Voice {
    id: &'static str,
    name: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VillageUpdate {
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    name: String,
    #[serde(default)]
    #[schemars(with = "Option<VillageKind>")]
    kind: Option<String>,
}

pub async fn replace_audio(c: Ctx<'_>) -> Result<Response> {
    let id = c.req.id(0)?;
    let (_, blob) = upload::receive(c.cms, c.req).await?;
    ok(&c.cms.replace_audio(c.p()?, id, blob).await?)
}

pub async fn archive(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.set_archived(c.p()?, c.req.id(0)?, true).await?)
}

pub async fn restore(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.set_archived(c.p()?, c.req.id(0)?, false).await?)
}

pub async fn speech_preview(c: Ctx<'_>, b: SpeechPreview) -> Result<Response> {
    let wav = c
        .cms
        .preview_speech(c.p()?, &b.text, b.voice.as_deref(), b.speed)
        .await?;
    let mut res = reply::with_status(200, "audio/wav", wav);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

pub async fn voices(c: Ctx<'_>) -> Result<Response> {
    let lang = c.req.lang;
    let list: Vec<Voice> = tts::VOICES
        .iter()
        .map(|(id, vi, en)| Voice {
            id,
            name: lang.t(vi, en).to_owned(),
        })
        .collect();
    ok(&list)
}

pub async fn update_village(c: Ctx<'_>, b: VillageUpdate) -> Result<Response> {
    let id = c.req.id(0)?;
    ok(&c
        .cms
        .update_village(c.p()?, id, &b.name, b.kind.as_deref())
        .await?)
}

pub async fn decisions_seen(c: Ctx<'_>) -> Result<Response> {
    c.cms.mark_decisions_seen(c.p()?).await?;
    ok(&super::api::Done { ok: true })
}

pub async fn alert_settings(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.alert_settings(c.p()?).await?)
}

pub async fn set_alert_settings(
    c: Ctx<'_>,
    b: crate::service::alerts::AlertSettings,
) -> Result<Response> {
    ok(&c.cms.set_alert_settings(c.p()?, b).await?)
}

pub async fn alerts(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.alerts(c.p()?).await?)
}

pub async fn province(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.province(c.p()?).await?)
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
pub async fn metrics(c: Ctx<'_>) -> Result<Response> {
    let text = c.cms.metrics_text().await?;
    Ok(reply::with_status(
        200,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        text,
    ))
}
