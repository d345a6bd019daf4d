//! Permission bits of an entry, written as a four-digit octal string.
//!
//! A [`Mode`] holds only the bits `0o7777`: read/write/execute for owner,
//! group and others plus setuid (`0o4000`), setgid (`0o2000`) and sticky
//! (`0o1000`). The file type is not part of it (that is
//! [`crate::EntryKind`]). In JSON it is always exactly four octal digits —
//! `"0755"`, `"4755"`, `"1777"`, `"0644"` — and reading accepts nothing else,
//! so a value that was read can always be written back unchanged.

use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The bits a [`Mode`] may hold.
const MASK: u32 = 0o7777;
/// setuid and setgid.
const SETID: u32 = 0o6000;

/// Permission bits including setuid/setgid/sticky; always `<= 0o7777`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mode(u32);

/// Why a mode was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModeError {
    /// The text is not four octal digits.
    #[error("invalid mode {0:?}: expected four octal digits such as \"0755\"")]
    Text(String),
    /// The number has bits outside `0o7777` (for a raw `st_mode`, use [`Mode::from_st_mode`]).
    #[error(
        "invalid mode {0:#o}: only permission, setuid, setgid and sticky bits (0o7777) are allowed"
    )]
    Bits(u32),
}

impl Mode {
    /// A mode from permission bits; fails if any bit above `0o7777` is set.
    pub fn new(bits: u32) -> Result<Self, ModeError> {
        if bits & !MASK == 0 {
            Ok(Self(bits))
        } else {
            Err(ModeError::Bits(bits))
        }
    }

    /// The permission part of a `stat` `st_mode`, dropping the file-type bits.
    pub fn from_st_mode(st_mode: u32) -> Self {
        Self(st_mode & MASK)
    }

    /// The bits, `<= 0o7777`.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether setuid or setgid is set.
    pub fn has_setid(self) -> bool {
        self.0 & SETID != 0
    }

    /// The same mode with setuid and setgid cleared (sticky is kept).
    pub fn without_setid(self) -> Self {
        Self(self.0 & !SETID)
    }
}

impl TryFrom<u32> for Mode {
    type Error = ModeError;

    fn try_from(bits: u32) -> Result<Self, ModeError> {
        Self::new(bits)
    }
}

impl fmt::Display for Mode {
    /// Four octal digits, e.g. `0755`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mode({:04o})", self.0)
    }
}

impl FromStr for Mode {
    type Err = ModeError;

    /// Accepts exactly four ASCII octal digits.
    fn from_str(text: &str) -> Result<Self, ModeError> {
        let digits = text.as_bytes();
        if digits.len() != 4 || !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
            return Err(ModeError::Text(text.to_owned()));
        }
        let bits = digits
            .iter()
            .fold(0, |acc, d| (acc << 3) | u32::from(d - b'0'));
        // Four octal digits are at most 0o7777, so this cannot fail.
        Self::new(bits)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mode as four octal digits such as \"0755\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Mode, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Mode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Mode".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        concat!(module_path!(), "::Mode").into()
    }

    /// Exactly four octal digits, as [`FromStr`] accepts.
    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Permission bits including setuid (4000), setgid (2000) and sticky (1000), as exactly four octal digits, e.g. \"0755\". Never the file type.",
            "type": "string",
            "pattern": "^[0-7]{4}$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_four_octal_digits() {
        for (bits, text) in [
            (0o755, "0755"),
            (0o4755, "4755"),
            (0o1777, "1777"),
            (0o644, "0644"),
            (0o2711, "2711"),
            (0, "0000"),
            (0o7777, "7777"),
        ] {
            let mode = Mode::new(bits).unwrap();
            assert_eq!(mode.to_string(), text);
            assert_eq!(text.parse::<Mode>().unwrap(), mode);
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Mode>(&format!("\"{text}\"")).unwrap(),
                mode
            );
        }
    }

    #[test]
    fn invalid_strings_are_rejected() {
        for text in [
            "", "755", "00755", "0855", "0x755", "+755", " 755", "0755 ", "rwxr", "-755", "٠٧٥٥",
        ] {
            assert_eq!(
                text.parse::<Mode>(),
                Err(ModeError::Text(text.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn invalid_json_is_rejected_with_the_reason() {
        let err = serde_json::from_str::<Mode>("\"0958\"").unwrap_err();
        assert!(err.to_string().contains("invalid mode \"0958\""), "{err}");
        let err = serde_json::from_str::<Mode>("493").unwrap_err();
        assert!(err.to_string().contains("four octal digits"), "{err}");
    }

    #[test]
    fn bits_beyond_permissions_are_rejected_or_masked() {
        assert_eq!(Mode::new(0o10000), Err(ModeError::Bits(0o10000)));
        assert_eq!(Mode::try_from(0o100644), Err(ModeError::Bits(0o100644)));
        // A regular setuid file's st_mode.
        assert_eq!(Mode::from_st_mode(0o104755).bits(), 0o4755);
    }

    #[test]
    fn setid_helpers() {
        let mode = Mode::new(0o7755).unwrap();
        assert!(mode.has_setid());
        assert_eq!(mode.without_setid().to_string(), "1755");
        assert!(!Mode::new(0o1777).unwrap().has_setid());
    }
}
