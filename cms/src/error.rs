//! The CMS's one error type. Every message exists in Vietnamese and English; the HTTP layer
//! picks one per request and maps the kind to a status in one place (`http::reply`).

use crate::i18n::Lang;

/// A message in both languages users may choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub vi: String,
    pub en: String,
}

impl Text {
    pub fn new(vi: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            vi: vi.into(),
            en: en.into(),
        }
    }
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.vi,
            Lang::En => &self.en,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("not authenticated")]
    Unauthenticated,
    #[error("forbidden: {}", .0.en)]
    Forbidden(Text),
    #[error("{} not found", .0.en)]
    NotFound(Text),
    #[error("invalid input: {}", .0.en)]
    Invalid(Text),
    #[error("conflict: {}", .0.en)]
    Conflict(Text),
    #[error("upload larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("unsupported audio: {}", .0.en)]
    UnsupportedMedia(Text),
    #[error("too many attempts; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("text to speech failed: {0}")]
    Tts(String),
    #[error("storage: {0}")]
    Storage(String),
}

pub type Result<T, E = CmsError> = std::result::Result<T, E>;

impl CmsError {
    pub fn invalid(vi: impl Into<String>, en: impl Into<String>) -> Self {
        Self::Invalid(Text::new(vi, en))
    }
    pub fn forbidden(vi: impl Into<String>, en: impl Into<String>) -> Self {
        Self::Forbidden(Text::new(vi, en))
    }
    pub fn conflict(vi: impl Into<String>, en: impl Into<String>) -> Self {
        Self::Conflict(Text::new(vi, en))
    }
    pub fn not_found(vi: impl Into<String>, en: impl Into<String>) -> Self {
        Self::NotFound(Text::new(vi, en))
    }

    /// Machine-readable code for `{"error": CODE}`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid",
            Self::Conflict(_) => "conflict",
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedMedia(_) => "unsupported_media",
            Self::RateLimited { .. } => "rate_limited",
            Self::Tts(_) => "tts_failed",
            Self::Storage(_) => "internal",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Invalid(_) => 400,
            Self::Conflict(_) => 409,
            Self::TooLarge { .. } => 413,
            Self::UnsupportedMedia(_) => 415,
            Self::RateLimited { .. } => 429,
            Self::Tts(_) => 502,
            Self::Storage(_) => 500,
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (Self::Unauthenticated, Lang::Vi) => "Cần đăng nhập.".into(),
            (Self::Unauthenticated, Lang::En) => "Please log in.".into(),
            (
                Self::Forbidden(t)
                | Self::NotFound(t)
                | Self::Invalid(t)
                | Self::Conflict(t)
                | Self::UnsupportedMedia(t),
                l,
            ) => t.get(l).to_owned(),
            (Self::TooLarge { limit }, Lang::Vi) => {
                format!("Tệp quá lớn (tối đa {} MB).", limit / 1_000_000)
            }
            (Self::TooLarge { limit }, Lang::En) => {
                format!("File too large (at most {} MB).", limit / 1_000_000)
            }
            (Self::RateLimited { retry_after_s }, Lang::Vi) => {
                format!("Quá nhiều lần thử, hãy thử lại sau {retry_after_s} giây.")
            }
            (Self::RateLimited { retry_after_s }, Lang::En) => {
                format!("Too many attempts; try again in {retry_after_s} seconds.")
            }
            (Self::Tts(e), Lang::Vi) => format!("Không tạo được giọng đọc: {e}"),
            (Self::Tts(e), Lang::En) => format!("Text to speech failed: {e}"),
            (Self::Storage(_), Lang::Vi) => "Lỗi lưu trữ trên máy chủ.".into(),
            (Self::Storage(_), Lang::En) => "Server storage error.".into(),
        }
    }
}

impl From<rusqlite::Error> for CmsError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Self::not_found("Không tìm thấy", "Record"),
            rusqlite::Error::SqliteFailure(f, ref msg)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let detail = msg.clone().unwrap_or_default();
                if detail.contains("UNIQUE") {
                    unique_violation(&detail)
                } else if detail.contains("FOREIGN KEY") {
                    // A village, node or item named by id that does not exist.
                    Self::not_found("Bản ghi được nhắc đến", "A record it refers to")
                } else {
                    Self::invalid(
                        format!("Dữ liệu không hợp lệ ({detail})."),
                        format!("Invalid reference ({detail})."),
                    )
                }
            }
            other => Self::Storage(other.to_string()),
        }
    }
}

/// A UNIQUE violation, naming what is taken. SQLite says which columns:
/// `UNIQUE constraint failed: villages.commune_id, villages.name`.
fn unique_violation(detail: &str) -> CmsError {
    let columns = detail.rsplit(": ").next().unwrap_or_default();
    let table = columns.split('.').next().unwrap_or_default();
    let (vi, en) = match table {
        "users" => (
            "Tên đăng nhập này đã có.",
            "That username is already taken.",
        ),
        "villages" => (
            "Xã đã có thôn mang tên này.",
            "The commune already has a village of that name.",
        ),
        "village_groups" => (
            "Xã đã có nhóm mang tên này.",
            "The commune already has a group of that name.",
        ),
        "nodes" if columns.contains("name") => (
            "Xã đã có cụm loa mang tên này.",
            "The commune already has a node of that name.",
        ),
        "communes" => ("Mã xã này đã có.", "That commune slug is already taken."),
        _ => {
            return CmsError::conflict(
                format!("Giá trị này đã có ({columns})."),
                format!("That value is already taken ({columns})."),
            );
        }
    };
    CmsError::conflict(vi, en)
}

impl From<std::io::Error> for CmsError {
    fn from(e: std::io::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_violation_names_what_is_taken() {
        let en = |detail: &str| unique_violation(detail).message(Lang::En);
        assert_eq!(
            en("UNIQUE constraint failed: users.username"),
            "That username is already taken."
        );
        assert_eq!(
            en("UNIQUE constraint failed: villages.commune_id, villages.name"),
            "The commune already has a village of that name."
        );
        assert_eq!(
            en("UNIQUE constraint failed: nodes.commune_id, nodes.name"),
            "The commune already has a node of that name."
        );
        assert!(en("UNIQUE constraint failed: blobs.path").contains("blobs.path"));
        let vi = unique_violation(
            "UNIQUE constraint failed: village_groups.commune_id, village_groups.name",
        );
        assert_eq!(vi.message(Lang::Vi), "Xã đã có nhóm mang tên này.");
    }
}
