//! The villagers' side, no login: a commune's public page (`/public/{slug}`), its RSS 2.0
//! podcast feed (`/public/{slug}/feed.xml`, enclosures with their real lengths and
//! types) and the audio they point at. Small pages, no script, cacheable for five
//! minutes; audio by hash, cacheable for good.

use maud::{DOCTYPE, html};
use warp::http::{HeaderValue, header};
use warp::reply::Response;

use super::table::Ctx;
use super::{Req, blob, reply};
use crate::error::{CmsError, Result};
use crate::model::Content;

/// The audio's media type and file extension, from its container.
fn media_type(format: Option<&str>) -> (&'static str, &'static str) {
    match format.unwrap_or("") {
        "mp3" | "mp2" => ("audio/mpeg", "mp3"),
        "isomp4" => ("audio/mp4", "m4a"),
        "ogg" => ("audio/ogg", "ogg"),
        "flac" => ("audio/flac", "flac"),
        "wave" => ("audio/wav", "wav"),
        "aiff" => ("audio/aiff", "aiff"),
        "webm" | "mkv" | "matroska" => ("audio/webm", "webm"),
        _ => ("application/octet-stream", "bin"),
    }
}

fn audio_path(slug: &str, c: &Content) -> String {
    let (_, ext) = media_type(c.format.as_deref());
    format!(
        "/public/{slug}/audio/{}.{ext}",
        c.sha256.as_deref().unwrap_or("")
    )
}

/// Where villagers reach this server: the configured public URL, else this request's host.
fn base_url(c: &Ctx<'_>) -> String {
    match &c.cms.config().public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => format!("http://{}", c.req.header("host").unwrap_or("localhost")),
    }
}

fn cached(mut res: Response, seconds: u32) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={seconds}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// What an item says: its typed text, else its description.
fn words(c: &Content) -> &str {
    c.tts_text.as_deref().unwrap_or(&c.description)
}

fn slug(req: &Req) -> String {
    req.params.first().cloned().unwrap_or_default()
}

pub async fn page(c: Ctx<'_>) -> Result<Response> {
    let slug = slug(c.req);
    let (commune, items) = c.cms.public_items(&slug).await?;
    let tz = crate::service::commune_tz(&commune)?;
    let lang = c.req.lang;
    let title = format!("{} · {}", lang.t("Loa Làng", "Loa Làng"), commune.name);
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/app.css";
                link rel="alternate" type="application/rss+xml" title=(title) href={ "/public/" (slug) "/feed.xml" };
            }
            body {
                header { span.brand { (title) } }
                main {
                    h1 { (lang.t("Nghe lại thông báo", "Listen again")) }
                    p.muted {
                        (lang.t("Các bản tin, thông báo của xã phát trên loa truyền thanh.", "The commune's news and announcements, as the loudspeakers played them."))
                        " " a href={ "/public/" (slug) "/feed.xml" } { (lang.t("Theo dõi bằng ứng dụng podcast (RSS)", "Follow in a podcast app (RSS)")) }
                    }
                    @if items.is_empty() {
                        p { (lang.t("Chưa có thông báo công khai.", "Nothing public yet.")) }
                    }
                    @for i in &items {
                        article.card id={ "item-" (i.id) } {
                            h2 { (i.title) }
                            p.muted { (i.approved_at.unwrap_or(i.created_at).with_timezone(&tz).format("%H:%M %d/%m/%Y")) }
                            @if !words(i).is_empty() { p.tts-text { (words(i)) } }
                            audio controls preload="none" src=(audio_path(&slug, i)) {}
                        }
                    }
                }
            }
        }
    };
    Ok(cached(reply::html(200, page.into_string()), 300))
}

/// XML text, escaped.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub async fn feed(c: Ctx<'_>) -> Result<Response> {
    let slug = slug(c.req);
    let (commune, items) = c.cms.public_items(&slug).await?;
    let base = base_url(&c);
    let page = format!("{base}/public/{slug}/");
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\n",
    );
    out += &format!(
        "<title>{}</title><link>{}</link><description>{}</description><language>vi</language>\n",
        xml(&format!("Loa Làng · {}", commune.name)),
        xml(&page),
        xml(&format!(
            "Bản tin và thông báo của {} trên loa truyền thanh",
            commune.name
        )),
    );
    if let Some(newest) = items.first() {
        let at = newest.approved_at.unwrap_or(newest.created_at);
        out += &format!("<lastBuildDate>{}</lastBuildDate>\n", at.to_rfc2822());
    }
    for i in &items {
        let (kind, _) = media_type(i.format.as_deref());
        out += &format!(
            "<item><title>{}</title><link>{}</link><guid isPermaLink=\"false\">loa-{}-{}-{}</guid><pubDate>{}</pubDate><description>{}</description><enclosure url=\"{}\" length=\"{}\" type=\"{kind}\"/></item>\n",
            xml(&i.title),
            xml(&format!("{page}#item-{}", i.id)),
            xml(&slug),
            i.id,
            i.sha256.as_deref().map_or("", |s| &s[..s.len().min(12)]),
            i.approved_at.unwrap_or(i.created_at).to_rfc2822(),
            xml(words(i)),
            xml(&format!("{base}{}", audio_path(&slug, i))),
            i.size.unwrap_or(0),
        );
    }
    out += "</channel></rss>\n";
    Ok(cached(
        reply::with_status(200, "application/rss+xml; charset=utf-8", out),
        300,
    ))
}

pub async fn audio(c: Ctx<'_>) -> Result<Response> {
    let slug = slug(c.req);
    let file = c.req.params.get(1).cloned().unwrap_or_default();
    let (sha, ext) = file.split_once('.').unwrap_or((&file, ""));
    let item = c.cms.public_item_by_audio(&slug, sha).await?;
    if media_type(item.format.as_deref()).1 != ext {
        return Err(CmsError::not_found("Không tìm thấy tệp âm thanh", "Audio"));
    }
    let mut res = blob::serve(c.cms, sha, c.req).await?;
    let (kind, _) = media_type(item.format.as_deref());
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(res)
}
