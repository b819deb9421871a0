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
                    Self::conflict("Tên này đã có.", "That name is already taken.")
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

impl From<std::io::Error> for CmsError {
    fn from(e: std::io::Error) -> Self {
        Self::Storage(e.to_string())
    }
}
