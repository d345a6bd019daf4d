//! Every example jail file (`examples/*.toml`) and every TOML example in
//! `docs/jailfile.md` is a jail file: it parses as a [`JailFile`], it is
//! valid under the committed `docs/jailfile.schema.json`, and its values
//! (readiness conditions, exercises, durations, binds, directories) are
//! ones `jailtrace up` accepts.

use std::fs;
use std::path::{Path, PathBuf};

use jailtrace_spec::jailfile::Step;
use jailtrace_spec::ready::{parse_duration, Condition};
use jailtrace_spec::{Bind, Exercise, JailFile, MkDir};
use serde_json::Value;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed schema (its own test keeps it equal to the types).
fn committed_schema() -> Value {
    let path = workspace().join("docs/jailfile.schema.json");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Checks `value` against `schema`, for the keywords the jail file's
/// schema uses; any other keyword fails the test, so a schema that grows
/// one is not half-checked here.
fn validate(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(keywords) = schema.as_object() else {
        return Err(format!("{at}: the schema is not an object: {schema}"));
    };
    for (keyword, rule) in keywords {
        match keyword.as_str() {
            "$schema" | "title" | "description" | "default" | "$defs" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or_else(|| format!("{at}: unexpected $ref {rule}"))?;
                validate(root, &root["$defs"][name], value, at)?;
            }
            "type" => {
                let fits = matches!(
                    (rule.as_str(), value),
                    (Some("object"), Value::Object(_))
                        | (Some("array"), Value::Array(_))
                        | (Some("string"), Value::String(_))
                        | (Some("boolean"), Value::Bool(_))
                );
                if !fits {
                    return Err(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "const" if value != rule => return Err(format!("{at}: {value} is not {rule}")),
            "const" => {}
            "oneOf" => {
                let choices = rule.as_array().ok_or("oneOf is a list")?;
                let fitting = choices
                    .iter()
                    .filter(|c| validate(root, c, value, at).is_ok())
                    .count();
                if fitting != 1 {
                    return Err(format!("{at}: {value} fits {fitting} of {rule}"));
                }
            }
            "anyOf" => {
                let choices = rule.as_array().ok_or("anyOf is a list")?;
                let errors: Vec<String> = choices
                    .iter()
                    .filter_map(|c| validate(root, c, value, at).err())
                    .collect();
                if errors.len() == choices.len() {
                    return Err(format!("{at}: fits none of: {}", errors.join("; ")));
                }
            }
            "properties" | "additionalProperties" | "required" => {
                let Value::Object(map) = value else { continue };
                if keyword == "required" {
                    for key in rule.as_array().into_iter().flatten() {
                        let key = key.as_str().unwrap_or_default();
                        if !map.contains_key(key) {
                            return Err(format!("{at}: `{key}` is missing"));
                        }
                    }
                    continue;
                }
                if keyword == "additionalProperties" && rule.is_object() {
                    for (key, item) in map {
                        validate(root, rule, item, &format!("{at}.{key}"))?;
                    }
                    continue;
                }
                let properties = keywords.get("properties").and_then(Value::as_object);
                for (key, item) in map {
                    match properties.and_then(|p| p.get(key)) {
                        Some(sub) if keyword == "properties" => {
                            validate(root, sub, item, &format!("{at}.{key}"))?;
                        }
                        Some(_) => {}
                        None if keywords.get("additionalProperties")
                            == Some(&Value::Bool(false)) =>
                        {
                            return Err(format!("{at}: unknown key `{key}`"));
                        }
                        None => {}
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(root, rule, item, &format!("{at}[{i}]"))?;
                }
            }
            "minItems" => {
                let (Some(len), Some(min)) = (value.as_array().map(Vec::len), rule.as_u64()) else {
                    continue;
                };
                if (len as u64) < min {
                    return Err(format!("{at}: fewer than {min} items"));
                }
            }
            other => panic!("{at}: the schema uses `{other}`, which this test does not check"),
        }
    }
    Ok(())
}

/// Checks one jail file's text: it parses, validates under the schema,
/// and holds values the command line accepts.
fn check(path: &Path, text: &str, schema: &Value) {
    let file = JailFile::parse(path, text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    let toml: toml::Value = toml::from_str(text).expect("it parsed above");
    let json = serde_json::to_value(toml).expect("TOML becomes JSON");
    if let Err(e) = validate(schema, schema, &json, "$") {
        panic!(
            "{} is not valid under docs/jailfile.schema.json: {e}",
            path.display()
        );
    }
    let where_ = |what: &str| format!("{}: {what}", path.display());
    for b in &file.binds {
        b.parse::<Bind>()
            .unwrap_or_else(|e| panic!("{}", where_(&e.to_string())));
    }
    for d in &file.mkdirs {
        d.parse::<MkDir>()
            .unwrap_or_else(|e| panic!("{}", where_(&e.to_string())));
    }
    for p in &file.programs {
        for r in &p.ready {
            r.parse::<Condition>()
                .unwrap_or_else(|e| panic!("{}", where_(&e.to_string())));
        }
        for step in &p.exercises {
            match step {
                Step::Command(c) => Exercise::command(c),
                Step::Probe(u) => Exercise::probe(u),
            }
            .unwrap_or_else(|e| panic!("{}", where_(&e)));
        }
        for d in [&p.timeout, &p.exercise_timeout].into_iter().flatten() {
            parse_duration(d).unwrap_or_else(|e| panic!("{}", where_(&e)));
        }
    }
}

#[test]
fn every_example_jail_file_is_a_jail_file() {
    let schema = committed_schema();
    let dir = workspace().join("examples");
    let mut checked = Vec::new();
    for entry in fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("an entry of examples/").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = fs::read_to_string(&path).expect("an example");
            check(&path, &text, &schema);
            checked.push(path);
        }
    }
    assert!(!checked.is_empty(), "no examples/*.toml found");
}

/// The ```toml blocks of a Markdown text.
fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start() == "```toml" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn every_toml_example_in_the_docs_is_a_jail_file() {
    let schema = committed_schema();
    let doc = workspace().join("docs/jailfile.md");
    let text = fs::read_to_string(&doc).expect("docs/jailfile.md");
    let blocks = toml_blocks(&text);
    assert!(!blocks.is_empty(), "no ```toml example in docs/jailfile.md");
    for (i, block) in blocks.iter().enumerate() {
        let name = doc.with_file_name(format!("jailfile.md (toml example {})", i + 1));
        check(&name, block, &schema);
    }
}

#[test]
fn the_checks_here_catch_a_bad_file() {
    let schema = committed_schema();
    let bad = |text: &str| {
        let toml: toml::Value = toml::from_str(text).unwrap();
        let json = serde_json::to_value(toml).unwrap();
        validate(&schema, &schema, &json, "$").unwrap_err()
    };
    let program = "[[program]]\ncommand = [\"/bin/true\"]\n";
    assert!(bad(&format!("rot = \"r\"\n{program}")).contains("unknown key `rot`"));
    assert!(bad(&format!("root = \"r\"\n[policy]\ndeni = []\n{program}")).contains("`deni`"));
    assert!(bad("root = \"r\"\n[[program]]\ncommand = []\n").contains("fewer than 1"));
    assert!(bad("root = \"r\"\n[[program]]\nname = \"x\"\n").contains("`command` is missing"));
    assert!(bad(&format!(
        "root = \"r\"\n{program}exercises = [{{ fetch = \"http://h/\" }}]\n"
    ))
    .contains("fits 0"));
    assert!(bad(&format!(
        "root = \"r\"\n[accounts]\npasswd = \"merge\"\n{program}"
    ))
    .contains("fits 0"));
}
