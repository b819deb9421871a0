//! JSON Schemas the types alone cannot give: values the API takes as text from a fixed set
//! (a category, a time zone, a clock time), and the cross-field rules of two request
//! bodies, stated on the types with `#[schemars(with = ..)]` and `#[schemars(transform = ..)]`.
//! Everything else in the OpenAPI document's schemas is derived from the Rust types.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

use crate::model::CATEGORIES;
use crate::service::VILLAGE_KINDS;

/// A type that exists only to be described: `$name`'s schema is `$schema`.
macro_rules! described {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

fn one_of_names<'a>(names: impl Iterator<Item = &'a str>) -> Schema {
    let names: Vec<&str> = names.collect();
    json_schema!({ "type": "string", "enum": names })
}

described!(
    /// A content category: its key, Vietnamese or English name (`parse_category`).
    Category => one_of_names(CATEGORIES.iter().flat_map(|(k, vi, en)| [*k, *vi, *en]))
);
described!(
    /// A kind of village: `thon`, `to_dan_pho`, `ban`, `ap`.
    VillageKind => one_of_names(VILLAGE_KINDS.iter().map(|(k, _, _)| *k))
);
described!(
    /// An IANA time zone name the server knows.
    Zone => one_of_names(protocol::TZ_VARIANTS.iter().map(|z| z.name()))
);
described!(
    /// A clock time `HH:MM`.
    ClockTime => json_schema!({ "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$" })
);

/// One `oneOf` case: properties replaced, properties also required.
type Case<'a> = (&'a [(&'a str, Value)], &'a [&'a str]);

/// Splits an object schema into `oneOf` variants, each the object with some properties
/// replaced; a variant lists the properties it also requires.
fn variants(schema: &mut Schema, cases: &[Case<'_>]) {
    let Some(base) = schema.as_object().cloned() else {
        return;
    };
    let one_of: Vec<Value> = cases
        .iter()
        .map(|(props, required)| {
            let mut v = Value::Object(base.clone());
            for (name, prop) in *props {
                v["properties"][*name] = prop.clone();
            }
            let list = v["required"].as_array_mut();
            if let Some(list) = list {
                list.extend(required.iter().map(|r| json!(r)));
            } else if !required.is_empty() {
                v["required"] = json!(required);
            }
            v
        })
        .collect();
    *schema = json_schema!({ "oneOf": one_of });
}

/// A new user: only an admin may be province-wide.
pub fn admins_alone_province_wide(schema: &mut Schema) {
    let admin = json!({ "type": "string", "enum": ["admin"] });
    let staff = json!({ "type": "string", "enum": ["editor", "approver", "technician", "viewer"] });
    variants(
        schema,
        &[
            (&[("role", admin)], &[]),
            (
                &[
                    ("role", staff),
                    (
                        "province_wide",
                        json!({ "type": "boolean", "enum": [false] }),
                    ),
                ],
                &[],
            ),
        ],
    );
}

/// An optional property's schema as a required one: no longer nullable.
fn required_value(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("nullable");
    }
    v
}

/// A node's GPS position: both coordinates or neither.
pub fn position_both_or_neither(schema: &mut Schema) {
    let none = json!({ "nullable": true, "enum": [null] });
    let props = schema.get("properties").cloned().unwrap_or_default();
    let (lat, lon) = (props["lat"].clone(), props["lon"].clone());
    variants(
        schema,
        &[
            (
                &[("lat", required_value(lat)), ("lon", required_value(lon))],
                &["lat", "lon"],
            ),
            (&[("lat", none.clone()), ("lon", none)], &[]),
        ],
    );
}

/// An emergency says an approved item or text to speak: exactly one of the two.
pub fn content_or_text(schema: &mut Schema) {
    let props = schema.get("properties").cloned().unwrap_or_default();
    let (item, text) = (props["content_id"].clone(), props["text"].clone());
    let none = json!({ "nullable": true, "enum": [null] });
    variants(
        schema,
        &[
            (
                &[("content_id", required_value(item)), ("text", none.clone())],
                &["content_id"],
            ),
            (
                &[("content_id", none), ("text", required_value(text))],
                &["text"],
            ),
        ],
    );
}
