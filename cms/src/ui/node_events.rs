//! A node's history in words: what each event means, in the page's language. Command ids
//! and the wire JSON of commands stay out of sight; a command's result is shown with what
//! was asked.

use std::collections::HashMap;

use maud::{Markup, html};
use serde_json::Value;

use super::Page;
use crate::model::NodeEvent;

/// What a command asked, from its wire JSON.
fn command_label(page: &Page<'_>, json: &str) -> String {
    let v: Value = serde_json::from_str(json).unwrap_or_default();
    let t = |vi: &str, en: &str| page.t(vi, en).to_string();
    match v["type"].as_str().unwrap_or("") {
        "set_volume" => format!("{} {}", t("Đặt âm lượng", "Set the volume to"), v["volume"]),
        "play_now" => t("Phát ngay một nội dung", "Play an item now"),
        "test_tone" => format!(
            "{} {} {}",
            t("Phát âm thử", "Test tone,"),
            v["seconds"],
            t("giây", "s")
        ),
        "stop" => t("Dừng phát", "Stop playing"),
        "resync" => t("Đồng bộ lại", "Resync"),
        "restart" => t("Khởi động lại", "Restart"),
        _ => t("Một lệnh khác", "Another command"),
    }
}

/// The event's name and what it concerns, for people.
fn describe(page: &Page<'_>, e: &NodeEvent, asked: &HashMap<&str, String>) -> (String, String) {
    let t = |vi: &str, en: &str| page.t(vi, en).to_string();
    match e.event.as_str() {
        "enrolled" => (t("Đã kích hoạt", "Enrolled"), String::new()),
        "new_code" => (
            t("Cấp mã kích hoạt mới", "New enrolment code"),
            t("mã cũ bị thu hồi", "the old one revoked"),
        ),
        "revoked" => (t("Thu hồi quyền kết nối", "Link revoked"), String::new()),
        "online" => (t("Trực tuyến", "Online"), String::new()),
        "offline" => (t("Mất kết nối", "Offline"), String::new()),
        "duplicate_link" => (
            t("Từ chối kết nối thứ hai", "Second connection refused"),
            t(
                "một thiết bị khác dùng mã của cụm loa này trong khi nó đang kết nối: mã có thể bị lộ, hãy cấp mã mới",
                "another device used this node's token while it was linked: the token may have leaked; issue a new one",
            ),
        ),
        "command" => {
            let json = e.detail.split_once(' ').map_or("", |(_, j)| j);
            (t("Đã gửi lệnh", "Command sent"), command_label(page, json))
        }
        "command_done" => {
            let mut parts = e.detail.splitn(3, ' ');
            let (id, ok, message) = (
                parts.next().unwrap_or(""),
                parts.next() == Some("ok"),
                parts.next().unwrap_or(""),
            );
            let what = asked
                .get(id)
                .cloned()
                .unwrap_or_else(|| t("Lệnh", "Command"));
            match ok {
                true => (t("Cụm loa đã thực hiện", "Done by the node"), what),
                false => (
                    t("Cụm loa không thực hiện được", "The node could not do it"),
                    format!("{what}: {message}"),
                ),
            }
        }
        other => (other.to_string(), e.detail.clone()),
    }
}

/// The history table.
pub fn history(page: &Page<'_>, events: &[NodeEvent]) -> Markup {
    let asked: HashMap<&str, String> = events
        .iter()
        .filter(|e| e.event == "command")
        .filter_map(|e| e.detail.split_once(' '))
        .map(|(id, json)| (id, command_label(page, json)))
        .collect();
    html! {
        div.table-wrap { table #node-events {
            thead { tr {
                th { (page.t("Thời điểm", "When")) } th { (page.t("Việc", "What")) } th { (page.t("Chi tiết", "Details")) }
            } }
            tbody { @for e in events {
            @let (what, detail) = describe(page, e, &asked);
            // A command's result names its command, for the page that waits for it.
            @let done = (e.event == "command_done").then(|| e.detail.split(' ').take(2).collect::<Vec<_>>());
            tr data-done=[done.as_ref().map(|d| d[0])] data-ok=[done.as_ref().map(|d| d.get(1) == Some(&"ok"))] {
                td { (page.time(e.at)) } td { (what) } td { (detail) }
            }
        } } } }
    }
}
