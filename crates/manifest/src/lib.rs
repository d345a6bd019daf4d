//! The jailtrace manifest: the machine-readable record of everything a
//! program needed in its jail, and why.
//!
//! `jailtrace run` writes one [`Manifest`] per root; other tools (build,
//! verify, export, doctor) read it. This crate is that contract: the serde
//! types (their JSON shape is the format, described field by field in
//! `docs/manifest.md`), reading with a version check, and atomic writing.
//!
//! Guarantees:
//! - **Lossless paths.** Every path, argument and environment string is a
//!   [`PathText`]: a JSON string when it is UTF-8, `{"bytes": base64}`
//!   otherwise, so reading gives back the exact bytes.
//! - **Versioned.** [`Manifest::from_slice`] looks at `schema_version` before
//!   anything else and refuses a manifest newer than [`SCHEMA_VERSION`] with
//!   [`Error::FutureVersion`], even if the rest no longer has a shape this
//!   version knows. Unknown object keys are ignored, so adding an optional
//!   field does not bump the version; any other change does.
//! - **No panics on input.** Malformed input is an [`Error::Malformed`] whose
//!   message carries the line and column.
//! - **Atomic writes.** [`Manifest::write_atomic`] leaves either the old file
//!   or the complete new one at the target, never a partial file.

mod diff;
mod env;
mod error;
mod file;
mod mode;
mod path_text;
mod schema;
pub mod secret;
mod unfinished;
mod wire;

use std::fmt;
use std::path::Path;

use schemars::JsonSchema;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use diff::{
    diff, Changed, CommandChange, Diff, EntryChange, EntryDiff, MountChange, MountDiff, ProgramDiff,
};
pub use env::EnvVar;
pub use error::{Error, WriteStep};
pub use file::Saved;
pub use mode::{Mode, ModeError};
pub use path_text::PathText;
pub use schema::{
    AccountKind, Before, Cause, Command, DeviceNumber, Entry, EntryKind, Exercise, FoundAccount,
    Mount, Probe, Program, ProgramUnit, Reason, Rootless, Run, RunRole, RunStatus, Socket,
    SocketFamily, SocketOp,
};
pub use unfinished::Unfinished;

/// The manifest format version this crate writes and the newest it reads.
///
/// Version 2 (this one) describes a jail of several programs (`programs`);
/// version 1, a jail of one (`command`), is still read.
pub const SCHEMA_VERSION: u32 = 2;

/// Everything jailtrace learned about the programs of a jail and its root.
///
/// Read with [`Manifest::from_slice`], which also takes version 1 (one
/// program, under `command`) and gives it as a manifest of one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Manifest {
    /// The format version; [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// The version of jailtrace that wrote the manifest (e.g. `"0.1.0"`).
    pub tool_version: String,
    /// When the manifest was made, in seconds since the Unix epoch (UTC).
    pub created_unix: u64,
    /// The programs of the jail, in the order they were added; names are
    /// unique. At least one.
    pub programs: Vec<Program>,
    /// The jail file the jail was made from (`jailtrace up FILE`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jail_file: Option<PathText>,
    /// The absolute host path of the root directory when the manifest was made.
    pub root: PathText,
    /// The runs of the program, in order (`index` 1, 2, …).
    pub runs: Vec<Run>,
    /// Everything placed in the root, in the order it was placed (parents first).
    pub entries: Vec<Entry>,
    /// Paths the program probed that the host lacks too (so the jail lacks them correctly).
    pub absent: Vec<Probe>,
    /// Paths the policy refused to copy; each [`Probe::rule`] names the rule.
    pub denied: Vec<Probe>,
    /// Filesystems the jail needs mounted (proc, sysfs, devpts, tmpfs). Empty if absent.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Network use by the program. Empty if absent.
    #[serde(default)]
    pub sockets: Vec<Socket>,
    /// Host accounts kept because a program looks them up by name (found
    /// by experiment, see [`FoundAccount`]). Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<FoundAccount>,
    /// Set when the manifest was made without root, in a user namespace
    /// (see [`Rootless`]). Absent from a root run's manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless: Option<Rootless>,
}

impl Manifest {
    /// Parses a manifest from JSON bytes.
    ///
    /// `schema_version` is read first, on its own: a version above
    /// [`SCHEMA_VERSION`] gives [`Error::FutureVersion`] and 0 gives
    /// [`Error::InvalidVersion`], whatever the rest contains. Anything that is
    /// not JSON, or not a manifest of this version, gives [`Error::Malformed`]
    /// with the line and column. Never panics.
    ///
    /// ```
    /// use jailtrace_manifest::{Error, Manifest};
    ///
    /// let newer = br#"{"schema_version": 7, "entries": "a shape from the future"}"#;
    /// let err = Manifest::from_slice(newer).unwrap_err();
    /// assert!(matches!(err, Error::FutureVersion { found: 7, supported: 2 }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "manifest schema version 7 is newer than this jailtrace understands (2); upgrade jailtrace"
    /// );
    /// ```
    pub fn from_slice(json: &[u8]) -> Result<Self, Error> {
        let VersionOnly(found) =
            serde_json::from_slice(json).map_err(|json| Error::Malformed { json })?;
        if found == 0 {
            return Err(Error::InvalidVersion { found });
        }
        if found > u64::from(SCHEMA_VERSION) {
            return Err(Error::FutureVersion {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let wire: wire::Wire =
            serde_json::from_slice(json).map_err(|json| Error::Malformed { json })?;
        Manifest::try_from(wire).map_err(|why| Error::Malformed {
            json: <serde_json::Error as de::Error>::custom(why),
        })
    }

    /// The manifest as pretty-printed JSON (two-space indent) ending in a newline.
    pub fn to_json(&self) -> String {
        // Serialising cannot fail: every map key is a string and no Serialize
        // impl in this crate returns an error.
        let mut json =
            serde_json::to_string_pretty(self).expect("manifest types always serialise to JSON");
        json.push('\n');
        json
    }

    /// The program called `name`, if any.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The first program: the one started by formats that start one
    /// (OCI's entrypoint, a Dockerfile's `ENTRYPOINT`).
    pub fn first_program(&self) -> &Program {
        // Invariant: every manifest read or made has at least one program
        // (`wire` refuses one without).
        &self.programs[0]
    }

    /// The entry placed at `path` (a path inside the jail), if any.
    ///
    /// Paths compare by components, so `/usr//bin/` finds `/usr/bin`.
    pub fn entry(&self, path: &Path) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path.as_path() == path)
    }
}

/// The JSON Schema (draft 2020-12) of the manifest format, generated from
/// these types: pretty-printed JSON ending in a newline.
///
/// It is committed as `docs/manifest.schema.json`; a test fails when the two
/// differ. The schema describes what [`Manifest::to_json`] writes and
/// [`Manifest::from_slice`] reads, with two differences from the reader:
/// it does not forbid unknown keys (readers ignore them), and it cannot say
/// that a `schema_version` above [`SCHEMA_VERSION`] is refused.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    // A schemars `Schema` is a JSON value with string keys: it always serialises.
    let mut json =
        serde_json::to_string_pretty(&schema).expect("a JSON Schema always serialises to JSON");
    json.push('\n');
    json
}

/// Only the `schema_version` of a manifest; every other key is skipped unparsed.
///
/// Accepts only a JSON object (not the array form serde allows for structs),
/// so a document that is not a manifest at all gets a plain error.
struct VersionOnly(u64);

impl<'de> Deserialize<'de> for VersionOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VersionVisitor;
        impl<'de> Visitor<'de> for VersionVisitor {
            type Value = VersionOnly;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a jailtrace manifest (a JSON object with \"schema_version\")")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VersionOnly, A::Error> {
                let mut version = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "schema_version" {
                        if version.is_some() {
                            return Err(de::Error::duplicate_field("schema_version"));
                        }
                        version = Some(map.next_value::<u64>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                version
                    .map(VersionOnly)
                    .ok_or_else(|| de::Error::missing_field("schema_version"))
            }
        }
        deserializer.deserialize_map(VersionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid manifest with `version` substituted.
    fn minimal(version: &str) -> String {
        format!(
            r#"{{
  "schema_version": {version},
  "tool_version": "0.1.0",
  "created_unix": 1700000000,
  "command": {{"argv": ["/bin/true"], "executable": "/usr/bin/true", "cwd": "/", "env": []}},
  "root": "/tmp/jail",
  "runs": [],
  "entries": [],
  "absent": [],
  "denied": []
}}"#
        )
    }

    fn message(err: &Error) -> String {
        err.to_string()
    }

    #[test]
    fn minimal_manifest_parses_with_defaults() {
        // Version 1 reads as one program named after its executable.
        let m = Manifest::from_slice(minimal("1").as_bytes()).unwrap();
        assert_eq!(m.schema_version, SCHEMA_VERSION);
        assert!(m.mounts.is_empty() && m.sockets.is_empty());
        assert_eq!(m.programs.len(), 1);
        assert_eq!(m.programs[0].name, "true");
        assert_eq!(m.programs[0].command.user, None);
        assert_eq!(
            m.programs[0].command.executable.as_path(),
            Path::new("/usr/bin/true")
        );
    }

    #[test]
    fn future_version_is_refused_even_if_the_shape_changed() {
        let json = br#"{"schema_version": 7, "entries": {"whatever": "new"}, "runs": 3}"#;
        let err = Manifest::from_slice(json).unwrap_err();
        assert!(
            matches!(
                err,
                Error::FutureVersion {
                    found: 7,
                    supported: 2
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            message(&err),
            "manifest schema version 7 is newer than this jailtrace understands (2); upgrade jailtrace"
        );
        // The version may come last, after keys of unknown shape.
        let json = br#"{"new_thing": [1, {"a": null}], "schema_version": 3}"#;
        assert!(matches!(
            Manifest::from_slice(json),
            Err(Error::FutureVersion { found: 3, .. })
        ));
        // Even a version that does not fit in u32.
        let json = br#"{"schema_version": 99999999999}"#;
        assert!(matches!(
            Manifest::from_slice(json),
            Err(Error::FutureVersion {
                found: 99_999_999_999,
                ..
            })
        ));
    }

    #[test]
    fn current_version_with_unknown_extra_keys_is_accepted() {
        let json = minimal("1").replacen("\"root\"", "\"added_later\": {\"x\": 1},\n  \"root\"", 1);
        let m = Manifest::from_slice(json.as_bytes()).unwrap();
        assert_eq!(m.root.as_path(), Path::new("/tmp/jail"));
    }

    #[test]
    fn version_zero_and_missing_or_mistyped_versions_are_errors() {
        let err = Manifest::from_slice(minimal("0").as_bytes()).unwrap_err();
        assert!(matches!(err, Error::InvalidVersion { found: 0 }), "{err:?}");

        let err = Manifest::from_slice(br#"{"tool_version": "0.1.0"}"#).unwrap_err();
        assert!(
            message(&err).contains("missing field `schema_version`"),
            "{err}"
        );

        for version in ["\"1\"", "-1", "1.5", "null"] {
            let err = Manifest::from_slice(minimal(version).as_bytes()).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{version}: {err:?}");
            assert!(message(&err).contains("line 2 column"), "{version}: {err}");
        }
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let broken = minimal("1").replace("\"runs\": [],", "\"runs\": [,");
        let err = Manifest::from_slice(broken.as_bytes()).unwrap_err();
        let Error::Malformed { json } = &err else {
            panic!("expected Malformed, got {err:?}");
        };
        assert_eq!((json.line(), json.column()), (7, 12), "{err}");
        assert!(message(&err).starts_with("malformed manifest: "), "{err}");
        assert!(message(&err).contains("at line 7 column 12"), "{err}");
    }

    #[test]
    fn wrong_shapes_are_malformed_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"[]",
            b"[1]",
            b"null",
            b"\"manifest\"",
            b"{",
            b"{\"schema_version\": 1, \"schema_version\": 1}",
            b"\xff\xfe{}",
            b"{\"schema_version\": 1} trailing",
        ];
        for input in cases {
            let err = Manifest::from_slice(input).unwrap_err();
            assert!(
                matches!(err, Error::Malformed { .. }),
                "{:?}: {err:?}",
                String::from_utf8_lossy(input)
            );
        }
        // Right version, wrong content: a bad mode deep inside an entry.
        let bad_mode = minimal("1").replace(
            "\"entries\": []",
            r#""entries": [{"path": "/bin", "kind": "dir", "mode": "755", "uid": 0, "gid": 0,
              "reason": {"cause": "parent", "run": 1}}]"#,
        );
        let err = Manifest::from_slice(bad_mode.as_bytes()).unwrap_err();
        assert!(message(&err).contains("invalid mode \"755\""), "{err}");
        // An enum value this version does not know.
        let bad_kind = bad_mode
            .replace("\"755\"", "\"0755\"")
            .replace("\"dir\"", "\"fifo\"");
        let err = Manifest::from_slice(bad_kind.as_bytes()).unwrap_err();
        assert!(message(&err).contains("unknown variant `fifo`"), "{err}");
    }

    #[test]
    fn deeply_nested_input_does_not_overflow_the_stack() {
        // Unknown keys are skipped without recursion, however deep.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let json = minimal("1").replacen("\"root\"", &format!("\"x\": {deep},\n  \"root\""), 1);
        assert!(Manifest::from_slice(json.as_bytes()).is_ok());
        // Unterminated: an error, not a crash.
        let json = format!("{{\"schema_version\": 1, \"x\": {}", "[".repeat(100_000));
        let err = Manifest::from_slice(json.as_bytes()).unwrap_err();
        assert!(message(&err).contains("EOF while parsing"), "{err}");
        // Nesting inside a known field stops at the first type mismatch.
        let json = minimal("1").replacen("\"runs\": []", &format!("\"runs\": [{deep}]"), 1);
        let err = Manifest::from_slice(json.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn to_json_is_pretty_with_a_trailing_newline() {
        // A version 1 manifest is written again as version 2.
        let m = Manifest::from_slice(minimal("1").as_bytes()).unwrap();
        let json = m.to_json();
        assert!(json.starts_with("{\n  \"schema_version\": 2,\n"), "{json}");
        assert!(
            json.contains("\"programs\": [") && !json.contains("\"command\""),
            "{json}"
        );
        assert!(json.ends_with("}\n") && !json.ends_with("\n\n"), "{json}");
        assert_eq!(Manifest::from_slice(json.as_bytes()).unwrap(), m);
    }
}
