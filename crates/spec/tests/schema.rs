//! `docs/jailfile.schema.json` is the JSON Schema generated from the jail
//! file's Rust types ([`jailtrace_spec::JailFile::json_schema`]). This test
//! fails when the two differ, so a change to the types cannot land without
//! the schema; `UPDATE_SCHEMA=1` rewrites the file instead of failing.
//!
//! It also checks that the schema says what the parser enforces: closed
//! tables (`deny_unknown_fields`), the required keys, and at least one
//! program with a command.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

/// The command that regenerates the committed schema.
const REGENERATE: &str = "UPDATE_SCHEMA=1 cargo test -p jailtrace-spec --test schema";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/jailfile.schema.json")
}

fn schema() -> Value {
    serde_json::from_str(&jailtrace_spec::JailFile::json_schema()).expect("the schema is JSON")
}

#[test]
fn committed_schema_matches_the_types() {
    let path = committed_path();
    let generated = jailtrace_spec::JailFile::json_schema();
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
            "{} is out of date with the jail file types in crates/spec/src/jailfile.rs \
             (first difference at line {}).\nRegenerate it with:\n    {REGENERATE}\n\
             and commit the result.",
            path.display(),
            line + 1
        );
    }
}

/// The `required` list of an object schema.
fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn every_table_is_closed_as_the_parser_is() {
    let schema = schema();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{schema:#}"
    );
    assert_eq!(schema["title"], "JailFile");
    let defs = &schema["$defs"];
    let tables = [
        ("the top level", &schema),
        ("[policy]", &defs["PolicySection"]),
        ("[accounts]", &defs["AccountsSection"]),
        ("[[program]]", &defs["ProgramSection"]),
    ];
    for (name, table) in tables {
        assert_eq!(table["type"], "object", "{name}: {table:#}");
        assert_eq!(
            table["additionalProperties"], false,
            "{name} must refuse unknown keys, as deny_unknown_fields does: {table:#}"
        );
    }
    let steps = defs["Step"]["oneOf"]
        .as_array()
        .expect("one schema per step");
    let kinds: Vec<Vec<&str>> = steps.iter().map(required).collect();
    assert_eq!(kinds, [["command"], ["probe"]]);
    for step in steps {
        assert_eq!(step["additionalProperties"], false, "{step:#}");
    }
    assert_eq!(required(&schema), ["root", "program"]);
    assert_eq!(schema["properties"]["program"]["minItems"], 1);
    let program = &defs["ProgramSection"];
    // A command, or a unit that gives one.
    let any_of: Vec<Vec<&str>> = program["anyOf"]
        .as_array()
        .expect("command or unit")
        .iter()
        .map(required)
        .collect();
    assert_eq!(any_of, [["command"], ["unit"]]);
    assert_eq!(program["anyOf"][0]["properties"]["command"]["minItems"], 1);
    // TOML has no null: an optional key is a string, not "string or null".
    assert_eq!(program["properties"]["user"]["type"], "string");
    assert_eq!(
        defs["AccountsSection"]["properties"]["passwd"]["$ref"],
        "#/$defs/PasswdMode"
    );
    assert!(
        !jailtrace_spec::JailFile::json_schema().contains("null"),
        "no null anywhere"
    );
}
