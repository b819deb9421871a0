//! The OpenAPI 3.0 document, built from the route table so it cannot drift from what is
//! served: every path, method, permission (`x-loa-permission`), success status, error
//! status and request body comes from the route's row.

use serde_json::{Value, json};

use super::table::{ROUTES, Route};
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
                let schema = match name {
                    "id" => json!({ "type": "integer", "minimum": 1 }),
                    "sha256" => json!({ "type": "string", "pattern": "^[0-9a-f]{64}$" }),
                    _ => json!({ "type": "string" }),
                };
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        let mut op = json!({
            "operationId": route.name.rsplit("::").next().unwrap_or(route.name),
            "summary": route.summary,
            "parameters": params,
            "x-loa-permission": format!("{:?}", route.perm),
            "responses": responses(route),
        });
        if route.perm == Perm::Public {
            op["security"] = json!([]);
        }
        if let Some(body) = route.doc.body {
            op["requestBody"] = body();
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

fn describe(status: u16) -> &'static str {
    match status {
        200 | 201 => "Success",
        202 => "Accepted: handed to the node's session if it has one",
        101 => "Switching to the WebSocket protocol",
        400 => "Invalid input",
        401 => "Not logged in",
        403 => "Role not allowed, or missing CSRF token on a cookie session",
        404 => "No such record in your commune",
        409 => "Conflicts with what is stored (a name taken, a state that does not allow it)",
        413 => "Upload too large",
        415 => "Unsupported audio codec",
        416 => "Range not satisfiable",
        429 => "Too many attempts: wait Retry-After seconds",
        _ => "",
    }
}

fn responses(route: &Route) -> Value {
    let err = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    let mut r = json!({ route.doc.ok.to_string(): { "description": describe(route.doc.ok) } });
    let mut errors = vec![400];
    if route.perm != Perm::Public {
        errors.extend([401, 403]);
    }
    errors.extend(route.doc.errors);
    for status in errors {
        r[status.to_string()] = json!({ "description": describe(status), "content": err });
    }
    r
}

/// Request bodies, one function per kind, named in the route table. They state what the
/// handlers check where JSON Schema can say it (lengths, ranges, enums, patterns, no
/// unknown fields); what it cannot — "decodable audio", "an approved item", "exactly one
/// of" — is listed in the API-test configuration (`tests/schemathesis.toml`).
pub mod body {
    use serde_json::{Value, json};

    /// A JSON object body with no other fields; `required` may be empty (then not
    /// stated: OpenAPI wants a non-empty list there).
    fn obj(props: Value, required: &[&str]) -> Value {
        json!({ "required": true, "content": { "application/json": { "schema": schema(props, required) } } })
    }

    fn schema(props: Value, required: &[&str]) -> Value {
        let mut schema =
            json!({ "type": "object", "properties": props, "additionalProperties": false });
        if !required.is_empty() {
            schema["required"] = json!(required);
        }
        schema
    }

    /// A name or title: some visible text, at most `max` characters.
    fn text(max: u32) -> Value {
        json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": "\\S" })
    }
    /// An optional field: `null` is taken as absent (an enum must list `null` as well).
    fn opt(mut v: Value) -> Value {
        v["nullable"] = json!(true);
        if let Some(values) = v.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
        v
    }
    fn id() -> Value {
        json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX })
    }
    fn ids() -> Value {
        json!({ "type": "array", "items": id() })
    }
    fn hhmm() -> Value {
        json!({ "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" })
    }
    fn category() -> Value {
        let mut names: Vec<&str> = Vec::new();
        for (k, vi, en) in crate::model::CATEGORIES {
            names.extend([k, vi, en]);
        }
        json!({ "type": "string", "enum": names })
    }

    pub fn login() -> Value {
        let s = json!({ "type": "string" });
        obj(
            json!({ "username": s, "password": s }),
            &["username", "password"],
        )
    }
    pub fn token() -> Value {
        obj(json!({ "name": opt(text(100)) }), &[])
    }
    /// A user of a commune, or (admins only) a province-wide admin.
    pub fn user() -> Value {
        let fields = |role: Value, province_wide: Value| {
            schema(
                json!({ "username": { "type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[\\w.-]+$" },
                        "password": { "type": "string", "minLength": 8 },
                        "role": role,
                        "display_name": opt(json!({ "type": "string" })),
                        "commune_id": opt(id()), "province_wide": province_wide }),
                &["username", "password", "role"],
            )
        };
        let variants = json!([
            fields(json!({ "enum": ["admin"] }), json!({ "type": "boolean" })),
            fields(
                json!({ "enum": ["editor", "approver", "technician", "viewer"] }),
                json!({ "enum": [false] })
            ),
        ]);
        json!({ "required": true, "content": { "application/json": { "schema": { "oneOf": variants } } } })
    }
    pub fn village() -> Value {
        obj(
            json!({ "name": text(100), "kind": opt(json!({ "enum": ["thon", "to_dan_pho", "ban", "ap"] })), "commune_id": opt(id()) }),
            &["name"],
        )
    }
    pub fn group() -> Value {
        obj(
            json!({ "name": text(100), "village_ids": ids() }),
            &["name"],
        )
    }
    /// A node, with a GPS position (both coordinates) or none.
    pub fn node() -> Value {
        let fields = |lat: Value, lon: Value, required: &[&str]| {
            schema(
                json!({ "name": text(100), "village_id": id(), "lat": lat, "lon": lon,
                        "notes": opt(json!({ "type": "string" })) }),
                required,
            )
        };
        let none = json!({ "nullable": true, "enum": [null] });
        let variants = json!([
            fields(
                json!({ "type": "number", "minimum": -90, "maximum": 90 }),
                json!({ "type": "number", "minimum": -180, "maximum": 180 }),
                &["name", "village_id", "lat", "lon"],
            ),
            fields(none.clone(), none, &["name", "village_id"]),
        ]);
        json!({ "required": true, "content": { "application/json": { "schema": { "oneOf": variants } } } })
    }
    pub fn command() -> Value {
        let kind = |k: &str| json!({ "type": "string", "enum": [k] });
        let plain = |k: &str| schema(json!({ "type": kind(k) }), &["type"]);
        let one_of = json!([
            schema(
                json!({ "type": kind("set_volume"), "volume": { "type": "integer", "minimum": 0, "maximum": 100 } }),
                &["type", "volume"]
            ),
            schema(
                json!({ "type": kind("play_now"), "content_id": id() }),
                &["type", "content_id"]
            ),
            schema(
                json!({ "type": kind("test_tone"), "seconds": opt(json!({ "type": "integer", "minimum": 1, "maximum": 60 })) }),
                &["type"]
            ),
            plain("stop"),
            plain("resync"),
            plain("restart"),
        ]);
        json!({ "required": true, "content": { "application/json": { "schema": { "oneOf": one_of } } } })
    }
    pub fn enroll() -> Value {
        obj(json!({ "code": { "type": "string" } }), &["code"])
    }
    pub fn upload() -> Value {
        json!({ "required": true, "content": { "multipart/form-data": { "schema": {
            "type": "object", "required": ["file", "title", "category"],
            "properties": { "file": { "type": "string", "format": "binary" }, "title": text(200),
                            "category": category(), "description": { "type": "string" } } } } } })
    }
    pub fn tts() -> Value {
        obj(
            json!({ "title": text(200), "text": text(5000), "voice": opt(json!({ "type": "string", "pattern": "^[a-z]{2,3}([-+][a-zA-Z0-9]+)*$" })), "category": opt(category()) }),
            &["title", "text"],
        )
    }
    pub fn relay() -> Value {
        obj(
            json!({ "title": text(200), "url": { "type": "string", "maxLength": 2000,
                             "pattern": "^https?://[A-Za-z0-9.-]+(:[0-9]{1,4})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$" },
                    "duration_ms": { "type": "integer", "minimum": 1, "maximum": 86_400_000 } }),
            &["title", "url", "duration_ms"],
        )
    }
    pub fn content_patch() -> Value {
        obj(
            json!({ "title": opt(text(200)), "category": opt(category()),
                    "description": opt(json!({ "type": "string" })), "public": opt(json!({ "type": "boolean" })) }),
            &[],
        )
    }
    pub fn reject() -> Value {
        obj(json!({ "reason": text(500) }), &["reason"])
    }
    pub fn commune() -> Value {
        obj(
            json!({ "name": opt(text(200)), "tz": opt(json!({ "type": "string", "enum": zones() })),
                    "quiet_start": opt(hhmm()), "quiet_end": opt(hhmm()),
                    "loudness_target": opt(json!({ "type": "number", "minimum": -30, "maximum": -10 })) }),
            &[],
        )
    }
    /// Every IANA zone name the server knows.
    fn zones() -> Vec<&'static str> {
        protocol::TZ_VARIANTS.iter().map(|z| z.name()).collect()
    }
    pub fn schedule() -> Value {
        let times = json!({ "type": "array", "items": hhmm(), "minItems": 1 });
        let day = json!({ "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] });
        let date = opt(json!({ "type": "string", "format": "date" }));
        let rule =
            |kind: &str, v: Value| schema(json!({ kind: v, "from": date, "until": date }), &[kind]);
        let rules = json!([
            rule("once", json!({ "type": "string", "format": "date-time" })),
            rule("daily", times.clone()),
            rule(
                "weekly",
                schema(
                    json!({ "days": { "type": "array", "items": day, "minItems": 1 }, "times": times }),
                    &["days", "times"]
                )
            ),
            rule(
                "monthly",
                schema(
                    json!({ "days": { "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 31 }, "minItems": 1 }, "times": times }),
                    &["days", "times"]
                )
            ),
            rule("cron", json!({ "type": "string", "minLength": 9 })),
        ]);
        let ms = |max: u64| opt(json!({ "type": "integer", "minimum": 0, "maximum": max }));
        obj(
            json!({ "title": text(200), "content_ids": { "type": "array", "items": id(), "minItems": 1, "maxItems": 50 },
                    "targets": schema(json!({ "villages": ids(), "groups": ids(), "nodes": ids() }), &[]),
                    "priority": { "enum": ["background", "normal", "priority", "emergency"] },
                    "rule": { "oneOf": rules },
                    "volume": opt(json!({ "type": "integer", "minimum": 0, "maximum": 100 })),
                    "gap_ms": ms(600_000), "repeat": opt(json!({ "type": "integer", "minimum": 1, "maximum": 20 })),
                    "pause_ms": ms(3_600_000), "chime_id": opt(id()), "max_delay_ms": ms(86_400_000) }),
            &["title", "content_ids", "targets", "priority", "rule"],
        )
    }
}
