//! Tool schemas as model providers read them. schemars writes what serde accepts: `Option<T>` as
//! `"type": ["integer", "null"]` or `anyOf [T, null]`, unsigned integers with `"format":
//! "uint32"`. Some providers reject type arrays, and JSON Schema validators warn on unknown
//! formats. Published schemas get one type each (an optional field is one that is not
//! `required`) and only the formats JSON Schema defines; decoding the arguments is unchanged.
//! (schemars' own transforms rewrite one schema at a time and keep `null`; none does this pass.)

use serde_json::{Map, Value};

/// The `format`s JSON Schema 2020-12 defines; anything else (uint32, int64, double...) is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Rewrites a schema in place, recursively.
pub(crate) fn for_model_providers(schema: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = schema.get("type") {
        let not_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if let [single] = not_null.as_slice() {
            schema.insert("type".into(), single.clone());
        }
        if schema.get("default") == Some(&Value::Null) {
            schema.remove("default");
        }
    }
    for keyword in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = schema.get(keyword) else {
            continue;
        };
        let not_null: Vec<Value> = branches.iter().filter(|b| !is_null(b)).cloned().collect();
        if not_null.len() < branches.len() {
            schema.remove(keyword);
            match <[Value; 1]>::try_from(not_null) {
                Ok([Value::Object(only)]) => {
                    schema.extend(only);
                }
                Ok([other]) => {
                    schema.insert(keyword.into(), Value::Array(vec![other]));
                }
                Err(rest) => {
                    schema.insert(keyword.into(), Value::Array(rest));
                }
            }
            if schema.get("default") == Some(&Value::Null) {
                schema.remove("default");
            }
        }
    }
    if let Some(Value::String(format)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        schema.remove("format");
    }
    for value in schema.values_mut() {
        match value {
            Value::Object(child) => {
                for_model_providers(child);
                // `properties`, `$defs`: maps whose values are schemas.
                for grandchild in child.values_mut() {
                    if let Value::Object(nested) = grandchild {
                        for_model_providers(nested);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(child) = item {
                        for_model_providers(child);
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn normalised(schema: Value) -> Value {
        let Value::Object(mut map) = schema else {
            unreachable!()
        };
        for_model_providers(&mut map);
        Value::Object(map)
    }

    #[test]
    fn optional_and_unsigned_fields_get_one_type_and_no_custom_format() {
        let schema = json!({
            "type": "object",
            "properties": {
                "repeat": {"type": ["integer", "null"], "format": "uint32", "minimum": 0, "default": null},
                "when": {"type": "string", "format": "date-time"},
                "inner": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}]},
                "list": {"type": "array", "items": {"type": "integer", "format": "uint64"}}
            },
            "$defs": {"Inner": {"type": "object", "properties": {"n": {"type": ["number", "null"], "format": "double"}}}}
        });
        assert_eq!(
            normalised(schema),
            json!({
                "type": "object",
                "properties": {
                    "repeat": {"type": "integer", "minimum": 0},
                    "when": {"type": "string", "format": "date-time"},
                    "inner": {"$ref": "#/$defs/Inner"},
                    "list": {"type": "array", "items": {"type": "integer"}}
                },
                "$defs": {"Inner": {"type": "object", "properties": {"n": {"type": "number"}}}}
            })
        );
    }

    #[test]
    fn a_real_choice_between_types_stays() {
        let schema = json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]});
        assert_eq!(
            normalised(schema),
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
    }
}
