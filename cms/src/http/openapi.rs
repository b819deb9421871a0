//! The OpenAPI 3.0 document, built from the route table so it cannot drift from what is
//! served: every path, method, permission (`x-loa-permission`), success status, error
//! status, request body and reply comes from the route's row, and the schemas of bodies
//! and replies from their Rust types (`schemars`; see `schema.rs` for what types cannot say).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

use super::table::{ROUTES, Route};
use crate::auth::Perm;

pub fn document() -> Value {
    // Request bodies are inlined (each states its own constraints); replies refer to the
    // model's types under `components/schemas`. Requests are read with the deserialize
    // contract (defaults may be left out), replies with the serialize one.
    let mut requests = SchemaSettings::openapi3()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut replies = SchemaSettings::openapi3().for_serialize().into_generator();
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
            "responses": responses(route, &mut replies),
        });
        if route.perm == Perm::Public {
            op["security"] = json!([]);
        }
        if let Some(body) = route.doc.body {
            let media = match body.multipart {
                true => "multipart/form-data",
                false => "application/json",
            };
            let schema = (body.schema)(&mut requests);
            let schema = transformed(&mut requests, schema);
            op["requestBody"] =
                json!({ "required": true, "content": { media: { "schema": schema } } });
        }
        entry[route.method.as_str().to_lowercase()] = op;
    }
    replies.subschema_for::<ErrorBody>();
    let schemas = replies.take_definitions(true);
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
            "schemas": schemas,
        },
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths,
    })
}

/// A subschema with the generator's OpenAPI 3.0 transforms applied (schemars applies them
/// to root schemas and definitions only).
fn transformed(generator: &mut SchemaGenerator, mut schema: Schema) -> Value {
    for transform in generator.transforms_mut() {
        transform.transform(&mut schema);
    }
    schema.into()
}

/// Every error: `{"error": CODE, "message": TEXT}`.
#[derive(JsonSchema)]
#[schemars(rename = "Error")]
#[allow(dead_code)]
struct ErrorBody {
    /// Machine-readable: `invalid`, `not_found`, `conflict`...
    error: String,
    /// For people, in the language of `Accept-Language`.
    message: String,
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

fn responses(route: &Route, replies: &mut SchemaGenerator) -> Value {
    let err = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } });
    let mut ok = json!({ "description": describe(route.doc.ok) });
    if let Some(schema) = (route.doc.reply)(replies) {
        let schema = transformed(replies, schema);
        ok["content"] = json!({ "application/json": { "schema": schema } });
    }
    let mut r = json!({ route.doc.ok.to_string(): ok });
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    out.push(r);
                }
                o.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn schemas_come_from_the_types_and_every_reference_resolves() {
        let doc = super::document();
        if let Ok(path) = std::env::var("LOA_DUMP_OPENAPI") {
            std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap_or_default()).ok();
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in found {
            assert!(doc.pointer(&r[1..]).is_some(), "{r} does not resolve");
        }
        let village = &doc["paths"]["/api/v1/villages"]["post"];
        let name =
            &village["requestBody"]["content"]["application/json"]["schema"]["properties"]["name"];
        assert_eq!(
            (name["minLength"].as_u64(), name["maxLength"].as_u64()),
            (Some(1), Some(100))
        );
        let reply = &village["responses"]["201"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(reply, "#/components/schemas/Village");
        let user = &doc["paths"]["/api/v1/users"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert_eq!(user["oneOf"].as_array().map(Vec::len), Some(2));
        // Every JSON reply is described; only these answer something else.
        let not_json = [
            "openapi_json",
            "node_link",
            "content_audio",
            "blob",
            "emergency_events",
            "speech_preview",
        ];
        let mut g = schemars::SchemaGenerator::default();
        for route in super::ROUTES.iter().filter(|r| r.is_api()) {
            let op = route.name.rsplit("::").next().unwrap_or_default();
            let described = (route.doc.reply)(&mut g).is_some();
            assert_eq!(described, !not_json.contains(&op), "the reply of {op}");
        }
        let node = &doc["components"]["schemas"]["Node"]["properties"];
        assert!(
            node["health"].is_object(),
            "the node's typed heartbeat is described"
        );
    }
}
