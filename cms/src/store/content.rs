//! The content library: blobs (one row per distinct audio file) and content items.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_ms;
use crate::error::{CmsError, Result};
use crate::media::MediaInfo;
use crate::model::{Content, ContentKind, ContentStatus, ms_to_time};

pub struct NewContent<'a> {
    pub commune_id: i64,
    pub kind: ContentKind,
    pub title: &'a str,
    pub category: &'a str,
    pub description: &'a str,
    /// Audio items: the stored blob and what the upload check measured.
    pub media: Option<(&'a str, &'a MediaInfo)>,
    pub relay_url: Option<&'a str>,
    pub tts_text: Option<&'a str>,
    /// Relay items: how long one relay session lasts.
    pub duration_ms: u64,
    pub gain_db: f64,
    pub author_id: Option<i64>,
}

#[derive(Debug, Default, Clone)]
pub struct ContentFilter {
    pub q: Option<String>,
    pub category: Option<String>,
    pub status: Option<ContentStatus>,
    pub public_only: bool,
    /// Archived items only (otherwise they are left out).
    pub archived: bool,
    pub limit: u32,
    pub offset: u32,
}

const COLS: &str = "c.id, c.commune_id, c.kind, c.title, c.category, c.description, c.sha256, c.relay_url,
    c.tts_text, b.format, b.codec, b.sample_rate, b.channels, b.size, c.duration_ms, b.loudness_lufs,
    c.gain_db, c.status, c.reject_reason, c.public, c.author_id, ua.display_name, c.approver_id,
    up.display_name, c.created_at, c.updated_at, c.approved_at, c.decided_at, c.edited_at,
    c.archived_at";
const FROM: &str = "content c LEFT JOIN blobs b ON b.sha256 = c.sha256
    LEFT JOIN users ua ON ua.id = c.author_id LEFT JOIN users up ON up.id = c.approver_id";

fn row(r: &Row) -> rusqlite::Result<Content> {
    let kind: String = r.get(2)?;
    let status: String = r.get(17)?;
    Ok(Content {
        id: r.get(0)?,
        commune_id: r.get(1)?,
        kind: match kind.as_str() {
            "tts" => ContentKind::Tts,
            "relay" => ContentKind::Relay,
            _ => ContentKind::Audio,
        },
        title: r.get(3)?,
        category: r.get(4)?,
        description: r.get(5)?,
        sha256: r.get(6)?,
        relay_url: r.get(7)?,
        tts_text: r.get(8)?,
        format: r.get(9)?,
        codec: r.get(10)?,
        sample_rate: r.get(11)?,
        channels: r.get(12)?,
        size: r.get(13)?,
        duration_ms: r.get(14)?,
        loudness_lufs: r.get(15)?,
        gain_db: r.get(16)?,
        status: ContentStatus::parse(&status).unwrap_or(ContentStatus::Draft),
        reject_reason: r.get(18)?,
        public: r.get(19)?,
        author_id: r.get(20)?,
        author: r.get(21)?,
        approver_id: r.get(22)?,
        approver: r.get(23)?,
        created_at: ms_to_time(r.get(24)?),
        updated_at: ms_to_time(r.get(25)?),
        approved_at: r.get::<_, Option<i64>>(26)?.map(ms_to_time),
        decided_at: r.get::<_, Option<i64>>(27)?.map(ms_to_time),
        edited_at: r.get::<_, Option<i64>>(28)?.map(ms_to_time),
        archived_at: r.get::<_, Option<i64>>(29)?.map(ms_to_time),
    })
}

/// Records the blob (if new) and the item; the caller holds the transaction.
pub fn insert(tx: &Connection, c: &NewContent) -> Result<i64> {
    let now = now_ms();
    if let Some((sha, m)) = c.media {
        tx.execute(
            "INSERT INTO blobs (sha256, size, format, codec, sample_rate, channels, duration_ms, loudness_lufs, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(sha256) DO NOTHING",
            params![sha, m.size, m.format, m.codec, m.sample_rate, m.channels, m.duration_ms, m.loudness_lufs, now],
        )?;
    }
    let kind = match c.kind {
        ContentKind::Audio => "audio",
        ContentKind::Tts => "tts",
        ContentKind::Relay => "relay",
    };
    let duration = c.media.map_or(c.duration_ms, |(_, m)| m.duration_ms);
    tx.execute(
        "INSERT INTO content (commune_id, kind, title, category, description, sha256, relay_url, tts_text,
             duration_ms, gain_db, status, author_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'draft', ?11, ?12, ?12)",
        params![
            c.commune_id, kind, c.title, c.category, c.description, c.media.map(|m| m.0),
            c.relay_url, c.tts_text, duration, c.gain_db, c.author_id, now
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn get(conn: &Connection, id: i64) -> Result<Content> {
    conn.prepare_cached(&format!("SELECT {COLS} FROM {FROM} WHERE c.id = ?1"))?
        .query_row([id], row)
        .optional()?
        .ok_or_else(|| CmsError::not_found("Không tìm thấy nội dung", "Content item"))
}

pub fn list(conn: &Connection, commune_id: i64, f: &ContentFilter) -> Result<Vec<Content>> {
    let q =
        f.q.as_ref()
            .map(|q| format!("%{}%", q.replace(['%', '_'], "")));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM {FROM}
         WHERE c.commune_id = ?1
           AND (?2 IS NULL OR c.title LIKE ?2 OR c.description LIKE ?2 OR c.tts_text LIKE ?2)
           AND (?3 IS NULL OR c.category = ?3)
           AND (?4 IS NULL OR c.status = ?4)
           AND (?5 = 0 OR (c.public = 1 AND c.status = 'approved'))
           AND (c.archived_at IS NOT NULL) = ?8
         ORDER BY c.id DESC LIMIT ?6 OFFSET ?7"
    ))?;
    let rows = st.query_map(
        params![
            commune_id,
            q,
            f.category,
            f.status.map(|s| s.as_str()),
            f.public_only,
            f.limit,
            f.offset,
            f.archived
        ],
        row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn set_status(
    conn: &Connection,
    id: i64,
    status: ContentStatus,
    approver_id: Option<i64>,
    reason: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    let approved_at = (status == ContentStatus::Approved).then_some(now);
    let decided = matches!(status, ContentStatus::Approved | ContentStatus::Rejected);
    // A rejection's reason stays with the item until it is approved: the approver sees
    // why it came back, the author what to fix.
    conn.execute(
        "UPDATE content SET status = ?2, approver_id = ?3,
             reject_reason = CASE WHEN ?2 = 'approved' THEN NULL ELSE COALESCE(?4, reject_reason) END,
             approved_at = ?5, updated_at = ?6,
             decided_at = CASE WHEN ?7 THEN ?6 ELSE decided_at END,
             edited_at = CASE WHEN ?7 THEN NULL ELSE edited_at END
         WHERE id = ?1",
        params![id, status.as_str(), approver_id, reason, approved_at, now, decided],
    )?;
    Ok(())
}

/// A new recording for an item (the blob recorded if new): it becomes plain audio with
/// the new length and gain, at `status`.
pub fn replace_media(
    tx: &Connection,
    id: i64,
    sha: &str,
    m: &MediaInfo,
    gain_db: f64,
    status: ContentStatus,
) -> Result<()> {
    let now = now_ms();
    tx.execute(
        "INSERT INTO blobs (sha256, size, format, codec, sample_rate, channels, duration_ms, loudness_lufs, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(sha256) DO NOTHING",
        params![sha, m.size, m.format, m.codec, m.sample_rate, m.channels, m.duration_ms, m.loudness_lufs, now],
    )?;
    tx.execute(
        "UPDATE content SET kind = 'audio', sha256 = ?2, tts_text = NULL, duration_ms = ?3, gain_db = ?4,
             status = ?5, approver_id = NULL, approved_at = NULL, updated_at = ?6, edited_at = ?6
         WHERE id = ?1",
        params![id, sha, m.duration_ms, gain_db, status.as_str(), now],
    )?;
    Ok(())
}

pub fn set_archived(conn: &Connection, id: i64, archived: bool) -> Result<()> {
    let now = now_ms();
    conn.execute(
        "UPDATE content SET archived_at = CASE WHEN ?2 THEN ?3 END, updated_at = ?3 WHERE id = ?1",
        params![id, archived, now],
    )?;
    Ok(())
}

/// Decisions on `author`'s items after `since` (ms), newest first.
pub fn decided_since(conn: &Connection, author: i64, since: i64) -> Result<Vec<Content>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM {FROM}
         WHERE c.author_id = ?1 AND c.decided_at > ?2 AND c.status IN ('approved','rejected')
         ORDER BY c.decided_at DESC LIMIT 50"
    ))?;
    let rows = st.query_map(params![author, since], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update_meta(
    conn: &Connection,
    c: &Content,
    status: ContentStatus,
    edited: bool,
) -> Result<()> {
    conn.execute(
        "UPDATE content SET title = ?2, category = ?3, description = ?4, public = ?5, status = ?6,
             approver_id = CASE WHEN ?6 = 'approved' THEN approver_id ELSE NULL END,
             approved_at = CASE WHEN ?6 = 'approved' THEN approved_at ELSE NULL END,
             updated_at = ?7, edited_at = CASE WHEN ?8 THEN ?7 ELSE edited_at END
         WHERE id = ?1",
        params![
            c.id,
            c.title,
            c.category,
            c.description,
            c.public,
            status.as_str(),
            now_ms(),
            edited
        ],
    )?;
    Ok(())
}

/// Several items in one query (schedule programs); missing ids are simply absent.
pub fn get_many(conn: &Connection, ids: &[i64]) -> Result<Vec<Content>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Ids are integers: safe to inline.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut st = conn.prepare(&format!("SELECT {COLS} FROM {FROM} WHERE c.id IN ({list})"))?;
    let rows = st.query_map([], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Who may read a blob by its hash: `None` for a province-wide reader (every commune).
pub enum BlobReader {
    /// Staff of a commune (`None`: province-wide): any item of theirs, whatever its state.
    Staff(Option<i64>),
    /// A speaker node: approved items of its commune and whatever it was sent.
    Node { node_id: i64, commune_id: i64 },
}

/// Whether a reader may fetch a blob, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readable {
    No,
    Yes,
    /// Approved audio of the node's commune: as true for every node there.
    ByCommune,
}

/// Whether `reader` may fetch the blob `sha256`. Hashes are not secrets (a listener can
/// compute one from a recording), so a draft or another commune's audio is never served
/// on the hash alone.
pub fn blob_readable(conn: &Connection, sha256: &str, reader: &BlobReader) -> Result<Readable> {
    let yes = |found: bool, then: Readable| if found { then } else { Readable::No };
    Ok(match *reader {
        BlobReader::Staff(None) => yes(
            conn.prepare_cached("SELECT 1 FROM content WHERE sha256 = ?1 LIMIT 1")?
                .exists([sha256])?,
            Readable::Yes,
        ),
        BlobReader::Staff(Some(commune)) => yes(
            conn.prepare_cached(
                "SELECT 1 FROM content WHERE sha256 = ?1 AND commune_id = ?2 LIMIT 1",
            )?
            .exists(params![sha256, commune])?,
            Readable::Yes,
        ),
        BlobReader::Node {
            node_id,
            commune_id,
        } => {
            let approved = conn
                .prepare_cached(
                    "SELECT 1 FROM content WHERE sha256 = ?1 AND commune_id = ?2 AND status = 'approved' LIMIT 1",
                )?
                .exists(params![sha256, commune_id])?;
            if approved {
                Readable::ByCommune
            } else {
                yes(
                    conn.prepare_cached(
                        "SELECT 1 FROM node_sent s JOIN content c ON c.id = s.content_id
                          WHERE s.node_id = ?2 AND c.sha256 = ?1 LIMIT 1",
                    )?
                    .exists(params![sha256, node_id])?,
                    Readable::Yes,
                )
            }
        }
    })
}
