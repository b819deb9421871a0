//! One speaker node: its health as its last heartbeat told it, whether it runs the
//! schedule it should, its history, and (for technicians) the remote commands.

use warp::reply::Response;

use super::{Page, esc};
use crate::Cms;
use crate::auth::Perm;
use crate::error::Result;
use crate::model::{ContentStatus, Node};
use crate::store::ContentFilter;

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "—".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

/// Health rows from the heartbeat JSON (`protocol::link::Health`).
fn health_rows(page: &Page<'_>, n: &Node) -> String {
    let Some(h) = n.health.as_ref() else {
        return format!(
            "<tr><td colspan=2>{}</td></tr>",
            page.t(
                "Chưa có báo cáo từ cụm loa.",
                "No report from the node yet."
            )
        );
    };
    let s = |k: &str| h[k].as_str().map(esc).unwrap_or_else(|| "—".into());
    let num = |k: &str, unit: &str| {
        h[k].as_f64()
            .map_or_else(|| "—".into(), |v| format!("{v:.1} {unit}"))
    };
    let playing = match h["playing"].as_object() {
        Some(p) => format!(
            "{} {} · {} s",
            page.t("Nội dung", "Content"),
            p.get("content_id").and_then(|v| v.as_i64()).unwrap_or(0),
            p.get("position_ms").and_then(|v| v.as_u64()).unwrap_or(0) / 1000
        ),
        None => page.t("Không phát", "Idle").into(),
    };
    let missing = h["missing_blobs"].as_array().map_or(0, Vec::len);
    let output_ok = h["output_ok"].as_bool().unwrap_or(false);
    let rows = [
        (page.t("Phiên bản", "Agent version"), s("agent")),
        (
            page.t("Chạy liên tục", "Uptime"),
            format!("{} min", h["uptime_s"].as_u64().unwrap_or(0) / 60),
        ),
        (
            page.t("Địa chỉ IP", "IP address"),
            h["ip"].as_array().map_or_else(String::new, |a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(esc)
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        ),
        (
            page.t("Lệch đồng hồ", "Clock offset"),
            num("clock_offset_ms", "ms"),
        ),
        (
            page.t("Độ trễ khứ hồi", "Round trip"),
            num("round_trip_ms", "ms"),
        ),
        (page.t("Đang phát", "Playing"), playing),
        (
            page.t("Âm lượng", "Volume"),
            h["volume"].as_u64().unwrap_or(0).to_string(),
        ),
        (
            page.t("Đầu ra âm thanh", "Audio output"),
            format!(
                "{} — {} · {} {}",
                s("output"),
                if output_ok {
                    page.t("tốt", "ok")
                } else {
                    page.t("lỗi", "failing")
                },
                h["underruns"].as_u64().unwrap_or(0),
                page.t("lần thiếu dữ liệu", "underruns")
            ),
        ),
        (
            page.t("Bộ nhớ đệm", "Cache"),
            format!(
                "{} / {} · {missing} {}",
                mb(h["cache_used_bytes"].as_u64()),
                mb(h["cache_quota_bytes"].as_u64()),
                page.t("tệp còn thiếu", "files missing")
            ),
        ),
        (
            page.t("Ổ đĩa còn trống", "Disk free"),
            mb(h["disk_free_bytes"].as_u64()),
        ),
        (page.t("Tải CPU", "CPU load"), num("load", "")),
        (
            page.t("Nhiệt độ", "Temperature"),
            num("temperature_c", "°C"),
        ),
        (
            page.t("Nhật ký chờ gửi", "Play logs waiting"),
            h["pending_logs"].as_u64().unwrap_or(0).to_string(),
        ),
        (page.t("Lỗi gần nhất", "Last error"), s("last_error")),
    ];
    rows.iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
        .collect()
}

fn command_forms(page: &Page<'_>, n: &Node, items: &str) -> String {
    let form = |kind: &str, label: &str, fields: &str| {
        format!(
            r#"<form class="inline" data-api="/api/v1/nodes/{id}/commands" data-ok="{ok}">{csrf}<input type="hidden" name="type" value="{kind}">{fields}<button type="submit">{label}</button><div class="msg hidden"></div></form>"#,
            id = n.id,
            ok = page.t("Đã gửi lệnh.", "Command sent."),
            csrf = page.csrf_field(),
        )
    };
    let volume = format!(
        r#"<input type="number" name="volume" min="0" max="100" value="80" data-type="int" aria-label="{}">"#,
        page.t("Âm lượng", "Volume")
    );
    let play = format!(
        r#"<select name="content_id" data-type="int" aria-label="{}">{items}</select>"#,
        page.t("Nội dung", "Content")
    );
    let tone = r#"<input type="number" name="seconds" min="1" max="60" value="5" data-type="int" aria-label="s">"#;
    format!(
        r#"<div class="card"><h2>{title}</h2>{}{}{}{}{}{}
<p><button data-post="/api/v1/nodes/{id}/code" class="danger">{code}</button> <button data-post="/api/v1/nodes/{id}/revoke" class="danger">{revoke}</button></p></div>"#,
        form("set_volume", page.t("Đặt âm lượng", "Set volume"), &volume),
        form("play_now", page.t("Phát ngay", "Play now"), &play),
        form("test_tone", page.t("Phát âm thử", "Test tone"), tone),
        form("stop", page.t("Dừng phát", "Stop playing"), ""),
        form("resync", page.t("Đồng bộ lại", "Resync"), ""),
        form("restart", page.t("Khởi động lại", "Restart agent"), ""),
        title = page.t("Điều khiển từ xa", "Remote control"),
        id = n.id,
        code = page.t("Cấp mã kích hoạt mới", "New enrolment code"),
        revoke = page.t("Thu hồi quyền kết nối", "Revoke"),
    )
}

/// Per item the node's schedule needs: is it in the node's cache yet?
async fn sync_table(cms: &Cms, page: &Page<'_>, n: &Node) -> Result<String> {
    let desired = cms.node_desired_state(n.id).await?;
    let missing: Vec<&str> = n
        .health
        .as_ref()
        .and_then(|h| h["missing_blobs"].as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut seen = Vec::new();
    let mut rows = String::new();
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
            let (class, state) = match (n.health.is_some(), missing.contains(&sha)) {
                (false, _) => ("pending", page.t("Chưa rõ", "Unknown")),
                (true, true) => ("pending", page.t("Đang tải về", "Downloading")),
                (true, false) => ("online", page.t("Đã có trên cụm loa", "On the node")),
            };
            rows.push_str(&format!(
                r#"<tr><td>{}</td><td>{}</td><td><span class="badge {class}">{state}</span></td></tr>"#,
                esc(&title),
                mb(Some(item.size)),
            ));
        }
    }
    if rows.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        r#"<h2>{h}</h2><div class="table-wrap"><table id="node-sync"><tbody>{rows}</tbody></table></div>"#,
        h = page.t("Nội dung theo lịch", "Scheduled content")
    ))
}

pub async fn node(cms: &Cms, page: &Page<'_>, id: i64) -> Result<Response> {
    let p = page.p;
    let n = cms.node(p, id).await?;
    let events = cms.node_events(p, id).await?;
    let state = match (n.online, n.lagging) {
        (false, _) => format!(
            r#"<span class="badge offline">{}</span>"#,
            page.t("Ngoại tuyến", "Offline")
        ),
        (true, true) => format!(
            r#"<span class="badge pending">{}</span>"#,
            page.t("Đang đồng bộ", "Syncing")
        ),
        (true, false) => format!(
            r#"<span class="badge online">{}</span>"#,
            page.t("Trực tuyến, đúng lịch", "Online, in step")
        ),
    };
    let seen = n
        .last_seen
        .map(|t| page.time(t))
        .unwrap_or_else(|| page.t("chưa kết nối", "never connected").into());
    let history: String = events
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                page.time(e.at),
                esc(&e.event),
                esc(&e.detail)
            )
        })
        .collect();
    let mut body = format!(
        r#"<p>{state} <span class="muted">{seenl} {seen}</span></p>
<div class="table-wrap"><table id="node-health"><tbody>{rows}</tbody></table></div>
<p class="muted">{vl}: {applied} · {dl}: {desired}</p>"#,
        seenl = page.t("Lần cuối:", "Last seen:"),
        rows = health_rows(page, &n),
        vl = page.t("Lịch đang chạy", "Running schedule"),
        applied = esc(n
            .applied_version
            .as_deref()
            .map_or("—", |v| &v[..v.len().min(12)])),
        dl = page.t("lịch mới nhất", "latest"),
        desired = esc(n
            .desired_version
            .as_deref()
            .map_or("—", |v| &v[..v.len().min(12)])),
    );
    if p.can(Perm::ManageNodes) {
        let filter = ContentFilter {
            status: Some(ContentStatus::Approved),
            limit: 200,
            ..ContentFilter::default()
        };
        let items: String = cms
            .list_content(p, None, filter)
            .await?
            .iter()
            .filter(|c| c.sha256.is_some())
            .map(|c| format!(r#"<option value="{}">{}</option>"#, c.id, esc(&c.title)))
            .collect();
        body.push_str(&command_forms(page, &n, &items));
    }
    body.push_str(&sync_table(cms, page, &n).await?);
    body.push_str(&format!(
        r#"<h2>{h}</h2><div class="table-wrap"><table id="node-events"><tbody>{history}</tbody></table></div>"#,
        h = page.t("Lịch sử", "History")
    ));
    Ok(page.render(&n.name, &body))
}
