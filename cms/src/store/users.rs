//! Communes, users and their tokens (browser sessions and API tokens, stored hashed).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_ms;
use crate::error::{CmsError, Result};
use crate::model::{Commune, Role, User, ms_to_time};

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub commune_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Api,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }
}

const COMMUNE_COLS: &str = "id, slug, name, tz, quiet_start, quiet_end, loudness_target";

fn commune_row(r: &Row) -> rusqlite::Result<Commune> {
    Ok(Commune {
        id: r.get(0)?,
        slug: r.get(1)?,
        name: r.get(2)?,
        tz: r.get(3)?,
        quiet_start: r.get(4)?,
        quiet_end: r.get(5)?,
        loudness_target: r.get(6)?,
    })
}

pub fn ensure_commune(conn: &Connection, slug: &str, name: &str) -> Result<Commune> {
    conn.execute(
        "INSERT INTO communes (slug, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(slug) DO NOTHING",
        params![slug, name, now_ms()],
    )?;
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COMMUNE_COLS} FROM communes WHERE slug = ?1"
        ))?
        .query_row([slug], commune_row)?)
}

pub fn communes(conn: &Connection) -> Result<Vec<Commune>> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {COMMUNE_COLS} FROM communes ORDER BY id"))?;
    let rows = st.query_map([], commune_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn commune_by_slug(conn: &Connection, slug: &str) -> Result<Commune> {
    conn.prepare_cached(&format!(
        "SELECT {COMMUNE_COLS} FROM communes WHERE slug = ?1"
    ))?
    .query_row([slug], commune_row)
    .optional()?
    .ok_or_else(|| CmsError::not_found("Không tìm thấy xã", "Commune"))
}

pub fn commune(conn: &Connection, id: i64) -> Result<Commune> {
    conn.prepare_cached(&format!(
        "SELECT {COMMUNE_COLS} FROM communes WHERE id = ?1"
    ))?
    .query_row([id], commune_row)
    .optional()?
    .ok_or_else(|| CmsError::not_found("Không tìm thấy xã", "Commune"))
}

const USER_COLS: &str = "id, username, display_name, role, commune_id, disabled, created_at";

fn user_row(r: &Row) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        commune_id: r.get(4)?,
        disabled: r.get(5)?,
        created_at: ms_to_time(r.get(6)?),
    })
}

pub fn insert_user(conn: &Connection, u: &NewUser) -> Result<i64> {
    conn.execute(
        "INSERT INTO users (username, display_name, password_hash, role, commune_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            u.username,
            u.display_name,
            u.password_hash,
            u.role.as_str(),
            u.commune_id,
            now_ms()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn users(conn: &Connection, commune_id: Option<i64>) -> Result<Vec<User>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {USER_COLS} FROM users WHERE ?1 IS NULL OR commune_id = ?1 OR commune_id IS NULL ORDER BY id"
    ))?;
    let rows = st.query_map([commune_id], user_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn user(conn: &Connection, id: i64) -> Result<User> {
    conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?
        .query_row([id], user_row)
        .optional()?
        .ok_or_else(|| CmsError::not_found("Không tìm thấy người dùng", "User"))
}

/// The user and password hash for a login attempt.
pub fn user_for_login(conn: &Connection, username: &str) -> Result<Option<(User, String)>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {USER_COLS}, password_hash FROM users WHERE username = ?1"
        ))?
        .query_row([username], |r| Ok((user_row(r)?, r.get::<_, String>(7)?)))
        .optional()?)
}

pub fn set_disabled(conn: &Connection, user_id: i64, disabled: bool) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET disabled = ?2 WHERE id = ?1",
        params![user_id, disabled],
    )?;
    if n == 0 {
        return Err(CmsError::not_found("Không tìm thấy người dùng", "User"));
    }
    if disabled {
        conn.execute("DELETE FROM tokens WHERE user_id = ?1", [user_id])?;
    }
    Ok(())
}

pub fn insert_token(
    conn: &Connection,
    token_hash: &str,
    user_id: i64,
    kind: TokenKind,
    name: &str,
    csrf: &str,
    expires_at: Option<i64>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO tokens (token_hash, user_id, kind, name, csrf, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token_hash,
            user_id,
            kind.as_str(),
            name,
            csrf,
            now_ms(),
            expires_at
        ],
    )?;
    Ok(())
}

/// A token's user, its CSRF secret, whether it is an API token whose last use is over a
/// minute old (to be noted: see [`touch_api_token`]), and its scope.
pub type TokenOwner = (User, String, bool, Option<String>);

pub fn user_by_token(conn: &Connection, token_hash: &str) -> Result<Option<TokenOwner>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {cols}, t.csrf,
                t.kind = 'api' AND (t.last_used_at IS NULL OR t.last_used_at < ?2 - 60000),
                t.scope FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ?1 AND u.disabled = 0 AND (t.expires_at IS NULL OR t.expires_at > ?2)",
        cols = USER_COLS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
    ))?;
    Ok(st
        .query_row(params![token_hash, now_ms()], |r| {
            Ok((user_row(r)?, r.get::<_, String>(7)?, r.get(8)?, r.get(9)?))
        })
        .optional()?)
}

pub fn delete_token(conn: &Connection, token_hash: &str) -> Result<()> {
    conn.execute("DELETE FROM tokens WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

pub fn purge_expired_tokens(conn: &Connection) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        [now_ms()],
    )?)
}

/// [`communes`] in the shape `Store::call` takes.
pub fn communes_owned(conn: &mut Connection) -> Result<Vec<Commune>> {
    communes(conn)
}

/// Limits a token to one use (`province`: the province's figures only).
pub fn set_token_scope(conn: &Connection, token_hash: &str, scope: &str) -> Result<()> {
    conn.execute(
        "UPDATE tokens SET scope = ?2 WHERE token_hash = ?1",
        params![token_hash, scope],
    )?;
    Ok(())
}

/// An API token as its owner and admins see it (never its secret).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// `province`: reads only the province's figures.
    pub scope: Option<String>,
    pub user_id: i64,
    pub username: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Live API tokens of one user, or (`user` none) of every user of `commune` (`None`:
/// every commune), newest first.
pub fn api_tokens(
    conn: &Connection,
    commune: Option<i64>,
    user: Option<i64>,
) -> Result<Vec<ApiToken>> {
    let mut st = conn.prepare_cached(
        "SELECT t.rowid, t.name, t.scope, u.id, u.username, t.created_at, t.expires_at, t.last_used_at
           FROM tokens t JOIN users u ON u.id = t.user_id
          WHERE t.kind = 'api' AND (t.expires_at IS NULL OR t.expires_at > ?1)
            AND (?2 IS NULL OR u.commune_id = ?2) AND (?3 IS NULL OR u.id = ?3)
          ORDER BY t.created_at DESC, t.rowid DESC",
    )?;
    let rows = st.query_map(params![now_ms(), commune, user], |r| {
        Ok(ApiToken {
            id: r.get(0)?,
            name: r.get(1)?,
            scope: r.get(2)?,
            user_id: r.get(3)?,
            username: r.get(4)?,
            created_at: ms_to_time(r.get(5)?),
            expires_at: r.get::<_, Option<i64>>(6)?.map(ms_to_time),
            last_used_at: r.get::<_, Option<i64>>(7)?.map(ms_to_time),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The owner and commune of API token `id` (its row id).
pub fn api_token_owner(conn: &Connection, id: i64) -> Result<Option<(i64, Option<i64>)>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.commune_id FROM tokens t JOIN users u ON u.id = t.user_id
              WHERE t.rowid = ?1 AND t.kind = 'api'",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn delete_api_token(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM tokens WHERE rowid = ?1 AND kind = 'api'", [id])?;
    Ok(())
}

/// Notes that an API token was used. Called only when [`user_by_token`] says the last
/// note is over a minute old: a script calling every second must not make every read a
/// write.
pub fn touch_api_token(conn: &Connection, token_hash: &str) -> Result<()> {
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE tokens SET last_used_at = ?2
          WHERE token_hash = ?1 AND kind = 'api' AND (last_used_at IS NULL OR last_used_at < ?2 - 60000)",
    )?
    .execute(params![token_hash, now])?;
    Ok(())
}
