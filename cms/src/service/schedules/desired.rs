//! A node's desired state, and the resolver input it and the previews are made from
//! (cached per target until any schedule, item or place changes).

use std::collections::HashMap;

use protocol::Tz;
use protocol::desired::DesiredState;
use protocol::schedule::ScheduleSpec;

use super::{PreviewTarget, commune_tz, quiet_hours, specs_of};
use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result, Text};
use crate::model::{Commune, Targets};
use crate::store as q;

impl Cms {
    /// The state a node should hold: the schedules that target it (through its village,
    /// the village's groups, or itself) with approved items only, versioned by content
    /// hash. The fleet link sends it; technicians can read it.
    pub async fn desired_state(&self, p: &Principal, node_id: i64) -> Result<DesiredState> {
        p.require(Perm::Read)?;
        let input = self.preview_input(PreviewTarget::Node(node_id)).await?;
        p.check_commune(
            input.commune.id,
            Text::new("Không tìm thấy cụm loa", "Node"),
        )?;
        desired_from(node_id, &input.commune, input.specs.clone())
    }

    /// [`Cms::desired_state`] without a caller (the fleet hub, for an authenticated node).
    pub async fn node_desired_state(&self, node_id: i64) -> Result<DesiredState> {
        let input = self.preview_input(PreviewTarget::Node(node_id)).await?;
        desired_from(node_id, &input.commune, input.specs.clone())
    }
}

/// A node's desired state: `specs` in `commune`'s zone and quiet hours, versioned by the
/// SHA-256 of its canonical JSON.
fn desired_from(node_id: i64, commune: &Commune, specs: Vec<ScheduleSpec>) -> Result<DesiredState> {
    let mut state = DesiredState {
        version: String::new(),
        node_id,
        tz: commune.tz.clone(),
        quiet_hours: quiet_hours(commune),
        schedules: specs,
    };
    let canonical = serde_json::to_vec(&state).map_err(|e| CmsError::Storage(e.to_string()))?;
    state.version = crate::blobs::sha256_hex(&canonical);
    Ok(state)
}

/// What the resolver needs for one target, read from the database once per change of
/// any schedule, content item or place (previews are read far more often than written).
pub(crate) struct PreviewInput {
    pub(super) commune: Commune,
    /// The commune's zone, parsed once.
    pub(super) tz: Tz,
    pub(super) specs: Vec<ScheduleSpec>,
    pub(super) titles: HashMap<i64, String>,
}

/// Everything of one commune its nodes' desired states are made from, read once per
/// generation: when a change reaches 10,000 nodes, each node's state is a filter of this
/// in memory, not five queries of its own.
pub(crate) struct CommuneSet {
    commune: Commune,
    tz: Tz,
    /// Enabled schedules, in id order, with their targets.
    schedules: Vec<(i64, Targets)>,
    specs: HashMap<i64, ScheduleSpec>,
    titles: HashMap<i64, String>,
    /// The groups each village is in.
    groups_of: HashMap<i64, Vec<i64>>,
    /// The village of each node.
    village_of: HashMap<i64, i64>,
}

impl CommuneSet {
    fn load(c: &rusqlite::Connection, commune_id: i64) -> Result<Self> {
        let commune = q::users::commune(c, commune_id)?;
        let mut schedules = q::schedules::list(c, commune_id)?;
        schedules.retain(|s| s.enabled);
        schedules.sort_by_key(|s| s.id);
        let (specs, titles) = specs_of(c, &schedules)?;
        let mut groups_of: HashMap<i64, Vec<i64>> = HashMap::new();
        for g in q::places::groups(c, commune_id)? {
            for v in g.village_ids {
                groups_of.entry(v).or_default().push(g.id);
            }
        }
        Ok(CommuneSet {
            tz: commune_tz(&commune)?,
            commune,
            schedules: schedules.into_iter().map(|s| (s.id, s.targets)).collect(),
            specs: specs.into_iter().map(|s| (s.id, s)).collect(),
            titles,
            groups_of,
            village_of: q::places::node_villages(c, commune_id)?,
        })
    }

    /// The resolver input of a node in `village_id`: the schedules aimed at the node, its
    /// village or one of the village's groups.
    fn for_node(&self, node_id: i64, village_id: i64) -> PreviewInput {
        let ids = self.aimed_at(node_id, village_id);
        PreviewInput {
            commune: self.commune.clone(),
            tz: self.tz,
            specs: ids
                .iter()
                .filter_map(|id| self.specs.get(id).cloned())
                .collect(),
            titles: ids
                .iter()
                .filter_map(|id| Some((*id, self.titles.get(id)?.clone())))
                .collect(),
        }
    }

    /// The ids of the schedules aimed at the node, its village or one of its groups.
    fn aimed_at(&self, node_id: i64, village_id: i64) -> Vec<i64> {
        let groups = self
            .groups_of
            .get(&village_id)
            .map_or(&[][..], Vec::as_slice);
        let aimed = |t: &Targets| {
            t.nodes.contains(&node_id)
                || t.villages.contains(&village_id)
                || t.groups.iter().any(|g| groups.contains(g))
        };
        self.schedules
            .iter()
            .filter(|(_, t)| aimed(t))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The node's desired state, straight from the set (no titles, no copy of the
    /// commune: 10,000 of these are made within a second of a change).
    fn desired(&self, node_id: i64, village_id: i64) -> Result<DesiredState> {
        let specs = self
            .aimed_at(node_id, village_id)
            .iter()
            .filter_map(|id| self.specs.get(id).cloned())
            .collect();
        desired_from(node_id, &self.commune, specs)
    }
}

impl Cms {
    /// A node's input: its place (one row), then its commune's set, read once per
    /// generation however many nodes ask at once.
    async fn node_input(&self, node_id: i64) -> Result<std::sync::Arc<PreviewInput>> {
        let generation = self.generation();
        let key = (0u8, node_id);
        if let Some(hit) = self.inner.preview_cache.get(key, generation) {
            return Ok(hit);
        }
        let node = self
            .store()
            .call(move |c| q::places::node(c, node_id))
            .await?;
        let set = self.commune_set(node.commune_id, generation).await?;
        let input = set.for_node(node_id, node.village_id);
        Ok(self.inner.preview_cache.put(key, generation, input))
    }

    /// The commune's set at `generation`, read by the first to ask.
    async fn commune_set(
        &self,
        commune_id: i64,
        generation: u64,
    ) -> Result<std::sync::Arc<CommuneSet>> {
        let cell = self
            .inner
            .preview_cache
            .commune_cell(commune_id, generation);
        let set = cell
            .get_or_try_init(|| async {
                self.store()
                    .call(move |c| CommuneSet::load(c, commune_id))
                    .await
                    .map(std::sync::Arc::new)
            })
            .await?;
        Ok(set.clone())
    }

    /// [`Cms::node_desired_state`] for a node known to be of `commune_id` (the fleet hub's
    /// sessions): straight from the commune's set, without a query of its own, so a
    /// change reaches 10,000 nodes as fast as their links take it.
    pub async fn node_desired_state_in(
        &self,
        node_id: i64,
        commune_id: i64,
    ) -> Result<DesiredState> {
        let set = self.commune_set(commune_id, self.generation()).await?;
        match set.village_of.get(&node_id) {
            Some(village) => set.desired(node_id, *village),
            // Added since the set was read.
            None => self.node_desired_state(node_id).await,
        }
    }

    pub(super) async fn preview_input(
        &self,
        target: PreviewTarget,
    ) -> Result<std::sync::Arc<PreviewInput>> {
        let key = match target {
            PreviewTarget::Node(id) => return self.node_input(id).await,
            PreviewTarget::Village(id) => (1u8, id),
        };
        let generation = self.generation();
        if let Some(hit) = self.inner.preview_cache.get(key, generation) {
            return Ok(hit);
        }
        let input = self
            .store()
            .call(move |c| {
                let (commune_id, villages, nodes) = match target {
                    PreviewTarget::Node(id) => {
                        let n = q::places::node(c, id)?;
                        (n.commune_id, vec![n.village_id], vec![n.id])
                    }
                    PreviewTarget::Village(id) => {
                        (q::places::village(c, id)?.commune_id, vec![id], vec![])
                    }
                };
                let groups = villages
                    .iter()
                    .map(|v| q::places::groups_of_village(c, *v))
                    .collect::<Result<Vec<_>>>()?
                    .concat();
                let commune = q::users::commune(c, commune_id)?;
                let schedules = q::schedules::targeting(c, &villages, &groups, &nodes)?;
                let (specs, titles) = specs_of(c, &schedules)?;
                Ok(PreviewInput {
                    tz: commune_tz(&commune)?,
                    commune,
                    specs,
                    titles,
                })
            })
            .await?;
        Ok(self.inner.preview_cache.put(key, generation, input))
    }
}
