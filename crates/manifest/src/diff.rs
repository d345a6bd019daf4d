//! Comparing two manifests: what one jail has that the other lacks, and
//! what differs between the entries they share.
//!
//! [`diff`] compares what makes the jails different, not the history of how
//! they were made:
//! - **entries** by path: added, removed, or changed in `kind`, `mode`,
//!   `uid`, `gid`, `size`, `sha256`, `target`, `rdev`, `hardlink_to` or
//!   `setuid_stripped`. The `reason` is not compared (pids and run numbers
//!   differ on every run).
//! - **mounts** by mount point: added, removed, or changed in `fstype` or
//!   `options`.
//! - **programs** by name: added, removed, or changed in `argv`,
//!   `executable`, `cwd`, `env` (redacted values as `NAME=<redacted>`),
//!   `user`, `group`, `ready`, `exercises` (their order counts: they run
//!   in order). Every field of [`crate::Command`] is compared.
//!
//! `runs`, `absent`, `denied`, `sockets`, `root`, `created_unix` and
//! `tool_version` are not compared.
//!
//! Guarantees: paths match as jail paths, component by component, so
//! `/usr//lib/` and `/usr/lib` are the same entry; if a manifest lists a path
//! twice, its first record counts. Entry and mount differences are sorted by
//! path (byte order of components), so the result does not depend on the
//! order in which either manifest placed things. Never panics.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::{DeviceNumber, Entry, EntryKind, Exercise, Manifest, Mode, Mount, PathText};

/// A field's value in the first manifest (`old`) and in the second (`new`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed<T> {
    /// The value in the first manifest.
    pub old: T,
    /// The value in the second manifest.
    pub new: T,
}

/// Everything that differs between two manifests (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Programs added, removed or changed, sorted by name.
    pub programs: Vec<ProgramDiff>,
    /// Entries added, removed or changed, sorted by path.
    pub entries: Vec<EntryDiff>,
    /// Mounts added, removed or changed, sorted by mount point.
    pub mounts: Vec<MountDiff>,
}

impl Diff {
    /// True when the two manifests describe the same jail.
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty() && self.entries.is_empty() && self.mounts.is_empty()
    }
}

/// One program that differs. JSON: `{"change": "added", "name": …}`,
/// `{"change": "removed", "name": …}` or
/// `{"change": "changed", "name": …, "fields": [{"field": "argv", …}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ProgramDiff {
    /// Only in the second manifest.
    Added { name: String },
    /// Only in the first manifest.
    Removed { name: String },
    /// In both, started differently.
    Changed {
        name: String,
        /// The changed fields, in field order.
        fields: Vec<CommandChange>,
    },
}

/// A changed field of [`crate::Command`]. JSON: `{"field": "argv", "old": …, "new": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum CommandChange {
    /// The argument vector.
    Argv(Changed<Vec<PathText>>),
    /// The program's host path.
    Executable(Changed<PathText>),
    /// The working directory in the jail.
    Cwd(Changed<PathText>),
    /// The environment.
    Env(Changed<Vec<PathText>>),
    /// The user the program ran as.
    User(Changed<Option<String>>),
    /// The group the program ran as.
    Group(Changed<Option<String>>),
    /// The supplementary groups it ran with besides its user's.
    SupplementaryGroups(Changed<Vec<String>>),
    /// The file mode creation mask it started with.
    Umask(Changed<Option<String>>),
    /// The readiness conditions.
    Ready(Changed<Vec<String>>),
    /// What was done to the program once it was ready, in order.
    Exercises(Changed<Vec<Exercise>>),
    /// The programs it runs with.
    With(Changed<Vec<String>>),
    /// The commands run before it.
    Before(Changed<Vec<crate::Before>>),
}

/// One entry that differs. JSON: `{"change": "added", "entry": {…}}`,
/// `{"change": "removed", "entry": {…}}` or
/// `{"change": "changed", "path": …, "fields": [{"field": "sha256", "old": …, "new": …}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum EntryDiff {
    /// Only in the second manifest.
    Added {
        /// The entry, as in the second manifest.
        entry: Entry,
    },
    /// Only in the first manifest.
    Removed {
        /// The entry, as in the first manifest.
        entry: Entry,
    },
    /// In both, with different fields.
    Changed {
        /// The path, as spelled in the second manifest.
        path: PathText,
        /// What changed, in field order; never empty.
        fields: Vec<EntryChange>,
    },
}

impl EntryDiff {
    /// The path of the entry this difference is about.
    pub fn path(&self) -> &PathText {
        match self {
            EntryDiff::Added { entry } | EntryDiff::Removed { entry } => &entry.path,
            EntryDiff::Changed { path, .. } => path,
        }
    }
}

/// A changed field of an [`Entry`]. JSON: `{"field": "mode", "old": "0755", "new": "0700"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum EntryChange {
    /// File, directory, symlink or device.
    Kind(Changed<EntryKind>),
    /// Permission bits.
    Mode(Changed<Mode>),
    /// Owner.
    Uid(Changed<u32>),
    /// Group.
    Gid(Changed<u32>),
    /// File size.
    Size(Changed<Option<u64>>),
    /// File content hash.
    Sha256(Changed<Option<String>>),
    /// Symlink target.
    Target(Changed<Option<PathText>>),
    /// Device number.
    Rdev(Changed<Option<DeviceNumber>>),
    /// The earlier entry a file is a hard link to.
    HardlinkTo(Changed<Option<PathText>>),
    /// Whether setuid/setgid bits were removed.
    SetuidStripped(Changed<bool>),
}

/// One mount that differs; JSON shaped like [`EntryDiff`] with `mount` for `entry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MountDiff {
    /// Only in the second manifest.
    Added {
        /// The mount, as in the second manifest.
        mount: Mount,
    },
    /// Only in the first manifest.
    Removed {
        /// The mount, as in the first manifest.
        mount: Mount,
    },
    /// At the same mount point in both, with different fields.
    Changed {
        /// The mount point, as spelled in the second manifest.
        path: PathText,
        /// What changed; never empty.
        fields: Vec<MountChange>,
    },
}

impl MountDiff {
    /// The mount point this difference is about.
    pub fn path(&self) -> &PathText {
        match self {
            MountDiff::Added { mount } | MountDiff::Removed { mount } => &mount.path,
            MountDiff::Changed { path, .. } => path,
        }
    }
}

/// A changed field of a [`Mount`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum MountChange {
    /// The filesystem type.
    Fstype(Changed<String>),
    /// The mount options.
    Options(Changed<Vec<String>>),
    /// A bind's host directory.
    Source(Changed<Option<PathText>>),
}

/// Compares manifest `a` (old) with `b` (new).
pub fn diff(a: &Manifest, b: &Manifest) -> Diff {
    Diff {
        programs: by_key(&a.programs, &b.programs, |p| p.name.as_str())
            .filter_map(|pair| match pair {
                Pair::Old(p) => Some(ProgramDiff::Removed {
                    name: p.name.clone(),
                }),
                Pair::New(p) => Some(ProgramDiff::Added {
                    name: p.name.clone(),
                }),
                Pair::Both(old, new) => {
                    let fields = command_changes(&old.command, &new.command);
                    (!fields.is_empty()).then(|| ProgramDiff::Changed {
                        name: new.name.clone(),
                        fields,
                    })
                }
            })
            .collect(),
        entries: by_key(&a.entries, &b.entries, |e| e.path.as_path())
            .filter_map(|pair| match pair {
                Pair::Old(entry) => Some(EntryDiff::Removed {
                    entry: entry.clone(),
                }),
                Pair::New(entry) => Some(EntryDiff::Added {
                    entry: entry.clone(),
                }),
                Pair::Both(old, new) => {
                    let fields = entry_changes(old, new);
                    (!fields.is_empty()).then(|| EntryDiff::Changed {
                        path: new.path.clone(),
                        fields,
                    })
                }
            })
            .collect(),
        mounts: by_key(&a.mounts, &b.mounts, |m| m.path.as_path())
            .filter_map(|pair| match pair {
                Pair::Old(mount) => Some(MountDiff::Removed {
                    mount: mount.clone(),
                }),
                Pair::New(mount) => Some(MountDiff::Added {
                    mount: mount.clone(),
                }),
                Pair::Both(old, new) => {
                    let mut fields = Vec::new();
                    push_if_changed(&mut fields, &old.fstype, &new.fstype, MountChange::Fstype);
                    push_if_changed(
                        &mut fields,
                        &old.options,
                        &new.options,
                        MountChange::Options,
                    );
                    push_if_changed(&mut fields, &old.source, &new.source, MountChange::Source);
                    (!fields.is_empty()).then(|| MountDiff::Changed {
                        path: new.path.clone(),
                        fields,
                    })
                }
            })
            .collect(),
    }
}

/// A record in the old list, the new list, or both.
enum Pair<'a, T> {
    Old(&'a T),
    New(&'a T),
    Both(&'a T, &'a T),
}

/// Pairs the records of `old` and `new` by key (a path, a name), sorted
/// by key; the first record of a key that occurs twice in one list wins.
fn by_key<'a, T, K: Ord>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> impl Iterator<Item = Pair<'a, T>> {
    let mut pairs: BTreeMap<K, (Option<&'a T>, Option<&'a T>)> = BTreeMap::new();
    for record in old {
        pairs
            .entry(key(record))
            .or_default()
            .0
            .get_or_insert(record);
    }
    for record in new {
        pairs
            .entry(key(record))
            .or_default()
            .1
            .get_or_insert(record);
    }
    pairs.into_values().filter_map(|pair| match pair {
        (Some(old), Some(new)) => Some(Pair::Both(old, new)),
        (Some(old), None) => Some(Pair::Old(old)),
        (None, Some(new)) => Some(Pair::New(new)),
        // Every map value was created with one side filled in.
        (None, None) => None,
    })
}

/// Appends `wrap(Changed { old, new })` when the values differ.
fn push_if_changed<T: PartialEq + Clone, C>(
    changes: &mut Vec<C>,
    old: &T,
    new: &T,
    wrap: impl FnOnce(Changed<T>) -> C,
) {
    if old != new {
        changes.push(wrap(Changed {
            old: old.clone(),
            new: new.clone(),
        }));
    }
}

fn command_changes(a: &crate::Command, b: &crate::Command) -> Vec<CommandChange> {
    // Every field is named, so a field added to `Command` does not compile
    // until it is compared here (or said not to matter).
    let crate::Command {
        argv,
        executable,
        cwd,
        // Both compared through `environment_shown`, below.
        env: _,
        env_redacted: _,
        user,
        group,
        supplementary_groups,
        umask,
        ready,
        exercises,
        with,
        before,
    } = a;
    let mut changes = Vec::new();
    push_if_changed(&mut changes, argv, &b.argv, CommandChange::Argv);
    push_if_changed(
        &mut changes,
        executable,
        &b.executable,
        CommandChange::Executable,
    );
    push_if_changed(&mut changes, cwd, &b.cwd, CommandChange::Cwd);
    // Compared as shown, so that an older manifest's secret-looking
    // values are never printed.
    push_if_changed(
        &mut changes,
        &a.environment_shown(),
        &b.environment_shown(),
        CommandChange::Env,
    );
    push_if_changed(&mut changes, user, &b.user, CommandChange::User);
    push_if_changed(&mut changes, group, &b.group, CommandChange::Group);
    push_if_changed(
        &mut changes,
        supplementary_groups,
        &b.supplementary_groups,
        CommandChange::SupplementaryGroups,
    );
    push_if_changed(&mut changes, umask, &b.umask, CommandChange::Umask);
    push_if_changed(&mut changes, ready, &b.ready, CommandChange::Ready);
    push_if_changed(
        &mut changes,
        exercises,
        &b.exercises,
        CommandChange::Exercises,
    );
    push_if_changed(&mut changes, with, &b.with, CommandChange::With);
    push_if_changed(&mut changes, before, &b.before, CommandChange::Before);
    changes
}

fn entry_changes(a: &Entry, b: &Entry) -> Vec<EntryChange> {
    let mut changes = Vec::new();
    push_if_changed(&mut changes, &a.kind, &b.kind, EntryChange::Kind);
    push_if_changed(&mut changes, &a.mode, &b.mode, EntryChange::Mode);
    push_if_changed(&mut changes, &a.uid, &b.uid, EntryChange::Uid);
    push_if_changed(&mut changes, &a.gid, &b.gid, EntryChange::Gid);
    push_if_changed(&mut changes, &a.size, &b.size, EntryChange::Size);
    push_if_changed(&mut changes, &a.sha256, &b.sha256, EntryChange::Sha256);
    push_if_changed(&mut changes, &a.target, &b.target, EntryChange::Target);
    push_if_changed(&mut changes, &a.rdev, &b.rdev, EntryChange::Rdev);
    push_if_changed(
        &mut changes,
        &a.hardlink_to,
        &b.hardlink_to,
        EntryChange::HardlinkTo,
    );
    push_if_changed(
        &mut changes,
        &a.setuid_stripped,
        &b.setuid_stripped,
        EntryChange::SetuidStripped,
    );
    changes
}

/// Hex digits of a hash shown by [`fmt::Display`] before `…`.
const HASH_SHOWN: usize = 12;

/// Writes `field old -> new` with `show` for each value.
fn write_change<T>(
    f: &mut fmt::Formatter<'_>,
    field: &str,
    change: &Changed<T>,
    show: impl Fn(&T) -> String,
) -> fmt::Result {
    write!(f, "{field} {} -> {}", show(&change.old), show(&change.new))
}

fn show_option<T>(value: &Option<T>, show: impl Fn(&T) -> String) -> String {
    value.as_ref().map_or_else(|| "none".to_owned(), show)
}

fn show_hash(hash: &str) -> String {
    match hash.get(..HASH_SHOWN) {
        Some(prefix) if hash.len() > HASH_SHOWN => format!("{prefix}…"),
        _ => hash.to_owned(),
    }
}

fn show_list<T: fmt::Debug>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", shown.join(", "))
}

impl fmt::Display for EntryChange {
    /// For people, e.g. `sha256 6b4a45352fd0… -> 0c1d9a3e8f21…`, `mode 0755 -> 0700`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryChange::Kind(c) => write_change(f, "kind", c, |k| k.as_str().to_owned()),
            EntryChange::Mode(c) => write_change(f, "mode", c, Mode::to_string),
            EntryChange::Uid(c) => write_change(f, "uid", c, u32::to_string),
            EntryChange::Gid(c) => write_change(f, "gid", c, u32::to_string),
            EntryChange::Size(c) => write_change(f, "size", c, |v| show_option(v, u64::to_string)),
            EntryChange::Sha256(c) => {
                write_change(f, "sha256", c, |v| show_option(v, |h| show_hash(h)))
            }
            EntryChange::Target(c) => {
                write_change(f, "target", c, |v| show_option(v, PathText::to_string))
            }
            EntryChange::Rdev(c) => write_change(f, "rdev", c, |v| {
                show_option(v, |d| format!("{}:{}", d.major, d.minor))
            }),
            EntryChange::HardlinkTo(c) => {
                write_change(f, "hardlink_to", c, |v| show_option(v, PathText::to_string))
            }
            EntryChange::SetuidStripped(c) => {
                write_change(f, "setuid_stripped", c, bool::to_string)
            }
        }
    }
}

impl fmt::Display for CommandChange {
    /// For people; `env` shows only the variables added (`+`) and removed (`-`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = |v: &Option<String>| show_option(v, String::clone);
        match self {
            CommandChange::Argv(c) => write_change(f, "argv", c, |v| show_list(v)),
            CommandChange::Executable(c) => write_change(f, "executable", c, PathText::to_string),
            CommandChange::Cwd(c) => write_change(f, "cwd", c, PathText::to_string),
            CommandChange::Env(c) => {
                let added = c.new.iter().filter(|v| !c.old.contains(v));
                let removed = c.old.iter().filter(|v| !c.new.contains(v));
                let items: Vec<String> = added
                    .map(|v| format!("+{v}"))
                    .chain(removed.map(|v| format!("-{v}")))
                    .collect();
                if items.is_empty() {
                    f.write_str("env: same variables in another order")
                } else {
                    write!(f, "env: {}", items.join(", "))
                }
            }
            CommandChange::User(c) => write_change(f, "user", c, user),
            CommandChange::Group(c) => write_change(f, "group", c, user),
            CommandChange::Umask(c) => write_change(f, "umask", c, user),
            CommandChange::SupplementaryGroups(c) => {
                write_change(f, "supplementary_groups", c, |v| show_list(v))
            }
            CommandChange::Ready(c) => write_change(f, "ready", c, |v| show_list(v)),
            CommandChange::Exercises(c) => write_change(f, "exercises", c, |v| {
                let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
                format!("[{}]", shown.join(", "))
            }),
            CommandChange::With(c) => write_change(f, "with", c, |v| show_list(v)),
            CommandChange::Before(c) => write_change(f, "before", c, |v| {
                let shown: Vec<String> = v
                    .iter()
                    .map(|b| format!("{b}{}", if b.may_fail { " (may fail)" } else { "" }))
                    .collect();
                format!("[{}]", shown.join(", "))
            }),
        }
    }
}

impl fmt::Display for MountChange {
    /// For people, e.g. `options nosuid,nodev -> nosuid`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountChange::Fstype(c) => write_change(f, "fstype", c, String::clone),
            MountChange::Options(c) => write_change(f, "options", c, |v| v.join(",")),
            MountChange::Source(c) => {
                write_change(f, "source", c, |v| show_option(v, PathText::to_string))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{Cause, Reason};

    fn manifest() -> Manifest {
        let json = r#"{
          "schema_version": 1, "tool_version": "0.1.0", "created_unix": 1,
          "command": {"argv": ["/bin/date"], "executable": "/bin/date", "cwd": "/",
                      "env": ["PATH=/bin", "TZ=UTC"]},
          "root": "/tmp/a", "runs": [], "absent": [], "denied": [],
          "entries": [
            {"path": "/bin", "kind": "symlink", "mode": "0777", "uid": 0, "gid": 0,
             "target": "usr/bin", "reason": {"cause": "symlink_chain", "run": 0}},
            {"path": "/usr/bin/date", "kind": "file", "mode": "0755", "uid": 0, "gid": 0,
             "size": 1, "sha256": "1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef",
             "reason": {"cause": "executable", "run": 0}},
            {"path": "/dev/null", "kind": "device", "mode": "0666", "uid": 0, "gid": 0,
             "rdev": {"major": 1, "minor": 3}, "reason": {"cause": "runtime", "run": 0}}
          ],
          "mounts": [{"fstype": "proc", "path": "/proc", "options": ["nosuid"],
                      "reason": {"cause": "runtime", "run": 1}}]
        }"#;
        Manifest::from_slice(json.as_bytes()).unwrap()
    }

    fn entry<'a>(m: &'a mut Manifest, path: &str) -> &'a mut Entry {
        m.entries
            .iter_mut()
            .find(|e| e.path.as_path() == Path::new(path))
            .unwrap()
    }

    #[test]
    fn identical_manifests_have_no_diff() {
        let a = manifest();
        let mut b = a.clone();
        // Provenance, history and the root's location are not compared.
        b.root = PathText::from("/elsewhere");
        b.created_unix = 99;
        entry(&mut b, "/bin").reason = Reason::new(Cause::Accessed, 7);
        let d = diff(&a, &b);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(d, Diff::default());
    }

    #[test]
    fn changed_fields_are_listed_in_order() {
        let a = manifest();
        let mut b = a.clone();
        let date = entry(&mut b, "/usr/bin/date");
        date.sha256 = Some("abcd".repeat(16));
        date.size = Some(2);
        date.mode = Mode::new(0o700).unwrap();
        let d = diff(&a, &b);
        assert!(!d.is_empty());
        assert_eq!(d.entries.len(), 1, "{d:?}");
        let EntryDiff::Changed { path, fields } = &d.entries[0] else {
            panic!("not a change: {d:?}");
        };
        assert_eq!(path.as_path(), Path::new("/usr/bin/date"));
        let shown: Vec<String> = fields.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "mode 0755 -> 0700",
                "size 1 -> 2",
                "sha256 1234567890ab… -> abcdabcdabcd…"
            ]
        );
    }

    #[test]
    fn added_and_removed_entries_are_sorted_by_key() {
        let a = manifest();
        let mut b = a.clone();
        b.entries
            .retain(|e| e.path.as_path() != Path::new("/dev/null"));
        let mut lib = b.entries[1].clone();
        lib.path = PathText::from("/usr/lib/x");
        b.entries.insert(0, lib);
        let mut etc = b.entries[1].clone();
        etc.path = PathText::from("/etc/a");
        b.entries.push(etc);
        let d = diff(&a, &b);
        let listed: Vec<(&str, &Path)> = d
            .entries
            .iter()
            .map(|e| {
                let change = match e {
                    EntryDiff::Added { .. } => "added",
                    EntryDiff::Removed { .. } => "removed",
                    EntryDiff::Changed { .. } => "changed",
                };
                (change, e.path().as_path())
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("removed", Path::new("/dev/null")),
                ("added", Path::new("/etc/a")),
                ("added", Path::new("/usr/lib/x")),
            ]
        );
        // The reverse comparison swaps added and removed.
        let back = diff(&b, &a);
        assert!(matches!(&back.entries[0], EntryDiff::Added { .. }));
        assert!(matches!(&back.entries[1], EntryDiff::Removed { .. }));
    }

    #[test]
    fn paths_match_as_jail_paths() {
        let a = manifest();
        let mut b = a.clone();
        entry(&mut b, "/usr/bin/date").path = PathText::from("/usr//bin/date/");
        assert!(diff(&a, &b).is_empty());
        // A different path (not a spelling) is a removal and an addition.
        entry(&mut b, "/usr/bin/date").path = PathText::from("/usr/bin/date2");
        assert_eq!(diff(&a, &b).entries.len(), 2);
    }

    #[test]
    fn kind_target_and_device_changes() {
        let a = manifest();
        let mut b = a.clone();
        let bin = entry(&mut b, "/bin");
        bin.target = Some(PathText::from("/usr/bin"));
        let null = entry(&mut b, "/dev/null");
        null.rdev = Some(DeviceNumber { major: 1, minor: 5 });
        null.kind = EntryKind::File;
        let shown: Vec<String> = diff(&a, &b)
            .entries
            .iter()
            .flat_map(|e| match e {
                EntryDiff::Changed { fields, .. } => {
                    fields.iter().map(ToString::to_string).collect::<Vec<_>>()
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "target usr/bin -> /usr/bin",
                "kind device -> file",
                "rdev 1:3 -> 1:5"
            ]
        );
    }

    #[test]
    fn command_and_mount_changes() {
        let a = manifest();
        let mut b = a.clone();
        b.programs[0].command.argv.push(PathText::from("+%s"));
        b.programs[0].command.env = vec![PathText::from("TZ=UTC"), PathText::from("LANG=C")];
        b.mounts[0].options.push("nodev".into());
        let mut sys = b.mounts[0].clone();
        sys.path = PathText::from("/sys");
        sys.fstype = "sysfs".into();
        b.mounts.push(sys);
        let d = diff(&a, &b);
        let [ProgramDiff::Changed { name, fields }] = &d.programs[..] else {
            panic!("not one changed program: {d:?}");
        };
        assert_eq!(name, "date");
        let shown: Vec<String> = fields.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"argv ["/bin/date"] -> ["/bin/date", "+%s"]"#,
                "env: +LANG=C, -PATH=/bin"
            ]
        );
        assert_eq!(d.mounts.len(), 2, "{d:?}");
        let MountDiff::Changed { fields, .. } = &d.mounts[0] else {
            panic!("{d:?}");
        };
        assert_eq!(fields[0].to_string(), "options nosuid -> nosuid,nodev");
        assert!(matches!(&d.mounts[1], MountDiff::Added { mount } if mount.fstype == "sysfs"));
    }

    #[test]
    fn exercises_readiness_and_user_are_compared_per_program() {
        let mut a = manifest();
        let mut web = a.programs[0].clone();
        web.name = "web".into();
        web.command.ready = vec!["tcp:127.0.0.1:80".into()];
        web.command.exercises = vec![
            Exercise::Probe("http://127.0.0.1/".into()),
            Exercise::Command("curl -fsS http://127.0.0.1/a".into()),
        ];
        a.programs.push(web);
        let mut b = a.clone();
        // Only the second program's exercises change: a step added, and
        // the two old ones swapped (they run in order, so order counts).
        b.programs[1].command.exercises = vec![
            Exercise::Command("curl -fsS http://127.0.0.1/a".into()),
            Exercise::Probe("http://127.0.0.1/".into()),
            Exercise::Probe("http://127.0.0.1/page.php".into()),
        ];
        let d = diff(&a, &b);
        let [ProgramDiff::Changed { name, fields }] = &d.programs[..] else {
            panic!("not one changed program: {d:?}");
        };
        assert_eq!(name, "web", "paired by name: date is unchanged");
        let shown: Vec<String> = fields.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["exercises [probe http://127.0.0.1/, `curl -fsS http://127.0.0.1/a`] -> \
              [`curl -fsS http://127.0.0.1/a`, probe http://127.0.0.1/, probe http://127.0.0.1/page.php]"]
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json["programs"][0]["fields"][0],
            serde_json::json!({
                "field": "exercises",
                "old": [{"probe": "http://127.0.0.1/"}, {"command": "curl -fsS http://127.0.0.1/a"}],
                "new": [
                    {"command": "curl -fsS http://127.0.0.1/a"},
                    {"probe": "http://127.0.0.1/"},
                    {"probe": "http://127.0.0.1/page.php"}
                ]
            })
        );

        // Exercises removed, readiness and user changed: listed in field order.
        let mut c = a.clone();
        c.programs[1].command.exercises.clear();
        c.programs[1].command.ready = vec!["http://127.0.0.1/health".into()];
        c.programs[1].command.user = Some("www-data".into());
        let d = diff(&a, &c);
        let [ProgramDiff::Changed { name, fields }] = &d.programs[..] else {
            panic!("not one changed program: {d:?}");
        };
        assert_eq!(name, "web");
        let shown: Vec<String> = fields.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "user none -> www-data",
                r#"ready ["tcp:127.0.0.1:80"] -> ["http://127.0.0.1/health"]"#,
                "exercises [probe http://127.0.0.1/, `curl -fsS http://127.0.0.1/a`] -> []",
            ]
        );
        // The same exercises under another program's name are that
        // program's: a removal and an addition, not a change.
        let mut renamed = a.clone();
        renamed.programs[1].name = "www".into();
        assert_eq!(
            diff(&a, &renamed).programs,
            [
                ProgramDiff::Removed { name: "web".into() },
                ProgramDiff::Added { name: "www".into() },
            ]
        );
    }

    #[test]
    fn programs_are_paired_by_name() {
        let a = manifest();
        let mut b = a.clone();
        let mut ls = b.programs[0].clone();
        ls.name = "ls".into();
        b.programs.push(ls);
        let d = diff(&a, &b);
        assert_eq!(d.programs, [ProgramDiff::Added { name: "ls".into() }]);
        assert_eq!(
            diff(&b, &a).programs,
            [ProgramDiff::Removed { name: "ls".into() }]
        );
    }

    #[test]
    fn json_form() {
        let a = manifest();
        let mut b = a.clone();
        entry(&mut b, "/usr/bin/date").uid = 1;
        b.entries.remove(0);
        let json = serde_json::to_value(diff(&a, &b)).unwrap();
        assert_eq!(json["programs"], serde_json::json!([]));
        assert_eq!(json["entries"][0]["change"], "removed");
        assert_eq!(json["entries"][0]["entry"]["path"], "/bin");
        assert_eq!(
            json["entries"][1],
            serde_json::json!({
                "change": "changed",
                "path": "/usr/bin/date",
                "fields": [{"field": "uid", "old": 0, "new": 1}]
            })
        );
    }
}
