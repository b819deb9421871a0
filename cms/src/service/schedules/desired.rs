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
use crate::model::Commune;
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
        desired_from(node_id, &input)
    }

    /// [`Cms::desired_state`] without a caller (the fleet hub, for an authenticated node).
    pub async fn node_desired_state(&self, node_id: i64) -> Result<DesiredState> {
        desired_from(
            node_id,
            &*self.preview_input(PreviewTarget::Node(node_id)).await?,
        )
    }
}

/// A node's desired state from its (cached) resolver input, versioned by the SHA-256 of
/// its canonical JSON.
fn desired_from(node_id: i64, input: &PreviewInput) -> Result<DesiredState> {
    let mut state = DesiredState {
        version: String::new(),
        node_id,
        tz: input.commune.tz.clone(),
        quiet_hours: quiet_hours(&input.commune),
        schedules: input.specs.clone(),
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

impl Cms {
    pub(super) async fn preview_input(
        &self,
        target: PreviewTarget,
    ) -> Result<std::sync::Arc<PreviewInput>> {
        let key = match target {
            PreviewTarget::Node(id) => (0u8, id),
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
