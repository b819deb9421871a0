//! Villages, groups and nodes; users; the audit log.

use warp::reply::Response;

use super::{Page, esc};
use crate::auth::Perm;
use crate::error::Result;
use crate::model::Role;
use crate::service::VILLAGE_KINDS;
use crate::{Cms, store};

pub async fn places(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let p = page.p;
    let villages = cms.villages(p, None).await?;
    let groups = cms.groups(p).await?;
    let nodes = cms.nodes(p).await?;
    let kind = |k: &str| {
        VILLAGE_KINDS
            .iter()
            .find(|x| x.0 == k)
            .map_or(k.to_owned(), |x| page.t(x.1, x.2).to_owned())
    };
    let village_rows: String = villages
        .iter()
        .map(|v| {
            let n = nodes.iter().filter(|n| n.village_id == v.id).count();
            format!(
                "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
                esc(&v.name),
                kind(&v.kind)
            )
        })
        .collect();
    let group_rows: String = groups
        .iter()
        .map(|g| {
            let names: Vec<String> = g
                .village_ids
                .iter()
                .filter_map(|id| villages.iter().find(|v| v.id == *id))
                .map(|v| esc(&v.name))
                .collect();
            format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&g.name),
                names.join(", ")
            )
        })
        .collect();
    let node_rows: String = nodes
        .iter()
        .map(|n| {
            let village = villages.iter().find(|v| v.id == n.village_id).map(|v| esc(&v.name)).unwrap_or_default();
            let (class, state) = match (n.online, n.lagging) {
                (false, _) => ("offline", page.t("Ngoại tuyến", "Offline")),
                (true, true) => ("pending", page.t("Đang đồng bộ", "Syncing")),
                (true, false) => ("online", page.t("Trực tuyến", "Online")),
            };
            let seen = n.last_seen.map(|t| page.time(t)).unwrap_or_else(|| page.t("chưa kết nối", "never connected").to_owned());
            let gps = match (n.lat, n.lon) {
                (Some(a), Some(b)) => format!("{a:.5}, {b:.5}"),
                _ => String::new(),
            };
            format!(r#"<tr><td><a href="/ui/nodes/{}">{}</a></td><td>{village}</td><td><span class="badge {class}">{state}</span><div class="muted">{seen}</div></td><td>{gps}</td><td>{}</td></tr>"#, n.id, esc(&n.name), esc(&n.notes))
        })
        .collect();
    let village_options: String = villages
        .iter()
        .map(|v| format!(r#"<option value="{}">{}</option>"#, v.id, esc(&v.name)))
        .collect();
    let kinds: String = VILLAGE_KINDS
        .iter()
        .map(|(k, vi, en)| format!(r#"<option value="{k}">{}</option>"#, page.t(vi, en)))
        .collect();
    let mut body = format!(
        r#"<h2>{vh}</h2><div class="table-wrap"><table id="village-table"><thead><tr><th>{name}</th><th>{kindh}</th><th>{nodesh}</th></tr></thead><tbody>{village_rows}</tbody></table></div>
<h2>{gh}</h2><div class="table-wrap"><table><tbody>{group_rows}</tbody></table></div>
<h2>{nh}</h2><div class="table-wrap"><table id="node-table"><thead><tr><th>{name}</th><th>{villageh}</th><th>{stateh}</th><th>GPS</th><th>{notes}</th></tr></thead><tbody>{node_rows}</tbody></table></div>"#,
        vh = page.t("Thôn, tổ dân phố", "Villages"),
        name = page.t("Tên", "Name"),
        kindh = page.t("Loại", "Kind"),
        nodesh = page.t("Cụm loa", "Nodes"),
        gh = page.t("Nhóm thôn", "Village groups"),
        nh = page.t("Cụm loa", "Speaker nodes"),
        villageh = page.t("Thôn", "Village"),
        stateh = page.t("Trạng thái", "State"),
        notes = page.t("Ghi chú", "Notes"),
    );
    if p.can(Perm::ManagePlaces) {
        body.push_str(&format!(
            r#"<div class="card"><h2>{add}</h2><form data-api="/api/v1/villages">{csrf}<label for="v-name">{name}</label><input type="text" id="v-name" name="name" required>
<label for="v-kind">{kindh}</label><select id="v-kind" name="kind">{kinds}</select><div class="msg hidden"></div><p><button type="submit">{save}</button></p></form></div>"#,
            add = page.t("Thêm thôn", "Add a village"),
            csrf = page.csrf_field(),
            name = page.t("Tên", "Name"),
            kindh = page.t("Loại", "Kind"),
            save = page.t("Thêm", "Add"),
        ));
    }
    if p.can(Perm::ManagePlaces) && !villages.is_empty() {
        let checks: String = villages
            .iter()
            .map(|v| format!(r#"<label><input type="checkbox" name="village_ids" value="{}" data-type="ints"> {}</label>"#, v.id, esc(&v.name)))
            .collect();
        body.push_str(&format!(
            r#"<div class="card"><h2>{add}</h2><form data-api="/api/v1/groups">{csrf}<label for="g-name">{name}</label><input type="text" id="g-name" name="name" required>
<label>{members}</label><div class="checks">{checks}</div><div class="msg hidden"></div><p><button type="submit">{save}</button></p></form></div>"#,
            add = page.t("Thêm nhóm thôn", "Add a village group"),
            csrf = page.csrf_field(),
            name = page.t("Tên nhóm", "Group name"),
            members = page.t("Gồm các thôn", "Villages in it"),
            save = page.t("Thêm", "Add"),
        ));
    }
    if p.can(Perm::ManageNodes) {
        body.push_str(&format!(
            r#"<div class="card"><h2>{add}</h2><form data-api="/api/v1/nodes" data-ok="{ok}">{csrf}<label for="n-name">{name}</label><input type="text" id="n-name" name="name" required>
<label for="n-village">{villageh}</label><select id="n-village" name="village_id" data-type="int">{village_options}</select>
<label for="n-notes">{notes}</label><input type="text" id="n-notes" name="notes" data-optional><div class="msg hidden"></div><p><button type="submit">{save}</button></p></form></div>"#,
            add = page.t("Thêm cụm loa", "Add a speaker node"),
            ok = page.t("Đã thêm. Mã kích hoạt (chỉ hiện một lần):", "Added. Enrolment code (shown once):"),
            csrf = page.csrf_field(),
            name = page.t("Tên", "Name"),
            villageh = page.t("Thôn", "Village"),
            notes = page.t("Ghi chú", "Notes"),
            save = page.t("Thêm", "Add"),
        ));
    }
    if p.can(Perm::ManagePlaces) {
        let commune = cms.commune(p.commune(None)?).await?;
        body.push_str(&format!(
            r#"<div class="card"><h2>{title}</h2><form data-api="/api/v1/communes/{id}" data-method="PATCH">{csrf}
<label for="c-name">{name}</label><input type="text" id="c-name" name="name" value="{cname}" required>
<label for="c-tz">{tzl}</label><input type="text" id="c-tz" name="tz" value="{tz}" required>
<div class="row"><span><label for="c-qs">{qs}</label><input type="text" id="c-qs" name="quiet_start" value="{qsv}" placeholder="22:00"></span>
<span><label for="c-qe">{qe}</label><input type="text" id="c-qe" name="quiet_end" value="{qev}" placeholder="05:00"></span>
<span><label for="c-lt">{lt}</label><input type="number" id="c-lt" name="loudness_target" value="{ltv}" min="-30" max="-10" step="0.5" data-type="num"></span></div>
<div class="msg hidden"></div><p><button type="submit">{save}</button></p></form></div>"#,
            title = page.t("Cài đặt của xã", "Commune settings"),
            id = commune.id,
            csrf = page.csrf_field(),
            name = page.t("Tên xã", "Name"),
            cname = esc(&commune.name),
            tzl = page.t("Múi giờ", "Time zone"),
            tz = esc(&commune.tz),
            qs = page.t("Giờ yên tĩnh từ", "Quiet hours from"),
            qsv = esc(&commune.quiet_start),
            qe = page.t("đến", "until"),
            qev = esc(&commune.quiet_end),
            lt = page.t("Độ lớn chuẩn (LUFS)", "Loudness target (LUFS)"),
            ltv = commune.loudness_target,
            save = page.t("Lưu", "Save"),
        ));
    }
    Ok(page.render(page.t("Thôn và cụm loa", "Villages and nodes"), &body))
}

pub async fn users(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let users = cms.list_users(page.p).await?;
    let rows: String = users
        .iter()
        .map(|u| {
            let state = if u.disabled {
                page.t("Đã khoá", "Disabled")
            } else {
                ""
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>",
                esc(&u.username),
                esc(&u.display_name),
                page.t(u.role.label_vi(), u.role.as_str())
            )
        })
        .collect();
    let roles: String = Role::ALL
        .iter()
        .map(|r| {
            format!(
                r#"<option value="{}">{}</option>"#,
                r.as_str(),
                page.t(r.label_vi(), r.as_str())
            )
        })
        .collect();
    let body = format!(
        r#"<div class="table-wrap"><table><tbody>{rows}</tbody></table></div>
<div class="card"><h2>{add}</h2><form data-api="/api/v1/users">{csrf}
<label for="u-name">{uname}</label><input type="text" id="u-name" name="username" required>
<label for="u-display">{dname}</label><input type="text" id="u-display" name="display_name">
<label for="u-pass">{pass}</label><input type="password" id="u-pass" name="password" minlength="8" required>
<label for="u-role">{role}</label><select id="u-role" name="role">{roles}</select>
<div class="msg hidden"></div><p><button type="submit">{save}</button></p></form></div>"#,
        add = page.t("Thêm người dùng", "Add a user"),
        csrf = page.csrf_field(),
        uname = page.t("Tên đăng nhập", "Username"),
        dname = page.t("Họ tên", "Full name"),
        pass = page.t(
            "Mật khẩu (ít nhất 8 ký tự)",
            "Password (at least 8 characters)"
        ),
        role = page.t("Vai trò", "Role"),
        save = page.t("Thêm", "Add"),
    );
    Ok(page.render(page.t("Người dùng", "Users"), &body))
}

pub async fn audit(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let scope = page.p.user.commune_id;
    let entries = cms
        .store()
        .call(move |c| store::audit_entries(c, scope, 300))
        .await?;
    let rows: String = entries
        .iter()
        .map(|e| {
            let change = |v: &Option<serde_json::Value>| {
                v.as_ref()
                    .and_then(|v| {
                        v.get("status")
                            .or_else(|| v.get("title"))
                            .or_else(|| v.get("name"))
                    })
                    .map(|s| esc(&s.to_string()))
                    .unwrap_or_default()
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{} {} #{}</td><td>{} → {}</td></tr>",
                page.time(e.at),
                esc(e.username.as_deref().unwrap_or("")),
                esc(&e.action),
                esc(&e.entity),
                e.entity_id.unwrap_or_default(),
                change(&e.before),
                change(&e.after)
            )
        })
        .collect();
    let body = format!(
        r#"<div class="table-wrap"><table id="audit-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table></div>"#,
        page.t("Thời điểm", "When"),
        page.t("Người", "Who"),
        page.t("Việc", "What"),
        page.t("Trước → sau", "Before → after"),
    );
    Ok(page.render(page.t("Nhật ký thay đổi", "Audit log"), &body))
}
