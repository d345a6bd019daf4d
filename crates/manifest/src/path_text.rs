//! [`PathText`]: a path or other OS string that survives JSON losslessly.
//!
//! Linux paths are arbitrary bytes except NUL; JSON strings are Unicode. A
//! `PathText` whose bytes are valid UTF-8 is written as a plain JSON string;
//! otherwise it is written as `{"bytes": "<base64 of the raw bytes>"}`
//! (standard alphabet, padded), as ripgrep's JSON printer does. Reading
//! accepts both forms, so every `PathText` reads back byte for byte. Only
//! [`Display`](fmt::Display) is lossy, and it is meant for people.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// An `OsString` (path, argument or `KEY=VALUE` environment string) that
/// serialises losslessly: a JSON string when it is UTF-8, else `{"bytes": base64}`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathText(OsString);

impl PathText {
    /// Wraps anything that converts into an `OsString`.
    pub fn new(text: impl Into<OsString>) -> Self {
        Self(text.into())
    }

    /// The value as a path.
    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    /// The value as an OS string.
    pub fn as_os_str(&self) -> &OsStr {
        &self.0
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The value as UTF-8, if it is.
    pub fn to_str(&self) -> Option<&str> {
        self.0.to_str()
    }

    /// Unwraps the `OsString`.
    pub fn into_os_string(self) -> OsString {
        self.0
    }

    /// Unwraps into a `PathBuf`.
    pub fn into_path_buf(self) -> PathBuf {
        PathBuf::from(self.0)
    }
}

impl From<OsString> for PathText {
    fn from(value: OsString) -> Self {
        Self(value)
    }
}

impl From<&OsStr> for PathText {
    fn from(value: &OsStr) -> Self {
        Self(value.to_owned())
    }
}

impl From<PathBuf> for PathText {
    fn from(value: PathBuf) -> Self {
        Self(value.into_os_string())
    }
}

impl From<&Path> for PathText {
    fn from(value: &Path) -> Self {
        Self(value.as_os_str().to_owned())
    }
}

impl From<String> for PathText {
    fn from(value: String) -> Self {
        Self(value.into())
    }
}

impl From<&str> for PathText {
    fn from(value: &str) -> Self {
        Self(value.into())
    }
}

impl From<Vec<u8>> for PathText {
    fn from(value: Vec<u8>) -> Self {
        Self(OsString::from_vec(value))
    }
}

impl From<PathText> for OsString {
    fn from(value: PathText) -> Self {
        value.0
    }
}

impl From<PathText> for PathBuf {
    fn from(value: PathText) -> Self {
        value.into_path_buf()
    }
}

impl AsRef<Path> for PathText {
    fn as_ref(&self) -> &Path {
        self.as_path()
    }
}

impl AsRef<OsStr> for PathText {
    fn as_ref(&self) -> &OsStr {
        &self.0
    }
}

impl fmt::Display for PathText {
    /// For people: invalid UTF-8 is shown as U+FFFD. Never parse this back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_path().display(), f)
    }
}

impl fmt::Debug for PathText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The key of the non-UTF-8 form.
const BYTES_KEY: &str = "bytes";

impl Serialize for PathText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.to_str() {
            Some(text) => serializer.serialize_str(text),
            None => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(BYTES_KEY, &BASE64.encode(self.0.as_bytes()))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for PathText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PathTextVisitor)
    }
}

struct PathTextVisitor;

impl<'de> Visitor<'de> for PathTextVisitor {
    type Value = PathText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a path as a string or as {\"bytes\": \"<base64>\"}")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<PathText, E> {
        Ok(PathText::from(text))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<PathText, E> {
        Ok(PathText::from(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PathText, A::Error> {
        let mut bytes: Option<Vec<u8>> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != BYTES_KEY {
                return Err(de::Error::unknown_field(&key, &[BYTES_KEY]));
            }
            if bytes.is_some() {
                return Err(de::Error::duplicate_field(BYTES_KEY));
            }
            let encoded: String = map.next_value()?;
            let decoded = BASE64.decode(&encoded).map_err(|e| {
                de::Error::custom(format_args!("invalid base64 in path \"bytes\": {e}"))
            })?;
            bytes = Some(decoded);
        }
        bytes
            .map(PathText::from)
            .ok_or_else(|| de::Error::missing_field(BYTES_KEY))
    }
}

impl JsonSchema for PathText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PathText".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        concat!(module_path!(), "::PathText").into()
    }

    /// A string, or `{"bytes": base64}` for bytes that are not UTF-8 (as [`Serialize`] writes).
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A path, argument or KEY=VALUE string: a JSON string when its bytes are UTF-8, otherwise {\"bytes\": \"<standard padded base64 of the raw bytes>\"}. Readers accept the object form for UTF-8 bytes too.",
            "oneOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": {
                        "bytes": {
                            "type": "string",
                            "pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
                        }
                    },
                    "required": ["bytes"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn non_utf8() -> PathText {
        PathText::from(b"/tmp/caf\xe9".to_vec())
    }

    #[test]
    fn utf8_is_a_plain_string() {
        let path = PathText::from(Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert_eq!(
            serde_json::to_string(&path).unwrap(),
            "\"/usr/lib/x86_64-linux-gnu/libc.so.6\""
        );
        let back: PathText =
            serde_json::from_str("\"/usr/lib/x86_64-linux-gnu/libc.so.6\"").unwrap();
        assert_eq!(back, path);
    }

    #[test]
    fn non_utf8_is_base64_bytes_and_round_trips() {
        let path = non_utf8();
        let json = serde_json::to_string(&path).unwrap();
        assert_eq!(json, r#"{"bytes":"L3RtcC9jYWbp"}"#);
        let back: PathText = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_bytes(), b"/tmp/caf\xe9");
    }

    #[test]
    fn bytes_form_is_accepted_for_utf8_too() {
        // "/bin" in base64.
        let back: PathText = serde_json::from_str(r#"{"bytes":"L2Jpbg=="}"#).unwrap();
        assert_eq!(back, PathText::from("/bin"));
    }

    #[test]
    fn escapes_in_json_strings_are_decoded() {
        let back: PathText = serde_json::from_str(r#""/tmp/a\"b\u00e9""#).unwrap();
        assert_eq!(back.to_str(), Some("/tmp/a\"b\u{e9}"));
    }

    #[test]
    fn bad_shapes_are_rejected() {
        for (json, needle) in [
            (r#"{"bytes":"L3RtcC9jYWbp="}"#, "invalid base64"),
            // One accepted encoding per byte string: no stray bits, no
            // missing padding, no whitespace.
            (r#"{"bytes":"L2Jpbh=="}"#, "invalid base64"),
            (r#"{"bytes":"L2Jpbg"}"#, "invalid base64"),
            (r#"{"bytes":"L2Jp bg=="}"#, "invalid base64"),
            (r#"{"text":"/bin"}"#, "unknown field `text`"),
            (r#"{}"#, "missing field `bytes`"),
            (
                r#"{"bytes":"L2Jpbg==","bytes":"L2Jpbg=="}"#,
                "duplicate field `bytes`",
            ),
            (r#"{"bytes":5}"#, "invalid type"),
            ("42", "invalid type"),
            ("null", "invalid type"),
        ] {
            let err = serde_json::from_str::<PathText>(json).unwrap_err();
            assert!(err.to_string().contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn display_is_lossy_only_for_display() {
        let path = non_utf8();
        assert_eq!(path.to_string(), "/tmp/caf\u{fffd}");
        assert_eq!(
            path.as_path(),
            Path::new(OsStr::from_bytes(b"/tmp/caf\xe9"))
        );
    }

    #[test]
    fn conversions_keep_the_bytes() {
        let os = OsString::from_vec(b"a\xffb".to_vec());
        let path = PathText::from(PathBuf::from(os.clone()));
        assert_eq!(path.as_os_str(), os.as_os_str());
        assert_eq!(PathBuf::from(path.clone()).as_os_str(), os.as_os_str());
        assert_eq!(path.into_os_string(), os);
    }
}
