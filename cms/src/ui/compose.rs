//! Making new content: uploading a recording, recording one with the browser's
//! microphone, typing an announcement (voice, speed, heard before saving) and relays.

use maud::{Markup, html};
use warp::reply::Response;

use super::library::category_options;
use super::{Page, form_end};
use crate::tts;

/// A labelled text input of a new-content form.
pub(super) fn title_field(page: &Page<'_>, id: &str, placeholder: Option<&str>) -> Markup {
    html! {
        label for=(id) { (page.t("Tiêu đề", "Title")) }
        input type="text" id=(id) name="title" required maxlength="200" placeholder=[placeholder];
    }
}

pub(super) fn category_field(page: &Page<'_>, id: &str) -> Markup {
    html! {
        label for=(id) { (page.t("Thể loại", "Category")) }
        select id=(id) name="category" { (category_options(page, None)) }
    }
}

pub fn new_content(page: &Page<'_>) -> Response {
    let made = page.t("Đã tạo giọng đọc.", "Speech created.");
    let body = html! {
        div.card {
            h2 { (page.t("Tải lên bản ghi âm", "Upload a recording")) }
            form #upload-form data-upload="/api/v1/content" data-next="/ui/content"
                data-ok=(page.t("Đã tải lên.", "Uploaded.")) enctype="multipart/form-data" {
                (page.csrf_field())
                (title_field(page, "up-title", None))
                (category_field(page, "up-category"))
                label for="up-description" { (page.t("Mô tả", "Description")) }
                textarea id="up-description" name="description" {}
                label for="up-file" { (page.t("Tệp âm thanh", "Audio file")) }
                input type="file" id="up-file" name="file" accept="audio/*,.mp3,.m4a,.ogg,.flac,.wav" required;
                p.muted { (page.t(
                    "MP3, M4A (AAC), OGG Vorbis, FLAC hoặc WAV. Tệp được kiểm tra và đo độ lớn âm thanh khi tải lên.",
                    "MP3, M4A (AAC), Ogg Vorbis, FLAC or WAV. Files are checked and their loudness measured on upload.",
                )) }
                progress value="0" max="1" {}
                div.msg.hidden {}
                p { button type="submit" id="upload-button" { (page.t("Tải lên", "Upload")) } }
            }
        }
        (record_card(page))
        div.card {
            h2 { (page.t("Soạn thông báo bằng văn bản (đọc tự động)", "Type an announcement (text to speech)")) }
            form #tts-form data-api="/api/v1/content/tts" data-next="/ui/content" data-ok=(made) {
                (page.csrf_field())
                (title_field(page, "tts-title", None))
                (category_field(page, "tts-category"))
                label for="tts-text" { (page.t("Nội dung thông báo", "Announcement text")) }
                textarea id="tts-text" name="text" required maxlength="5000" {}
                div.grid {
                    div {
                        label for="tts-voice" { (page.t("Giọng đọc", "Voice")) }
                        select id="tts-voice" name="voice" {
                            @for (id, vi, en) in tts::VOICES {
                                option value=(id) { (page.t(vi, en)) }
                            }
                        }
                    }
                    div {
                        label for="tts-speed" { (page.t("Tốc độ đọc", "Speaking rate")) }
                        select id="tts-speed" name="speed" data-type="int" {
                            option value="120" { (page.t("Chậm", "Slow")) }
                            option value="150" selected { (page.t("Vừa", "Normal")) }
                            option value="180" { (page.t("Nhanh", "Fast")) }
                        }
                    }
                }
                p.row {
                    button.secondary type="button" #tts-preview data-busy=(page.t("Đang tạo bản nghe thử…", "Making a preview…")) {
                        "▶ " (page.t("Nghe thử", "Preview"))
                    }
                    audio #tts-audio controls.hidden {}
                }
                (form_end(page.t("Tạo giọng đọc", "Create speech")))
            }
        }
        div.card {
            h2 { (page.t("Tiếp sóng đài khác", "Relay another station")) }
            form #relay-form data-api="/api/v1/content/relay" data-next="/ui/content" data-ok=(made) {
                (page.csrf_field())
                (title_field(page, "r-title", Some(page.t("Ví dụ: Đài Phát thanh tỉnh", "e.g. Provincial radio"))))
                label for="r-url" { (page.t("Địa chỉ luồng phát", "Stream URL")) }
                input type="text" id="r-url" name="url" required placeholder="https://";
                label for="r-minutes" { (page.t("Mỗi lần tiếp sóng (phút)", "Each relay lasts (minutes)")) }
                input type="number" id="r-minutes" name="duration_min" value="60" min="1" max="1440";
                (form_end(page.t("Lưu", "Save")))
            }
        }
    };
    page.render(page.t("Tạo nội dung mới", "New content"), body)
}

/// Recording an announcement with the browser's microphone: it is kept as a WAV file
/// and uploaded like any recording (a draft that goes through approval), after the
/// author has heard it back.
fn record_card(page: &Page<'_>) -> Markup {
    html! {
        div.card #recorder
            data-fail=(page.t("Không mở được micrô: hãy cho phép trình duyệt dùng micrô.", "Cannot open the microphone: allow the browser to use it."))
            data-empty=(page.t("Chưa có bản ghi: bấm Ghi âm trước.", "Nothing recorded yet: press Record first.")) {
            h2 { (page.t("Ghi âm bằng micrô", "Record with the microphone")) }
            p.muted { (page.t(
                "Ghi âm ngay trên trình duyệt, nghe lại, rồi lưu như một bản ghi âm tải lên (chờ duyệt như mọi nội dung). Tối đa 10 phút.",
                "Record in the browser, listen back, then save it like an uploaded recording (it goes through approval). Up to 10 minutes.",
            )) }
            p.row {
                button type="button" #rec-start { "● " (page.t("Ghi âm", "Record")) }
                button.secondary type="button" #rec-stop disabled { "■ " (page.t("Dừng", "Stop")) }
                meter #rec-level min="0" max="1" value="0" {}
                span #rec-time { "0:00" }
            }
            audio #rec-audio controls.hidden {}
            form #record-form data-record="/api/v1/content" data-next="/ui/content"
                data-ok=(page.t("Đã lưu bản ghi âm.", "Recording saved.")) {
                (page.csrf_field())
                (title_field(page, "rec-title", None))
                (category_field(page, "rec-category"))
                (form_end(page.t("Lưu bản ghi âm", "Save the recording")))
            }
        }
    }
}
