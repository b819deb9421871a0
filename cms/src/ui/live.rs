//! Speaking live from the web UI: choose villages, speak into the browser's microphone
//! (a level meter shows the voice is picked up), stop. The page also shows who is on air
//! where. The audio goes over a WebSocket to the controller (`/api/v1/live/mic`), which
//! carries it to the nodes as it carries an Icecast source.

use maud::html;
use warp::reply::Response;

use super::Page;
use crate::Cms;
use crate::auth::Perm;
use crate::error::Result;

/// `/ui/live`.
pub async fn live(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let p = page.p;
    let villages = cms.villages(p, None).await?;
    let on_air = cms.live_sessions(p).await?;
    let body = html! {
        div #on-air {
            @for s in &on_air {
                div.msg.error {
                    (page.t("Đang phát trực tiếp", "Live now")) ": " (s.title) " · "
                    (s.started_by_name.clone().unwrap_or_else(|| page.t("nguồn phát", "broadcast source").to_string()))
                    " · " (page.time(s.started_at))
                    @if let Some(e) = s.emergency_id {
                        " · " a href={ "/ui/emergency/" (e) } { (page.t("cụm loa đã nhận", "nodes reached")) }
                    }
                }
            }
        }
        div.card #mic data-csrf=(p.csrf) data-me=(p.user.username)
            data-on=(page.t("Đang phát trực tiếp — nói vào micrô.", "Live — speak into the microphone."))
            data-off=(page.t("Đã dừng.", "Stopped."))
            data-fail=(page.t("Không mở được micrô hoặc kết nối (có người đang phát ở thôn này?).", "Could not open the microphone or the connection (is someone already live there?).")) {
            label { (page.t("Phát tới", "Speak to")) }
            div.checks {
                @for v in &villages {
                    label { input type="checkbox" name="mic-village" value=(v.id); (v.name) }
                }
            }
            @if p.can(Perm::Approve) {
                label for="mic-priority" { (page.t("Mức ưu tiên", "Priority")) }
                select #mic-priority {
                    option value="priority" { (page.t("Ưu tiên (tạm dừng lịch thường)", "Priority (pauses normal items)")) }
                    option value="emergency" { (page.t("Khẩn cấp (ngắt mọi nội dung)", "Emergency (cuts everything)")) }
                }
            }
            p {
                button #mic-start type="button" { (page.t("Bắt đầu nói", "Start speaking")) }
                " "
                button.danger #mic-stop type="button" disabled { (page.t("Dừng", "Stop")) }
            }
            label for="mic-level" { (page.t("Mức âm thanh", "Level")) }
            meter #mic-level min="0" max="1" value="0" {}
            div.msg.hidden #mic-status {}
            p { a.hidden #mic-reach href="/ui/emergency" {
                (page.t("Tin khẩn cấp trực tiếp: xem cụm loa nào đã nhận", "Live emergency: see which nodes it reached"))
            } }
        }
    };
    Ok(page.render(page.t("Phát trực tiếp", "Speak live"), body))
}
