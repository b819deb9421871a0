//! Villages, groups of villages and speaker nodes.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{audit_by, change_audited, required, to_json};
use crate::Cms;
use crate::auth::{self, Perm, Principal};
use crate::error::{CmsError, Result, Text};
use crate::model::{Node, Village, VillageGroup};
use crate::store::{self as q, NodeUpdate};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::http::schema::position_both_or_neither)]
pub struct NodeRequest {
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    pub name: String,
    #[schemars(range(min = 1))]
    pub village_id: i64,
    #[serde(default)]
    #[schemars(range(min = -90.0, max = 90.0))]
    pub lat: Option<f64>,
    #[serde(default)]
    #[schemars(range(min = -180.0, max = 180.0))]
    pub lon: Option<f64>,
    #[serde(default)]
    pub notes: Option<String>,
}

impl NodeRequest {
    fn checked(self) -> Result<NodeUpdate> {
        let name = required(&self.name, 100, "tên cụm loa", "Node name")?;
        let lat_ok = self.lat.is_none_or(|v| (-90.0..=90.0).contains(&v));
        let lon_ok = self.lon.is_none_or(|v| (-180.0..=180.0).contains(&v));
        if !lat_ok || !lon_ok || self.lat.is_some() != self.lon.is_some() {
            return Err(CmsError::invalid(
                "Toạ độ GPS không hợp lệ (cần cả vĩ độ và kinh độ).",
                "Invalid GPS position (give both latitude and longitude).",
            ));
        }
        Ok(NodeUpdate {
            name,
            village_id: self.village_id,
            lat: self.lat,
            lon: self.lon,
            notes: self
                .notes
                .unwrap_or_default()
                .trim()
                .chars()
                .take(2000)
                .collect(),
        })
    }
}

pub const VILLAGE_KINDS: [(&str, &str, &str); 4] = [
    ("thon", "Thôn", "Village"),
    ("to_dan_pho", "Tổ dân phố", "Residential group"),
    ("ban", "Bản", "Hamlet (bản)"),
    ("ap", "Ấp", "Hamlet (ấp)"),
];

impl Cms {
    pub async fn create_village(
        &self,
        p: &Principal,
        name: &str,
        kind: Option<&str>,
        commune: Option<i64>,
    ) -> Result<Village> {
        p.require(Perm::ManagePlaces)?;
        let cid = p.commune(commune)?;
        let (name, kind) = village_fields(name, kind)?;
        let p = p.clone();
        self.write(move |c| {
            let tx = c.transaction()?;
            let id = q::places::insert_village(&tx, cid, &name, &kind)?;
            let v = q::places::village(&tx, id)?;
            q::audit(
                &tx,
                &audit_by(&p, cid, "create", "village", id, None, to_json(&v)),
            )?;
            tx.commit()?;
            Ok(v)
        })
        .await
    }

    /// Renames a village or changes its kind; its nodes, groups and schedules keep it.
    pub async fn update_village(
        &self,
        p: &Principal,
        id: i64,
        name: &str,
        kind: Option<&str>,
    ) -> Result<Village> {
        p.require(Perm::ManagePlaces)?;
        let (name, kind) = village_fields(name, kind)?;
        let p = p.clone();
        self.write(move |c| {
            change_audited(
                c,
                &p,
                "update",
                "village",
                id,
                q::places::village,
                |v: &Village| v.commune_id,
                |tx, before| {
                    p.check_commune(
                        before.commune_id,
                        Text::new("Không tìm thấy thôn", "Village"),
                    )?;
                    q::places::update_village(tx, id, &name, &kind)
                },
            )
        })
        .await
    }

    pub async fn villages(&self, p: &Principal, commune: Option<i64>) -> Result<Vec<Village>> {
        p.require(Perm::Read)?;
        let cid = p.commune(commune)?;
        self.store()
            .call(move |c| q::places::villages(c, cid))
            .await
    }

    pub async fn create_group(
        &self,
        p: &Principal,
        name: &str,
        villages: Vec<i64>,
    ) -> Result<VillageGroup> {
        p.require(Perm::ManagePlaces)?;
        let cid = p.commune(None)?;
        let name = required(name, 100, "tên nhóm", "Group name")?;
        let p = p.clone();
        self.write(move |c| {
            let id = q::places::insert_group(c, cid, &name, &villages)?;
            let g = q::places::groups(c, cid)?
                .into_iter()
                .find(|g| g.id == id)
                .ok_or_else(|| CmsError::Storage("group vanished".into()))?;
            q::audit(
                c,
                &audit_by(&p, cid, "create", "group", id, None, to_json(&g)),
            )?;
            Ok(g)
        })
        .await
    }

    pub async fn groups(&self, p: &Principal) -> Result<Vec<VillageGroup>> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        self.store().call(move |c| q::places::groups(c, cid)).await
    }

    /// Adds a node; the answer carries a one-time enrolment code (only its hash is kept).
    pub async fn create_node(&self, p: &Principal, req: NodeRequest) -> Result<(Node, String)> {
        p.require(Perm::ManageNodes)?;
        let cid = p.commune(None)?;
        let update = req.checked()?;
        let code = enrollment_code();
        let code_hash = auth::secret_hash(&code);
        let p = p.clone();
        let node = self
            .write(move |c| {
                let tx = c.transaction()?;
                let id = q::places::insert_node(&tx, cid, &update, &code_hash)?;
                let n = q::places::node(&tx, id)?;
                q::audit(
                    &tx,
                    &audit_by(&p, cid, "create", "node", id, None, to_json(&n)),
                )?;
                tx.commit()?;
                Ok(n)
            })
            .await?;
        Ok((node, code))
    }

    pub async fn update_node(&self, p: &Principal, id: i64, req: NodeRequest) -> Result<Node> {
        p.require(Perm::ManageNodes)?;
        let update = req.checked()?;
        let p = p.clone();
        let node = self
            .write(move |c| {
                let commune = |n: &Node| n.commune_id;
                change_audited(
                    c,
                    &p,
                    "update",
                    "node",
                    id,
                    q::places::node,
                    commune,
                    |tx, before| {
                        p.check_commune(
                            before.commune_id,
                            Text::new("Không tìm thấy cụm loa", "Node"),
                        )?;
                        q::places::update_node(tx, id, &update)
                    },
                )
            })
            .await;
        self.tokens_changed();
        node
    }

    pub async fn nodes(&self, p: &Principal) -> Result<Vec<Node>> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        let mut nodes = self.store().call(move |c| q::places::nodes(c, cid)).await?;
        for n in &mut nodes {
            self.fill_sync_state(n).await;
        }
        Ok(nodes)
    }

    /// Every node of every commune with its commune's slug and village's name, with its
    /// sync state (for `/metrics` and alerts: no caller to check).
    pub async fn all_nodes(&self) -> Result<Vec<(String, String, Node)>> {
        let rows = self
            .store()
            .call(|c| {
                let mut out = Vec::new();
                for commune in q::users::communes(c)? {
                    let villages = q::places::villages(c, commune.id)?;
                    for n in q::places::nodes(c, commune.id)? {
                        let village = villages
                            .iter()
                            .find(|v| v.id == n.village_id)
                            .map_or_else(String::new, |v| v.name.clone());
                        out.push((commune.slug.clone(), village, n));
                    }
                }
                Ok(out)
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (commune, village, mut n) in rows {
            self.fill_sync_state(&mut n).await;
            out.push((commune, village, n));
        }
        Ok(out)
    }

    /// One node, with its sync state.
    pub async fn node(&self, p: &Principal, id: i64) -> Result<Node> {
        p.require(Perm::Read)?;
        let mut n = self.store().call(move |c| q::places::node(c, id)).await?;
        p.check_commune(n.commune_id, Text::new("Không tìm thấy cụm loa", "Node"))?;
        self.fill_sync_state(&mut n).await;
        Ok(n)
    }

    /// Whether the node is online (heard from within the threshold), the version it
    /// should run and whether it lags behind it.
    async fn fill_sync_state(&self, n: &mut Node) {
        let limit = i64::try_from(self.config().node_offline_after_ms).unwrap_or(i64::MAX);
        let gone = self.gone_at(n.id);
        n.online = n.last_seen.is_some_and(|t| {
            (chrono::Utc::now() - t).num_milliseconds() < limit && gone.is_none_or(|g| t > g)
        });
        n.desired_version = self.node_desired_state(n.id).await.ok().map(|d| d.version);
        n.lagging = n.enrolled && n.desired_version != n.applied_version;
    }
}

/// Easy to read aloud over the phone to a technician on a ladder: 4 groups of 4
/// characters without look-alikes (no 0/O, 1/I/L), about 75 bits.
pub(super) fn enrollment_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A village's checked name and kind (`thon` unless given).
fn village_fields(name: &str, kind: Option<&str>) -> Result<(String, String)> {
    let name = required(name, 100, "tên thôn", "Village name")?;
    let kind = kind.unwrap_or("thon").to_owned();
    if !VILLAGE_KINDS.iter().any(|(k, _, _)| *k == kind) {
        return Err(CmsError::invalid(
            "Loại địa bàn không hợp lệ (thon, to_dan_pho, ban, ap).",
            "Unknown village kind (thon, to_dan_pho, ban, ap).",
        ));
    }
    Ok((name, kind))
}
