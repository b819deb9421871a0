//! The content library and its approval workflow:
//! draft -> pending -> approved | rejected; an edit of an approved item sends it back to
//! pending, and nobody approves their own item unless the deployment allows it.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{audit_by, change_audited, required, to_json};
use crate::auth::{Perm, Principal};
use crate::blobs::PendingBlob;
use crate::error::{CmsError, Result, Text};
use crate::media::{self, MediaInfo};
use crate::model::{Content, ContentKind, ContentStatus, parse_category};
use crate::store::{self as q, ContentFilter, NewContent};
use crate::{Cms, tts};

/// The form fields that come with an upload.
#[derive(Debug, Default, Clone)]
pub struct UploadMeta {
    pub title: String,
    pub category: String,
    pub description: String,
    pub commune_id: Option<i64>,
}

impl UploadMeta {
    /// The title, category and description, checked (what an upload is refused for
    /// before its audio is looked at).
    pub fn checked(&self) -> Result<(String, &'static str, String)> {
        Ok((
            required(&self.title, MAX_TITLE, "tiêu đề", "Title")?,
            parse_category(&self.category)?,
            optional(&self.description)?,
        ))
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentPatch {
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub title: Option<String>,
    #[schemars(with = "Option<crate::http::schema::Category>")]
    pub category: Option<String>,
    pub description: Option<String>,
    pub public: Option<bool>,
}

/// An http(s) URL with a host, as a node's HTTP client will take it.
fn is_stream_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<warp::http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|h| !h.is_empty())
}

fn what() -> Text {
    Text::new("Không tìm thấy nội dung", "Content item")
}

const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 5000;

impl Cms {
    /// Refuses (as missing) a blob `reader` has no item of.
    pub async fn check_blob_readable(&self, sha256: &str, reader: q::BlobReader) -> Result<()> {
        // A fleet fetching a new item asks this a thousand times within a second: that
        // it is approved audio of the commune is kept for the generation (any change to
        // an item moves it), and asked of the database once.
        let generation = self.generation();
        let commune_key = match reader {
            q::BlobReader::Node { commune_id, .. } => Some((commune_id, sha256.to_owned())),
            q::BlobReader::Staff(_) => None,
        };
        let approved = commune_key
            .as_ref()
            .is_some_and(|k| self.inner.approved_blobs.get(k, generation).is_some());
        let sha = sha256.to_owned();
        let readable = if approved {
            q::Readable::ByCommune
        } else {
            self.store()
                .call(move |c| q::content::blob_readable(c, &sha, &reader))
                .await?
        };
        if let (q::Readable::ByCommune, Some(key), false) = (readable, commune_key, approved) {
            self.inner.approved_blobs.put(key, generation, ());
        }
        if readable != q::Readable::No {
            Ok(())
        } else {
            Err(CmsError::not_found(
                "Không tìm thấy tệp âm thanh",
                "Audio blob",
            ))
        }
    }

    pub async fn list_content(
        &self,
        p: &Principal,
        commune: Option<i64>,
        filter: ContentFilter,
    ) -> Result<Vec<Content>> {
        p.require(Perm::Read)?;
        let cid = p.commune(commune)?;
        self.store()
            .call(move |c| q::content::list(c, cid, &filter))
            .await
    }

    pub async fn content(&self, p: &Principal, id: i64) -> Result<Content> {
        p.require(Perm::Read)?;
        let item = self.store().call(move |c| q::content::get(c, id)).await?;
        p.check_commune(item.commune_id, what())?;
        Ok(item)
    }

    /// Accepts an uploaded file: decodes it in full, measures loudness, stores the blob
    /// under its hash and records a draft item. Nothing is kept if any step fails.
    pub async fn upload(
        &self,
        p: &Principal,
        meta: UploadMeta,
        blob: PendingBlob,
    ) -> Result<Content> {
        p.require(Perm::EditContent)?;
        let commune = p.commune(meta.commune_id)?;
        let (title, category, description) = meta.checked()?;
        let (blob, info) = self.check_audio(blob).await?;
        self.insert_audio(
            p,
            commune,
            ContentKind::Audio,
            &title,
            category,
            &description,
            blob,
            info,
            None,
        )
        .await
    }

    /// Uploads a file from disk (seeding, tools), through the same checks as an upload.
    pub async fn upload_file(
        &self,
        p: &Principal,
        meta: UploadMeta,
        path: &std::path::Path,
    ) -> Result<Content> {
        let blob = self.ingest(path.to_owned()).await?;
        self.upload(p, meta, blob).await
    }

    /// [`BlobStore::ingest`](crate::blobs::BlobStore::ingest) on the blocking pool.
    async fn ingest(&self, path: std::path::PathBuf) -> Result<PendingBlob> {
        let (blobs, limit) = (self.blobs().clone(), self.config().max_upload_bytes);
        tokio::task::spawn_blocking(move || blobs.ingest(&path, limit))
            .await
            .map_err(|e| CmsError::Storage(e.to_string()))?
    }

    /// Text to speech: the text becomes audio through the TTS command, then takes the
    /// upload path; the text is kept with the item.
    pub async fn create_tts(
        &self,
        p: &Principal,
        title: &str,
        text: &str,
        voice: Option<&str>,
        speed: Option<u16>,
        category: Option<&str>,
    ) -> Result<Content> {
        p.require(Perm::EditContent)?;
        self.speak(p, title, text, (voice, speed), category).await
    }

    /// Typed text as it would sound (a WAV file), nothing stored: heard before saving.
    pub async fn preview_speech(
        &self,
        p: &Principal,
        text: &str,
        voice: Option<&str>,
        speed: Option<u16>,
    ) -> Result<Vec<u8>> {
        p.require(Perm::EditContent)?;
        let text = required(text, tts::MAX_TEXT_CHARS, "nội dung", "Text")?;
        let out = self.synthesize(&text, (voice, speed)).await?;
        Ok(tokio::fs::read(out.path()).await?)
    }

    /// The TTS engine's WAV for `text` in a temporary file.
    async fn synthesize(
        &self,
        text: &str,
        (voice, speed): (Option<&str>, Option<u16>),
    ) -> Result<tempfile::NamedTempFile> {
        let voice = voice.unwrap_or(tts::DEFAULT_VOICE);
        tts::check_voice(voice)?;
        let speed = tts::check_speed(speed)?;
        let out = tempfile::Builder::new()
            .suffix(".wav")
            .tempfile_in(self.blobs().tmp_dir())?;
        tts::synthesize(&self.config().tts_command, text, voice, speed, out.path()).await?;
        Ok(out)
    }

    /// [`Cms::create_tts`] without the permission check: an emergency typed on the spot
    /// by a leader is synthesised the same way (and approved by its author).
    pub(super) async fn speak(
        &self,
        p: &Principal,
        title: &str,
        text: &str,
        voice: (Option<&str>, Option<u16>),
        category: Option<&str>,
    ) -> Result<Content> {
        let commune = p.commune(None)?;
        let title = required(title, MAX_TITLE, "tiêu đề", "Title")?;
        let text = required(text, tts::MAX_TEXT_CHARS, "nội dung", "Text")?;
        let category = parse_category(category.unwrap_or("announcement"))?;
        let out = self.synthesize(&text, voice).await?;
        // What the engine wrote goes in as an upload.
        let blob = self.ingest(out.path().to_owned()).await?;
        let (blob, info) = self.check_audio(blob).await?;
        self.insert_audio(
            p,
            commune,
            ContentKind::Tts,
            &title,
            category,
            "",
            blob,
            info,
            Some(&text),
        )
        .await
    }

    /// A relay: a named external stream (e.g. the provincial station) with how long one
    /// relay session lasts.
    pub async fn create_relay(
        &self,
        p: &Principal,
        title: &str,
        url: &str,
        duration_ms: u64,
    ) -> Result<Content> {
        p.require(Perm::EditContent)?;
        let commune = p.commune(None)?;
        let title = required(title, MAX_TITLE, "tiêu đề", "Title")?;
        let url = required(url, 2000, "địa chỉ luồng", "Stream URL")?;
        if !is_stream_url(&url) {
            return Err(CmsError::invalid(
                "Địa chỉ luồng phải là một địa chỉ http:// hoặc https:// đầy đủ.",
                "The stream URL must be a whole http:// or https:// address.",
            ));
        }
        if duration_ms == 0 || duration_ms > 24 * 3_600_000 {
            return Err(CmsError::invalid(
                "Thời lượng tiếp sóng phải từ 1 giây đến 24 giờ.",
                "A relay lasts between 1 second and 24 hours.",
            ));
        }
        let p2 = p.clone();
        self.write(move |c| {
            let new = NewContent {
                commune_id: commune,
                kind: ContentKind::Relay,
                title: &title,
                category: "relay",
                description: "",
                media: None,
                relay_url: Some(&url),
                tts_text: None,
                duration_ms,
                gain_db: 0.0,
                author_id: Some(p2.user.id),
            };
            insert_audited(c, &p2, commune, &new)
        })
        .await
    }

    pub(super) async fn check_audio(&self, blob: PendingBlob) -> Result<(PendingBlob, MediaInfo)> {
        tokio::task::spawn_blocking(move || {
            let info = media::analyse(blob.file.path(), blob.size)?;
            Ok((blob, info))
        })
        .await
        .map_err(|e| CmsError::Storage(format!("upload check failed: {e}")))?
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_audio(
        &self,
        p: &Principal,
        commune: i64,
        kind: ContentKind,
        title: &str,
        category: &'static str,
        description: &str,
        blob: PendingBlob,
        info: MediaInfo,
        tts_text: Option<&str>,
    ) -> Result<Content> {
        let sha = blob.sha256.clone();
        let blobs = self.blobs().clone();
        // The file goes in place first: a row never points at a missing blob. A crash
        // between the two leaves only an unreferenced file.
        tokio::task::spawn_blocking(move || blobs.commit(blob))
            .await
            .map_err(|e| CmsError::Storage(e.to_string()))??;
        let target = self.commune(commune).await?.loudness_target;
        let (title, description, tts_text) = (
            title.to_owned(),
            description.to_owned(),
            tts_text.map(str::to_owned),
        );
        let p2 = p.clone();
        self.write(move |c| {
            let new = NewContent {
                commune_id: commune,
                kind,
                title: &title,
                category,
                description: &description,
                media: Some((&sha, &info)),
                relay_url: None,
                tts_text: tts_text.as_deref(),
                duration_ms: info.duration_ms,
                gain_db: info.gain_to(target),
                author_id: Some(p2.user.id),
            };
            insert_audited(c, &p2, commune, &new)
        })
        .await
    }

    pub async fn submit(&self, p: &Principal, id: i64) -> Result<Content> {
        p.require(Perm::EditContent)?;
        self.transition(p, id, "submit", |item, _| match item.status {
            _ if item.archived_at.is_some() => Err(archived(item)),
            ContentStatus::Draft => Ok((ContentStatus::Pending, None)),
            // Sent back unchanged, it would only be rejected again.
            ContentStatus::Rejected if item.edited_at.is_none() => {
                Err(CmsError::conflict(
                    "Nội dung bị từ chối chưa được sửa: hãy sửa theo lý do (hoặc thay bản ghi âm) rồi gửi duyệt lại.",
                    "The rejected item has not changed: fix it as the reason says (or replace the recording), then submit it again.",
                ))
            }
            ContentStatus::Rejected => Ok((ContentStatus::Pending, None)),
            _ => Err(wrong_state(item.status, "nộp duyệt", "submit")),
        })
        .await
    }

    pub async fn approve(&self, p: &Principal, id: i64) -> Result<Content> {
        p.require(Perm::Approve)?;
        let self_ok = self.config().allow_self_approval;
        self.transition(p, id, "approve", move |item, p| {
            if item.status != ContentStatus::Pending {
                return Err(wrong_state(item.status, "phê duyệt", "approve"));
            }
            if item.archived_at.is_some() {
                return Err(archived(item));
            }
            if !self_ok && item.author_id == Some(p.user.id) {
                return Err(CmsError::forbidden(
                    "Không ai được tự phê duyệt nội dung của mình.",
                    "Nobody approves their own item.",
                ));
            }
            Ok((ContentStatus::Approved, None))
        })
        .await
    }

    pub async fn reject(&self, p: &Principal, id: i64, reason: &str) -> Result<Content> {
        p.require(Perm::Approve)?;
        let reason = required(reason, 1000, "lý do từ chối", "A reason")?;
        self.transition(p, id, "reject", move |item, _| match item.status {
            ContentStatus::Pending | ContentStatus::Approved => {
                Ok((ContentStatus::Rejected, Some(reason.clone())))
            }
            _ => Err(wrong_state(item.status, "từ chối", "reject")),
        })
        .await
    }

    async fn transition<F>(
        &self,
        p: &Principal,
        id: i64,
        action: &'static str,
        decide: F,
    ) -> Result<Content>
    where
        F: FnOnce(&Content, &Principal) -> Result<(ContentStatus, Option<String>)> + Send + 'static,
    {
        self.change_content(p, id, action, move |tx, before, p| {
            let (status, reason) = decide(before, p)?;
            let approver = match status {
                ContentStatus::Approved | ContentStatus::Rejected => Some(p.user.id),
                _ => None,
            };
            q::content::set_status(tx, id, status, approver, reason.as_deref())
        })
        .await
    }

    /// An audited change of one item of the caller's commune, in one transaction:
    /// `change` sees the item as it was.
    pub(super) async fn change_content<F>(
        &self,
        p: &Principal,
        id: i64,
        action: &'static str,
        change: F,
    ) -> Result<Content>
    where
        F: FnOnce(&rusqlite::Connection, &Content, &Principal) -> Result<()> + Send + 'static,
    {
        let p = p.clone();
        self.write(move |c| {
            let commune = |i: &Content| i.commune_id;
            change_audited(
                c,
                &p,
                action,
                "content",
                id,
                q::content::get,
                commune,
                |tx, before| {
                    p.check_commune(before.commune_id, what())?;
                    change(tx, before, &p)
                },
            )
        })
        .await
    }

    /// Edits metadata. Changing what listeners hear about an approved item (title,
    /// category, description) sends it back to pending; the public flag alone does not.
    pub async fn patch_content(
        &self,
        p: &Principal,
        id: i64,
        patch: ContentPatch,
    ) -> Result<Content> {
        p.require(Perm::EditContent)?;
        let title = patch
            .title
            .as_deref()
            .map(|t| required(t, MAX_TITLE, "tiêu đề", "Title"))
            .transpose()?;
        let category = patch.category.as_deref().map(parse_category).transpose()?;
        let description = patch.description.as_deref().map(optional).transpose()?;
        self.change_content(p, id, "update", move |tx, before, _| {
            let mut item = before.clone();
            if let Some(t) = title {
                item.title = t;
            }
            if let Some(cat) = category {
                item.category = cat.to_owned();
            }
            if let Some(d) = description {
                item.description = d;
            }
            if let Some(public) = patch.public {
                item.public = public;
            }
            let edited = item.title != before.title
                || item.category != before.category
                || item.description != before.description;
            let status = if edited && before.status == ContentStatus::Approved {
                ContentStatus::Pending
            } else {
                before.status
            };
            q::content::update_meta(tx, &item, status, edited)
        })
        .await
    }
}

fn insert_audited(
    c: &mut rusqlite::Connection,
    p: &Principal,
    commune: i64,
    new: &NewContent,
) -> Result<Content> {
    let tx = c.transaction()?;
    let id = q::content::insert(&tx, new)?;
    let item = q::content::get(&tx, id)?;
    q::audit(
        &tx,
        &audit_by(p, commune, "create", "content", id, None, to_json(&item)),
    )?;
    tx.commit()?;
    Ok(item)
}

fn optional(value: &str) -> Result<String> {
    let v = value.trim();
    if v.chars().count() > MAX_DESCRIPTION {
        return Err(CmsError::invalid(
            format!("Mô tả dài quá {MAX_DESCRIPTION} ký tự."),
            format!("The description is longer than {MAX_DESCRIPTION} characters."),
        ));
    }
    Ok(v.to_owned())
}

/// Archived items are out of the workflow until restored.
pub(super) fn archived(item: &Content) -> CmsError {
    CmsError::conflict(
        format!("“{}” đã được lưu trữ: hãy khôi phục trước.", item.title),
        format!("“{}” is archived: restore it first.", item.title),
    )
}

fn wrong_state(status: ContentStatus, vi: &str, en: &str) -> CmsError {
    CmsError::conflict(
        format!(
            "Không thể {vi} nội dung đang ở trạng thái “{}”.",
            status_vi(status)
        ),
        format!("Cannot {en} an item that is {}.", status.as_str()),
    )
}

pub fn status_vi(s: ContentStatus) -> &'static str {
    match s {
        ContentStatus::Draft => "nháp",
        ContentStatus::Pending => "chờ duyệt",
        ContentStatus::Approved => "đã duyệt",
        ContentStatus::Rejected => "bị từ chối",
    }
}
