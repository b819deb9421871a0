//! What staff do, as [`Cms`](crate::Cms) methods. Each checks the caller's permission and
//! commune, validates input, changes the store in one transaction and writes the audit
//! log in that same transaction.

pub mod alerts;
mod content;
mod emergencies;
pub mod fleet;
mod live;
mod node_link;
mod node_reports;
mod places;
pub mod province;
mod public;
pub mod reports;
mod review;
mod schedules;
mod users;

pub(crate) use content::status_vi;
pub use content::{ContentPatch, UploadMeta};
pub use emergencies::{EMERGENCY_LEAD_MS, EmergencyRequest, EmergencyTargets};
pub use live::{LIVE_MAX_MS, LiveStart};
pub use node_link::{
    CommandRequest, CommandResponse, EnrollRequest, EnrollResponse, FleetLink, NODE_TOKEN_PREFIX,
};
pub use places::{NodeRequest, VILLAGE_KINDS};
pub(crate) use schedules::commune_tz;
pub use schedules::{PreviewPlay, PreviewTarget, ScheduleRequest};
pub use users::{API_TOKEN_DAYS, CommunePatch, MAX_API_TOKEN_DAYS, NewUserRequest};

use crate::auth::Principal;
use crate::store::AuditRecord;

/// One commune's set for one generation, filled once by whoever asks first.
type CommuneCell = std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<schedules::CommuneSet>>>;

/// Values read from the database, each good for as long as the number it was read at
/// (the CMS generation, or the node-token epoch) has not moved. The number is taken
/// *before* the read, so a write that lands meanwhile makes the value stale at once.
pub(crate) struct ByGeneration<K, V> {
    map: std::sync::Mutex<std::collections::HashMap<K, (u64, V)>>,
    max: usize,
}

impl<K: std::hash::Hash + Eq, V: Clone> ByGeneration<K, V> {
    /// At most `max` entries; beyond that it starts afresh rather than growing.
    pub(crate) fn new(max: usize) -> Self {
        ByGeneration {
            map: std::sync::Mutex::default(),
            max,
        }
    }

    pub(crate) fn get(&self, key: &K, generation: u64) -> Option<V> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn put(&self, key: K, generation: u64, value: V) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(key, (generation, value));
    }
}

/// Preview inputs by target, and communes' sets, valid for one generation.
pub(crate) struct PreviewCache {
    map: ByGeneration<(u8, i64), std::sync::Arc<schedules::PreviewInput>>,
    communes: std::sync::Mutex<std::collections::HashMap<i64, (u64, CommuneCell)>>,
}

/// Enough for every village and node of a province's busiest previews; beyond it the
/// cache starts afresh rather than growing.
const PREVIEW_CACHE_MAX: usize = 10_000;

impl Default for PreviewCache {
    fn default() -> Self {
        PreviewCache {
            map: ByGeneration::new(PREVIEW_CACHE_MAX),
            communes: std::sync::Mutex::default(),
        }
    }
}

impl PreviewCache {
    fn get(
        &self,
        key: (u8, i64),
        generation: u64,
    ) -> Option<std::sync::Arc<schedules::PreviewInput>> {
        self.map.get(&key, generation)
    }

    /// The cell of `commune`'s set at `generation` (a new, empty one once it moved on; a
    /// caller still at an older generation gets the newer set, which is as true).
    fn commune_cell(&self, commune: i64, generation: u64) -> CommuneCell {
        let mut map = self
            .communes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(commune)
            .or_insert_with(|| (generation, Default::default()));
        if entry.0 < generation {
            *entry = (generation, Default::default());
        }
        entry.1.clone()
    }

    fn put(
        &self,
        key: (u8, i64),
        generation: u64,
        input: schedules::PreviewInput,
    ) -> std::sync::Arc<schedules::PreviewInput> {
        let input = std::sync::Arc::new(input);
        self.map.put(key, generation, input.clone());
        input
    }
}

/// Writes that come from the fleet in bursts (10,000 nodes' heartbeats, an emergency's
/// reach), gathered for [`BATCH`] and applied in one transaction: one commit each was
/// most of the controller's work under load. Batches are applied in order, one at a time,
/// so a node's later report never lands before its earlier one.
pub(crate) struct Batcher<T> {
    pending: std::sync::Mutex<Vec<T>>,
    applying: tokio::sync::Mutex<()>,
}

/// A node's report of where it is with an emergency's play.
pub(crate) struct ReachReport {
    pub node_id: i64,
    pub schedule_id: i64,
    pub state: &'static str,
    pub message: String,
    pub at_ms: i64,
}

/// What a node was sent, for its batch; `_hold` is dropped once it is written.
pub(crate) struct SentRecord {
    pub node_id: i64,
    pub pairs: Vec<(i64, i64)>,
    pub _hold: Box<dyn Send>,
}

/// How long a batch gathers.
pub const BATCH: std::time::Duration = std::time::Duration::from_millis(100);

impl<T> Default for Batcher<T> {
    fn default() -> Self {
        Batcher {
            pending: std::sync::Mutex::default(),
            applying: tokio::sync::Mutex::const_new(()),
        }
    }
}

impl<T: Send + 'static> Batcher<T> {
    /// Adds `item`; the first of a batch schedules its write, `apply` with the whole batch
    /// [`BATCH`] later, as fleet traffic. Errors are logged.
    pub(crate) fn add<F, Fut>(self: &std::sync::Arc<Self>, item: T, apply: F)
    where
        F: FnOnce(Vec<T>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = crate::Result<()>> + Send,
    {
        let first = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.push(item);
            pending.len() == 1
        };
        if !first {
            return;
        }
        let me = self.clone();
        tokio::spawn(crate::store::as_fleet(async move {
            tokio::time::sleep(BATCH).await;
            // In turn (tokio's mutex is first come, first served), the batch taken once
            // it is this one's turn.
            let _turn = me.applying.lock().await;
            let batch = std::mem::take(
                &mut *me
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if batch.is_empty() {
                return;
            }
            if let Err(e) = apply(batch).await {
                tracing::warn!("fleet reports not stored: {e}");
            }
        }));
    }
}

/// An audit record for a change made by `p`.
fn audit_by<'a>(
    p: &'a Principal,
    commune_id: i64,
    action: &'a str,
    entity: &'a str,
    entity_id: i64,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> AuditRecord<'a> {
    AuditRecord {
        user_id: Some(p.user.id),
        username: Some(&p.user.username),
        commune_id: Some(commune_id),
        action,
        entity,
        entity_id: Some(entity_id),
        before,
        after,
    }
}

/// One audited change to an existing record, in one transaction: load it, let `change`
/// check and write (commune and state checks included), load it again, and record the
/// before and after in the audit log.
#[allow(clippy::too_many_arguments)]
fn change_audited<T: serde::Serialize>(
    c: &mut rusqlite::Connection,
    p: &Principal,
    action: &str,
    entity: &str,
    id: i64,
    load: impl Fn(&rusqlite::Connection, i64) -> crate::Result<T>,
    commune_of: impl Fn(&T) -> i64,
    change: impl FnOnce(&rusqlite::Connection, &T) -> crate::Result<()>,
) -> crate::Result<T> {
    let tx = c.transaction()?;
    let before = load(&tx, id)?;
    change(&tx, &before)?;
    let after = load(&tx, id)?;
    let record = audit_by(
        p,
        commune_of(&after),
        action,
        entity,
        id,
        to_json(&before),
        to_json(&after),
    );
    crate::store::audit(&tx, &record)?;
    tx.commit()?;
    Ok(after)
}

fn to_json<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// Trims a required text field and checks its length.
fn required(value: &str, max: usize, vi: &str, en: &str) -> crate::Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(crate::CmsError::invalid(
            format!("Thiếu {vi}."),
            format!("{en} is required."),
        ));
    }
    if v.chars().count() > max {
        return Err(crate::CmsError::invalid(
            format!("{vi} dài quá {max} ký tự."),
            format!("{en} is longer than {max} characters."),
        ));
    }
    Ok(v.to_owned())
}
