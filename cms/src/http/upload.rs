//! Multipart uploads, streamed: the `file` part goes chunk by chunk into a temporary blob
//! (hashed on the way) and is never held whole in memory; the other parts are small text
//! fields.

use futures_util::StreamExt;

use super::Req;
use crate::Cms;
use crate::blobs::{BlobStore, PendingBlob};
use crate::error::{CmsError, Result};
use crate::service::UploadMeta;

/// The parts of an upload (`multipart/form-data`), for the OpenAPI document: the handler
/// streams them rather than parsing them into this type.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The audio file.
    #[schemars(extend("format" = "binary"))]
    file: String,
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    title: String,
    #[schemars(with = "super::schema::Category")]
    category: String,
    #[serde(default)]
    description: String,
}

/// Longest accepted text field.
const MAX_FIELD: usize = 10_000;

/// After refusing an upload as too large, read (and drop) up to this much more of it so
/// the client sees the 413 instead of a connection reset mid-write.
const DRAIN_MAX: u64 = 8 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn receive(cms: &Cms, req: &mut Req) -> Result<(UploadMeta, PendingBlob)> {
    let result = receive_inner(cms, req).await;
    if let Err(CmsError::TooLarge { .. }) = &result {
        if let Some(mut body) = req.take_body() {
            drain_stream(&mut body).await;
        }
    }
    result
}

/// Discards what is left of a stream, within [`DRAIN_MAX`] and [`DRAIN_TIME`].
async fn drain_stream<S, B, E>(stream: &mut S)
where
    S: futures_util::Stream<Item = std::result::Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.as_ref().len() as u64;
            if seen > DRAIN_MAX {
                break;
            }
        }
    })
    .await;
}

async fn receive_inner(cms: &Cms, req: &mut Req) -> Result<(UploadMeta, PendingBlob)> {
    let limit = cms.config().max_upload_bytes;
    if let Some(len) = req
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        // Refuse before reading when the client says up front that it is too big
        // (a little slack for the multipart framing and the text fields).
        if len > limit + 64 * 1024 {
            return Err(CmsError::TooLarge { limit });
        }
    }
    let boundary = req
        .header("content-type")
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            CmsError::invalid(
                "Cần gửi dạng multipart/form-data với trường file.",
                "Send multipart/form-data with a file field.",
            )
        })?;
    let body = req
        .take_body()
        .ok_or_else(|| CmsError::invalid("Thiếu dữ liệu.", "Empty request."))?;
    read_form(cms.blobs(), limit, body, boundary).await
}

/// The parts of a multipart upload: the `file` into a pending blob of at most `limit`
/// bytes, the text fields into the metadata (checked later, by the service).
pub(crate) async fn read_form(
    blobs: &BlobStore,
    limit: u64,
    body: super::BodyStream,
    boundary: String,
) -> Result<(UploadMeta, PendingBlob)> {
    let mut form = multer::Multipart::new(body, boundary);
    let mut meta = UploadMeta::default();
    let mut blob = None;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or("") {
            "file" => {
                let mut writer = blobs.writer(limit)?;
                while let Some(chunk) = field.next().await {
                    if let Err(e) = writer.write(&chunk.map_err(bad_form)?) {
                        if matches!(e, CmsError::TooLarge { .. }) {
                            drain_stream(&mut field).await;
                        }
                        return Err(e);
                    }
                }
                if blob.is_some() {
                    return Err(CmsError::invalid(
                        "Chỉ gửi một tệp mỗi lần.",
                        "Send one file at a time.",
                    ));
                }
                blob = Some(writer.finish()?);
            }
            name => {
                let name = name.to_owned();
                let value = text_field(field).await?;
                match name.as_str() {
                    "title" => meta.title = value,
                    "category" => meta.category = value,
                    "description" => meta.description = value,
                    "commune_id" => meta.commune_id = value.trim().parse().ok(),
                    _ => {} // unknown fields are ignored, as browsers may add some
                }
            }
        }
    }
    let blob = blob.ok_or_else(|| {
        CmsError::invalid(
            "Chưa chọn tệp âm thanh.",
            "No file was sent (field 'file').",
        )
    })?;
    if blob.size == 0 {
        return Err(CmsError::invalid("Tệp rỗng.", "The file is empty."));
    }
    Ok((meta, blob))
}

async fn text_field(mut field: multer::Field<'_>) -> Result<String> {
    let mut out = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(bad_form)?;
        if out.len() + chunk.len() > MAX_FIELD {
            return Err(CmsError::invalid(
                "Trường văn bản quá dài.",
                "A text field is too long.",
            ));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out)
        .map_err(|_| CmsError::invalid("Văn bản không phải UTF-8.", "Text is not UTF-8."))
}

fn bad_form(e: multer::Error) -> CmsError {
    CmsError::invalid(
        format!("Dữ liệu gửi lên bị lỗi: {e}"),
        format!("Malformed upload: {e}"),
    )
}
