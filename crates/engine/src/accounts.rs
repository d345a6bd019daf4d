//! The jail's own `/etc/passwd` and `/etc/group`, synthesized from the
//! host's instead of copied whole.
//!
//! Copying the host's databases would show every host account to the jail.
//! [`Accounts::synthesize`] writes only the accounts a jail needs ([`Needed`]):
//!
//! - **root** (uid 0 in passwd, gid 0 in group), always;
//! - users asked for by uid or by name (the run's `--user`, the owners of
//!   the files in the root, `--keep-user`), and the **primary group** of
//!   every kept user;
//! - groups asked for by gid or by name (`--group`, supplementary groups,
//!   the groups of the files in the root, `--keep-group`).
//!
//! What a kept entry shows:
//!
//! - passwd: name, uid, gid, home and shell as on the host; the password
//!   field is always `x` (a hash a host keeps in passwd is never copied) and
//!   the gecos field is **empty** (it holds real names, rooms and phone
//!   numbers that no program needs). Home is kept: a service's home such as
//!   `/var/www` or `/nonexistent` is what the service expects, and a kept
//!   human user's home names nobody who is not already named by the entry.
//! - group: name and gid as on the host; the password field is always `x`;
//!   the member list keeps only members who are themselves kept users.
//!
//! Lines keep the host's order, except that the root entry comes first.
//! Each output line ends with a newline. When a uid is shared by several
//! host entries, the first one is kept (the one `getpwuid` returns); the same
//! holds for gids and names. Accounts that were asked for and that the host
//! lacks are listed in [`Synthesized::missing`], never an error.
//!
//! Parsing is tolerant and never panics: blank lines and lines starting with
//! `#` are ignored (as glibc's `files` backend does); lines with the wrong
//! number of fields, a uid or gid that is not a decimal `u32`, an empty name,
//! NIS `+`/`-` entries, or bytes that are not UTF-8 are skipped and counted
//! ([`Accounts::skipped`]).

use std::collections::{BTreeSet, HashSet};
use std::io;
use std::path::Path;

/// The host's user database.
const HOST_PASSWD: &str = "/etc/passwd";
/// The host's group database.
const HOST_GROUP: &str = "/etc/group";

/// Which accounts a jail needs.
#[derive(Debug, Default, Clone)]
pub struct Needed {
    pub uids: BTreeSet<u32>,
    pub gids: BTreeSet<u32>,
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

/// One parsed `/etc/passwd` line (the password and gecos fields are not
/// kept: they are never written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
    shell: String,
}

/// One parsed `/etc/group` line (the password field is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// How many host lines were skipped as malformed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub passwd: usize,
    pub group: usize,
}

/// Parsed host databases (from text, so tests need no real files).
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    users: Vec<User>,
    groups: Vec<Group>,
    skipped: Skipped,
}

/// The jail's databases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synthesized {
    /// The jail's `/etc/passwd`.
    pub passwd: String,
    /// The jail's `/etc/group`.
    pub group: String,
    /// What was asked for and the host lacks: `uid 1234`, `gid 1234`,
    /// `gid 1234 (primary group of alice)`, `user alice`, `group staff`.
    pub missing: Vec<String>,
}

impl Accounts {
    /// Parses the text of a passwd and a group file. Malformed lines are
    /// skipped and counted in [`Accounts::skipped`].
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let mut accounts = Accounts::default();
        for line in passwd.lines() {
            match classify(line) {
                Line::Ignored => {}
                Line::Entry(text) => match parse_user(text) {
                    Some(user) => accounts.users.push(user),
                    None => accounts.skipped.passwd += 1,
                },
            }
        }
        for line in group.lines() {
            match classify(line) {
                Line::Ignored => {}
                Line::Entry(text) => match parse_group(text) {
                    Some(group) => accounts.groups.push(group),
                    None => accounts.skipped.group += 1,
                },
            }
        }
        accounts
    }

    /// Reads the host's `/etc/passwd` and `/etc/group`.
    pub fn read_host() -> io::Result<Accounts> {
        Accounts::read(Path::new(HOST_PASSWD), Path::new(HOST_GROUP))
    }

    /// Reads a passwd and a group file. Lines that are not UTF-8 are skipped
    /// and counted like other malformed lines; an error names the file.
    pub fn read(passwd: &Path, group: &Path) -> io::Result<Accounts> {
        let (passwd_text, passwd_bad) = read_lines(passwd)?;
        let (group_text, group_bad) = read_lines(group)?;
        let mut accounts = Accounts::parse(&passwd_text, &group_text);
        accounts.skipped.passwd += passwd_bad;
        accounts.skipped.group += group_bad;
        Ok(accounts)
    }

    /// How many lines of each file were skipped as malformed.
    pub fn skipped(&self) -> Skipped {
        self.skipped
    }

    /// User `name`: its uid and its line as [`Accounts::synthesize`]
    /// writes it (no password, no gecos).
    pub(crate) fn user(&self, name: &str) -> Option<(u32, String)> {
        self.users.iter().find(|u| u.name == name).map(|u| {
            let line = format!("{}:x:{}:{}::{}:{}", u.name, u.uid, u.gid, u.home, u.shell);
            (u.uid, line)
        })
    }

    /// Group `name`: its gid and its line without members.
    pub(crate) fn group(&self, name: &str) -> Option<(u32, String)> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| (g.gid, format!("{}:x:{}:", g.name, g.gid)))
    }

    /// The host's user names, in the host's order, each once.
    pub(crate) fn user_names(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.users
            .iter()
            .map(|u| u.name.as_str())
            .filter(|n| seen.insert(*n))
            .collect()
    }

    /// The host's group names, in the host's order, each once.
    pub(crate) fn group_names(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.groups
            .iter()
            .map(|g| g.name.as_str())
            .filter(|n| seen.insert(*n))
            .collect()
    }

    /// The jail's files: root always; users by uid or name; a user's
    /// primary group comes along; groups by gid or name.
    pub fn synthesize(&self, needed: &Needed) -> Synthesized {
        let mut missing = Vec::new();

        // Users: indexes into `self.users`.
        let mut kept_users = BTreeSet::new();
        let uids = std::iter::once(0).chain(needed.uids.iter().copied());
        for uid in uids.collect::<BTreeSet<_>>() {
            match self.users.iter().position(|u| u.uid == uid) {
                Some(i) => {
                    kept_users.insert(i);
                }
                None => missing.push(format!("uid {uid}")),
            }
        }
        for name in &needed.users {
            match self.users.iter().position(|u| &u.name == name) {
                Some(i) => {
                    kept_users.insert(i);
                }
                None => missing.push(format!("user {name}")),
            }
        }

        // Groups: asked for, then the primary groups of kept users.
        let mut kept_groups = BTreeSet::new();
        let gids = std::iter::once(0).chain(needed.gids.iter().copied());
        for gid in gids.collect::<BTreeSet<_>>() {
            match self.groups.iter().position(|g| g.gid == gid) {
                Some(i) => {
                    kept_groups.insert(i);
                }
                None => missing.push(format!("gid {gid}")),
            }
        }
        for name in &needed.groups {
            match self.groups.iter().position(|g| &g.name == name) {
                Some(i) => {
                    kept_groups.insert(i);
                }
                None => missing.push(format!("group {name}")),
            }
        }
        for &i in &kept_users {
            let user = &self.users[i];
            match self.groups.iter().position(|g| g.gid == user.gid) {
                Some(g) => {
                    kept_groups.insert(g);
                }
                None => {
                    let gid_missing = format!("gid {}", user.gid);
                    // Already reported when asked for by gid.
                    if !missing.contains(&gid_missing) {
                        missing.push(format!("{gid_missing} (primary group of {})", user.name));
                    }
                }
            }
        }

        let kept_names: HashSet<&str> = kept_users
            .iter()
            .map(|&i| self.users[i].name.as_str())
            .collect();

        let mut passwd = String::new();
        for i in root_first(&kept_users, |i| self.users[i].uid == 0) {
            let u = &self.users[i];
            passwd.push_str(&format!(
                "{}:x:{}:{}::{}:{}\n",
                u.name, u.uid, u.gid, u.home, u.shell
            ));
        }
        let mut group = String::new();
        for i in root_first(&kept_groups, |i| self.groups[i].gid == 0) {
            let g = &self.groups[i];
            let members: Vec<&str> = g
                .members
                .iter()
                .map(String::as_str)
                .filter(|m| kept_names.contains(m))
                .collect();
            group.push_str(&format!("{}:x:{}:{}\n", g.name, g.gid, members.join(",")));
        }

        Synthesized {
            passwd,
            group,
            missing,
        }
    }
}

/// The kept indexes in host order, with the first root entry moved first.
fn root_first(kept: &BTreeSet<usize>, is_root: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut order: Vec<usize> = kept.iter().copied().collect();
    if let Some(pos) = order.iter().position(|&i| is_root(i)) {
        let root = order.remove(pos);
        order.insert(0, root);
    }
    order
}

/// What a line of either database is.
enum Line<'a> {
    /// Blank or a `#` comment.
    Ignored,
    /// An entry to parse, leading blanks removed.
    Entry(&'a str),
}

fn classify(line: &str) -> Line<'_> {
    let text = line.trim_start_matches([' ', '\t']);
    if text.is_empty() || text.starts_with('#') {
        Line::Ignored
    } else {
        Line::Entry(text)
    }
}

/// `name:password:uid:gid:gecos:home:shell`.
fn parse_user(line: &str) -> Option<User> {
    let fields: Vec<&str> = line.split(':').collect();
    let [name, _password, uid, gid, _gecos, home, shell] = fields.as_slice() else {
        return None;
    };
    Some(User {
        name: account_name(name)?,
        uid: number(uid)?,
        gid: number(gid)?,
        home: (*home).to_string(),
        shell: (*shell).to_string(),
    })
}

/// `name:password:gid:member,member…`.
fn parse_group(line: &str) -> Option<Group> {
    let fields: Vec<&str> = line.split(':').collect();
    let [name, _password, gid, members] = fields.as_slice() else {
        return None;
    };
    Some(Group {
        name: account_name(name)?,
        gid: number(gid)?,
        members: members
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// A local account name: not empty, not a NIS `+`/`-` entry.
fn account_name(name: &str) -> Option<String> {
    if name.is_empty() || name.starts_with(['+', '-']) {
        None
    } else {
        Some(name.to_string())
    }
}

/// A decimal id: ASCII digits only (no sign, no blanks), fitting a `u32`.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The UTF-8 lines of a file joined by newlines, and how many lines were
/// dropped because they were not UTF-8.
fn read_lines(path: &Path) -> io::Result<(String, usize)> {
    let bytes = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return Ok((text, 0)),
        Err(e) => e.into_bytes(),
    };
    let mut text = String::new();
    let mut dropped = 0;
    for line in bytes.split(|&b| b == b'\n') {
        match std::str::from_utf8(line) {
            Ok(line) => {
                text.push_str(line);
                text.push('\n');
            }
            Err(_) => dropped += 1,
        }
    }
    Ok((text, dropped))
}

#[derive(Debug, Clone)]
pub enum AccountDbs {
    /// Written with only the accounts the jail needs.
    Synthesize {
        host: Accounts,
        /// Names kept in any case: `--user`/`--keep-user`.
        users: BTreeSet<String>,
        /// `--group`/`--keep-group`.
        groups: BTreeSet<String>,
    },
    /// Copied from the host whole (`--passwd copy`).
    Copy,
}

pub(crate) const DATABASES: [&str; 2] = ["/etc/passwd", "/etc/group"];

/// True for the two files this module writes.
pub(crate) fn is_account_db(path: &Path) -> bool {
    DATABASES.iter().any(|db| path == Path::new(db))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 12's defaults, with a human user and a group listing members.
    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
games:x:5:60:games:/usr/games:/usr/sbin/nologin
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice Example,,,:/home/alice:/bin/bash
";

    const GROUP: &str = "\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:alice,www-data
tty:x:5:
sudo:x:27:alice
www-data:x:33:
games:x:60:
nogroup:x:65534:
alice:x:1000:
";

    fn needed() -> Needed {
        Needed::default()
    }

    #[test]
    fn uid_and_gid_keep_exactly_what_is_needed() {
        let accounts = Accounts::parse(PASSWD, GROUP);
        assert_eq!(accounts.skipped(), Skipped::default());
        let mut n = needed();
        n.uids.insert(33);
        n.gids.insert(4);
        let out = accounts.synthesize(&n);
        assert_eq!(
            out.passwd,
            "root:x:0:0::/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n"
        );
        // adm keeps www-data (kept) and drops alice (not kept).
        assert_eq!(out.group, "root:x:0:\nadm:x:4:www-data\nwww-data:x:33:\n");
        assert!(out.missing.is_empty(), "{:?}", out.missing);
        assert!(!out.passwd.contains("alice") && !out.group.contains("alice"));
        assert!(!out.passwd.contains("Alice Example"));
    }

    #[test]
    fn names_keep_users_and_groups() {
        let accounts = Accounts::parse(PASSWD, GROUP);
        let mut n = needed();
        n.users.insert("alice".into());
        n.groups.insert("sudo".into());
        let out = accounts.synthesize(&n);
        assert_eq!(
            out.passwd,
            "root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
        );
        // alice's primary group comes along; sudo keeps alice as a member.
        assert_eq!(out.group, "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n");
        assert!(out.missing.is_empty(), "{:?}", out.missing);
    }

    #[test]
    fn unknown_ids_and_names_are_reported() {
        let accounts = Accounts::parse(PASSWD, GROUP);
        let mut n = needed();
        n.uids.insert(1234);
        n.gids.insert(4321);
        n.users.insert("mallory".into());
        n.groups.insert("wheel".into());
        let out = accounts.synthesize(&n);
        assert_eq!(
            out.missing,
            ["uid 1234", "user mallory", "gid 4321", "group wheel"]
        );
        assert_eq!(out.passwd, "root:x:0:0::/root:/bin/bash\n");
        assert_eq!(out.group, "root:x:0:\n");
    }

    #[test]
    fn a_primary_group_the_host_lacks_is_reported() {
        let accounts = Accounts::parse(
            "root:x:0:0::/root:/bin/sh\nsvc:x:7:77::/:/bin/false\n",
            "root:x:0:\n",
        );
        let mut n = needed();
        n.uids.insert(7);
        let out = accounts.synthesize(&n);
        assert_eq!(out.missing, ["gid 77 (primary group of svc)"]);
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let passwd = "\
# a comment
root:x:0:0:root:/root:/bin/bash

short:x:1:1
baduid:x:abc:1::/:/bin/sh
signed:x:+5:1::/:/bin/sh
huge:x:4294967296:1::/:/bin/sh
:x:9:9::/:/bin/sh
+nis::::::
toomany:x:8:8::/:/bin/sh:extra
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
";
        let group = "root:x:0:\nbroken\nwww-data:x:33:\nneg:x:-1:\n";
        let accounts = Accounts::parse(passwd, group);
        assert_eq!(
            accounts.skipped(),
            Skipped {
                passwd: 7,
                group: 2
            }
        );
        let mut n = needed();
        n.uids.insert(33);
        let out = accounts.synthesize(&n);
        assert_eq!(
            out.passwd,
            "root:x:0:0::/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n"
        );
        assert_eq!(out.group, "root:x:0:\nwww-data:x:33:\n");
    }

    #[test]
    fn root_comes_first_and_hashes_are_not_copied() {
        let passwd =
            "svc:$6$salt$hash:5:5:Service:/srv:/bin/sh\nroot:$6$x$y:0:0:root:/root:/bin/sh\n";
        let group = "svc:secret:5:root,svc,eve\nroot:x:0:svc\n";
        let mut n = needed();
        n.uids.insert(5);
        let out = Accounts::parse(passwd, group).synthesize(&n);
        assert_eq!(
            out.passwd,
            "root:x:0:0::/root:/bin/sh\nsvc:x:5:5::/srv:/bin/sh\n"
        );
        assert_eq!(out.group, "root:x:0:svc\nsvc:x:5:root,svc\n");
    }

    #[test]
    fn the_first_entry_of_a_shared_uid_is_kept() {
        let passwd = "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/csh\n";
        let out = Accounts::parse(passwd, "root:x:0:\n").synthesize(&needed());
        assert_eq!(out.passwd, "root:x:0:0::/root:/bin/sh\n");
    }

    #[test]
    fn read_skips_lines_that_are_not_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let passwd = dir.path().join("passwd");
        let group = dir.path().join("group");
        std::fs::write(
            &passwd,
            b"root:x:0:0::/root:/bin/sh\n\xff\xfe:x:5:5::/:/bin/sh\n",
        )
        .expect("write passwd");
        std::fs::write(&group, b"root:x:0:\n").expect("write group");
        let accounts = Accounts::read(&passwd, &group).expect("read");
        assert_eq!(
            accounts.skipped(),
            Skipped {
                passwd: 1,
                group: 0
            }
        );
        let missing = dir.path().join("nope");
        let err = Accounts::read(&missing, &group).expect_err("missing file");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn host_files_leak_no_unneeded_user() {
        let accounts = Accounts::read_host().expect("read /etc/passwd and /etc/group");
        let host_passwd = std::fs::read_to_string(HOST_PASSWD).expect("read /etc/passwd");
        let out = accounts.synthesize(&needed());
        assert!(!out.passwd.is_empty(), "the host has a root entry");
        for line in out.passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            assert_eq!(fields.len(), 7, "{line}");
            assert_eq!(fields[1], "x", "{line}");
            assert_eq!(fields[2], "0", "only root is needed: {line}");
            assert_eq!(fields[4], "", "{line}");
        }
        for line in out.group.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            assert_eq!(fields.len(), 4, "{line}");
            assert_eq!(fields[1], "x", "{line}");
            assert_eq!(fields[2], "0", "only root's group is needed: {line}");
        }
        // Every other host user is absent (e.g. `games` on Debian).
        for line in host_passwd.lines() {
            let Some(user) = parse_user(line) else {
                continue;
            };
            if user.uid != 0 {
                let prefix = format!("{}:", user.name);
                assert!(
                    !out.passwd.lines().any(|l| l.starts_with(&prefix)),
                    "{} leaked",
                    user.name
                );
            }
        }
        if host_passwd.lines().any(|l| l.starts_with("games:")) {
            assert!(!out.passwd.contains("games"));
        }
    }
}
