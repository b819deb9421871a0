//! The review loop around an item: a new recording for it (back to approval), archiving
//! it (never deleting what may have played: play logs refer to it), and the decisions on
//! an author's items since their last visit.

use crate::auth::{Perm, Principal};
use crate::blobs::PendingBlob;
use crate::error::{CmsError, Result};
use protocol::schedule::Priority;

use crate::model::{Content, ContentKind, ContentStatus};
use crate::store::{self as q, now_ms};
use crate::{Cms, service::content::archived};

impl Cms {
    /// A new recording for an item: it is checked like an upload; an item that was
    /// pending, approved or rejected goes (back) to approval with it, a draft stays a
    /// draft. A typed announcement given a recording becomes a plain recording.
    pub async fn replace_audio(
        &self,
        p: &Principal,
        id: i64,
        blob: PendingBlob,
    ) -> Result<Content> {
        p.require(Perm::EditContent)?;
        let item = self.content(p, id).await?;
        if item.kind == ContentKind::Relay {
            return Err(CmsError::conflict(
                "Mục tiếp sóng không có bản ghi âm để thay.",
                "A relay item has no recording to replace.",
            ));
        }
        if item.archived_at.is_some() {
            return Err(archived(&item));
        }
        let (blob, info) = self.check_audio(blob).await?;
        let sha = blob.sha256.clone();
        let blobs = self.blobs().clone();
        tokio::task::spawn_blocking(move || blobs.commit(blob))
            .await
            .map_err(|e| CmsError::Storage(e.to_string()))??;
        let gain = info.gain_to(self.commune(item.commune_id).await?.loudness_target);
        self.change_content(p, id, "replace_audio", move |tx, before, _| {
            if before.archived_at.is_some() {
                return Err(archived(before));
            }
            let status = match before.status {
                ContentStatus::Draft => ContentStatus::Draft,
                _ => ContentStatus::Pending,
            };
            q::content::replace_media(tx, id, &sha, &info, gain, status)
        })
        .await
    }

    /// Archives an item (or restores it): archived items leave the library's lists and
    /// cannot be scheduled, submitted or approved. An item a schedule still plays cannot
    /// be archived: the schedule is named so it can be changed first.
    pub async fn set_archived(&self, p: &Principal, id: i64, archive: bool) -> Result<Content> {
        p.require(Perm::EditContent)?;
        let action = if archive { "archive" } else { "restore" };
        self.change_content(p, id, action, move |tx, before, _| {
                    if archive {
                        let uses = q::schedules::list(tx, before.commune_id)?
                            .into_iter()
                            .filter(|s| s.stopped_at.is_none() && s.priority != Priority::Emergency)
                            .find(|s| {
                                s.program.content_ids.contains(&id) || s.program.chime_id == Some(id)
                            });
                        if let Some(s) = uses {
                            return Err(CmsError::conflict(
                                format!(
                                    "Lịch “{}” còn phát nội dung này: hãy sửa hoặc xoá lịch trước khi lưu trữ.",
                                    s.title
                                ),
                                format!(
                                    "The schedule “{}” still plays this item: change or delete it before archiving.",
                                    s.title
                                ),
                            ));
                        }
                    }
                    q::content::set_archived(tx, id, archive)
        })
        .await
    }

    /// Approvals and rejections of the user's own items since they last marked them seen
    /// (a first look goes two weeks back): they stay on the dashboard, across reloads and
    /// logins, until the author says they have read them.
    pub async fn unseen_decisions(&self, p: &Principal) -> Result<Vec<Content>> {
        p.require(Perm::Read)?;
        let user = p.user.id;
        self.store()
            .call(move |c| {
                let since: Option<i64> = c.query_row(
                    "SELECT seen_decisions_at FROM users WHERE id = ?1",
                    [user],
                    |r| r.get(0),
                )?;
                let since = since.unwrap_or_else(|| now_ms() - 14 * 86_400_000);
                q::content::decided_since(c, user, since)
            })
            .await
    }

    /// The author has read the decisions shown so far.
    pub async fn mark_decisions_seen(&self, p: &Principal) -> Result<()> {
        p.require(Perm::Read)?;
        let user = p.user.id;
        self.write(move |c| {
            c.execute(
                "UPDATE users SET seen_decisions_at = ?2 WHERE id = ?1",
                rusqlite::params![user, now_ms()],
            )?;
            Ok(())
        })
        .await
    }
}
