//! The OpenAPI 3.0 document, built from the route table so it cannot drift from what is
//! served. Each operation names the permission it needs (`x-loa-permission`).

use serde_json::{Value, json};

use super::table::{Id, ROUTES};
use crate::auth::Perm;

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES.iter().filter(|r| r.is_api()) {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({ "name": name, "in": "path", "required": true,
                        "schema": { "type": if name == "id" { "integer" } else { "string" } } })
            })
            .collect();
        let mut op = json!({
            "operationId": format!("{:?}", route.id),
            "summary": route.summary,
            "parameters": params,
            "x-loa-permission": format!("{:?}", route.perm),
            "responses": responses(route.id, route.perm),
        });
        if route.perm == Perm::Public {
            op["security"] = json!([]);
        }
        if let Some(body) = request_body(route.id) {
            op["requestBody"] = body;
        }
        entry[route.method.as_str().to_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Loa Làng CMS API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Content, approval, villages, nodes and schedules of a commune's loudspeaker network. Errors are {\"error\": CODE, \"message\": TEXT}; messages follow Accept-Language (vi by default, en).",
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "loa_session" },
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"],
                           "properties": { "error": { "type": "string" }, "message": { "type": "string" } } },
            },
        },
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths,
    })
}

fn responses(id: Id, perm: Perm) -> Value {
    let ok = match id {
        Id::Upload
        | Id::Tts
        | Id::Relay
        | Id::CreateVillage
        | Id::CreateGroup
        | Id::CreateNode
        | Id::CreateSchedule
        | Id::CreateUser
        | Id::CreateToken => "201",
        _ => "200",
    };
    let err = json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let mut r = json!({ ok: { "description": "Success" }, "400": { "description": "Invalid input", "content": err["content"] } });
    if perm != Perm::Public {
        r["401"] = json!({ "description": "Not logged in", "content": err["content"] });
        r["403"] = json!({ "description": "Role not allowed, or missing CSRF token on a cookie session", "content": err["content"] });
    }
    if matches!(id, Id::Upload) {
        r["413"] = json!({ "description": "Upload too large", "content": err["content"] });
        r["415"] = json!({ "description": "Unsupported audio codec", "content": err["content"] });
    }
    if matches!(id, Id::Login) {
        r["429"] = json!({ "description": "Too many failed logins", "content": err["content"] });
    }
    r
}

fn request_body(id: Id) -> Option<Value> {
    let obj = |props: Value, required: &[&str]| {
        Some(
            json!({ "required": true, "content": { "application/json": { "schema":
            { "type": "object", "required": required, "properties": props } } } }),
        )
    };
    let s = json!({ "type": "string" });
    let i = json!({ "type": "integer" });
    let ids = json!({ "type": "array", "items": { "type": "integer" } });
    match id {
        Id::Login => obj(
            json!({ "username": s, "password": s }),
            &["username", "password"],
        ),
        Id::CreateToken => obj(json!({ "name": s }), &["name"]),
        Id::CreateUser => obj(
            json!({ "username": s, "password": s, "role": { "enum": ["admin", "editor", "approver", "technician", "viewer"] }, "display_name": s, "commune_id": i, "province_wide": { "type": "boolean" } }),
            &["username", "password", "role"],
        ),
        Id::CreateVillage => obj(
            json!({ "name": s, "kind": { "enum": ["thon", "to_dan_pho", "ban", "ap"] }, "commune_id": i }),
            &["name"],
        ),
        Id::CreateGroup => obj(json!({ "name": s, "village_ids": ids }), &["name"]),
        Id::CreateNode | Id::UpdateNode => obj(
            json!({ "name": s, "village_id": i, "lat": { "type": "number" }, "lon": { "type": "number" }, "notes": s }),
            &["name", "village_id"],
        ),
        Id::Upload => Some(
            json!({ "required": true, "content": { "multipart/form-data": { "schema": { "type": "object", "required": ["file", "title", "category"],
            "properties": { "file": { "type": "string", "format": "binary" }, "title": s, "category": s, "description": s } } } } }),
        ),
        Id::Tts => obj(
            json!({ "title": s, "text": s, "voice": s, "category": s }),
            &["title", "text"],
        ),
        Id::Relay => obj(
            json!({ "title": s, "url": s, "duration_ms": i }),
            &["title", "url", "duration_ms"],
        ),
        Id::ContentPatch => obj(
            json!({ "title": s, "category": s, "description": s, "public": { "type": "boolean" } }),
            &[],
        ),
        Id::Reject => obj(json!({ "reason": s }), &["reason"]),
        Id::UpdateCommune => obj(
            json!({ "name": s, "tz": s, "quiet_start": s, "quiet_end": s, "loudness_target": { "type": "number" } }),
            &[],
        ),
        Id::CreateSchedule | Id::UpdateSchedule => obj(
            json!({ "title": s, "content_ids": ids,
                    "targets": { "type": "object", "properties": { "villages": ids, "groups": ids, "nodes": ids } },
                    "priority": { "enum": ["background", "normal", "priority", "emergency"] },
                    "rule": { "type": "object", "description": "One of {\"once\":RFC3339}, {\"daily\":[\"06:00\"]}, {\"weekly\":{\"days\":[\"mon\"],\"times\":[..]}}, {\"monthly\":{\"days\":[1],\"times\":[..]}}, {\"cron\":EXPR}; optional \"from\"/\"until\" dates." },
                    "volume": i, "gap_ms": i, "repeat": i, "pause_ms": i, "chime_id": i, "max_delay_ms": i }),
            &["title", "content_ids", "targets", "priority", "rule"],
        ),
        _ => None,
    }
}
