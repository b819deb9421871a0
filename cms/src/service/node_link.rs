//! Node-facing operations: enrolment, node tokens, revocation, health history, play logs
//! and remote commands (what nodes report as they go: `node_reports`). The controller's fleet hub calls the methods
//! without a [`Principal`] (the node is proven by its token); staff call the others.

use protocol::link::{Command, PlayLogEntry};
pub use protocol::link::{EnrollRequest, EnrollResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::audit_by;
use crate::Cms;
use crate::auth::{self, Perm, Principal};
use crate::error::{CmsError, Result, Text};
use crate::model::{ContentStatus, NodeEvent, PlayLog};
use crate::store::{self as q, node_link::NodeIdentity};

/// Node tokens start with this, so a request's bearer says which kind it is.
pub const NODE_TOKEN_PREFIX: &str = "ln_";
/// Longest play log id a node may choose, and longest reason kept.
const MAX_LOG_ID: usize = 64;
const MAX_REASON: usize = 500;

/// What the controller's fleet hub offers the CMS: reaching a node's live session.
pub trait FleetLink: Send + Sync {
    /// Hands a command to the node's session; false when the node is not connected.
    fn command(&self, node_id: i64, id: u64, command: Command) -> bool;
    /// Ends the node's session at once (it was revoked).
    fn disconnect(&self, node_id: i64);
    /// Node links connected now.
    fn sessions(&self) -> usize {
        0
    }
}

/// A technician's command, as the API takes it (`play_now` names an approved item). The
/// variants without fields are empty structs so that unknown fields are refused there too
/// (serde ignores them on unit variants of an internally tagged enum).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandRequest {
    SetVolume {
        #[schemars(range(max = 100))]
        volume: u8,
    },
    Stop {},
    /// Play an approved item at once.
    PlayNow {
        #[schemars(range(min = 1))]
        content_id: i64,
    },
    /// A 1 kHz tone, 1-60 s (default 5).
    TestTone {
        #[serde(default)]
        #[schemars(range(min = 1, max = 60))]
        seconds: Option<u32>,
    },
    Resync {},
    Restart {},
}

#[derive(Serialize, JsonSchema)]
pub struct CommandResponse {
    pub id: u64,
    /// The node had a live session and the command went to it.
    pub delivered: bool,
}

fn wrong_code() -> CmsError {
    CmsError::forbidden(
        "Mã kích hoạt không đúng hoặc đã được dùng. Hãy xin mã mới.",
        "The enrolment code is wrong or already used. Ask for a new one.",
    )
}

/// Codes are read aloud and typed on small keyboards: case, spaces and dashes don't count.
fn normalise_code(code: &str) -> Option<String> {
    let chars: Vec<char> = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (chars.len() == 16).then(|| {
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-")
    })
}

impl Cms {
    /// Play logs the nodes of the caller's commune reported, started within `[from, to)`
    /// (milliseconds since the epoch), optionally of one node.
    pub async fn play_logs(
        &self,
        p: &Principal,
        node: Option<i64>,
        from: i64,
        to: i64,
    ) -> Result<Vec<PlayLog>> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        self.store()
            .call(move |c| q::playlogs::list(c, cid, node, from, to))
            .await
    }

    /// Trades a one-time enrolment code for a node token. Failures count against the
    /// caller's address like failed logins.
    pub async fn enroll_node(&self, req: EnrollRequest, ip: &str) -> Result<EnrollResponse> {
        let attempt = self.inner.enrol_limiter.begin(&auth::enrol_keys(ip))?;
        let Some(code) = normalise_code(&req.code) else {
            return Err(wrong_code());
        };
        let token = format!("{NODE_TOKEN_PREFIX}{}", auth::new_secret());
        let (code_hash, token_hash) = (auth::secret_hash(&code), auth::secret_hash(&token));
        let found = self
            .store()
            .call(move |c| q::node_link::enroll(c, &code_hash, &token_hash))
            .await?;
        match found {
            q::node_link::Enrolment::Enrolled(n) => {
                attempt.succeeded();
                tracing::info!(node = n.id, name = %n.name, "node enrolled");
                let broker_scope =
                    protocol::mqtt::Root::parse_str(&self.config().broker_topic_root)
                        .and_then(|root| root.scope(&n.commune_slug))
                        .map(|scope| scope.to_string())
                        .ok();
                Ok(EnrollResponse {
                    node_id: n.id,
                    name: n.name,
                    token,
                    broker_scope,
                })
            }
            q::node_link::Enrolment::Expired => Err(CmsError::forbidden(
                "Mã kích hoạt đã hết hạn (dùng được 7 ngày): xin quản trị viên cấp mã mới.",
                "This enrolment code has expired (codes last 7 days): ask an admin for a new one.",
            )),
            q::node_link::Enrolment::Unknown => Err(wrong_code()),
        }
    }

    /// The node a token belongs to.
    pub async fn authenticate_node(&self, token: &str) -> Result<NodeIdentity> {
        if !token.starts_with(NODE_TOKEN_PREFIX) {
            return Err(CmsError::Unauthenticated);
        }
        let hash = auth::secret_hash(token);
        // Taken before the read: a revocation that lands meanwhile makes it stale.
        let epoch = self.token_epoch();
        if let Some(node) = self.inner.node_ids.get(&hash, epoch) {
            return Ok(node);
        }
        let key = hash.clone();
        let node = self
            .store()
            .call(move |c| q::node_link::by_token(c, &key))
            .await?
            .ok_or(CmsError::Unauthenticated)?;
        self.inner.node_ids.put(hash, epoch, node.clone());
        Ok(node)
    }

    fn token_epoch(&self) -> u64 {
        self.inner
            .token_epoch
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// A token was revoked or a node changed: identities remembered so far are stale.
    pub(super) fn tokens_changed(&self) {
        self.inner
            .token_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Revokes a node's token: its session ends at once.
    pub async fn revoke_node(&self, p: &Principal, id: i64) -> Result<()> {
        self.revoke_with(p, id, None).await
    }

    /// Revokes a node's token and issues a fresh one-time enrolment code, returned.
    pub async fn renew_node_code(&self, p: &Principal, id: i64) -> Result<String> {
        let code = super::places::enrollment_code();
        self.revoke_with(p, id, Some(auth::secret_hash(&code)))
            .await?;
        Ok(code)
    }

    /// Revokes the token, storing `code_hash` as the node's new enrolment code if given.
    async fn revoke_with(&self, p: &Principal, id: i64, code_hash: Option<String>) -> Result<()> {
        p.require(Perm::ManageNodes)?;
        let who = p.clone();
        self.store()
            .call(move |c| {
                let tx = c.transaction()?;
                let node = q::places::node(&tx, id)?;
                who.check_commune(node.commune_id, Text::new("Không tìm thấy cụm loa", "Node"))?;
                q::node_link::revoke(&tx, id, code_hash.as_deref())?;
                let action = if code_hash.is_some() {
                    "new_code"
                } else {
                    "revoke"
                };
                q::audit(
                    &tx,
                    &audit_by(&who, node.commune_id, action, "node", id, None, None),
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.end_session(id);
        Ok(())
    }

    /// A fresh one-time enrolment code for a node (its old token stops working), for the
    /// operator's own tools (the demo, provisioning scripts): no caller check.
    pub async fn new_enrollment_code(&self, id: i64) -> Result<String> {
        let code = super::places::enrollment_code();
        let hash = auth::secret_hash(&code);
        self.store()
            .call(move |c| q::node_link::revoke(c, id, Some(&hash)))
            .await?;
        self.end_session(id);
        Ok(code)
    }

    /// Ends a node's live link, if it has one (its token no longer holds).
    fn end_session(&self, id: i64) {
        self.tokens_changed();
        if let Some(fleet) = &self.inner.fleet {
            fleet.disconnect(id);
        }
    }

    /// A node's health over the last `span` at a resolution that fits it: heartbeats for
    /// an hour, 5-minute buckets up to a week, hours beyond.
    pub async fn health_history(
        &self,
        p: &Principal,
        id: i64,
        span: chrono::Duration,
    ) -> Result<(i64, Vec<q::history::Point>)> {
        let node = self.node(p, id).await?;
        let to = chrono::Utc::now().timestamp();
        let from = to - span.num_seconds();
        let secs = span.num_seconds();
        let res = if secs <= 3600 {
            10
        } else if secs <= 604_800 {
            300
        } else {
            3600
        };
        let points = self
            .store()
            .call(move |c| q::history::series(c, node.id, res, from, to + 1))
            .await?;
        Ok((res, points))
    }

    /// Adds a line to the node's history (online, offline, command results...).
    /// A broker reported the node gone (its last will): it shows offline from now until
    /// it is heard from again.
    pub fn node_gone(&self, id: i64) {
        let mut gone = self.inner.gone.lock().unwrap_or_else(|e| e.into_inner());
        gone.insert(id, chrono::Utc::now());
    }

    /// When a broker last reported the node gone.
    pub(super) fn gone_at(&self, id: i64) -> Option<chrono::DateTime<chrono::Utc>> {
        let gone = self.inner.gone.lock().unwrap_or_else(|e| e.into_inner());
        gone.get(&id).copied()
    }

    pub async fn node_event(&self, id: i64, event: &'static str, detail: String) -> Result<()> {
        self.store()
            .call(move |c| q::node_link::event(c, id, event, &detail))
            .await
    }

    pub async fn node_events(&self, p: &Principal, id: i64) -> Result<Vec<NodeEvent>> {
        p.require(Perm::Read)?;
        let who = p.clone();
        self.store()
            .call(move |c| {
                let node = q::places::node(c, id)?;
                who.check_commune(node.commune_id, Text::new("Không tìm thấy cụm loa", "Node"))?;
                q::node_link::events(c, id, 200)
            })
            .await
    }

    /// Stores a node's play logs (idempotent by id) and returns the ids now safe to forget.
    pub async fn store_playlogs(
        &self,
        node_id: i64,
        entries: Vec<PlayLogEntry>,
    ) -> Result<Vec<String>> {
        let (ids, new) = self.store_playlogs_inner(node_id, entries).await?;
        for outcome in new {
            self.inner.metrics.plays(outcome, 1);
        }
        Ok(ids)
    }

    async fn store_playlogs_inner(
        &self,
        node_id: i64,
        entries: Vec<PlayLogEntry>,
    ) -> Result<(Vec<String>, Vec<&'static str>)> {
        for e in &entries {
            let id_ok = !e.id.is_empty()
                && e.id.len() <= MAX_LOG_ID
                && e.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !id_ok || e.reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
                return Err(CmsError::invalid(
                    "Nhật ký phát không hợp lệ.",
                    "Malformed play log entry.",
                ));
            }
        }
        self.store()
            .call(move |c| {
                let tx = c.transaction()?;
                let (ids, new) = q::node_link::insert_playlogs(&tx, node_id, &entries)?;
                tx.commit()?;
                Ok((ids, new))
            })
            .await
    }

    /// Sends a remote command to a node's live session.
    pub async fn send_command(
        &self,
        p: &Principal,
        node_id: i64,
        req: CommandRequest,
    ) -> Result<CommandResponse> {
        p.require(Perm::ManageNodes)?;
        let who = p.clone();
        let (node, item) = self
            .store()
            .call(move |c| {
                let node = q::places::node(c, node_id)?;
                who.check_commune(node.commune_id, Text::new("Không tìm thấy cụm loa", "Node"))?;
                let item = match &req {
                    CommandRequest::PlayNow { content_id } => {
                        Some(q::content::get(c, *content_id)?)
                    }
                    _ => None,
                };
                Ok((node, (item, req)))
            })
            .await?;
        let (item, req) = item;
        let command = to_command(p, req, item)?;
        if let Command::PlayNow { content_id, .. } = &command {
            // Before it goes: the node's log of this play must find it.
            let pair = [(0, *content_id)];
            let node_id = node.id;
            self.store()
                .call(move |c| q::node_link::record_sent(c, node_id, &pair))
                .await?;
        }
        let id = rand::random::<u32>() as u64;
        let detail = protocol::link::encode(&command);
        let delivered = self
            .inner
            .fleet
            .as_ref()
            .is_some_and(|f| f.command(node.id, id, command));
        let who = p.clone();
        self.store()
            .call(move |c| {
                q::audit(
                    c,
                    &audit_by(
                        &who,
                        node.commune_id,
                        "command",
                        "node",
                        node.id,
                        None,
                        None,
                    ),
                )?;
                q::node_link::event(c, node.id, "command", &format!("{id} {detail}"))
            })
            .await?;
        Ok(CommandResponse { id, delivered })
    }
}

/// The wire command for a technician's request (`play_now` only of an approved audio
/// item of the caller's commune).
fn to_command(
    p: &Principal,
    req: CommandRequest,
    item: Option<crate::model::Content>,
) -> Result<Command> {
    Ok(match req {
        CommandRequest::SetVolume { volume } if volume <= 100 => Command::SetVolume { volume },
        CommandRequest::SetVolume { .. } => {
            return Err(CmsError::invalid(
                "Âm lượng từ 0 đến 100.",
                "Volume is 0 to 100.",
            ));
        }
        CommandRequest::Stop {} => Command::Stop,
        CommandRequest::TestTone { seconds } => match seconds.unwrap_or(5) {
            seconds @ 1..=60 => Command::TestTone { seconds },
            _ => {
                return Err(CmsError::invalid(
                    "Âm thử dài từ 1 đến 60 giây.",
                    "A test tone lasts 1 to 60 seconds.",
                ));
            }
        },
        CommandRequest::Resync {} => Command::Resync,
        CommandRequest::Restart {} => Command::Restart,
        CommandRequest::PlayNow { .. } => {
            let c = item.ok_or_else(|| CmsError::not_found("Không tìm thấy", "Content"))?;
            p.check_commune(c.commune_id, Text::new("Không tìm thấy", "Content"))?;
            match (c.status, c.sha256) {
                (ContentStatus::Approved, Some(sha256)) => Command::PlayNow {
                    content_id: c.id,
                    sha256,
                    duration_ms: c.duration_ms,
                    gain_db: c.gain_db as f32,
                },
                _ => {
                    return Err(CmsError::invalid(
                        "Chỉ phát được tệp âm thanh đã duyệt.",
                        "Only approved audio items can be played.",
                    ));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::normalise_code;

    #[test]
    fn codes_forgive_case_spaces_and_dashes() {
        assert_eq!(
            normalise_code(" abcd efgh-jkmn pqrs ").as_deref(),
            Some("ABCD-EFGH-JKMN-PQRS")
        );
        assert_eq!(normalise_code("ABCD-EFGH"), None);
        assert_eq!(normalise_code(""), None);
    }
}
