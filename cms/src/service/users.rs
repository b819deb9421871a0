//! Logins, sessions, API tokens and user accounts.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{audit_by, change_audited, required, to_json};
use crate::Cms;
use crate::auth::{self, Perm, Principal, Via};
use crate::error::{CmsError, Result};
use crate::model::{AuditEntry, Commune, Role, User};
use crate::store::{self as q, NewUser, TokenKind};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::http::schema::admins_alone_province_wide)]
pub struct NewUserRequest {
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[\w.-]+$"))]
    pub username: String,
    #[schemars(length(min = 8))]
    pub password: String,
    #[schemars(with = "crate::model::Role")]
    pub role: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Admins only: another commune, or `null` with `province_wide` for a province admin.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub commune_id: Option<i64>,
    #[serde(default)]
    pub province_wide: bool,
}

pub const MIN_PASSWORD: usize = 8;

/// Commune settings an admin may change.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunePatch {
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub name: Option<String>,
    /// IANA zone, e.g. `Asia/Ho_Chi_Minh`.
    #[schemars(with = "Option<crate::http::schema::Zone>")]
    pub tz: Option<String>,
    /// `HH:MM`; equal start and end turn quiet hours off.
    #[schemars(with = "Option<crate::http::schema::ClockTime>")]
    pub quiet_start: Option<String>,
    #[schemars(with = "Option<crate::http::schema::ClockTime>")]
    pub quiet_end: Option<String>,
    /// Integrated loudness items are normalised to, LUFS (-30 to -10).
    #[schemars(range(min = -30.0, max = -10.0))]
    pub loudness_target: Option<f64>,
}

/// The new user's role and username, once the request's rules hold.
fn checked_user(req: &NewUserRequest) -> Result<(Role, String)> {
    let role = Role::parse(&req.role)?;
    let username = required(&req.username, 64, "tên đăng nhập", "Username")?;
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || "._-".contains(c))
    {
        return Err(CmsError::invalid(
            "Tên đăng nhập chỉ gồm chữ, số và . _ -",
            "Usernames may hold only letters, digits and . _ -",
        ));
    }
    if req.password.chars().count() < MIN_PASSWORD {
        return Err(CmsError::invalid(
            format!("Mật khẩu cần ít nhất {MIN_PASSWORD} ký tự."),
            format!("Passwords need at least {MIN_PASSWORD} characters."),
        ));
    }
    Ok((role, username))
}

impl Cms {
    /// Checks a password; on success a new session: `(secret, csrf, user)`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: &str,
    ) -> Result<(String, String, User)> {
        let name = auth::normalise_username(username);
        let attempt = self.inner.limiter.begin(&auth::login_keys(&name, ip))?;
        let found = self
            .store()
            .call(move |c| q::users::user_for_login(c, &name))
            .await?;
        let password = password.to_owned();
        // Hash even for unknown users so timing does not tell which names exist.
        // (The stand-in hash is made on the hashing pool too, the first time.)
        let hash = found.as_ref().map(|(_, h)| h.clone());
        let ok = self
            .hash_in_turn(move || {
                auth::verify_password(&password, &hash.unwrap_or_else(dummy_hash))
            })
            .await?;
        match found {
            Some((user, _)) if ok && !user.disabled => {
                attempt.succeeded();
                let secret = auth::new_secret();
                let csrf = auth::new_secret();
                let expires = q::now_ms() + i64::from(self.config().session_hours) * 3_600_000;
                let (h, c2, uid) = (auth::secret_hash(&secret), csrf.clone(), user.id);
                self.store()
                    .call(move |c| {
                        q::users::purge_expired_tokens(c)?;
                        q::users::insert_token(
                            c,
                            &h,
                            uid,
                            TokenKind::Session,
                            "",
                            &c2,
                            Some(expires),
                        )
                    })
                    .await?;
                Ok((secret, csrf, user))
            }
            _ => Err(CmsError::Unauthenticated),
        }
    }

    pub async fn logout(&self, secret: &str) -> Result<()> {
        let h = auth::secret_hash(secret);
        self.store()
            .call(move |c| q::users::delete_token(c, &h))
            .await
    }

    /// The user behind a session cookie or bearer token.
    pub async fn authenticate(&self, secret: &str, via: Via) -> Result<Principal> {
        let h = auth::secret_hash(secret);
        let found = self
            .store()
            .call(move |c| q::users::user_by_token(c, &h))
            .await?;
        let (user, csrf, note_use, scope) = found.ok_or(CmsError::Unauthenticated)?;
        if note_use {
            let h = auth::secret_hash(secret);
            self.store()
                .call(move |c| q::users::touch_api_token(c, &h))
                .await?;
        }
        Ok(Principal {
            user,
            csrf,
            via,
            default_commune: self.default_commune(),
            scope,
        })
    }

    /// A long-lived API token for scripts and the provincial system; shown once.
    pub async fn create_api_token(
        &self,
        p: &Principal,
        name: &str,
        scope: Option<&str>,
        expires_days: Option<u32>,
    ) -> Result<String> {
        let name = required(name, 100, "tên mã truy cập", "Token name")?;
        let days = expires_days.unwrap_or(API_TOKEN_DAYS);
        if !(1..=MAX_API_TOKEN_DAYS).contains(&days) {
            return Err(CmsError::invalid(
                format!("Thời hạn của mã từ 1 đến {MAX_API_TOKEN_DAYS} ngày."),
                format!("A token lasts 1 to {MAX_API_TOKEN_DAYS} days."),
            ));
        }
        let expires = q::now_ms() + i64::from(days) * 86_400_000;
        let scope = match scope {
            None => None,
            Some("province") if p.user.commune_id.is_none() && p.can(Perm::Audit) => {
                Some("province".to_owned())
            }
            Some("province") => {
                return Err(CmsError::forbidden(
                    "Chỉ quản trị viên cấp tỉnh cấp được mã cho số liệu toàn tỉnh.",
                    "Only a province-wide admin issues province tokens.",
                ));
            }
            Some(other) => {
                return Err(CmsError::invalid(
                    format!("Phạm vi không hợp lệ: {other} (chỉ có: province)"),
                    format!("Unknown scope: {other} (only: province)"),
                ));
            }
        };
        let secret = auth::new_secret();
        let (h, uid) = (auth::secret_hash(&secret), p.user.id);
        let commune = p.commune(None)?;
        let rec_name = name.clone();
        let p2 = p.clone();
        self.store()
            .call(move |c| {
                let tx = c.transaction()?;
                q::users::insert_token(&tx, &h, uid, TokenKind::Api, &name, "", Some(expires))?;
                if let Some(scope) = &scope {
                    q::users::set_token_scope(&tx, &h, scope)?;
                }
                let after = serde_json::json!({ "name": rec_name, "days": days });
                q::audit(
                    &tx,
                    &audit_by(&p2, commune, "create", "api_token", uid, None, Some(after)),
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        Ok(secret)
    }

    /// Live API tokens: the caller's own, or for user admins every user's in their
    /// commune (province-wide admins: all).
    pub async fn api_tokens(&self, p: &Principal) -> Result<Vec<q::users::ApiToken>> {
        p.require(Perm::Read)?;
        let (commune, user) = if p.can(Perm::ManageUsers) {
            (p.user.commune_id, None)
        } else {
            (p.user.commune_id, Some(p.user.id))
        };
        self.store()
            .call(move |c| q::users::api_tokens(c, commune, user))
            .await
    }

    /// Revokes one API token: the caller's own, or (user admins) any of their commune's.
    pub async fn revoke_api_token(&self, p: &Principal, id: i64) -> Result<()> {
        p.require(Perm::Read)?;
        let p = p.clone();
        self.store()
            .call(move |c| {
                let tx = c.transaction()?;
                let missing = || CmsError::not_found("Không tìm thấy mã truy cập", "API token");
                let (owner, commune) = q::users::api_token_owner(&tx, id)?.ok_or_else(missing)?;
                let own = owner == p.user.id;
                let admin_here = p.can(Perm::ManageUsers)
                    && (p.user.commune_id.is_none() || p.user.commune_id == commune);
                if !own && !admin_here {
                    return Err(missing());
                }
                q::users::delete_api_token(&tx, id)?;
                let cid = commune.unwrap_or(p.default_commune);
                q::audit(
                    &tx,
                    &audit_by(&p, cid, "revoke", "api_token", owner, None, None),
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// Adds a user. From the command line (`p` = None, first admin) or by an admin.
    pub async fn create_user(&self, p: Option<&Principal>, req: NewUserRequest) -> Result<User> {
        if let Some(p) = p {
            p.require(Perm::ManageUsers)?;
        }
        let (role, username) = checked_user(&req)?;
        let commune_id = match (req.province_wide, p) {
            (true, _) if role != Role::Admin => {
                return Err(CmsError::invalid(
                    "Chỉ quản trị viên mới có thể phụ trách cả tỉnh.",
                    "Only admins can be province-wide.",
                ));
            }
            (true, Some(p)) if p.user.commune_id.is_some() => {
                return Err(CmsError::forbidden(
                    "Chỉ quản trị cấp tỉnh mới tạo được tài khoản cấp tỉnh.",
                    "Only province-wide admins can create province-wide accounts.",
                ));
            }
            (true, _) => None,
            (false, Some(p)) => Some(p.commune(req.commune_id)?),
            (false, None) => Some(req.commune_id.unwrap_or(self.default_commune())),
        };
        let display = req
            .display_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let display = display.unwrap_or(&username).to_owned();
        let password = req.password.clone();
        let hash = self
            .hash_in_turn(move || auth::hash_password(&password))
            .await??;
        let p = p.cloned();
        self.store()
            .call(move |c| {
                let tx = c.transaction()?;
                if let Some(cid) = commune_id {
                    q::users::commune(&tx, cid)?;
                }
                let id = q::users::insert_user(
                    &tx,
                    &NewUser {
                        username: &username,
                        display_name: &display,
                        password_hash: &hash,
                        role,
                        commune_id,
                    },
                )?;
                let user = q::users::user(&tx, id)?;
                let rec = q::AuditRecord {
                    user_id: p.as_ref().map(|p| p.user.id),
                    username: p.as_ref().map(|p| p.user.username.as_str()),
                    commune_id,
                    action: "create",
                    entity: "user",
                    entity_id: Some(id),
                    before: None,
                    after: to_json(&user),
                };
                q::audit(&tx, &rec)?;
                tx.commit()?;
                Ok(user)
            })
            .await
    }

    pub async fn list_users(&self, p: &Principal) -> Result<Vec<User>> {
        p.require(Perm::ManageUsers)?;
        let scope = p.user.commune_id;
        self.store().call(move |c| q::users::users(c, scope)).await
    }

    /// The audit log, newest first: the caller's commune, or everything for a
    /// province-wide admin.
    pub async fn audit_log(&self, p: &Principal, limit: u32) -> Result<Vec<AuditEntry>> {
        p.require(Perm::Audit)?;
        let scope = p.user.commune_id;
        self.store()
            .call(move |c| q::audit_entries(c, scope, limit))
            .await
    }

    pub async fn set_user_disabled(&self, p: &Principal, id: i64, disabled: bool) -> Result<User> {
        p.require(Perm::ManageUsers)?;
        let p = p.clone();
        self.store()
            .call(move |c| {
                let commune = |u: &User| u.commune_id.unwrap_or(p.default_commune);
                change_audited(
                    c,
                    &p,
                    if disabled { "disable" } else { "enable" },
                    "user",
                    id,
                    q::users::user,
                    commune,
                    |tx, before| {
                        if let Some(cid) = before.commune_id {
                            p.check_commune(cid, crate::Text::new("Người dùng", "User"))?;
                        }
                        if id == p.user.id {
                            return Err(CmsError::conflict(
                                "Không thể tự khoá tài khoản của mình.",
                                "You cannot disable yourself.",
                            ));
                        }
                        q::users::set_disabled(tx, id, disabled)
                    },
                )
            })
            .await
    }

    pub async fn communes(&self, p: &Principal) -> Result<Vec<Commune>> {
        let own = p.user.commune_id;
        let all = self.store().call(q::users::communes_owned).await?;
        Ok(all
            .into_iter()
            .filter(|c| own.is_none_or(|o| o == c.id))
            .collect())
    }

    pub async fn commune(&self, id: i64) -> Result<Commune> {
        self.store().call(move |c| q::users::commune(c, id)).await
    }

    pub async fn update_commune(
        &self,
        p: &Principal,
        id: i64,
        patch: CommunePatch,
    ) -> Result<Commune> {
        p.require(Perm::ManagePlaces)?;
        let id = p.commune(Some(id))?;
        let name = patch
            .name
            .as_deref()
            .map(|n| required(n, 200, "tên xã", "Commune name"))
            .transpose()?;
        if let Some(tz) = &patch.tz {
            tz.parse::<protocol::Tz>().map_err(|_| {
                CmsError::invalid(
                    format!("Múi giờ không hợp lệ: {tz}"),
                    format!("Unknown time zone: {tz}"),
                )
            })?;
        }
        for t in [&patch.quiet_start, &patch.quiet_end].into_iter().flatten() {
            t.parse::<protocol::schedule::LocalTime>().map_err(|e| {
                CmsError::invalid(format!("Giờ yên tĩnh không hợp lệ: {t}"), e.to_string())
            })?;
        }
        if patch
            .loudness_target
            .is_some_and(|l| !(-30.0..=-10.0).contains(&l))
        {
            return Err(CmsError::invalid(
                "Mức chuẩn độ lớn phải từ -30 đến -10 LUFS.",
                "The loudness target is -30 to -10 LUFS.",
            ));
        }
        let p = p.clone();
        self.write(move |c| {
            let normal = |t: &Option<String>| {
                t.as_deref()
                    .and_then(|t| t.parse::<protocol::schedule::LocalTime>().ok())
                    .map(|t| t.0.format("%H:%M").to_string())
            };
            let (start, end) = (normal(&patch.quiet_start), normal(&patch.quiet_end));
            change_audited(c, &p, "update", "commune", id, q::users::commune, |c: &Commune| c.id, |tx, _| {
                tx.execute(
                    "UPDATE communes SET name = COALESCE(?2, name), tz = COALESCE(?3, tz), quiet_start = COALESCE(?4, quiet_start),
                         quiet_end = COALESCE(?5, quiet_end), loudness_target = COALESCE(?6, loudness_target) WHERE id = ?1",
                    rusqlite::params![id, name, patch.tz, start, end, patch.loudness_target],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Creates a commune (province-wide admins), e.g. for a demo or a new deployment.
    pub async fn ensure_commune(&self, slug: &str, name: &str) -> Result<Commune> {
        let (slug, name) = (slug.to_owned(), name.to_owned());
        self.store()
            .call(move |c| q::users::ensure_commune(c, &slug, &name))
            .await
    }
}

/// A valid argon2 hash of a random password, computed once.
impl Cms {
    /// Runs a password hash on the hashing pool (see [`auth::HashPool`]).
    pub(crate) async fn hash_in_turn<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.inner.hashing.run(work).await
    }
}

/// API tokens last this many days unless asked otherwise, and at most the maximum.
pub const API_TOKEN_DAYS: u32 = 90;
pub const MAX_API_TOKEN_DAYS: u32 = 730;

fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(&auth::new_secret()).unwrap_or_default())
        .clone()
}
