//! `/etc/passwd` and `/etc/group` in the jail: synthesized, not copied.
//!
//! A program looks users up by name before it switches to them (nginx's
//! `user www-data`), and no syscall says which name it looked up. So while
//! a copying run lasts, the jail's files hold the host's accounts; after
//! the run they are rewritten by [`crate::accounts`] with only the accounts
//! the jail needs: root, the run's user and group, every user and group id
//! the program switched to (`setuid` … `setresgid`, traced), the owners and
//! groups of every entry placed, and `--keep-user`/`--keep-group` names.
//! The verifying run then proves the program starts with those alone. With
//! `--passwd copy` the host's files are copied whole, as older tools did.

use std::path::Path;

use jailtrace_manifest::{AccountKind, Cause, Entry, EntryKind, Mode, PathText};
use jailtrace_rootfs::{self as rootfs, Attrs};

use crate::accounts::{AccountDbs, Needed, DATABASES};
use crate::session::{Observer, Session, Who};

/// How the jail gets its user and group databases.
impl Session {
    pub(crate) fn needed(&self) -> Option<Needed> {
        let AccountDbs::Synthesize { users, groups, .. } = &self.account_dbs else {
            return None;
        };
        let mut needed = Needed {
            users: users.clone(),
            groups: groups.clone(),
            ..Default::default()
        };
        for e in &self.entries {
            needed.uids.insert(e.uid);
            needed.gids.insert(e.gid);
        }
        needed.uids.extend(&self.ran_as_uids);
        needed.gids.extend(&self.ran_as_gids);
        for found in &self.found_accounts {
            match found.kind {
                AccountKind::User => needed.users.insert(found.name.clone()),
                AccountKind::Group => needed.groups.insert(found.name.clone()),
            };
        }
        if let Some((users, groups)) = &self.trial_accounts {
            needed.users.extend(users.iter().cloned());
            needed.groups.extend(groups.iter().cloned());
        }
        Some(needed)
    }

    /// Writes database `path` (its parent must exist): the host's whole
    /// file while a copying run lasts (`during_run`), the synthesized one
    /// after it; records or updates its entry. `Ok(false)` with
    /// `--passwd copy`.
    pub(crate) fn synthesize_db(
        &mut self,
        path: &Path,
        during_run: bool,
        who: &Who,
        observer: &mut dyn Observer,
    ) -> Result<bool, rootfs::Error> {
        if self.read_only {
            return Ok(false);
        }
        let (Some(needed), AccountDbs::Synthesize { host, .. }) =
            (self.needed(), &self.account_dbs)
        else {
            return Ok(false);
        };
        let text = if during_run {
            let source = self.host.path_of(path);
            std::fs::read_to_string(&source).map_err(|e| rootfs::Error::Host {
                op: "read",
                path: source,
                source: e,
            })?
        } else {
            let made = host.synthesize(&needed);
            if path == Path::new("/etc/passwd") {
                made.passwd
            } else {
                made.group
            }
        };
        let attrs = Attrs {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: None,
        };
        let copied = self.root.write_file(path, text.as_bytes(), &attrs)?;
        // While a run lasts the file holds the host's accounts: that
        // content is not the jail's, so none is recorded.
        let content = (!during_run).then(|| PathText::from(text.as_str()));
        if let Some(entry) = self.entry_mut(path) {
            entry.size = Some(copied.bytes);
            entry.sha256 = Some(copied.sha256.wait());
            entry.content = content;
            return Ok(true);
        }
        let reason = who.reason(Cause::Synthesized, self.run, None);
        let mode = Mode::from_st_mode(attrs.mode);
        let mut entry = Entry::new(path.into(), EntryKind::File, mode, 0, 0, reason);
        entry.size = Some(copied.bytes);
        entry.sha256 = Some(copied.sha256.wait());
        entry.content = content;
        self.record(entry, observer);
        Ok(true)
    }

    /// After a copying run: write the databases again with every owner the
    /// root now has (`during_run` false); before one: give the run the
    /// host's accounts again (`during_run` true).
    pub(crate) fn refresh_account_dbs(
        &mut self,
        during_run: bool,
        observer: &mut dyn Observer,
    ) -> Result<(), rootfs::Error> {
        for db in DATABASES {
            let path = Path::new(db);
            let synthesized = self
                .entries
                .iter()
                .any(|e| e.path.as_path() == path && e.reason.cause == Cause::Synthesized);
            if synthesized {
                let who = Who::default();
                self.synthesize_db(path, during_run, &who, observer)?;
            }
        }
        Ok(())
    }
}

impl Session {
    /// `place` for a synthesized database: its directory as on the host,
    /// then the written file (a miss, in a verifying run).
    pub(crate) fn place_account_db(
        &mut self,
        path: &Path,
        who: &Who,
        observer: &mut dyn Observer,
    ) -> Result<crate::session::Placement, rootfs::Error> {
        use crate::session::Placement;
        if self.root.lstat(path)?.is_some() && self.has_entry(path) {
            return Ok(Placement::Present);
        }
        if !self.copying {
            self.record_miss(path, rootfs::Follow::Yes, false, who);
            return Ok(Placement::Placed);
        }
        let parent = rootfs::plan_parent(&self.root, &self.host, path)?;
        for step in &parent.steps {
            let reason = who.reason(Cause::Parent, self.run, Some(path));
            self.apply(step, reason, observer)?;
        }
        self.synthesize_db(path, true, who, observer)?;
        Ok(Placement::Placed)
    }
}
