//! Who is asking and what they may do: password hashing (argon2id), session and API token
//! secrets (random, stored as SHA-256), the role x permission table, and the login rate
//! limiter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::blobs::{hex, sha256_hex};
use crate::error::{CmsError, Result};
use crate::model::{Role, User};

pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let params = Params::default();
    let failed =
        |e: &dyn std::fmt::Display| CmsError::Storage(format!("password hashing failed: {e}"));
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_blocks(params.block_count(), |blocks| {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
    })
    .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` is the one `hash` (a PHC string) was made from.
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&h.salt, &h.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(h.algorithm.as_str()),
        Params::try_from(&h),
    ) else {
        return false;
    };
    let version = match h.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut out = vec![0u8; expected.len()];
    let computed = with_blocks(params.block_count(), |blocks| {
        Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            blocks,
        )
    });
    // Output's equality runs in constant time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| &o == expected)
}

/// Runs `f` with this thread's argon2 working memory, `n` blocks of it. The memory is
/// allocated once per thread and kept: allocating ~19 MB for every hash left the
/// allocator holding each one (a process grew ~19 MB a login).
fn with_blocks<T>(n: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCKS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut blocks) => {
            if blocks.len() < n {
                blocks.resize(n, Block::new());
            }
            f(&mut blocks[..n])
        }
        // Not reentrant in practice; a fresh buffer if it ever were.
        Err(_) => f(&mut vec![Block::new(); n]),
    })
}

/// Where password hashes run: a few threads of their own (one per core) behind a
/// semaphore, each with its argon2 working memory (~19 MB) allocated once. On tokio's
/// blocking pool, unbounded, a burst of 25 logins grew the process by ~400 MB and kept
/// it; here it is bounded by the pool's size.
pub struct HashPool {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
    slots: tokio::sync::Semaphore,
}

/// How long a login waits for a hashing slot before it is told the server is busy.
const HASH_WAIT: Duration = Duration::from_secs(10);

impl HashPool {
    pub fn new(threads: usize) -> HashPool {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the CMS is gone
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password hashing thread: {e}");
            }
        }
        HashPool {
            jobs: tx,
            slots: tokio::sync::Semaphore::new(threads.max(1)),
        }
    }

    /// Runs `work` on the pool when a slot is free; a caller that waits [`HASH_WAIT`]
    /// for one is told to come back (429).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let busy = || CmsError::RateLimited { retry_after_s: 2 };
        let _permit = tokio::time::timeout(HASH_WAIT, self.slots.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs
            .send(job)
            .map_err(|_| CmsError::Storage("password hashing stopped".into()))?;
        rx.await
            .map_err(|_| CmsError::Storage("password check failed".into()))
    }
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
/// Keys kept at most: past it, a flood of made-up names empties the table rather than
/// growing memory without bound.
const MAX_KEYS: usize = 100_000;

/// How usernames are compared everywhere a login is counted or looked up: surrounding
/// spaces are not part of a name (`' editor2'` is `editor2`, locked or not).
pub fn normalise_username(username: &str) -> String {
    username.trim().to_owned()
}

/// Counts failed attempts per key (`user@address`, `address`, or any key a caller
/// chooses). An attempt is counted *before* the password is checked, under one lock, so
/// parallel attempts cannot all pass the check at once; a success takes its count back.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// An attempt counted against its keys; [`Attempt::succeeded`] takes it back, anything
/// else (failure, error, a dropped request) leaves it counted.
#[must_use]
pub struct Attempt<'a> {
    limiter: &'a Limiter,
    keys: Vec<String>,
    at: Instant,
}

impl Limiter {
    /// Counts an attempt against `keys` (each with its limit), or refuses it when any
    /// of them is full.
    pub fn begin(&self, keys: &[(String, usize)]) -> Result<Attempt<'_>> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (key, max) in keys {
            if let Some(list) = map.get_mut(key) {
                while list
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > WINDOW)
                {
                    list.pop_front();
                }
                if list.len() >= *max {
                    let oldest = list.front().copied().unwrap_or(now);
                    let wait = WINDOW.saturating_sub(now.duration_since(oldest));
                    return Err(CmsError::RateLimited {
                        retry_after_s: wait.as_secs().max(1),
                    });
                }
            }
        }
        if map.len() > MAX_KEYS {
            map.clear();
        }
        for (key, _) in keys {
            map.entry(key.clone()).or_default().push_back(now);
        }
        Ok(Attempt {
            limiter: self,
            keys: keys.iter().map(|(k, _)| k.clone()).collect(),
            at: now,
        })
    }
}

impl Attempt<'_> {
    /// The attempt succeeded: it no longer counts, and the first key's earlier failures
    /// (the user's, at this address) are forgiven.
    pub fn succeeded(self) {
        let mut map = self
            .limiter
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(first) = self.keys.first() {
            map.remove(first);
        }
        for key in self.keys.iter().skip(1) {
            if let Some(list) = map.get_mut(key)
                && let Some(i) = list.iter().rposition(|t| *t == self.at)
            {
                list.remove(i);
            }
        }
    }
}

/// The keys a login attempt counts against: the user at this address, then the address.
pub fn login_keys(username: &str, ip: &str) -> [(String, usize); 2] {
    [
        (format!("u:{}@{ip}", username.to_lowercase()), PER_USER),
        (format!("ip:{ip}"), PER_ADDRESS),
    ]
}

/// Failed enrolments allowed per address in [`WINDOW`]: counted apart from logins, so
/// staff mistyping passwords never stop a technician enrolling nodes (or the reverse).
const ENROL_PER_ADDRESS: usize = 20;

pub fn enrol_keys(ip: &str) -> [(String, usize); 1] {
    [(format!("ip:{ip}"), ENROL_PER_ADDRESS)]
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

    fn fail(l: &Limiter, user: &str, ip: &str) -> Result<()> {
        l.begin(&login_keys(user, ip)).map(drop)
    }

    #[test]
    fn limiter_blocks_after_five_failures_per_user() {
        let l = Limiter::default();
        for _ in 0..PER_USER {
            fail(&l, "an", "10.0.0.1").unwrap();
        }
        assert!(matches!(
            fail(&l, "an", "10.0.0.1"),
            Err(CmsError::RateLimited { .. })
        ));
        assert!(matches!(
            fail(&l, "AN", "10.0.0.1"),
            Err(CmsError::RateLimited { .. })
        ));
        // Another user from the same address is still allowed; so is the user elsewhere.
        fail(&l, "binh", "10.0.0.1").unwrap();
        fail(&l, "an", "10.0.0.2").unwrap();
    }

    #[test]
    fn limiter_blocks_an_address_guessing_many_names() {
        let l = Limiter::default();
        for i in 0..PER_ADDRESS {
            fail(&l, &format!("user{i}"), "10.0.0.9").unwrap();
        }
        assert!(fail(&l, "someone", "10.0.0.9").is_err());
    }

    #[test]
    fn attempts_in_flight_count_and_a_success_gives_its_count_back() {
        let l = Limiter::default();
        // Five attempts at once, none settled yet: the sixth is refused.
        let pending: Vec<_> = (0..PER_USER)
            .map(|_| l.begin(&login_keys("an", "10.0.0.1")).unwrap())
            .collect();
        assert!(l.begin(&login_keys("an", "10.0.0.1")).is_err());
        for a in pending {
            a.succeeded();
        }
        // All succeeded: nothing counts any more, for the user or the address.
        for _ in 0..PER_USER {
            fail(&l, "an", "10.0.0.1").unwrap();
        }
        let map = l.failures.lock().unwrap();
        assert_eq!(map["ip:10.0.0.1"].len(), PER_USER);
    }

    #[test]
    fn usernames_are_compared_without_surrounding_spaces() {
        assert_eq!(normalise_username(" editor2 "), "editor2");
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
