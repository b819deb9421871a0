//! What villagers see without logging in: a commune's items marked public (approved, not
//! archived), for its public page, its podcast feed and their audio.

use crate::Cms;
use crate::error::{CmsError, Result};
use crate::model::{Commune, Content};
use crate::store::{self as q, ContentFilter};

/// Most items a public page or feed lists.
const PUBLIC_ITEMS: u32 = 50;

impl Cms {
    /// The commune by its slug and its public items, newest first.
    pub async fn public_items(&self, slug: &str) -> Result<(Commune, Vec<Content>)> {
        let slug = slug.to_owned();
        self.store()
            .call(move |c| {
                let commune = q::users::commune_by_slug(c, &slug)?;
                let filter = ContentFilter {
                    public_only: true,
                    limit: PUBLIC_ITEMS,
                    ..ContentFilter::default()
                };
                let mut items = q::content::list(c, commune.id, &filter)?;
                items.retain(|i| i.sha256.is_some());
                Ok((commune, items))
            })
            .await
    }

    /// A public item of the commune with this audio, or not found (nothing else is served
    /// without a login).
    pub async fn public_item_by_audio(&self, slug: &str, sha256: &str) -> Result<Content> {
        let (_, items) = self.public_items(slug).await?;
        items
            .into_iter()
            .find(|i| i.sha256.as_deref() == Some(sha256))
            .ok_or_else(|| CmsError::not_found("Không tìm thấy tệp âm thanh", "Audio"))
    }
}
