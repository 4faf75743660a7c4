//! Freeform (`custom`) tools, which Codex CLI declares `apply_patch` as: the model's input to
//! them is raw text, not JSON arguments. No chat API has them, so each goes upstream as a
//! function tool with one string parameter, `input`, and a call of it comes back as a
//! `custom_tool_call` item holding that string again.

use serde_json::{Value, json};

/// The function tool standing for a custom tool; its grammar, when it has one, is in the
/// description, so the model still sees what its input must look like.
pub(super) fn as_function(tool: &Value, name: &str) -> Value {
    let mut description = tool["description"].as_str().unwrap_or("").to_owned();
    let format = &tool["format"];
    if format["type"] == "grammar"
        && let Some(definition) = format["definition"].as_str()
    {
        let syntax = format["syntax"].as_str().unwrap_or("lark");
        description.push_str(&format!(
            "\n\nThe input must match this {syntax} grammar:\n{definition}"
        ));
    }
    json!({"type": "function", "function": {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "required": ["input"], "properties": {
            "input": {"type": "string", "description": "The tool's free-form input, as text."}}},
    }})
}

/// The names of the custom tools among a request's `tools`.
pub(super) fn names(tools: &Value) -> Vec<String> {
    tools
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "custom")
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// A custom tool's input as function-call arguments.
pub(super) fn wrap(input: &str) -> String {
    json!({"input": input}).to_string()
}

/// Function-call arguments back as the custom tool's input: their `input` string, or the
/// arguments themselves when the model wrote something else.
pub(super) fn unwrap(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(mut o)) => match o.remove("input") {
            Some(Value::String(s)) => s,
            _ => arguments.to_owned(),
        },
        _ => arguments.to_owned(),
    }
}

/// A finished `custom_tool_call` item.
pub(super) fn call_item(id: &str, call_id: &Value, name: &Value, input: &str) -> Value {
    json!({"type": "custom_tool_call", "id": id, "call_id": call_id, "name": name,
           "input": input, "status": "completed"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_goes_out_wrapped_and_comes_back_bare() {
        let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch";
        assert_eq!(unwrap(&wrap(patch)), patch);
        assert_eq!(unwrap("not json"), "not json");
        let tool = json!({"type": "custom", "name": "apply_patch", "description": "Edit files.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/s"}});
        let f = as_function(&tool, "apply_patch");
        assert_eq!(f["function"]["parameters"]["required"], json!(["input"]));
        assert!(
            f["function"]["description"]
                .as_str()
                .unwrap_or("")
                .contains("start: /.+/s")
        );
        assert_eq!(
            names(&json!([tool, {"type": "function", "name": "f"}])),
            ["apply_patch"]
        );
    }
}
