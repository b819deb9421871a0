//! `controller broker-acl`: a Mosquitto `acl_file` for the fleet, from the node table.
//! The controller's user may read and write the whole province's topics; each enrolled
//! node (broker user `node-{id}`) only its own and its village's live audio
//! ([`protocol::mqtt::node_acl`]). Written again (and Mosquitto sent SIGHUP) after nodes
//! are enrolled, moved or revoked: a revoked node's stanza is gone.

use cms::Cms;
use protocol::mqtt::{Root, node_acl};

/// A node's user on the broker.
pub fn node_user(node_id: i64) -> String {
    format!("node-{node_id}")
}

/// The ACL file's text.
pub async fn acl_file(cms: &Cms, root: &Root, controller_user: &str) -> anyhow::Result<String> {
    let nodes = cms
        .store()
        .call(|c| cms::store::node_link::enrolled(c))
        .await?;
    let mut out = format!(
        "# Loa Làng: Mosquitto acl_file for {root}/# (made by `controller broker-acl`)\n\n\
         user {controller_user}\ntopic readwrite {root}/#\n"
    );
    for n in nodes {
        let scope = root.scope(&n.commune_slug)?;
        out.push_str(&format!("\n# {} ({})\n", n.name.replace('\n', " "), scope));
        out.push_str(&node_acl(&scope, &node_user(n.id), n.id, n.village_id)?);
    }
    Ok(out)
}
