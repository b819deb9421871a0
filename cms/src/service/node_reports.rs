//! What the fleet hub writes as nodes report: when each was heard from and its heartbeat,
//! the desired-state version it applied, and what it was sent (its play logs are checked
//! against that). At fleet scale these come by the thousand a second, so the hub's calls
//! are written in ordered batches ([`super::Batcher`]); the `async` forms write at once.

use crate::Cms;
use crate::error::Result;
use crate::store as q;

impl Cms {
    /// The node was heard from, with its latest heartbeat when it sent one; written now.
    pub async fn node_seen(&self, id: i64, health: Option<String>) -> Result<()> {
        let now_s = chrono::Utc::now().timestamp();
        self.write_seen(vec![(id, health, now_s)]).await
    }

    /// [`Cms::node_seen`] for the fleet hub: heartbeats that come within
    /// [`super::BATCH`] of each other are written in one transaction. 10,000 nodes send
    /// 1,000 heartbeats a second; one commit each was most of the controller's CPU under
    /// steady load. Errors are logged.
    pub fn node_heard(&self, id: i64, health: Option<String>) {
        let now_s = chrono::Utc::now().timestamp();
        let cms = self.clone();
        self.inner
            .heard
            .add((id, health, now_s), move |batch| async move {
                cms.write_seen(batch).await
            });
    }

    /// Writes when nodes were heard from and their heartbeats, in one transaction.
    async fn write_seen(&self, heard: Vec<(i64, Option<String>, i64)>) -> Result<()> {
        let now_s = chrono::Utc::now().timestamp();
        // Old buckets go about once an hour (whoever's heartbeat comes first).
        let last = self
            .inner
            .history_pruned
            .load(std::sync::atomic::Ordering::Relaxed);
        let prune = now_s - last >= 3600
            && self
                .inner
                .history_pruned
                .compare_exchange(
                    last,
                    now_s,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok();
        self.store()
            .call(move |c| {
                let tx = c.transaction()?;
                // One node's failure (deleted meanwhile) is its own: SQLite undoes the
                // statement, not the transaction.
                for (id, health, at_s) in &heard {
                    let one = |tx: &rusqlite::Transaction| -> Result<()> {
                        q::node_link::seen(tx, *id, health.as_deref())?;
                        let beat = health
                            .as_deref()
                            .and_then(|h| serde_json::from_str::<protocol::link::Health>(h).ok());
                        if let Some(h) = beat {
                            q::history::record(
                                tx,
                                *id,
                                *at_s,
                                h.round_trip_ms,
                                h.clock_offset_ms,
                                h.underruns,
                            )?;
                        }
                        Ok(())
                    };
                    if let Err(e) = one(&tx) {
                        if heard.len() == 1 {
                            return Err(e);
                        }
                        tracing::warn!(node = id, "heartbeat not stored: {e}");
                    }
                }
                if prune {
                    q::history::prune(&tx, now_s)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    pub async fn node_applied(&self, id: i64, version: String) -> Result<()> {
        self.store()
            .call(move |c| q::node_link::set_applied(c, id, &version))
            .await
    }

    /// [`Cms::node_applied`] for the fleet hub: a change reaches every node within a
    /// second and each answers "applied"; those answers are written in batches (one
    /// commit each took the cores the next nodes' states needed). Errors are logged.
    pub fn node_applied_batched(&self, id: i64, version: String) {
        self.write_batched(&self.inner.applied, (id, version), |tx, (id, version)| {
            q::node_link::set_applied(tx, *id, version)
        });
    }

    /// Remembers what a node was sent in a desired state, so its play logs can be checked
    /// against it (a log naming anything else is kept but not counted).
    pub async fn record_sent(
        &self,
        node_id: i64,
        state: &protocol::desired::DesiredState,
    ) -> Result<()> {
        let pairs = sent_pairs(state);
        self.store()
            .call(move |c| q::node_link::record_sent(c, node_id, &pairs))
            .await
    }

    /// [`Cms::record_sent`] for the fleet hub, in batches (an emergency sends 10,000
    /// states within a second); `hold` is dropped once the batch is written or has
    /// failed, so whatever waits on it (the node's play logs) goes on after the record.
    pub fn record_sent_batched(
        &self,
        node_id: i64,
        state: &protocol::desired::DesiredState,
        hold: Box<dyn Send>,
    ) {
        let record = super::SentRecord {
            node_id,
            pairs: sent_pairs(state),
            _hold: hold,
        };
        self.write_batched(&self.inner.sent, record, |tx, r| {
            q::node_link::record_sent(tx, r.node_id, &r.pairs)
        });
    }

    /// `item` written with the others of its [`super::Batcher`]'s batch, `each` per item
    /// in one transaction; one item's failure (its node deleted meanwhile) is logged and
    /// is its own: SQLite undoes the statement, not the transaction.
    fn write_batched<T: Send + 'static>(
        &self,
        batcher: &std::sync::Arc<super::Batcher<T>>,
        item: T,
        each: fn(&rusqlite::Transaction, &T) -> Result<()>,
    ) {
        let cms = self.clone();
        batcher.add(item, move |batch| async move {
            cms.store()
                .call(move |c| {
                    let tx = c.transaction()?;
                    for item in &batch {
                        if let Err(e) = each(&tx, item) {
                            tracing::warn!("a fleet report not stored: {e}");
                        }
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await
        });
    }
}

/// What a desired state sends: each schedule (content 0) and each item it plays.
fn sent_pairs(state: &protocol::desired::DesiredState) -> Vec<(i64, i64)> {
    state
        .schedules
        .iter()
        .flat_map(|s| {
            let items = s.program.chime.iter().chain(&s.program.items);
            std::iter::once((s.id, 0)).chain(items.map(|i| (s.id, i.content_id)))
        })
        .collect()
}
