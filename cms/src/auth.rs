//! Who is asking and what they may do: password hashing (argon2id), session and API token
//! secrets (random, stored as SHA-256), the role x permission table, and the login rate
//! limiter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::blobs::{hex, sha256_hex};
use crate::error::{CmsError, Result};
use crate::model::{Role, User};

pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CmsError::Storage(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A fresh 256-bit secret, hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    hex(&bytes)
}

/// What the database keeps of a secret.
pub fn secret_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

/// How a request proved who it is. Only cookie sessions need a CSRF token: a bearer token
/// is never sent by a browser on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Cookie,
    Bearer,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub csrf: String,
    pub via: Via,
    /// The commune a province-wide admin works in when a request names none.
    pub default_commune: i64,
    /// A token limited to one use (`province`: `GET /api/v1/province` only).
    pub scope: Option<String>,
}

impl Principal {
    pub fn can(&self, perm: Perm) -> bool {
        allowed(self.user.role, perm)
    }

    pub fn require(&self, perm: Perm) -> Result<()> {
        if self.can(perm) {
            Ok(())
        } else {
            Err(CmsError::forbidden(
                "Vai trò của bạn không được làm việc này.",
                "Your role does not allow this.",
            ))
        }
    }

    /// The commune a request acts in: the user's own, or for a province-wide admin the one
    /// asked for (or the first).
    pub fn commune(&self, requested: Option<i64>) -> Result<i64> {
        match (self.user.commune_id, requested) {
            (Some(own), Some(asked)) if own != asked => Err(CmsError::forbidden(
                "Bạn chỉ làm việc được trong xã của mình.",
                "You can only work in your own commune.",
            )),
            (Some(own), _) => Ok(own),
            (None, asked) => Ok(asked.unwrap_or(self.default_commune)),
        }
    }

    /// Records of another commune look like missing ones: their existence is not leaked.
    pub fn check_commune(&self, commune_id: i64, what: crate::error::Text) -> Result<()> {
        match self.user.commune_id {
            Some(own) if own != commune_id => Err(CmsError::NotFound(what)),
            _ => Ok(()),
        }
    }
}

/// Everything a route can require. The route table (`http::routes`) names one per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Perm {
    /// No login (health, public pages, login itself).
    Public,
    /// Any logged-in user: reading the commune's content, places, schedules, logs.
    Read,
    /// Upload, type, edit and submit content.
    EditContent,
    /// Approve or reject submitted content.
    Approve,
    /// Create, change and delete schedules.
    Schedule,
    /// Villages and groups.
    ManagePlaces,
    /// Speaker nodes: add, edit, enrol.
    ManageNodes,
    /// Users and communes.
    ManageUsers,
    /// The audit log.
    Audit,
    /// A speaker node with its node token (the fleet link); never a user.
    Node,
}

pub fn allowed(role: Role, perm: Perm) -> bool {
    use Perm::*;
    match role {
        Role::Admin => perm != Node,
        Role::Editor => matches!(perm, Public | Read | EditContent | Schedule),
        Role::Approver => matches!(perm, Public | Read | Approve | Schedule | Audit),
        Role::Technician => matches!(perm, Public | Read | ManageNodes),
        Role::Viewer => matches!(perm, Public | Read),
    }
}

/// Failed logins allowed per user+address and per address in [`WINDOW`].
const PER_USER: usize = 5;
const PER_ADDRESS: usize = 20;
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts failed logins per username (at one address) and per address.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    fn keys(username: &str, ip: &str) -> [(String, usize); 2] {
        [
            (format!("u:{}@{ip}", username.to_lowercase()), PER_USER),
            (format!("ip:{ip}"), PER_ADDRESS),
        ]
    }

    /// Refuses an attempt when either count is full.
    pub fn check(&self, username: &str, ip: &str) -> Result<()> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (key, max) in Self::keys(username, ip) {
            if let Some(list) = map.get_mut(&key) {
                while list
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > WINDOW)
                {
                    list.pop_front();
                }
                if list.len() >= max {
                    let oldest = list.front().copied().unwrap_or(now);
                    let wait = WINDOW.saturating_sub(now.duration_since(oldest));
                    return Err(CmsError::RateLimited {
                        retry_after_s: wait.as_secs().max(1),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, username: &str, ip: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.clear(); // a flood of made-up names must not grow memory without bound
        }
        for (key, _) in Self::keys(username, ip) {
            map.entry(key).or_default().push_back(Instant::now());
        }
    }

    pub fn succeeded(&self, username: &str, ip: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Self::keys(username, ip)[0].0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("mật khẩu dài").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("mật khẩu dài", &h));
        assert!(!verify_password("mat khau dai", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn limiter_blocks_after_five_failures_per_user() {
        let l = LoginLimiter::default();
        for _ in 0..PER_USER {
            l.check("an", "10.0.0.1").unwrap();
            l.failed("an", "10.0.0.1");
        }
        assert!(matches!(
            l.check("an", "10.0.0.1"),
            Err(CmsError::RateLimited { .. })
        ));
        assert!(matches!(
            l.check("AN", "10.0.0.1"),
            Err(CmsError::RateLimited { .. })
        ));
        // Another user from the same address is still allowed; so is the user elsewhere.
        l.check("binh", "10.0.0.1").unwrap();
        l.check("an", "10.0.0.2").unwrap();
    }

    #[test]
    fn limiter_blocks_an_address_guessing_many_names() {
        let l = LoginLimiter::default();
        for i in 0..PER_ADDRESS {
            l.failed(&format!("user{i}"), "10.0.0.9");
        }
        assert!(l.check("someone", "10.0.0.9").is_err());
    }

    #[test]
    fn viewers_only_read() {
        assert!(allowed(Role::Viewer, Perm::Read));
        for p in [
            Perm::EditContent,
            Perm::Approve,
            Perm::Schedule,
            Perm::ManageNodes,
            Perm::ManageUsers,
        ] {
            assert!(!allowed(Role::Viewer, p));
        }
        assert!(!allowed(Role::Editor, Perm::Approve));
        assert!(allowed(Role::Approver, Perm::Approve));
    }
}
