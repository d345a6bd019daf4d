//! The record of a root jailtrace is still making: written beside the
//! root (`ROOT.unfinished`, outside it, where the program cannot see or
//! change it) before anything is written into a new or emptied root, and
//! removed once the manifest is written.
//!
//! It lets a later run recognise a root that an earlier run made but never
//! finished (the program did not start, the run was interrupted or
//! killed): such a root is jailtrace's to wipe and start again, whereas a
//! non-empty root that neither a manifest nor this record describes is
//! somebody else's and is never touched.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::file::{write_atomic, Durability};
use crate::{Error, PathText};

/// What the record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfinished {
    /// The absolute host path of the root being made.
    pub root: PathText,
    /// The manifest the run was to write.
    pub manifest: PathText,
    /// When the run that made it started, in seconds since the Unix epoch.
    pub created_unix: u64,
    /// The version of jailtrace that made it.
    pub tool_version: String,
}

impl Unfinished {
    /// Where the record of the root `root` lives.
    pub fn path_for(root: &Path) -> PathBuf {
        let mut name = root.as_os_str().to_os_string();
        name.push(".unfinished");
        PathBuf::from(name)
    }

    /// The record of `root`, if there is a readable one that names it.
    pub fn read(root: &Path) -> Option<Unfinished> {
        let bytes = std::fs::read(Unfinished::path_for(root)).ok()?;
        let record: Unfinished = serde_json::from_slice(&bytes).ok()?;
        (record.root.as_path() == root).then_some(record)
    }

    /// Writes the record of [`Unfinished::root`] beside it, atomically but
    /// without waiting for the disk: every run writes it before it starts,
    /// where the `fsync`s would cost more than a small program's whole
    /// run on some file systems. After a power loss the record may be gone
    /// while files the run placed are not; the root then reads as somebody
    /// else's and is left alone, the safe side of the error.
    pub fn write(&self) -> Result<(), Error> {
        let mut json = serde_json::to_string_pretty(self).unwrap_or_default();
        json.push('\n');
        let path = Unfinished::path_for(self.root.as_path());
        write_atomic(&path, json.as_bytes(), Durability::Renamed)
    }

    /// Removes the record of `root`; a missing one is fine.
    pub fn remove(root: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(Unfinished::path_for(root)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_and_removed_beside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("date.jail");
        assert_eq!(Unfinished::read(&root), None);
        let record = Unfinished {
            root: PathText::from(root.as_path()),
            manifest: PathText::from(dir.path().join("date.jail.json").as_path()),
            created_unix: 1,
            tool_version: "0.1.0".into(),
        };
        record.write().unwrap();
        assert!(dir.path().join("date.jail.unfinished").is_file());
        assert_eq!(Unfinished::read(&root), Some(record.clone()));
        // Written again (without the `fsync`s), it replaces the last one
        // whole, and no temporary file stays beside the root.
        let later = Unfinished {
            created_unix: 2,
            ..record
        };
        later.write().unwrap();
        assert_eq!(Unfinished::read(&root), Some(later));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["date.jail.unfinished"]);
        // A record that names another root (a moved directory) is not this root's.
        assert_eq!(Unfinished::read(&dir.path().join("other")), None);
        Unfinished::remove(&root).unwrap();
        Unfinished::remove(&root).unwrap();
        assert_eq!(Unfinished::read(&root), None);
    }
}
