//! JSON Schema → the OpenAPI-subset schema Gemini accepts for function parameters and
//! `responseSchema`.

use serde_json::{Map, Value, json};

/// Keywords Gemini rejects with 400 rather than ignoring.
const REJECTED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "additionalProperties",
    "patternProperties",
    "unevaluatedProperties",
    "dependentRequired",
    "dependentSchemas",
    "strict",
    "examples",
];

/// A copy of `schema` without rejected keywords; `type: [T, "null"]` becomes
/// `type: T, nullable: true` and a string `const` becomes a one-value `enum`.
pub(crate) fn clean_schema(schema: &Value) -> Value {
    let Value::Object(s) = schema else {
        return schema.clone();
    };
    let mut out = Map::with_capacity(s.len());
    for (k, v) in s {
        if REJECTED.contains(&k.as_str()) {
            continue;
        }
        let v = match k.as_str() {
            // Maps from names to schemas: clean the schemas, never the names.
            "properties" | "$defs" | "definitions" => match v {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(n, p)| (n.clone(), clean_schema(p)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "not" => clean_schema(v),
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => match v {
                Value::Array(a) => Value::Array(a.iter().map(clean_schema).collect()),
                other => other.clone(),
            },
            "type" => match v {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    non_null.first().map_or(json!("null"), |t| (*t).clone())
                }
                other => other.clone(),
            },
            "const" => {
                out.insert("enum".into(), json!([v]));
                continue;
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_rejected_keys_but_not_property_names() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object", "additionalProperties": false,
            "properties": {
                "additionalProperties": {"type": ["string", "null"], "const": "x"},
                "list": {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
            },
            "required": ["list"],
        });
        assert_eq!(
            clean_schema(&schema),
            json!({
                "type": "object",
                "properties": {
                    "additionalProperties": {"type": "string", "nullable": true, "enum": ["x"]},
                    "list": {"type": "array", "items": {"type": "object"}},
                },
                "required": ["list"],
            })
        );
    }
}
