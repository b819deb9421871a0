//! One speaker node: its health as its last heartbeat told it, whether it runs the
//! schedule it should, its history, and (for technicians) the remote commands.

use maud::{Markup, html};
use protocol::link::Health;
use warp::reply::Response;

use super::{Page, badge};
use crate::Cms;
use crate::auth::Perm;
use crate::error::Result;
use crate::model::{Content, ContentStatus, Node};
use crate::store::ContentFilter;

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "—".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

fn num(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.1} {unit}"))
}

/// The heartbeat as label/value rows.
fn health_rows(page: &Page<'_>, h: &Health, playing: Option<&str>) -> Vec<(&'static str, String)> {
    let t = |vi: &'static str, en: &'static str| page.t(vi, en);
    let playing = match (&h.playing, playing) {
        (Some(p), title) => format!(
            "{} · {} {}",
            title.unwrap_or_else(|| t("Phát trực tiếp", "Live")),
            p.position_ms / 1000,
            t("giây", "s")
        ),
        (None, _) => t("Không phát", "Idle").into(),
    };
    let output = format!(
        "{} — {} · {} {}",
        h.output,
        if h.output_ok {
            t("tốt", "ok")
        } else {
            t("lỗi", "failing")
        },
        h.underruns,
        t("lần thiếu dữ liệu", "underruns")
    );
    let cache = format!(
        "{} / {} · {} {}",
        mb(Some(h.cache_used_bytes)),
        mb(Some(h.cache_quota_bytes)),
        h.missing_blobs.len(),
        t("tệp còn thiếu", "files missing")
    );
    vec![
        (t("Phiên bản", "Agent version"), h.agent.clone()),
        (
            t("Chạy liên tục", "Uptime"),
            format!("{} {}", h.uptime_s / 60, t("phút", "min")),
        ),
        (t("Địa chỉ IP", "IP address"), h.ip.join(", ")),
        (
            t("Lệch đồng hồ", "Clock offset"),
            num(h.clock_offset_ms, "ms"),
        ),
        (
            t("Độ trễ khứ hồi", "Round trip"),
            num(h.round_trip_ms, "ms"),
        ),
        (t("Đang phát", "Playing"), playing),
        (t("Âm lượng", "Volume"), h.volume.to_string()),
        (t("Đầu ra âm thanh", "Audio output"), output),
        (
            t(
                "Phát trực tiếp: khung bị mất / đến trễ",
                "Live: frames lost / late",
            ),
            format!("{} / {}", h.live_concealed, h.live_late),
        ),
        (t("Bộ nhớ đệm", "Cache"), cache),
        (t("Ổ đĩa còn trống", "Disk free"), mb(h.disk_free_bytes)),
        (t("Tải CPU", "CPU load"), num(h.load, "")),
        (t("Nhiệt độ", "Temperature"), num(h.temperature_c, "°C")),
        (
            t("Nhật ký chờ gửi", "Play logs waiting"),
            h.pending_logs.to_string(),
        ),
        (
            t("Lỗi gần nhất", "Last error"),
            h.last_error.clone().unwrap_or_else(|| "—".into()),
        ),
    ]
}

fn health_table(page: &Page<'_>, n: &Node, playing: Option<&str>) -> Markup {
    html! {
        div.table-wrap { table #node-health { tbody {
            @match &n.health {
                Some(h) => { @for (k, v) in health_rows(page, h, playing) { tr { th { (k) } td { (v) } } } }
                None => { tr { td colspan="2" { (page.t("Chưa có báo cáo từ cụm loa.", "No report from the node yet.")) } } }
            }
        } } }
    }
}

/// One remote command: a small form posting `{"type": kind, ...fields}`; asked first when
/// `confirm` says what it does to the node.
fn command_form(
    page: &Page<'_>,
    n: &Node,
    kind: &str,
    label: &str,
    fields: Markup,
    confirm: Option<String>,
) -> Markup {
    html! {
        form.inline data-api={ "/api/v1/nodes/" (n.id) "/commands" } data-command
            data-ok=(page.t("Đã gửi lệnh, đang chờ cụm loa trả lời…", "Command sent, waiting for the node…"))
            data-undelivered=(page.t("Cụm loa đang mất kết nối: lệnh chưa tới được.", "The node is offline: the command did not reach it."))
            data-confirm=[confirm] {
            (page.csrf_field())
            input type="hidden" name="type" value=(kind);
            (fields)
            button type="submit" { (label) }
            div.msg.hidden {}
        }
    }
}

fn command_forms(page: &Page<'_>, n: &Node, items: &[Content]) -> Markup {
    // The node's volume as it last reported it.
    let current = n.health.as_ref().map_or(80, |h| h.volume);
    let volume = html! {
        input type="number" name="volume" min="0" max="100" value=(current) data-type="int" aria-label=(page.t("Âm lượng", "Volume"));
    };
    let ask = |vi: &str, en: &str| Some(format!("{} “{}”?", page.t(vi, en), n.name));
    let play = html! {
        select name="content_id" data-type="int" aria-label=(page.t("Nội dung", "Content")) {
            @for c in items { option value=(c.id) { (c.title) } }
        }
    };
    let tone = html! { input type="number" name="seconds" min="1" max="60" value="5" data-type="int" aria-label="s"; };
    html! {
        div.card {
            h2 { (page.t("Điều khiển từ xa", "Remote control")) }
            (command_form(page, n, "set_volume", page.t("Đặt âm lượng", "Set volume"), volume, None))
            (command_form(page, n, "play_now", page.t("Phát ngay", "Play now"), play,
                ask("Phát ngay nội dung đã chọn (ngắt nội dung đang phát) trên", "Play the chosen item now (cutting what plays) on")))
            (command_form(page, n, "test_tone", page.t("Phát âm thử", "Test tone"), tone, None))
            (command_form(page, n, "stop", page.t("Dừng phát", "Stop playing"), html! {},
                ask("Dừng nội dung đang phát trên", "Stop what is playing on")))
            (command_form(page, n, "resync", page.t("Đồng bộ lại", "Resync"), html! {}, None))
            (command_form(page, n, "restart", page.t("Khởi động lại", "Restart agent"), html! {},
                ask("Khởi động lại phần mềm (im lặng vài giây) của", "Restart the software (silent for a few seconds) of")))
            p {
                button.danger data-post={ "/api/v1/nodes/" (n.id) "/code" } data-code-panel="node-code"
                    data-confirm=(format!("{} “{}”? {}", page.t("Cấp mã kích hoạt mới cho", "Issue a new enrolment code for"), n.name,
                        page.t("Mã đang dùng bị thu hồi ngay: cụm loa mất kết nối cho tới khi được kích hoạt lại bằng mã mới.",
                            "Its current token is revoked at once: the node goes offline until it is enrolled again with the new code."))) {
                    (page.t("Cấp mã kích hoạt mới", "New enrolment code"))
                }
                " "
                button.danger data-post={ "/api/v1/nodes/" (n.id) "/revoke" }
                    data-confirm=(format!("{} “{}”? {}", page.t("Thu hồi quyền kết nối của", "Revoke the link of"), n.name,
                        page.t("Cụm loa mất kết nối và không nhận lịch mới cho tới khi được cấp mã kích hoạt mới.",
                            "The node goes offline and gets no new schedule until it is given a new enrolment code."))) {
                    (page.t("Thu hồi quyền kết nối", "Revoke"))
                }
            }
            // The new code, shown once, with the command that enrols the node.
            div.msg.ok.hidden #node-code
                data-intro=(page.t("Mã kích hoạt mới (chỉ hiện một lần):", "New enrolment code (shown once):"))
                data-run=(page.t("Trên cụm loa, chạy:", "On the node, run:")) {}
        }
    }
}

/// The node's name, village, position and notes, for technicians.
fn edit_form(page: &Page<'_>, n: &Node, villages: &[crate::model::Village]) -> Markup {
    let num = |v: Option<f64>| v.map(|v| format!("{v:.6}"));
    html! {
        details.card #node-edit {
            summary { strong { (page.t("Sửa thông tin cụm loa", "Edit the node")) } }
            form data-api={ "/api/v1/nodes/" (n.id) } data-method="PUT" data-ok=(page.t("Đã lưu cụm loa.", "Node saved.")) {
                (page.csrf_field())
                label for="ne-name" { (page.t("Tên", "Name")) }
                input type="text" id="ne-name" name="name" value=(n.name) required maxlength="100";
                label for="ne-village" { (page.t("Thôn", "Village")) }
                select id="ne-village" name="village_id" data-type="int" {
                    @for v in villages { option value=(v.id) selected[v.id == n.village_id] { (v.name) } }
                }
                div.grid {
                    div {
                        label for="ne-lat" { (page.t("Vĩ độ", "Latitude")) }
                        input type="number" id="ne-lat" name="lat" step="any" min="-90" max="90" value=[num(n.lat)]
                            data-type="num" data-optional placeholder="21.028511";
                    }
                    div {
                        label for="ne-lon" { (page.t("Kinh độ", "Longitude")) }
                        input type="number" id="ne-lon" name="lon" step="any" min="-180" max="180" value=[num(n.lon)]
                            data-type="num" data-optional placeholder="105.804817";
                    }
                }
                p.muted { (page.t("Để trống cả hai nếu chưa có toạ độ GPS.", "Leave both empty when there is no GPS position.")) }
                label for="ne-notes" { (page.t("Ghi chú", "Notes")) }
                input type="text" id="ne-notes" name="notes" value=(n.notes);
                (super::form_end(page.t("Lưu", "Save")))
            }
        }
    }
}

/// Per item the node's schedule needs: is it in the node's cache yet?
async fn sync_table(cms: &Cms, page: &Page<'_>, n: &Node) -> Result<Markup> {
    let desired = cms.node_desired_state(n.id).await?;
    let missing: &[String] = n.health.as_ref().map_or(&[], |h| &h.missing_blobs);
    let mut seen = Vec::new();
    let mut rows = Vec::new();
    for spec in &desired.schedules {
        let items = spec.program.chime.iter().chain(spec.program.items.iter());
        for item in items {
            let Some(sha) = item.sha256.as_deref() else {
                continue;
            };
            if seen.contains(&sha) {
                continue;
            }
            seen.push(sha);
            let title = cms
                .content(page.p, item.content_id)
                .await
                .map(|c| c.title)
                .unwrap_or_default();
            let (class, state) = match (n.health.is_some(), missing.iter().any(|m| m == sha)) {
                (false, _) => ("pending", page.t("Chưa rõ", "Unknown")),
                (true, true) => ("pending", page.t("Đang tải về", "Downloading")),
                (true, false) => ("online", page.t("Đã có trên cụm loa", "On the node")),
            };
            rows.push((title, item.size, class, state));
        }
    }
    Ok(html! {
        @if !rows.is_empty() {
            h2 { (page.t("Nội dung theo lịch", "Scheduled content")) }
            div.table-wrap { table #node-sync { tbody { @for (title, size, class, state) in &rows { tr {
                td { (title) } td { (mb(Some(*size))) } td { (badge(class, state)) }
            } } } } }
        }
    })
}

/// A version hash, shortened for a person to compare.
fn short(v: Option<&str>) -> &str {
    v.map_or("—", |v| &v[..v.len().min(12)])
}

/// What changes on its own: state, health, schedule step, cached items and history. The page holds
/// it in a box the script refreshes every few seconds from [`node_now`].
async fn now_part(cms: &Cms, page: &Page<'_>, n: &Node) -> Result<Markup> {
    let events = cms.node_events(page.p, n.id).await?;
    let in_step = page.t("Trực tuyến, đúng lịch", "Online, in step");
    let (class, state, seen) = super::admin::node_state(page, n, in_step);
    // What plays, by its title (ids stay out of sight).
    let playing = match n
        .health
        .as_ref()
        .and_then(|h| h.playing.as_ref()?.content_id)
    {
        Some(id) => cms.content(page.p, id).await.ok().map(|c| c.title),
        None => None,
    };
    Ok(html! {
        p { (badge(class, state)) " " span.muted { (page.t("Lần cuối:", "Last seen:")) " " (seen) } }
        (health_table(page, n, playing.as_deref()))
        // Whether the node runs the latest schedule, in words; the versions for whoever
        // needs to compare them, on hover.
        p.muted title={ (short(n.applied_version.as_deref())) " / " (short(n.desired_version.as_deref())) } {
            @if n.applied_version.is_some() && n.applied_version == n.desired_version {
                (page.t("Cụm loa đang chạy lịch mới nhất.", "The node runs the latest schedule."))
            } @else {
                (page.t("Cụm loa chưa nhận lịch mới nhất.", "The node does not have the latest schedule yet."))
            }
        }
        (sync_table(cms, page, n).await?)
        h2 { (page.t("Lịch sử", "History")) }
        (super::node_events::history(page, &events))
    })
}

/// `GET /ui/nodes/{id}/now`: the node page's changing part alone.
pub async fn node_now(cms: &Cms, page: &Page<'_>, id: i64) -> Result<Response> {
    let n = cms.node(page.p, id).await?;
    Ok(crate::http::reply::html(
        200,
        now_part(cms, page, &n).await?.into_string(),
    ))
}

pub async fn node(cms: &Cms, page: &Page<'_>, id: i64, range: Option<&str>) -> Result<Response> {
    let p = page.p;
    let n = cms.node(p, id).await?;
    let edit = match p.can(Perm::ManageNodes) {
        true => Some(edit_form(page, &n, &cms.villages(p, None).await?)),
        false => None,
    };
    let commands = match p.can(Perm::ManageNodes) {
        true => {
            let filter = ContentFilter {
                status: Some(ContentStatus::Approved),
                limit: 200,
                ..ContentFilter::default()
            };
            let mut items = cms.list_content(p, None, filter).await?;
            items.retain(|c| c.sha256.is_some());
            Some(command_forms(page, &n, &items))
        }
        false => None,
    };
    let body = html! {
        p.muted {
            @if let (Some(a), Some(b)) = (n.lat, n.lon) { (super::admin::map_link(page, a, b)) " · " }
            (n.notes)
        }
        @if let Some(c) = commands { (c) }
        @if let Some(e) = edit { (e) }
        div #node-now data-refresh={ "/ui/nodes/" (n.id) "/now" } { (now_part(cms, page, &n).await?) }
        (super::history::section(cms, page, n.id, range).await?)
    };
    Ok(page.render(&n.name, body))
}
