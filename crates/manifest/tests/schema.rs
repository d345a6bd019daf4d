//! `docs/manifest.schema.json` is the JSON Schema generated from the
//! manifest's Rust types ([`jailtrace_manifest::json_schema`]). This test
//! fails when the two differ, so a change to the types cannot land without
//! the schema; `UPDATE_SCHEMA=1` rewrites the file instead of failing.
//!
//! It also checks that the schema says what the format promises where the
//! types use hand-written serde (paths, modes), and that the example
//! manifest in `docs/manifest.md` uses only fields the schema knows.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

/// The command that regenerates the committed schema.
const REGENERATE: &str = "UPDATE_SCHEMA=1 cargo test -p jailtrace-manifest --test schema";

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn schema() -> Value {
    serde_json::from_str(&jailtrace_manifest::json_schema()).expect("the schema is JSON")
}

#[test]
fn committed_schema_matches_the_types() {
    let path = docs().join("manifest.schema.json");
    let generated = jailtrace_manifest::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}\nGenerate it with: {REGENERATE}",
            path.display()
        )
    });
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "{} is out of date with the manifest types (first difference at line {}).\n\
             If the format change is intended (see the versioning rules in docs/manifest.md), \
             regenerate it with:\n    {REGENERATE}\nand commit the result.",
            path.display(),
            line + 1
        );
    }
}

#[test]
fn schema_describes_the_hand_written_forms() {
    let schema = schema();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{schema:#}"
    );
    assert_eq!(schema["title"], "Manifest");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required is a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for field in [
        "schema_version",
        "tool_version",
        "created_unix",
        "programs",
        "root",
        "runs",
        "entries",
        "absent",
        "denied",
    ] {
        assert!(
            required.contains(&field),
            "{field} is not required: {required:?}"
        );
    }
    // mounts and sockets may be missing on input.
    assert!(!required.contains(&"mounts") && !required.contains(&"sockets"));

    let defs = &schema["$defs"];
    assert_eq!(defs["Mode"]["type"], "string");
    assert_eq!(defs["Mode"]["pattern"], "^[0-7]{4}$");
    let path_forms = defs["PathText"]["oneOf"].as_array().expect("oneOf");
    assert_eq!(path_forms[0]["type"], "string");
    assert_eq!(path_forms[1]["required"], serde_json::json!(["bytes"]));
    assert_eq!(path_forms[1]["additionalProperties"], false);
    assert_eq!(
        defs["Entry"]["properties"]["sha256"]["pattern"],
        "^[0-9a-f]{64}$"
    );
    let kinds: Vec<&str> = defs["EntryKind"]["oneOf"]
        .as_array()
        .expect("one schema per kind")
        .iter()
        .filter_map(|kind| kind["const"].as_str())
        .collect();
    assert_eq!(kinds, ["file", "dir", "symlink", "device"]);
}

/// The `$defs` name a property schema refers to, if it is a reference.
fn reference(schema: &Value) -> Option<&str> {
    schema["$ref"].as_str()?.strip_prefix("#/$defs/")
}

/// Asserts that every object key of `value` is a property of `schema`
/// (following `$ref`s and arrays), descending into the known properties.
fn assert_known_keys(root: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = match reference(schema) {
        Some(name) => &root["$defs"][name],
        None => schema,
    };
    match value {
        Value::Object(map) => {
            let Some(properties) = schema["properties"].as_object() else {
                // A oneOf/anyOf (paths, run status): checked by the reader's tests.
                return;
            };
            for (key, item) in map {
                let sub = properties
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}.{key} is not in the schema"));
                assert_known_keys(root, sub, item, &format!("{at}.{key}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_known_keys(root, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn documented_example_uses_only_schema_fields() {
    let doc = fs::read_to_string(docs().join("manifest.md")).expect("docs/manifest.md");
    let start = doc
        .find("<!-- example:begin -->\n```json\n")
        .expect("the example marker");
    let rest = &doc[start..];
    let json = &rest[rest.find('{').expect("a JSON object")
        ..rest
            .find("```\n<!-- example:end -->")
            .expect("the end marker")];
    let example: Value = serde_json::from_str(json).expect("the example is JSON");
    let schema = schema();
    assert_known_keys(&schema, &schema, &example, "$");
}
