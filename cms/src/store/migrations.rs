//! Schema versions, oldest first. Never edit a released step: add one.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use crate::error::{CmsError, Result};

const V1: &str = r#"
CREATE TABLE communes (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    tz TEXT NOT NULL DEFAULT 'Asia/Ho_Chi_Minh',
    quiet_start TEXT NOT NULL DEFAULT '22:00',
    quiet_end TEXT NOT NULL DEFAULT '05:00',
    loudness_target REAL NOT NULL DEFAULT -16.0,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER REFERENCES communes(id),
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin','editor','approver','technician','viewer')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
-- Browser sessions and API tokens: only a SHA-256 of the secret is kept.
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('session','api')),
    name TEXT NOT NULL DEFAULT '',
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX tokens_user ON tokens(user_id);
CREATE TABLE villages (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'thon' CHECK (kind IN ('thon','to_dan_pho','ban','ap')),
    created_at INTEGER NOT NULL,
    UNIQUE (commune_id, name)
);
CREATE TABLE village_groups (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    name TEXT NOT NULL,
    UNIQUE (commune_id, name)
);
CREATE TABLE village_group_members (
    group_id INTEGER NOT NULL REFERENCES village_groups(id) ON DELETE CASCADE,
    village_id INTEGER NOT NULL REFERENCES villages(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, village_id)
);
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    village_id INTEGER NOT NULL REFERENCES villages(id),
    name TEXT NOT NULL,
    lat REAL,
    lon REAL,
    notes TEXT NOT NULL DEFAULT '',
    enrollment_code_hash TEXT,
    token_hash TEXT,
    last_seen INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (commune_id, name)
);
CREATE INDEX nodes_village ON nodes(village_id);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    format TEXT NOT NULL,
    codec TEXT NOT NULL,
    sample_rate INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    loudness_lufs REAL,
    created_at INTEGER NOT NULL
);
CREATE TABLE content (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    kind TEXT NOT NULL CHECK (kind IN ('audio','tts','relay')),
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    sha256 TEXT REFERENCES blobs(sha256),
    relay_url TEXT,
    tts_text TEXT,
    duration_ms INTEGER NOT NULL,
    gain_db REAL NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('draft','pending','approved','rejected')),
    reject_reason TEXT,
    public INTEGER NOT NULL DEFAULT 0,
    author_id INTEGER REFERENCES users(id),
    approver_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    approved_at INTEGER,
    CHECK ((kind = 'relay') = (sha256 IS NULL))
);
CREATE INDEX content_list ON content(commune_id, id DESC);
CREATE INDEX content_status ON content(commune_id, status);
CREATE TABLE schedules (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    title TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('background','normal','priority','emergency')),
    volume INTEGER NOT NULL DEFAULT 100 CHECK (volume BETWEEN 0 AND 100),
    rule TEXT NOT NULL,
    program TEXT NOT NULL,
    max_delay_ms INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX schedules_commune ON schedules(commune_id);
CREATE TABLE schedule_targets (
    schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('village','group','node')),
    target_id INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, kind, target_id)
);
CREATE INDEX schedule_targets_target ON schedule_targets(kind, target_id);
-- Which content a schedule plays, for "what uses this item" and for re-approval.
CREATE TABLE schedule_content (
    schedule_id INTEGER NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    content_id INTEGER NOT NULL REFERENCES content(id),
    PRIMARY KEY (schedule_id, content_id)
);
CREATE INDEX schedule_content_content ON schedule_content(content_id);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    user_id INTEGER,
    username TEXT,
    commune_id INTEGER,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id INTEGER,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_commune ON audit_log(commune_id, id DESC);
CREATE TABLE playlogs (
    id TEXT PRIMARY KEY,
    node_id INTEGER NOT NULL REFERENCES nodes(id),
    content_id INTEGER,
    schedule_id INTEGER,
    scheduled_at INTEGER,
    started_at INTEGER,
    ended_at INTEGER,
    outcome TEXT NOT NULL CHECK (outcome IN ('completed','interrupted','failed','skipped')),
    reason TEXT,
    received_at INTEGER NOT NULL
);
CREATE INDEX playlogs_node ON playlogs(node_id, scheduled_at);
"#;

/// The fleet link: node sessions, health, desired-state acknowledgements, transitions.
const V2: &str = r#"
ALTER TABLE nodes ADD COLUMN applied_version TEXT;
ALTER TABLE nodes ADD COLUMN health TEXT;
ALTER TABLE nodes ADD COLUMN enrolled_at INTEGER;
CREATE UNIQUE INDEX nodes_token ON nodes(token_hash) WHERE token_hash IS NOT NULL;
CREATE UNIQUE INDEX nodes_code ON nodes(enrollment_code_hash) WHERE enrollment_code_hash IS NOT NULL;
-- Online/offline transitions, enrolments, revocations and command results, per node.
CREATE TABLE node_events (
    id INTEGER PRIMARY KEY,
    node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX node_events_node ON node_events(node_id, id DESC);
"#;

/// Emergencies: a schedule stopped early, the emergency behind it, and each node's reach.
const V3: &str = r#"
ALTER TABLE schedules ADD COLUMN stopped_at INTEGER;
CREATE TABLE emergencies (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    schedule_id INTEGER NOT NULL UNIQUE REFERENCES schedules(id),
    title TEXT NOT NULL,
    content_id INTEGER NOT NULL REFERENCES content(id),
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    stopped_at INTEGER,
    stopped_by INTEGER REFERENCES users(id)
);
CREATE INDEX emergencies_commune ON emergencies(commune_id, id DESC);
-- Every node an emergency was sent to, and where it stands there.
CREATE TABLE emergency_nodes (
    emergency_id INTEGER NOT NULL REFERENCES emergencies(id) ON DELETE CASCADE,
    node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'sent' CHECK (state IN ('sent','waiting','playing','ended','failed')),
    message TEXT NOT NULL DEFAULT '',
    reached_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (emergency_id, node_id)
);
"#;

/// Live sessions: each rides on a schedule of its own (same id).
const V4: &str = r#"
CREATE TABLE live_sessions (
    id INTEGER PRIMARY KEY REFERENCES schedules(id),
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    source TEXT NOT NULL CHECK (source IN ('icecast','browser')),
    started_by INTEGER REFERENCES users(id),
    source_addr TEXT NOT NULL DEFAULT '',
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX live_sessions_commune ON live_sessions(commune_id, id DESC);
"#;

/// Emergencies spoken live (an emergency-priority live session) have no content item.
/// SQLite cannot drop a NOT NULL, so the table is rebuilt, and with it the reach table
/// that refers to it: inside the migration's transaction foreign keys cannot be turned
/// off, so dropping the old table would cascade to the reach rows, and renaming it would
/// carry their reference along (tested below).
const V5: &str = r#"
CREATE TABLE emergencies_v5 (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    schedule_id INTEGER NOT NULL UNIQUE REFERENCES schedules(id),
    title TEXT NOT NULL,
    content_id INTEGER REFERENCES content(id),
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    stopped_at INTEGER,
    stopped_by INTEGER REFERENCES users(id)
);
INSERT INTO emergencies_v5 SELECT * FROM emergencies;
CREATE TEMP TABLE reach_v5 AS SELECT * FROM emergency_nodes;
DROP TABLE emergency_nodes;
DROP TABLE emergencies;
ALTER TABLE emergencies_v5 RENAME TO emergencies;
CREATE INDEX emergencies_commune ON emergencies(commune_id, id DESC);
CREATE TABLE emergency_nodes (
    emergency_id INTEGER NOT NULL REFERENCES emergencies(id) ON DELETE CASCADE,
    node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'sent' CHECK (state IN ('sent','waiting','playing','ended','failed')),
    message TEXT NOT NULL DEFAULT '',
    reached_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (emergency_id, node_id)
);
INSERT INTO emergency_nodes SELECT * FROM temp.reach_v5;
DROP TABLE temp.reach_v5;
"#;

/// The review loop: when an item was last approved or rejected (`decided_at`), when what
/// listeners hear last changed (`edited_at`: its recording or its words), and archiving
/// (hidden, never deleted: play logs refer to it); and each user's mark of the decisions
/// they have seen on their dashboard. Trusted play logs: what each node was sent (a
/// schedule with each of its items, 0 for the schedule itself; schedule 0 for an item
/// played by command), and why a log that claims anything else is not counted. Alerts:
/// each commune's recipients, and every alert opened (one open per node and kind) and
/// closed. Health history: heartbeats downsampled as they arrive (see `store::history`).
const V6: &str = r#"
CREATE TABLE node_sent (
    node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    schedule_id INTEGER NOT NULL,
    content_id INTEGER NOT NULL,
    PRIMARY KEY (node_id, schedule_id, content_id)
) WITHOUT ROWID;
ALTER TABLE playlogs ADD COLUMN rejected TEXT;
CREATE INDEX playlogs_received ON playlogs(received_at);
CREATE TABLE alert_settings (
    commune_id INTEGER PRIMARY KEY REFERENCES communes(id),
    emails TEXT NOT NULL DEFAULT '',
    webhook_url TEXT NOT NULL DEFAULT '',
    offline_minutes INTEGER NOT NULL DEFAULT 10
);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    commune_id INTEGER NOT NULL REFERENCES communes(id),
    node_id INTEGER REFERENCES nodes(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    opened_at INTEGER NOT NULL,
    closed_at INTEGER
);
CREATE UNIQUE INDEX alerts_open ON alerts(node_id, kind) WHERE closed_at IS NULL;
CREATE INDEX alerts_commune ON alerts(commune_id, id DESC);
-- A token limited to one use: 'province' reads only the province's figures.
ALTER TABLE tokens ADD COLUMN scope TEXT;
CREATE TABLE health_points (
    node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    res INTEGER NOT NULL,
    t INTEGER NOT NULL,
    n INTEGER NOT NULL,
    rtt_sum REAL NOT NULL DEFAULT 0,
    rtt_n INTEGER NOT NULL DEFAULT 0,
    offset_sum REAL NOT NULL DEFAULT 0,
    offset_n INTEGER NOT NULL DEFAULT 0,
    underruns INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, res, t)
) WITHOUT ROWID;
ALTER TABLE content ADD COLUMN decided_at INTEGER;
ALTER TABLE content ADD COLUMN edited_at INTEGER;
ALTER TABLE content ADD COLUMN archived_at INTEGER;
UPDATE content SET decided_at = CASE status WHEN 'approved' THEN approved_at WHEN 'rejected' THEN updated_at END;
ALTER TABLE users ADD COLUMN seen_decisions_at INTEGER;
"#;

/// Security review: enrolment codes expire (codes already out get a week from now), and
/// API tokens carry a last-used time for their list.
const V7: &str = r#"
ALTER TABLE nodes ADD COLUMN enrollment_code_expires_at INTEGER;
UPDATE nodes SET enrollment_code_expires_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 604800000
 WHERE enrollment_code_hash IS NOT NULL;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
    ])
}

pub fn apply(conn: &mut Connection) -> Result<()> {
    migrations()
        .to_latest(conn)
        .map_err(|e| CmsError::Storage(format!("database migration failed: {e}")))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }

    /// An emergency stored before V5 keeps its row and its nodes' reach, which still
    /// refer to it (and cascade from it).
    #[test]
    fn emergencies_survive_the_rebuild() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::migrations().to_version(&mut c, 4).unwrap();
        c.execute_batch(
            "INSERT INTO communes (id, slug, name, created_at) VALUES (1, 'xa', 'Xã', 0);
             INSERT INTO villages (id, commune_id, name, created_at) VALUES (2, 1, 'Thôn', 0);
             INSERT INTO nodes (id, commune_id, village_id, name, created_at) VALUES (3, 1, 2, 'Loa', 0);
             INSERT INTO content (id, commune_id, kind, title, category, relay_url, duration_ms, status, created_at, updated_at)
               VALUES (4, 1, 'relay', 'Đài', 'news', 'http://x/', 0, 'approved', 0, 0);
             INSERT INTO schedules (id, commune_id, title, priority, rule, program, created_at, updated_at)
               VALUES (5, 1, 'Khẩn cấp', 'emergency', '{}', '{}', 0, 0);
             INSERT INTO emergencies (id, commune_id, schedule_id, title, content_id, starts_at, ends_at, created_at)
               VALUES (7, 1, 5, 'Bão', 4, 10, 20, 5);
             INSERT INTO emergency_nodes (emergency_id, node_id, updated_at) VALUES (7, 3, 5);",
        )
        .unwrap();
        super::migrations().to_latest(&mut c).unwrap();
        let title: String = c
            .query_row("SELECT title FROM emergencies WHERE id = 7", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(title, "Bão");
        let reach: i64 = c
            .query_row("SELECT count(*) FROM emergency_nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(reach, 1);
        let sql: String = c
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'emergency_nodes'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("REFERENCES emergencies(id)"), "{sql}");
        c.execute(
            "INSERT INTO emergencies (commune_id, schedule_id, title, starts_at, ends_at, created_at)
             VALUES (1, 6, 'Trực tiếp', 0, 0, 0)",
            [],
        )
        .expect_err("schedule 6 does not exist: foreign keys still hold");
        c.execute("DELETE FROM emergencies WHERE id = 7", [])
            .unwrap();
        let left: i64 = c
            .query_row("SELECT count(*) FROM emergency_nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "the reach rows cascade from their emergency");
    }
}
